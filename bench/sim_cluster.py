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
* ``squeue`` lists the queued and running tasks in the driver's format; ``scancel`` ends them;
* a pool array (``PoolBackend``'s script runs ``python -m hpctune.pool``) queues long-lived pool
  tasks. Each running one is the real pool task (``hpctune.pool.task.PoolTask``: its ``step()``,
  claims with ``PoolQueue.claim_next``, ``finish``, its idle time-out) with one difference: a
  run it starts is played here, as an array task's trial is, instead of in a child process
  (``SimPoolTask``). A pool task steps when one of its runs ended (the real one wakes on
  SIGCHLD) and, while it has a free slot, whenever its shape's queue directory changed (the
  real one looks every 50 ms) and at least once a virtual second (its idle time-out). A
  driver's cancel of a running run is seen at the run's next event or verdict check.

Time is virtual and shared: ``VirtualClock`` runs ``speed`` times faster than the real one in
both processes, the driver's sleeps are shortened by the same factor, and events carry virtual
times, so the driver sees a cluster running at full speed while only ``1/speed`` of the time
passes. Figures per second are per *virtual* second (what a real run of that length costs).
An event happens at the virtual time it is due, however late this serial simulator gets to it
(its workers' clocks do not wait for it): an array task starts when its slot freed, a pool
task's next run when its last one ended plus the real time of the pool task's own step x
``speed``; what the driver does late (verdicts, top-ups) still shows.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import re
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from hpctune.backends.sbatch_script import POOL_MODULE
from hpctune.backends.slurm_commands import SlurmCommands
from hpctune.core.decision_points import META_KEY as POINTS_KEY
from hpctune.core.decision_points import DecisionPoints
from hpctune.core.ids import run_seq
from hpctune.storage.array_manifest import read_array_manifest
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.worker.verdict import read_request

try:  # an hpctune from before the pool (the "before" figures of array runs)
    from hpctune.pool.child import Child
    from hpctune.pool.slots import plan_for
    from hpctune.pool.task import PoolTask
    from hpctune.storage.pool_manifest import PoolManifest, read_manifest
    from hpctune.storage.pool_queue import PoolQueue
    from hpctune.worker.run import POOL_JOB_ENV
except ImportError:  # pragma: no cover
    PoolTask = object  # type: ignore[assignment,misc]

#: what the virtual wall clock reads at virtual time 0
EPOCH = 1_700_000_000.0
#: the longest a pool task with a free slot goes without a step (virtual s): its idle time-out
POOL_IDLE_STEP_S = 1.0
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

    def resume(self, real_speed: bool = False) -> None:
        """Let the clock run again; ``real_speed``: the paused stretch counts as its real length
        (the work done meanwhile takes what it would on a real cluster), not ``speed`` times it."""
        paused = time.monotonic() - self.shared[1].value
        self.shared[0].value += paused - (paused / self.speed if real_speed else 0.0)
        self.shared[1].value = 0.0

    @property
    def paused(self) -> bool:
        return bool(self.shared[1].value)

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
    queued_at: float = 0.0  # when sbatch queued it
    waited: float = 0.0
    log: Any = None
    points: DecisionPoints | None = None
    #: a trial run of a pool task: the pool task and the run's fake pid (None: an array task)
    pool: SimPoolTask | None = None
    pid: int = 0
    #: a pool task waiting for a slot: its array's manifest record (None: an array task)
    manifest: PoolManifest | None = None


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
    pool_tasks: int = 0  # pool tasks started
    pool_claims: int = 0  # runs claimed by pool tasks
    pool_step_s: float = 0.0  # real seconds in pool task steps (claims, finishes): the simulator's cost


class SimPoolTask(PoolTask):
    """A pool task of the simulated cluster: the real ``PoolTask`` (its loop's ``step``, its
    claims, ``finish``, idle time-out, cancels) whose runs the ``Cluster`` plays instead of child
    processes: ``_launch``, ``_exit_code`` and ``_signal`` are the only methods replaced."""

    def __init__(self, cluster: Cluster, task_id: str, manifest: PoolManifest):
        plan = plan_for(cluster.queue.read_shape(manifest.shape), manifest.slots, visible="")
        super().__init__(cluster.exp.root, task_id, manifest.shape, manifest.idle_s, manifest.start_method,
                         plan, claim_until=None, clock=cluster.clock.now)
        self.cluster = cluster
        self.exits: dict[int, int] = {}  # fake pid -> exit code of a run whose process "ended"
        self.woke_at: float | None = None  # when the earliest of the runs it is to reap ended
        self.step_t0 = 0.0  # perf_counter() at the start of its step in progress

    def _launch(self, trial_id: str, env: dict[str, str], logs: tuple[Path, Path]) -> tuple[int, None]:
        return self.cluster.start_run(self, env[POOL_JOB_ENV], trial_id), None

    def _exit_code(self, running: Child) -> int | None:
        return self.exits.pop(running.pid, None)

    def _signal(self, running: Child, sig: int, group: bool = False) -> None:
        self.cluster.signal_run(running.pid)

    @property
    def has_room(self) -> bool:
        return self.plan.free(self.children.values())


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
        self.queue = PoolQueue(exp.root) if PoolTask is not object else None
        self.pool_running: dict[str, SimPoolTask] = {}  # pool task id -> its task
        self.runs: dict[int, Task] = {}  # fake pid -> a pool task's run
        self.next_pid = 100
        self.woken: set[str] = set()  # pool tasks to step now (one of their runs ended)
        self.used = 0  # slots held by running array tasks and pool tasks
        self.free_at = [0.0] * slots  # (a heap) when each free slot freed
        self.roomy: set[str] = set()  # pool tasks with a free slot after their last step
        self.waiting: set[str] = set()  # runs waiting for a verdict
        self.queue_mtimes: dict[str, int] = {}  # shape -> its queue directory's mtime at the last look
        self.idle_step_at = 0.0

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
        job = str(self.next_job)
        self.next_job += 1
        self.throttles[job] = int(array.group(3)) if array.group(3) else None
        self.in_array[job] = 0
        first, last = int(array.group(1)), int(array.group(2))
        if f"-m {POOL_MODULE} " in text:  # a pool array: its tasks' lines are all the same record
            record = read_manifest(Path(manifest.group(1)), first)
            self.pending += [Task(f"{job}_{i}", "", job, manifest=record) for i in range(first, last + 1)]
            return job
        trials = read_array_manifest(Path(manifest.group(1)))
        now = self.clock.now()
        self.pending += [Task(f"{job}_{i}", trials[i], job, queued_at=now) for i in range(first, last + 1)]
        return job


    def _squeue(self) -> str:
        lines = [f"{t.job_id}|RUNNING|None|sim" for t in self.running.values() if t.pool is None]
        lines += [f"{task}|RUNNING|None|sim" for task in self.pool_running]
        lines += [f"{t.job_id}|PENDING|Resources|" for t in self.pending]
        return "\n".join(lines) + "\n"

    def _cancel(self, job: str) -> None:
        for pool in [p for p in self.pool_running.values() if job in (p.task_id, p.task_id.partition("_")[0])]:
            pool.signal_name = "SIGTERM"  # a pool task (or its whole array): passed on to its runs
            self.woken.add(pool.task_id)
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
        """Start what fits, then every event that is due, then the pool tasks that have
        something to do."""
        now = self.clock.now()
        self._start_tasks(now)
        while self.due and self.due[0][0] <= now:
            at, job = heapq.heappop(self.due)
            task = self.running.get(job)
            if task is not None:
                self._next_event(task, at)
        for task in [self.running[job] for job in sorted(self.waiting) if job in self.running]:
            self._check_verdict(task, now)
        if self.pool_running:
            self._step_pool_tasks(now)

    def _step_pool_tasks(self, now: float) -> None:
        """Step the pool tasks a run of which ended, and those with a free slot when their
        queue changed or at least every ``POOL_IDLE_STEP_S``; a task whose step says it is done
        leaves the cluster (its slot frees)."""
        changed = set()
        for shape in {p.shape for p in self.pool_running.values()}:
            try:
                mtime = os.stat(self.queue.root / "queue" / shape).st_mtime_ns
            except FileNotFoundError:
                continue
            if self.queue_mtimes.get(shape) != mtime:
                self.queue_mtimes[shape] = mtime
                changed.add(shape)
        idle_due = now >= self.idle_step_at
        if idle_due:
            self.idle_step_at = now + POOL_IDLE_STEP_S
        due = set(self.woken)
        if idle_due or changed:
            due |= {t for t in self.roomy if idle_due or self.pool_running[t].shape in changed}
        self.woken.clear()
        start = time.perf_counter()
        for task_id in sorted(due):
            task = self.pool_running[task_id]
            task.step_t0 = time.perf_counter()
            stepped = task.step()
            task.woke_at = None
            if stepped:
                del self.pool_running[task_id]
                self.roomy.discard(task_id)
                self.used -= task.plan.slots
                for _ in range(task.plan.slots):
                    heapq.heappush(self.free_at, now)
                self.in_array[task_id.partition("_")[0]] -= 1
                continue
            if task.signal_name is not None:
                self.woken.add(task_id)  # ending its runs: it looks again at once
            (self.roomy.add if task.has_room else self.roomy.discard)(task_id)
        self.stats.pool_step_s += time.perf_counter() - start

    def start_run(self, pool: SimPoolTask, job_id: str, trial_id: str) -> int:
        """A pool task starts a run (its ``_launch``): played as an array task's trial is. A
        pool task that took it after a run of its own ended starts it when that run ended plus
        what its step took so far (reaping, ``finish``, the claim: real seconds x speed), not
        when the simulator got round to it (a serial simulator of parallel pool tasks)."""
        now = self.clock.now()
        started = now
        if pool.woke_at is not None:
            started = min(now, pool.woke_at + (time.perf_counter() - pool.step_t0) * self.clock.speed)
        self.next_pid += 1
        self.stats.pool_claims += 1
        task = Task(job_id, trial_id, pool.task_id, state="RUNNING", started=started, pool=pool,
                    pid=self.next_pid)
        self.runs[task.pid] = task
        self._play(task, started)
        return task.pid

    def signal_run(self, pid: int) -> None:
        """A signal from its pool task (a cancel, a forwarded SIGTERM): the run ends stopped."""
        task = self.runs.get(pid)
        if task is not None and task.job_id in self.running:
            self._cancel(task.job_id)

    def _start_tasks(self, now: float) -> None:
        if self.used >= self.slots or not self.pending:
            return  # nothing can start (the common case: not worth a pass over thousands waiting)
        kept = []
        for task in self.pending:
            limit = self.throttles[task.throttle_key]
            size = task.manifest.slots if task.manifest is not None else 1
            if self.used + size > self.slots or (limit is not None and self.in_array[task.throttle_key] >= limit):
                kept.append(task)
                continue
            self.used += size
            self.in_array[task.throttle_key] += 1
            freed = max(heapq.heappop(self.free_at) for _ in range(size))  # when its slot freed
            if task.manifest is not None:  # a pool task: the real loop's start
                pool = SimPoolTask(self, task.job_id, task.manifest)
                self.pool_running[task.job_id] = pool
                self.stats.pool_tasks += 1
                pool.resume()
                self.woken.add(task.job_id)
                continue
            # it starts when its slot freed (or it was submitted), not when the simulator looked
            task.state, task.started = "RUNNING", min(now, max(freed, task.queued_at))
            self._play(task, task.started)
        self.pending = kept

    def _play(self, task: Task, now: float) -> None:
        """A trial's worker starts: its ``start`` event, its first result due."""
        self.running[task.job_id] = task
        meta = self.exp.read_trial_meta(task.trial_id)  # as the worker reads it
        task.points = DecisionPoints.from_json(meta.get(POINTS_KEY))
        task.log = _result_log(self.exp, task.trial_id)
        self._write(task, EventKind.START, restored_iteration=0)
        self.stats.started += 1
        if self.stats.first_start is None or now < self.stats.first_start:
            self.stats.first_start = now
        heapq.heappush(self.due, (now + self.report_every_s, task.job_id))

    def _next_event(self, task: Task, now: float) -> None:
        """The run's next result (or its end), at ``now``: the virtual time it was due, however
        late the simulator gets to it (its worker's clock does not wait for the simulator)."""
        if task.pool is not None and self.queue.cancel_requested(run_seq(task.job_id)):
            self.woken.add(task.pool.task_id)  # its pool task passes the driver's cancel on (SIGTERM)
            heapq.heappush(self.due, (now + self.report_every_s, task.job_id))
            return
        task.iteration += 1
        loss = (zlib.crc32(task.trial_id.encode()) % 1000) / 1000 / task.iteration
        result = {"loss": loss, "training_iteration": task.iteration,
                  "iterations_since_restore": task.iteration, "trial_id": task.trial_id,
                  "time_total_s": now - task.started, "done": False}
        waits = task.points.waits_at(task.iteration)
        self._write(task, EventKind.RESULT, result=result, **({"waits": True} if waits else {}))
        if waits:
            task.waiting_since = now
            self.waiting.add(task.job_id)
            return
        self._go_on(task, now)

    def _go_on(self, task: Task, now: float) -> None:
        if task.iteration * self.report_every_s >= self.duration_s:
            self._write(task, EventKind.COMPLETE)
            self._end(task, now)
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
            self.waiting.discard(task.job_id)
            self._go_on(task, now)

    def _write(self, task: Task, kind: EventKind, **fields: Any) -> None:
        task.log.append(new_event(kind, trial_id=task.trial_id, slurm_job_id=task.job_id,
                                  restart_count=0, hostname="sim", pid=1, time=self.clock.wall(),
                                  **fields))

    def _end(self, task: Task, at: float | None = None) -> None:
        """The run ends, at ``at`` (when its last event was due) or now (a stop, a cancel)."""
        now = self.clock.now() if at is None else at
        if task.waiting_since is not None:
            task.waited += now - task.waiting_since
            self.waiting.discard(task.job_id)
        self.running.pop(task.job_id, None)
        if task.pool is None:
            self.in_array[task.throttle_key] -= 1
            self.used -= 1
            heapq.heappush(self.free_at, now)
        else:  # its process "exits": the pool task reaps it at its next step (SIGCHLD wakes it)
            task.pool.exits[task.pid] = 0
            task.pool.woke_at = now if task.pool.woke_at is None else min(now, task.pool.woke_at)
            self.runs.pop(task.pid, None)
            self.woken.add(task.pool.task_id)
        task.log.close()
        self.stats.busy_slot_s += now - task.started - task.waited
        self.stats.waiting_slot_s += task.waited
        self.stats.ended += 1
        self.stats.last_end = max(self.stats.last_end, now)


def _result_log(exp: ExperimentDir, trial_id: str) -> Any:
    """The trial's log as a worker opens it (an hpctune before the change feed: a plain log)."""
    if hasattr(exp, "result_log"):
        return exp.result_log(trial_id)
    from hpctune.storage.result_log import ResultLog

    return ResultLog(exp.result_log_path(trial_id))


def host_main(conn: Connection, root: str, clock: VirtualClock, slots: int,
              duration_s: float, report_every_s: float) -> None:
    """The child process: answer commands, run the workers, until told to stop."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - the pool tasks' own log lines (one per run)
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
