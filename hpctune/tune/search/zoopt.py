"""ZOOptSearch: ZOOpt's sequential RACOS (a classification-based optimiser) as a Searcher.

ZOOpt's ``SRacosTune`` is built for Tune: ``suggest`` gives a solution while fewer than
``parallel_num`` run and ``complete(solution, loss)`` tells one, as results arrive. Its first
``train_size`` points are its initial sample, which it evaluates before it learns (the
library's own design: it answers None until they are told). A failed trial is told as the
worst loss (``inf``), which frees its slot. ZOOpt ends the search (FINISHED) when it cannot
sample a point unlike those it has seen, and draws from numpy's global generator (its
``seed`` seeds that). ``zoopt`` is imported here only:
``pip install 'hpctune[zoopt]'``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from hpctune.errors import ConfigError
from hpctune.space import Categorical, Float, Integer
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint
from hpctune.tune.search.searcher import Searcher

try:
    import zoopt
    from zoopt import ValueType
    from zoopt.algos.opt_algorithms.racos.sracos import SRacosTune
except ImportError:  # pragma: no cover - the constructor says how to install it
    zoopt = None

INSTALL_HINT = install_hint("ZOOptSearch", "zoopt", "zoopt")
_PRECISION = 1e-10


def _continuous(key: str, d: Float) -> tuple:
    return (ValueType.CONTINUOUS, list(d.inclusive_bounds()), _PRECISION)


def _discrete(key: str, d: Integer) -> tuple:
    return (ValueType.DISCRETE, list(d.inclusive_bounds()), True)


def _grid(key: str, d: Categorical) -> tuple:
    return (ValueType.GRID, list(range(len(d.categories))))  # by index: ZOOpt makes them strings


class ZOOptSearch(LibrarySearcher):
    """ZOOpt's SRACOS / ASRACOS (Ray Tune's ``ZOOptSearch``).

    Args (as Ray's):
        algo: "asracos" (default) or "sracos", both run by ZOOpt's ``SRacosTune``.
        budget: the number of evaluations ZOOpt plans for (required).
        dim_dict: the space in ZOOpt's format, ``{"x": (ValueType.CONTINUOUS, [0, 1], 1e-2)}``;
            without it the Tuner's ``param_space`` is converted.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first.
        parallel_num: how many trials ZOOpt lets run at once.
        **kwargs: passed to ``zoopt.Parameter`` (``seed``, ``exploration_rate``, ...).
    """

    library = "ZOOpt"
    converters = {
        "uniform": _continuous,
        "quniform": _continuous,
        "randint": _discrete,
        "qrandint": _discrete,
        "choice": _grid,
    }
    fixes = {
        name: "ZOOpt's dimensions are linear: use uniform/randint instead, or a searcher "
        "with log scales (HyperOpt, Optuna, Nevergrad)."
        for name in ("loguniform", "qloguniform", "lograndint", "qlograndint")
    }

    def __init__(
        self,
        algo: str = "asracos",
        budget: int | None = None,
        dim_dict: dict | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict] | None = None,
        parallel_num: int = 1,
        **kwargs: Any,
    ):
        if zoopt is None:
            raise ImportError(INSTALL_HINT)
        if algo not in ("asracos", "sracos"):
            raise ConfigError(
                f"ZOOptSearch: `algo` is {algo!r}, but must be 'asracos' or 'sracos'."
            )
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise ConfigError(
                f"ZOOptSearch needs `budget`, the number of trials ZOOpt plans for "
                f"(a positive int), got {budget!r}: e.g. ZOOptSearch(budget=100)."
            )
        if not isinstance(parallel_num, int) or parallel_num < 1:
            raise ConfigError(
                f"ZOOptSearch: `parallel_num` must be a positive int, got {parallel_num!r}."
            )
        takes = set(inspect.signature(zoopt.Parameter).parameters) - {"budget"}
        unknown = sorted(set(kwargs) - takes)
        if unknown:
            raise ConfigError(
                f"ZOOptSearch: {unknown} are not arguments of zoopt.Parameter, "
                f"which takes {sorted(takes)}."
            )
        super().__init__(dim_dict, metric, mode, points_to_evaluate)
        self._algo, self._budget, self._parallel_num = algo, budget, parallel_num
        self._kwargs = kwargs

    def _native(self, value: Any) -> bool:
        return (
            zoopt is not None
            and isinstance(value, tuple)
            and len(value) >= 2
            and isinstance(value[0], type(ValueType.CONTINUOUS))
        )

    def _setup(self) -> Any:
        dimension = zoopt.Dimension2([self._space[k] for k in self._space])
        parameter = zoopt.Parameter(budget=self._budget, **self._kwargs)
        return SRacosTune(dimension=dimension, parameter=parameter, parallel_num=self._parallel_num)

    def _ask(self) -> tuple[Any, dict[str, Any]] | None | str:
        solution = self._opt.suggest()
        if (
            solution is None
            and self._opt.semaphore == 0
            and (self._opt.complete_num >= self._opt._parameter.get_train_size())
        ):
            # SRacosTune waits for the last initial result, but it came before this ask:
            # without this it would wait forever (zoopt 0.4.2)
            self._opt.semaphore = 1
            solution = self._opt.suggest()
        if solution is None or solution == "FINISHED":
            return Searcher.FINISHED if solution == "FINISHED" else None
        values = dict(zip(self._space, solution.get_x(), strict=True))
        for key, leaf in self._leaves.items():
            if isinstance(leaf, Categorical):
                values[key] = leaf.categories[int(values[key])]
        return solution, values

    def _ask_point(self, values: dict[str, Any]) -> Any:
        """A solution ZOOpt asked for, moved to the given point (ZOOpt's own init_samples are
        dropped once a first result arrives)."""
        asked = self._ask()
        if not isinstance(asked, tuple):
            return None
        solution = asked[0]
        solution.set_x([self._index(key, values[key]) for key in self._space])
        return solution

    def _index(self, key: str, value: Any) -> Any:
        leaf = self._leaves[key]
        if not isinstance(leaf, Categorical):
            return value
        return next(i for i, c in enumerate(leaf.categories) if c == value)

    def _tell(self, handle: Any, loss: float | None) -> None:
        self._opt.complete(handle, math.inf if loss is None else loss)
