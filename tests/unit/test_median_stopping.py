"""MedianStoppingRule driven by synthetic result streams; no backend at all."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest

from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import Decision, MedianStoppingRule

C, S, P = Decision.CONTINUE, Decision.STOP, Decision.PAUSE


def trial(name: str) -> TrialInfo:
    return TrialInfo(trial_id=name)


def res(t: float, value: float | None) -> dict:
    return {"training_iteration": t, "acc": value, "time_total_s": 10.0 * t}


def make(**kwargs) -> MedianStoppingRule:
    args = {
        "time_attr": "training_iteration",
        "metric": "acc",
        "mode": "max",
        "grace_period": 1,
        "min_samples_required": 2,
    }
    return MedianStoppingRule(**{**args, **kwargs})


def run(sched, events, sign: float = 1.0) -> list[Decision]:
    decisions = []
    for name, t, value in events:
        sched.on_trial_add(trial(name))
        value = None if value is None else sign * value
        decisions.append(sched.on_trial_result(trial(name), res(t, value)))
    return decisions


# Hand-computed (mode="max", grace_period=1, min_samples_required=2):
#   a1 (0)   no other trial at t>=1                          C
#   b1 (2)   one other (a)                                   C
#   a2 (10)  nobody else has reached t=2                     C
#   b2 (6)   one other (a)                                   C
#   d1 (5)   running means at t=1: a 0, b 2 -> median 1; best 5       C
#   d2 (1)   running means at t=2: a 5, b 4 -> median 4.5; best 5     C
#            (the last values 10 and 6 would give 8 and stop d: means matter)
#   e1 (3)   means at t=1: a 0, b 2, d 5 -> median 2; best 3          C
#   e2 (3.5) means at t=2: a 5, b 4, d 3 -> median 4; best 3.5 < 4    S
EVENTS = [
    ("a", 1, 0), ("b", 1, 2), ("a", 2, 10), ("b", 2, 6),
    ("d", 1, 5), ("d", 2, 1), ("e", 1, 3), ("e", 2, 3.5),
]  # fmt: skip
EXPECTED = [C, C, C, C, C, C, C, S]


def test_hand_computed_stream_mode_max():
    sched = make()
    assert run(sched, EVENTS) == EXPECTED
    assert sched.debug_string() == "Using MedianStoppingRule: num_stopped=1."


def test_hand_computed_stream_mode_min_mirrors_max():
    assert run(make(mode="min"), EVENTS, sign=-1.0) == EXPECTED


def test_tie_with_the_median_continues():
    events = EVENTS[:-1] + [("e", 2, 4.0)]  # best 4 == median 4
    assert run(make(), events)[-1] == C


def test_grace_period_scopes_running_means_and_protects_early_results():
    events = [("a", 1, 100), ("b", 1, 100), ("a", 2, 0), ("b", 2, 0), ("a", 3, 0), ("b", 3, 0)]
    late = [("c", 1, 1), ("c", 2, 1), ("c", 3, 1)]
    # grace 2: means over [2, 3] are 0 -> c (best 1) continues; c's t=1 is never judged
    assert run(make(grace_period=2), events + late)[-3:] == [C, C, C]
    # grace 1: means over [1, 1] are 100 -> c stops at once
    assert run(make(grace_period=1), events + late)[-3:][0] == S


def test_insufficient_samples_continue_and_never_pause():
    sched = make(min_samples_required=4, min_time_slice=0)
    assert run(sched, EVENTS) == [C] * len(EVENTS)  # e2 (stopped above) has only 3 others
    sched.on_trial_add(trial("f"))
    assert sched.on_trial_result(trial("f"), res(2, -1.0)) == S  # a, b, d, e reached t=2


def test_hard_stop_false_pauses_once_then_runs_fifo():
    sched = make(hard_stop=False)
    assert run(sched, EVENTS)[-1] == P
    assert sched.on_trial_result(trial("e"), res(3, -100.0)) == C  # resumed: not judged again


def test_completed_trials_count_and_final_result_is_not_double_counted():
    sched = make()
    assert run(sched, EVENTS[:4]) == [C] * 4
    sched.on_trial_complete(trial("a"), res(2, 10))  # the same final result, delivered again
    assert sched.get_state()["results"]["a"] == [[1, 0.0], [2, 10.0]]
    sched.on_trial_complete(trial("b"), None)
    sched.on_trial_complete(trial("b"), {"training_iteration": 3})  # no metric: ignored
    assert run(sched, [("x", 2, 4.4)]) == [S]  # median 4.5 from the finished a and b


def test_trial_without_finite_values_is_stopped_when_judged():
    sched = make()
    assert run(sched, EVENTS[:4]) == [C] * 4
    assert run(sched, [("n", 1, math.nan)]) == [S]  # a and b reached t=1; no finite best
    assert run(sched, [("z", 2, None)]) == [S]  # None counts as NaN


def test_trial_without_finite_values_is_no_sample():
    sched = make()
    assert run(sched, [("n", 1, math.nan), ("n", 2, math.nan)] + EVENTS[:4]) == [C] * 6
    # median over a (mean 5) and b (mean 4) only; counting n as worst would give 4
    assert run(sched, [("x", 2, 4.4)]) == [S]


def test_nan_values_are_left_out_of_running_means():
    sched = make()
    # k's running mean at t=2 is 8 (its NaN is skipped), so b (best 6) is below
    # the median of a's 5 and k's 8
    assert run(sched, [("k", 1, math.nan), ("k", 2, 8.0)] + EVENTS[:4]) == [C, C, C, C, C, S]


def test_missing_metric_names_it_and_the_reported_keys():
    sched = make()
    sched.on_trial_add(trial("a"))
    with pytest.raises(ConfigError, match=r"`acc`.*\['loss', 'training_iteration'\]"):
        sched.on_trial_result(trial("a"), {"training_iteration": 1, "loss": 0.1})


def test_default_time_attr_is_time_total_s():
    sched = MedianStoppingRule(metric="acc", mode="max", grace_period=10, min_samples_required=1)
    assert run(sched, [("a", 1, 5.0)]) == [C]  # time_total_s = 10: nobody to compare with
    assert run(sched, [("b", 1, 1.0)]) == [S]


def test_metric_and_mode_required_and_taken_from_tune_config():
    sched = MedianStoppingRule()
    with pytest.raises(ConfigError, match="no valid `metric`"):
        sched.on_trial_add(trial("a"))
    assert sched.set_search_properties("acc", "max")
    sched.on_trial_add(trial("a"))
    assert not make().set_search_properties("loss", None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grace_period": -1}, "The value of `grace_period` is -1, but must be a number >= 0. Fix: choose grace_period >= 0."),
        ({"min_samples_required": 0}, "`min_samples_required` is 0, but must be a whole number >= 1."),
        ({"min_time_slice": -5}, "The value of `min_time_slice` is -5, but must be a number >= 0."),
        ({"mode": "median"}, "The value of `mode` is 'median', but must be 'min' or 'max'."),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ConfigError) as info:
        make(**kwargs)
    assert message in str(info.value)


def random_stream(seed: int):
    rng = np.random.default_rng(seed)
    quality = rng.normal(size=12)
    for t in range(1, 15):
        for i in rng.permutation(12):
            yield f"x{i}", t, float(quality[i] + 0.3 * rng.normal())


def feed(sched, events, stopped: set[str]) -> list[Decision]:
    out = []
    for name, t, value in events:
        if name in stopped:
            continue
        decision = sched.on_trial_result(trial(name), res(t, value))
        out.append(decision)
        if decision == S:
            stopped.add(name)
            sched.on_trial_complete(trial(name), res(t, value))
    return out


def test_state_round_trip_mid_stream_continues_identically():
    events = list(random_stream(5))
    half = len(events) // 2
    original, stopped = make(min_samples_required=3), set()
    feed(original, events[:half], stopped)
    state = pickle.loads(pickle.dumps(original.get_state()))
    json.dumps(original.get_state())
    restored = make(min_samples_required=3)
    restored.set_state(state)
    tail = feed(original, events[half:], set(stopped))
    assert feed(restored, events[half:], set(stopped)) == tail
    assert S in tail and C in tail
    assert restored.get_state() == original.get_state()
