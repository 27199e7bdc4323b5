"""``create_scheduler("asha", **kwargs)``: pick a scheduler by name (from a CLI flag or config file)."""

from __future__ import annotations

import importlib
from typing import Any

from hpctune.errors import ConfigError
from hpctune.tune.schedulers.trial_scheduler import TrialScheduler

# name -> "module:attribute"; imported on use, so optional schedulers cost nothing.
# Names follow Ray Tune's create_scheduler (all of them), plus "asha".
SCHEDULERS: dict[str, str] = {
    "fifo": "hpctune.tune.schedulers.trial_scheduler:FIFOScheduler",
    "async_hyperband": "hpctune.tune.schedulers.async_hyperband:AsyncHyperBandScheduler",
    "asynchyperband": "hpctune.tune.schedulers.async_hyperband:AsyncHyperBandScheduler",
    "asha": "hpctune.tune.schedulers.async_hyperband:AsyncHyperBandScheduler",
    "median_stopping_rule": "hpctune.tune.schedulers.median_stopping:MedianStoppingRule",
    "medianstopping": "hpctune.tune.schedulers.median_stopping:MedianStoppingRule",
    "hyperband": "hpctune.tune.schedulers.hyperband:HyperBandScheduler",
    "pbt": "hpctune.tune.schedulers.pbt:PopulationBasedTraining",
    "pbt_replay": "hpctune.tune.schedulers.pbt_replay:PopulationBasedTrainingReplay",
    "pb2": "hpctune.tune.schedulers.pb2:PB2",
    "resource_changing": "hpctune.tune.schedulers.resource_changing_scheduler:ResourceChangingScheduler",
    "hb_bohb": "hpctune.tune.schedulers.hb_bohb:HyperBandForBOHB",
}


def _load(name: str) -> type[TrialScheduler]:
    module_name, attribute = SCHEDULERS[name].split(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ConfigError(
            f"The scheduler {name!r} is not available in this version of hpctune ({error})."
        ) from error


def create_scheduler(name: str, **kwargs: Any) -> TrialScheduler:
    """Instantiate the scheduler called ``name`` (case-insensitive) with ``kwargs``."""
    key = name.lower() if isinstance(name, str) else name
    if key not in SCHEDULERS:
        raise ConfigError(
            f"The value of `scheduler` is {name!r}, but must be one of {sorted(SCHEDULERS)}."
        )
    return _load(key)(**kwargs)
