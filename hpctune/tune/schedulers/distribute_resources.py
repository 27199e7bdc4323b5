"""Resource allocation functions for ``ResourceChangingScheduler``: Ray's ``DistributeResources``
and ``DistributeResourcesToTopJob``, for trials that are one Slurm request each (CPUs, GPUs).

Their decisions follow Ray's (with one bundle per trial):

* ``increase_by`` is the unit a trial grows or shrinks by (default: 1 GPU when the base request
  has GPUs, else 1 CPU); ``increase_by_times`` caps the units a trial may add (< 1: no cap).
* The resources to share are the cluster's (``scheduler.cluster_resources``: the partition's
  CPUs and GPUs, read once by the driver) less ``reserve_resources``; *free* is that less what
  the live trials request now.
* ``DistributeResources``: a trial may hold at most the share it would get if the resources
  above the base requests were dealt out one unit at a time, round robin, to every live trial;
  it takes as many whole units of the free resources as it can up to that share, and gives
  units back when more is requested than exists (never going below its base request).
* ``DistributeResourcesToTopJob``: the best live trial by ``metric``/``mode`` takes all the
  free units; the others keep what they have unless more is requested than exists.
* Nothing changes at a result before ``training_iteration`` 1.
* (Not in Ray) a request never grows past the largest node's CPUs/GPUs: a Slurm job of one
  node asking for more would never start.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from hpctune.core.objective import finite_or_none
from hpctune.errors import ConfigError

KEYS = ("cpu", "gpu")
_SPELLINGS = {"cpu": "cpu", "CPU": "cpu", "num_cpus": "cpu", "gpu": "gpu", "GPU": "gpu",
              "num_gpus": "gpu"}


class PlacementGroupFactory:
    """Ray's resource request of a trial, reduced to what a Slurm job is: one bundle
    (``[{"CPU": 2, "GPU": 1}]``). A resource allocation function may return one; several
    bundles (spread over nodes) are not in this version of hpctune."""

    def __init__(self, bundles: list[Mapping[str, Any]], strategy: str = "PACK"):
        if not isinstance(bundles, list) or len(bundles) != 1 or not isinstance(bundles[0], Mapping):
            raise ConfigError(
                f"PlacementGroupFactory({bundles!r}): hpctune gives a trial one Slurm request, so "
                "pass exactly one bundle, e.g. PlacementGroupFactory([{'CPU': 2, 'GPU': 1}]); for "
                "several nodes per trial use with_resources(trainable, {'nodes': N}).")
        self.bundles = [dict(bundles[0])]
        self.strategy = strategy

    @property
    def required_resources(self) -> dict[str, float]:
        """The bundle's amounts, as Ray names them (``{"CPU": 2, "GPU": 1}``)."""
        return {k: v for k, v in self.bundles[0].items() if v}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroupFactory) and amounts(self) == amounts(other)

    def __hash__(self) -> int:
        return hash(tuple(sorted(amounts(self).items())))

    def __repr__(self) -> str:
        return f"PlacementGroupFactory({self.bundles!r})"


def amounts(resources: Any) -> dict[str, float]:
    """``{"cpu": n, "gpu": m}`` of a resource dict in our or Ray's spelling ("CPU", "num_cpus")
    or of a ``PlacementGroupFactory``; keys other than CPUs and GPUs are left out."""
    if isinstance(resources, PlacementGroupFactory):
        resources = resources.bundles[0]
    found = {"cpu": 0.0, "gpu": 0.0}
    for key, value in (resources or {}).items():
        if key in _SPELLINGS and value is not None:
            found[_SPELLINGS[key]] = float(value)
    return found


