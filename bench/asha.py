"""ASHA on Slurm: 64 trials with synthetic curves, max_t=27, 8 slots.

Prints wall time, iterations executed against 64*27, iterations run after their
trial's STOP decision (wasted work), the latency from a STOP decision to the task
leaving its slot and to the next trial's first result, and the best loss.
The task is scancelled at once; `--grace` is SlurmConfig(stop_grace_s), the upper bound of
the trainable's cleanup (0: the worker exits at once without cleanup). Run one grace per
process: all Slurm calls of a process share one rate limit, so a second run in the same
process starts with fewer tokens and measures the limiter, not the handover.
With `--reuse` the trials run through the worker pool (8 pool tasks): a STOP ends the
trial's process and the next trial starts in the freed slot of an allocation already running.
    python bench/asha.py [--trials 64] [--grace 3.0] [--reuse]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from pathlib import Path

from _common import slurm_command_counts, storage_dir

from hpctune import tune
from hpctune.storage.result_log import read_events


def curve(config):
    for t in range(1, 28):
        time.sleep(config["iter_s"])
        tune.report({"loss": config["a"] * math.exp(-config["b"] * t) + config["c"]})


def timeline(trial_dir: Path) -> dict:
    """Wall-clock facts of one trial from its log and control record."""
    events = read_events(trial_dir / "result.jsonl")
    results = [e for e in events if e["event"] == "result"]
    control = trial_dir / "control.json"
    decision = json.loads(control.read_text()).get("time") if control.exists() else None
    leave = next((e["time"] for e in events if e["event"] == "stopped"), None)
    return {
        "start": next((e["time"] for e in events if e["event"] == "start"), None),
        "first_result": results[0]["time"] if results else None,
        "decision": decision,
        "leave": leave,
        "after_stop": sum(1 for e in results if decision and e["time"] > decision),
        "iterations": len(results),
    }


def handovers(lines: list[dict]) -> tuple[list[float], list[float], list[float]]:
    """(decision -> slot freed, decision -> next trial's first result, decision -> next trial's
    start: the slot handover) for each stop."""
    stops = sorted((t for t in lines if t["decision"]), key=lambda t: t["decision"])
    starts = sorted((t for t in lines if t["start"] and t["first_result"]), key=lambda t: t["start"])
    freed, next_result, next_start, used = [], [], [], set()
    for stop in stops:
        if stop["leave"]:
            freed.append(stop["leave"] - stop["decision"])
        successor = next((i for i, t in enumerate(starts)
                          if i not in used and t["start"] >= stop["decision"]), None)
        if successor is not None:
            used.add(successor)
            next_result.append(starts[successor]["first_result"] - stop["decision"])
            next_start.append(starts[successor]["start"] - stop["decision"])
    return freed, next_result, next_start


def summary(values: list[float]) -> str:
    if not values:
        return "n/a"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {statistics.median(ordered):.2f} s, p95 {p95:.2f} s (n={len(ordered)})"


def run_once(trials: int, grace: float, seed: int, reuse: bool = False) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    space = {"a": tune.uniform(0.5, 2.0), "b": tune.uniform(0.05, 0.5), "c": tune.uniform(0.0, 1.0),
             "iter_s": tune.uniform(0.1, 0.5)}
    scheduler = tune.schedulers.ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3)
    tuner = tune.Tuner(
        curve, param_space=space,
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=trials,
                                    max_concurrent_trials=8, scheduler=scheduler,
                                    seed=int(rng.integers(1 << 30)), reuse_actors=reuse),
        run_config=tune.RunConfig(storage_path=storage_dir("asha"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0, stop_grace_s=grace)),
    )
    start = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - start
    lines = [timeline(Path(r.path)) for r in grid]
    freed, next_result, next_start = handovers(lines)
    executed = sum(t["iterations"] for t in lines)
    ideal = sum(27 * r.config["iter_s"] for r in grid) / 8
    print(f"-- stop grace {grace} s ({'cleanup bounded by the grace' if grace else 'exit at once'})"
          + (", worker pool" if reuse else ", one job per trial"))
    print(f"wall time                      {wall:.1f} s (every trial to the end, no overhead: {ideal:.1f} s)")
    print(f"iterations executed            {executed} of {trials * 27}")
    print(f"iterations after STOP          {sum(t['after_stop'] for t in lines)} "
          f"over {sum(1 for t in lines if t['decision'])} stopped trials")
    print(f"STOP -> worker left its slot   {summary(freed)} (cooperative exits only)")
    print(f"STOP -> next trial's start     {summary(next_start)} (the slot handover)")
    print(f"STOP -> next trial's 1st result {summary(next_result)}")
    print(f"best loss                      {grid.get_best_result().metrics['loss']:.4f}")
    print(f"Slurm commands                 {slurm_command_counts(grid.experiment_path)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=64)
    parser.add_argument("--grace", type=float, nargs="+", default=[3.0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reuse", action="store_true", help="run the trials through the worker pool")
    args = parser.parse_args()
    os.environ.setdefault("HPCTUNE_BACKEND", "slurm")
    for grace in args.grace:
        run_once(args.trials, grace, args.seed, args.reuse)


if __name__ == "__main__":
    main()
