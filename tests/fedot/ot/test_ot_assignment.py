"""Transport plans for neuron alignment: hand cases, marginals, exact = Hungarian, Sinkhorn -> exact."""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import pytest
import torch

from fedot.ot.assignment import PlanWarning, pairwise_sq_dists, transport_plan


def random_cost(n: int, m: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, m))


def test_swap_is_found_with_its_diagnostics() -> None:
    # Prepare: matching i -> 1 - i is free, the identity costs 1 per unit
    cost = np.array([[1.0, 0.0], [0.0, 1.0]])
    # Execute
    res = transport_plan(cost)
    # Assert
    np.testing.assert_array_equal(res.plan, [[0.0, 0.5], [0.5, 0.0]])
    assert res.method == "lsa" and res.converged
    assert res.cost == 0.0 and res.marginal_error == 0.0
    assert res.off_identity == 1.0
    assert res.entropy == pytest.approx(math.log(2))
    np.testing.assert_array_equal(res.assignment, [1, 0])


def test_textbook_assignment_problem() -> None:
    # Prepare: scipy's documented example; the optimum 0->1, 1->0, 2->2 costs 1 + 2 + 2 = 5
    cost = np.array([[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]])
    # Execute
    res = transport_plan(cost)
    # Assert
    np.testing.assert_array_equal(res.assignment, [1, 0, 2])
    assert res.cost == pytest.approx(5.0 / 3.0)
    assert res.off_identity == pytest.approx(2.0 / 3.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_square_uniform_equals_emd(seed: int) -> None:
    # Prepare
    cost = random_cost(40, 40, seed)
    # Execute
    lsa = transport_plan(cost, method="lsa")
    emd = transport_plan(cost, method="emd")
    # Assert: same optimal value (Birkhoff-von Neumann), the emd plan is a permutation too
    assert lsa.cost == pytest.approx(emd.cost, rel=1e-12)
    assert emd.cost == pytest.approx(ot.emd2(np.full(40, 1 / 40), np.full(40, 1 / 40), cost), rel=1e-12)
    assert np.count_nonzero(emd.plan > 1e-12) == 40
    np.testing.assert_allclose(lsa.plan.sum(0), 1 / 40)
    np.testing.assert_allclose(lsa.plan.sum(1), 1 / 40)


def test_rectangular_plan_has_the_requested_marginals() -> None:
    # Prepare: 7 model units onto 3 target units (compression)
    cost = random_cost(7, 3, 4)
    # Execute
    res = transport_plan(cost)
    # Assert
    assert res.method == "emd" and res.assignment is None
    np.testing.assert_allclose(res.plan.sum(1), np.full(7, 1 / 7), atol=1e-15)
    np.testing.assert_allclose(res.plan.sum(0), np.full(3, 1 / 3), atol=1e-15)
    assert res.marginal_error < 1e-14
    # off_identity: the diagonal mass against the most it can hold, sum_k min(1/7, 1/3) = 3/7
    diag = float(np.trace(res.plan[:3, :3]))
    assert res.off_identity == pytest.approx(1 - diag / (3 / 7), abs=1e-12)
    assert 0.0 <= res.off_identity <= 1.0


def test_rectangular_off_identity_is_zero_for_a_leading_slice_plan() -> None:
    # Prepare: 4 units onto 2; unit k < 2 is free to stay, every other pair costs 1
    cost = np.ones((4, 2))
    cost[0, 0] = cost[1, 1] = 0.0
    # Execute
    res = transport_plan(cost)
    # Assert: the units 0 and 1 send all their mass (1/4) to their own index: nothing off it
    assert res.plan[0, 0] == pytest.approx(0.25) and res.plan[1, 1] == pytest.approx(0.25)
    assert res.off_identity == pytest.approx(0.0, abs=1e-12)
    # and the reversed order puts every unit's mass elsewhere
    flipped = transport_plan(cost[:, ::-1].copy())
    assert flipped.off_identity == pytest.approx(1.0, abs=1e-12)


def test_non_uniform_marginals_hand_case() -> None:
    # Prepare: a = (1/2, 1/2), b = (1/4, 3/4); staying is free, moving costs 1
    cost = np.array([[0.0, 1.0], [1.0, 0.0]])
    # Execute
    res = transport_plan(cost, [0.5, 0.5], [0.25, 0.75])
    # Assert: unit 0 must send 1/4 to target 1, the rest stays
    np.testing.assert_allclose(res.plan, [[0.25, 0.25], [0.0, 0.5]], atol=1e-15)
    assert res.cost == pytest.approx(0.25)
    assert res.off_identity == pytest.approx(0.25)


def test_sinkhorn_approaches_the_exact_plan_as_reg_shrinks() -> None:
    # Prepare: a noisy cost with a clear optimum (a hidden permutation), as between aligned neurons
    rng = np.random.default_rng(7)
    perm = rng.permutation(30)
    cost = rng.random((30, 30))
    cost[np.arange(30), perm] -= 1.0
    exact = transport_plan(cost)
    # Execute
    gaps, methods = [], []
    for reg in (0.3, 0.1, 0.03, 0.003):
        with warnings.catch_warnings():  # mid-range reg converges slowly to 1e-7; the gap still shrinks
            warnings.simplefilter("ignore", PlanWarning)
            res = transport_plan(cost, method="sinkhorn", reg=reg, tol=1e-7, max_iter=3000)
        gaps.append(float(np.abs(res.plan - exact.plan).sum()))
        methods.append(res.method)
        np.testing.assert_allclose(res.plan.sum(1), 1 / 30, atol=1e-12)
    assert res.converged
    # Assert: L1 distance to the exact plan decreases to ~0; small reg switches to the log domain
    np.testing.assert_array_equal(exact.assignment, perm)
    assert all(b < a for a, b in zip(gaps, gaps[1:], strict=False))
    assert gaps[-1] < 1e-6
    assert methods[0] == "sinkhorn" and methods[-1] == "sinkhorn_log"


def test_large_reg_gives_the_independent_coupling() -> None:
    # Prepare
    cost = random_cost(5, 4, 3)
    # Execute
    res = transport_plan(cost, method="sinkhorn", reg=1e4)
    # Assert: T -> a b^T, entropy -> H(a) + H(b)
    np.testing.assert_allclose(res.plan, np.full((5, 4), 1 / 20), atol=1e-5)
    assert res.entropy == pytest.approx(math.log(5) + math.log(4), abs=1e-6)


def test_sinkhorn_warns_and_reports_non_convergence() -> None:
    # Prepare
    cost = random_cost(20, 20, 1)
    # Execute
    with pytest.warns(PlanWarning, match="Sinkhorn stopped"):
        res = transport_plan(cost, method="sinkhorn", reg=1e-3, max_iter=2)
    # Assert
    assert not res.converged
    assert res.iterations == 2


def test_scaling_domain_underflow_raises() -> None:
    # Prepare: exp(-C / reg) underflows to 0 outside the log domain
    cost = random_cost(6, 6, 2) * 1e3
    # Execute / Assert
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(FloatingPointError, match="log_domain=True"):
            transport_plan(cost, method="sinkhorn", reg=1e-3, log_domain=False, max_iter=50)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cost": np.array([[0.0, np.nan], [1.0, 0.0]])}, "finite"),
        ({"cost": np.zeros((2, 3)), "method": "lsa"}, "square"),
        ({"cost": np.zeros((2, 2)), "method": "foo"}, "unknown method"),
        ({"cost": np.zeros((2, 2)), "method": "sinkhorn", "reg": 0.0}, "reg"),
        ({"cost": np.zeros((2, 2)), "a": [0.3, 0.3]}, "sum to 1"),
        ({"cost": np.zeros((2, 2)), "b": [1.5, -0.5]}, "nonnegative"),
        ({"cost": np.zeros((2, 2)), "a": [1.0]}, "shape"),
        ({"cost": np.zeros(3)}, "2-D"),
    ],
)
def test_bad_input_raises(kwargs: dict, match: str) -> None:
    cost = kwargs.pop("cost")
    with pytest.raises(ValueError, match=match):
        transport_plan(cost, **kwargs)


