"""A compact summary of an experiment, rewritten with each driver snapshot.

``hpctune ls`` reads only this file per experiment, so listing stays fast however
many trials an experiment has. Its ``driver`` record says who drives the experiment
(``storage.process``: what identifies that very process for ``hpctune cancel``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from hpctune.core.metrics import best_trial, flat_value
from hpctune.storage.experiment import config_view
from hpctune.storage.process import driver_record


def experiment_summary(trials: list, metric: str | None, mode: str | None, status: str,
                       slurm_commands: dict[str, int]) -> dict[str, Any]:
    """Status, trial counts by state, the best trial so far, who drives it, when updated."""
    return {
        "status": status,
        "num_trials": len(trials),
        "by_status": dict(Counter(t.status.value for t in trials)),
        "metric": metric,
        "mode": mode,
        "best": _best(trials, metric, mode),
        "driver": driver_record(),
        "slurm_commands": slurm_commands,
        "updated": time.time(),
    }


def _best(trials: list, metric: str | None, mode: str | None) -> dict[str, Any] | None:
    trial = best_trial(trials, metric, mode)
    if trial is None:
        return None
    return {"trial_id": trial.trial_id, "value": flat_value(trial.last_result, metric),
            "config": config_view(trial.config), "checkpoint": trial.checkpoint}
