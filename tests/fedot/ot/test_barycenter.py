"""Entropic barycenters: invariants, weights, the translation test, grid = dense, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import ot
import pytest
import torch

from fedot.ot.barycenter import (
    BarycenterWarning,
    barycenter,
    convolutional_barycenter,
    grid_cost,
)

X = np.arange(60, dtype=np.float64)
M1 = (X[:, None] - X[None]) ** 2 / (X.max() ** 2)


def bump(centre: float, width: float = 3.0) -> np.ndarray:
    a = np.exp(-((X - centre) ** 2) / (2 * width**2))
    return a / a.sum()


def bump2(shape: tuple[int, int], centre: tuple[float, float], width: float = 1.5) -> np.ndarray:
    r, c = np.arange(shape[0])[:, None], np.arange(shape[1])[None]
    a = np.exp(-((r - centre[0]) ** 2 + (c - centre[1]) ** 2) / (2 * width**2))
    return a / a.sum()


def mean_std(b: np.ndarray) -> tuple[float, float]:
    m = float((X * b).sum())
    return m, float(np.sqrt(((X - m) ** 2 * b).sum()))


@pytest.mark.parametrize("method", ["ibp", "sinkhorn_log"])
def test_identical_measures_come_back(method: str) -> None:
    # Prepare: three copies of one bump; small reg blurs only slightly
    a = bump(25.0, 4.0)
    A = np.stack([a, a, a], axis=1)
    # Execute
    res = barycenter(A, M1, reg=1e-3, weights=[0.2, 0.3, 0.5], method=method)
    # Assert
    assert res.converged
    assert np.isclose(res.barycenter.sum(), 1.0)
    assert np.abs(res.barycenter - a).sum() < 0.05
    assert mean_std(res.barycenter)[0] == pytest.approx(25.0, abs=0.05)


@pytest.mark.parametrize("method", ["ibp", "sinkhorn_log"])
def test_weight_e_k_gives_measure_k(method: str) -> None:
    # Prepare
    A = np.stack([bump(10.0), bump(40.0), bump(30.0, 5.0)], axis=1)
    # Execute
    res = barycenter(A, M1, reg=1e-3, weights=[0.0, 1.0, 0.0], method=method)
    # Assert: the barycenter is the second measure (up to the entropic blur)
    assert np.abs(res.barycenter - A[:, 1]).sum() < 0.1
    assert mean_std(res.barycenter)[0] == pytest.approx(40.0, abs=0.05)
    assert mean_std(res.barycenter)[1] == pytest.approx(3.0, abs=0.3)


def test_translation_barycenter_is_one_bump_at_the_weighted_mean_centre() -> None:
    # Prepare: bumps centred at c_k with weights w_k
    centres, w = np.array([12.0, 30.0, 45.0]), np.array([0.5, 0.3, 0.2])
    A = np.stack([bump(c) for c in centres], axis=1)
    # Execute
    res = barycenter(A, M1, reg=5e-4, weights=w, method="ibp")
    average = A @ w
    # Assert: centre near Σ w_k c_k, original width (3), unimodal; the average is multimodal
    mean, std = mean_std(res.barycenter)
    assert mean == pytest.approx(float(w @ centres), abs=0.1)
    assert std == pytest.approx(3.0, abs=0.25)
    peaks = lambda b: int(np.sum((b[1:-1] > b[:-2]) & (b[1:-1] > b[2:]) & (b[1:-1] > 1e-4)))  # noqa: E731
    assert peaks(res.barycenter) == 1
    assert peaks(average) == 3


def test_ibp_equals_pot_log_domain_with_non_uniform_weights() -> None:
    # Prepare
    A = np.stack([bump(10.0), bump(35.0)], axis=1)
    w = [0.8, 0.2]
    # Execute
    ours = barycenter(A, M1, reg=2e-3, weights=w, method="ibp")
    pot_log = barycenter(A, M1, reg=2e-3, weights=w, method="sinkhorn_log")
    # Assert: same barycenter, centred at 0.8·10 + 0.2·35 = 15
    np.testing.assert_allclose(ours.barycenter, pot_log.barycenter, atol=1e-8)
    assert mean_std(ours.barycenter)[0] == pytest.approx(15.0, abs=0.05)


def test_cost_and_marginal_error_are_reported() -> None:
    # Prepare: two far bumps must be transported; the cost equals Σ w_k <C, T_k>
    A = np.stack([bump(10.0), bump(50.0)], axis=1)
    # Execute
    res = barycenter(A, M1, reg=1e-3, method="ibp")
    # Assert: each is moved by 20 cells → normalised cost ≈ 20²/59² (+ entropic blur)
    assert res.marginal_error < 1e-9
    assert res.cost == pytest.approx(400 / 59**2, rel=0.05)


def test_convolutional_equals_dense_on_the_same_grid_cost() -> None:
    # Prepare
    shape = (9, 12)
    A = np.stack([bump2(shape, (2, 2)), bump2(shape, (6, 10)), bump2(shape, (1, 9))])
    w = [0.5, 0.3, 0.2]
    # Execute
    conv = convolutional_barycenter(A, reg=0.01, weights=w)
    dense = barycenter(A.reshape(3, -1).T, grid_cost(shape), reg=0.01, weights=w, method="ibp")
    # Assert
    assert conv.barycenter.shape == shape
    np.testing.assert_allclose(conv.barycenter.ravel(), dense.barycenter, atol=1e-12)
    assert conv.cost == pytest.approx(dense.cost, rel=1e-10)


def test_convolutional_honours_weights_where_pot_scaling_does_not() -> None:
    # Prepare: the weighted mean centre of (10,10) and (30,25) with w = (0.8, 0.2) is (14, 13)
    shape = (40, 40)
    A = np.stack([bump2(shape, (10, 10), 2.5), bump2(shape, (30, 25), 2.5)])
    rows = np.arange(40)[:, None]
    # Execute
    ours = convolutional_barycenter(A, reg=0.002, weights=[0.8, 0.2]).barycenter
    pot = ot.bregman.convolutional_barycenter2d(A, reg=0.002, weights=np.array([0.8, 0.2]),
                                                 stopThr=1e-9)
    # Assert
    assert float((rows * ours).sum()) == pytest.approx(14.0, abs=0.05)
    assert abs(float((rows * pot).sum()) - 14.0) > 1.0  # documents the POT 0.9.7 defect we avoid


def test_torch_input_keeps_dtype_and_device() -> None:
    # Prepare
    shape = (8, 8)
    A = torch.tensor(np.stack([bump2(shape, (2, 2)), bump2(shape, (5, 6))]), dtype=torch.float32)
    # Execute
    res = convolutional_barycenter(A, reg=0.02, tol=1e-6)
    dense = barycenter(A.reshape(2, -1).T, torch.tensor(grid_cost(shape), dtype=torch.float32),
                       reg=0.02, method="ibp", tol=1e-6)
    # Assert
    assert isinstance(res.barycenter, torch.Tensor) and res.barycenter.dtype == torch.float32
    assert isinstance(dense.barycenter, torch.Tensor) and dense.barycenter.dtype == torch.float32
    assert torch.allclose(res.barycenter.reshape(-1), dense.barycenter, atol=1e-6)


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (np.nan, "non-finite"),
        (np.inf, "non-finite"),
        (-0.5, "negative"),
    ],
)
def test_bad_histograms_raise_before_solving(bad: float, match: str) -> None:
    # Prepare
    A = np.stack([bump(10.0), bump(20.0)], axis=1)
    A[5, 1] = bad
    # Execute / Assert
    with pytest.raises(ValueError, match=match):
        barycenter(A, M1, reg=0.01, method="ibp")


def test_unequal_mass_and_bad_weights_raise() -> None:
    # Prepare
    A = np.stack([bump(10.0), 1e6 * bump(20.0)], axis=1)
    good = np.stack([bump(10.0), bump(20.0)], axis=1)
    # Execute / Assert
    with pytest.raises(ValueError, match="equal mass"):
        barycenter(A, M1, reg=0.01)
    with pytest.raises(ValueError, match="weights"):
        barycenter(good, M1, reg=0.01, weights=[1.0, -1.0])
    with pytest.raises(ValueError, match="one entry per histogram"):
        barycenter(good, M1, reg=0.01, weights=[1.0])
    with pytest.raises(ValueError, match="reg"):
        barycenter(good, M1, reg=0.0)


def test_non_convergence_warns() -> None:
    # Prepare
    A = np.stack([bump(10.0), bump(50.0)], axis=1)
    # Execute / Assert
    with pytest.warns(BarycenterWarning, match="max_iter"):
        res = barycenter(A, M1, reg=5e-4, method="ibp", max_iter=3)
    assert not res.converged


def test_underflowing_kernel_raises_instead_of_returning_nan() -> None:
    # Prepare: reg so small that exp(-M/reg) underflows to 0 for far pairs
    A = np.stack([bump(5.0, 1.0), bump(55.0, 1.0)], axis=1)
    # Execute / Assert
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(FloatingPointError, match="sinkhorn_log"):
            barycenter(A, M1, reg=1e-5, method="ibp", max_iter=50)