@pytest.mark.parametrize("method", ["exact", "emd", "sinkhorn"])
def test_torch_float32_in_torch_float32_out(method: str) -> None:
    # Prepare
    cost = torch.tensor(random_cost(6, 6, 5), dtype=torch.float32)
    # Execute
    res = transport_plan(cost, method=method, reg=0.05)
    # Assert
    assert isinstance(res.plan, torch.Tensor)
    assert res.plan.dtype == torch.float32 and res.plan.device == cost.device
    assert torch.allclose(res.plan.sum(1), torch.full((6,), 1 / 6), atol=1e-6)
    if method == "exact":
        assert res.assignment.dtype == torch.int64


def test_pairwise_sq_dists_matches_brute_force_and_is_nonnegative() -> None:
    # Prepare
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    brute = ((x[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    big = torch.randn(50, 200, generator=torch.Generator().manual_seed(0)) * 1e3
    # Execute
    d_np = pairwise_sq_dists(x, y)
    d_t = pairwise_sq_dists(torch.from_numpy(x), torch.from_numpy(y))
    d_self = pairwise_sq_dists(big, big)
    # Assert
    np.testing.assert_allclose(d_np, brute, rtol=1e-12)
    np.testing.assert_allclose(d_t.numpy(), brute, rtol=1e-12)
    assert d_self.min() >= 0
    assert float(d_self.diagonal().max()) <= 1e-6 * float(d_self.max())


def test_pairwise_sq_dists_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match="equal widths"):
        pairwise_sq_dists(np.zeros((2, 3)), np.zeros((2, 4)))
