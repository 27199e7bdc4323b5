"""Population Based Training (Jaderberg et al. 2017), as Ray Tune's PopulationBasedTraining.

Every ``perturbation_interval`` (in ``time_attr`` units, after ``burn_in_period``) a
trial's latest score places it in the population: a trial in the bottom
``quantile_fraction`` returns ``Exploit(donor, new_config)``, the donor drawn from the top
``quantile_fraction`` and the config explored from the donor's (``pbt_explore``). The
controller enacts it: the trial continues from the donor's latest checkpoint with the new
config, under its own trial id.

With ``synch=True`` a trial that reaches a perturbation point PAUSEs (checkpoints and
exits, releasing its Slurm allocation) until every live trial has reached it; then the
whole population is ranked at once and each paused trial gets its decision when it is
resubmitted (``resume_decision``). A trial that ends or fails leaves the barrier.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hpctune.core.checks import check_number
from hpctune.core.decision_points import EVERY, DecisionPoints, periodic
from hpctune.core.metrics import flat_value
from hpctune.core.objective import check_state_version
from hpctune.core.seeding import root_seed
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.pbt_explore import check_mutations, explore, fill_config, perturbed_tag
from hpctune.tune.schedulers.trial_scheduler import (
    Decision,
    Exploit,
    SchedulerDecision,
    TrialScheduler,
)

STATE_VERSION = 1


@dataclass
class TrialState:
    """What PBT remembers of one trial (Ray's ``_PBTTrialState``); ``score`` is signed so
    that larger is better."""

    orig_tag: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    last_score: float | None = None
    last_perturbation_time: float = 0.0
    last_train_time: float = 0.0
    finished: bool = False
    #: reporting now; False until its first result and after a PAUSE (it waits for a slot):
    #: Ray's PENDING/PAUSED, which make others pause to share the slots
    running: bool = False
    #: the latest ``time_attr`` it reported: where a recipient of its checkpoint goes on from
    last_seen_time: float = 0.0


class PopulationBasedTraining(TrialScheduler):
    """PBT: the bottom of the population continues from the top's checkpoints, perturbed.

    Args (as Ray's):
        time_attr: monotonically increasing result field measuring progress.
        metric, mode: objective and direction; may come from TuneConfig.
        perturbation_interval: time between two perturbations of a trial (> 0).
        burn_in_period: no perturbation before this time.
        hyperparam_mutations: per key a list of values, a search-space object, a function
            without arguments, or a dict of those (see ``pbt_explore``). Keys missing from
            a trial's config are sampled from it when the trial is added.
        quantile_fraction: the top and bottom fraction, in [0, 0.5]; the quantiles hold
            ``ceil(N * q)`` trials, at most ``N / 2``; equal scores keep the order trials
            were added in.
        resample_probability: chance of drawing a fresh value instead of perturbing.
        perturbation_factors: the factors a continuous value is multiplied by.
        custom_explore_fn: ``f(config) -> config`` applied after the built-in explore.
        log_config: write ``pbt_global.txt`` and ``pbt_policy_<trial>.txt`` (Ray's files).
        require_attrs: a result without ``time_attr`` or the metric is an error (else ignored).
        synch: synchronous PBT (a barrier at every perturbation point).
        seed, rng: the randomness of donors and exploration (give at most one). Without
            either, the seed is drawn from Python's ``random`` when the scheduler is made
            (Ray's PBT draws from the module-level ``random``): ``random.seed(1234)`` before
            it, as in Ray's reproducibility recipe, makes the same perturbations.

    The donor's *latest persisted* checkpoint is used: report a checkpoint at least every
    ``perturbation_interval`` (Ray asks the donor to save one at that moment).
    """

    metric_required = True

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        perturbation_interval: float = 60.0,
        burn_in_period: float = 0.0,
        hyperparam_mutations: Mapping[str, Any] | None = None,
        quantile_fraction: float = 0.25,
        resample_probability: float = 0.25,
        perturbation_factors: tuple[float, ...] = (1.2, 0.8),
        custom_explore_fn: Callable[[dict], dict] | None = None,
        log_config: bool = True,
        require_attrs: bool = True,
        synch: bool = False,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ):
        super().__init__(metric, mode)
        mutations = dict(hyperparam_mutations or {})
        _validate(mutations, custom_explore_fn, quantile_fraction, perturbation_interval,
                  burn_in_period, resample_probability, perturbation_factors)
        if seed is not None and rng is not None:
            raise ConfigError("Give PopulationBasedTraining either `seed` or `rng`, not both.")
        self._time_attr = time_attr
        self._perturbation_interval = perturbation_interval
        self._burn_in_period = burn_in_period
        self._hyperparam_mutations = mutations
        self._quantile_fraction = quantile_fraction
        self._resample_probability = resample_probability
        self._perturbation_factors = tuple(perturbation_factors)
        self._custom_explore_fn = custom_explore_fn
        self.log_config = log_config
        self._require_attrs = require_attrs
        self._synch = synch
        self._rng = rng if rng is not None else np.random.default_rng(root_seed(seed))
        self._trials: dict[str, TrialState] = {}
        self._next_perturbation_sync = max(perturbation_interval, burn_in_period)
        self._waiting: set[str] = set()  # paused (synch: at the barrier) until resumed
        self._pending: dict[str, SchedulerDecision] = {}  # synch: decided, handed out on resume
        self._num_checkpoints = 0
        self._num_perturbations = 0

    # -- the population ------------------------------------------------------------------------
    def on_trial_add(self, trial: TrialInfo) -> None:
        self._check_ready()
        config = fill_config(trial.config, self._hyperparam_mutations, self._rng)
        self._trials[trial.trial_id] = TrialState(trial.experiment_tag.split("@perturbed")[0], config)

    def initial_config(self, trial: TrialInfo) -> dict[str, Any] | None:
        """The trial's config with the mutated keys it lacked sampled (None: nothing lacked)."""
        state = self._trials.get(trial.trial_id)
        return dict(state.config) if state is not None and state.config != dict(trial.config) else None

    def _state(self, trial: TrialInfo) -> TrialState:
        if trial.trial_id not in self._trials:
            self.on_trial_add(trial)
        return self._trials[trial.trial_id]

    def on_trial_result(self, trial: TrialInfo, result: dict) -> SchedulerDecision:
        self._check_ready()
        state = self._state(trial)
        state.config = dict(trial.config)  # the config it runs with now
        if trial.trial_id in self._waiting or trial.trial_id in self._pending:
            return Decision.CONTINUE  # reported before its pause took effect: already judged
        state.running = True
        found = self._time_and_value(trial, result)
        if found is None:
            return Decision.CONTINUE
        time, value = found
        state.last_seen_time = time
        if time < self._burn_in_period or time - state.last_perturbation_time < self._perturbation_interval:
            return Decision.CONTINUE
        score = -math.inf if math.isnan(value) else self._sign * value  # NaN: the worst
        state.last_score, state.last_train_time = score, time
        self._on_score(trial.trial_id, time, score)
        if self._synch:
            return self._synch_result(trial.trial_id, time)
        state.last_perturbation_time = time
        decision = self._checkpoint_or_exploit(trial.trial_id, *self._quantiles())
        if decision is Decision.CONTINUE and any(
                not s.running for tid, s in self._live() if tid != trial.trial_id):
            decision = Decision.PAUSE  # others wait for a slot: take turns (Ray's time sharing)
            self._waiting.add(trial.trial_id)  # until the driver resumes it (resume_decision)
            state.running = False
        # an exploited trial goes back to the queue in the slot it left: nobody waits for it
        return decision

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        """With ``time_attr="training_iteration"``: the trial's next perturbation point and every
        ``perturbation_interval`` after it (an exploit or a pause relaunches the trial, which
        declares anew); else every result."""
        if self._time_attr != "training_iteration":
            return EVERY
        state = self._trials.get(trial.trial_id)
        last = state.last_perturbation_time if state is not None else 0.0
        return periodic(max(self._burn_in_period, last + self._perturbation_interval),
                        self._perturbation_interval)

    def _synch_result(self, trial_id: str, time: float) -> SchedulerDecision:
        if any(s.last_train_time < self._next_perturbation_sync
               for tid, s in self._live() if tid != trial_id):
            self._waiting.add(trial_id)
            self._trials[trial_id].running = False
            return Decision.PAUSE
        decision = self._perturb_all(time, current=trial_id)
        self._trials[trial_id].running = decision is Decision.CONTINUE
        return decision

    def _time_and_value(self, trial: TrialInfo, result: dict) -> tuple[float, float] | None:
        """(time, metric) of the result; None when one is missing and ``require_attrs`` is off."""
        values = []
        for key in (self._time_attr, self._metric):
            value = flat_value(result, key)
            if isinstance(value, numbers.Real) and not isinstance(value, bool):
                values.append(float(value))
            elif self._require_attrs:
                raise ConfigError(
                    f"PopulationBasedTraining needs `{key}` in every result, but trial "
                    f"{trial.trial_id} reported {sorted(result)[:12]}: report it with "
                    "tune.report(), or set PopulationBasedTraining(require_attrs=False) to let "
                    "such results pass without a decision.")
            else:
                return None
        return values[0], values[1]

    def _live(self) -> list[tuple[str, TrialState]]:
        return [(tid, s) for tid, s in self._trials.items() if not s.finished]

    def _quantiles(self) -> tuple[list[str], list[str]]:
        """(bottom, top) trial ids among live trials with a score; sorted stably by score."""
        ranked = [tid for tid, s in self._live() if s.last_score is not None]
        ranked.sort(key=lambda tid: self._trials[tid].last_score)
        if len(ranked) <= 1:
            return [], []
        count = int(math.ceil(len(ranked) * self._quantile_fraction))
        if count > len(ranked) / 2:
            count = int(math.floor(len(ranked) / 2))
        if count == 0:
            return [], []
        return ranked[:count], ranked[-count:]

    def _checkpoint_or_exploit(self, trial_id: str, lower: list[str], upper: list[str]) -> SchedulerDecision:
        if trial_id in upper:
            self._num_checkpoints += 1  # a donor: its latest checkpoint is what others copy
        if trial_id not in lower:
            return Decision.CONTINUE
        donor = upper[int(self._rng.integers(len(upper)))]
        return self._exploit(trial_id, donor)

    def _on_score(self, trial_id: str, time: float, score: float) -> None:
        """A trial was judged with ``score`` at ``time`` (PB2 keeps these as its data)."""

    def _new_config(self, trial_id: str, donor: str) -> dict[str, Any]:
        """The recipient's next config: the donor's, explored (PB2 asks its bandit instead)."""
        new_config, _ = explore(self._trials[donor].config, self._hyperparam_mutations,
                                self._resample_probability, self._perturbation_factors,
                                self._custom_explore_fn, self._rng)
        return new_config

    def _exploit(self, trial_id: str, donor: str) -> Exploit:
        recipient, source = self._trials[trial_id], self._trials[donor]
        new_config = self._new_config(trial_id, donor)
        self._num_perturbations += 1
        # Ray's donor checkpoints at its perturbation; ours goes on from its latest checkpoint
        recipient.last_perturbation_time = max(source.last_perturbation_time, source.last_seen_time)
        recipient.last_train_time = source.last_train_time
        recipient.config = new_config
        tag = perturbed_tag(recipient.orig_tag, new_config, self._hyperparam_mutations)
        return Exploit(donor, new_config, self.log_config, tag)

    # -- synchronous mode -------------------------------------------------------------------------
    def _perturb_all(self, time: float, current: str | None = None) -> SchedulerDecision:
        """Every live trial reached the barrier: rank them all at once (donors first)."""
        lower, upper = self._quantiles()
        live = [tid for tid, _ in self._live()]
        middle = [tid for tid in live if tid not in lower and tid not in upper]
        decision: SchedulerDecision = Decision.CONTINUE
        for tid in [t for t in upper if t in live] + middle + [t for t in lower if t in live]:
            self._trials[tid].last_perturbation_time = time
            outcome = self._checkpoint_or_exploit(tid, lower, upper)
            if tid == current:
                decision = outcome
            else:
                self._pending[tid] = outcome
                self._trials[tid].running = False
        self._waiting.clear()
        latest = max((s.last_train_time for s in self._trials.values()), default=0.0)
        self._next_perturbation_sync = max(self._next_perturbation_sync + self._perturbation_interval,
                                           latest)
        return decision

    def resume_decision(self, trial: TrialInfo) -> SchedulerDecision | None:
        if trial.trial_id in self._pending:
            return self._pending.pop(trial.trial_id)
        if self._synch and trial.trial_id in self._waiting:
            return None  # the others have not reached the barrier yet
        self._waiting.discard(trial.trial_id)  # paused to share the slots: its turn again
        return Decision.CONTINUE

    def _leave(self, trial: TrialInfo) -> None:
        """A trial ended: out of the ranking and of the barrier, which it may release."""
        state = self._trials.get(trial.trial_id)
        if state is not None:
            state.finished = True
        self._waiting.discard(trial.trial_id)
        self._pending.pop(trial.trial_id, None)
        live = [s for _, s in self._live()]
        if self._synch and self._waiting and all(
                s.last_train_time >= self._next_perturbation_sync for s in live):
            self._perturb_all(max(s.last_train_time for s in live))

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        self._leave(trial)

    def on_trial_error(self, trial: TrialInfo) -> None:
        self._leave(trial)

    def on_trial_remove(self, trial: TrialInfo) -> None:
        self._leave(trial)

    # -- state ----------------------------------------------------------------------------------------
    def get_state(self) -> dict:
        """Everything a restored driver needs to continue the population (picklable)."""
        return {
            "version": STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "trials": {tid: asdict(s) for tid, s in self._trials.items()},
            "next_perturbation_sync": self._next_perturbation_sync,
            "waiting": sorted(self._waiting),
            "pending": dict(self._pending),
            "counts": [self._num_checkpoints, self._num_perturbations],
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict) -> None:
        check_state_version(state, STATE_VERSION, self)
        self._metric, self._mode = state["metric"], state["mode"]
        self._trials = {tid: TrialState(**s) for tid, s in state["trials"].items()}
        self._next_perturbation_sync = state["next_perturbation_sync"]
        self._waiting = set(state["waiting"])
        self._pending = dict(state["pending"])
        self._num_checkpoints, self._num_perturbations = state["counts"]
        self._rng.bit_generator.state = state["rng"]

    def debug_string(self) -> str:
        return (f"PopulationBasedTraining: {self._num_checkpoints} checkpoints, "
                f"{self._num_perturbations} perturbs")


def _validate(mutations: dict, custom_explore_fn: Any, quantile_fraction: float,
              perturbation_interval: float, burn_in_period: float, resample_probability: float,
              perturbation_factors: tuple[float, ...]) -> None:
    if not mutations and custom_explore_fn is None:
        raise ConfigError(
            "PopulationBasedTraining needs `hyperparam_mutations` or `custom_explore_fn` (or "
            "both): e.g. PopulationBasedTraining(hyperparam_mutations={'lr': tune.loguniform(1e-4, 1e-1)}).")
    check_mutations(mutations)
    if custom_explore_fn is not None and not callable(custom_explore_fn):
        raise ConfigError(f"The value of `custom_explore_fn` is {custom_explore_fn!r}, but must be "
                          "a function f(config) -> config.")
    check_number("quantile_fraction", quantile_fraction, 0, strict=False)
    if quantile_fraction > 0.5:
        raise ConfigError(f"The value of `quantile_fraction` is {quantile_fraction!r}, but must be "
                          "between 0 and 0.5.")
    check_number("perturbation_interval", perturbation_interval, 0)
    check_number("burn_in_period", burn_in_period, 0, strict=False)
    check_number("resample_probability", resample_probability, 0, strict=False)
    if resample_probability > 1:
        raise ConfigError(f"The value of `resample_probability` is {resample_probability!r}, but "
                          "must be between 0 and 1.")
    if not perturbation_factors:
        raise ConfigError("The value of `perturbation_factors` is empty, but must hold at least "
                          "one factor, e.g. (1.2, 0.8).")
    for factor in perturbation_factors:
        check_number("perturbation_factors", factor, 0, strict=False)
