"""The inputs of a cost estimate, read from a Tuner (a script's, or an experiment file's).

``estimate_for_tuner(tuner, billing)`` is what ``Tuner.preview_sbatch()``, ``hpctune submit
--dry-run`` and a budget check call: it reads the trial count, the resources of a trial,
the time limit, retries, the worker pool and the stopping rules from the Tuner, and the
billing weights the caller looked up (``SlurmBackend.billing_weights``, one ``scontrol``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from hpctune.accounting.estimate import (
    BillingWeights,
    CostEstimate,
    CostInputs,
    IterationBound,
    TrialShape,
    asha_bound,
    describe,
    estimate,
    hyperband_bound,
    iteration_limit,
)
from hpctune.config import budget_seconds

if TYPE_CHECKING:
    from hpctune.tune.tuner import Tuner


def estimate_for_tuner(tuner: Tuner, billing: str | None = None,
                       seconds_per_iteration: float | None = None) -> CostEstimate:
    """The worst-case cost of the experiment ``tuner.fit()`` would run; ``billing`` is the
    partition's ``TRESBillingWeights`` text (None: unweighted)."""
    return estimate(cost_inputs(tuner, billing, seconds_per_iteration))


def with_cost(script: str, tuner: Tuner, billing: str | None) -> str:
    """An sbatch preview followed by the experiment's worst-case cost as ``#`` lines (sbatch
    reads no directive after the command, so the script runs the same)."""
    return f"{script.rstrip()}\n{describe(estimate_for_tuner(tuner, billing))}\n"


def cost_inputs(tuner: Tuner, billing: str | None = None,
                seconds_per_iteration: float | None = None) -> CostInputs:
    """Everything ``estimate`` needs, from the Tuner's configs (nothing is submitted or written)."""
    from hpctune.backends.pool_settings import pooled_on_slurm
    from hpctune.core.resources import resources_for
    from hpctune.pool.slots import default_slots

    tc, slurm = tuner.tune_config, tuner.slurm_config
    resources = resources_for(tuner.trainable, {})
    trials = trial_count(tuner)
    failures = tuner.run_config.failure_config.max_failures
    pooled = tuner.backend_name == "slurm" and pooled_on_slurm(tc, tuner.trainable, slurm)
    return CostInputs(
        trials=trials, shape=TrialShape.from_resources(resources), time_limit_min=slurm.time_min,
        attempts=None if failures < 0 else 1 + failures,
        bound=stopping_bound(tc.scheduler, tuner.run_config.stop, trials),
        seconds_per_iteration=seconds_per_iteration,
        billing=BillingWeights.parse(billing) if billing else None,
        pool_slots=default_slots(resources, slurm.pool_slots_per_task) if pooled else None,
        max_concurrent=tc.max_concurrent_trials, time_budget_s=budget_seconds(tc.time_budget_s))


def trial_count(tuner: Tuner) -> int | None:
    """Grid variants x ``num_samples`` (the searcher's own count); a model-based searcher's
    ``num_samples``; None when unbounded (``num_samples=-1``)."""
    total = getattr(tuner._searcher(), "total_trials", None)
    if total is not None:
        return int(total)
    samples = tuner.tune_config.num_samples
    return None if samples is None or samples < 0 else int(samples)


def stopping_bound(scheduler: Any, stop: Any, trials: int | None) -> IterationBound | None:
    """The tightest iteration bound of the scheduler (ASHA, HyperBand) and ``RunConfig(stop)``
    (``{"training_iteration": n}``, ``MaximumIterationStopper``); None when neither bounds one."""
    bounds = [b for b in (_scheduler_bound(scheduler, trials), _stop_bound(stop)) if b is not None]
    return min(bounds, key=lambda b: b.total if b.total is not None else (b.per_trial or 0) * (trials or 1),
               default=None)


def _scheduler_bound(scheduler: Any, trials: int | None) -> IterationBound | None:
    from hpctune.tune.schedulers.async_hyperband import AsyncHyperBandScheduler
    from hpctune.tune.schedulers.hyperband import HyperBandScheduler

    if isinstance(scheduler, AsyncHyperBandScheduler) and scheduler._stop_last_trials:
        first = scheduler._brackets[0]  # its rungs, highest first: grace_period is the lowest
        return asha_bound(scheduler._max_t, first.rungs[-1].milestone, first.rf, trials,
                          scheduler._time_attr)
    if isinstance(scheduler, HyperBandScheduler) and scheduler._stop_last_trials:
        return hyperband_bound(scheduler._max_t, scheduler._eta, trials, scheduler._time_attr)
    return None


def _stop_bound(stop: Any) -> IterationBound | None:
    from hpctune.tune.stopper import MaximumIterationStopper

    if isinstance(stop, MaximumIterationStopper):
        return iteration_limit(stop._max_iter, f"MaximumIterationStopper({stop._max_iter})")
    if isinstance(stop, dict) and isinstance(stop.get("training_iteration"), (int, float)):
        n = stop["training_iteration"]
        return iteration_limit(n, f"stop={{'training_iteration': {n}}}")
    return None


def allocation_meter(tuner: Tuner) -> Any:
    """What measures the allocation used (``usage.json``) and enforces TuneConfig's budget:
    with a budget, at every poll, each trial's worst case from the estimate (its time limit)."""
    from dataclasses import replace

    from hpctune.accounting.budget import budget_of
    from hpctune.accounting.meter import LIVE_INTERVAL_S, AllocationMeter

    tc = tuner.tune_config
    budget = budget_of(tc.gpu_hours_budget, tc.cpu_hours_budget)
    poll = tuner.slurm_config.poll_interval_s
    if budget is None:
        return AllocationMeter(interval_s=max(poll, LIVE_INTERVAL_S))
    inputs = cost_inputs(tuner)
    print(f"hpctune: allocation budget of {budget.limit:g} {budget.name}; the experiment's worst "
          f"case (no trial is launched that could pass the budget):\n{describe(estimate(inputs))}",
          file=sys.stderr)
    one = replace(inputs, trials=1, attempts=1, max_concurrent=None, time_budget_s=None, pool_slots=None)
    return AllocationMeter(budget, estimate(one).trial_hours, interval_s=poll)


def with_budget(tune_config: Any, gpu_hours: float | None, cpu_hours: float | None) -> None:
    """A restored experiment's new budget (``Tuner.restore(..., gpu_hours_budget=N)``, ``hpctune
    resume --gpu-hours-budget N``) in place of the saved one; none given: the saved one stays."""
    from hpctune.accounting.budget import budget_of

    if gpu_hours is None and cpu_hours is None:
        return
    budget_of(gpu_hours, cpu_hours)  # ConfigError before anything runs
    tune_config.gpu_hours_budget, tune_config.cpu_hours_budget = gpu_hours, cpu_hours
