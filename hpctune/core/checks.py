"""Type and range checks of config fields: a ConfigError that names the field, the value and
the fix. Nothing is coerced: a number written as a string is refused, not converted."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any

from hpctune.errors import ConfigError

_WHAT = {"int": "a whole number", "number": "a finite number", "bool": "True or False",
         "str": "a string"}


def _is_kind(value: Any, kind: str) -> bool:
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if isinstance(value, bool):
        return False
    if kind == "int":
        return isinstance(value, Integral)
    return isinstance(value, Real) and math.isfinite(value)


def check_value(owner: str, name: str, value: Any, kind: str, low: float | None = None,
                strict: bool = False, optional: bool = False, also: str = "") -> None:
    """Refuse a field of the wrong type or range with a ConfigError naming the field, the value
    and the fix; a number written as a string is refused too (nothing is coerced)."""
    if (value is None and optional) or (_is_kind(value, kind) and (
            low is None or (value > low if strict else value >= low))):
        return
    bound = "" if low is None else f" {'>' if strict else '>='} {low:g}"
    what = _WHAT[kind] + bound + also + (", or None" if optional else "")
    fix = f"choose {name}{bound}" if _is_kind(value, kind) else _fix(name, value, kind)
    raise ConfigError(f"{owner}({name}={value!r}) is not valid: `{name}` must be {what}. Fix: {fix}.")


def _fix(name: str, value: Any, kind: str) -> str:
    if isinstance(value, str) and kind in ("int", "number"):
        try:
            number = int(value) if kind == "int" else float(value)
        except ValueError:
            return f"give {name} as a number, e.g. {name}=1"
        return f"write {name}={number!r} (a number, not the string {value!r})"
    if kind == "bool":
        return f"write {name}=True or {name}=False (without quotes)"
    return f"give {name} as {_WHAT[kind]}" + (" (not a string)" if isinstance(value, str) else "")


def check_instance(owner: str, name: str, value: Any, cls: type, optional: bool = False) -> None:
    """Refuse a dict (or anything else) where a config object such as FailureConfig belongs."""
    if (value is None and optional) or isinstance(value, cls):
        return
    raise ConfigError(f"{owner}({name}={value!r}) is not valid: `{name}` must be a {cls.__name__}"
                      f"{', or None' if optional else ''}. Fix: {name}={cls.__name__}(...), e.g. "
                      f"{name}={cls.__name__}(**{{...}}) for a dict of its fields.")


def check_plugin(name: str, value: Any, method: str, factory: str) -> None:
    """A searcher or scheduler given by name (a string) or as something without its methods."""
    if value is None or (not isinstance(value, (str, type)) and hasattr(value, method)):
        return
    hint = (f"create it by name: {name}=tune.{factory}({value!r})" if isinstance(value, str)
            else f"pass an instance, e.g. {name}={getattr(value, '__name__', '?')}()"
            if isinstance(value, type) else f"pass an object with {method}()")
    raise ConfigError(f"TuneConfig({name}={value!r}) is not valid: it must be an object with "
                      f"{method}(). Fix: {hint}.")



def check_tuner_args(param_space: Any, configs: dict[str, tuple[Any, type]]) -> None:
    """``Tuner(...)``'s arguments: a dict param_space and config objects, not dicts of fields."""
    if param_space is not None and not hasattr(param_space, "keys"):
        raise ConfigError(f"Tuner(param_space={param_space!r}) is not valid: it must be a dict of "
                          "parameters. Fix: param_space={'lr': tune.loguniform(1e-4, 1e-1)}.")
    for name, (value, cls) in configs.items():
        if value is not None and not isinstance(value, cls):
            raise ConfigError(f"Tuner({name}={value!r}) is not valid: `{name}` must be a "
                              f"{cls.__name__}. Fix: {name}={cls.__name__}(...), e.g. "
                              f"{cls.__name__}(**fields) for a dict of its fields.")
