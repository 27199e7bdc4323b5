"""The driver of ``hpctune submit``: the detached driver job's script, and what runs the driver.

``python -m hpctune.cli.driver <experiment's submit plan>`` (the detached driver job's command):

* first start: runs the experiment file's Tuner, or the user's script;
* after a requeue or preemption (``Tuner.can_restore`` is true): ``Tuner.restore(...)`` and
  ``fit()`` again; trials still in Slurm are re-attached, none is run twice;
* SIGTERM (requeue, preemption, scancel) ends the driver as Ctrl+C would: the controller
  stops at a clean point and writes its snapshot; the trials keep running in Slurm
  (a detached driver runs with ``RunConfig(keep_jobs_on_interrupt=True)``);
* USR1, sent ``DRIVER_SIGNAL_LEAD_S`` before the job's time limit, makes the driver requeue
  its own job (``scontrol requeue``), so a long experiment outlives any time limit.

``hpctune.tune.tuner`` is imported where it is used: it pulls in the controller and numpy
(~150 ms), which ``hpctune ls`` and the other read-only commands must not pay for.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import shlex
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from hpctune.backends.slurm_commands import requeue_args
from hpctune.backends.slurm_limits import shared_commands
from hpctune.cli.plan import SubmitPlan, build_file_tuner, pin_location, read_plan
from hpctune.config import check_sbatch_options, check_sbatch_text
from hpctune.config.profiles import SubmitOverrides
from hpctune.errors import ConfigError, HpctuneError
from hpctune.storage.experiment import SUBMIT_FILE, ExperimentDir
from hpctune.storage.fs_check import check_storage

DRIVER_MODULE = "hpctune.cli.driver"
DRIVER_SIGNAL_LEAD_S = 120


# -- the driver job's script -------------------------------------------------------------------
def driver_script(plan: SubmitPlan) -> str:
    """The sbatch script of the detached driver: 1 CPU, --requeue, USR1 before the time limit.

    Every value is checked (no control character: ConfigError) and shell-quoted; setup lines
    are commands, checked only."""
    directives, setup = driver_directives(plan)
    lines = ["#!/bin/bash", "# hpctune driver job: runs Tuner.fit(); requeued, it resumes the experiment"]
    for key, value in directives.items():
        if value is None and key != "requeue":
            continue
        lines.append(f"#SBATCH --{key}" + ("" if value is None else f"={shlex.quote(str(value))}"))
    lines += ["", "# setup", *setup] if setup else []
    lines += ["", "export HPCTUNE_BACKEND=slurm"]
    command = [plan.python, "-u", "-m", DRIVER_MODULE, str(plan.exp.submit_path)]
    lines += ["exec " + " ".join(shlex.quote(c) for c in command), ""]
    return "\n".join(lines)


def driver_directives(plan: SubmitPlan) -> tuple[dict[str, Any], list[str]]:
    """The driver job's ``#SBATCH`` directives and setup lines, from the profile's ``[driver]``,
    the ``--driver-*`` options and the trials' account/QOS; ConfigError for a bad value."""
    exp, driver = plan.exp, plan.driver
    trial_slurm = plan.slurm or {**plan.overrides.get("slurm_defaults", {}),
                                 **plan.overrides.get("slurm_forced", {})}
    _check_driver_types(driver)
    options = driver.get("sbatch_options", {})
    check_sbatch_options(options, owner="the profile's [driver] sbatch_options, or SlurmConfig")
    setup = [*trial_slurm.get("setup", []), *driver.get("setup", [])]
    directives = {
        "job-name": f"hpctune-driver-{plan.name}", "ntasks": 1, "cpus-per-task": 1,
        "time": driver.get("time_min"), "requeue": None, "open-mode": "append",
        "signal": f"B:USR1@{DRIVER_SIGNAL_LEAD_S}", "output": exp.driver_log_path,
        "error": exp.driver_log_path, "chdir": plan.cwd or os.getcwd(),
        "partition": driver.get("partition"),
        "account": driver.get("account") or trial_slurm.get("account"),
        "qos": driver.get("qos") or trial_slurm.get("qos"),
        "mem": f"{int(driver['mem_gb'] * 1024)}M" if driver.get("mem_gb") else None,
        **options,
    }
    for key, value in directives.items():
        check_sbatch_text(f"the driver job's {key} ([driver] {key} of the profile, or --driver-{key})"
                          if key in ("partition", "account", "qos") else f"the driver job's --{key}", value)
    for i, line in enumerate(setup):
        check_sbatch_text(f"setup line {i + 1} of the driver job (the profile's setup)", line)
    return directives, setup


