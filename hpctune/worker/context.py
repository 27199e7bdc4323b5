"""Who a running trial is: its ids, directory, resources, Slurm job and ranks (Ray's
``get_context()``), as the worker builds it from the experiment and Slurm's environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple


@dataclass(frozen=True)
class TrialStorage:
    """Where the trial's files are (``get_context().get_storage()``, Ray's StorageContext)."""

    storage_path: str
    experiment_dir_name: str
    trial_dir_name: str

    @property
    def experiment_fs_path(self) -> str:
        return os.path.join(self.storage_path, self.experiment_dir_name)

    @property
    def trial_fs_path(self) -> str:
        return os.path.join(self.experiment_fs_path, "trials", self.trial_dir_name)


@dataclass
class TrialContext:
    """Identity of the running trial (Ray's ``get_context()``), plus its Slurm coordinates.

    Ranks and sizes come from Slurm's task environment: the tasks ``srun`` started for the
    trial (one task, rank 0, in a batch shell or outside Slurm).
    """

    trial_id: str
    trial_name: str
    trial_dir: str
    experiment_name: str
    experiment_tag: str
    resources: dict[str, Any] = field(default_factory=dict)
    slurm_job_id: str | None = None
    slurm_array_job_id: str | None = None
    slurm_array_task_id: str | None = None
    restart_count: int = 0
    preempted: bool = False
    experiment_id: str = ""

    def get_trial_id(self) -> str:
        return self.trial_id

    def get_trial_name(self) -> str:
        return self.trial_name

    def get_trial_dir(self) -> str:
        return self.trial_dir

    def get_experiment_name(self) -> str:
        return self.experiment_name

    def get_trial_resources(self) -> dict[str, Any]:
        return dict(self.resources)

    def get_storage(self) -> TrialStorage:
        trial = Path(self.trial_dir)
        return TrialStorage(str(trial.parent.parent.parent), trial.parent.parent.name, trial.name)

    def get_world_size(self) -> int:
        """Tasks of the trial's job step (``SLURM_STEP_NUM_TASKS``; 1 outside ``srun``: the
        batch shell's ``SLURM_NTASKS`` counts tasks it has not started)."""
        return _env_int("SLURM_STEP_NUM_TASKS", 1)

    def get_world_rank(self) -> int:
        """This task's rank among all tasks (``SLURM_PROCID``)."""
        return _env_int("SLURM_PROCID", 0) if _in_step() else 0

    def get_local_rank(self) -> int:
        """This task's rank on its node (``SLURM_LOCALID``)."""
        return _env_int("SLURM_LOCALID", 0) if _in_step() else 0

    def get_node_rank(self) -> int:
        """The index of this task's node in the job (``SLURM_NODEID``)."""
        return _env_int("SLURM_NODEID", 0) if _in_step() else 0

    def get_local_world_size(self) -> int:
        """Tasks on this task's node (from ``SLURM_STEP_TASKS_PER_NODE``, e.g. ``2(x3),1``)."""
        if not _in_step():
            return 1
        counts = _expand_tasks_per_node(os.environ.get("SLURM_STEP_TASKS_PER_NODE", ""))
        node = self.get_node_rank()
        return counts[node] if node < len(counts) else 1

    def is_rank_zero(self) -> bool:
        """True in the task that writes the trial's events and checkpoints (world rank 0)."""
        return self.get_world_rank() == 0

    def should_checkpoint(self) -> bool:
        """True once Slurm announced preemption or the time limit: checkpoint now."""
        return self.preempted


class TaskRanks(NamedTuple):
    """This task's place in the trial (Slurm's step variables; one task of rank 0 outside srun)."""

    world_rank: int
    local_rank: int
    node_rank: int
    world_size: int
    local_world_size: int


def task_ranks() -> TaskRanks:
    """The ranks of this process, inside a trial or not (``hpctune.worker.distributed`` uses them)."""
    ctx = TrialContext("", "", "", "", "")
    return TaskRanks(ctx.get_world_rank(), ctx.get_local_rank(), ctx.get_node_rank(),
                     ctx.get_world_size(), ctx.get_local_world_size())


def _in_step() -> bool:
    """True inside a task that ``srun`` started (Slurm sets the step's variables there)."""
    return "SLURM_STEP_NUM_TASKS" in os.environ


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else default


def _expand_tasks_per_node(text: str) -> list[int]:
    """Slurm's ``2(x3),1`` -> [2, 2, 2, 1]; [] when unset or unreadable."""
    counts: list[int] = []
    for part in filter(None, text.split(",")):
        number, _, repeat = part.partition("(x")
        try:
            counts += [int(number)] * int(repeat.rstrip(")") or 1)
        except ValueError:
            return []
    return counts


def slurm_job_ids() -> tuple[str | None, str | None, str | None]:
    """(job id as Slurm names the task, array job id, array task id) from the environment."""
    env = os.environ
    array_job, task = env.get("SLURM_ARRAY_JOB_ID"), env.get("SLURM_ARRAY_TASK_ID")
    job = f"{array_job}_{task}" if array_job and task else env.get("SLURM_JOB_ID")
    return job, array_job, task
