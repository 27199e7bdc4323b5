"""The TrialScheduler interface: results in, decisions out. Never touches Slurm, files or time."""

from __future__ import annotations

import enum
from typing import Any

from hpctune.objective import Objective
from hpctune.trial import TrialInfo


class Decision(str, enum.Enum):
    """What the controller should do with a trial after a result."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"


class TrialScheduler(Objective):
    """Base class of schedulers (FIFO, ASHA, median stopping, ...).

    Methods take an immutable ``TrialInfo`` and a result dict and return a ``Decision``.
    The controller enacts decisions (STOP: scancel the trial's array task).
    """

    CONTINUE = Decision.CONTINUE
    PAUSE = Decision.PAUSE
    STOP = Decision.STOP
    #: True for schedulers that compare a metric: the Tuner checks metric/mode up front
    metric_required = False

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        """Receive metric/mode from TuneConfig; False if this scheduler has its own, different ones."""
        return self._merge_metric_mode(metric, mode)

    def on_trial_add(self, trial: TrialInfo) -> None:
        pass

    def on_trial_result(self, trial: TrialInfo, result: dict) -> Decision:
        return Decision.CONTINUE

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        pass

    def on_trial_error(self, trial: TrialInfo) -> None:
        pass

    def on_trial_remove(self, trial: TrialInfo) -> None:
        pass

    def get_state(self) -> dict:
        return {"__dict__": dict(self.__dict__)}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state["__dict__"])

    def debug_string(self) -> str:
        return type(self).__name__


class FIFOScheduler(TrialScheduler):
    """Runs every trial to the end (the default)."""
