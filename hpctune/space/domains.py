"""Search-space domains and Ray Tune's constructors (uniform, choice, grid_search, ...)."""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


class Function(Domain):
    """A value computed by ``func(spec)`` (or ``func()``); see ``Spec`` for what it can read."""

    def __init__(self, func: Callable[..., Any]):
        if not callable(func):
            raise SearchSpaceError(
                f"sample_from() takes a function, got {func!r}; e.g. sample_from(lambda spec: 2 * spec.config.lr)."
            )
        self.func = func
        self._pass_spec = _takes_spec(func)

    def sample(self, rng: np.random.Generator, spec: Any = None) -> Any:
        """Call the function; a Mapping ``spec`` is taken as the config resolved so far."""
        if not self._pass_spec:
            return self.func()
        if spec is None or isinstance(spec, Mapping):
            spec = Spec(spec or {}, rng)
        return self.func(spec)

    def __repr__(self) -> str:
        return f"sample_from({getattr(self.func, '__qualname__', self.func)})"


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


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed per trial by ``func(spec)``; ``spec.config`` holds the other values."""
    return Function(func)


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


# --- what sample_from functions see ---


class UnresolvedValueError(SearchSpaceError):
    """A sample_from function read a value that is not sampled yet; resolvers retry it later."""

    def __init__(self, path: tuple):
        self.path = path
        super().__init__(f"`{format_path(path)}` is not resolved yet.")


class Spec:
    """The argument of a sample_from function: ``spec.config`` is the config resolved so far.

    ``spec.config.alpha`` (Ray's lambdas) and ``spec.config["alpha"]`` both work; reading a
    value that is not sampled yet raises UnresolvedValueError. ``spec.rng`` is the trial's
    seeded Generator, for custom sampling that is reproducible with the searcher's seed.
    """

    def __init__(self, config: Mapping, rng: np.random.Generator | None = None):
        self.config = _view(config, ())
        self.rng = rng

    def __getitem__(self, key: str) -> Any:
        if key == "config":
            return self.config
        raise KeyError(key)


class _ConfigView(Mapping):
    """Read-only view of a dict being resolved, with attribute access for Ray-style lambdas."""

    def __init__(self, data: Mapping, path: tuple):
        self._data, self._path = data, path

    def __getitem__(self, key: Any) -> Any:
        return _view(self._data[key], (*self._path, key))

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not Mapping methods (keys, items, get, ...).
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._data:
            where = format_path(self._path) if self._path else "config"
            raise AttributeError(f"{where} has no key {name!r}; it has {list(self._data)}.")
        return self[name]

    def __repr__(self) -> str:
        return f"ConfigView({self._data!r})"


class _ListView(Sequence):
    """Read-only view of a list being resolved."""

    def __init__(self, data: list, path: tuple):
        self._data, self._path = data, path

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self._data)))]
        position = range(len(self._data))[index]
        return _view(self._data[position], (*self._path, position))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"ListView({self._data!r})"


def _view(value: Any, path: tuple) -> Any:
    if isinstance(value, Domain) or is_grid_search(value):
        raise UnresolvedValueError(path)
    if isinstance(value, Mapping):
        return _ConfigView(value, path)
    if isinstance(value, list):
        return _ListView(value, path)
    return value


def _materialize(value: Any) -> Any:
    """Turn views a function returned (``lambda s: s.config.opt``) back into plain data."""
    if isinstance(value, _ConfigView):
        return {key: _materialize(item) for key, item in value.items()}
    if isinstance(value, _ListView):
        return [_materialize(item) for item in value]
    return value


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


def _takes_spec(func: Callable[..., Any]) -> bool:
    """Whether ``func`` takes the spec argument (Ray allows ``lambda spec: ...`` and ``lambda: ...``)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):  # some builtins have no signature
        return True
    for args, takes_spec in (((None,), True), ((), False)):
        try:
            signature.bind(*args)
            return takes_spec
        except TypeError:
            pass
    raise SearchSpaceError(
        f"sample_from({func!r}): the function must take one argument (the spec, as in "
        "`lambda spec: spec.config.lr * 2`) or none."
    )
