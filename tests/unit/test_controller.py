"""The driver loop, driven step by step over a scripted in-process backend and a fake clock.

Each test makes the fake jobs write what workers would write (``tests/unit/fake_backend.py``),
calls ``Controller.step()`` and then checks what happened to every trial (status, failures,
job ids) and every call the backend got, not only counts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from hpctune import tune
from hpctune.config import CheckpointConfig
from hpctune.controller import Controller, ControllerSettings
from hpctune.controller.events import Reading
from hpctune.controller.snapshot import on_interrupt
from hpctune.errors import TuneError
from hpctune.storage.control import ControlRecord
from hpctune.storage.driver_state import load_driver_state
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.journal import read_trial_state
from hpctune.storage.result_log import read_events
from hpctune.tune.callback import Callback, CallbackList
from hpctune.tune.experiment.trial import TrialStatus
from hpctune.tune.schedulers.trial_scheduler import Decision, FIFOScheduler
from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.stopper import Stopper, as_stopper
from tests.unit.fake_backend import FakeBackend, FakeClock, FakeJob, Launch

PENDING, RUNNING, TERMINATED, ERROR = (TrialStatus.PENDING, TrialStatus.RUNNING,
                                       TrialStatus.TERMINATED, TrialStatus.ERROR)
CPU1 = {"cpu": 1, "gpu": 0}


# -- recording collaborators ----------------------------------------------------------------
class RecordingScheduler(FIFOScheduler):
    """FIFO that records every call and returns the decisions a test scripted."""

    def __init__(self, decisions: dict[tuple[str, int], Decision] | None = None):
        super().__init__()
        self.decisions = decisions or {}
        self.calls: list[tuple] = []

    def on_trial_add(self, trial):
        self.calls.append(("add", trial.trial_id))

    def on_trial_result(self, trial, result):
        iteration = result["training_iteration"]
        self.calls.append(("result", trial.trial_id, iteration, result.get("loss")))
        return self.decisions.get((trial.trial_id, iteration), Decision.CONTINUE)

    def on_trial_complete(self, trial, result):
        self.calls.append(("complete", trial.trial_id, (result or {}).get("training_iteration")))

    def on_trial_error(self, trial):
        self.calls.append(("error", trial.trial_id))

    def on_trial_remove(self, trial):
        self.calls.append(("remove", trial.trial_id))

    def without_adds(self) -> list[tuple]:
        return [c for c in self.calls if c[0] != "add"]


class RecordingSearcher(BasicVariantGenerator):
    """The default searcher, recording what the controller tells it."""

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.told: list[tuple] = []

    def on_trial_result(self, trial_id, result):
        self.told.append(("result", trial_id, result["training_iteration"]))

    def on_trial_complete(self, trial_id, result=None, error=False):
        super().on_trial_complete(trial_id, result, error)
        self.told.append(("complete", trial_id, (result or {}).get("training_iteration"), error))

    def on_trial_stopped_early(self, trial_id, result):
        super().on_trial_stopped_early(trial_id, result)
        self.told.append(("stopped_early", trial_id, (result or {}).get("training_iteration")))


class RecordingCallback(Callback):
    def __init__(self):
        self.calls: list[tuple] = []

    def on_trial_start(self, iteration, trials, trial, **info):
        self.calls.append(("start", trial.trial_id))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.calls.append(("result", trial.trial_id, result["training_iteration"]))

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.calls.append(("complete", trial.trial_id))

    def on_trial_error(self, iteration, trials, trial, **info):
        self.calls.append(("error", trial.trial_id))


@dataclass
class Rig:
    """A controller over a fake backend and a fake clock, with its recording collaborators."""

    ctl: Controller
    backend: FakeBackend
    clock: FakeClock
    scheduler: RecordingScheduler
    searcher: RecordingSearcher
    callback: RecordingCallback
    exp: ExperimentDir
    space: dict = field(default_factory=dict)

    def step(self, times: int = 1) -> None:
        for _ in range(times):
            self.ctl.step()

    def trial(self, index: int):
        return self.ctl.trials[tid(index)]

    def job(self, index: int) -> FakeJob:
        return self.backend.job(tid(index))

    def statuses(self) -> dict[str, TrialStatus]:
        return {t.trial_id: t.status for t in self.ctl.trial_list}

    def control(self, index: int) -> ControlRecord | None:
        return self.exp.read_control(tid(index))


def tid(index: int) -> str:
    return f"t_{index:05d}"


def grid(n: int) -> dict:
    return {"x": tune.grid_search(list(range(n)))}


def make_rig(tmp_path: Path, space: dict | None = None, num_samples: int = 1,
             decisions: dict | None = None, stop: Any = None, backend: FakeBackend | None = None,
             exp_name: str = "exp", **settings: Any) -> Rig:
    exp = ExperimentDir(tmp_path / exp_name)
    exp.create()
    space = space if space is not None else grid(3)
    backend = backend or FakeBackend(exp)
    searcher = RecordingSearcher(seed=0)
    assert searcher.set_search_properties("loss", "min", space, num_samples=num_samples)
    scheduler = RecordingScheduler(decisions)
    scheduler.set_search_properties("loss", "min")
    callback = RecordingCallback()
    clock = FakeClock()
    settings = {"trial_id_prefix": "t", "metric": "loss", "mode": "min", "param_space": space,
                **settings}
    ctl = Controller(exp, backend, searcher, scheduler, as_stopper(stop),
                     CallbackList([callback]), ControllerSettings(**settings), clock=clock)
    return Rig(ctl, backend, clock, scheduler, searcher, callback, exp, space)


def start_all(rig: Rig, *indices: int, loss: float = 1.0) -> None:
    for i in indices:
        rig.job(i).start().report(loss=loss)


# -- launching ----------------------------------------------------------------------------------
def test_a_grid_goes_out_as_one_throttled_launch_in_trial_order(tmp_path):
    """Five trials: one launch with the throttle, job ids in trial order, all PENDING; later
    steps launch nothing more; the snapshot written at launch knows every job id."""
    rig = make_rig(tmp_path, grid(5), max_concurrent=2)
    rig.step()
    ids = [tid(i) for i in range(5)]
    assert rig.backend.launches == [Launch(ids, CPU1, 2, [f"100_{i}" for i in range(5)])]
    for i in range(5):
        trial = rig.trial(i)
        assert (trial.config, trial.job_id, trial.status, trial.job_state) == (
            {"x": i}, f"100_{i}", PENDING, "PENDING")
        assert trial.submitted_at == rig.clock.now and trial.num_failures == 0
    snapshot = read_trial_state(rig.exp).as_snapshot()  # state.json and its journal
    assert [(t["trial_id"], t["job_id"]) for t in snapshot["trials"]] == [
        (tid(i), f"100_{i}") for i in range(5)]
    rig.step(3)
    assert len(rig.backend.launches) == 1 and rig.backend.cancels == []
    assert rig.backend.polls == 4
    assert rig.scheduler.calls == [("add", t) for t in ids]


def test_each_resource_shape_is_its_own_launch(tmp_path):
    """Trials asking for different resources go out as one launch per shape, each in trial order."""
    rig = make_rig(tmp_path, grid(4), max_concurrent=3,
                   resources_for=lambda config: {"cpu": 1 + config["x"] % 2, "gpu": 0})
    rig.step()
    assert rig.backend.launches == [
        Launch([tid(0), tid(2)], {"cpu": 1, "gpu": 0}, 3, ["100_0", "100_1"]),
        Launch([tid(1), tid(3)], {"cpu": 2, "gpu": 0}, 3, ["101_0", "101_1"]),
    ]
    assert [rig.trial(i).job_id for i in range(4)] == ["100_0", "101_0", "100_1", "101_1"]


def test_launches_stay_within_the_users_submit_limit(tmp_path):
    """With room for 2 jobs, 2 of 4 trials go out; the rest go out as the first ones leave."""
    rig = make_rig(tmp_path, grid(4))
    rig.backend.room = 2
    rig.step()
    assert rig.backend.launches == [Launch([tid(0), tid(1)], CPU1, None, ["100_0", "100_1"])]
    assert [rig.trial(i).job_id for i in range(4)] == ["100_0", "100_1", None, None]
    for i in (0, 1):
        rig.job(i).start().report(loss=1.0).complete()
    rig.step()  # launches come before reading the logs in a step: the next one has room
    assert len(rig.backend.launches) == 1
    rig.step()
    assert rig.backend.launches[1:] == [Launch([tid(2), tid(3)], CPU1, None, ["101_0", "101_1"])]
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): TERMINATED, tid(2): PENDING,
                              tid(3): PENDING}


# -- reading results ----------------------------------------------------------------------------
def test_results_reach_searcher_scheduler_and_callbacks_in_report_order(tmp_path):
    """Results of several trials are handed on in the order they were reported, once each."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.job(0).start().report(loss=0.5)
    rig.job(1).start().report(loss=0.4)
    rig.job(0).report(loss=0.3)
    rig.step()
    assert rig.scheduler.without_adds() == [
        ("result", tid(0), 1, 0.5), ("result", tid(1), 1, 0.4), ("result", tid(0), 2, 0.3)]
    assert rig.searcher.told == [("result", tid(0), 1), ("result", tid(1), 1), ("result", tid(0), 2)]
    assert rig.callback.calls == [("start", tid(0)), ("result", tid(0), 1), ("start", tid(1)),
                                  ("result", tid(1), 1), ("result", tid(0), 2)]
    t0, t1 = rig.trial(0), rig.trial(1)
    assert (t0.status, t0.num_results, t0.last_result["loss"], t0.max_iteration) == (RUNNING, 2, 0.3, 2)
    assert (t1.status, t1.num_results, t1.last_result["loss"], t1.max_iteration) == (RUNNING, 1, 0.4, 1)
    assert t0.metric_analysis["loss"]["min"] == 0.3 and t0.metric_analysis["loss"]["max"] == 0.5
    assert (t0.job_state, t0.node, t0.started_at) == ("RUNNING", "fake-node", rig.clock.now)

    rig.step()  # nothing new: nothing handed on again
    assert len(rig.scheduler.without_adds()) == 3 and len(rig.searcher.told) == 3

    rig.job(0).complete()
    rig.step()
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): RUNNING}
    assert rig.scheduler.without_adds()[3:] == [("complete", tid(0), 2)]
    assert rig.searcher.told[3:] == [("complete", tid(0), 2, False)]
    assert rig.callback.calls[5:] == [("complete", tid(0))]
    assert t0.last_result["done"] is True and t0.ended_at == rig.clock.now
    assert t0.trial_id not in rig.ctl.live and not rig.ctl.done

    rig.job(1).complete()
    rig.step()
    assert rig.ctl.done and rig.backend.cancels == [] and len(rig.backend.launches) == 1


