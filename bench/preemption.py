"""Preemption on Slurm: trials on `preempt`, repeatedly preempted by `urgent` jobs.

Prints iterations lost per preemption beyond the last checkpoint (goal: zero), the
time from the preemption signal to the checkpoint written, and from the requeue to
the first result after the restart.
    python bench/preemption.py [--trials 4] [--iterations 40] [--every 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from _common import storage_dir

from hpctune import tune
from hpctune.storage.result_log import read_events


def counter(config):
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        start = int(Path(checkpoint.path, "n").read_text())
    for i in range(start, config["iterations"]):
        time.sleep(config["iter_s"])
        with tempfile.TemporaryDirectory() as tmp:
            Path(tmp, "n").write_text(str(i + 1))
            tune.report({"n": i + 1}, checkpoint=tune.Checkpoint.from_directory(tmp))


def preempt_repeatedly(stop: threading.Event, every_s: float, count: list[int]) -> None:
    """Submit two whole-node urgent jobs every `every_s` seconds until told to stop."""
    while not stop.wait(every_s):
        for _ in range(2):
            subprocess.run(["sbatch", "-p", "urgent", "-c", "4", "-o", "/dev/null",
                            "--wrap", "sleep 1"], check=True, capture_output=True)
        count[0] += 2


def analyse(trial_dir: Path) -> dict[str, list[float]]:
    events = read_events(trial_dir / "result.jsonl")
    lost, to_checkpoint, to_result = [], [], []
    last_n = 0
    signal_at = requeue_at = None
    for event in events:
        kind = event["event"]
        if kind == "preempted":
            signal_at = event["time"]
        elif kind == "result":
            if signal_at and event.get("checkpoint"):
                to_checkpoint.append(event["time"] - signal_at)
                signal_at = None
            if requeue_at:
                to_result.append(event["time"] - requeue_at)
                requeue_at = None
            last_n = event["result"]["n"]
        elif kind == "requeued":
            requeue_at = event["time"]
        elif kind == "start" and event.get("restart_count"):
            lost.append(last_n - event["restored_iteration"])
    return {"lost": lost, "to_checkpoint": to_checkpoint, "to_result": to_result}


def fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (f"median {statistics.median(values):.2f}, min {min(values):.2f}, "
            f"max {max(values):.2f} (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--iter-s", type=float, default=0.5)
    parser.add_argument("--every", type=float, default=8.0)
    args = parser.parse_args()
    os.environ.setdefault("HPCTUNE_BACKEND", "slurm")
    stop, submitted = threading.Event(), [0]
    thread = threading.Thread(target=preempt_repeatedly, args=(stop, args.every, submitted))
    tuner = tune.Tuner(
        tune.with_resources(counter, {"cpu": 4}),
        param_space={"x": tune.grid_search(list(range(args.trials))),
                     "iterations": args.iterations, "iter_s": args.iter_s},
        run_config=tune.RunConfig(storage_path=storage_dir("preemption"), verbose=0,
                                  slurm=tune.SlurmConfig(partition="preempt", poll_interval_s=1.0)),
    )
    thread.start()
    start = time.monotonic()
    try:
        grid = tuner.fit()
    finally:
        stop.set()
        thread.join()
    wall = time.monotonic() - start
    stats = {"lost": [], "to_checkpoint": [], "to_result": []}
    for result in grid:
        for key, values in analyse(Path(result.path)).items():
            stats[key] += values
    print(f"trials {len(grid)} ({grid.num_terminated} finished, {grid.num_errors} errors), "
          f"wall {wall:.1f} s, urgent jobs submitted {submitted[0]}")
    print(f"preemptions (restarts)            {len(stats['lost'])}")
    print(f"iterations lost per preemption    {fmt(stats['lost'])}")
    print(f"signal -> checkpoint written (s)  {fmt(stats['to_checkpoint'])}")
    print(f"requeue -> first result after (s) {fmt(stats['to_result'])}")
    finals = sorted(int(r.metrics.get('n', 0)) for r in grid)
    print(f"final iteration of each trial     {finals} (expected {args.iterations})")


if __name__ == "__main__":
    main()
