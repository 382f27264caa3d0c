"""OTFusion alignment and fusion: permuted self-fusion, identity, marginals, Sinkhorn, compression."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from fusion_helpers import gen, inverse, randomize_bn
from torch import nn

from fedot.fusion import align, fuse, fuse_detailed
from fedot.fusion.models import ResidualCNN, ResidualMLP
from fedot.fusion.spec import PermutationSpec, linear_axes, permute, spec_for
from fedot.learning import build_model


def vanilla_average(models: list[nn.Module]) -> nn.Module:
    states = [m.state_dict() for m in models]
    avg = {k: (sum(s[k] for s in states) / len(states)) if v.is_floating_point() else v
           for k, v in states[0].items()}
    out = copy.deepcopy(models[0])
    out.load_state_dict(avg)
    return out


def rel_err(f: nn.Module, ref: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        y = ref(x)
        return float((f.eval()(x) - y).norm() / y.norm())


IMG = (16, 1, 8, 8)
CASES = {
    "mlp": (lambda: build_model("mlp", (12,), 3, hidden=16, seed=0).eval(), (64, 12)),
    "cnn_bn": (lambda: randomize_bn(build_model("cnn", IMG[1:], 3, hidden=16, seed=0), 1), IMG),
    "residual_mlp": (lambda: ResidualMLP(12, 3, width=12, hidden=16, seed=0).eval(), (64, 12)),
    "residual_cnn": (lambda: randomize_bn(ResidualCNN(1, 3, width=6, hidden=10, seed=0), 2), IMG),
}


@pytest.mark.parametrize("metric", ["weights", "activations"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_permuted_self_fusion_returns_the_model(case: str, metric: str) -> None:
    # Prepare: B = A with every hidden group permuted (rows, columns, biases, BN stats, flatten blocks)
    make, shape = CASES[case]
    a = make()
    x = torch.randn(*shape, generator=gen(9))
    sizes = spec_for(a).sizes(a.state_dict())
    perms = {g: torch.randperm(n, generator=gen(i + 3)) for i, (g, n) in enumerate(sizes.items())}
    b = permute(a, perms).eval()
    # Execute
    fused = fuse([a, b], metric=metric, probe=x, method="exact")
    res = align(b, a, metric=metric, probe=x)
    vanilla = vanilla_average([a, b])
    # Assert: exact recovery of every permutation, the function to float precision; averaging fails
    for g, perm in perms.items():
        assert torch.equal(res.permutations[g], inverse(perm)), g
        assert res.diagnostics[list(sizes).index(g)].method == "lsa"
    assert rel_err(fused, a, x) < 1e-6
    assert rel_err(res.model, a, x) < 1e-6
    assert rel_err(vanilla, a, x) > 0.05


def test_diagnostics_of_a_known_permutation() -> None:
    # Prepare: one group permuted by a 3-cycle on 16 units, the other left alone
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    perm = torch.arange(16)
    perm[:3] = torch.tensor([1, 2, 0])
    b = permute(a, {"1": perm})
    # Execute
    res = align(b, a)
    d1, d3 = res.diagnostics
    # Assert
    assert (d1.group, d1.n_model, d1.n_target) == ("1", 16, 16)
    assert d1.off_identity == pytest.approx(3 / 16)
    assert d3.off_identity == 0.0
    assert 0.0 <= d1.cost < 1e-3 and 0.0 <= d3.cost < 1e-3  # float32 matmul distances, not exactly 0
    assert d1.entropy == pytest.approx(math.log(16))
    assert d1.marginal_error == 0.0 and d1.converged


def test_fusing_a_model_with_itself_is_the_identity() -> None:
    # Prepare: a distinct copy, so the alignment is actually computed
    a = randomize_bn(build_model("cnn", (1, 8, 8), 3, hidden=16, seed=0), 1)
    b = copy.deepcopy(a)
    # Execute
    res = align(b, a)
    fused = fuse([a, b])
    # Assert
    for g, plan in res.plans.items():
        n = plan.shape[0]
        torch.testing.assert_close(plan, torch.eye(n) / n)
        assert res.permutations[g].tolist() == list(range(n))
    assert all(d.off_identity == 0.0 for d in res.diagnostics)
    for k, v in a.state_dict().items():
        torch.testing.assert_close(fused.state_dict()[k], v)


def test_output_layer_is_never_permuted() -> None:
    # Prepare
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    b = build_model("mlp", (12,), 3, hidden=16, seed=1)
    # Execute
    res = align(b, a)
    # Assert: class rows keep their order; only the input columns move with group "3"
    out_w = res.model[5].weight.detach()
    assert torch.equal(out_w, b[5].weight.detach()[:, res.permutations["3"]])
    assert torch.equal(res.model[5].bias, b[5].bias)


def test_compression_plans_have_the_right_marginals() -> None:
    # Prepare: fuse 16-unit models into an 8-unit target
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    b = build_model("mlp", (12,), 3, hidden=16, seed=1)
    small = build_model("mlp", (12,), 3, hidden=8, seed=2)
    x = torch.randn(32, 12, generator=gen(0))
    # Execute
    res = align(a, small)
    fused = fuse([a, b], target=small, iterations=2)
    # Assert
    for plan in res.plans.values():
        assert plan.shape == (16, 8)
        torch.testing.assert_close(plan.sum(1), torch.full((16,), 1 / 16))
        torch.testing.assert_close(plan.sum(0), torch.full((8,), 1 / 8))
        assert (plan >= 0).all()
    assert [d.method for d in res.diagnostics] == ["emd", "emd"]
    assert res.model[1].weight.shape == (8, 12) and res.model[3].weight.shape == (8, 8)
    assert fused[1].weight.shape == (8, 12)
    assert torch.isfinite(fused(x)).all()


def test_importance_marginals_follow_the_feature_norms() -> None:
    # Prepare
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    b = build_model("mlp", (12,), 3, hidden=16, seed=1)
    feats = torch.cat([b[1].weight, b[1].bias[:, None]], 1).detach()
    expected = feats.norm(dim=1) / feats.norm(dim=1).sum()
    # Execute
    res = align(b, a, marginals="importance")
    # Assert
    torch.testing.assert_close(res.plans["1"].sum(1), expected)


def test_sinkhorn_with_small_reg_approaches_the_exact_fusion() -> None:
    # Prepare: B = A with permuted units plus 30 % noise (a client that shares A's structure)
    g = gen(0)
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    b = permute(a, {"1": torch.randperm(16, generator=g), "3": torch.randperm(16, generator=g)})
    with torch.no_grad():
        for p in b.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.3 * p.std())

    def flat(m: nn.Module) -> torch.Tensor:
        return torch.nn.utils.parameters_to_vector(m.parameters()).detach()

    exact = flat(fuse([a, b]))
    # Execute
    gaps = [float((flat(fuse([a, b], method="sinkhorn", reg=reg)) - exact).norm())
            for reg in (0.3, 0.1, 0.03, 0.01)]
    # Assert: the entropic fusion converges to the exact one as reg -> 0
    assert gaps[0] > gaps[1] > gaps[2] >= gaps[3]
    assert gaps[3] < 1e-4 * float(exact.norm())


def test_weighted_multi_model_fusion() -> None:
    # Prepare: A, two permuted copies of A, and one unrelated model with weight 0
    a = build_model("mlp", (12,), 3, hidden=16, seed=0).eval()
    copies = [permute(a, {g: torch.randperm(16, generator=gen(s + i)) for i, g in enumerate(("1", "3"))})
              for s in (1, 5)]
    other = build_model("mlp", (12,), 3, hidden=16, seed=5)
    x = torch.randn(32, 12, generator=gen(0))
    # Execute
    fused = fuse([a, *copies, other], weights=[1.0, 2.0, 1.0, 0.0])
    only_copy = fuse([a, *copies], target=copies[0], weights=torch.tensor([0.0, 0.0, 1.0]), iterations=2)
    result = fuse_detailed([a, *copies], iterations=2)
    # Assert
    assert rel_err(fused, a, x) < 1e-6
    assert rel_err(only_copy, a, x) < 1e-6
    assert result.iterations == 2 and len(result.diagnostics) == 3
    assert all(d.off_identity == 0.0 for d in result.diagnostics[0])  # estimate == A after round 1


def test_inputs_are_not_modified_and_dtype_is_kept() -> None:
    # Prepare: float64 models, one in train mode
    a = randomize_bn(build_model("cnn", (1, 8, 8), 3, hidden=16, seed=0), 1).double().train()
    b = randomize_bn(build_model("cnn", (1, 8, 8), 3, hidden=16, seed=1), 2).double()
    x = torch.randn(4, 1, 8, 8, generator=gen(0), dtype=torch.float64)
    before = [{k: v.clone() for k, v in m.state_dict().items()} for m in (a, b)]
    # Execute
    fused = fuse([a, b], metric="activations", probe=x)
    # Assert
    for m, snap in zip((a, b), before, strict=True):
        assert all(torch.equal(snap[k], v) for k, v in m.state_dict().items())
    assert a.training and not b.training
    assert fused is not a and all(p.dtype == torch.float64 for p in fused.parameters())


def test_align_unpacks_into_model_and_plans() -> None:
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    aligned, plans = align(build_model("mlp", (12,), 3, hidden=16, seed=1), a)
    assert isinstance(aligned, nn.Sequential) and sorted(plans) == ["1", "3"]


def test_weights_metric_detects_a_cycle() -> None:
    # Prepare: group "h" is produced only by a tensor that also reads "h" (no solvable producer)
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.ReLU(), nn.Linear(4, 2))
    spec = PermutationSpec(
        axes={"0.weight": ("h", "h"), **linear_axes("2", None, "h")},
        order=("h",),
    )
    # Execute / Assert
    with pytest.raises(ValueError, match="cycle"):
        align(model, copy.deepcopy(model), spec=spec)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metric": "activations"}, "probe"),
        ({"metric": "cosine"}, "metric"),
        ({"method": "greedy"}, "method"),
        ({"marginals": "softmax"}, "marginals"),
        ({"weights": [1.0]}, "weights"),
        ({"weights": [1.0, -1.0]}, "nonnegative"),
        ({"iterations": 0}, "iterations"),
    ],
)
def test_bad_options_raise(kwargs: dict, match: str) -> None:
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    with pytest.raises(ValueError, match=match):
        fuse([a, copy.deepcopy(a)], **kwargs)


def test_empty_model_list_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        fuse([])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fusion_stays_on_the_gpu() -> None:
    a = build_model("mlp", (12,), 3, hidden=16, seed=0).cuda()
    b = permute(a, {"1": torch.randperm(16, generator=gen(0))})
    x = torch.randn(8, 12, device="cuda")
    res = align(b, a, metric="activations", probe=x)
    fused = fuse([a, b])
    assert all(p.is_cuda for p in fused.parameters()) and res.plans["1"].is_cuda
    assert rel_err(fused, a, x) < 1e-6
