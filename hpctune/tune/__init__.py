"""``from hpctune import tune``: Ray Tune's API, at Ray's module paths.

A Ray script moves by changing ``ray`` to ``hpctune`` in its imports: ``tune.Tuner``,
``hpctune.tune.search.optuna.OptunaSearch``, ``hpctune.tune.schedulers.ASHAScheduler``,
``hpctune.tune.stopper``, ``hpctune.tune.logger``, ``hpctune.tune.experiment.trial.Trial``,
``hpctune.tune.result``. This package holds that API and the pure decision logic
(searchers, schedulers, stoppers); what enacts it runs elsewhere (``hpctune.controller``).

Names load on first use (like ``import hpctune``), so that a trainable that refers to
``tune.report`` does not make every job import the driver's modules.
"""

import importlib
from typing import Any

import hpctune as _hpctune

__all__ = [name for name in _hpctune.__all__ if name not in ("train", "tune", "__version__")]
#: Ray's submodules of ``ray.tune`` that are attributes before anyone imported them
_SUBPACKAGES = ("experiment", "result", "logger", "search", "schedulers", "stopper", "utils")


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f"hpctune.tune.{name}")
    if name not in __all__:
        raise AttributeError(f"module 'hpctune.tune' has no attribute {name!r}")
    return getattr(_hpctune, name)
