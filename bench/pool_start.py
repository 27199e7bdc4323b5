"""Fork versus spawn: the cost of a clean process per trial inside a pool task (no Slurm).

Runs N trivial trials (report once, no sleep) through one pool task on this machine,
one at a time, with each start method, in the same run, and prints the time per trial
(claim, process start, trainable load, start/result/complete events, exit, reap) and
its ratio against the fastest. Also checks that the pool task itself never imported a
heavy library (the parent must never initialise CUDA: it imports hpctune's worker only).
    python bench/pool_start.py [--trials 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

from hpctune.pool.slots import SlotPlan
from hpctune.pool.task import PoolTask
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pickling import pickle_trainable
from hpctune.storage.pool_queue import PoolQueue, shape_key


def trivial(config):
    from hpctune.worker.session import report

    report({"i": config["i"]})


def experiment(root: Path, trials: int) -> ExperimentDir:
    """An experiment directory with ``trials`` queued runs of ``trivial``."""
    exp = ExperimentDir(root)
    exp.create()
    exp.write_trainable(pickle_trainable(trivial))
    exp.write_experiment({"stop_grace_s": 1.0, "heartbeat_s": 30.0})
    queue = PoolQueue(root)
    queue.ensure()
    shape = shape_key({"cpu": 1})
    queue.write_shape(shape, {"cpu": 1})
    for seq in range(trials):
        trial_id = f"t_{seq:05d}"
        exp.write_params(trial_id, {"i": seq})
        exp.write_trial_meta(trial_id, {"trial_id": trial_id, "resources": {"cpu": 1}})
        queue.enqueue(seq, trial_id, shape)
    return exp


def per_trial(method: str, trials: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the trial processes) per trial, one pool task, one slot."""
    with tempfile.TemporaryDirectory(prefix="hpctune-bench-pool-") as tmp:
        exp = experiment(Path(tmp) / "exp", trials)
        task = PoolTask(exp.root, "1_0", shape_key({"cpu": 1}), idle_s=0.0, start_method=method,
                        plan=SlotPlan(slots=1))
        start, cpu = time.monotonic(), _children_cpu()
        task.run()
        wall, cpu = time.monotonic() - start, _children_cpu() - cpu
        ended = sum(1 for _ in (exp.root / "pool" / "ended").iterdir())
        if ended != trials:
            raise SystemExit(f"{method}: only {ended} of {trials} trials ended")
        return wall / trials, cpu / trials


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    figures = {m: [] for m in ("fork", "spawn")}
    cpu = {m: [] for m in figures}
    for _ in range(args.repeats):  # interleaved: machine noise hits both alike
        for method in figures:
            wall, used = per_trial(method, args.trials)
            figures[method].append(wall)
            cpu[method].append(used)
    best = min(statistics.median(v) for v in figures.values())
    print(f"trials per measurement  {args.trials} (one slot), {args.repeats} repeats, median shown")
    for method, values in figures.items():
        median = statistics.median(values)
        print(f"{method:6s} per trial        {median * 1000:.1f} ms  (ratio {median / best:.2f}, "
              f"min {min(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms); CPU of the "
              f"trial's processes {statistics.median(cpu[method]) * 1000:.1f} ms")
    heavy = [m for m in ("torch", "tensorflow", "jax", "cupy") if m in sys.modules]
    print(f"heavy modules in the pool task: {heavy or 'none'}")


if __name__ == "__main__":
    main()
