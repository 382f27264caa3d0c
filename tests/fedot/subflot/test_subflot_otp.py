"""OTP: permuted-history recovery, duplicate merges, plan marginals, a hand-computed case, errors."""

from __future__ import annotations

import pytest
import torch
from subflot_helpers import MODELS, batch, duplicated_pair, gen, mlp, perturb, random_perms, randomize_bn
from torch import nn

from fedot.fusion import align
from fedot.fusion.models import ResidualCNN, ResidualMLP
from fedot.fusion.spec import permute, spec_for
from fedot.subflot import otp_extract, static_slice, submodel_widths


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_rate_zero_permuted_history_is_returned_exactly(kind: str, alpha: float) -> None:
    # Prepare: the history is the global model with every hidden group permuted (BN stats included)
    make, shape = MODELS[kind]
    global_model = make(0)
    perms = random_perms(global_model, seed=11)
    history = permute(global_model, perms).eval()
    x = batch(shape)
    # Execute
    res = otp_extract(global_model, history, 0.0, alpha=alpha)
    # Assert: the permuted copy itself (so the alpha-blend is a no-op), the same logits, and the
    # hard index sets are the permutations
    expected = history.state_dict()
    for key, value in res.model.state_dict().items():
        assert value.shape == expected[key].shape, key
        if value.is_floating_point():
            assert torch.allclose(value, expected[key], atol=1e-6, rtol=0), key
    with torch.no_grad():
        assert torch.allclose(res.model.eval()(x), global_model(x), atol=1e-5)
    for g, perm in perms.items():
        assert torch.equal(res.indices[g], perm), g
    assert not res.cold_start
    assert all(d.method == "lsa" and d.off_identity > 0 for d in res.diagnostics)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_duplicate_merge_preserves_the_global_function(kind: str, dtype: torch.dtype) -> None:
    # Prepare: global units come in identical pairs (outgoing weights split s / 1-s); the history is
    # half width, holds one unit per pair (permuted) and is slightly perturbed
    base, global_model = duplicated_pair(kind)
    base, global_model = base.to(dtype).eval(), global_model.to(dtype).eval()
    history = perturb(permute(base, random_perms(base, seed=5)), 1e-3, seed=6).eval()
    x = batch(MODELS[kind][1]).to(dtype)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    # Execute
    res = otp_extract(global_model, history, 0.5, alpha=1.0)
    averaged = align(global_model, history, input_side="average").model.eval()
    # Assert: input-side summation keeps the logits; every plan merges exactly the pairs (each
    # global unit sends all its mass to one client unit); averaging the inputs instead breaks it
    with torch.no_grad():
        ref = global_model(x)
        assert torch.allclose(res.model.eval()(x), ref, atol=tol * ref.abs().max(), rtol=0)
        assert not torch.allclose(averaged(x), ref, atol=1e-2)
    for g, plan in res.plans.items():
        n, m = plan.shape
        assert n == 2 * m
        assert torch.equal((plan > 0).sum(1), torch.ones(n, dtype=torch.long)), g
        assert torch.equal((plan > 0).sum(0), torch.full((m,), 2)), g


def test_duplicate_merge_with_blend_towards_an_exact_history() -> None:
    # Prepare: the history is exactly the (permuted) merged model, so the blend changes nothing
    base, global_model = duplicated_pair("mlp")
    base, global_model = base.double(), global_model.double()
    history = permute(base, random_perms(base, seed=8))
    x = batch((12,)).double()
    # Execute
    res = otp_extract(global_model, history, 0.5, alpha=0.5)
    # Assert
    with torch.no_grad():
        assert torch.allclose(res.model(x), global_model(x), atol=1e-10)


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_plan_marginals_are_uniform_and_every_client_unit_gets_mass(kind: str, rate: float) -> None:
    # Prepare: float64 global and an unrelated history of the right widths
    make, _ = MODELS[kind]
    global_model = make(0).double()
    history = static_slice(make(1).double(), rate).model
    # Execute
    res = otp_extract(global_model, history, rate)
    # Assert
    widths = submodel_widths(global_model, rate)
    sizes = spec_for(global_model).sizes(global_model.state_dict())
    assert set(res.plans) == set(sizes)
    for g, plan in res.plans.items():
        n, m = sizes[g], widths[g]
        assert plan.shape == (n, m) and plan.dtype == torch.float64
        assert float((plan.sum(1) - 1 / n).abs().max()) <= 1e-9, g
        assert float((plan.sum(0) - 1 / m).abs().max()) <= 1e-9, g
        assert bool((plan >= 0).all())
        assert bool((plan > 0).any(0).all()), "a client unit received no mass"
        assert res.indices[g].shape == (m,)
    for d in res.diagnostics:
        assert d.marginal_error < 1e-9 and d.converged and d.cost >= 0
        assert d.n_model == sizes[d.group] and d.n_target == widths[d.group]
        assert d.method == ("lsa" if rate == 0 else "emd")
        assert 0.0 <= d.off_identity <= 1.0


