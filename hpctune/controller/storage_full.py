"""A full (or read-only) filesystem under a running driver: one clear message, a clean stop.

Any write of the driver (a snapshot, a trial's files, a logger's) that fails with ENOSPC,
EDQUOT or EROFS ends the loop here: the experiment's jobs are cancelled (they could not
write their results either; ``hpctune resume`` continues them from their checkpoints), the
state is saved if the filesystem still takes it (the last snapshot stands otherwise: it is
written atomically), the summary says ``error: disk full``, and ``fit()`` raises
``StorageFullError``: "the filesystem holding <path> is full (or read-only); nothing written
so far is lost; free space, then `hpctune resume <exp>`".

A trial's job that meets the full disk first (its ``report()`` or checkpoint fails, or it
dies unable to write its error, which its stderr says) stops the run the same way, with or
without ``FailureConfig(max_failures)``: the trial is not failed (nor a retry spent), it waits
to be resumed from its checkpoint (``interrupted_run``, ``stop_after_interruption``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from hpctune.controller.output import note
from hpctune.controller.recovery import interrupted_by_full_storage
from hpctune.controller.state import RunState
from hpctune.errors import StorageFullError
from hpctune.storage.atomic import is_storage_full, rewrite_in_place, storage_full_error
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.summary import experiment_summary

if TYPE_CHECKING:
    from hpctune.controller.snapshot import DriverParts
    from hpctune.tune.experiment.trial import Trial

#: what the summary (``hpctune ls``) says about an experiment stopped by a full filesystem
DISK_FULL_STATUS = "error: disk full"
#: the path a worker's StorageFullError names (``hpctune.errors``)
_HOLDING = re.compile(r"the filesystem holding (?P<path>.+?) is full \(or read-only\)")


def interrupted_run(exp: ExperimentDir, trial: Trial, error: str | None) -> StorageFullError | None:
    """The ``StorageFullError`` that ended ``trial``'s run, when its error (or, for a worker that
    could not write its error, its job's stderr) says a full or read-only filesystem ended it;
    None for the trial's own failure."""
    stderr = exp.job_log_paths(trial.job_id)[1] if trial.job_id else None
    if not interrupted_by_full_storage(error, stderr):
        return None
    match = _HOLDING.search(error or "")
    path = match["path"] if match else str(exp.trial_dir(trial.trial_id))
    return StorageFullError(path, str(exp.root), f"trial {trial.trial_id}'s job could not write", errno.ENOSPC)


def stop_after_interruption(state: RunState, trial: Trial, error: StorageFullError) -> None:
    """A full filesystem ended ``trial``'s run: it waits to be resumed from its checkpoint (not
    failed, no retry spent), and the run stops at the end of this step (``Controller.step``
    raises ``state.storage_full``; ``stop_for_full_storage`` cancels the other jobs)."""
    trial.mark_for_relaunch()
    if state.storage_full is None:
        state.storage_full, state.fatal_error = error, str(error)


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
        tally, counts = parts.snapshots.tally, parts.backend.command_counts()
        summary = (tally.summary(DISK_FULL_STATUS, counts) if tally is not None else  # as last written
                   experiment_summary(parts.table.all, parts.settings.metric, parts.settings.mode,
                                      DISK_FULL_STATUS, counts))
        compact = json.dumps(summary, separators=(",", ":"), default=str)  # no larger than it was
        rewrite_in_place(parts.exp.summary_path, compact.encode())
    note(f"the driver's state could not be saved ({error.reason}): its last snapshot stands, "
             "and the trials' result logs hold everything they wrote.")


def _as_error(state: RunState, exp: ExperimentDir, exc: OSError) -> StorageFullError:
    """The first full-filesystem error of the run, kept in its state."""
    if state.storage_full is None:
        state.storage_full = storage_full_error(exc.filename or exp.root / "state", exc)
        state.fatal_error = str(state.storage_full)
    return state.storage_full
