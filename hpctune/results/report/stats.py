"""Numbers the report shows: the best trials, what early stopping did, what Slurm did.

Pure functions over an ``ExperimentRecord`` (no plotting library): the HTML report and the
tests read the same figures.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from hpctune.core.metrics import AUTO_METRICS, flatten, is_finite_number
from hpctune.results.report.data import ExperimentRecord, TrialRecord


def metric_values(record: TrialRecord, metric: str) -> list[tuple[float, float]]:
    """(training_iteration, value) of every finite number the trial reported for ``metric``."""
    points = []
    for i, result in enumerate(record.results):
        value = flatten(result).get(metric)
        if is_finite_number(value):
            points.append((float(result.get("training_iteration") or i + 1), float(value)))
    return points


def best_value(record: TrialRecord, metric: str, mode: str) -> float | None:
    values = [v for _, v in metric_values(record, metric)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def ranked(exp: ExperimentRecord) -> list[tuple[TrialRecord, float]]:
    """Trials that reported the metric, best first (by their best value: how the report ranks)."""
    if not exp.metric or exp.mode not in ("min", "max"):
        return []
    scored = [(t, best_value(t, exp.metric, exp.mode)) for t in exp.trials]
    kept = [(t, v) for t, v in scored if v is not None]
    return sorted(kept, key=lambda pair: pair[1], reverse=exp.mode == "max")


def user_metrics(exp: ExperimentRecord) -> list[str]:
    """The numeric keys users reported (auto-filled ones left out), the experiment's metric first."""
    found: dict[str, None] = {}
    for record in exp.trials:
        for result in record.results:
            for key, value in flatten(result).items():
                if key.split("/")[0] in AUTO_METRICS or key in ("done", "should_checkpoint"):
                    continue
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    found[key] = None
    keys = list(found)
    if exp.metric in found:
        keys.remove(exp.metric)
        keys.insert(0, exp.metric)
    return keys


def iterations_reached(exp: ExperimentRecord) -> list[tuple[str, int, str]]:
    """(trial id, last training_iteration, status) of every trial: where early stopping cut."""
    rows = []
    for record in exp.trials:
        last = record.results[-1].get("training_iteration", 0) if record.results else 0
        rows.append((record.trial_id, int(last or 0), record.trial.status.value))
    return rows


def stop_points(exp: ExperimentRecord) -> list[tuple[int, int]]:
    """(iteration, how many trials stopped there), by iteration: ASHA's rungs show as peaks."""
    counts = Counter(last for _, last, _ in iterations_reached(exp))
    return sorted(counts.items())


@dataclass
class SlurmSummary:
    """What Slurm did for the experiment."""

    jobs: int
    runs: int
    preemptions: int
    failures: int
    queue_wait_s: list[float]
    node_hours: float
    gpu_hours: float
    cpu_hours: float
    by_ending: dict[str, int]

    def queue_wait_text(self) -> str:
        waits = self.queue_wait_s
        if not waits:
            return "not recorded"
        return (f"median {statistics.median(waits):.1f} s, max {max(waits):.1f} s "
                f"({len(waits)} trials)")


def slurm_summary(exp: ExperimentRecord) -> SlurmSummary:
    """Jobs, runs, preemptions, failures, queue waits (submitted -> started, the driver's clock)
    and the node-, GPU- and CPU-hours the trials' runs held."""
    jobs: set[str] = set()
    runs = preemptions = failures = 0
    waits: list[float] = []
    hours = {"node": 0.0, "gpu": 0.0, "cpu": 0.0}
    endings: Counter[str] = Counter()
    for record in exp.trials:
        trial = record.trial
        jobs.update(record.job_ids)
        runs += len(record.runs)
        preemptions += sum(r.ended_by in ("preempted", "requeued") for r in record.runs)
        failures += int(trial.num_failures or 0)
        if trial.submitted_at is not None and trial.started_at is not None and trial.started_at >= trial.submitted_at:
            waits.append(trial.started_at - trial.submitted_at)
        resources = trial.resources or {}
        for run in record.runs:
            held = max(0.0, run.end - run.start) / 3600
            hours["node"] += held * float(resources.get("nodes", 1) or 1)
            hours["gpu"] += held * float(resources.get("gpu", 0) or 0)
            hours["cpu"] += held * float(resources.get("cpu", 1) or 1)
            endings[run.ended_by or "running or unknown"] += 1
    return SlurmSummary(len(jobs), runs, preemptions, failures, waits, hours["node"], hours["gpu"],
                        hours["cpu"], dict(endings))


def config_columns(exp: ExperimentRecord) -> list[str]:
    """The config keys (``a/b``) whose values differ between trials: the hyperparameters searched."""
    values: dict[str, set[str]] = {}
    for record in exp.trials:
        for key, value in flatten(record.config).items():
            values.setdefault(key, set()).add(repr(value))
    return [k for k, seen in values.items() if len(seen) > 1] or list(values)


def status_counts(exp: ExperimentRecord) -> dict[str, int]:
    return dict(Counter(t.trial.status.value for t in exp.trials))


def short(value: Any, limit: int = 12) -> str:
    """A number or value for a table cell."""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = str(value)
    return text if len(text) <= limit * 3 else text[: limit * 3 - 3] + "..."
