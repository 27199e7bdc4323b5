"""create_searcher: build a search algorithm from its name (for CLI options and config files)."""

from __future__ import annotations

import importlib
from typing import Any

from hpctune.errors import ConfigError
from hpctune.tune.search.searcher import Searcher

# name -> "module:Class", imported on use so that optional dependencies stay optional
SEARCHERS: dict[str, str] = {
    "random": "hpctune.tune.search.basic_variant:BasicVariantGenerator",
    "variant_generator": "hpctune.tune.search.basic_variant:BasicVariantGenerator",
    "basic_variant": "hpctune.tune.search.basic_variant:BasicVariantGenerator",
    "optuna": "hpctune.tune.search.optuna:OptunaSearch",
}


def create_searcher(name: str, **kwargs: Any) -> Searcher:
    """The searcher called ``name``, constructed with ``kwargs``.

    >>> create_searcher("optuna", metric="loss", mode="min", seed=0)  # doctest: +SKIP
    """
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in SEARCHERS:
        raise ConfigError(
            f"Unknown search algorithm {name!r}; valid names: {', '.join(sorted(SEARCHERS))}."
        )
    module_name, class_name = SEARCHERS[key].split(":")
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)
