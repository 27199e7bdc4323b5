"""End to end (local processes): the driver's loggers write result.json (JsonLoggerCallback,
added here: it is not a default), progress.csv and TensorBoard files (the defaults) *while*
the trials run, not when they end.

Each trial reports once, then waits for a file that a driver callback writes only after it saw
that first result in the trial's result.json and progress.csv: the trial can only finish if the
driver logged it live.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from hpctune import train, tune
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.logger import JsonLoggerCallback

RELEASE = "release-me"


def waits_for_the_driver(config):
    tune.report({"loss": 1.0 + config["x"], "nested": {"a": 1}})
    release = Path(train.get_context().get_trial_dir()) / RELEASE
    deadline = time.time() + 60
    while not release.exists() and time.time() < deadline:
        time.sleep(0.05)
    tune.report({"loss": 0.5 + config["x"], "nested": {"a": 2}, "late": 3, "released": release.exists()})


class Releaser(tune.Callback):
    """Lets a trial go on once its first result is in its files, while it still runs."""

    def __init__(self):
        self.seen: dict[str, tuple[int, list[str]]] = {}

    def on_step_begin(self, iteration, trials, **info):
        for trial in trials:
            trial_dir = Path(trial.path)
            if trial.trial_id in self.seen or trial.status != Trial.RUNNING:
                continue
            if not (trial_dir / "result.json").exists() or not (trial_dir / "progress.csv").exists():
                continue
            lines = (trial_dir / "result.json").read_text().splitlines()
            with open(trial_dir / "progress.csv", newline="") as f:
                rows = list(csv.reader(f))
            self.seen[trial.trial_id] = (len(lines), rows[0])
            (trial_dir / RELEASE).write_text("go")


@pytest.fixture
def local(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)


def test_default_loggers_write_live_while_trials_run(local, tmp_path):
    releaser = Releaser()
    grid = tune.Tuner(
        waits_for_the_driver, param_space={"x": tune.grid_search([0, 1])},
        tune_config=tune.TuneConfig(metric="loss", mode="min"),
        run_config=tune.RunConfig(name="live", storage_path=str(tmp_path), verbose=0,
                                  callbacks=[releaser, JsonLoggerCallback()])).fit()
    assert grid.num_terminated == 2 and grid.num_errors == 0
    for result in grid:
        assert result.metrics["released"] is True  # the driver wrote the files while it ran
        count, header = releaser.seen[result.trial_id]
        assert count == 1 and "nested/a" in header
        trial_dir = Path(result.path)
        lines = [json.loads(line) for line in (trial_dir / "result.json").read_text().splitlines()]
        assert [r["nested"]["a"] for r in lines] == [1, 2]
        assert lines[0]["config"] == result.config
        with open(trial_dir / "progress.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert [r["late"] for r in rows] == ["", "3"]  # a key that came later is a column
        assert [r["nested/a"] for r in rows] == ["1", "2"]
        if _has_tensorboardx():
            assert list(trial_dir.glob("events.out.tfevents.*"))


def _has_tensorboardx() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorboardX") is not None


def reports_three(config):
    for step in range(3):
        tune.report({"loss": config["x"] / (step + 1)})


def test_mlflow_logger_through_a_real_experiment(local, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from hpctune.tune.logger.mlflow import MLflowLoggerCallback

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    grid = tune.Tuner(
        reports_three, param_space={"x": tune.grid_search([1.0, 2.0])},
        run_config=tune.RunConfig(name="mlf", storage_path=str(tmp_path / "runs"), verbose=0,
                                  callbacks=[MLflowLoggerCallback(uri)])).fit()
    assert grid.num_terminated == 2
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("mlf").experiment_id])
    assert sorted(r.data.params["x"] for r in runs) == ["1.0", "2.0"]
    assert all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        x = float(run.data.params["x"])
        history = client.get_metric_history(run.info.run_id, "loss")
        assert [(m.step, m.value) for m in history] == [(1, x), (2, x / 2), (3, x / 3)]
