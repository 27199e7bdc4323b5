"""The metric and mode that searchers and schedulers optimise, set once from TuneConfig."""

from __future__ import annotations

import math
from typing import Any

from hpctune.errors import ConfigError


class Objective:
    """Holds ``metric``/``mode``; ``set_search_properties`` fills what was left unset."""

    def __init__(self, metric: Any = None, mode: Any = None):
        if isinstance(mode, str) and mode not in ("min", "max"):
            raise ConfigError(f"The value of `mode` is {mode!r}, but must be 'min' or 'max'.")
        self._metric = metric
        self._mode = mode

    @property
    def metric(self) -> Any:
        return self._metric

    @property
    def mode(self) -> Any:
        return self._mode

    @property
    def _sign(self) -> float:
        """+1 when larger is better, so that ``sign * value`` can always be maximised."""
        return 1.0 if self._mode == "max" else -1.0

    def _merge_metric_mode(self, metric: str | None, mode: str | None) -> bool:
        """Take TuneConfig's metric/mode unless set here already; False on a conflict."""
        if metric and self._metric and metric != self._metric:
            return False
        if mode and self._mode and mode != self._mode:
            return False
        self._metric = self._metric or metric
        self._mode = self._mode or mode
        return True

    def _check_ready(self) -> None:
        """Raise unless a metric and a valid mode are known."""
        if not self._metric or self._mode not in ("min", "max"):
            name = type(self).__name__
            raise ConfigError(
                f"{name} has no valid `metric` ({self._metric!r}) or `mode` ({self._mode!r}). "
                f"Pass them to {name}(metric=..., mode=...) or to TuneConfig(metric=..., mode=...)."
            )


def finite_or_none(value: Any) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, inf, bool, not a number)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def check_state_version(state: dict, version: int, owner: object) -> None:
    """Refuse a saved state of another format than ``version`` with a clear error."""
    found = state.get("version")
    if found != version:
        name = owner if isinstance(owner, str) else type(owner).__name__
        raise ConfigError(
            f"The saved {name} state has version {found!r}, but this hpctune reads version "
            f"{version}: resume with the hpctune version that wrote it.")
