"""``sample_from``: a value computed from the rest of the config, and the ``Spec`` it reads.

``spec.config.alpha`` (Ray's lambdas) and ``spec.config["alpha"]`` both work; reading a
value that is not sampled yet raises ``UnresolvedValueError`` and the resolver retries the
function once that value exists (see ``resolve``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.errors import SearchSpaceError
from hpctune.space.domains import Domain, format_path, is_grid_search


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


def sample_from(func: Callable[..., Any]) -> Function:
    """A value computed per trial by ``func(spec)``; ``spec.config`` holds the other values."""
    return Function(func)


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


def materialize(value: Any) -> Any:
    """Turn views a function returned (``lambda s: s.config.opt``) back into plain data."""
    if isinstance(value, _ConfigView):
        return {key: materialize(item) for key, item in value.items()}
    if isinstance(value, _ListView):
        return [materialize(item) for item in value]
    return value


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
