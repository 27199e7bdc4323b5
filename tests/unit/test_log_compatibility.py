"""An experiment written by hpctune 0.1 (result log schema 1) must stay readable."""

import shutil
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.tune.schedulers import ASHAScheduler

FROZEN = Path(__file__).resolve().parents[1] / "data" / "experiment_v1"
#: tests/data/make_experiment_v1_pickles.py wrote it with hpctune 0.1 (old module paths)
FROZEN_PICKLES = FROZEN.with_name("experiment_v1_pickles")


@pytest.mark.parametrize("with_snapshot", [True, False], ids=["snapshot", "logs-only"])
def test_frozen_experiment_loads(tmp_path, with_snapshot):
    exp = tmp_path / "experiment_v1"
    shutil.copytree(FROZEN, exp)
    if not with_snapshot:  # the result logs alone rebuild the experiment
        (exp / "state.json").unlink()
        (exp / "summary.json").unlink()
    grid = tune.ResultGrid.from_path(exp)
    assert len(grid) == 2 and grid.num_terminated == 2 and grid.num_errors == 0
    best = grid.get_best_result()
    assert best.config == {"a": 0.0, "b": 2, "steps": 3}
    assert best.metrics["score"] == pytest.approx(2 + 1 / 3)
    assert best.metrics["training_iteration"] == 3
    assert list(best.metrics_dataframe["training_iteration"]) == [1, 2, 3]
    frame = grid.get_dataframe(filter_metric="score", filter_mode="min")
    assert sorted(frame["config/a"]) == [0.0, 1.0]


def test_pickles_of_0_1_name_the_old_module_paths():
    """The frozen pickles are what this test claims: written before the modules moved."""
    tuner_pkl = (FROZEN_PICKLES / "tuner.pkl").read_bytes()
    for old in (b"hpctune.schedulers.async_hyperband", b"hpctune.stoppers",
                b"hpctune.search.basic_variant"):
        assert old in tuner_pkl


def test_frozen_experiment_with_pickles_restores_and_runs(tmp_path, monkeypatch):
    """Tuner.restore unpickles tuner.pkl, driver-state.pkl and trainable.pkl of hpctune 0.1 and
    runs its errored trial again: old pickles keep loading after a module moves."""
    exp = tmp_path / "experiment_v1_pickles"
    shutil.copytree(FROZEN_PICKLES, exp)
    exp.chmod(0o700)
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    monkeypatch.setenv("FROZEN_OK", "1")  # the trainable fails without it (as it did in 0.1)
    before = tune.ResultGrid.from_path(exp)
    assert sorted(r.error is not None for r in before) == [False, True]
    tuner = tune.Tuner.restore(str(exp), restart_errored=True)
    grid = tuner.fit()
    assert len(grid) == 2 and grid.num_errors == 0 and grid.num_terminated == 2
    rerun = next(r for r in grid if r.config["b"] == 3)
    assert rerun.metrics["training_iteration"] >= 1
    # the class named by its old path is the class at its new home, not a second copy
    assert type(tuner.tune_config.scheduler) is ASHAScheduler
