"""A compact summary of an experiment, rewritten with each driver snapshot.

``hpctune ls`` reads only this file per experiment, so listing stays fast however
many trials an experiment has.
"""

from __future__ import annotations

import os
import socket
import time
from collections import Counter
from typing import Any

from hpctune.metrics import best_trial


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
        "driver": {"pid": os.getpid(), "host": socket.gethostname(),
                   "slurm_job_id": os.environ.get("SLURM_JOB_ID")},
        "slurm_commands": slurm_commands,
        "updated": time.time(),
    }


def _best(trials: list, metric: str | None, mode: str | None) -> dict[str, Any] | None:
    trial = best_trial(trials, metric, mode)
    if trial is None:
        return None
    return {"trial_id": trial.trial_id, "value": trial.last_result.get(metric),
            "config": trial.config, "checkpoint": trial.checkpoint}
