"""PB2's time-varying kernel: its values, its gradient, and a fit by scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("sklearn")

from hpctune.tune.schedulers.pb2_kernel import TimeVaryingSquaredExp  # noqa: E402


def test_values_follow_the_formula_and_time_damps_them():
    kernel = TimeVaryingSquaredExp(variance=2.0, lengthscale=0.5, epsilon=0.2)
    a = np.array([[0.0, 0.1, 0.3]])
    b = np.array([[4.0, 0.4, 0.7]])
    expected = 2.0 * np.exp(-(0.3 ** 2 + 0.4 ** 2) / 0.5) * 0.8 ** (0.5 * 4.0)
    assert kernel(a, b)[0, 0] == pytest.approx(expected)
    same_place_later = np.array([[4.0, 0.1, 0.3]])
    assert kernel(a, same_place_later)[0, 0] == pytest.approx(2.0 * 0.8 ** 2.0)
    assert kernel(a)[0, 0] == pytest.approx(2.0) == kernel.diag(a)[0]


def test_the_gradient_matches_finite_differences_in_log_space():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(0, 10, 6), rng.uniform(0, 1, (6, 2))])
    kernel = TimeVaryingSquaredExp(variance=1.5, lengthscale=0.3, epsilon=0.15)
    _, gradient = kernel(x, eval_gradient=True)
    assert gradient.shape == (6, 6, 3)
    for i in range(3):
        step = np.zeros(3)
        step[i] = 1e-6
        up, down = kernel.clone_with_theta(kernel.theta + step), kernel.clone_with_theta(kernel.theta - step)
        numeric = (up(x) - down(x)) / 2e-6
        assert np.allclose(gradient[..., i], numeric, atol=1e-5), kernel.hyperparameters[i].name


def test_the_matrix_is_positive_semidefinite():
    rng = np.random.default_rng(1)
    x = np.column_stack([rng.uniform(0, 50, 30), rng.uniform(0, 1, (30, 3))])
    eigenvalues = np.linalg.eigvalsh(TimeVaryingSquaredExp(epsilon=0.3)(x))
    assert eigenvalues.min() > -1e-9


def test_a_fit_learns_that_old_points_matter_less_when_the_landscape_drifts():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import WhiteKernel

    rng = np.random.default_rng(2)
    t = np.repeat(np.arange(10.0), 8)
    h = rng.uniform(0, 1, t.size)
    drifting = np.sin(6 * h + t)  # the best h moves with time
    steady = np.sin(6 * h)
    fitted = {}
    for name, y in (("drifting", drifting), ("steady", steady)):
        model = GaussianProcessRegressor(TimeVaryingSquaredExp() + WhiteKernel(1e-3, (1e-6, 1.0)),
                                         random_state=0).fit(np.column_stack([t, h]), y)
        fitted[name] = model.kernel_.k1.epsilon
    assert fitted["drifting"] > 10 * fitted["steady"], fitted
