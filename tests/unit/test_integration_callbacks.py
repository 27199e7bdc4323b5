"""The integration callbacks (``hpctune.tune.integration.*``) over the real libraries: a small
model on generated data trains in this process, inside a real trial session, and what the
session recorded (results, checkpoints) is checked; a second session restores from it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpctune.errors import ConfigError
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.worker import session as session_mod
from hpctune.worker.context import TrialContext


def open_session(trial_dir: Path) -> session_mod.Session:
    """A trial's session as the worker makes it (a second one continues from the checkpoints)."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    context = TrialContext("t_00000", "t_00000", str(trial_dir), "exp", "0", resources={"cpu": 1},
                           experiment_id="exp")
    session = session_mod.Session(context, ResultLog(trial_dir / "result.jsonl"), trial_dir / "control.json")
    session_mod.set_session(session)
    return session


@pytest.fixture
def trial_dir(tmp_path):
    yield tmp_path / "trials" / "t_00000"
    session_mod.set_session(None)


def recorded(trial_dir: Path) -> list[tuple[dict, str | None]]:
    """(result, checkpoint name) of each result the session recorded."""
    return [(e["result"], e.get("checkpoint")) for e in read_events(trial_dir / "result.jsonl")
            if e["event"] == "result"]


def binary_data(n: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).astype(float)


# -- XGBoost -------------------------------------------------------------------------------------------
def xgb_train(callback, rounds, booster=None):
    import xgboost as xgb

    x, y = binary_data()
    dtrain, dvalid = xgb.DMatrix(x[:150], y[:150]), xgb.DMatrix(x[150:], y[150:])
    params = {"objective": "binary:logistic", "eval_metric": ["logloss", "error"], "max_depth": 2,
              "nthread": 1}
    return xgb.train(params, dtrain, num_boost_round=rounds, evals=[(dtrain, "train"), (dvalid, "eval")],
                     xgb_model=booster, callbacks=[callback], verbose_eval=False)


def test_xgboost_reports_every_round_and_checkpoints_by_frequency_and_at_the_end(trial_dir):
    from hpctune.tune.integration.xgboost import TuneReportCheckpointCallback

    open_session(trial_dir)
    callback = TuneReportCheckpointCallback({"loss": "eval-logloss", "err": "eval-error"}, frequency=2)
    booster = xgb_train(callback, rounds=5)
    results = recorded(trial_dir)
    # rounds 1..5 each report; rounds 2 and 4 checkpoint; the end adds a 6th result with the last
    assert [(r["training_iteration"], c) for r, c in results] == [
        (1, None), (2, "checkpoint_000002"), (3, None), (4, "checkpoint_000004"), (5, None),
        (6, "checkpoint_000006")]
    assert set(results[0][0]) >= {"loss", "err"} and "eval-logloss" not in results[0][0]
    assert results[4][0]["loss"] == results[5][0]["loss"]  # the end reports the last round again
    assert sorted(p.name for p in trial_dir.glob("checkpoint_*/*")) == ["model.ubj"] * 3
    # the checkpoint holds the booster: the same predictions
    import xgboost as xgb

    restored = TuneReportCheckpointCallback.get_model(session_mod.get_checkpoint())
    x, _ = binary_data()
    assert restored.num_boosted_rounds() == 5
    np.testing.assert_allclose(restored.predict(xgb.DMatrix(x)), booster.predict(xgb.DMatrix(x)))


def test_xgboost_restores_from_the_checkpoint_and_does_not_save_the_last_round_twice(trial_dir):
    from hpctune.tune.integration.xgboost import TuneReportCallback, TuneReportCheckpointCallback

    open_session(trial_dir)
    xgb_train(TuneReportCheckpointCallback("eval-logloss", frequency=3, checkpoint_at_end=False), rounds=4)
    assert [c for _, c in recorded(trial_dir)] == [None, None, "checkpoint_000003", None]
    open_session(trial_dir)  # a restart: the latest checkpoint is round 3's
    assert Path(session_mod.get_checkpoint().path).name == "checkpoint_000003"
    booster = TuneReportCheckpointCallback.get_model(session_mod.get_checkpoint())
    xgb_train(TuneReportCheckpointCallback("eval-logloss", frequency=3), rounds=3, booster=booster)
    again = recorded(trial_dir)[4:]
    # rounds 4..6 of the booster; round 6 checkpointed by frequency, so no extra report at the end
    assert [(r["training_iteration"], c) for r, c in again] == [(4, None), (5, None), (6, "checkpoint_000006")]
    assert TuneReportCheckpointCallback.get_model(session_mod.get_checkpoint()).num_boosted_rounds() == 6

    xgb_train(TuneReportCallback(["eval-error"], results_postprocessing_fn=lambda d: {"e2": 2 * d["eval-error"]}),
              rounds=2)
    last = recorded(trial_dir)[-2:]
    assert [c for _, c in last] == [None, None] and "e2" in last[0][0] and "eval-error" not in last[0][0]


