"""The worst-case cost estimate against the Slurm lab: its partitions' billing weights, read
through the one ``scontrol show partition`` (scripts/slurm-lab.sh declares none: Slurm then
bills one unit per CPU, and the estimate says so)."""

from __future__ import annotations

import re

import pytest

import hpctune as tune
from hpctune import TuneConfig, Tuner
from hpctune.accounting.estimate import UNWEIGHTED
from hpctune.backends.slurm import SlurmBackend
from hpctune.config import SlurmConfig

pytestmark = pytest.mark.slurm


def train(config):
    pass


def declared_weights(slurm_lab, partition: str) -> str | None:
    """TRESBillingWeights as the running lab's own scontrol prints them (None: not set)."""
    line = slurm_lab.run(f"scontrol show partition -o {partition}", check=True).stdout
    found = re.search(r"\bTRESBillingWeights=(\S+)", line)
    return found.group(1) if found else None


@pytest.mark.parametrize("partition", ["debug", "urgent"])
def test_the_lab_partitions_billing_weights(slurm_lab, tmp_path, partition):
    backend = SlurmBackend(tmp_path / "exp", SlurmConfig(partition=partition))
    assert backend.billing_weights() == declared_weights(slurm_lab, partition)
    assert backend.command_counts() == {"scontrol": 1}


def test_a_grid_preview_on_the_lab(slurm_lab, tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    tuner = Tuner(tune.with_resources(train, {"cpu": 2, "gpu": 1}),
                  param_space={"x": tune.grid_search([1, 2, 3])}, tune_config=TuneConfig(num_samples=2),
                  run_config=tune.RunConfig(storage_path=str(tmp_path), name="cost"),
                  slurm_config=SlurmConfig(partition="debug", time_min=20))
    text = tuner.preview_sbatch()
    # 3 x 2 = 6 trials x 20 min = 2 trial-hours: 2 node-hours, 4 CPU-hours, 2 GPU-hours
    assert "# worst-case cost: 6 trials, 6 Slurm jobs\n" in text
    assert "#   node-hours 2.0, CPU-hours 4.0, GPU-hours 2.0, billing units x hours 4.0\n" in text
    assert declared_weights(slurm_lab, "debug") is None  # what the line below relies on
    assert f"#   billing: {UNWEIGHTED}\n" in text
