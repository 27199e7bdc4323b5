"""Where schedulers and stoppers may decide, and the worker's wait for the verdict there."""

import threading
import time

import pytest

from hpctune.controller.bridge import bridge_scheduler
from hpctune.controller.enactor import Deciders
from hpctune.core.decision_points import EVERY, NEVER, DecisionPoints, at, declared, periodic
from hpctune.errors import ExperimentStateError
from hpctune.storage.control import (
    ControlRecord,
    read_control,
    write_control,
)
from hpctune.storage.result_log import ResultLog, read_events
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.stopper import (
    CombinedStopper,
    DictStopper,
    FunctionStopper,
    MaximumIterationStopper,
    NoopStopper,
    Stopper,
    TimeoutStopper,
    TrialPlateauStopper,
)
from hpctune.worker import verdict
from hpctune.worker.context import TrialContext
from hpctune.worker.session import Session, StopTrial


def trial(trial_id="t0"):
    return Trial(trial_id, {"lr": 0.1}, "", "/nonexistent")


def waits(points: DecisionPoints, upto: int = 12) -> list[int]:
    return [i for i in range(1, upto + 1) if points.waits_at(i)]


# -- the declaration itself ---------------------------------------------------------------------
def test_points_wait_where_declared():
    assert waits(NEVER) == []
    assert waits(EVERY, 5) == [1, 2, 3, 4, 5]
    assert waits(at([3, 2.5, 9])) == [3, 9]  # a rung at 2.5 is reached by iteration 3
    assert waits(periodic(4, 3)) == [4, 7, 10]
    assert waits(periodic(2.5, 2.5)) == [3, 6, 9, 12]


def test_union_keeps_both_or_waits_everywhere():
    assert waits(at([3]).union(at([5]))) == [3, 5]
    assert waits(at([2]).union(periodic(4, 4))) == [2, 4, 8, 12]
    assert periodic(4, 4).union(periodic(3, 3)) == EVERY  # no exact union of two series
    assert at([3]).union(EVERY) == EVERY
    assert NEVER.union(NEVER).never


def test_points_travel_through_the_trial_meta():
    for points in (NEVER, EVERY, at([1, 3, 9]), periodic(4, 2)):
        assert DecisionPoints.from_json(points.to_json()) == points
    assert DecisionPoints.from_json(None) == NEVER  # a trial launched by an older driver
    with pytest.raises(ExperimentStateError, match="delete the entry"):
        DecisionPoints.from_json({"iterations": ["x"]})


# -- schedulers ---------------------------------------------------------------------------------
def test_fifo_never_and_a_custom_scheduler_everywhere():
    class Mine(TrialScheduler):
        def on_trial_result(self, trial, result):
            return TrialScheduler.STOP

    class MyFifo(FIFOScheduler):
        def on_trial_result(self, trial, result):
            return TrialScheduler.STOP

    assert declared(FIFOScheduler(), "on_trial_result", trial().info) == NEVER
    assert declared(Mine(), "on_trial_result", trial().info) == EVERY
    assert declared(MyFifo(), "on_trial_result", trial().info) == EVERY  # it decides itself
    assert declared(MedianStoppingRule(metric="loss", mode="min"), "on_trial_result", trial().info) == EVERY
    assert declared(object(), "on_trial_result", trial().info) == EVERY  # duck-typed


def test_asha_waits_at_its_rungs_and_max_t():
    asha = ASHAScheduler(metric="loss", mode="min", max_t=10, grace_period=1, reduction_factor=3)
    t = trial()
    asha.on_trial_add(t.info)
    assert waits(asha.decision_points(t.info)) == [1, 3, 9, 10]  # stops the last trials at max_t
    asha = ASHAScheduler(metric="loss", mode="min", max_t=10, grace_period=2, reduction_factor=2,
                         stop_last_trials=False)
    asha.on_trial_add(t.info)
    assert waits(asha.decision_points(t.info), 20) == [2, 4, 8]
    on_time = ASHAScheduler(time_attr="time_total_s", metric="loss", mode="min", max_t=9)
    assert on_time.decision_points(t.info) == EVERY

    class Tweaked(ASHAScheduler):
        def on_trial_result(self, trial, result):
            return super().on_trial_result(trial, result)

    assert declared(Tweaked(metric="loss", mode="min"), "on_trial_result", t.info) == EVERY


