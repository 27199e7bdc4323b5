"""``hpctune submit`` and ``hpctune resume``: run a driver in the foreground or as a Slurm job.

Settings are layered, later winning: the site profile (``--profile``, else ``default``),
the experiment file's ``[slurm]``/``[resources]`` tables (declarative mode) or the script's
own Tuner (script mode), then command-line options.

With ``--detach`` the driver itself becomes a small Slurm job (1 CPU, ``--requeue``, a long
time limit, ``USR1`` two minutes before it). Everything it needs is written to
``<experiment>/submit.json``; the job runs ``python -m hpctune.cli_driver submit.json``, which starts
the experiment, or continues it with ``Tuner.restore`` when it was requeued or preempted.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.errors import ConfigError

DRIVER_TIME_MIN = 1440
DRIVER_SIGNAL_LEAD_S = 120
SUBMIT_FILE = "submit.json"
DRIVER_LOG = "driver.log"
FILE_SUFFIXES = (".toml", ".yaml", ".yml")


def add_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "submit", help="run an experiment (script or experiment file)",
        description="Run `train.py [ARGS...]` (a script that builds a Tuner and calls fit()) or "
        "an experiment file (.toml/.yaml). hpctune's options go before the file; everything "
        "after it is passed to the script.")
    p.add_argument("target", help="train.py, or experiment.toml / .yaml")
    p.add_argument("script_args", nargs=argparse.REMAINDER, help="arguments of the script")
    p.add_argument("--profile", help="site profile (see `hpctune profiles`); default: 'default'")
    p.add_argument("--name", help="experiment name (default: the file's name, else <stem>_<date>)")
    p.add_argument("--storage-path", help="where experiments live (default $HPCTUNE_STORAGE_PATH "
                   "or ~/hpctune_results)")
    p.add_argument("--backend", choices=["slurm", "local"], help="where trials run (default: "
                   "Slurm when sbatch exists)")
    add_override_options(p)
    p.add_argument("--detach", action="store_true", help="submit the driver as a Slurm job that "
                   "requeues itself and resumes the experiment")
    p.add_argument("--dry-run", action="store_true", help="print the sbatch scripts of the driver "
                   "and of the trials; submit nothing")
    add_driver_options(p)
    p.set_defaults(func=cmd_submit)

    r = commands.add_parser("resume", help="continue an interrupted experiment",
                            description="Continue EXP with Tuner.restore: unfinished trials go on "
                            "from their checkpoints; jobs still in Slurm are re-attached.")
    r.add_argument("experiment", metavar="EXP")
    r.add_argument("--resume-errored", action="store_true", help="retry errored trials from their checkpoints")
    r.add_argument("--restart-errored", action="store_true", help="restart errored trials from scratch")
    r.add_argument("--no-resume-unfinished", dest="resume_unfinished", action="store_false",
                   help="do not continue unfinished trials")
    r.add_argument("--detach", action="store_true", help="continue in a detached driver job")
    add_driver_options(r)
    r.set_defaults(func=cmd_resume)


def add_override_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides of profile and file values")
    for flag, kind, what in [("--partition", str, "Slurm partition"), ("--account", str, "account"),
                             ("--qos", str, "QOS"), ("--time-min", int, "time limit per trial (min)"),
                             ("--constraint", str, "node features"), ("--exclude", str, "nodes to avoid"),
                             ("--max-array-size", int, "largest array to submit"),
                             ("--poll-interval-s", float, "seconds between squeue calls")]:
        g.add_argument(flag, type=kind, help=what)
    g.add_argument("--setup", action="append", metavar="LINE", help="a shell line run before each trial "
                   "(repeatable), e.g. 'module load cuda'")
    g.add_argument("--sbatch", action="append", metavar="KEY=VALUE", help="an extra #SBATCH "
                   "directive (repeatable), e.g. reservation=ml")
    g.add_argument("--requeue", action=argparse.BooleanOptionalAction, default=None,
                   help="submit trials with --requeue")
    g.add_argument("--cpus", type=int, help="CPUs per trial")
    g.add_argument("--gpus", type=int, help="GPUs per trial (GRES)")
    g.add_argument("--mem-gb", type=float, help="memory per trial (GB)")
    g.add_argument("--nodes", type=int, help="nodes per trial")
    g.add_argument("--max-concurrent", type=int, help="max_concurrent_trials")
    g.add_argument("--num-samples", type=int, help="num_samples (experiment files only)")


def add_driver_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the detached driver job (--detach)")
    g.add_argument("--driver-partition", help="partition of the driver job (default: the "
                   "profile's [driver], else the trials' partition)")
    g.add_argument("--driver-time-min", type=int, help=f"its time limit (default {DRIVER_TIME_MIN}); "
                   "it requeues itself before the limit")
    g.add_argument("--driver-mem-gb", type=float, help="its memory")


# -- resolving settings ------------------------------------------------------------------------
@dataclass
class SubmitPlan:
    """Everything a submission needs, resolved; written as submit.json for a detached driver."""

    mode: str  # "file", "script" or "resume"
    target: str
    experiment_path: str
    script_args: list[str] = field(default_factory=list)
    slurm: dict[str, Any] = field(default_factory=dict)  # file mode: all fields, resolved
    overrides: dict[str, Any] = field(default_factory=dict)  # script mode: SubmitOverrides
    resources: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    restore: dict[str, bool] = field(default_factory=dict)
    driver: dict[str, Any] = field(default_factory=dict)
    backend: str | None = None
    detached: bool = False
    cwd: str = ""
    python: str = sys.executable
    driver_job_id: str | None = None

    @property
    def name(self) -> str:
        return Path(self.experiment_path).name


def cli_slurm_fields(args: argparse.Namespace) -> dict[str, Any]:
    """SlurmConfig fields given on the command line."""
    names = ["partition", "account", "qos", "time_min", "constraint", "exclude", "max_array_size",
             "poll_interval_s", "requeue"]
    fields = {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}
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
    pairs = {"cpu": args.cpus, "gpu": args.gpus, "mem_gb": args.mem_gb, "nodes": args.nodes}
    return {k: v for k, v in pairs.items() if v is not None}


def plan_submission(args: argparse.Namespace) -> SubmitPlan:
    """Resolve profile, file and options into a SubmitPlan (imports the trainable in file mode)."""
    from hpctune.profiles import SubmitOverrides, load_profile

    target = Path(args.target).expanduser()
    if not target.is_file():
        raise ConfigError(f"No such file: {target}. Give a script (train.py) or an experiment "
                          "file (experiment.toml, .yaml).")
    target = target.resolve()
    file = _experiment_file(target, args)
    profile = load_profile(args.profile or (file.profile if file else None) or "default")
    storage = args.storage_path or (file.storage_path if file else None)
    name = args.name or (file.name if file else None) or _default_name(target, file)
    plan = SubmitPlan(mode="file" if file else "script", target=str(target),
                      experiment_path=str(_experiment_root(storage, name)),
                      script_args=list(args.script_args), backend=args.backend,
                      cwd=os.getcwd(), driver=_driver_settings(args, profile.driver))
    cli_slurm = cli_slurm_fields(args)
    if file is not None:
        plan.slurm = _asdict(profile.slurm_config(file.slurm, cli_slurm))
        plan.resources = {**profile.resources, **file.resources, **cli_resources(args)}
        plan.tune = {"max_concurrent_trials": args.max_concurrent, "num_samples": args.num_samples}
    else:
        if args.num_samples is not None:
            raise ConfigError("--num-samples applies to experiment files; in a script, set "
                              "TuneConfig(num_samples=...).")
        plan.overrides = _asdict(SubmitOverrides(
            slurm_defaults=profile.slurm, slurm_forced=cli_slurm,
            resource_defaults=profile.resources, resources=cli_resources(args),
            max_concurrent_trials=args.max_concurrent, name=name,
            storage_path=str(Path(plan.experiment_path).parent)))
    plan.driver.setdefault("partition", plan.slurm.get("partition") or profile.slurm.get("partition"))
    return plan


def _experiment_file(target: Path, args: argparse.Namespace) -> Any:
    if target.suffix in FILE_SUFFIXES:
        from hpctune.experiment_file import load_experiment_file

        if args.script_args:
            raise ConfigError(f"Arguments after an experiment file are not used: {args.script_args}. "
                              "Put hpctune's options before the file.")
        return load_experiment_file(target)
    if target.suffix != ".py":
        raise ConfigError(f"{target}: expected a Python script (.py) or an experiment file "
                          f"({', '.join(FILE_SUFFIXES)}).")
    return None


def _default_name(target: Path, file: Any) -> str:
    stem = file.trainable_ref.rpartition(":")[2] if file else target.stem
    return f"{stem}_{time.strftime('%Y-%m-%d_%H-%M-%S')}"


def _experiment_root(storage: str | None, name: str) -> Path:
    from hpctune.config import RunConfig

    return RunConfig(name=name, storage_path=storage).experiment_root(name)


def _driver_settings(args: argparse.Namespace, profile_driver: dict[str, Any]) -> dict[str, Any]:
    driver = dict(profile_driver)
    given = {"partition": args.driver_partition, "time_min": args.driver_time_min,
             "mem_gb": args.driver_mem_gb}
    driver.update({k: v for k, v in given.items() if v is not None})
    driver.setdefault("time_min", DRIVER_TIME_MIN)
    return driver


def _asdict(obj: Any) -> dict[str, Any]:
    import dataclasses

    return dataclasses.asdict(obj)


# -- hpctune submit ------------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    plan = plan_submission(args)
    _refuse_existing(Path(plan.experiment_path))
    if args.detach:
        mark_detached(plan)
    if args.dry_run:
        print(dry_run_text(plan, args.detach))
        return 0
    if args.detach:
        return submit_driver(plan)
    return run_plan(plan)


def _refuse_existing(root: Path) -> None:
    if (root / "experiment.json").exists() or (root / SUBMIT_FILE).exists():
        raise ConfigError(f"{root} already holds an experiment: continue it with "
                          f"`hpctune resume {root.name}`, or choose another --name.")


def dry_run_text(plan: SubmitPlan, detach: bool) -> str:
    """The driver's sbatch script (with --detach) and the trials' sbatch script."""
    from hpctune.cli_driver import driver_script

    lines = ["# ---- driver job (hpctune submit --detach) ----"]
    if detach:
        lines.append(driver_script(plan))
    else:
        lines.append("# (none: the driver runs in the foreground; add --detach to run it as a job)")
    lines += ["# ---- trials (one array task per trial) ----", trial_preview(plan)]
    return "\n".join(lines)


def trial_preview(plan: SubmitPlan) -> str:
    """The trials' sbatch script, from the Tuner the file or script builds."""
    from hpctune.cli_driver import capture_script_tuner

    tuner = build_file_tuner(plan) if plan.mode == "file" else capture_script_tuner(plan)
    if tuner is None:
        return "# the script did not create a Tuner and call fit()"
    from hpctune.space import count_grid_variants

    count = max(1, tuner.tune_config.num_samples) * max(1, count_grid_variants(tuner.param_space))
    return tuner.preview_sbatch(count)


