from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from fedot.learning.flow import (
    PotentialCoupling,
    PotentialMLP,
    c_transform,
    quadratic_cost,
    semidual_gradient,
    semidual_objective,
    train_potential,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


class _Quadratic(nn.Module):
    """f(x) = a/2 |x|^2 + <b, x> with trainable (a, b)."""

    def __init__(self, a: float, b: list[float]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        return 0.5 * self.a * x.pow(2).sum(1) + x @ self.b


def test_quadratic_cost_by_hand() -> None:
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x1 = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
    assert torch.equal(quadratic_cost(x0, x1), torch.tensor([12.5, 0.5]))


def test_zero_potential_picks_nearest_candidate_then_contracts_to_x1() -> None:
    # f = 0: the objective is |x0 - x1|^2 / 2, so k* is the nearest candidate and every GD step
    # multiplies the residual x0 - x1 by (1 - eta)
    zero = _Quadratic(0.0, [0.0, 0.0])
    x1 = torch.tensor([[0.5, -0.2], [2.0, 1.0], [-1.0, 0.3]])
    k, steps, eta = 64, 3, 0.25
    res = c_transform(zero, x1, candidates=k, refine_steps=steps, step_size=eta, generator=_gen(1))
    pool = torch.randn(k, 2, generator=_gen(1))
    nearest = torch.cdist(x1, pool).argmin(1)
    assert torch.equal(res.argmin_index, nearest)
    expected = x1 + (1 - eta) ** steps * (pool[nearest] - x1)
    assert torch.allclose(res.x0_star, expected, atol=1e-6)
    assert torch.allclose(res.value, quadratic_cost(expected, x1), atol=1e-6)
    assert not res.x0_star.requires_grad and not res.value.requires_grad


def test_no_refinement_returns_the_best_candidate() -> None:
    f = _Quadratic(0.3, [1.0, -0.5])
    x1 = torch.randn(5, 2, generator=_gen(0))
    res = c_transform(f, x1, candidates=32, refine_steps=0, step_size=0.1, generator=_gen(2))
    pool = torch.randn(32, 2, generator=_gen(2))
    with torch.no_grad():
        scores = 0.5 * torch.cdist(x1, pool) ** 2 - f(pool)[None, :]
    assert torch.equal(res.argmin_index, scores.argmin(1))
    assert torch.equal(res.x0_star, pool[scores.argmin(1)])


def test_c_transform_of_a_quadratic_potential_converges_to_the_closed_form() -> None:
    # f(x) = a/2 |x|^2 + <b, x>  =>  argmin_x0 |x0 - x1|^2 / 2 - f(x0) = (x1 + b) / (1 - a)
    a, b = 0.5, torch.tensor([1.0, -2.0])
    f = _Quadratic(a, b.tolist())
    x1 = torch.randn(6, 2, generator=_gen(3))
    res = c_transform(f, x1, candidates=16, refine_steps=100, step_size=0.5, generator=_gen(4))
    star = (x1 + b) / (1 - a)
    assert torch.allclose(res.x0_star, star, atol=1e-5)
    with torch.no_grad():
        closed = quadratic_cost(star, x1) - f(star)
    assert torch.allclose(res.value, closed, atol=1e-5)
    # refinement never does worse than the best candidate (monotone best-iterate selection)
    raw = c_transform(f, x1, candidates=16, refine_steps=0, step_size=0.5, generator=_gen(4))
    assert bool((res.value <= raw.value + 1e-7).all())


def test_c_transform_leaves_potential_gradients_alone_and_works_under_no_grad() -> None:
    f = PotentialMLP(2, hidden=8, layers=1, seed=0)
    x1 = torch.randn(4, 2, generator=_gen(0))
    with torch.no_grad():
        res = c_transform(f, x1, candidates=8, refine_steps=2, step_size=0.1, generator=_gen(1))
    assert res.x0_star.shape == x1.shape and res.value.shape == (4,)
    assert all(p.grad is None for p in f.parameters())


def test_c_transform_rejects_bad_settings() -> None:
    f = _Quadratic(0.0, [0.0, 0.0])
    x1 = torch.zeros(2, 2)
    with pytest.raises(ValueError):
        c_transform(f, x1, candidates=0, refine_steps=1, step_size=0.1, generator=_gen(0))
    with pytest.raises(ValueError):
        c_transform(f, x1, candidates=4, refine_steps=1, step_size=0.0, generator=_gen(0))
    with pytest.raises(FloatingPointError):
        c_transform(
            _Quadratic(float("nan"), [0.0, 0.0]),
            x1,
            candidates=4,
            refine_steps=1,
            step_size=0.1,
            generator=_gen(0),
        )


def test_semidual_gradient_follows_the_envelope_theorem() -> None:
    f = _Quadratic(0.2, [0.5, 0.0])
    x0 = torch.randn(7, 2, generator=_gen(0))
    x1 = torch.randn(9, 2, generator=_gen(1)) + 2
    res = semidual_objective(f, x0, x1, candidates=32, refine_steps=3, step_size=0.1, generator=_gen(2))
    grads = semidual_gradient(f, x0, x1, candidates=32, refine_steps=3, step_size=0.1, generator=_gen(2))
    # dJ/da = mean |x0|^2/2 - mean |x0*|^2/2 ; dJ/db = mean x0 - mean x0*
    star = res.x0_star
    assert float(grads["a"]) == pytest.approx(
        float(0.5 * (x0.pow(2).sum(1).mean() - star.pow(2).sum(1).mean())), rel=1e-5
    )
    assert torch.allclose(grads["b"], x0.mean(0) - star.mean(0), atol=1e-6)
    with torch.no_grad():
        expected = f(x0).mean() + (quadratic_cost(star, x1) - f(star)).mean()
    assert float(res.objective.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert torch.allclose(res.ctransform_value.mean(), expected - f(x0).mean().detach(), atol=1e-5)


def test_got_on_1d_gaussians_recovers_w2_and_the_monge_map() -> None:
    # q0 = N(0, 1), q1 = N(m, s^2): W2^2 / 2 = (m^2 + (1 - s)^2) / 2 and the c-transform map
    # x1 -> x0* inverts the Monge map x0 -> m + s x0, i.e. x0* = (x1 - m) / s
    m, s = 2.0, 0.5
    half_w2sq = (m**2 + (1 - s) ** 2) / 2
    data = m + s * torch.randn(2000, 1, generator=_gen(0))
    pot = PotentialMLP(1, hidden=32, layers=2, seed=0)
    gen = _gen(10)
    settings = {
        "batch_size": 256,
        "candidates": 256,
        "refine_steps": 5,
        "step_size": 0.1,
        "generator": gen,
    }
    # a step-wise decaying learning rate: one call per phase (each call re-creates Adam)
    phases = [
        train_potential(pot, data, steps=n, lr=lr, **settings)
        for n, lr in ((250, 1e-2), (150, 2e-3), (200, 5e-4))
    ]
    assert [r.steps for r in phases] == [250, 150, 200] and len(phases[1].objectives) == 150
    assert phases[-1].objective > phases[0].objectives[0]

    ge = _gen(2)
    x0, x1 = torch.randn(4000, 1, generator=ge), m + s * torch.randn(4000, 1, generator=ge)
    res = semidual_objective(pot, x0, x1, candidates=1024, refine_steps=10, step_size=0.1, generator=ge)
    assert float(res.objective.detach()) == pytest.approx(half_w2sq, rel=0.1)
    # the pulled-back target is close to the source N(0, 1)
    assert abs(float(res.x0_star.mean())) < 0.1 and abs(float(res.x0_star.std()) - 1) < 0.1

    grid = torch.linspace(m - 2 * s, m + 2 * s, 101)[:, None]
    pairs = PotentialCoupling(pot, candidates=1024, refine_steps=10, step_size=0.1).pair(None, grid, ge)
    assert torch.equal(pairs.x1, grid)
    assert float((pairs.x0 - (grid - m) / s).abs().mean()) < 0.1


def test_potential_coupling_ignores_x0_and_is_generator_deterministic() -> None:
    pot = PotentialMLP(2, hidden=16, layers=2, seed=1)
    coupling = PotentialCoupling(pot, candidates=32, refine_steps=2, step_size=0.1)
    x1 = torch.randn(10, 2, generator=_gen(0))
    a = coupling.pair(torch.zeros(10, 2), x1, _gen(5))
    b = coupling.pair(torch.ones(3, 2), x1, _gen(5))
    c = coupling.pair(None, x1, _gen(6))
    assert torch.equal(a.x0, b.x0) and not torch.equal(a.x0, c.x0)
    assert a.x0.shape == x1.shape and a.x1 is x1
    assert a.plan_cost == pytest.approx(float((a.x0 - x1).pow(2).sum(1).mean()))
    with pytest.raises(ValueError, match="Generator"):
        coupling.pair(None, x1, None)
