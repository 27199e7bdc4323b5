"""The allocation an experiment used: pure arithmetic on plain records.

Three sources, best first, each turned into node-, CPU- and GPU-hours (``Hours``):

* ``sacct`` (accounting on): each job's ``ElapsedRaw`` x what Slurm allocated it (``NNodes``,
  ``NCPUS``, ``gres/gpu`` of ``AllocTRES``), every incarnation of a requeued job counted
  (``sacct -D``). Its ``Submit``/``Start`` give the time a job waited ``PENDING``.
* a worker pool run: its child's wall time (measured by the pool task, ``PoolQueue.run_walls``) x
  the trial's resources (one slot of the task), so a trial is accounted without a job of
  its own (a run resumed by its requeued pool task: its earlier processes from its events). The pool task's own allocation minus its runs' shares is idle: slots that held
  nothing.
* the trial's own events (accounting off): from the first to the last event of each run of a
  job (``restart_count``) x the trial's resources. The time before the worker's first event
  (Python's start, srun) is not seen, so this slightly under-counts.

Nothing here reads Slurm, a clock or a file (``accounting/meter.py`` gathers the records).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from hpctune.accounting.estimate import TrialShape
from hpctune.storage import events as ev

#: the sacct fields ``parse_sacct`` reads, in this order (``slurm_commands.sacct_usage_args``)
SACCT_FIELDS = "JobID,State,ElapsedRaw,NNodes,NCPUS,AllocTRES,Submit,Start"
#: sources of a figure, as shown in tables
SACCT = "sacct"
POOL = "pool"
EVENTS = "events"


@dataclass(frozen=True)
class Hours:
    """Node-, CPU- and GPU-hours (and the wall hours of the holder: trial-hours)."""

    node: float = 0.0
    cpu: float = 0.0
    gpu: float = 0.0
    wall: float = 0.0

    @classmethod
    def held(cls, shape: TrialShape, seconds: float) -> Hours:
        """What holding ``shape`` for ``seconds`` uses."""
        h = max(0.0, seconds) / 3600
        return cls(node=shape.nodes * h, cpu=shape.cpus * h, gpu=shape.gpus * h, wall=h)

    def __add__(self, other: Hours) -> Hours:
        return Hours(
            self.node + other.node,
            self.cpu + other.cpu,
            self.gpu + other.gpu,
            self.wall + other.wall,
        )

    def __sub__(self, other: Hours) -> Hours:
        """The difference, never below zero (idle: what a pool task held beyond its runs)."""
        return Hours(
            max(0.0, self.node - other.node),
            max(0.0, self.cpu - other.cpu),
            max(0.0, self.gpu - other.gpu),
            max(0.0, self.wall - other.wall),
        )

    def of(self, unit: str) -> float:
        """The figure in ``unit``: ``"gpu"``, ``"cpu"``, ``"node"`` or ``"wall"``."""
        return float(getattr(self, unit))

    def to_json(self) -> dict[str, float]:
        return {
            "node_hours": self.node,
            "cpu_hours": self.cpu,
            "gpu_hours": self.gpu,
            "wall_hours": self.wall,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Hours:
        return cls(
            float(data.get("node_hours", 0)),
            float(data.get("cpu_hours", 0)),
            float(data.get("gpu_hours", 0)),
            float(data.get("wall_hours", 0)),
        )


def total(items: Iterable[Hours]) -> Hours:
    out = Hours()
    for item in items:
        out = out + item
    return out


@dataclass(frozen=True)
class SacctRecord:
    """One incarnation of one job as ``sacct -D -X`` lists it."""

    job_id: str
    state: str
    elapsed_s: float
    nodes: int
    cpus: int
    gpus: float | None  # None: sacct records no GPUs (``AccountingStorageTRES``)
    pending_s: float | None  # Start - Submit; None: not started, or times unknown

    @property
    def hours(self) -> Hours:
        """What the job held while it ran: Slurm's allocation x its elapsed time (no GPUs
        where sacct records none: ``hours_for`` takes the trial's request then)."""
        return self.hours_for(0.0)

    def hours_for(self, requested_gpus: float) -> Hours:
        """As ``hours``, with ``requested_gpus`` where sacct records no GPUs."""
        gpus = self.gpus if self.gpus is not None else requested_gpus
        return Hours.held(TrialShape(nodes=self.nodes, cpus=self.cpus, gpus=gpus), self.elapsed_s)


