"""Ray options that reach the worker and the controller, end to end on local processes:
log_to_file files, TUNE_DISABLE_AUTO_CALLBACK_LOGGERS, on_trial_recover, a nested
checkpoint score attribute, configs JSON cannot hold in the driver's snapshot."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpctune import tune
from tests.e2e import trainables
from tests.e2e.state import state_of


@pytest.fixture(autouse=True)
def local(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def printing(config):
    print(f"out of trial {config['x']}", flush=True)
    import sys

    print(f"err of trial {config['x']}", file=sys.stderr, flush=True)
    tune.report({"score": config["x"]})


def test_log_to_file_writes_each_trials_output_into_its_directory(tmp_path):
    grid = tune.Tuner(printing, param_space={"x": tune.grid_search([1, 2])},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                log_to_file=("out.log", "err.log"))).fit()
    for result in grid:
        x = result.config["x"]
        assert (Path(result.path) / "out.log").read_text() == f"out of trial {x}\n"
        assert f"err of trial {x}\n" in (Path(result.path) / "err.log").read_text()


def test_auto_loggers_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    grid = tune.Tuner(printing, param_space={"x": 1},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0)).fit()
    trial_dir = Path(grid[0].path)
    assert not (trial_dir / "result.json").exists() and not (trial_dir / "progress.csv").exists()
    assert grid[0].metrics["score"] == 1  # the result log is written regardless


class Recorder(tune.Callback):
    def __init__(self):
        self.recovered, self.errors = [], []

    def on_trial_recover(self, iteration, trials, trial, **info):
        self.recovered.append(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.errors.append(trial.trial_id)


def test_on_trial_recover_is_called_for_each_retry(tmp_path):
    recorder = Recorder()
    grid = tune.Tuner(trainables.fails_first_time, param_space={"marker_dir": str(tmp_path)},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                callbacks=[recorder],
                                                failure_config=tune.FailureConfig(max_failures=1))).fit()
    assert grid.num_terminated == 1 and grid.num_errors == 0
    assert recorder.recovered == [grid[0].trial_id] and recorder.errors == []


def nested_scores(config):
    import os
    import tempfile

    for step, score in enumerate([0.9, 0.5, 0.1], start=1):
        with tempfile.TemporaryDirectory() as tmp:
            with open(os.path.join(tmp, "step"), "w") as f:
                f.write(str(step))
            tune.report({"val": {"acc": score}}, checkpoint=tune.Checkpoint.from_directory(tmp))


def test_a_nested_checkpoint_score_attribute_keeps_the_best(tmp_path):
    grid = tune.Tuner(nested_scores, run_config=tune.RunConfig(
        storage_path=str(tmp_path), verbose=0,
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2, checkpoint_score_attribute="val/acc",
                                                checkpoint_score_order="max"))).fit()
    kept = sorted(p.name for p in Path(grid[0].path).glob("checkpoint_*"))
    # the two best (0.9, 0.5) and the latest (Ray keeps the best num_to_keep plus the latest)
    assert kept == ["checkpoint_000001", "checkpoint_000002", "checkpoint_000003"]


def keys_probe(config):
    tune.report({"n": len(config["table"])})


def test_a_config_json_cannot_hold_runs_and_snapshots(tmp_path):
    table = {(1, 2): "pair", 3: "three"}
    grid = tune.Tuner(keys_probe, param_space={"table": table},
                      run_config=tune.RunConfig(name="keys", storage_path=str(tmp_path), verbose=0)).fit()
    assert grid.num_terminated == 1 and grid[0].metrics["n"] == 2
    assert grid[0].config["table"] == table
    state = state_of(tmp_path / "keys")
    assert state["trials"][0]["config"]["table"] == {"(1, 2)": "pair", "3": "three"}


def test_restore_with_a_scheduler_and_tune_config_metric(tmp_path):
    """TuneConfig's metric/mode reach the scheduler at fit(); a restored Tuner is not refused
    for having them in both places."""
    tuner = tune.Tuner(trainables.learning_curve,
                       param_space={"c": tune.grid_search([0.0, 0.5]), "a": 1.0, "b": 0.5,
                                    "sleep": 0.01, "max_t": 3},
                       tune_config=tune.TuneConfig(metric="loss", mode="min",
                                                   scheduler=tune.schedulers.ASHAScheduler(max_t=3)),
                       run_config=tune.RunConfig(name="asha", storage_path=str(tmp_path), verbose=0))
    assert tuner.fit().num_terminated == 2
    grid = tune.Tuner.restore(str(tmp_path / "asha"), trainables.learning_curve).fit()
    assert grid.num_terminated == 2 and grid.get_best_result().config["c"] == 0.0
