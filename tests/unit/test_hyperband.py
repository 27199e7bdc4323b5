"""Synchronous HyperBand's decisions on synthetic results: brackets, pauses, halvings, state.

Decisions for the trial that reports come back from ``on_trial_result``; trials paused at a
milestone get theirs from ``resume_decision`` when the driver would resubmit them (None
while the bracket waits for others).
"""

from __future__ import annotations

import pytest

from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers import Decision, HyperBandScheduler, create_scheduler
from hpctune.tune.schedulers.hyperband import Bracket

CONTINUE, PAUSE, STOP = Decision.CONTINUE, Decision.PAUSE, Decision.STOP


def hb(**kwargs) -> HyperBandScheduler:
    return HyperBandScheduler(**{"metric": "acc", "mode": "max", "max_t": 9, "reduction_factor": 3,
                                 **kwargs})


def add(scheduler, n: int) -> list[TrialInfo]:
    trials = [TrialInfo(f"t{i}", {"i": i}) for i in range(n)]
    for trial in trials:
        scheduler.on_trial_add(trial)
    return trials


def report(scheduler, trial, t, acc) -> Decision:
    return scheduler.on_trial_result(trial, {"training_iteration": t, "acc": acc})


def test_brackets_fill_in_rays_order_and_sizes():
    s = HyperBandScheduler(metric="acc", mode="max", max_t=81, reduction_factor=3)
    add(s, 5 + 8 + 15 + 1)
    sizes = [(b.n, b.r) for b in s._bands[0]]
    assert sizes == [(5, 81), (8, 27), (15, 9), (34, 3)]  # s = 0, 1, 2, 3; ceil(5/(s+1)*3**s)
    assert [s._trial_bracket[f"t{i}"] for i in (0, 4, 5, 12, 13, 27, 28)] == \
        [(0, 0), (0, 0), (0, 1), (0, 1), (0, 2), (0, 2), (0, 3)]


def test_a_bracket_pauses_trials_at_the_milestone_then_halves():
    s = hb()
    trials = add(s, 8)  # t0-t2: bracket n=3, r=9; t3-t7: n=5, r=3, one halving
    b = trials[3:]
    for trial in b:
        assert report(s, trial, 1, 0.0) is CONTINUE
    assert [report(s, t, 3, acc) for t, acc in zip(b[:4], [0.1, 0.9, 0.5, 0.8], strict=True)] == [PAUSE] * 4
    assert [s.resume_decision(t) for t in b[:4]] == [None] * 4  # the bracket waits for t7
    assert report(s, b[1], 4, 0.99) is CONTINUE  # a late report while pausing: not counted
    assert report(s, b[4], 3, 0.2) is STOP  # the last: ceil(5/3) = 2 go on: t4 (0.9) and t6 (0.8)
    assert [s.resume_decision(t) for t in b[:4]] == [STOP, CONTINUE, STOP, CONTINUE]
    assert s._num_stopped == 3
    bracket = s._bands[0][1]
    assert (bracket.n, bracket.cumul_r, sorted(bracket.live)) == (2, 6, ["t4", "t6"])  # Ray's r
    assert report(s, b[1], 5, 0.9) is CONTINUE
    assert report(s, b[1], 6, 0.9) is PAUSE
    assert report(s, b[3], 6, 0.7) is STOP  # the bracket is finished: everyone stops
    assert s.resume_decision(b[1]) is STOP


def test_a_trial_that_leaves_completes_the_halving():
    s = hb()
    trials = add(s, 8)
    b = trials[3:]
    assert [report(s, t, 3, acc) for t, acc in zip(b[:4], [0.1, 0.9, 0.5, 0.8], strict=True)] == [PAUSE] * 4
    s.on_trial_error(b[4])  # t7 failed before its milestone
    assert [s.resume_decision(t) for t in b[:4]] == [STOP, CONTINUE, STOP, CONTINUE]
    s.on_trial_remove(b[0])  # the driver ended the stopped one: nothing more happens
    assert s._bands[0][1].n == 2 and s._num_stopped == 2


def test_the_last_bracket_runs_to_max_t_and_stops_there():
    s = hb()
    trials = add(s, 3)  # n=3, r=9, no halving
    assert report(s, trials[0], 8, 0.5) is CONTINUE
    assert report(s, trials[0], 9, 0.5) is PAUSE
    assert report(s, trials[1], 9, 0.6) is PAUSE
    assert report(s, trials[2], 9, 0.1) is STOP
    assert [s.resume_decision(t) for t in trials[:2]] == [STOP, STOP]
    relaxed = hb(stop_last_trials=False)
    trials = add(relaxed, 3)
    assert report(relaxed, trials[0], 20, 0.5) is CONTINUE


def test_mode_min_and_a_missing_metric():
    s = hb(mode="min")
    trials = add(s, 8)
    for trial, loss in zip(trials[3:], [5, 1, 4, 2, 3], strict=True):
        report(s, trial, 3, loss)
    assert [s.resume_decision(t) for t in trials[3:7]] == [STOP, CONTINUE, STOP, CONTINUE]
    with pytest.raises(ConfigError, match="needs `acc` in every result"):
        s.on_trial_result(trials[0], {"training_iteration": 1})


def test_state_round_trip_keeps_brackets_waiting_and_decisions():
    first = hb()
    trials = add(first, 8)
    for trial, acc in zip(trials[3:7], [0.1, 0.9, 0.5, 0.8], strict=True):
        report(first, trial, 3, acc)
    second = hb()
    second.set_state(first.get_state())
    assert report(second, trials[7], 3, 0.2) is report(first, trials[7], 3, 0.2) is STOP
    assert [second.resume_decision(t) for t in trials[3:7]] == [STOP, CONTINUE, STOP, CONTINUE]
    assert second.debug_string().startswith("Using HyperBand: num_stopped=3 total_brackets=2")
    with pytest.raises(ConfigError, match="max_t"):
        hb(max_t=27).set_state(first.get_state())


def test_bracket_work_and_arguments():
    bracket = Bracket(n=9, r=1, max_t=9, eta=3, halves=2)
    assert bracket.total_work == 9 * 1 + 3 * 3 + 1 * 8
    with pytest.raises(ConfigError, match="reduction_factor"):
        hb(reduction_factor=1)
    with pytest.raises(ConfigError, match="max_t"):
        hb(max_t=0)
    assert isinstance(create_scheduler("hyperband", metric="acc", mode="max"), HyperBandScheduler)
