"""The driver loop: ask the searcher, launch jobs, read result logs, enact decisions.

The controller is the only place with policy about *when* to call the backend:
one launch per batch of new trials, one poll per ``poll_interval_s``, one cancel per
batch of stop decisions. Schedulers, stoppers and searchers only return decisions;
the controller enacts them here (stop, pause, retry, finish, fail).
"""

from __future__ import annotations

import heapq
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpctune.backends.base import Backend
from hpctune.config import CheckpointConfig
from hpctune.controller.events import TrialEvents
from hpctune.controller.exploit import Exploits
from hpctune.controller.job_watch import JobWatch
from hpctune.controller.launching import Launcher
from hpctune.controller.snapshot import interrupt_flag, on_interrupt, restore_trials, save_snapshot
from hpctune.controller.storage_full import DISK_FULL_STATUS, save_at_end, stop_for_full_storage
from hpctune.core.checkpoint import checkpoints_to_delete
from hpctune.core.metrics import flat_value
from hpctune.display.view import StatusView
from hpctune.errors import StorageFullError, TuneError
from hpctune.storage.control import ControlRecord
from hpctune.storage.events import TIME, EventKind, dispatch, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail, ResultLog
from hpctune.storage.secure import child_path
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import TrialScheduler
from hpctune.tune.search.searcher import Searcher

SNAPSHOT_INTERVAL_S = 5.0
#: events younger than this wait a step, so that none still being appended is overtaken
ORDER_SETTLE_S = 0.02


@dataclass
class ControllerSettings:
    """The parts of TuneConfig/RunConfig the loop needs, resolved."""

    max_concurrent: int | None = None
    time_budget_s: float | None = None
    max_failures: int = 0
    fail_fast: bool | str = False
    stop_grace_s: float = 0.0
    tick_s: float = 0.05
    resources_for: Callable[[dict], dict] = field(default=lambda config: {"cpu": 1, "gpu": 0})
    trial_id_prefix: str = "trial"
    param_space: dict = field(default_factory=dict)
    metric: str | None = None
    mode: str | None = None
    checkpoint_config: CheckpointConfig = field(default_factory=CheckpointConfig)
    heartbeat_timeout_s: float | None = 600.0
    #: FailureConfig(report_timeout_s): a running trial without a result for this long is hung
    report_timeout_s: float | None = None
    keep_jobs_on_interrupt: bool = False


