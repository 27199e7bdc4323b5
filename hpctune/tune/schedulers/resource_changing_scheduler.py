"""``ResourceChangingScheduler``: wraps another scheduler and changes the resources of live trials.

As Ray's: after each result the wrapped scheduler decides first; when it says CONTINUE, the
``resources_allocation_function`` (``DistributeResources()`` by default) may name new resources
for the trial, and the decision becomes ``ChangeResources(new)``. On Slurm a job's request
cannot grow in place, so the controller enacts it as a pause: the trial checkpoints and exits,
and is resubmitted from that checkpoint with the new request (``get_trial_resources()`` inside
the trial reports it). Trials must start with the same resources (the "base" request, the
first trial's). Decisions stay pure: the function sees the scheduler's own record of the
live trials (their resources and latest results), not the driver.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.distribute_resources import (
    _SPELLINGS,
    KEYS,
    DistributeResources,
    DistributeResourcesToTopJob,
    PlacementGroupFactory,
    amounts,
)
from hpctune.tune.schedulers.trial_scheduler import (
    ChangeResources,
    Decision,
    FIFOScheduler,
    SchedulerDecision,
    TrialScheduler,
)

__all__ = ["DistributeResources", "DistributeResourcesToTopJob", "PlacementGroupFactory",
           "ResourceChangingScheduler", "TrialRecord"]

STATE_VERSION = 1
#: the default allocation function: a new ``DistributeResources()`` per scheduler
DEFAULT_FUNCTION: Any = DistributeResources()
AllocationFunction = Callable[[Any, Any, dict, Any], Any]


@dataclass(frozen=True)
class TrialRecord:
    """A live trial as the allocation function sees it: id, config, resources, latest result."""

    trial_id: str
    config: Mapping[str, Any] = field(default_factory=dict)
    experiment_tag: str = ""
    resources: Mapping[str, Any] = field(default_factory=dict)
    last_result: Mapping[str, Any] = field(default_factory=dict)

    @property
    def placement_group_factory(self) -> PlacementGroupFactory:
        """The trial's CPUs/GPUs as Ray's one-bundle request."""
        held = amounts(self.resources)
        return PlacementGroupFactory([{"CPU": held["cpu"], "GPU": held["gpu"]}])


class PopulationView:
    """The ``tune_controller`` an allocation function gets: the live trials, the cluster's size."""

    def __init__(self, records: list[TrialRecord], cluster: Mapping[str, Any] | None):
        self._records = records
        self.cluster_resources = dict(cluster or {})

    def get_live_trials(self) -> list[TrialRecord]:
        return list(self._records)

    def get_trials(self) -> list[TrialRecord]:
        return list(self._records)

    @property
    def _resource_updater(self) -> _ClusterCounts:
        """Ray's private accessor of the cluster's CPUs/GPUs, which its docs' example uses."""
        return _ClusterCounts(amounts(self.cluster_resources))


@dataclass(frozen=True)
class _ClusterCounts:
    total: Mapping[str, float]

    def get_num_cpus(self) -> float:
        return self.total["cpu"]

    def get_num_gpus(self) -> float:
        return self.total["gpu"]


