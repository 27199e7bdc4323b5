"""What the commands share: finding an experiment and its trials, describing its state.

All of it reads the shared filesystem only, through ``ExperimentDir``: the CLI works from
any login node while the driver runs elsewhere.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.core.ids import JobKind, job_kind, validate_job_id
from hpctune.errors import ConfigError, ExperimentStateError, HpctuneError, UnsafeFileError
from hpctune.storage import events as ev
from hpctune.storage.experiment import ExperimentDir

if TYPE_CHECKING:  # imported where used: `hpctune ls` reads summaries only
    from hpctune.storage.trial_rows_read import TrialRows
    from hpctune.tune.experiment.trial import Trial

#: where experiments go by default (``hpctune.config.DEFAULT_STORAGE``; a test keeps them equal)
DEFAULT_STORAGE = "~/hpctune_results"

#: a running experiment whose summary is older than this is flagged: its driver may be gone
STALE_AFTER_S = 60.0
#: what damaged JSON or a record of the wrong shape raises while it is read
DAMAGED = (ValueError, TypeError, KeyError, AttributeError)


# -- command-line values ------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, 1, "a whole number >= 1")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return _number(text, int, 0, "a whole number >= 0")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = _number(text, float, 0.0, "a number > 0")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number > 0")
    return value


def _number(text: str, kind: Callable[[str], Any], low: float, what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}") from None
    if value < low or value != value:  # NaN compares false with everything
        raise argparse.ArgumentTypeError(f"{text!r}: expected {what}")
    return value


# -- finding experiments ---------------------------------------------------------------------
def storage_root(path: str | None = None) -> Path:
    """``path``, else ``$HPCTUNE_STORAGE_PATH``, else the default storage path."""
    chosen = path or os.environ.get("HPCTUNE_STORAGE_PATH") or DEFAULT_STORAGE
    if "\x00" in str(chosen):
        raise ConfigError(f"The storage path {chosen!r} holds a NUL character, which no path may: "
                          "pass a directory such as ~/hpctune_results.")
    return user_path(chosen, "The storage path").resolve()


def user_path(text: str | os.PathLike, what: str) -> Path:
    """``text`` with ``~`` expanded; a clear error for ``~name`` of a user this machine lacks."""
    try:
        return Path(text).expanduser()
    except RuntimeError:
        raise ConfigError(f"{what} {str(text)!r} starts with '~' but names no user of this "
                          "machine: write the full path.") from None


def experiment_dirs(root: Path) -> list[ExperimentDir]:
    """The experiments directly under ``root``, by name."""
    if not root.is_dir():
        return []
    found = []
    for path in sorted(root.iterdir()):
        try:
            if path.is_dir() and ExperimentDir(path).is_experiment():
                found.append(ExperimentDir(path))
        except OSError:  # another user's private directory: not ours to list
            continue
    return found


def resolve_experiment(text: str) -> ExperimentDir:
    """EXP: a directory, else a name under the default storage path."""
    for path in (user_path(text, "The experiment"), storage_root() / text):
        if path.is_dir() and ExperimentDir(path).is_experiment():
            return ExperimentDir(path)
    known = [exp.root.name for exp in experiment_dirs(storage_root())]
    close = difflib.get_close_matches(text, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else (
        f" Experiments there: {', '.join(known[:10])}." if known else "")
    raise ConfigError(f"No experiment {text!r}: not an experiment directory, and not a name under "
                      f"{storage_root()} (set $HPCTUNE_STORAGE_PATH or give the path).{hint}")


def require_own_experiment(exp: ExperimentDir, action: str) -> None:
    """A ConfigError unless ``exp`` and the files the CLI acts on are yours and nobody else may
    write them: another user's experiment is data to read, never to signal, cancel or write."""
    me = os.geteuid()
    for path in (exp.root, exp.trials_dir, exp.summary_path, exp.state_path, exp.submit_path):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        writable = st.st_mode & 0o022 and not (path == exp.root and st.st_mode & 0o1000)
        if st.st_uid != me or writable or stat.S_ISLNK(st.st_mode):
            why = (f"belongs to uid {st.st_uid}, not to you (uid {me})" if st.st_uid != me else
                   "is a symbolic link" if stat.S_ISLNK(st.st_mode) else
                   "may be written by others")
            raise ConfigError(
                f"Refusing to {action} {printable(exp.root)}: {printable(path)} {why}. hpctune "
                "reads other users' experiments as data only: the driver and job ids in their "
                "files could name any process or job. Fix: ask the experiment's owner to run it.")


