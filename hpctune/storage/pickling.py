"""Pickling the user's code for the jobs: the user's own modules by value, the rest by reference.

A job imports installed packages itself, but not a module from the user's own directory (the
driver's ``sys.path`` is not the job's), so cloudpickle pickles such modules by value: the job
does not need to import them. The trainable and each trial's config
(``storage.experiment.pickle_config``) are pickled this one way, so a class in a config is
the same class the trainable sees.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Mapping
from types import ModuleType
from typing import Any

from hpctune.errors import TrainableError


def pickle_trainable(trainable: Any) -> bytes:
    """cloudpickle the trainable (its module by value when it is the user's own), with a clear error."""
    try:
        return dumps_by_value(trainable)
    except Exception as exc:
        raise TrainableError(
            f"The trainable {getattr(trainable, '__name__', trainable)!r} cannot be pickled "
            f"({type(exc).__name__}: {exc}). Trials run in other processes: pass large or "
            "unpicklable objects with hpctune.with_parameters(), or create them inside the trainable."
        ) from exc


def dumps_by_value(value: Any) -> bytes:
    """cloudpickle ``value`` with the user's own modules it refers to by value (``user_modules``).

    A module the caller registered by value itself stays registered afterwards."""
    import cloudpickle

    registered = set(cloudpickle.list_registry_pickle_by_value())
    modules = [m for m in user_modules(value) if m.__name__ not in registered]
    for module in modules:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(value)
    finally:
        for module in modules:
            cloudpickle.unregister_pickle_by_value(module)


def user_modules(value: Any) -> list[ModuleType]:
    """The user's own modules that ``value``, or a key or item of a dict, list, tuple or set in
    it, comes from: a function's or class's module, else its type's."""
    found: dict[str, ModuleType] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        owner = item if inspect.isclass(item) or inspect.isroutine(item) else type(item)
        module = sys.modules.get(getattr(owner, "__module__", None) or "")
        if module is not None and module.__name__ not in found and _is_user_module(module):
            found[module.__name__] = module
    return list(found.values())


def _is_user_module(module: ModuleType) -> bool:
    """A module from a file that is not an installed package, the standard library or hpctune;
    not ``__main__`` either (cloudpickle pickles it by value already)."""
    import sysconfig

    path = getattr(module, "__file__", None)
    name = module.__name__
    if path is None or name in ("__main__", "hpctune") or name.startswith("hpctune."):
        return False
    installed = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}
    return not any(os.path.abspath(path).startswith(p) for p in installed)
