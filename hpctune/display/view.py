"""``StatusView``: the read-only view of a run that displays consume.

The driver builds one per report (``Controller.view()``); ``hpctune status`` builds one
from the experiment's files. Reporters, the live table and the CLI read only this.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hpctune.core.metrics import flat_value, is_finite_number, metric_value
from hpctune.tune.experiment.trial import Trial

STATUS_ORDER = {"RUNNING": 0, "PENDING": 1, "PAUSED": 2, "ERROR": 3, "TERMINATED": 4}
FINISHED = ("TERMINATED", "ERROR")


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


# -- what the status header and the table's rows read of the columns ------------------------
def live_rows(cols: TrialColumns) -> list[int]:
    """The rows of trials not finished that have a job."""
    status, job_id = cols.status, cols.job_id
    return [i for i in range(cols.count) if status[i] not in FINISHED and job_id[i]]


def request_text(requests: Iterable[Any]) -> str:
    """What ``requests`` ask for in all: ``8 CPUs, 2 GPUs, 64 GB``."""
    cpus = gpus = 0
    mem = 0.0
    each: dict[int, tuple[int, int, float]] = {}  # equal requests are often one object
    for r in requests:
        amounts = each.get(id(r))
        if amounts is None:
            amounts = each[id(r)] = request_amounts(r or {})
        cpus += amounts[0]
        gpus += amounts[1]
        mem += amounts[2]
    text = f"{cpus} CPUs, {gpus} GPUs"
    return text + (f", {mem:.0f} GB" if mem else "")


def request_amounts(r: Any) -> tuple[int, int, float]:
    """(CPUs, GPUs, GB of memory) of one request."""
    nodes = int(r.get("nodes") or 1)
    tasks = int(r.get("tasks") or nodes * int(r.get("tasks_per_node") or 1))
    cpus = int(r.get("cpu", 1)) * tasks
    gpus = int(r.get("gpu", 0)) * nodes + int(r.get("gpus_per_task") or 0) * tasks
    return cpus, gpus, float(r.get("mem_gb") or 0) * nodes


def best_row(cols: TrialColumns, metric: str | None, mode: str | None) -> int | None:
    """The row of the best trial (``best_trial``: the first one on ties); None: none."""
    if not metric or mode not in ("min", "max"):
        return None
    judged = scored(cols.best_value)
    if not judged:
        return None
    pick = min if mode == "min" else max
    return pick(judged, key=lambda pair: pair[0])[1]


def order_rows(
    cols: TrialColumns, metric: str | None, mode: str | None, sort_by_metric: bool
) -> list[int]:
    """``order_trials`` on rows: their positions in the order the table shows them."""
    status = cols.status
    if sort_by_metric and metric and mode in ("min", "max"):
        sign = 1 if mode == "min" else -1
        last = cols.last_value

        def by_metric(i: int) -> tuple:
            value = last[i]
            return (0, sign * value) if is_finite_number(value) else (1, 0)

        return sorted(range(cols.count), key=by_metric)
    return sorted(range(cols.count), key=lambda i: (STATUS_ORDER.get(status[i], 9), i))


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
