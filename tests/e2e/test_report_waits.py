"""A trial a stopper or scheduler ends runs no iteration past the result that decided it (issue 22 S1).

The trainables never sleep: before reports waited for the verdict, a stop at iteration 3 ran on
to 5-32, and the checkpoint of a later iteration became Result.checkpoint.
"""

import tempfile
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events


@pytest.fixture(autouse=True)
def local_backend(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def never_sleeps(config):
    """Reports 100 iterations as fast as it can, a checkpoint with each (holding its iteration)."""
    start = tune.get_checkpoint()
    first = int(Path(start.path, "i").read_text()) if start else 0
    for i in range(first + 1, 101):
        with tempfile.TemporaryDirectory() as d:
            Path(d, "i").write_text(str(i))
            tune.report({"loss": config["c"] + 1.0 / i}, checkpoint=tune.Checkpoint.from_directory(d))


class NeverSleeps(tune.Trainable):
    def setup(self, config):
        self.i = 0

    def step(self):
        self.i += 1
        return {"loss": 1.0 / self.i}

    def save_checkpoint(self, checkpoint_dir):
        Path(checkpoint_dir, "i").write_text(str(self.i))

    def load_checkpoint(self, checkpoint_dir):
        self.i = int(Path(checkpoint_dir, "i").read_text())


def logged(path: str, trial_id: str) -> list[tuple[str, int | None]]:
    """The trial's events as (kind, training_iteration of a result)."""
    events = read_events(ExperimentDir(path).result_log_path(trial_id))
    return [(e["event"], e.get("result", {}).get("training_iteration")) for e in events]


def result_iterations(events) -> list[int]:
    return [it for kind, it in events if kind == "result"]


def checkpoint_iteration(result) -> int:
    return int(Path(result.checkpoint.path, "i").read_text())


@pytest.mark.parametrize("trainable, checkpoint_config", [
    (never_sleeps, None), (NeverSleeps, tune.CheckpointConfig(checkpoint_frequency=1))])
def test_a_stop_at_iteration_3_runs_no_iteration_4(tmp_path, trainable, checkpoint_config):
    grid = tune.Tuner(trainable, param_space={"c": tune.grid_search([0.0, 1.0])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0,
                                                stop={"training_iteration": 3},
                                                checkpoint_config=checkpoint_config)).fit()
    assert grid.num_errors == 0
    for result in grid:
        assert result_iterations(logged(str(tmp_path / "exp"), result.metrics["trial_id"])) == [1, 2, 3]
        assert result.metrics["training_iteration"] == 3
        assert checkpoint_iteration(result) == 3


def test_asha_stops_a_trial_at_the_rung_that_judged_it(tmp_path):
    """One trial at a time: the first (best) runs to max_t, the worse ones stop at rung 1."""
    scheduler = tune.schedulers.ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    grid = tune.Tuner(never_sleeps, param_space={"c": tune.grid_search([0.0, 5.0, 10.0])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler,
                                                  max_concurrent_trials=1),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0)).fit()
    by_c = {r.config["c"]: r for r in grid}
    path = str(tmp_path / "exp")
    assert result_iterations(logged(path, by_c[0.0].metrics["trial_id"])) == list(range(1, 10))
    for c in (5.0, 10.0):
        assert result_iterations(logged(path, by_c[c].metrics["trial_id"])) == [1]
        assert checkpoint_iteration(by_c[c]) == 1


def test_hyperband_pauses_a_trial_at_its_milestone(tmp_path):
    """max_t=3, eta=3: trials 0-1 form a bracket with its milestone at 3, trials 2-4 one with its
    first at 1 (then 2 after the halving): a trial that gets there before the others of its
    bracket pauses with exactly the milestone's results."""
    scheduler = tune.schedulers.HyperBandScheduler(max_t=3, reduction_factor=3)
    grid = tune.Tuner(never_sleeps, param_space={"c": tune.grid_search([0.0, 1.0, 2.0, 3.0, 4.0])},
                      tune_config=tune.TuneConfig(metric="loss", mode="min", scheduler=scheduler),
                      run_config=tune.RunConfig(storage_path=str(tmp_path), name="exp", verbose=0)).fit()
    assert grid.num_errors == 0
    pauses = {}
    for result in grid:
        events = logged(str(tmp_path / "exp"), result.metrics["trial_id"])
        for index, (kind, _) in enumerate(events):
            if kind == "paused":
                before = [it for k, it in events[:index] if k == "result"]
                pauses.setdefault(result.config["c"], []).append(before[-1])
    assert pauses
    for c, at_iterations in pauses.items():
        assert set(at_iterations) <= ({3} if c < 2 else {1, 2}), (c, at_iterations)
    assert all(r.metrics["training_iteration"] <= 3 for r in grid)