class ResourceChangingScheduler(TrialScheduler):
    """Changes live trials' resources with ``resources_allocation_function`` (Ray's API).

    Args:
        base_scheduler: the scheduler that decides CONTINUE/PAUSE/STOP (default FIFO).
        resources_allocation_function: ``f(tune_controller, trial, result, scheduler)`` returning
            the trial's new resources (a dict such as ``{"cpu": 2}`` or ``{"CPU": 2, "GPU": 1}``,
            or a one-bundle ``PlacementGroupFactory``), or None to keep them. Default:
            ``DistributeResources()``. None: resources never change.
    """

    wants_cluster_resources = True

    def __init__(self, base_scheduler: TrialScheduler | None = None,
                 resources_allocation_function: AllocationFunction | None = DEFAULT_FUNCTION):
        super().__init__()
        if resources_allocation_function is DEFAULT_FUNCTION:
            resources_allocation_function = DistributeResources()
        if resources_allocation_function is None:
            warnings.warn("ResourceChangingScheduler(resources_allocation_function=None): no trial's "
                          "resources will ever change. Pass DistributeResources() or a function.",
                          stacklevel=2)
        elif not callable(resources_allocation_function):
            raise ConfigError(
                f"The value of `resources_allocation_function` is {resources_allocation_function!r}, "
                "but must be callable as f(tune_controller, trial, result, scheduler), e.g. "
                "DistributeResources().")
        if base_scheduler is not None and not isinstance(base_scheduler, TrialScheduler):
            raise ConfigError(f"The value of `base_scheduler` is {base_scheduler!r}, but must be an "
                              "hpctune scheduler such as ASHAScheduler(...) (or None for FIFO).")
        self._base_scheduler = base_scheduler or FIFOScheduler()
        self._resources_allocation_function = resources_allocation_function
        self._base_trial_resources: dict[str, Any] | None = None
        self._reallocated_trial_ids: set[str] = set()
        self._live: dict[str, TrialRecord] = {}
        self.cluster_resources: dict[str, float] | None = None

    # -- what the Tuner asks ---------------------------------------------------------------------
    @property
    def metric(self) -> Any:
        return self._base_scheduler.metric or self._metric

    @property
    def mode(self) -> Any:
        return self._base_scheduler.mode or self._mode

    @property
    def metric_required(self) -> bool:  # type: ignore[override]
        return bool(getattr(self._base_scheduler, "metric_required", False))

    @property
    def base_trial_resources(self) -> PlacementGroupFactory | None:
        """The first trial's CPUs/GPUs, as Ray gives them (a ``PlacementGroupFactory``)."""
        if self._base_trial_resources is None:
            return None
        held = amounts(self._base_trial_resources)
        return PlacementGroupFactory([{"CPU": held["cpu"], "GPU": held["gpu"]}])

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        self._merge_metric_mode(metric, mode)
        return self._base_scheduler.set_search_properties(metric, mode, **spec)

    def set_cluster_resources(self, resources: Mapping[str, Any] | None) -> None:
        """The CPUs/GPUs the trials may share (the driver reads the partition's, once), with
        ``node_cpu``/``node_gpu``, the most one node has, when known."""
        if not resources:
            self.cluster_resources = None
            return
        nodes = {k: float(resources[k]) for k in ("node_cpu", "node_gpu") if resources.get(k) is not None}
        self.cluster_resources = {**amounts(resources), **nodes}

    # -- the hooks ---------------------------------------------------------------------------------
    def on_trial_add(self, trial: TrialInfo) -> None:
        if self._base_trial_resources is None:
            self._base_trial_resources = dict(trial.resources)
        elif (trial.trial_id not in self._reallocated_trial_ids
              and amounts(trial.resources) != amounts(self._base_trial_resources)):
            raise ConfigError(
                f"ResourceChangingScheduler needs every trial to start with the same resources: the "
                f"first trial had {self._base_trial_resources}, trial {trial.trial_id} has "
                f"{dict(trial.resources)}. Fix: give with_resources(...) one fixed request.")
        self._remember(trial)
        self._base_scheduler.on_trial_add(trial)

    def on_trial_result(self, trial: TrialInfo, result: dict) -> SchedulerDecision:
        self._remember(trial, result)
        decision = self._base_scheduler.on_trial_result(trial, result)
        if decision in (None, Decision.CONTINUE, "CONTINUE"):
            new = self.reallocate_trial_resources_if_needed(trial, result)
            if new is not None:
                self._reallocated_trial_ids.add(trial.trial_id)
                return ChangeResources(new)
        return decision

    def resume_decision(self, trial: TrialInfo) -> SchedulerDecision | None:
        self._remember(trial)
        return self._base_scheduler.resume_decision(trial)

    def initial_config(self, trial: TrialInfo) -> Mapping[str, Any] | None:
        return self._base_scheduler.initial_config(trial)

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        self._live.pop(trial.trial_id, None)
        self._base_scheduler.on_trial_complete(trial, result)

    def on_trial_error(self, trial: TrialInfo) -> None:
        self._live.pop(trial.trial_id, None)
        self._base_scheduler.on_trial_error(trial)

    def on_trial_remove(self, trial: TrialInfo) -> None:
        self._live.pop(trial.trial_id, None)
        self._base_scheduler.on_trial_remove(trial)

    # -- the decision ------------------------------------------------------------------------------
    def reallocate_trial_resources_if_needed(self, trial: TrialInfo, result: dict) -> dict | None:
        """The allocation function's new resources for ``trial``, or None when it names none or
        the ones the trial has."""
        function = self._resources_allocation_function
        if function is None:
            return None
        for name, value in (("metric", self.metric), ("mode", self.mode)):
            if not getattr(function, name, None):  # as Ray: the function inherits the objective
                with contextlib.suppress(AttributeError):
                    setattr(function, name, value)
        record = self._live[trial.trial_id]
        view = PopulationView(list(self._live.values()), self.cluster_resources)
        returned = function(view, record, result, self)
        if not returned:
            return None
        new = {**dict(record.resources), **_request(returned, function)}
        return None if _same(new, record.resources) else new

    def _remember(self, trial: TrialInfo, result: Mapping[str, Any] | None = None) -> None:
        old = self._live.get(trial.trial_id)
        last = result if result is not None else (old.last_result if old else {})
        self._live[trial.trial_id] = TrialRecord(trial.trial_id, trial.config, trial.experiment_tag,
                                                 dict(trial.resources), dict(last))

    # -- state ---------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        return {"version": STATE_VERSION, "base": self._base_scheduler.get_state(),
                "base_trial_resources": self._base_trial_resources,
                "reallocated": sorted(self._reallocated_trial_ids),
                "live": [asdict(r) for r in self._live.values()],
                "cluster_resources": self.cluster_resources, "metric": self._metric,
                "mode": self._mode}

    def set_state(self, state: dict) -> None:
        check_state_version(state, STATE_VERSION, self)
        self._base_scheduler.set_state(state["base"])
        self._base_trial_resources = state["base_trial_resources"]
        self._reallocated_trial_ids = set(state["reallocated"])
        self._live = {r["trial_id"]: TrialRecord(**r) for r in state["live"]}
        self.cluster_resources = self.cluster_resources or state["cluster_resources"]
        self._metric, self._mode = state["metric"], state["mode"]

    def debug_string(self) -> str:
        return f"(ResourceChangingScheduler) {self._base_scheduler.debug_string()}"


def _request(value: Any, function: Any) -> dict[str, Any]:
    """An allocation function's answer as our resource keys (``{"CPU": 2}`` -> ``{"cpu": 2}``)."""
    if isinstance(value, PlacementGroupFactory):
        return amounts(value)
    if isinstance(value, Mapping):
        return {_SPELLINGS.get(k, k): v for k, v in value.items()}
    name = getattr(function, "__name__", type(function).__name__)
    raise ConfigError(f"The resources_allocation_function {name} returned {value!r}, but must return "
                      "a dict such as {'cpu': 2, 'gpu': 1}, a PlacementGroupFactory, or None.")


def _same(new: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
    keys = set(new) | set(old) | set(KEYS)
    return all(new.get(k, 0) == old.get(k, 0) for k in keys)
