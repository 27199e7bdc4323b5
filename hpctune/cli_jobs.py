"""Job-level commands: print and follow a trial's logs, cancel an experiment's jobs."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

from hpctune.cli_inspect import (
    experiment_info,
    find_trial,
    job_log_files,
    load_trials_fast,
    trial_job_ids,
)
from hpctune.storage.experiment import ExperimentDir
from hpctune.trial import Trial

FOLLOW_INTERVAL_S = 0.5
CANCEL_REASON = "cancelled with `hpctune cancel`"


# -- logs ---------------------------------------------------------------------------------------
def print_files(files: list[Path]) -> dict[Path, int]:
    """Print each file under a ``==> path <==`` header; returns the offsets read up to."""
    offsets = {}
    for path in files:
        if not path.exists():
            print(f"==> {path} (not written yet) <==")
            offsets[path] = 0
            continue
        print(f"==> {path} <==")
        offsets[path] = _copy_new(path, 0)
    sys.stdout.flush()
    return offsets


def _copy_new(path: Path, offset: int) -> int:
    """Write what ``path`` holds after ``offset`` to stdout; returns the new offset."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset
    if data:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return offset + len(data)


def follow(exp: ExperimentDir, trial_text: str, files: list[Path], offsets: dict[Path, int]) -> None:
    """Print new output as it arrives (new jobs of the trial included) until it ends or Ctrl-C."""
    quiet_polls = 0
    try:
        while True:
            time.sleep(FOLLOW_INTERVAL_S)
            trial = None if trial_text == "driver" else find_trial(load_trials_fast(exp), trial_text)
            if trial is not None:
                for job in trial_job_ids(exp, trial):
                    for path in job_log_files(exp, job):
                        if path not in offsets:
                            files.append(path)
                            offsets[path] = 0
                            print(f"==> {path} <==", flush=True)
            grew = False
            for path in files:
                new = _copy_new(path, offsets[path])
                grew = grew or new != offsets[path]
                offsets[path] = new
            quiet_polls = 0 if grew else quiet_polls + 1
            if _finished(exp, trial) and quiet_polls >= 4:
                return
    except KeyboardInterrupt:
        return


def _finished(exp: ExperimentDir, trial: Trial | None) -> bool:
    if trial is not None:
        return trial.is_finished
    status = experiment_info(exp)["summary"].get("status")
    return status not in (None, "running")


# -- cancel -----------------------------------------------------------------------------------------
def cancel_experiment(exp: ExperimentDir, trial_texts: list[str]) -> str:
    """Stop the driver (all trials) or some trials: stop requests, then one scancel for all jobs."""
    trials = load_trials_fast(exp)
    targets = [find_trial(trials, text) for text in trial_texts] if trial_texts else trials
    live = [t for t in targets if not t.is_finished]
    for trial in live:  # a worker that reports before the scancel lands stops cleanly
        exp.write_control(trial.trial_id, {"action": "stop", "reason": CANCEL_REASON})
    notes = []
    job_ids = [t.job_id for t in live if t.job_id and not t.job_id.startswith("local")]
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
    from hpctune.backends.slurm_commands import SlurmCommands

    proc = SlurmCommands().run(["scancel", *job_ids], check=False)
    if proc.returncode != 0:
        return f"scancel reported: {proc.stderr.strip()}"
    return f"scancel {' '.join(job_ids)}"
