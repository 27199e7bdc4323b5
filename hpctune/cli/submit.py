"""``hpctune submit`` and ``hpctune resume``: run a driver in the foreground or as a Slurm job.

With ``--detach`` the driver itself becomes a small Slurm job (1 CPU, ``--requeue``, a long
time limit, ``USR1`` two minutes before it). Everything it needs is written to the
experiment's submit plan (``ExperimentDir.submit_path``); the job runs
``python -m hpctune.cli.driver`` on it, which starts the experiment, or continues it with
``Tuner.restore`` when it was requeued or preempted.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from hpctune.backends.slurm_commands import sbatch_args, submitted_job_id
from hpctune.backends.slurm_limits import shared_commands
from hpctune.cli.common import (
    non_negative_int,
    positive_float,
    positive_int,
    require_own_experiment,
    resolve_experiment,
    storage_root,
)
from hpctune.cli.driver import (
    capture_script_tuner,
    driver_script,
    restore_tuner,
    run_script,
    script_run_config,
)
from hpctune.cli.plan import (
    DRIVER_TIME_MIN,
    SubmitPlan,
    build_file_tuner,
    driver_settings,
    mark_detached,
    pin_plan_location,
    plan_submission,
    write_plan,
)
from hpctune.config.profiles import load_profile
from hpctune.errors import ConfigError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.fs_check import check_storage
from hpctune.storage.secure import ensure_dir, root_dir_mode


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``submit`` and ``resume``."""
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
                   "and of the trials, and the experiment's worst-case cost; submit nothing")
    add_driver_options(p)
    p.set_defaults(func=cmd_submit)

    r = commands.add_parser("resume", help="continue an interrupted experiment",
                            description="Continue EXP with Tuner.restore: unfinished trials go on "
                            "from their checkpoints; jobs still in Slurm are re-attached.")
    r.add_argument("experiment", metavar="EXP")
    errored = r.add_mutually_exclusive_group()
    errored.add_argument("--resume-errored", action="store_true", help="retry errored trials from their checkpoints")
    errored.add_argument("--restart-errored", action="store_true", help="restart errored trials from scratch")
    r.add_argument("--no-resume-unfinished", dest="resume_unfinished", action="store_false",
                   help="do not continue unfinished trials")
    r.add_argument("--detach", action="store_true", help="continue in a detached driver job")
    budget = r.add_mutually_exclusive_group()
    budget.add_argument("--gpu-hours-budget", type=positive_float, metavar="N",
                        help="a new allocation budget in GPU-hours (e.g. larger, after the old one stopped it)")
    budget.add_argument("--cpu-hours-budget", type=positive_float, metavar="N",
                        help="a new allocation budget in CPU-hours (core-hours)")
    add_driver_options(r)
    r.set_defaults(func=cmd_resume)


def add_override_options(p: argparse.ArgumentParser) -> None:
    """Options that override profile and file values (see ``plan.cli_slurm_fields``)."""
    g = p.add_argument_group("overrides of profile and file values")
    for flag, kind, what in [("--partition", str, "Slurm partition"), ("--account", str, "account"),
                             ("--qos", str, "QOS"), ("--time-min", positive_int, "time limit per trial (min)"),
                             ("--constraint", str, "node features"), ("--exclude", str, "nodes to avoid"),
                             ("--max-array-size", positive_int, "largest array to submit"),
                             ("--poll-interval-s", positive_float, "seconds between squeue calls")]:
        g.add_argument(flag, type=kind, help=what)
    g.add_argument("--setup", action="append", metavar="LINE", help="a shell line run before each trial "
                   "(repeatable), e.g. 'module load cuda'")
    g.add_argument("--sbatch", action="append", metavar="KEY=VALUE", help="an extra #SBATCH "
                   "directive (repeatable), e.g. reservation=ml")
    g.add_argument("--requeue", action=argparse.BooleanOptionalAction, default=None,
                   help="submit trials with --requeue")
    g.add_argument("--cpus", type=positive_int, help="CPUs per trial")
    g.add_argument("--gpus", type=non_negative_int, help="GPUs per trial (GRES)")
    g.add_argument("--mem-gb", type=positive_float, help="memory per trial (GB)")
    g.add_argument("--nodes", type=positive_int, help="nodes per trial")
    g.add_argument("--tasks-per-node", type=positive_int, help="tasks (ranks) per node: a trial of "
                   "several tasks runs them with srun (docs/distributed.md)")
    g.add_argument("--gpus-per-task", type=non_negative_int, help="GPUs per task (--gpus-per-task)")
    g.add_argument("--max-concurrent", type=positive_int, help="max_concurrent_trials")
    g.add_argument("--num-samples", type=int, help="num_samples (experiment files only)")


def add_driver_options(p: argparse.ArgumentParser) -> None:
    """``--driver-*``: the detached driver job's partition, time limit and memory."""
    g = p.add_argument_group("the detached driver job (--detach)")
    g.add_argument("--driver-partition", help="partition of the driver job (default: the "
                   "profile's [driver], else the trials' partition)")
    g.add_argument("--driver-time-min", type=positive_int, help=f"its time limit (default {DRIVER_TIME_MIN}); "
                   "it requeues itself before the limit")
    g.add_argument("--driver-mem-gb", type=positive_float, help="its memory")


