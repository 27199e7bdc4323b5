"""Resolving a param_space into configs: sample_from specs, nested walks, grid variants."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError
from hpctune.space.domains import GRID_SEARCH, Domain, format_path, is_grid_search
from hpctune.space.sample_from import Spec, UnresolvedValueError, materialize

_MAX_PASSES = 1000  # resolution passes per config: dependency chains and nested domains


# --- walking nested param_spaces ---


def _walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Yield (path, node) for every Domain and grid_search below ``node``, not inside them."""
    if isinstance(node, dict):
        children: Iterable = node.items()
    elif isinstance(node, list):
        children = enumerate(node)
    else:
        return
    for key, child in children:
        if isinstance(child, Domain) or is_grid_search(child):
            yield (*path, key), child
        else:
            yield from _walk(child, (*path, key))


def _nodes(value: Any) -> Iterator[tuple[tuple, Any]]:
    """Like ``_walk``, but ``value`` itself counts when it is a Domain or grid_search."""
    if isinstance(value, Domain) or is_grid_search(value):
        yield (), value
    else:
        yield from _walk(value)


def _copy_tree(node: Any) -> Any:
    """Copy the dicts and lists (so configs never share them); leaves are shared.

    A grid_search marker is kept as it is: it is replaced by one of its values anyway,
    and copying its (possibly long) list for every variant would cost O(N^2).
    """
    if is_grid_search(node):
        return node
    if isinstance(node, dict):
        return {key: _copy_tree(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_copy_tree(value) for value in node]
    return node


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _set(tree: Any, path: tuple, value: Any) -> None:
    _get(tree, path[:-1])[path[-1]] = value


def _path_key(path: tuple) -> tuple:
    """Sort key for paths that mix dict keys and list indices."""
    return tuple((0, key, "") if isinstance(key, int) else (1, 0, str(key)) for key in path)


def sampled_paths(param_space: Mapping | None) -> list[tuple]:
    """Key paths of every Domain and grid_search in ``param_space``, in definition order."""
    return [path for path, _ in _walk(dict(param_space or {}))]


def grid_variables(param_space: Mapping | None) -> list[tuple[tuple, list]]:
    """(path, values) of each grid_search, sorted by path; the first varies fastest (as Ray)."""
    grid = [
        (path, list(node[GRID_SEARCH]))
        for path, node in _walk(dict(param_space or {}))
        if is_grid_search(node)
    ]
    return sorted(grid, key=lambda item: _path_key(item[0]))


def count_grid_variants(param_space: Mapping | None) -> int:
    """How many configs one pass over the grid gives (1 without grid_search)."""
    return math.prod(len(values) for _, values in grid_variables(param_space))


def grid_variant(param_space: Mapping, index: int, grid: list | None = None) -> dict:
    """A copy of ``param_space`` with every grid_search set to the ``index``-th combination."""
    grid = grid_variables(param_space) if grid is None else grid
    if not 0 <= index < math.prod(len(values) for _, values in grid):
        raise IndexError(f"grid variant {index} does not exist")
    tree = _copy_tree(dict(param_space))
    for path, values in grid:
        index, position = divmod(index, len(values))
        _set(tree, path, _copy_tree(values[position]))
    return tree


# --- resolving a config ---


def resolve_config(config: Mapping, rng: np.random.Generator, *, partial: bool = False) -> dict:
    """Sample every Domain in ``config`` (a grid-expanded param_space) into plain values.

    sample_from functions run in dependency order: one that reads a value not sampled yet
    is retried after the others; a cycle raises SearchSpaceError naming the keys. Domains
    inside sampled values (a chosen category that is a dict of domains) are resolved too.
    With ``partial``, grid_search markers stay, and whatever reads them stays unresolved.
    """
    tree = _copy_tree(dict(config))
    spec = Spec(tree, rng)
    for _ in range(_MAX_PASSES):
        pending = _pending_domains(tree, partial)
        if not pending:
            return tree
        waiting = _resolve_pass(tree, pending, rng, spec)
        if len(waiting) == len(pending):
            if partial:
                return tree
            raise _cycle_error(waiting)
    raise SearchSpaceError(
        f"The config still holds distributions after {_MAX_PASSES} passes: a sample_from "
        "function keeps returning new distributions."
    )


def _pending_domains(tree: dict, partial: bool) -> list[tuple[tuple, Domain]]:
    pending = []
    for path, node in _walk(tree):
        if isinstance(node, Domain):
            pending.append((path, node))
        elif not partial:
            raise SearchSpaceError(
                f"grid_search at `{format_path(path)}` cannot be expanded there: grid_search is "
                "expanded only at fixed positions of param_space, not inside choice categories, "
                "grid_search values or sample_from results. Move it to the top of param_space."
            )
    return pending


def _resolve_pass(tree: dict, pending: list, rng: np.random.Generator, spec: Spec) -> dict:
    """Sample each pending domain once; return {path: path it waits for} for those that could not."""
    waiting = {}
    for path, domain in pending:
        try:
            value = domain.sample(rng, spec)
        except UnresolvedValueError as exc:
            waiting[path] = exc.path
            continue
        except Exception as exc:
            raise SearchSpaceError(
                f"Sampling `{format_path(path)}` ({domain!r}) raised {type(exc).__name__}: {exc}"
            ) from exc
        _set(tree, path, _copy_tree(materialize(value)))
    return waiting


def _cycle_error(waiting: dict) -> SearchSpaceError:
    reads = ", ".join(f"`{format_path(p)}` reads `{format_path(d)}`" for p, d in waiting.items())
    return SearchSpaceError(
        f"sample_from functions depend on each other in a cycle, so none can be sampled: {reads}. "
        "A sample_from function may only read values that resolve without it; break the cycle, "
        "e.g. make one of them a plain distribution such as uniform(0, 1)."
    )

