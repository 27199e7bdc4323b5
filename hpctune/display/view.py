"""``StatusView``: the read-only view of a run that displays consume.

The driver builds one per report (``Controller.view()``); ``hpctune status`` builds one
from the experiment's files. Reporters, the live table and the CLI read only this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpctune.core.metrics import flat_value, metric_value
from hpctune.tune.experiment.trial import Trial


@dataclass
class TrialColumns:
    """Every trial's fields that the status header and the choice of table rows read, one
    list per field in creation order, and ``trial(i)``: the ``Trial`` of row ``i``, built only
    for the rows a table shows (``hpctune status`` on 100,000 trials builds a few dozen)."""

    status: list[str]
    job_id: list[str | None]
    job_state: list[str]
    job_reason: list[str]
    node: list[str]
    resources: list[Any]
    #: the metric as ``best_trial`` judges it (``metric_value``, scope last); None: none
    best_value: list[Any]
    #: the metric's last reported value (``flat_value``), for ``sort_by_metric``
    last_value: list[Any]
    trial: Callable[[int], Trial]

    @property
    def count(self) -> int:
        return len(self.status)

    @classmethod
    def of(cls, trials: Sequence[Trial], metric: str | None, mode: str | None) -> TrialColumns:
        """The columns of ``trials`` (the driver's view: its Trials are at hand)."""
        trials = list(trials)
        judged = bool(metric) and mode in ("min", "max")
        return cls(
            status=[t.status.value for t in trials],
            job_id=[t.job_id for t in trials],
            job_state=[str(t.job_state) for t in trials],
            job_reason=[t.job_reason for t in trials],
            node=[t.node for t in trials],
            resources=[t.resources for t in trials],
            best_value=[metric_value(t, metric, mode) for t in trials]  # type: ignore[arg-type]
            if judged
            else [None] * len(trials),
            last_value=[flat_value(t.last_result, metric) for t in trials]
            if metric
            else [None] * len(trials),
            trial=trials.__getitem__,
        )


def scored(values: Sequence[Any]) -> list[tuple[Any, int]]:
    """(value, row) of the rows ``best_trial`` would judge: a value, and a finite one."""
    return [(v, i) for i, v in enumerate(values) if v is not None and math.isfinite(v)]


@dataclass
class StatusView:
    """Everything the status display shows about a run."""

    #: the trials; with ``columns``, only the first ones (what column inference samples)
    trials: list[Trial]
    experiment_dir: str = ""
    scheduler: str | None = None
    metric: str | None = None
    mode: str | None = None
    slurm_commands: dict[str, int] = field(default_factory=dict)
    elapsed_s: float | None = None
    state: str | None = None
    driver: str | None = None
    updated: float | None = None
    #: True once the run has ended (no live trial and nothing left to start)
    done: bool = False
    #: the allocation used, the budget, fair-share (``accounting/usage.usage_lines``): the footer
    allocation: list[str] = field(default_factory=list)
    #: every trial, column by column (``hpctune status`` from the row view); None: from ``trials``
    columns: TrialColumns | None = None
