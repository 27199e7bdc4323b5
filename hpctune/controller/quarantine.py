"""One trial's damaged file read during a run: that trial is quarantined, the run goes on.

A restore quarantines a trial whose files cannot be trusted (``controller/recovery``); this is
the same for what the driver reads while it runs. A result log that names a checkpoint which is
not a single file name (a crafted ``../x``: removing it as an old checkpoint would reach outside
the experiment) ends that trial in ERROR, not retried (its log would say the same again), with
a message naming the trial, the file and the fix; its job is cancelled, and the driver goes on
with the other trials.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from hpctune.controller.output import note

if TYPE_CHECKING:
    from hpctune.controller.enactor import Enactor
    from hpctune.tune.experiment.trial import Trial


def quarantine_message(trial_id: str, path: Path | str, exc: BaseException) -> str:
    """What the trial's error says: the trial, the file, why, and what to do."""
    return (
        f"Trial {trial_id} is quarantined: {path} cannot be trusted ({type(exc).__name__}: "
        f"{str(exc)[:300]}). The other trials go on. Fix: restore that file from a backup (or "
        "remove the trial's directory), then resume with --resume-errored; or leave the trial out."
    )


def quarantine_running(
    enactor: Enactor, trial: Trial, path: Path | str, exc: BaseException
) -> None:
    """End ``trial`` in ERROR for its damaged file ``path`` (not retried), cancel its job if it
    still runs, and tell the person at the terminal; the rest of the run is untouched."""
    message = quarantine_message(trial.trial_id, path, exc)
    note(message)
    if trial.job_id and not trial.is_finished:
        enactor.backend.cancel([trial.job_id])
    enactor.fail(trial, message)
