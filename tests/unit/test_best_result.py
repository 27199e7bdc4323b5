"""Which trial is best: get_best_result's scopes (Ray's last, avg, last-k-avg, all), ties, NaN."""

import math

import pytest

from hpctune.core.metrics import MISSING, best_trial, flat_value, metric_value
from hpctune.errors import ConfigError, HpctuneError
from hpctune.results.grid import ResultGrid
from hpctune.tune.experiment.trial import Trial

# loss per iteration (16 each); under mode "min" each scope picks another trial:
#         last   avg    last-5-avg  last-10-avg  all (best ever)
#   a     9      8.44   9           9            0.1
#   b     0.5    8.47   7.3         8.15         0.5
#   c     2      2      2           2            2
#   d     1.0    6.5    1.0         5.0          1.0
#   e     1.5    4.31   1.5         1.5          1.5
CURVES = {
    "a": [0.1] + [9] * 15,
    "b": [9] * 15 + [0.5],
    "c": [2] * 16,
    "d": [9] * 11 + [1.0] * 5,
    "e": [9] * 6 + [1.5] * 10,
}


def trial(name, losses, key="loss"):
    t = Trial(name, {"name": name}, name, f"/nonexistent/{name}")
    for i, loss in enumerate(losses, 1):
        t.record_result({key: loss, "training_iteration": i})
    return t


@pytest.fixture
def results():
    return ResultGrid([trial(n, c) for n, c in CURVES.items()], "/nonexistent", "loss", "min")


@pytest.mark.parametrize(("scope", "best"), [
    ("last", "b"), ("avg", "c"), ("last-5-avg", "d"), ("last-10-avg", "e"), ("all", "a"),
])
def test_each_scope_picks_its_own_best_trial(results, scope, best):
    assert results.get_best_result(scope=scope).trial_id == best


def test_mode_max_picks_the_highest():
    """p: [1, 5, 2], q: [3, 3, 3]: last and avg favour q, the best ever value is p's."""
    grid = ResultGrid([trial("p", [1, 5, 2]), trial("q", [3, 3, 3])], "/nonexistent", "loss", "max")
    assert grid.get_best_result(scope="last").trial_id == "q"
    assert grid.get_best_result(scope="avg").trial_id == "q"
    assert grid.get_best_result(scope="all").trial_id == "p"
    assert grid.get_best_result(mode="min", scope="all").trial_id == "p"  # 1 is the lowest
    assert grid.get_best_result(mode="min", scope="last").trial_id == "p"


def test_metric_value_per_scope():
    t = trial("x", [4.0, 2.0, 6.0])
    assert metric_value(t, "loss", "min", "last") == 6.0
    assert metric_value(t, "loss", "min", "avg") == 4.0
    assert metric_value(t, "loss", "min", "all") == 2.0
    assert metric_value(t, "loss", "max", "all") == 6.0
    assert metric_value(t, "acc", "min", "last") is None


def test_ties_go_to_the_first_trial():
    trials = [trial("p", [1.0]), trial("q", [1.0])]
    assert best_trial(trials, "loss", "min").trial_id == "p"
    assert best_trial(list(reversed(trials)), "loss", "max").trial_id == "q"


def test_nan_and_inf_are_skipped_unless_asked_for():
    assert best_trial([trial("nan", [math.nan]), trial("ok", [5.0])], "loss", "min").trial_id == "ok"
    trials = [trial("inf", [-math.inf]), trial("ok", [5.0])]
    assert best_trial(trials, "loss", "min").trial_id == "ok"
    assert best_trial(trials, "loss", "min", filter_nan_and_inf=False).trial_id == "inf"


def test_a_trial_that_never_reported_the_metric_is_not_a_candidate():
    trials = [trial("other", [0.0], key="acc"), trial("ok", [5.0])]
    assert best_trial(trials, "loss", "min").trial_id == "ok"
    assert best_trial([trials[0]], "loss", "min") is None


def test_bad_scope_and_missing_metric_are_clear_errors(results):
    with pytest.raises(ConfigError, match="`scope` is 'best'"):
        results.get_best_result(scope="best")
    with pytest.raises(HpctuneError, match="No trial reported a finite value of `acc`.*'loss'"):
        results.get_best_result(metric="acc")
    with pytest.raises(ConfigError, match="No metric/mode given"):
        ResultGrid([], "/nonexistent").get_best_result()


def test_a_flattened_name_finds_a_nested_value_and_missing_is_told_from_none():
    result = {"val": {"acc": 0.9, "none": None}, "loss/raw": 2.0, "loss": {"raw": 3.0}}
    assert flat_value(result, "val/acc") == 0.9
    assert flat_value(result, "loss/raw") == 2.0  # the flat key as reported comes first
    assert flat_value(result, "val/none", MISSING) is None
    assert flat_value(result, "val/f1", MISSING) is MISSING and flat_value(result, "val/acc/x") is None