# -- describing an experiment ---------------------------------------------------------------------
def experiment_info(exp: ExperimentDir) -> dict[str, Any]:
    """The summary, the spec and the submit plan merged into one small dict.

    Each file is optional: one that is empty, torn or of the wrong shape reads as ``{}`` and
    its name goes to ``unreadable``, so that one damaged experiment never hides the others.
    """
    unreadable: list[str] = []
    summary = scrubbed(_read(exp.read_summary, exp.summary_path, unreadable, _summary_ok))
    spec = scrubbed(_read(exp.read_experiment, exp.experiment_path, unreadable))
    submit = scrubbed(_read(exp.read_submit, exp.submit_path, unreadable))
    return {"summary": summary, "spec": spec, "submit": submit, "unreadable": unreadable,
            "metric": summary.get("metric") or spec.get("metric"),
            "mode": summary.get("mode") or spec.get("mode")}


def _read(reader: Callable[[], Any], path: Path, unreadable: list[str],
          valid: Callable[[dict[str, Any]], bool] = lambda data: True) -> dict[str, Any]:
    try:
        data = reader()
    except (OSError, ValueError, UnsafeFileError):  # not readable, empty, torn, a FIFO, a link
        data = None
    if isinstance(data, dict) and valid(data):
        return data
    unreadable.append(path.name)
    return {}


def _summary_ok(summary: dict[str, Any]) -> bool:
    """The fields ``ls`` and ``status`` format have the types they need."""
    number = (int, float)
    best = summary.get("best")
    by_status = summary.get("by_status", {})
    return (isinstance(summary.get("status", ""), str) and isinstance(summary.get("updated", 0), number)
            and isinstance(summary.get("num_trials", 0), int) and isinstance(by_status, dict)
            and all(isinstance(k, str) and isinstance(n, int) for k, n in by_status.items())
            and (best is None or isinstance(best, dict) and isinstance(best.get("value"), (*number, type(None))))
            and isinstance(summary.get("driver") or {}, dict))


def describe_state(info: dict[str, Any]) -> str:
    """running / finished / interrupted / error; queued or stale when the files say so;
    ``unreadable (<file>)`` when a file needed to tell is damaged."""
    summary, submit = info["summary"], info["submit"]
    if info.get("unreadable"):
        return f"unreadable ({', '.join(info['unreadable'])})"
    if not summary:
        if submit.get("driver_job_id"):
            return f"queued (driver job {submit['driver_job_id']})"
        return "starting" if info["spec"] else "unknown"
    status = summary.get("status", "unknown")
    age = time.time() - float(summary.get("updated", 0))
    if status == "running" and age > STALE_AFTER_S:
        return f"running? (no update for {ago(age)})"
    return status


def load_trials(exp: ExperimentDir) -> list[Trial]:
    """The experiment's trials (``snapshot_trials``); a damaged file is a ConfigError naming it."""
    state_fix = (f"Fix: move it away (`mv {exp.state_path} {exp.state_path}.damaged`): hpctune then "
                 "rebuilds the trials from their result logs, and a running driver writes it again "
                 "at its next snapshot.")
    try:
        return _displayed_trials(exp)
    except ExperimentStateError as exc:  # state.json or its journal: the message names the file
        fix = "" if "Fix:" in str(exc) else f" {state_fix}"
        raise ConfigError(f"{exc}{fix}") from exc
    except HpctuneError:
        raise
    except DAMAGED as exc:
        what = f"{type(exc).__name__}: {exc}"
        if exp.state_path.exists():
            raise ConfigError(f"{exp.state_path} is damaged (a trial record: {what}). {state_fix}") from exc
        raise ConfigError(f"A trial file of {exp.root} is damaged ({what}). Fix: look for an empty "
                          f"or edited file under {exp.trials_dir}.") from exc


def _displayed_trials(exp: ExperimentDir) -> list[Trial]:
    """The trials from the snapshot (base + journal, without the metric analysis the
    commands do not show), scrubbed where their text holds a control character; rebuilt from
    the logs (all scrubbed) while the driver has written no snapshot yet."""
    from hpctune.storage.journal import read_trial_state
    from hpctune.storage.replay import snapshot_trials
    from hpctune.tune.experiment.trial import Trial

    state = read_trial_state(exp, view=True)
    if state is None:
        return [scrub_trial(trial) for trial in snapshot_trials(exp)]
    for problem in state.problems:
        warnings.warn(problem, stacklevel=3)
    escaped = state.escaped
    known = frozenset(f.name for f in dataclasses.fields(Trial))
    # a record of this version has exactly Trial's fields (``Trial.to_dict``): built directly
    trials = [Trial(**t) if known.issuperset(t) else Trial.from_dict(t) for t in state.trials.values()]
    return [scrub_trial(t) if escaped is None or t.trial_id in escaped else t for t in trials]