def build_file_tuner(plan: SubmitPlan) -> Any:
    """The Tuner of a declarative plan: the file's settings with the resolved overrides."""
    from hpctune.experiment_file import load_experiment_file
    from hpctune.profiles import merge_slurm

    file = load_experiment_file(plan.target)
    file.name = plan.name
    file.storage_path = str(Path(plan.experiment_path).parent)
    file.backend = plan.backend or file.backend
    tuner = file.tuner(merge_slurm(plan.slurm), plan.resources, **plan.tune)
    if plan.detached:  # a requeued driver job re-attaches to its trials' jobs
        tuner.run_config.keep_jobs_on_interrupt = True
    return tuner


def run_plan(plan: SubmitPlan) -> int:
    """Run the driver here, in the foreground."""
    from hpctune.cli_driver import run_script

    print(f"hpctune: experiment {plan.experiment_path}", flush=True)
    if plan.mode == "script":
        return run_script(plan)
    grid = build_file_tuner(plan).fit()
    _print_outcome(grid)
    return 0


def _print_outcome(grid: Any) -> None:
    print(f"{len(grid)} trials: {grid.num_terminated} terminated, {grid.num_errors} errors "
          f"({grid.experiment_path})")
    try:
        best = grid.get_best_result()
    except Exception:  # noqa: BLE001 - no metric set, or nothing reported: nothing to show
        return
    print(f"Best trial {best.trial_id}: config {best.config}")


