"""Watching jobs: one backend poll per ``poll_interval_s``, heartbeats, jobs that vanished.

A job Slurm calls RUNNING whose log stopped advancing for ``heartbeat_timeout_s`` is
lost (a dead node, a hung filesystem): it is cancelled and retried. A running trial whose
worker still beats but that reported no result for ``report_timeout_s`` (from its start or
its last result) is hung in its own code: cancelled and retried the same way, with an
error that names the report timeout. A job that left the
queue without a final event was cancelled on request (``hpctune cancel`` writes a stop
request first) or failed; its accounting record, when there is one, says how.
"""

from __future__ import annotations

from collections.abc import Callable

from hpctune.backends.base import Backend
from hpctune.controller.enactor import Enactor
from hpctune.controller.events import Reading
from hpctune.controller.state import TrialTable
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import JobState, Trial, TrialStatus


class JobWatch:
    """Polls the backend and acts on what changed (see the module docstring)."""

    def __init__(self, table: TrialTable, backend: Backend, exp: ExperimentDir, enactor: Enactor,
                 heartbeat_timeout_s: float | None, report_timeout_s: float | None,
                 read_logs: Callable[[Reading], None]):
        self.table, self.backend, self.exp, self.enactor = table, backend, exp, enactor
        self.heartbeat_timeout_s, self.report_timeout_s = heartbeat_timeout_s, report_timeout_s
        self.read_logs, self.clock = read_logs, enactor.clock
        self._last_poll = -1e9
        #: trial id -> (the run and result count last seen, when the driver first saw it)
        self._progress: dict[str, tuple[tuple, float]] = {}
        #: trial id -> (its job, when a poll first saw that job RUNNING)
        self._running_since: dict[str, tuple[str | None, float]] = {}

    def poll_due(self) -> bool:
        """Every ``poll_interval_s``, unless the backend defers it (a poll must not take the
        Slurm calls kept for stops and resubmissions)."""
        if self.clock() - self._last_poll < self.backend.poll_interval_s:
            return False
        return self.backend.poll_ready()

    def poll(self) -> None:
        """One backend poll: every submitted trial's job state, a hung or lost one retried, a
        job that left the queue without a final event explained."""
        self._last_poll = self.clock()
        states = self.backend.poll()
        self.backend.reconcile()  # what the poll calls for (a pool hands back claims, submits tasks)
        gone = []
        for trial in self.table.submitted():
            state = states.get(trial.job_id)
            if state is None:
                gone.append((trial, trial.job_id))
                continue
            trial.observe_job(state.state, state.reason, state.node)
            self._check_heartbeat(trial)
            self._check_reports(trial)
        if gone:
            self.read_logs(Reading.TO_THE_END)  # a final event may have landed since the last read
            # still unexplained: not finished, and not paused or retried (a new job) meanwhile
            self._on_jobs_gone([t for t, job in gone if not t.is_finished and t.job_id == job])

    def _check_heartbeat(self, trial: Trial) -> None:
        """A job Slurm reports RUNNING whose log stopped advancing is hung or lost: retry it."""
        timeout = self.heartbeat_timeout_s
        if timeout is None or trial.job_state is not JobState.RUNNING or trial.stop_requested_at is not None:
            self._running_since.pop(trial.trial_id, None)
            return
        job, seen = self._running_since.get(trial.trial_id, (None, 0.0))
        if job != trial.job_id:  # the silence counts from when Slurm started the job, not
            seen = self.clock()  # from its submission: an array task may queue for hours
            self._running_since[trial.trial_id] = (trial.job_id, seen)
        since = max(trial.last_event_at or seen, seen)
        if self.clock() - since > timeout:
            self.backend.cancel([trial.job_id])
            self.enactor.retry_or_fail(trial, f"No heartbeat from job {trial.job_id} for {timeout:.0f} s "
                                              "while Slurm reported it RUNNING: cancelled it as lost.")

    def _check_reports(self, trial: Trial) -> None:
        """A running trial that reported nothing for ``report_timeout_s`` (its heartbeats do not
        count) is hung: cancel its job and retry it per ``max_failures``."""
        timeout = self.report_timeout_s
        running = (trial.status is TrialStatus.RUNNING and trial.job_state is JobState.RUNNING
                   and trial.stop_requested_at is None and not trial.is_finished)
        if timeout is None or not running:
            self._progress.pop(trial.trial_id, None)
            return
        mark, now = (trial.job_id, trial.restart_count, trial.num_results), self.clock()
        seen = self._progress.get(trial.trial_id)
        if seen is None or seen[0] != mark:
            self._progress[trial.trial_id] = (mark, now)  # started, or a new result: the clock restarts
            return
        if now - seen[1] <= timeout:
            return
        del self._progress[trial.trial_id]
        job = trial.job_id
        self.backend.cancel([job])
        self.enactor.retry_or_fail(trial, f"Trial {trial.trial_id} reported no result for {timeout:g} s "
                                          f"(FailureConfig(report_timeout_s={timeout:g})): its trainable "
                                          f"looks hung, so job {job} was cancelled. Fix: find where it waits "
                                          "(`hpctune logs`), or raise report_timeout_s if a step can take "
                                          "that long.")

    def _on_jobs_gone(self, trials: list[Trial]) -> None:
        """Jobs that left the queue without a final event: stopped, or an error."""
        for trial in trials:  # `hpctune cancel` writes a stop request before its scancel
            if trial.stop_requested_at is None and self._stop_requested_on_disk(trial):
                trial.request_stop("cancelled", by_scheduler=False, at=self.clock())
        unexplained = [t for t in trials if t.stop_requested_at is None]
        for trial in trials:
            if trial.stop_requested_at is not None:
                self.enactor.terminate(trial, early=trial.stopped_by_scheduler)
        if not unexplained:
            return
        final = self.backend.final_states([t.job_id for t in unexplained])
        for trial in unexplained:
            _, stderr = self.backend.log_paths(trial.job_id)
            state = final.get(trial.job_id, "unknown: no accounting record")
            self.enactor.retry_or_fail(trial, f"Job {trial.job_id} ended without a final result "
                                              f"(scheduler state: {state}). See its stderr: {stderr}")

    def _stop_requested_on_disk(self, trial: Trial) -> bool:
        record = self.exp.read_control(trial.trial_id)
        return record is not None and record.is_stop