def _two_to_one() -> tuple[nn.Module, nn.Module]:
    glob = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    hist = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    with torch.no_grad():
        glob[0].weight.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
        glob[0].bias.copy_(torch.tensor([1.0, -1.0]))
        glob[2].weight.copy_(torch.tensor([[5.0, 6.0]]))
        glob[2].bias.copy_(torch.tensor([0.5]))
        hist[0].weight.copy_(torch.tensor([[0.0, 1.0]]))
        hist[0].bias.copy_(torch.tensor([2.0]))
        hist[2].weight.copy_(torch.tensor([[1.0]]))
        hist[2].bias.copy_(torch.tensor([-0.5]))
    return glob, hist


@pytest.mark.parametrize(
    ("alpha", "expected"),
    [
        # aligned: rows averaged [[2, 3]], bias 0; input columns summed [[11]]; output bias kept
        (1.0, {"0.weight": [[2.0, 3.0]], "0.bias": [0.0], "2.weight": [[11.0]], "2.bias": [0.5]}),
        (0.5, {"0.weight": [[1.0, 2.0]], "0.bias": [1.0], "2.weight": [[6.0]], "2.bias": [0.0]}),
        (0.0, {"0.weight": [[0.0, 1.0]], "0.bias": [2.0], "2.weight": [[1.0]], "2.bias": [-0.5]}),
    ],
)
def test_hand_computed_two_units_to_one(alpha: float, expected: dict[str, list]) -> None:
    # Prepare
    glob, hist = _two_to_one()
    # Execute
    res = otp_extract(glob, hist, 0.5, alpha=alpha)
    # Assert: the only plan is [[1/2], [1/2]]
    assert torch.equal(res.plans["0"], torch.tensor([[0.5], [0.5]]))
    state = res.model.state_dict()
    for key, value in expected.items():
        assert torch.allclose(state[key], torch.tensor(value)), key


def test_cold_start_is_the_static_slice() -> None:
    # Prepare
    global_model = mlp(0)
    # Execute
    res = otp_extract(global_model, None, 0.25)
    # Assert
    ref = static_slice(global_model, 0.25).model.state_dict()
    assert res.cold_start and res.plans == {} and res.diagnostics == ()
    assert all(torch.equal(v, ref[k]) for k, v in res.model.state_dict().items())
    assert all(torch.equal(i, torch.arange(12)) for i in res.indices.values())


def test_result_follows_the_global_dtype_and_inputs_are_untouched() -> None:
    # Prepare: float64 global, float32 history
    global_model = mlp(0).double()
    history = static_slice(mlp(1), 0.5).model
    before = {k: v.clone() for k, v in history.state_dict().items()}
    g_before = {k: v.clone() for k, v in global_model.state_dict().items()}
    # Execute
    res = otp_extract(global_model, history, 0.5)
    # Assert
    assert all(p.dtype == torch.float64 for p in res.model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in history.state_dict().items())
    assert all(torch.equal(v, g_before[k]) for k, v in global_model.state_dict().items())


def test_sinkhorn_plans_have_the_right_marginals() -> None:
    # Prepare
    global_model = mlp(0).double()
    history = static_slice(mlp(1).double(), 0.5).model
    # Execute
    res = otp_extract(global_model, history, 0.5, method="sinkhorn", reg=0.05)
    # Assert
    for plan in res.plans.values():
        assert torch.allclose(plan.sum(0), torch.full((8,), 1 / 8, dtype=torch.float64), atol=1e-8)
        assert bool((plan > 0).all())


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "half"])
def test_bad_rate_raises(rate: object) -> None:
    with pytest.raises(ValueError, match="rate"):
        otp_extract(mlp(0), None, rate)  # type: ignore[arg-type]


