"""Replaying a finished experiment's result logs into a fresh scheduler, in report order.

What the driver must reproduce: each result reaches the scheduler in the order the
workers reported it (event timestamps, each trial's own order kept), a trial stopped by
the scheduler is not asked again, and a completed trial's last result is handed to
``on_trial_complete`` when its ``complete`` event comes.
"""

from __future__ import annotations

import heapq
from pathlib import Path

from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.tune.experiment.trial import TrialInfo
from hpctune.tune.schedulers.trial_scheduler import Decision


def stop_points(experiment_path: str | Path, scheduler) -> dict[str, int]:
    """{trial_id: training_iteration at which ``scheduler`` stops it} over the logs."""
    exp = ExperimentDir(experiment_path)
    trial_ids = exp.trial_ids()
    infos = {t: TrialInfo(t, exp.read_params(t)) for t in trial_ids}
    for trial_id in trial_ids:
        scheduler.on_trial_add(infos[trial_id])
    streams = [[(e.get("time", 0.0), t, e) for e in read_events(exp.result_log_path(t))]
               for t in trial_ids]
    stopped: dict[str, int] = {}
    last: dict[str, dict] = {}
    for _, trial_id, event in heapq.merge(*streams, key=lambda item: item[0]):
        if trial_id in stopped:
            continue
        if event["event"] == "result":
            result = event["result"]
            if result["training_iteration"] <= last.get(trial_id, {}).get("training_iteration", 0):
                continue  # a re-run after a restart: not asked again
            last[trial_id] = result
            if scheduler.on_trial_result(infos[trial_id], result) is Decision.STOP:
                stopped[trial_id] = result["training_iteration"]
        elif event["event"] == "complete":
            scheduler.on_trial_complete(infos[trial_id], {**last.get(trial_id, {}), "done": True})
    return stopped


def run_stop_points(grid, max_t: int) -> dict[str, int]:
    """{trial_id: last training_iteration} of the trials that ended before ``max_t``."""
    return {r.trial_id: r.metrics["training_iteration"] for r in grid
            if r.metrics["training_iteration"] < max_t}