def test_xgboost_names_the_logged_metrics_when_one_is_missing(trial_dir):
    from hpctune.tune.integration.xgboost import TuneReportCheckpointCallback

    open_session(trial_dir)
    with pytest.raises(ConfigError, match=r"no metric 'valid-logloss'.*'eval-logloss'"):
        xgb_train(TuneReportCheckpointCallback({"loss": "valid-logloss"}), rounds=1)
    with pytest.raises(ConfigError, match="frequency must be"):
        TuneReportCheckpointCallback(frequency=-1)


# -- LightGBM ------------------------------------------------------------------------------------------
def lgb_train(callback, rounds, init_model=None):
    import lightgbm as lgb

    x, y = binary_data()
    params = {"objective": "binary", "metric": ["binary_logloss"], "num_leaves": 4, "verbose": -1,
              "num_threads": 1, "min_data_in_leaf": 5}
    train_set = lgb.Dataset(x[:150], y[:150])
    valid = lgb.Dataset(x[150:], y[150:], reference=train_set)
    return lgb.train(params, train_set, num_boost_round=rounds, valid_sets=[valid], valid_names=["eval"],
                     init_model=init_model, callbacks=[callback])


def test_lightgbm_reports_every_round_and_checkpoints_by_frequency_and_at_the_last_round(trial_dir):
    from hpctune.tune.integration.lightgbm import TuneReportCallback, TuneReportCheckpointCallback

    open_session(trial_dir)
    booster = lgb_train(TuneReportCheckpointCallback({"loss": "eval-binary_logloss"}, frequency=2,
                                                     filename="m.txt"), rounds=5)
    results = recorded(trial_dir)
    assert [(r["training_iteration"], c) for r, c in results] == [
        (1, None), (2, "checkpoint_000002"), (3, None), (4, "checkpoint_000004"), (5, "checkpoint_000005")]
    assert results[0][0]["loss"] > results[4][0]["loss"] > 0
    restored = TuneReportCheckpointCallback.get_model(session_mod.get_checkpoint(), filename="m.txt")
    x, _ = binary_data()
    np.testing.assert_allclose(restored.predict(x), booster.predict(x))

    lgb_train(TuneReportCallback(), rounds=2)  # every metric, under LightGBM's names, no checkpoint
    last = recorded(trial_dir)[-2:]
    assert [c for _, c in last] == [None, None] and "eval-binary_logloss" in last[0][0]


def test_lightgbm_cv_reports_mean_and_stdv(trial_dir):
    import lightgbm as lgb

    from hpctune.tune.integration.lightgbm import TuneReportCheckpointCallback

    open_session(trial_dir)
    x, y = binary_data()
    lgb.cv({"objective": "binary", "metric": "binary_logloss", "verbose": -1, "num_leaves": 4,
            "num_threads": 1}, lgb.Dataset(x, y), num_boost_round=2, nfold=2, stratified=False,
           callbacks=[TuneReportCheckpointCallback(["valid-binary_logloss-mean", "valid-binary_logloss-stdv"],
                                                   checkpoint_at_end=False)])
    results = [r for r, _ in recorded(trial_dir)]
    assert len(results) == 2 and results[1]["valid-binary_logloss-stdv"] >= 0