def _unit_dict(name: str, value: Mapping[str, Any] | None) -> dict[str, float]:
    """A user's ``increase_by``/``reserve_resources``: CPUs/GPUs only, numbers >= 0."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"The value of `{name}` is {value!r}, but must be a dict such as {{'CPU': 1}}.")
    unknown = [k for k in value if k not in _SPELLINGS]
    bad = [k for k, v in value.items() if finite_or_none(v) is None or v < 0]
    if unknown or bad:
        raise ConfigError(f"The value of `{name}` is {dict(value)!r}, but may hold only 'CPU' and "
                          "'GPU', each a number >= 0 (e.g. {'CPU': 1} or {'GPU': 1}).")
    return {k: v for k, v in amounts(value).items() if v}


class DistributeResources:
    """Shares the free CPUs/GPUs evenly between the live trials (Ray's default function).

    Args (as Ray's):
        add_bundles: must be False (one Slurm request per trial).
        increase_by: the unit a trial grows by, e.g. ``{"GPU": 1}``; default 1 GPU if the
            base request has GPUs, else 1 CPU.
        increase_by_times: the most units a trial may add (< 1: no cap).
        reserve_resources: CPUs/GPUs never handed out, e.g. ``{"CPU": 2}``.
    """

    def __init__(self, add_bundles: bool = False, increase_by: Mapping[str, float] | None = None,
                 increase_by_times: int = -1, reserve_resources: Mapping[str, float] | None = None):
        if add_bundles:
            raise ConfigError(
                "DistributeResources(add_bundles=True) is not in this version of hpctune: a trial "
                "is one Slurm request, so its CPUs/GPUs grow in place. Use add_bundles=False.")
        increase = _unit_dict("increase_by", increase_by)
        if increase_by is not None and not increase:
            raise ConfigError(f"The value of `increase_by` is {dict(increase_by)!r}, but must add "
                              "at least one CPU or GPU, e.g. {'CPU': 1}.")
        if isinstance(increase_by_times, bool) or not isinstance(increase_by_times, int):
            raise ConfigError(f"The value of `increase_by_times` is {increase_by_times!r}, but must "
                              "be a whole number (< 1: no cap).")
        self.add_bundles = False
        self.increase_by = increase
        self.increase_by_times = increase_by_times
        self.reserve_resources = _unit_dict("reserve_resources", reserve_resources)
        self.metric: str | None = None
        self.mode: str | None = None

    def __call__(self, tune_controller: Any, trial: Any, result: Mapping[str, Any],
                 scheduler: Any) -> dict[str, float] | None:
        """The trial's new CPUs/GPUs (``{"cpu": 4, "gpu": 0}``), or None to keep them."""
        if (finite_or_none(result.get("training_iteration")) or 0) < 1:
            return None
        base = amounts(scheduler.base_trial_resources or {"cpu": 1, "gpu": 0})
        unit = self._unit(base)
        total = self._total(scheduler)
        live = tune_controller.get_live_trials()
        used = {k: sum(amounts(t.resources)[k] for t in live) for k in KEYS}
        free = {k: total[k] - used[k] for k in KEYS}
        current = amounts(trial.resources)
        added = self._new_added(trial, live, base, unit, total, free,
                                {k: current[k] - base[k] for k in KEYS})
        return _fit_node({k: base[k] + added[k] for k in KEYS}, base, unit, scheduler)

    # -- the decisions -----------------------------------------------------------------------------
    def _new_added(self, trial: Any, live: list[Any], base: dict[str, float], unit: dict[str, float],
                   total: dict[str, float], free: dict[str, float],
                   added: dict[str, float]) -> dict[str, float]:
        """What the trial holds above its base request from now on."""
        share = self._even_share(len(live), base, unit, total)
        return self._grow(added, unit, free, share)

    def _even_share(self, trials: int, base: dict[str, float], unit: dict[str, float],
                    total: dict[str, float]) -> int:
        """Units the first trial gets when everything above the base requests is dealt out one
        unit per trial per round (capped by ``increase_by_times``): the most any trial takes."""
        spare = {k: total[k] - base[k] * max(trials, 1) for k in KEYS}
        if any(spare[k] < unit.get(k, 0.0) for k in KEYS):
            return 0
        units = min(int(spare[k] // unit[k]) for k in KEYS if unit.get(k))
        share = math.ceil(units / max(trials, 1))
        return min(share, self.increase_by_times) if self.increase_by_times > 0 else share

    def _grow(self, added: dict[str, float], unit: dict[str, float], free: dict[str, float],
              share: int = -1) -> dict[str, float]:
        """Take as many whole units of ``free`` as exist (give units back when negative), up to
        ``share`` units (and ``increase_by_times``)."""
        times = _multiplier(unit, free)
        if times < 0:
            return {k: max(added[k] + unit.get(k, 0.0) * times, 0.0) for k in KEYS}
        if times == 0:
            return dict(added)
        grown = {k: added[k] + unit.get(k, 0.0) * times for k in KEYS}
        cap = self._cap(share)
        return {k: min(grown[k], unit.get(k, 0.0) * cap) for k in KEYS} if cap > 0 else grown

    def _cap(self, share: int) -> int:
        if share > 0 and self.increase_by_times > 0:
            return min(share, self.increase_by_times)
        return self.increase_by_times if self.increase_by_times > 0 else share

    def _unit(self, base: dict[str, float]) -> dict[str, float]:
        if self.increase_by:
            return dict(self.increase_by)
        return {"gpu": 1.0} if base["gpu"] else {"cpu": 1.0}

    def _total(self, scheduler: Any) -> dict[str, float]:
        cluster = getattr(scheduler, "cluster_resources", None)
        if not cluster:
            raise ConfigError(
                f"{type(self).__name__} needs the CPUs/GPUs the trials may share, and none are "
                "known: the driver reads them from Slurm (sinfo of the trials' partition) when the "
                "experiment starts, and could not. Fix: give them before fit(), e.g. "
                "scheduler.set_cluster_resources({'cpu': 16, 'gpu': 4}) on the "
                "ResourceChangingScheduler.")
        total = amounts(cluster)
        return {k: total[k] - self.reserve_resources.get(k, 0.0) for k in KEYS}


class DistributeResourcesToTopJob(DistributeResources):
    """Gives every free CPU/GPU to the best live trial by ``metric``/``mode`` (Ray's "top job").

    Args: those of ``DistributeResources``, plus ``metric`` and ``mode`` (default: the wrapped
    scheduler's, else TuneConfig's). A trial that has not reported the metric ranks last.
    """

    def __init__(self, add_bundles: bool = False, increase_by: Mapping[str, float] | None = None,
                 increase_by_times: int = -1, reserve_resources: Mapping[str, float] | None = None,
                 metric: str | None = None, mode: str | None = None):
        super().__init__(add_bundles, increase_by, increase_by_times, reserve_resources)
        if mode is not None and mode not in ("min", "max"):
            raise ConfigError(f"The value of `mode` is {mode!r}, but must be 'min' or 'max'.")
        self.metric, self.mode = metric, mode

    def _new_added(self, trial: Any, live: list[Any], base: dict[str, float], unit: dict[str, float],
                   total: dict[str, float], free: dict[str, float],
                   added: dict[str, float]) -> dict[str, float]:
        best = self._best(live, base)
        if best is not None and best.trial_id != trial.trial_id and _multiplier(unit, free) >= 0:
            return added  # not the top job: keep what it has while nothing is over-requested
        return self._grow(added, unit, free)

    def _best(self, live: list[Any], base: dict[str, float]) -> Any:
        """The best live trial (the best one still below ``increase_by_times``, when capped)."""
        if not self.metric or self.mode not in ("min", "max"):
            raise ConfigError("DistributeResourcesToTopJob has no metric/mode: pass "
                              "DistributeResourcesToTopJob(metric=..., mode=...), or set them on "
                              "the wrapped scheduler or in TuneConfig(metric=..., mode=...).")
        sign = 1.0 if self.mode == "max" else -1.0

        def rank(record: Any) -> float:
            value = finite_or_none((record.last_result or {}).get(self.metric))
            return -math.inf if value is None else sign * value

        ranked = sorted(live, key=rank, reverse=True)  # stable: ties keep the trials' order
        if not ranked:
            return None
        if self.increase_by_times > 0 and self.increase_by:
            limit = {k: self.increase_by.get(k, 0.0) * self.increase_by_times for k in KEYS}

            def below_limit(record: Any) -> bool:
                held = amounts(record.resources)
                return any(held[k] - base[k] < limit[k] for k in KEYS)

            return next((r for r in ranked if below_limit(r)), ranked[0])
        return ranked[0]


def _fit_node(request: dict[str, float], base: dict[str, float], unit: Mapping[str, float],
              scheduler: Any) -> dict[str, float]:
    """The request, less whole units until it fits the largest node (``node_cpu``/``node_gpu``
    of ``scheduler.cluster_resources``): a one-node job asking for more never starts."""
    cluster = getattr(scheduler, "cluster_resources", None) or {}
    fitted = dict(request)
    for key in KEYS:
        most = cluster.get(f"node_{key}")
        step = unit.get(key, 0.0)
        if most is None or fitted[key] <= most or not step:
            continue
        over = math.ceil((fitted[key] - most) / step)
        fitted[key] = max(base[key], fitted[key] - over * step)
    return fitted


def _multiplier(unit: Mapping[str, float], free: Mapping[str, float]) -> int:
    """How many whole ``unit``s fit in ``free`` (negative when more is requested than exists)."""
    counts = [math.floor(free[k] / unit[k]) for k in KEYS if unit.get(k)]
    return int(min(counts)) if counts else 0
