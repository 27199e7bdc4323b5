"""Trainables: functions ``f(config)`` or ``Trainable`` classes, plus the with_* wrappers."""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping
from typing import Any

from hpctune.core.resources import DEFAULT_RESOURCES, RESOURCES_ATTR, normalize_resources
from hpctune.errors import TrainableError
from hpctune.worker.session import current_session


class Trainable:
    """Class API of a trainable (Ray's ``tune.Trainable``): setup, step, checkpoints, cleanup.

    ``step()`` returns a result dict; include ``"done": True`` to finish, or
    ``"should_checkpoint": True`` to ask for a checkpoint after this step. Inside a trial,
    ``iteration``, ``trial_id``, ``trial_name``, ``logdir`` and ``trial_resources`` describe it.
    """

    def __init__(self, config: dict[str, Any] | None = None, logger_creator: Any = None,
                 storage: Any = None, **setup_kwargs: Any):
        self.config = dict(config or {})
        self.setup(self.config, **setup_kwargs)

    @property
    def iteration(self) -> int:
        """Steps completed, those before a restore from a checkpoint included."""
        session = current_session()
        return session.iteration if session else 0

    @property
    def training_iteration(self) -> int:
        return self.iteration

    @property
    def trial_id(self) -> str:
        session = current_session()
        return session.context.trial_id if session else "default"

    @property
    def trial_name(self) -> str:
        session = current_session()
        return session.context.trial_name if session else "default"

    @property
    def logdir(self) -> str:
        """The trial directory (where checkpoints and result files go)."""
        session = current_session()
        return session.context.trial_dir if session else os.getcwd()

    @property
    def trial_resources(self) -> dict[str, Any]:
        session = current_session()
        return session.context.get_trial_resources() if session else dict(DEFAULT_RESOURCES)

    @classmethod
    def default_resource_request(cls, config: dict[str, Any]) -> Mapping[str, Any] | None:
        """The resources of a trial with ``config`` when no ``with_resources`` is given
        (None: 1 CPU, no GPU); override to size trials from their config."""
        return None

    def setup(self, config: dict[str, Any], **kwargs: Any) -> None:
        """Called once with the trial's config (and with_parameters' kwargs)."""

    def step(self) -> dict[str, Any]:
        raise NotImplementedError("Trainable subclasses must implement step() -> dict.")

    def log_result(self, result: dict[str, Any]) -> None:
        """Called with each result as recorded (auto-filled metrics and config included)."""

    def save_checkpoint(self, checkpoint_dir: str) -> dict | None:
        """Write the state to ``checkpoint_dir``; called when a checkpoint is due."""
        return None

    def load_checkpoint(self, checkpoint_dir: str) -> None:
        """Restore the state written by ``save_checkpoint``."""

    def cleanup(self) -> None:
        """Called once when the trial ends (also after an error or a stop)."""

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        """Take a new config without a restart (Ray's actor reuse); False: not supported.
        Trials never reuse a process here, so hpctune itself does not call it."""
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
    """Attach a per-trial resource request: {"cpu": 2, "gpu": 1, "mem_gb": 8}, or a function of
    the trial's config returning one (``lambda config: ...`` or Ray's ``lambda spec: spec.config...``).
    A trial of several tasks: {"nodes": 2, "tasks_per_node": 4, "gpus_per_task": 1, "cpus_per_task":
    8}, or a ``ScalingConfig`` (docs/distributed.md)."""
    if not callable(resources):
        resources = normalize_resources(resources)
    if is_class_trainable(trainable):
        return type(trainable.__name__, (trainable,), {RESOURCES_ATTR: staticmethod(lambda: resources)})

    @functools.wraps(trainable)
    def wrapped(config: dict[str, Any]) -> Any:
        return trainable(config)

    setattr(wrapped, RESOURCES_ATTR, lambda: resources)
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

    if hasattr(trainable, RESOURCES_ATTR):
        setattr(wrapped, RESOURCES_ATTR, getattr(trainable, RESOURCES_ATTR))
    return wrapped


def step_result(instance: Trainable) -> dict[str, Any]:
    """``instance.step()``'s result as a dict; a TrainableError naming the class when it is not
    one (a ``step()`` that forgot its ``return`` gives None)."""
    result = instance.step()
    if not isinstance(result, Mapping):
        raise TrainableError(
            f"{type(instance).__name__}.step() returned {result!r}, but must return a dict of "
            "metrics. Fix: end step() with `return {'loss': loss}` (add 'done': True to end the "
            "trial).")
    return dict(result)
