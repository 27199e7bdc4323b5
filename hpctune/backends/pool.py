"""Pool backend (``TuneConfig(reuse_actors=True)`` on Slurm): several trials per array task.

A launch does not submit a job per trial: it enqueues one *run* per trial on the shared
filesystem (``storage/pool_queue``) and makes sure enough *pool tasks* run for it: one
Slurm array per resource shape, with as many tasks as slots (``max_concurrent_trials``,
or the runs waiting when there is no throttle). Each pool task (``hpctune/pool``) runs
trial after trial, each in a clean process, and exits when it has been idle for
``SlurmConfig(pool_idle_s)``. A run's job id is ``pool-<N>``; the controller sees it
move PENDING (queued) -> the state of the pool task that claimed it -> gone (ended), and
takes the same decisions as with one job per trial.

Polling stays one ``squeue`` for the experiment (the pool arrays share its job name)
plus one listing of the queue's directories, and acts on nothing. ``reconcile``, which the
controller calls after each poll, does what that listing calls for: a claim whose pool task
left the queue (killed, node failure) is handed back (the poll reported the run gone, and
the driver retries the trial per ``max_failures``, as for a job that died), a pool task that
ignores a cancel is scancelled, and pool tasks are submitted for work that has too few.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

from hpctune.backends.base import JobReport
from hpctune.backends.pool_runs import orphaned_claims, run_states
from hpctune.backends.pool_settings import check_single_node
from hpctune.backends.sbatch_script import POOL_MODULE
from hpctune.backends.slurm import SlurmBackend
from hpctune.backends.slurm_commands import SlurmCommands, sbatch_args, submitted_job_id
from hpctune.config import SlurmConfig
from hpctune.core.ids import array_of, is_pool_job, run_job_id, run_seq, validate_job_id
from hpctune.pool.slots import default_slots, task_resources
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.pool_manifest import PoolManifest, read_manifest, write_manifest
from hpctune.storage.pool_queue import (
    PoolQueue,
    QueueView,
    check_run_trial,
    shape_key,
)
from hpctune.storage.secure import make_private_dir

#: how long ``close`` waits for pool tasks to drop the claims of runs that just ended (s)
CLOSE_WAIT_S = 2.0
#: beyond stop_grace_s, how long a pool task may take to end a cancelled run (s)
ESCALATE_MARGIN_S = 30.0
#: pool tasks of this driver that left the queue beyond the runs they took: they end without
#: starting any (a failing ``SlurmConfig(setup)`` line, Python or hpctune missing on the nodes);
#: the queued runs then fail, as their jobs would, instead of pool tasks being submitted for ever
BARREN_TASKS = 5
#: squeue states of a pool task that will not take more work
_LEAVING = {"COMPLETING", "CANCELLING", "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT"}


class PoolBackend(SlurmBackend):
    """Runs trials through pool tasks: Slurm array tasks that each run many trials."""

    entry_module = POOL_MODULE
    #: the launcher queues the next trials once this fraction of a batch (``EAGER_BATCH``) has
    #: ended, throttled or not (arrays: half, and a throttled array drains first): queueing
    #: runs costs no Slurm call, and a pool task runs out of work only when the queue is empty
    #: (half a batch left 3,000 runs, 90 s, at 2,000 running: the driver, which learns of ends
    #: from the logs, topped up too late and pool tasks idled out; ``bench/driver_scale.py``)
    top_up_fraction = 0.1

    def __init__(self, experiment_root: Path, config: SlurmConfig | None = None,
                 commands: SlurmCommands | None = None):
        super().__init__(experiment_root, config, commands)
        self.queue = PoolQueue(self.root)  # its directories are made at the first launch
        self._next_seq = self.queue.next_seq()
        self._shapes: dict[str, dict[str, Any]] = {}
        self._slots: dict[str, int | None] = {}  # shape -> most pool tasks wanted (None: no cap)
        self._arrays: dict[str, str] = self._known_arrays()  # pool array id -> shape
        self._live: dict[str, int] = {}  # shape -> pool tasks in the queue at the last poll (+ since)
        self._lost: dict[int, str] = {}  # run -> the pool task that died with it
        self._cancelled: dict[int, float] = {}  # claimed run -> when its cancel was asked for
        #: a pool task that has not ended a cancelled run after this long is scancelled whole
        self.escalate_after_s = self.config.stop_grace_s + ESCALATE_MARGIN_S
        self.task_states: dict[str, JobReport] = {}  # pool task -> its state at the last poll
        self._view: QueueView | None = None  # the queue as the last poll listed it
        self._taken_out = 0  # queued runs the driver cancelled (left the queue unclaimed)
        self._own: dict[str, int] = {"tasks": 0, "live": 0}  # pool tasks this driver submitted
        self._own_arrays: set[str] = set()
        self._barren_base: int | None = None  # (tasks gone - runs taken) when last counted from
        self._failed_unstarted: dict[int, str] = {}  # run -> why it failed before any start

    # -- launching -----------------------------------------------------------------------------
    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        """Queue one run per trial; submit pool tasks if fewer run than the work needs."""
        check_single_node(resources)  # a resources function may ask for nodes: said before writing
        for trial_id in trial_ids:
            check_run_trial(trial_id)  # a run's names carry its trial: said before writing
        shape = shape_key(resources)
        self.queue.ensure()
        self.queue.write_shape(shape, resources)
        self.queue.reserve(self._next_seq + len(trial_ids))  # before the markers: never a number twice
        job_ids = []
        for trial_id in trial_ids:
            job_ids.append(self.queue.enqueue(self._next_seq, trial_id, shape))
            self._next_seq += 1
        if self._slots.get(shape, 0) != (throttle or None):
            self._slots[shape] = throttle or None
            self.queue.write_cap(shape, throttle or None)
        self._ensure_tasks(self.queue.view())
        self.changed()
        return job_ids

    def _ensure_tasks(self, view: QueueView) -> None:
        """Submit pool tasks for each shape whose waiting and running work outnumbers them."""
        for shape in {*view.queued.values()}:
            work = sum(1 for s in view.queued.values() if s == shape)
            work += sum(1 for task in view.claimed.values() if self._arrays.get(array_of(task)) == shape)
            if shape not in self._slots:  # a restored driver: the cap its predecessor launched with
                self._slots[shape] = self.queue.read_cap(shape)
            cap = self._slots[shape]
            wanted = work if cap is None else min(cap, work)
            missing = wanted - self._live.get(shape, 0)
            if missing > 0 and not self._fail_if_barren(view):
                self._submit_pool(shape, missing)

    def _fail_if_barren(self, view: QueueView) -> bool:
        """True (and every queued run dropped, to fail as a job that died) when this driver's
        pool tasks that left the queue outnumber the runs taken meanwhile by ``BARREN_TASKS``:
        they end without starting any. A task that ran trials took at least one run."""
        taken = self._next_seq - len(view.queued) - self._taken_out  # claimed, at any time
        excess = self._own["tasks"] - self._own["live"] - taken
        if self._barren_base is None:
            self._barren_base = excess
        if excess - self._barren_base < BARREN_TASKS:
            return False
        self._barren_base = excess
        logs = self.jobs_dir / f"{max(self._own_arrays, key=int)}_*_log.err"
        why = (f"its pool tasks ended {BARREN_TASKS} times without starting any trial "
               f"(a failing SlurmConfig(setup) line, or Python/hpctune missing on the compute "
               f"nodes?): see {logs}; reuse_actors=False runs one job per trial")
        taken = self.queue.cancel_runs(list(view.queued))
        self._taken_out += len(taken)
        self._failed_unstarted.update(dict.fromkeys(taken, why))
        return True

    def _submit_pool(self, shape: str, count: int) -> None:
        """Submit pool tasks for ``count`` more slots of ``shape``: arrays no larger than the
        cluster allows (``SlurmConfig.max_array_size``, MaxArraySize, MaxSubmitJobs)."""
        slots = default_slots(self._shape(shape), self.config.pool_slots_per_task)
        tasks = math.ceil(count / slots)  # each pool task runs `slots` trials at once
        size = self.limits.array_chunk(self.config.max_array_size, tasks)
        for start in range(0, tasks, size):
            self._submit_pool_array(shape, slots, min(size, tasks - start))

    def _submit_pool_array(self, shape: str, slots: int, count: int) -> None:
        """One array of ``count`` pool tasks of ``slots`` slots each."""
        resources = self._shape(shape)
        make_private_dir(self.jobs_dir)  # the pool tasks' own Slurm logs go there
        uid = uuid.uuid4().hex[:10]
        manifest, script_path, job_id_path = self.queue.array_paths(uid)
        cfg = self.config
        write_manifest(manifest, PoolManifest(shape, cfg.pool_idle_s, cfg.pool_start_method, cfg.time_min,
                                              cfg.signal_lead_s, slots), count)
        script = self.render_script(task_resources(resources, slots), count, count, manifest)
        write_bytes_atomic(script_path, script.encode(), fsync=False)
        array_id = submitted_job_id(self.commands.run(sbatch_args(script_path)).stdout)
        write_bytes_atomic(job_id_path, (array_id + "\n").encode(), fsync=False)
        self._arrays[array_id] = shape
        self._live[shape] = self._live.get(shape, 0) + count * slots
        self._own_arrays.add(array_id)
        self._own["tasks"] += count
        self._own["live"] += count

    def preview_script(self, resources: dict[str, Any], trials: int, throttle: int | None,
                       manifest: Path | None = None) -> str:
        """The pool array ``fit()`` submits first for ``trials`` trials (nothing is written);
        ``manifest``: its task lines' file (default: a ``<uid>`` placeholder)."""
        slots = default_slots(resources, self.config.pool_slots_per_task)
        tasks = math.ceil(min(trials, throttle or trials) / slots)
        return self.render_script(task_resources(resources, slots), tasks, tasks,
                                  manifest or self.queue.array_paths("<uid>")[0])

    def _shape(self, shape: str) -> dict[str, Any]:
        """The resources of a shape (read once)."""
        if shape not in self._shapes:
            self._shapes[shape] = self.queue.read_shape(shape)
        return self._shapes[shape]

    def _use_srun(self, resources: dict[str, Any]) -> bool:
        """Never: a pool runs single-task trials, and the warning signal goes to the batch
        shell, which is the pool task (B:)."""
        return False

    def _known_arrays(self) -> dict[str, str]:
        """{pool array id: shape} of every pool array this experiment submitted (a restored
        driver counts the pool tasks an earlier driver left running)."""
        found = {}
        for uid in self.queue.array_uids():
            manifest, _, job_id_path = self.queue.array_paths(uid)
            if job_id_path.exists() and manifest.exists():
                found[validate_job_id(job_id_path.read_text().strip())] = read_manifest(manifest, 0).shape
        return found

    def recorded_launches(self) -> dict[str, str]:
        """{trial_id: job id} of the newest run of each trial that reached the queue and did not
        end with its end in the trial's log: the trials in the names of the queued, claimed and
        dropped runs and in the end records; for a run of an hpctune before, its ``runs/<N>.json``
        (one whose queue marker a dying driver never wrote is not a launch)."""
        view, ended, dropped = self.queue.view(), self.queue.ended_runs(), self.queue.dropped_runs()
        trials = {seq: record.trial_id for seq, record in self.queue.runs().items()
                  if seq in view.queued or seq in view.claimed or seq in ended or seq in dropped}
        trials.update(view.trials)
        trials.update((seq, end.trial_id) for seq, end in ended.items() if end.trial_id is not None)
        trials.update((seq, trial) for seq, trial in dropped.items() if trial is not None)
        return {trial: run_job_id(seq) for seq, trial in sorted(trials.items())}

    # -- watching ------------------------------------------------------------------------------
    def poll(self) -> dict[str, JobReport]:
        """One squeue (the pool tasks), one listing of the queue: the state of every run
        (``run_states``). It changes nothing outside this object: ``reconcile`` acts on it."""
        tasks = super().poll()  # first: a claim listed after it belongs to a task it shows
        view = self.queue.view()
        self.task_states, self._view = tasks, view
        self._live = self._live_slots(tasks)
        self._own["live"] = sum(1 for task in tasks if array_of(task) in self._own_arrays)
        return run_states(view, tasks)

    def reconcile(self) -> None:
        """Act on the last poll: hand back the claims of pool tasks that left the queue (that
        poll reported their runs gone), scancel pool tasks that ignore a cancel, submit pool
        tasks for work that has too few (a second call submits nothing more: they count as live)."""
        view = self._view
        if view is None:
            return  # nothing polled yet
        for seq, task in orphaned_claims(view, self.task_states).items():
            if self.queue.hand_back(seq, task, view.trials.get(seq)):
                self._lost[seq] = task  # final_states says which pool task it died with
        self._escalate_cancels(view)
        self._ensure_tasks(view)

    def _live_slots(self, tasks: dict[str, JobReport]) -> dict[str, int]:
        """shape -> trials its pool tasks in the queue can run at once (leaving tasks excluded)."""
        live: dict[str, int] = {}
        for task, state in tasks.items():
            shape = self._arrays.get(array_of(task))
            if shape and state.state not in _LEAVING:
                slots = default_slots(self._shape(shape), self.config.pool_slots_per_task)
                live[shape] = live.get(shape, 0) + slots
        return live

    def final_states(self, job_ids: list[str]) -> dict[str, str]:
        """How runs ended (exit code, or the pool task that died with them); Slurm jobs via sacct."""
        found = super().final_states([j for j in job_ids if not is_pool_job(j)])
        lost_tasks = {self._lost[s] for j in job_ids if (s := run_seq(j)) in self._lost}
        task_states = super().final_states(sorted(lost_tasks)) if lost_tasks else {}
        dropped: dict[int, str | None] | None = None  # listed once, if a run needs it
        for job_id in filter(is_pool_job, job_ids):
            seq = run_seq(job_id)
            ended = self.queue.ended(seq)
            if ended is not None:
                found[job_id] = f"exit code {ended.exit_code} in pool task {ended.task}"
            elif seq in self._lost:
                task = self._lost[seq]
                found[job_id] = (f"pool task {task} ended while running it "
                                 f"({task_states.get(task, 'no accounting record')})")
            elif seq in self._failed_unstarted:
                found[job_id] = self._failed_unstarted[seq]
            elif seq in (dropped := self.queue.dropped_runs() if dropped is None else dropped):
                found[job_id] = "cancelled before a pool task started it"
        return found

    def log_paths(self, job_id: str) -> tuple[str, str]:
        """(stdout, stderr) of a run (``jobs/pool-N.out``) or of a Slurm job."""
        out, err = self.exp.job_log_paths(job_id)
        return str(out), str(err)

    # -- stopping ------------------------------------------------------------------------------
    def cancel(self, job_ids: list[str]) -> None:
        """Cancel runs: a queued one leaves the queue, a running one gets SIGTERM from its pool
        task (which goes on with other trials). Other (Slurm) ids go to scancel."""
        seqs = [run_seq(job_id) for job_id in filter(is_pool_job, job_ids)]
        taken = self.queue.cancel_runs(seqs) if seqs else set()  # a listing per shape, not per run
        self._taken_out += len(taken)
        for seq in seqs:
            if seq not in taken:
                self._cancelled.setdefault(seq, time.monotonic())
        super().cancel([j for j in job_ids if not is_pool_job(j)])

    def _escalate_cancels(self, view: QueueView) -> None:
        """A run still claimed ``escalate_after_s`` after its cancel: its pool task does not
        answer (a hung filesystem, a stuck process), so the whole task is scancelled; its other
        runs are handed back once it has left the queue, as for any pool task that died."""
        now = time.monotonic()
        for seq, since in list(self._cancelled.items()):
            if seq not in view.claimed:
                del self._cancelled[seq]
            elif now - since > self.escalate_after_s:
                del self._cancelled[seq]
                super().cancel([view.claimed[seq]])

    def close(self) -> None:
        """Cancel the pool tasks that have nothing left to run (they would idle out anyway). With
        queued work (a driver interrupted with ``keep_jobs_on_interrupt``) every task stays; a
        task still closing a run it just finished gets a moment to drop its claim."""
        deadline = time.monotonic() + CLOSE_WAIT_S
        view = self.queue.view()
        while view.claimed and not view.queued and time.monotonic() < deadline:
            time.sleep(0.05)
            view = self.queue.view()
        if view.queued:
            return
        busy = set(view.claimed.values())
        tasks = [task for task, state in self.task_states.items() if task not in busy
                 and array_of(task) in self._arrays and state.state not in _LEAVING]
        if tasks:
            super().cancel(sorted(tasks))