def test_events_of_an_older_job_are_not_taken_for_the_current_one(tmp_path):
    """A start written by a job the trial no longer runs as does not make it RUNNING."""
    rig = make_rig(tmp_path, grid(1), max_failures=1)
    rig.step()
    rig.job(0).start().error("first run failed")
    rig.step(2)  # failed, then relaunched as 101_0
    stale = FakeJob(rig.backend, "100_0", tid(0), state="RUNNING")
    stale.start()
    rig.step()
    trial = rig.trial(0)
    assert (trial.job_id, trial.status, trial.num_failures) == ("101_0", PENDING, 1)
    assert [c for c in rig.callback.calls if c[0] == "start"] == [("start", tid(0))]


def test_a_late_end_of_an_older_job_does_not_end_the_retried_trial(tmp_path):
    """A job the trial was retried away from (a rank still running when its peer failed, a
    job declared lost) that reports or ends later changes nothing: the trial ends with its
    current job, and only that job's results reach the scheduler."""
    rig = make_rig(tmp_path, grid(1), max_failures=1)
    rig.step()
    rig.job(0).start().error("first run failed")
    rig.step(2)  # failed, then relaunched as 101_0
    rig.job(0).start().report(loss=2.0)
    stale = FakeJob(rig.backend, "100_0", tid(0), state="RUNNING")
    stale.report(loss=0.5).complete()
    rig.step()
    trial = rig.trial(0)
    assert (trial.job_id, trial.status) == ("101_0", RUNNING)
    assert (trial.num_results, trial.last_result["loss"]) == (1, 2.0)
    rig.job(0).report(loss=1.5).complete()
    rig.step(2)
    assert (trial.status, trial.num_failures, trial.num_results) == (TERMINATED, 1, 2)
    assert trial.last_result["loss"] == 1.5
    assert rig.scheduler.without_adds() == [("result", tid(0), 1, 2.0), ("result", tid(0), 2, 1.5),
                                            ("complete", tid(0), 2)]


