"""Pickling the trainable for the jobs: by value when it is the user's own code."""

from __future__ import annotations

import os
import sys
from typing import Any

from hpctune.errors import TrainableError


def pickle_trainable(trainable: Any) -> bytes:
    """cloudpickle the trainable (by value when defined in __main__), with a clear error."""
    import cloudpickle

    module = _local_module(trainable)
    if module is not None:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps(trainable)
    except Exception as exc:
        raise TrainableError(
            f"The trainable {getattr(trainable, '__name__', trainable)!r} cannot be pickled "
            f"({type(exc).__name__}: {exc}). Trials run in other processes: pass large or "
            "unpicklable objects with hpctune.with_parameters(), or create them inside the trainable."
        ) from exc
    finally:
        if module is not None:
            cloudpickle.unregister_pickle_by_value(module)


def _local_module(trainable: Any) -> Any:
    """The trainable's module when it is the user's own file (not an installed package).

    Such modules are pickled by value, so a job does not depend on the driver's
    sys.path to import them.
    """
    import sysconfig

    module = sys.modules.get(getattr(trainable, "__module__", "") or "")
    path = getattr(module, "__file__", None)
    if module is None or path is None or module.__name__ in ("__main__", "hpctune"):
        return None
    installed = {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}
    if any(os.path.abspath(path).startswith(p) for p in installed):
        return None
    if module.__name__.startswith("hpctune."):
        return None
    return module
