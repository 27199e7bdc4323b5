"""Population Based Training on Slurm: a population of 8 on 8 slots, exploits by resubmission.

The trainable needs a learning-rate schedule (``v += lr * (1 - v)`` per step, score
``v - 0.5 * lr``: a high rate first, a low one last), checkpoints every step and sleeps
``--sleep`` seconds per step. Prints wall time against the minimum (steps * sleep), the
number of exploits, the exploit latency (the decision to the recipient's first result from
the donor's checkpoint: stop, copy, rewrite, sbatch, start; median and p95), the fraction
of the slots' time spent running trials, the best score against the best constant rate,
and the Slurm commands. The same workload runs through Ray Tune when ``ray`` is importable,
on as many CPUs as hpctune has slots (``ray.init(num_cpus=...)``: Ray would take every core of
the machine otherwise), with Ray Tune's own names inside the trainable (``ray.tune.report``,
``ray.tune.get_checkpoint``: Ray refuses ``ray.train``'s inside Tune).
    python bench/pbt.py [--population 8] [--steps 30] [--sleep 0.5] [--interval 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import slurm_command_counts, storage_dir

from hpctune import tune
from hpctune.storage.result_log import read_events
from hpctune.tune.schedulers import PopulationBasedTraining

PENALTY = 0.5
INITIAL_LRS = [0.9, 0.7, 0.5, 0.3, 0.1, 0.05, 0.02, 0.01]


def schedule_problem(config):
    """The toy of tests/e2e/trainables.py: the state ``v`` lives in the checkpoint."""
    v, start = 0.0, 0
    checkpoint = tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        v, start = state["v"], state["step"]
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config["sleep"])
        v = v + min(config["lr"], 1.0) * (1 - v)
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"v": v, "step": step}, f)
            tune.report({"score": v - PENALTY * config["lr"], "lr": config["lr"]},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def best_constant(steps: int) -> float:
    return max(1 - (1 - lr) ** steps - PENALTY * lr for lr in (i / 10000 for i in range(1, 10001)))


def exploit_latencies(trial_dirs: list[Path]) -> list[float]:
    """Seconds from each exploit decision to the recipient's first result after it."""
    latencies = []
    for trial_dir in trial_dirs:
        decided = None
        for event in read_events(trial_dir / "result.jsonl"):
            if event["event"] == "exploited":
                decided = event["decided_at"]
            elif event["event"] == "result" and decided is not None:
                latencies.append(event["time"] - decided)
                decided = None
    return latencies


def exploit_phases(trial_dirs: list[Path]) -> dict[str, float]:
    """Median seconds of each phase of an exploit, from the logs: ``stop`` (decision to the
    recipient's old job's last event), ``enact`` (to the driver's ``exploited`` event: copy,
    rewrite), ``resubmit`` (to the new job's ``start``: sbatch, Slurm's queue, the worker's
    start-up) and ``first_result`` (to its first result: restore and one step)."""
    phases: dict[str, list[float]] = {"stop": [], "enact": [], "resubmit": [], "first_result": []}
    for trial_dir in trial_dirs:
        last_end = exploited = started = None
        decided = None
        for event in read_events(trial_dir / "result.jsonl"):
            kind = event["event"]
            if kind in ("terminated", "stopped", "complete", "paused") and decided is None:
                last_end = event["time"]
            elif kind == "exploited":
                decided, exploited, started = event["decided_at"], event["time"], None
                if last_end is not None and last_end >= decided:
                    phases["stop"].append(last_end - decided)
                    phases["enact"].append(exploited - last_end)
            elif kind == "start" and exploited is not None:
                started = event["time"]
                phases["resubmit"].append(started - exploited)
            elif kind == "result" and started is not None:
                phases["first_result"].append(event["time"] - started)
                decided = exploited = started = last_end = None
    return {k: round(statistics.median(v), 3) for k, v in phases.items() if v}


def busy_seconds(trial_dirs: list[Path]) -> float:
    """Seconds the trials' workers ran: each run from its start event to its last event."""
    total = 0.0
    for trial_dir in trial_dirs:
        runs: dict[tuple, list[float]] = {}
        for event in read_events(trial_dir / "result.jsonl"):
            if event.get("pid") is not None and event["event"] != "exploited":
                runs.setdefault((event.get("slurm_job_id"), event["pid"]), []).append(event["time"])
        total += sum(max(times) - min(times) for times in runs.values())
    return total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def slots(args: argparse.Namespace) -> int:
    """Trials at once, for both systems: the whole population."""
    return args.population


