"""create_searcher: build a search algorithm from its name (for CLI options and config files).

Every name of Ray Tune's ``create_searcher`` is known. A searcher's library is imported when
the searcher is built, so a missing library fails there with the extra to install
(``pip install 'hpctune[hyperopt]'``), and unknown names list the valid ones.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from hpctune.errors import ConfigError
from hpctune.tune.search.searcher import Searcher

_BASIC = "hpctune.tune.search.basic_variant:BasicVariantGenerator"
# name -> "module:Class", imported on use so that optional dependencies stay optional
SEARCHERS: dict[str, str] = {
    "random": _BASIC,
    "variant_generator": _BASIC,
    "basic_variant": _BASIC,
    "optuna": "hpctune.tune.search.optuna:OptunaSearch",
    "hyperopt": "hpctune.tune.search.hyperopt:HyperOptSearch",
    "bayesopt": "hpctune.tune.search.bayesopt:BayesOptSearch",
    "nevergrad": "hpctune.tune.search.nevergrad:NevergradSearch",
    "zoopt": "hpctune.tune.search.zoopt:ZOOptSearch",
    "bohb": "hpctune.tune.search.bohb:TuneBOHB",
    "ax": "hpctune.tune.search.ax:AxSearch",
    "hebo": "hpctune.tune.search.hebo:HEBOSearch",
}
#: Ray Tune's names that hpctune does not provide, and why
UNAVAILABLE: dict[str, str] = {
    "vizier": "VizierSearch needs Google's OSS Vizier service, which hpctune does not support; "
    "use OptunaSearch or HyperOptSearch instead.",
}


def create_searcher(name: str, **kwargs: Any) -> Searcher:
    """The searcher called ``name``, constructed with ``kwargs``.

    >>> create_searcher("optuna", metric="loss", mode="min", seed=0)  # doctest: +SKIP
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key in UNAVAILABLE:
        raise ConfigError(f"The search algorithm {name!r} is not available: {UNAVAILABLE[key]}")
    if key not in SEARCHERS:
        raise ConfigError(
            f"Unknown search algorithm {name!r}; valid names: {', '.join(sorted(SEARCHERS))}."
        )
    module_name, class_name = SEARCHERS[key].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    _check_keywords(cls, kwargs)
    return cls(**kwargs)


def _check_keywords(cls: type, kwargs: dict[str, Any]) -> None:
    """Every keyword reaches the class's constructor, as in Ray; one it does not take is a
    ConfigError naming it (Ray drops it without a word). A constructor with ``**kwargs``
    (ZOOpt's, Ax's) checks its own."""
    parameters = inspect.signature(cls).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    named = [n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = sorted(set(kwargs) - set(named))
    if unknown:
        raise ConfigError(
            f"create_searcher: {cls.__name__} takes no {', '.join(map(repr, unknown))}; it "
            f"takes {', '.join(named)}. Leave the others out (Ray's create_searcher drops "
            "them without a word; hpctune says so)."
        )
