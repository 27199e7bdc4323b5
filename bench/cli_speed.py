"""How fast the inspection commands answer on a large experiment, and what a snapshot costs.

Builds a synthetic experiment directory in the documented layout (experiment.json,
summary.json, the state as the driver writes it: state.json and state.journal, and
trials/<id>/{params.json,trial.json,result.jsonl}, jobs/), written directly, then times
``hpctune ls``, ``status``, ``best`` and ``trials --filter --sort`` in-process
(``hpctune.cli.main``) and as a subprocess (what a user waits for, Python start-up
included), with the subprocess's CPU time (what it costs on a machine others load too).
``--old-state`` writes the one ``state.json`` of hpctune before the state journal (to time
the commands of that version on the same data); ``--no-rows`` removes ``state.rows`` (the
displays' row view), so that ``status`` and ``trials`` read the whole state as they did
before it. ``--snapshot`` times one snapshot interval
of the driver instead: the whole-state rewrite before the journal against the journal's
append, and the compaction.
    python bench/cli_speed.py [--trials 10000] [--iterations 20] [--repeat 3] [--keep] [--old-state]
                              [--no-rows] [--no-trial-files] [--snapshot [--changed 2000]]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

from _common import storage_dir

from hpctune.cli.main import main as cli_main
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.summary import experiment_summary
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus

STATES = [TrialStatus.TERMINATED] * 8 + [TrialStatus.RUNNING, TrialStatus.PENDING]


def auto_fields(trial_id: str, step: int, job_id: str) -> dict:
    """The fields the worker's session adds to every result (see hpctune/worker/session.py)."""
    now = 1.7e9 + step
    return {"training_iteration": step, "time_this_iter_s": 1.5, "time_total_s": step * 1.5,
            "time_since_restore": step * 1.5, "iterations_since_restore": step, "timestamp": int(now),
            "date": "2024-01-01_00-00-00", "done": False, "trial_id": trial_id,
            "experiment_tag": "0_lr=0.001", "hostname": "n1", "node_ip": "10.0.0.1", "pid": 4242,
            "slurm_job_id": job_id, "restart_count": 0}


def make_trial(root: Path, index: int, iterations: int, rng: random.Random, files: bool = True) -> Trial:
    """One trial with ``iterations`` results, its files written like the driver and worker do
    (``files``; the metric analysis from its last ten results: the record has its real size)."""
    trial_id = f"bench0001_{index:06d}"
    config = {"lr": 10 ** rng.uniform(-4, -1), "layers": rng.choice([2, 4, 8]), "opt": {"name": "adam"}}
    trial = Trial(trial_id, config, f"{index}_lr={config['lr']:.4g}", str(root / "trials" / trial_id),
                  resources={"cpu": 1, "gpu": 1}, status=STATES[index % len(STATES)],
                  job_id=f"{1000 + index // 1000}_{index % 1000}")
    lines = []
    for step in range(1, iterations + 1):
        result = {"loss": rng.random() / step, "accuracy": 1 - rng.random() / step,
                  **auto_fields(trial_id, step, trial.job_id)}
        if step > iterations - 10:
            trial.record_result(result)
        if files:
            lines.append(json.dumps({"event": "result", "result": result, "slurm_job_id": trial.job_id}))
    text = "\n".join(lines) + "\n"
    if files:
        directory = Path(trial.path)
        directory.mkdir(parents=True)
        (directory / "params.json").write_text(json.dumps(config))
        (directory / "trial.json").write_text(json.dumps({"trial_id": trial_id, "resources": trial.resources}))
        (directory / "result.jsonl").write_text(text)
    trial.num_results, trial.log_offset, trial.max_iteration = iterations, len(text) * 40, iterations
    if trial.status is TrialStatus.RUNNING:
        trial.job_state, trial.node = JobState.RUNNING, f"n{index % 64}"
    elif trial.status is TrialStatus.PENDING:
        trial.job_state, trial.job_reason = JobState.PENDING, "Priority"
    return trial


