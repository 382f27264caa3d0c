"""Masked Sinkhorn (FedAVOT weights): unbiasedness, marginals, special cases, infeasibility, kappa."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest

from fedot.ot import MaskedSinkhornWarning, masked_feasibility, masked_sinkhorn


def _random_subsets(rng: np.random.Generator, n: int, m: int) -> list[np.ndarray]:
    return [rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False) for _ in range(m)]


def _plan_marginal(
    rng: np.random.Generator, q: np.ndarray, subsets: list[np.ndarray], n: int
) -> np.ndarray:
    """Row marginal of a random positive plan on the mask with column marginal q (feasible by design)."""
    p = np.zeros(n)
    for j, members in enumerate(subsets):
        w = rng.random(members.size) + 0.05
        np.add.at(p, members, q[j] * w / w.sum())
    return p / p.sum()


def _inclusion(q: np.ndarray, subsets: list[np.ndarray], n: int) -> np.ndarray:
    pi = np.zeros(n)
    for j, members in enumerate(subsets):
        pi[members] += q[j]
    return pi


def _feasible_instance(seed: int, kind: str) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 9))
    if kind == "pairs":
        subsets = [np.array(s) for s in itertools.combinations(range(n), 2)]
    else:
        subsets = _random_subsets(rng, n, int(rng.integers(4, 12)))
        subsets.append(rng.permutation(n))  # every user is covered
    q = rng.dirichlet(np.ones(len(subsets)))
    p = _plan_marginal(rng, q, subsets, n)
    if kind == "pairs":  # pi / 2 is the uniform-averaging marginal of pairs: feasible, so is the mix
        p = 0.5 * p + 0.25 * _inclusion(q, subsets, n)
    return p / p.sum(), q, subsets


@pytest.mark.parametrize("kind", ["pairs", "random"])
@pytest.mark.parametrize("seed", range(4))
def test_unbiased_by_exact_enumeration(seed: int, kind: str) -> None:
    # Prepare
    p, q, subsets = _feasible_instance(seed, kind)
    g = np.random.default_rng(100 + seed).normal(size=(p.size, 5))
    # Execute
    res = masked_sinkhorn(p, q, subsets, tol=1e-12)
    expected_aggregate = sum(q[j] * res.weights[j] @ g[members] for j, members in enumerate(subsets))
    # Assert
    assert res.converged and res.stopped == "converged"
    np.testing.assert_allclose(expected_aggregate, p @ g, rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_columns_are_distributions_and_plan_is_consistent(seed: int) -> None:
    # Prepare
    p, q, subsets = _feasible_instance(seed, "random")
    rows = np.concatenate(subsets)
    cols = np.repeat(np.arange(len(subsets)), [s.size for s in subsets])
    # Execute
    res = masked_sinkhorn(p, q, subsets)
    flat = np.concatenate(res.weights)
    # Assert
    assert [w.shape for w in res.weights] == [s.shape for s in subsets]
    assert np.all(flat >= 0)
    np.testing.assert_allclose([w.sum() for w in res.weights], 1.0, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.bincount(cols, res.plan), q, rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.plan, q[cols] * flat, rtol=0, atol=1e-15)
    np.testing.assert_allclose(res.p_hat, np.bincount(rows, res.plan, minlength=p.size), atol=1e-15)
    np.testing.assert_allclose(res.inclusion, _inclusion(q, subsets, p.size), atol=1e-15)
    assert res.row_error <= 1e-10 and res.col_error <= 1e-10
    assert res.row_error == pytest.approx(np.abs(res.p_hat - p).sum(), abs=1e-15)


def test_point_mass_on_full_set_returns_p() -> None:
    # Prepare: the full set carries all the probability; the other subsets have q = 0
    p = np.random.default_rng(0).dirichlet(np.ones(7))
    subsets = [np.array([5, 1, 3]), np.arange(7)[::-1], np.array([2, 4])]
    q = np.array([0.0, 1.0, 0.0])
    # Execute
    res = masked_sinkhorn(p, q, subsets)
    # Assert: the round with everybody weights by p; q = 0 rounds fall back to p restricted to A_j
    np.testing.assert_allclose(res.weights[1], p[::-1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.weights[0], p[[5, 1, 3]] / p[[5, 1, 3]].sum(), atol=1e-15)
    np.testing.assert_allclose(res.weights[2], p[[2, 4]] / p[[2, 4]].sum(), atol=1e-15)
    np.testing.assert_allclose(res.plan[[0, 1, 2, 10, 11]], 0.0, atol=0)
    assert res.converged


@pytest.mark.parametrize("seed", range(3))
def test_surrogate_importance_gives_uniform_averaging(seed: int) -> None:
    # Prepare: p~_i = sum_{j: i in A_j} q_j / |A_j|
    rng = np.random.default_rng(seed)
    subsets = _random_subsets(rng, 8, 10)
    q = rng.dirichlet(np.ones(10))
    p = np.zeros(8)
    for j, members in enumerate(subsets):
        p[members] += q[j] / members.size
    # Execute
    res = masked_sinkhorn(p / p.sum(), q, subsets)
    # Assert
    assert res.converged and res.n_iter <= 1
    for w, members in zip(res.weights, subsets, strict=True):
        np.testing.assert_allclose(w, 1.0 / members.size, rtol=0, atol=1e-13)


def test_infeasible_hand_instance() -> None:
    # Prepare: pi = (0.5, 1, 0.5) < p_0 = 0.7. In the limit user 0 takes all of subset 0 and
    # subset 1 is split 2:1 between users 1 and 2: p_hat = (1/2, 1/3, 1/6), ||p - p_hat||_1 = 0.4.
    p, q, subsets = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.5]), [[0, 1], [1, 2]]
    # Execute
    with pytest.warns(MaskedSinkhornWarning,
                      match=r"leaves 0\.2000 of p unmatched.*user\(s\) \{0\} carry 0\.2000"):
        res = masked_sinkhorn(p, q, subsets, max_iter=2000)
    feas = masked_feasibility(p, q, subsets)
    # Assert
    assert not res.converged and res.stopped == "max_iter" and res.n_iter == 2000
    np.testing.assert_allclose(res.p_hat, [0.5, 1 / 3, 1 / 6], atol=1e-9)
    assert res.row_error == pytest.approx(0.4, abs=1e-9)
    assert res.infeasible_mass == pytest.approx(0.7)
    assert np.all(res.p_hat <= res.inclusion + 1e-9)
    flat = np.concatenate(res.weights)
    assert np.all(np.isfinite(flat)) and np.all(flat >= 0)
    np.testing.assert_allclose([w.sum() for w in res.weights], 1.0, atol=1e-14)
    assert not feas.feasible
    assert feas.matchable_mass == pytest.approx(0.8, abs=1e-12)  # 0.5 (user 0) + 0.2 + 0.1
    assert feas.unmatched_mass == pytest.approx(0.2, abs=1e-12)
    assert res.row_error >= 2 * feas.unmatched_mass - 1e-12


def _naive_uv_scaling(p: np.ndarray, q: np.ndarray, subsets: list[np.ndarray], iters: int) -> bool:
    """Textbook u, v scaling on the dense 0/1 kernel; True if it produced inf/NaN."""
    kernel = np.zeros((p.size, q.size))
    for j, members in enumerate(subsets):
        kernel[members, j] = 1.0
    v = np.ones(q.size)
    with np.errstate(all="ignore"):
        for _ in range(iters):
            u = p / (kernel @ v)
            v = q / (kernel.T @ u)
            if not (np.isfinite(u).all() and np.isfinite(v).all()):
                return True
    return False


@pytest.mark.parametrize(("n", "m", "seed"), [(10, 10, 0), (10, 10, 1), (100, 10, 0), (10, 100, 2)])
def test_fedavot_like_instances_never_return_nan(n: int, m: int, seed: int) -> None:
    # Prepare: performance.md B6 setting; users in no subset are dropped, p = data-size weights
    rng = np.random.default_rng(seed)
    subsets = [rng.choice(n, int(rng.integers(2, max(2, n // 5) + 1)), replace=False) for _ in range(m)]
    covered = np.unique(np.concatenate(subsets))
    subsets = [np.searchsorted(covered, s) for s in subsets]
    p = rng.integers(20, 200, covered.size).astype(float)
    p, q = p / p.sum(), np.full(m, 1.0 / m)
    # Execute
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = masked_sinkhorn(p, q, subsets, max_iter=4000)
    # Assert: naive scaling blows up here, the masked solver does not
    assert _naive_uv_scaling(p, q, subsets, 4000)
    assert all(np.all(np.isfinite(w)) for w in res.weights)
    np.testing.assert_allclose([w.sum() for w in res.weights], 1.0, atol=1e-12)
    warned = any(issubclass(w.category, MaskedSinkhornWarning) for w in caught)
    assert res.converged != warned
    assert np.isfinite(res.row_error) and np.all(np.isfinite(res.p_hat))


def test_underflowing_column_stops_and_falls_back() -> None:
    # Prepare: q_1 = 5e-324 makes T0 = q_1 / 2 underflow to 0 while user 2 (p > 0) lives only there
    p, q, subsets = np.array([0.3, 0.3, 0.4]), np.array([1.0, 5e-324]), [[0, 1], [1, 2]]
    # Execute
    with pytest.warns(MaskedSinkhornWarning) as record:
        res = masked_sinkhorn(p, q, subsets)
    # Assert
    messages = " ".join(str(w.message) for w in record)
    assert res.stopped == "non-finite" and not res.converged and res.n_iter == 0
    assert "last finite iterate" in messages and "uniform" in messages
    np.testing.assert_allclose(res.weights[1], [0.5, 0.5])
    np.testing.assert_allclose(res.weights[0], [0.5, 0.5])
    assert all(np.all(np.isfinite(w)) for w in res.weights)


def test_group_infeasible_warning_leads_with_unmatched_mass_and_names_the_group() -> None:
    # Prepare: every user alone fits (pi = (0.5, 0.5, 0.5) >= p), so the singleton bound nu = 0,
    # but users {0, 1} (p = 0.6) only ever appear in subset 0 (q = 0.5): 0.1 of p is unmatched
    p, q, subsets = np.array([0.3, 0.3, 0.4]), np.array([0.5, 0.5]), [[0, 1], [2]]
    # Execute
    with pytest.warns(MaskedSinkhornWarning) as record:
        res = masked_sinkhorn(p, q, subsets, max_iter=500)
    feas = masked_feasibility(p, q, subsets)
    # Assert
    assert res.infeasible_mass == 0.0 and not res.converged
    message = str(record[0].message)
    assert message.index("unmatched") < message.index("nu =")  # the max-flow figure comes first
    assert "leaves 0.1000 of p unmatched" in message and "user(s) {0, 1}" in message
    assert feas.unmatched_mass == pytest.approx(0.1, abs=1e-12)
    assert feas.hall_violator == (0, 1)
    assert feas.hall_deficiency == pytest.approx(0.1, abs=1e-12)
    assert feas.describe().startswith("max-flow leaves 0.1000 of p unmatched")
