"""Population Based Bandits (Parker-Holder et al. 2020), as Ray Tune's PB2, on scikit-learn.

PB2 is PBT whose explore step is a GP bandit: every score a trial is judged with becomes a
data point (time, score before, hyperparameters) -> score change per unit of time; when a
trial exploits a donor, a Gaussian process fitted to those points picks the new
hyperparameters within ``hyperparam_bounds`` by maximising an upper confidence bound at
the donor's (time, score). Configs already chosen in the same round are added to a second
GP with zero labels so that their uncertainty drops and the next pick goes elsewhere.

The kernel is the reference's time-varying squared exponential (``pb2_kernel``) plus a
white-noise term, fitted by scikit-learn instead of GPy. Difference from Ray: the GP sees
the latest ``MAX_POINTS`` data points, not a window chosen by cross-validation. Needs
``pip install 'hpctune[pb2]'`` (scikit-learn).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hpctune.core.seeding import root_seed
from hpctune.errors import ConfigError
from hpctune.space import uniform
from hpctune.tune.schedulers.pbt import PopulationBasedTraining

#: the GP is fitted to at most this many (latest) data points
MAX_POINTS = 200
RESTARTS = 10


def _require_sklearn() -> None:
    try:
        import scipy.optimize  # noqa: F401
        import sklearn.gaussian_process  # noqa: F401
    except ImportError as error:
        raise ConfigError("PB2 needs scikit-learn: pip install 'hpctune[pb2]' "
                          f"(or pip install scikit-learn) ({error}).") from error


def _check_bounds(bounds: Mapping[str, Any] | None) -> dict[str, tuple[float, float]]:
    if not bounds:
        raise ConfigError("PB2 needs `hyperparam_bounds`, e.g. PB2(hyperparam_bounds={'lr': [1e-4, 1e-1]}).")
    checked = {}
    for key, value in bounds.items():
        ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or value[0] == value[1]:
            raise ConfigError(f"The value of `hyperparam_bounds[{key!r}]` is {value!r}, but must be "
                              "two different numbers, e.g. [1e-4, 1e-1].")
        # either order, as Ray's (its own example gives [1e-3, 1e-5])
        checked[key] = (float(min(value)), float(max(value)))
    return checked


class PB2(PopulationBasedTraining):
    """PBT with a GP-bandit explore step (see the module docstring).

    Args (as Ray's): ``time_attr``, ``metric``, ``mode``, ``perturbation_interval``,
    ``hyperparam_bounds`` ({key: [min, max]}: an int value stays an int),
    ``quantile_fraction``, ``log_config``, ``require_attrs``, ``synch``; and ``seed`` /
    ``rng`` for donors, the GP's restarts and the acquisition's starting points.
    """

    def __init__(self, time_attr: str = "time_total_s", metric: str | None = None,
                 mode: str | None = None, perturbation_interval: float = 60.0,
                 hyperparam_bounds: Mapping[str, Sequence[float]] | None = None,
                 quantile_fraction: float = 0.25, log_config: bool = True,
                 require_attrs: bool = True, synch: bool = False, seed: int | None = None,
                 rng: np.random.Generator | None = None):
        bounds = _check_bounds(hyperparam_bounds)
        if seed is None and rng is None:  # drawn from `random` before importing scikit-learn draws from it
            seed = root_seed(None)
        _require_sklearn()
        super().__init__(time_attr=time_attr, metric=metric, mode=mode,
                         perturbation_interval=perturbation_interval,
                         hyperparam_mutations={k: uniform(lo, hi) for k, (lo, hi) in bounds.items()},
                         quantile_fraction=quantile_fraction, resample_probability=0.0,
                         log_config=log_config, require_attrs=require_attrs, synch=synch,
                         seed=seed, rng=rng)
        self._bounds = bounds
        self._data: list[list[Any]] = []  # [trial id, time, *hyperparameters, score]
        self._current: list[list[float]] = []  # picked in the current round
        self._last_exploration_time = 0.0

    def _on_score(self, trial_id: str, time: float, score: float) -> None:
        config = self._trials[trial_id].config
        self._data.append([trial_id, time, *[float(config[k]) for k in self._bounds], score])

    def _new_config(self, trial_id: str, donor: str) -> dict[str, Any]:
        donor_config = self._trials[donor].config
        newest = max((row[1] for row in self._data), default=0.0)
        if newest > self._last_exploration_time:
            self._current = []  # a new round: trials still running are not penalised
        points = _improvements(self._data, len(self._bounds))
        picked = [p for p in points if p[0] == donor]
        if not picked:
            return dict(donor_config)  # no data on the donor yet: its config as it is
        values = self._select(points, picked[-1], self._current)
        new_config = dict(donor_config)
        for (key, _), value in zip(self._bounds.items(), values, strict=True):
            is_int = isinstance(donor_config.get(key), int) and not isinstance(donor_config.get(key), bool)
            new_config[key] = int(value) if is_int else float(value)
        donor_row = [row for row in self._data if row[0] == donor][-1]
        self._data.append([trial_id, donor_row[1], *[float(v) for v in values], donor_row[-1]])
        if newest > self._last_exploration_time:
            self._last_exploration_time = newest
        self._current.append([float(v) for v in values])
        return new_config

    def _select(self, points: list[list[Any]], donor_point: list[Any], current: list[list[float]]) -> np.ndarray:
        """The hyperparameters maximising the UCB at the donor's (time, score before)."""
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.gaussian_process import GaussianProcessRegressor
        from sklearn.gaussian_process.kernels import WhiteKernel

        from hpctune.tune.schedulers.pb2_kernel import TimeVaryingSquaredExp

        rows = np.array([p[1:] for p in points[-MAX_POINTS:]], dtype=float)  # t, r_before, h..., y
        x_raw, y_raw = rows[:, :-1], rows[:, -1]
        low = np.concatenate([x_raw[:, :2].min(axis=0), [lo for lo, _ in self._bounds.values()]])
        high = np.concatenate([x_raw[:, :2].max(axis=0), [hi for _, hi in self._bounds.values()]])
        scale = high - low + 1e-8
        x = (x_raw - low) / scale
        y = np.clip((y_raw - y_raw.mean()) / (y_raw.std() + 1e-8), -2, 2)
        fixed = (np.array(donor_point[1:3], dtype=float) - low[:2]) / scale[:2]
        kernel = TimeVaryingSquaredExp() + WhiteKernel(1e-3, (1e-6, 1.0))
        seed = int(self._rng.integers(2**31 - 1))
        with warnings.catch_warnings():  # a length scale or epsilon at Ray's bounds is expected
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = GaussianProcessRegressor(kernel, random_state=seed).fit(x, y)
            spread = model
            if current:
                pending = np.hstack([np.tile(fixed, (len(current), 1)),
                                     (np.array(current) - low[2:]) / scale[2:]])
                spread = GaussianProcessRegressor(kernel, random_state=seed).fit(
                    np.vstack([x, pending]), np.concatenate([y, np.zeros(len(current))]))
        best = _maximise_ucb(model, spread, fixed, len(self._bounds), len(x), self._rng)
        return best * scale[2:] + low[2:]

    def get_state(self) -> dict:
        return {**super().get_state(), "pb2": {"data": [list(r) for r in self._data],
                                               "current": [list(c) for c in self._current],
                                               "last_exploration_time": self._last_exploration_time}}

    def set_state(self, state: dict) -> None:
        super().set_state(state)
        pb2 = state.get("pb2") or {}
        self._data = [list(r) for r in pb2.get("data", [])]
        self._current = [list(c) for c in pb2.get("current", [])]
        self._last_exploration_time = pb2.get("last_exploration_time", 0.0)

    def debug_string(self) -> str:
        return super().debug_string().replace("PopulationBasedTraining", "PB2", 1)


def _improvements(data: list[list[Any]], dims: int) -> list[list[Any]]:
    """[trial, time, score before, *hyperparameters, score change per unit of time] for each
    pair of consecutive data points of one trial with the same hyperparameters (Ray's ``y``)."""
    last: dict[tuple, list[Any]] = {}
    points = []
    for row in sorted(data, key=lambda r: r[1]):
        key = (row[0], *row[2:2 + dims])
        before = last.get(key)
        last[key] = row
        if before is None or row[1] - before[1] <= 0:
            continue
        change = row[-1] - before[-1]
        if not math.isfinite(change):
            continue
        points.append([row[0], row[1], row[-1] - change, *row[2:2 + dims], change / (row[1] - before[1])])
    return points[-1000:]


def _maximise_ucb(model: Any, spread: Any, fixed: np.ndarray, dims: int, n: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Ray's UCB (mean of ``model`` + kappa * variance of ``spread``), maximised from
    ``RESTARTS`` random starts with L-BFGS-B over the unit cube."""
    from scipy.optimize import minimize

    kappa = math.sqrt(0.2 + max(0.0, math.log(0.4 * n)))

    def ucb(h: np.ndarray) -> float:
        point = np.concatenate([fixed, np.clip(h, 0, 1)]).reshape(1, -1)
        mean = float(model.predict(point)[0])
        _, std = spread.predict(point, return_std=True)
        return mean + kappa * float(std[0]) ** 2

    best, best_value = rng.uniform(0, 1, dims), -math.inf
    for _ in range(RESTARTS):
        found = minimize(lambda h: -ucb(h), rng.uniform(0, 1, dims), bounds=[(0, 1)] * dims,
                         method="L-BFGS-B", options={"maxiter": 200})
        value = ucb(found.x)
        if value > best_value:
            best, best_value = found.x, value
    return np.clip(best, 0, 1)
