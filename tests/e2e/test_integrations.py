"""End to end (local processes): the integration callbacks inside real trials, and the loggers
for compute nodes without internet.

* LightGBM through a Tuner: a trial fails after its checkpoint, and its retry continues the
  booster from ``train.get_checkpoint()`` (the Lightning and XGBoost callbacks run the same way
  in tests/e2e/test_examples.py; the lab's preemption in test_integrations_lab.py).
* Offline logging: W&B and MLflow log from the driver only (the trials never import them,
  nor Comet's library), into files that are uploaded later: ``wandb sync`` takes the W&B offline
  runs as they are, the MLflow store (an SQLite file) is read back with MLflow's client.
  (Comet's offline archives: tests/unit/test_integration_loggers.py.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hpctune import train, tune
from hpctune.storage.result_log import read_events
from tests.conftest import wait_for

NETWORKED = ("wandb", "mlflow", "comet_ml")


def events(result, kind):
    return [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == kind]


def lightgbm_trial(config):
    import lightgbm as lgb
    import numpy as np

    from hpctune.tune.integration.lightgbm import TuneReportCheckpointCallback

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] - x[:, 2] > 0).astype(float)
    train_set = lgb.Dataset(x[:200], y[:200])
    valid = lgb.Dataset(x[200:], y[200:], reference=train_set)
    checkpoint = train.get_checkpoint()
    booster = TuneReportCheckpointCallback.get_model(checkpoint) if checkpoint else None
    done = booster.current_iteration() if booster else 0

    def fail_once(env):  # after round 4's checkpoint, on the first run only
        if env.iteration == 3 and not os.path.exists("failed_once"):
            open("failed_once", "w").close()
            raise RuntimeError("a node failed")

    fail_once.order = 30  # after the report (LightGBM runs callbacks by their order)
    lgb.train({"objective": "binary", "num_leaves": 4, "verbose": -1, "num_threads": 1,
               "learning_rate": config["lr"]}, train_set, num_boost_round=8 - done, valid_sets=[valid],
              valid_names=["eval"], init_model=booster,
              callbacks=[TuneReportCheckpointCallback({"loss": "eval-binary_logloss"}, frequency=2), fail_once])


def test_lightgbm_trial_resumes_its_booster_after_a_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(lightgbm_trial, param_space={"lr": 0.2},
                      run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0,
                                                failure_config=tune.FailureConfig(max_failures=1))).fit()
    (result,) = grid
    assert grid.num_errors == 0 and len(events(result, "error")) == 1
    iterations = [(e["result"]["training_iteration"], e.get("checkpoint")) for e in events(result, "result")]
    # first run: rounds 1..4 (checkpoints at 2 and 4), then it fails; the retry restores round 4's
    # booster and boosts rounds 5..8 (checkpoints at 6 and 8, 8 also the last round)
    assert iterations == [(1, None), (2, "checkpoint_000002"), (3, None), (4, "checkpoint_000004"),
                          (5, None), (6, "checkpoint_000006"), (7, None), (8, "checkpoint_000008")]
    assert result.metrics["loss"] < events(result, "result")[0]["result"]["loss"]
    from hpctune.tune.integration.lightgbm import TuneReportCheckpointCallback

    assert TuneReportCheckpointCallback.get_model(result.checkpoint).current_iteration() == 8


def reports_what_it_imported(config):
    """A trial that reports which networked logging libraries its process imported."""
    for step in range(2):
        loaded = sorted({m.split(".")[0] for m in sys.modules} & set(NETWORKED))
        tune.report({"loss": config["x"] / (step + 1), "loaded": ",".join(loaded) or "none"})


def test_loggers_write_offline_from_the_driver_and_the_trials_never_import_them(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from hpctune.tune.logger.mlflow import MLflowLoggerCallback
    from hpctune.tune.logger.wandb import WandbLoggerCallback

    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv("WANDB_MODE", "offline")  # the login node cannot reach W&B either
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_ERROR_REPORTING", "false")  # no report to Sentry from the sync either
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"  # a file of the shared filesystem, no server
    grid = tune.Tuner(
        reports_what_it_imported, param_space={"x": 1.0},
        run_config=tune.RunConfig(name="offline", storage_path=str(tmp_path / "results"), verbose=0, callbacks=[
            WandbLoggerCallback(project="sweep"), MLflowLoggerCallback(store)]),
    ).fit()
    assert grid.num_terminated == 1 and grid.num_errors == 0
    assert {r.metrics["loaded"] for r in grid} == {"none"}  # nothing on the compute node logs

    # W&B: one offline run per trial, which `wandb sync` takes as it is (here without uploading)
    experiment = tmp_path / "results" / "offline"
    # wandb's service may close the run file a moment after finish() returned (a loaded machine)
    wait_for(lambda: list(experiment.glob("trials/*/wandb/offline-run-*/run-*.wandb")), timeout=30)
    offline_runs = sorted(experiment.glob("trials/*/wandb/offline-run-*"))
    assert len(offline_runs) == 1
    sync = subprocess.run([sys.executable, "-m", "wandb", "sync", "--dry-run", *map(str, offline_runs)],
                          capture_output=True, text=True, timeout=120)
    said = sync.stdout + sync.stderr
    assert sync.returncode == 0 and "Would sync 1 run(s)" in said, said
    assert all(str(run) in said for run in offline_runs), said
    # MLflow: the store holds the run with its metric history
    client = MlflowClient(store)
    (run,) = client.search_runs([client.get_experiment_by_name("offline").experiment_id])
    assert run.info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(run.info.run_id, "loss")] == [1.0, 0.5]
