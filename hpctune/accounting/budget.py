"""An allocation budget (``TuneConfig(gpu_hours_budget=...)`` or ``cpu_hours_budget``): pure decisions.

Two rules, both in the budget's unit (GPU-hours or CPU-hours, i.e. core-hours):

* admission: a waiting trial is launched only if the worst case stays within the budget:
  ``used + sum over running trials of (their worst case - what they used so far) + n x
  worst case of a new trial <= budget``. A trial's worst case is its resources held for its
  whole time limit (``accounting/estimate.py`` with one trial and one attempt).
* stop: once ``used >= budget`` (a requeue or an idle pool task can spend beyond the worst
  case), or once nothing runs and the next trial does not fit, the experiment stops cleanly;
  trials that never ran stay PENDING, and ``hpctune resume --gpu-hours-budget N`` (or
  ``Tuner.restore(..., gpu_hours_budget=N)``) continues with a larger one.

Nothing here reads a clock, a file or Slurm (``accounting/meter.py`` measures and asks).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from hpctune.errors import ConfigError

#: the budget units and their names in messages
UNITS = {"gpu": "GPU-hours", "cpu": "CPU-hours"}


@dataclass(frozen=True)
class Budget:
    """A limit on the allocation an experiment may use, in ``unit`` (``"gpu"`` or ``"cpu"``)-hours."""

    limit: float
    unit: str

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ConfigError(f"a budget's unit is 'gpu' or 'cpu', not {self.unit!r}.")

    @property
    def name(self) -> str:
        return UNITS[self.unit]

    def to_json(self) -> dict[str, object]:
        return {"limit": self.limit, "unit": self.unit}


def budget_of(gpu_hours: float | None, cpu_hours: float | None) -> Budget | None:
    """The budget TuneConfig's two options give (one at most), checked: ConfigError otherwise."""
    for name, value in (("gpu_hours_budget", gpu_hours), ("cpu_hours_budget", cpu_hours)):
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value <= 0
        ):
            raise ConfigError(
                f"TuneConfig({name}={value!r}) must be a number of hours > 0, e.g. {name}=100."
            )
    if gpu_hours is not None and cpu_hours is not None:
        raise ConfigError(
            "TuneConfig takes one allocation budget: gpu_hours_budget or "
            "cpu_hours_budget, not both (a GPU-hour budget for GPU trials, a "
            "CPU-hour (core-hour) budget otherwise)."
        )
    if gpu_hours is not None:
        return Budget(float(gpu_hours), "gpu")
    return None if cpu_hours is None else Budget(float(cpu_hours), "cpu")


def committed(worst_per_trial: float, used_by_running: Iterable[float]) -> float:
    """What the running trials may still use: each one's worst case less what it used."""
    return sum(max(0.0, worst_per_trial - used) for used in used_by_running)


def admissible(
    budget: Budget, used: float, running_left: float, worst_per_trial: float, waiting: int
) -> int:
    """How many of ``waiting`` trials may launch now without the worst case passing the budget."""
    if waiting <= 0:
        return 0
    room = budget.limit - used - running_left
    if worst_per_trial <= 0:
        return waiting if room > 0 else 0
    return max(0, min(waiting, math.floor(room / worst_per_trial + 1e-9)))


def stop_reason(
    budget: Budget, used: float, running: int, waiting: int, admitted: int, worst_per_trial: float
) -> str | None:
    """Why the experiment stops now, or None: the budget is used up, or nothing runs and the
    next waiting trial could pass it."""
    if used >= budget.limit:
        return (
            f"allocation budget of {budget.limit:g} {budget.name} used ({used:.3g} {budget.name})"
        )
    if running == 0 and waiting > 0 and admitted == 0:
        return (
            f"allocation budget of {budget.limit:g} {budget.name}: {used:.3g} used, and the "
            f"next trial could use up to {worst_per_trial:.3g} more"
        )
    return None
