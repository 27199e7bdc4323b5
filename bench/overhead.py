"""Scheduling overhead: N trials that sleep 1 s and report once, K at a time.

Prints wall time, the theoretical minimum N*1s/K, their ratio, the driver's peak RSS
and the number of Slurm commands issued. With `--floor` it first measures, in the same
run, Slurm's own floor: a throttled array of N `sleep 1` tasks with no Python at all.
With `--reuse` the trials run through the worker pool (``TuneConfig(reuse_actors=True)``:
K pool tasks, each running trial after trial), each trial started by `--start fork|spawn`.
    python bench/overhead.py [--trials 400] [--concurrent 8] [--backend slurm|local] [--reuse]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import time

from _common import peak_rss_mb, slurm_command_counts, storage_dir

from hpctune import tune


def sleep_once(config):
    time.sleep(config["sleep_s"])
    tune.report({"slept": config["sleep_s"]})


def slurm_floor(trials: int, concurrent: int, sleep: float) -> float:
    """Wall time of `sbatch --array=0-N%K --wrap "sleep 1"` until the queue is empty."""
    name = f"hpctune-floor-{os.getpid()}"
    start = time.monotonic()
    subprocess.run(["sbatch", f"--array=0-{trials - 1}%{concurrent}", "-J", name, "-o", "/dev/null",
                    "--wrap", f"sleep {sleep}"], check=True, capture_output=True)
    while subprocess.run(["squeue", "-h", "-n", name], capture_output=True, text=True).stdout.strip():
        time.sleep(0.2)
    return time.monotonic() - start


def trial_span(experiment_path: str) -> tuple[float, float]:
    """(first start event, last complete event) of the experiment's trials, as Unix times."""
    from pathlib import Path

    from hpctune.storage.result_log import read_events

    events = [e for p in Path(experiment_path).glob("trials/*/result.jsonl") for e in read_events(p)]
    return (min(e["time"] for e in events if e["event"] == "start"),
            max(e["time"] for e in events if e["event"] == "complete"))


def pool_timeline(experiment_path: str) -> tuple[list[float], list[float]]:
    """(complete -> next start gaps within each pool task, each pool task's first start)."""
    import json
    from collections import defaultdict
    from pathlib import Path

    from hpctune.storage.result_log import read_events

    exp, runs = Path(experiment_path), defaultdict(list)
    for log in exp.glob("trials/*/result.jsonl"):
        events = read_events(log)
        start = next(e for e in events if e["event"] == "start")
        end = next(e for e in events if e["event"] == "complete")
        seq = int(start["slurm_job_id"].removeprefix("pool-"))
        task = json.loads((exp / "pool" / "ended" / f"{seq:08d}.json").read_text())["task"]
        runs[task].append((start["time"], end["time"]))
    gaps = [b[0] - a[1] for spans in runs.values() for a, b in itertools.pairwise(sorted(spans))]
    return gaps or [0.0], [min(spans)[0] for spans in runs.values()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--backend", default=os.environ.get("HPCTUNE_BACKEND", "slurm"))
    parser.add_argument("--floor", action="store_true", help="also measure Slurm's own floor")
    parser.add_argument("--reuse", action="store_true", help="run the trials through the worker pool")
    parser.add_argument("--start", choices=["fork", "spawn"], default="fork",
                        help="how a pool task starts each trial's process (with --reuse)")
    args = parser.parse_args()
    minimum = args.trials * args.sleep / args.concurrent
    if args.floor:
        floor = slurm_floor(args.trials, args.concurrent, args.sleep)
        print(f"Slurm floor        {floor:.1f} s (array of `sleep` tasks, ratio {floor / minimum:.2f})")
    os.environ["HPCTUNE_BACKEND"] = args.backend
    tuner = tune.Tuner(
        sleep_once,
        param_space={"i": tune.grid_search(list(range(args.trials))), "sleep_s": args.sleep},
        tune_config=tune.TuneConfig(max_concurrent_trials=args.concurrent, reuse_actors=args.reuse),
        run_config=tune.RunConfig(storage_path=storage_dir("overhead"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0, time_min=30,
                                                         pool_start_method=args.start)),
    )
    start, started_at = time.monotonic(), time.time()
    grid = tuner.fit()
    wall = time.monotonic() - start
    first, last = trial_span(grid.experiment_path)
    print(f"backend            {args.backend}" + (f", worker pool ({args.start})" if args.reuse else ""))
    print(f"trials             {args.trials} x {args.sleep} s, {args.concurrent} concurrent")
    print(f"terminated/errors  {grid.num_terminated}/{grid.num_errors}")
    print(f"wall time          {wall:.1f} s")
    print(f"theoretical min    {minimum:.1f} s")
    print(f"ratio              {wall / minimum:.2f}")
    print(f"first trial start  {first - started_at:.1f} s after fit(); last trial end "
          f"{started_at + wall - last:.1f} s before fit() returned")
    if args.reuse:
        handover, task_starts = pool_timeline(grid.experiment_path)
        print(f"pool handover      complete -> next start in the same pool task: median "
              f"{statistics.median(handover) * 1000:.0f} ms, p90 "
              f"{sorted(handover)[int(0.9 * len(handover))] * 1000:.0f} ms")
        print(f"pool tasks began   {min(task_starts) - started_at:.1f} .. {max(task_starts) - started_at:.1f} s "
              "after fit() (a spread: the lab was busy)")
    print(f"driver peak RSS    {peak_rss_mb():.0f} MiB")
    print(f"Slurm commands     {slurm_command_counts(grid.experiment_path)}")


if __name__ == "__main__":
    main()