def run_hpctune(args: argparse.Namespace) -> dict:
    pbt = PopulationBasedTraining(time_attr="training_iteration", perturbation_interval=args.interval,
                                  hyperparam_mutations={"lr": tune.loguniform(1e-3, 1)}, seed=1)
    start = time.time()
    grid = tune.Tuner(
        schedule_problem,
        param_space={"lr": tune.grid_search(INITIAL_LRS[: args.population]), "steps": args.steps,
                     "sleep": args.sleep},
        tune_config=tune.TuneConfig(metric="score", mode="max", scheduler=pbt,
                                    max_concurrent_trials=slots(args)),
        run_config=tune.RunConfig(storage_path=storage_dir("pbt"), verbose=0,
                                  slurm=tune.SlurmConfig(poll_interval_s=0.5)),
    ).fit()
    wall = time.time() - start
    dirs = [Path(r.path) for r in grid]
    latencies = exploit_latencies(dirs)
    return {"wall_s": round(wall, 1), "minimum_s": args.steps * args.sleep, "exploits": len(latencies),
            "exploit_latency_median_s": round(statistics.median(latencies), 2) if latencies else None,
            "exploit_latency_p95_s": round(percentile(latencies, 0.95), 2) if latencies else None,
            "exploit_phases_median_s": exploit_phases(dirs),
            "slots_busy": round(busy_seconds(dirs) / (args.population * wall), 3),
            "best_score": round(grid.get_best_result().metrics["score"], 4),
            "best_constant": round(best_constant(args.steps), 4),
            "errors": grid.num_errors, "slurm_commands": slurm_command_counts(grid.experiment_path)}


def run_ray(args: argparse.Namespace) -> dict | None:
    """The same workload through Ray Tune (ray.tune.Tuner, its PBT), when Ray is installed."""
    try:
        import ray
        from ray import tune as ray_tune
        from ray.tune.schedulers import PopulationBasedTraining as RayPBT
    except ImportError:
        return None
    ray.init(num_cpus=slots(args), include_dashboard=False, log_to_driver=False)
    pbt = RayPBT(time_attr="training_iteration", perturbation_interval=args.interval,
                 hyperparam_mutations={"lr": ray_tune.loguniform(1e-3, 1)})
    start = time.time()
    grid = ray_tune.Tuner(
        ray_tune.with_resources(_ray_trainable, {"cpu": 1}),
        param_space={"lr": ray_tune.grid_search(INITIAL_LRS[: args.population]), "steps": args.steps,
                     "sleep": args.sleep},
        tune_config=ray_tune.TuneConfig(metric="score", mode="max", scheduler=pbt,
                                        max_concurrent_trials=slots(args)),
        run_config=ray_tune.RunConfig(storage_path=storage_dir("pbt-ray"), verbose=0),
    ).fit()
    wall = time.time() - start
    ray.shutdown()
    return {"wall_s": round(wall, 1), "best_score": round(grid.get_best_result().metrics["score"], 4),
            "errors": grid.num_errors}


def _ray_trainable(config):
    from ray import tune as ray_tune

    v, start = 0.0, 0
    checkpoint = ray_tune.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as path, open(os.path.join(path, "state.json")) as f:
            state = json.load(f)
        v, start = state["v"], state["step"]
    for step in range(start + 1, config["steps"] + 1):
        time.sleep(config["sleep"])
        v = v + min(config["lr"], 1.0) * (1 - v)
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "state.json"), "w") as f:
                json.dump({"v": v, "step": step}, f)
            ray_tune.report({"score": v - PENALTY * config["lr"], "lr": config["lr"]},
                            checkpoint=ray_tune.Checkpoint.from_directory(tmp))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=0.5)
    parser.add_argument("--interval", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps({"hpctune": run_hpctune(args)}, indent=1))
    ray = run_ray(args)
    print(json.dumps({"ray": ray if ray is not None else "ray is not importable: skipped"}, indent=1))


if __name__ == "__main__":
    main()