# -- stopping -------------------------------------------------------------------------------------
def test_a_stop_decision_writes_control_json_and_cancels_only_that_trial(tmp_path):
    """STOP for trial 1 at iteration 2: its control.json asks to stop, its job (only) is
    cancelled in that step; the worker's `stopped` ends it, and the scheduler and searcher
    hear of an early stop, not a completion."""
    rig = make_rig(tmp_path, grid(3), decisions={(tid(1), 2): Decision.STOP})
    rig.step()
    start_all(rig, 0, 1, 2)
    rig.step()
    for i in (0, 1, 2):
        rig.job(i).report(loss=0.5)
    rig.step()
    assert rig.control(1).is_stop and rig.control(1).reason == "stopped by scheduler"
    assert rig.control(0) is None and rig.control(2) is None
    assert rig.backend.cancels == [["100_1"]]
    assert rig.job(1).written[-1] == "stopped" and rig.job(1).state == "CANCELLED"
    t1 = rig.trial(1)
    assert (t1.status, t1.stop_reason, t1.stopped_by_scheduler) == (TERMINATED, "stopped by scheduler", True)
    assert t1.stop_requested_at == rig.clock.now and t1.last_result["training_iteration"] == 2
    assert rig.statuses() == {tid(0): RUNNING, tid(1): TERMINATED, tid(2): RUNNING}
    assert ("remove", tid(1)) in rig.scheduler.calls
    assert not [c for c in rig.scheduler.calls if c[0] == "complete"]
    assert ("stopped_early", tid(1), 2) in rig.searcher.told
    rig.step(2)
    assert rig.backend.cancels == [["100_1"]], "a stopped trial is cancelled once"


def test_stop_grace_delays_no_scancel(tmp_path):
    """With stop_grace_s=30 the stopped trial is still cancelled in the step of the decision
    (the grace bounds the worker's cleanup); a stopper's stop is enacted the same way."""
    rig = make_rig(tmp_path, grid(2), stop={"training_iteration": 2}, stop_grace_s=30.0)
    rig.step()
    rig.job(0).start().report(loss=1.0).report(loss=0.9)
    rig.job(1).start().report(loss=1.0)
    rig.step()
    assert rig.backend.cancels == [["100_0"]]
    assert rig.control(0).reason == "stop criterion reached" and rig.control(1) is None
    t0 = rig.trial(0)
    assert (t0.status, t0.stopped_by_scheduler) == (TERMINATED, False)
    assert ("complete", tid(0), 2) in rig.scheduler.calls  # a stopper's stop is a completion


def test_results_after_the_stop_decision_do_not_change_the_trial(tmp_path):
    """Results already in the log past the stop decision are counted, not acted on."""
    rig = make_rig(tmp_path, grid(1), decisions={(tid(0), 1): Decision.STOP})
    rig.step()
    job = rig.job(0)
    job.hung = True  # ends without a word when cancelled
    job.start().report(loss=1.0).report(loss=0.1)
    rig.step()
    trial = rig.trial(0)
    assert (trial.status, trial.results_after_stop) == (TERMINATED, 1)
    assert trial.last_result["training_iteration"] == 1 and trial.max_iteration == 1
    assert rig.scheduler.without_adds() == [("result", tid(0), 1, 1.0), ("remove", tid(0))]
    assert rig.backend.cancels == [["100_0"]]


def test_a_time_budget_ends_the_experiment_on_the_fake_clock(tmp_path):
    """time_budget_s=100: nothing happens at 99 s; at 100 s every running trial is told to
    stop and cancelled in one call, no new trial is created."""
    rig = make_rig(tmp_path, grid(2), time_budget_s=100.0)
    rig.step()
    start_all(rig, 0, 1)
    rig.clock.advance(99)
    rig.step()
    assert rig.backend.cancels == [] and not rig.ctl.state.stop_everything
    rig.clock.advance(1)
    rig.step()
    assert rig.backend.cancels == [["100_0", "100_1"]]
    assert [rig.control(i).reason for i in (0, 1)] == ["time budget of 100.0 s spent"] * 2
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): TERMINATED}
    assert rig.ctl.done and rig.ctl.state.fatal_error is None


