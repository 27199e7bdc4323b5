"""Ray's ``AimLoggerCallback`` (``tune.logger.aim``): one Aim run per trial in a local Aim
repository, logged from the driver (``pip install aim``; see below).

Each run is tagged with the trial's id and directory and holds the trial's config as
``run["hparams"]``; every number of each result is tracked as ``ray/tune/<key>`` (nested keys as
``a/b``) at step ``timesteps_total`` or ``training_iteration``, with the result's ``epoch`` and
``context`` when it reports them. ``aim up --repo <experiment dir>`` shows them.

Aim 3.29 requires ``filelock<4``, which hpctune's test environment (filelock 4) cannot hold:
install Aim where your filelock is 3.x.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hpctune.core.metrics import flatten
from hpctune.errors import ConfigError
from hpctune.storage.experiment import config_view
from hpctune.tune.logger.base import BatchedLoggerCallback

#: not tracked: the config is the run's hparams, the others are bookkeeping
_NOT_TRACKED = ("config", "pid", "timestamp", "time_total_s", "training_iteration", "epoch", "context")
#: Aim's options that would record the driver's terminal and machine, not the trial's: off by default
_DRIVER_ONLY = {"capture_terminal_logs": False, "system_tracking_interval": None, "log_system_params": False}


class AimLoggerCallback(BatchedLoggerCallback):
    """Ray's arguments: ``repo`` (an Aim repository path or ``Repo``; default: the experiment's
    directory), ``experiment_name`` (the runs' ``experiment``; default: the experiment's name),
    ``metrics`` (the result keys to track; default: every number), and any other keyword for
    ``aim.Run`` (``capture_terminal_logs``, ``system_tracking_interval`` and
    ``log_system_params`` are off unless given: the driver's are not the trial's)."""

    def __init__(self, repo: Any = None, experiment_name: str | None = None,
                 metrics: list[str] | None = None, **aim_run_kwargs: Any):
        super().__init__()
        if metrics is not None and not metrics:
            raise ConfigError("AimLoggerCallback(metrics=[]) tracks nothing: name at least one "
                              "metric, or leave metrics=None to track every number reported.")
        self.repo, self.experiment_name = repo, experiment_name
        self.metrics = list(metrics) if metrics else None
        self.aim_run_kwargs = {**_DRIVER_ONLY, **aim_run_kwargs}
        self._runs: dict[str, Any] = {}

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_runs": {}}  # no open run in tuner.pkl

    def setup(self, **info: Any) -> None:
        """Check the library before any trial runs."""
        _import_aim()

    def log_trial_start(self, trial: Any) -> None:
        old = self._runs.pop(trial.trial_id, None)
        if old is not None:  # the trial runs again: a new run, as in Ray
            old.close()
        self._run(trial)

    def _run(self, trial: Any) -> Any:
        run = self._runs.get(trial.trial_id)
        if run is None:
            experiment_dir = Path(trial.path).parents[1]
            run = _import_aim().Run(repo=self.repo or str(experiment_dir),
                                    experiment=self.experiment_name or experiment_dir.name,
                                    **self.aim_run_kwargs)
            run["trial_id"] = trial.trial_id
            run["trial_log_dir"] = trial.path
            run["hparams"] = flatten(config_view(trial.config))
            self._runs[trial.trial_id] = run
        return run

    def write(self, trial: Any, results: list[dict]) -> None:
        run = self._run(trial)
        for result in results:
            step = result.get("timesteps_total") or result.get("training_iteration")
            tracked = flatten({k: v for k, v in result.items() if k not in _NOT_TRACKED})
            for key, value in tracked.items():
                if self.metrics and key not in self.metrics:
                    continue
                number = _finite_number(value)
                if number is not None:
                    run.track(number, name=f"ray/tune/{key}", step=step, epoch=result.get("epoch"),
                              context=result.get("context"))

    def close_trial(self, trial: Any, failed: bool) -> None:
        run = self._runs.pop(trial.trial_id, None)
        if run is not None:
            run.close()

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        super().on_experiment_end(trials, **info)
        for trial_id in list(self._runs):
            self._runs.pop(trial_id).close()


def _finite_number(value: Any) -> float | int | None:
    """Numbers Aim can track (numpy's as Python's); NaN, infinities, text and bools are not."""
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _import_aim() -> Any:
    try:
        import aim
    except ImportError as exc:
        raise ConfigError("AimLoggerCallback needs aim: pip install aim in the driver's environment "
                          "(aim 3.29 requires filelock<4: use an environment where filelock is "
                          "3.x).") from exc
    return aim
