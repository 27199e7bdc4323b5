"""``hpctune cancel EXP [TRIAL...]``: stop requests for the live trials, then one scancel.

Without trials it stops the driver too: a detached driver's job joins the scancel; a
foreground driver on this host gets SIGINT (its Ctrl+C: final snapshot, jobs cancelled), or
SIGTERM where it ignores SIGINT (started with ``&``/``nohup`` and TUNE_DISABLE_SIGINT_HANDLER=1),
but only once ``/proc`` confirms that the recorded pid still is that driver (same start
time, boot and command line): a stale or forged record never signals another process.
Every job id read from the experiment's files is checked (``validate_job_id``) before any
file is written or any command runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket

from hpctune.backends.slurm_commands import scancel_args
from hpctune.backends.slurm_limits import shared_commands
from hpctune.cli.common import (
    experiment_info,
    find_trial,
    load_trials,
    printable,
    require_own_experiment,
    resolve_experiment,
    slurm_job_ids,
)
from hpctune.core.ids import validate_job_id
from hpctune.storage.control import ControlRecord
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.process import process_ignores, recorded_driver_pid

CANCEL_REASON = "cancelled with `hpctune cancel`"


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``cancel``."""
    p = commands.add_parser("cancel", help="cancel an experiment's jobs (one scancel for all)")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("trials", nargs="*", metavar="TRIAL", help="only these trials (default: all, "
                   "and the detached driver)")
    p.set_defaults(func=cmd_cancel)


def cmd_cancel(args: argparse.Namespace) -> int:
    exp = resolve_experiment(args.experiment)
    print(cancel_experiment(exp, args.trials), flush=True)
    return 0


def cancel_experiment(exp: ExperimentDir, trial_texts: list[str]) -> str:
    """Stop the driver (all trials) or some trials: stop requests, then one scancel for all jobs."""
    require_own_experiment(exp, "cancel")
    trials = load_trials(exp)
    targets = [find_trial(trials, text) for text in trial_texts] if trial_texts else trials
    live = [t for t in targets if not t.is_finished]
    job_ids = slurm_job_ids([t.job_id for t in live])  # all checked before anything is done
    driver_job = None if trial_texts else _driver_job(exp)
    for trial in live:  # a worker that reports before the scancel lands stops cleanly
        exp.write_control(trial.trial_id, ControlRecord.stop(CANCEL_REASON))
    notes = []
    if not trial_texts and driver_job is None:
        note = _interrupt_driver(exp)
        notes += [note] if note else []
    job_ids = ([driver_job] if driver_job else []) + job_ids
    if job_ids:
        notes.append(_scancel(job_ids))
    if not live and not job_ids:
        return "\n".join([f"Nothing to cancel in {printable(exp.root.name)}: no trial is queued or running.", *notes])
    return "\n".join([f"Cancelling {len(live)} trial(s) of {printable(exp.root.name)}.", *notes])


def _driver_job(exp: ExperimentDir) -> str | None:
    """The detached driver's job id (checked), while the experiment may still run."""
    info = experiment_info(exp)
    if info["summary"].get("status") not in (None, "running"):
        return None
    job = info["submit"].get("driver_job_id")
    return validate_job_id(str(job)) if job else None


def _interrupt_driver(exp: ExperimentDir) -> str | None:
    """SIGINT to a foreground driver on this host (SIGTERM if it ignores SIGINT), once /proc
    confirms the pid is that driver."""
    summary = experiment_info(exp)["summary"]
    if summary.get("status") not in (None, "running"):
        return None
    driver = summary.get("driver") or {}
    pid, host = driver.get("pid"), driver.get("host")
    if not pid:
        return None
    if host != socket.gethostname():
        return (f"The driver runs on {host} (pid {pid}): stop it there with Ctrl-C, or it "
                "will treat the cancelled jobs as failures.")
    verified, why = recorded_driver_pid(driver)
    if verified is None:
        return (f"The driver is not running (stale record: {why}); no process was signalled. "
                "If a driver still runs, stop it with Ctrl-C where it runs.")
    usable = [s for s in (signal.SIGINT, signal.SIGTERM) if not process_ignores(verified, s)]
    if not usable:
        return (f"The driver (pid {verified}) ignores SIGINT and SIGTERM: no signal was sent. "
                f"Stop it with `kill -KILL {verified}`.")
    try:
        os.kill(verified, usable[0])  # SIGINT: the driver writes its final snapshot and exits
    except ProcessLookupError:
        return f"The driver is not running (pid {verified} ended just now); nothing was signalled."
    if usable[0] == signal.SIGTERM:
        return (f"The driver (pid {verified}) ignores SIGINT (started in the background with "
                "TUNE_DISABLE_SIGINT_HANDLER=1?): sent SIGTERM, which ends it at once; "
                f"continue it from its last snapshot with `hpctune resume {exp.root}`.")
    return f"Interrupted the driver (pid {verified})."


def _scancel(job_ids: list[str]) -> str:
    proc = shared_commands().run(scancel_args(job_ids), check=False)
    if proc.returncode != 0:
        return f"scancel reported: {proc.stderr.strip()}"
    return f"scancel {' '.join(job_ids)}"
