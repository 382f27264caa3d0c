from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from torch import Tensor

from fedot.learning.flow import (
    Coupling,
    CouplingResult,
    EntropicOTCoupling,
    ExactOTCoupling,
    GaussianPath,
    IndependentCoupling,
    LinearPath,
    ProbabilityPath,
    frechet_distance,
    sliced_w2,
    w2_exact,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 2), (4, 1, 8, 8)])
@pytest.mark.parametrize("path", [LinearPath(), GaussianPath(0.0)])
def test_path_endpoints_and_target(shape: tuple[int, ...], path: ProbabilityPath) -> None:
    x0, x1 = _randn(*shape, seed=1), _randn(*shape, seed=2)
    n = shape[0]
    assert isinstance(path, ProbabilityPath)
    assert torch.equal(path.sample(x0, x1, torch.zeros(n)), x0)
    assert torch.allclose(path.sample(x0, x1, torch.ones(n)), x1)
    t = torch.linspace(0, 1, n)
    x_t = path.sample(x0, x1, t)
    assert torch.equal(path.target(x0, x1, t, x_t), x1 - x0)


def test_linear_path_broadcasts_per_sample_time_by_hand() -> None:
    x0 = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    x1 = torch.tensor([[4.0, 8.0], [2.0, 0.0]])
    x_t = LinearPath().sample(x0, x1, torch.tensor([0.25, 0.5]))
    assert torch.equal(x_t, torch.tensor([[1.0, 2.0], [2.0, 2.0]]))
    # (B, 1) and scalar times broadcast the same way
    assert torch.equal(LinearPath().sample(x0, x1, torch.tensor([[0.25], [0.5]])), x_t)
    assert torch.equal(
        LinearPath().sample(x0, x1, torch.tensor(0.5)), torch.tensor([[2.0, 4.0], [2.0, 2.0]])
    )


def test_gaussian_path_noise_has_sigma_scale_and_is_reproducible() -> None:
    x0 = torch.zeros(20000, 2)
    x1 = torch.ones(20000, 2)
    path = GaussianPath(0.3)
    a = path.sample(x0, x1, torch.full((20000,), 0.5), generator=_gen(3))
    b = path.sample(x0, x1, torch.full((20000,), 0.5), generator=_gen(3))
    assert torch.equal(a, b)
    assert abs(float(a.mean()) - 0.5) < 0.01
    assert abs(float(a.std()) - 0.3) < 0.01
    assert torch.equal(path.target(x0, x1, torch.zeros(20000), a), x1 - x0)


def test_gaussian_path_requires_a_generator_and_valid_sigma() -> None:
    with pytest.raises(ValueError, match="Generator"):
        GaussianPath(0.1).sample(torch.zeros(2, 2), torch.ones(2, 2), torch.zeros(2))
    with pytest.raises(ValueError):
        GaussianPath(-1.0)


def test_path_rejects_mismatched_time() -> None:
    with pytest.raises(ValueError):
        LinearPath().sample(torch.zeros(3, 2), torch.ones(3, 2), torch.zeros(2))


# --- couplings -------------------------------------------------------------------------------