# -- failures and retries -----------------------------------------------------------------------
def test_a_failed_trial_is_retried_up_to_max_failures_and_no_further(tmp_path):
    """max_failures=1: the first error relaunches the trial alone (a new job), the second is
    final; the other trial runs once and is untouched."""
    rig = make_rig(tmp_path, grid(2), max_failures=1, max_concurrent=2)
    rig.step()
    rig.job(0).start().error("RuntimeError: first")
    rig.job(1).start().report(loss=1.0).complete()
    rig.step()
    t0, t1 = rig.trial(0), rig.trial(1)
    assert (t0.status, t0.num_failures, t0.job_id, t0.awaiting_restart) == (PENDING, 1, None, True)
    assert t0.error is None
    rig.step()
    assert rig.backend.launches[1:] == [Launch([tid(0)], CPU1, 2, ["101_0"])]
    assert t0.job_id == "101_0"
    rig.job(0).start().error("RuntimeError: second")
    rig.step(3)
    assert (t0.status, t0.num_failures, t0.error) == (ERROR, 2, "RuntimeError: second")
    assert (t1.status, t1.num_failures) == (TERMINATED, 0)
    assert len(rig.backend.launches) == 2
    assert rig.backend.jobs_of(tid(0)) == ["100_0", "101_0"] and rig.backend.jobs_of(tid(1)) == ["100_1"]
    assert rig.scheduler.without_adds() == [("result", tid(1), 1, 1.0), ("complete", tid(1), 1),
                                            ("error", tid(0))]
    assert rig.searcher.told == [("result", tid(1), 1), ("complete", tid(1), 1, False),
                                 ("complete", tid(0), None, True)]
    assert [c for c in rig.callback.calls if c[0] == "error"] == [("error", tid(0))]
    assert rig.ctl.done and rig.backend.cancels == []


def test_without_retries_the_first_failure_is_final(tmp_path):
    """max_failures=0: an error ends the trial; nothing is relaunched."""
    rig = make_rig(tmp_path, grid(2), max_failures=0)
    rig.step()
    rig.job(0).start().error("ValueError: bad x")
    rig.job(1).start().report(loss=2.0)
    rig.step(2)
    assert rig.statuses() == {tid(0): ERROR, tid(1): RUNNING}
    assert (rig.trial(0).num_failures, rig.trial(0).error) == (1, "ValueError: bad x")
    assert len(rig.backend.launches) == 1


def test_a_trial_added_unseen_is_launched(tmp_path):
    """The launcher keeps its list of trials without a job between steps (a pass over every
    live trial per step was its largest cost); a trial that joins the live ones without an
    assignment the launcher saw (one built before it watched) is launched all the same."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.job(0).start()
    rig.step()
    late = rig.trial(1).__class__(tid(9), {"x": 9}, "9", str(rig.exp.trial_dir(tid(9))))
    rig.ctl.launcher.idle.assigned.clear()  # as if built before the launcher watched
    rig.ctl.table.add(late, rig.ctl.table.tails[tid(1)])
    rig.ctl.launcher.launch_pending()
    assert late.job_id is not None and rig.backend.launches[-1].trial_ids == [tid(9)]


def test_a_trial_that_fails_after_a_quiet_step_is_relaunched(tmp_path):
    """The launcher's list of trials without a job is looked at again when a trial loses its
    job: here after a step in which the list held none (the other trial ended before)."""
    rig = make_rig(tmp_path, grid(2), max_failures=1)
    rig.step()
    rig.job(1).start().report(loss=1.0).complete()
    rig.job(0).start()
    rig.step(2)  # trial 1 retired; the list is looked at again and holds nothing
    assert rig.ctl.launcher.waiting() == [] and not rig.ctl.launcher.idle.assigned  # all looked at
    rig.job(0).error("RuntimeError: once")
    rig.step(2)
    assert rig.backend.jobs_of(tid(0)) == ["100_0", "101_0"]


def test_unlimited_retries_with_max_failures_minus_one(tmp_path):
    """max_failures=-1: a trial that fails three times is relaunched three times, then succeeds."""
    rig = make_rig(tmp_path, grid(1), max_failures=-1)
    rig.step()
    for _ in range(3):
        rig.job(0).start().error()
        rig.step(2)
    rig.job(0).start().report(loss=0.0).complete()
    rig.step()
    trial = rig.trial(0)
    assert (trial.status, trial.num_failures) == (TERMINATED, 3)
    assert rig.backend.jobs_of(tid(0)) == ["100_0", "101_0", "102_0", "103_0"]


@pytest.mark.parametrize("accounting", [True, False])
def test_a_job_that_vanishes_is_a_failure_named_with_its_end_state(tmp_path, accounting):
    """A running job that leaves the queue without a final event: the backend is asked for its
    end state (once, for that job only), and the error names it and the job's stderr."""
    rig = make_rig(tmp_path, grid(2), max_failures=0)
    rig.backend.accounting = accounting
    rig.step()
    start_all(rig, 0, 1)
    rig.step()
    rig.job(0).vanish("NODE_FAIL")
    rig.step()
    assert rig.backend.final_state_queries == [["100_0"]]
    t0 = rig.trial(0)
    assert (t0.status, t0.num_failures) == (ERROR, 1)
    state = "NODE_FAIL" if accounting else "unknown: no accounting record"
    assert f"Job 100_0 ended without a final result (scheduler state: {state})" in t0.error
    assert rig.backend.log_paths("100_0")[1] in t0.error
    assert rig.statuses()[tid(1)] is RUNNING


