"""``from hpctune import tune``: the names of ``ray.tune``, so a script moves by one import line.

Names load on first use (like ``import hpctune``), so that a trainable that refers to
``tune.report`` does not make every job import the driver's modules.
"""

from typing import Any

import hpctune as _hpctune

__all__ = [name for name in _hpctune.__all__ if name not in ("train", "tune", "__version__")]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'hpctune.tune' has no attribute {name!r}")
    return getattr(_hpctune, name)
