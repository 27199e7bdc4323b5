"""The driver at scale: many trials, thousands running at once, on a simulated cluster.

The driver is the real one (``Controller`` over ``SlurmBackend``, files, change feed,
snapshots, default loggers); Slurm and the workers are simulated (``bench/sim_cluster.py``)
with a virtual clock ``--speed`` times faster than real time. Prints, per virtual second
(what a real run of that length costs):

* the driver's filesystem metadata operations (``strace -c`` on the driver's process for a
  steady-state window: stat family, open, readdir, rename, unlink, mkdir), and per running trial;
* Slurm calls per minute (squeue, sbatch, scancel), counted by the simulated slurmctld;
* the driver's CPU share of one core and its peak RSS;
* slot utilisation: slot-seconds in the trainable (a trial's run from its start event to its
  end, less its waits for a verdict) over slots x (last end - first start), the same for both
  backends: with ``--backend pool`` a pool task's idle time and its claims count as unused;
* snapshot cost (the driver's ``save()``), and files per finished trial.

    python bench/driver_scale.py --trials 10000 --running 1000 --duration 60 --report-every 1
    python bench/driver_scale.py --trials 100000 --running 2000 --speed 20 --json
    python bench/driver_scale.py --backend pool --trials 10000 --running 1000 --report-every 10

``HPCTUNE_BENCH_KEEP=1`` keeps the experiment directory.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import peak_rss_mb, storage_dir  # noqa: E402
from sim_cluster import SimHost  # noqa: E402

from hpctune.backends.slurm import SlurmBackend  # noqa: E402
from hpctune.config import SlurmConfig  # noqa: E402
from hpctune.controller import Controller, ControllerSettings  # noqa: E402
from hpctune.space import uniform  # noqa: E402
from hpctune.storage.experiment import ExperimentDir  # noqa: E402
from hpctune.tune.callback import CallbackList  # noqa: E402
from hpctune.tune.logger import auto_loggers  # noqa: E402
from hpctune.tune.schedulers import ASHAScheduler, FIFOScheduler  # noqa: E402
from hpctune.tune.search.basic_variant import BasicVariantGenerator  # noqa: E402
from hpctune.tune.stopper import as_stopper  # noqa: E402

#: syscalls that are filesystem metadata operations (what a parallel filesystem's MDS serves)
METADATA = {
    "stat": ("stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2"),
    "open": ("open", "openat", "creat"),
    "readdir": ("getdents", "getdents64"),
    "rename": ("rename", "renameat", "renameat2"),
    "unlink": ("unlink", "unlinkat", "rmdir"),
    "mkdir": ("mkdir", "mkdirat"),
}


class Traced:
    """``strace -c`` attached to this process (all threads) until ``stop()``."""

    def __init__(self) -> None:
        self.proc = None
        self.out = Path(storage_dir("strace")) / "strace.txt"
        if shutil.which("strace") is None:
            return
        summary = [] if os.environ.get("HPCTUNE_BENCH_STRACE_FULL") else ["-c"]  # full: every call
        self.proc = subprocess.Popen(["strace", *summary, "-f", "-o", str(self.out), "-p", str(os.getpid())],
                                     stderr=subprocess.DEVNULL)
        time.sleep(0.5)  # attached

    def stop(self) -> dict[str, int] | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        self.proc.wait(10)
        if os.environ.get("HPCTUNE_BENCH_STRACE_FULL"):
            print(f"full trace: {self.out}", file=sys.stderr)
            return None
        counts: dict[str, int] = {}
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[0][0].isdigit() and not parts[-1].startswith("total"):
                calls, name = int(parts[3]), parts[-1]
                for group, names in METADATA.items():
                    if name in names:
                        counts[group] = counts.get(group, 0) + calls
        return counts


def build(args: argparse.Namespace, root: Path, sim: SimHost) -> Controller:
    exp = ExperimentDir(root)
    exp.create()
    space = {"lr": uniform(1e-4, 1e-1)}
    searcher = BasicVariantGenerator(seed=0)
    searcher.set_search_properties("loss", "min", space, num_samples=args.trials)
    if args.scheduler == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration",
                                  max_t=int(args.duration / args.report_every), grace_period=1)
    else:
        scheduler = FIFOScheduler()
    scheduler.set_search_properties("loss", "min")
    if args.backend == "pool":  # the worker pool (the default backend): pool tasks claim runs
        from hpctune.backends.pool import PoolBackend

        backend = PoolBackend(root, SlurmConfig(), commands=sim.commands)
    else:
        backend = SlurmBackend(root, SlurmConfig(), commands=sim.commands)
    settings = ControllerSettings(param_space=space, metric="loss", mode="min",
                                  max_concurrent=args.max_concurrent)
    clocks = {"clock": sim.clock.now}
    if not legacy_driver():
        clocks.update(wall_clock=sim.clock.wall, sleep=sim.clock.sleep)
    return Controller(exp, backend, searcher, scheduler, as_stopper(None), CallbackList(auto_loggers([])),
                      settings, **clocks)


def running(controller: Controller) -> int:
    """Trials running now (the steady window's figures are per running trial)."""
    return sum(1 for t in controller.table.live.values() if t.status.value == "RUNNING")


def legacy_driver() -> bool:
    """An hpctune from before the simulated cluster (its controller sleeps and reads the wall
    clock itself): it runs at ``--speed 1`` only, for the "before" figures."""
    return "wall_clock" not in inspect.signature(Controller).parameters


def run(args: argparse.Namespace) -> dict:
    root = Path(storage_dir("scale")) / "exp"
    if legacy_driver() and args.speed != 1:
        raise SystemExit("this hpctune's controller runs in real time: use --speed 1")
    sim = SimHost(root, args.speed, args.running, args.duration, args.report_every,
                  real_epoch=legacy_driver())
    controller = build(args, root, sim)
    saves: list[float] = []
    save = controller.save

    def timed_save(*a, **k):
        start = time.perf_counter()
        save(*a, **k)
        saves.append(time.perf_counter() - start)

    controller.save = timed_save
    controller.launcher.save = controller.exploits.save = timed_save
    topups: list[float] = []

    def at_real_speed(step):
        """The driver's top-ups (creating the next batch of trials and submitting or queueing
        it, snapshots included) take their real time in virtual time, not ``speed`` times it:
        they are what keeps slots busy across batches, and a real cluster waits for them
        only as long as they take (``--speed 20`` made 5 real seconds 100 virtual ones)."""
        def timed(*a, **k):
            if sim.clock.paused:  # the first step: the clock is stopped already
                return step(*a, **k)
            sim.clock.pause()
            start = time.perf_counter()
            try:
                return step(*a, **k)
            finally:
                sim.clock.resume(real_speed=True)
                if time.perf_counter() - start > 0.05:
                    topups.append(time.perf_counter() - start)
        return timed

    if not args.topups_at_speed:
        controller.launcher.create_trials = at_real_speed(controller.launcher.create_trials)
        controller.launcher.launch_pending = at_real_speed(controller.launcher.launch_pending)
    sim.clock.pause()  # creating and submitting the trials: real seconds, not virtual minutes
    create0 = time.perf_counter()
    controller.step()
    created_s = time.perf_counter() - create0
    sim.clock.resume()
    cpu0, wall0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    steady = (args.window_at, args.window_at + args.window)  # virtual seconds
    traced, window, calls_at = None, None, None
    with_trace = not args.no_strace
    while not controller.done:
        controller.step()
        now = sim.clock.now()
        if traced is None and window is None and now >= steady[0]:
            sim.clock.pause()  # attaching strace takes real seconds (more on a loaded machine):
            traced = Traced() if with_trace else None  # no virtual time, so the window stays whole
            sim.clock.resume()
            window = [sim.clock.now(), None]  # virtual start and end of the steady window
            calls_at = dict(controller.backend.command_counts())
            running_at = [running(controller)]
        elif window is not None and window[1] is None and now >= steady[1]:
            metadata = traced.stop() if traced is not None else None
            window[1] = sim.clock.now()
            calls_end = dict(controller.backend.command_counts())
            running_at.append(running(controller))
        sim.clock.sleep(controller.settings.tick_s)
    virtual = sim.clock.now()
    cpu1, wall1 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    stats = sim.stop()
    trials = controller.trial_list
    files = sum(len(files) for _, _, files in os.walk(root / "trials"))
    pool_files = sum(len(files) for _, _, files in os.walk(root / "pool"))
    span = (stats.last_end - (stats.first_start or 0)) * args.running
    result = {
        "backend": args.backend,
        "trials": args.trials, "running": args.running, "duration_s": args.duration,
        "report_every_s": args.report_every, "scheduler": args.scheduler, "speed": args.speed,
        "create_and_submit_s": round(created_s, 1),
        "wall_s": round(wall1 - wall0, 1), "virtual_s": round(virtual, 1),
        "finished": sum(1 for t in trials if t.is_finished),
        "driver_cpu_share": round((cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / virtual, 4),
        "peak_rss_mb": round(peak_rss_mb()),
        "slot_utilisation": round(stats.busy_slot_s / span, 4) if span else None,
        "snapshot_median_s": round(sorted(saves)[len(saves) // 2], 4) if saves else None,
        "snapshot_max_s": round(max(saves), 4) if saves else None,
        # real seconds of the driver's top-ups after the first batch (steps over 50 ms)
        "topups_s": [round(sum(topups), 1), round(max(topups), 2) if topups else None],
        "files_per_trial": round(files / max(1, len(trials)), 2),
        "slurm_tasks": stats.started if args.backend == "slurm" else stats.pool_tasks,
        "slurm_calls_per_min": {k: round(v / virtual * 60, 2) for k, v in stats.calls.items()},
    }
    if args.backend == "pool":
        # the queue's files left (run records, the pool tasks' walls files, array manifests)
        result["pool_files"] = pool_files
        result["pool_claims"] = stats.pool_claims
        result["sim_pool_step_s"] = round(stats.pool_step_s, 1)  # real s the simulated pool tasks took
    if window is not None and window[1] is not None:
        seconds = window[1] - window[0]
        steady_calls = {k: calls_end.get(k, 0) - calls_at.get(k, 0) for k in calls_end}
        result["steady_window_s"] = round(seconds, 1)
        polls = [t for t in stats.squeue_at if window[0] <= t <= window[1]]
        # the shortest wait between two polls in the window: 30 s is two calls a minute
        gaps = [b - a for a, b in zip(polls, polls[1:], strict=False)]
        result["steady_min_poll_gap_s"] = round(min(gaps), 1) if gaps else None
        result["steady_running"] = running_at
        result["steady_slurm_calls_per_min"] = {k: round(v / seconds * 60, 2) for k, v in steady_calls.items()}
        if metadata is not None:
            total = sum(metadata.values())
            result["metadata_ops"] = metadata
            result["metadata_ops_per_s"] = round(total / seconds, 1)
            result["metadata_ops_per_running_trial_s"] = round(total / seconds / max(1, min(running_at)), 4)
    if not os.environ.get("HPCTUNE_BENCH_KEEP"):
        shutil.rmtree(root.parent, ignore_errors=True)
    else:
        result["experiment"] = str(root)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--running", type=int, default=100, help="slots of the simulated cluster")
    parser.add_argument("--duration", type=float, default=60.0, help="virtual seconds a trial runs")
    parser.add_argument("--report-every", type=float, default=1.0, help="virtual seconds between results")
    parser.add_argument("--speed", type=float, default=1.0, help="virtual seconds per real second")
    parser.add_argument("--window-at", type=float, default=20.0,
                        help="virtual second the strace window starts (a steady state: every slot busy)")
    parser.add_argument("--window", type=float, default=30.0, help="virtual seconds of the strace window")
    parser.add_argument("--max-concurrent", type=int, default=None)
    parser.add_argument("--scheduler", choices=("fifo", "asha"), default="fifo")
    parser.add_argument("--backend", choices=("slurm", "pool"), default="slurm",
                        help="slurm: one array task per trial; pool: the worker pool (pool tasks claim runs)")
    parser.add_argument("--no-strace", action="store_true")
    parser.add_argument("--topups-at-speed", action="store_true",
                        help="the driver's top-ups take speed x their real time in virtual time (as before)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        print(f"{key:36s} {value}")


if __name__ == "__main__":
    main()
