"""Late errors caught before a byte is written, and values that cannot poison an experiment
(issue 24, deliverables 1 and 2).

Each bad input of the first table used to fail in ``fit()`` after ``experiment.json``,
``trainable.pkl`` and ``tuner.pkl`` existed, so the fixed script was refused ("already holds
an experiment"). Now the error comes first and the experiment directory never exists; and an
experiment whose first ``fit()`` failed or was killed before any trial ran is started over by
the next ``fit()`` or by ``Tuner.restore``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import RunConfig, SlurmConfig, TuneConfig
from hpctune.config.experiment_file import parse_space
from hpctune.core.checkpoint import Checkpoint
from hpctune.errors import ConfigError, ReportError, SearchSpaceError, TrainableError
from hpctune.results.grid import ResultGrid
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.schedulers import PopulationBasedTraining, PopulationBasedTrainingReplay
from hpctune.tune.trainable import with_resources
from hpctune.worker.report_values import check_checkpoint, plain_metrics
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse


def objective(config):
    tune.report({"score": 1})


def fit(trainable=objective, name="late", **kwargs):
    return tune.Tuner(trainable, run_config=RunConfig(name=name, verbose=0), **kwargs).fit()


def root(tmp_path, name="late") -> Path:
    return tmp_path / "results" / name


def optuna_points():
    from hpctune.tune.search.optuna import OptunaSearch

    return OptunaSearch(points_to_evaluate=[{"b": 1}])


# -- deliverable 1: every check before the first write ---------------------------------------------
LATE = [
    ("name creator None", lambda: {"tune_config": TuneConfig(trial_name_creator=lambda t: None)},
     ConfigError, "trial_name_creator=...) returned None"),
    ("name creator raises", lambda: {"tune_config": TuneConfig(trial_name_creator=lambda t: 1 / 0)},
     ConfigError, "trial_name_creator=...) raised ZeroDivisionError"),
    ("dirname creator None", lambda: {"tune_config": TuneConfig(trial_dirname_creator=lambda t: None)},
     ConfigError, "trial_dirname_creator=...) returned None"),
    ("resources cpu str", lambda: {"trainable": with_resources(objective, lambda c: {"cpu": "x"})},
     ConfigError, "resource `cpu` is 'x'"),
    ("resources None", lambda: {"trainable": with_resources(objective, lambda c: None)},
     ConfigError, "got None: return a dict from the resources function"),
    ("resources raise", lambda: {"trainable": with_resources(objective, lambda c: c["missing"])},
     ConfigError, "resources function raised KeyError: 'missing' for the config {'a': 1}"),
    ("gpu on local", lambda: {"trainable": with_resources(objective, {"gpu": 1})},
     ConfigError, "ask for 1 GPU(s) each, but this machine has 0"),
    ("replay missing", lambda: {"tune_config": TuneConfig(
        scheduler=PopulationBasedTrainingReplay("/nope.txt"))},
     ConfigError, "Policy file not found: /nope.txt"),
    ("optuna unknown point", lambda: {"tune_config": TuneConfig(metric="score", mode="max",
                                                                search_alg=optuna_points())},
     SearchSpaceError, "points_to_evaluate names 'b', which is not in the search space"),
]


@pytest.mark.parametrize("make, error, phrase", [pytest.param(*c[1:], id=c[0]) for c in LATE])
def test_a_late_error_comes_before_anything_is_written(tmp_path, monkeypatch, make, error, phrase):
    monkeypatch.setattr("hpctune.backends.local.detect_gpus", lambda: [])
    with pytest.raises(error) as raised:
        kwargs = make()
        fit(kwargs.pop("trainable", objective), param_space={"a": tune.choice([1])}, **kwargs)
    assert phrase in str(raised.value)
    assert not root(tmp_path).exists()


def test_a_garbage_policy_file_is_refused_before_anything(tmp_path):
    policy = tmp_path / "policy.txt"
    policy.write_text('["a", "b", 1, 1, "not a dict", {}]\n')
    with pytest.raises(ConfigError, match="Could not read PBT policy file .*not dicts"):
        fit(tune_config=TuneConfig(scheduler=PopulationBasedTrainingReplay(str(policy))))
    assert not root(tmp_path).exists()


def test_pbt_refuses_a_grid_search_mutation():
    with pytest.raises(ConfigError, match=r"hyperparam_mutations\['lr'\]` is a tune.grid_search.*"
                                          r"'lr': \[0.1, 0.2\]"):
        PopulationBasedTraining(hyperparam_mutations={"lr": tune.grid_search([0.1, 0.2])})


def two_args(config, extra):
    pass


class StepWithArgument(tune.Trainable):
    def step(self, extra):
        return {}


@pytest.mark.parametrize("trainable, phrase", [
    (two_args, "two_args(config, extra) cannot be called the way hpctune calls it"),
    (lambda: None, "cannot be called the way hpctune calls it"),
    (StepWithArgument, "StepWithArgument.step(self, extra) cannot be called"),
])
def test_trainable_signatures_are_checked_at_once(tmp_path, trainable, phrase):
    with pytest.raises(TrainableError, match="def .*: ...") as raised:
        tune.Tuner(trainable)
    assert phrase in str(raised.value)


def test_good_signatures_pass():
    def with_default(config, checkpoint_dir=None):
        pass

    def star(*args, **kwargs):
        pass

    for trainable in (with_default, star, tune.with_parameters(two_args, extra=1)):
        tune.Tuner(trainable)


@pytest.mark.parametrize("key", ["array", "output", "error", "job-name", "job_name", "J", "comment",
                                 "signal", "open-mode", "wckey"])
def test_sbatch_options_may_not_replace_hpctunes_directives(key):
    with pytest.raises(ConfigError, match=f"sets '{key}', a directive hpctune writes itself"):
        SlurmConfig(sbatch_options={key: "x"})


def test_other_sbatch_options_pass():
    SlurmConfig(sbatch_options={"reservation": "ml", "gres": "custom:1", "mail-type": "FAIL"})


@pytest.mark.parametrize("entry, phrase", [
    ({"lr": {"logunifrom": {"lower": 1e-4, "upper": 1}}}, "unknown search-space primitive `logunifrom`"),
    ({"lr": {"sample_from": "lambda spec: 1"}}, "`sample_from` takes a Python function"),
    ({"lr": {"uniform": [0, 1], "choice": [1, 2]}}, "names the primitive `uniform` together with `choice`"),
    ({"lr": {"choice": [1, 2], "note": "x"}}, "names the primitive `choice` together with `note`"),
])
def test_experiment_file_tables_that_are_no_primitive_are_errors(entry, phrase):
    with pytest.raises(ConfigError) as raised:
        parse_space(entry, "param_space")
    assert phrase in str(raised.value) and "param_space.lr" in str(raised.value)


def test_plain_nested_tables_stay_constants():
    assert parse_space({"opt": {"name": "adam", "betas": [0.9, 0.99]}}, "p") == {
        "opt": {"name": "adam", "betas": [0.9, 0.99]}}


# -- a failed or killed first fit() is started over ----------------------------------------------------
def test_a_fit_that_failed_before_its_first_trial_can_be_rerun(tmp_path):
    """The searcher's own error (not probed: a custom searcher) comes after the files exist."""
    with pytest.raises(SearchSpaceError):
        fit(param_space={"a": tune.uniform(0, 1)},
            tune_config=TuneConfig(metric="score", mode="max", search_alg=optuna_points_late()))
    exp = ExperimentDir(root(tmp_path))
    assert exp.experiment_path.exists() and not exp.has_started()
    grid = fit(param_space={"a": tune.uniform(0, 1)})  # the fixed script, same name
    assert len(grid) == 1 and grid[0].metrics["score"] == 1
    assert exp.has_started() and len(exp.trial_ids()) == 1