def load_rows(exp: ExperimentDir) -> TrialRows | None:
    """The trials' row view (``storage.trial_rows``: the display fields column by column, up
    to date with the journal); None when there is none for the current state, or it cannot
    be read: the caller reads the whole state (``load_trials``), which also names any damage."""
    from hpctune.storage.trial_rows_read import read_rows

    try:
        rows = read_rows(exp)
    except (OSError, HpctuneError, *DAMAGED):
        return None
    if rows is not None:
        for problem in rows.problems:
            warnings.warn(problem, stacklevel=3)
    return rows


def row_trial_loader(rows: TrialRows) -> Callable[[int], Trial]:
    """``trial(i)``: the ``Trial`` of row ``i`` of ``rows``, built once (as ``load_trials``
    builds it: scrubbed when its text holds a control character)."""
    from hpctune.tune.experiment.trial import Trial

    known = frozenset(f.name for f in dataclasses.fields(Trial))
    built: dict[int, Trial] = {}

    def trial(index: int) -> Trial:
        if index not in built:
            record = rows.record(index)
            made = Trial(**record) if known.issuperset(record) else Trial.from_dict(record)
            built[index] = scrub_trial(made) if index in rows.escaped else made
        return built[index]

    return trial


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


def output_path(text: str, what: str) -> Path:
    """Where a command writes its file (``-o``, ``--hdf5``); its folder must exist."""
    out = user_path(text, "The output path")
    if not out.parent.is_dir():
        raise ConfigError(f"{out.parent} does not exist: create it or write the {what} elsewhere.")
    return out


def console() -> Any:
    """A rich Console; a wide one when stdout is not a terminal (a pipe, a file)."""
    from rich.console import Console  # rich costs ~40 ms: only the commands that print tables

    # no markup: a config value such as "[/]" read from a file is text, never a style
    out = Console(markup=False, emoji=False, highlight=False)
    return out if out.is_terminal else Console(width=200, markup=False, emoji=False, highlight=False)


# -- what reaches the terminal ---------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def printable(value: object, keep_newlines: bool = False) -> str:
    """``value`` as text with each control character written as an escape (``\\x1b``): names,
    configs and errors read from an experiment (another user's, perhaps) never reach the
    terminal as escape sequences. The one sanitiser of the CLI's output."""
    pattern = _CONTROL_BUT_NEWLINE if keep_newlines else _CONTROL
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode(), str(value))


def scrubbed(value: Any) -> Any:
    """``value`` with ``printable`` applied to every string in it (keys too)."""
    if isinstance(value, str):
        return printable(value) if _CONTROL.search(value) else value
    if isinstance(value, dict):
        return {scrubbed(k): scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrubbed(v) for v in value]
    return value


def scrub_trial(trial: Trial) -> Trial:
    """``trial`` with ``scrubbed`` text fields, for display (its ``path`` stays a real path:
    commands read files through it and print it with ``printable``)."""
    for field in dataclasses.fields(trial):
        if field.name != "path":
            setattr(trial, field.name, scrubbed(getattr(trial, field.name)))
    return trial


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
    """Every job the trial ran in, oldest first: from its result log's events, plus its current
    job. Only real job ids (Slurm ``123_4``, ``local-7``, ``pool-3``): a damaged one names no file."""
    from hpctune.storage.result_log import read_events

    seen: dict[str, None] = {}
    for event in read_events(exp.result_log_path(trial.trial_id)):
        if event.get(ev.JOB_ID):
            seen[str(event[ev.JOB_ID])] = None
    if trial.job_id:
        seen[str(trial.job_id)] = None
    return [job for job in seen if job_kind(job) is not None]


def slurm_job_ids(job_ids: list[Any]) -> list[str]:
    """The ids among ``job_ids`` that are for Slurm: all but none, local processes and pool runs
    (a pool task ends a run when the trial's control record says stop). Each is checked by
    ``validate_job_id``: a ConfigError for one that is no job id, e.g. ``--user=root`` from an
    edited state file."""
    return [validate_job_id(str(job)) for job in job_ids
            if job and job_kind(job) not in (JobKind.LOCAL, JobKind.POOL)]
