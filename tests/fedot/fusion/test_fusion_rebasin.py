"""Git Re-Basin weight matching: permuted-copy recovery, monotone objective, determinism."""

from __future__ import annotations

import pytest
import torch
from fusion_helpers import gen, inverse, randomize_bn

from fedot.fusion.models import ResidualCNN, ResidualMLP
from fedot.fusion.rebasin import weight_matching
from fedot.fusion.spec import permute, spec_for
from fedot.learning import build_model

MODELS = {
    "mlp": lambda s: build_model("mlp", (12,), 3, hidden=24, seed=s),
    "cnn_bn": lambda s: randomize_bn(build_model("cnn", (1, 8, 8), 3, hidden=16, seed=s), s + 10),
    "residual_mlp": lambda s: ResidualMLP(12, 3, width=12, hidden=16, seed=s),
    "residual_cnn": lambda s: randomize_bn(ResidualCNN(1, 3, width=6, hidden=10, seed=s), s + 10),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_permuted_copy_is_recovered(name: str) -> None:
    # Prepare
    a = MODELS[name](0)
    sizes = spec_for(a).sizes(a.state_dict())
    perms = {g: torch.randperm(n, generator=gen(i + 1)) for i, (g, n) in enumerate(sizes.items())}
    b = permute(a, perms)
    self_inner = sum(float((a.state_dict()[k].double() ** 2).sum()) for k in spec_for(a).axes)
    # Execute
    res = weight_matching(b, a, seed=0)
    # Assert: the inverse permutations, A's parameters, and the Cauchy-Schwarz maximum <A, A>
    for g, perm in perms.items():
        assert torch.equal(res.permutations[g], inverse(perm)), g
    for k, v in a.state_dict().items():
        torch.testing.assert_close(res.model.state_dict()[k], v)
    assert res.converged
    assert res.objective_history[-1] == pytest.approx(self_inner, rel=1e-9)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_objective_is_non_decreasing_over_group_updates(name: str) -> None:
    # Prepare: two independently initialised models
    a, b = MODELS[name](0), MODELS[name](1)
    spec = spec_for(a)
    # Execute
    res = weight_matching(b, a, seed=3)
    hist = res.objective_history
    # Assert
    assert all(y >= x - 1e-9 * abs(x) for x, y in zip(hist, hist[1:], strict=False))
    assert hist[-1] > hist[0]
    assert len(hist) == 1 + res.sweeps * len(spec.order)
    assert res.converged


def test_initial_objective_is_the_plain_inner_product() -> None:
    # Prepare
    a, b = MODELS["mlp"](0), MODELS["mlp"](1)
    expected = sum(float((a.state_dict()[k].double() * b.state_dict()[k].double()).sum())
                   for k in spec_for(a).axes)
    # Execute
    res = weight_matching(b, a)
    # Assert
    assert res.objective_history[0] == pytest.approx(expected, rel=1e-12)


def test_result_keeps_the_function_and_is_seed_deterministic() -> None:
    # Prepare
    a, b = MODELS["residual_mlp"](0).eval(), MODELS["residual_mlp"](1).eval()
    x = torch.randn(8, 12, generator=gen(0))
    # Execute
    r1, r2 = weight_matching(b, a, seed=5), weight_matching(b, a, seed=5)
    # Assert
    with torch.no_grad():
        torch.testing.assert_close(r1.model.eval()(x), b(x), rtol=1e-5, atol=1e-6)
    assert r1.objective_history == r2.objective_history
    assert all(torch.equal(r1.permutations[g], r2.permutations[g]) for g in r1.permutations)


def test_errors() -> None:
    a = build_model("mlp", (12,), 3, hidden=16, seed=0)
    with pytest.raises(ValueError, match="equal group sizes"):
        weight_matching(build_model("mlp", (12,), 3, hidden=8, seed=1), a)
    with pytest.raises(ValueError, match="max_sweeps"):
        weight_matching(a, a, max_sweeps=0)
