"""AxSearch: Ax's Bayesian optimisation (BoTorch) as an hpctune Searcher.

Each suggestion is ``client.get_next_trials(max_trials=1)`` at once, with the running trials
pending in Ax (so a slot that frees gets a point without waiting for a batch); each result is
``complete_trial`` as it arrives, a failed trial ``mark_trial_failed``. Ax's ``Client`` (Ax
1.x) replaces the ``AxClient`` Ray used. Ax starts with a quasi-random (Sobol) stage, then
fits a Gaussian process per suggestion, which takes seconds: meant for expensive trials.
On a busy shared node, torch's default thread pool can make each suggestion much slower
(measured on a loaded 2-core machine: 20-50 s with 2 threads, 1-2 s with
``torch.set_num_threads(1)`` in the driver).
``ax`` is imported here only: ``pip install 'hpctune[ax]'``.
"""

from __future__ import annotations

import logging
from typing import Any

from hpctune.errors import ConfigError
from hpctune.space import Categorical, Float, Integer
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint

try:
    from ax import ChoiceParameterConfig, Client, RangeParameterConfig
except ImportError:  # pragma: no cover - the constructor says how to install it
    Client = None

INSTALL_HINT = install_hint("AxSearch", "ax-platform", "ax")
#: the name of the objective inside Ax: the loss hpctune tells it (minimised)
OBJECTIVE = "hpctune_loss"
_TYPES = {bool: "bool", int: "int", float: "float", str: "str"}


def _range(key: str, d: Float | Integer) -> Any:
    kind = "int" if isinstance(d, Integer) else "float"
    low, high = d.inclusive_bounds()
    step = d.q if d.q and not d.log and not (kind == "int" and d.q == 1) else None
    return RangeParameterConfig(
        name=key,
        bounds=(low, high),
        parameter_type=kind,
        step_size=step,
        scaling="log" if d.log else None,
    )


def _choice(key: str, d: Categorical) -> Any:
    kinds = {type(c) for c in d.categories}
    if len(kinds) == 1 and next(iter(kinds)) in _TYPES:
        return ChoiceParameterConfig(
            name=key, values=list(d.categories), parameter_type=_TYPES[next(iter(kinds))]
        )
    return ChoiceParameterConfig(
        name=key,
        values=list(range(len(d.categories))),  # by index
        parameter_type="int",
        is_ordered=False,
    )


def _quiet_ax() -> None:
    """Ax logs two INFO lines per trial, each on a logger of its own with its own level (so
    the "ax" parent's level does not reach them): keep its warnings only."""
    for name in list(logging.root.manager.loggerDict):
        if name == "ax" or name.startswith("ax."):
            logging.getLogger(name).setLevel(logging.WARNING)


class AxSearch(LibrarySearcher):
    """Ax (Ray Tune's ``AxSearch``).

    Args (as Ray's):
        space: a dict of hpctune search spaces; without it the Tuner's ``param_space``.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first (``attach_trial``).
        parameter_constraints: Ax's linear constraints, e.g. ``["x + y <= 1"]``.
        outcome_constraints: not supported (hpctune tells Ax one objective).
        ax_client: not supported: pass the space instead (hpctune builds the ``ax.Client``).
        **ax_kwargs: ``random_seed`` for ``ax.Client``.
    """

    library = "Ax"
    converters = {
        **dict.fromkeys(
            (
                "uniform",
                "quniform",
                "loguniform",
                "qloguniform",
                "randint",
                "qrandint",
                "lograndint",
                "qlograndint",
            ),
            _range,
        ),
        "choice": _choice,
    }

    def __init__(
        self,
        space: dict | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict] | None = None,
        parameter_constraints: list[str] | None = None,
        outcome_constraints: list[str] | None = None,
        ax_client: Any = None,
        **ax_kwargs: Any,
    ):
        if Client is None:
            raise ImportError(INSTALL_HINT)
        if ax_client is not None or outcome_constraints:
            raise ConfigError(
                "AxSearch: `ax_client` and `outcome_constraints` are not supported: "
                "pass the space (and parameter_constraints) and hpctune configures "
                "Ax's Client with one objective, the metric."
            )
        unknown = sorted(set(ax_kwargs) - {"random_seed"})
        if unknown:
            raise ConfigError(
                f"AxSearch: unknown arguments {unknown}; ax_kwargs takes random_seed."
            )
        _quiet_ax()
        super().__init__(space, metric, mode, points_to_evaluate)
        self._constraints = list(parameter_constraints or [])
        self._seed = ax_kwargs.get("random_seed")

    def _setup(self) -> Any:
        client = Client(random_seed=self._seed)
        client.configure_experiment(
            parameters=list(self._space.values()), parameter_constraints=self._constraints or None
        )
        client.configure_optimization(objective=f"-{OBJECTIVE}")
        return client

    def _decode(self, params: dict[str, Any]) -> dict[str, Any]:
        values = dict(params)
        for key, leaf in self._leaves.items():
            if isinstance(leaf, Categorical) and self._space[key].values != leaf.categories:
                values[key] = leaf.categories[int(values[key])]
        return values

    def _ask(self) -> tuple[int, dict[str, Any]]:
        ((index, params),) = self._opt.get_next_trials(max_trials=1).items()
        return index, self._decode(params)

    def _ask_point(self, values: dict[str, Any]) -> int:
        encoded = dict(values)
        for key, leaf in self._leaves.items():
            if isinstance(leaf, Categorical) and self._space[key].values != leaf.categories:
                encoded[key] = next(i for i, c in enumerate(leaf.categories) if c == values[key])
        return self._opt.attach_trial(encoded)

    def _tell(self, handle: int, loss: float | None) -> None:
        if loss is None:
            self._opt.mark_trial_failed(handle)
        else:
            self._opt.complete_trial(handle, raw_data={OBJECTIVE: loss})
