"""Result throughput: 16 concurrent trials, each reporting R results per second for 30 s.

Prints wall time against the 30 s minimum, results received (and checked in the logs
and the dataframe), and results per second ingested by the driver.
    python bench/throughput.py [--rates 10 50 200] [--trials 16] [--seconds 30]
The lab needs 16 free slots: start it with SLURM_LAB_CPUS=8 scripts/slurm-lab.sh up.
"""

from __future__ import annotations

import argparse
import os
import time

from _common import peak_rss_mb, storage_dir

from hpctune import tune


def reporter(config):
    rate, seconds = config["rate"], config["seconds"]
    start = time.time()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        tune.report({"i": i})


def run_once(rate: int, trials: int, seconds: float) -> None:
    tuner = tune.Tuner(
        reporter,
        param_space={"x": tune.grid_search(list(range(trials))), "rate": rate, "seconds": seconds},
        tune_config=tune.TuneConfig(max_concurrent_trials=trials),
        run_config=tune.RunConfig(storage_path=storage_dir(f"throughput-{rate}"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0)),
    )
    start = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - start
    expected = int(rate * seconds) * trials
    ingested = sum(int(r.metrics.get("training_iteration", 0)) for r in grid)
    in_logs = sum(len(r.metrics_dataframe) for r in grid)
    in_frame = int(grid.get_dataframe()["training_iteration"].sum())
    print(f"R={rate:4d}/s  wall {wall:6.1f} s  ratio {wall / seconds:5.2f}  "
          f"results {ingested}/{expected} (logs {in_logs}, dataframe {in_frame})  "
          f"ingested {ingested / wall:7.0f}/s  errors {grid.num_errors}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--backend", default=os.environ.get("HPCTUNE_BACKEND", "slurm"))
    args = parser.parse_args()
    os.environ["HPCTUNE_BACKEND"] = args.backend
    print(f"{args.trials} concurrent trials x {args.seconds:.0f} s on {args.backend}; "
          f"minimum wall {args.seconds:.0f} s")
    for rate in args.rates:
        run_once(rate, args.trials, args.seconds)
    print(f"driver peak RSS {peak_rss_mb():.0f} MiB")


if __name__ == "__main__":
    main()
