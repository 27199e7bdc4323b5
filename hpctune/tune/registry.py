"""``tune.register_trainable(name, trainable)``: a trainable known by name, as in Ray, so that
``Tuner("name", ...)`` and ``tune.run("name")`` work. The registry lives in the driver only:
the trainable itself is what gets pickled for the jobs."""

from __future__ import annotations

from typing import Any

from hpctune.errors import TrainableError
from hpctune.tune.trainable import validate_trainable

_REGISTRY: dict[str, Any] = {}


def register_trainable(name: str, trainable: Any, warn: bool = True) -> None:
    """Register ``trainable`` (a function ``f(config)`` or a ``Trainable`` class) as ``name``."""
    if not isinstance(name, str) or not name:
        raise TrainableError(f"register_trainable needs a non-empty string name, got {name!r}.")
    validate_trainable(trainable)
    _REGISTRY[name] = trainable


def resolve_trainable(trainable: Any) -> tuple[Any, str | None]:
    """(the trainable, its registered name) for a name; (``trainable``, None) otherwise."""
    if not isinstance(trainable, str):
        return trainable, None
    if trainable not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY)) or "none"
        raise TrainableError(
            f"No trainable is registered as {trainable!r} (registered: {known}). Register it first: "
            f"tune.register_trainable({trainable!r}, my_function), or pass the function itself.")
    return _REGISTRY[trainable], trainable
