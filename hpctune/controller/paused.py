"""Resuming paused trials: the scheduler says, each step, which may go on.

A PAUSED trial (its worker checkpointed and exited on the scheduler's PAUSE) waits without a
job. Before each launch the scheduler's ``resume_decision`` is asked for each one: None holds it
(a synchronous barrier not reached yet), CONTINUE resubmits it from its checkpoint, STOP ends
it, and an ``Exploit`` (synchronous PBT) resubmits it from the donor's checkpoint with a new
config, once the donor's own pause has brought its newest checkpoint.
"""

from __future__ import annotations

import time
from typing import Any

from hpctune.controller.enactor import Enactor
from hpctune.controller.exploit import Exploits
from hpctune.controller.output import append_event
from hpctune.controller.state import TrialTable
from hpctune.storage.events import EventKind, new_event
from hpctune.tune.experiment.trial import Trial, TrialStatus
from hpctune.tune.schedulers.trial_scheduler import Decision, Exploit, SchedulerDecision


class PausedTrials:
    """Asks the scheduler about paused trials and enacts its answer (see the module docstring)."""

    def __init__(self, table: TrialTable, enactor: Enactor, exploits: Exploits):
        self.table, self.enactor, self.exploits = table, enactor, exploits
        self._held: dict[str, SchedulerDecision] = {}  # exploits waiting for their donor's pause

    def ready(self, paused: list[Trial]) -> list[Trial]:
        """Those of the ``paused`` trials the scheduler lets go on now, in order; it may end
        some (STOP) or have them exploit a donor (enacted here) on the way."""
        return [trial for trial in paused if self._may_go_on(trial)]

    def _may_go_on(self, trial: Trial) -> bool:
        decision = self._held.pop(trial.trial_id, None)
        if decision is None:
            decision = self.enactor.deciders.scheduler.resume_decision(trial.info)
        if decision is None:
            return False
        if isinstance(decision, Exploit):
            if self._donor_pausing(decision.donor_trial_id):
                self._held[trial.trial_id] = decision  # its newest checkpoint is on the way
                return False
            self.exploits.enact_now(trial, decision)
            return True
        if decision is Decision.STOP:
            self._end(trial)
            return False
        return True

    def _donor_pausing(self, donor_id: str) -> bool:
        donor = self.table.trials.get(donor_id)
        return (donor is not None and not donor.is_finished and donor.awaiting_restart
                and donor.job_id is not None and donor.status is not TrialStatus.PAUSED)

    def _end(self, trial: Trial) -> None:
        """A scheduler stopped a paused trial: its log says so, and it ends (no job to cancel)."""
        append_event(self.enactor.exp, trial, new_event(
            EventKind.STOPPED, reason="stopped by scheduler while paused", trial_id=trial.trial_id,
            time=time.time()), fsync=True)
        self.enactor.terminate(trial, early=True)

    def get_state(self) -> dict[str, Any]:
        return {"resumes": dict(self._held)}

    def set_state(self, state: dict[str, Any]) -> None:
        self._held = dict(state.get("resumes") or {})
