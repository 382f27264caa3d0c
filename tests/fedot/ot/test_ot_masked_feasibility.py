"""Feasibility of masked transport: max flow, brute-force Hall check, inclusion probabilities."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from fedot.ot import hall_violations, inclusion_probabilities, masked_feasibility, masked_sinkhorn


def _random_instance(seed: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Small random instance; every other seed has p built from a plan on the mask (feasible)."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 8)), int(rng.integers(1, 8))
    subsets = [rng.choice(n, int(rng.integers(1, n + 1)), replace=False) for _ in range(m)]
    q = rng.dirichlet(np.ones(m))
    if seed % 2 == 0:
        p = np.zeros(n)
        for j, members in enumerate(subsets):
            np.add.at(p, members, q[j] * rng.dirichlet(np.ones(members.size)))
    else:
        p = rng.dirichlet(np.full(n, 0.7))
    return p / p.sum(), q, subsets


def _naive_hall(
    p: np.ndarray, q: np.ndarray, subsets: list[np.ndarray], tol: float
) -> list[tuple[int, ...]]:
    found = []
    for size in range(1, p.size + 1):
        for users in itertools.combinations(range(p.size), size):
            hit = [j for j, members in enumerate(subsets) if set(members.tolist()) & set(users)]
            if p[list(users)].sum() > q[hit].sum() + tol:
                found.append(users)
    return sorted(found, key=lambda users: sum(1 << i for i in users))


def _lp_max_flow(p: np.ndarray, q: np.ndarray, subsets: list[np.ndarray]) -> float:
    rows = np.concatenate(subsets)
    cols = np.repeat(np.arange(len(subsets)), [s.size for s in subsets])
    a_ub = np.zeros((p.size + q.size, rows.size))
    a_ub[rows, np.arange(rows.size)] = 1.0
    a_ub[p.size + cols, np.arange(rows.size)] = 1.0
    res = linprog(-np.ones(rows.size), A_ub=a_ub, b_ub=np.concatenate((p, q)), method="highs")
    return float(-res.fun)


def _deficiency(p: np.ndarray, q: np.ndarray, subsets: list[np.ndarray], users: tuple) -> float:
    touched = [j for j, s in enumerate(subsets) if set(np.asarray(s).tolist()) & set(users)]
    return float(p[list(users)].sum() - q[touched].sum())


def test_hand_computed_max_flow() -> None:
    # Prepare: subset 0 = {0, 1} can absorb 0.5 of user 0's 0.7; users 1, 2 fit into subset 1
    p, q, subsets = np.array([0.7, 0.2, 0.1]), np.array([0.5, 0.5]), [[0, 1], [1, 2]]
    # Execute
    res = masked_feasibility(p, q, subsets)
    # Assert
    assert res.feasible is False
    assert res.matchable_mass == pytest.approx(0.8, abs=1e-12)
    assert res.unmatched_mass == pytest.approx(0.2, abs=1e-12)
    assert res.infeasible_mass == pytest.approx(0.7)
    np.testing.assert_allclose(res.inclusion, [0.5, 1.0, 0.5])
    assert hall_violations(p, q, subsets) == [(0,)]
    assert res.hall_violator == (0,) and res.hall_deficiency == pytest.approx(0.2, abs=1e-12)


def test_hall_lower_bound_shows_up_through_the_complement() -> None:
    # Subset 0 = {0} needs q_0 = 0.8 of user 0, who has p_0 = 0.5: user 1 (0.5 > pi_1 = 0.2) is violated
    p, q, subsets = np.array([0.5, 0.5]), np.array([0.8, 0.2]), [[0], [0, 1]]
    assert hall_violations(p, q, subsets) == [(1,)]
    assert masked_feasibility(p, q, subsets).matchable_mass == pytest.approx(0.7, abs=1e-12)


def test_feasibility_agrees_with_hall_and_lp_on_random_instances() -> None:
    # Prepare
    outcomes = []
    # Execute / Assert
    for seed in range(240):
        p, q, subsets = _random_instance(seed)
        res = masked_feasibility(p, q, subsets)
        violations = hall_violations(p, q, subsets)
        assert res.feasible == (violations == []), seed
        assert violations == _naive_hall(p, q, subsets, 1e-12), seed
        if not res.feasible:  # the min-cut set is a worst violator: deficiency = unmatched mass
            assert res.hall_violator in violations, seed
            assert res.hall_deficiency == pytest.approx(res.unmatched_mass, abs=1e-9), seed
            worst = max(_deficiency(p, q, subsets, users) for users in violations)
            assert res.hall_deficiency * p.sum() == pytest.approx(worst, abs=1e-9), seed
        else:
            assert res.hall_violator == () and res.hall_deficiency == 0.0, seed
        if seed % 4 == 1:
            assert res.matchable_mass == pytest.approx(_lp_max_flow(p, q, subsets), abs=1e-9), seed
        outcomes.append(res.feasible)
    assert 40 <= sum(outcomes) <= len(outcomes) - 40  # both kinds occur


def test_sinkhorn_row_error_is_bounded_by_unmatched_mass() -> None:
    # Any plan with column marginal q has ||T1 - p||_1 >= 2 * unmatched mass
    for seed in range(1, 60, 2):
        p, q, subsets = _random_instance(seed)
        feas = masked_feasibility(p, q, subsets)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = masked_sinkhorn(p, q, subsets, max_iter=300)
        assert res.row_error >= 2 * feas.unmatched_mass - 1e-9, seed
        if not feas.feasible:
            assert not res.converged, seed


def test_large_instance_runs_and_detects_an_unservable_user() -> None:
    # Prepare: N = 1000, M = 1e5 subsets of size 2..10; p built from a plan (feasible)
    rng = np.random.default_rng(0)
    n, m = 1000, 100_000
    sizes = rng.integers(2, 11, m)
    subsets = [rng.choice(n - 1, s, replace=False) for s in sizes]  # user n - 1 is never included
    q = rng.dirichlet(np.ones(m))
    rows = np.concatenate(subsets)
    cols = np.repeat(np.arange(m), sizes)
    p = np.bincount(rows, q[cols] / sizes[cols], minlength=n)
    bad = 0.99 * p + 0.01 * np.eye(n)[n - 1]
    # Execute
    ok, ko = masked_feasibility(p, q, subsets), masked_feasibility(bad, q, subsets)
    # Assert
    assert ok.feasible and ok.unmatched_mass <= 1e-10
    assert not ko.feasible and ko.unmatched_mass == pytest.approx(0.01, abs=1e-9)
    assert n - 1 in ko.hall_violator and ko.hall_deficiency == pytest.approx(0.01, abs=1e-9)
    assert ko.infeasible_mass == pytest.approx(0.01)


def test_hall_violations_rejects_large_n() -> None:
    with pytest.raises(ValueError, match="exceeds 16"):
        hall_violations(np.full(17, 1 / 17), np.array([1.0]), [np.arange(17)])


def test_inclusion_probabilities_values_and_backend() -> None:
    q = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float32)
    pi = inclusion_probabilities(q, [[0, 2], [2], [1, 2, 3]], num_users=5)
    assert isinstance(pi, torch.Tensor) and pi.dtype == torch.float32
    np.testing.assert_allclose(pi.numpy(), [0.2, 0.3, 1.0, 0.3, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="outside"):
        inclusion_probabilities([0.5, 0.5], [[0], [5]], num_users=5)


def test_feasibility_validates_inputs() -> None:
    with pytest.raises(ValueError, match="p must sum to 1"):
        masked_feasibility([0.5, 0.6], [1.0], [[0, 1]])
    with pytest.raises(ValueError, match="tol"):
        masked_feasibility([0.5, 0.5], [1.0], [[0, 1]], tol=-1.0)
