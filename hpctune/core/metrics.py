"""Names and rules about reported metrics shared by the driver, results, displays and the CLI:
the auto-filled metrics, flattening nested keys to ``a/b``, and which trial is best."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hpctune.tune.experiment.trial import Trial

#: what every result carries besides the user's metrics (filled in by the worker's session)
AUTO_METRICS = frozenset({
    "training_iteration", "time_this_iter_s", "time_total_s", "time_since_restore",
    "iterations_since_restore", "timestamp", "date", "done", "trial_id", "experiment_tag",
    "hostname", "node_ip", "pid", "slurm_job_id", "restart_count", "config", "experiment_id",
    "timesteps_total", "episodes_total", "timesteps_since_restore",
})
#: auto-filled metrics that are progress measures, analysed (min/max/avg) like user metrics
ANALYSED_AUTO_METRICS = frozenset({"training_iteration", "time_total_s"})
SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")
#: Ray's variable for the separator of nested keys in dataframe columns (default here: "/")
RESULT_DELIM_ENV = "TUNE_RESULT_DELIM"
#: what ``flat_value(result, key, MISSING)`` returns for a key the result does not hold
MISSING: Any = object()


#: value types that are never a ``Mapping``
_NEVER_MAPPINGS = frozenset({int, float, str, bool, type(None)})


def flatten(nested: Mapping[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}`` (Ray's column names); an empty dict is kept as a value."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if type(value) in _NEVER_MAPPINGS:  # most values: no ABC check (a driver's hot path)
            flat[name] = value
        elif isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}{sep}", sep))
        else:
            flat[name] = value
    return flat


def flat_collision(nested: Mapping[str, Any], sep: str = "/") -> str | None:
    """A name two entries of ``nested`` flatten to (``{"a/b": 1, "a": {"b": 2}}``: ``"a/b"``),
    so that one would silently shadow the other in every flattened view; None if none."""
    seen: set[str] = set()

    def walk(mapping: Mapping[str, Any], prefix: str) -> str | None:
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping) and value:
                found = walk(value, f"{name}{sep}")
                if found is not None:
                    return found
            elif name in seen:
                return name
            else:
                seen.add(name)
        return None

    return walk(nested, "")


def result_delimiter() -> str:
    """The separator of nested keys in dataframe columns: ``$TUNE_RESULT_DELIM``, else ``/``."""
    return os.environ.get(RESULT_DELIM_ENV) or "/"


def flat_value(result: Mapping[str, Any], metric: str, default: Any = None) -> Any:
    """``result[metric]``, where a flattened name (``"val/acc"``) also finds ``result["val"]["acc"]``;
    ``default`` when the result holds neither (pass ``MISSING`` to tell that from a reported None)."""
    if metric in result:
        return result[metric]
    value: Any = result
    for part in metric.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return default
        value = value[part]
    return value


def is_finite_number(value: Any) -> bool:
    """A number (not a bool) that a float holds, and finite."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and fits_float(value)
            and math.isfinite(value))


def fits_float(value: int | float) -> bool:
    """False for an int beyond a float's range (>= 2**1024): ``float()`` of it raises. An old
    hpctune let ``report()`` log one; every reader skips it in comparisons instead of failing."""
    try:
        float(value)
    except OverflowError:
        return False
    return True


def metric_value(trial: Trial, metric: str, mode: str, scope: str = "last") -> float | None:
    """The trial's ``metric`` under ``scope`` (Ray's: last, avg, last-5-avg, last-10-avg, or
    all = its best over every result); None when it never reported a number for it."""
    key = mode if scope == "all" else scope
    value = trial.metric_analysis.get(metric, {}).get(key)
    if value is None and scope == "last":
        last = flat_value(trial.last_result, metric)
        value = last if is_finite_number(last) else None  # a snapshot written without the analysis
    return value


def best_trial(trials: Iterable[Trial], metric: str | None, mode: str | None, scope: str = "last",
               filter_nan_and_inf: bool = True) -> Trial | None:
    """The trial with the best ``metric`` (the first one on ties); None if none reported it."""
    if not metric or mode not in ("min", "max"):
        return None
    scored = []
    for trial in trials:
        value = metric_value(trial, metric, mode, scope)
        if value is None or (filter_nan_and_inf and not math.isfinite(value)):
            continue
        scored.append((value, trial))
    if not scored:
        return None
    pick = min if mode == "min" else max
    return pick(scored, key=lambda pair: pair[0])[1]