# -- PyTorch Lightning ---------------------------------------------------------------------------------
def lightning_fit(pl, callback, max_epochs, ckpt_path=None, on_step=None):
    """A linear classifier on generated data, two batches per epoch, CPU, nothing else logged."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def step(self, batch, name):
            x, y = batch
            loss = torch.nn.functional.binary_cross_entropy_with_logits(self.layer(x).squeeze(1), y)
            self.log(name, loss, on_epoch=True, on_step=False)
            return loss

        def training_step(self, batch, batch_idx):
            if on_step is not None:
                on_step(self)
            return self.step(batch, "train_loss")

        def validation_step(self, batch, batch_idx):
            self.step(batch, "val_loss")

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)

    x, y = binary_data(64)
    data = TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
    trainer = pl.Trainer(max_epochs=max_epochs, callbacks=[callback], accelerator="cpu", devices=1,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=1)
    trainer.fit(Tiny(), DataLoader(data, batch_size=32), DataLoader(data, batch_size=32), ckpt_path=ckpt_path)
    return trainer


@pytest.mark.parametrize("package", ["lightning.pytorch", "pytorch_lightning"])
def test_lightning_reports_and_checkpoints_at_validation_end_and_restores(trial_dir, package):
    import importlib

    from hpctune.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    pl = importlib.import_module(package)
    open_session(trial_dir)
    lightning_fit(pl, TuneReportCheckpointCallback({"loss": "val_loss"}, filename="trainer.ckpt"), max_epochs=2)
    results = recorded(trial_dir)  # the sanity check reports nothing; each epoch's validation does
    assert [(r["training_iteration"], c) for r, c in results] == [(1, "checkpoint_000001"), (2, "checkpoint_000002")]
    assert set(results[0][0]) & {"loss", "val_loss", "train_loss"} == {"loss"}
    assert results[1][0]["loss"] < results[0][0]["loss"]
    assert [p.name for p in (trial_dir / "checkpoint_000002").iterdir()] == ["trainer.ckpt"]

    open_session(trial_dir)  # a restart continues from epoch 2's checkpoint: one more epoch
    with session_mod.get_checkpoint().as_directory() as directory:
        callback = TuneReportCheckpointCallback(["val_loss", "train_loss"], on="train_epoch_end")
        trainer = lightning_fit(pl, callback, max_epochs=3,
                                ckpt_path=str(Path(directory) / "trainer.ckpt"))
    assert trainer.current_epoch == 3
    (last, checkpoint), = recorded(trial_dir)[2:]
    assert (last["training_iteration"], checkpoint) == (3, "checkpoint_000003")
    assert {"val_loss", "train_loss"} <= set(last)
    assert [p.name for p in (trial_dir / "checkpoint_000003").iterdir()] == ["checkpoint"]


def test_lightning_report_only_hooks_and_missing_metrics(trial_dir, caplog):
    import lightning.pytorch as pl

    from hpctune.tune.integration.pytorch_lightning import (
        TuneReportCallback,
        TuneReportCheckpointCallback,
    )

    open_session(trial_dir)
    lightning_fit(pl, TuneReportCallback({"t": "train_loss", "gone": "nope"}, on=["train_epoch_end"]),
                  max_epochs=2)
    results = recorded(trial_dir)
    assert [(sorted(set(r) & {"t", "gone", "val_loss"}), c) for r, c in results] == [(["t"], None)] * 2
    assert "Metric nope does not exist" in caplog.text
    assert not list(trial_dir.glob("checkpoint_*"))
    with pytest.raises(ConfigError, match=r"on='validation_ends'.*'validation_end'"):
        TuneReportCheckpointCallback(on="validation_ends")


def test_a_preempted_lightning_trial_ends_as_preempted_not_complete(trial_dir):
    """After Slurm's SIGTERM, Lightning ends fit with its SIGTERMException (a SystemExit, which a
    trainable's sys.exit(0) also is); the callback makes it the preemption it is."""
    import os
    import signal

    import lightning.pytorch as pl

    from hpctune.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    session = open_session(trial_dir)

    def preempt(module):
        if module.current_epoch == 1:  # after epoch 1's checkpoint, as the worker's handler would
            session.context.preempted, session.signal_name = True, "SIGTERM"
            os.kill(os.getpid(), signal.SIGTERM)  # Lightning's own handler: fit ends after the batch

    with pytest.raises(session_mod.Preempted, match="SIGTERM"):
        lightning_fit(pl, TuneReportCheckpointCallback("val_loss"), max_epochs=5, on_step=preempt)
    assert [c for _, c in recorded(trial_dir)] == ["checkpoint_000001"]


def test_a_missing_library_is_a_config_error_naming_the_extra():
    import subprocess
    import sys

    code = ("import sys\n"
            "for name in ('lightning', 'lightning.pytorch', 'pytorch_lightning', 'xgboost', 'lightgbm'):\n"
            "    sys.modules[name] = None\n"
            "for module in ('pytorch_lightning', 'xgboost', 'lightgbm'):\n"
            "    try:\n"
            "        __import__('hpctune.tune.integration.' + module)\n"
            "    except Exception as exc:\n"
            "        print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "ConfigError hpctune.tune.integration.pytorch_lightning needs Lightning: pip install "
        "'hpctune[lightning]' (or lightning, or pytorch_lightning) in the trials' environment.",
        "ConfigError hpctune.tune.integration.xgboost needs xgboost: pip install 'hpctune[xgboost]' "
        "in the trials' environment.",
        "ConfigError hpctune.tune.integration.lightgbm needs lightgbm: pip install 'hpctune[lightgbm]' "
        "in the trials' environment."]
