"""The median stopping rule (Golovin et al., "Google Vizier", 2017), as Ray Tune's MedianStoppingRule.

A trial is stopped at time ``t`` if its best value so far is strictly worse than
the median, over the other trials that have reached ``t``, of their running
averages between ``grace_period`` and ``t``.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from hpctune.core.checks import check_number, require_number
from hpctune.core.objective import check_state_version
from hpctune.errors import ConfigError
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.trial_scheduler import Decision, TrialScheduler

STATE_VERSION = 1


class MedianStoppingRule(TrialScheduler):
    """Stop (or, with ``hard_stop=False``, pause) trials doing worse than the median.

    Args:
        time_attr: monotonically increasing result field measuring progress.
        metric, mode: objective and direction ("min"/"max"); may come from TuneConfig.
        grace_period: no trial is stopped before this time; running averages start here.
        min_samples_required: other trials needed at time ``t`` before judging.
        min_time_slice: accepted for Ray compatibility; hpctune never pauses a trial just
            to let queued ones run (Slurm decides which queued trial runs next).
        hard_stop: STOP if True; PAUSE if False (a paused trial, once resumed, runs on
            without further judgement, as in Ray).

    NaN values are the worst: they are left out of running averages, and a trial
    whose values are all NaN is stopped once enough other trials can be compared.
    """

    metric_required = True

    def __init__(
        self,
        time_attr: str = "time_total_s",
        metric: str | None = None,
        mode: str | None = None,
        grace_period: float = 60.0,
        min_samples_required: int = 3,
        min_time_slice: float = 0,
        hard_stop: bool = True,
    ):
        super().__init__(metric, mode)
        check_number("grace_period", grace_period, 0, strict=False)
        check_number("min_samples_required", min_samples_required, 1, strict=False, integer=True)
        check_number("min_time_slice", min_time_slice, 0, strict=False)
        self._time_attr = time_attr
        self._grace_period = grace_period
        self._min_samples_required = min_samples_required
        self._min_time_slice = min_time_slice
        self._hard_stop = hard_stop
        # trial_id -> [(time, score)], score = value signed so that larger is better
        self._results: dict[str, list[tuple[float, float]]] = {}
        self._stopped_trials: set[str] = set()

    def on_trial_add(self, trial: TrialInfo) -> None:
        self._check_ready()

    def _record(self, trial: TrialInfo, result: dict) -> float:
        """Append (time, score) to the trial's history; returns the time."""
        owner = type(self).__name__
        t = require_number(result, self._time_attr, trial.trial_id, owner)
        value = require_number(result, self._metric, trial.trial_id, owner)
        if math.isnan(t):
            return t
        history = self._results.setdefault(trial.trial_id, [])
        if not history or history[-1][0] != t:  # the final result is often delivered twice
            history.append((t, self._sign * value))
        return t

    def on_trial_result(self, trial: TrialInfo, result: dict) -> Decision:
        self._check_ready()
        if trial.trial_id in self._stopped_trials:
            return Decision.CONTINUE  # paused earlier and resumed: runs on FIFO (Ray)
        t = self._record(trial, result)
        if math.isnan(t) or t < self._grace_period:
            return Decision.CONTINUE
        averages = self._running_averages(trial.trial_id, t)
        if len(averages) < self._min_samples_required:
            return Decision.CONTINUE
        median = float(np.median(averages))
        best = self._best_score(trial.trial_id)
        if best is not None and best >= median:
            return Decision.CONTINUE
        self._stopped_trials.add(trial.trial_id)
        return Decision.STOP if self._hard_stop else Decision.PAUSE

    def _running_averages(self, trial_id: str, t: float) -> list[float]:
        """Running averages over [grace_period, t] of the other trials that reached ``t``."""
        averages = []
        for other, history in self._results.items():
            if other == trial_id or not history[-1][0] >= t:
                continue
            scores = [s for time, s in history if self._grace_period <= time <= t]
            scores = [s for s in scores if not math.isnan(s)]
            if scores:
                averages.append(sum(scores) / len(scores))
        return averages

    def _best_score(self, trial_id: str) -> float | None:
        scores = [s for _, s in self._results[trial_id] if not math.isnan(s)]
        return max(scores) if scores else None

    def on_trial_complete(self, trial: TrialInfo, result: dict | None) -> None:
        """Keep the final result: finished trials still count towards the median."""
        if result is None or not self._metric:
            return
        with contextlib.suppress(ConfigError):  # a final result without the metric: nothing to keep
            self._record(trial, result)

    def get_state(self) -> dict:
        """Plain, picklable (and JSON-compatible) state."""
        return {
            "version": STATE_VERSION,
            "metric": self._metric,
            "mode": self._mode,
            "results": {tid: [list(r) for r in rs] for tid, rs in self._results.items()},
            "stopped_trials": sorted(self._stopped_trials),
        }

    def set_state(self, state: dict) -> None:
        check_state_version(state, STATE_VERSION, self)
        self._metric, self._mode = state["metric"], state["mode"]
        self._results = {tid: [tuple(r) for r in rs] for tid, rs in state["results"].items()}
        self._stopped_trials = set(state["stopped_trials"])

    def debug_string(self) -> str:
        return f"Using MedianStoppingRule: num_stopped={len(self._stopped_trials)}."
