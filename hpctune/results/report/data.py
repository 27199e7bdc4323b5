"""One read of an experiment for the exports (HDF5) and the HTML report: every trial with its
results, its Slurm jobs and runs, its PBT lineage, and the experiment's own settings.

Read from the driver's trials (``ResultGrid.to_hdf5``) or from the directory alone (the CLI:
the trials' logs, ``state.json`` for what only the driver knew, configs as their text view, so
no pickle of the trials is loaded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hpctune.accounting.usage import usage_columns
from hpctune.accounting.usage_record import UsageRecord, read_usage
from hpctune.core.metrics import flatten
from hpctune.storage import events as ev
from hpctune.storage.experiment import ExperimentDir, config_view
from hpctune.storage.replay import load_trials, snapshot_trials, trial_results
from hpctune.storage.result_log import read_events
from hpctune.tune.experiment.trial import Trial

#: fields of the driver's record that the logs alone do not know (queue times, preemptions)
_DRIVER_FIELDS = ("submitted_at", "started_at", "ended_at", "job_id", "num_failures", "preemptions",
                  "stop_reason", "node")


@dataclass
class TrialRun:
    """One run of a trial in one job: from its ``start`` event to the last event of that job."""

    job_id: str
    host: str
    start: float
    end: float
    ended_by: str = ""


@dataclass
class TrialRecord:
    """A trial and everything its log says about it."""

    trial: Trial
    config: dict[str, Any]
    results: list[dict[str, Any]]
    runs: list[TrialRun] = field(default_factory=list)
    lineage: list[dict[str, Any]] = field(default_factory=list)

    @property
    def job_ids(self) -> list[str]:
        return list(dict.fromkeys(r.job_id for r in self.runs if r.job_id))

    @property
    def trial_id(self) -> str:
        return self.trial.trial_id

    def column(self, key: str) -> list[Any]:
        """``key``'s value in every result (None where a result lacks it), nested keys as ``a/b``."""
        return [flatten(r).get(key) for r in self.results]


@dataclass
class ExperimentRecord:
    """An experiment as the exports and the report see it."""

    root: Path
    spec: dict[str, Any]
    metric: str | None
    mode: str | None
    search_space: Any
    trials: list[TrialRecord]
    #: the allocation the driver last measured (``accounting/usage_record``; None: not measured)
    usage: UsageRecord | None = None

    def trial_usage(self, trial_id: str) -> dict[str, float | None]:
        """The trial's ``cpu_hours``, ``gpu_hours``, ``node_hours`` (None each: unknown)."""
        return usage_columns(self.usage.usage.trials.get(trial_id) if self.usage else None)

    @property
    def name(self) -> str:
        return self.root.name

    def metric_keys(self) -> list[str]:
        """Every key reported by any trial (nested as ``a/b``, the config left out), in order."""
        keys: dict[str, None] = {}
        for record in self.trials:
            for result in record.results:
                keys.update(dict.fromkeys(k for k in flatten(result) if not k.startswith("config/")))
        return list(keys)


def load_experiment(path: str | Path) -> ExperimentRecord:
    """An experiment directory, read without its driver (configs as text, no trial pickle)."""
    exp = ExperimentDir(path)
    driver = {t.trial_id: t for t in snapshot_trials(exp)}
    trials = []
    for trial in load_trials(exp, real_config=False):
        known = driver.get(trial.trial_id)
        if known is not None:
            for name in _DRIVER_FIELDS:
                if getattr(trial, name) in (None, 0, ""):
                    setattr(trial, name, getattr(known, name))
        trials.append(trial)
    return from_trials(trials, exp.root)


def from_trials(trials: list[Trial], root: str | Path, metric: str | None = None,
                mode: str | None = None) -> ExperimentRecord:
    """The record of ``trials`` (the driver's, or rebuilt) of the experiment at ``root``."""
    exp = ExperimentDir(root)
    spec = exp.read_experiment()
    records = [_trial_record(exp, t) for t in trials]
    return ExperimentRecord(exp.root, spec, metric or spec.get("metric"), mode or spec.get("mode"),
                            search_space(exp), records, read_usage(exp.root))


def _trial_record(exp: ExperimentDir, trial: Trial) -> TrialRecord:
    log = exp.result_log_path(trial.trial_id)
    runs: list[TrialRun] = []
    lineage: list[dict[str, Any]] = []
    for event in read_events(log):
        kind, when = event.get(ev.KIND), float(event.get(ev.TIME) or 0.0)
        if kind == ev.EventKind.START.value or (not runs and kind != ev.EventKind.EXPLOITED.value):
            runs.append(TrialRun(str(event.get(ev.JOB_ID) or ""), str(event.get(ev.HOSTNAME) or ""), when, when))
        elif kind == ev.EventKind.EXPLOITED.value:
            lineage.append({k: v for k, v in event.items() if k not in (ev.KIND, ev.VERSION)})
            continue
        runs[-1].end = max(runs[-1].end, when)
        if kind in _ENDINGS:
            runs[-1].ended_by = kind
    config = config_view(trial.config)
    return TrialRecord(trial, config, trial_results(log), runs, lineage)


_ENDINGS = {k.value for k in (ev.EventKind.COMPLETE, ev.EventKind.STOPPED, ev.EventKind.ERROR,
                              ev.EventKind.PREEMPTED, ev.EventKind.REQUEUED, ev.EventKind.PAUSED,
                              ev.EventKind.TERMINATED)}


def search_space(exp: ExperimentDir) -> Any:
    """The search space as JSON types (domains as their ``repr``: ``loguniform(0.0001, 0.1)``),
    read from ``tuner.pkl``; None when it cannot be loaded here (a module of yours is missing,
    or the file is not yours)."""
    from hpctune.storage.secure import load_private_pickle

    if not exp.tuner_path.exists():
        return None
    try:
        payload = load_private_pickle(exp.tuner_path)
        return json.loads(json.dumps(payload.get("param_space") or {}, default=repr))
    except Exception:  # noqa: BLE001 - an export must not fail for a description
        return None
