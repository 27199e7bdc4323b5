"""hpctune: Ray Tune's API, with Slurm doing the scheduling.

``import hpctune as tune`` gives the public API. Names are loaded on first use so
that the worker inside each Slurm job starts fast (it imports ``hpctune.worker``,
which must not pull in pandas, numpy or the driver).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SPACE = [
    "uniform", "quniform", "loguniform", "qloguniform", "randn", "qrandn", "randint",
    "qrandint", "lograndint", "qlograndint", "choice", "sample_from", "grid_search",
]
_EXPORTS: dict[str, str] = {
    **{name: "hpctune.space" for name in _SPACE},
    "Tuner": "hpctune.tuner",
    "TuneConfig": "hpctune.config",
    "RunConfig": "hpctune.config",
    "FailureConfig": "hpctune.config",
    "CheckpointConfig": "hpctune.config",
    "SlurmConfig": "hpctune.config",
    "report": "hpctune.session",
    "get_context": "hpctune.session",
    "get_checkpoint": "hpctune.session",
    "get_trial_resources": "hpctune.session",
    "Checkpoint": "hpctune.checkpoint",
    "Trainable": "hpctune.trainable",
    "with_resources": "hpctune.trainable",
    "with_parameters": "hpctune.trainable",
    "ResultGrid": "hpctune.results",
    "Result": "hpctune.results",
    "Callback": "hpctune.callbacks",
    "CLIReporter": "hpctune.progress",
    "JupyterNotebookReporter": "hpctune.progress",
    "ProgressReporter": "hpctune.progress",
    "Stopper": "hpctune.stoppers",
    "HpctuneError": "hpctune.errors",
    "TuneError": "hpctune.errors",
    "SyncConfig": "hpctune.config",
    "run": "hpctune.tune_run",
    "run_experiments": "hpctune.tune_run",
    "Experiment": "hpctune.tune_run",
    "ExperimentAnalysis": "hpctune.analysis",
    "register_trainable": "hpctune.trainable_registry",
    "ScalingConfig": "hpctune.distributed",
    "PlacementGroupFactory": "hpctune.schedulers.distribute_resources",
}
_SUBMODULES = {"train", "tune", "search", "schedulers", "stoppers", "stopper", "space", "loggers"}
#: Ray's module names that are ours under another name (``tune.logger`` is ``ray.tune.logger``)
_ALIASES = {"logger": "hpctune.loggers"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, *_ALIASES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"hpctune.{name}")
    elif name in _ALIASES:
        value = importlib.import_module(_ALIASES[name])
    else:
        raise AttributeError(f"module 'hpctune' has no attribute {name!r}")
    globals()[name] = value
    return value
