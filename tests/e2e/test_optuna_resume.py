"""Optuna search on the lab, across a driver kill: the same study continues."""

import textwrap

import optuna  # noqa: F401 - a test dependency: a missing optuna fails here
import pytest

from hpctune import tune
from tests.conftest import REPO_ROOT, unique_name
from tests.e2e import trainables
from tests.e2e.chaos import kill_mid_search_and_restore

DRIVER = """
import sys
sys.path.insert(0, {repo!r})
from hpctune import tune
from hpctune.tune.search.optuna import OptunaSearch
from tests.e2e import trainables
tune.Tuner(
    trainables.slow_quadratic,
    param_space={{"x": tune.uniform(0, 1), "y": tune.uniform(0, 1), "sleep": 0.4}},
    tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=10, max_concurrent_trials=3,
                                search_alg=OptunaSearch(seed=7)),
    run_config=tune.RunConfig(name={name!r}, storage_path={storage!r}, verbose=0,
                              slurm=tune.SlurmConfig(poll_interval_s=0.5)),
).fit()
"""


@pytest.mark.slurm
def test_optuna_study_continues_after_driver_kill(tmp_path, monkeypatch):
    monkeypatch.setenv("HPCTUNE_BACKEND", "slurm")
    script = tmp_path / "driver.py"
    name = unique_name("optuna")
    script.write_text(textwrap.dedent(DRIVER.format(repo=str(REPO_ROOT), storage=str(tmp_path),
                                                    name=name)))
    restored, grid = kill_mid_search_and_restore(script, tmp_path / name, trainables.slow_quadratic,
                                                 tmp_path)
    configs = {(r.config["x"], r.config["y"]) for r in grid}
    study = restored.tune_config.search_alg.study
    finished = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(finished) == 10, [t.state.name for t in study.trials]
    assert sorted(t.params["x"] for t in finished) == sorted(x for x, _ in configs)


def test_restore_from_an_experiment_directory(tmp_path, monkeypatch):
    """Ray's Searcher.restore_from_dir(experiment_dir): the study of a finished experiment."""
    from hpctune.tune.search.optuna import OptunaSearch

    monkeypatch.setenv("HPCTUNE_BACKEND", "local")
    grid = tune.Tuner(
        trainables.slow_quadratic,
        param_space={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1), "sleep": 0.01},
        tune_config=tune.TuneConfig(metric="loss", mode="min", num_samples=4,
                                    search_alg=OptunaSearch(seed=1)),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    ).fit()
    searcher = OptunaSearch(space={"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)},
                            metric="loss", mode="min")
    searcher.restore_from_dir(grid.experiment_path)
    finished = [t for t in searcher.study.trials if t.state.name == "COMPLETE"]
    assert sorted(t.params["x"] for t in finished) == sorted(r.config["x"] for r in grid)