def mark_detached(plan: SubmitPlan) -> None:
    """A detached driver keeps its trials' jobs when stopped, so that its next start re-attaches."""
    plan.detached = True
    if plan.mode == "script":
        plan.overrides["keep_jobs_on_interrupt"] = True


def submit_driver(plan: SubmitPlan) -> int:
    """sbatch the driver job; its spec goes to <experiment>/submit.json."""
    from hpctune.backends.slurm_commands import SlurmCommands
    from hpctune.cli_driver import driver_script, write_plan

    if plan.backend == "local":
        raise ConfigError("--detach runs the driver and its trials on Slurm: drop --backend local.")
    root = Path(plan.experiment_path)
    root.mkdir(parents=True, exist_ok=True)
    mark_detached(plan)
    write_plan(plan)
    script = root / "driver.sbatch"
    script.write_text(driver_script(plan))
    out = SlurmCommands().run(["sbatch", "--parsable", str(script)]).stdout.strip()
    plan.driver_job_id = out.split(";")[0]
    write_plan(plan)
    print(f"Submitted driver job {plan.driver_job_id} for experiment {plan.name}\n"
          f"  directory: {root}\n  driver log: {root / DRIVER_LOG}\n"
          f"  watch it:  hpctune status {plan.name} --watch")
    return 0


# -- hpctune resume ---------------------------------------------------------------------------
def cmd_resume(args: argparse.Namespace) -> int:
    from hpctune.cli_driver import restore_tuner
    from hpctune.cli_inspect import resolve_experiment

    exp = resolve_experiment(args.experiment)
    flags = {"resume_unfinished": args.resume_unfinished, "resume_errored": args.resume_errored,
             "restart_errored": args.restart_errored}
    if args.detach:
        from hpctune.profiles import load_profile

        plan = SubmitPlan(mode="resume", target=str(exp.root), experiment_path=str(exp.root),
                          restore=flags, cwd=os.getcwd(),
                          driver=_driver_settings(args, load_profile("default").driver))
        (exp.root / SUBMIT_FILE).unlink(missing_ok=True)
        return submit_driver(plan)
    grid = restore_tuner(str(exp.root), flags).fit()
    _print_outcome(grid)
    return 0


def shell_export(name: str, value: str) -> str:
    return f"export {name}={shlex.quote(value)}"
