"""Scheduling overhead: N trials that sleep 1 s and report once, K at a time.

Prints wall time, the theoretical minimum N*1s/K, their ratio, the driver's peak RSS
and the number of Slurm commands issued.
    python bench/overhead.py [--trials 400] [--concurrent 8] [--backend slurm|local]
"""

from __future__ import annotations

import argparse
import os
import time

from _common import peak_rss_mb, slurm_command_counts, storage_dir

from hpctune import tune


def sleep_once(config):
    time.sleep(config["sleep_s"])
    tune.report({"slept": config["sleep_s"]})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--concurrent", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=1.0)
    parser.add_argument("--backend", default=os.environ.get("HPCTUNE_BACKEND", "slurm"))
    args = parser.parse_args()
    os.environ["HPCTUNE_BACKEND"] = args.backend
    tuner = tune.Tuner(
        sleep_once,
        param_space={"i": tune.grid_search(list(range(args.trials))), "sleep_s": args.sleep},
        tune_config=tune.TuneConfig(max_concurrent_trials=args.concurrent),
        run_config=tune.RunConfig(storage_path=storage_dir("overhead"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0, time_min=30)),
    )
    start = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - start
    minimum = args.trials * args.sleep / args.concurrent
    print(f"backend            {args.backend}")
    print(f"trials             {args.trials} x {args.sleep} s, {args.concurrent} concurrent")
    print(f"terminated/errors  {grid.num_terminated}/{grid.num_errors}")
    print(f"wall time          {wall:.1f} s")
    print(f"theoretical min    {minimum:.1f} s")
    print(f"ratio              {wall / minimum:.2f}")
    print(f"driver peak RSS    {peak_rss_mb():.0f} MiB")
    print(f"Slurm commands     {slurm_command_counts(grid.experiment_path)}")


if __name__ == "__main__":
    main()
