"""Search-space primitives (Ray Tune's ``uniform`` ... ``grid_search``) and how they resolve.

A param_space is a nested dict/list whose leaves are constants, ``Domain`` objects
(sampled once per trial) or ``grid_search`` markers (one trial per value). Everything
here is pure: sampling takes an injected ``numpy.random.Generator``; no Slurm, no files.
"""

from __future__ import annotations

import inspect
import math
import numbers
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError

GRID_SEARCH = "grid_search"
FLOAT_SAMPLERS = ("uniform", "loguniform", "normal")
INTEGER_SAMPLERS = ("uniform", "loguniform")
_MAX_PASSES = 1000  # resolution passes per config: dependency chains and nested domains


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


# --- walking nested param_spaces ---


def format_path(path: tuple) -> str:
    """A key path for messages: ("model", "layers", 0) -> "model.layers[0]"."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "<root>"


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
    """Copy the dicts and lists (so configs never share them); leaves are shared."""
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
        _set(tree, path, _copy_tree(_materialize(value)))
    return waiting


def _cycle_error(waiting: dict) -> SearchSpaceError:
    reads = ", ".join(f"`{format_path(p)}` reads `{format_path(d)}`" for p, d in waiting.items())
    return SearchSpaceError(
        f"sample_from functions depend on each other in a cycle, so none can be sampled: {reads}. "
        "A sample_from function may only read values that resolve without it; break the cycle, "
        "e.g. make one of them a plain distribution such as uniform(0, 1)."
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
