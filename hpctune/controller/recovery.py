"""What a restore checks before it trusts a trial's files, and what it clears up.

* ``damaged_file``: one trial's unreadable ``params.pkl`` (``params.json`` without one),
  ``control.json``, metadata (an old ``trial.json``, or the log's ``meta`` event) or result log (or a forged trial id, a crafted checkpoint name) quarantines that trial
  with a message naming the file and what to do; the other trials are restored.
* ``interrupted_by_full_storage``: a trial whose run ended because the filesystem was full
  or read-only did not fail: a restore runs it again by default.
* ``orphan_checkpoints``: a checkpoint whose result line was torn by a killed write is kept
  within ``num_to_keep`` like the others (the torn line itself is reported).
* ``collect_leftovers``: the temporary files and directories of killed writes (hpctune's own
  names only, inside the experiment, never through a link) are removed.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hpctune.errors import ExperimentStateError
from hpctune.storage import events as ev
from hpctune.storage.checkpoints import STAGE_PREFIX
from hpctune.storage.experiment import (
    CONTROL_FILE,
    FIT_FILES,
    MARKER_FILES,
    PARAMS_FILE,
    PARAMS_PICKLE_FILE,
    PROGRESS_CSV_FILE,
    RESULT_JSON_FILE,
    SEARCHER_STATE_FILE,
    TRIAL_META_FILE,
    ExperimentDir,
)
from hpctune.storage.replay import trial_meta
from hpctune.storage.result_log import read_events
from hpctune.storage.secure import check_component

#: the words every ``StorageFullError`` says (``hpctune.errors``): an error event or a
#: driver's error holding them was an interrupted write, not the trial's own failure
FULL_STORAGE_MARK = "is full (or read-only); nothing written so far is lost"
#: hpctune's names for what a killed write leaves: ``.<file>.<random>.tmp`` (atomic writes of
#: hpctune's own files), ``.tmp_checkpoint_N.<random>`` and ``.old_checkpoint_N.<random>``
#: (checkpoint copies); a trainable's own temporary files in its trial directory stay
_ATOMIC = re.compile(r"^\.(?P<file>[^/]+)\.[a-z0-9_]{8}\.tmp$")
_COPY = re.compile(r"^\.(tmp|old)_checkpoint_\d+\.[a-z0-9_]{8}$")
_OWN_FILES = frozenset({*FIT_FILES, *MARKER_FILES, SEARCHER_STATE_FILE, TRIAL_META_FILE, PARAMS_FILE,
                        PARAMS_PICKLE_FILE, CONTROL_FILE, RESULT_JSON_FILE, PROGRESS_CSV_FILE})
_CHECKPOINT = re.compile(r"^checkpoint_\d+$")


def interrupted_by_full_storage(error: str | None, job_stderr: Path | None = None) -> bool:
    """True when a trial's recorded error is a full or read-only filesystem interrupting it:
    its error says so, or (its worker could not write its error event) its job's stderr does."""
    if error and FULL_STORAGE_MARK in error:
        return True
    if job_stderr is None:
        return False
    try:
        if not stat.S_ISREG(os.lstat(job_stderr).st_mode):
            return False  # never a link, a FIFO or a device
        with open(job_stderr, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 65536))
            return FULL_STORAGE_MARK.encode() in f.read()
    except OSError:
        return False


def unsafe_id(trial_id: object) -> str | None:
    """Why a trial id read from ``state.json`` is not one path component (a forged file), or None."""
    try:
        check_component(trial_id, "trial id")
    except Exception as exc:  # noqa: BLE001 - UnsafeFileError
        return str(exc)
    return None


