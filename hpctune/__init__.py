"""hpctune: Ray Tune's API, with Slurm doing the scheduling.

``import hpctune as tune`` gives the public API. Names are loaded on first use so
that the worker inside each Slurm job starts fast (it imports ``hpctune.worker``,
which must not pull in pandas, numpy or the driver).

The packages say where their code runs (``docs/concepts.md``, "Code map"): ``tune`` is
Ray Tune's public API and decision logic, ``controller``/``backends``/``display``/``cli``
run on the login node, ``worker`` and ``pool`` inside Slurm jobs, ``storage`` and ``core``
on both sides. Modules of 0.1 that moved keep their old import path (``_moved``).
"""

from __future__ import annotations

import importlib
from typing import Any

from hpctune import _moved

_moved.install()

__version__ = "0.1.0"

_SPACE = [
    "uniform", "quniform", "loguniform", "qloguniform", "randn", "qrandn", "randint",
    "qrandint", "lograndint", "qlograndint", "choice", "sample_from", "grid_search",
]
_EXPORTS: dict[str, str] = {
    **{name: "hpctune.space" for name in _SPACE},
    "Tuner": "hpctune.tune.tuner",
    "TuneConfig": "hpctune.config",
    "RunConfig": "hpctune.config",
    "FailureConfig": "hpctune.config",
    "CheckpointConfig": "hpctune.config",
    "SlurmConfig": "hpctune.config",
    "report": "hpctune.worker.session",
    "get_context": "hpctune.worker.session",
    "get_checkpoint": "hpctune.worker.session",
    "get_trial_resources": "hpctune.worker.session",
    "Checkpoint": "hpctune.core.checkpoint",
    "Trainable": "hpctune.tune.trainable",
    "with_resources": "hpctune.tune.trainable",
    "with_parameters": "hpctune.tune.trainable",
    "ResultGrid": "hpctune.results.grid",
    "Result": "hpctune.results.grid",
    "Callback": "hpctune.tune.callback",
    "CLIReporter": "hpctune.display.reporter",
    "JupyterNotebookReporter": "hpctune.display.reporter",
    "ProgressReporter": "hpctune.display.reporter",
    "Stopper": "hpctune.tune.stopper",
    "HpctuneError": "hpctune.errors",
    "TuneError": "hpctune.errors",
    "SyncConfig": "hpctune.config",
    "run": "hpctune.tune.tune_run",
    "run_experiments": "hpctune.tune.tune_run",
    "Experiment": "hpctune.tune.tune_run",
    "ExperimentAnalysis": "hpctune.results.analysis",
    "register_trainable": "hpctune.tune.registry",
    "ScalingConfig": "hpctune.worker.distributed",
    "PlacementGroupFactory": "hpctune.tune.schedulers.distribute_resources",
    "create_searcher": "hpctune.tune.search.registry",
    "create_scheduler": "hpctune.tune.schedulers.registry",
}
#: submodules reachable as attributes (``hpctune.schedulers.ASHAScheduler``, as ``tune.schedulers``)
_SUBMODULES: dict[str, str] = {
    "train": "hpctune.train",
    "tune": "hpctune.tune",
    "space": "hpctune.space",
    "search": "hpctune.tune.search",
    "schedulers": "hpctune.tune.schedulers",
    "stopper": "hpctune.tune.stopper",
    "stoppers": "hpctune.tune.stopper",  # hpctune 0.1's name
    "logger": "hpctune.tune.logger",
    "loggers": "hpctune.tune.logger",  # hpctune 0.1's name
}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    else:
        raise AttributeError(f"module 'hpctune' has no attribute {name!r}")
    globals()[name] = value
    return value
