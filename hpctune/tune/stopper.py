"""Stoppers: per-trial and experiment-wide stopping rules (Ray Tune's ``tune.stopper``).

A stopper sees every result (``stopper(trial_id, result) -> bool``: stop this trial?)
and is asked ``stop_all()`` (stop the whole experiment?). Like schedulers, stoppers
are pure decision logic: no Slurm, no files, no sleeping; time only comes from an
injected clock, so tests can fast-forward it.
"""

from __future__ import annotations

import copy
import datetime
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from numbers import Real
from typing import Any

import numpy as np

from hpctune.core.checks import check_metric, check_mode, check_number, require_number
from hpctune.core.decision_points import EVERY, NEVER, DecisionPoints, at, declared
from hpctune.core.metrics import MISSING, flat_value
from hpctune.errors import ConfigError

__all__ = [
    "CombinedStopper",
    "DictStopper",
    "ExperimentPlateauStopper",
    "FunctionStopper",
    "MaximumIterationStopper",
    "NoopStopper",
    "Stopper",
    "TimeoutStopper",
    "TrialPlateauStopper",
    "as_stopper",
]

class Stopper:
    """Base class: decide per result whether to stop a trial, and whether to stop everything.

    Subclasses override ``__call__`` and/or ``stop_all``; both default to "never".
    """

    def __call__(self, trial_id: str, result: dict) -> bool:
        """True if the trial that produced ``result`` should stop."""
        return False

    def stop_all(self) -> bool:
        """True if the whole experiment should stop (no new trials, running ones stop)."""
        return False

    def decision_points(self, trial_id: str) -> DecisionPoints:
        """Where ``__call__`` may say stop (``core/decision_points``): the trial's worker waits
        for the verdict there. Default: every result (Ray's semantics), also for a subclass
        that overrides ``__call__`` below the class that declared its points."""
        return EVERY

    #: the attributes that hold what the stopper has seen: saved with the driver's snapshot,
    #: so a restored experiment's stopper continues where it was (a subclass lists its own)
    _state_attributes: tuple[str, ...] = ()

    def get_state(self) -> dict:
        """What the stopper has seen so far (picklable)."""
        return {name: copy.deepcopy(getattr(self, name)) for name in self._state_attributes
                if hasattr(self, name)}

    def set_state(self, state: dict) -> None:
        """Continue from ``get_state``'s result."""
        for name, value in state.items():
            if name in self._state_attributes:
                setattr(self, name, value)


class NoopStopper(Stopper):
    """Never stops anything (what ``RunConfig(stop=None)`` means)."""

    def decision_points(self, trial_id: str) -> DecisionPoints:
        return NEVER


class FunctionStopper(Stopper):
    """Wraps ``fn(trial_id, result) -> bool`` (``RunConfig(stop=my_function)``)."""

    def __init__(self, function: Callable[[str, dict], bool]):
        self._fn = function

    def __call__(self, trial_id: str, result: dict) -> bool:
        return bool(self._fn(trial_id, result))

    @classmethod
    def is_valid_function(cls, fn: Any) -> bool:
        """True for plain callables; error for Stopper look-alikes that don't subclass Stopper."""
        if isinstance(fn, type) and issubclass(fn, Stopper):
            raise ConfigError(
                f"`stop` is the class {fn.__name__}, but must be an instance: "
                f"RunConfig(stop={fn.__name__}(...))."
            )
        is_function = callable(fn) and not isinstance(fn, Stopper)
        if is_function and hasattr(fn, "stop_all"):
            raise ConfigError(
                f"`stop` is a {type(fn).__name__} with a `stop_all` method, but does not "
                "subclass hpctune.Stopper; subclass it so that `stop_all` is used."
            )
        return is_function


