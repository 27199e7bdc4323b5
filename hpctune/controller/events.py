"""The driver's reading of the trials' events: the log's facts, then the decisions they call for.

``read_new_events`` hands the new events of all trials to their handlers in the order they were
reported. ``TrialEvents`` extends the one log replay (``TrialReplay``) with what only the
driver does: it checks that an event belongs to the trial's current job, keeps checkpoints
within ``num_to_keep``, asks the stoppers, scheduler and searcher about each new result, and
has the ``Enactor`` stop, pause, exploit (PBT), retry or end the trial.
"""

from __future__ import annotations

import enum
import heapq
import time
from collections.abc import Callable
from typing import Any

from hpctune.controller.enactor import Enactor
from hpctune.controller.quarantine import quarantine_running
from hpctune.controller.resource_change import begin_change
from hpctune.controller.state import TrialTable
from hpctune.core.checks import check_result_metrics
from hpctune.core.metrics import flatten
from hpctune.errors import UnsafeFileError
from hpctune.storage import events as ev
from hpctune.storage.events import dispatch
from hpctune.storage.replay import TrialReplay
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import ChangeResources, Decision, Exploit

#: events younger than this wait a step, so that none still being appended is overtaken
ORDER_SETTLE_S = 0.02

#: a step parses and holds at most about this many bytes of each log (``LogTail.peek``): a driver
#: far behind reads each backlog in slices, its memory bounded by this times the logs it reads
SLICE_BYTES = 4 << 10


class Reading(enum.Enum):
    """Which logs ``read_new_events`` reads, and whether the youngest events wait."""

    #: between Slurm polls: the logs the change feed named (and those with events waiting)
    CHANGED = "changed"
    #: at a poll: every submitted trial's log, except jobs still queued; young events wait
    SUBMITTED = "submitted"
    #: jobs left the queue: every submitted trial's log, to the end (a final event may be there)
    TO_THE_END = "to the end"
    #: a restore: every trial's log, submitted or not (a launch the snapshot missed), to the end
    RESTORE = "restore"


def read_new_events(table: TrialTable, enactor: Enactor, reading: Reading,
                    wall_clock: Callable[[], float] = time.time) -> None:
    """Handle the new events of the live trials in the order they were reported.

    Unless the reading goes to the end, events younger than ``ORDER_SETTLE_S`` wait for the
    next step, so that an event still being appended elsewhere cannot be overtaken by a later
    one: replaying the logs in timestamp order reproduces every decision. Each log is read in
    slices of about ``SLICE_BYTES`` (``_read_slice``): a driver far behind holds a bounded part
    of the backlog, not all of it. A step handles one slice and reads the rest in the next
    steps; a reading to the end handles slice after slice until every log is read.
    """
    settle = reading in (Reading.CHANGED, Reading.SUBMITTED)
    handlers: dict[str, TrialEvents] = {}
    trials = _to_read(table, reading)
    while trials:
        horizon = wall_clock() - ORDER_SETTLE_S if settle else float("inf")
        left = _read_slice(table, enactor, trials, horizon, handlers)
        if settle:
            for trial in left:  # young events, or the rest of a log: not rung again for them
                table.read_again(trial.trial_id)
            return
        trials = [t for t in left if not t.is_finished and t.trial_id in table.live]


def _read_slice(table: TrialTable, enactor: Enactor, trials: list[Trial], horizon: float,
                handlers: dict[str, TrialEvents]) -> list[Trial]:
    """Handle, in time order, the events of ``trials``' logs reported up to ``horizon``, from
    at most about ``SLICE_BYTES`` of each log; returns the trials whose logs hold events for
    later (too young, or past their slice).

    A log read in part (``LogTail.more_left``) may hold, after its slice, events older than
    those read from other logs: only events up to its slice's latest are handled now, so the
    order holds across slices. The log whose slice ends earliest is handled to the end of its
    slice, so each slice makes progress."""
    peeked = []
    for trial in trials:
        tail = table.tails[trial.trial_id]
        pending = tail.peek(SLICE_BYTES)
        peeked.append((trial, tail, pending))
        if tail.more_left:
            horizon = min(horizon, _latest(pending))
    streams, left = [], []
    for trial, tail, pending in peeked:
        ready = _settled(pending, horizon)
        if ready:
            streams.append([(_reported_at(e), trial.trial_id, e) for e in ready])
        if len(ready) < len(pending) or tail.more_left:
            left.append(trial)
    for _, trial_id, event in heapq.merge(*streams, key=lambda item: item[0]):
        trial, tail = table.trials[trial_id], table.tails[trial_id]
        if trial.is_finished or trial_id not in table.live:
            continue  # ended (or set aside as never started) earlier in this step
        trial.last_event_at = enactor.clock()
        handler = handlers.setdefault(trial_id, TrialEvents(trial, enactor))
        if not handler.from_an_earlier_job(event):
            dispatch(event, handler, tail.path)
        tail.consume(1)
    return left


