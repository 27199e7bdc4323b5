"""Ray's last smaller cases of issue 22 run as a Ray user writes them, as local processes:
``Result.path`` under ``trial_dirname_creator``, ``Tuner.restore(path, trainable,
param_space=...)`` and a PAUSE of a function trainable whose result carries no checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpctune import tune


@pytest.fixture(autouse=True)
def local_backend(monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "local")


def named(config):
    tune.report({"acc": config["x"] / 10})


# -- Result.path under trial_dirname_creator ------------------------------------------------------
def test_result_path_is_the_directory_trial_dirname_creator_named(tmp_path):
    """Ray: ``trial_dirname_creator`` "generates the trial directory name"; the trial's path,
    Result.path, is that directory under the experiment's."""
    tuner = tune.Tuner(
        named, param_space={"x": tune.grid_search([1, 2])},
        tune_config=tune.TuneConfig(trial_dirname_creator=lambda t: f"trial_x={t.config['x']}",
                                    metric="acc", mode="max"),
        run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0),
    )
    grid = tuner.fit()
    root = tmp_path / "exp"
    expected = {1: str(root / "trial_x=1"), 2: str(root / "trial_x=2")}
    for results in (grid, tune.ResultGrid.from_path(root), tune.Tuner.restore(str(root), named).get_results()):
        assert {r.config["x"]: r.path for r in results} == expected
        assert all((Path(r.path) / "result.jsonl").exists() and r.log_dir == Path(r.path) for r in results)
        assert {r.config["x"]: r.metrics_dataframe["acc"].tolist() for r in results} == {1: [0.1], 2: [0.2]}
    analysis = tune.ExperimentAnalysis(str(root))
    assert analysis.get_best_logdir("acc", "max") == expected[2]
    assert sorted(analysis.dataframe()["logdir"]) == sorted(expected.values())
    assert sorted(analysis.get_all_configs()) == sorted(expected.values())
    assert analysis.get_best_checkpoint(expected[2], "acc", "max") is None  # found by its named path


def test_without_a_dirname_creator_result_path_is_the_trials_directory(tmp_path):
    grid = tune.Tuner(named, param_space={"x": 1},
                      run_config=tune.RunConfig(name="exp", storage_path=str(tmp_path), verbose=0)).fit()
    assert Path(grid[0].path).parent == tmp_path / "exp" / "trials"
