"""BayesOptSearch: Gaussian-process Bayesian optimisation (``bayesian-optimization``).

Each suggestion is ``optimizer.suggest(utility)`` on the results registered so far; each result
is ``optimizer.register(params, target)`` as it arrives (the library maximises, so a loss is
told negated). The first ``random_search_steps`` results are buffered and registered together,
so that the first points are random (Ray's way of avoiding early over-fitting). A failed trial
is not registered: the library has no failure state. The library models continuous bounded
parameters: log-scaled domains are searched on the log scale, integers and ``q`` are rounded.
``bayes_opt`` is imported here only: ``pip install 'hpctune[bayesopt]'``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from hpctune.space import Float, Integer
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint
from hpctune.tune.search.searcher import Searcher
from hpctune.tune.search.space_conversion import snap

try:
    import bayes_opt
except ImportError:  # pragma: no cover - the constructor says how to install it
    bayes_opt = None

logger = logging.getLogger(__name__)

INSTALL_HINT = install_hint("BayesOptSearch", "bayesian-optimization", "bayesopt")


def _bounds(key: str, d: Float | Integer) -> tuple[float, float]:
    low, high = d.inclusive_bounds()
    if isinstance(d, Integer):  # each integer gets a bucket of width 1 (q) around it
        half = (d.q or 1) / 2
        low, high = low - half, high + half
    return (math.log(low), math.log(high)) if d.log else (float(low), float(high))


class BayesOptSearch(LibrarySearcher):
    """Bayesian optimisation with a Gaussian process (Ray Tune's ``BayesOptSearch``).

    Args (as Ray's):
        space: a dict of hpctune domains (uniform, loguniform, randint and their q/log
            forms), or of ``(lower, upper)`` bounds; without it the Tuner's ``param_space``.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first.
        utility_kwargs: the acquisition function (default ``kind="ucb", kappa=2.576, xi=0``).
        random_state: seed of the library.
        random_search_steps: results gathered before the first registration (random points).
        verbose: the library's verbosity.
        patience: a suggestion that repeats an earlier point this many times ends the search.
        skip_duplicate: ask again instead of running a point twice.
    """

    library = "BayesOpt"
    converters = dict.fromkeys(("uniform", "quniform", "loguniform", "qloguniform", "randint",
                                "qrandint", "lograndint", "qlograndint"), _bounds)
    fixes = {"choice": "BayesOpt models numbers only: use randint(0, n) as the index of the "
                       "choice in your trainable, or a searcher with categories (HyperOpt, Optuna)."}

    def __init__(self, space: dict | None = None, metric: str | None = None,
                 mode: str | None = None, points_to_evaluate: list[dict] | None = None,
                 utility_kwargs: dict | None = None, random_state: int = 42,
                 random_search_steps: int = 10, verbose: int = 0, patience: int = 5,
                 skip_duplicate: bool = True):
        if bayes_opt is None:
            raise ImportError(INSTALL_HINT)
        self._bounds_are_leaves = True  # (lower, upper) is a parameter in `space` only, never
        super().__init__(space, metric, mode, points_to_evaluate)  # a tuple in param_space
        self._bounds_are_leaves = False
        self._utility_kwargs = {"kind": "ucb", "kappa": 2.576, "xi": 0.0, **(utility_kwargs or {})}
        self._random_state, self._verbose = random_state, verbose
        self._random_search_steps = random_search_steps
        self._patience, self._skip_duplicate = patience, skip_duplicate

    def _native(self, value: Any) -> bool:
        return (getattr(self, "_bounds_are_leaves", False) and isinstance(value, tuple)
                and len(value) == 2
                and all(isinstance(v, (int, float)) for v in value))

    def _setup(self) -> Any:
        optimizer = bayes_opt.BayesianOptimization(
            f=None, pbounds=self._space, random_state=self._random_state, verbose=self._verbose,
            allow_duplicate_points=True)
        return {"optimizer": optimizer, "buffer": [], "seen": {}}

    # -- ask
    def _encode(self, values: dict[str, Any]) -> dict[str, float]:
        leaves = self._leaves
        return {k: math.log(v) if getattr(leaves[k], "log", False) else float(v)
                for k, v in values.items()}

    def _decode(self, params: dict[str, float]) -> dict[str, Any]:
        leaves = self._leaves
        return {k: math.exp(v) if getattr(leaves[k], "log", False) else v
                for k, v in params.items()}

    def _ask(self) -> tuple[dict, dict[str, Any]] | None | str:
        state = self._opt
        params = state["optimizer"].suggest(bayes_opt.UtilityFunction(**self._utility_kwargs))
        values = self._config_values(self._decode(params))
        key = repr(sorted(values.items()))
        repeats = state["seen"].get(key, -1) + 1
        state["seen"][key] = repeats
        if self._skip_duplicate and repeats:
            if repeats >= self._patience:
                logger.info("BayesOptSearch: %s was suggested %d times; the search has converged.",
                            values, repeats + 1)
                return Searcher.FINISHED
            return None  # asked again once another result is registered
        return self._encode(values), values

    def _config_values(self, values: dict[str, Any]) -> dict[str, Any]:
        """The values as the config will hold them (rounded), so that what is registered is
        what ran."""
        return {k: snap(self._leaves[k], v) for k, v in values.items()}

    def _ask_point(self, values: dict[str, Any]) -> dict[str, float]:
        return self._encode(self._config_values(values))

    # -- tell
    def _tell(self, handle: dict[str, float], loss: float | None) -> None:
        if loss is None:
            return
        state = self._opt
        state["buffer"].append((handle, -loss))
        if len(state["buffer"]) >= self._random_search_steps or len(state["optimizer"].space):
            for params, target in state["buffer"]:
                state["optimizer"].register(params=params, target=target)
            state["buffer"].clear()
