"""Search-space domains and Ray Tune's constructors (uniform, choice, grid_search, ...)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError

GRID_SEARCH = "grid_search"
FLOAT_SAMPLERS = ("uniform", "loguniform", "normal")
INTEGER_SAMPLERS = ("uniform", "loguniform")


class Domain:
    """A distribution in a param_space; ``sample`` draws one value for one trial."""

    def sample(self, rng: np.random.Generator, spec: Any = None) -> Any:
        raise NotImplementedError

    def validate(self) -> None:
        """Raise SearchSpaceError if the parameters are invalid (also run at construction)."""


class Float(Domain):
    """A float: uniform or log-uniform in [lower, upper), or normal(mean, sd).

    With ``q`` the value is rounded to a multiple of q (bounded kinds stay in [lower, upper],
    upper included when it is a multiple of q).
    """

    def __init__(
        self,
        lower: float | None,
        upper: float | None,
        *,
        sampler: str = "uniform",
        q: float | None = None,
        base: float = 10,
        mean: float | None = None,
        sd: float | None = None,
    ):
        self.lower, self.upper, self.sampler, self.q = lower, upper, sampler, q
        self.base = base if sampler == "loguniform" else None
        self.mean, self.sd = (mean, sd) if sampler == "normal" else (None, None)
        self.validate()
        self.q = None if q is None else float(q)

    @property
    def log(self) -> bool:
        return self.sampler == "loguniform"

    def validate(self) -> None:
        if self.sampler not in FLOAT_SAMPLERS:
            raise SearchSpaceError(
                f"{self!r}: The value of `sampler` is {self.sampler!r}, but must be one of {FLOAT_SAMPLERS}."
            )
        if self.sampler == "normal":
            if self.lower is not None or self.upper is not None:
                raise SearchSpaceError(f"{self!r}: a normal distribution takes no `lower`/`upper`.")
            _number(self, "mean", self.mean)
            _positive(self, "sd", self.sd, _number)
        else:
            _check_bounds(self, _number, "loguniform(1e-6, 1)")
        if self.q is not None:
            _positive(self, "q", self.q, _number)
            if self.sampler != "normal":
                _check_has_multiple(self)

    def inclusive_bounds(self) -> tuple[float, float]:
        """Smallest and largest value ``sample`` can return ((-inf, inf) for normal)."""
        if self.sampler == "normal":
            return (-math.inf, math.inf)
        if self.q is None:
            return (float(self.lower), float(self.upper))
        kmin, kmax = self._k_range()
        return (self._snap(kmin), self._snap(kmax))

    def sample(self, rng: np.random.Generator, spec: Any = None) -> float:
        if self.sampler == "normal":
            value = rng.normal(self.mean, self.sd)
        elif self.sampler == "loguniform":
            value = _log_uniform(rng, self.lower, self.upper, self.base)
        else:
            value = rng.uniform(self.lower, self.upper)
        if self.q is None:
            return float(value)
        k = round(value / self.q)
        if self.sampler == "normal":
            return self._snap(k)
        kmin, kmax = self._k_range()
        return self._snap(min(max(k, kmin), kmax))

    def _k_range(self) -> tuple[int, int]:
        """Smallest and largest k with lower <= k * q <= upper (tolerating float error)."""
        lower, upper, q = float(self.lower), float(self.upper), float(self.q)
        return math.ceil(lower / q - 1e-9), math.floor(upper / q + 1e-9)

    def _snap(self, k: int) -> float:
        """k * q without float noise (3.4, not 3.4000000000000004), kept inside the bounds."""
        value = float(f"{k * self.q:.15g}")
        if self.sampler != "normal":
            value = min(max(value, float(self.lower)), float(self.upper))
        return value

    def __repr__(self) -> str:
        kind = {"uniform": "uniform", "loguniform": "loguniform", "normal": "randn"}.get(
            self.sampler, f"Float[{self.sampler}]"
        )
        args = (
            [f"{self.mean!r}", f"{self.sd!r}"]
            if self.sampler == "normal"
            else [f"{self.lower!r}", f"{self.upper!r}"]
        )
        return _describe(kind, args, self.q, self.base if self.log else None)


class Integer(Domain):
    """An integer, uniform or log-uniform, optionally restricted to multiples of ``q``.

    ``upper`` is excluded when q is None or 1 (randint, lograndint) and included when
    q > 1 (qrandint, qlograndint), as in Ray Tune; see ``inclusive_bounds``.
    """

    def __init__(
        self,
        lower: int,
        upper: int,
        *,
        sampler: str = "uniform",
        q: int | None = None,
        base: float = 10,
    ):
        self.lower, self.upper, self.sampler, self.q = lower, upper, sampler, q
        self.base = base if sampler == "loguniform" else None
        self.validate()
        self.q = None if q is None else int(q)

    @property
    def log(self) -> bool:
        return self.sampler == "loguniform"

    def validate(self) -> None:
        if self.sampler not in INTEGER_SAMPLERS:
            raise SearchSpaceError(
                f"{self!r}: The value of `sampler` is {self.sampler!r}, but must be one of {INTEGER_SAMPLERS}."
            )
        _check_bounds(self, _whole, "lograndint(1, 100)")
        if self.q is not None:
            _positive(self, "q", self.q, _whole)
            _check_has_multiple(self)

    def inclusive_bounds(self) -> tuple[int, int]:
        """Smallest and largest value ``sample`` can return."""
        if self.q is None or self.q == 1:
            return (int(self.lower), int(self.upper) - 1)
        kmin, kmax = self._k_range()
        return (kmin * int(self.q), kmax * int(self.q))

    def sample(self, rng: np.random.Generator, spec: Any = None) -> int:
        low, high = self.inclusive_bounds()
        step = 1 if self.q is None else int(self.q)
        kmin, kmax = low // step, high // step
        if not self.log:
            return int(rng.integers(kmin, kmax + 1)) * step
        # Log-uniform over [low - step/2, high + step/2], rounded: each end gets a full bucket.
        value = _log_uniform(rng, low - step / 2, high + step / 2, self.base)
        return min(max(round(value / step), kmin), kmax) * step

    def _k_range(self) -> tuple[int, int]:
        lower, upper, q = int(self.lower), int(self.upper), int(self.q)
        return -(-lower // q), upper // q

    def __repr__(self) -> str:
        kind = "lograndint" if self.log else "randint"
        return _describe(kind, [f"{self.lower!r}", f"{self.upper!r}"], self.q, self.base)


class Categorical(Domain):
    """One of ``categories``, uniformly; a category may itself hold domains (conditional spaces)."""

    def __init__(self, categories: Sequence):
        if isinstance(categories, (str, bytes, Mapping)) or not isinstance(categories, Iterable):
            raise SearchSpaceError(
                f"choice() takes a list of categories, got {categories!r}; e.g. choice(['adam', 'sgd'])."
            )
        self.categories = list(categories)
        self.validate()

    def validate(self) -> None:
        if not self.categories:
            raise SearchSpaceError(
                "choice() got an empty list of categories, but needs at least one; "
                "e.g. choice(['adam', 'sgd'])."
            )

    def sample(self, rng: np.random.Generator, spec: Any = None) -> Any:
        return self.categories[int(rng.integers(len(self.categories)))]

    def __repr__(self) -> str:
        return f"choice({self.categories!r})"


# --- the public constructors (Ray Tune's names and signatures) ---


def uniform(lower: float, upper: float) -> Float:
    """A float drawn uniformly from [lower, upper)."""
    return Float(lower, upper)


def quniform(lower: float, upper: float, q: float) -> Float:
    """A float drawn uniformly from [lower, upper] and rounded to a multiple of ``q``."""
    return Float(lower, upper, q=q)


def loguniform(lower: float, upper: float, base: float = 10) -> Float:
    """A float drawn uniformly in log space from [lower, upper); needs 0 < lower."""
    return Float(lower, upper, sampler="loguniform", base=base)


def qloguniform(lower: float, upper: float, q: float, base: float = 10) -> Float:
    """A float drawn uniformly in log space from [lower, upper], rounded to a multiple of ``q``."""
    return Float(lower, upper, sampler="loguniform", q=q, base=base)


def randn(mean: float = 0.0, sd: float = 1.0) -> Float:
    """A float from a normal distribution."""
    return Float(None, None, sampler="normal", mean=mean, sd=sd)


def qrandn(mean: float, sd: float, q: float) -> Float:
    """A float from a normal distribution, rounded to a multiple of ``q``."""
    return Float(None, None, sampler="normal", mean=mean, sd=sd, q=q)


def randint(lower: int, upper: int) -> Integer:
    """An integer drawn uniformly from [lower, upper) (upper excluded)."""
    return Integer(lower, upper)


def qrandint(lower: int, upper: int, q: int = 1) -> Integer:
    """A multiple of ``q`` drawn uniformly from [lower, upper] (upper included unless q == 1)."""
    return Integer(lower, upper, q=q)


def lograndint(lower: int, upper: int, base: float = 10) -> Integer:
    """An integer drawn uniformly in log space from [lower, upper) (upper excluded); needs 0 < lower."""
    return Integer(lower, upper, sampler="loguniform", base=base)


def qlograndint(lower: int, upper: int, q: int, base: float = 10) -> Integer:
    """A multiple of ``q`` drawn in log space from [lower, upper] (upper included unless q == 1)."""
    return Integer(lower, upper, sampler="loguniform", q=q, base=base)


def choice(categories: Sequence) -> Categorical:
    """One of ``categories``, drawn uniformly."""
    return Categorical(categories)


def grid_search(values: Iterable) -> dict:
    """Run one trial per value (times num_samples); returns Ray's plain ``{"grid_search": [...]}``."""
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise SearchSpaceError(
            f"grid_search() takes a list of values, got {values!r}; e.g. grid_search([16, 64, 256])."
        )
    values = list(values)
    if not values:
        raise SearchSpaceError(
            "grid_search() got an empty list, but needs at least one value; e.g. grid_search([16, 64, 256])."
        )
    return {GRID_SEARCH: values}


