"""A trial's life as one state machine: its states, and the only operations that move it.

Where a trial is, is the combination of ``status`` (Ray's ``TrialStatus``), ``job_id``,
``job_state`` (a ``JobState``), ``awaiting_restart`` (its next start is expected: a pause, a
preemption, a relaunch from its checkpoint), ``stop_requested_at``, ``pending_resources`` and
``cancelled_jobs``. Only this module writes those fields: every change is one of the named
operations of ``TrialLifecycle`` (a base of ``hpctune.tune.experiment.trial.Trial``), and each first checks that
the trial's ``Phase`` allows it (``TRANSITIONS``), else raises ``IllegalTransition``.

Two kinds of operations, checked differently:

* the driver's decisions (launch, request a pause or a stop, resume, relaunch, cancel) are
  allowed only from the phases where the driver makes them;
* facts a worker reported in the trial's result log (start, result, requeued, preempted,
  paused, finished, failed) are allowed from every unfinished phase: the log is the truth, and
  events of a job the trial no longer runs as are filtered out before (``TrialEvents``). A
  replay of a whole log (``storage/replay``) sees a trial run again after an end (a retry after
  an error, an exploit after a completion) and says so with ``reopen``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from hpctune.errors import HpctuneError


class TrialStatus(str, enum.Enum):
    """Life cycle of a trial, as Ray Tune names it (PENDING covers "queued in Slurm")."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"
    ERROR = "ERROR"

    @property
    def is_finished(self) -> bool:
        return self in (TrialStatus.TERMINATED, TrialStatus.ERROR)


class JobState(str, enum.Enum):
    """A trial's job as the driver last saw it: Slurm's state (squeue's ``%T``) at the last poll,
    or the driver's own word since (``CANCELLING``: scancel sent; ``REQUEUED``: the worker said
    Slurm requeued it). ``NONE``: no job, or not polled yet. A state this version does not
    know reads as ``UNKNOWN`` (``parse``) instead of failing the poll."""

    NONE = ""
    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    RESIZING = "RESIZING"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    PREEMPTED = "PREEMPTED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    CANCELLING = "CANCELLING"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, text: str | JobState | None) -> JobState:
        """Slurm's word for a job state (``"RUNNING"``, ``"CANCELLED by 0"``), or a saved one."""
        if isinstance(text, JobState):
            return text
        words = str(text or "").strip().upper().split()
        try:
            return cls(words[0] if words else "")
        except ValueError:
            return cls.UNKNOWN

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Phase(enum.Enum):
    """Where a trial is, for the transition table (derived from its fields, never stored)."""

    NEW = "new"  # PENDING, no job, runs from its start when launched
    RELAUNCH = "relaunch"  # PENDING, no job, resubmitted from its checkpoint when a slot is free
    QUEUED = "queued"  # PENDING with a job: submitted or requeued, not started
    RUNNING = "running"  # its job runs (maybe pausing or stopping)
    PAUSED = "paused"  # checkpointed and exited; resubmitted when its scheduler lets it
    TERMINATED = "terminated"
    ERROR = "error"


LIVE = frozenset({Phase.NEW, Phase.RELAUNCH, Phase.QUEUED, Phase.RUNNING, Phase.PAUSED})
_WITH_JOB = frozenset({Phase.QUEUED, Phase.RUNNING})

#: operation -> the phases it may start from (see the operations of ``TrialLifecycle``)
TRANSITIONS: dict[str, frozenset[Phase]] = {
    # the driver's decisions
    "launch": frozenset({Phase.NEW, Phase.RELAUNCH}),
    "adopt_launch": LIVE,
    "observe_job": _WITH_JOB,
    "request_pause": frozenset({Phase.RUNNING}),
    "request_resources": frozenset({Phase.RUNNING}),
    "apply_resources": frozenset({Phase.RELAUNCH}),
    "resume": frozenset({Phase.PAUSED}),
    "request_stop": LIVE,
    "mark_cancelling": _WITH_JOB,
    "withdraw": frozenset({Phase.NEW, Phase.RELAUNCH, Phase.QUEUED}),
    "mark_for_relaunch": LIVE,
    "cancel_for_relaunch": _WITH_JOB,
    "exploited": LIVE,
    "revive": frozenset({Phase.ERROR}),
    # facts from the trial's result log
    "start": LIVE,
    "report": LIVE,
    "requeue": LIVE,
    "preempt": LIVE,
    "paused": LIVE,
    "resources_changed": LIVE,
    "finish": LIVE,
    "fail": LIVE,
    # rebuilding a trial from its log and the driver's snapshot (storage/replay)
    "reopen": frozenset({Phase.TERMINATED, Phase.ERROR}),
    "restore_status": LIVE | {Phase.ERROR},
}