def test_independent_coupling_is_identity() -> None:
    x0, x1 = _randn(5, 2, seed=1), _randn(5, 2, seed=2)
    res = IndependentCoupling().pair(x0, x1, None)
    assert isinstance(IndependentCoupling(), Coupling) and isinstance(res, CouplingResult)
    assert res.x0 is x0 and res.x1 is x1
    assert res.plan_cost == pytest.approx(float(((x0 - x1) ** 2).sum(1).mean()))
    with pytest.raises(ValueError, match="equal batch sizes"):
        IndependentCoupling().pair(x0, x1[:3], None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_ot_plan_is_a_permutation_and_optimal(seed: int) -> None:
    b = 6
    x0, x1 = _randn(b, 3, seed=seed), _randn(b, 3, seed=seed + 10) + 1.0
    res = ExactOTCoupling().pair(x0, x1, None)
    scaled = res.info["plan"] * b
    assert np.allclose(scaled, np.round(scaled)) and set(np.unique(np.round(scaled))) <= {0.0, 1.0}
    assert np.allclose(scaled.sum(0), 1) and np.allclose(scaled.sum(1), 1)
    # brute force over all 720 assignments gives the same optimal cost
    cost = ((x0.double()[:, None, :] - x1.double()[None, :, :]) ** 2).sum(-1).numpy()
    best = min(cost[np.arange(b), list(p)].mean() for p in itertools.permutations(range(b)))
    assert res.plan_cost == pytest.approx(best, rel=1e-6)
    assert res.info["ot_cost"] == pytest.approx(best, rel=1e-9)
    # the x0 batch is kept, x1 is a permutation of the input batch
    assert torch.equal(res.x0, x0)
    assert sorted(res.info["assignment"].tolist()) == list(range(b))
    assert torch.equal(res.x1, x1[torch.as_tensor(res.info["assignment"])])


def test_exact_ot_recovers_a_hidden_permutation() -> None:
    x0 = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    perm = torch.tensor([2, 0, 3, 1])
    x1 = x0[perm] + 0.1  # x1[j] is near x0[perm[j]]
    res = ExactOTCoupling().pair(x0, x1, None)
    assert torch.allclose(res.x1, x0 + 0.1)
    assert res.plan_cost == pytest.approx(0.02, rel=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mixture_of_local_plans_costs_at_least_the_pooled_plan(seed: int) -> None:
    # two "clients" with different data: a pooled exact OT is never worse than local OT plans
    g = _gen(seed)
    x1_a = torch.randn(24, 2, generator=g) * 0.3 + torch.tensor([4.0, 0.0])
    x1_b = torch.randn(40, 2, generator=g) * 0.3 + torch.tensor([-4.0, 1.0])
    x0 = torch.randn(64, 2, generator=g)
    x0_a, x0_b = x0[:24], x0[24:]
    lot = ExactOTCoupling()
    local = (24 * lot.pair(x0_a, x1_a, None).plan_cost + 40 * lot.pair(x0_b, x1_b, None).plan_cost) / 64
    pooled = lot.pair(x0, torch.cat([x1_a, x1_b]), None).plan_cost
    assert pooled <= local + 1e-9
    assert pooled < local  # strictly, for heterogeneous clients with arbitrary source halves


def test_exact_ot_unequal_sizes_samples_from_the_plan() -> None:
    x0, x1 = _randn(4, 2, seed=1), _randn(8, 2, seed=2)
    res = ExactOTCoupling().pair(x0, x1, _gen(5))
    again = ExactOTCoupling().pair(x0, x1, _gen(5))
    plan = res.info["plan"]
    assert res.x0.shape == res.x1.shape == (4, 2)
    assert torch.equal(res.x1, again.x1)
    assert all(plan[a, b] > 0 for a, b in enumerate(res.info["assignment"]))
    assert np.allclose(plan.sum(1), 1 / 4) and np.allclose(plan.sum(0), 1 / 8)
    with pytest.raises(ValueError, match="Generator"):
        ExactOTCoupling().pair(x0, x1, None)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_couplings_keep_dtype(dtype: torch.dtype) -> None:
    x0, x1 = _randn(5, 2, seed=1, dtype=dtype), _randn(5, 2, seed=2, dtype=dtype)
    for coupling in (ExactOTCoupling(), EntropicOTCoupling(0.1)):
        res = coupling.pair(x0, x1, _gen(0))
        assert res.x0.dtype == res.x1.dtype == dtype


def test_entropic_with_tiny_reg_pairs_like_exact_ot() -> None:
    g = _gen(7)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0], [3.0, 9.0]])
    x0 = centres + 0.1 * torch.randn(5, 2, generator=g)
    x1 = centres[torch.tensor([3, 4, 0, 1, 2])] + 0.1 * torch.randn(5, 2, generator=g)
    exact = ExactOTCoupling().pair(x0, x1, None)
    ent = EntropicOTCoupling(reg=1e-3).pair(x0, x1, _gen(1))
    assert np.array_equal(ent.info["assignment"], exact.info["assignment"])
    assert torch.equal(ent.x1, exact.x1)
    assert ent.info["marginal_error"] < 1e-6