def parse_sacct(text: str) -> list[SacctRecord]:
    """The records of ``sacct -n -P -D -X -o SACCT_FIELDS``; lines of another shape are skipped."""
    records = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 8 or not parts[2].isdigit():
            continue
        job, state, elapsed, nodes, cpus, tres, submit, start = parts
        records.append(
            SacctRecord(
                job,
                state.split()[0] if state else "",
                float(elapsed),
                _int(nodes),
                _int(cpus),
                tres_gpus(tres),
                _waited(submit, start),
            )
        )
    return records


def tres_gpus(tres: str) -> float | None:
    """GPUs in a TRES string (``cpu=2,mem=1G,node=1,gres/gpu=2``); typed ``gres/gpu:a100=`` too,
    counted once (Slurm lists the total as ``gres/gpu`` beside the typed ones). None when the
    string has no GPU entry: a cluster whose ``AccountingStorageTRES`` leaves out ``gres/gpu``
    (the default) records no GPUs, so the trial's own request is the figure."""
    total_gpus, typed, seen = None, 0.0, False
    for item in tres.split(","):
        key, _, value = item.partition("=")
        if key == "gres/gpu":
            total_gpus = _float(value)
        elif key.startswith("gres/gpu:"):
            typed, seen = typed + _float(value), True
    if total_gpus is not None:
        return total_gpus
    return typed if seen else None


def _int(text: str) -> int:
    return int(text) if text.isdigit() else 0


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def _waited(submit: str, start: str) -> float | None:
    """Seconds from Submit to Start (both as sacct prints them, local time); None if not started."""
    try:
        t0, t1 = datetime.datetime.fromisoformat(submit), datetime.datetime.fromisoformat(start)
    except ValueError:  # "Unknown", "None": still pending
        return None
    return max(0.0, (t1 - t0).total_seconds())


def sacct_by_job(records: Iterable[SacctRecord]) -> dict[str, list[SacctRecord]]:
    """The records of each job id (a requeued job has one per incarnation)."""
    out: dict[str, list[SacctRecord]] = {}
    for record in records:
        out.setdefault(record.job_id, []).append(record)
    return out


#: states after which a job never runs again (its sacct record is final)
FINAL_STATES = frozenset(
    {
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
    }
)


def final_arrays(records: Iterable[SacctRecord], array_of: Any) -> dict[str, list[SacctRecord]]:
    """The records of each array whose every job ended for good (its newest incarnation in a
    ``FINAL_STATES`` state; an array with a task still queued lists it as ``N_[5-9]``
    ``PENDING``): these never change again, so the meter keeps them and asks sacct no more."""
    by_array: dict[str, list[SacctRecord]] = {}
    for record in records:
        by_array.setdefault(array_of(record.job_id), []).append(record)
    out = {}
    for array, rows in by_array.items():
        newest = {r.job_id: r.state for r in rows}  # sacct lists incarnations oldest first
        if all(state in FINAL_STATES for state in newest.values()):
            out[array] = rows
    return out


def event_bounds(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], tuple[float, float]]:
    """``{(job id, restart count): (first event time, last event time)}`` of a trial's worker
    events (the driver's own are left out, since they are written when it decides, not while
    the job runs); a local run's events, without a job id, under ``""``."""
    bounds: dict[tuple[str, int], tuple[float, float]] = {}
    for event in events:
        job, when = event.get(ev.JOB_ID) or "", event.get(ev.TIME)
        if not isinstance(when, (int, float)) or event.get(ev.KIND) in ev.DRIVER_KINDS:
            continue
        key = (str(job), int(event.get(ev.RESTART_COUNT) or 0))
        start, end = bounds.get(key, (when, when))
        bounds[key] = (min(start, when), max(end, when))
    return bounds


