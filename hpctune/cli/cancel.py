"""``hpctune cancel EXP [TRIAL...]``: stop requests for the live trials, then one scancel.

Without trials it stops the driver too: a detached driver's job joins the scancel; a
foreground driver on this host gets SIGINT (its Ctrl+C: final snapshot, jobs cancelled).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket

from hpctune.backends.slurm_limits import shared_commands
from hpctune.cli.common import experiment_info, find_trial, is_slurm_job, resolve_experiment
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import snapshot_trials

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
    trials = snapshot_trials(exp)
    targets = [find_trial(trials, text) for text in trial_texts] if trial_texts else trials
    live = [t for t in targets if not t.is_finished]
    for trial in live:  # a worker that reports before the scancel lands stops cleanly
        exp.write_control(trial.trial_id, {"action": "stop", "reason": CANCEL_REASON})
    notes = []
    job_ids = [t.job_id for t in live if is_slurm_job(t.job_id)]
    if not trial_texts:
        driver_job, note = _stop_driver(exp)
        notes += [note] if note else []
        job_ids = ([driver_job] if driver_job else []) + job_ids
    if job_ids:
        notes.append(_scancel(job_ids))
    if not live and not job_ids:
        return f"Nothing to cancel in {exp.root.name}: no trial is queued or running."
    return "\n".join([f"Cancelling {len(live)} trial(s) of {exp.root.name}.", *notes])


def _stop_driver(exp: ExperimentDir) -> tuple[str | None, str | None]:
    """(the detached driver's job id to scancel, a note) or a foreground driver interrupted here."""
    info = experiment_info(exp)
    summary, submit = info["summary"], info["submit"]
    if summary.get("status") not in (None, "running"):
        return None, None
    if submit.get("driver_job_id"):
        return str(submit["driver_job_id"]), None
    driver = summary.get("driver") or {}
    pid, host = driver.get("pid"), driver.get("host")
    if not pid:
        return None, None
    if host != socket.gethostname():
        return None, (f"The driver runs on {host} (pid {pid}): stop it there with Ctrl-C, or it "
                      "will treat the cancelled jobs as failures.")
    try:
        os.kill(int(pid), signal.SIGINT)  # the driver writes its final snapshot and exits
    except ProcessLookupError:
        return None, None
    return None, f"Interrupted the driver (pid {pid})."


def _scancel(job_ids: list[str]) -> str:
    proc = shared_commands().run(["scancel", *job_ids], check=False)
    if proc.returncode != 0:
        return f"scancel reported: {proc.stderr.strip()}"
    return f"scancel {' '.join(job_ids)}"
