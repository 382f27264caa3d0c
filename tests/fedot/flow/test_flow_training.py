from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from fedot.data.toy2d import sample_toy2d
from fedot.learning.flow import (
    ExactOTCoupling,
    FlowTrainResult,
    GaussianPath,
    IndependentCoupling,
    LinearPath,
    PotentialConv8,
    PotentialCoupling,
    PotentialMLP,
    VelocityConv8,
    VelocityMLP,
    flow_matching_gradient,
    flow_matching_loss,
    integrate,
    path_length_ratio,
    straightness,
    train_flow,
    w2_exact,
)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _toy(n: int, seed: int = 0) -> Tensor:
    return torch.from_numpy(sample_toy2d("8gaussians", n, np.random.default_rng(seed))[0])


# --- models ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda s: VelocityMLP(2, hidden=16, layers=2, seed=s),
        lambda s: VelocityConv8(channels=8, seed=s),
        lambda s: PotentialMLP(3, hidden=16, seed=s),
        lambda s: PotentialConv8(channels=8, seed=s),
    ],
)
def test_models_are_seeded_without_touching_the_global_rng(build) -> None:  # noqa: ANN001
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = build(0), build(0), build(1)
    assert torch.equal(torch.rand(3), expected)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_velocity_models_shapes_and_time_formats() -> None:
    x = torch.randn(5, 2, generator=_gen(0))
    mlp = VelocityMLP(2, hidden=16, layers=2, time_embed_dim=7, seed=0)
    out = mlp(torch.full((5,), 0.3), x)
    assert out.shape == (5, 2)
    assert torch.allclose(mlp(0.3, x), out) and torch.allclose(mlp(torch.full((5, 1), 0.3), x), out)
    assert not torch.allclose(mlp(0.7, x), out)
    conv = VelocityConv8(channels=8, seed=0)
    img = torch.rand(4, 1, 8, 8, generator=_gen(1)) * 2 - 1
    assert torch.equal(
        conv(torch.rand(4, generator=_gen(2)), img), torch.zeros(4, 1, 8, 8)
    )  # zero-init head
    with pytest.raises(ValueError):
        conv(0.5, torch.zeros(4, 8, 8))


def test_potentials_return_one_scalar_per_sample() -> None:
    assert PotentialMLP(2, hidden=8, seed=0)(torch.zeros(6, 2)).shape == (6,)
    assert PotentialConv8(channels=4, seed=0)(torch.zeros(3, 1, 8, 8)).shape == (3,)


# --- loss and gradients ----------------------------------------------------------------------


