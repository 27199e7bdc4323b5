"""Alias of hpctune.stoppers, so that Ray's ``from ray.tune.stopper import ...`` maps one to one."""

from hpctune.stoppers import *  # noqa: F403
from hpctune.stoppers import __all__  # noqa: F401