def test_hyperband_waits_at_the_milestones_left_to_the_trials_bracket():
    hb = HyperBandScheduler(metric="loss", mode="min", max_t=9, reduction_factor=3)
    trials = [trial(f"t{i}") for i in range(12)]
    for t in trials:
        hb.on_trial_add(t.info)
    # Ray's brackets for max_t=9, eta=3: 3 trials from 9, 5 from 3 (then 6), 9 from 1 (then 3, 6)
    assert waits(hb.decision_points(trials[0].info)) == [9]
    assert waits(hb.decision_points(trials[3].info)) == [3, 6, 9]
    assert waits(hb.decision_points(trials[8].info)) == [1, 3, 6, 9]
    assert hb.decision_points(trial("unknown").info) == EVERY  # not in a bracket yet


def test_pbt_waits_at_its_next_perturbation_point_and_every_interval_after():
    pbt = PopulationBasedTraining(time_attr="training_iteration", metric="loss", mode="min",
                                  perturbation_interval=4, hyperparam_mutations={"lr": [0.1, 0.2]})
    t = trial()
    pbt.on_trial_add(t.info)
    assert waits(pbt.decision_points(t.info)) == [4, 8, 12]
    pbt._trials[t.trial_id].last_perturbation_time = 6  # an exploit continued it from a donor's 6
    assert waits(pbt.decision_points(t.info), 16) == [10, 14]
    burn_in = PopulationBasedTraining(time_attr="training_iteration", metric="loss", mode="min",
                                      perturbation_interval=2, burn_in_period=5,
                                      hyperparam_mutations={"lr": [0.1, 0.2]})
    assert waits(burn_in.decision_points(t.info)) == [5, 7, 9, 11]
    by_time = PopulationBasedTraining(metric="loss", mode="min", hyperparam_mutations={"lr": [0.1]})
    assert by_time.decision_points(t.info) == EVERY


# -- stoppers -----------------------------------------------------------------------------------
def test_stoppers_declare_their_thresholds():
    def points(stopper):
        return declared(stopper, "__call__", "t0")

    assert points(NoopStopper()) == NEVER
    assert points(TimeoutStopper(60)) == NEVER
    assert waits(points(MaximumIterationStopper(5))) == [5]
    assert waits(points(DictStopper({"training_iteration": 3}))) == [3]
    assert points(DictStopper({"training_iteration": 3, "acc": 0.9})) == EVERY
    assert points(FunctionStopper(lambda trial_id, result: False)) == EVERY
    assert points(TrialPlateauStopper(metric="loss")) == EVERY
    assert waits(points(CombinedStopper(MaximumIterationStopper(3), DictStopper({"training_iteration": 7})))) == [3, 7]
    assert points(CombinedStopper(MaximumIterationStopper(3), TrialPlateauStopper(metric="loss"))) == EVERY

    class Mine(Stopper):
        def __call__(self, trial_id, result):
            return True

    class MyMax(MaximumIterationStopper):
        def __call__(self, trial_id, result):
            return True

    assert points(Mine()) == EVERY
    assert points(MyMax(5)) == EVERY


def test_the_driver_unites_scheduler_and_stopper():
    asha = bridge_scheduler(ASHAScheduler(metric="loss", mode="min", max_t=9, grace_period=1,
                                          reduction_factor=3))
    t = trial()
    asha.on_trial_add(t.info)
    deciders = Deciders(BasicVariantGenerator(), asha, MaximumIterationStopper(5), CallbackList([]))
    assert waits(deciders.decision_points(t)) == [1, 3, 5, 9]

    class RayStyle:  # Ray's hook signature: it decides anywhere
        def on_trial_result(self, tune_controller, trial, result):
            return "CONTINUE"

        def decision_points(self, trial):
            return NEVER

    ray_style = Deciders(BasicVariantGenerator(), bridge_scheduler(RayStyle()), NoopStopper(), CallbackList([]))
    assert ray_style.decision_points(t) == EVERY


