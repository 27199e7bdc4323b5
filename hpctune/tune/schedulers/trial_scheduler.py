"""The TrialScheduler interface: results in, decisions out. Never touches Slurm, files or time."""

from __future__ import annotations

import enum
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hpctune.core.decision_points import EVERY, NEVER, DecisionPoints
from hpctune.core.objective import Objective
from hpctune.tune.experiment.trial import TrialInfo


class Decision(str, enum.Enum):
    """What the controller should do with a trial after a result."""

    CONTINUE = "CONTINUE"
    PAUSE = "PAUSE"
    STOP = "STOP"


@dataclass(frozen=True)
class Exploit:
    """PBT's exploit: continue this trial from ``donor_trial_id``'s latest checkpoint with
    ``new_config``. The controller stops the trial, copies the donor's checkpoint into its
    directory, rewrites its config and resubmits it; the trial keeps its id.
    ``log_config``: write Ray's ``pbt_global.txt`` / ``pbt_policy_<trial>.txt`` rows;
    ``experiment_tag``: the trial's new tag (Ray's ``<tag>@perturbed[lr=0.012]``), if any."""

    donor_trial_id: str
    new_config: Mapping[str, Any] = field(default_factory=dict)
    log_config: bool = True
    experiment_tag: str | None = None


@dataclass(frozen=True)
class ChangeResources:
    """ResourceChangingScheduler's decision: this trial's Slurm request becomes ``resources``
    (``{"cpu": 2, "gpu": 1}``; keys not named keep their value). The controller checkpoints the
    trial and stops its job (a PAUSE), then resubmits it with the new request; inside the
    trial ``get_trial_resources()`` reports the new amounts."""

    resources: Mapping[str, Any]


#: what a scheduler may return for a trial
SchedulerDecision = Decision | Exploit | ChangeResources
#: Ray's "nothing to do" (its schedulers return it after pausing a trial themselves)
RAY_NOOP = "NOOP"


#: the hooks the driver calls, with how many arguments each takes here (Ray's take one more:
#: the ``tune_controller`` first)
HOOK_ARITY = {"on_trial_add": 1, "on_trial_result": 2, "on_trial_complete": 2,
              "on_trial_error": 1, "on_trial_remove": 1}


class TrialScheduler(Objective):
    """Base class of schedulers (FIFO, ASHA, median stopping, ...).

    Methods take an immutable ``TrialInfo`` and a result dict and return a ``Decision``.
    The controller enacts decisions (STOP: scancel the trial's array task).

    A scheduler written to Ray's signatures (``on_trial_result(self, tune_controller, trial,
    result)``, ``on_trial_add(self, tune_controller, trial)``, ...) works too: the driver sees
    the extra argument (``ray_style_hooks``) and passes a read-only view of the run
    (``get_trials()``, ``get_live_trials()``) and the trial's full record. Decisions may be
    ``TrialScheduler.STOP`` or Ray's strings (``"STOP"``).
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

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        """Where ``on_trial_result`` may return anything but CONTINUE for ``trial`` (asked at each
        launch; ``core/decision_points``): the trial's worker waits for the verdict there. A
        superset is safe. Default: every result (a subclass that decides in its own
        ``on_trial_result`` gets this too, whatever its parent declared)."""
        return EVERY

    def on_trial_error(self, trial: TrialInfo) -> None:
        pass

    def on_trial_remove(self, trial: TrialInfo) -> None:
        pass

    def resume_decision(self, trial: TrialInfo) -> SchedulerDecision | None:
        """What to do with a PAUSED trial now: None keeps it paused (a barrier not yet
        reached by every trial), CONTINUE resubmits it, STOP ends it, ``Exploit`` resubmits
        it from a donor's checkpoint with a new config. Asked once per driver step."""
        return Decision.CONTINUE

    def initial_config(self, trial: TrialInfo) -> Mapping[str, Any] | None:
        """A config to start a new trial with instead of the searcher's (PBT fills keys the
        search space lacks from its mutations), or None to keep it."""
        return None

    def get_state(self) -> dict:
        return {"__dict__": dict(self.__dict__)}

    def set_state(self, state: dict) -> None:
        self.__dict__.update(state["__dict__"])

    def choose_trial_to_run(self, tune_controller: Any) -> Any:
        """Ray's hook to pick the next trial: not called here, Slurm decides the order."""
        return None

    def debug_string(self) -> str:
        return type(self).__name__


def ray_style_hooks(scheduler: Any) -> frozenset[str]:
    """The hooks of ``scheduler`` written to Ray's signature, with ``tune_controller`` first
    (one more positional parameter than ours); looked at once, when the experiment starts."""
    found = set()
    for hook, arity in HOOK_ARITY.items():
        method = getattr(scheduler, hook, None)
        if method is None:
            continue
        try:
            params = inspect.signature(method).parameters.values()
        except (TypeError, ValueError):
            continue
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind is p.VAR_POSITIONAL for p in params):
            continue  # f(*args): ours
        if len(positional) == arity + 1:
            found.add(hook)
    return frozenset(found)


class FIFOScheduler(TrialScheduler):
    """Runs every trial to the end (the default)."""

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        return NEVER
