"""Search spaces written as data in experiment files: ``{uniform = [0, 1]}`` and friends.

A primitive is a one-key table named after the function, with its arguments as a list or a
table. Every other value is a constant; tables nest. A table that looks like a primitive but
is none (a typo, ``sample_from``, two primitive names) is a ConfigError naming its key path,
never a constant dict that would reach the trainable.
"""

from __future__ import annotations

import difflib
from typing import Any

from hpctune.errors import ConfigError

# primitive -> (argument names, an example written as data)
PRIMITIVES: dict[str, tuple[tuple[str, ...], str]] = {
    "uniform": (("lower", "upper"), "{uniform = [0, 1]}"),
    "quniform": (("lower", "upper", "q"), "{quniform = [0, 1, 0.1]}"),
    "loguniform": (("lower", "upper", "base"), "{loguniform = [1e-4, 1e-1]}"),
    "qloguniform": (("lower", "upper", "q", "base"), "{qloguniform = [1e-4, 1e-1, 5e-5]}"),
    "randn": (("mean", "sd"), "{randn = [0, 1]}"),
    "qrandn": (("mean", "sd", "q"), "{qrandn = [0, 1, 0.1]}"),
    "randint": (("lower", "upper"), "{randint = [1, 10]}"),
    "qrandint": (("lower", "upper", "q"), "{qrandint = [0, 100, 10]}"),
    "lograndint": (("lower", "upper", "base"), "{lograndint = [1, 1024]}"),
    "qlograndint": (("lower", "upper", "q", "base"), "{qlograndint = [1, 1024, 2]}"),
    "choice": (("categories",), '{choice = ["relu", "tanh"]}'),
    "grid_search": (("values",), "{grid_search = [16, 64, 256]}"),
}
# -- search space as data -----------------------------------------------------------------
def parse_space(node: Any, where: str) -> Any:
    """Turn data into search-space objects: one-key primitive tables, nested tables, constants."""
    if isinstance(node, dict):
        _reject_non_primitives(node, where)
        if len(node) == 1:
            (key, args), = node.items()
            if key in PRIMITIVES:
                return _primitive(key, args, where)
            _reject_typo(key, args, where)
        return {k: parse_space(v, f"{where}.{k}") for k, v in node.items()}
    if isinstance(node, list):
        return [parse_space(v, f"{where}[{i}]") for i, v in enumerate(node)]
    return node


def _primitive(kind: str, args: Any, where: str) -> Any:
    from hpctune import space
    from hpctune.errors import SearchSpaceError

    names, example = PRIMITIVES[kind]
    if kind in ("choice", "grid_search"):
        if not isinstance(args, list) or not args:
            raise _expected(where, example, {kind: args})
        values = [parse_space(v, f"{where}.{kind}[{i}]") for i, v in enumerate(args)]
        return getattr(space, kind)(values)
    if isinstance(args, dict):
        unknown = sorted(set(args) - set(names))
        if unknown:
            raise ConfigError(f"{where}.{kind}: unknown argument `{unknown[0]}`; "
                              f"{kind} takes {', '.join(names)}, like {example}.")
        positional, keywords = [], args
    elif isinstance(args, list) and all(_is_number(a) for a in args):
        positional, keywords = args, {}
    else:
        raise _expected(where, example, {kind: args})
    try:
        return getattr(space, kind)(*positional, **keywords)
    except TypeError:
        raise _expected(where, example, {kind: args}) from None
    except SearchSpaceError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _expected(where: str, example: str, got: dict[str, Any]) -> ConfigError:
    (kind, args), = got.items()
    return ConfigError(f"{where}: expected a table like {example}, got {{{kind} = {show_data(args)}}}.")


#: search-space functions that take Python code, which an experiment file cannot hold
CODE_PRIMITIVES = ("sample_from", "function")


def _reject_non_primitives(node: dict[str, Any], where: str) -> None:
    """A table that names a primitive among other keys, or names a function that takes code,
    is an error: silently kept as a constant dict it would reach the trainable as one."""
    code = [key for key in node if key in CODE_PRIMITIVES]
    if code:
        raise ConfigError(f"{where}: `{code[0]}` takes a Python function, which an experiment file "
                          "cannot hold. Fix: use a primitive such as {choice = [...]}, or build the "
                          "space in a Python script (hpctune submit script.py).")
    named = [key for key in node if key in PRIMITIVES]
    if named and len(node) > 1:
        others = sorted(set(node) - {named[0]})
        raise ConfigError(f"{where}: the table names the primitive `{named[0]}` together with "
                          f"`{others[0]}`; a primitive is a table of one key, like "
                          f"{PRIMITIVES[named[0]][1]}. Fix: give each parameter its own key.")


def _reject_typo(key: str, args: Any, where: str) -> None:
    """A one-key table whose key looks like a misspelt primitive is an error, not a constant."""
    close = difflib.get_close_matches(key, PRIMITIVES, n=1, cutoff=0.8)
    if close and isinstance(args, (list, dict)):
        raise ConfigError(f"{where}: unknown search-space primitive `{key}` (did you mean "
                          f"`{close[0]}`?); write it like {PRIMITIVES[close[0]][1]}.")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def show_data(value: Any) -> str:
    """``value`` as it would be written in the file (JSON), for error messages."""
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
