"""AsyncHyperBandScheduler (ASHA) driven by synthetic result streams; no backend at all."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import ASHAScheduler, AsyncHyperBandScheduler, Decision

C, S = Decision.CONTINUE, Decision.STOP


def trial(name: str) -> TrialInfo:
    return TrialInfo(trial_id=name)


def res(t: float, value: float | None, metric: str = "acc") -> dict:
    return {"training_iteration": t, metric: value, "trial_id": "ignored"}


def make(**kwargs) -> AsyncHyperBandScheduler:
    args = {"metric": "acc", "mode": "max", "max_t": 9, "grace_period": 1, "reduction_factor": 3}
    return AsyncHyperBandScheduler(**{**args, **kwargs})


def recorded(sched: AsyncHyperBandScheduler, bracket: int = 0) -> dict[float, dict[str, float]]:
    return {m: rec for m, rec in sched.get_state()["rungs"][bracket]}


# --- the hand-computed example -------------------------------------------------
# 9 trials, max_t=9, grace_period=1, reduction_factor=3 -> rungs at t = 1, 3, 9.
# Each trial reports a constant accuracy (mode="max"); all report t=1 in order
# t0..t8, then the survivors report t=2, 3, ... in order. A trial continues at a
# rung iff its value >= the 66.67th percentile (linear interpolation) of the
# values recorded there before it:
#   rung 1: t0 5 (empty)          C   t5 2 [1,3,5,8,9]   -> 7.0    S
#           t1 3 [5]      -> 5    S   t6 7 [1,2,3,5,8,9] -> 6.0    C
#           t2 8 [3,5]    -> 4.33 C   t7 4 [1,2,3,5,7,8,9] -> 7.0  S
#           t3 1 [3,5,8]  -> 6.0  S   t8 6 [1,2,3,4,5,7,8,9] -> 7.67 S
#           t4 9 [1,3,5,8]-> 5.0  C
#   rung 3: t0 5 (empty) C; t2 8 [5] -> 5 C; t4 9 [5,8] -> 7.0 C; t6 7 [5,8,9] -> 8.33 S
#   t=9 = max_t: t0, t2, t4 are stopped as "last trials".
VALUES = {"t0": 5, "t1": 3, "t2": 8, "t3": 1, "t4": 9, "t5": 2, "t6": 7, "t7": 4, "t8": 6}
EXPECTED_STOP_AT = {"t1": 1, "t3": 1, "t5": 1, "t7": 1, "t8": 1, "t6": 3, "t0": 9, "t2": 9, "t4": 9}


def run_synchronous_stream(sched, sign: float = 1.0) -> dict[str, int]:
    """Feed the stream described above; returns trial -> time at which it got STOP."""
    for name in VALUES:
        sched.on_trial_add(trial(name))
    alive, stopped_at = list(VALUES), {}
    for t in range(1, 10):
        for name in list(alive):
            result = res(t, sign * VALUES[name])
            decision = sched.on_trial_result(trial(name), result)
            assert decision in (C, S)
            if decision == S:
                stopped_at[name] = t
                alive.remove(name)
                sched.on_trial_complete(trial(name), result)
    return stopped_at


def test_hand_computed_rungs_mode_max():
    sched = make()
    assert run_synchronous_stream(sched) == EXPECTED_STOP_AT
    rungs = recorded(sched)
    assert sorted(rungs) == [1, 3, 9]
    assert rungs[1] == {name: float(v) for name, v in VALUES.items()}
    assert rungs[3] == {"t0": 5.0, "t2": 8.0, "t4": 9.0, "t6": 7.0}
    assert rungs[9] == {"t0": 5.0, "t2": 8.0, "t4": 9.0}  # recorded by on_trial_complete
    assert "num_stopped=9" in sched.debug_string()


def test_hand_computed_rungs_mode_min_mirrors_max():
    assert run_synchronous_stream(make(mode="min"), sign=-1.0) == EXPECTED_STOP_AT


def test_each_decision_of_the_first_rung():
    sched = make()
    decisions = []
    for name, value in VALUES.items():
        sched.on_trial_add(trial(name))
        decisions.append(sched.on_trial_result(trial(name), res(1, value)))
    assert decisions == [C, S, C, S, C, S, C, S, S]


def test_cutoff_matches_numpy_percentile():
    rng = np.random.default_rng(0)
    values = rng.normal(size=20)
    sched = make(reduction_factor=4, max_t=100)
    for i, v in enumerate(values):
        sched.on_trial_add(trial(f"x{i}"))
        decision = sched.on_trial_result(trial(f"x{i}"), res(1, float(v)))
        if i:
            cutoff = np.percentile(values[:i], 75)
            assert decision == (S if v < cutoff else C)


def test_ties_at_the_cutoff_continue():
    sched = make()
    for name in ("a", "b", "c"):
        sched.on_trial_add(trial(name))
        assert sched.on_trial_result(trial(name), res(1, 0.5)) == C


def test_time_between_rungs_never_stops():
    sched = make()
    sched.on_trial_add(trial("a"))
    sched.on_trial_add(trial("b"))
    assert sched.on_trial_result(trial("a"), res(1, 10)) == C
    for t in (0.5, 0.9):  # before the first rung (grace period): nothing to compare
        assert sched.on_trial_result(trial("b"), res(t, -100)) == C
    assert sched.on_trial_result(trial("b"), res(1, -100)) == S


def test_trial_finishing_below_grace_period_is_not_recorded():
    sched = make(grace_period=3)
    sched.on_trial_add(trial("short"))
    assert sched.on_trial_result(trial("short"), res(2, 100.0)) == C
    sched.on_trial_complete(trial("short"), res(2, 100.0))
    assert all(not rec for rec in recorded(sched).values())
    sched.on_trial_add(trial("b"))
    assert sched.on_trial_result(trial("b"), res(3, 1.0)) == C  # first at rung 3


def test_result_skipping_rungs_is_judged_at_the_highest_one():
    sched = make(max_t=100)  # rungs 1, 3, 9, 27, 81
    for name, value in (("a", 5.0), ("b", 1.0)):
        sched.on_trial_add(trial(name))
        sched.on_trial_result(trial(name), res(9, value))
    rungs = recorded(sched)
    assert rungs[9] == {"a": 5.0, "b": 1.0}
    assert rungs[1] == {} and rungs[3] == {}


def test_nan_and_none_count_as_worst_and_never_crash():
    sched = make()
    for name in "abcde":
        sched.on_trial_add(trial(name))
    assert sched.on_trial_result(trial("a"), res(1, math.nan)) == C  # nothing to compare with
    assert sched.on_trial_result(trial("b"), res(1, 0.1)) == C  # NaN values are ignored in cutoffs
    assert sched.on_trial_result(trial("c"), res(1, math.nan)) == S
    assert sched.on_trial_result(trial("d"), res(1, None)) == S
    assert sched.on_trial_result(trial("e"), res(1, 0.2)) == C  # cutoff over [0.1] only
    assert math.isnan(recorded(sched)[1]["a"])
    assert "Iter 1.000" in sched.debug_string()


def test_nan_time_is_ignored():
    sched = make()
    sched.on_trial_add(trial("a"))
    assert sched.on_trial_result(trial("a"), res(math.nan, 1.0)) == C
    assert all(not rec for rec in recorded(sched).values())


def test_trials_at_max_t_are_stopped_only_with_stop_last_trials():
    sched = make(stop_last_trials=True)
    sched.on_trial_add(trial("a"))
    assert sched.on_trial_result(trial("a"), res(9, 1.0)) == S
    assert sched.on_trial_result(trial("a"), res(12, 1.0)) == S

    sched = make(stop_last_trials=False)
    for name in "abc":  # equal values tie at rung 1: everyone passes
        sched.on_trial_add(trial(name))
        assert sched.on_trial_result(trial(name), res(1, 1.0)) == C
    assert sched.on_trial_result(trial("b"), res(3, 6.0)) == C  # first at rung 3
    assert sched.on_trial_result(trial("a"), res(9, 5.0)) == C  # first at rung 9, skips rung 3
    # judged at the top rung already: no more judging, not even at the skipped rung 3
    assert sched.on_trial_result(trial("a"), res(10, 0.0)) == C
    assert sched.on_trial_result(trial("b"), res(9, 6.0)) == C
    assert sched.on_trial_result(trial("c"), res(9, 1.0)) == S  # still judged at the top rung


def test_missing_metric_names_it_and_the_reported_keys():
    sched = make()
    sched.on_trial_add(trial("a"))
    with pytest.raises(ConfigError, match=r"`acc`.*\['loss', 'training_iteration'\]"):
        sched.on_trial_result(trial("a"), {"training_iteration": 1, "loss": 0.3})
    with pytest.raises(ConfigError, match="`training_iteration`"):
        sched.on_trial_result(trial("a"), {"acc": 0.3})
    with pytest.raises(ConfigError, match="needs a number"):
        sched.on_trial_result(trial("a"), res(1, "high"))


def test_nested_metric_path():
    sched = make(metric="val/acc")
    sched.on_trial_add(trial("a"))
    assert sched.on_trial_result(trial("a"), {"training_iteration": 1, "val": {"acc": 1}}) == C


def test_complete_without_metric_just_forgets_the_trial():
    sched = make()
    sched.on_trial_add(trial("a"))
    sched.on_trial_complete(trial("a"), {"training_iteration": 3})
    sched.on_trial_complete(trial("a"), None)  # twice, and without a result: no error
    assert sched.get_state()["trial_bracket"] == {}


def test_error_and_remove_forget_the_trial():
    sched = make()
    sched.on_trial_add(trial("a"))
    sched.on_trial_add(trial("b"))
    sched.on_trial_error(trial("a"))
    sched.on_trial_remove(trial("b"))
    assert sched.get_state()["trial_bracket"] == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduction_factor": 1}, "The value of `reduction_factor` is 1, but must be a number > 1. Fix: choose reduction_factor > 1."),
        ({"grace_period": 0}, "The value of `grace_period` is 0, but must be a number > 0."),
        ({"max_t": 0, "grace_period": 1}, "The value of `max_t` is 0, but must be a number > 0."),
        (
            {"max_t": 5, "grace_period": 6},
            "The value of `grace_period` is 6, but must be <= max_t (5).",
        ),
        ({"max_t": math.inf}, "The value of `max_t` is inf, but must be finite."),
        ({"brackets": 0}, "The value of `brackets` is 0, but must be a whole number > 0."),
        ({"brackets": 1.5}, "The value of `brackets` is 1.5, but must be a whole number > 0. Fix: give brackets as a whole number."),
        ({"mode": "avg"}, "The value of `mode` is 'avg', but must be 'min' or 'max'."),
        ({"seed": 1, "rng": np.random.default_rng(1)}, "either `seed` or `rng`"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    assert message in str(info.value)


def test_metric_and_mode_from_tune_config():
    sched = AsyncHyperBandScheduler()
    with pytest.raises(ConfigError, match="no valid `metric`"):
        sched.on_trial_add(trial("a"))
    assert sched.set_search_properties("loss", "min")
    assert sched.metric == "loss" and sched.mode == "min"
    sched.on_trial_add(trial("a"))
    assert not make(metric="acc").set_search_properties("loss", "max")


def test_alias_and_default_rungs():
    assert ASHAScheduler is AsyncHyperBandScheduler
    sched = ASHAScheduler(metric="m", mode="min")  # max_t=100, grace 1, rf 4
    assert sorted(recorded(sched)) == [1, 4, 16, 64]
    # int(log(1000) / log(10)) is 2 in floating point; the rung at 1000 must still exist.
    assert sorted(recorded(make(max_t=1000, reduction_factor=10))) == [1, 10, 100, 1000]


def test_brackets_have_fewer_rungs_and_softmax_assignment():
    sched = make(brackets=3, seed=0)
    assert [sorted(recorded(sched, b)) for b in range(3)] == [[1, 3, 9], [3, 9], [9]]
    for i in range(3000):
        sched.on_trial_add(trial(f"x{i}"))
    counts = np.bincount(list(sched.get_state()["trial_bracket"].values()), minlength=3)
    expected = np.exp([0, -1, -2]) / np.exp([0, -1, -2]).sum()  # sizes 3, 2, 1
    assert np.allclose(counts / 3000, expected, atol=0.03)


def test_bracket_assignment_uses_only_the_injected_rng():
    def assignment(**kwargs):
        sched = make(brackets=3, **kwargs)
        for i in range(50):
            sched.on_trial_add(trial(f"x{i}"))
        return sched.get_state()["trial_bracket"]

    np.random.seed(1)
    first = assignment(seed=7)
    np.random.seed(2)  # the global RNG must not matter
    assert assignment(seed=7) == first
    assert assignment(rng=np.random.default_rng(7)) == first
    assert assignment(seed=8) != first


def stream(n_trials: int, seed: int):
    """A reproducible interleaved stream: (trial, t, value) with random speeds."""
    rng = np.random.default_rng(seed)
    clocks = {f"x{i}": 0 for i in range(n_trials)}
    quality = {name: rng.normal() for name in clocks}
    while clocks:
        name = sorted(clocks)[rng.integers(len(clocks))]
        clocks[name] += int(rng.integers(1, 3))
        yield name, clocks[name], quality[name] + 0.1 * rng.normal()
        if clocks[name] >= 30:
            del clocks[name]


def feed(sched, events, stopped: set[str]) -> list[tuple[str, Decision]]:
    out = []
    for name, t, value in events:
        if name in stopped:
            continue
        if t <= 2 and name not in sched.get_state()["trial_bracket"]:
            sched.on_trial_add(trial(name))
        decision = sched.on_trial_result(trial(name), res(t, value))
        out.append((name, decision))
        if decision == S:
            stopped.add(name)
            sched.on_trial_complete(trial(name), res(t, value))
    return out


def test_state_round_trip_mid_stream_continues_identically():
    events = list(stream(40, seed=3))
    half = len(events) // 2
    kwargs = {"max_t": 30, "brackets": 3, "reduction_factor": 2, "seed": 11}
    original = make(**kwargs)
    stopped: set[str] = set()
    feed(original, events[:half], stopped)
    state = pickle.loads(pickle.dumps(original.get_state()))
    json.dumps(original.get_state())  # plain data, JSON-compatible too

    restored = make(**{**kwargs, "seed": 999})  # the rng state comes from the snapshot
    restored.set_state(state)
    tail_original = feed(original, events[half:], set(stopped))
    tail_restored = feed(restored, events[half:], set(stopped))
    assert tail_restored == tail_original
    assert S in {d for _, d in tail_original} and C in {d for _, d in tail_original}
    assert restored.get_state() == original.get_state()


def test_set_state_rejects_other_bracket_count():
    state = make(brackets=2).get_state()
    with pytest.raises(ConfigError, match="same arguments"):
        make(brackets=1).set_state(state)


def test_result_for_unannounced_trial_is_assigned_a_bracket():
    sched = make()
    assert sched.on_trial_result(trial("late"), res(1, 0.0)) == C
    assert sched.get_state()["trial_bracket"] == {"late": 0}
