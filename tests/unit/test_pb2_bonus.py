"""PB2's acquisition adds the exploration bonus: of two hyperparameters with the same expected
improvement, the bandit picks the one it knows least about (Ray's UCB, mean + kappa * variance).

The models are fakes with a known mean and spread, so the expected choice is written out."""

from __future__ import annotations

import numpy as np
import pytest

from hpctune.tune.schedulers.pb2 import _maximise_ucb


class Flat:
    """A model whose mean is ``slope * h`` and whose standard deviation is ``spread * h``."""

    def __init__(self, slope: float = 0.0, spread: float = 0.0):
        self.slope, self.spread = slope, spread

    def predict(self, point: np.ndarray, return_std: bool = False):
        h = float(point[0, -1])
        mean = np.array([self.slope * h])
        return (mean, np.array([self.spread * h])) if return_std else mean


def choose(model: Flat, spread: Flat) -> float:
    fixed = np.array([0.5, 0.5])  # the donor's (time, score before): not searched
    (h,) = _maximise_ucb(model, spread, fixed, dims=1, n=10, rng=np.random.default_rng(0))
    return float(h)


def test_the_least_known_hyperparameter_wins_when_the_means_are_equal():
    """Mean 0 everywhere, the spread growing with h: the bonus makes h = 1 the best; a bonus
    subtracted would make h = 0 the best."""
    assert choose(Flat(), Flat(spread=1.0)) == pytest.approx(1.0, abs=1e-3)


def test_the_bonus_outweighs_a_slightly_lower_mean():
    """kappa (n = 10) = sqrt(0.2 + ln 4) ~ 1.26: at h = 1 the UCB is -0.1 + 1.26 > 0 (h = 0)."""
    assert choose(Flat(slope=-0.1), Flat(spread=1.0)) == pytest.approx(1.0, abs=1e-3)


def test_without_spread_the_mean_decides():
    assert choose(Flat(slope=-1.0), Flat()) == pytest.approx(0.0, abs=1e-3)
    assert choose(Flat(slope=1.0), Flat()) == pytest.approx(1.0, abs=1e-3)
