"""Stoppers with synthetic results and an injected clock."""

from __future__ import annotations

import datetime
import math
import pickle

import pytest

import hpctune
from hpctune import stopper as stopper_alias
from hpctune import stoppers
from hpctune.errors import ConfigError
from hpctune.tune.stopper import (
    CombinedStopper,
    DictStopper,
    ExperimentPlateauStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
    as_stopper,
)


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def res(i: int, **metrics) -> dict:
    return {"training_iteration": i, "time_total_s": 2.0 * i, **metrics}


def test_base_and_noop_never_stop():
    for stopper in (Stopper(), NoopStopper()):
        assert stopper("t", res(1)) is False
        assert stopper.stop_all() is False


def test_custom_subclass_like_the_ray_docs():
    class StopAllAtAccuracy(Stopper):
        def __init__(self):
            self.reached = False

        def __call__(self, trial_id, result):
            self.reached = self.reached or result["acc"] >= 0.8
            return self.reached

        def stop_all(self):
            return self.reached

    stopper = as_stopper(StopAllAtAccuracy())
    assert [stopper("a", res(1, acc=0.5)), stopper.stop_all()] == [False, False]
    assert [stopper("b", res(1, acc=0.9)), stopper.stop_all()] == [True, True]


def test_function_stopper():
    stopper = FunctionStopper(lambda trial_id, result: result["acc"] > 0.5 or trial_id == "x")
    assert stopper("a", res(1, acc=0.4)) is False
    assert stopper("a", res(2, acc=0.6)) is True
    assert stopper("x", res(1, acc=0.0)) is True
    assert stopper.stop_all() is False


def test_dict_stopper_stops_when_any_threshold_is_reached():
    stopper = DictStopper({"training_iteration": 10, "acc": 0.8})
    assert stopper("a", res(1, acc=0.5)) is False
    assert stopper("a", res(2, acc=0.8)) is True  # >= and either criterion (Ray: "or")
    assert stopper("b", res(10, acc=0.1)) is True
    assert stopper("c", res(3, acc=math.nan)) is False
    assert stopper.stop_all() is False


def test_dict_stopper_nested_keys():
    stopper = DictStopper({"val": {"acc": 0.9}, "info/loss": 5})
    assert stopper("a", {"val": {"acc": 0.5}, "info": {"loss": 1}}) is False
    assert stopper("a", {"val/acc": 0.95, "info": {"loss": 1}}) is True
    assert stopper("a", {"val": {"acc": 0.5}, "info": {"loss": 7}}) is True


def test_dict_stopper_missing_key_errors_at_first_result_only():
    stopper = DictStopper({"acc": 0.8})
    with pytest.raises(
        ConfigError, match=r"`acc`.*trial a.*\['loss', 'time_total_s', 'training_iteration'\]"
    ):
        stopper("a", res(1, loss=0.3))
    assert stopper("b", res(1, acc=0.1)) is False
    assert stopper("b", res(2, loss=0.1)) is False  # b reported acc before: skipped now
    with pytest.raises(ConfigError, match="`acc`"):
        stopper("c", res(1))  # a new trial that never reported it


@pytest.mark.parametrize("criteria", [{"acc": "high"}, {"acc": True}, {1: 2}])
def test_dict_stopper_rejects_bad_criteria(criteria):
    with pytest.raises(ConfigError):
        DictStopper(criteria)


def test_maximum_iteration_stopper_counts_results_per_trial():
    stopper = MaximumIterationStopper(max_iter=3)
    assert [stopper("a", res(i)) for i in (1, 2, 3)] == [False, False, True]
    assert stopper("b", res(7)) is False  # counts results, not training_iteration (Ray)
    with pytest.raises(ConfigError, match="`max_iter` is 0, but must be a whole number > 0. Fix: choose max_iter > 0"):
        MaximumIterationStopper(0)


def test_experiment_plateau_min_mode_and_patience():
    stopper = ExperimentPlateauStopper("loss", std=0.1, top=3, mode="min", patience=1)
    calls = [
        ("a", 5.0),  # top [5]
        ("b", 1.0),  # top [1, 5]
        ("c", 1.05),  # top [1, 1.05, 5]: std 1.87
        ("a", 1.1),  # top [1, 1.05, 1.1]: plateau, iterations 1 >= patience 1
    ]
    decisions = [stopper(trial_id, {"loss": v}) for trial_id, v in calls]
    assert decisions == [False, False, False, True]
    assert stopper.stop_all() is True