def _to_read(table: TrialTable, reading: Reading) -> list[Trial]:
    """The live trials whose logs this reading reads: only those the change feed named between
    polls; at a poll every submitted one whose job may have run (a job still queued has
    written nothing; one that started rang the feed); at a restore every one (a launch the
    snapshot missed may have run)."""
    changed = [t for t in table.take_changed() if t.job_id is not None]  # a job's events only
    if reading is Reading.CHANGED:
        return changed
    if reading is Reading.RESTORE:
        return table.unfinished
    submitted = [t for t in table.unfinished if t.job_id is not None]
    if reading is Reading.SUBMITTED:
        named = {t.trial_id for t in changed}
        return [t for t in submitted if t.trial_id in named or t.job_state is not JobState.PENDING
                or t.status is TrialStatus.RUNNING]
    return submitted


def _settled(events: list[tuple[dict, int]], horizon: float) -> list[dict]:
    """The leading events reported before ``horizon`` (a trial's order is kept)."""
    ready = []
    for event, _ in events:
        if _reported_at(event) > horizon:
            break
        ready.append(event)
    return ready


def _latest(events: list[tuple[dict, int]]) -> float:
    """The latest time among ``events`` (the last one's, as a log is written in time order);
    minus infinity without events: nothing is known of what follows them."""
    return max((_reported_at(e) for e, _ in events), default=float("-inf"))


def _reported_at(event: dict) -> float:
    """When the worker wrote the event (0 for events without a time: they come first)."""
    value = event.get(ev.TIME, 0.0)
    return value if isinstance(value, (int, float)) else 0.0


