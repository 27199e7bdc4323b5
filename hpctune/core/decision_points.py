"""Where a decision about a trial can fall: the results at which its worker waits for the driver.

In Ray Tune ``report()`` returns only after the driver has taken the result, so a trial that a
stopper or scheduler ends runs no iteration past the result that decided it. Here the trainable
runs in its own Slurm job: waiting for the driver at every result would cost a round trip per
``report()``. So schedulers and stoppers declare where they may decide (``decision_points``),
the driver writes the union into the trial's meta at each launch, and the worker waits for the
driver's verdict only after a result at one of those ``training_iteration`` values.

A declaration is a superset: waiting where nothing is decided costs a round trip, never a wrong
answer; not waiting where a decision falls lets the trial run on until it reads the verdict.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hpctune.errors import ExperimentStateError

#: the trial meta's key (``trials/<id>/meta.json``)
META_KEY = "decision_points"


@dataclass(frozen=True)
class DecisionPoints:
    """The ``training_iteration`` values after which a decision may fall.

    ``every``: at every result (a decider that may act on anything: Ray's default);
    ``iterations``: these values; ``start``/``period``: ``start``, ``start + period``, ...
    """

    every: bool = False
    iterations: frozenset[int] = frozenset()
    start: int | None = None
    period: int | None = None

    def waits_at(self, iteration: int) -> bool:
        """True when the worker waits for the driver's verdict after this iteration's result."""
        if self.every or iteration in self.iterations:
            return True
        if self.start is None or self.period is None or iteration < self.start:
            return False
        return (iteration - self.start) % self.period == 0

    @property
    def never(self) -> bool:
        return not self.every and not self.iterations and self.start is None

    def union(self, other: DecisionPoints) -> DecisionPoints:
        """Where either may decide. Two different periodic series have no exact union here: the
        result then waits at every result (correct, only slower)."""
        if self.every or other.every:
            return EVERY
        series = {(p.start, p.period) for p in (self, other) if p.start is not None}
        if len(series) > 1:
            return EVERY
        start, period = next(iter(series), (None, None))
        return DecisionPoints(iterations=self.iterations | other.iterations, start=start, period=period)

    def to_json(self) -> dict[str, Any]:
        return {"every": self.every, "iterations": sorted(self.iterations),
                "start": self.start, "period": self.period}

    @classmethod
    def from_json(cls, data: Any) -> DecisionPoints:
        """A trial meta's entry; a trial without one (launched by an older driver) waits nowhere."""
        if data is None:
            return NEVER
        try:
            return cls(every=bool(data.get("every")),
                       iterations=frozenset(int(i) for i in data.get("iterations") or ()),
                       start=_optional_int(data.get("start")), period=_optional_int(data.get("period")))
        except (AttributeError, TypeError, ValueError):
            raise ExperimentStateError(
                f"The trial meta's {META_KEY!r} is {data!r}, not a list of iterations: delete the "
                "entry (the trial then never waits) or relaunch the trial from the driver.") from None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


NEVER = DecisionPoints()
EVERY = DecisionPoints(every=True)


def at(values: Iterable[float]) -> DecisionPoints:
    """The first integer iterations at or past each of ``values`` (a rung at 2.5 decides at 3)."""
    return DecisionPoints(iterations=frozenset(max(1, math.ceil(v)) for v in values))


def periodic(start: float, period: float) -> DecisionPoints:
    """``ceil(start)`` and every ``ceil(period)`` after it."""
    return DecisionPoints(start=max(1, math.ceil(start)), period=max(1, math.ceil(period)))


def declared(decider: Any, hook: str, *args: Any) -> DecisionPoints:
    """``decider.decision_points(*args)``, or EVERY where it cannot be trusted: a decider without
    the method (a duck-typed one), or a subclass that overrides ``hook`` (the method deciding)
    below the class that declared the points (its decisions are its own: Ray's semantics)."""
    method = getattr(decider, "decision_points", None)
    if method is None:
        return EVERY
    mro = type(decider).__mro__
    declaring = next((c for c in mro if "decision_points" in vars(c)), None)
    deciding = next((c for c in mro if hook in vars(c)), None)
    if declaring is None or (deciding is not None and deciding is not declaring
                             and issubclass(deciding, declaring)):
        return EVERY
    return method(*args)
