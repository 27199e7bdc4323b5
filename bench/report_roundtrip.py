"""Reports that wait where a decision can fall: iterations run past a stop, and the round trip.

1. Overshoot: a trainable that never sleeps and checkpoints every iteration, with
   ``stop={"training_iteration": 3}`` (function trainable) and ``stop={"training_iteration": 7}``
   (class trainable): the last iteration in the trial's result log, and Result.checkpoint's.
2. Round trip: a stopper that may decide at every result (a function stopper, which never
   stops): the median time of ``tune.report()``, which is the report -> verdict round trip.
    python bench/report_roundtrip.py [--backend local|slurm] [--trials 4] [--reports 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import storage_dir

from hpctune import tune
from hpctune.storage.events import EventKind
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events


def fast(config):
    for i in range(200):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "i").write_text(str(i + 1))
            tune.report({"i": i}, checkpoint=tune.Checkpoint.from_directory(d))


class Fast(tune.Trainable):
    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"i": self.i}

    def save_checkpoint(self, checkpoint_dir):
        Path(checkpoint_dir, "i").write_text(str(self.i))

    def load_checkpoint(self, checkpoint_dir):
        self.i = int(Path(checkpoint_dir, "i").read_text())


def timed(config):
    for i in range(config["reports"]):
        start = time.perf_counter()
        tune.report({"i": i, "last_report_s": config.get("prev", 0.0)})
        config["prev"] = time.perf_counter() - start
        durations = config.setdefault("durations", [])
        durations.append(config["prev"])
    Path(tune.get_context().get_trial_dir(), "durations.txt").write_text(
        "\n".join(f"{d:.6f}" for d in config["durations"]))


def last_logged_iteration(grid, exp_path: str) -> list[int]:
    exp = ExperimentDir(exp_path)
    found = []
    for result in grid:
        trial_id = result.metrics["trial_id"]
        its = [e["result"]["training_iteration"] for e in read_events(exp.result_log_path(trial_id))
               if e.get("event") == EventKind.RESULT.value]
        found.append(max(its, default=0))
    return found


def overshoot(trainable, stop_at: int, trials: int, poll: float) -> None:
    path = storage_dir("roundtrip-stop")
    config = {"x": tune.grid_search(list(range(trials)))}
    if trainable is Fast:
        run_config = tune.RunConfig(storage_path=path, name="exp", verbose=0, stop={"training_iteration": stop_at},
                                    checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=1),
                                    slurm=tune.SlurmConfig(poll_interval_s=poll))
    else:
        run_config = tune.RunConfig(storage_path=path, name="exp", verbose=0, stop={"training_iteration": stop_at},
                                    slurm=tune.SlurmConfig(poll_interval_s=poll))
    grid = tune.Tuner(trainable, param_space=config, run_config=run_config).fit()
    logged = last_logged_iteration(grid, str(Path(path) / "exp"))
    ckpts = [int(Path(r.checkpoint.path, "i").read_text()) if r.checkpoint else None for r in grid]
    metrics = [r.metrics.get("training_iteration") for r in grid]
    print(f"{trainable.__name__:5s} stop at {stop_at}: last logged iteration {logged}, "
          f"Result.metrics iteration {metrics}, Result.checkpoint iteration {ckpts}")


def roundtrip(trials: int, reports: int, poll: float) -> None:
    path = storage_dir("roundtrip-rt")
    grid = tune.Tuner(
        timed, param_space={"x": tune.grid_search(list(range(trials))), "reports": reports},
        run_config=tune.RunConfig(storage_path=path, name="exp", verbose=0, stop=lambda trial_id, result: False,
                                  slurm=tune.SlurmConfig(poll_interval_s=poll)),
    ).fit()
    durations, firsts = [], []
    for result in grid:
        mine = [float(x) for x in Path(result.path, "durations.txt").read_text().split()]
        firsts.append(mine[0])
        durations += mine
    durations.sort()
    print("first report of each trial (the driver may not know yet that its job runs): "
          + ", ".join(f"{d * 1000:.0f} ms" for d in firsts))
    print(f"report() round trip over {len(durations)} reports of {trials} trials: median "
          f"{statistics.median(durations) * 1000:.1f} ms, p90 {durations[int(0.9 * len(durations))] * 1000:.1f} ms, "
          f"max {durations[-1] * 1000:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", default=os.environ.get("HPCTUNE_BACKEND", "local"))
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--reports", type=int, default=40)
    parser.add_argument("--poll", type=float, default=2.0, help="SlurmConfig(poll_interval_s)")
    args = parser.parse_args()
    os.environ["HPCTUNE_BACKEND"] = args.backend
    print(f"backend {args.backend}, {args.trials} trials")
    overshoot(fast, 3, args.trials, args.poll)
    overshoot(Fast, 7, args.trials, args.poll)
    roundtrip(args.trials, args.reports, args.poll)


if __name__ == "__main__":
    main()
