"""ConcurrencyLimiter and Repeater, driven with a recording searcher (and OptunaSearch)."""

from __future__ import annotations

import logging

import pytest
from optuna.trial import TrialState

from hpctune import space as tune
from hpctune.errors import ConfigError
from hpctune.tune.search import ConcurrencyLimiter, Repeater, Searcher
from hpctune.tune.search.optuna import OptunaSearch
from hpctune.tune.search.repeater import TRIAL_INDEX


class Recorder(Searcher):
    """Suggests {"n": 0}, {"n": 1}, ... (FINISHED after ``limit``) and records every call."""

    def __init__(self, limit: int = 100, adaptive: bool = True):
        super().__init__(metric="loss", mode="min")
        self.limit = limit
        self.adaptive = adaptive
        self.count = 0
        self.calls: list[tuple] = []

    def suggest(self, trial_id):
        if self.count >= self.limit:
            return Searcher.FINISHED
        self.count += 1
        return {"n": self.count - 1}

    def on_trial_result(self, trial_id, result):
        self.calls.append(("result", trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.calls.append(("complete", trial_id, result, error))

    def on_trial_stopped_early(self, trial_id, result):
        self.calls.append(("stopped", trial_id, result))

    def get_state(self):
        return {"count": self.count, "calls": list(self.calls)}

    def set_state(self, state):
        self.count, self.calls = state["count"], list(state["calls"])


# ---------------------------------------------------------------- ConcurrencyLimiter


def test_limiter_returns_none_at_the_limit_and_frees_slots():
    inner = Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=2)
    assert limiter.suggest("a") == {"n": 0}
    assert limiter.suggest("b") == {"n": 1}
    assert limiter.suggest("c") is None and inner.count == 2  # inner not asked
    limiter.on_trial_result("a", {"loss": 1})
    limiter.on_trial_complete("a", {"loss": 1})
    assert limiter.suggest("c") == {"n": 2}
    limiter.on_trial_stopped_early("b", {"loss": 3})
    assert limiter.suggest("d") == {"n": 3}
    assert inner.calls == [
        ("result", "a", {"loss": 1}),
        ("complete", "a", {"loss": 1}, False),
        ("stopped", "b", {"loss": 3}),
    ]


def test_limiter_batch_waits_for_the_whole_batch():
    inner = Recorder()
    limiter = ConcurrencyLimiter(inner, max_concurrent=3, batch=True)
    for trial_id in "abc":
        limiter.suggest(trial_id)
    limiter.on_trial_complete("b", {"loss": 2})
    limiter.on_trial_complete("a", {"loss": 1}, error=True)
    assert inner.calls == [] and limiter.suggest("d") is None
    limiter.on_trial_stopped_early("c", {"loss": 3})
    assert inner.calls == [
        ("complete", "b", {"loss": 2}, False),
        ("complete", "a", {"loss": 1}, True),
        ("stopped", "c", {"loss": 3}),
    ]
    assert limiter.suggest("d") == {"n": 3}


def test_limiter_passes_finished_and_forwards_properties():
    inner = Recorder(limit=1, adaptive=False)
    limiter = ConcurrencyLimiter(inner, max_concurrent=1)
    assert limiter.metric == "loss" and limiter.mode == "min" and limiter.adaptive is False
    limiter.suggest("a")
    limiter.on_trial_complete("a", {"loss": 0})
    assert limiter.suggest("b") == Searcher.FINISHED
    assert limiter.live_trials == set()
    limiter.on_trial_complete("stranger", {"loss": 5})  # not ours: still forwarded
    assert inner.calls[-1] == ("complete", "stranger", {"loss": 5}, False)


def test_limiter_rejects_bad_arguments_and_duplicate_ids():
    with pytest.raises(ConfigError, match="max_concurrent"):
        ConcurrencyLimiter(Recorder(), max_concurrent=0)
    with pytest.raises(ConfigError, match="wraps a Searcher"):
        ConcurrencyLimiter(object(), max_concurrent=1)
    limiter = ConcurrencyLimiter(Recorder(), max_concurrent=2)
    limiter.suggest("a")
    with pytest.raises(ValueError, match="'a'"):
        limiter.suggest("a")


def test_limiter_state_round_trips_mid_batch(tmp_path):
    limiter = ConcurrencyLimiter(Recorder(), max_concurrent=2, batch=True)
    limiter.suggest("a")
    limiter.suggest("b")
    limiter.on_trial_complete("a", {"loss": 1})
    limiter.save(tmp_path / "state.pkl")

    inner = Recorder()
    restored = ConcurrencyLimiter(inner, max_concurrent=2, batch=True)
    restored.restore(tmp_path / "state.pkl")
    assert restored.suggest("c") is None
    restored.on_trial_complete("b", {"loss": 2})
    assert [c[1] for c in inner.calls] == ["a", "b"]
    assert restored.suggest("c") == {"n": 2}


def test_limiter_forwards_search_properties_to_optuna():
    limiter = ConcurrencyLimiter(OptunaSearch(seed=0), max_concurrent=1)
    assert limiter.set_search_properties("loss", "max", {"x": tune.uniform(0, 1)})
    assert limiter.metric == "loss" and limiter.mode == "max"
    assert 0 <= limiter.suggest("a")["x"] <= 1


# ---------------------------------------------------------------- Repeater


def test_repeater_repeats_each_suggestion_and_reports_the_mean():
    inner = Recorder()
    repeater = Repeater(inner, repeat=3)
    configs = [repeater.suggest(f"t{n}") for n in range(6)]
    assert inner.count == 2
    assert [c["n"] for c in configs] == [0, 0, 0, 1, 1, 1]
    assert [c[TRIAL_INDEX] for c in configs] == [0, 1, 2, 0, 1, 2]
    repeater.on_trial_result("t0", {"loss": 9})  # intermediate results stay here
    repeater.on_trial_complete("t0", {"loss": 1.0})
    repeater.on_trial_complete("t2", {"loss": 2.0})
    assert inner.calls == []
    repeater.on_trial_complete("t1", {"loss": 6.0})
    assert inner.calls == [("complete", "t0", {"loss": 3.0, "config": {"n": 0}}, False)]


def test_repeater_skips_failed_repeats_and_fails_when_all_fail():
    inner = Recorder()
    repeater = Repeater(inner, repeat=2, set_index=False)
    configs = [repeater.suggest(f"t{n}") for n in range(4)]
    assert TRIAL_INDEX not in configs[0]
    repeater.on_trial_complete("t0", {"loss": 4.0})
    repeater.on_trial_complete("t1", {"loss": 0.0}, error=True)
    repeater.on_trial_stopped_early("t2", {"other": 1})
    repeater.on_trial_complete("t3", None, error=True)
    assert inner.calls == [
        ("complete", "t0", {"loss": 4.0, "config": {"n": 0}}, False),
        ("complete", "t2", None, True),
    ]


def test_repeater_passes_through_none_and_finished(caplog):
    repeater = Repeater(Recorder(limit=1), repeat=2)
    repeater.suggest("a")
    repeater.suggest("b")
    assert repeater.suggest("c") == Searcher.FINISHED
    with caplog.at_level(logging.WARNING):
        repeater.on_trial_complete("zzz", {"loss": 1})
    assert "zzz" in caplog.text
    limited = ConcurrencyLimiter(Recorder(), max_concurrent=1)
    wrapped = Repeater(limited, repeat=2)
    wrapped.suggest("a")
    wrapped.suggest("b")
    limited.suggest("x")  # fills the limiter so the next group cannot start
    assert wrapped.suggest("c") is None


def test_repeater_state_round_trips_mid_group(tmp_path):
    repeater = Repeater(Recorder(), repeat=3)
    for trial_id in ("a", "b"):
        repeater.suggest(trial_id)
    repeater.on_trial_complete("a", {"loss": 1.0})
    repeater.save(tmp_path / "state.pkl")

    inner = Recorder()
    restored = Repeater(inner, repeat=3)
    restored.restore(tmp_path / "state.pkl")
    assert restored.suggest("c") == {"n": 0, TRIAL_INDEX: 2}
    restored.on_trial_complete("b", {"loss": 2.0})
    restored.on_trial_complete("c", {"loss": 3.0})
    assert inner.calls == [("complete", "a", {"loss": 2.0, "config": {"n": 0}}, False)]
    assert restored.suggest("d") == {"n": 1, TRIAL_INDEX: 0}


def test_repeater_feeds_optuna_the_average():
    repeater = Repeater(OptunaSearch({"x": tune.uniform(0, 1)}, metric="loss", mode="min"), 2)
    configs = [repeater.suggest(f"t{n}") for n in range(4)]
    for n, loss in enumerate([1.0, 3.0, 5.0, 9.0]):
        repeater.on_trial_complete(f"t{n}", {"loss": loss})
    study = repeater.searcher.study
    assert [(t.state, t.value) for t in study.trials] == [
        (TrialState.COMPLETE, 2.0),
        (TrialState.COMPLETE, 7.0),
    ]
    assert configs[0]["x"] == configs[1]["x"] != configs[2]["x"]


def test_repeater_rejects_bad_repeat():
    with pytest.raises(ConfigError, match="repeat"):
        Repeater(Recorder(), repeat=0)
