"""Ray's ``MLflowLoggerCallback`` (``tune.logger.mlflow``): one MLflow run per trial, logged
from the driver (``pip install 'hpctune[mlflow]'``).

Each trial's config becomes the run's parameters (flattened to ``a/b``), every number of each
result a metric at step ``training_iteration`` (all of a trial's new results in one
``log_batch`` per driver step); the run ends FINISHED or FAILED with the trial. A restored
driver finds a trial's run again by its ``hpctune_trial_id`` tag and continues it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.errors import ConfigError
from hpctune.storage.experiment import config_view
from hpctune.tune.logger.base import BatchedLoggerCallback

TRIAL_TAG = "hpctune_trial_id"
_MAX_METRICS, _MAX_PARAMS, _MAX_PARAM_CHARS = 1000, 100, 6000


class MLflowLoggerCallback(BatchedLoggerCallback):
    """Ray's arguments: ``tracking_uri`` (default: MLflow's, e.g. ``$MLFLOW_TRACKING_URI``),
    ``registry_uri``, ``experiment_name`` (default: ``$MLFLOW_EXPERIMENT_NAME``, else the hpctune
    experiment's name), ``tags`` (on every run), ``tracking_token``, ``save_artifact`` (upload
    the trial directory when the trial ends), ``log_params_on_trial_end``."""

    def __init__(self, tracking_uri: str | None = None, *, registry_uri: str | None = None,
                 experiment_name: str | None = None, tags: dict | None = None,
                 tracking_token: str | None = None, save_artifact: bool = False,
                 log_params_on_trial_end: bool = False):
        super().__init__()
        self.tracking_uri, self.registry_uri = tracking_uri, registry_uri
        self.experiment_name, self.tags = experiment_name, dict(tags or {})
        self.tracking_token, self.should_save_artifact = tracking_token, save_artifact
        self.log_params_on_trial_end = log_params_on_trial_end
        self._client: Any = None
        self._experiment_id: str | None = None
        self._runs: dict[str, str] = {}

    def setup(self, **info: Any) -> None:
        """Connect to the tracking server (checked here, before any trial runs)."""
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as exc:
            raise ConfigError("MLflowLoggerCallback needs MLflow: pip install 'hpctune[mlflow]' "
                              "(or pip install mlflow) in the driver's environment.") from exc
        if self.tracking_token:
            os.environ["MLFLOW_TRACKING_TOKEN"] = self.tracking_token
        self._client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.update(_client=None, _runs={}, _experiment_id=None)  # no connection in tuner.pkl
        return state

    # -- runs ------------------------------------------------------------------------------------
    def log_trial_start(self, trial: Any) -> None:
        self._run_id(trial)

    def _run_id(self, trial: Any) -> str:
        """The trial's run: this driver's, an earlier driver's (found by tag), or a new one."""
        run_id = self._runs.get(trial.trial_id)
        if run_id is not None:
            return run_id
        if self._client is None:
            self.setup()
        experiment_id = self._experiment(trial)
        found = self._client.search_runs([experiment_id], f"tags.{TRIAL_TAG} = '{trial.trial_id}'",
                                         max_results=1)
        if found:
            run_id = found[0].info.run_id
        else:
            tags = {**{k: str(v) for k, v in self.tags.items()}, "trial_name": str(trial),
                    TRIAL_TAG: trial.trial_id}
            run_id = self._client.create_run(experiment_id, tags=tags, run_name=str(trial)).info.run_id
            if not self.log_params_on_trial_end:
                self._log_params(run_id, trial.config)
        self._runs[trial.trial_id] = run_id
        return run_id

    def _experiment(self, trial: Any) -> str:
        if self._experiment_id is None:
            env_id = os.environ.get("MLFLOW_EXPERIMENT_ID")
            name = (self.experiment_name or os.environ.get("MLFLOW_EXPERIMENT_NAME")
                    or (None if env_id else Path(trial.path).parents[1].name))
            if name is None:
                self._experiment_id = env_id
            else:
                known = self._client.get_experiment_by_name(name)
                self._experiment_id = known.experiment_id if known else self._client.create_experiment(name)
        return self._experiment_id

    # -- logging ---------------------------------------------------------------------------------
    def write(self, trial: Any, results: list[dict]) -> None:
        from mlflow.entities import Metric

        run_id = self._run_id(trial)
        metrics = []
        for result in results:
            step = int(result.get("timesteps_total") or result.get("training_iteration") or 0)
            stamp = int(float(result.get("timestamp") or 0) * 1000)
            for key, value in flatten({k: v for k, v in result.items() if k != "config"}).items():
                number = _number(value)
                if number is not None:
                    metrics.append(Metric(key, number, stamp, step))
        for i in range(0, len(metrics), _MAX_METRICS):
            self._client.log_batch(run_id, metrics=metrics[i:i + _MAX_METRICS])

    def close_trial(self, trial: Any, failed: bool) -> None:
        run_id = self._run_id(trial)
        if self.should_save_artifact:
            self._client.log_artifacts(run_id, trial.path)
        if self.log_params_on_trial_end:
            self._log_params(run_id, trial.config)
        self._client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
        self._runs.pop(trial.trial_id, None)

    def _log_params(self, run_id: str, config: dict) -> None:
        from mlflow.entities import Param

        params = [Param(k, str(v)[:_MAX_PARAM_CHARS]) for k, v in flatten(config_view(config)).items()]
        for i in range(0, len(params), _MAX_PARAMS):
            self._client.log_batch(run_id, params=params[i:i + _MAX_PARAMS])


def _number(value: Any) -> float | None:
    """A metric's value: numbers and bools (as Ray's ``float(value)``); None for the rest."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    return float(value) if isinstance(value, (bool, int, float)) else None
