"""``hpctune logs EXP TRIAL [-f]``: a trial's stdout/stderr, across requeues and retries.

A retried trial runs in a new job (a new file); a requeued one appends to the same file. A
job's stderr is in its stdout's file (one log per job); ``--stream out|err`` picks one of the
two only for jobs of an older hpctune, which wrote a ``.err`` of their own.
``TRIAL`` may be ``driver``: the detached driver's log.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hpctune.cli.common import (
    experiment_info,
    find_trial,
    load_trials,
    resolve_experiment,
    trial_job_ids,
)
from hpctune.errors import ConfigError
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import Trial

FOLLOW_INTERVAL_S = 0.5
#: polls without new output, once the trial has ended, before ``-f`` returns
QUIET_POLLS = 4
DRIVER = "driver"
STREAMS = {"both": (0, 1), "out": (0,), "err": (1,)}


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``logs``."""
    p = commands.add_parser("logs", help="a trial's stdout/stderr across requeues and retries")
    p.add_argument("experiment", metavar="EXP")
    p.add_argument("trial", metavar="TRIAL", help="trial id (or a unique end of it, e.g. 00003), "
                   f"or '{DRIVER}' for the detached driver's log")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    p.add_argument("--stream", choices=list(STREAMS), default="both")
    p.set_defaults(func=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    exp = resolve_experiment(args.experiment)
    if args.trial == DRIVER:
        files = [exp.driver_log_path]
    else:
        trial = find_trial(load_trials(exp), args.trial)
        files = trial_log_files(exp, trial, STREAMS[args.stream])
    if not files:
        raise ConfigError(f"Trial {args.trial} has not been submitted yet: no log files.")
    offsets = print_files(files)
    if args.follow:
        follow(exp, args.trial, files, offsets)
    return 0


def trial_log_files(exp: ExperimentDir, trial: Trial, streams: tuple[int, ...] = (0, 1)) -> list[Path]:
    """The trial's log files, job by job, oldest first; ``streams``: 0 stdout, 1 stderr. A job
    of this hpctune has one file for both (``ExperimentDir.job_log_paths``): listed once."""
    files = [exp.job_log_paths(job)[i] for job in trial_job_ids(exp, trial) for i in streams]
    return list(dict.fromkeys(files))


def print_files(files: list[Path]) -> dict[Path, int]:
    """Print each file under a ``==> path <==`` header; returns the offsets read up to."""
    offsets = {}
    for path in files:
        if not path.exists():
            print(f"==> {path} (not written yet; or the job ended with no output, and hpctune removed "
                  "the empty log) <==")
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
            trial = None if trial_text == DRIVER else find_trial(load_trials(exp), trial_text)
            if trial is not None:
                for path in trial_log_files(exp, trial):
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
            if _finished(exp, trial) and quiet_polls >= QUIET_POLLS:
                return
    except KeyboardInterrupt:
        return


def _finished(exp: ExperimentDir, trial: Trial | None) -> bool:
    if trial is not None:
        return trial.is_finished
    status = experiment_info(exp)["summary"].get("status")
    return status not in (None, "running")