def optuna_points_late():
    """A searcher whose error shows only at its first suggestion."""
    from hpctune.tune.search import Searcher

    class Late(Searcher):
        def suggest(self, trial_id):
            raise SearchSpaceError("late searcher error")

    return Late()


class OneConfig(tune.search.Searcher):
    """A custom searcher: its configs cannot be probed before the run."""

    def suggest(self, trial_id):
        if getattr(self, "given", False):
            return tune.search.Searcher.FINISHED
        self.given = True
        return {"n": 2}


def test_restore_of_an_experiment_that_never_ran_starts_it_with_the_fixed_trainable(tmp_path):
    broken = with_resources(objective, lambda config: {"cpu": config["m"]})  # no key "m"
    with pytest.raises(ConfigError, match="resources function raised KeyError: 'm'"):
        fit(broken, tune_config=TuneConfig(search_alg=OneConfig()))
    assert not ExperimentDir(root(tmp_path)).has_started()
    fixed = with_resources(objective, lambda config: {"cpu": config["n"]})
    grid = tune.Tuner.restore(str(root(tmp_path)), fixed).fit()
    assert len(grid) == 1 and grid.num_errors == 0 and grid[0].config == {"n": 2}


@pytest.mark.parametrize("left", [
    ["trainable.pkl"],  # killed before tuner.pkl
    ["trainable.pkl", "tuner.pkl"],  # killed before experiment.json
    ["trainable.pkl", "tuner.pkl", "experiment.json", "state.json", "summary.json"],  # before a launch
])
def test_a_driver_killed_during_the_first_fit_leaves_a_rerunnable_directory(tmp_path, left):
    fit()
    exp = ExperimentDir(root(tmp_path))
    for path in [*exp.trials_dir.iterdir(), *exp.jobs_dir.iterdir()]:
        __import__("shutil").rmtree(path) if path.is_dir() else path.unlink()
    for path in exp.root.iterdir():
        if path.is_file() and path.name not in left and path.name != ".driver.lock":
            path.unlink()
    assert fit() is not None  # accepted, not "already holds an experiment"
    assert len(exp.trial_ids()) == 1


