"""The one walk over a ``param_space`` that every library searcher uses.

``searchable_leaves`` finds the searchable leaves of a nested space under "/"-joined keys;
``convert_space`` hands each leaf to the adapter's converter for its primitive (``"uniform"``,
``"qlograndint"``, ``"choice"``, ...) and raises a ``SearchSpaceError`` naming the key, the
primitive and a fix for a primitive the adapter's library cannot express. ``fill`` puts
sampled values back into a copy of the space. Each adapter (``optuna_space``, ``hyperopt``,
``nevergrad``, ...) only maps domains to its library's types.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.space import Categorical, Domain, Float, Function, Integer, is_grid_search

#: a converter: (key, domain) -> the library's form of that parameter
Converter = Callable[[str, Any], Any]

#: what to do instead, per primitive a library cannot express
DEFAULT_FIXES: dict[str, str] = {
    "grid_search": "Use choice([...]) instead, or BasicVariantGenerator for grids.",
    "sample_from": "Compute the value inside the trainable, or use BasicVariantGenerator.",
    "randn": "Use a bounded domain such as uniform(lower, upper).",
    "qrandn": "Use a bounded domain such as quniform(lower, upper, q).",
    "choice": "Encode the choice as a number, or use a searcher with categories (Optuna, HyperOpt).",
    "choice of search spaces": "Use a define-by-run space (OptunaSearch) or flatten the choice.",
}


def primitive_name(value: Any) -> str:
    """The name of the primitive that made ``value``: "uniform", "qlograndint", "choice", ..."""
    if is_grid_search(value):
        return "grid_search"
    if isinstance(value, Function):
        return "sample_from"
    if isinstance(value, Float):
        base = {"uniform": "uniform", "loguniform": "loguniform", "normal": "randn"}[value.sampler]
        return f"q{base}" if value.q else base
    if isinstance(value, Integer):
        base = "lograndint" if value.log else "randint"
        return f"q{base}" if value.q and value.q != 1 else base
    if isinstance(value, Categorical):
        nested = any(contains_searchable(c) for c in value.categories)
        return "choice of search spaces" if nested else "choice"
    return type(value).__name__


def is_searchable(value: Any, native: Callable[[Any], bool] | None = None) -> bool:
    """A leaf to search: an hpctune domain, a grid, or (``native``) the library's own type."""
    return isinstance(value, Domain) or is_grid_search(value) or bool(native and native(value))


def contains_searchable(value: Any, native: Callable[[Any], bool] | None = None) -> bool:
    """Whether anything searchable is in ``value`` (dicts and lists walked)."""
    if is_searchable(value, native):
        return True
    if isinstance(value, dict):
        return any(contains_searchable(v, native) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_searchable(v, native) for v in value)
    return False


def searchable_leaves(
    space: dict, searcher: str, native: Callable[[Any], bool] | None = None, prefix: str = ""
) -> dict[str, Any]:
    """Every searchable leaf of a nested space, as {"a/b": leaf}, in the space's order."""
    found: dict[str, Any] = {}
    for key, value in space.items():
        if not contains_searchable(value, native):
            continue
        path = f"{prefix}{key}"
        if not isinstance(key, str) or "/" in key:
            raise SearchSpaceError(
                f"{searcher} needs string keys without '/' (it joins nested keys with '/'); "
                f"got {path!r}. Nest a dict instead."
            )
        if is_searchable(value, native):
            found[path] = value
        elif isinstance(value, dict):
            found.update(searchable_leaves(value, searcher, native, path + "/"))
        else:
            raise SearchSpaceError(
                f"{searcher} cannot search inside the list at `{path}`: use a dict of "
                "search spaces instead of a list."
            )
    return found


def unconvertible(searcher: str, library: str, key: str, primitive: str, fix: str) -> SearchSpaceError:
    """The error for a parameter that ``library`` cannot express."""
    return SearchSpaceError(
        f"{searcher} cannot convert `{key}` ({primitive}) to a {library} parameter. {fix}"
    )


def convert_space(
    space: dict,
    searcher: str,
    library: str,
    converters: Mapping[str, Converter],
    native: Callable[[Any], bool] | None = None,
    fixes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """{"a/b": the library's form} for each searchable leaf of ``space``.

    ``converters`` maps primitive names to functions ``(key, domain) -> library form``; a
    leaf that ``native`` recognises is already in the library's form and kept as it is. A
    primitive without a converter raises a SearchSpaceError naming the key and a fix.
    """
    fixes = {**DEFAULT_FIXES, **(fixes or {})}
    converted: dict[str, Any] = {}
    for key, leaf in searchable_leaves(space, searcher, native).items():
        if native is not None and native(leaf):
            converted[key] = leaf
            continue
        primitive = primitive_name(leaf)
        if primitive not in converters:
            supported = ", ".join(sorted(converters))
            fix = fixes.get(primitive, f"Use one of the primitives it supports: {supported}.")
            raise unconvertible(searcher, library, key, primitive, fix)
        converted[key] = converters[primitive](key, leaf)
    return converted


# ---------------------------------------------------------------- configs


def fill(template: dict, values: Mapping[str, Any], prefix: str = "") -> dict:
    """A copy of ``template`` with searchable leaves replaced by ``values`` (by "/" key)."""
    out = {}
    for key, value in template.items():
        path = f"{prefix}{key}"
        if path in values:
            out[key] = values[path]
        elif isinstance(value, dict):
            out[key] = fill(value, values, path + "/")
        else:
            out[key] = copy.deepcopy(value)
    return out


def unflatten(flat: Mapping[str, Any]) -> dict:
    """{"a/b": 1} -> {"a": {"b": 1}}."""
    nested: dict = {}
    for key, value in flat.items():
        *parents, leaf = str(key).split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def merge(base: dict, override: dict) -> dict:
    """``override`` deep-merged over a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def check_objectives(metric: Any, mode: Any) -> None:
    """Lists of metrics and modes (multi-objective) must match one to one."""
    if not isinstance(metric, list) and not isinstance(mode, list):
        return
    if not (isinstance(metric, list) and isinstance(mode, list) and len(metric) == len(mode)):
        raise ConfigError(
            f"For multi-objective search pass lists of equal length for both `metric` and "
            f"`mode`; got metric={metric!r}, mode={mode!r}."
        )
    for m in mode:
        if m not in ("min", "max"):
            raise ConfigError(f"The value of `mode` is {m!r}, but must be 'min' or 'max'.")


def snap(leaf: Any, value: Any) -> Any:
    """A value a library sampled, made one that ``leaf`` itself could have sampled.

    Libraries sample on continuous scales: this rounds to ``q`` (without float noise),
    clips to the domain's bounds, casts integers and returns the category object itself (not a
    library's numpy copy). The library's own leaves pass through.
    """
    if isinstance(leaf, Integer):
        lo, hi = leaf.inclusive_bounds()
        q = leaf.q or 1
        return int(min(max(round(float(value) / q) * q, lo), hi))
    if isinstance(leaf, Float) and leaf.sampler != "normal":
        lo, hi = leaf.inclusive_bounds()
        value = float(value)
        if leaf.q:
            value = float(f"{round(value / leaf.q) * leaf.q:.15g}")
        return min(max(value, lo), hi)
    if isinstance(leaf, Float):
        return float(f"{round(float(value) / leaf.q) * leaf.q:.15g}") if leaf.q else float(value)
    if isinstance(leaf, Categorical):  # the category itself (a library may return a copy)
        for category in leaf.categories:
            if type(category) is type(value) and category == value:
                return copy.deepcopy(category)
        for category in leaf.categories:
            if category == value:
                return copy.deepcopy(category)
    return value
