"""Enacting decisions on trials: stop, pause, cancel, retry, end, and telling who must know.

The loop's parts (a trial's events, the job watch, paused trials) act on trials only through
the ``Enactor``. It is the only place with policy about *how* to act: one scancel for every
newly stopped trial, a control record the worker reads at its next report, a retry within
``FailureConfig(max_failures)``; and every end of a trial is told once to the scheduler, the
searcher and the callbacks (``Deciders``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hpctune.backends.base import Backend
from hpctune.controller.live_subset import LiveSubset
from hpctune.controller.output import append_event, keep_checkpoint
from hpctune.controller.state import RunState, TrialTable
from hpctune.controller.storage_full import interrupted_run, stop_after_interruption
from hpctune.core.decision_points import DecisionPoints, declared
from hpctune.storage.control import ControlRecord
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import TrialScheduler
from hpctune.tune.search.searcher import Searcher

if TYPE_CHECKING:
    from hpctune.controller.controller import ControllerSettings
    from hpctune.controller.exploit import Exploits


@dataclass(frozen=True)
class Deciders:
    """Who decides about trials and who hears of them: searcher, scheduler, stopper, callbacks."""

    searcher: Searcher
    scheduler: TrialScheduler
    stopper: Any
    callbacks: CallbackList

    def decision_points(self, trial: Trial) -> DecisionPoints:
        """Where the scheduler or the stopper may decide about ``trial`` (its worker waits for
        the verdict after those results): the union of their declarations."""
        return declared(self.scheduler, "on_trial_result", trial.info).union(
            declared(self.stopper, "__call__", trial.trial_id))


class Enactor:
    """Acts on the run's trials for the loop's parts (see the module docstring)."""

    def __init__(self, table: TrialTable, state: RunState, exp: ExperimentDir, backend: Backend,
                 deciders: Deciders, settings: ControllerSettings, exploits: Exploits,
                 clock: Callable[[], float]):
        self.table, self.state, self.exp, self.backend = table, state, exp, backend
        self.deciders, self.settings, self.exploits, self.clock = deciders, settings, exploits, clock
        #: the live trials whose stop was decided (kept between steps: ``LiveSubset``)
        self.stopping = LiveSubset(table, _stop_decided)

    # -- telling ----------------------------------------------------------------------------------
    def tell(self, hook: str, trial: Trial) -> None:
        """Call a callback hook about ``trial`` (``on_trial_start``, ``on_trial_complete``...)."""
        self.deciders.callbacks.call(hook, iteration=self.state.iteration, trials=self.table.all,
                                     trial=trial)

    def tell_result(self, trial: Trial, result: dict[str, Any]) -> None:
        self.deciders.callbacks.result_hooks(self.state.iteration, self.table.all, trial, result)

    def record_event(self, trial: Trial, event: dict[str, Any]) -> None:
        """The driver's decision in the trial's result log (what a replay reads)."""
        append_event(self.exp, trial, event)

    def keep_checkpoint(self, trial: Trial, name: str, result: dict[str, Any]) -> None:
        keep_checkpoint(trial, name, result, self.settings.checkpoint_config)

    # -- stopping and pausing -----------------------------------------------------------------
    def request_stop(self, trial: Trial, reason: str, by_scheduler: bool) -> None:
        """End the trial: the control record tells the worker (at its next report, or when the
        scancel that ``cancel_stopped`` sends at once arrives) to raise StopTrial in the trainable,
        run its cleanup within ``stop_grace_s`` and write ``stopped`` (``final``: the trial is
        over, not cancelled to be resumed)."""
        trial.request_stop(reason, by_scheduler, self.clock())
        self.record_event(trial, new_event(EventKind.STOP_DECIDED, trial_id=trial.trial_id,
                                           at_iteration=trial.max_iteration, reason=reason,
                                           time=time.time()))
        self.exp.write_control(trial.trial_id, ControlRecord.stop(reason, final=True))

    def request_pause(self, trial: Trial) -> None:
        """Ask the worker to checkpoint and exit; the trial is resubmitted later."""
        trial.request_pause()
        self.exp.write_control(trial.trial_id, ControlRecord.pause())

    def let_proceed(self, trial: Trial, iteration: Any) -> None:
        """The verdict on a result the worker waits at (``core/decision_points``) is to go on:
        unless a stop or pause was written for it just now (that is the verdict), or PBT's
        exploit stops it, write the ``proceed`` that lets its ``report()`` return."""
        if (isinstance(iteration, int) and trial.stop_requested_at is None and not trial.awaiting_restart
                and not trial.status.is_finished and trial.trial_id not in self.exploits.pending):
            self.exp.write_control(trial.trial_id, ControlRecord.proceed(iteration))

    def cancel_stopped(self) -> None:
        """scancel every newly stopped trial at once, in one call: the fastest slot handover on
        the lab (bench/asha.py). ``stop_grace_s`` bounds the worker's cleanup, it delays nothing."""
        overdue = [t for t in self.stopping.trials() if t.stop_requested_at is not None
                   and t.job_id and t.job_state is not JobState.CANCELLING]
        if overdue:
            self.backend.cancel([t.job_id for t in overdue])
            for trial in overdue:
                trial.mark_cancelling()

    def stop_experiment(self, reason: str) -> None:
        """End the experiment: stop what runs; trials that never started stay PENDING (as in
        Ray: they were not run, so they are neither TERMINATED nor told to the searcher, and
        a restored experiment runs them); their queued jobs are cancelled."""
        self.state.stop_everything = self.state.searcher_finished = True
        live = self.table.unfinished
        queued_jobs = self.backend.queued()
        unstarted = {t.trial_id for t in live if t.started_at is None and not t.num_results
                     and t.status is TrialStatus.PENDING and (t.job_id is None or t.job_id in queued_jobs)}
        for trial in live:
            if trial.stop_requested_at is None and trial.trial_id not in unstarted:
                self.request_stop(trial, reason, by_scheduler=False)
        self.backend.cancel([t.job_id for t in live if t.job_id and t.job_state is not JobState.CANCELLING])
        for trial in live:
            if trial.trial_id in unstarted:  # never ran: out of the loop, not finished
                trial.withdraw()
                self.table.retire(trial)
            elif trial.job_id is None:
                self.terminate(trial, early=trial.stopped_by_scheduler)
            elif trial.job_state is not JobState.CANCELLING:
                trial.mark_cancelling()

    # -- ending trials ----------------------------------------------------------------------------
    def terminate(self, trial: Trial, early: bool = False) -> None:
        """The trial's run is over without error: it completed (or a stopper ended it), or its
        scheduler stopped it (``early``). A PBT exploit waiting for the job's end takes over."""
        if self.exploits.on_job_end(trial):
            return  # its job was stopped for a PBT exploit: it goes on from the donor's checkpoint
        trial.finish(self.clock())
        self.table.retire(trial)
        result, deciders = trial.last_result or None, self.deciders
        if early:
            deciders.scheduler.on_trial_remove(trial.info)
            deciders.searcher.on_trial_stopped_early(trial.trial_id, result)
        else:
            deciders.scheduler.on_trial_complete(trial.info, result)
            deciders.searcher.on_trial_complete(trial.trial_id, result)
        self.tell("on_trial_complete", trial)

    def retry_or_fail(self, trial: Trial, error: str) -> None:
        """The trial's run failed (it raised, its job died or hung): it is resubmitted from its
        latest checkpoint while ``FailureConfig(max_failures)`` allows, else it ends in ERROR.
        A full filesystem that ended the run is no failure of the trial: the run stops for it."""
        full = interrupted_run(self.exp, trial, error)
        if full is not None:
            return stop_after_interruption(self.state, trial, full)
        trial.num_failures += 1
        if self._may_retry(trial):
            trial.mark_for_relaunch()
            self.tell("on_trial_recover", trial)
            return
        self.fail(trial, error)

    def count_slurm_restart(self, trial: Trial, why: str) -> None:
        """Slurm restarted the trial's job by itself (a failure it already retried): counted, and
        over ``max_failures`` the job is cancelled and the trial ends in ERROR."""
        trial.num_failures += 1
        if not self._may_retry(trial):
            if trial.job_id:
                self.backend.cancel([trial.job_id])
            self.fail(trial, f"Trial {trial.trial_id} failed {trial.num_failures} times; "
                             f"the last time {why}. Raise FailureConfig(max_failures=...) to retry more.")

    def _may_retry(self, trial: Trial) -> bool:
        return self.settings.max_failures < 0 or trial.num_failures <= self.settings.max_failures

    def fail(self, trial: Trial, error: str) -> None:
        """The trial ends in ERROR, not retried; with ``fail_fast`` the experiment stops too."""
        trial.fail(error, self.clock())
        self.table.retire(trial)
        self.deciders.scheduler.on_trial_error(trial.info)
        self.deciders.searcher.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)
        self.tell("on_trial_error", trial)
        if self.settings.fail_fast:
            self.state.fatal_error = f"Trial {trial.trial_id} failed (fail_fast is set):\n{error}"
            self.stop_experiment(self.state.fatal_error)


def _stop_decided(trial: Trial) -> bool:
    return trial.stop_requested_at is not None