@pytest.mark.parametrize("keep_job_logs", [True, False])
def test_an_experiment_that_ran_a_trial_is_still_protected(tmp_path, keep_job_logs):
    fit()
    if not keep_job_logs:  # a trial's result log alone says it ran
        for path in ExperimentDir(root(tmp_path)).jobs_dir.iterdir():
            path.unlink()
    with pytest.raises(ConfigError, match="already holds an experiment: continue it with"):
        fit()


# -- deliverable 2: values the driver cannot store and read back ---------------------------------------
@pytest.mark.parametrize("metrics, where", [
    ({"big": 2**1024}, "`big`"),
    ({"nested": {"x": [1, -(2**2000)]}}, "`nested/x[1]`"),
])
def test_report_refuses_ints_beyond_float_range(metrics, where):
    with pytest.raises(ReportError, match=re.escape(f"the value of {where} is an int of")):
        plain_metrics(metrics)


def test_report_keeps_large_ints_that_fit():
    assert plain_metrics({"n": 2**1023, "m": [2**100]}) == {"n": 2**1023, "m": [2**100]}


def test_report_refuses_checkpoints_that_are_not_directories(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ReportError, match="is a file, not a directory"):
        check_checkpoint(Checkpoint(tmp_path / "file"))
    with pytest.raises(ReportError, match="does not exist"):
        check_checkpoint(Checkpoint(tmp_path / "missing"))
    with pytest.raises(ReportError, match="pass Checkpoint.from_directory"):
        check_checkpoint("some/path")
    check_checkpoint(Checkpoint(tmp_path))
    check_checkpoint(None)


def reports_file_checkpoint(config):
    import tempfile

    path = tempfile.mkstemp()[1]
    tune.report({"score": 1}, checkpoint=Checkpoint(path))


def test_a_file_checkpoint_fails_the_trial_without_an_empty_checkpoint(tmp_path):
    result = fit(reports_file_checkpoint)[0]
    assert "is a file, not a directory" in str(result.error)
    assert not list(Path(result.path).glob("checkpoint_*"))


def test_every_reader_survives_a_huge_int_from_an_old_log(tmp_path, capsys):
    def two(config):
        for i in range(2):
            tune.report({"score": i, "big": 1234567})

    fit(two, tune_config=TuneConfig(metric="score", mode="max"))
    huge = str(2**1100)
    exp = root(tmp_path)
    for path in [*exp.glob("trials/*/result.jsonl"), exp / "state.json", exp / "summary.json"]:
        path.write_text(path.read_text().replace("1234567", huge).replace('"score": 1', f'"score": {huge}'))
    grid = ResultGrid.from_path(exp)
    assert grid[0].metrics["big"] == 2**1100 and grid.get_best_result().metrics["score"] in (0, 2**1100)
    for argv in (["ls"], ["status", "late"], ["trials", "late"], ["best", "late"],
                 ["report", "late", "-o", str(tmp_path / "r.html")]):
        code, _, err = run(capsys, *argv)
        assert code == 0, (argv, err)
    assert json.loads(run(capsys, "best", "late", "--json")[1])["value"] in (0, 1)  # a finite one
    assert tune.Tuner.restore(str(exp), two).fit().num_errors == 0
