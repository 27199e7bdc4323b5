"""A compact summary of an experiment, rewritten with each driver snapshot.

``hpctune ls`` reads only this file per experiment, so listing stays fast however
many trials an experiment has. Its ``driver`` record says who drives the experiment
(``storage.process``: what identifies that very process for ``hpctune cancel``).
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from typing import Any

from hpctune.core.metrics import flat_value, metric_value
from hpctune.storage.experiment import config_view
from hpctune.storage.process import driver_record


def experiment_summary(trials: list, metric: str | None, mode: str | None, status: str,
                       slurm_commands: dict[str, int]) -> dict[str, Any]:
    """Status, trial counts by state, the best trial so far, who drives it, when updated."""
    tally = SummaryTally(metric, mode)
    tally.update(trials)
    return tally.summary(status, slurm_commands)


class SummaryTally:
    """The summary's counts and best trial, kept up to date from the trials that changed (a
    snapshot passes only those), so that writing it does not cost a pass over every trial.
    The best is ``core.metrics.best_trial``'s: the first of the trials (in the order they were
    first seen) with the best finite value of the metric's last report."""

    def __init__(self, metric: str | None, mode: str | None):
        self.metric, self.mode = metric, mode
        #: each trial's place: the order it was first seen in
        self.index: dict[str, int] = {}
        #: by place: the trial, its status as counted (a code into ``_names``) and its rank (its
        #: value, best first; inf without one). Arrays, not a dict and a tuple per trial: at
        #: 100,000 trials those were 25 MB of the driver's memory
        self.trials: list[Any] = []
        self.status = array("b")
        self.ranks = array("d")
        self.counts: Counter[str] = Counter()
        self._names: list[str] = []
        self._best: int | None = None

    def update(self, trials: list) -> None:
        """Count these trials as they are now."""
        scored = bool(self.metric) and self.mode in ("min", "max")
        rescan = False
        for trial in trials:
            now = trial.status.value
            code = self._code(now)
            rank = self._rank(trial) if scored else math.inf
            at = self.index.get(trial.trial_id)
            if at is None:
                at = self.index[trial.trial_id] = len(self.trials)
                self.trials.append(trial)
                self.status.append(code)
                self.ranks.append(rank)
                self.counts[now] += 1
            else:
                self.trials[at] = trial
                if self.status[at] != code:
                    self.counts[self._names[self.status[at]]] -= 1
                    self.counts[now] += 1
                    self.status[at] = code
                self.ranks[at] = rank
            best = self._best
            if best is None or (rank, at) < (self.ranks[best], best):
                self._best = at
            elif at == best:
                rescan = True  # the best got worse: another trial may be better now
        if rescan:  # the first of the best (``min`` keeps the first of equals)
            self._best = min(range(len(self.ranks)), key=self.ranks.__getitem__)

    def _code(self, status: str) -> int:
        if status not in self._names:
            self._names.append(status)
        return self._names.index(status)

    def _rank(self, trial: Any) -> float:
        value = metric_value(trial, self.metric, self.mode)
        if value is None or not math.isfinite(value):
            return math.inf
        return value if self.mode == "min" else -value

    def best(self) -> Any:
        """The best trial; None while none reported a finite value."""
        if self._best is None or self.ranks[self._best] == math.inf:
            return None
        return self.trials[self._best]

    def summary(self, status: str, slurm_commands: dict[str, int]) -> dict[str, Any]:
        """The record ``hpctune ls`` reads."""
        return {
            "status": status,
            "num_trials": len(self.trials),
            "by_status": {k: n for k, n in self.counts.items() if n},
            "metric": self.metric,
            "mode": self.mode,
            "best": _best(self.best(), self.metric),
            "driver": driver_record(),
            "slurm_commands": slurm_commands,
            "updated": time.time(),
        }


def _best(trial: Any, metric: str | None) -> dict[str, Any] | None:
    if trial is None:
        return None
    return {"trial_id": trial.trial_id, "value": flat_value(trial.last_result, metric),
            "config": config_view(trial.config), "checkpoint": trial.checkpoint}