# -- hpctune submit ------------------------------------------------------------------------------
def cmd_submit(args: argparse.Namespace) -> int:
    plan = plan_submission(args)
    if plan.mode == "script" and args.detach:
        # the driver job runs elsewhere, later: its directory must be known now, and be the one
        # the script's own RunConfig names (unless --name/--storage-path say otherwise)
        pin_plan_location(plan, script_run_config(plan))
    if plan.mode != "script" or args.detach:  # a foreground script's directory is known at fit()
        _refuse_existing(plan.exp)
    if args.detach:
        mark_detached(plan)
    if args.dry_run:
        print(dry_run_text(plan, args.detach))
        return 0
    if args.detach:
        return submit_driver(plan)
    return run_plan(plan)


def _refuse_existing(exp: ExperimentDir) -> None:
    """A ConfigError if ``exp`` holds an experiment that ran a trial. One whose first run
    failed or was killed before any trial started is started over, as ``fit()`` does
    (``tune/preflight.refuse_started``): the fixed file or script reruns with the same name."""
    if exp.has_started():
        raise ConfigError(f"{exp.root} already holds an experiment: continue it with "
                          f"`hpctune resume {exp_argument(exp)}`, or choose another --name.")


def exp_argument(exp: ExperimentDir) -> str:
    """How to name ``exp`` on the command line: its name under the storage path, else its path."""
    return exp.root.name if exp.root.parent == storage_root() else str(exp.root)


def dry_run_text(plan: SubmitPlan, detach: bool) -> str:
    """The driver's sbatch script (with --detach), the trials' sbatch script and, as ``#``
    lines after it, the experiment's worst-case cost (``accounting/estimate.py``)."""
    lines = ["# ---- driver job (hpctune submit --detach) ----"]
    if detach:
        lines.append(driver_script(plan))
    else:
        lines.append("# (none: the driver runs in the foreground; add --detach to run it as a job)")
    lines += ["# ---- trials (a worker pool, or one array task per trial), then the worst-case cost ----",
              trial_preview(plan)]
    return "\n".join(lines)


def trial_preview(plan: SubmitPlan) -> str:
    """The trials' sbatch script, from the Tuner the file or script builds."""
    tuner = build_file_tuner(plan) if plan.mode == "file" else capture_script_tuner(plan)
    if tuner is None:
        return "# the script did not create a Tuner and call fit()"
    return tuner.preview_sbatch()  # sized as fit() sizes its first array


def run_plan(plan: SubmitPlan) -> int:
    """Run the driver here, in the foreground."""
    if plan.mode == "script":
        return run_script(plan, before_fit=_start_script_experiment)
    check_storage(plan.experiment_path)  # a filesystem without locks: refused before any write
    print(f"hpctune: experiment {plan.experiment_path}", flush=True)
    grid = build_file_tuner(plan).fit()
    _print_outcome(grid)
    return 0


def _start_script_experiment(tuner: Any) -> None:
    """Before each ``fit()`` of a script run in the foreground: a directory that works (new,
    unless the script restored it with ``Tuner.restore``), announced."""
    exp = ExperimentDir(tuner.run_config.experiment_root(tuner.run_config.name))
    if not tuner.is_restored:  # not Tuner.restore(...): must be new
        _refuse_existing(exp)
    check_storage(exp.root)
    print(f"hpctune: experiment {exp.root}", flush=True)


def _print_outcome(grid: Any) -> None:
    print(f"{len(grid)} trials: {grid.num_terminated} terminated, {grid.num_errors} errors "
          f"({grid.experiment_path})")
    try:
        best = grid.get_best_result()
    except Exception:  # noqa: BLE001 - no metric set, or nothing reported: nothing to show
        return
    print(f"Best trial {best.trial_id}: config {best.config}")


def submit_driver(plan: SubmitPlan) -> int:
    """sbatch the driver job; its plan goes to the experiment's submit plan file.

    Everything is checked first (every value of the driver script, the storage path's
    locks); the experiment root is created private (``ensure_dir``) whatever the umask."""
    if plan.backend == "local":
        raise ConfigError("--detach runs the driver and its trials on Slurm: drop --backend local.")
    exp = plan.exp
    mark_detached(plan)
    script = driver_script(plan)
    check_storage(exp.root)
    if not exp.root.is_dir():  # a resumed experiment keeps the mode it has
        ensure_dir(exp.root, root_dir_mode())
    write_plan(plan)
    write_bytes_atomic(exp.driver_script_path, script.encode())
    proc = shared_commands().run(sbatch_args(exp.driver_script_path))
    plan.driver_job_id = submitted_job_id(proc.stdout)
    write_plan(plan)
    print(f"Submitted driver job {plan.driver_job_id} for experiment {plan.name}\n"
          f"  directory: {exp.root}\n  driver log: {exp.driver_log_path}\n"
          f"  watch it:  hpctune status {exp_argument(exp)} --watch")
    return 0


# -- hpctune resume ---------------------------------------------------------------------------
def cmd_resume(args: argparse.Namespace) -> int:
    exp = resolve_experiment(args.experiment)
    require_own_experiment(exp, "resume")
    flags = {"resume_unfinished": args.resume_unfinished, "resume_errored": args.resume_errored,
             "restart_errored": args.restart_errored}
    for name in ("gpu_hours_budget", "cpu_hours_budget"):  # Tuner.restore's new budget
        if getattr(args, name) is not None:
            flags[name] = getattr(args, name)
    if args.detach:
        plan = SubmitPlan(mode="resume", target=str(exp.root), experiment_path=str(exp.root),
                          restore=flags, cwd=os.getcwd(),
                          driver=driver_settings(args, load_profile("default").driver))
        exp.submit_path.unlink(missing_ok=True)
        return submit_driver(plan)
    check_storage(exp.root)
    grid = restore_tuner(exp, flags).fit()
    _print_outcome(grid)
    return 0
