"""The driver loop: ask the searcher, launch jobs, read result logs, enact decisions.

The controller is the only place with policy about *when* to call the backend: one launch
per batch of new trials, one poll per ``poll_interval_s``, one cancel per batch of stop
decisions. Schedulers, stoppers and searchers only return decisions. Each part of the loop
gets only the state it needs:

* ``state.TrialTable`` and ``state.RunState``: the trials, and where the run is;
* ``launching.Launcher``: new trials from the searcher, submissions within the throttles;
* ``paused.PausedTrials``: which paused trials the scheduler lets go on;
* ``events.read_new_events`` / ``TrialEvents``: each trial's new events, and the decisions
  they call for;
* ``enactor.Enactor``: stop, pause, cancel, retry, end a trial (and who hears of it);
* ``exploit.Exploits``: PBT's exploits, from the decision to the resubmission;
* ``job_watch.JobWatch``: backend polls, heartbeats, jobs that vanished;
* ``snapshot``: saving and restoring the driver, Ctrl+C; ``storage_full``: a full disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpctune.accounting.meter import allocation_lines
from hpctune.backends.base import Backend
from hpctune.config import CheckpointConfig
from hpctune.controller.enactor import Deciders, Enactor
from hpctune.controller.events import Reading, read_new_events
from hpctune.controller.exploit import Exploits
from hpctune.controller.job_watch import JobWatch
from hpctune.controller.launching import Launcher
from hpctune.controller.paused import PausedTrials
from hpctune.controller.snapshot import (
    DriverParts,
    interrupt_flag,
    on_interrupt,
    restore_trials,
    save_snapshot,
)
from hpctune.controller.state import RunState, TrialTable
from hpctune.controller.storage_full import DISK_FULL_STATUS, save_at_end, stop_for_full_storage
from hpctune.display.view import StatusView
from hpctune.errors import TuneError
from hpctune.storage.atomic import is_storage_full
from hpctune.storage.changes import ChangeFeed, create_feed
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import allow_open_logs
from hpctune.tune.callback import CallbackList
from hpctune.tune.experiment.trial import Trial, stop_watching
from hpctune.tune.schedulers.trial_scheduler import TrialScheduler
from hpctune.tune.search.searcher import Searcher

SNAPSHOT_INTERVAL_S = 5.0


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
    #: measures the allocation used and enforces TuneConfig's budget (accounting/meter.py)
    allocation: Any = None


class Controller:
    """Runs one experiment to the end; ``run()`` returns every trial."""

    def __init__(self, exp: ExperimentDir, backend: Backend, searcher: Searcher,
                 scheduler: TrialScheduler, stopper: Any, callbacks: CallbackList,
                 settings: ControllerSettings, reporter: Any = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.exp, self.backend, self.searcher = exp, backend, searcher
        self.scheduler, self.stopper, self.callbacks = scheduler, stopper, callbacks
        self.settings, self.reporter, self.clock = settings, reporter, clock
        self.wall_clock, self.sleep = wall_clock, sleep  # a simulated cluster's (bench/sim_cluster)
        self.table, self.state = TrialTable(exp.result_log_path), RunState()
        deciders = Deciders(searcher, scheduler, stopper, callbacks)
        self.exploits = Exploits(self.table, self.state, exp, settings.checkpoint_config, clock, self.save)
        self.enactor = Enactor(self.table, self.state, exp, backend, deciders, settings, self.exploits, clock)
        self.paused = PausedTrials(self.table, self.enactor, self.exploits)
        self.launcher = Launcher(self.table, self.state, exp, backend, deciders, settings, self.paused,
                                 clock, self.save)
        self.jobs = JobWatch(self.table, backend, exp, self.enactor, settings.heartbeat_timeout_s,
                             settings.report_timeout_s, self.ingest_logs)
        self.parts = DriverParts(exp, backend, self.table, self.state, deciders, self.exploits,
                                 self.paused, settings)
        self._last_snapshot = clock()
        self._started = clock()
        create_feed(exp.root)
        self.changes = ChangeFeed(exp.root)
        allow_open_logs()  # the logs of running trials stay open (LogTail(keep_open=True))
        if settings.allocation is not None:
            settings.allocation.bind(exp.root, backend)

    def restore(self, snapshot: dict, resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> None:
        """Continue from a snapshot: trials re-attach to their jobs, logs replay from offsets."""
        restore_trials(self.parts, snapshot, self.ingest_logs, self.clock, resume_unfinished,
                       resume_errored, restart_errored)

    # -- the loop ---------------------------------------------------------------
    def run(self) -> list[Trial]:
        with interrupt_flag() as interrupted:
            try:
                while not self.done and not interrupted.is_set():
                    self.step()
                    self.sleep(self.settings.tick_s)
                if interrupted.is_set():
                    on_interrupt(self.table, self.backend, self.exp, self.settings.keep_jobs_on_interrupt)
            except OSError as exc:  # a full disk stops the run cleanly; any other error is raised
                stop_for_full_storage(self.parts, exc)
            finally:
                self._last_figures()
                save_at_end(self.parts, self.save, self._final_status())
                self.changes.close()
                # a driver kept after its run holds no trials of later experiments
                self.launcher.idle.stop_watching()
                self.enactor.stopping.stop_watching()
                stop_watching(self.parts.snapshots.assigned)
        if self.state.storage_full is not None:
            raise self.state.storage_full
        self.callbacks.call("on_experiment_end", trials=self.trial_list)
        if self.state.fatal_error and self.settings.fail_fast == "raise":
            raise TuneError(self.state.fatal_error)
        return self.trial_list

    def step(self) -> None:
        """One pass: new trials, launches, log reading, stop enactment, Slurm poll."""
        self.state.iteration += 1
        self._tell("on_step_begin")
        self._check_budget()
        if not self.state.stop_everything:
            self.launcher.create_trials()
            self.launcher.launch_pending()
        polling = self.jobs.poll_due()
        # between polls only the logs the change feed names are read (storage/changes)
        self.table.mark_changed(self.changes.take())
        self.ingest_logs(Reading.SUBMITTED if polling else Reading.CHANGED)
        self.enactor.cancel_stopped()
        enacted = self.exploits.take_enacted()
        if enacted and not self.state.stop_everything:  # PBT's recipients: out now, not a step later
            self.launcher.launch_pending(only=enacted)
        if polling:
            self.jobs.poll()
            if self.settings.allocation is not None:
                self.settings.allocation.update(self.trial_list)
        if self.state.storage_full is not None:  # a trial's job met a full disk: stop the run
            raise self.state.storage_full
        if self.clock() - self._last_snapshot >= SNAPSHOT_INTERVAL_S:
            self.save()
        if self.reporter is not None:
            self.reporter.maybe_report(self.view())
        self._tell("on_step_end")

    def ingest_logs(self, reading: Reading = Reading.SUBMITTED) -> None:
        """Handle the new events of the trials' result logs (``events.read_new_events``)."""
        read_new_events(self.table, self.enactor, reading, self.wall_clock)

    def _last_figures(self) -> None:
        """The allocation's final figures, for tables and exports; on a full disk the last ones
        stand (the snapshot after them matters more)."""
        if self.settings.allocation is None:
            return
        try:
            self.settings.allocation.update(self.trial_list, force=True)
        except OSError as exc:
            if not is_storage_full(exc):
                raise

    def _tell(self, hook: str) -> None:
        if self.callbacks:
            self.callbacks.call(hook, iteration=self.state.iteration, trials=self.trial_list)

    def _check_budget(self) -> None:
        budget = self.settings.time_budget_s
        if budget is not None and not self.state.stop_everything and self.clock() - self._started >= budget:
            self.enactor.stop_experiment(f"time budget of {budget} s spent")
        meter = self.settings.allocation
        if meter is not None and meter.budget is not None and not self.state.stop_everything:
            reason = meter.stop_reason(self.trial_list, self.table.submitted(), self.launcher.waiting())
            if reason is not None:
                self.enactor.stop_experiment(reason)

    def _final_status(self) -> str:
        if self.state.storage_full is not None:
            return DISK_FULL_STATUS
        if self.table.live:
            return "interrupted"
        return "error" if self.state.fatal_error else "finished"

    def save(self, status: str = "running") -> None:
        """Snapshot the driver's state (a restored driver starts from it)."""
        self._last_snapshot = self.clock()
        save_snapshot(self.parts, status)

    # -- what others may read ------------------------------------------------------------
    @property
    def done(self) -> bool:
        return not self.table.live and (self.state.searcher_finished or self.state.stop_everything)

    @property
    def trials(self) -> dict[str, Trial]:
        return self.table.trials

    @property
    def live(self) -> dict[str, Trial]:
        """The unfinished trials by id: each step looks only at these."""
        return self.table.live

    @property
    def trial_list(self) -> list[Trial]:
        """Every trial, in creation order."""
        return self.table.all

    @property
    def live_trials(self) -> list[Trial]:
        return self.table.unfinished

    def view(self) -> StatusView:
        """What displays may know about the run right now."""
        return StatusView(trials=self.trial_list, experiment_dir=str(self.exp.root),
                          scheduler=type(self.scheduler).__name__, metric=self.settings.metric,
                          mode=self.settings.mode, slurm_commands=self.backend.command_counts(),
                          done=self.done, allocation=allocation_lines(self.settings.allocation))
