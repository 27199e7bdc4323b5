"""The driver's reading of a trial's events: the log's facts, then the decisions they call for.

``TrialEvents`` extends the one log replay (``TrialReplay``) with what only the driver
does: it checks that an event belongs to the trial's current job, keeps checkpoints
within ``num_to_keep``, asks the stoppers, scheduler and searcher about each new result,
and tells the controller to stop, pause, exploit (PBT), retry or finish the trial.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpctune.controller.resource_change import begin_change
from hpctune.core.metrics import flatten
from hpctune.storage import events as ev
from hpctune.storage.replay import TrialReplay
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.schedulers.trial_scheduler import ChangeResources, Decision, Exploit

if TYPE_CHECKING:
    from hpctune.controller.controller import Controller


class TrialEvents(TrialReplay):
    """Handles the new events of one trial for the controller."""

    def __init__(self, controller: Controller, trial: Trial):
        super().__init__(trial)
        self.ctl = controller

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
        trial.start(restarts, job_id=job, at=self.ctl.clock())  # a launch the snapshot missed: adopted
        if first:
            self.ctl.callbacks.call("on_trial_start", iteration=self.ctl.iteration,
                                    trials=self.ctl.trial_list, trial=trial)
        elif unexplained:  # Slurm restarted the job without a signal: node failure, kill -9
            self.ctl.count_slurm_restart(trial, "the job was restarted by Slurm without warning "
                                                "(node failure or a kill without signal)")

    def on_result(self, event: dict[str, Any]) -> None:
        trial, result = self.trial, event[ev.RESULT]
        trial.report()
        if event.get(ev.CHECKPOINT):
            self.ctl.keep_checkpoint(trial, event[ev.CHECKPOINT], result)
        if trial.stop_requested_at is not None:
            trial.results_after_stop += 1  # in the log, but the trial ended with its decision
            self.ctl.exploits.on_late_result(trial, result)
            return
        if self.record(result):
            self._decide(result)

    def _decide(self, result: dict[str, Any]) -> None:
        """New progress: tell the searcher and callbacks; ask the stopper, then the scheduler.

        Decision logic sees the result flattened (``{"val": {"acc": 1}}`` as ``"val/acc"``),
        as in Ray, so a nested metric is named the same everywhere; callbacks get it as
        reported. A decision may be given as Ray's strings ("STOP") too.
        """
        ctl, trial = self.ctl, self.trial
        result = {**result, "config": trial.config}  # as Ray's results carry it (not in the log)
        flat = flatten(result)
        ctl.searcher.on_trial_result(trial.trial_id, flat)
        ctl.callbacks.result_hooks(ctl.iteration, ctl.trial_list, trial, result)
        if ctl.stopper(trial.trial_id, flat):
            ctl.request_stop(trial, "stop criterion reached", by_scheduler=False)
        else:
            self._enact(ctl.scheduler.on_trial_result(trial.info, flat) or Decision.CONTINUE)
        if ctl.stopper.stop_all():
            ctl.stop_experiment("a stopper ended the experiment")

    def _enact(self, decision: Any) -> None:
        """STOP ends the trial, PAUSE checkpoints it and resubmits it later, an ``Exploit``
        continues it from the donor's checkpoint with a new config (``controller/exploit``),
        ``ChangeResources`` pauses it to resubmit it with a new request (``resource_change``)."""
        ctl, trial = self.ctl, self.trial
        if isinstance(decision, Exploit):
            ctl.exploits.begin(trial, decision)
            return
        if isinstance(decision, ChangeResources):
            begin_change(ctl, trial, decision)
            return
        decision = Decision(decision)
        if decision is Decision.STOP:
            ctl.request_stop(trial, "stopped by scheduler", by_scheduler=True)
        elif decision is Decision.PAUSE and not trial.awaiting_restart:
            ctl.request_pause(trial)

    def on_stop_decided(self, event: dict[str, Any]) -> None:
        """This driver's own stop record, read back (at a restore it may be all that is left of
        a decision made just before the driver died)."""
        if self.trial.stop_requested_at is None:
            self.trial.request_stop(str(event.get(ev.REASON, "stopped")), by_scheduler=False,
                                    at=self.ctl.clock())

    def on_complete(self, event: dict[str, Any]) -> None:
        if self.ctl.exploits.on_job_end(self.trial, completed=True):
            return  # it finished after the exploit decision: it goes on from the donor's checkpoint
        self.mark_done()
        self.ctl.terminate(self.trial)

    def on_stopped(self, event: dict[str, Any]) -> None:
        if not self.ctl.exploits.on_job_end(self.trial):
            self.ctl.terminate(self.trial, early=self.trial.stopped_by_scheduler)

    def on_error(self, event: dict[str, Any]) -> None:
        if not self.ctl.exploits.on_job_end(self.trial):  # a failure after the decision: superseded
            self.ctl.retry_or_fail(self.trial, event.get(ev.ERROR, "unknown error"))

    def on_exploited(self, event: dict[str, Any]) -> None:
        """The driver's own record of an exploit (read back, or written by a driver before a
        restore): the trial goes on from the donor's checkpoint (where it is, the driver set
        when it enacted the exploit)."""
        self.continue_from_donor(event)
        self.ctl.exploits.on_logged(self.trial, event)

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
        if not self.ctl.exploits.on_job_end(self.trial):
            self.trial.preempt()  # SIGTERM: preempted (Slurm requeues it) or cancelled

    def on_paused(self, event: dict[str, Any]) -> None:
        if not self.ctl.exploits.on_job_end(self.trial):
            self.trial.paused()