class TrialEvents(TrialReplay):
    """Handles the new events of one trial for the driver."""

    def __init__(self, trial: Trial, enactor: Enactor):
        super().__init__(trial)
        self.enactor, self.exploits, self.deciders = enactor, enactor.exploits, enactor.deciders

    def from_an_earlier_job(self, event: dict[str, Any]) -> bool:
        """A worker's event from a job the trial no longer runs as (retried away from it, or
        its start read after a cancel): it stays in the log but changes nothing. A late
        ``complete`` of a job declared failed must not end the trial its retry now runs."""
        job = event.get(ev.JOB_ID)
        return (bool(job) and self.trial.job_id is not None and job != self.trial.job_id
                and event.get(ev.KIND) not in ev.DRIVER_KINDS)

    def on_start(self, event: dict[str, Any]) -> None:
        trial = self.trial
        first = trial.started_at is None
        job, restarts = event.get(ev.JOB_ID), event.get(ev.RESTART_COUNT, 0) or 0
        if job in trial.cancelled_jobs:
            return  # a run Ctrl+C cancelled: the trial runs again in a new job
        unexplained = not first and not trial.awaiting_restart and restarts > trial.restart_count
        trial.start(restarts, job_id=job, at=self.enactor.clock())  # a launch the snapshot missed: adopted
        if first:
            self.enactor.tell("on_trial_start", trial)
        elif unexplained:  # Slurm restarted the job without a signal: node failure, kill -9
            self.enactor.count_slurm_restart(trial, "the job was restarted by Slurm without warning "
                                                    "(node failure or a kill without signal)")

    def on_result(self, event: dict[str, Any]) -> None:
        trial, result = self.trial, event[ev.RESULT]
        trial.report()
        if event.get(ev.CHECKPOINT):
            try:
                self.enactor.keep_checkpoint(trial, event[ev.CHECKPOINT], result)
            except UnsafeFileError as exc:  # a crafted name (``../x``): that trial only
                return quarantine_running(self.enactor, trial, self.enactor.exp.result_log_path(trial.trial_id), exc)
        if trial.stop_requested_at is not None:
            trial.results_after_stop += 1  # in the log, but the trial ended with its decision
            self.exploits.on_late_result(trial, result)
            return
        if self.record(result):
            self._decide(result)
        if event.get(ev.WAITS):  # its worker waits: a proceed, unless a stop or pause was the verdict
            self.enactor.let_proceed(trial, result.get("training_iteration"))

    def _decide(self, result: dict[str, Any]) -> None:
        """New progress: tell the searcher and callbacks; ask the stopper, then the scheduler.

        Decision logic sees the result flattened (``{"val": {"acc": 1}}`` as ``"val/acc"``),
        as in Ray, so a nested metric is named the same everywhere; callbacks get it as
        reported. A decision may be given as Ray's strings ("STOP") too.
        """
        deciders, trial = self.deciders, self.trial
        result = {**result, "config": trial.config}  # as Ray's results carry it (not in the log)
        flat = flatten(result)
        check_result_metrics(flat, self.enactor.settings.metric, deciders.scheduler, deciders.searcher)
        deciders.searcher.on_trial_result(trial.trial_id, flat)
        self.enactor.tell_result(trial, result)
        if deciders.stopper(trial.trial_id, flat):
            self.enactor.request_stop(trial, "stop criterion reached", by_scheduler=False)
        else:
            self._enact(deciders.scheduler.on_trial_result(trial.info, flat) or Decision.CONTINUE)
        if deciders.stopper.stop_all():
            self.enactor.stop_experiment("a stopper ended the experiment")

    def _enact(self, decision: Any) -> None:
        """STOP ends the trial, PAUSE checkpoints it and resubmits it later, an ``Exploit``
        continues it from the donor's checkpoint with a new config (``controller/exploit``),
        ``ChangeResources`` pauses it to resubmit it with a new request (``resource_change``)."""
        enactor, trial = self.enactor, self.trial
        if isinstance(decision, Exploit):
            self.exploits.begin(trial, decision)
            return
        if isinstance(decision, ChangeResources):
            begin_change(enactor, trial, decision)
            return
        decision = Decision(decision)
        if decision is Decision.STOP:
            enactor.request_stop(trial, "stopped by scheduler", by_scheduler=True)
        elif decision is Decision.PAUSE and not trial.awaiting_restart:
            enactor.request_pause(trial)

    def on_stop_decided(self, event: dict[str, Any]) -> None:
        """This driver's own stop record, read back (at a restore it may be all that is left of
        a decision made just before the driver died)."""
        if self.trial.stop_requested_at is None:
            self.trial.request_stop(str(event.get(ev.REASON, "stopped")), by_scheduler=False,
                                    at=self.enactor.clock())
        self.mark_done()  # the trial's final result says done, as Ray's does after a STOP

    def on_complete(self, event: dict[str, Any]) -> None:
        if self.exploits.on_job_end(self.trial, completed=True):
            return  # it finished after the exploit decision: it goes on from the donor's checkpoint
        self.mark_done()
        self.enactor.terminate(self.trial)

    def on_stopped(self, event: dict[str, Any]) -> None:
        if event.get(ev.CHECKPOINT):  # checkpoint_at_end, saved as the trial stopped
            try:
                self.enactor.keep_checkpoint(self.trial, event[ev.CHECKPOINT], event.get(ev.RESULT) or {})
            except UnsafeFileError as exc:
                return quarantine_running(self.enactor, self.trial,
                                          self.enactor.exp.result_log_path(self.trial.trial_id), exc)
        if not self.exploits.on_job_end(self.trial):
            self.mark_done()
            self.enactor.terminate(self.trial, early=self.trial.stopped_by_scheduler)

    def on_error(self, event: dict[str, Any]) -> None:
        if not self.exploits.on_job_end(self.trial):  # a failure after the decision: superseded
            self.enactor.retry_or_fail(self.trial, event.get(ev.ERROR, "unknown error"))

    def on_exploited(self, event: dict[str, Any]) -> None:
        """The driver's own record of an exploit (read back, or written by a driver before a
        restore): the trial goes on from the donor's checkpoint (where it is, the driver set
        when it enacted the exploit)."""
        self.continue_from_donor(event)
        self.exploits.on_logged(self.trial, event)

    def on_resources_changed(self, event: dict[str, Any]) -> None:
        """The driver's record of a new request, read back (or a predecessor's, at a restore)."""
        super().on_resources_changed(event)
        self.trial.resources_changed(event.get(ev.NEW_RESOURCES))

    def on_preempted(self, event: dict[str, Any]) -> None:
        super().on_preempted(event)
        self.trial.preempt()

    def on_requeued(self, event: dict[str, Any]) -> None:
        self.trial.requeue()

    def on_terminated(self, event: dict[str, Any]) -> None:
        if not self.exploits.on_job_end(self.trial):
            self.trial.preempt()  # SIGTERM: preempted (Slurm requeues it) or cancelled

    def on_paused(self, event: dict[str, Any]) -> None:
        if event.get(ev.CHECKPOINT):  # a class trainable's, saved as it paused (Ray's save on pause)
            self.enactor.keep_checkpoint(self.trial, event[ev.CHECKPOINT], event.get(ev.RESULT) or {})
        if not self.exploits.on_job_end(self.trial):
            self.trial.paused()