def test_entropic_sampling_is_generator_deterministic() -> None:
    x0, x1 = _randn(16, 2, seed=1), _randn(16, 2, seed=2)
    coupling = EntropicOTCoupling(reg=0.5)
    a = coupling.pair(x0, x1, _gen(3))
    b = coupling.pair(x0, x1, _gen(3))
    others = [coupling.pair(x0, x1, _gen(s)).info["assignment"] for s in (4, 5, 6)]
    assert np.array_equal(a.info["assignment"], b.info["assignment"])
    assert torch.equal(a.x1, b.x1)
    # with a large reg the plan is diffuse, so other seeds give other pairs
    assert any(not np.array_equal(a.info["assignment"], o) for o in others)


def test_entropic_plan_is_diffuse_for_large_reg() -> None:
    x0, x1 = _randn(8, 2, seed=1), _randn(8, 2, seed=2)
    plan = EntropicOTCoupling(reg=1e3).pair(x0, x1, _gen(0)).info["plan"]
    assert np.allclose(plan, 1 / 64, atol=1e-4)


def test_entropic_warns_when_sinkhorn_stops_early() -> None:
    x0, x1 = _randn(16, 2, seed=1), _randn(16, 2, seed=2) + 3
    with pytest.warns(RuntimeWarning, match="did not converge"):
        EntropicOTCoupling(reg=1e-3, num_iter_max=2).pair(x0, x1, _gen(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        EntropicOTCoupling(reg=0.1).pair(x0, x1, _gen(0))


def test_ot_couplings_reject_non_finite_inputs() -> None:
    x0 = _randn(4, 2, seed=1)
    x1 = x0.clone()
    x1[0, 0] = float("nan")
    with pytest.raises(FloatingPointError):
        ExactOTCoupling().pair(x0, x1, None)
    with pytest.raises(ValueError):
        EntropicOTCoupling(reg=0.0)


# --- OT metrics ------------------------------------------------------------------------------


def test_w2_exact_of_identical_and_shifted_sets() -> None:
    x = _randn(200, 3, seed=4)
    shift = torch.tensor([1.0, -2.0, 2.0])
    assert w2_exact(x, x) == 0.0
    assert w2_exact(x, x + shift) == pytest.approx(3.0, rel=1e-5)
    assert w2_exact(x.numpy(), (x + shift).numpy()) == pytest.approx(3.0, rel=1e-5)


def test_w2_exact_hand_computed_two_points() -> None:
    # {0, 1} vs {3, 5} on the line: monotone matching, W2^2 = (9 + 16) / 2
    x = np.array([[0.0], [1.0]])
    y = np.array([[5.0], [3.0]])
    assert w2_exact(x, y) == pytest.approx(np.sqrt(12.5))


def test_sliced_w2_properties() -> None:
    x = _randn(300, 2, seed=5)
    assert sliced_w2(x, x) == 0.0
    # a shift s projects to <theta, s>; E <theta, s>^2 = |s|^2 / d for uniform unit theta in 2-D
    shifted = sliced_w2(x, x + torch.tensor([2.0, 0.0]), projections=4000)
    assert shifted == pytest.approx(np.sqrt(4.0 / 2), rel=0.03)
    assert sliced_w2(x, x + 1, seed=3) == sliced_w2(x, x + 1, seed=3)
    # unequal sizes: quantile matching of the same distribution stays small
    y = _randn(1000, 2, seed=6)
    assert sliced_w2(x, y) < 0.15
    assert sliced_w2(x, y + 3) > 2.0


def test_frechet_distance_zero_and_closed_form() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 3))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)

    def exact_moments(n: int, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
        # samples whose sample mean and unbiased covariance are exactly (mean, diag(var))
        z = rng.standard_normal((n, len(mean)))
        z -= z.mean(0)
        chol = np.linalg.cholesky(np.cov(z, rowvar=False))
        z = z @ np.linalg.inv(chol).T
        return mean + z * np.sqrt(var)

    mu1, var1 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 4.0, 0.25])
    mu2, var2 = np.array([1.0, 1.0, 0.0]), np.array([4.0, 1.0, 1.0])
    f1, f2 = exact_moments(400, mu1, var1), exact_moments(300, mu2, var2)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(
        (np.sqrt(var1) - np.sqrt(var2)) ** 2
    )  # = 5 + 1 + 1 + 0.25
    assert expected == pytest.approx(7.25)
    assert frechet_distance(f1, f2) == pytest.approx(expected, rel=1e-6)
