"""``ExperimentAnalysis``: what ``tune.run`` returns, with Ray's properties and methods.

Built on the same trials as ``ResultGrid`` (``ExperimentAnalysis(path)`` loads any experiment
directory). Nested metrics are named flattened (``"val/acc"``) everywhere; dataframe
columns use ``$TUNE_RESULT_DELIM`` (default ``/``) between nested keys.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpctune.core.checkpoint import Checkpoint
from hpctune.core.metrics import SCOPES, best_trial, flat_value, flatten, result_delimiter
from hpctune.errors import ConfigError
from hpctune.results.grid import Result, trial_path
from hpctune.storage.experiment import ExperimentDir
from hpctune.storage.replay import load_trials
from hpctune.tune.experiment.trial import Trial

if TYPE_CHECKING:
    import pandas as pd

TRAINING_ITERATION = "training_iteration"


class ExperimentAnalysis:
    """The trials of an experiment, its best trial, their results, configs and checkpoints."""

    def __init__(self, experiment_checkpoint_path: str | os.PathLike, *,
                 trials: list[Trial] | None = None, default_metric: str | None = None,
                 default_mode: str | None = None):
        exp = ExperimentDir(experiment_checkpoint_path)
        if trials is None:
            if not exp.trials_dir.is_dir():
                raise ConfigError(f"{exp.root} is not an hpctune experiment directory (no trials/).")
            trials = load_trials(exp)
            spec = exp.read_experiment()
            default_metric = default_metric or spec.get("metric")
            default_mode = default_mode or spec.get("mode")
        if default_mode not in (None, "min", "max"):
            raise ConfigError(f"`default_mode` is {default_mode!r}, but must be 'min' or 'max'.")
        self._experiment_path = str(exp.root)
        self._trials = list(trials)
        self.default_metric, self.default_mode = default_metric, default_mode
        self._results = {t.trial_id: Result(t) for t in self._trials}

    # -- the experiment ----------------------------------------------------------------------------
    @property
    def experiment_path(self) -> str:
        return self._experiment_path

    def stats(self) -> dict[str, Any]:
        """Ray's experiment statistics: ``start_time`` and ``timestamp`` (the driver's latest
        update), plus the trial counts by status and the experiment's status from ``summary.json``."""
        exp = ExperimentDir(self._experiment_path)
        summary, spec = exp.read_summary(), exp.read_experiment()
        return {"start_time": spec.get("created"), "timestamp": summary.get("updated"),
                "status": summary.get("status"), "num_trials": len(self._trials),
                "by_status": {s: sum(1 for t in self._trials if t.status.value == s)
                              for s in sorted({t.status.value for t in self._trials})}}

    def runner_data(self) -> dict[str, Any]:
        """Ray's driver data: what the experiment was run with (``experiment.json``: trainable,
        metric, mode, scheduler, num_samples, checkpoint policy, backend...)."""
        return ExperimentDir(self._experiment_path).read_experiment()

    @property
    def trials(self) -> list[Trial]:
        return list(self._trials)

    @property
    def results(self) -> dict[str, dict[str, Any]]:
        """The last result of every trial, by trial id."""
        return {t.trial_id: t.last_result for t in self._trials}

    @property
    def results_df(self) -> pd.DataFrame:
        """The last result of every trial, flattened, one row per trial (index: trial id)."""
        import pandas as pd

        rows = [{**flatten(t.last_result, sep=result_delimiter()), "trial_id": t.trial_id}
                for t in self._trials]
        return pd.DataFrame.from_records(rows, index="trial_id") if rows else pd.DataFrame()

    @property
    def trial_dataframes(self) -> dict[str, pd.DataFrame]:
        """Every result of every trial, one dataframe per trial id."""
        return {trial_id: result.metrics_dataframe for trial_id, result in self._results.items()}

    def fetch_trial_dataframes(self) -> dict[str, pd.DataFrame]:
        return self.trial_dataframes

    def dataframe(self, metric: str | None = None, mode: str | None = None) -> pd.DataFrame:
        """One row per trial: its last result, or with ``metric``/``mode`` its best result by
        that metric; plus its config as ``config/<key>`` columns and ``logdir``."""
        import pandas as pd

        if mode and mode not in ("min", "max"):
            raise ConfigError(f"`mode` is {mode!r}, but must be 'min' or 'max'.")
        if mode and not metric:
            raise ConfigError("dataframe(mode=...) needs a metric too: dataframe(metric='loss', mode='min').")
        rows, configs = [], self.get_all_configs(prefix=True)
        for trial in self._trials:
            row = self._best_row(trial, metric, mode) if metric and mode else self._last_row(trial)
            row.update(configs.get(trial_path(trial), {}))
            row["logdir"] = trial_path(trial)
            rows.append(row)
        return pd.DataFrame(rows)

    def _last_row(self, trial: Trial) -> dict[str, Any]:
        return flatten(trial.last_result, sep=result_delimiter())

    def _best_row(self, trial: Trial, metric: str, mode: str) -> dict[str, Any]:
        df = self._results[trial.trial_id].metrics_dataframe
        column = metric if metric in df else metric.replace("/", result_delimiter())
        if column not in df or df[column].isna().all():
            return self._last_row(trial)
        best = df[column].idxmax() if mode == "max" else df[column].idxmin()
        return df.loc[best].to_dict()

    def get_all_configs(self, prefix: bool = False) -> dict[str, dict[str, Any]]:
        """Every trial's config by trial directory; ``prefix``: flattened, as ``config/<key>``."""
        sep = result_delimiter()
        return {trial_path(t): ({f"config{sep}{k}": v for k, v in flatten(t.config, sep=sep).items()}
                         if prefix else t.config) for t in self._trials}

    # -- the best trial ----------------------------------------------------------------------------
    def get_best_trial(self, metric: str | None = None, mode: str | None = None, scope: str = "last",
                       filter_nan_and_inf: bool = True) -> Trial | None:
        """The trial with the best ``metric`` under ``scope`` (Ray's scopes); None if none reported it."""
        metric, mode = self._metric_mode(metric, mode)
        if scope not in SCOPES:
            raise ConfigError(f"`scope` is {scope!r}, but must be one of {SCOPES}.")
        return best_trial(self._trials, metric, mode, scope, filter_nan_and_inf)

    def get_best_config(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> dict[str, Any] | None:
        best = self.get_best_trial(metric, mode, scope)
        return best.config if best else None

    def get_best_logdir(self, metric: str | None = None, mode: str | None = None,
                        scope: str = "last") -> str | None:
        best = self.get_best_trial(metric, mode, scope)
        return trial_path(best) if best else None

    @property
    def best_trial(self) -> Trial | None:
        """The best trial by the default metric and mode (``tune.run(metric=..., mode=...)``)."""
        self._need_defaults("best_trial")
        return self.get_best_trial(self.default_metric, self.default_mode)

    @property
    def best_config(self) -> dict[str, Any] | None:
        self._need_defaults("best_config")
        return self.get_best_config(self.default_metric, self.default_mode)

    @property
    def best_logdir(self) -> str | None:
        self._need_defaults("best_logdir")
        return self.get_best_logdir(self.default_metric, self.default_mode)

    @property
    def best_checkpoint(self) -> Checkpoint | None:
        """The best trial's best checkpoint by the default metric and mode."""
        best = self.best_trial
        return self.get_best_checkpoint(best, self.default_metric, self.default_mode) if best else None

    @property
    def best_result(self) -> dict[str, Any]:
        """The best trial's last result."""
        best = self.best_trial
        return best.last_result if best else {}

    @property
    def best_result_df(self) -> pd.DataFrame:
        import pandas as pd

        best = self.best_trial
        row = {**flatten(best.last_result, sep=result_delimiter()), "trial_id": best.trial_id} if best else {}
        return pd.DataFrame.from_records([row], index="trial_id") if row else pd.DataFrame()

    @property
    def best_dataframe(self) -> pd.DataFrame:
        """Every result of the best trial."""
        best = self.best_trial
        return self.trial_dataframes[best.trial_id] if best else self.results_df.iloc[0:0]

    # -- checkpoints -------------------------------------------------------------------------------
    def get_trial_checkpoints_paths(self, trial: Trial | str,
                                    metric: str | None = None) -> list[tuple[str, Any]]:
        """(path, value of ``metric`` when it was saved) of each kept checkpoint of ``trial``
        (a Trial, trial id or trial directory); ``metric`` defaults to training_iteration."""
        metric = metric or TRAINING_ITERATION
        result = self._results[self._trial(trial).trial_id]
        return [(ckpt.path, flat_value(saved, metric)) for ckpt, saved in result.best_checkpoints]

    def get_best_checkpoint(self, trial: Trial | str, metric: str | None = None,
                            mode: str | None = None) -> Checkpoint | None:
        """The checkpoint of ``trial`` saved with the best ``metric`` (default: the default metric,
        else the latest by training_iteration); None when it has none."""
        metric = metric or self.default_metric or TRAINING_ITERATION
        mode = mode or self.default_mode or ("max" if metric == TRAINING_ITERATION else None)
        if mode not in ("min", "max"):
            raise ConfigError(f"get_best_checkpoint needs mode='min' or 'max' for `{metric}`: pass mode=..., "
                              "or tune.run(metric=..., mode=...).")
        scored = [(path, value) for path, value in self.get_trial_checkpoints_paths(trial, metric)
                  if isinstance(value, (int, float)) and not math.isnan(value)]
        if not scored:
            return None
        pick = max if mode == "max" else min
        return Checkpoint(pick(scored, key=lambda pair: pair[1])[0])

    def get_last_checkpoint(self, trial: Trial | str | None = None) -> Checkpoint | None:
        """The newest checkpoint of ``trial`` (default: the best trial)."""
        trial = trial if trial is not None else self.best_trial
        return self.get_best_checkpoint(trial, TRAINING_ITERATION, "max") if trial else None

    # -- helpers -------------------------------------------------------------------------------------
    def _trial(self, trial: Trial | str) -> Trial:
        if isinstance(trial, Trial):
            return trial
        key = str(trial)
        path = Path(key).resolve() if os.sep in key else None
        for candidate in self._trials:
            if key in (candidate.trial_id, candidate.trial_name) or path == Path(candidate.path).resolve():
                return candidate
        raise ConfigError(f"No trial {key!r} in {self._experiment_path}: pass a Trial from "
                          "analysis.trials, a trial id or a trial directory.")

    def _metric_mode(self, metric: str | None, mode: str | None) -> tuple[str, str]:
        metric, mode = metric or self.default_metric, mode or self.default_mode
        if not metric or mode not in ("min", "max"):
            raise ConfigError("No metric/mode: pass get_best_trial(metric='loss', mode='min'), or "
                              "tune.run(..., metric='loss', mode='min').")
        return metric, mode

    def _need_defaults(self, name: str) -> None:
        if not self.default_metric or self.default_mode not in ("min", "max"):
            raise ConfigError(
                f"To fetch `{name}`, pass a `metric` and `mode` to tune.run(), or use "
                "get_best_trial(metric, mode) / get_best_config(metric, mode) (as in Ray).")

    def __repr__(self) -> str:
        return f"ExperimentAnalysis<{len(self._trials)} trials, at {self._experiment_path}>"
