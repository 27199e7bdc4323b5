"""hpctune (one job per trial, and the worker pool) next to Ray Tune, on the same workloads.

Three workloads, each measured against its own theoretical minimum in the same run:

* overhead: N trials that sleep S s and report once, K at a time (minimum N*S/K);
* throughput: T trials reporting R results/s for D s, all at once (minimum D);
* asha: ASHA (max_t=27, grace 1, rf 3) over synthetic curves of 0.1-0.5 s per iteration,
  8 slots (minimum: every trial to the end with no overhead, over 8 slots; ASHA's stops
  make the ratio fall below 1: compare the columns, not the absolute value).

Each run happens in a process of its own (Slurm calls of one process share one rate
limit, which would bias the later runs). hpctune runs on the Slurm backend (the lab), Ray
Tune locally with ``reuse_actors=True`` when ``ray[tune]`` is importable (the optional
``bench`` extra: ``pip install -e '.[bench]'``); otherwise its column says so.
    python bench/compare_ray.py [--quick] [--only overhead throughput asha]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from _common import storage_dir

WORKLOADS = ("overhead", "throughput", "asha")
SYSTEMS = ("hpctune", "hpctune-pool", "ray")


def sizes(quick: bool) -> dict:
    if quick:
        return {"overhead": {"trials": 80, "sleep": 1.0, "slots": 8},
                "throughput": {"trials": 4, "rate": 50, "seconds": 10},
                "asha": {"trials": 24, "slots": 8}}
    return {"overhead": {"trials": 400, "sleep": 1.0, "slots": 8},
            "throughput": {"trials": 8, "rate": 100, "seconds": 15},
            "asha": {"trials": 64, "slots": 8}}


# -- the trainables (hpctune's report, then Ray's) --------------------------------------------------
def sleep_once(config):
    from hpctune.worker import session

    time.sleep(config["sleep"])
    session.report({"slept": config["sleep"]})


def reporter(config):
    from hpctune.worker import session

    _report_at_rate(config, session.report)


def curve(config):
    from hpctune.worker import session

    for t in range(1, 28):
        time.sleep(config["iter_s"])
        session.report({"loss": config["a"] * math.exp(-config["b"] * t) + config["c"]})


def ray_sleep_once(config):
    from ray import tune

    time.sleep(config["sleep"])
    tune.report({"slept": config["sleep"]})


def ray_reporter(config):
    from ray import tune

    _report_at_rate(config, tune.report)


def ray_curve(config):
    from ray import tune

    for t in range(1, 28):
        time.sleep(config["iter_s"])
        tune.report({"loss": config["a"] * math.exp(-config["b"] * t) + config["c"]})


def _report_at_rate(config, report):
    rate, seconds = config["rate"], config["seconds"]
    start = time.time()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)
        report({"i": i})


# -- one run --------------------------------------------------------------------------------------
def workload(name: str, size: dict, tune) -> tuple[dict, dict, float]:
    """(param_space, tune_config kwargs, theoretical minimum) of a workload."""
    if name == "overhead":
        space = {"i": tune.grid_search(list(range(size["trials"]))), "sleep": size["sleep"]}
        return space, {"max_concurrent_trials": size["slots"]}, size["trials"] * size["sleep"] / size["slots"]
    if name == "throughput":
        space = {"i": tune.grid_search(list(range(size["trials"]))), "rate": size["rate"],
                 "seconds": size["seconds"]}
        return space, {"max_concurrent_trials": size["trials"]}, float(size["seconds"])
    space = {"a": tune.uniform(0.5, 2.0), "b": tune.uniform(0.05, 0.5), "c": tune.uniform(0.0, 1.0),
             "iter_s": tune.uniform(0.1, 0.5)}
    scheduler = tune.schedulers.ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3)
    kwargs = {"max_concurrent_trials": size["slots"], "num_samples": size["trials"], "metric": "loss",
              "mode": "min", "scheduler": scheduler}
    return space, kwargs, size["trials"] * 27 * 0.3 / size["slots"]  # iter_s averages 0.3 s


def run_hpctune(name: str, size: dict, pool: bool) -> dict:
    import os

    from hpctune import tune

    os.environ["HPCTUNE_BACKEND"] = "slurm"
    trainable = {"overhead": sleep_once, "throughput": reporter, "asha": curve}[name]
    space, kwargs, minimum = workload(name, size, tune)
    if name == "asha":
        kwargs["seed"] = 0
    tuner = tune.Tuner(
        trainable, param_space=space, tune_config=tune.TuneConfig(reuse_actors=pool, **kwargs),
        run_config=tune.RunConfig(storage_path=storage_dir(f"compare-{name}"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=1.0, time_min=30)),
    )
    start = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - start
    return {"wall": wall, "minimum": minimum, "errors": grid.num_errors}


def run_ray(name: str, size: dict) -> dict:
    try:
        import ray
        from ray import tune
    except ImportError:
        return {"skipped": "ray[tune] is not installed (pip install -e '.[bench]')"}
    ray.init(num_cpus=max(size.get("slots", 0), size.get("trials", 0) if name == "throughput" else 0, 1),
             include_dashboard=False, log_to_driver=False)
    trainable = {"overhead": ray_sleep_once, "throughput": ray_reporter, "asha": ray_curve}[name]
    space, kwargs, minimum = workload(name, size, tune)
    tuner = tune.Tuner(trainable, param_space=space,
                       tune_config=tune.TuneConfig(reuse_actors=True, **kwargs),
                       run_config=tune.RunConfig(storage_path=storage_dir(f"compare-ray-{name}"),
                                                 verbose=0))
    start = time.monotonic()
    grid = tuner.fit()
    wall = time.monotonic() - start
    ray.shutdown()
    return {"wall": wall, "minimum": minimum, "errors": grid.num_errors}


def one(name: str, system: str, quick: bool) -> dict:
    size = sizes(quick)[name]
    if system == "ray":
        return run_ray(name, size)
    return run_hpctune(name, size, pool=system == "hpctune-pool")


# -- the table ------------------------------------------------------------------------------------
def measure(name: str, system: str, quick: bool) -> dict:
    """Run one workload on one system in a fresh process; its JSON line back."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, system] + (["--quick"] if quick else [])
    proc = subprocess.run(cmd, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"skipped": f"failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def cell(figure: dict) -> str:
    if "skipped" in figure:
        return "n/a"
    errors = f", {figure['errors']} errors" if figure.get("errors") else ""
    return f"{figure['wall'] / figure['minimum']:.2f} ({figure['wall']:.1f} s{errors})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a few minutes in all)")
    parser.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--one", nargs=2, metavar=("WORKLOAD", "SYSTEM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.quick)))
        return
    sized = sizes(args.quick)
    print(f"ratio = wall / theoretical minimum (wall time); sizes: {json.dumps(sized)}")
    print(f"{'workload':12s}" + "".join(f"{s:>28s}" for s in args.systems))
    notes = set()
    for name in args.only:
        figures = {system: measure(name, system, args.quick) for system in args.systems}
        notes |= {f"{s}: {f['skipped']}" for s, f in figures.items() if "skipped" in f}
        print(f"{name:12s}" + "".join(f"{cell(figures[s]):>28s}" for s in args.systems), flush=True)
    for note in sorted(notes):
        print(note)


if __name__ == "__main__":
    main()
