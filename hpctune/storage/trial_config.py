"""A trial's config: pickled exactly as the searcher made it (``params.pkl``, only where it
must be), and as text for people (``params.json``). ``ExperimentDir.write_params`` writes both."""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hpctune.errors import ConfigError
from hpctune.storage.atomic import write_bytes_atomic
from hpctune.storage.new_trial import NewTrial
from hpctune.storage.pickling import dumps_by_value


# -- a trial's config: pickled as it is, and as text for people ---------------------------------
def pickle_config(config: dict[str, Any]) -> bytes:
    """cloudpickle ``config`` the way the trainable is pickled: values from the user's own
    modules by value (so a class in the config is the same class the trainable sees), the
    rest by reference. Raises ConfigError naming the key of a value that cannot be pickled."""
    try:
        return dumps_by_value(config)
    except Exception as exc:
        where, value, why = _unpicklable("config", config, exc)
        raise ConfigError(
            f"The trial's config value {where} = {_short(value)} (a {type(value).__name__}) cannot be "
            f"pickled ({type(why).__name__}: {why}). Each trial runs in its own process and gets its "
            "config pickled: put a picklable value in the search space (a number, a name, a class or "
            "function defined at module level) and create the object inside the trainable, or pass "
            "shared objects with tune.with_parameters(trainable, name=obj).") from exc


def json_exact(value: Any) -> bool:
    """True when ``value`` comes back from JSON as it went in, types included: dicts with
    string keys, lists, strings, ints, finite floats, booleans and None (never a subclass:
    a numpy float64 is a float, but the trainable must get a numpy float64 back)."""
    kind = type(value)
    if kind is dict:
        return all(type(k) is str and json_exact(v) for k, v in value.items())
    if kind is list:
        return all(json_exact(v) for v in value)
    if kind is float:
        return math.isfinite(value)  # NaN != NaN; inf is not JSON
    return kind in (str, int, bool) or value is None


def _unpicklable(where: str, value: Any, error: Exception) -> tuple[str, Any, Exception]:
    """The innermost (path, value, error) of ``value`` that cloudpickle refuses."""
    import cloudpickle

    for key, item in _children(value):
        try:
            cloudpickle.dumps(item)
        except Exception as exc:
            return _unpicklable(f"{where}[{key!r}]", item, exc)
    return where, value, error


def _children(value: Any) -> Iterator[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        yield from value.items()
    elif isinstance(value, (list, tuple)):
        yield from enumerate(value)


def config_view(value: Any) -> Any:
    """``value`` in JSON types, for people: numpy scalars as numbers, classes and functions as
    their dotted names, other objects as text, tuples as lists, keys as strings where needed."""
    if isinstance(value, Mapping):
        return {k if isinstance(k, (str, int, float, bool)) or k is None else str(k): config_view(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [config_view(v) for v in value]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if getattr(value, "shape", None) == () and hasattr(value, "item"):
        return config_view(value.item())
    if inspect.isclass(value) or inspect.isroutine(value):
        return f"{getattr(value, '__module__', '?')}.{getattr(value, '__qualname__', value)}"
    return str(value)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def params_text(params: Any) -> bytes:
    """``params.json``'s bytes (JSON types only: ``write_params`` checked or converted them)."""
    return json.dumps(params, indent=1).encode()


def write_config_file(new: NewTrial | None, path: Path, data: bytes, mode: int | None) -> None:
    """A new trial's first config file in place (``NewTrial.write_first``: one open); any other
    write replaces the file in one rename (a reader sees the old or the new one)."""
    if new is None or not new.write_first(path.name, data):
        write_bytes_atomic(path, data, fsync=False, mode=mode)