def is_grid_search(obj: Any) -> bool:
    """True for a ``grid_search`` marker: a dict whose only key is "grid_search"."""
    return isinstance(obj, dict) and len(obj) == 1 and GRID_SEARCH in obj


def format_path(path: tuple) -> str:
    """A key path for messages: ("model", "layers", 0) -> "model.layers[0]"."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "<root>"



# --- small helpers for the domains ---


def _describe(kind: str, args: list[str], q: Any, base: Any) -> str:
    if q is not None:
        kind = "q" + kind
        args.append(f"q={q!r}")
    if base is not None and base != 10:
        args.append(f"base={base!r}")
    return f"{kind}({', '.join(args)})"


def _number(domain: Domain, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise SearchSpaceError(
            f"{domain!r}: The value of `{name}` is {value!r}, but must be a finite number."
        )
    return float(value)


def _whole(domain: Domain, name: str, value: Any) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not float(value).is_integer()
    ):
        raise SearchSpaceError(
            f"{domain!r}: The value of `{name}` is {value!r}, but must be an integer."
        )
    return int(value)


def _positive(domain: Domain, name: str, value: Any, convert: Callable) -> None:
    if convert(domain, name, value) <= 0:
        raise SearchSpaceError(f"{domain!r}: The value of `{name}` is {value!r}, but must be > 0.")


def _check_bounds(domain: Float | Integer, convert: Callable, log_example: str) -> None:
    lower = convert(domain, "lower", domain.lower)
    upper = convert(domain, "upper", domain.upper)
    if lower >= upper:
        raise SearchSpaceError(
            f"{domain!r}: The value of `lower` is {domain.lower!r}, but must be < `upper` ({domain.upper!r})."
        )
    if domain.log:
        if lower <= 0:
            raise SearchSpaceError(
                f"{domain!r}: The value of `lower` is {domain.lower!r}, but must be > 0 on a log "
                f"scale; use a positive lower bound, as in {log_example}, or a uniform distribution."
            )
        base = _number(domain, "base", domain.base)
        if base <= 0 or base == 1:
            raise SearchSpaceError(
                f"{domain!r}: The value of `base` is {domain.base!r}, but must be > 0 and != 1."
            )


def _check_has_multiple(domain: Float | Integer) -> None:
    kmin, kmax = domain._k_range()
    if kmin > kmax:
        raise SearchSpaceError(
            f"{domain!r}: no multiple of `q` ({domain.q!r}) lies between `lower` ({domain.lower!r}) "
            f"and `upper` ({domain.upper!r}); use a smaller q or a wider range."
        )


def _log_uniform(rng: np.random.Generator, lower: float, upper: float, base: float) -> float:
    """A float uniform in log-``base`` space between lower and upper (both > 0)."""
    exponent = rng.uniform(math.log(lower, base), math.log(upper, base))
    return min(max(float(base) ** exponent, lower), upper)