def test_a_job_cancelled_on_request_is_a_stop_not_a_failure(tmp_path):
    """`hpctune cancel` writes a stop request, then scancels: the vanished job is a stop."""
    rig = make_rig(tmp_path, grid(1))
    rig.step()
    start_all(rig, 0)
    rig.step()
    rig.exp.write_control(tid(0), ControlRecord.stop("cancelled by the user"))
    rig.job(0).vanish("CANCELLED")
    rig.step()
    trial = rig.trial(0)
    assert (trial.status, trial.num_failures, trial.stop_reason) == (TERMINATED, 0, "cancelled")
    assert rig.backend.final_state_queries == []


def test_a_retry_waits_for_a_free_slot_of_the_throttled_array(tmp_path):
    """max_concurrent_trials=2: the retried trial goes out only when nothing of the array is
    queued and fewer than 2 trials are in Slurm, so that it never runs as a third one."""
    rig = make_rig(tmp_path, grid(3), max_failures=1, max_concurrent=2)
    rig.step()
    rig.job(0).start().error()
    rig.job(1).start()
    rig.step(2)  # trial 2 is still queued in the array: no relaunch
    assert len(rig.backend.launches) == 1
    rig.job(2).start()
    rig.step(2)  # trials 1 and 2 run: both slots taken
    assert len(rig.backend.launches) == 1
    rig.job(1).report(loss=1.0).complete()
    rig.step(2)
    assert rig.backend.launches[1:] == [Launch([tid(0)], CPU1, 2, ["101_0"])]
    assert [(t.status, t.num_failures) for t in rig.ctl.trial_list] == [
        (PENDING, 1), (TERMINATED, 0), (RUNNING, 0)]


def test_a_retry_waits_while_a_task_of_the_array_is_queued(tmp_path):
    """A task Slurm has not started yet (no resources) would start beside the resubmitted
    trial, past the throttle: the retry waits until no task of the array is queued."""
    rig = make_rig(tmp_path, grid(3), max_failures=1, max_concurrent=3)
    rig.step()
    rig.job(0).start().error()
    rig.job(1).start()
    rig.step(3)  # a slot is free, but trial 2's task still waits in the queue
    assert len(rig.backend.launches) == 1
    rig.job(2).start()
    rig.step(2)
    assert rig.backend.launches[1:] == [Launch([tid(0)], CPU1, 3, ["101_0"])]


def test_a_restart_slurm_did_without_warning_counts_as_a_failure(tmp_path):
    """A start with a higher restart count and no preemption before it (node failure, kill -9)
    is a failure: within max_failures the trial goes on in the same job, beyond it the job is
    cancelled and the trial fails. A preemption's restart is no failure."""
    rig = make_rig(tmp_path, grid(2), max_failures=1)
    rig.step()
    start_all(rig, 0, 1)
    rig.step()
    rig.job(0).restarted_by_slurm().start(restored_iteration=1).report(loss=0.9)
    rig.job(1).preempted().requeued().start(restored_iteration=1).report(loss=0.9)
    rig.step()
    t0, t1 = rig.trial(0), rig.trial(1)
    assert [(t.status, t.num_failures, t.restart_count, t.job_id) for t in (t0, t1)] == [
        (RUNNING, 1, 1, "100_0"), (RUNNING, 0, 1, "100_1")]
    assert t1.preemptions == 1
    rig.job(0).restarted_by_slurm().start(restored_iteration=2)
    rig.step()
    assert (t0.status, t0.num_failures) == (ERROR, 2)
    assert "failed 2 times; the last time the job was restarted by Slurm without warning" in t0.error
    assert rig.backend.cancels == [["100_0"]]
    assert len(rig.backend.launches) == 1 and t1.status is RUNNING


# -- heartbeats ---------------------------------------------------------------------------------
def test_a_running_job_silent_for_the_heartbeat_timeout_is_cancelled_and_retried(tmp_path):
    """heartbeat_timeout_s=60: silent for exactly 60 s is fine, 61 s is lost: cancelled and
    relaunched. A job with heartbeats and a job still queued (PENDING) are left alone."""
    rig = make_rig(tmp_path, grid(3), heartbeat_timeout_s=60.0, max_failures=1)
    rig.step()
    start_all(rig, 0, 1)  # trial 2's job stays queued
    rig.job(0).hung = True
    rig.step()
    assert rig.trial(0).last_event_at == rig.clock.now
    rig.clock.advance(45)
    rig.job(1).heartbeat()
    rig.step()
    rig.clock.advance(15)  # trial 0 silent for 60 s
    rig.step()
    assert rig.backend.cancels == []
    rig.clock.advance(1)
    rig.step()
    assert rig.backend.cancels == [["100_0"]]
    t0 = rig.trial(0)
    assert (t0.status, t0.num_failures, t0.job_id) == (PENDING, 1, None)
    rig.step()
    assert rig.backend.launches[1:] == [Launch([tid(0)], CPU1, None, ["101_0"])]
    assert [(t.status, t.num_failures, t.job_id) for t in (rig.trial(1), rig.trial(2))] == [
        (RUNNING, 0, "100_1"), (PENDING, 0, "100_2")]
    assert rig.trial(2).job_state == "PENDING"


def test_a_lost_job_without_retries_fails_with_a_heartbeat_error(tmp_path):
    """Without retries the lost trial ends as an ERROR saying why."""
    rig = make_rig(tmp_path, grid(1), heartbeat_timeout_s=10.0)
    rig.step()
    rig.job(0).start()
    rig.job(0).hung = True
    rig.step()
    rig.clock.advance(11)
    rig.step()
    trial = rig.trial(0)
    assert (trial.status, trial.num_failures) == (ERROR, 1)
    assert "No heartbeat from job 100_0 for 10 s" in trial.error
    assert rig.backend.cancels == [["100_0"]]


