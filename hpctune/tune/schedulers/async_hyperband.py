"""Asynchronous Successive Halving (ASHA, Li et al. 2018), as Ray Tune's AsyncHyperBandScheduler.

Each bracket has rungs at ``grace_period * reduction_factor**(k + s)`` (``s`` is the
bracket index) up to ``max_t``. When a trial's ``time_attr`` first reaches a rung,
its metric is compared with the values other trials recorded there earlier: it
goes on only if it is at least the ``(1 - 1/reduction_factor)`` quantile of them
(the top ``1/reduction_factor``), and then its value is recorded. No trial waits
for others, which is what makes it asynchronous.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from hpctune.core.checks import check_number, require_number
from hpctune.core.decision_points import EVERY, DecisionPoints, at
from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.trial_scheduler import Decision, TrialScheduler

STATE_VERSION = 1


class _Rung:
    """One milestone and the (sign-adjusted, larger is better) scores recorded there."""

    def __init__(self, milestone: float, recorded: dict[str, float] | None = None):
        self.milestone = milestone
        self.recorded: dict[str, float] = dict(recorded or {})

    def cutoff(self, reduction_factor: float) -> float | None:
        """The score a newcomer must reach; None while nothing comparable is recorded.

        Ray's ``np.nanpercentile(recorded, (1 - 1/rf) * 100)`` with linear interpolation.
        """
        values = [v for v in self.recorded.values() if not math.isnan(v)]
        if not values:
            return None
        return float(np.percentile(values, (1 - 1 / reduction_factor) * 100))


class _Bracket:
    """The rungs of one bracket, highest milestone first."""

    def __init__(self, milestones: list[float], reduction_factor: float, stop_last_trials: bool):
        self.rf = reduction_factor
        self.stop_last_trials = stop_last_trials
        self.rungs = [_Rung(m) for m in sorted(milestones, reverse=True)]

    def on_result(self, trial_id: str, t: float, score: float) -> Decision:
        """Judge and record ``score`` at the highest rung ``t`` reached that lacks this trial.

        A NaN score is recorded but counts as the worst: it stops whenever the rung
        already holds a comparable (non-NaN) value.
        """
        for rung in self.rungs:
            seen = trial_id in rung.recorded
            if t >= rung.milestone and seen and not self.stop_last_trials:
                break  # already promoted past here: keep going (Ray's behaviour)
            if t < rung.milestone or seen:
                continue
            cutoff = rung.cutoff(self.rf)
            stop = cutoff is not None and (math.isnan(score) or score < cutoff)
            rung.recorded[trial_id] = score
            return Decision.STOP if stop else Decision.CONTINUE
        return Decision.CONTINUE

    def debug_str(self) -> str:
        parts = [f"Iter {r.milestone:.3f}: {r.cutoff(self.rf)}" for r in self.rungs]
        return "Bracket: " + " | ".join(parts)


def _num_rungs(grace_period: float, max_t: float, reduction_factor: float) -> int:
    """How many milestones ``grace_period * rf**k`` are <= max_t (exact, unlike int(log(...)))."""
    count = 0
    while grace_period * reduction_factor**count <= max_t * (1 + 1e-12):
        count += 1
    return count


def _validate(max_t: float, grace_period: float, reduction_factor: float, brackets: int) -> None:
    check_number("max_t", max_t, 0)
    if math.isinf(max_t):
        raise ConfigError("The value of `max_t` is inf, but must be finite.")
    check_number("grace_period", grace_period, 0)
    if grace_period > max_t:
        raise ConfigError(
            f"The value of `grace_period` is {grace_period!r}, but must be <= max_t ({max_t!r})."
        )
    check_number("reduction_factor", reduction_factor, 1)
    check_number("brackets", brackets, 0, integer=True)


class AsyncHyperBandScheduler(TrialScheduler):
    """ASHA: stop trials that are not in the top ``1/reduction_factor`` at a rung.

    Args:
        time_attr: monotonically increasing result field measuring progress.
        metric, mode: objective and direction ("min"/"max"); may come from TuneConfig.
        max_t: trials are stopped at ``max_t`` (when ``stop_last_trials``).
        grace_period: first rung; no trial is stopped before it.
        reduction_factor: keep the top ``1/reduction_factor`` at every rung.
        brackets: number of brackets; trials are spread over them at random
            (softmax over the number of rungs, as Ray does) using ``rng``.
        stop_last_trials: stop trials at ``max_t``; if False they run to their end.
        seed, rng: randomness for bracket assignment (give at most one).
    """

    metric_required = True

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | None = None,
        mode: str | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 4,
        brackets: int = 1,
        stop_last_trials: bool = True,
        seed: int | None = None,
        rng: np.random.Generator | None = None,
    ):
        super().__init__(metric, mode)
        _validate(max_t, grace_period, reduction_factor, brackets)
        if not isinstance(time_attr, str) or not time_attr:
            raise ConfigError(f"The value of `time_attr` is {time_attr!r}, but must be the name of a "
                              "reported metric that grows with training, e.g. 'training_iteration'.")
        if seed is not None and rng is not None:
            raise ConfigError("Give AsyncHyperBandScheduler either `seed` or `rng`, not both.")
        self._time_attr = time_attr
        self._max_t = max_t
        self._stop_last_trials = stop_last_trials
        self._rng = rng if rng is not None else np.random.default_rng(seed)
        n = _num_rungs(grace_period, max_t, reduction_factor)
        self._brackets = [
            _Bracket(
                [grace_period * reduction_factor ** (k + s) for k in range(n - s)],
                reduction_factor,
                stop_last_trials,
            )
            for s in range(brackets)
        ]
        self._trial_bracket: dict[str, int] = {}
        self._num_stopped = 0

    def on_trial_add(self, trial: TrialInfo) -> None:
        """Assign the trial to a bracket: softmax over bracket sizes (rung counts)."""
        self._check_ready()
        if len(self._brackets) == 1:
            self._trial_bracket[trial.trial_id] = 0
            return
        sizes = np.array([len(b.rungs) for b in self._brackets], dtype=float)
        weights = np.exp(sizes - sizes.max())
        index = int(self._rng.choice(len(self._brackets), p=weights / weights.sum()))
        self._trial_bracket[trial.trial_id] = index

    def _bracket(self, trial: TrialInfo) -> _Bracket:
        if trial.trial_id not in self._trial_bracket:
            self.on_trial_add(trial)
        return self._brackets[self._trial_bracket[trial.trial_id]]

    def _time_and_score(self, trial: TrialInfo, result: dict) -> tuple[float, float]:
        owner = type(self).__name__
        t = require_number(result, self._time_attr, trial.trial_id, owner)
        value = require_number(result, self._metric, trial.trial_id, owner)
        return t, self._sign * value

    def on_trial_result(self, trial: TrialInfo, result: dict) -> Decision:
        self._check_ready()
        t, score = self._time_and_score(trial, result)
        if math.isnan(t):
            return Decision.CONTINUE
        if t >= self._max_t and self._stop_last_trials:
            decision = Decision.STOP
        else:
            decision = self._bracket(trial).on_result(trial.trial_id, t, score)
        if decision == Decision.STOP:
            self._num_stopped += 1
        return decision

    def decision_points(self, trial: TrialInfo) -> DecisionPoints:
        """The rungs of the trial's bracket (of every bracket before it has one) and ``max_t``,
        when ``time_attr`` is ``training_iteration``; else every result."""
        if self._time_attr != "training_iteration":
            return EVERY
        index = self._trial_bracket.get(trial.trial_id)
        brackets = self._brackets if index is None else [self._brackets[index]]
        rungs = [rung.milestone for bracket in brackets for rung in bracket.rungs]
        return at(rungs + ([self._max_t] if self._stop_last_trials else []))

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        """Record the final result (it may reach a rung), then forget the trial."""
        if result is not None and self._metric and trial.trial_id in self._trial_bracket:
            with contextlib.suppress(ConfigError):  # a final result without the metric
                t, score = self._time_and_score(trial, result)
                if not math.isnan(t):
                    self._bracket(trial).on_result(trial.trial_id, t, score)
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_error(self, trial: TrialInfo) -> None:
        self._trial_bracket.pop(trial.trial_id, None)

    def on_trial_remove(self, trial: TrialInfo) -> None:
        self._trial_bracket.pop(trial.trial_id, None)

    def get_state(self) -> dict:
        """Plain, picklable (and JSON-compatible) state: rungs, assignments, rng, metric/mode."""
        return {
            "version": STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "num_stopped": self._num_stopped,
            "trial_bracket": dict(self._trial_bracket),
            "rungs": [
                [[rung.milestone, dict(rung.recorded)] for rung in b.rungs] for b in self._brackets
            ],
            "rng": self._rng.bit_generator.state,
        }

    def set_state(self, state: dict) -> None:
        """Continue exactly where ``get_state`` was taken (the constructor args must match)."""
        check_state_version(state, STATE_VERSION, self)
        if len(state["rungs"]) != len(self._brackets):
            raise ConfigError(
                f"The saved ASHA state has {len(state['rungs'])} brackets, but this scheduler "
                f"has {len(self._brackets)}; create it with the same arguments as before."
            )
        self._metric, self._mode = state["metric"], state["mode"]
        self._num_stopped = state["num_stopped"]
        self._trial_bracket = dict(state["trial_bracket"])
        for bracket, rungs in zip(self._brackets, state["rungs"], strict=True):
            bracket.rungs = [_Rung(milestone, recorded) for milestone, recorded in rungs]
        self._rng.bit_generator.state = state["rng"]

    def debug_string(self) -> str:
        lines = [f"Using AsyncHyperBand: num_stopped={self._num_stopped}"]
        lines += [b.debug_str() for b in self._brackets]
        return "\n".join(lines)


ASHAScheduler = AsyncHyperBandScheduler
