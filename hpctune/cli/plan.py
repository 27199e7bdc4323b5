"""A submission resolved: ``SubmitPlan``, built from profile, file and options, and its file.

Settings are layered, later winning: the site profile (``--profile``, else the file's
``profile``, else ``default``), the experiment file's ``[slurm]``/``[resources]`` tables
(declarative mode) or the script's own Tuner (script mode), then command-line options.
A detached driver reads its plan back from ``ExperimentDir.submit_path``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.cli.common import user_path
from hpctune.config import RunConfig
from hpctune.config.experiment_file import ExperimentFile, load_experiment_file
from hpctune.config.profiles import SubmitOverrides, load_profile, merge_slurm
from hpctune.errors import ConfigError
from hpctune.storage.atomic import read_json, write_json_atomic
from hpctune.storage.experiment import ExperimentDir

DRIVER_TIME_MIN = 1440
FILE_SUFFIXES = (".toml", ".yaml", ".yml")
SLURM_OPTIONS = ["partition", "account", "qos", "time_min", "constraint", "exclude",
                 "max_array_size", "poll_interval_s", "requeue"]


@dataclass
class SubmitPlan:
    """Everything a submission needs, resolved; a detached driver reads it from its file.

    Queued driver jobs read plans written by older versions: keep the fields compatible.
    """

    mode: str  # "file", "script" or "resume"
    target: str
    experiment_path: str
    script_args: list[str] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)  # file mode: all fields, resolved
    overrides: dict[str, Any] = field(default_factory=dict)  # script mode: SubmitOverrides
    resources: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    #: Tuner.restore's flags: resume_unfinished/errored, restart_errored, and a new budget
    #: (gpu_hours_budget or cpu_hours_budget, a number)
    restore: dict[str, Any] = field(default_factory=dict)
    driver: dict[str, Any] = field(default_factory=dict)
    backend: str | None = None
    detached: bool = False
    cwd: str = ""
    python: str = sys.executable
    driver_job_id: str | None = None

    @property
    def name(self) -> str:
        return Path(self.experiment_path).name

    @property
    def exp(self) -> ExperimentDir:
        return ExperimentDir(self.experiment_path)


# -- the plan's file ---------------------------------------------------------------------------
def write_plan(plan: SubmitPlan) -> Path:
    """Write ``plan`` to its experiment's ``submit_path`` (atomically); returns that path."""
    path = plan.exp.submit_path
    write_json_atomic(path, dataclasses.asdict(plan))
    return path


