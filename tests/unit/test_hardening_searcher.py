"""A custom searcher's bad suggestion is a clear error before its trial exists (issue 24).

A ``Searcher.suggest()`` that returned a non-dict used to be counted as "no suggestion", so
``SampleLimiter`` never reached ``num_samples`` and the driver created trials without end
(6,092 files in 90 s with ``num_samples=1``). Now the controller refuses it, naming the
searcher and what it returned, and no trial directory is made for it.
"""

from __future__ import annotations

import pytest

from hpctune import tune
from hpctune.config import RunConfig, TuneConfig
from hpctune.controller.bridge import checked_suggestion
from hpctune.errors import ConfigError
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.search import ConcurrencyLimiter, Searcher
from tests.unit.cli_env import cli_env  # noqa: F401 - cli_env is autouse


def objective(config):
    tune.report({"score": 1})


class Gives(Searcher):
    """Suggests ``value`` once, then says it is finished."""

    def __init__(self, value):
        super().__init__(metric="score", mode="max")
        self.value, self.asked = value, 0

    def suggest(self, trial_id):
        self.asked += 1
        return self.value if self.asked == 1 else Searcher.FINISHED


BAD = [
    ("list", [1, 2], "returned [1, 2] (type list)"),
    ("string", "lr=0.1", "returned 'lr=0.1' (type str)"),
    ("int", 3, "returned 3 (type int)"),
    ("tuple of pairs", (("lr", 1),), "(type tuple)"),
    ("int key", {1: 0.1}, "a dict whose key 1 (type int) is not a string"),
    (
        "nested int key",
        {"opt": {("a",): 1}},
        "a dict whose key opt/('a',) (type tuple) is not a string",
    ),
]


@pytest.mark.parametrize("value, phrase", [pytest.param(*c[1:], id=c[0]) for c in BAD])
def test_a_bad_suggestion_is_a_clear_error_before_its_trial_exists(tmp_path, value, phrase):
    searcher = ConcurrencyLimiter(Gives(value), max_concurrent=2)
    tuner = tune.Tuner(
        objective,
        tune_config=TuneConfig(search_alg=searcher, num_samples=1),
        run_config=RunConfig(name="bad", verbose=0),
    )
    with pytest.raises(ConfigError) as raised:
        tuner.fit()
    message = str(raised.value)
    assert message.startswith("Gives.suggest('")  # the user's searcher, not a wrapper
    assert phrase in message and "a config dict with string keys" in message
    assert searcher.searcher.asked == 1  # asked once: no trials without end
    exp = ExperimentDir(tmp_path / "results" / "bad")
    assert exp.trial_ids() == []


@pytest.mark.parametrize("value", [None, Searcher.FINISHED, {}, {"a": {"b": 1}, "c": [1, {2: 3}]}])
def test_good_suggestions_pass_unchanged(value):
    assert checked_suggestion(Gives(None), "t_0", value) is value


def test_an_array_suggestion_is_refused_not_compared():
    np = pytest.importorskip("numpy")
    with pytest.raises(ConfigError, match=r"\(type ndarray\)"):
        checked_suggestion(Gives(None), "t_0", np.zeros(3))


def test_a_good_custom_searcher_still_runs(tmp_path):
    grid = tune.Tuner(
        objective,
        tune_config=TuneConfig(search_alg=Gives({"lr": 0.1}), num_samples=1),
        run_config=RunConfig(name="good", verbose=0),
    ).fit()
    assert len(grid) == 1 and grid[0].config == {"lr": 0.1}