def damaged_file(exp: ExperimentDir, tid: str) -> str | None:
    """Why the trial's files cannot be trusted (the file, the reason and the fix), or None."""
    params = exp.params_pickle_path(tid)  # params.json holds the config when there is no pickle
    legacy = exp.trial_meta_path(tid)  # an older hpctune's trial.json; else the log's meta event
    checks = ((params if params.exists() else exp.params_path(tid), lambda: exp.read_config(tid)),
              (exp.control_path(tid), lambda: exp.read_control(tid)),
              (legacy if legacy.exists() else exp.result_log_path(tid), lambda: trial_meta(exp, tid)),
              (exp.result_log_path(tid), lambda: check_log(exp.result_log_path(tid))))
    for path, check in checks:
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - unpickling and parsing raise anything
            return (f"Trial {tid} is quarantined: {path} cannot be read ({type(exc).__name__}: "
                    f"{str(exc)[:300]}). The other trials go on. Fix: restore that file (or delete it "
                    f"if it is {path.parent.name}/control.json), then resume with --resume-errored; "
                    f"or leave the trial out.")
    return None


def check_experiment_file(exp: ExperimentDir) -> None:
    """ExperimentStateError naming ``experiment.json`` when it is damaged: every trial's job reads
    it, so no trial could run (raised before the restore changes anything)."""
    path = exp.experiment_path
    try:
        spec = exp.read_experiment()
    except (ValueError, OSError) as exc:  # not JSON, not a regular file, too big
        spec = exc
    if not isinstance(spec, dict):
        why = f"{type(spec).__name__}: {spec}" if isinstance(spec, Exception) else "not a JSON object"
        raise ExperimentStateError(
            f"{path} is damaged ({why}); every trial's job reads its settings, so the experiment cannot "
            "be continued as it is. Fix: restore the file from a backup (or a copy of an experiment run "
            "with the same script), then resume again; the trials' results are untouched.")


def check_log(path: Path) -> None:
    """Raise ValueError when a result log names a checkpoint that is not a single file name
    (a crafted ``../..`` would be removed as the trial's old checkpoint) or holds a result
    that is not a JSON object; warn about a last line torn by a killed write."""
    for event in read_events(path):
        name = event.get(ev.CHECKPOINT)
        if name:
            check_component(name, f"checkpoint name in {path}")
        if ev.event_kind(event, path) is ev.EventKind.RESULT and not isinstance(event.get(ev.RESULT), dict):
            raise ValueError(f"a result event holds {type(event.get(ev.RESULT)).__name__}, not a JSON object")
    if torn_tail(path):
        warnings.warn(f"Trial {path.parent.name}: the last line of {path} was torn by a killed write; that "
                      "event is lost (its result is reported again when the trial resumes from its "
                      "last checkpoint).", stacklevel=2)


def torn_tail(path: Path) -> bool:
    """True when the log's last line has no newline (a writer killed in the middle of it)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


def orphan_checkpoints(trial_dir: Path, known: Iterable[str], log_path: Path) -> list[str]:
    """Checkpoints in ``trial_dir`` that neither the snapshot (``known``) nor the log names:
    persisted just before their result line was torn. Oldest first."""
    named = set(known) | {e.get(ev.CHECKPOINT) for e in read_events(log_path) if e.get(ev.CHECKPOINT)}
    try:
        entries = list(os.scandir(trial_dir))
    except OSError:
        return []
    found = [e.name for e in entries if _CHECKPOINT.match(e.name) and e.is_dir(follow_symlinks=False)
             and e.name not in named]
    return sorted(found)


def collect_leftovers(exp: ExperimentDir, trial_ids: Iterable[str], keep: set[str]) -> list[Path]:
    """Remove what killed writes left at the experiment's root and in the trials' directories
    (``trial_ids``: those no job is writing to now); ``keep``: staged exploit copies still
    pinned. Links are never followed: a linked entry with such a name is removed as a link."""
    removed = []
    for directory in (exp.root, *(exp.trial_dir(t) for t in trial_ids)):
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            if not _is_leftover(entry.name, in_trial=directory != exp.root) or entry.path in keep:
                continue
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _is_leftover(name: str, in_trial: bool) -> bool:
    atomic = _ATOMIC.match(name)
    if atomic:
        return atomic["file"] in _OWN_FILES
    return in_trial and (bool(_COPY.match(name)) or name.startswith(STAGE_PREFIX))


def strings_in(value: Any) -> set[str]:
    """Every string in a nested snapshot value (the staged paths pinned exploits still need)."""
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values())) if value else set()
    if isinstance(value, (list, tuple)):
        return set().union(*(strings_in(v) for v in value)) if value else set()
    return set()