def read_plan(path: Path) -> SubmitPlan:
    """The plan written by ``write_plan``; ConfigError when ``path`` holds none."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is missing or is not a plan written by `hpctune submit`: "
                          "submit the experiment again.")
    return SubmitPlan(**data)


# -- resolving settings ------------------------------------------------------------------------
def plan_submission(args: argparse.Namespace) -> SubmitPlan:
    """Resolve profile, file and options into a SubmitPlan (imports the trainable in file mode)."""
    target = user_path(args.target, "The experiment file")
    if not target.is_file():
        raise ConfigError(f"No such file: {target}. Give a script (train.py) or an experiment "
                          "file (experiment.toml, .yaml).")
    target = target.resolve()
    file = _experiment_file(target, args.script_args)
    profile = load_profile(args.profile or (file.profile if file else None) or "default")
    storage = args.storage_path or (file.storage_path if file else None)
    name = args.name or (file.name if file else None) or _default_name(target, file)
    plan = SubmitPlan(mode="file" if file else "script", target=str(target),
                      experiment_path=str(RunConfig(name=name, storage_path=storage)
                                          .experiment_root(name)),
                      script_args=list(args.script_args), backend=args.backend,
                      cwd=os.getcwd(), driver=driver_settings(args, profile.driver))
    cli_slurm = cli_slurm_fields(args)
    if file is not None:
        plan.slurm = dataclasses.asdict(profile.slurm_config(file.slurm, cli_slurm))
        plan.resources = {**profile.resources, **file.resources, **cli_resources(args)}
        plan.tune = {"max_concurrent_trials": args.max_concurrent, "num_samples": args.num_samples}
    else:
        if args.num_samples is not None:
            raise ConfigError("--num-samples applies to experiment files; in a script, set "
                              "TuneConfig(num_samples=...).")
        # --name/--storage-path pin the directory; else the script's own RunConfig decides
        # (see pin_location), and the plan's path is only the default
        plan.overrides = dataclasses.asdict(SubmitOverrides(
            slurm_defaults=profile.slurm, slurm_forced=cli_slurm,
            resource_defaults=profile.resources, resources=cli_resources(args),
            max_concurrent_trials=args.max_concurrent, name=args.name,
            storage_path=str(Path(plan.experiment_path).parent) if args.storage_path else None))
    plan.driver.setdefault("partition", plan.slurm.get("partition") or profile.slurm.get("partition"))
    return plan


def cli_slurm_fields(args: argparse.Namespace) -> dict[str, Any]:
    """SlurmConfig fields given on the command line."""
    fields = {n: getattr(args, n) for n in SLURM_OPTIONS if getattr(args, n, None) is not None}
    if args.setup:
        fields["setup"] = list(args.setup)
    if args.sbatch:
        fields["sbatch_options"] = dict(_key_value(item) for item in args.sbatch)
    return fields


def _key_value(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. --sbatch reservation=ml.")
    return key.lstrip("-"), value


def cli_resources(args: argparse.Namespace) -> dict[str, Any]:
    """Per-trial resources given on the command line."""
    pairs = {"cpu": args.cpus, "gpu": args.gpus, "mem_gb": args.mem_gb, "nodes": args.nodes,
             "tasks_per_node": args.tasks_per_node, "gpus_per_task": args.gpus_per_task}
    return {k: v for k, v in pairs.items() if v is not None}


def driver_settings(args: argparse.Namespace, profile_driver: dict[str, Any]) -> dict[str, Any]:
    """The detached driver job's settings: the profile's ``[driver]``, then ``--driver-*``."""
    driver = dict(profile_driver)
    given = {"partition": args.driver_partition, "time_min": args.driver_time_min,
             "mem_gb": args.driver_mem_gb}
    driver.update({k: v for k, v in given.items() if v is not None})
    driver.setdefault("time_min", DRIVER_TIME_MIN)
    return driver


def _experiment_file(target: Path, script_args: list[str]) -> ExperimentFile | None:
    """The parsed experiment file, or None for a script."""
    if target.suffix in FILE_SUFFIXES:
        if script_args:
            raise ConfigError(f"Arguments after an experiment file are not used: {script_args}. "
                              "Put hpctune's options before the file.")
        return load_experiment_file(target)
    if target.suffix != ".py":
        raise ConfigError(f"{target}: expected a Python script (.py) or an experiment file "
                          f"({', '.join(FILE_SUFFIXES)}).")
    return None


def _default_name(target: Path, file: ExperimentFile | None) -> str:
    stem = file.trainable_ref.rpartition(":")[2] if file else target.stem
    return f"{stem}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def pin_location(run_config: Any, overrides: Any, default: Path) -> Path:
    """Set a script's RunConfig to its experiment directory and return it: ``--name`` and
    ``--storage-path`` (``overrides``) win, then the script's own ``name``/``storage_path``,
    then ``default`` (``<stem>_<date>`` under the default storage path)."""
    run_config.name = overrides.name or run_config.name or default.name
    run_config.storage_path = str(overrides.storage_path or run_config.storage_path or default.parent)
    return run_config.experiment_root(run_config.name)


def pin_plan_location(plan: SubmitPlan, run_config: Any) -> None:
    """Fix a script plan's experiment directory before its driver runs elsewhere (``--detach``):
    from the options, else ``run_config`` (the script's own, or None), else the default."""
    overrides = SubmitOverrides(**plan.overrides)
    root = pin_location(run_config or RunConfig(), overrides, Path(plan.experiment_path))
    plan.experiment_path = str(root)
    plan.overrides["name"], plan.overrides["storage_path"] = root.name, str(root.parent)


def mark_detached(plan: SubmitPlan) -> None:
    """A detached driver keeps its trials' jobs when stopped, so that its next start re-attaches."""
    plan.detached = True
    if plan.mode == "script":
        plan.overrides["keep_jobs_on_interrupt"] = True


# -- declarative mode ----------------------------------------------------------------------------
def build_file_tuner(plan: SubmitPlan) -> Any:
    """The Tuner of a declarative plan: the file's settings with the resolved overrides."""
    file = load_experiment_file(plan.target)
    file.name = plan.name
    file.storage_path = str(Path(plan.experiment_path).parent)
    file.backend = plan.backend or file.backend
    tuner = file.tuner(merge_slurm(plan.slurm), plan.resources, **plan.tune)
    if plan.detached:  # a requeued driver job re-attaches to its trials' jobs
        tuner.run_config.keep_jobs_on_interrupt = True
    return tuner
