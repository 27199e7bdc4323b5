"""``hpctune submit`` on a directory whose first run failed before any trial started (issue 24):
the fixed file or script reruns with the same name, as ``Tuner.fit()`` does; an experiment
that ran a trial is still refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hpctune.storage.experiment import ExperimentDir
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse

TRAIN = (
    "from hpctune import tune\n\ndef objective(config):\n    tune.report({'score': config['a']})\n"
)

SCRIPT = '''import os
from hpctune import tune
from hpctune.tune.search import Searcher
from train import objective


class Late(Searcher):
    """Fails at its first suggestion while BROKEN is set (after the experiment's files exist)."""

    def suggest(self, trial_id):
        if os.environ.get("BROKEN"):
            raise ValueError("late searcher error")
        if getattr(self, "given", False):
            return Searcher.FINISHED
        self.given = True
        return {"a": 2}


tune.Tuner(objective, tune_config=tune.TuneConfig(search_alg=Late(), metric="score", mode="max"),
           run_config=tune.RunConfig(name="again", verbose=0)).fit()
'''


def results(tmp_path: Path, name: str) -> ExperimentDir:
    return ExperimentDir(tmp_path / "results" / name)


def test_a_script_whose_first_run_failed_before_any_trial_reruns(tmp_path, capsys, monkeypatch):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "run.py").write_text(SCRIPT)
    monkeypatch.setenv("BROKEN", "1")
    with pytest.raises(ValueError, match="late searcher error"):  # the searcher's own error
        run(capsys, "submit", "run.py")
    exp = results(tmp_path, "again")
    assert exp.experiment_path.exists() and not exp.has_started()  # files written, no trial ran

    monkeypatch.delenv("BROKEN")
    code, out, err = run(capsys, "submit", "run.py")  # the fixed script, same name
    assert code == 0, err
    assert "already holds an experiment" not in err
    summary = json.loads(exp.summary_path.read_text())
    assert summary["status"] == "finished" and summary["num_trials"] == 1
    assert summary["best"]["config"] == {"a": 2}

    code, _, err = run(capsys, "submit", "run.py")  # now it ran a trial: protected
    assert code == 1 and "already holds an experiment" in err and "hpctune resume again" in err


@pytest.mark.parametrize(
    "left",
    [
        ["trainable.pkl"],  # killed before tuner.pkl
        [
            "trainable.pkl",
            "tuner.pkl",
            "experiment.json",
            "state.json",
            "summary.json",
        ],  # before a launch
    ],
)
def test_an_experiment_file_reruns_over_a_first_run_killed_before_any_trial(tmp_path, capsys, left):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "exp.toml").write_text(
        'trainable = "train.py:objective"\nname = "again"\nmetric = "score"\n'
        'mode = "max"\n[param_space]\na = {grid_search = [1, 2]}\n'
    )
    code, _, err = run(capsys, "submit", "exp.toml")
    assert code == 0, err
    exp = results(tmp_path, "again")
    for path in [
        *exp.trials_dir.iterdir(),
        *exp.jobs_dir.iterdir(),
    ]:  # as a driver killed before a launch
        __import__("shutil").rmtree(path) if path.is_dir() else path.unlink()
    for path in exp.root.iterdir():
        if path.is_file() and path.name not in left and path.name != ".driver.lock":
            path.unlink()
    assert not exp.has_started()

    code, out, err = run(capsys, "submit", "exp.toml")
    assert code == 0, err
    assert "2 trials: 2 terminated" in out
    assert len(exp.trial_ids()) == 2


def test_a_detached_submit_reruns_over_an_unstarted_first_run_too(tmp_path, capsys, monkeypatch):
    (tmp_path / "train.py").write_text(TRAIN)
    (tmp_path / "run.py").write_text(SCRIPT)
    monkeypatch.setenv("BROKEN", "1")
    with pytest.raises(ValueError):
        run(capsys, "submit", "run.py")
    monkeypatch.delenv("BROKEN")
    code, out, err = run(capsys, "submit", "--detach", "--dry-run", "run.py")
    assert code == 0, err
    assert "already holds an experiment" not in err and "#SBATCH" in out
