"""An experiment written by hpctune 0.1 (result log schema 1) must stay readable."""

import shutil
from pathlib import Path

import pytest

from hpctune import tune

FROZEN = Path(__file__).resolve().parents[1] / "data" / "experiment_v1"


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
