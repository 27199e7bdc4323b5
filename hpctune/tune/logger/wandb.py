"""Ray's ``WandbLoggerCallback`` (``tune.logger.wandb``): one Weights & Biases run per trial,
logged from the driver (``pip install 'hpctune[wandb]'``).

Runs are ``wandb.init(id=<trial id>, name=<trial name>, group=<experiment>, resume="allow")``
in the trial's directory; every result is a ``run.log`` of its numbers (nested keys as
``a/b``), Ray's auto-filled identity keys (trial id, host, pid...) go to the run's config.
``WANDB_MODE=offline`` keeps everything on disk for ``wandb sync`` later (compute nodes often
have no internet; the driver may not either).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.errors import ConfigError
from hpctune.storage.experiment import config_view
from hpctune.tune.logger.base import BatchedLoggerCallback

DEFAULT_SYNC_TIMEOUT = 1800


class WandbLoggerCallback(BatchedLoggerCallback):
    """Ray's arguments: ``project`` (or ``$WANDB_PROJECT``), ``group`` (or ``$WANDB_GROUP``;
    default: the experiment's name), ``api_key_file``, ``api_key``, ``excludes`` (result keys
    not logged), ``log_config`` (also log the config with each result), ``upload_checkpoints``
    (each checkpoint as an artifact; ``save_checkpoints`` is its older name),
    ``upload_timeout`` (seconds to wait for uploads when a run finishes), and any other
    keyword for ``wandb.init``."""

    _exclude_results = ["done", "should_checkpoint"]
    AUTO_CONFIG_KEYS = ["trial_id", "experiment_tag", "node_ip", "experiment_id", "hostname", "pid", "date"]

    def __init__(self, project: str | None = None, group: str | None = None,
                 api_key_file: str | None = None, api_key: str | None = None,
                 excludes: list[str] | None = None, log_config: bool = False,
                 upload_checkpoints: bool = False, save_checkpoints: bool = False,
                 upload_timeout: int = DEFAULT_SYNC_TIMEOUT, **kwargs: Any):
        super().__init__()
        self.project, self.group = project, group
        self.api_key_file, self.api_key = api_key_file, api_key
        self.excludes = list(excludes or [])
        self.log_config = log_config
        self.upload_checkpoints = upload_checkpoints or save_checkpoints
        self.upload_timeout = upload_timeout
        self.kwargs = kwargs
        self._runs: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_runs": {}}  # no open run in tuner.pkl

    def setup(self, **info: Any) -> None:
        """Check the library, the API key and the project before any trial runs."""
        try:
            import wandb  # noqa: F401
        except ImportError as exc:
            raise ConfigError("WandbLoggerCallback needs wandb: pip install 'hpctune[wandb]' "
                              "(or pip install wandb) in the driver's environment.") from exc
        _set_api_key(self.api_key_file, self.api_key)
        self.project = self.project or os.environ.get("WANDB_PROJECT")
        if not self.project:
            raise ConfigError("WandbLoggerCallback needs a project: pass "
                              "WandbLoggerCallback(project='...') or set $WANDB_PROJECT.")
        self.group = self.group or os.environ.get("WANDB_GROUP")

    # -- runs ------------------------------------------------------------------------------------
    def log_trial_start(self, trial: Any) -> None:
        self._run(trial)

    def _run(self, trial: Any) -> Any:
        run = self._runs.get(trial.trial_id)
        if run is None:
            import wandb

            if not self.project:
                self.setup()
            options = {"id": trial.trial_id, "name": str(trial), "resume": "allow",
                       "reinit": "create_new", "project": self.project,
                       "group": self.group or Path(trial.path).parents[1].name,
                       "dir": trial.path, "config": config_view(trial.config), **self.kwargs}
            run = self._runs[trial.trial_id] = wandb.init(**options)
        return run

    def log_trial_save(self, trial: Any) -> None:
        if self.upload_checkpoints and trial.checkpoint:
            import wandb

            run = self._run(trial)
            artifact = wandb.Artifact(f"checkpoint_{trial.trial_id}", type="model")
            artifact.add_dir(str(Path(trial.path) / trial.checkpoint))
            run.log_artifact(artifact)

    # -- logging ---------------------------------------------------------------------------------
    def write(self, trial: Any, results: list[dict]) -> None:
        run = self._run(trial)
        for result in results:
            log, config_update = self._handle_result(result)
            if config_update:
                run.config.update(config_update, allow_val_change=True)
            run.log(log)

    def _handle_result(self, result: dict) -> tuple[dict, dict]:
        """(what to log, what goes to the run's config), as Ray splits a result."""
        exclude = set(self.excludes) | set(self._exclude_results)
        if not self.log_config:
            exclude.add("config")
        log, config_update = {}, {}
        for key, value in flatten(result).items():
            if any(key == item or key.startswith(item + "/") for item in exclude):
                continue
            if any(key == item or key.startswith(item + "/") for item in self.AUTO_CONFIG_KEYS):
                config_update[key] = value
            elif _is_allowed_type(value):
                log[key] = value
        return log, config_update

    def close_trial(self, trial: Any, failed: bool) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            run.finish(exit_code=1 if failed else 0)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        super().on_experiment_end(trials, **info)
        for trial_id in list(self._runs):
            self._runs.pop(trial_id).finish()


def _is_allowed_type(value: Any) -> bool:
    """Numbers (numpy's too) and lists/arrays of them; strings and objects are not logged."""
    if isinstance(value, (bool, int, float)):
        return True
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return True
    if isinstance(value, (list, tuple)):
        return all(isinstance(v, (int, float)) for v in value)
    return hasattr(value, "ndim")


def _set_api_key(api_key_file: str | None, api_key: str | None) -> None:
    """Ray's rule: a key from the file or the argument goes to ``$WANDB_API_KEY``; offline and
    disabled modes need none."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return
    if api_key_file and api_key:
        raise ConfigError("WandbLoggerCallback: pass api_key_file or api_key, not both.")
    if api_key_file:
        api_key = Path(api_key_file).expanduser().read_text().strip().splitlines()[0]
    if api_key:
        os.environ["WANDB_API_KEY"] = api_key