def test_no_heartbeat_timeout_means_silence_is_never_fatal(tmp_path):
    rig = make_rig(tmp_path, grid(1), heartbeat_timeout_s=None)
    rig.step()
    rig.job(0).start()
    rig.step()
    rig.clock.advance(1e6)
    rig.step()
    assert rig.backend.cancels == [] and rig.trial(0).status is RUNNING


# -- fail_fast -----------------------------------------------------------------------------------
def test_fail_fast_stops_every_other_trial_and_ends_the_run(tmp_path):
    """fail_fast: trial 1's error stops trials 0 and 2 (control.json, one cancel for all,
    including trial 3's queued job); trial 3 never started, so it stays PENDING outside the
    loop; nothing is launched again and the run is over."""
    rig = make_rig(tmp_path, grid(4), fail_fast=True)
    rig.step()
    start_all(rig, 0, 1, 2)
    rig.step()
    rig.job(1).error("ValueError: diverged")
    rig.step()
    assert rig.backend.cancels == [["100_0", "100_2", "100_3"]]
    for i in (0, 2):
        assert rig.control(i).is_stop and "fail_fast" in rig.control(i).reason
    assert rig.control(3) is None
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): ERROR, tid(2): TERMINATED, tid(3): PENDING}
    assert rig.trial(1).num_failures == 1
    assert rig.trial(3).job_id is None
    assert rig.ctl.done and rig.ctl.state.fatal_error.startswith("Trial t_00001 failed (fail_fast is set)")
    rig.step(2)
    assert len(rig.backend.launches) == 1 and len(rig.backend.cancels) == 1


def test_fail_fast_raise_raises_at_the_end_of_the_run(tmp_path):
    rig = make_rig(tmp_path, grid(2), fail_fast="raise")
    rig.step()
    rig.job(0).start().error("ValueError: diverged")
    rig.job(1).start()
    rig.step()
    assert rig.ctl.done
    with pytest.raises(TuneError, match="fail_fast is set"):
        rig.ctl.run()
    assert json.loads(rig.exp.summary_path.read_text())["status"] == "error"


def test_a_driver_whose_run_ended_keeps_no_trials_and_still_sees_changes(tmp_path):
    """After its run the driver stops collecting the trials assigned to (one kept by the
    caller would hold every trial of later experiments), and looks at every live trial again:
    a trial that lost its job is still seen waiting, and a change is still written."""
    from hpctune.storage.journal import read_trial_state
    from hpctune.tune.experiment.trial import Trial

    rig = make_rig(tmp_path, grid(2), fail_fast="raise")
    rig.step()
    rig.job(0).start().error("ValueError: a")
    rig.job(1).start().error("ValueError: b")
    rig.step()
    with pytest.raises(TuneError):
        rig.ctl.run()
    book, launcher = rig.ctl.parts.snapshots, rig.ctl.launcher
    Trial("other", {}, "0", str(tmp_path))  # another experiment's trial
    assert not book.assigned and not launcher.idle.assigned and not rig.ctl.enactor.stopping.assigned
    first, second = rig.trial(0), rig.trial(1)
    for trial in (first, second):  # as a restore does: live again, without a job
        trial.revive()
        rig.ctl.table.bring_back(trial)
        rig.ctl.launcher.launch_pending()
    assert launcher.waiting() == [] and first.job_id and second.job_id
    first.mark_for_relaunch()
    assert launcher.waiting() == [first]
    second.node = "n9"
    rig.ctl.save()
    assert read_trial_state(rig.exp).trials[tid(1)]["node"] == "n9"


def test_without_fail_fast_an_error_leaves_the_others_running(tmp_path):
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    rig.job(0).start().error()
    rig.job(1).start()
    rig.step()
    assert rig.statuses() == {tid(0): ERROR, tid(1): RUNNING}
    assert rig.backend.cancels == [] and not rig.ctl.done