class Controller:
    """Runs one experiment to the end; ``run()`` returns every trial."""

    def __init__(self, exp: ExperimentDir, backend: Backend, searcher: Searcher,
                 scheduler: TrialScheduler, stopper: Any, callbacks: CallbackList,
                 settings: ControllerSettings, reporter: Any = None,
                 clock: Callable[[], float] = time.monotonic):
        self.exp, self.backend, self.searcher = exp, backend, searcher
        self.scheduler, self.stopper, self.callbacks = scheduler, stopper, callbacks
        self.settings, self.reporter, self.clock = settings, reporter, clock
        self.trials: dict[str, Trial] = {}
        self._trial_list: list[Trial] = []
        self.live: dict[str, Trial] = {}  # the unfinished trials: each step looks only at these
        self.tails: dict[str, LogTail] = {}
        self.iteration = 0
        self.searcher_finished = False
        self.stop_everything = False
        self.fatal_error: str | None = None
        self.storage_full: StorageFullError | None = None  # set when a write found the disk full
        self.launcher = Launcher(self)
        self.jobs = JobWatch(self)
        self.exploits = Exploits(self)  # PBT's exploits in flight (controller/exploit.py)
        self._last_snapshot = clock()
        self._started = clock()

    def restore(self, state: dict, resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> None:
        """Continue from a snapshot: trials re-attach to their jobs, logs replay from offsets."""
        restore_trials(self, state, resume_unfinished, resume_errored, restart_errored)

    # -- the loop ---------------------------------------------------------------
    def run(self) -> list[Trial]:
        with interrupt_flag() as interrupted:
            try:
                while not self.done and not interrupted.is_set():
                    self.step()
                    time.sleep(self.settings.tick_s)
                if interrupted.is_set():
                    on_interrupt(self)
            except OSError as exc:
                self.on_storage_error(exc)
            finally:
                save_at_end(self, self._final_status())
        if self.storage_full is not None:
            raise self.storage_full
        self.callbacks.call("on_experiment_end", trials=self.trial_list)
        if self.fatal_error and self.settings.fail_fast == "raise":
            raise TuneError(self.fatal_error)
        return self.trial_list

    def on_storage_error(self, exc: OSError) -> None:
        """A full or read-only filesystem stops the run cleanly, with one clear message
        (``controller/storage_full``); any other OSError is raised again."""
        stop_for_full_storage(self, exc)

    def _final_status(self) -> str:
        if self.storage_full is not None:
            return DISK_FULL_STATUS
        if self.live:
            return "interrupted"
        return "error" if self.fatal_error else "finished"

    def step(self) -> None:
        """One pass: new trials, launches, log reading, stop enactment, Slurm poll."""
        self.iteration += 1
        if self.callbacks:
            self.callbacks.call("on_step_begin", iteration=self.iteration, trials=self.trial_list)
        self._check_budget()
        if not self.stop_everything:
            self.launcher.create_trials()
            self.launcher.launch_pending()
        polling = self.jobs.poll_due()
        self.ingest_logs(everything=polling)
        self._enact_stops()
        if self.exploits.enacted and not self.stop_everything:  # out now, not a tick later
            self.launcher.launch_pending(only=self.exploits.enacted)
        if polling:
            self.jobs.poll()
        if self.clock() - self._last_snapshot >= SNAPSHOT_INTERVAL_S:
            self.save()
        if self.reporter is not None:
            self.reporter.maybe_report(self.view())
        if self.callbacks:
            self.callbacks.call("on_step_end", iteration=self.iteration, trials=self.trial_list)

    @property
    def done(self) -> bool:
        return not self.live and (self.searcher_finished or self.stop_everything)

    @property
    def trial_list(self) -> list[Trial]:
        """Every trial, in creation order (rebuilt only when trials were added: callbacks get it
        with every result, and trials are never removed)."""
        if len(self._trial_list) != len(self.trials):
            self._trial_list = list(self.trials.values())
        return self._trial_list

    @property
    def live_trials(self) -> list[Trial]:
        return list(self.live.values())

    def view(self) -> StatusView:
        """What displays may know about the run right now."""
        return StatusView(trials=self.trial_list, experiment_dir=str(self.exp.root),
                          scheduler=type(self.scheduler).__name__, metric=self.settings.metric,
                          mode=self.settings.mode, slurm_commands=self.backend.command_counts(),
                          done=self.done)

    def save(self, status: str = "running") -> None:
        """Snapshot the driver's state (a restored driver starts from it)."""
        self._last_snapshot = self.clock()
        save_snapshot(self, status)

    # -- reading results ----------------------------------------------------------
    def ingest_logs(self, everything: bool = True, settle: bool = True,
                    unsubmitted: bool = False) -> None:
        """Handle new events of all trials in the order they were reported.

        Between Slurm polls only the logs of running trials are read (few stats); trials not
        submitted are read only when ``unsubmitted`` (a restore). With ``settle``, events
        younger than ``ORDER_SETTLE_S`` wait for the next step, so that an event still being
        appended elsewhere cannot be overtaken by a later one: replaying the logs in
        timestamp order reproduces every decision.
        """
        horizon = time.time() - ORDER_SETTLE_S if settle else float("inf")
        streams = []
        for trial in self.live_trials:
            if trial.job_id is None and not unsubmitted:
                continue
            if not everything and trial.status is not TrialStatus.RUNNING and trial.job_state != "RUNNING":
                continue
            ready = self._settled(self.tails[trial.trial_id].peek(), horizon)
            if ready:
                streams.append([(_reported_at(e), trial.trial_id, e) for e in ready])
        handlers: dict[str, TrialEvents] = {}
        for _, trial_id, event in heapq.merge(*streams, key=lambda item: item[0]):
            trial, tail = self.trials[trial_id], self.tails[trial_id]
            if trial.is_finished or trial_id not in self.live:
                continue  # ended (or set aside as never started) earlier in this step
            trial.last_event_at = self.clock()
            handler = handlers.setdefault(trial_id, TrialEvents(self, trial))
            if not handler.from_an_earlier_job(event):
                dispatch(event, handler, tail.path)
            tail.consume(1)

    @staticmethod
    def _settled(events: list[tuple[dict, int]], horizon: float) -> list[dict]:
        """The leading events reported before ``horizon`` (a trial's order is kept)."""
        ready = []
        for event, _ in events:
            if _reported_at(event) > horizon:
                break
            ready.append(event)
        return ready

    # -- enacting decisions ---------------------------------------------------------
    def complete(self, trial: Trial, early: bool = False) -> None:
        """The trial ended: it finished (or a stopper ended it), or a scheduler stopped it early."""
        if self.exploits.on_job_end(trial):
            return  # its job was stopped for a PBT exploit: it goes on from the donor's checkpoint
        self.finish(trial, TrialStatus.TERMINATED)
        if early:
            self.scheduler.on_trial_remove(trial.info)
            self.searcher.on_trial_stopped_early(trial.trial_id, trial.last_result or None)
        else:
            self.scheduler.on_trial_complete(trial.info, trial.last_result or None)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result or None)
        self.callbacks.call("on_trial_complete", iteration=self.iteration,
                            trials=self.trial_list, trial=trial)

    def trial_failed(self, trial: Trial, error: str) -> None:
        """The trial raised or its job died: retry it from its checkpoint, or fail it."""
        trial.num_failures += 1
        if self._may_retry(trial):
            self.retry(trial)
            self.callbacks.call("on_trial_recover", iteration=self.iteration,
                                trials=self.trial_list, trial=trial)
            return
        self.fail(trial, error)

    def _may_retry(self, trial: Trial) -> bool:
        return self.settings.max_failures < 0 or trial.num_failures <= self.settings.max_failures

    def count_failure(self, trial: Trial, why: str) -> None:
        """A failure that Slurm already retried (requeued job): end the trial if over budget."""
        trial.num_failures += 1
        if not self._may_retry(trial):
            if trial.job_id:
                self.backend.cancel([trial.job_id])
            self.fail(trial, f"Trial {trial.trial_id} failed {trial.num_failures} times; "
                             f"the last time {why}. Raise FailureConfig(max_failures=...) to retry more.")

    def fail(self, trial: Trial, error: str) -> None:
        trial.error = error
        self.finish(trial, TrialStatus.ERROR)
        self.scheduler.on_trial_error(trial.info)
        self.searcher.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)
        self.callbacks.call("on_trial_error", iteration=self.iteration,
                            trials=self.trial_list, trial=trial)
        if self.settings.fail_fast:
            self.fatal_error = f"Trial {trial.trial_id} failed (fail_fast is set):\n{error}"
            self.stop_experiment(self.fatal_error)

    @staticmethod
    def retry(trial: Trial) -> None:
        """Resubmit a failed trial; it resumes from its latest checkpoint."""
        trial.job_id, trial.status, trial.job_state = None, TrialStatus.PENDING, ""
        trial.awaiting_restart = True

    def keep_checkpoint(self, trial: Trial, name: str, result: dict) -> None:
        """Track a new checkpoint; delete those beyond CheckpointConfig(num_to_keep)."""
        cfg = self.settings.checkpoint_config
        attribute = cfg.checkpoint_score_attribute
        trial.checkpoint = name
        trial.checkpoints = [c for c in trial.checkpoints if c[0] != name]
        trial.checkpoints.append([name, flat_value(result, attribute) if attribute else None])
        doomed = checkpoints_to_delete([tuple(c) for c in trial.checkpoints], cfg.num_to_keep,
                                       cfg.checkpoint_score_order, by_score=bool(attribute))
        for doomed_name in doomed:
            shutil.rmtree(child_path(trial.path, doomed_name, "checkpoint name"), ignore_errors=True)
        trial.checkpoints = [c for c in trial.checkpoints if c[0] not in doomed]

    def finish(self, trial: Trial, status: TrialStatus) -> None:
        """The trial is over (its files for people are the loggers', written as results came)."""
        trial.status, trial.ended_at = status, self.clock()
        self.live.pop(trial.trial_id, None)

    def request_stop(self, trial: Trial, reason: str, by_scheduler: bool) -> None:
        """End the trial: the control record tells the worker (at its next report, or when the
        scancel that ``_enact_stops`` sends at once arrives) to raise StopTrial in the trainable,
        run its cleanup within ``stop_grace_s`` and write ``stopped`` (``final``: the trial is
        over, not cancelled to be resumed)."""
        trial.stop_requested_at, trial.stop_reason = self.clock(), reason
        trial.stopped_by_scheduler = by_scheduler
        self.record_event(trial, new_event(EventKind.STOP_DECIDED, trial_id=trial.trial_id,
                                           at_iteration=trial.max_iteration, reason=reason,
                                           time=time.time()))
        self.exp.write_control(trial.trial_id, ControlRecord.stop(reason, final=True))

    def record_event(self, trial: Trial, event: dict) -> None:
        """Append a driver's event to the trial's result log (under the log's lock), so that
        what the driver decided is in the log a replay reads."""
        log = ResultLog(self.exp.result_log_path(trial.trial_id))
        try:
            log.append(event)
        finally:
            log.close()

    def request_pause(self, trial: Trial) -> None:
        """Ask the worker to checkpoint and exit; the trial is resubmitted later."""
        trial.awaiting_restart = True
        self.exp.write_control(trial.trial_id, ControlRecord.pause())

    def _enact_stops(self) -> None:
        """scancel every newly stopped trial at once, in one call: the fastest slot handover on
        the lab (bench/asha.py). ``stop_grace_s`` bounds the worker's cleanup, it delays nothing."""
        overdue = [t for t in self.live_trials if t.stop_requested_at is not None
                   and t.job_id and t.job_state != "CANCELLING"]
        if overdue:
            self.backend.cancel([t.job_id for t in overdue])
            for trial in overdue:
                trial.job_state = "CANCELLING"

    def stop_experiment(self, reason: str) -> None:
        """End the experiment: stop what runs; trials that never started stay PENDING (as in
        Ray: they were not run, so they are neither TERMINATED nor told to the searcher, and
        a restored experiment runs them); their queued jobs are cancelled."""
        self.stop_everything = True
        self.searcher_finished = True
        live = self.live_trials
        queued = self.backend.queued()
        unstarted = {t.trial_id for t in live if t.started_at is None and not t.num_results
                     and t.status is TrialStatus.PENDING and (t.job_id is None or t.job_id in queued)}
        for trial in live:
            if trial.stop_requested_at is None and trial.trial_id not in unstarted:
                self.request_stop(trial, reason, by_scheduler=False)
        queued = [t for t in live if t.job_id and t.job_state != "CANCELLING"]
        self.backend.cancel([t.job_id for t in queued])
        for trial in live:
            trial.job_state = "CANCELLING"
            if trial.trial_id in unstarted:  # never ran: out of the loop, not finished
                trial.job_id, trial.job_state = None, ""
                self.live.pop(trial.trial_id, None)
            elif trial.job_id is None:
                self.complete(trial, early=trial.stopped_by_scheduler)

    def _check_budget(self) -> None:
        budget = self.settings.time_budget_s
        if budget is not None and not self.stop_everything and self.clock() - self._started >= budget:
            self.stop_experiment(f"time budget of {budget} s spent")

    def note(self, message: str) -> None:
        """A message for the person at the terminal."""
        print(f"hpctune: {message}", file=sys.stderr)


def _reported_at(event: dict) -> float:
    """When the worker wrote the event (0 for events without a time: they come first)."""
    value = event.get(TIME, 0.0)
    return value if isinstance(value, (int, float)) else 0.0
