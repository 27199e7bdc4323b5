"""On the lab: a Lightning trial with ``TuneReportCheckpointCallback`` is preempted by an urgent
job and resumes from the trainer checkpoint the callback saved, losing and repeating no epoch.

The lab announces preemption with SIGUSR1 (hpctune's handler keeps it: Lightning installs its
own only where none is); a preemption that arrives as SIGTERM, which Lightning turns into its
``SIGTERMException``, is tests/unit/test_integration_callbacks.py's."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import sbatch, unique_name, wait_for


def lightning_trial(config):
    import os
    import time

    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from hpctune import train
    from hpctune.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    class Linear(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)

        def training_step(self, batch, batch_idx):
            time.sleep(config["sleep"])
            x, y = batch
            return torch.nn.functional.mse_loss(self.layer(x), y)

        def validation_step(self, batch, batch_idx):
            x, y = batch
            self.log("val_loss", torch.nn.functional.mse_loss(self.layer(x), y))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=gen)
    data = DataLoader(TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=32)
    trainer = pl.Trainer(max_epochs=config["epochs"], accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[TuneReportCheckpointCallback({"loss": "val_loss"}, filename="t.ckpt")])
    checkpoint = train.get_checkpoint()
    path = os.path.join(checkpoint.path, "t.ckpt") if checkpoint else None
    trainer.fit(Linear(), data, data, ckpt_path=path)


@pytest.mark.slurm
def test_a_preempted_lightning_trial_resumes_from_its_trainer_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    name = unique_name("pl-pre")
    tuner = tune.Tuner(
        tune.with_resources(lightning_trial, {"cpu": 4}), param_space={"epochs": 8, "sleep": 1.0},
        run_config=tune.RunConfig(name=name, storage_path=str(tmp_path), verbose=0,
                                  slurm=tune.SlurmConfig(partition="preempt", poll_interval_s=0.5)))
    urgent = []

    def preempt_after_two_epochs():
        def two_epochs():
            logs = list((tmp_path / name / "trials").glob("*/result.jsonl"))
            return logs and sum(e["event"] == "result" for e in read_events(logs[0])) >= 2

        wait_for(two_epochs, timeout=240)
        for _ in range(2):  # one urgent job per node: one of them takes the trial's
            urgent.append(sbatch("-p", "urgent", "-c", "4", "-o", "/dev/null", wrap="sleep 2"))

    thread = threading.Thread(target=preempt_after_two_epochs, daemon=True)
    thread.start()
    grid = tuner.fit()
    thread.join(timeout=5)
    assert urgent, "the urgent job was never submitted"
    (result,) = grid
    assert grid.num_terminated == 1, [str(e) for e in grid.errors]
    events = read_events(Path(result.path) / "result.jsonl")
    results = [e["result"]["training_iteration"] for e in events if e["event"] == "result"]
    assert results == list(range(1, 9)), "an epoch was lost or trained twice"
    assert sum(e["event"] == "preempted" for e in events) == 1
    assert [e["restart_count"] for e in events if e["event"] == "start"] == [0, 1]
    assert sorted(p.name for p in Path(result.path).glob("checkpoint_*/*")) == ["t.ckpt"] * len(
        list(Path(result.path).glob("checkpoint_*")))
