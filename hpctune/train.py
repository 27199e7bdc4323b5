"""``from hpctune import train``: the names of ``ray.train`` that Tune scripts use (loaded lazily)."""

from typing import Any

import hpctune as _hpctune

_NAMES = (
    "Checkpoint", "CheckpointConfig", "FailureConfig", "Result", "RunConfig", "ScalingConfig",
    "SyncConfig", "get_checkpoint", "get_context", "report",
)
__all__ = [*_NAMES]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'hpctune.train' has no attribute {name!r}")
    return getattr(_hpctune, name)
