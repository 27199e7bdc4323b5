"""Loggers (Ray's ``ray.tune.logger``, here also ``tune.logger``): callbacks that record every
result as it arrives, in the driver.

``CSVLoggerCallback`` (``progress.csv``) and, when ``tensorboardX`` is installed,
``TBXLoggerCallback`` are added to every experiment's callbacks unless the run already has one
of the kind or ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``. ``JsonLoggerCallback`` (``result.json``)
is Ray's third default but not ours: the trial's ``result.jsonl`` already holds every result,
and a file fewer per trial counts against inode quotas at 100,000 trials; add it yourself.
``MLflowLoggerCallback`` (``hpctune.tune.logger.mlflow``, ``pip install 'hpctune[mlflow]'``) and
``WandbLoggerCallback`` (``hpctune.tune.logger.wandb``, ``pip install 'hpctune[wandb]'``),
``CometLoggerCallback`` (``hpctune.tune.logger.comet``, ``pip install 'hpctune[comet]'``) and
``AimLoggerCallback`` (``hpctune.tune.logger.aim``, ``pip install aim``) are added by you. The workers never write any of these files.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from hpctune.config.ray_env import auto_loggers_disabled
from hpctune.tune.logger.base import BatchedLoggerCallback, LoggerCallback
from hpctune.tune.logger.files import CSVLoggerCallback, JsonLoggerCallback
from hpctune.tune.logger.tbx import TBXLoggerCallback

#: loaded on first use: importing them does not import mlflow, wandb, comet_ml or aim either
_LAZY = {"MLflowLoggerCallback": "hpctune.tune.logger.mlflow", "WandbLoggerCallback": "hpctune.tune.logger.wandb",
         "CometLoggerCallback": "hpctune.tune.logger.comet", "AimLoggerCallback": "hpctune.tune.logger.aim"}

__all__ = ["LoggerCallback", "BatchedLoggerCallback", "JsonLoggerCallback", "CSVLoggerCallback",
           "TBXLoggerCallback", "MLflowLoggerCallback", "WandbLoggerCallback", "CometLoggerCallback",
           "AimLoggerCallback", "auto_loggers"]


def auto_loggers(callbacks: list[Any]) -> list[LoggerCallback]:
    """The default loggers that ``callbacks`` lacks: CSV and TensorBoard (when tensorboardX is
    installed; Ray adds JSON too, whose ``result.json`` repeats ``result.jsonl``); none with
    ``TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1``."""
    if auto_loggers_disabled():
        return []
    kinds: list[type[LoggerCallback]] = [CSVLoggerCallback]
    if importlib.util.find_spec("tensorboardX") is not None:
        kinds.append(TBXLoggerCallback)
    added = [kind() for kind in kinds if not any(isinstance(c, kind) for c in callbacks)]
    for logger in added:
        logger.added_by_default = True  # not the user's: no place in the saved callback states
    return added


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hpctune.tune.logger' has no attribute {name!r}")
