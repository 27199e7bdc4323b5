"""Converting hpctune search spaces to Optuna distributions, and flat <-> nested configs.

Nested dicts become "/"-joined keys. Primitives Optuna cannot sample (sample_from,
grid_search, randn) raise a SearchSpaceError that names the key and the fix.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hpctune.errors import ConfigError, SearchSpaceError
from hpctune.space import Categorical, Domain, Float, Function, Integer, is_grid_search

try:
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
except ImportError:  # pragma: no cover - OptunaSearch says how to install optuna
    optuna = None

INSTALL_HINT = (
    "OptunaSearch needs the optuna package, which is not installed. "
    "Fix: pip install 'hpctune[optuna]'"
)

_PRIMITIVE_CHOICES = (type(None), bool, int, float, str)


# ---------------------------------------------------------------- space conversion


@dataclass(frozen=True)
class _Param:
    """One converted parameter: its Optuna distribution and how to decode a sampled value.

    Optuna has no log scale with a step, so ``qloguniform``/``qlograndint`` are sampled on
    the log scale and rounded here to a multiple of ``q`` in ``[q_lo, q_hi]`` (quantized
    floats are rounded too, to drop float noise). Categories
    that Optuna cannot store (lists, dicts, objects) are sampled by index into ``choices``.
    """

    dist: Any
    q: float | int | None = None
    q_lo: float | int | None = None
    q_hi: float | int | None = None
    choices: tuple | None = None

    def decode(self, value: Any) -> Any:
        """The config value for a value Optuna sampled."""
        if self.choices is not None:
            return copy.deepcopy(self.choices[value])
        if self.q is not None:
            value = min(max(round(value / self.q) * self.q, self.q_lo), self.q_hi)
            if isinstance(value, float):
                value = float(f"{value:.15g}")  # 0.3, not 0.30000000000000004
        return value

    def encode(self, value: Any) -> Any:
        """The Optuna value for a config value (points_to_evaluate, adopted results)."""
        if self.choices is None:
            return value
        for index, choice in enumerate(self.choices):
            if choice == value:
                return index
        raise SearchSpaceError(f"{value!r} is not one of the categories {list(self.choices)}.")


def _unconvertible(key: str, primitive: str, fix: str) -> SearchSpaceError:
    return SearchSpaceError(
        f"OptunaSearch cannot convert `{key}` ({primitive}) to an Optuna distribution. {fix}"
    )


def _convert_float(key: str, domain: Float) -> _Param:
    if domain.sampler == "normal" or domain.lower is None or domain.upper is None:
        name = "qrandn" if domain.q else "randn"
        raise _unconvertible(
            key, name, "Optuna's distributions are bounded: use uniform(lower, upper) instead."
        )
    if not domain.q:
        return _Param(FloatDistribution(domain.lower, domain.upper, log=domain.log))
    lo, hi = domain.inclusive_bounds()  # the multiples of q inside [lower, upper]
    if domain.log:
        dist = FloatDistribution(domain.lower, domain.upper, log=True)
    else:
        dist = FloatDistribution(lo, hi, step=domain.q)
    return _Param(dist, q=domain.q, q_lo=lo, q_hi=hi)


def _convert_integer(key: str, domain: Integer) -> _Param:
    lo, hi = domain.inclusive_bounds()  # with q > 1: the multiples of q inside the bounds
    q = domain.q or 1
    if q == 1:
        return _Param(IntDistribution(lo, hi, log=domain.log))
    if domain.log:
        return _Param(IntDistribution(lo, hi, log=True), q=q, q_lo=lo, q_hi=hi)
    return _Param(IntDistribution(lo, hi, step=q))


def _convert_categorical(key: str, domain: Categorical) -> _Param:
    categories = list(domain.categories)
    if any(_contains_searchable(c) for c in categories):
        raise _unconvertible(key, "choice of search spaces", "Use a define-by-run function.")
    if all(isinstance(c, _PRIMITIVE_CHOICES) for c in categories):
        return _Param(CategoricalDistribution(categories))
    indices = list(range(len(categories)))
    return _Param(CategoricalDistribution(indices), choices=tuple(categories))


def _convert(key: str, value: Any) -> _Param:
    """The Optuna form of one searchable leaf, or a SearchSpaceError naming it."""
    if isinstance(value, BaseDistribution):
        return _Param(value)
    if is_grid_search(value):
        raise _unconvertible(
            key, "grid_search", "Use choice([...]) instead, or BasicVariantGenerator for grids."
        )
    if isinstance(value, Function):
        raise _unconvertible(
            key, "sample_from", "Use a define-by-run function: OptunaSearch(space=fn)."
        )
    if isinstance(value, Float):
        return _convert_float(key, value)
    if isinstance(value, Integer):
        return _convert_integer(key, value)
    if isinstance(value, Categorical):
        return _convert_categorical(key, value)
    raise _unconvertible(key, type(value).__name__, "Use uniform, randint, choice and kin.")


def _is_searchable(value: Any) -> bool:
    return isinstance(value, Domain) or is_grid_search(value) or (
        optuna is not None and isinstance(value, BaseDistribution)
    )


def _contains_searchable(value: Any) -> bool:
    if _is_searchable(value):
        return True
    if isinstance(value, dict):
        return any(_contains_searchable(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_searchable(v) for v in value)
    return False


def _collect(space: dict, prefix: str = "") -> dict[str, Any]:
    """Every searchable leaf of a (nested) space, under "/"-joined keys."""
    found: dict[str, Any] = {}
    for key, value in space.items():
        if not _contains_searchable(value):
            continue
        path = f"{prefix}{key}"
        if not isinstance(key, str) or "/" in key:
            raise SearchSpaceError(
                f"OptunaSearch needs string keys without '/' (it joins nested keys with '/'); "
                f"got {path!r}. Nest a dict instead."
            )
        if _is_searchable(value):
            found[path] = value
        elif isinstance(value, dict):
            found.update(_collect(value, path + "/"))
        else:
            raise SearchSpaceError(
                f"OptunaSearch cannot search inside the list at `{path}`: use a dict of "
                "search spaces instead of a list."
            )
    return found


def convert_search_space(space: dict) -> dict[str, _Param]:
    """Convert an hpctune (or Optuna-distribution) space to {"a/b": _Param}."""
    if optuna is None:
        raise ImportError(INSTALL_HINT)
    return {key: _convert(key, value) for key, value in _collect(space).items()}


# ---------------------------------------------------------------- config helpers


def _fill(template: dict, values: dict[str, Any], prefix: str = "") -> dict:
    """A copy of ``template`` with searchable leaves replaced by ``values`` (by "/" key)."""
    out = {}
    for key, value in template.items():
        path = f"{prefix}{key}"
        if path in values:
            out[key] = values[path]
        elif isinstance(value, dict):
            out[key] = _fill(value, values, path + "/")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _unflatten(flat: dict[str, Any]) -> dict:
    nested: dict = {}
    for key, value in flat.items():
        *parents, leaf = str(key).split("/")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merge(base: dict, override: dict) -> dict:
    """``override`` deep-merged over a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _check_objectives(metric: Any, mode: Any) -> None:
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


