"""Trainables: functions ``f(config)`` or ``Trainable`` classes, plus the with_* wrappers."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from hpctune.errors import ConfigError, TrainableError

RESOURCE_KEYS = {"cpu", "gpu", "mem_gb", "memory", "nodes", "tasks_per_node"}
DEFAULT_RESOURCES = {"cpu": 1, "gpu": 0}
_RESOURCES_ATTR = "_hpctune_resources"


class Trainable:
    """Class API of a trainable (Ray's ``tune.Trainable``): setup, step, checkpoints, cleanup.

    ``step()`` returns a result dict; include ``"done": True`` to finish, or
    ``"should_checkpoint": True`` to ask for a checkpoint after this step.
    """

    def __init__(self, config: dict[str, Any] | None = None, **setup_kwargs: Any):
        self.config = dict(config or {})
        self.setup(self.config, **setup_kwargs)

    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        """Called once with the trial's config (and with_parameters' kwargs)."""

    def step(self) -> dict[str, Any]:
        raise NotImplementedError("Trainable subclasses must implement step() -> dict.")

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """Write the state to ``checkpoint_dir``; called when a checkpoint is due."""
        return None

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Restore the state written by ``save_checkpoint``."""

    def cleanup(self) -> None:
        """Called once when the trial ends (also after an error or a stop)."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        return False


def is_class_trainable(trainable: Any) -> bool:
    return inspect.isclass(trainable) and issubclass(trainable, Trainable)


def validate_trainable(trainable: Any) -> None:
    """Reject what cannot run as a trial, before anything is submitted."""
    if is_class_trainable(trainable):
        return
    if inspect.isclass(trainable):
        raise TrainableError(
            f"{trainable.__name__} is a class but not a subclass of hpctune.Trainable: "
            "subclass Trainable and implement step(), or pass a function f(config)."
        )
    if not callable(trainable):
        raise TrainableError(
            f"The trainable must be a function f(config) or a Trainable class, got {trainable!r}."
        )


def with_resources(trainable: Any, resources: Mapping[str, Any] | Callable[[dict], Mapping]) -> Any:
    """Attach a per-trial resource request: {"cpu": 2, "gpu": 1, "mem_gb": 8}, or f(config)."""
    if not callable(resources):
        resources = normalize_resources(resources)
    if is_class_trainable(trainable):
        return type(trainable.__name__, (trainable,), {_RESOURCES_ATTR: staticmethod(lambda: resources)})

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> Any:
        return trainable(config)

    setattr(wrapped, _RESOURCES_ATTR, lambda: resources)
    return wrapped


def with_parameters(trainable: Any, **kwargs: Any) -> Any:
    """Pass large or constant objects to every trial (pickled once with the trainable)."""
    if is_class_trainable(trainable):

        def setup(self: Trainable, config: dict[str, Any], **extra: Any) -> None:
            trainable.setup(self, config, **kwargs, **extra)

        return type(trainable.__name__, (trainable,), {"setup": setup})

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> Any:
        return trainable(config, **kwargs)

    if hasattr(trainable, _RESOURCES_ATTR):
        setattr(wrapped, _RESOURCES_ATTR, getattr(trainable, _RESOURCES_ATTR))
    return wrapped


def resources_for(trainable: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The resource request of one trial (defaults: 1 CPU, no GPU)."""
    getter = getattr(trainable, _RESOURCES_ATTR, None)
    if getter is None:
        return dict(DEFAULT_RESOURCES)
    spec = getter()
    return normalize_resources(spec(config)) if callable(spec) else dict(spec)


def normalize_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a resource dict and convert Ray's ``memory`` (bytes) to ``mem_gb``."""
    unknown = set(resources) - RESOURCE_KEYS
    if unknown:
        raise ConfigError(
            f"Unknown resource key(s) {sorted(unknown)}: use {sorted(RESOURCE_KEYS - {'memory'})}, "
            "for example with_resources(train, {'cpu': 2, 'gpu': 1, 'mem_gb': 8})."
        )
    out = {**DEFAULT_RESOURCES, **resources}
    if "memory" in out:
        out["mem_gb"] = out.pop("memory") / 1024**3
    for key in ("cpu", "gpu", "nodes", "tasks_per_node"):
        value = out.get(key)
        if value is not None and (not float(value).is_integer() or value < 0):
            raise ConfigError(f"The value of resource `{key}` is {value!r}, but must be a whole number >= 0.")
        if value is not None:
            out[key] = int(value)
    if out["cpu"] < 1:
        out["cpu"] = 1
    return out
