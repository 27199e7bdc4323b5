"""NevergradSearch: Nevergrad's gradient-free optimizers as an hpctune Searcher.

Each suggestion is one ``optimizer.ask()``, each result one ``optimizer.tell(candidate,
loss)`` as it arrives: Nevergrad's own asynchronous interface. A failed trial is not told
(Nevergrad has no failure state; an untold candidate is simply never used), as in Ray.
``nevergrad`` is imported here only: ``pip install 'hpctune[nevergrad]'``.
"""

from __future__ import annotations

import inspect
from typing import Any

from hpctune.errors import ConfigError
from hpctune.space import Categorical, Float, Integer
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint

try:
    import nevergrad as ng
    from nevergrad.optimization.base import ConfiguredOptimizer, Optimizer
except ImportError:  # pragma: no cover - the constructor says how to install it
    ng = None

INSTALL_HINT = install_hint("NevergradSearch", "nevergrad", "nevergrad")


def _scalar(key: str, d: Float | Integer) -> Any:
    low, high = d.inclusive_bounds()
    param = (ng.p.Log if d.log else ng.p.Scalar)(lower=low, upper=high)
    return param.set_integer_casting() if isinstance(d, Integer) else param


def _normal(key: str, d: Float) -> Any:
    return ng.p.Scalar(init=d.mean).set_mutation(sigma=d.sd)


def _choice(key: str, d: Categorical) -> Any:
    return ng.p.Choice(list(d.categories))


class NevergradSearch(LibrarySearcher):
    """A Nevergrad optimizer (Ray Tune's ``NevergradSearch``).

    Args (as Ray's):
        optimizer: a Nevergrad optimizer class or configured optimizer
            (``ng.optimizers.OnePlusOne``), built over the converted space with
            ``optimizer_kwargs``; or an optimizer instance whose parametrization is an
            ``ng.p.Dict`` (then ``space`` is left out). Default: ``ng.optimizers.NGOpt``.
        optimizer_kwargs: passed to the optimizer class (``budget``, ``num_workers``).
        space: a dict of hpctune search spaces or of Nevergrad parameters
            (``ng.p.Scalar(lower=0, upper=1)``); without it the Tuner's ``param_space``.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first (``optimizer.suggest``).
    """

    library = "Nevergrad"
    converters = {
        **dict.fromkeys(("uniform", "quniform", "loguniform", "qloguniform"), _scalar),
        **dict.fromkeys(("randint", "qrandint", "lograndint", "qlograndint"), _scalar),
        "randn": _normal, "qrandn": _normal,
        "choice": _choice,
    }

    def __init__(self, optimizer: Any = None, optimizer_kwargs: dict | None = None,
                 space: dict | None = None, metric: str | None = None, mode: str | None = None,
                 points_to_evaluate: list[dict] | None = None):
        if ng is None:
            raise ImportError(INSTALL_HINT)
        instance = isinstance(optimizer, Optimizer)
        if instance and space:
            raise ConfigError("NevergradSearch: an optimizer instance brings its own space "
                              "(its parametrization); leave `space` out, or pass the optimizer "
                              "class, e.g. NevergradSearch(ng.optimizers.OnePlusOne, space=...).")
        if instance and not isinstance(optimizer.parametrization, ng.p.Dict):
            raise ConfigError("NevergradSearch: the optimizer instance's parametrization must be "
                              "an ng.p.Dict of named parameters, e.g. ng.p.Dict(lr=ng.p.Log("
                              f"lower=1e-4, upper=1)); got {type(optimizer.parametrization).__name__}.")
        factory = ng.optimizers.NGOpt if optimizer is None else optimizer
        if not instance and not (isinstance(factory, ConfiguredOptimizer) or (
                inspect.isclass(factory) and issubclass(factory, Optimizer))):
            raise ConfigError(f"NevergradSearch: `optimizer` must be a Nevergrad optimizer class, "
                              f"configured optimizer or instance, got {optimizer!r}.")
        if instance:
            space = dict(optimizer.parametrization.items())
        super().__init__(space, metric, mode, points_to_evaluate)
        self._factory = None if instance else factory
        self._kwargs = dict(optimizer_kwargs or {})
        self._opt = optimizer if instance else None

    def _native(self, value: Any) -> bool:
        return ng is not None and isinstance(value, ng.p.Parameter)

    def _setup(self) -> Any:
        return self._factory(parametrization=ng.p.Dict(**self._space), **self._kwargs)

    def _ask(self) -> tuple[Any, dict[str, Any]]:
        candidate = self._opt.ask()
        return candidate, dict(candidate.value)

    def _ask_point(self, values: dict[str, Any]) -> Any:
        self._opt.suggest(values)
        return self._opt.ask()

    def _tell(self, handle: Any, loss: float | None) -> None:
        if loss is not None:
            self._opt.tell(handle, loss)
