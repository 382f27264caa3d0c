"""Masked Sinkhorn: kappa-penalised variant, degenerate rows/columns, backends, input validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedot.ot import MaskedSinkhornWarning, masked_feasibility, masked_sinkhorn

# Infeasible: user 0 (p = 0.45) has pi_0 = 0.3; user 3 (p = 0.25) has pi_3 = 0.2
P_BAD = np.array([0.45, 0.1, 0.2, 0.25])
Q_BAD = np.array([0.3, 0.3, 0.2, 0.2])
S_BAD = [[0, 1], [1, 2], [2, 3], [1, 2]]


def _kl(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sum(a * np.log(a / b)))


def _dense_uv(p: np.ndarray, q: np.ndarray, subsets: list[list[int]], kappa: float) -> np.ndarray:
    """Reference: u = (p / K v)^kappa, v = q / K^T u on the dense kernel K = T0; returns T1."""
    kernel = np.zeros((p.size, q.size))
    for j, members in enumerate(subsets):
        kernel[members, j] = q[j] / len(members)
    u, v = np.ones(p.size), np.ones(q.size)
    for _ in range(5000):
        u = (p / (kernel @ v)) ** kappa
        v = q / (kernel.T @ u)
    return (u[:, None] * kernel * v[None, :]).sum(axis=1)


def test_kappa_zero_is_uniform_averaging() -> None:
    # Execute
    res = masked_sinkhorn(P_BAD, Q_BAD, S_BAD, kappa=0.0)
    # Assert
    assert res.converged and res.n_iter == 0
    for w, members in zip(res.weights, S_BAD, strict=True):
        np.testing.assert_allclose(w, 1.0 / len(members), atol=1e-15)


@pytest.mark.parametrize("kappa", [0.25, 0.5, 0.75])
def test_kappa_matches_dense_uv_iteration(kappa: float) -> None:
    # Execute
    res = masked_sinkhorn(P_BAD, Q_BAD, S_BAD, kappa=kappa, tol=1e-13)
    # Assert: converges although the instance is infeasible, to the u/v fixed point
    assert res.converged
    np.testing.assert_allclose(res.p_hat, _dense_uv(P_BAD, Q_BAD, S_BAD, kappa), atol=1e-10)
    assert res.row_error > 0.1
    np.testing.assert_allclose([w.sum() for w in res.weights], 1.0, atol=1e-14)


def test_kappa_trades_fidelity_monotonically() -> None:
    # Prepare
    kappas = [0.0, 0.25, 0.5, 0.75, 1.0]
    # Execute
    with pytest.warns(MaskedSinkhornWarning):  # kappa = 1 cannot converge: infeasible
        results = [masked_sinkhorn(P_BAD, Q_BAD, S_BAD, kappa=k, tol=1e-13) for k in kappas]
    p_hats = [r.p_hat for r in results]
    # Assert: KL(p_hat || p) non-increasing (documented); ||p - p_hat||_1 too on this instance;
    # kappa = 1 (IPFP) minimises KL(p || p_hat) over the reachable marginals (Csiszar-Tusnady)
    assert np.all(np.diff([_kl(ph, P_BAD) for ph in p_hats]) <= 1e-12)
    assert np.all(np.diff([np.abs(ph - P_BAD).sum() for ph in p_hats]) <= 1e-12)
    reverse = [_kl(P_BAD, ph) for ph in p_hats]
    assert reverse[-1] == pytest.approx(min(reverse))
    assert [r.converged for r in results] == [True, True, True, True, False]
    assert results[-1].row_error >= 2 * masked_feasibility(P_BAD, Q_BAD, S_BAD).unmatched_mass - 1e-12


def test_kappa_one_is_the_default() -> None:
    p, q, subsets = np.array([0.5, 0.3, 0.2]), np.array([0.6, 0.4]), [[0, 1], [1, 2]]
    a, b = masked_sinkhorn(p, q, subsets), masked_sinkhorn(p, q, subsets, kappa=1.0)
    np.testing.assert_array_equal(a.plan, b.plan)
    np.testing.assert_allclose(a.weights[0], [5 / 6, 1 / 6], atol=1e-12)  # hand solution
    np.testing.assert_allclose(a.weights[1], [0.5, 0.5], atol=1e-12)


def test_zero_importance_rows_and_zero_probability_columns() -> None:
    # Prepare: user 3 has p = 0; subset 2 has q = 0
    p, q = np.array([0.4, 0.35, 0.25, 0.0]), np.array([0.5, 0.5, 0.0])
    subsets = [[0, 3, 1], [1, 2, 3], [3, 2]]
    # Execute
    res = masked_sinkhorn(p, q, subsets, tol=1e-12)
    # Assert
    assert res.converged
    assert res.weights[0][1] == 0.0 and res.weights[1][2] == 0.0
    np.testing.assert_allclose(res.weights[2], [0.0, 1.0])  # fallback p restricted to A_j
    np.testing.assert_allclose(res.p_hat, p, atol=1e-12)


def test_unservable_user_and_dead_column_are_reported() -> None:
    # Prepare: user 3 (p > 0) is in no subset; subset 2 (q > 0) only has users with p = 0
    p, q = np.array([0.3, 0.3, 0.0, 0.4, 0.0]), np.array([0.5, 0.3, 0.2])
    subsets = [[0, 1], [1, 0], [2, 4]]
    # Execute
    with pytest.warns(MaskedSinkhornWarning, match="did not converge"):
        res = masked_sinkhorn(p, q, subsets, max_iter=50)
    # Assert: by symmetry users 0, 1 get 0.4 each; the dead subset spreads 0.2 over users 2, 4
    assert not res.converged and res.infeasible_mass == pytest.approx(0.4)
    np.testing.assert_allclose(res.weights[2], [0.5, 0.5])
    np.testing.assert_allclose(res.p_hat, [0.4, 0.4, 0.1, 0.0, 0.1], atol=1e-12)
    assert res.row_error == pytest.approx(0.8, abs=1e-12)
    assert all(np.all(np.isfinite(w)) for w in res.weights)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_inputs_return_torch_of_same_dtype(dtype: torch.dtype) -> None:
    # Prepare
    p, q, subsets = np.array([0.5, 0.3, 0.2]), np.array([0.6, 0.4]), [[0, 1], [1, 2]]
    ref = masked_sinkhorn(p, q, subsets)
    # Execute
    res = masked_sinkhorn(torch.tensor(p, dtype=dtype), torch.tensor(q, dtype=dtype), subsets)
    # Assert
    arrays = [*res.weights, res.plan, res.p_hat, res.inclusion]
    assert all(isinstance(a, torch.Tensor) and a.dtype == dtype for a in arrays)
    np.testing.assert_allclose(res.plan.numpy(), ref.plan, atol=1e-6)
    assert isinstance(res.row_error, float) and isinstance(res.infeasible_mass, float)


def test_numpy_float32_inputs_return_float32() -> None:
    p, q = np.array([0.5, 0.3, 0.2], dtype=np.float32), np.array([0.6, 0.4], dtype=np.float32)
    res = masked_sinkhorn(p, q, [[0, 1], [1, 2]])
    assert all(a.dtype == np.float32 for a in [*res.weights, res.plan, res.p_hat, res.inclusion])


def test_two_dimensional_subset_array_and_lists_agree() -> None:
    p, q = np.array([0.2, 0.3, 0.5]), np.array([0.3, 0.3, 0.4])
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    a, b = masked_sinkhorn(p, q, pairs), masked_sinkhorn(list(p), list(q), pairs.tolist())
    np.testing.assert_array_equal(a.plan, b.plan)


@pytest.mark.parametrize(
    ("p", "q", "subsets", "match"),
    [
        ([0.5, 0.4], [1.0], [[0, 1]], "p must sum to 1"),
        ([0.5, 0.5], [1.2, -0.2], [[0], [1]], "q must be nonnegative"),
        ([0.5, np.nan], [1.0], [[0, 1]], "p must be finite"),
        ([0.5, 0.5], [1.0], [[0, 2]], r"subsets\[0\] has index 2 outside"),
        ([0.5, 0.5], [1.0], [[-1, 0]], r"subsets\[0\] has index -1 outside"),
        ([0.5, 0.5], [0.5, 0.5], [[0], [1, 1]], r"subsets\[1\] contains user 1 more than once"),
        ([0.5, 0.5], [0.5, 0.5], [[0, 1], []], r"subsets\[1\] is empty"),
        ([0.5, 0.5], [0.5, 0.5], [[0, 1]], r"len\(subsets\) = 1 must equal len\(q\) = 2"),
        ([0.5, 0.5], [1.0], [[0.0, 1.0]], "integer"),
    ],
)
def test_invalid_inputs_raise(
    p: list[float], q: list[float], subsets: list[list[int]], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        masked_sinkhorn(np.array(p), np.array(q), subsets)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"kappa": 1.5}, "kappa"),
        ({"kappa": -0.1}, "kappa"),
        ({"tol": -1.0}, "tol"),
        ({"max_iter": -1}, "max_iter"),
    ],
)
def test_invalid_options_raise(options: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        masked_sinkhorn(np.array([0.5, 0.5]), np.array([1.0]), [[0, 1]], **options)  # type: ignore[arg-type]
