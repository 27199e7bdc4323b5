"""An in-process backend whose jobs are scripted by the test, and a clock the test advances.

``FakeBackend`` implements the ``Backend`` protocol of ``hpctune.backends.base``. It records
every call the controller makes (``launches``, ``cancels``, ``polls``, ``final_state_queries``)
and runs nothing: each launched trial gets a ``FakeJob``, and the test makes the job do
what a worker would do (start, report, checkpoint, heartbeat, fail, exit) by calling its
methods. Every such call appends a real event to the trial's real result log
(``ResultLog`` at ``ExperimentDir.result_log_path``), so the controller reads exactly what
it would read from a worker.

Events are stamped with increasing times in the past (``FakeBackend.event_time``): the
controller hands events of all trials to the scheduler in time order and holds back events
younger than its settle window, so the order in which a test writes events is the order in
which they are handled, at the next ``Controller.step()``.

Job ids look like Slurm's array tasks: the n-th launch is array ``100 + n``, its tasks
``<array>_<index>`` in the order of the trial ids given to ``launch``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpctune.backends.base import JobReport
from hpctune.storage.checkpoints import checkpoint_dir_name
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.worker.verdict import read_request

#: job states in which a job is still in the queue (``poll`` reports it)
QUEUED = ("PENDING", "RUNNING")


class FakeClock:
    """``clock()`` for ``Controller(clock=...)``: time moves only when the test says so."""

    def __init__(self, start: float = 1000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass(frozen=True)
class Launch:
    """One call of ``FakeBackend.launch``: what the controller asked for and what it got."""

    trial_ids: list[str]
    resources: dict[str, Any]
    throttle: int | None
    job_ids: list[str]


@dataclass
class FakeJob:
    """One launched job of one trial. Methods write what a worker would write.

    ``state`` is what ``poll`` reports while the job is queued (PENDING, RUNNING); once the
    job leaves the queue it is its end state (COMPLETED, FAILED, CANCELLED), which
    ``final_states`` reports when ``accounting`` is on. ``hung``: a cancel writes nothing
    (a lost node); otherwise a running job that is cancelled writes ``stopped`` if the
    driver ended the trial (control.json: a final stop), else ``terminated`` (a stop to be
    resumed later, or none at all), as the worker does on SIGTERM.
    """

    backend: FakeBackend
    job_id: str
    trial_id: str
    restart_count: int = 0
    state: str = "PENDING"
    iteration: int = 0
    since_restore: int = 0
    hung: bool = False
    cancelled: bool = False
    written: list[str] = field(default_factory=list)

    # -- what a worker writes -------------------------------------------------------------
    def start(self, restored_iteration: int = 0) -> FakeJob:
        """The worker starts (``restored_iteration``: resumed from that checkpoint)."""
        self.state, self.iteration, self.since_restore = "RUNNING", restored_iteration, 0
        self._write(EventKind.START, restored_iteration=restored_iteration)
        return self

    def report(self, checkpoint: bool = False, waits: bool = False, **metrics: Any) -> FakeJob:
        """``train.report(metrics)``: the next training_iteration, with a checkpoint
        directory created in the trial directory when ``checkpoint``; ``waits``: at a decision
        point (the worker waits for the driver's verdict)."""
        self.iteration += 1
        self.since_restore += 1
        result = {**metrics, "training_iteration": self.iteration,
                  "iterations_since_restore": self.since_restore, "trial_id": self.trial_id,
                  "slurm_job_id": self.job_id, "hostname": "fake", "pid": self._pid,
                  "done": False}
        fields: dict[str, Any] = {"result": result}
        if checkpoint:
            name = checkpoint_dir_name(self.iteration)
            (self.backend.exp.trial_dir(self.trial_id) / name).mkdir(parents=True, exist_ok=True)
            fields["checkpoint"] = name
        if waits:
            fields["waits"] = True
        self._write(EventKind.RESULT, **fields)
        return self

    def heartbeat(self) -> FakeJob:
        self._write(EventKind.HEARTBEAT)
        return self

    def complete(self) -> FakeJob:
        """The trainable returned: ``complete``, and the job leaves the queue."""
        self._write(EventKind.COMPLETE)
        self.state = "COMPLETED"
        return self

    def error(self, message: str = "RuntimeError: boom") -> FakeJob:
        """The trainable raised: ``error`` with the traceback, and the job leaves the queue."""
        self._write(EventKind.ERROR, error=message)
        self.state = "FAILED"
        return self

    def stopped(self, reason: str = "stopped") -> FakeJob:
        self._write(EventKind.STOPPED, reason=reason)
        self.state = "COMPLETED"
        return self

    def paused(self) -> FakeJob:
        self._write(EventKind.PAUSED)
        self.state = "COMPLETED"
        return self

    def preempted(self, signal: str = "SIGUSR1") -> FakeJob:
        """Slurm announced preemption or the time limit (the worker checkpoints next)."""
        self._write(EventKind.PREEMPTED, signal=signal)
        return self

    def requeued(self) -> FakeJob:
        """The worker checkpointed and requeued its own job: it waits in the queue again and
        its next ``start`` has the next restart count."""
        self._write(EventKind.REQUEUED)
        self.state, self.restart_count = "PENDING", self.restart_count + 1
        return self

    def restarted_by_slurm(self) -> FakeJob:
        """Slurm requeued the job without a word (node failure, kill -9): same job id, the
        next restart count, nothing written; ``start`` follows."""
        self.state, self.restart_count = "PENDING", self.restart_count + 1
        return self

    def vanish(self, end_state: str = "NODE_FAIL") -> FakeJob:
        """The job leaves the queue without a final event (killed, node lost)."""
        self.state = end_state
        return self

    # -- internals ---------------------------------------------------------------------------
    @property
    def _pid(self) -> int:
        return 4000 + int(self.job_id.replace("_", ""))

    def _write(self, kind: EventKind, **fields: Any) -> None:
        if self.state not in QUEUED:
            raise AssertionError(f"job {self.job_id} of {self.trial_id} already ended ({self.state})")
        event = new_event(kind, trial_id=self.trial_id, slurm_job_id=self.job_id,
                          restart_count=self.restart_count, hostname="fake", pid=self._pid,
                          time=self.backend.event_time(), **fields)
        log = self.backend.exp.result_log(self.trial_id)
        try:
            log.append(event)
        finally:
            log.close()
        self.written.append(kind.value)

    def _on_cancel(self) -> None:
        self.cancelled = True
        if self.state == "RUNNING" and not self.hung:
            control = read_request(self.backend.exp.control_path(self.trial_id))  # as the worker reads it
            if control is not None and control.is_stop and control.final:
                self._write(EventKind.STOPPED, reason=control.reason)
            else:  # preempted, or cancelled to be resumed later (Ctrl+C on the driver)
                self._write(EventKind.TERMINATED, reason=control.reason if control else "SIGTERM")
        if self.state in QUEUED:
            self.state = "CANCELLED"


class FakeBackend:
    """The ``Backend`` protocol, in process: records calls, runs nothing (see the module doc).

    ``room``: the scheduler's MaxSubmitJobs (``submit_room``), None for no limit.
    ``accounting``: whether ``final_states`` knows the end state of jobs that left the queue.
    ``survive``: ``jobs_survive_driver`` (True as on Slurm).
    ``autorun``: called with each new job at launch, to script jobs that run by themselves
    (e.g. ``lambda job: job.start().report(loss=1).complete()``) when a test calls
    ``Tuner.fit()`` rather than stepping the controller.
    """

    name = "fake"

    def __init__(self, exp: ExperimentDir, poll_interval_s: float = 0.0, room: int | None = None,
                 accounting: bool = True, survive: bool = True,
                 jobs: dict[str, FakeJob] | None = None, first_array: int = 100,
                 autorun: Callable[[FakeJob], Any] | None = None):
        self.exp = exp
        self.autorun = autorun
        self.poll_interval_s = poll_interval_s
        self.jobs_survive_driver = survive
        self.room = room
        self.accounting = accounting
        self.jobs: dict[str, FakeJob] = jobs if jobs is not None else {}
        self.launches: list[Launch] = []
        self.cancels: list[list[str]] = []
        self.final_state_queries: list[list[str]] = []
        self.polls = 0
        self.closed = False
        self._next_array = first_array

    # -- the Backend protocol ----------------------------------------------------------------
    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        array = self._next_array
        self._next_array += 1
        job_ids = [f"{array}_{i}" for i in range(len(trial_ids))]
        for trial_id, job_id in zip(trial_ids, job_ids, strict=True):
            self.jobs[job_id] = FakeJob(self, job_id, trial_id)
        self.launches.append(Launch(list(trial_ids), dict(resources), throttle, job_ids))
        if self.autorun is not None:
            for job_id in job_ids:
                self.autorun(self.jobs[job_id])
        return job_ids

    def submit_room(self, queued: int) -> int | None:
        return None if self.room is None else max(0, self.room - queued)

    def recorded_launches(self) -> dict[str, str]:
        newest: dict[str, str] = {}
        for job in self.jobs.values():
            newest[job.trial_id] = job.job_id  # launched in order: the last one wins
        return newest

    def poll(self) -> dict[str, JobReport]:
        self.polls += 1
        return {job.job_id: JobReport(job.state, node="fake-node" if job.state == "RUNNING" else "")
                for job in self.jobs.values() if job.state in QUEUED}

    def reconcile(self) -> None:
        """Nothing to act on: a fake job changes when the test makes it."""

    def poll_ready(self) -> bool:
        return True

    def queued(self) -> set[str]:
        return {job.job_id for job in self.jobs.values() if job.state == "PENDING"}

    def cancel(self, job_ids: list[str]) -> None:
        self.cancels.append(list(job_ids))
        for job_id in job_ids:
            self.jobs[job_id]._on_cancel()

    def final_states(self, job_ids: list[str]) -> dict[str, str]:
        self.final_state_queries.append(list(job_ids))
        if not self.accounting:
            return {}
        return {j: self.jobs[j].state for j in job_ids if j in self.jobs}

    def log_paths(self, job_id: str) -> tuple[str, str]:
        out, err = self.exp.job_log_paths(job_id)
        return str(out), str(err)

    def command_counts(self) -> dict[str, int]:
        return {"launch": len(self.launches), "cancel": len(self.cancels), "poll": self.polls}

    def close(self) -> None:
        self.closed = True

    # -- for the test ---------------------------------------------------------------------------
    def job(self, trial_id: str) -> FakeJob:
        """The newest job of a trial."""
        found = [j for j in self.jobs.values() if j.trial_id == trial_id]
        if not found:
            raise KeyError(f"{trial_id} was never launched; launches: {self.launches}")
        return found[-1]

    def jobs_of(self, trial_id: str) -> list[str]:
        """Every job id the trial was launched as, oldest first."""
        return [j.job_id for j in self.jobs.values() if j.trial_id == trial_id]

    def successor(self, survive: bool | None = None) -> FakeBackend:
        """The backend of a restored driver: the same jobs (still in the queue or not), no calls
        recorded yet, new arrays numbered after the old ones."""
        return FakeBackend(self.exp, self.poll_interval_s, self.room, self.accounting,
                           self.jobs_survive_driver if survive is None else survive,
                           jobs=self.jobs, first_array=self._next_array, autorun=self.autorun)

    @staticmethod
    def event_time() -> float:
        """A wall-clock time for the next event: increasing over the whole test session, and
        long before the controller's settle horizon (``time.time()`` minus a few ms), so an
        event is handled at the next step, in the order the test wrote it."""
        return _EPOCH + next(_SEQUENCE)


_SEQUENCE = itertools.count(1)
_EPOCH = 1_600_000_000.0  # September 2020: in the past on any machine running these tests
