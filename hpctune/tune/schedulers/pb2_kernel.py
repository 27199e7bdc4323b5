"""PB2's time-varying squared-exponential kernel as a scikit-learn kernel (TV-GP-UCB).

``k(a, b) = variance * exp(-|x_a - x_b|^2 / lengthscale) * (1 - epsilon) ** (|t_a - t_b| / 2)``

where ``t`` is the first column (time) and ``x`` the others (score before, hyperparameters):
points far apart in time count less, so the model follows a landscape that changes as
training goes on (Bogunovic et al. 2016, as in the PB2 paper and Ray's PB2). scikit-learn
does the GP algebra; this module gives only the kernel and its gradient, so its
hyperparameters are fitted by maximum likelihood like any built-in kernel's.
Imported only when PB2 fits a model (scikit-learn is the optional ``pb2`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.gaussian_process.kernels import Hyperparameter, Kernel


class TimeVaryingSquaredExp(Kernel):
    """A squared exponential over every column but the first, damped by time distance."""

    def __init__(self, variance: float = 1.0, lengthscale: float = 1.0, epsilon: float = 0.1,
                 variance_bounds: Any = (1e-5, 1e5), lengthscale_bounds: Any = (1e-5, 1.0),
                 epsilon_bounds: Any = (1e-5, 0.5)):
        self.variance = variance
        self.lengthscale = lengthscale
        self.epsilon = epsilon
        self.variance_bounds = variance_bounds
        self.lengthscale_bounds = lengthscale_bounds
        self.epsilon_bounds = epsilon_bounds

    @property
    def hyperparameter_variance(self) -> Hyperparameter:
        return Hyperparameter("variance", "numeric", self.variance_bounds)

    @property
    def hyperparameter_lengthscale(self) -> Hyperparameter:
        return Hyperparameter("lengthscale", "numeric", self.lengthscale_bounds)

    @property
    def hyperparameter_epsilon(self) -> Hyperparameter:
        return Hyperparameter("epsilon", "numeric", self.epsilon_bounds)

    def __call__(self, X: np.ndarray, Y: np.ndarray | None = None,  # noqa: N803 - sklearn's names
                 eval_gradient: bool = False) -> Any:
        X = np.atleast_2d(X)
        if eval_gradient and Y is not None:
            raise ValueError("Gradient can only be evaluated when Y is None.")
        Y = X if Y is None else np.atleast_2d(Y)
        time_gap = np.abs(X[:, :1] - Y[:, :1].T)
        squared = ((X[:, None, 1:] - Y[None, :, 1:]) ** 2).sum(axis=-1)
        K = self.variance * np.exp(-squared / self.lengthscale) * (1 - self.epsilon) ** (0.5 * time_gap)
        if not eval_gradient:
            return K
        # d K / d log(parameter), in the order of self.hyperparameters (alphabetical)
        gradient = [K * (-0.5 * time_gap * self.epsilon / (1 - self.epsilon)),  # epsilon
                    K * squared / self.lengthscale,                             # lengthscale
                    K]                                                          # variance
        free = [g for g, h in zip(gradient, self.hyperparameters, strict=True) if not h.fixed]
        return K, np.stack(free, axis=-1) if free else np.empty((*K.shape, 0))

    def diag(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        return np.full(np.atleast_2d(X).shape[0], float(self.variance))

    def is_stationary(self) -> bool:
        return True

    def __repr__(self) -> str:
        return (f"TimeVaryingSquaredExp(variance={self.variance:.3g}, "
                f"lengthscale={self.lengthscale:.3g}, epsilon={self.epsilon:.3g})")
