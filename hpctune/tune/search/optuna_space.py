"""Converting hpctune search spaces to Optuna distributions.

Nested dicts become "/"-joined keys (``space_conversion`` walks the space). Primitives Optuna
cannot sample (sample_from, grid_search, randn) raise a SearchSpaceError naming the key and a fix.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hpctune.errors import SearchSpaceError
from hpctune.space import Categorical, Float, Integer
from hpctune.tune.search.space_conversion import (
    Converter,
    contains_searchable,
    convert_space,
)

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


def _convert_float(key: str, domain: Float) -> _Param:
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
    if all(isinstance(c, _PRIMITIVE_CHOICES) for c in categories):
        return _Param(CategoricalDistribution(categories))
    indices = list(range(len(categories)))
    return _Param(CategoricalDistribution(indices), choices=tuple(categories))


_CONVERTERS: dict[str, Converter] = {
    **dict.fromkeys(("uniform", "quniform", "loguniform", "qloguniform"), _convert_float),
    **dict.fromkeys(("randint", "qrandint", "lograndint", "qlograndint"), _convert_integer),
    "choice": _convert_categorical,
}
_FIXES = {
    "randn": "Optuna's distributions are bounded: use uniform(lower, upper) instead.",
    "qrandn": "Optuna's distributions are bounded: use uniform(lower, upper) instead.",
    "sample_from": "Use a define-by-run function: OptunaSearch(space=fn).",
    "choice of search spaces": "Use a define-by-run function.",
}


def _is_distribution(value: Any) -> bool:
    return optuna is not None and isinstance(value, BaseDistribution)


def _contains_searchable(value: Any) -> bool:
    return contains_searchable(value, _is_distribution)


def convert_search_space(space: dict) -> dict[str, _Param]:
    """Convert an hpctune (or Optuna-distribution) space to {"a/b": _Param}."""
    if optuna is None:
        raise ImportError(INSTALL_HINT)
    converted = convert_space(space, "OptunaSearch", "Optuna distribution", _CONVERTERS,
                              native=_is_distribution, fixes=_FIXES)
    return {key: p if isinstance(p, _Param) else _Param(p) for key, p in converted.items()}
