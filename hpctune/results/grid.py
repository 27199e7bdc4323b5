"""ResultGrid and Result: what ``Tuner.fit()`` returns, also loadable from a directory later."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.core.metrics import SCOPES, best_trial, flatten, result_delimiter
from hpctune.errors import ConfigError, HpctuneError
from hpctune.storage.checkpoints import CHECKPOINT_PREFIX, latest_checkpoint
from hpctune.storage.experiment import RESULT_LOG_FILE, ExperimentDir
from hpctune.storage.replay import load_trials, trial_results
from hpctune.storage.result_log import checkpoint_results
from hpctune.tune.experiment.trial import Trial, TrialStatus

if TYPE_CHECKING:
    import pandas as pd


class TrialError(HpctuneError):
    """The error a trial ended with; its message holds the worker's traceback."""


class Result:
    """One trial's outcome: final metrics, config, directory, error, checkpoints."""

    def __init__(self, trial: Trial):
        self._trial = trial
        self.metrics: dict[str, Any] = {**trial.last_result, "config": trial.config}
        self.config: dict[str, Any] = trial.config
        self.path: str = trial_path(trial)
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
        by_name = checkpoint_results(self._log_path)
        found = sorted(p for p in Path(self.path).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir())
        return [(Checkpoint(p), by_name.get(p.name, {})) for p in found]

    @property
    def metrics_dataframe(self) -> pd.DataFrame:
        """Every reported result of the trial, one row each; nested metrics flattened to
        ``val/acc`` columns (the separator is ``$TUNE_RESULT_DELIM``, default ``/``)."""
        import pandas as pd

        if self._dataframe is None:
            sep = result_delimiter()
            self._dataframe = pd.DataFrame([flatten(r, sep=sep) for r in trial_results(self._log_path)])
        return self._dataframe

    @property
    def log_dir(self) -> Path:
        """The trial directory (Ray's older name for ``path``)."""
        return Path(self.path)

    @property
    def _log_path(self) -> Path:
        return Path(self.path) / RESULT_LOG_FILE

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.metrics.items() if k != "config"}
        return f"Result(trial_id={self.trial_id!r}, status={self.status}, metrics={shown!r})"


def trial_path(trial: Trial) -> str:
    """Where Ray puts the trial: the directory ``trial_dirname_creator`` named (a link at the
    experiment root to ``trials/<id>``), else ``trials/<id>`` itself (also when the link is gone)."""
    if trial.dirname:
        named = Path(trial.path).parent.parent / trial.dirname
        if named.is_symlink() and named.resolve() == Path(trial.path).resolve():
            return str(named)
    return trial.path


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
        try:
            spec = exp.read_experiment()
        except (ValueError, OSError) as exc:  # damaged: the results still load, without its defaults
            spec = f"{type(exc).__name__}: {exc}"
        if not isinstance(spec, dict):
            why = spec if isinstance(spec, str) else "not a JSON object"
            warnings.warn(f"{exp.experiment_path} is damaged ({why}): its metric and mode are not "
                          "known; pass them to get_best_result().", stacklevel=2)
            spec = {}
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
        if scope not in SCOPES:
            raise ConfigError(f"`scope` is {scope!r}, but must be one of {SCOPES}.")
        best = best_trial(self._trials, metric, mode, scope, filter_nan_and_inf)
        if best is None:
            raise HpctuneError(
                f"No trial reported a finite value of `{metric}`: check the metric name "
                f"(reported: {sorted(self._reported_keys())})."
            )
        return next(r for r, t in zip(self._results, self._trials, strict=True) if t is best)

    def get_dataframe(self, filter_metric: str | None = None,
                      filter_mode: str | None = None) -> pd.DataFrame:
        """One row per trial: its last result (or its best by ``filter_metric``), config, and
        the allocation it used (``cpu_hours``, ``gpu_hours``, ``node_hours``; None: unknown)."""
        import pandas as pd

        from hpctune.accounting.usage import usage_columns
        from hpctune.accounting.usage_record import read_usage

        rows = []
        sep = result_delimiter()
        usage = read_usage(self.experiment_path) if self.experiment_path else None
        for result in self._results:
            row = self._row(result, filter_metric, filter_mode)
            row.update({f"config{sep}{k}": v for k, v in flatten(result.config, sep=sep).items()})
            row.update(trial_id=result.trial_id, logdir=result.path, status=result.status)
            # the allocation the trial used (usage.json, as the driver last measured it)
            row.update(usage_columns(usage.usage.trials.get(result.trial_id) if usage else None))
            rows.append(row)
        return pd.DataFrame(rows)

    def _row(self, result: Result, metric: str | None, mode: str | None) -> dict[str, Any]:
        """The trial's last result, or its best one by ``metric``, flattened."""
        if metric is None:
            return flatten({k: v for k, v in result.metrics.items() if k != "config"},
                           sep=result_delimiter())
        if mode not in ("min", "max"):
            raise ConfigError("get_dataframe(filter_metric=...) needs filter_mode='min' or 'max'.")
        df = result.metrics_dataframe
        metric = metric if metric in df else metric.replace("/", result_delimiter())
        if metric not in df or df[metric].isna().all():
            return {}
        best = df[metric].idxmin() if mode == "min" else df[metric].idxmax()
        return df.loc[best].to_dict()

    def to_hdf5(self, path: str | Path) -> Path:
        """Write every trial's results, config, status and Slurm jobs to one HDF5 file
        (layout: ``hpctune.results.hdf5``; needs ``pip install 'hpctune[hdf5]'``)."""
        from hpctune.results.hdf5 import write_hdf5
        from hpctune.results.report.data import from_trials

        return write_hdf5(from_trials(self._trials, self.experiment_path, self._metric, self._mode), path)

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric, mode = metric or self._metric, mode or self._mode
        if not metric or mode not in ("min", "max"):
            raise ConfigError(
                "No metric/mode given: pass get_best_result(metric='loss', mode='min') or set "
                "TuneConfig(metric=..., mode=...)."
            )
        return metric, mode

    def _reported_keys(self) -> set[str]:
        return {k for t in self._trials for k in flatten(t.last_result)}

    def __repr__(self) -> str:
        return f"ResultGrid<{len(self)} trials, {self.num_errors} errors, at {self.experiment_path}>"
