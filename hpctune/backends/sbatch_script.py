"""The sbatch script of a trial array or a pool array: rendered from its inputs alone.

``render_array_script(ArrayScript(...))`` asks nothing of Slurm or of this machine: what it
needs from the cluster (whether the partition requeues) and from the driver (its Python, the
experiment directory) is looked up before, by ``SlurmBackend.array_script``, and passed in.
So the same inputs give the same bytes anywhere, and ``tests/data/sbatch/`` keeps a golden
script of each shipped profile (``tests/unit/test_golden_sbatch.py``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from submitit.slurm.slurm import SlurmExecutor

from hpctune.config import SlurmConfig
from hpctune.core.resources import task_count
from hpctune.errors import ConfigError

#: ``--comment`` of each array: ``hpctune:<manifest uid>`` (finds an array whose job id was not recorded)
COMMENT_PREFIX = "hpctune:"
#: the module each one-job-per-trial array task runs; a pool array runs ``hpctune.pool``
WORKER_MODULE = "hpctune.worker"
POOL_MODULE = "hpctune.pool"


@dataclass(frozen=True)
class ArrayScript:
    """Everything an array's sbatch script depends on."""

    config: SlurmConfig
    experiment_root: Path
    jobs_dir: Path  # the Slurm logs (--output, stderr included)
    job_name: str
    manifest: Path  # one line per array task: a trial id, or a pool task's settings
    resources: dict[str, Any]  # per array task
    count: int  # array tasks
    throttle: int  # at most this many run at once (``%K``)
    requeue: bool  # looked up before rendering: asked for, or the partition preempts by requeueing
    python: str  # the interpreter the task runs: SlurmConfig(python=...) or the driver's
    module: str = WORKER_MODULE  # ``python -m`` this: WORKER_MODULE or POOL_MODULE
    use_srun: bool = False  # start the command with srun (one worker per rank)


def render_array_script(spec: ArrayScript) -> str:
    """The exact sbatch text of the array ``spec`` describes; ConfigError for a value sbatch refuses."""
    executor = _ScriptRenderer(spec.jobs_dir)
    try:
        executor.update_parameters(**_sbatch_parameters(spec))
    except ValueError as exc:
        raise ConfigError(f"Invalid Slurm parameters: {exc}") from exc
    executor.parameters["map_count"] = spec.count
    executor.parameters["additional_parameters"].setdefault(
        "comment", COMMENT_PREFIX + spec.manifest.stem.removeprefix("array_"))
    # submitit's private renderer: the pin submitit>=1.5,<1.6 (pyproject.toml) keeps its
    # signature, and the golden scripts of tests/data/sbatch/ catch any change of its output
    return executor._make_submission_file_text(_command(spec), "preview")


def _command(spec: ArrayScript) -> str:
    args = [spec.python, "-u", "-m", spec.module, str(spec.experiment_root), "--manifest", str(spec.manifest)]
    command = " ".join(shlex.quote(a) for a in args)
    return command if spec.use_srun else f"exec {command}"  # exec: the task gets B: signals


def _sbatch_parameters(spec: ArrayScript) -> dict[str, Any]:
    cfg, resources = spec.config, spec.resources
    # the warning goes to the worker: the batch shell itself (B:) when it is the worker, the
    # srun tasks (every rank) otherwise; a batch shell running srun would die of it
    target = "" if spec.use_srun else "B:"
    extra: dict[str, Any] = {"signal": f"{target}{cfg.signal}@{cfg.signal_lead_s}"}
    if spec.requeue:
        extra["requeue"] = True
    extra.update(cfg.sbatch_options)
    params: dict[str, Any] = {
        "job_name": spec.job_name, "time": cfg.time_min, "cpus_per_task": resources["cpu"],
        "array_parallelism": spec.throttle, "use_srun": spec.use_srun, "wckey": "hpctune",
        "setup": list(cfg.setup), "additional_parameters": extra,
        "stderr_to_stdout": True,  # one log per array task: no --error, stderr goes to the .out
    }
    optional = {"partition": cfg.partition, "account": cfg.account, "qos": cfg.qos,
                "constraint": cfg.constraint, "exclude": cfg.exclude, "nodelist": cfg.nodelist}
    params.update({k: v for k, v in optional.items() if v})
    if resources.get("gpu"):
        params["gres"] = f"gpu:{resources['gpu']}"
    if resources.get("mem_gb"):
        params["mem"] = _mem(resources["mem_gb"])
    if resources.get("nodes"):
        params["nodes"] = resources["nodes"]
    if resources.get("tasks_per_node"):
        params["ntasks_per_node"] = resources["tasks_per_node"]
    if task_count(resources) > 1:
        _task_parameters(params, resources)
    return params


def _task_parameters(params: dict[str, Any], resources: dict[str, Any]) -> None:
    """A trial of several tasks: ``--ntasks``, ``--gpus-per-task``, and ``srun
    --kill-on-bad-exit``, so that a failing rank ends the whole trial at once (one error).
    The MPI plugin is Slurm's own choice: ``SLURM_MPI_TYPE`` or the cluster's ``MpiDefault``."""
    if resources.get("tasks"):
        params["additional_parameters"].setdefault("ntasks", resources["tasks"])
        params.setdefault("nodes", f"1-{resources['tasks']}")  # Slurm packs them on as few as fit
    if resources.get("gpus_per_task"):
        params["gpus_per_task"] = resources["gpus_per_task"]
    params["srun_args"] = ["--kill-on-bad-exit=1"]


def _mem(mem_gb: float) -> str:
    return f"{int(mem_gb)}GB" if float(mem_gb).is_integer() else f"{int(mem_gb * 1024)}MB"


class _ScriptRenderer(SlurmExecutor):
    """submitit's executor used to validate parameters and render sbatch text (no srun check)."""

    @classmethod
    def affinity(cls) -> int:
        return 1
