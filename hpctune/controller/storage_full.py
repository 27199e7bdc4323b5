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
from typing import TYPE_CHECKING

from hpctune.errors import StorageFullError
from hpctune.storage.atomic import is_storage_full, rewrite_in_place, storage_full_error
from hpctune.storage.summary import experiment_summary

if TYPE_CHECKING:
    from hpctune.controller.controller import Controller

#: what the summary (``hpctune ls``) says about an experiment stopped by a full filesystem
DISK_FULL_STATUS = "error: disk full"


def stop_for_full_storage(ctl: Controller, exc: OSError) -> None:
    """Stop the run for a full or read-only filesystem; any other error is raised again."""
    if not is_storage_full(exc):
        raise exc
    error = _as_error(ctl, exc)
    ctl.note(str(error))
    live = [t for t in ctl.live_trials if t.job_id]
    if live and not ctl.settings.keep_jobs_on_interrupt:
        ctl.backend.cancel([t.job_id for t in live])  # no control records: nothing can be written
        for trial in live:  # resumed from their checkpoints by `hpctune resume`
            trial.cancel_for_relaunch()


def save_at_end(ctl: Controller, status: str) -> None:
    """The driver's last snapshot; on a full filesystem the previous one stands and the run
    stops with ``StorageFullError`` (the summary is rewritten in place if it can be)."""
    try:
        ctl.save(status)
        return
    except OSError as exc:
        if not is_storage_full(exc):
            raise
        first = ctl.storage_full is None
        error = _as_error(ctl, exc)
        if first:
            ctl.note(str(error))
    with contextlib.suppress(OSError):  # the summary's own blocks are reused: often still possible
        summary = experiment_summary(ctl.trial_list, ctl.settings.metric, ctl.settings.mode,
                                     DISK_FULL_STATUS, ctl.backend.command_counts())
        rewrite_in_place(ctl.exp.summary_path, json.dumps(summary, indent=1, default=str).encode())
    ctl.note(f"the driver's state could not be saved ({error.reason}): its last snapshot stands, "
             "and the trials' result logs hold everything they wrote.")


def _as_error(ctl: Controller, exc: OSError) -> StorageFullError:
    """The first full-filesystem error of the run, kept on the controller."""
    if ctl.storage_full is None:
        ctl.storage_full = storage_full_error(exc.filename or ctl.exp.root / "state", exc)
        ctl.fatal_error = str(ctl.storage_full)
    return ctl.storage_full