def build(root: Path, count: int, iterations: int, old_state: bool = False, files: bool = True) -> list[Trial]:
    """The experiment directory; its state as the driver writes it (a compacted base and a
    journal of the last snapshot's changes), or with ``old_state`` as hpctune before the
    journal wrote it (one ``state.json`` with every trial, indented)."""
    rng = random.Random(0)
    (root / "jobs").mkdir(parents=True)
    trials = [make_trial(root, i, iterations, rng, files) for i in range(count)]
    (root / "experiment.json").write_text(json.dumps({"metric": "loss", "mode": "min",
                                                      "scheduler": "AsyncHyperBandScheduler"}))
    commands = {"sbatch": 10, "squeue": 5000}
    run = {"searcher_finished": True, "backend_commands": commands, "updated": time.time()}
    records = [{**t.to_dict(), "config": config_view(t.config)} for t in trials]
    if old_state:
        (root / "state.json").write_text(json.dumps({"trials": records, **run}, default=str))
    else:
        from hpctune.storage.journal_writer import (
            JournalWriter,  # not in hpctune before the journal
        )

        writer = JournalWriter(ExperimentDir(root))
        writer.compact(1, records, run)
        writer.append(2, records[: max(1, count // 50)], run)  # one interval's changes
    summary = experiment_summary(trials, "loss", "min", "running", commands)
    (root / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return trials


def snapshot_costs(root: Path, count: int, changed: int, intervals: int = 5) -> None:
    """What one snapshot interval costs the driver with ``count`` trials of which ``changed``
    reported since the last one: the whole-state rewrite of hpctune before the journal
    (``state.json`` and ``driver-state.pkl`` with every trial) against the journal's append,
    and the compaction that now and then rewrites the base. Summary and fsyncs included."""
    import cloudpickle

    from hpctune.controller.snapshot import SnapshotBook, save_trials
    from hpctune.controller.state import RunState, TrialTable
    from hpctune.storage.atomic import write_bytes_atomic, write_json_atomic

    rng = random.Random(1)
    root.mkdir(parents=True)
    exp = ExperimentDir(root)
    trials = [make_trial(root, i, 20, rng, files=False) for i in range(count)]
    running = [t for t in trials if t.status is TrialStatus.RUNNING][:changed]
    queued = [t for t in trials if t.status is TrialStatus.PENDING][:changed]
    for trial in set(trials) - set(running) - set(queued):  # the others have ended
        trial.status, trial.job_state = TrialStatus.TERMINATED, JobState.NONE
    table = TrialTable()
    for trial in trials:
        table.add(trial, types.SimpleNamespace(offset=trial.log_offset))
    commands = {"sbatch": 10, "squeue": 5000}
    settings = types.SimpleNamespace(metric="loss", mode="min")
    parts = types.SimpleNamespace(table=table, exp=exp, snapshots=SnapshotBook(), state=RunState(), settings=settings,
                                  backend=types.SimpleNamespace(command_counts=lambda: commands))
    searcher = {"searcher": {"counter": count}, "scheduler": {"rungs": list(range(100))}}

    def one_interval() -> None:  # the running trials report once more
        for trial in running:
            trial.record_result({**trial.last_result, "loss": rng.random()})
            table.tails[trial.trial_id].offset += 900

    def summary() -> None:
        write_json_atomic(exp.summary_path, experiment_summary(table.all, "loss", "min", "running", commands),
                          fsync=True)

    def before() -> None:  # hpctune before the journal: every trial, twice, every interval
        records = [{**t.to_dict(), "config": config_view(t.config)} for t in table.all]
        write_json_atomic(exp.state_path, {"trials": records, "searcher_finished": False,
                                           "backend_commands": commands, "updated": time.time()},
                          fsync=True, indent=None)
        write_bytes_atomic(exp.driver_state_path, cloudpickle.dumps({"trials": records, **searcher}))
        summary()

    def after() -> int:  # what save_snapshot writes now
        parts.snapshots.seq += 1
        written = save_trials(parts)
        write_bytes_atomic(exp.driver_state_path, cloudpickle.dumps({"journal_seq": parts.snapshots.seq,
                                                                      **searcher}))
        write_json_atomic(exp.summary_path, parts.snapshots.tally.summary("running", commands), fsync=True)
        return written

    cpu: dict[str, list[float]] = {}

    def timed(fn, what: str = "") -> float:  # wall time; the CPU time is kept in ``cpu``
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        cpu.setdefault(what, []).append(time.process_time() - start_cpu)
        return time.perf_counter() - start

    one_interval()
    old = min(timed(before, "before") for _ in range(2))
    sizes = {"state.json": exp.state_path.stat().st_size, "driver-state.pkl": exp.driver_state_path.stat().st_size}
    journal = exp.root / "state.journal"
    compaction = timed(after, "compaction")  # a writer's first snapshot: the whole base
    appends, grown = [], []
    for _ in range(intervals):
        one_interval()
        size = journal.stat().st_size
        appends.append(timed(after, "append"))
        grown.append(journal.stat().st_size - size)
    trials_only = []
    for _ in range(intervals):
        one_interval()
        trials_only.append(timed(lambda: save_trials(parts), "trials"))
    summary_s = min(timed(lambda: write_json_atomic(exp.summary_path, parts.snapshots.tally.summary(
        "running", commands), fsync=True)) for _ in range(3))
    print(f"snapshot at {count} trials, {len(running)} running (each reported since the last snapshot), "
          f"{len(queued)} queued:")
    print(f"  before (state.json + driver-state.pkl with every trial): {old * 1e3:9.1f} ms per interval "
          f"({min(cpu['before']) * 1e3:.1f} ms CPU); "
          f"state.json {sizes['state.json'] / 1e6:.1f} MB, driver-state.pkl {sizes['driver-state.pkl'] / 1e6:.1f} MB")
    print(f"  after, journal append (whole snapshot):                  {min(appends) * 1e3:9.1f} ms per interval "
          f"({min(cpu['append']) * 1e3:.1f} ms CPU); +{min(grown) / 1e6:.2f} MB journal; "
          f"driver-state.pkl {exp.driver_state_path.stat().st_size} B")
    print(f"    of which the trials (save_trials):                     {min(trials_only) * 1e3:9.1f} ms "
          f"({min(cpu['trials']) * 1e3:.1f} ms CPU); "
          f"summary.json {summary_s * 1e3:.1f} ms")
    writer = parts.snapshots.writer
    every = max(1, int(max(writer.min_bytes, writer.ratio * writer.base_bytes) / max(grown)))
    print(f"  after, compaction from memory (a driver's first snapshot):  {compaction * 1e3:9.1f} ms "
          f"({min(cpu['compaction']) * 1e3:.1f} ms CPU); "
          f"base {exp.state_path.stat().st_size / 1e6:.1f} MB")
    background_compaction(writer, one_interval, timed, after, cpu, every)


def background_compaction(writer, one_interval, timed, after, cpu: dict, every: int) -> None:
    """A due compaction as a running driver meets it (every ``every`` intervals): the step that
    starts it (the append, the thread's start), the steps while it runs in the background,
    the step that starts its journal, and how long the rewrite took aside."""
    if not writer.background():
        print(f"  (base below {writer.background_min_bytes / 1e6:.0f} MB: due compactions run in the step)")
        return
    ratio, writer.ratio = writer.ratio, 0.0  # due at the next snapshot
    one_interval()
    begun = time.perf_counter()
    start_step = timed(after, "start")
    writer.ratio = ratio
    during = []
    while writer._merge is not None and writer._merge.is_alive():
        one_interval()
        during.append(timed(after, "during"))
    if writer._merge is not None:
        writer._merge.join()
    aside = time.perf_counter() - begun
    one_interval()
    poll_step = timed(after, "poll")
    steps = f"{max(during) * 1e3:.1f} ms at most ({len(during)} steps)" if during else "none"
    print(f"  after, compaction in the background (every ~{every} intervals): the step that starts it "
          f"{start_step * 1e3:.1f} ms ({cpu['start'][-1] * 1e3:.1f} ms CPU); steps while it runs: {steps}; "
          f"the step that starts its journal {poll_step * 1e3:.1f} ms; the rewrite took {aside:.1f} s aside")


def time_in_process(argv: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
        best = min(best, time.perf_counter() - start)
        if code != 0:
            raise SystemExit(f"hpctune {' '.join(argv)} exited with {code}")
    return best


def time_subprocess(argv: list[str], repeat: int) -> tuple[float, float]:
    """The best wall time of the command and its CPU time (user + system) on that run."""
    best, best_cpu = float("inf"), float("inf")
    command = [sys.executable, "-m", "hpctune.cli", *argv]
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        best, best_cpu = min(best, wall), min(best_cpu, cpu)
    return best, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the experiment directory")
    parser.add_argument("--old-state", action="store_true",
                        help="write state.json as hpctune before the state journal did (every trial)")
    parser.add_argument("--no-rows", action="store_true",
                        help="remove state.rows: status and trials read the whole state")
    parser.add_argument("--no-trial-files", action="store_true",
                        help="write the state files only, not each trial's directory (building 100,000 is "
                             "faster; the timed commands read the state, not the trials' files)")
    parser.add_argument("--snapshot", action="store_true",
                        help="measure the driver's snapshot per interval instead of the commands")
    parser.add_argument("--changed", type=int, default=2000,
                        help="--snapshot: trials that reported since the last snapshot")
    args = parser.parse_args()
    storage = Path(storage_dir("cli-speed"))
    if args.snapshot:
        snapshot_costs(storage / "snap", args.trials, args.changed)
        shutil.rmtree(storage)
        return
    root = storage / "big"
    start = time.perf_counter()
    build(root, args.trials, args.iterations, args.old_state, not args.no_trial_files)
    if args.no_rows:
        (root / "state.rows").unlink(missing_ok=True)
    state_mb = sum(p.stat().st_size for p in root.glob("state.*")) / 1e6
    print(f"built {args.trials} trials x {args.iterations} results in {time.perf_counter() - start:.1f} s "
          f"(state files {state_mb:.1f} MB) at {root}")
    os.environ["HPCTUNE_STORAGE_PATH"] = str(storage)
    commands = [["ls"], ["status", "big", "--no-squeue"], ["best", "big"],
                ["trials", "big", "--filter", "loss < 0.01", "--sort", "loss"]]
    print(f"{'command':<52} {'in-process':>11} {'subprocess':>11} {'its CPU':>9}")
    for argv in commands:
        inproc, (sub, cpu) = time_in_process(argv, args.repeat), time_subprocess(argv, args.repeat)
        print(f"hpctune {' '.join(argv):<44} {inproc:>10.3f}s {sub:>10.3f}s {cpu:>8.3f}s")
    if not args.keep:
        shutil.rmtree(storage)


if __name__ == "__main__":
    main()
