"""The driver loop: ask the searcher, launch jobs, read result logs, enact decisions.

The controller is the only place with policy about *when* to call the backend:
one launch per batch of new trials, one poll per ``poll_interval_s``, one cancel per
batch of stop decisions. Schedulers, stoppers and searchers only return decisions.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.backends.base import Backend
from hpctune.callbacks import CallbackList
from hpctune.checkpoint import checkpoints_to_delete, discard_checkpoints
from hpctune.config import CheckpointConfig
from hpctune.errors import TuneError
from hpctune.schedulers.trial_scheduler import Decision, TrialScheduler
from hpctune.search.searcher import Searcher
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.driver_state import interrupt_flag, save_driver_state
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import LogTail
from hpctune.storage.summary import experiment_summary
from hpctune.storage.user_files import write_user_files
from hpctune.trial import Trial, TrialStatus

EAGER_BATCH = 10_000
DEFAULT_ADAPTIVE_WINDOW = 32
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
        self._live: dict[str, Trial] = {}  # the unfinished trials: each step looks only at these
        self.tails: dict[str, LogTail] = {}
        self.iteration = 0
        self.searcher_finished = False
        self.stop_everything = False
        self.fatal_error: str | None = None
        self._eager_batch_size: int | None = None
        self._last_poll = -1e9
        self._last_snapshot = clock()
        self._started = clock()

    def restore(self, state: dict, resume_unfinished: bool = True, resume_errored: bool = False,
                restart_errored: bool = False) -> None:
        """Continue from a snapshot: trials re-attach to their jobs, logs replay from offsets."""
        self.searcher.set_state(state["searcher"])
        self.scheduler.set_state(state["scheduler"])
        self.searcher_finished = state["searcher_finished"]
        for data in state["trials"]:
            trial = Trial.from_dict(data)
            self.trials[trial.trial_id] = trial
            if not trial.is_finished:
                self._live[trial.trial_id] = trial
            self.tails[trial.trial_id] = LogTail(self.exp.result_log_path(trial.trial_id),
                                                 trial.log_offset)
        for trial in self.trial_list:
            if trial.status is TrialStatus.ERROR and (resume_errored or restart_errored):
                if restart_errored:
                    discard_checkpoints(Path(trial.path))
                trial.status, trial.error, trial.job_id, trial.num_failures = (
                    TrialStatus.PENDING, None, None, 0)
                self._live[trial.trial_id] = trial
            elif not trial.is_finished and not resume_unfinished:
                if trial.job_id:
                    self.backend.cancel([trial.job_id])
                trial.status = TrialStatus.TERMINATED
                del self._live[trial.trial_id]
            elif not trial.is_finished and trial.job_id and not self.backend.jobs_survive_driver:
                trial.job_id, trial.status, trial.awaiting_restart = None, TrialStatus.PENDING, True

    # -- the loop ---------------------------------------------------------------
    def run(self) -> list[Trial]:
        with interrupt_flag() as interrupted:
            try:
                while not self._done() and not interrupted.is_set():
                    self.step()
                    time.sleep(self.settings.tick_s)
                if interrupted.is_set():
                    self._on_interrupt()
            finally:
                self._snapshot(self._final_status())
        self.callbacks.call("on_experiment_end", trials=self.trial_list)
        if self.fatal_error and self.settings.fail_fast == "raise":
            raise TuneError(self.fatal_error)
        return self.trial_list

    def _on_interrupt(self) -> None:
        """Ctrl+C: stop submitting; cancel the jobs unless told to keep them; save state."""
        live = [t for t in self.live_trials if t.job_id]
        if self.settings.keep_jobs_on_interrupt:
            print(f"hpctune: interrupted; {len(live)} trials keep running in Slurm. Resume with "
                  f"Tuner.restore('{self.exp.root}') or `hpctune resume {self.exp.root}`.", file=sys.stderr)
            return
        for trial in live:  # the workers exit at once instead of checkpointing
            self.exp.write_control(trial.trial_id, {"action": "stop", "reason": "interrupted"})
        self.backend.cancel([t.job_id for t in live])
        for trial in live:  # resumed from their checkpoints by Tuner.restore
            trial.job_id, trial.status, trial.job_state = None, TrialStatus.PENDING, ""
            trial.awaiting_restart = True
        print(f"hpctune: interrupted; cancelled {len(live)} running trials. Resume with "
              f"Tuner.restore('{self.exp.root}') or `hpctune resume {self.exp.root}`. To keep trials "
              "running when you press Ctrl+C, set RunConfig(keep_jobs_on_interrupt=True).",
              file=sys.stderr)

    def _final_status(self) -> str:
        if self.live_trials:
            return "interrupted"
        return "error" if self.fatal_error else "finished"

    def step(self) -> None:
        """One pass: new trials, launches, log reading, stop enactment, Slurm poll."""
        self.iteration += 1
        if self.callbacks:
            self.callbacks.call("on_step_begin", iteration=self.iteration, trials=self.trial_list)
        self._check_budget()
        if not self.stop_everything:
            self._create_trials()
            self._launch_pending()
        polling = self.clock() - self._last_poll >= self.backend.poll_interval_s
        self._ingest_logs(everything=polling)
        self._enact_stops()
        if polling:
            self._poll_jobs()
        if self.clock() - self._last_snapshot >= SNAPSHOT_INTERVAL_S:
            self._snapshot()
        if self.reporter is not None:
            self.reporter.maybe_report(self)
        if self.callbacks:
            self.callbacks.call("on_step_end", iteration=self.iteration, trials=self.trial_list)

    def _done(self) -> bool:
        return not self._live and (self.searcher_finished or self.stop_everything)

    @property
    def trial_list(self) -> list[Trial]:
        return list(self.trials.values())

    @property
    def live_trials(self) -> list[Trial]:
        return list(self._live.values())

    # -- creating and launching ---------------------------------------------------
    def _create_trials(self) -> None:
        for _ in range(self._room_for_new_trials()):
            trial_id = f"{self.settings.trial_id_prefix}_{len(self.trials):05d}"
            config = self.searcher.suggest(trial_id)
            if config == Searcher.FINISHED:
                self.searcher_finished = True
                return
            if config is None:
                return
            self._add_trial(trial_id, config)

    def _room_for_new_trials(self) -> int:
        """How many trials to ask the searcher for now."""
        if self.searcher_finished:
            return 0
        live = len(self._live)
        if not self.searcher.adaptive:  # one throttled array per batch; wait for it to drain
            submitted = sum(1 for t in self._live.values() if t.job_id is not None)
            return 0 if submitted else max(0, self._eager_batch() - live)
        return max(0, (self.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW) - live)

    def _eager_batch(self) -> int:
        """How many trials of a non-adaptive search go into one array: all of a finite
        search (up to EAGER_BATCH), a few rounds of slots of an endless one."""
        if self._eager_batch_size is None:
            finite = getattr(self.searcher, "total_trials", None) is not None
            slots = self.settings.max_concurrent or DEFAULT_ADAPTIVE_WINDOW
            self._eager_batch_size = EAGER_BATCH if finite else 4 * slots
        return self._eager_batch_size

    def _add_trial(self, trial_id: str, config: dict) -> None:
        from hpctune.space import format_experiment_tag

        tag = format_experiment_tag(len(self.trials), config, self.settings.param_space)
        trial = Trial(trial_id, config, tag, str(self.exp.trial_dir(trial_id)),
                      resources=self.settings.resources_for(config))
        self.exp.write_params(trial_id, config)
        self.exp.write_trial_meta(trial_id, {
            "trial_id": trial_id, "experiment_tag": tag, "resources": trial.resources,
        })
        self.trials[trial_id] = self._live[trial_id] = trial
        self.tails[trial_id] = LogTail(self.exp.result_log_path(trial_id))
        self.scheduler.on_trial_add(trial.info)

    def _launch_pending(self) -> None:
        groups: dict[str, list[Trial]] = defaultdict(list)
        throttle = self.settings.max_concurrent if not self.searcher.adaptive else None
        waiting = [t for t in self._live.values() if t.job_id is None and t.status is TrialStatus.PENDING]
        fresh = [t for t in waiting if not t.awaiting_restart]
        again = [t for t in waiting if t.awaiting_restart]
        again += [t for t in self._live.values() if t.status is TrialStatus.PAUSED]  # at the back
        budget = self._relaunch_budget(throttle)
        for trial in fresh + (again if budget is None else again[:budget]):
            if trial.awaiting_restart:
                self.exp.clear_control(trial.trial_id)
            trial.status = TrialStatus.PENDING
            groups[repr(sorted(trial.resources.items()))].append(trial)
        if not groups:
            return
        room = self.backend.submit_room(sum(1 for t in self._live.values() if t.job_id))
        for batch in groups.values():
            if room is not None:  # stay within the user's MaxSubmitJobs; the rest waits
                batch, room = batch[:room], room - min(room, len(batch))
            if not batch:
                continue
            job_ids = self.backend.launch([t.trial_id for t in batch], batch[0].resources, throttle)
            now = self.clock()
            for trial, job_id in zip(batch, job_ids, strict=True):
                trial.job_id, trial.submitted_at, trial.job_state = job_id, now, "PENDING"
                trial.last_event_at = None
        self._snapshot()  # a restored driver must know every submitted job

    def _relaunch_budget(self, throttle: int | None) -> int | None:
        """How many retried or paused trials may go out now (None: all of them).

        A throttled array caps only its own tasks, so a resubmitted trial would run beside
        it: resubmissions wait until that array has no queued task and a slot is free.
        """
        in_slurm = [t for t in self._live.values() if t.job_id]
        if throttle is None or not in_slurm:
            return None
        if any(t.job_state == "PENDING" for t in in_slurm):
            return 0
        return max(0, throttle - len(in_slurm))

    # -- reading results ----------------------------------------------------------
    def _ingest_logs(self, everything: bool = True) -> None:
        """Read new events; between Slurm polls only the logs of running trials (few stats)."""
        for trial in self.live_trials:
            if trial.job_id is None:
                continue
            if not everything and trial.status is not TrialStatus.RUNNING and trial.job_state != "RUNNING":
                continue
            for event in self.tails[trial.trial_id].read_new():
                self._on_event(trial, event)
                if trial.is_finished:
                    break

    def _on_event(self, trial: Trial, event: dict) -> None:
        trial.last_event_at = self.clock()
        kind = event.get("event")
        trial.user_files = trial.user_files or bool(event.get("user_files"))
        if kind == "start":
            self._on_start(trial, event)
        elif kind == "result":
            self._on_result(trial, event["result"], event.get("checkpoint"))
        elif kind == "complete":
            self._on_complete(trial)
        elif kind == "stopped":
            self._on_stopped(trial)
        elif kind == "error":
            self._on_error(trial, event.get("error", "unknown error"))
        elif kind == "preempted":
            trial.awaiting_restart = True
            trial.preemptions += 1
        elif kind == "requeued":
            trial.status, trial.job_state = TrialStatus.PENDING, "REQUEUED"
        elif kind == "terminated":  # SIGTERM: preempted (Slurm requeues it) or cancelled
            trial.awaiting_restart = True
        elif kind == "paused":
            trial.status, trial.job_id, trial.job_state = TrialStatus.PAUSED, None, ""

    def _on_start(self, trial: Trial, event: dict) -> None:
        first = trial.started_at is None
        job, restarts = event.get("slurm_job_id"), event.get("restart_count", 0)
        if job and trial.job_id and job != trial.job_id:
            return  # a run of an earlier job, cancelled before the driver read this
        unexplained = not first and not trial.awaiting_restart and restarts > trial.restart_count
        trial.restart_count = restarts
        trial.awaiting_restart = False
        trial.status = TrialStatus.RUNNING
        trial.started_at = trial.started_at or self.clock()
        if first:
            self.callbacks.call("on_trial_start", iteration=self.iteration,
                                trials=self.trial_list, trial=trial)
        elif unexplained:  # Slurm restarted the job without a signal: node failure, kill -9
            self._count_failure(trial, "the job was restarted by Slurm without warning "
                                       "(node failure or a kill without signal)")

    def _on_result(self, trial: Trial, result: dict, checkpoint: str | None) -> None:
        if not trial.awaiting_restart:
            trial.status = TrialStatus.RUNNING
        if checkpoint:
            self._on_checkpoint(trial, checkpoint, result)
        if trial.stop_requested_at is not None:
            trial.results_after_stop += 1  # in the log, but the trial ended with its decision
            return
        trial.record_result(result)
        iteration = result.get("training_iteration", 0)
        if iteration <= trial.max_iteration:
            return  # re-run after a restart from an older checkpoint: recorded, not acted on
        trial.max_iteration = iteration
        self.searcher.on_trial_result(trial.trial_id, result)
        self.callbacks.call("on_trial_result", iteration=self.iteration, trials=self.trial_list,
                            trial=trial, result=result)
        if self.stopper(trial.trial_id, result):
            self._request_stop(trial, "stop criterion reached", by_scheduler=False)
        else:
            decision = self.scheduler.on_trial_result(trial.info, result)
            if decision is Decision.STOP:
                self._request_stop(trial, "stopped by scheduler", by_scheduler=True)
            elif decision is Decision.PAUSE and not trial.awaiting_restart:
                trial.awaiting_restart = True  # the worker checkpoints and exits
                self.exp.write_control(trial.trial_id, {"action": "pause"})
        if self.stopper.stop_all():
            self._stop_experiment("a stopper ended the experiment")

    # -- ending trials --------------------------------------------------------------
    def _on_complete(self, trial: Trial) -> None:
        if trial.last_result:
            trial.last_result["done"] = True
        self._finish(trial, TrialStatus.TERMINATED)
        self.scheduler.on_trial_complete(trial.info, trial.last_result or None)
        self.searcher.on_trial_complete(trial.trial_id, trial.last_result or None)
        self.callbacks.call("on_trial_complete", iteration=self.iteration,
                            trials=self.trial_list, trial=trial)

    def _on_stopped(self, trial: Trial) -> None:
        """The trial ended on a stop decision (cooperatively, or cancelled)."""
        self._finish(trial, TrialStatus.TERMINATED)
        if trial.stopped_by_scheduler:
            self.scheduler.on_trial_remove(trial.info)
            self.searcher.on_trial_stopped_early(trial.trial_id, trial.last_result or None)
        else:
            self.scheduler.on_trial_complete(trial.info, trial.last_result or None)
            self.searcher.on_trial_complete(trial.trial_id, trial.last_result or None)
        self.callbacks.call("on_trial_complete", iteration=self.iteration,
                            trials=self.trial_list, trial=trial)

    def _on_error(self, trial: Trial, error: str) -> None:
        trial.num_failures += 1
        if self._may_retry(trial):
            self._retry(trial)
            return
        self._fail(trial, error)

    def _may_retry(self, trial: Trial) -> bool:
        return self.settings.max_failures < 0 or trial.num_failures <= self.settings.max_failures

    def _count_failure(self, trial: Trial, why: str) -> None:
        """A failure that Slurm already retried (requeued job): end the trial if over budget."""
        trial.num_failures += 1
        if not self._may_retry(trial):
            if trial.job_id:
                self.backend.cancel([trial.job_id])
            self._fail(trial, f"Trial {trial.trial_id} failed {trial.num_failures} times; "
                              f"the last time {why}. Raise FailureConfig(max_failures=...) to retry more.")

    def _fail(self, trial: Trial, error: str) -> None:
        trial.error = error
        self._finish(trial, TrialStatus.ERROR)
        self.scheduler.on_trial_error(trial.info)
        self.searcher.on_trial_complete(trial.trial_id, trial.last_result or None, error=True)
        self.callbacks.call("on_trial_error", iteration=self.iteration,
                            trials=self.trial_list, trial=trial)
        if self.settings.fail_fast:
            self.fatal_error = f"Trial {trial.trial_id} failed (fail_fast is set):\n{error}"
            self._stop_experiment(self.fatal_error)

    def _retry(self, trial: Trial) -> None:
        """Resubmit a failed trial; it resumes from its latest checkpoint."""
        trial.job_id, trial.status, trial.job_state = None, TrialStatus.PENDING, ""
        trial.awaiting_restart = True

    def _on_checkpoint(self, trial: Trial, name: str, result: dict) -> None:
        """Track checkpoints; delete those beyond CheckpointConfig(num_to_keep)."""
        cfg = self.settings.checkpoint_config
        attribute = cfg.checkpoint_score_attribute
        trial.checkpoint = name
        trial.checkpoints = [c for c in trial.checkpoints if c[0] != name]
        trial.checkpoints.append([name, result.get(attribute) if attribute else None])
        doomed = checkpoints_to_delete([tuple(c) for c in trial.checkpoints], cfg.num_to_keep,
                                       cfg.checkpoint_score_order, by_score=bool(attribute))
        for doomed_name in doomed:
            shutil.rmtree(Path(trial.path) / doomed_name, ignore_errors=True)
        trial.checkpoints = [c for c in trial.checkpoints if c[0] not in doomed]

    def _finish(self, trial: Trial, status: TrialStatus) -> None:
        trial.status, trial.ended_at = status, self.clock()
        self._live.pop(trial.trial_id, None)
        if not trial.user_files:  # the job ended without writing them (cancelled, killed)
            write_user_files(Path(trial.path), trial.config)

    # -- stopping --------------------------------------------------------------------
    def _request_stop(self, trial: Trial, reason: str, by_scheduler: bool) -> None:
        """Ask the worker to stop at its next report; scancel follows after a grace period."""
        trial.stop_requested_at, trial.stop_reason = self.clock(), reason
        trial.stopped_by_scheduler = by_scheduler
        self.exp.write_control(trial.trial_id, {"action": "stop", "reason": reason,
                                                "time": time.time()})

    def _enact_stops(self) -> None:
        deadline = self.clock() - self.settings.stop_grace_s
        overdue = [t for t in self.live_trials if t.stop_requested_at is not None
                   and t.stop_requested_at <= deadline and t.job_id and t.job_state != "CANCELLING"]
        if overdue:
            self.backend.cancel([t.job_id for t in overdue])
            for trial in overdue:
                trial.job_state = "CANCELLING"

    def _stop_experiment(self, reason: str) -> None:
        self.stop_everything = True
        self.searcher_finished = True
        live = self.live_trials
        for trial in live:
            if trial.stop_requested_at is None:
                self._request_stop(trial, reason, by_scheduler=False)
        queued = [t for t in live if t.job_id and t.job_state != "CANCELLING"]
        self.backend.cancel([t.job_id for t in queued])
        for trial in live:
            trial.job_state = "CANCELLING"
            if trial.job_id is None:
                self._on_stopped(trial)

    def _check_budget(self) -> None:
        budget = self.settings.time_budget_s
        if budget is not None and not self.stop_everything and self.clock() - self._started >= budget:
            self._stop_experiment(f"time budget of {budget} s spent")

    # -- watching jobs ---------------------------------------------------------------
    def _poll_jobs(self) -> None:
        self._last_poll = self.clock()
        states = self.backend.poll()
        gone = []
        for trial in self.live_trials:
            if trial.job_id is None:
                continue
            state = states.get(trial.job_id)
            if state is None:
                gone.append(trial)
                continue
            trial.job_state, trial.job_reason, trial.node = state.state, state.reason, state.node
            self._check_heartbeat(trial)
        if gone:
            self._ingest_logs()  # a final event may have landed since the last read
            self._on_jobs_gone([t for t in gone if not t.is_finished])

    def _check_heartbeat(self, trial: Trial) -> None:
        """A job Slurm calls RUNNING whose log stopped advancing is hung or lost: retry it."""
        timeout = self.settings.heartbeat_timeout_s
        if timeout is None or trial.job_state != "RUNNING" or trial.stop_requested_at is not None:
            return
        since = trial.last_event_at or trial.submitted_at or self.clock()
        if self.clock() - since > timeout:
            self.backend.cancel([trial.job_id])
            self._on_error(trial, f"No heartbeat from job {trial.job_id} for {timeout:.0f} s while "
                                  "Slurm reported it RUNNING: cancelled it as lost.")

    def _on_jobs_gone(self, trials: list[Trial]) -> None:
        """Jobs that left the queue without a final event: stopped, or an error."""
        for trial in trials:  # `hpctune cancel` writes a stop request before its scancel
            if trial.stop_requested_at is None and self._stop_requested_on_disk(trial):
                trial.stop_requested_at, trial.stop_reason = self.clock(), "cancelled"
        unexplained = [t for t in trials if t.stop_requested_at is None]
        for trial in trials:
            if trial.stop_requested_at is not None:
                self._on_stopped(trial)
        if not unexplained:
            return
        final = self.backend.final_states([t.job_id for t in unexplained])
        for trial in unexplained:
            _, stderr = self.backend.log_paths(trial.job_id)
            state = final.get(trial.job_id, "unknown: no accounting record")
            self._on_error(trial, f"Job {trial.job_id} ended without a final result "
                                  f"(scheduler state: {state}). See its stderr: {stderr}")

    def _stop_requested_on_disk(self, trial: Trial) -> bool:
        request = read_json(self.exp.control_path(trial.trial_id), default={}) or {}
        return request.get("action") == "stop"

    # -- persistence ------------------------------------------------------------------
    def _snapshot(self, status: str = "running") -> None:
        """Write the driver's state atomically; the result logs remain the source of truth."""
        self._last_snapshot = self.clock()
        for trial_id, tail in self.tails.items():  # where a restored driver resumes reading
            self.trials[trial_id].log_offset = tail.offset
        write_json_atomic(self.exp.state_path, {
            "trials": [t.to_dict() for t in self.trials.values()],
            "searcher_finished": self.searcher_finished,
            "backend_commands": self.backend.command_counts(),
            "updated": time.time(),
        }, fsync=False, indent=None)
        save_driver_state(self.exp, {
            "trials": [t.to_dict() for t in self.trials.values()],
            "searcher": self.searcher.get_state(),
            "scheduler": self.scheduler.get_state(),
            "searcher_finished": self.searcher_finished,
            "trial_id_prefix": self.settings.trial_id_prefix,
        })
        self.searcher.save_to_dir(self.exp.root)
        write_json_atomic(self.exp.summary_path, experiment_summary(
            self.trial_list, self.settings.metric, self.settings.mode, status,
            self.backend.command_counts()), fsync=False)
