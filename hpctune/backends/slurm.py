"""Slurm backend: trials become tasks of job arrays, rendered by submitit, watched by squeue.

One ``sbatch`` per batch of trials with the same resources (``--array=0-N%K``), one
``squeue`` per poll for every job of the experiment, one ``scancel`` per batch of stops.
Every command goes through ``SlurmCommands``.

Polls are few in a steady state: results, starts and ends reach the driver through the
result logs and the change feed, so ``squeue`` only has to catch what no log says (a job
that left the queue without a word, a start Slurm delays). After a launch, a cancel, or a
poll that saw something change, the next poll comes after ``QUICK_POLL_S``; each poll that
saw nothing new doubles the wait, up to ``SlurmConfig.poll_interval_s`` (30 s by default:
two calls a minute, what cluster administrators ask for).
"""

from __future__ import annotations

import getpass
import sys
import uuid
from pathlib import Path
from typing import Any

from hpctune.backends.base import JobReport
from hpctune.backends.sbatch_script import (
    COMMENT_PREFIX,
    WORKER_MODULE,
    ArrayScript,
    render_array_script,
)
from hpctune.backends.slurm_commands import (
    SlurmCommands,
    sacct_args,
    sbatch_args,
    scancel_args,
    show_args,
    squeue_args,
    submitted_job_id,
)
from hpctune.backends.slurm_limits import ClusterLimits, RateLimitedCommands
from hpctune.config import SlurmConfig, check_sbatch_text
from hpctune.core.ids import array_task_id, validate_job_id
from hpctune.core.resources import check_gpu_share, task_count
from hpctune.errors import SlurmCommandError
from hpctune.storage.array_manifest import read_array_manifest, write_array_manifest
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.secure import make_private_dir

#: the wait before the next squeue after something changed (never above the steady interval)
QUICK_POLL_S = 2.0


