"""TuneBOHB: BOHB's model (Falkner et al. 2018) on Optuna's TPE, for HyperBandForBOHB.

BOHB models good and bad configurations with kernel densities fitted on the results of one
budget: the largest budget that has enough observations. hpbandster, BOHB's original library,
is unmaintained since 2018, so this adapter keeps BOHB's rule and fits the densities with a
kept library: every suggestion builds an in-memory Optuna study from the observations of that
budget and asks Optuna's multivariate ``TPESampler`` (a Parzen-estimator model like BOHB's
KDE) for one point; a ``random_fraction`` of the points, and every point before any budget has
``min_points_in_model + 2`` observations, are random. A budget is the ``training_iteration``
of a result (``hyperband_info/budget`` when a result carries it). Failed trials add nothing.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from hpctune.core.objective import finite_or_none
from hpctune.errors import ConfigError
from hpctune.tune.search.library_searcher import LibrarySearcher, install_hint
from hpctune.tune.search.optuna_space import (
    _CONVERTERS,
    _FIXES,
    _is_distribution,
    _Param,
)

try:
    import optuna
except ImportError:  # pragma: no cover - the constructor says how to install it
    optuna = None

#: BOHB's model is fitted by Optuna's TPE: the ``bohb`` extra installs optuna
INSTALL_HINT = install_hint("TuneBOHB", "optuna", "bohb")

TRAINING_ITERATION = "training_iteration"
BUDGET_KEY = "hyperband_info/budget"
#: BOHB's defaults (hpbandster): ``min_points_in_model`` None means dimensions + 1
BOHB_DEFAULTS = {
    "min_points_in_model": None,
    "top_n_percent": 15,
    "num_samples": 64,
    "random_fraction": 1 / 3,
}


class TuneBOHB(LibrarySearcher):
    """BOHB's search: a TPE-style model of the largest budget with enough results (Ray
    Tune's ``TuneBOHB``); use it with ``HyperBandForBOHB``.

    Args (as Ray's):
        space: a dict of hpctune search spaces or Optuna distributions; without it the
            Tuner's ``param_space`` is converted.
        bohb_config: BOHB's settings: ``min_points_in_model``, ``top_n_percent``,
            ``num_samples`` (candidates per suggestion), ``random_fraction``.
        metric, mode: the objective; may come from TuneConfig.
        points_to_evaluate: configs to run first.
        seed: seed of the suggestions.
        max_concurrent: accepted for Ray's signature; limit concurrency with
            ``TuneConfig(max_concurrent_trials=...)`` or ``ConcurrencyLimiter``.
    """

    library = "Optuna (TPE for BOHB)"
    converters = _CONVERTERS
    fixes = _FIXES

    def __init__(
        self,
        space: dict | None = None,
        bohb_config: dict | None = None,
        metric: str | None = None,
        mode: str | None = None,
        points_to_evaluate: list[dict] | None = None,
        seed: int | None = None,
        max_concurrent: int = 0,
    ):
        if optuna is None:
            raise ImportError(INSTALL_HINT)
        unknown = sorted(set(bohb_config or {}) - set(BOHB_DEFAULTS))
        if unknown:
            raise ConfigError(
                f"TuneBOHB: unknown `bohb_config` keys {unknown}; valid: {sorted(BOHB_DEFAULTS)}."
            )
        super().__init__(space, metric, mode, points_to_evaluate)
        self._bohb = {**BOHB_DEFAULTS, **(bohb_config or {})}
        self._seed = seed
        optuna.logging.set_verbosity(optuna.logging.WARNING)

    def _native(self, value: Any) -> bool:
        return _is_distribution(value)

    def _param(self, key: str) -> Any:
        """The Optuna form (``_Param``) of a parameter; Optuna distributions wrapped."""
        value = self._space[key]
        return value if isinstance(value, _Param) else _Param(value)

    def _setup(self) -> Any:
        return {"observations": {}, "rng": np.random.RandomState(self._seed)}

    @property
    def _min_points(self) -> int:
        configured = self._bohb["min_points_in_model"]
        return len(self._space) + 1 if configured is None else int(configured)

    def model_budget(self) -> float | None:
        """The largest budget with enough observations for a model, or None."""
        enough = [
            budget
            for budget, seen in self._opt["observations"].items()
            if len(seen) >= self._min_points + 2
        ]
        return max(enough) if enough else None

    # -- ask
    def _ask(self) -> tuple[dict, dict[str, Any]]:
        rng = self._opt["rng"]
        seed = int(rng.randint(2**31 - 1))
        budget = self.model_budget()
        random = budget is None or rng.random_sample() < self._bohb["random_fraction"]
        study = optuna.create_study(sampler=self._sampler(seed, random), direction="minimize")
        dists = {key: self._param(key).dist for key in self._space}
        if not random:
            for params, loss in self._opt["observations"][budget].values():
                study.add_trial(
                    optuna.trial.create_trial(params=params, distributions=dists, value=loss)
                )
        params = study.ask(dists).params
        return params, {key: self._param(key).decode(v) for key, v in params.items()}

    def _sampler(self, seed: int, random: bool) -> Any:
        if random:
            return optuna.samplers.RandomSampler(seed=seed)
        share = self._bohb["top_n_percent"] / 100
        with warnings.catch_warnings():  # gamma: deprecated in Optuna 4.9, and BOHB's top_n_percent
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=0,
                n_ei_candidates=int(self._bohb["num_samples"]),
                gamma=lambda n: max(1, math.ceil(share * n)),
                multivariate=True,
                seed=seed,
            )

    def _ask_point(self, values: dict[str, Any]) -> dict:
        return {key: self._param(key).encode(v) for key, v in values.items()}

    # -- tell
    def _observe(self, trial_id: str, result: dict | None) -> None:
        """Record the trial's loss at the budget it has reached."""
        params = self._live.get(trial_id)
        budget = (result or {}).get(BUDGET_KEY, (result or {}).get(TRAINING_ITERATION))
        if params is None or budget is None or self._opt is None:
            return
        value = finite_or_none(result.get(self._metric))
        if value is not None:
            loss = value if self._mode == "min" else -value
            self._opt["observations"].setdefault(float(budget), {})[trial_id] = (params, loss)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._observe(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if not error and result:
            self._observe(trial_id, result)
        self._pop_live(trial_id)

    def on_trial_stopped_early(self, trial_id: str, result: dict | None) -> None:
        self.on_trial_complete(trial_id, result)

    def _tell(self, handle: Any, loss: float | None) -> None:  # pragma: no cover - unused
        """Results are recorded per budget in ``_observe``."""