class IllegalTransition(HpctuneError):
    """An operation a trial's state machine does not allow from where the trial is: a bug in
    the driver (the message names the trial, its phase and the operation)."""

    def __init__(self, trial_id: str, phase: Phase, operation: str, why: str = ""):
        self.trial_id, self.phase, self.operation = trial_id, phase, operation
        allowed = ", ".join(sorted(p.value for p in TRANSITIONS[operation]))
        detail = why or f"it is allowed only from: {allowed}"
        super().__init__(f"Trial {trial_id}: cannot {operation} from {phase.value}: {detail}. "
                         "This is a bug in hpctune's driver; please report it with the "
                         "experiment's result logs.")


class TrialLifecycle:
    """The operations that move a trial (``Trial`` inherits them); the fields are ``Trial``'s."""

    if TYPE_CHECKING:
        trial_id: str
        status: TrialStatus
        job_id: str | None
        job_state: JobState
        job_reason: str
        node: str
        awaiting_restart: bool
        stop_requested_at: float | None
        stop_reason: str
        stopped_by_scheduler: bool
        pending_resources: dict[str, Any] | None
        cancelled_jobs: list[str]
        resources: dict[str, Any]
        error: str | None
        num_failures: int
        num_results: int
        restart_count: int
        submitted_at: float | None
        started_at: float | None
        ended_at: float | None
        last_event_at: float | None

    def __post_init__(self) -> None:
        """A status or job state given as text (``Trial(..., job_state="RUNNING")``, a saved
        ``state.json``) becomes its enum member."""
        self.status = TrialStatus(self.status)
        self.job_state = JobState.parse(self.job_state)

    @property
    def phase(self) -> Phase:
        """Where the trial is (``Phase``), from its status, job and ``awaiting_restart``."""
        if self.status is TrialStatus.TERMINATED:
            return Phase.TERMINATED
        if self.status is TrialStatus.ERROR:
            return Phase.ERROR
        if self.status is TrialStatus.PAUSED:
            return Phase.PAUSED
        if self.status is TrialStatus.RUNNING:
            return Phase.RUNNING
        if self.job_id is not None:
            return Phase.QUEUED
        return Phase.RELAUNCH if self.awaiting_restart else Phase.NEW

    def _check(self, operation: str, refused: str = "") -> None:
        """Raise ``IllegalTransition`` unless ``operation`` may start from the trial's phase
        (``refused``: why it may not here, although the phase allows it)."""
        phase = self.phase
        if phase not in TRANSITIONS[operation]:
            raise IllegalTransition(self.trial_id, phase, operation)
        if refused:
            raise IllegalTransition(self.trial_id, phase, operation, refused)

    # -- launching ------------------------------------------------------------------------------
    def launch(self, job_id: str, at: float) -> None:
        """Submitted as ``job_id``; its job is pending until the next poll says otherwise."""
        self._check("launch")
        self.job_id, self.job_state, self.submitted_at, self.last_event_at = (
            job_id, JobState.PENDING, at, None)

    def adopt_launch(self, job_id: str, at: float) -> None:
        """A restored driver found ``job_id`` submitted after its snapshot: the trial runs as it
        (never submitted again), as a launch would have left it."""
        self._check("adopt_launch")
        self.status, self.awaiting_restart = TrialStatus.PENDING, False
        self.job_id, self.job_state, self.submitted_at, self.last_event_at = (
            job_id, JobState.PENDING, at, None)

    def observe_job(self, state: str | JobState, reason: str = "", node: str = "") -> None:
        """What the scheduler says about the trial's job now (a poll, ``hpctune status``)."""
        self._check("observe_job")
        self.job_state, self.job_reason, self.node = JobState.parse(state), reason, node

    # -- the worker's facts ---------------------------------------------------------------------
    def start(self, restart_count: int, job_id: str | None = None, at: float | None = None) -> None:
        """The worker started (``restart_count``: Slurm's count); a trial without a job runs
        in ``job_id`` (a launch its snapshot missed); an expected restart has come."""
        self._check("start")
        if job_id and self.job_id is None:
            self.job_id = job_id
        self.restart_count, self.status, self.awaiting_restart = restart_count, TrialStatus.RUNNING, False
        if at is not None and self.started_at is None:
            self.started_at = at

    def report(self) -> None:
        """A result came: the trial runs, unless it waits to be resubmitted (a late result of a
        job the driver retried, paused or exploited away from changes nothing)."""
        self._check("report")
        if not self.awaiting_restart:
            self.status = TrialStatus.RUNNING

    def requeue(self) -> None:
        """Slurm requeued the job (the worker's ``requeued``): pending again, same job."""
        self._check("requeue")
        self.status, self.job_state = TrialStatus.PENDING, JobState.REQUEUED

    def preempt(self) -> None:
        """The job got SIGTERM (preempted: Slurm requeues it; or cancelled): a restart is
        expected, not a failure."""
        self._check("preempt")
        self.awaiting_restart = True

    def paused(self) -> None:
        """The worker checkpointed and exited on a pause: no job until it is resumed."""
        self._check("paused")
        self.status, self.job_id, self.job_state = TrialStatus.PAUSED, None, JobState.NONE

    def finish(self, at: float | None = None) -> None:
        """The trial is over: it completed, or a stopper or scheduler ended it."""
        self._check("finish")
        self.status, self.error = TrialStatus.TERMINATED, None
        self.ended_at = at if at is not None else self.ended_at

    def fail(self, error: str, at: float | None = None) -> None:
        """The trial is over with ``error`` (no retry left, or fail_fast)."""
        self._check("fail")
        self.status, self.error = TrialStatus.ERROR, error
        self.ended_at = at if at is not None else self.ended_at

    # -- pausing, resuming, relaunching -------------------------------------------------------
    def request_pause(self) -> None:
        """The driver asked the running worker to checkpoint and exit (its ``paused`` follows)."""
        self._check("request_pause", self._busy())
        self.awaiting_restart = True

    def request_resources(self, resources: dict[str, Any]) -> None:
        """ResourceChangingScheduler decided on ``resources``: they wait for the trial's
        resubmission (the driver asks it to pause next: ``request_pause``)."""
        self._check("request_resources", self._busy())
        self.pending_resources = dict(resources)

    def apply_resources(self) -> dict[str, Any]:
        """Before its resubmission: the decided request becomes the trial's; returns the old one."""
        self._check("apply_resources", "" if self.pending_resources else "no new request waits")
        old, self.resources, self.pending_resources = dict(self.resources), dict(self.pending_resources), None
        return old

    def resources_changed(self, resources: dict[str, Any] | None) -> None:
        """The log records the new request (read back, or a predecessor's at a restore)."""
        self._check("resources_changed")
        if self.pending_resources == resources:
            self.pending_resources = None

    def resume(self) -> None:
        """Its scheduler lets the PAUSED trial go on: resubmitted from its checkpoint."""
        self._check("resume")
        self.status, self.awaiting_restart = TrialStatus.PENDING, True

    def mark_for_relaunch(self) -> None:
        """Back to pending without a job, to be resubmitted from its latest checkpoint (a retry,
        an enacted exploit, a restored driver whose jobs ended with it)."""
        self._check("mark_for_relaunch")
        self._back_to_pending()

    def cancel_for_relaunch(self) -> None:
        """The driver cancels the trial's job to run it again later (Ctrl+C, a full disk): that
        job is never re-attached to, and the trial is resubmitted from its checkpoint."""
        self._check("cancel_for_relaunch")
        self.cancelled_jobs.append(str(self.job_id))
        self.mark_for_relaunch()

    def exploited(self, relaunch: bool) -> None:
        """PBT enacted an exploit: the stop that ended the old job is done with, and unless it
        runs again already (``relaunch`` False) the trial waits to be resubmitted."""
        self._check("exploited")
        self.stop_requested_at, self.stop_reason, self.stopped_by_scheduler = None, "", False
        if relaunch:
            self.mark_for_relaunch()

    def revive(self) -> None:
        """``Tuner.restore(resume_errored=True)``: an ERROR trial runs again from its checkpoint,
        with its failure count reset."""
        self._check("revive")
        self.error, self.num_failures = None, 0
        self._back_to_pending()

    # -- stopping ---------------------------------------------------------------------------------
    def request_stop(self, reason: str, by_scheduler: bool, at: float) -> None:
        """A stop was decided at ``at`` (by a stopper, the scheduler, PBT, Ctrl+C, the end of the
        experiment); the worker is told through the control record, its job is cancelled."""
        self._check("request_stop", "a stop was requested already" if self.stop_requested_at is not None else "")
        self.stop_requested_at, self.stop_reason, self.stopped_by_scheduler = at, reason, by_scheduler

    def mark_cancelling(self) -> None:
        """The driver sent scancel for the trial's job (until a poll says what became of it)."""
        self._check("mark_cancelling")
        self.job_state = JobState.CANCELLING

    def withdraw(self) -> None:
        """The experiment stops before the trial ever ran: it stays PENDING without a job (a
        restored experiment runs it)."""
        self._check("withdraw", "it ran already" if self.started_at is not None or self.num_results else "")
        self.job_id, self.job_state = None, JobState.NONE

    # -- rebuilding from the log (storage/replay) -------------------------------------------------
    def reopen(self) -> None:
        """A replayed log goes on after the trial's end: the driver ran it again (a retry after
        an error, an exploit after it completed, a late end of a job it had given up on); the
        next event says how it went on."""
        self._check("reopen")
        self.status, self.error = TrialStatus.RUNNING, None

    def restore_status(self, status: TrialStatus, error: str | None) -> None:
        """The driver's snapshot knows what the log cannot (still queued, an error the worker
        could not write): its status wins over the replay's, unless the log says TERMINATED."""
        self._check("restore_status")
        self.status, self.error = TrialStatus(status), self.error or error

    def _back_to_pending(self) -> None:
        """The one relaunch reset: PENDING, no job, resubmitted from its checkpoint."""
        self.status, self.job_id, self.job_state = TrialStatus.PENDING, None, JobState.NONE
        self.awaiting_restart = True

    def _busy(self) -> str:
        if self.awaiting_restart:
            return "it is already pausing or waiting to restart"
        return "a stop was requested" if self.stop_requested_at is not None else ""
