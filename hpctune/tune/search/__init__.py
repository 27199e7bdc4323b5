"""Search algorithms: random/grid (default), ConcurrencyLimiter, Repeater, and the searchers
over libraries (Optuna, HyperOpt, BayesOpt, Nevergrad, ZOOpt, BOHB, Ax, HEBO).

Each library searcher lives at Ray's path (``hpctune.tune.search.hyperopt.HyperOptSearch``)
and loads here on first use, so that this package imports without any of the libraries.
"""

import importlib
from typing import Any

from hpctune.tune.search.basic_variant import BasicVariantGenerator
from hpctune.tune.search.concurrency_limiter import ConcurrencyLimiter
from hpctune.tune.search.registry import create_searcher
from hpctune.tune.search.repeater import Repeater
from hpctune.tune.search.searcher import Searcher

#: class name -> the module that defines it (imported on first use)
_LAZY = {
    "OptunaSearch": "optuna",
    "HyperOptSearch": "hyperopt",
    "BayesOptSearch": "bayesopt",
    "NevergradSearch": "nevergrad",
    "ZOOptSearch": "zoopt",
    "TuneBOHB": "bohb",
    "AxSearch": "ax",
    "HEBOSearch": "hebo",
}

__all__ = ["BasicVariantGenerator", "ConcurrencyLimiter", "Repeater", "Searcher",
           "create_searcher", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"hpctune.tune.search.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'hpctune.tune.search' has no attribute {name!r}")
