"""The main loop of one pool task: claim a run, run it in a clean process, repeat.

``python -m hpctune.pool EXP_DIR --manifest FILE`` runs as a task of a Slurm array (one array
per resource shape; its line of the manifest, ``storage/pool_manifest``, says which shape, how
long to idle, how to start runs and how many at once). It first resumes the runs it had claimed
before a requeue, then claims queued runs of its shape (``storage/pool_queue``) while it
has free slots, and exits once it has had nothing to run for ``idle_s`` seconds.

Each run gets what a one-job-per-trial worker gets: its own process (``pool/child``),
trial directory, log files, checkpoint restore and signals:

* a cancel request from the driver (or a stop written by ``hpctune cancel``) sends SIGTERM
  to that run's process only, then SIGKILL to its process group after the grace time;
* SIGTERM to the pool task (preemption, a cancel) and the time-limit signal (USR1/USR2)
  are passed on to every run, which checkpoints and exits; runs that did not end keep
  their claims, and after a time-limit signal the task requeues itself, so the requeued
  task resumes them first;
* a run whose process crashes is recorded as ended; the driver retries it per
  ``max_failures`` like any failed job, and the pool task goes on;
* no run starts once the time left before the task's time limit is shorter than the
  warning lead (``SlurmConfig(signal_lead_s)``, the time a trial is given to checkpoint):
  the task exits when its runs are done, and the driver submits a fresh one for the rest.
  A task's first fill of its slots is exempt: those runs get what a job of their own would
  (with ``time_min * 60`` not above the lead, a task could otherwise never start a run, and
  the driver would submit fresh tasks for ever).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hpctune.pool import child as child_mod
from hpctune.pool.child import Child
from hpctune.pool.slots import SlotPlan
from hpctune.storage import events as ev
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.pool_queue import PoolQueue, RunClaim, run_job_id
from hpctune.storage.result_log import read_events
from hpctune.worker.run import POOL_JOB_ENV
from hpctune.worker.session import stop_grace_of

#: how often a pool task looks at the queue (free slots) and at its runs' cancel requests (seconds)
CLAIM_POLL_S = 0.05
#: how often it reads its runs' control records (a stop written by ``hpctune cancel``)
CONTROL_POLL_S = 0.5
#: beyond ``stop_grace_s``, how long a stopped run's worker has to end on its own before the pool
#: task kills its process group: the worker's own watchdog fires at ``stop_grace_s`` and exits
#: (``Session.start_stop_watchdog``); this margin lets it, so a kill is for a stuck process only
KILL_MARGIN_S = 2.0
#: set by a pool task for each run it starts: the pool task's id (the worker reads ``POOL_JOB_ENV``)
POOL_TASK_ENV = "HPCTUNE_POOL_TASK"


class PoolTask:
    """One pool task: its queue, its slots, its running children."""

    def __init__(self, root: Path, task_id: str, shape: str, idle_s: float, start_method: str,
                 plan: SlotPlan, claim_until: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.exp = ExperimentDir(root)
        self.queue = PoolQueue(root)
        self.task_id, self.shape, self.idle_s = task_id, shape, idle_s
        self.start_method, self.plan, self.clock = start_method, plan, clock
        #: no new run starts after this (``clock()``): it could not checkpoint before the time limit
        #: (from the task's second fill of its slots on: see the module's docstring)
        self.claim_until = claim_until
        self._filled_once = False
        self.children: dict[int, Child] = {}
        self.signal_name: str | None = None
        self._forwarded = False
        self._grace_s = stop_grace_of(self.exp.read_experiment()) + KILL_MARGIN_S
        self._last_control = 0.0
        self._idle_since = 0.0
        self._wake_r = self._wake_w = -1  # the wake-up pipe: made by ``run`` (a real task only)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        """Run trials until the queue has been empty for ``idle_s`` (or a signal ends the task)."""
        child_mod.preimport()
        self._wake_r, self._wake_w = os.pipe()
        previous = self._install_signals()
        try:
            return self._loop()
        finally:
            signal.set_wakeup_fd(previous.pop("wakeup_fd"))
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _loop(self) -> int:
        self.resume()
        while not self.step():
            self._wait(CLAIM_POLL_S)  # a run's end wakes it at once (SIGCHLD); cancels are polled
        if self.signal_name in ("SIGUSR1", "SIGUSR2") and self.queue.claims(self.task_id):
            _requeue_self(self.task_id)
        return 0

    def resume(self) -> None:
        """At the task's start: the runs it had claimed before a requeue first."""
        for claim in self.queue.claims(self.task_id):
            self._start(claim)
        self._idle_since = self.clock()

    def step(self) -> bool:
        """One pass of the loop (reap ended runs, pass on signals or cancels, claim runs for free
        slots); True when the task is done: a signal ended its runs, or it has had nothing to
        run for ``idle_s``, or its time limit is too close. ``bench/sim_cluster`` calls it too."""
        self._reap()
        if self.signal_name is not None:
            if not self._forwarded:
                self._forward(self.signal_name)
            if not self.children:
                return True
            self._kill_overdue()
            return False
        self._enact_cancels()
        late = self._filled_once and self.claim_until is not None and self.clock() >= self.claim_until
        if not late:
            self._fill_slots()
        if self.children:
            self._idle_since = self.clock()
            return False
        return late or self.clock() - self._idle_since >= self.idle_s  # late: a fresh task takes over

    def _fill_slots(self) -> None:
        while self.plan.free(self.children.values()):
            claim = self.queue.claim_next(self.task_id, self.shape)
            if claim is None:
                break
            self._start(claim)
        self._filled_once = self._filled_once or bool(self.children)

    def _start(self, claim: RunClaim) -> None:
        """Start the claimed run: its trial is in the claim's name (``storage/pool_queue``)."""
        trial_id = claim.trial_id
        if trial_id is None:  # a run of an hpctune before whose record cannot be read: say so
            print(f"hpctune pool: run {claim.seq} has no readable record; dropped", file=sys.stderr)
            self.queue.finish(self.task_id, claim, 1)
            return
        gpus = self.plan.take(self.children.values())
        job_id = run_job_id(claim.seq)
        env = {POOL_JOB_ENV: job_id, POOL_TASK_ENV: self.task_id}
        if self.plan.gpu_ids is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        logs = self.exp.job_log_paths(job_id)
        pid, popen = self._launch(trial_id, env, logs)
        # in the pool task's own log: which runs it ran (their claims go when they end)
        print(f"hpctune pool: run {job_id} of trial {trial_id} started (pid {pid})", flush=True)
        self.children[pid] = Child(claim, trial_id, pid, gpus, started=self.clock(), popen=popen)

    def _launch(self, trial_id: str, env: dict[str, str],
                logs: tuple[Path, Path]) -> tuple[int, subprocess.Popen | None]:
        """Start the run's process: (pid, Popen or None). The simulated cluster plays it instead."""
        return child_mod.start(self.start_method, self.exp.root, trial_id, env, logs,
                               close_fds=(self._wake_r, self._wake_w))

    def _exit_code(self, running: Child) -> int | None:
        """The run's exit code once its process ended, else None."""
        return child_mod.reap(running)

    def _signal(self, running: Child, sig: int, group: bool = False) -> None:
        """Send ``sig`` to the run's process (or its process group)."""
        child_mod.signal_child(running, sig, group=group)

    def _reap(self) -> None:
        for pid, running in list(self.children.items()):
            code = self._exit_code(running)
            if code is None:
                continue
            del self.children[pid]
            ended = self._ended_for_good(running)
            if self.signal_name is not None and not ended:
                continue  # keeps its claim: the requeued pool task resumes it from its checkpoint
            self.queue.finish(self.task_id, running.claim, code, logged_end=ended,
                              wall_s=self.clock() - running.started)

    def _ended_for_good(self, running: Child) -> bool:
        """True if the run's last event ends its job (``EventKind.ends_job``: complete, stopped,
        error, paused, exploited): it is never resumed, so its claim is dropped."""
        job_id, log_path = run_job_id(running.seq), self.exp.result_log_path(running.trial_id)
        kinds = [ev.event_kind(e, log_path) for e in read_events(log_path) if e.get(ev.JOB_ID) == job_id]
        return bool(kinds) and kinds[-1] is not None and kinds[-1].ends_job

    # -- stopping runs -------------------------------------------------------------------------
    def _enact_cancels(self) -> None:
        """SIGTERM to each run the driver cancelled or ``hpctune cancel`` stopped."""
        now = self.clock()
        read_control = now - self._last_control >= CONTROL_POLL_S
        if read_control:
            self._last_control = now
        for running in self.children.values():
            if running.term_sent_at is None:
                wanted = self.queue.cancel_requested(running.seq) or (
                    read_control and self._stop_requested(running.trial_id))
                if wanted:
                    self._signal(running, signal.SIGTERM)
                    running.term_sent_at = now
        self._kill_overdue()

    def _stop_requested(self, trial_id: str) -> bool:
        record = self.exp.read_control(trial_id)
        return record is not None and record.is_stop

    def _kill_overdue(self) -> None:
        """SIGKILL (the whole process group) a run still alive ``grace`` after its SIGTERM."""
        now = self.clock()
        for running in self.children.values():
            if running.term_sent_at is not None and now - running.term_sent_at > self._grace_s:
                self._signal(running, signal.SIGKILL, group=True)

    def _forward(self, name: str) -> None:
        """Pass the pool task's signal on to every run (SIGTERM is bounded by the grace time)."""
        self._forwarded = True
        sig = getattr(signal, name)
        for running in self.children.values():
            self._signal(running, sig)
            if sig == signal.SIGTERM:
                running.term_sent_at = self.clock()

    # -- signals and waiting -------------------------------------------------------------------
    def _install_signals(self) -> dict:
        """Handlers for the task's signals; returns what they replaced (restored at the end)."""
        os.set_blocking(self._wake_w, False)
        previous: dict = {"wakeup_fd": signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)}
        previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda *_: None)  # a run ended: wake up
        for name in ("SIGTERM", "SIGUSR1", "SIGUSR2"):
            previous[getattr(signal, name)] = signal.signal(getattr(signal, name), self._on_signal)
        return previous

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self.signal_name is None or signum == signal.SIGTERM:
            if self.signal_name != signal.Signals(signum).name:
                self._forwarded = False
            self.signal_name = signal.Signals(signum).name

    def _wait(self, timeout: float) -> None:
        with contextlib.suppress(InterruptedError):
            poller = select.poll()  # not select(): it refuses descriptors above 1023
            poller.register(self._wake_r, select.POLLIN)
            if poller.poll(timeout * 1000):
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 4096)


def _requeue_self(task_id: str) -> None:
    """``scontrol requeue`` this pool task: it resumes its checkpointed runs when it restarts."""
    from hpctune.backends.slurm_commands import requeue_args
    from hpctune.backends.slurm_limits import shared_commands

    proc = shared_commands().run(requeue_args(task_id), check=False)
    if proc.returncode != 0:
        print(f"hpctune pool: scontrol requeue {task_id} failed on {socket.gethostname()}: "
              f"{proc.stderr.strip()}", file=sys.stderr)
