"""The 41 "poor answers" of issue 24, tabled: each input now gets a clear error before anything
is written (``ERROR``), or behaves correctly and says what it does (``RIGHT``).

The adversarial run behind issue 24 named its poor answers by kind: settings silently ignored,
raw tracebacks, misleading messages, checks missing before launch, runs that go on for ever
without a word, flattened names that shadow a value. The issue lists examples of each; this
table holds every example it names and the cases of the same kinds found by probing the same
surfaces (Python API, experiment directories, command line). Each row is one test: ``ERROR``
rows assert our error class, a phrase of the message that names the problem and the fix, and
that no experiment directory was created; ``RIGHT`` rows assert the behaviour itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from hpctune import tune
from hpctune.config import CheckpointConfig, RunConfig, SlurmConfig, TuneConfig
from hpctune.errors import (
    ConfigError,
    HpctuneError,
    ReportError,
    SearchSpaceError,
    StorageError,
    TrainableError,
)
from hpctune.results.grid import ResultGrid
from hpctune.tune.search import BasicVariantGenerator, Searcher
from hpctune.tune.stopper import Stopper
from tests.unit.cli_env import cli_env, run  # noqa: F401 - cli_env is autouse

ERROR, RIGHT = "clear error before anything is written", "correct behaviour"


def objective(config):
    tune.report({"score": config.get("a", 1)})


def fit(name="poor", trainable=objective, run_config=None, **kwargs):
    run_config = run_config or RunConfig(name=name, verbose=0)
    return tune.Tuner(trainable, run_config=run_config, **kwargs).fit()


def storage(tmp_path) -> Path:
    return tmp_path / "results"


def nothing_written(tmp_path) -> None:
    assert not (storage(tmp_path) / "poor").exists()


def finished(name="done") -> Path:
    fit(
        name,
        param_space={"a": tune.grid_search([1, 2])},
        tune_config=TuneConfig(metric="score", mode="max"),
    )
    return Path(tune.ResultGrid.from_path(Path.cwd() / "results" / name).experiment_path)


class NoTrials(Searcher):
    def suggest(self, trial_id):
        return Searcher.FINISHED


def empty(name="empty") -> Path:
    fit(name, tune_config=TuneConfig(search_alg=NoTrials()))
    return Path.cwd() / "results" / name


def before_its_trial(error: type, phrase: str, make: Callable[[], object]) -> Callable:
    """An ERROR row met during the run (a custom searcher's suggestion cannot be known before):
    raised before its trial exists, so the experiment is not started and the fixed script
    reruns under the same name (``ExperimentDir.has_started``)."""

    def check(tmp_path, capsys):
        from hpctune.storage.experiment import ExperimentDir

        with pytest.raises(error) as raised:
            make()
        assert phrase in str(raised.value), str(raised.value)
        exp = ExperimentDir(storage(tmp_path) / "poor")
        assert exp.trial_ids() == [] and not exp.has_started()

    return check


def raises(error: type, phrase: str, make: Callable[[], object]) -> Callable:
    """An ERROR row: ``make()`` raises ``error`` whose message holds ``phrase``; nothing is written."""

    def check(tmp_path, capsys):
        with pytest.raises(error) as raised:
            make()
        assert phrase in str(raised.value), str(raised.value)
        nothing_written(tmp_path)

    return check


def cli_refuses(
    phrase: str,
    argv: Callable[[Path], list[str]],
    setup: Callable[[], object] = lambda: None,
    code: int = 1,
    unwritten: str | None = None,
) -> Callable:
    """An ERROR row of the command line: exit ``code``, ``phrase`` on stderr, no traceback."""

    def check(tmp_path, capsys):
        setup()
        capsys.readouterr()
        got, _, err = run(capsys, *argv(tmp_path))
        assert got == code and phrase in err and "Traceback" not in err, err
        if unwritten:
            assert not (tmp_path / unwritten).exists()

    return check


# -- the user's code raising in the driver: the user's exception, with a note on where and what next
def user_code_raises(make_kwargs: Callable[[], dict], hook: str) -> Callable:
    def check(tmp_path, capsys):
        with pytest.raises(KeyError) as raised:
            fit(**make_kwargs())
        notes = " ".join(getattr(raised.value, "__notes__", []))
        if hasattr(raised.value, "add_note"):  # Python >= 3.11
            assert f"raised by your code, {hook}() at {__file__}" in notes
            assert "Tuner.restore(" in notes and str(storage(tmp_path) / "poor") in notes

    return check


class BadSearcher(Searcher):
    def suggest(self, trial_id):
        raise KeyError("searcher bug")


class BadStopper(Stopper):
    def __call__(self, trial_id, result):
        raise KeyError("stopper bug")

    def stop_all(self):
        return False


class BadScheduler(tune.schedulers.FIFOScheduler):
    def on_trial_result(self, *args):
        raise KeyError("scheduler bug")


class BadCallback(tune.Callback):
    def on_trial_result(self, **info):
        raise KeyError("callback bug")


class Gives(Searcher):
    def __init__(self, value):
        super().__init__()
        self.value = value

    def suggest(self, trial_id):
        return self.value


def deep(levels: int) -> dict:
    space: object = 1
    for _ in range(levels):
        space = {"a": space}
    return space  # type: ignore[return-value]


def a_file(tmp_path_name: str = "a_file") -> str:
    path = Path.cwd() / tmp_path_name
    path.write_text("not a directory")
    return str(path)


# -- RIGHT rows -----------------------------------------------------------------------------------------
def mode_without_metric(tmp_path, capsys):
    """Kept, as in Ray: get_best_result(metric=...) ranks with TuneConfig's mode."""
    grid = fit(param_space={"a": tune.grid_search([3, 1, 2])}, tune_config=TuneConfig(mode="min"))
    assert grid.get_best_result(metric="score").metrics["score"] == 1


def endless_is_said(tmp_path, capsys):
    """num_samples=-1 without a stop runs as asked (Ray too), but says so before the run."""
    from hpctune.tune.preflight import tell_if_endless

    tuner = tune.Tuner(
        objective, param_space={"a": tune.uniform(0, 1)}, tune_config=TuneConfig(num_samples=-1)
    )
    tell_if_endless(tuner)
    err = capsys.readouterr().err
    assert "num_samples=-1 with no stop criterion or time budget" in err and "hpctune cancel" in err
    tell_if_endless(
        tune.Tuner(
            objective,
            tune_config=TuneConfig(num_samples=-1),
            run_config=RunConfig(stop={"training_iteration": 3}),
        )
    )
    assert capsys.readouterr().err == ""  # a stop criterion ends it: nothing to say


def vast_grid_is_said(tmp_path, capsys):
    from hpctune.tune.preflight import tell_if_endless

    space = {f"k{i}": tune.grid_search(list(range(10))) for i in range(10)}
    tell_if_endless(tune.Tuner(objective, param_space=space))
    assert "this search has 1e+10 trials" in capsys.readouterr().err
    tell_if_endless(tune.Tuner(objective, param_space={"k": tune.grid_search(list(range(10)))}))
    assert capsys.readouterr().err == ""


def report_collision(tmp_path, capsys):
    """report() refuses two metrics that flatten to one name: the trial errs naming the key."""

    def reports(config):
        tune.report({"a/b": 1, "a": {"b": 2}})

    grid = fit(trainable=reports)
    assert "two metrics are both named `a/b`" in str(grid[0].error), (
        grid[0].error,
        grid[0].metrics,
    )
    assert grid.num_errors == 1
    from hpctune.worker.report_values import plain_metrics

    with pytest.raises(ReportError, match="`a/b`"):
        plain_metrics({"a/b": 1, "a": {"b": 2}})


def report_of_empty(tmp_path, capsys):
    root = empty()
    code, out, err = run(capsys, "report", str(root))
    assert code == 0 and "0 trials of empty" in out, err


def status_of_empty(tmp_path, capsys):
    root = empty()
    code, out, err = run(capsys, "status", str(root))
    assert code == 0 and "Number of trials: 0 (none yet)" in out, err


def trials_of_empty(tmp_path, capsys):
    root = empty()
    code, out, err = run(capsys, "trials", str(root))
    assert code == 0 and "No trials in empty yet" in out, err


def cancel_finished(tmp_path, capsys):
    root = finished()
    code, out, err = run(capsys, "cancel", str(root))
    assert code == 0 and "Nothing to cancel" in out + err


def dirname_with_slash(tmp_path, capsys):
    grid = fit(tune_config=TuneConfig(trial_dirname_creator=lambda t: "a/b"))
    assert grid.num_errors == 0
    names = {p.name for p in (storage(tmp_path) / "poor").iterdir()}
    assert "a_b" in names and "a" not in names  # one component, never a nested path


def stop_key_never_reported(tmp_path, capsys):
    """As Ray: the first result without the stop key is an error naming it and the keys reported."""
    with pytest.raises(ConfigError, match="Stopping criterion `nope` is not in trial"):
        fit(run_config=RunConfig(name="poor", verbose=0, stop={"nope": 3}))


def metric_never_reported(tmp_path, capsys):
    with pytest.raises(ConfigError, match="did not include the specified metric"):
        fit(tune_config=TuneConfig(metric="nope", mode="max"))


P = [  # (case, verdict, test)
    # -- settings silently ignored
    ("mode without metric", RIGHT, mode_without_metric),
    (
        "callbacks=[object()]",
        ERROR,
        raises(ConfigError, "with hooks hpctune calls", lambda: RunConfig(callbacks=[object()])),
    ),
    (
        "checkpoint_at_end with a function trainable",
        ERROR,
        raises(
            ConfigError,
            "CheckpointConfig(checkpoint_at_end=True) needs a class trainable",
            lambda: fit(
                run_config=RunConfig(
                    name="poor",
                    verbose=0,
                    checkpoint_config=CheckpointConfig(checkpoint_at_end=True),
                )
            ),
        ),
    ),
    (
        "checkpoint_frequency with a function trainable",
        ERROR,
        raises(
            ConfigError,
            "CheckpointConfig(checkpoint_frequency=2) needs a class trainable",
            lambda: fit(
                run_config=RunConfig(
                    name="poor",
                    verbose=0,
                    checkpoint_config=CheckpointConfig(checkpoint_frequency=2),
                )
            ),
        ),
    ),
    (
        'signal="NOTASIGNAL"',
        ERROR,
        raises(
            ConfigError,
            "SlurmConfig(signal='NOTASIGNAL') is not a signal",
            lambda: SlurmConfig(signal="NOTASIGNAL"),
        ),
    ),
    (
        "a second SlurmConfig",
        ERROR,
        raises(
            ConfigError,
            "Two SlurmConfigs",
            lambda: tune.Tuner(
                objective,
                run_config=RunConfig(slurm=SlurmConfig(partition="a")),
                slurm_config=SlurmConfig(partition="b"),
            ),
        ),
    ),
    (
        "unknown key in points_to_evaluate (BasicVariantGenerator)",
        ERROR,
        raises(
            SearchSpaceError,
            "points_to_evaluate[0] names 'zz', which is not in the search space",
            lambda: fit(
                param_space={"a": tune.uniform(0, 1)},
                tune_config=TuneConfig(
                    search_alg=BasicVariantGenerator(points_to_evaluate=[{"zz": 1}])
                ),
            ),
        ),
    ),
    (
        "unknown key in points_to_evaluate (OptunaSearch)",
        ERROR,
        raises(
            SearchSpaceError,
            "points_to_evaluate names 'zz'",
            lambda: fit(
                param_space={"a": tune.uniform(0, 1)},
                tune_config=TuneConfig(
                    metric="score",
                    mode="max",
                    search_alg=__import__(
                        "hpctune.tune.search.optuna", fromlist=["x"]
                    ).OptunaSearch(points_to_evaluate=[{"zz": 1}]),
                ),
            ),
        ),
    ),
    # -- raw tracebacks
    (
        "a 300-character name",
        ERROR,
        raises(ConfigError, "more than the filesystem takes", lambda: fit(name="x" * 300)),
    ),
    (
        "storage_path that is a file",
        ERROR,
        raises(
            StorageError,
            "something that is not a directory is there",
            lambda: fit(run_config=RunConfig(name="poor", verbose=0, storage_path=a_file())),
        ),
    ),
    (
        "a 3,000-deep space",
        ERROR,
        raises(
            ConfigError, "nested more than 100 levels deep", lambda: fit(param_space=deep(3000))
        ),
    ),
    (
        "a user exception from a searcher",
        RIGHT,
        user_code_raises(lambda: {"tune_config": TuneConfig(search_alg=BadSearcher())}, "suggest"),
    ),
    (
        "a user exception from a stopper",
        RIGHT,
        user_code_raises(
            lambda: {"run_config": RunConfig(name="poor", verbose=0, stop=BadStopper())}, "__call__"
        ),
    ),
    (
        "a user exception from a scheduler",
        RIGHT,
        user_code_raises(
            lambda: {"tune_config": TuneConfig(scheduler=BadScheduler())}, "on_trial_result"
        ),
    ),
    (
        "a user exception from a callback",
        RIGHT,
        user_code_raises(
            lambda: {"run_config": RunConfig(name="poor", verbose=0, callbacks=[BadCallback()])},
            "on_trial_result",
        ),
    ),
    (
        "hpctune export of an empty experiment",
        ERROR,
        cli_refuses(
            "has no trials yet: nothing to export",
            lambda tmp: ["export", "--hdf5", str(tmp / "out.h5"), "empty"],
            setup=empty,
            unwritten="out.h5",
        ),
    ),
    # -- misleading messages, checks missing before launch
    (
        "hpctune ls /etc/passwd",
        ERROR,
        cli_refuses("/etc/passwd is not a directory", lambda tmp: ["ls", "/etc/passwd"]),
    ),
    (
        "hpctune ls of a storage path that does not exist",
        ERROR,
        cli_refuses("does not exist: no experiments yet", lambda tmp: ["ls", str(tmp / "nowhere")]),
    ),
    (
        "hpctune status of a plain directory",
        ERROR,
        cli_refuses("not an experiment directory", lambda tmp: ["status", str(tmp)]),
    ),
    (
        "hpctune logs of an unknown trial",
        ERROR,
        cli_refuses(
            "matches no trial; trial ids look like",
            lambda tmp: ["logs", "done", "nosuch"],
            setup=finished,
        ),
    ),
    (
        "hpctune trials --sort of an unknown column",
        ERROR,
        cli_refuses(
            "unknown column 'nope'",
            lambda tmp: ["trials", "done", "--sort", "nope"],
            setup=finished,
        ),
    ),
    (
        "hpctune best of an experiment without results",
        ERROR,
        cli_refuses(
            "No trial reported a finite `score`",
            lambda tmp: ["best", "empty", "--metric", "score", "--mode", "max"],
            setup=empty,
        ),
    ),
    (
        "hpctune plot without a metric",
        ERROR,
        cli_refuses(
            "names no metric: pass --metric NAME", lambda tmp: ["plot", "empty"], setup=empty
        ),
    ),
    (
        "ResultGrid.from_path(empty).get_best_result",
        ERROR,
        raises(
            HpctuneError,
            "No trial reported a finite value of `score`",
            lambda: ResultGrid.from_path(empty()).get_best_result("score", "max"),
        ),
    ),
    (
        "a trainable whose signature cannot be called",
        ERROR,
        raises(
            TrainableError,
            "cannot be called the way hpctune calls it",
            lambda: tune.Tuner(lambda a, b: None),
        ),
    ),
    (
        "an unknown resource key",
        ERROR,
        raises(
            ConfigError,
            "Unknown resource key(s) ['gpus']",
            lambda: fit(trainable=tune.with_resources(objective, {"cpu": 1, "gpus": 1})),
        ),
    ),
    (
        "a config value that cannot be pickled",
        ERROR,
        raises(ConfigError, "config['lock']", lambda: fit(param_space={"lock": threading.Lock()})),
    ),
    (
        "with_parameters of an unpicklable object",
        ERROR,
        raises(
            TrainableError,
            "cannot be pickled",
            lambda: fit(trainable=tune.with_parameters(objective, lock=threading.Lock())),
        ),
    ),
    (
        "Searcher.suggest() returning a non-dict",
        ERROR,
        before_its_trial(
            ConfigError,
            "Gives.suggest(",
            lambda: fit(tune_config=TuneConfig(search_alg=Gives([1]))),
        ),
    ),
    (
        "Searcher.suggest() returning a dict with non-str keys",
        ERROR,
        before_its_trial(
            ConfigError,
            "is not a string",
            lambda: fit(tune_config=TuneConfig(search_alg=Gives({1: 2}))),
        ),
    ),
    # -- runs that go on for ever without a word
    ("num_samples=-1 with no stopper", RIGHT, endless_is_said),
    ("a 10^10-point grid", RIGHT, vast_grid_is_said),
    # -- flattened names that shadow a value
    ("a flattened-name collision in report()", RIGHT, report_collision),
    (
        "a flattened-name collision in param_space",
        ERROR,
        raises(
            ConfigError,
            "two entries both named `a/b`",
            lambda: fit(param_space={"a/b": 1, "a": {"b": tune.choice([2])}}),
        ),
    ),
    # -- answers that are right, kept so
    ("hpctune report of an empty experiment", RIGHT, report_of_empty),
    ("hpctune status of an empty experiment", RIGHT, status_of_empty),
    ("hpctune trials of an empty experiment", RIGHT, trials_of_empty),
    ("hpctune cancel of a finished experiment", RIGHT, cancel_finished),
    ("trial_dirname_creator returning 'a/b'", RIGHT, dirname_with_slash),
    ("a stop criterion never reported", RIGHT, stop_key_never_reported),
    ("a metric never reported", RIGHT, metric_never_reported),
]


@pytest.mark.parametrize("verdict, check", [pytest.param(v, c, id=case) for case, v, c in P])
def test_poor_answer(tmp_path, capsys, verdict, check):
    check(tmp_path, capsys)


def test_the_table_holds_the_41_cases_with_their_verdicts():
    assert len(P) == 41 and len({case for case, _, _ in P}) == 41
    counts = {verdict: sum(v == verdict for _, v, _ in P) for verdict in (ERROR, RIGHT)}
    assert counts == {ERROR: 26, RIGHT: 15}, counts
