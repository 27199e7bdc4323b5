"""Optuna search on the lab, across a driver kill: the same study continues."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna  # noqa: F401 - a test dependency: a missing optuna fails here
import pytest

from hpctune import tune
from hpctune.storage.result_log import read_events
from tests.conftest import REPO_ROOT, unique_name, wait_for
from tests.e2e import trainables

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
    driver = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path)
    exp = tmp_path / name

    def three_done():
        state = exp / "state.json"
        trials = json.loads(state.read_text())["trials"] if state.exists() else []
        return sum(1 for t in trials if t["status"] == "TERMINATED") >= 3

    wait_for(three_done, timeout=120)
    driver.send_signal(signal.SIGKILL)
    driver.wait()

    restored = tune.Tuner.restore(str(exp), trainables.slow_quadratic)
    grid = restored.fit()
    assert len(grid) == 10 and grid.num_terminated == 10, [str(e) for e in grid.errors]
    configs = {(r.config["x"], r.config["y"]) for r in grid}
    assert len(configs) == 10, "a suggestion was repeated"
    for result in grid:
        starts = [e for e in read_events(Path(result.path) / "result.jsonl") if e["event"] == "start"]
        assert len(starts) == 1, "a trial was run twice"
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
