"""A simulated Slurm cluster for the driver's scale runs (``bench/driver_scale.py``) only.

It never replaces the lab: it exists so that a run of 100,000 trials with 2,000 running at
once takes minutes on one machine. The driver is the real one, line for line (``Controller``,
``SlurmBackend``, the array scripts and manifests it writes, the change feed, the snapshots);
only the last step, running a Slurm command, is answered here instead of by ``subprocess``
(``SimCommands._call``). Behind it a child process (``SimHost``) plays slurmctld and the
workers:

* ``sbatch`` reads the script the driver wrote (``--array=0-N%K``, the manifest of trials),
  queues one task per trial, and runs tasks as slots free (``--slots``, and the array's
  throttle), in submission order;
* each running task does what a worker does on disk: a ``start`` event, a ``result`` every
  ``report_every`` seconds, a ``complete`` at the end, each appended with the trial's
  ``ResultLog`` (which rings the change feed); at a result where its trial's decision points
  say it waits, it waits for the driver's verdict in ``control.json`` as ``report()`` does,
  and a stop ends it with a ``stopped`` event;
* ``squeue`` lists the queued and running tasks in the driver's format; ``scancel`` ends them.

Time is virtual and shared: ``VirtualClock`` runs ``speed`` times faster than the real one in
both processes, the driver's sleeps are shortened by the same factor, and events carry virtual
times, so the driver sees a cluster running at full speed while only ``1/speed`` of the time
passes. Figures per second are per *virtual* second (what a real run of that length costs).
"""

from __future__ import annotations

import heapq
import multiprocessing
import re
import subprocess
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hpctune.backends.slurm_commands import SlurmCommands
from hpctune.core.decision_points import META_KEY as POINTS_KEY
from hpctune.core.decision_points import DecisionPoints
from hpctune.storage.array_manifest import read_array_manifest
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.worker.verdict import read_request

#: what the virtual wall clock reads at virtual time 0
EPOCH = 1_700_000_000.0
CONFIG_TEXT = "MaxArraySize = 1000001\nMaxJobCount = 10000000\nAccountingStorageType = accounting_storage/none\n"


class VirtualClock:
    """Virtual seconds since ``start`` (a ``time.monotonic()`` value, the same in every process).

    ``pause()``/``resume()`` stop it in every process (shared values): the benchmark pauses it
    while the driver creates and submits the experiment's trials, which takes real seconds
    that the clock's speed would otherwise turn into minutes without a heartbeat."""

    def __init__(self, speed: float, start: float, shared: tuple[Any, Any] | None = None):
        self.speed, self.start, self.epoch = speed, start, EPOCH
        # (real seconds paused so far, monotonic time of the pause in progress or 0)
        self.shared = shared or (multiprocessing.Value("d", 0.0, lock=False),
                                 multiprocessing.Value("d", 0.0, lock=False))

    def now(self) -> float:
        paused, since = self.shared[0].value, self.shared[1].value
        real = (since or time.monotonic()) - self.start - paused
        return real * self.speed

    def pause(self) -> None:
        self.shared[1].value = time.monotonic()

    def resume(self) -> None:
        self.shared[0].value += time.monotonic() - self.shared[1].value
        self.shared[1].value = 0.0

    def wall(self) -> float:
        return self.epoch + self.now()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds / self.speed)


