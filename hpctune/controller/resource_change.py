"""Enacting ``ChangeResources`` (ResourceChangingScheduler): pause, then resubmit with a new request.

A Slurm job's request cannot grow in place, so a change is a PAUSE: the trial checkpoints and
exits (its allocation is released), and when it is resubmitted the new request goes with it:
the trial's record, its ``trial.json`` (what ``get_trial_resources()`` reports inside the
trial) and a ``resources_changed`` event in its log (old and new request). The decided
resources wait in ``Trial.pending_resources``, which the driver snapshot keeps; a driver that
died before saving them resubmits the old request, and the scheduler decides again at the
trial's next result.
"""

from __future__ import annotations

import time

from hpctune.controller.enactor import Enactor
from hpctune.controller.output import append_event
from hpctune.core.resources import normalize_resources
from hpctune.errors import ConfigError
from hpctune.storage.events import EventKind, new_event
from hpctune.storage.experiment import ExperimentDir
from hpctune.tune.experiment.trial import Trial
from hpctune.tune.schedulers.trial_scheduler import ChangeResources


def begin_change(enactor: Enactor, trial: Trial, decision: ChangeResources) -> None:
    """Ask the trial to checkpoint and exit; its new request applies when it is resubmitted.
    Ignored while the trial is already pausing, stopping or being exploited."""
    busy = (trial.awaiting_restart or trial.stop_requested_at is not None
            or trial.trial_id in enactor.exploits.pending)
    if busy:
        return
    try:
        new = normalize_resources({**trial.resources, **dict(decision.resources)})
    except ConfigError as error:
        raise ConfigError(f"The resources_allocation_function of the ResourceChangingScheduler "
                          f"asked for {dict(decision.resources)!r} for trial {trial.trial_id}: "
                          f"{error}") from error
    if new == trial.resources:
        return
    trial.request_resources(new)
    enactor.request_pause(trial)


def apply_pending(exp: ExperimentDir, trial: Trial) -> None:
    """Before a resubmission: the decided request becomes the trial's (record, trial.json, log)."""
    new = trial.pending_resources
    if not new:
        return
    old = trial.apply_resources()
    meta = exp.read_trial_meta(trial.trial_id)
    exp.write_trial_meta(trial.trial_id, {**meta, "resources": new})
    append_event(exp, trial, new_event(EventKind.RESOURCES_CHANGED, trial_id=trial.trial_id,
                                       old_resources=old, new_resources=new,
                                       at_iteration=trial.max_iteration, time=time.time()))