def event_spans(events: Iterable[Mapping[str, Any]]) -> dict[tuple[str, int], float]:
    """Seconds each run of each job was seen running: last event time - first event time."""
    return {key: end - start for key, (start, end) in event_bounds(events).items()}



@dataclass(frozen=True)
class TrialUsage:
    """One trial's allocation: what it used, the time its jobs waited queued, and from where."""

    used: Hours
    queued_s: float | None  # None: unknown (no accounting)
    source: str


def trial_usage(
    shape: TrialShape,
    job_ids: Iterable[str],
    spans: Mapping[tuple[str, int], float],
    sacct: Mapping[str, list[SacctRecord]] | None,
    pool_walls: Mapping[str, float],
    pool_slots: Mapping[str, int] | None = None,
) -> TrialUsage:
    """A trial's usage over its jobs: a pool run's measured wall time x ``shape`` (its node
    shared by the ``pool_slots`` runs of its task: 1/slots of a node each); a job that
    ``sacct`` knows, Slurm's allocation x elapsed; else its event spans x ``shape``."""
    used, queued, sources = Hours(), 0.0, set()
    queue_known = False  # only a job of its own (in sacct) has a queue time: a pool run has none
    unattributed = [""] if any(job == "" for job, _ in spans) else []  # events of a local run
    for job in dict.fromkeys([*job_ids, *unattributed]):
        if job in pool_walls:
            # the wall time covers the run's last process; a run its requeued pool task resumed
            # (a higher restart count) ran before that too: those earlier runs from its events
            restarts = sorted(rc for j, rc in spans if j == job)
            earlier = sum(spans[(job, rc)] for rc in restarts[:-1])
            slots = max(1, (pool_slots or {}).get(job, 1))
            held = Hours.held(shape, pool_walls[job] + earlier)
            used = used + Hours(held.node / slots, held.cpu, held.gpu, held.wall)
            sources.add(POOL)
        elif sacct is not None and job in sacct:
            for record in sacct[job]:
                used = used + record.hours_for(shape.gpus)
                queued += record.pending_s or 0.0
                queue_known = True
            sources.add(SACCT)
        else:
            seconds = sum(s for (j, _), s in spans.items() if j == job)
            used = used + Hours.held(shape, seconds)
            sources.add(EVENTS)
    return TrialUsage(used, queued if queue_known else None, "+".join(sorted(sources)) or EVENTS)


@dataclass(frozen=True)
class ExperimentUsage:
    """An experiment's allocation: its trials', the idle part, and the sum Slurm charged."""

    trials: dict[str, TrialUsage]
    idle: Hours | None  # pool slots that held nothing (None: unknown, no accounting)
    queued_s: float | None  # job-per-trial: seconds trials' jobs waited PENDING, summed
    used: Hours  # trials + idle: the allocation spent

    @property
    def trial_total(self) -> Hours:
        return total(u.used for u in self.trials.values())

    def idle_share(self, unit: str = "cpu") -> float | None:
        """Idle / used, in ``unit`` (None: idle unknown or nothing used)."""
        if self.idle is None or not self.used.of(unit):
            return None
        return self.idle.of(unit) / self.used.of(unit)


def experiment_usage(
    trials: Mapping[str, TrialUsage], pool_tasks: Iterable[Hours] | None
) -> ExperimentUsage:
    """The experiment's figures: the trials' usage, plus what pool tasks held beyond their runs
    (``pool_tasks``: what each pool task held by sacct's records, ``SacctRecord.hours_for``
    its GPUs; None: no accounting, idle unknown)."""
    trial_sum = total(u.used for u in trials.values())
    known = [u.queued_s for u in trials.values() if u.queued_s is not None]
    queued = sum(known) if known else None
    pooled = total(u.used for u in trials.values() if POOL in u.source.split("+"))
    idle = (
        total(pool_tasks) - pooled if pool_tasks is not None else None if pooled.wall else Hours()
    )
    return ExperimentUsage(dict(trials), idle, queued, trial_sum + (idle or Hours()))


