"""What ``report()`` accepts: JSON's values, kept exactly, never turned into strings.

A metric is a number, a string, a bool, None, or a list or dict (string keys) of them.
numpy and torch scalars and arrays become the numbers and lists they hold (``tolist()``),
which is the same value. Anything else (a ``Decimal``, a ``datetime``, an object) is a
``ReportError`` naming its key: the log would otherwise hold ``str(value)``, a string that
schedulers, stoppers and dataframes then misread. An int beyond a float's range (>= 2**1024)
is refused too: every reader compares metrics as floats, and would fail on it.

``check_checkpoint`` refuses a reported checkpoint that is not an existing directory.
"""

from __future__ import annotations

import os
from typing import Any

from hpctune.core.metrics import fits_float, flat_collision
from hpctune.errors import ReportError

_PLAIN = (str, bool, int, float, type(None))
#: deeper than this is surely a cycle or a mistake
_MAX_DEPTH = 64


def plain_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` with numpy/torch values as the Python numbers and lists they hold; a
    ReportError for a value the result log cannot hold exactly."""
    if all(type(v) in _PLAIN and type(k) is str and (type(v) is not int or fits_float(v))
           for k, v in metrics.items()):
        return metrics  # the common case: nothing to convert, nothing to walk
    plain = _plain_dict(metrics, "", 0)
    clash = flat_collision(plain)
    if clash is not None:
        raise ReportError(
            f"report(): two metrics are both named `{clash}` once nested keys are joined with '/' "
            "(as schedulers, stoppers and the result table see them), so one would silently hide "
            f"the other. Fix: rename one, e.g. report {{'{clash.replace('/', '_')}': ...}}.")
    return plain


def _plain_dict(value: dict, where: str, depth: int) -> dict[str, Any]:
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ReportError(
                f"report(): the key {key!r} {_at(where)}is not a string (type "
                f"{type(key).__name__}); metric names are strings. Fix: report {{'{key}': ...}} with the key in quotes (str(key)).")
        out[key] = _plain(item, f"{where}{key}", depth + 1)
    return out


def _plain(value: Any, where: str, depth: int) -> Any:
    if isinstance(value, _PLAIN):
        value = value if type(value) in _PLAIN else _exact(value)
        if type(value) is int and not fits_float(value):
            raise ReportError(
                f"report(): the value of `{where}` is an int of {value.bit_length()} bits, beyond "
                "the range of a float (about 1.8e308), which the driver's comparisons and the "
                "readers of the result log cannot handle. Fix: report float(value) if it fits, "
                "math.log(value), or str(value).")
        return value
    if depth > _MAX_DEPTH:
        raise ReportError(f"report(): the value of `{where}` is nested more than {_MAX_DEPTH} levels "
                          "deep (a list or dict that contains itself?).")
    if isinstance(value, dict):
        return _plain_dict(value, f"{where}/", depth)
    if isinstance(value, (list, tuple)):
        return [_plain(item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value)]
    converted = _tolist(value)
    if converted is not value:
        return _plain(converted, where, depth + 1)
    raise ReportError(
        f"report(): the value of `{where}` is {_short(value)} (a {type(value).__module__}."
        f"{type(value).__qualname__}), which the result log cannot hold exactly. Fix: report a "
        "number, a string, a bool, None, or a list or dict of them, e.g. float(value) or "
        "value.isoformat().")


def check_checkpoint(checkpoint: Any) -> None:
    """``report(checkpoint=...)``'s value: None, or a Checkpoint whose path is an existing
    directory (a file or a missing path would become an empty checkpoint kept over good ones)."""
    if checkpoint is None:
        return
    path = getattr(checkpoint, "path", None)
    if not isinstance(path, (str, os.PathLike)):
        raise ReportError(f"report(checkpoint=...) got {_short(checkpoint)} (a "
                          f"{type(checkpoint).__name__}): pass Checkpoint.from_directory(path).")
    if not os.path.isdir(path):
        what = "is a file, not a directory" if os.path.exists(path) else "does not exist"
        raise ReportError(
            f"report(checkpoint=...): the checkpoint path {os.fspath(path)} {what}. A checkpoint is "
            "a directory of files: save them into a directory (e.g. tempfile.mkdtemp()) and report "
            "Checkpoint.from_directory(that_directory).")


def _exact(value: Any) -> Any:
    """A subclass of a plain type (an IntEnum, numpy.float64): the plain value it holds."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _tolist(value: Any) -> Any:
    """numpy and torch values as Python numbers or lists (``tolist()``), else ``value`` itself."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and hasattr(value, "dtype"):
        try:
            return tolist()
        except Exception:  # noqa: BLE001 - a foreign object's method: refused below instead
            return value
    return value


def _at(where: str) -> str:
    return f"under `{where.rstrip('/')}` " if where else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
