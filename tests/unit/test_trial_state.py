"""The trial state machine (``hpctune/tune/experiment/trial_lifecycle.py``): every legal transition is walked and
lands where this table says; every other (operation, phase) pair raises and changes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from hpctune.errors import HpctuneError
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus
from hpctune.tune.experiment.trial_lifecycle import TRANSITIONS, IllegalTransition, Phase

NEW, RELAUNCH, QUEUED, RUNNING, PAUSED, TERMINATED, ERROR = (
    Phase.NEW, Phase.RELAUNCH, Phase.QUEUED, Phase.RUNNING, Phase.PAUSED, Phase.TERMINATED, Phase.ERROR)
LIVE = (NEW, RELAUNCH, QUEUED, RUNNING, PAUSED)

#: a typical trial in each phase, as the driver leaves it there
SAMPLES: dict[Phase, dict] = {
    NEW: {},
    RELAUNCH: {"awaiting_restart": True, "pending_resources": {"cpu": 4}},  # e.g. paused for a new request
    QUEUED: {"job_id": "7_0", "job_state": "PENDING"},
    RUNNING: {"status": "RUNNING", "job_id": "7_0", "job_state": "RUNNING", "started_at": 1.0},
    PAUSED: {"status": "PAUSED", "awaiting_restart": True, "started_at": 1.0, "num_results": 2},
    TERMINATED: {"status": "TERMINATED", "started_at": 1.0, "ended_at": 9.0},
    ERROR: {"status": "ERROR", "error": "boom", "num_failures": 3, "started_at": 1.0},
}


def trial_in(phase: Phase) -> Trial:
    trial = Trial("t1", {}, "", "/tmp/t1", resources={"cpu": 1}, **SAMPLES[phase])
    assert trial.phase is phase
    return trial


#: operation -> how the tests call it
CALLS: dict[str, Callable[[Trial], object]] = {
    "launch": lambda t: t.launch("9_1", 5.0),
    "adopt_launch": lambda t: t.adopt_launch("9_1", 5.0),
    "observe_job": lambda t: t.observe_job("COMPLETING", "", "n1"),
    "request_pause": lambda t: t.request_pause(),
    "request_resources": lambda t: t.request_resources({"cpu": 4}),
    "apply_resources": lambda t: t.apply_resources(),
    "resume": lambda t: t.resume(),
    "request_stop": lambda t: t.request_stop("stop criterion reached", True, 5.0),
    "mark_cancelling": lambda t: t.mark_cancelling(),
    "withdraw": lambda t: t.withdraw(),
    "mark_for_relaunch": lambda t: t.mark_for_relaunch(),
    "cancel_for_relaunch": lambda t: t.cancel_for_relaunch(),
    "exploited": lambda t: t.exploited(relaunch=True),
    "revive": lambda t: t.revive(),
    "start": lambda t: t.start(1, job_id="9_1", at=5.0),
    "report": lambda t: t.report(),
    "requeue": lambda t: t.requeue(),
    "preempt": lambda t: t.preempt(),
    "paused": lambda t: t.paused(),
    "resources_changed": lambda t: t.resources_changed({"cpu": 4}),
    "finish": lambda t: t.finish(9.0),
    "fail": lambda t: t.fail("Traceback: boom", 9.0),
    "reopen": lambda t: t.reopen(),
    "restore_status": lambda t: t.restore_status(TrialStatus.ERROR, "lost"),
}


def _all(to: Phase | None) -> dict[Phase, Phase]:
    """Every unfinished phase -> ``to`` (None: stays where it was)."""
    return {p: to or p for p in LIVE}


#: (operation, from) -> where the trial is afterwards: every legal transition
EXPECTED: dict[tuple[str, Phase], Phase] = {(op, src): dst for op, moves in {
    "launch": {NEW: QUEUED, RELAUNCH: QUEUED},
    "adopt_launch": _all(QUEUED),
    "observe_job": {QUEUED: QUEUED, RUNNING: RUNNING},
    "request_pause": {RUNNING: RUNNING},
    "request_resources": {RUNNING: RUNNING},
    "apply_resources": {RELAUNCH: RELAUNCH},
    "resume": {PAUSED: RELAUNCH},
    "request_stop": _all(None),
    "mark_cancelling": {QUEUED: QUEUED, RUNNING: RUNNING},
    "withdraw": {NEW: NEW, RELAUNCH: RELAUNCH, QUEUED: NEW},
    "mark_for_relaunch": _all(RELAUNCH),
    "cancel_for_relaunch": {QUEUED: RELAUNCH, RUNNING: RELAUNCH},
    "exploited": _all(RELAUNCH),
    "revive": {ERROR: RELAUNCH},
    "start": _all(RUNNING),
    # a result: RUNNING, unless the trial waits for a restart (a late result changes nothing)
    "report": {NEW: RUNNING, RELAUNCH: RELAUNCH, QUEUED: RUNNING, RUNNING: RUNNING, PAUSED: PAUSED},
    # requeued: PENDING again, in the same job if it has one
    "requeue": {NEW: NEW, RELAUNCH: RELAUNCH, QUEUED: QUEUED, RUNNING: QUEUED, PAUSED: RELAUNCH},
    # SIGTERM: a restart is expected (a trial without a job is then resubmitted from its checkpoint)
    "preempt": {NEW: RELAUNCH, RELAUNCH: RELAUNCH, QUEUED: QUEUED, RUNNING: RUNNING, PAUSED: PAUSED},
    "paused": _all(PAUSED),
    "resources_changed": _all(None),
    "finish": _all(TERMINATED),
    "fail": _all(ERROR),
    "reopen": {TERMINATED: RUNNING, ERROR: RUNNING},
    "restore_status": {**_all(ERROR), ERROR: ERROR},
}.items() for src, dst in moves.items()}

#: what else each operation must have done (beyond the phase)
EFFECTS: dict[str, Callable[[Trial], bool]] = {
    "launch": lambda t: (t.job_id, t.job_state, t.submitted_at, t.last_event_at) == ("9_1", JobState.PENDING, 5.0, None),
    "adopt_launch": lambda t: (t.job_id, t.job_state, t.awaiting_restart) == ("9_1", JobState.PENDING, False),
    "observe_job": lambda t: (t.job_state, t.node) == (JobState.COMPLETING, "n1"),
    "request_pause": lambda t: t.awaiting_restart,
    "request_resources": lambda t: t.pending_resources == {"cpu": 4} and t.resources == {"cpu": 1}
    and not t.awaiting_restart,
    "apply_resources": lambda t: t.resources == {"cpu": 4} and t.pending_resources is None,
    "resume": lambda t: t.status is TrialStatus.PENDING and t.job_id is None,
    "request_stop": lambda t: (t.stop_requested_at, t.stop_reason, t.stopped_by_scheduler) == (
        5.0, "stop criterion reached", True),
    "mark_cancelling": lambda t: t.job_state is JobState.CANCELLING and t.job_id == "7_0",
    "withdraw": lambda t: t.job_id is None and t.job_state is JobState.NONE and t.status is TrialStatus.PENDING,
    "mark_for_relaunch": lambda t: (t.job_id, t.job_state, t.awaiting_restart) == (None, JobState.NONE, True),
    "cancel_for_relaunch": lambda t: t.cancelled_jobs == ["7_0"] and t.job_id is None,
    "exploited": lambda t: t.stop_requested_at is None and t.job_id is None,
    "revive": lambda t: (t.error, t.num_failures, t.job_id) == (None, 0, None),
    "start": lambda t: t.restart_count == 1 and not t.awaiting_restart and t.job_id in ("7_0", "9_1"),
    "report": lambda t: True,
    "requeue": lambda t: t.status is TrialStatus.PENDING and t.job_state is JobState.REQUEUED,
    "preempt": lambda t: t.awaiting_restart,
    "paused": lambda t: t.job_id is None and t.job_state is JobState.NONE,
    "resources_changed": lambda t: t.pending_resources is None,
    "finish": lambda t: (t.error, t.ended_at) == (None, 9.0),
    "fail": lambda t: (t.error, t.ended_at) == ("Traceback: boom", 9.0),
    "reopen": lambda t: t.error is None,
    "restore_status": lambda t: t.error == ("boom" if t.num_failures else "lost"),  # the log's error first
}


def test_the_table_covers_every_legal_transition_and_only_those():
    legal = {(op, phase) for op, phases in TRANSITIONS.items() for phase in phases}
    assert set(EXPECTED) == legal
    assert set(CALLS) == set(EFFECTS) == set(TRANSITIONS)


@pytest.mark.parametrize(("operation", "source"), sorted(EXPECTED, key=lambda k: (k[0], k[1].value)),
                         ids=lambda v: v.value if isinstance(v, Phase) else v)
def test_every_legal_transition(operation, source):
    trial = trial_in(source)
    CALLS[operation](trial)
    assert trial.phase is EXPECTED[operation, source]
    assert EFFECTS[operation](trial), trial.to_dict()


ILLEGAL = sorted({(op, p) for op in TRANSITIONS for p in Phase} - set(EXPECTED),
                 key=lambda k: (k[0], k[1].value))


@pytest.mark.parametrize(("operation", "source"), ILLEGAL,
                         ids=lambda v: v.value if isinstance(v, Phase) else v)
def test_every_illegal_transition_raises_and_changes_nothing(operation, source):
    trial = trial_in(source)
    before = trial.to_dict()
    with pytest.raises(IllegalTransition) as caught:
        CALLS[operation](trial)
    assert trial.to_dict() == before
    message = str(caught.value)
    assert "t1" in message and source.value in message and operation in message


def test_the_illegal_ones_include_the_driver_bugs_that_matter():
    """A sample spelled out: what must never happen to a trial."""
    for operation, source in [("launch", QUEUED), ("launch", RUNNING), ("launch", TERMINATED),
                              ("launch", PAUSED), ("resume", RUNNING), ("request_pause", PAUSED),
                              ("finish", TERMINATED), ("fail", ERROR), ("start", TERMINATED),
                              ("mark_cancelling", NEW), ("cancel_for_relaunch", PAUSED),
                              ("revive", TERMINATED), ("withdraw", RUNNING)]:
        assert (operation, source) in ILLEGAL


@pytest.mark.parametrize(("setup", "call", "why"), [
    ({"stop_requested_at": 1.0}, lambda t: t.request_stop("again", False, 2.0), "a stop was requested already"),
    ({"awaiting_restart": True}, lambda t: t.request_pause(), "already pausing"),
    ({"stop_requested_at": 1.0}, lambda t: t.request_pause(), "a stop was requested"),
    ({"awaiting_restart": True}, lambda t: t.request_resources({"cpu": 2}), "already pausing"),
])
def test_a_running_trial_refuses_a_second_decision(setup, call, why):
    trial = Trial("t1", {}, "", "/tmp/t1", **{**SAMPLES[RUNNING], **setup})
    with pytest.raises(IllegalTransition, match=why):
        call(trial)


def test_a_trial_that_ran_cannot_be_withdrawn_and_no_request_cannot_be_applied():
    queued = Trial("t1", {}, "", "/tmp/t1", job_id="7_0", num_results=1)
    with pytest.raises(IllegalTransition, match="it ran already"):
        queued.withdraw()
    with pytest.raises(IllegalTransition, match="no new request waits"):
        Trial("t1", {}, "", "/tmp/t1", awaiting_restart=True).apply_resources()


def test_an_exploit_that_runs_already_is_not_relaunched():
    trial = trial_in(RUNNING)
    trial.request_stop("exploited by PBT", False, 5.0)
    trial.exploited(relaunch=False)
    assert (trial.phase, trial.job_id, trial.stop_requested_at) == (RUNNING, "7_0", None)


def test_illegal_transition_is_an_hpctune_error():
    assert issubclass(IllegalTransition, HpctuneError)


@pytest.mark.parametrize(("text", "state"), [
    ("RUNNING", JobState.RUNNING), ("PENDING", JobState.PENDING), ("", JobState.NONE),
    (None, JobState.NONE), ("CANCELLED by 0", JobState.CANCELLED), ("completing", JobState.COMPLETING),
    ("CANCELLING", JobState.CANCELLING), ("REQUEUED", JobState.REQUEUED),
    ("SOME_FUTURE_STATE", JobState.UNKNOWN), (JobState.TIMEOUT, JobState.TIMEOUT),
])
def test_job_states_parse_and_unknown_slurm_states_do_not_fail(text, state):
    assert JobState.parse(text) is state


def test_an_unknown_slurm_state_polled_does_not_fail_the_trial():
    trial = trial_in(RUNNING)
    trial.observe_job("BRAND_NEW_STATE", "Something", "n3")
    assert (trial.job_state, trial.job_reason, trial.phase) == (JobState.UNKNOWN, "Something", RUNNING)


def test_job_states_read_and_print_as_slurm_spells_them():
    assert JobState.RUNNING == "RUNNING" and f"{JobState.CANCELLING}" == "CANCELLING"
    assert str(JobState.REQUEUED) == "REQUEUED" and not JobState.NONE
    assert json.dumps({"s": JobState.PENDING}) == '{"s": "PENDING"}'


@pytest.mark.parametrize("saved", ["", "PENDING", "RUNNING", "CANCELLING", "REQUEUED", "NODE_FAIL", "BOGUS"])
def test_a_saved_trial_restores_with_its_job_state(saved):
    """state.json as this version (and the one before it) writes it: job_state a string."""
    data = {**Trial("t1", {}, "", "/tmp/t1").to_dict(), "status": "PENDING", "job_id": "7_0",
            "job_state": saved, "no_longer_a_field": 1}
    trial = Trial.from_dict(json.loads(json.dumps(data)))
    assert trial.job_state is JobState.parse(saved) and trial.status is TrialStatus.PENDING
    again = trial.to_dict()
    assert type(again["job_state"]) is str and type(again["status"]) is str
    assert Trial.from_dict(again).job_state is trial.job_state
