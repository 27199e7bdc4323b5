"""The worst-case cost of an experiment before it is submitted: a pure function of plain inputs.

``estimate(CostInputs(...))`` multiplies what a trial may hold (nodes, CPUs, GPUs) by how
long it may hold it, over every trial and retry, and says which rule gave each bound:

* time: a trial's job ends at its time limit (``SlurmConfig(time_min)``). Iteration limits
  (``stop={"training_iteration": n}``, ASHA/HyperBand's ``max_t``) bound time only when the
  seconds per iteration are known; otherwise they are reported in trial-iterations.
* trials: grid variants x ``num_samples`` (None: ``num_samples=-1``, unbounded), each run
  up to ``1 + max_failures`` times.
* billing: Slurm's ``TRESBillingWeights`` of the partition (``CPU``, ``Mem``, ``Node``,
  ``GRES/gpu``), summed as Slurm sums them; without weights Slurm bills one unit per CPU.

Nothing here reads Slurm, a clock or a file (``accounting/from_tuner.py`` gathers the inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

#: the billing units of a trial whose partition has no TRESBillingWeights: one per CPU (Slurm's rule)
UNWEIGHTED = "unweighted (the partition has no TRESBillingWeights): billing = CPUs"


@dataclass(frozen=True)
class TrialShape:
    """What one trial holds while it runs, all its tasks and nodes together."""

    nodes: int = 1
    cpus: int = 1
    gpus: float = 0
    mem_gb: float | None = None  # all nodes together; None: not requested (the partition's default)

    @classmethod
    def from_resources(cls, resources: dict[str, Any]) -> TrialShape:
        """From a normalised resource request (``core/resources.py``): ``cpu`` is per task,
        ``gpu`` and ``mem_gb`` per node, ``gpus_per_task`` per task; a request of ``tasks``
        without ``nodes`` may span up to one node per task (Slurm's ``--nodes=1-N``)."""
        tasks = (int(resources["tasks"]) if resources.get("tasks")
                 else int(resources.get("nodes") or 1) * int(resources.get("tasks_per_node") or 1))
        nodes = int(resources.get("nodes") or (tasks if resources.get("tasks") else 1))
        gpus = float(resources.get("gpu") or 0) * nodes + int(resources.get("gpus_per_task") or 0) * tasks
        mem = resources.get("mem_gb")
        return cls(nodes=nodes, cpus=int(resources.get("cpu") or 1) * tasks, gpus=gpus,
                   mem_gb=None if mem is None else float(mem) * nodes)


@dataclass(frozen=True)
class IterationBound:
    """What the stopping rules bound, in iterations of ``time_attr``: per trial, and for all
    trials together where the rule bounds the sum more tightly (HyperBand's brackets)."""

    rule: str  # e.g. "stop={'training_iteration': 10}", "ASHA max_t=81"
    per_trial: float | None = None
    total: float | None = None
    jobs_per_trial: int = 1  # HyperBand: each pause at a milestone resubmits the trial
    time_attr: str = "training_iteration"
    note: str = ""


@dataclass(frozen=True)
class BillingWeights:
    """A partition's ``TRESBillingWeights``: billing units per CPU, per GB of memory, per
    node and per GPU. ``text`` is Slurm's own spelling, shown with the estimate."""

    cpu: float = 0.0
    mem_per_gb: float = 0.0
    node: float = 0.0
    gpu: float = 0.0
    text: str = ""

    @classmethod
    def parse(cls, text: str) -> BillingWeights:
        """``CPU=1.0,Mem=0.25G,GRES/gpu=2.0``: a ``Mem`` weight is per MB unless it ends in
        G (per GB) or T (per TB); ``GRES/gpu:a100=...`` counts as the GPU weight; other TRES
        (licenses, burst buffers) are not requested by hpctune and are left out."""
        values: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, raw = item.partition("=")
            key = key.strip().lower()
            unit = {"k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2}.get(raw[-1:].lower())
            number = float(raw[:-1] if unit is not None else raw)
            if key == "mem":
                values["mem_per_gb"] = number * 1024 / (unit or 1.0)  # per MB -> per GB
            elif key in ("cpu", "node"):
                values[key] = number
            elif key == "gres/gpu" or key.startswith("gres/gpu:"):
                values["gpu"] = max(values.get("gpu", 0.0), number)
        return cls(**values, text=text.strip())

    def units(self, shape: TrialShape) -> float:
        """Billing units of one trial per hour: Slurm's sum of weight x TRES."""
        return (self.cpu * shape.cpus + self.gpu * shape.gpus + self.node * shape.nodes
                + self.mem_per_gb * (shape.mem_gb or 0.0))


@dataclass(frozen=True)
class CostInputs:
    """Everything the estimate depends on."""

    trials: int | None  # None: unbounded (num_samples=-1)
    shape: TrialShape
    time_limit_min: float  # per job: SlurmConfig(time_min)
    attempts: int | None = 1  # 1 + max_failures; None: retried forever
    bound: IterationBound | None = None
    seconds_per_iteration: float | None = None
    billing: BillingWeights | None = None
    pool_slots: int | None = None  # trials per pool task; None: one job per trial
    max_concurrent: int | None = None
    time_budget_s: float | None = None  # TuneConfig(time_budget_s): the experiment's wall time


@dataclass(frozen=True)
class CostEstimate:
    """The worst case, and the rules that bound it. Hours are None where nothing bounds them."""

    trials: int | None
    jobs: int | None
    trial_hours: float | None  # summed over every trial run
    node_hours: float | None
    cpu_hours: float | None
    gpu_hours: float | None
    billing_hours: float | None  # billing units x hours (CPU-hours when unweighted)
    trial_iterations: float | None  # what the stopping rules allow over all trials
    bounded_by: str  # which rule gave trial_hours
    billing: str  # the weights applied, or UNWEIGHTED
    notes: tuple[str, ...] = field(default_factory=tuple)


def estimate(inputs: CostInputs) -> CostEstimate:
    """The worst-case cost of an experiment (see the module docstring for the rules)."""
    shape, bound, notes = inputs.shape, inputs.bound, []
    runs = None if inputs.trials is None or inputs.attempts is None else inputs.trials * inputs.attempts
    iterations = _iterations(inputs.trials, bound)
    hours, bounded_by = _trial_hours(inputs, runs, iterations, notes)
    if inputs.trials is None:
        notes.append("num_samples=-1: trials are unbounded, and so is the cost")
    if inputs.attempts is None:
        notes.append("max_failures=-1: a failing trial is retried forever, so the cost is unbounded")
    elif inputs.attempts > 1:
        notes.append(f"each trial counted {inputs.attempts} times (1 + max_failures)")
    if bound is not None and inputs.seconds_per_iteration is None and bound.per_trial is not None:
        notes.append(f"{bound.rule} bounds {bound.time_attr}, not time: with no seconds per "
                     "iteration known, the time limit is the bound")
    if bound is not None and bound.note:
        notes.append(bound.note)
    notes.append("a trial that checkpoints at the time-limit warning requeues itself: each requeue "
                 "adds up to one more time limit, not counted here")
    weights = inputs.billing
    units = weights.units(shape) if weights is not None else float(shape.cpus)
    if weights is not None and weights.mem_per_gb and shape.mem_gb is None:
        notes.append("no memory requested: its billing weight (Mem) is not counted")
    return CostEstimate(
        trials=inputs.trials, jobs=_jobs(runs, bound, inputs.pool_slots), trial_hours=hours,
        node_hours=_times(hours, shape.nodes), cpu_hours=_times(hours, shape.cpus),
        gpu_hours=_times(hours, shape.gpus), billing_hours=_times(hours, units),
        trial_iterations=iterations, bounded_by=bounded_by,
        billing=f"TRESBillingWeights={weights.text}" if weights is not None else UNWEIGHTED,
        notes=tuple(notes))


def describe(cost: CostEstimate) -> str:
    """The estimate as ``#`` comment lines: printed by ``hpctune submit --dry-run`` and at the
    end of ``Tuner.preview_sbatch()`` (sbatch reads no directive after the command)."""
    def fig(value: float | None) -> str:
        return "unbounded" if value is None else f"{value:,.1f}"

    trials = "unbounded" if cost.trials is None else str(cost.trials)
    jobs = "unbounded" if cost.jobs is None else str(cost.jobs)
    lines = [f"worst-case cost: {trials} trials, {jobs} Slurm jobs",
             f"  node-hours {fig(cost.node_hours)}, CPU-hours {fig(cost.cpu_hours)}, "
             f"GPU-hours {fig(cost.gpu_hours)}, billing units x hours {fig(cost.billing_hours)}",
             f"  bounded by: {cost.bounded_by}", f"  billing: {cost.billing}"]
    if cost.trial_iterations is not None:
        lines.append(f"  stopping rules allow {cost.trial_iterations:,g} trial-iterations in all")
    lines += [f"  note: {note}" for note in cost.notes]
    return "\n".join(f"# {line}" for line in lines)


def _iterations(trials: int | None, bound: IterationBound | None) -> float | None:
    """Trial-iterations the stopping rules allow over all trials (before retries)."""
    if bound is None:
        return None
    if bound.total is not None:
        return bound.total
    return None if trials is None or bound.per_trial is None else trials * bound.per_trial


def _trial_hours(inputs: CostInputs, runs: int | None, iterations: float | None,
                 notes: list[str]) -> tuple[float | None, str]:
    """Trial-hours over every run: the time limit, or iterations x seconds where tighter,
    capped by ``time_budget_s`` x ``max_concurrent`` when both are set."""
    limit_h = inputs.time_limit_min / 60
    per_job = (inputs.bound.jobs_per_trial if inputs.bound else 1) * limit_h
    candidates: list[tuple[float, str]] = []
    if runs is not None:
        candidates.append((runs * per_job, f"time limit {_minutes(inputs.time_limit_min)} per job"))
    if iterations is not None and inputs.seconds_per_iteration is not None and inputs.attempts is not None:
        by_iter = iterations * inputs.attempts * inputs.seconds_per_iteration / 3600
        rule = inputs.bound.rule if inputs.bound else ""
        candidates.append((by_iter, f"{rule} at {inputs.seconds_per_iteration:g} s per iteration"))
    if inputs.time_budget_s is not None and inputs.max_concurrent:
        # trials still running when the budget ends are stopped; at most max_concurrent at once
        candidates.append((inputs.max_concurrent * inputs.time_budget_s / 3600,
                           f"time_budget_s={inputs.time_budget_s:g} x max_concurrent_trials="
                           f"{inputs.max_concurrent}"))
    if not candidates:
        return None, "nothing: no bound on trials or their retries"
    return min(candidates, key=lambda c: c[0])


def _jobs(runs: int | None, bound: IterationBound | None, pool_slots: int | None) -> int | None:
    """Slurm jobs: one per trial run (and per HyperBand resume), or one pool task per
    ``pool_slots`` trial runs; slots change the number of jobs, never the hours."""
    if runs is None:
        return None
    if pool_slots:
        return math.ceil(runs / pool_slots)
    return runs * (bound.jobs_per_trial if bound else 1)


def _times(hours: float | None, amount: float) -> float | None:
    return None if hours is None else hours * amount


def _minutes(minutes: float) -> str:
    return f"{minutes:g} min"


# -- what the stopping rules bound ----------------------------------------------------------------
def iteration_limit(max_iter: float, rule: str, time_attr: str = "training_iteration") -> IterationBound:
    """``stop={"training_iteration": n}`` or ``MaximumIterationStopper(n)``: n per trial."""
    return IterationBound(rule=rule, per_trial=max_iter, time_attr=time_attr)


def asha_bound(max_t: float, grace_period: float, reduction_factor: float, trials: int | None,
               time_attr: str = "training_iteration") -> IterationBound:
    """ASHA promotes asynchronously: a trial better than every earlier one at each rung always
    goes on, so the worst case is every trial to ``max_t``. What the rungs cut when they cut as
    designed (the top 1/rf go on at each rung) is given in the note, as the expected figure."""
    rungs, m = [], grace_period
    while m <= max_t * (1 + 1e-12):
        rungs.append(m)
        m *= reduction_factor
    designed, previous, share = 0.0, 0.0, 1.0
    for rung in [*rungs, max_t]:
        designed += share * (rung - previous)
        previous, share = rung, share / reduction_factor
    note = f"ASHA's rungs at {', '.join(f'{r:g}' for r in rungs)}"
    if trials is not None:
        note += (f": when each keeps the top 1/{reduction_factor:g} as designed, about "
                 f"{trials * designed:g} trial-iterations, not a bound (promotion is asynchronous)")
    return IterationBound(rule=f"ASHA max_t={max_t:g}", per_trial=max_t, time_attr=time_attr, note=note)


def hyperband_bound(max_t: int, eta: float, trials: int | None,
                    time_attr: str = "training_iteration") -> IterationBound:
    """Synchronous HyperBand halves each bracket when all its trials reach a milestone, so its
    brackets bound the sum: trials fill brackets ``s = 0, 1, ...`` of ``ceil(s_max_1/(s+1) *
    eta**s)`` trials, starting at ``max_t * eta**-s``; each halving keeps ``ceil(n/eta)``."""
    s_max_1 = int(round(math.log(max_t) / math.log(eta))) + 1
    total, left, s, pauses = 0.0, trials, 0, 0
    while left is not None and left > 0:
        n0, r0 = int(math.ceil(s_max_1 / (s + 1) * eta**s)), int(max_t * eta**-s)
        if r0 > 0:
            live = min(n0, left)
            left -= live
            total += _bracket_iterations(live, n0, r0, s, max_t, eta)
            pauses = max(pauses, s)
        s = (s + 1) % s_max_1
    return IterationBound(rule=f"HyperBand max_t={max_t:g}", per_trial=max_t,
                          total=None if trials is None else total, jobs_per_trial=pauses + 1,
                          time_attr=time_attr)


def _bracket_iterations(live: int, n: int, r: int, halves: int, max_t: float, eta: float) -> float:
    """Iterations one bracket runs: ``live`` trials to its first milestone ``r``, then the
    ``ceil(n/eta)`` kept go on to each next milestone (Ray's schedule, ``hyperband.py``)."""
    total, done = live * r, r
    for _ in range(halves):
        n = int(math.ceil(n / eta))
        r = int(min(r * eta, max_t - done))
        live = min(live, n)
        total += live * max(r - done, 0)
        done = max(done, r)
    return total