#: [driver] settings that must have a kind: (is it right, what it must be)
_DRIVER_SETTING_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "time_min": (lambda v: _number(v, int) and v >= 1, "a whole number of minutes >= 1"),
    "mem_gb": (lambda v: _number(v, (int, float)) and v > 0, "a number of GB > 0"),
    "setup": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of shell lines"),
    "sbatch_options": (lambda v: isinstance(v, dict), "a table of option = value"),
}


def _number(value: Any, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool)


def _check_driver_types(driver: dict[str, Any]) -> None:
    """``[driver]`` values of the right kinds: a time limit in minutes, memory in GB, lists, tables."""
    for key, (right, what) in _DRIVER_SETTING_TYPES.items():
        value = driver.get(key)
        if value is not None and not right(value):
            raise ConfigError(f"The driver job's {key} is {value!r}, but must be {what}. Fix: correct "
                              f"`{key}` in the profile's [driver] table (or its --driver-* option).")


# -- inside the driver job ------------------------------------------------------------------------
def run_driver(spec_path: Path) -> int:
    """Start or continue the experiment of a submit plan; see the module docstring."""
    from hpctune.tune.tuner import Tuner

    plan = read_plan(spec_path)
    if plan.cwd and Path(plan.cwd).is_dir():
        os.chdir(plan.cwd)
    install_driver_signals()
    restart = os.environ.get("SLURM_RESTART_COUNT", "0")
    print(f"hpctune driver: job {os.environ.get('SLURM_JOB_ID', '-')} on {socket.gethostname()}, "
          f"restart {restart}, experiment {plan.experiment_path}", flush=True)
    try:
        check_storage(plan.experiment_path)  # a filesystem without locks: refused before any write
        if plan.mode == "resume" or Tuner.can_restore(plan.experiment_path):
            flags = plan.restore or {"resume_unfinished": True}
            print(f"hpctune driver: resuming with Tuner.restore({flags})", flush=True)
            restore_tuner(plan.exp, flags).fit()
            return 0
        if plan.mode == "file":
            build_file_tuner(plan).fit()
            return 0
        return run_script(plan)
    finally:
        print("hpctune driver: exiting", flush=True)


def restore_tuner(exp: ExperimentDir, flags: dict[str, Any]) -> Any:
    """``Tuner.restore(exp, **flags)``, with a clear error when it cannot be restored."""
    from hpctune.tune.tuner import Tuner

    if not Tuner.can_restore(exp.root):
        raise ConfigError(f"{exp.root} cannot be restored: it has no {exp.tuner_path.name} (its "
                          "driver never started). Submit it again with `hpctune submit`.")
    return Tuner.restore(str(exp.root), **flags)