class DictStopper(Stopper):
    """``RunConfig(stop={"training_iteration": 10, "mean_accuracy": 0.8})``.

    A trial stops as soon as *any* reported ``result[key] >= value`` (Ray's semantics:
    "10 iterations or an accuracy of 0.8"). Nested dicts are flattened to ``"a/b"``.
    A key that a trial has never reported is an error, raised at the first result
    that lacks it; one that was reported before and is missing now is skipped.
    """

    _state_attributes = ("_seen",)

    def __init__(self, criteria: Mapping[str, Any]):
        self._criteria = dict(self._flatten(criteria))
        self._seen: dict[str, set[str]] = {}

    @classmethod
    def _flatten(cls, criteria: Mapping[str, Any], prefix: str = ""):
        for key, value in criteria.items():
            if not isinstance(key, str):
                raise ConfigError(f"Stopping criteria keys must be strings, got {key!r}.")
            if isinstance(value, Mapping):
                yield from cls._flatten(value, f"{prefix}{key}/")
            elif isinstance(value, Real) and not isinstance(value, bool):
                yield prefix + key, value
            else:
                raise ConfigError(
                    f"The value of stopping criterion `{prefix}{key}` is {value!r}, but must be a number."
                )

    def __call__(self, trial_id: str, result: dict) -> bool:
        seen = self._seen.setdefault(trial_id, set())
        stop = False
        for key, threshold in self._criteria.items():
            value = flat_value(result, key, MISSING)
            if value is MISSING:
                if key not in seen:
                    raise ConfigError(
                        f"Stopping criterion `{key}` is not in trial {trial_id}'s result; "
                        f"reported keys: {sorted(result)}. Report `{key}` with `tune.report()` "
                        "or fix RunConfig(stop=...)."
                    )
                continue
            seen.add(key)
            stop = stop or (value is not None and value >= threshold)
        return stop

    def decision_points(self, trial_id: str) -> DecisionPoints:
        """At the threshold when ``training_iteration`` is the only criterion; else every result."""
        if set(self._criteria) == {"training_iteration"}:
            return at([self._criteria["training_iteration"]])
        return EVERY


class MaximumIterationStopper(Stopper):
    """Stops each trial after it has reported ``max_iter`` results."""

    def __init__(self, max_iter: int):
        check_number("max_iter", max_iter, 0, strict=True, integer=True)
        self._max_iter = max_iter
        self._iter: dict[str, int] = {}

    def __call__(self, trial_id: str, result: dict) -> bool:
        self._iter[trial_id] = self._iter.get(trial_id, 0) + 1
        return self._iter[trial_id] >= self._max_iter

    def decision_points(self, trial_id: str) -> DecisionPoints:
        return at([self._max_iter])


class ExperimentPlateauStopper(Stopper):
    """Stops the experiment once the ``top`` best values of ``metric`` have a std <= ``std``.

    The plateau must hold for ``patience`` further results. NaN results are ignored.
    """

    _state_attributes = ("_top_values", "_iterations")

    def __init__(
        self, metric: str, std: float = 0.001, top: int = 10, mode: str = "min", patience: int = 0
    ):
        check_metric(type(self).__name__, metric)
        check_mode(mode)
        check_number("top", top, 1, strict=True, integer=True)
        check_number("patience", patience, 0, strict=False, integer=True)
        check_number("std", std, 0, strict=True, integer=False)
        self._metric, self._std, self._top = metric, std, top
        self._mode, self._patience = mode, patience
        self._iterations = 0
        self._top_values: list[float] = []

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = require_number(result, self._metric, trial_id, type(self).__name__)
        if not math.isnan(value):
            values = sorted([*self._top_values, value], reverse=self._mode == "max")
            self._top_values = values[: self._top]
        self._iterations = self._iterations + 1 if self.has_plateaued() else 0
        return self.stop_all()

    def has_plateaued(self) -> bool:
        """True when ``top`` values are known and their standard deviation is small enough."""
        full = len(self._top_values) == self._top
        return full and float(np.std(self._top_values)) <= self._std

    def stop_all(self) -> bool:
        return self.has_plateaued() and self._iterations >= self._patience


