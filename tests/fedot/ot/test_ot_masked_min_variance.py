"""Minimum-variance FedAVOT plan: unbiased like IPFP, nonnegative, columns sum to 1, variance ≤ IPFP."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import scipy.optimize

from fedot.availability import KofN, power_weights
from fedot.ot import (
    MaskedSinkhornWarning,
    masked_min_variance,
    masked_sinkhorn,
    plan_second_moment,
)


def _random_feasible(seed: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """p is the row marginal of a random positive plan with column marginal q: feasible by design."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    m = int(rng.integers(n, 4 * n))
    subsets = [rng.choice(n, size=int(rng.integers(2, max(3, n // 2))), replace=False)
               for _ in range(m)]
    subsets.append(rng.permutation(n))
    q = rng.dirichlet(np.ones(len(subsets)))
    p = np.zeros(n)
    for j, members in enumerate(subsets):
        w = rng.random(members.size) + 0.05
        np.add.at(p, members, q[j] * w / w.sum())
    return p / p.sum(), q, subsets


def _expected_weights(q: np.ndarray, subsets: list[np.ndarray], weights: list[np.ndarray], n: int):
    e = np.zeros(n)
    for qj, members, w in zip(q, subsets, weights, strict=True):
        np.add.at(e, members, qj * np.asarray(w))
    return e


@pytest.mark.parametrize("seed", range(12))
def test_min_variance_is_unbiased_nonnegative_and_beats_ipfp(seed: int) -> None:
    p, q, subsets = _random_feasible(seed)
    mv = masked_min_variance(p, q, subsets, tol=1e-12)
    ipfp = masked_sinkhorn(p, q, subsets, tol=1e-12)
    assert mv.converged and mv.method == "min-variance" and ipfp.method == "ipfp"
    # unbiased: E_j[sum_i Y_ij g_i] = sum_i p_i g_i, checked on the weights themselves
    np.testing.assert_allclose(_expected_weights(q, subsets, mv.weights, p.size), p, rtol=0, atol=1e-8)
    for w in mv.weights:
        assert np.all(np.asarray(w) >= 0.0)
        assert abs(float(np.sum(w)) - 1.0) < 1e-12
    assert mv.row_error <= 1e-10 and mv.col_error <= 1e-10
    # the variance proxy: equal to the one recomputed from the weights, at most IPFP's
    assert mv.second_moment == pytest.approx(plan_second_moment(q, subsets, mv.weights), rel=1e-12)
    assert mv.second_moment <= ipfp.second_moment + 1e-12


@pytest.mark.parametrize("seed", range(4))
def test_min_variance_beats_every_lp_vertex_plan(seed: int) -> None:
    # Independent competitors: vertex plans of the same marginals from scipy's LP with random costs.
    p, q, subsets = _random_feasible(100 + seed)
    rows = np.concatenate(subsets)
    cols = np.repeat(np.arange(len(subsets)), [len(s) for s in subsets])
    a_eq = np.zeros((p.size + q.size, rows.size))
    a_eq[rows, np.arange(rows.size)] = 1.0
    a_eq[p.size + cols, np.arange(rows.size)] = 1.0
    mv = masked_min_variance(p, q, subsets, tol=1e-12)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        lp = scipy.optimize.linprog(rng.random(rows.size), A_eq=a_eq, b_eq=np.concatenate([p, q]),
                                    bounds=(0, None), method="highs")
        assert lp.status == 0
        assert mv.second_moment <= float((lp.x ** 2 / q[cols]).sum()) + 1e-10


def test_min_variance_matches_a_generic_qp_solver_on_a_hand_instance() -> None:
    # 3 users, subsets {0,1}, {1,2}, {0,1,2}; solved again by SLSQP on the same QP (a different
    # algorithm): the optimal second moments agree and so do the plans.
    p = np.array([0.5, 0.3, 0.2])
    q = np.array([0.3, 0.3, 0.4])
    subsets = [np.array([0, 1]), np.array([1, 2]), np.array([0, 1, 2])]
    rows = np.concatenate(subsets)
    cols = np.repeat(np.arange(3), [2, 2, 3])
    cons = [{"type": "eq", "fun": lambda t, i=i: t[rows == i].sum() - p[i]} for i in range(3)]
    # one column constraint is implied by the others (both marginals sum to 1)
    cons += [{"type": "eq", "fun": lambda t, j=j: t[cols == j].sum() - q[j]} for j in range(2)]
    ref = scipy.optimize.minimize(lambda t: (t ** 2 / q[cols]).sum(), np.full(7, 1 / 7),
                                  jac=lambda t: 2 * t / q[cols], constraints=cons,
                                  bounds=[(0, None)] * 7, method="SLSQP",
                                  options={"ftol": 1e-14, "maxiter": 500})
    assert ref.success
    mv = masked_min_variance(p, q, subsets, tol=1e-13)
    np.testing.assert_allclose(np.asarray(mv.plan), ref.x, atol=1e-7)
    assert mv.second_moment == pytest.approx(ref.fun, abs=1e-9)
    # by hand: user 0 only in A_0, A_2, user 2 only in A_1, A_2; the optimum is unique
    assert mv.second_moment <= masked_sinkhorn(p, q, subsets, tol=1e-13).second_moment


def test_uniform_averaging_when_it_is_unbiased() -> None:
    # K-of-N uniform with uniform p: equal weights 1/K are unbiased and have the least second moment
    # (Cauchy-Schwarz), so both plans return them: second moment = 1/K.
    n, k = 6, 3
    subsets = [np.array(s) for s in itertools.combinations(range(n), k)]
    q = np.full(len(subsets), 1 / len(subsets))
    mv = masked_min_variance(np.full(n, 1 / n), q, subsets)
    for w in mv.weights:
        np.testing.assert_allclose(w, 1 / k, atol=1e-12)
    assert mv.second_moment == pytest.approx(1 / k, abs=1e-12)


def test_paper_settings_feasible_lower_variance() -> None:
    # N = 100, K = 2 uniform availability, p ∝ (N+1-i)^0.8: the fedavot experiments' feasible setting
    n = 100
    p = power_weights(n, 0.8, increasing=False)
    dist = KofN(power_weights(n, 0.0, increasing=True), 2).distribution(np.random.default_rng(0))
    mv = masked_min_variance(p, dist.probs, dist.subsets)
    ipfp = masked_sinkhorn(p, dist.probs, dist.subsets)
    assert mv.converged and mv.n_iter < 50
    assert 0.5 <= mv.second_moment < ipfp.second_moment <= 1.0


def test_infeasible_uses_ipfp_p_hat_and_says_so() -> None:
    # user 0 carries 0.6 of p but appears only in a subset of probability 0.2: unmatchable
    p = np.array([0.6, 0.2, 0.2])
    q = np.array([0.2, 0.8])
    subsets = [np.array([0, 1]), np.array([1, 2])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MaskedSinkhornWarning)
        ipfp = masked_sinkhorn(p, q, subsets)
    with pytest.warns(MaskedSinkhornWarning, match="unmatched.*p_hat"):
        mv = masked_min_variance(p, q, subsets)
    np.testing.assert_allclose(np.asarray(mv.p_hat), np.asarray(ipfp.p_hat), atol=1e-9)
    assert mv.row_error == pytest.approx(ipfp.row_error, abs=1e-9)
    assert mv.second_moment <= ipfp.second_moment + 1e-12
    for w in mv.weights:
        assert np.all(np.asarray(w) >= 0) and abs(float(np.sum(w)) - 1) < 1e-12


def test_kappa_below_one_targets_ipfp_marginal() -> None:
    p, q, subsets = _random_feasible(7)
    ipfp = masked_sinkhorn(p, q, subsets, kappa=0.5)
    with pytest.warns(MaskedSinkhornWarning, match="kappa"):
        mv = masked_min_variance(p, q, subsets, kappa=0.5)
    np.testing.assert_allclose(np.asarray(mv.p_hat), np.asarray(ipfp.p_hat), atol=1e-9)


def test_dtype_and_bad_options() -> None:
    p, q, subsets = _random_feasible(3)
    res = masked_min_variance(p.astype(np.float32), q.astype(np.float32), subsets, tol=1e-6)
    assert np.asarray(res.plan).dtype == np.float32 and res.weights[0].dtype == np.float32
    with pytest.raises(ValueError, match="tol"):
        masked_min_variance(p, q, subsets, tol=-1.0)
    with pytest.raises(ValueError, match="max_iter"):
        masked_min_variance(p, q, subsets, max_iter=-1)
    with pytest.raises(ValueError, match="weights of shape"):
        plan_second_moment(q, subsets, [np.ones(1)] * len(subsets))