class SimCommands(SlurmCommands):
    """The driver's ``SlurmCommands``: each call goes to the simulated cluster, not to a
    subprocess (counting, retries and parsing are the real class's)."""

    def __init__(self, conn: Connection):
        super().__init__()
        self.conn = conn

    def _call(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        self.conn.send(args)
        code, out, err = self.conn.recv()
        return subprocess.CompletedProcess(args, code, out, err)


@dataclass
class Task:
    job_id: str  # "<array>_<index>"
    trial_id: str
    throttle_key: str
    state: str = "PENDING"
    iteration: int = 0
    started: float = 0.0
    waiting_since: float | None = None
    waited: float = 0.0
    log: Any = None
    points: DecisionPoints | None = None


@dataclass
class Stats:
    """What the cluster saw: for the driver's figures."""

    busy_slot_s: float = 0.0  # slot-seconds in the trainable (not waiting for a verdict)
    waiting_slot_s: float = 0.0
    started: int = 0
    ended: int = 0
    first_start: float | None = None
    last_end: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    squeue_at: list[float] = field(default_factory=list)  # virtual times of the squeue calls


class Cluster:
    """The queue and the workers (see the module docstring); driven by ``SimHost``."""

    def __init__(self, exp: ExperimentDir, clock: VirtualClock, slots: int, duration_s: float,
                 report_every_s: float):
        self.exp, self.clock, self.slots = exp, clock, slots
        self.duration_s, self.report_every_s = duration_s, report_every_s
        self.pending: list[Task] = []  # in submission order
        self.running: dict[str, Task] = {}
        self.throttles: dict[str, int | None] = {}
        self.in_array: dict[str, int] = {}  # throttle key -> its tasks running
        self.due: list[tuple[float, str]] = []  # (virtual time, job id): the next event
        self.next_job = 1000
        self.stats = Stats()

    # -- commands -------------------------------------------------------------------------------
    def command(self, args: list[str]) -> tuple[int, str, str]:
        name = args[0]
        self.stats.calls[name] = self.stats.calls.get(name, 0) + 1
        if name == "sbatch":
            return 0, self._sbatch(Path(args[-1])), ""
        if name == "squeue":
            self.stats.squeue_at.append(self.clock.now())
            return 0, self._squeue(), ""
        if name == "scancel":
            for job in args[1:]:
                self._cancel(job)
            return 0, "", ""
        if name == "scontrol" and "config" in args:
            return 0, CONFIG_TEXT, ""
        return 0, "", ""  # sacctmgr, sacct, scontrol show partition: nothing to say

    def _sbatch(self, script: Path) -> str:
        text = script.read_text()
        array = re.search(r"^#SBATCH --array=(\d+)-(\d+)(?:%(\d+))?", text, re.M)
        manifest = re.search(r"--manifest (\S+)", text)
        trials = read_array_manifest(Path(manifest.group(1)))
        job = str(self.next_job)
        self.next_job += 1
        self.throttles[job] = int(array.group(3)) if array.group(3) else None
        self.in_array[job] = 0
        first, last = int(array.group(1)), int(array.group(2))
        self.pending += [Task(f"{job}_{i}", trials[i], job) for i in range(first, last + 1)]
        return job

    def _squeue(self) -> str:
        lines = [f"{t.job_id}|RUNNING|None|sim" for t in self.running.values()]
        lines += [f"{t.job_id}|PENDING|Resources|" for t in self.pending]
        return "\n".join(lines) + "\n"

    def _cancel(self, job: str) -> None:
        task = self.running.get(job)
        if task is not None:  # SIGTERM: a requested stop is a `stopped`, anything else terminated
            request = read_request(self.exp.control_path(task.trial_id))
            kind = EventKind.STOPPED if request is not None and request.is_stop else EventKind.TERMINATED
            self._write(task, kind, **({"reason": "stopped"} if kind is EventKind.STOPPED else {}))
            self._end(task)
            return
        self.pending = [t for t in self.pending if job not in (t.job_id, t.throttle_key)]

    # -- the workers ----------------------------------------------------------------------------
    def advance(self) -> None:
        """Start what fits, then every event that is due."""
        now = self.clock.now()
        self._start_tasks(now)
        while self.due and self.due[0][0] <= now:
            _, job = heapq.heappop(self.due)
            task = self.running.get(job)
            if task is not None:
                self._next_event(task, now)
        for task in [t for t in self.running.values() if t.waiting_since is not None]:
            self._check_verdict(task, now)

    def _start_tasks(self, now: float) -> None:
        kept = []
        for task in self.pending:
            limit = self.throttles[task.throttle_key]
            if len(self.running) >= self.slots or (limit is not None and self.in_array[task.throttle_key] >= limit):
                kept.append(task)
                continue
            task.state, task.started = "RUNNING", now
            self.running[task.job_id] = task
            self.in_array[task.throttle_key] += 1
            meta = self.exp.read_trial_meta(task.trial_id)  # as the worker reads it
            task.points = DecisionPoints.from_json(meta.get(POINTS_KEY))
            task.log = _result_log(self.exp, task.trial_id)
            self._write(task, EventKind.START, restored_iteration=0)
            self.stats.started += 1
            if self.stats.first_start is None:
                self.stats.first_start = now
            heapq.heappush(self.due, (now + self.report_every_s, task.job_id))
        self.pending = kept

    def _next_event(self, task: Task, now: float) -> None:
        task.iteration += 1
        loss = (zlib.crc32(task.trial_id.encode()) % 1000) / 1000 / task.iteration
        result = {"loss": loss, "training_iteration": task.iteration,
                  "iterations_since_restore": task.iteration, "trial_id": task.trial_id,
                  "time_total_s": now - task.started, "done": False}
        waits = task.points.waits_at(task.iteration)
        self._write(task, EventKind.RESULT, result=result, **({"waits": True} if waits else {}))
        if waits:
            task.waiting_since = now
            return
        self._go_on(task, now)

    def _go_on(self, task: Task, now: float) -> None:
        if task.iteration * self.report_every_s >= self.duration_s:
            self._write(task, EventKind.COMPLETE)
            self._end(task)
        else:
            heapq.heappush(self.due, (now + self.report_every_s, task.job_id))

    def _check_verdict(self, task: Task, now: float) -> None:
        request = read_request(self.exp.control_path(task.trial_id))
        if request is None:
            return
        if request.is_stop or request.is_pause:
            kind = EventKind.STOPPED if request.is_stop else EventKind.PAUSED
            self._write(task, kind, **({"reason": "stopped"} if request.is_stop else {}))
            self._end(task)
        elif request.lets_go_on_after(task.iteration):
            task.waited += now - task.waiting_since
            task.waiting_since = None
            self._go_on(task, now)

    def _write(self, task: Task, kind: EventKind, **fields: Any) -> None:
        task.log.append(new_event(kind, trial_id=task.trial_id, slurm_job_id=task.job_id,
                                  restart_count=0, hostname="sim", pid=1, time=self.clock.wall(),
                                  **fields))

    def _end(self, task: Task) -> None:
        now = self.clock.now()
        if task.waiting_since is not None:
            task.waited += now - task.waiting_since
        self.running.pop(task.job_id, None)
        self.in_array[task.throttle_key] -= 1
        task.log.close()
        self.stats.busy_slot_s += now - task.started - task.waited
        self.stats.waiting_slot_s += task.waited
        self.stats.ended += 1
        self.stats.last_end = now


def _result_log(exp: ExperimentDir, trial_id: str) -> Any:
    """The trial's log as a worker opens it (an hpctune before the change feed: a plain log)."""
    if hasattr(exp, "result_log"):
        return exp.result_log(trial_id)
    from hpctune.storage.result_log import ResultLog

    return ResultLog(exp.result_log_path(trial_id))


def host_main(conn: Connection, root: str, clock: VirtualClock, slots: int,
              duration_s: float, report_every_s: float) -> None:
    """The child process: answer commands, run the workers, until told to stop."""
    cluster = Cluster(ExperimentDir(root), clock, slots, duration_s, report_every_s)
    while True:
        while conn.poll(0.0005):
            args = conn.recv()
            if args == ["__stop__"]:
                conn.send(cluster.stats)
                return
            conn.send(cluster.command(args))
        cluster.advance()


class SimHost:
    """Starts the simulated cluster in a child process; ``commands`` is the driver's side."""

    def __init__(self, root: Path, speed: float, slots: int, duration_s: float, report_every_s: float,
                 real_epoch: bool = False):
        self.clock = VirtualClock(speed, time.monotonic())
        if real_epoch:  # events carry real times (a driver that reads time.time() itself)
            self.clock.epoch = time.time()
        driver_end, host_end = multiprocessing.Pipe()
        self.process = multiprocessing.get_context("fork").Process(
            target=host_main, args=(host_end, str(root), self.clock, slots, duration_s, report_every_s),
            daemon=True)
        self.process.start()
        self.commands = SimCommands(driver_end)
        self._conn = driver_end

    def stop(self) -> Stats:
        self._conn.send(["__stop__"])
        stats = self._conn.recv()
        self.process.join(5)
        return stats
