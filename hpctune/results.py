"""ResultGrid and Result: what ``Tuner.fit()`` returns, also loadable from a directory later."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.checkpoint import CHECKPOINT_PREFIX, Checkpoint, latest_checkpoint
from hpctune.errors import ConfigError, HpctuneError
from hpctune.storage.atomic import read_json
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.result_log import read_events
from hpctune.storage.user_files import trial_results
from hpctune.trial import Trial, TrialStatus

if TYPE_CHECKING:
    import pandas as pd

_SCOPES = ("last", "avg", "last-5-avg", "last-10-avg", "all")


class TrialError(HpctuneError):
    """The error a trial ended with; its message holds the worker's traceback."""


class Result:
    """One trial's outcome: final metrics, config, directory, error, checkpoints."""

    def __init__(self, trial: Trial):
        self._trial = trial
        self.metrics: dict[str, Any] = {**trial.last_result, "config": trial.config}
        self.config: dict[str, Any] = trial.config
        self.path: str = trial.path
        self.trial_id: str = trial.trial_id
        self.status: str = trial.status.value
        self.error: TrialError | None = TrialError(trial.error) if trial.error else None
        self._dataframe: pd.DataFrame | None = None

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint of the trial."""
        path = latest_checkpoint(Path(self.path))
        return Checkpoint(path) if path else None

    @property
    def best_checkpoints(self) -> list[tuple[Checkpoint, dict[str, Any]]]:
        """Every kept checkpoint with the result reported alongside it."""
        by_name = {e["checkpoint"]: e["result"] for e in read_events(Path(self.path) / "result.jsonl")
                   if e.get("event") == "result" and e.get("checkpoint")}
        found = sorted(p for p in Path(self.path).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())
        return [(Checkpoint(p), by_name.get(p.name, {})) for p in found]

    @property
    def metrics_dataframe(self) -> pd.DataFrame:
        """Every reported result of the trial, one row each."""
        import pandas as pd

        if self._dataframe is None:
            self._dataframe = pd.DataFrame(trial_results(Path(self.path)))
        return self._dataframe

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if k != "config"}
        return f"Result(trial_id={self.trial_id!r}, status={self.status}, metrics={shown!r})"


class ResultGrid:
    """All results of an experiment (Ray's ``ResultGrid``)."""

    def __init__(self, trials: list[Trial], experiment_path: str | Path,
                 metric: str | None = None, mode: str | None = None):
        self._trials = trials
        self._results = [Result(t) for t in trials]
        self.experiment_path = str(experiment_path)
        self._metric, self._mode = metric, mode

    @classmethod
    def from_path(cls, path: str | Path) -> ResultGrid:
        """Load the results of an experiment directory (finished or not)."""
        exp = ExperimentDir(path)
        if not exp.trials_dir.is_dir():
            raise ConfigError(f"{exp.root} is not an hpctune experiment directory (no trials/).")
        spec = exp.read_experiment()
        return cls(load_trials(exp), exp.root, spec.get("metric"), spec.get("mode"))

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, index: int) -> Result:
        return self._results[index]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[TrialError]:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return sum(1 for t in self._trials if t.status is TrialStatus.ERROR)

    @property
    def num_terminated(self) -> int:
        return sum(1 for t in self._trials if t.status is TrialStatus.TERMINATED)

    def get_best_result(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last", filter_nan_and_inf: bool = True) -> Result:
        """The trial with the best ``metric`` under ``scope`` (Ray's semantics)."""
        metric, mode = self._metric_mode(metric, mode)
        if scope not in _SCOPES:
            raise ConfigError(f"`scope` is {scope!r}, but must be one of {_SCOPES}.")
        key = mode if scope == "all" else scope
        scored = []
        for result, trial in zip(self._results, self._trials, strict=True):
            value = trial.metric_analysis.get(metric, {}).get(key)
            if value is None or (filter_nan_and_inf and not math.isfinite(value)):
                continue
            scored.append((value, result))
        if not scored:
            raise HpctuneError(
                f"No trial reported a finite value of `{metric}`: check the metric name "
                f"(reported: {sorted(self._reported_keys())})."
            )
        pick = min if mode == "min" else max
        return pick(scored, key=lambda pair: pair[0])[1]

    def get_dataframe(self, filter_metric: str | None = None,
                      filter_mode: str | None = None) -> pd.DataFrame:
        """One row per trial: its last result (or its best by ``filter_metric``) and config."""
        import pandas as pd

        rows = []
        for result in self._results:
            row = self._row(result, filter_metric, filter_mode)
            row.update({f"config/{k}": v for k, v in _flatten(result.config).items()})
            row.update(trial_id=result.trial_id, logdir=result.path, status=result.status)
            rows.append(row)
        return pd.DataFrame(rows)

    def _row(self, result: Result, metric: str | None, mode: str | None) -> dict[str, Any]:
        if metric is None:
            return {k: v for k, v in result.metrics.items() if k != "config"}
        if mode not in ("min", "max"):
            raise ConfigError("get_dataframe(filter_metric=...) needs filter_mode='min' or 'max'.")
        df = result.metrics_dataframe
        if metric not in df or df[metric].isna().all():
            return {}
        best = df[metric].idxmin() if mode == "min" else df[metric].idxmax()
        return df.loc[best].to_dict()

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric, mode = metric or self._metric, mode or self._mode
        if not metric or mode not in ("min", "max"):
            raise ConfigError(
                "No metric/mode given: pass get_best_result(metric='loss', mode='min') or set "
                "TuneConfig(metric=..., mode=...)."
            )
        return metric, mode

    def _reported_keys(self) -> set[str]:
        return {k for t in self._trials for k in t.last_result}

    def __repr__(self) -> str:
        return f"ResultGrid<{len(self)} trials, {self.num_errors} errors, at {self.experiment_path}>"


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def load_trials(exp: ExperimentDir) -> list[Trial]:
    """Rebuild every trial from its directory; the driver snapshot adds job-level facts."""
    snapshot = {t["trial_id"]: t for t in (read_json(exp.state_path, {}) or {}).get("trials", [])}
    trials = []
    for trial_id in exp.trial_ids():
        trial = replay_trial(exp, trial_id)
        known = snapshot.get(trial_id)
        if known and trial.status is not TrialStatus.TERMINATED:
            trial.status = TrialStatus(known["status"])
            trial.error = trial.error or known.get("error")
        trials.append(trial)
    return trials


def replay_trial(exp: ExperimentDir, trial_id: str) -> Trial:
    """A trial as its result log tells it (the log is the source of truth)."""
    meta = read_json(exp.trial_dir(trial_id) / "trial.json", {}) or {}
    trial = Trial(trial_id, exp.read_params(trial_id), meta.get("experiment_tag", ""),
                  str(exp.trial_dir(trial_id)), resources=meta.get("resources", {}))
    for event in read_events(exp.result_log_path(trial_id)):
        kind = event.get("event")
        if kind == "result":
            trial.record_result(event["result"])
            trial.status = TrialStatus.RUNNING
        elif kind in ("complete", "stopped"):
            trial.status, trial.error = TrialStatus.TERMINATED, None
        elif kind == "error":
            trial.status, trial.error = TrialStatus.ERROR, event.get("error")
    return trial
