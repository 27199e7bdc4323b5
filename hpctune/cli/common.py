"""What the commands share: finding an experiment and its trials, describing its state.

All of it reads the shared filesystem only, through ``ExperimentDir``: the CLI works from
any login node while the driver runs elsewhere.
"""

from __future__ import annotations

import difflib
import os
import time
from pathlib import Path
from typing import Any

from hpctune.config import DEFAULT_STORAGE
from hpctune.errors import ConfigError
from hpctune.storage import events as ev
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.trial import Trial

#: a running experiment whose summary is older than this is flagged: its driver may be gone
STALE_AFTER_S = 60.0


# -- finding experiments ---------------------------------------------------------------------
def storage_root(path: str | None = None) -> Path:
    """``path``, else ``$HPCTUNE_STORAGE_PATH``, else the default storage path."""
    return Path(path or os.environ.get("HPCTUNE_STORAGE_PATH") or DEFAULT_STORAGE).expanduser().resolve()


def experiment_dirs(root: Path) -> list[ExperimentDir]:
    """The experiments directly under ``root``, by name."""
    if not root.is_dir():
        return []
    found = (ExperimentDir(p) for p in sorted(root.iterdir()) if p.is_dir())
    return [exp for exp in found if exp.is_experiment()]


def resolve_experiment(text: str) -> ExperimentDir:
    """EXP: a directory, else a name under the default storage path."""
    for path in (Path(text).expanduser(), storage_root() / text):
        if path.is_dir() and ExperimentDir(path).is_experiment():
            return ExperimentDir(path)
    known = [exp.root.name for exp in experiment_dirs(storage_root())]
    close = difflib.get_close_matches(text, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else (
        f" Experiments there: {', '.join(known[:10])}." if known else "")
    raise ConfigError(f"No experiment {text!r}: not an experiment directory, and not a name under "
                      f"{storage_root()} (set $HPCTUNE_STORAGE_PATH or give the path).{hint}")


# -- describing an experiment ---------------------------------------------------------------------
def experiment_info(exp: ExperimentDir) -> dict[str, Any]:
    """The summary, the spec and the submit plan merged into one small dict."""
    summary = exp.read_summary()
    spec = exp.read_experiment() or {}
    return {"summary": summary, "spec": spec, "submit": exp.read_submit(),
            "metric": summary.get("metric") or spec.get("metric"),
            "mode": summary.get("mode") or spec.get("mode")}


def describe_state(info: dict[str, Any]) -> str:
    """running / finished / interrupted / error; queued or stale when the files say so."""
    summary, submit = info["summary"], info["submit"]
    if not summary:
        if submit.get("driver_job_id"):
            return f"queued (driver job {submit['driver_job_id']})"
        return "starting" if info["spec"] else "unknown"
    status = summary.get("status", "unknown")
    age = time.time() - float(summary.get("updated", 0))
    if status == "running" and age > STALE_AFTER_S:
        return f"running? (no update for {ago(age)})"
    return status


def driver_text(summary: dict[str, Any]) -> str | None:
    """Who drives the experiment: a Slurm job or a process, and where."""
    driver = summary.get("driver") or {}
    if driver.get("slurm_job_id"):
        return f"Slurm job {driver['slurm_job_id']} on {driver.get('host')}"
    if driver.get("pid"):
        return f"pid {driver['pid']} on {driver.get('host')}"
    return None


def ago(seconds: float) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``: the largest whole unit."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def console() -> Any:
    """A rich Console; a wide one when stdout is not a terminal (a pipe, a file)."""
    from rich.console import Console  # rich costs ~40 ms: only the commands that print tables

    out = Console()
    return out if out.is_terminal else Console(width=200)


# -- trials --------------------------------------------------------------------------------------
def find_trial(trials: list[Trial], text: str) -> Trial:
    """A trial by id, or by a unique end of its id ("00003", "3")."""
    exact = [t for t in trials if t.trial_id == text]
    if exact:
        return exact[0]
    matches = [t for t in trials if t.trial_id.endswith(text)
               or (text.isdigit() and t.trial_id.rsplit("_", 1)[-1].lstrip("0") == text.lstrip("0"))]
    if len(matches) == 1:
        return matches[0]
    sample = ", ".join(t.trial_id for t in (matches or trials)[:5])
    what = "matches several trials" if matches else "matches no trial"
    raise ConfigError(f"Trial {text!r} {what}; trial ids look like: {sample or 'none yet'}.")


def trial_job_ids(exp: ExperimentDir, trial: Trial) -> list[str]:
    """Every job the trial ran in, oldest first: from its result log's events, plus its current job."""
    seen: dict[str, None] = {}
    for event in read_events(exp.result_log_path(trial.trial_id)):
        if event.get(ev.JOB_ID):
            seen[str(event[ev.JOB_ID])] = None
    if trial.job_id:
        seen[trial.job_id] = None
    return list(seen)


def is_slurm_job(job_id: str | None) -> bool:
    """True for a Slurm job id; False for none or a local process (``local-N``)."""
    return bool(job_id) and not job_id.startswith("local")