# -- the worker's wait --------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_wait_ends_at_the_verdict_for_its_iteration(tmp_path):
    path = tmp_path / "control.json"
    write_control(path, ControlRecord.proceed(2))  # an earlier wait's answer
    clock = FakeClock()

    def answer_later(seconds):
        clock.sleep(seconds)
        if clock.now > 0.02:
            write_control(path, ControlRecord.proceed(3))

    record = verdict.await_verdict(path, 3, timeout_s=5, clock=clock, sleep=answer_later)
    assert record.lets_go_on_after(3) and not record.lets_go_on_after(2)
    assert clock.sleeps[:4] == [0.001, 0.002, 0.004, 0.008] and max(clock.sleeps) == verdict.MAX_POLL_S
    write_control(path, ControlRecord.stop("stopped by scheduler", final=True))
    assert verdict.await_verdict(path, 4, timeout_s=5, clock=clock, sleep=clock.sleep).is_stop
    write_control(path, ControlRecord.pause())
    assert verdict.await_verdict(path, 4, timeout_s=5, clock=clock, sleep=clock.sleep).is_pause


def test_a_silent_driver_is_given_up_on_with_a_note(tmp_path, capsys):
    clock = FakeClock()
    assert verdict.await_verdict(tmp_path / "control.json", 3, timeout_s=2, clock=clock,
                                 sleep=clock.sleep) is None
    assert 2.0 <= clock.now < 2.0 + verdict.MAX_POLL_S + 1e-9
    assert "did not answer the result of iteration 3 within 2 s" in capsys.readouterr().err


def make_session(tmp_path, points):
    trial_dir = tmp_path / "exp" / "trials" / "t_00000"
    trial_dir.mkdir(parents=True)
    context = TrialContext("t_00000", "t_00000", str(trial_dir), "exp", "0", slurm_job_id="4242",
                           experiment_id="t")
    return Session(context, ResultLog(trial_dir / "result.jsonl"), trial_dir / "control.json",
                   stop_grace_s=1e6, decision_points=points)


def answer(session, iteration, record, delay=0.05):
    def write():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            events = read_events(session.log.path)
            if any(e.get("result", {}).get("training_iteration") == iteration for e in events):
                time.sleep(delay)
                write_control(session.control_path, record)
                return
            time.sleep(0.005)
    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def test_report_waits_only_at_decision_points_and_stops_at_the_deciding_result(tmp_path):
    session = make_session(tmp_path, at([2, 3]))
    session.report({"loss": 1.0})  # iteration 1: no wait, nothing to answer
    helper = answer(session, 2, ControlRecord.proceed(2))
    start = time.monotonic()
    session.report({"loss": 1.0})
    assert time.monotonic() - start >= 0.05  # it waited for the proceed
    helper.join()
    answer(session, 3, ControlRecord.stop("stop criterion reached", final=True))
    with pytest.raises(StopTrial, match="stop criterion reached"):
        session.report({"loss": 1.0})
    events = [e for e in read_events(session.log.path) if e["event"] == "result"]
    assert [(e["result"]["training_iteration"], e.get("waits", False)) for e in events] == [
        (1, False), (2, True), (3, True)]
    assert read_control(session.control_path).is_stop


def test_a_session_without_points_never_waits(tmp_path):
    session = make_session(tmp_path, NEVER)
    start = time.monotonic()
    for _ in range(50):
        session.report({"loss": 1.0})
    assert time.monotonic() - start < 2.0
    assert not any(e.get("waits") for e in read_events(session.log.path))


def test_after_a_timeout_the_run_waits_no_more(tmp_path, monkeypatch):
    session = make_session(tmp_path, EVERY)
    calls = []
    monkeypatch.setattr("hpctune.worker.verdict.await_verdict",
                        lambda path, iteration: calls.append(iteration))  # None: no answer came
    session.report({"loss": 1.0})
    session.report({"loss": 1.0})
    assert calls == [1]
    assert session.verdicts.points == NEVER