def test_experiment_plateau_patience_counts_consecutive_plateau_results():
    stopper = ExperimentPlateauStopper("acc", std=0.01, top=2, mode="max", patience=2)
    # top-2 after each: [.5] [.9 .5] [.9 .9]=plateau 1, [1.5 .9] resets, [1.5 1.5]=1, [1.5 1.5]=2
    values = [0.5, 0.9, 0.9, 1.5, 1.5, 0.2]
    assert [stopper("t", {"acc": v}) for v in values] == [False] * 5 + [True]
    assert stopper.has_plateaued()


def test_experiment_plateau_ignores_nan_and_reports_missing_metric():
    stopper = ExperimentPlateauStopper("loss", std=0.1, top=2)
    assert stopper("a", {"loss": math.nan}) is False
    assert stopper("a", {"loss": 1.0}) is False
    assert stopper("b", {"loss": None}) is False
    assert stopper("b", {"loss": 1.0}) is True
    with pytest.raises(ConfigError, match=r"`loss`.*\['acc'\]"):
        stopper("c", {"acc": 1})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"top": 1}, "`top` is 1, but must be a whole number > 1"),
        ({"patience": -1}, "`patience` is -1, but must be a whole number >= 0"),
        ({"std": 0}, "`std` is 0, but must be a number > 0"),
        ({"mode": "avg"}, "`mode` is 'avg'"),
    ],
)
def test_experiment_plateau_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ExperimentPlateauStopper("loss", **kwargs)


def test_trial_plateau_grace_period_and_window():
    """Flat from the 3rd result, but not stopped before the 4th (grace_period=4); after that
    only a flat window of the last 3 results stops."""
    stopper = TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=4)
    values = [1.0, 1.0, 1.0, 1.0, 1.0]
    assert [stopper("a", {"loss": v}) for v in values] == [False, False, False, True, True]
    # windows from the 4th result: [1,1,1] [1,1,5] [1,5,5] [5,5,5]
    values = [5.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0]
    assert [stopper("b", {"loss": v}) for v in values] == [
        False, False, False, True, False, False, True]
    assert stopper("c", {"loss": 1.0}) is False  # per-trial state
    assert stopper.stop_all() is False


def test_trial_plateau_metric_threshold_and_mode():
    stopper = TrialPlateauStopper(
        "acc", num_results=2, grace_period=0, metric_threshold=0.9, mode="max"
    )
    assert [stopper("a", {"acc": v}) for v in (0.5, 0.5)] == [False, False]  # flat but < 0.9
    assert [stopper("b", {"acc": v}) for v in (0.95, 0.95)] == [False, True]
    stopper = TrialPlateauStopper(
        "loss", num_results=2, grace_period=0, metric_threshold=0.1, mode="min"
    )
    assert [stopper("a", {"loss": v}) for v in (0.5, 0.5)] == [False, False]
    assert [stopper("b", {"loss": v}) for v in (0.05, 0.05)] == [False, True]
    with pytest.raises(ConfigError, match="`mode` is None"):
        TrialPlateauStopper("acc", metric_threshold=0.0)  # 0.0 is a threshold too


def test_trial_plateau_nan_never_stops_and_missing_metric_errors():
    stopper = TrialPlateauStopper("loss", num_results=2, grace_period=0)
    assert [stopper("a", {"loss": v}) for v in (math.nan, math.nan, 1.0)] == [False, False, False]
    assert stopper("a", {"loss": 1.0}) is True
    with pytest.raises(ConfigError, match="`loss`"):
        stopper("a", {"acc": 1.0})


def test_timeout_stopper_budget_starts_at_first_check():
    clock = FakeClock()
    stopper = TimeoutStopper(10, clock=clock)
    clock.now += 100  # setup time before the first check is free
    assert stopper.stop_all() is False
    clock.now += 9.5
    assert stopper.stop_all() is False
    assert stopper("a", res(1)) is False  # never stops single trials
    clock.now += 0.5
    assert stopper.stop_all() is True


SHARED_NOW = [0.0]


def shared_clock() -> float:
    """A clock that survives pickling (by reference), like time.monotonic."""
    return SHARED_NOW[0]


def test_timeout_stopper_timedelta_and_resume():
    stopper = TimeoutStopper(datetime.timedelta(minutes=1), clock=shared_clock)
    stopper.stop_all()
    SHARED_NOW[0] += 40
    assert stopper.stop_all() is False
    revived = pickle.loads(pickle.dumps(stopper))  # the driver dies, resumes much later
    SHARED_NOW[0] += 3600
    assert revived.stop_all() is False  # downtime does not count
    SHARED_NOW[0] += 19
    assert revived.stop_all() is False
    SHARED_NOW[0] += 1
    assert revived.stop_all() is True