class SlurmBackend:
    """Runs trials as Slurm array tasks."""

    name = "slurm"
    jobs_survive_driver = True
    #: the module each array task runs (``python -m``): one trial; PoolBackend's run many
    entry_module = WORKER_MODULE

    def __init__(self, experiment_root: Path, config: SlurmConfig | None = None,
                 commands: SlurmCommands | None = None):
        self.root = Path(experiment_root)
        self.config = config or SlurmConfig()
        self.config.validate()  # again: fields may have been set after construction
        self.commands = commands or RateLimitedCommands()  # its own counts, the shared rate
        self.steady_poll_s = self.config.poll_interval_s
        self.poll_interval_s = min(QUICK_POLL_S, self.steady_poll_s)
        self._last_states: dict[str, str] | None = None
        self.job_name = self.config.job_name or f"hpctune-{self.root.name}"[:60]
        check_sbatch_text("The experiment directory", str(self.root))  # in --output= and the command
        check_sbatch_text("SlurmConfig(job_name=...)", self.job_name)
        self.exp = ExperimentDir(self.root)
        self.jobs_dir = self.exp.jobs_dir
        self._user = getpass.getuser()
        self._requeue: bool | None = self.config.requeue
        self._limits: ClusterLimits | None = None
        self._partition: list[str] | None = None  # `scontrol show partition -o`, read once

    @property
    def limits(self) -> ClusterLimits:
        """MaxArraySize and the user's submit limits, read from Slurm once (lazily)."""
        if self._limits is None:
            self._limits = ClusterLimits.read(self.commands, self._user)
        return self._limits

    # -- submission -------------------------------------------------------------
    def launch(self, trial_ids: list[str], resources: dict[str, Any], throttle: int | None) -> list[str]:
        """Submit one array task per trial (split to fit MaxArraySize); returns '<job>_<task>' ids."""
        check_gpu_share(resources, pooled=False)  # a share of a GPU needs the worker pool
        job_ids: list[str] = []
        size = self.limits.array_chunk(self.config.max_array_size, len(trial_ids))
        for start in range(0, len(trial_ids), size):
            chunk = trial_ids[start:start + size]
            job_ids += self._submit_array(chunk, resources, throttle)
        self.changed()
        return job_ids

    def _submit_array(self, trial_ids: list[str], resources: dict[str, Any],
                      throttle: int | None) -> list[str]:
        make_private_dir(self.jobs_dir)  # 0700: also guards the job logs Slurm creates in it
        uid = uuid.uuid4().hex[:10]
        manifest, script_path, job_id_path = self.exp.array_paths(uid)
        write_array_manifest(manifest, trial_ids)
        script = self.render_script(resources, len(trial_ids), throttle, manifest)
        write_bytes_atomic(script_path, script.encode(), fsync=False)
        array_id = submitted_job_id(self.commands.run(sbatch_args(script_path)).stdout)
        write_bytes_atomic(job_id_path, (array_id + "\n").encode(), fsync=False)
        return [array_task_id(array_id, i) for i in range(len(trial_ids))]

    def recorded_launches(self) -> dict[str, str]:
        """{trial_id: job id} of this experiment's newest launch of each trial, from the array
        manifests written before each ``sbatch``: a driver killed between ``sbatch`` and its
        snapshot re-attaches to those jobs instead of submitting them again. An array whose
        job id file is missing is found in the queue by its ``--comment``."""
        found: dict[str, str] = {}
        by_comment: dict[str, str] | None = None
        for uid in self.exp.array_uids():
            manifest, _, job_id_path = self.exp.array_paths(uid)
            array_id = job_id_path.read_text().strip() if job_id_path.exists() else None
            if array_id is None:
                by_comment = self._arrays_by_comment() if by_comment is None else by_comment
                array_id = by_comment.get(uid)
            if not array_id:
                continue  # never submitted, or gone: the trials' logs tell the rest
            validate_job_id(array_id)
            for index, trial_id in enumerate(read_array_manifest(manifest)):
                found[trial_id] = array_task_id(array_id, index)
        return found

    def _arrays_by_comment(self) -> dict[str, str]:
        """{uid: array job id} of this experiment's jobs still in the queue (one squeue)."""
        proc = self.commands.run(squeue_args("%A|%k", user=self._user, name=self.job_name,
                                             array_tasks=False), check=False)
        found = {}
        for line in proc.stdout.splitlines() if proc.returncode == 0 else []:
            array_id, _, comment = line.strip().partition("|")
            if comment.startswith(COMMENT_PREFIX):
                found[comment.removeprefix(COMMENT_PREFIX)] = array_id
        return found

    def submit_room(self, queued: int) -> int | None:
        """How many more tasks the user's MaxSubmitJobs allows (None: no limit known)."""
        return self.limits.submit_room(queued)

    def requeue_enabled(self) -> bool:
        """``--requeue`` when asked for, or when the partition preempts by requeueing (asked of
        Slurm once, with ``scontrol show partition``)."""
        if self._requeue is None:
            self._requeue = any("PreemptMode=REQUEUE" in line for line in self._partition_lines())
        return self._requeue

    def billing_weights(self) -> str | None:
        """The partition's ``TRESBillingWeights`` (``CPU=1.0,GRES/gpu=2.0``) as Slurm spells
        them, or None when it has none (Slurm then bills one unit per CPU) or no Slurm answers."""
        for line in self._partition_lines():
            for item in line.split():
                key, _, value = item.partition("=")
                if key == "TRESBillingWeights" and value:
                    return value
        return None

    def _partition_lines(self) -> list[str]:
        """``scontrol show partition -o`` of the trials' partition (the default one when none
        is set), asked once: requeue and billing weights both read it."""
        if self._partition is None:
            args = show_args("partition", self.config.partition, one_line=True)
            try:
                lines = self.commands.run(args, check=False).stdout.splitlines()
            except SlurmCommandError:  # no Slurm here (a --dry-run on a laptop)
                lines = []
            if not self.config.partition:
                lines = [line for line in lines if "Default=YES" in line]
            self._partition = lines
        return self._partition

    def render_script(self, resources: dict[str, Any], count: int, throttle: int | None,
                      manifest: Path | None = None) -> str:
        """The exact sbatch script submitted for ``count`` trials (used for previews too)."""
        return render_array_script(self.array_script(resources, count, throttle, manifest))

    def array_script(self, resources: dict[str, Any], count: int, throttle: int | None,
                     manifest: Path | None = None) -> ArrayScript:
        """What the script of an array of ``count`` tasks depends on, looked up now (the one
        Slurm query: ``requeue_enabled``) so that rendering it asks nothing."""
        return ArrayScript(
            config=self.config, experiment_root=self.root, jobs_dir=self.jobs_dir,
            job_name=self.job_name, manifest=manifest or self.exp.array_paths("<uid>")[0],
            resources=resources, count=count, throttle=throttle or count,
            requeue=self.requeue_enabled(), python=self.config.python or sys.executable,
            module=self.entry_module, use_srun=self._use_srun(resources))

    def _use_srun(self, resources: dict[str, Any]) -> bool:
        """A trial of several tasks always starts them with srun (one worker per rank)."""
        return self.config.use_srun or task_count(resources) > 1

    # -- watching -----------------------------------------------------------------
    def poll(self) -> dict[str, JobReport]:
        """One squeue call for every live task of this experiment's job name; the next poll
        comes sooner if it saw a change, later if not (see the module docstring)."""
        reports = self.commands.job_states(user=self._user, name=self.job_name)
        states = {job: report.state for job, report in reports.items()}
        if states == self._last_states:
            self.poll_interval_s = min(2 * self.poll_interval_s, self.steady_poll_s)
        else:
            self.changed()
        self._last_states = states
        return reports

    def changed(self) -> None:
        """Something was launched, cancelled or seen to change: poll again soon."""
        self.poll_interval_s = min(QUICK_POLL_S, self.steady_poll_s)

    def reconcile(self) -> None:
        """Nothing to do after a poll: Slurm itself runs, requeues and ends the arrays."""

    def poll_ready(self) -> bool:
        """May a poll go now? Not while it would take a token kept for sbatch and scancel."""
        limiter = getattr(self.commands, "limiter", None)
        return limiter is None or limiter.routine_allowed()

    def queued(self) -> set[str]:
        """This experiment's tasks still PENDING in the queue (one squeue)."""
        return {job for job, state in self.poll().items() if state.state == "PENDING"}

    def final_states(self, job_ids: list[str]) -> dict[str, str]:
        """End states from sacct, when accounting is enabled (one call for all)."""
        if not job_ids:
            return {}
        proc = self.commands.run(sacct_args(job_ids, "JobID,State,ExitCode"), check=False)
        if proc.returncode != 0:
            return {}
        found = {}
        for line in proc.stdout.splitlines():
            parts = line.split("|")
            if len(parts) == 3:
                found[parts[0]] = f"{parts[1]} (exit {parts[2]})"
        return found

    def cancel(self, job_ids: list[str]) -> None:
        """One scancel for all; every id is checked first (ids come back from files)."""
        if job_ids:
            self.commands.run(scancel_args(job_ids), check=False)
        self.changed()

    def log_paths(self, job_id: str) -> tuple[str, str]:
        out, err = self.exp.job_log_paths(job_id)
        return str(out), str(err)

    def command_counts(self) -> dict[str, int]:
        return dict(self.commands.counts)

    def close(self) -> None:
        pass