class TrialPlateauStopper(Stopper):
    """Stops a trial whose last ``num_results`` values of ``metric`` have a std < ``std``.

    Not before the trial's ``grace_period``-th result, and, with ``metric_threshold``,
    only once the latest value is at least as good as the threshold (per ``mode``).
    """

    _state_attributes = ("_trial_results",)

    def __init__(
        self,
        metric: str,
        std: float = 0.01,
        num_results: int = 4,
        grace_period: int = 4,
        metric_threshold: float | None = None,
        mode: str | None = None,
    ):
        check_metric(type(self).__name__, metric)
        check_mode(mode, allow_none=metric_threshold is None)
        check_number("std", std, 0, strict=True, integer=False)
        check_number("num_results", num_results, 1, strict=False, integer=True)
        check_number("grace_period", grace_period, 0, strict=False, integer=True)
        self._metric, self._std, self._mode = metric, std, mode
        self._num_results, self._grace_period = num_results, grace_period
        self._metric_threshold = metric_threshold
        self._iter: dict[str, int] = {}
        self._trial_results: dict[str, deque[float]] = {}

    def __call__(self, trial_id: str, result: dict) -> bool:
        value = require_number(result, self._metric, trial_id, type(self).__name__)
        window = self._trial_results.setdefault(trial_id, deque(maxlen=self._num_results))
        window.append(value)
        self._iter[trial_id] = self._iter.get(trial_id, 0) + 1
        if self._iter[trial_id] < self._grace_period or len(window) < self._num_results:
            return False
        if not self._threshold_reached(value):
            return False
        return float(np.std(window)) < self._std  # NaN in the window -> NaN std -> False

    def _threshold_reached(self, value: float) -> bool:
        if self._metric_threshold is None:
            return True
        if self._mode == "min":
            return value <= self._metric_threshold
        return value >= self._metric_threshold


class TimeoutStopper(Stopper):
    """Stops the experiment after ``timeout`` seconds (a number or a ``datetime.timedelta``).

    The budget starts at the first ``stop_all()`` (setup time is free) and only time
    between consecutive checks is spent, so the time a driver spends dead is not
    counted after a resume (the clock reference is dropped when pickled).
    """

    _state_attributes = ("_budget",)

    def __init__(
        self,
        timeout: float | datetime.timedelta,
        clock: Callable[[], float] = time.monotonic,
    ):
        if isinstance(timeout, datetime.timedelta):
            seconds = timeout.total_seconds()
        elif isinstance(timeout, Real) and not isinstance(timeout, bool):
            seconds = float(timeout)
        else:
            raise ConfigError(
                f"The value of `timeout` is {timeout!r}, but must be a number of seconds "
                "or a datetime.timedelta."
            )
        check_number("timeout", seconds, 0, strict=False, integer=False)
        self._timeout_seconds = seconds
        self._budget = seconds
        self._clock = clock
        self._last_check: float | None = None

    def stop_all(self) -> bool:
        now = self._clock()
        if self._last_check is not None:
            self._budget -= now - self._last_check
        self._last_check = now
        return self._budget <= 0

    def decision_points(self, trial_id: str) -> DecisionPoints:
        """Never: a time limit falls between results, at no result in particular."""
        return NEVER

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_last_check": None}


class CombinedStopper(Stopper):
    """Stops when any of ``stoppers`` says so (logical OR).

    Every stopper sees every result (no short-circuit), so stateful stoppers such
    as plateau detectors keep complete histories.
    """

    def __init__(self, *stoppers: Stopper):
        for stopper in stoppers:
            if not isinstance(stopper, Stopper):
                raise ConfigError(
                    f"CombinedStopper takes Stopper instances, got {type(stopper).__name__}; "
                    "wrap functions with FunctionStopper and dicts with DictStopper."
                )
        self._stoppers = stoppers

    def __call__(self, trial_id: str, result: dict) -> bool:
        decisions = [stopper(trial_id, result) for stopper in self._stoppers]
        return any(decisions)

    def stop_all(self) -> bool:
        decisions = [stopper.stop_all() for stopper in self._stoppers]
        return any(decisions)

    def decision_points(self, trial_id: str) -> DecisionPoints:
        points = NEVER
        for stopper in self._stoppers:
            points = points.union(declared(stopper, "__call__", trial_id))
        return points

    def get_state(self) -> dict:
        return {"stoppers": [stopper.get_state() for stopper in self._stoppers]}

    def set_state(self, state: dict) -> None:
        for stopper, saved in zip(self._stoppers, state.get("stoppers", []), strict=False):
            stopper.set_state(saved)


def as_stopper(stop: Stopper | Mapping[str, Any] | Callable[[str, dict], bool] | None) -> Stopper:
    """Turn ``RunConfig(stop=...)`` (None, dict, function or Stopper) into a Stopper."""
    if stop is None:
        return NoopStopper()
    if isinstance(stop, Stopper):
        return stop
    if isinstance(stop, Mapping):
        return DictStopper(stop)
    if FunctionStopper.is_valid_function(stop):
        return FunctionStopper(stop)
    raise ConfigError(
        f"The value of `stop` is a {type(stop).__name__}, but must be None, a dict of "
        "thresholds, a function (trial_id, result) -> bool, or a hpctune.Stopper."
    )