class StopAllAfter(Stopper):
    """Ends the experiment once it has seen ``n`` results."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def __call__(self, trial_id, result):
        self.seen += 1
        return False

    def stop_all(self):
        return self.seen >= self.n


def test_a_stopper_ending_the_experiment_stops_every_trial(tmp_path):
    rig = make_rig(tmp_path, grid(2), stop=StopAllAfter(2))
    rig.step()
    start_all(rig, 0, 1)
    rig.step()
    assert rig.backend.cancels == [["100_0", "100_1"]]
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): TERMINATED} and rig.ctl.done


# -- checkpoints -----------------------------------------------------------------------------
@pytest.mark.parametrize(("order", "kept"), [
    ("max", ["checkpoint_000001", "checkpoint_000002", "checkpoint_000004"]),  # 0.5, 0.9 and the latest
    ("min", ["checkpoint_000003", "checkpoint_000004"]),  # 0.1 and 0.3, the latest among them
])
def test_checkpoints_kept_by_score(tmp_path, order, kept):
    """num_to_keep=2 with a score attribute keeps the two best-scored checkpoints plus the
    latest one (Ray's rule), on disk and in the trial's record."""
    rig = make_rig(tmp_path, grid(1), checkpoint_config=CheckpointConfig(
        num_to_keep=2, checkpoint_score_attribute="acc", checkpoint_score_order=order))
    rig.step()
    job = rig.job(0).start()
    for acc in (0.5, 0.9, 0.1, 0.3):
        job.report(loss=1.0, acc=acc, checkpoint=True)
    rig.step()
    trial = rig.trial(0)
    assert sorted(p.name for p in Path(trial.path).glob("checkpoint_*")) == kept
    scores = {"checkpoint_000001": 0.5, "checkpoint_000002": 0.9, "checkpoint_000003": 0.1, "checkpoint_000004": 0.3}
    assert trial.checkpoints == [[name, scores[name]] for name in kept]
    assert trial.checkpoint == "checkpoint_000004"


def test_checkpoints_kept_by_age_without_a_score(tmp_path):
    rig = make_rig(tmp_path, grid(1), checkpoint_config=CheckpointConfig(num_to_keep=2))
    rig.step()
    job = rig.job(0).start()
    for acc in (0.5, 0.9, 0.1):
        job.report(loss=1.0, acc=acc, checkpoint=True)
    rig.step()
    trial = rig.trial(0)
    assert sorted(p.name for p in Path(trial.path).glob("checkpoint_*")) == [
        "checkpoint_000002", "checkpoint_000003"]


# -- pause ---------------------------------------------------------------------------------------
def test_a_paused_trial_is_resubmitted_and_continues(tmp_path):
    """PAUSE: control.json asks to pause, the worker's `paused` frees the job, and the trial
    is launched again (a new job) and continues to the end."""
    rig = make_rig(tmp_path, grid(1), decisions={(tid(0), 1): Decision.PAUSE})
    rig.step()
    rig.job(0).start().report(loss=1.0)
    rig.step()
    assert rig.control(0).is_pause
    rig.job(0).paused()
    rig.step()
    trial = rig.trial(0)
    assert (trial.status, trial.job_id) == (TrialStatus.PAUSED, None)
    rig.step()
    assert rig.backend.launches[1:] == [Launch([tid(0)], CPU1, None, ["101_0"])]
    assert rig.control(0) is None, "the pause request is cleared before the relaunch"
    rig.job(0).start(restored_iteration=1).report(loss=0.5).complete()
    rig.step()
    assert (trial.status, trial.num_failures, trial.max_iteration) == (TERMINATED, 0, 2)
    assert rig.backend.cancels == []


def test_finding_the_waiting_trials_asks_nobody_and_changes_nothing(tmp_path):
    """The launcher's query for waiting trials is pure: the scheduler is asked about a paused
    trial (and the trial resumed, its pause request cleared) only when the launch goes out."""
    rig = make_rig(tmp_path, grid(1), decisions={(tid(0), 1): Decision.PAUSE})
    rig.step()
    rig.job(0).start().report(loss=1.0)
    rig.step()
    rig.job(0).paused()
    rig.ctl.ingest_logs(Reading.TO_THE_END)
    asked = []
    rig.scheduler.resume_decision = lambda trial: asked.append(trial.trial_id) or Decision.CONTINUE
    trial, before = rig.trial(0), rig.trial(0).to_dict()
    assert rig.ctl.launcher._waiting(None) == ([], [], [trial])
    assert asked == [] and trial.to_dict() == before and rig.control(0).is_pause
    rig.ctl.launcher.launch_pending()
    assert asked == [tid(0)] and (trial.status, trial.job_id) == (PENDING, "101_0")
    assert rig.control(0) is None


# -- restore ------------------------------------------------------------------------------------
def run_until_snapshot(tmp_path: Path) -> Rig:
    """Trial 0 done, trials 1 and 2 running, trial 3 queued; then a snapshot; then the driver
    is gone while the jobs go on: trial 1 finishes, trial 2 reports, trial 3 starts."""
    rig = make_rig(tmp_path, grid(4))
    rig.step()
    rig.job(0).start().report(loss=0.1).complete()
    start_all(rig, 1, 2)
    rig.step()
    assert rig.statuses() == {tid(0): TERMINATED, tid(1): RUNNING, tid(2): RUNNING, tid(3): PENDING}
    rig.ctl.save()
    rig.job(1).report(loss=0.5).complete()
    rig.job(2).report(loss=0.6)
    rig.job(3).start().report(loss=0.7)
    return rig


def restored(rig: Rig, backend: FakeBackend) -> Rig:
    """A new driver over the same experiment directory, restored from its snapshot."""
    new = make_rig(rig.exp.root.parent, rig.space, backend=backend, exp_name=rig.exp.root.name)
    state = load_driver_state(rig.exp)
    new.ctl.restore(state)
    return new


def test_a_restored_driver_reattaches_and_relaunches_nothing_finished(tmp_path):
    """Jobs survive the driver (Slurm): the restored driver reads what they wrote after the
    snapshot, re-attaches to the running ones and launches nothing at all."""
    old = run_until_snapshot(tmp_path)
    new = restored(old, old.backend.successor())
    assert new.statuses() == {tid(0): TERMINATED, tid(1): TERMINATED, tid(2): RUNNING,
                              tid(3): RUNNING}
    assert [new.trial(i).num_results for i in range(4)] == [1, 2, 2, 1]
    assert [new.trial(i).job_id for i in range(4)] == ["100_0", "100_1", "100_2", "100_3"]
    new.step()
    new.job(2).complete()
    new.job(3).report(loss=0.2).complete()
    new.step()
    assert new.ctl.done
    assert set(new.statuses().values()) == {TERMINATED}
    assert new.backend.launches == [] and new.backend.cancels == []
    assert [new.trial(i).num_results for i in range(4)] == [1, 2, 2, 2]
    # the scheduler's state (its record of calls, here) comes back from the snapshot, and
    # the restored scheduler hears only what came after the snapshot, once each
    before = [("result", tid(0), 1, 0.1), ("complete", tid(0), 1), ("result", tid(1), 1, 1.0),
              ("result", tid(2), 1, 1.0)]
    assert new.scheduler.without_adds() == [
        *before, ("result", tid(1), 2, 0.5), ("complete", tid(1), 2), ("result", tid(2), 2, 0.6),
        ("result", tid(3), 1, 0.7), ("complete", tid(2), 2), ("result", tid(3), 2, 0.2),
        ("complete", tid(3), 2)]
    for i in range(4):
        starts = [e for e in read_events(new.exp.result_log_path(tid(i))) if e["event"] == "start"]
        assert len(starts) == 1, f"{tid(i)} was run twice"
        assert new.backend.jobs_of(tid(i)) == [f"100_{i}"]


def test_a_restored_local_driver_relaunches_only_the_unfinished_trials(tmp_path):
    """Jobs die with the driver (local processes): unfinished trials are launched again, in
    one launch; those that finished, before or after the snapshot, are not."""
    old = run_until_snapshot(tmp_path)
    old.job(2).vanish("CANCELLED")
    old.job(3).vanish("CANCELLED")
    new = restored(old, old.backend.successor(survive=False))
    assert new.statuses() == {tid(0): TERMINATED, tid(1): TERMINATED, tid(2): PENDING,
                              tid(3): PENDING}
    new.step()
    assert new.backend.launches == [Launch([tid(2), tid(3)], CPU1, None, ["101_0", "101_1"])]
    assert [new.trial(i).job_id for i in range(4)] == ["100_0", "100_1", "101_0", "101_1"]
    assert [new.trial(i).num_results for i in range(4)] == [1, 2, 2, 1]


def test_a_launch_neither_the_snapshot_nor_the_backend_recorded_is_read_not_run_again(tmp_path):
    """The driver died between sbatch and its next snapshot, and the backend kept no record of
    the launch: the restore reads the logs of trials without a job too, adopts the job their
    start names, and runs nothing twice."""
    old = make_rig(tmp_path, grid(1))
    old.ctl.launcher.create_trials()
    old.ctl.save()
    snapshot = load_driver_state(old.exp)  # what the driver had saved when it died
    old.step()
    old.job(0).start().report(loss=0.3).complete()
    backend = old.backend.successor()
    backend.recorded_launches = dict
    new = make_rig(tmp_path, old.space, backend=backend, exp_name=old.exp.root.name)
    new.ctl.restore(snapshot)
    assert (new.trial(0).status, new.trial(0).job_id, new.trial(0).num_results) == (TERMINATED, "100_0", 1)
    new.step()
    assert new.ctl.done and new.backend.launches == []


# -- Ctrl+C ---------------------------------------------------------------------------------------
def test_trials_whose_start_ctrl_c_cancelled_unread_run_again_after_restore(tmp_path):
    """Jobs that started just before Ctrl+C, their start events not read yet: the restored
    driver reads them but does not adopt the cancelled jobs; the trials run again."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    start_all(rig, 0, 1)  # written, but the driver has not read them
    on_interrupt(rig.ctl.table, rig.backend, rig.exp, keep_jobs=False)
    rig.ctl.save("interrupted")
    assert rig.backend.cancels == [["100_0", "100_1"]]
    new = restored(rig, rig.backend.successor())
    new.step()
    assert new.backend.launches == [Launch([tid(0), tid(1)], CPU1, None, ["101_0", "101_1"])]
    assert new.statuses() == {tid(0): PENDING, tid(1): PENDING}
    assert [new.trial(i).job_id for i in (0, 1)] == ["101_0", "101_1"]


def test_trials_cancelled_by_ctrl_c_run_again_after_restore(tmp_path):
    """Ctrl+C cancels the running jobs; a restored driver launches those trials again (from
    their checkpoints) instead of taking them as finished."""
    rig = make_rig(tmp_path, grid(2))
    rig.step()
    start_all(rig, 0, 1)
    rig.step()
    on_interrupt(rig.ctl.table, rig.backend, rig.exp, keep_jobs=False)
    rig.ctl.save("interrupted")
    assert rig.backend.cancels == [["100_0", "100_1"]]
    assert [rig.job(i).written[-1] for i in (0, 1)] == ["terminated", "terminated"]
    assert rig.statuses() == {tid(0): PENDING, tid(1): PENDING}
    new = restored(rig, rig.backend.successor())
    new.step()
    assert new.backend.launches == [Launch([tid(0), tid(1)], CPU1, None, ["101_0", "101_1"])]
    assert new.statuses() == {tid(0): PENDING, tid(1): PENDING}
    assert new.control(0) is None and new.control(1) is None


def test_the_heartbeat_timeout_counts_from_the_start_not_the_submission(tmp_path):
    """A task that queued for longer than the timeout, seen RUNNING by a poll before its
    worker wrote its start, is not lost: its silence counts from when Slurm started it."""
    rig = make_rig(tmp_path, grid(1), heartbeat_timeout_s=60.0, max_failures=1)
    rig.step()
    rig.clock.advance(3600)  # an hour in the queue
    rig.job(0).state = "RUNNING"  # Slurm started it; the worker has written nothing yet
    rig.step()
    rig.clock.advance(30)
    rig.step()
    assert rig.backend.cancels == []
    rig.clock.advance(31)  # silent 61 s since it started: lost
    rig.step()
    assert rig.backend.cancels == [["100_0"]]


def test_an_unthrottled_search_tops_the_queue_up_at_half_a_batch(tmp_path, monkeypatch):
    """Without max_concurrent_trials there is no throttle to keep: the next batch goes out once
    half of this one ended (not after all of it: the slots would idle through the drain)."""
    monkeypatch.setattr("hpctune.controller.launching.EAGER_BATCH", 10)
    rig = make_rig(tmp_path, {"x": tune.uniform(0, 1)}, num_samples=30)
    rig.step()
    assert [len(launch.trial_ids) for launch in rig.backend.launches] == [10]
    for i in range(4):
        rig.job(i).start().complete()
    rig.step(2)
    assert len(rig.backend.launches) == 1  # 6 still queued or running: not half a batch of room
    rig.job(4).start().complete()
    rig.step(2)
    assert [len(launch.trial_ids) for launch in rig.backend.launches] == [10, 5]