def test_mismatched_history_raises() -> None:
    # Prepare
    global_model = mlp(0)
    seven_inputs = nn.Sequential(nn.Flatten(), nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                                 nn.Linear(16, 3))
    other_input = static_slice(seven_inputs, 0.5).model
    # Execute / Assert
    with pytest.raises(ValueError, match="rate 0.25 needs"):
        otp_extract(global_model, static_slice(global_model, 0.5).model, 0.25)
    with pytest.raises(ValueError, match="incompatible"):
        otp_extract(global_model, other_input, 0.5)
    with pytest.raises(ValueError, match="architecture"):
        otp_extract(global_model, nn.Sequential(nn.Linear(12, 3)), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        otp_extract(global_model, static_slice(global_model, 0.5).model, 0.5, alpha=1.5)


def test_align_rejects_an_unknown_input_side() -> None:
    with pytest.raises(ValueError, match="input_side"):
        align(mlp(0), mlp(1), input_side="max")  # type: ignore[arg-type]


def test_input_side_sum_equals_average_on_permutations() -> None:
    # Prepare
    a, b = mlp(0), mlp(1)
    x = torch.randn(8, 12, generator=gen(3))
    # Execute
    s = align(a, b, input_side="sum").model
    v = align(a, b, input_side="average").model
    # Assert
    with torch.no_grad():
        assert torch.equal(s(x), v(x))


@pytest.mark.parametrize("kind", ["residual_mlp", "residual_cnn"])
def test_residual_models_with_explicit_specs(kind: str) -> None:
    # Prepare: models that define permutation_spec() (shared residual-stream group)
    if kind == "residual_mlp":
        global_model, x = ResidualMLP(12, 3, width=12, hidden=16, seed=0).eval(), batch((12,))
    else:
        global_model, x = randomize_bn(ResidualCNN(1, 3, width=8, hidden=8, seed=0), 3), batch((1, 8, 8))
    history = permute(global_model, random_perms(global_model, seed=21)).eval()
    # Execute
    res = otp_extract(global_model, history, 0.0)
    half = otp_extract(global_model, static_slice(global_model, 0.5).model, 0.5).model
    # Assert
    with torch.no_grad():
        assert torch.allclose(res.model.eval()(x), global_model(x), atol=1e-5)
        assert half.eval()(x).shape == (x.shape[0], 3)


def _three_unit_net(rows: list[tuple[float, float]], out: list[float]) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(1, len(rows)), nn.ReLU(), nn.Linear(len(rows), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[w] for w, _ in rows], dtype=torch.float64))
        net[0].bias.copy_(torch.tensor([b for _, b in rows], dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([out], dtype=torch.float64))
        net[2].bias.zero_()
    return net


def test_default_plan_is_exact_ot_on_euclidean_costs_hand_case() -> None:
    # Prepare: 3 global units (weight, bias) = (1,-2), (3,0), (3,2); a history of 2 units (1,-2),
    # (2,-3). Costs |g_j - h_k|_2 = [[0, √2], [√8, √10], [√20, √26]]; marginals 1/3 and 1/2.
    glob = _three_unit_net([(1.0, -2.0), (3.0, 0.0), (3.0, 2.0)], [1.0, 2.0, 4.0])
    hist = _three_unit_net([(1.0, -2.0), (2.0, -3.0)], [0.0, 0.0])
    # Execute: the paper's OTP (exact, uniform marginals, Euclidean), no blend
    res = otp_extract(glob, hist, 1 / 3, alpha=1.0)
    # Assert: by hand, h0 takes all of g0 (free) and needs 1/6 more, h1 takes all of g1, and g2
    # is split 1/6 / 1/6. Cost 1/3·√10 + 1/6·(√20 + √26) = 2.649; the plan that is optimal for
    # squared costs ([[1, 1], [0, 2], [2, 0]] / 6) costs 1/6·√2 + 1/3·√10 + 1/3·√20 = 2.781 here.
    (plan,) = res.plans.values()
    expected = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]], dtype=torch.float64) / 6
    torch.testing.assert_close(plan, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(plan.sum(1), torch.full((3,), 1 / 3, dtype=torch.float64))
    torch.testing.assert_close(plan.sum(0), torch.full((2,), 1 / 2, dtype=torch.float64))
    cost = (10**0.5) / 3 + (20**0.5 + 26**0.5) / 6
    assert res.diagnostics[0].cost == pytest.approx(cost, abs=1e-12)
    # Barycentric maps: client rows average their global units, diag(2)·Tᵀ·[W|b]:
    # unit 0 = 2/3·g0 + 1/3·g2 = (5/3, -2/3), unit 1 = 2/3·g1 + 1/3·g2 = (3, 2/3);
    # the next layer sums, v·diag(3)·T: (1 + 4/2, 2 + 4/2) = (3, 4).
    sub = res.model
    torch.testing.assert_close(sub[0].weight.reshape(-1),
                               torch.tensor([5 / 3, 3.0], dtype=torch.float64))
    torch.testing.assert_close(sub[0].bias, torch.tensor([-2 / 3, 2 / 3], dtype=torch.float64))
    torch.testing.assert_close(sub[2].weight.reshape(-1), torch.tensor([3.0, 4.0],
                                                                       dtype=torch.float64))
    # off_identity: diagonal mass 1/3 + 1/3 of the most it can hold (2 × min(1/3, 1/2)) → 0
    assert res.diagnostics[0].off_identity == pytest.approx(0.0, abs=1e-12)