def fmt_hours(hours: Hours | None, unit: str = "cpu") -> str:
    """A short cell: ``1.25`` (hours in ``unit``), blank when unknown."""
    return "" if hours is None else f"{hours.of(unit):.3g}"


def describe_usage(usage: ExperimentUsage) -> str:
    """One line for footers and ``hpctune status``: used CPU/GPU/node-hours, idle and queue time."""
    u = usage.used
    parts = [f"used {u.cpu:.3g} CPU-h, {u.gpu:.3g} GPU-h, {u.node:.3g} node-h"]
    share = usage.idle_share("cpu")
    if usage.idle is not None and usage.idle.cpu:
        parts.append(
            f"idle pool slots {usage.idle.cpu:.3g} CPU-h"
            + (f" ({share:.0%})" if share is not None else "")
        )
    if usage.queued_s:
        parts.append(f"queued {usage.queued_s / 3600:.3g} trial-h")
    sources = sorted({s for t in usage.trials.values() for s in t.source.split("+")})
    if sources:
        parts.append(f"from {'+'.join(sources)}")
    return "; ".join(parts)


#: the per-trial columns of ``hpctune trials``, ``get_dataframe()`` and the HDF5 summary
USAGE_COLUMNS = ("cpu_hours", "gpu_hours", "node_hours")


def usage_columns(usage: TrialUsage | None) -> dict[str, float | None]:
    """A trial's ``USAGE_COLUMNS`` (None each: not measured yet, or an older experiment)."""
    if usage is None:
        return dict.fromkeys(USAGE_COLUMNS)
    return {"cpu_hours": usage.used.cpu, "gpu_hours": usage.used.gpu, "node_hours": usage.used.node}


def usage_lines(usage: ExperimentUsage | None, budget: Mapping[str, Any] | None) -> list[str]:
    """What the live table's footer and ``hpctune status`` say about the allocation."""
    lines = [] if usage is None else [f"Allocation {describe_usage(usage)}"]
    if budget:
        unit = "GPU-hours" if budget.get("unit") == "gpu" else "CPU-hours"
        used = 0.0 if usage is None else usage.used.of(str(budget.get("unit")))
        limit = float(budget.get("limit") or 0)
        share = f" ({used / limit:.0%})" if limit else ""
        lines.append(f"Allocation budget: {limit:g} {unit}, {used:.3g} used{share}")
        if budget.get("stopped"):
            lines.append(
                f"Stopped by its budget: {budget['stopped']}; `hpctune resume EXP "
                f"--{budget.get('unit')}-hours-budget N` continues with a larger one"
            )
    return lines


def short_usage(usage: ExperimentUsage | None) -> str:
    """The ``hpctune ls`` cell: ``1.2 GPU-h`` where GPUs were used, else ``3.4 CPU-h``."""
    if usage is None:
        return ""
    return f"{usage.used.gpu:.3g} GPU-h" if usage.used.gpu else f"{usage.used.cpu:.3g} CPU-h"


#: the sshare fields ``fairshare_line`` reads, in this order (``slurm_commands.sshare_args``)
SSHARE_FIELDS = "Account,User,RawShares,EffectvUsage,FairShare"


def fairshare_line(text: str) -> str | None:
    """One line from ``sshare -n -P -U -o SSHARE_FIELDS``: each account's fair-share factor (1:
    under its share, 0: far over) and effective usage; None when it lists nothing."""
    parts = []
    for line in text.splitlines():
        fields = [f.strip() for f in line.split("|")]
        if len(fields) == 5 and fields[1]:
            account, _, shares, usage, factor = fields
            parts.append(
                f"account {account}: fair-share {factor or '-'}, effective usage "
                f"{usage or '-'}, shares {shares or '-'}"
            )
    return ("Fair-share (sshare): " + "; ".join(parts)) if parts else None
