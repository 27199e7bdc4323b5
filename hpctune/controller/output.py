"""What the driver writes besides its snapshot: its events in a trial's result log, the
checkpoints a trial keeps (``CheckpointConfig(num_to_keep)``), notes for the person at the terminal."""

from __future__ import annotations

import shutil
import sys
from typing import Any

from hpctune.config import CheckpointConfig
from hpctune.core.metrics import flat_value
from hpctune.storage.checkpoints import checkpoints_to_delete
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.secure import check_component, child_path
from hpctune.tune.experiment.trial import Trial


def append_event(exp: ExperimentDir, trial: Trial, event: dict[str, Any], fsync: bool = False) -> None:
    """Append a driver's event to the trial's result log (under the log's lock), so that what
    the driver decided is in the log a replay reads."""
    log = exp.result_log(trial.trial_id)
    try:
        log.append(event, fsync=fsync)
    finally:
        log.close()


def keep_checkpoint(trial: Trial, name: str, result: dict[str, Any], config: CheckpointConfig) -> None:
    """Track the trial's new checkpoint ``name``; delete those beyond ``num_to_keep``."""
    check_component(name, "checkpoint name")  # before it is the trial's: never a path outside
    attribute = config.checkpoint_score_attribute
    trial.checkpoint = name
    trial.checkpoints = [c for c in trial.checkpoints if c[0] != name]
    trial.checkpoints.append([name, flat_value(result, attribute) if attribute else None])
    doomed = checkpoints_to_delete([tuple(c) for c in trial.checkpoints], config.num_to_keep,
                                   config.checkpoint_score_order, by_score=bool(attribute))
    for doomed_name in doomed:
        shutil.rmtree(child_path(trial.path, doomed_name, "checkpoint name"), ignore_errors=True)
    trial.checkpoints = [c for c in trial.checkpoints if c[0] not in doomed]


def note(message: str) -> None:
    """A message for the person at the terminal."""
    print(f"hpctune: {message}", file=sys.stderr)