def install_driver_signals() -> None:
    """SIGTERM: stop like Ctrl+C (final snapshot written); USR1: requeue this job before its limit.
    SIGINT is this driver's Ctrl+C even when its caller left it ignored."""
    def on_term(signum: int, frame: Any) -> None:
        # As Ctrl+C: the controller ends its loop at a clean point and writes its snapshot;
        # a detached driver keeps the trials' jobs (keep_jobs_on_interrupt) for the next start.
        print(f"hpctune driver: signal {signum}: stopping; the experiment stays resumable",
              flush=True)
        signal.raise_signal(signal.SIGINT)

    def on_usr1(signum: int, frame: Any) -> None:
        job = os.environ.get("SLURM_JOB_ID")
        if job:
            print(f"hpctune driver: time limit near: requeueing job {job}", flush=True)
            shared_commands().run(requeue_args(job), check=False)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGUSR1, on_usr1)
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:  # inherited from `&`/nohup: on_term needs it
        signal.signal(signal.SIGINT, signal.default_int_handler)


# -- script mode ----------------------------------------------------------------------------------
def run_script(plan: SubmitPlan, before_fit: Callable[[Any], None] | None = None) -> int:
    """Run the user's script here as ``__main__``; every Tuner it creates gets the plan's
    overrides (profile and command-line options) through ``tuner_hooks``, and its experiment
    directory: ``--name``/``--storage-path``, else the script's own RunConfig, else the plan's
    default. ``before_fit`` sees each Tuner before its ``fit()``."""
    from hpctune.tune.tuner import tuner_hooks

    overrides = SubmitOverrides(**plan.overrides)

    def on_create(tuner: Any) -> None:
        pin_location(tuner.run_config, overrides, Path(plan.experiment_path))
        overrides.apply(tuner)

    with _script_context(plan):
        try:
            with tuner_hooks(on_create=on_create, before_fit=before_fit):
                runpy.run_path(plan.target, run_name="__main__")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


@contextlib.contextmanager
def _script_context(plan: SubmitPlan) -> Iterator[None]:
    """The script's argv, its directory first on sys.path and the plan's backend; all restored."""
    saved_argv, saved_path = list(sys.argv), list(sys.path)
    saved_backend = os.environ.get("HPCTUNE_BACKEND")
    if plan.backend:
        os.environ["HPCTUNE_BACKEND"] = plan.backend
    sys.argv = [plan.target, *plan.script_args]
    sys.path.insert(0, str(Path(plan.target).parent))
    try:
        yield
    finally:
        sys.argv, sys.path[:] = saved_argv, saved_path
        if saved_backend is None:
            os.environ.pop("HPCTUNE_BACKEND", None)
        else:
            os.environ["HPCTUNE_BACKEND"] = saved_backend


class _Captured(BaseException):
    """Raised by the dry run's ``before_fit`` hook, carrying the Tuner."""

    def __init__(self, tuner: Any):
        super().__init__("dry run")
        self.tuner = tuner


def capture_script_tuner(plan: SubmitPlan) -> Any:
    """Run the script up to its ``Tuner.fit()`` (not calling it); return that Tuner, or None."""
    def capture(tuner: Any) -> None:
        raise _Captured(tuner)

    try:
        run_script(plan, before_fit=capture)
    except _Captured as captured:
        return captured.tuner
    return None


def script_run_config(plan: SubmitPlan) -> Any:
    """The RunConfig of the script's first Tuner as the script wrote it (before any override),
    or None: the script runs only up to that ``Tuner(...)``, nothing is fitted or written."""
    from hpctune.tune.tuner import tuner_hooks

    def capture(tuner: Any) -> None:  # runs before run_script's own hooks: enclosing blocks first
        raise _Captured(tuner)

    try:
        with tuner_hooks(on_create=capture):
            run_script(plan)
    except _Captured as captured:
        return captured.tuner.run_config
    return None


def main(argv: list[str] | None = None) -> int:
    """``python -m hpctune.cli.driver SUBMIT_PLAN``: errors are printed to the driver log."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(f"usage: python -m {DRIVER_MODULE} EXPERIMENT_DIR/{SUBMIT_FILE}", file=sys.stderr)
        return 2
    try:
        return run_driver(Path(argv[0]))
    except HpctuneError as exc:
        print(f"hpctune driver: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