class _Affine(nn.Module):
    """v(t, x) = W x + t c (a model whose loss can be computed by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, 2))
        self.c = nn.Parameter(torch.tensor([1.0, -1.0]))

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        return x @ self.w.T + t[:, None] * self.c


def test_flow_matching_loss_by_hand() -> None:
    # v = t c with W = 0; LinearPath + identity pairing: loss = mean_b |t_b c - (x1_b - x0_b)|^2
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    x1 = torch.tensor([[1.0, 0.0], [1.0, 3.0]])
    res = flow_matching_loss(
        _Affine(), x0, x1, path=LinearPath(), coupling=IndependentCoupling(), generator=_gen(0)
    )
    t = torch.rand(2, generator=_gen(0))
    u = x1 - x0
    expected = ((t[:, None] * torch.tensor([1.0, -1.0]) - u) ** 2).sum(1).mean()
    assert float(res.loss.detach()) == pytest.approx(float(expected), rel=1e-6)
    assert res.plan_cost == pytest.approx(2.5)  # (1 + 4) / 2
    assert res.loss.requires_grad


def test_aggregated_client_gradients_equal_the_pooled_weighted_gradient() -> None:
    # FedSGD: sum_i lambda_i grad L_i (one call per client) == grad of sum_i lambda_i L_i computed
    # in one forward pass over the pooled, stratified batch with the same pairs, times and noise
    model = VelocityMLP(2, hidden=16, layers=2, seed=3)
    path, coupling = GaussianPath(0.1), ExactOTCoupling()
    sizes, lambdas = (8, 12, 5), torch.tensor([0.5, 0.3, 0.2])
    clients = [(torch.randn(b, 2, generator=_gen(i)), _toy(b, seed=i)) for i, b in enumerate(sizes)]
    grads = [
        flow_matching_gradient(model, x0, x1, path=path, coupling=coupling, generator=_gen(100 + i))
        for i, (x0, x1) in enumerate(clients)
    ]
    aggregated = {k: sum(lam * g[k] for lam, g in zip(lambdas, grads, strict=True)) for k in grads[0]}

    # replay the documented draw order: coupling, t ~ U[0, 1], path noise
    xs, ts, us, ws = [], [], [], []
    for i, (x0, x1) in enumerate(clients):
        g = _gen(100 + i)
        pair = coupling.pair(x0, x1, g)
        t = torch.rand(len(x1), generator=g)
        xs.append(
            (1 - t[:, None]) * pair.x0
            + t[:, None] * pair.x1
            + 0.1 * torch.randn(len(x1), 2, generator=g)
        )
        ts.append(t)
        us.append(pair.x1 - pair.x0)
        ws.append(torch.full((len(x1),), float(lambdas[i]) / len(x1)))
    pooled = copy.deepcopy(model)
    v = pooled(torch.cat(ts), torch.cat(xs))
    loss = (torch.cat(ws) * ((v - torch.cat(us)) ** 2).sum(1)).sum()
    loss.backward()
    for name, p in pooled.named_parameters():
        assert torch.allclose(aggregated[name], p.grad, atol=1e-6, rtol=1e-5), name

    # one SGD step from either side lands on the same weights
    lr = 0.05
    torch.optim.SGD(pooled.parameters(), lr=lr).step()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p -= lr * aggregated[name]
    for (name, p), q in zip(model.named_parameters(), pooled.parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-7), name
    assert all(p.grad is None for p in model.parameters())  # flow_matching_gradient left .grad alone


# --- training loop ---------------------------------------------------------------------------


def test_train_flow_is_deterministic_and_leaves_global_rng_alone() -> None:
    data = _toy(256)
    states, results = [], []
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    for seed in (7, 7, 8):
        model = VelocityMLP(2, hidden=16, layers=2, seed=0)
        results.append(
            train_flow(
                model,
                data,
                steps=15,
                batch_size=32,
                lr=1e-2,
                coupling=ExactOTCoupling(),
                path=LinearPath(),
                generator=_gen(seed),
                grad_clip=1.0,
            )
        )
        states.append(model.state_dict())
    assert torch.equal(torch.rand(2), expected)
    assert results[0].losses == results[1].losses and results[0].plan_cost == results[1].plan_cost
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    assert results[0].losses != results[2].losses
    assert isinstance(results[0], FlowTrainResult) and results[0].steps == len(results[0].losses) == 15
    assert results[0].loss == pytest.approx(float(np.mean(results[0].losses)))


def test_train_flow_edge_cases() -> None:
    data = _toy(64)
    model = VelocityMLP(2, hidden=8, layers=1, seed=0)
    before = copy.deepcopy(model.state_dict())
    res = train_flow(model, data, steps=0, batch_size=8, lr=1e-2, generator=_gen(0))
    assert res.steps == 0 and res.losses == [] and np.isnan(res.loss)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="optimizer"):
        train_flow(model, data, steps=1, batch_size=8, lr=1e-2, optimizer="lbfgs", generator=_gen(0))  # type: ignore[arg-type]
    bad = data.clone()
    bad[:] = float("inf")
    with pytest.raises(FloatingPointError):
        train_flow(model, bad, steps=1, batch_size=8, lr=1e-2, optimizer="sgd", generator=_gen(0))


def test_train_flow_with_a_potential_coupling_runs() -> None:
    model = VelocityMLP(2, hidden=16, layers=2, seed=0)
    coupling = PotentialCoupling(
        PotentialMLP(2, hidden=16, layers=2, seed=0), candidates=64, refine_steps=2
    )
    res = train_flow(
        model, _toy(128), steps=5, batch_size=32, lr=1e-3, coupling=coupling, generator=_gen(0)
    )
    assert res.steps == 5 and np.isfinite(res.loss) and res.plan_cost > 0


def test_ot_cfm_on_8gaussians_reduces_w2_and_is_straighter_than_i_cfm() -> None:
    data = _toy(2000, seed=1)
    target = _toy(500, seed=2)
    x0 = torch.randn(500, 2, generator=_gen(3))
    runs = {}
    for name, coupling in (("ot", ExactOTCoupling()), ("independent", IndependentCoupling())):
        model = VelocityMLP(2, hidden=64, layers=3, seed=0)
        before = w2_exact(integrate(model, x0, method="euler", steps=10).x, target)
        res = train_flow(
            model,
            data,
            steps=300,
            batch_size=128,
            lr=3e-3,
            path=LinearPath(),
            coupling=coupling,
            generator=_gen(4),
        )
        after = w2_exact(integrate(model, x0, method="euler", steps=10).x, target)
        sample = integrate(model, x0, method="euler", steps=20, return_trajectory=True)
        assert sample.trajectory is not None
        runs[name] = (
            before,
            after,
            res,
            path_length_ratio(sample.trajectory),
            straightness(model, x0, sample.x),
        )
    before, after, res, ratio, straight = runs["ot"]
    assert res.losses[-1] < res.losses[0]
    assert after < 0.5 * before  # NFE = 10 Euler samples move much closer to the target
    assert 1.0 <= ratio < 1.02
    # OT pairs are closer and the learned flow straighter than with independent pairs (I-CFM);
    # the independent plan cost is about E|x1|^2 + E|x0|^2 = 8.25 + 2
    ind = runs["independent"]
    assert res.plan_cost < 0.5 * ind[2].plan_cost
    assert ratio < ind[3] and straight < 0.2 * ind[4]


# --- trajectory metrics ----------------------------------------------------------------------


def test_path_length_ratio_of_straight_and_bent_paths() -> None:
    start, end = torch.zeros(3, 2), torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
    straight = [start + s * (end - start) for s in (0.0, 0.25, 0.5, 1.0)]
    assert path_length_ratio(straight) == pytest.approx(1.0)
    corner = [torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])]
    assert path_length_ratio(corner) == pytest.approx(2 / np.sqrt(2))
    with pytest.raises(ValueError):
        path_length_ratio([start, start])


def test_straightness_is_zero_for_the_exact_constant_field() -> None:
    shift = torch.tensor([2.0, -1.0])
    x0 = torch.randn(50, 2, generator=_gen(0))

    def const(t: Tensor, x: Tensor) -> Tensor:
        return shift.expand_as(x)

    assert straightness(const, x0, x0 + shift) == pytest.approx(0.0, abs=1e-10)  # type: ignore[arg-type]
    # zero field: the error is |x1 - x0|^2 = 5 at every t (random or grid times)
    assert straightness(
        lambda t, x: torch.zeros_like(x),
        x0,
        x0 + shift,  # type: ignore[arg-type]
        generator=_gen(1),
    ) == pytest.approx(5.0)
