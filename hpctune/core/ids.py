"""The grammar of the ids that cross between the driver and the jobs: job ids and trial ids.

A trial's job id is one of three kinds, told apart here and nowhere else:

* Slurm: ``123`` (a job), ``123_4`` (task 4 of array 123), ``123+1`` (component 1 of a
  heterogeneous job). Only these reach a Slurm command line.
* local: ``local-7``, the 8th process the local backend started for the experiment.
* pool: ``pool-12``, run 12 of the worker pool's queue (``storage/pool_queue``); the pool
  task that runs it is a Slurm array task, but the run itself never is a Slurm job.

A trial id is ``<experiment id>_<NNNNN>``: the driver makes it (``trial_id``), the worker
reads the experiment id back out of it (``experiment_id_of``).

Stdlib and ``hpctune.errors`` only: storage, backends, the worker and the CLI all import it.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from hpctune.errors import ConfigError

LOCAL_PREFIX = "local-"
POOL_PREFIX = "pool-"
_SLURM = re.compile(r"(\d+)(?:_\d+)?(?:\+\d+)?", re.ASCII)
_ARRAY_TASK = re.compile(r"\d+_\d+", re.ASCII)
_NUMBERED = re.compile(r"(local|pool)-(\d+)", re.ASCII)


class JobKind(str, Enum):
    """Who runs a job: Slurm, the local backend, or a worker pool."""

    SLURM = "slurm"
    LOCAL = "local"
    POOL = "pool"


def job_kind(job_id: Any) -> JobKind | None:
    """The kind of ``job_id``; None for anything that is no job id (empty, damaged, edited)."""
    text = str(job_id) if job_id is not None else ""
    if _SLURM.fullmatch(text):
        return JobKind.SLURM
    numbered = _NUMBERED.fullmatch(text)
    return JobKind(numbered.group(1)) if numbered else None


def is_slurm_job(job_id: Any) -> bool:
    """True for a well-formed Slurm job id (never a local process or a pool run)."""
    return job_kind(job_id) is JobKind.SLURM


def is_pool_job(job_id: Any) -> bool:
    """True for a pool run's job id (not a Slurm job: never passed to a Slurm command)."""
    return job_kind(job_id) is JobKind.POOL


def validate_job_id(text: Any) -> str:
    """``text`` if it is a Slurm job id (``123``, ``123_4``, ``123+1``), else ConfigError.

    Job ids come back from files (state.json); one like ``--user=root`` must never reach
    a Slurm command line as an option.
    """
    if not isinstance(text, str) or not is_slurm_job(text):
        raise ConfigError(
            f"{text!r} is not a Slurm job id (digits, optionally _<task> or +<component>, e.g. "
            "12345_7), so hpctune will not pass it to a Slurm command. Fix: check the experiment's "
            "state.json for a damaged or edited job id, or cancel the job yourself with scancel.")
    return text


def job_number(job_id: Any) -> int | None:
    """The number that orders a backend's jobs (newer is higher): a Slurm job's (``123_4`` ->
    123), a local process's (``local-7`` -> 7), a pool run's (``pool-12`` -> 12); None for no job id."""
    text = str(job_id) if job_id is not None else ""
    slurm = _SLURM.fullmatch(text)
    if slurm:
        return int(slurm.group(1))
    numbered = _NUMBERED.fullmatch(text)
    return int(numbered.group(2)) if numbered else None


# -- Slurm arrays --------------------------------------------------------------------------------
def array_task_id(array_id: str, index: int) -> str:
    """The job id of task ``index`` of array ``array_id``: ``123_4``."""
    return f"{validate_job_id(array_id)}_{index}"


def array_of(job_id: str) -> str:
    """The array (or job) of a Slurm job id: ``123_4`` -> ``123``, ``123+1`` -> ``123``, ``123``
    -> ``123`` (unchecked: squeue's own answers are split with it; check ids from files first)."""
    return str(job_id).partition("_")[0].partition("+")[0]


def check_task_id(task: Any) -> str:
    """``task`` if it is a Slurm array task id (``123_4``): a pool task's id becomes a directory name."""
    if not isinstance(task, str) or not _ARRAY_TASK.fullmatch(task):
        raise ConfigError(f"{task!r} is not a Slurm array task id (<array>_<index>): a pool task "
                          "runs as a Slurm array task (python -m hpctune.pool is not for direct use).")
    return task


# -- local processes and pool runs -------------------------------------------------------------
def local_job_id(number: int) -> str:
    """The job id of the local backend's ``number``-th process: ``local-7``."""
    return f"{LOCAL_PREFIX}{number}"


def run_job_id(seq: int) -> str:
    """The job id the controller sees for pool run ``seq``: ``pool-12``."""
    return f"{POOL_PREFIX}{seq}"


def run_seq(job_id: Any) -> int | None:
    """The run number of a pool job id (``pool-12`` -> 12); None for any other id."""
    return job_number(job_id) if is_pool_job(job_id) else None


# -- trial ids ------------------------------------------------------------------------------------
def trial_id(experiment_id: str, index: int) -> str:
    """The id of the experiment's ``index``-th trial: ``<experiment id>_00003``."""
    return f"{experiment_id}_{index:05d}"


def experiment_id_of(trial: str) -> str:
    """The experiment id a trial id starts with (``trial_id``'s inverse); "" for an id without one."""
    return trial.rpartition("_")[0]


def default_trial_name(trainable_name: str, trial: str) -> str:
    """A trial's name without ``trial_name_creator``: Ray's ``str(trial)``, ``<trainable>_<trial id>``
    (the bare id where the trainable's name is not known)."""
    return f"{trainable_name}_{trial}" if trainable_name else trial
