"""A full (or read-only) filesystem under a running driver: one clear message, a clean stop.

Any write of the driver (a snapshot, a trial's files, a logger's) that fails with ENOSPC,
EDQUOT or EROFS ends the loop here: the experiment's jobs are cancelled (they could not
write their results either; ``hpctune resume`` continues them from their checkpoints), the
state is saved if the filesystem still takes it (the last snapshot stands otherwise: it is
written atomically), the summary says ``error: disk full``, and ``fit()`` raises
``StorageFullError``: "the filesystem holding <path> is full (or read-only); nothing written
so far is lost; free space, then `hpctune resume <exp>`".
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable

from hpctune.controller.output import note
from hpctune.controller.snapshot import DriverParts
from hpctune.controller.state import RunState
from hpctune.errors import StorageFullError
from hpctune.storage.atomic import is_storage_full, rewrite_in_place, storage_full_error
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.summary import experiment_summary

#: what the summary (``hpctune ls``) says about an experiment stopped by a full filesystem
DISK_FULL_STATUS = "error: disk full"


def stop_for_full_storage(parts: DriverParts, exc: OSError) -> None:
    """Stop the run for a full or read-only filesystem; any other error is raised again."""
    if not is_storage_full(exc):
        raise exc
    error = _as_error(parts.state, parts.exp, exc)
    note(str(error))
    live = parts.table.submitted()
    if live and not parts.settings.keep_jobs_on_interrupt:
        parts.backend.cancel([t.job_id for t in live])  # no control records: nothing can be written
        for trial in live:  # resumed from their checkpoints by `hpctune resume`
            trial.cancel_for_relaunch()


def save_at_end(parts: DriverParts, save: Callable[[str], None], status: str) -> None:
    """The driver's last snapshot (``save``); on a full filesystem the previous one stands and
    the run stops with ``StorageFullError`` (the summary is rewritten in place if it can be)."""
    try:
        save(status)
        return
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        first = parts.state.storage_full is None
        error = _as_error(parts.state, parts.exp, exc)
        if first:
            note(str(error))
    with contextlib.suppress(OSError):  # the summary's own blocks are reused: often still possible
        summary = experiment_summary(parts.table.all, parts.settings.metric, parts.settings.mode,
                                     DISK_FULL_STATUS, parts.backend.command_counts())
        rewrite_in_place(parts.exp.summary_path, json.dumps(summary, indent=1, default=str).encode())
    note(f"the driver's state could not be saved ({error.reason}): its last snapshot stands, "
             "and the trials' result logs hold everything they wrote.")


def _as_error(state: RunState, exp: ExperimentDir, exc: OSError) -> StorageFullError:
    """The first full-filesystem error of the run, kept in its state."""
    if state.storage_full is None:
        state.storage_full = storage_full_error(exc.filename or exp.root / "state", exc)
        state.fatal_error = str(state.storage_full)
    return state.storage_full