@pytest.mark.parametrize("timeout", ["10", None, True, -1])
def test_timeout_stopper_rejects_bad_timeouts(timeout):
    with pytest.raises(ConfigError, match="`timeout`"):
        TimeoutStopper(timeout)


def test_default_clock_is_monotonic():
    assert TimeoutStopper(5)._clock is stoppers.time.monotonic
    assert TimeoutStopper(5).stop_all() is False


def test_combined_stopper_is_or_and_feeds_every_stopper():
    seen = []
    first = FunctionStopper(lambda trial_id, result: True)
    second = FunctionStopper(lambda trial_id, result: seen.append(trial_id) or False)
    clock = FakeClock()
    timeout = TimeoutStopper(1, clock=clock)
    combined = CombinedStopper(first, second, timeout)
    assert combined("a", res(1)) is True
    assert seen == ["a"]  # no short-circuit: the second stopper saw the result
    assert combined.stop_all() is False
    clock.now += 2
    assert combined.stop_all() is True
    assert CombinedStopper()("a", res(1)) is False
    with pytest.raises(ConfigError, match="Stopper instances"):
        CombinedStopper({"acc": 1})


def test_as_stopper_conversions():
    assert isinstance(as_stopper(None), NoopStopper)
    assert isinstance(as_stopper({"training_iteration": 2}), DictStopper)
    assert as_stopper({"training_iteration": 2})("a", res(2)) is True
    assert isinstance(as_stopper(lambda trial_id, result: False), FunctionStopper)
    stopper = MaximumIterationStopper(2)
    assert as_stopper(stopper) is stopper


def test_as_stopper_rejections():
    with pytest.raises(ConfigError, match="must be None, a dict"):
        as_stopper(5)
    with pytest.raises(
        ConfigError, match=r"must be an instance: RunConfig\(stop=MaximumIterationStopper"
    ):
        as_stopper(MaximumIterationStopper)

    class LooksLikeAStopper:
        def __call__(self, trial_id, result):
            return False

        def stop_all(self):
            return True

    with pytest.raises(ConfigError, match="subclass hpctune.Stopper"):
        as_stopper(LooksLikeAStopper())


def test_ray_style_import_paths():
    assert stopper_alias.TrialPlateauStopper is TrialPlateauStopper
    assert set(stopper_alias.__all__) == set(stoppers.__all__)
    assert all(getattr(stopper_alias, name) is getattr(stoppers, name) for name in stoppers.__all__)
    assert hpctune.Stopper is Stopper


# -- state kept across a driver restore ----------------------------------------------------
def _restored(stopper, fresh):
    """``fresh`` continued from ``stopper``'s state, through a pickle as the snapshot does."""
    import pickle

    fresh.set_state(pickle.loads(pickle.dumps(stopper.get_state())))
    return fresh


def test_timeout_budget_survives_a_restore():
    clock = [0.0]
    stopper = TimeoutStopper(10, clock=lambda: clock[0])
    stopper.stop_all()
    clock[0] = 7.0
    assert stopper.stop_all() is False
    restored = _restored(stopper, TimeoutStopper(10, clock=lambda: clock[0]))
    clock[0] = 100.0  # the driver was dead meanwhile: not counted
    assert restored.stop_all() is False
    clock[0] = 103.5
    assert restored.stop_all() is True  # 7 + 3.5 s of the 10 s budget


def test_plateau_histories_survive_a_restore():
    def make():
        return CombinedStopper(
            TrialPlateauStopper("loss", std=0.01, num_results=3, grace_period=0),
            ExperimentPlateauStopper("loss", top=3, patience=0, std=0.01))

    stopper = make()
    assert not stopper("t1", {"loss": 1.0}) and not stopper("t1", {"loss": 1.0})
    restored = _restored(stopper, make())
    assert restored("t1", {"loss": 1.0}) is True  # the third equal value: a plateau
    assert make()("t1", {"loss": 1.0}) is False  # a stopper without the history does not stop


def test_dict_stopper_remembers_reported_keys():
    stopper = DictStopper({"acc": 0.9})
    stopper("t1", {"acc": 0.1})
    restored = _restored(stopper, DictStopper({"acc": 0.9}))
    assert restored("t1", {"loss": 3}) is False  # reported before, missing now: skipped
