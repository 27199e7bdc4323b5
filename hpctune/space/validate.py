"""Validating a param_space before submission, and Ray-style experiment tags."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError
from hpctune.space.domains import GRID_SEARCH, Categorical, Domain, format_path, is_grid_search
from hpctune.space.resolve import (
    _get,
    _nodes,
    _path_key,
    _walk,
    grid_variant,
    resolve_config,
    sampled_paths,
)

# --- validation and experiment tags ---


def validate_space(param_space: Mapping | None, *, dry_run: bool = True) -> None:
    """Raise SearchSpaceError for anything invalid anywhere in ``param_space``.

    Checks every domain and grid_search, also inside choice categories and grid values.
    With ``dry_run`` it also resolves the first grid combination once, with a private RNG,
    so sample_from cycles and errors surface before any job is submitted.
    """
    if param_space is None:
        return
    if not isinstance(param_space, Mapping) or is_grid_search(param_space):
        raise SearchSpaceError(
            f"param_space must be a dict of parameters, e.g. {{'lr': loguniform(1e-4, 1e-1)}}; "
            f"got {param_space!r}."
        )
    for path, node in _walk(dict(param_space)):
        _check_node(path, node, nested=False)
    if dry_run:
        resolve_config(grid_variant(param_space, 0), np.random.default_rng(0))


def _check_node(path: tuple, node: Any, nested: bool) -> None:
    where = format_path(path)
    if is_grid_search(node):
        if nested:
            raise SearchSpaceError(
                f"grid_search at `{where}` is nested in a grid_search value or choice category; "
                "grid_search is expanded only at fixed positions of param_space. Move it up, or "
                "list the combinations: grid_search([{'a': 1, 'b': 2}, {'a': 1, 'b': 3}])."
            )
        values = node[GRID_SEARCH]
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise SearchSpaceError(
                f"grid_search at `{where}` is {values!r}, but must be a non-empty list; "
                "e.g. grid_search([16, 64, 256])."
            )
        _check_children(path, values)
    elif isinstance(node, Domain):
        try:
            node.validate()
        except SearchSpaceError as exc:
            raise SearchSpaceError(f"`{where}`: {exc}") from None
        if isinstance(node, Categorical):
            _check_children(path, node.categories)


def _check_children(path: tuple, values: Sequence) -> None:
    """Check domains inside grid values or categories; path[i] names the i-th value."""
    for i, value in enumerate(values):
        for subpath, node in _nodes(value):
            _check_node((*path, i, *subpath), node, nested=True)


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]+")


def _clean(value: Any) -> str:
    """A tag fragment that is safe in a directory name; floats with 5 significant digits."""
    if isinstance(value, (float, np.floating)):
        return f"{value:.5g}"
    return _UNSAFE.sub("_", str(value)).strip("_")


def format_experiment_tag(index: int, config: Mapping, param_space: Mapping | None) -> str:
    """Ray's experiment tag: "3_lr=0.01,layers=2" (last key of each sampled path, sorted by path)."""
    parts = []
    for path in sorted(sampled_paths(param_space), key=_path_key):
        try:
            value = _get(config, path)
        except (KeyError, IndexError, TypeError):
            continue
        parts.append(f"{_clean(path[-1])}={_clean(value)}")
    return f"{index}_{','.join(parts)}" if parts else str(index)

