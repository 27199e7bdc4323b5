"""Ray's ``CometLoggerCallback`` (``tune.logger.comet``): one Comet experiment per trial, logged
from the driver (``pip install 'hpctune[comet]'``).

Each trial's config becomes the experiment's parameters (flattened to ``a/b``), every number of
each result a metric at step ``training_iteration``; Ray's identity keys (trial id, experiment
tag) go to "Other", the host keys (hostname, node ip, pid, date) to the system info.
``online=False`` makes ``comet_ml.OfflineExperiment``s whose archives (``<key>.zip``, in the
trial directory unless ``offline_directory`` or ``$COMET_OFFLINE_DIRECTORY`` says otherwise)
``comet upload`` sends later: for drivers without internet.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.errors import ConfigError
from hpctune.storage.experiment import config_view
from hpctune.tune.logger.base import BatchedLoggerCallback


class CometLoggerCallback(BatchedLoggerCallback):
    """Ray's arguments: ``online`` (False: offline experiments), ``tags`` (on every experiment),
    ``save_checkpoints`` (each checkpoint as a model artifact), and any other keyword for
    ``comet_ml.Experiment`` / ``OfflineExperiment`` (``project_name``, ``workspace``,
    ``api_key``, ``offline_directory``...). Comet's automatic logging of the driver's output,
    git state and CPU/GPU is off unless a keyword turns it on (as in Ray)."""

    _exclude_results = ["done", "should_checkpoint", "config"]
    _system_results = ["node_ip", "hostname", "pid", "date"]
    _other_results = ["trial_id", "experiment_id", "experiment_tag"]
    _autolog_off = ["auto_output_logging", "log_git_metadata", "log_git_patch", "log_env_cpu",
                    "log_env_gpu"]

    def __init__(self, online: bool = True, tags: list[str] | None = None,
                 save_checkpoints: bool = False, **experiment_kwargs: Any):
        super().__init__()
        self.online = online
        self.tags = list(tags or [])
        self.save_checkpoints = save_checkpoints
        self.experiment_kwargs = {**{option: False for option in self._autolog_off}, **experiment_kwargs}
        self._experiments: dict[str, Any] = {}
        self._params: dict[str, dict] = {}  # the config last logged of each trial

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_experiments": {}, "_params": {}}  # no open experiment in tuner.pkl

    def setup(self, **info: Any) -> None:
        """Check the library before any trial runs."""
        _import_comet(self.online)

    # -- experiments -----------------------------------------------------------------------------
    def log_trial_start(self, trial: Any) -> None:
        self._experiment(trial)

    def _experiment(self, trial: Any) -> Any:
        experiment = self._experiments.get(trial.trial_id)
        if experiment is None:
            comet_ml = _import_comet(self.online)
            from comet_ml.config import set_global_experiment

            options = dict(self.experiment_kwargs)
            if not self.online and not os.environ.get("COMET_OFFLINE_DIRECTORY"):
                options.setdefault("offline_directory", trial.path)
            kind = comet_ml.Experiment if self.online else comet_ml.OfflineExperiment
            experiment = self._experiments[trial.trial_id] = kind(**options)
            set_global_experiment(None)  # several experiments at once in one process
            experiment.set_name(str(trial))
            if self.tags:
                experiment.add_tags(self.tags)
            experiment.log_other("Created from", "hpctune")
            self._log_config(trial.trial_id, experiment, trial.config)
        return experiment

    def _log_config(self, trial_id: str, experiment: Any, config: dict, step: int | None = None) -> None:
        """The config as parameters, again only when it changed (PBT's exploits)."""
        params = flatten(config_view({k: v for k, v in config.items() if k != "callbacks"}))
        if params != self._params.get(trial_id):
            experiment.log_parameters(params, step=step)
            self._params[trial_id] = params

    def log_trial_save(self, trial: Any) -> None:
        if self.save_checkpoints and trial.checkpoint:
            comet_ml = _import_comet(self.online)
            artifact = comet_ml.Artifact(name=f"checkpoint_{trial}", artifact_type="model")
            root = Path(trial.path) / trial.checkpoint
            for file in sorted(p for p in root.rglob("*") if p.is_file()):
                artifact.add(str(file), logical_path=str(file.relative_to(root)))
            self._experiment(trial).log_artifact(artifact)

    # -- logging ---------------------------------------------------------------------------------
    def write(self, trial: Any, results: list[dict]) -> None:
        experiment = self._experiment(trial)
        for result in results:
            step = result.get("training_iteration")
            if isinstance(result.get("config"), dict):
                self._log_config(trial.trial_id, experiment, result["config"], step)
            metrics, others, system = {}, {}, {}
            for key, value in flatten(result).items():
                if value is None or _under(key, self._exclude_results):
                    continue
                if _under(key, self._other_results):
                    others[key] = value
                elif _under(key, self._system_results):
                    system[key] = value
                else:
                    metrics[key] = value
            if others:
                experiment.log_others(others)
            experiment.log_metrics(metrics, step=step)
            for key, value in system.items():
                experiment.log_system_info(key, value)

    def close_trial(self, trial: Any, failed: bool) -> None:
        experiment = self._experiments.pop(trial.trial_id, None)
        self._params.pop(trial.trial_id, None)
        if experiment is not None:
            experiment.end()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        super().on_experiment_end(trials, **info)
        for trial_id in list(self._experiments):
            self._experiments.pop(trial_id).end()


def _under(key: str, names: list[str]) -> bool:
    """``key`` is one of ``names`` or nested under one (``"a/b"`` under ``"a"``)."""
    return any(key == name or key.startswith(name + "/") for name in names)


def _import_comet(online: bool) -> Any:
    """comet_ml, with Comet's automatic logging of the importing process off (as Ray does) and,
    offline, its error reports to Sentry too (nothing may need the network)."""
    os.environ.setdefault("COMET_DISABLE_AUTO_LOGGING", "1")
    if not online:
        os.environ.setdefault("COMET_ERROR_TRACKING_ENABLE", "false")
    try:
        import comet_ml
    except ImportError as exc:
        raise ConfigError("CometLoggerCallback needs comet_ml: pip install 'hpctune[comet]' "
                          "(or pip install comet-ml) in the driver's environment.") from exc
    return comet_ml
