"""Permutation specs: derivation for Sequential models, residual specs, and function invariance."""

from __future__ import annotations

import pytest
import torch
from fusion_helpers import gen, randomize_bn
from torch import nn

from fedot.fusion.models import ResidualCNN, ResidualMLP
from fedot.fusion.spec import (
    PermutationSpec,
    conv_axes,
    derive_spec,
    linear_axes,
    norm_axes,
    permute,
    spec_for,
)
from fedot.learning import build_model


def random_perms(spec: PermutationSpec, model: nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = gen(seed)
    return {k: torch.randperm(n, generator=g) for k, n in spec.sizes(model.state_dict()).items()}


def models_and_inputs() -> list[tuple[str, nn.Module, torch.Tensor]]:
    x_vec = torch.randn(16, 12, generator=gen(1))
    x_img = torch.randn(8, 1, 8, 8, generator=gen(2))
    return [
        ("mlp", build_model("mlp", (12,), 3, hidden=16, seed=0).eval(), x_vec),
        ("cnn", randomize_bn(build_model("cnn", (1, 8, 8), 3, hidden=16, seed=0), 3), x_img),
        ("residual_mlp", ResidualMLP(12, 3, width=8, hidden=16, seed=0).eval(), x_vec),
        ("residual_cnn", randomize_bn(ResidualCNN(1, 3, width=6, hidden=10, seed=0), 4), x_img),
    ]


def test_mlp_spec_is_derived_exactly() -> None:
    # Prepare
    model = build_model("mlp", (12,), 3, hidden=16)
    # Execute
    spec = derive_spec(model)
    # Assert: Linear layers sit at indices 1, 3, 5; the output layer's rows are never permuted
    assert dict(spec.axes) == {
        "1.weight": ("1", None), "1.bias": ("1",),
        "3.weight": ("3", "1"), "3.bias": ("3",),
        "5.weight": (None, "3"), "5.bias": (None,),
    }
    assert spec.order == ("1", "3")
    assert dict(spec.activations) == {"1": ("1",), "3": ("3",)}
    assert spec.sizes(model.state_dict()) == {"1": 16, "3": 16}


def test_cnn_spec_covers_batch_norm_and_flatten() -> None:
    # Prepare: conv0 bn1 relu2 conv3 bn4 relu5 pool6 flatten7 linear8 relu9 linear10
    model = build_model("cnn", (1, 8, 8), 3, hidden=16)
    # Execute
    spec = derive_spec(model)
    # Assert
    assert spec.order == ("0", "3", "8")
    for key in ("weight", "bias", "running_mean", "running_var"):
        assert spec.axes[f"1.{key}"] == ("0",)
        assert spec.axes[f"4.{key}"] == ("3",)
    assert "1.num_batches_tracked" not in spec.axes
    assert spec.axes["3.weight"] == ("3", "0", None, None)
    assert spec.axes["8.weight"] == ("8", "3")  # 32 channels x 4 x 4 pixels -> blocks of 16
    assert dict(spec.activations) == {"0": ("1",), "3": ("4",), "8": ("8",)}


def test_flatten_moves_whole_channel_blocks() -> None:
    # Prepare
    model = build_model("cnn", (1, 8, 8), 3, hidden=16)
    perm = torch.randperm(32, generator=gen(0))
    # Execute
    out = permute(model, {"3": perm})
    # Assert: input block j of the first Linear is block perm[j] of the original
    old = model[8].weight.detach().reshape(16, 32, 16)
    new = out[8].weight.detach().reshape(16, 32, 16)
    assert torch.equal(new, old[:, perm])


@pytest.mark.parametrize(("name", "model", "x"), models_and_inputs())
def test_permuting_every_group_keeps_the_function(name: str, model: nn.Module, x: torch.Tensor) -> None:
    # Prepare
    spec = spec_for(model)
    perms = random_perms(spec, model, 5)
    # Execute
    permuted = permute(model, perms).eval()
    # Assert: same function, different parameters
    with torch.no_grad():
        torch.testing.assert_close(permuted(x), model(x), rtol=1e-5, atol=1e-5)
    changed = [k for k in spec.axes if not torch.equal(permuted.state_dict()[k], model.state_dict()[k])]
    assert len(changed) > 0


def test_residual_stream_needs_one_shared_group() -> None:
    # Prepare: a wrong spec where the branch outputs (fc2) write into their own group
    model = ResidualMLP(12, 3, width=8, hidden=16, norm=False, seed=0).eval()
    good = model.permutation_spec()
    axes = dict(good.axes)
    axes["blocks.0.fc2.weight"] = ("out0", "blocks.0")
    axes["blocks.0.fc2.bias"] = ("out0",)
    bad = PermutationSpec(axes=axes, order=(*good.order, "out0"))
    x = torch.randn(16, 12, generator=gen(1))
    perm = torch.randperm(8, generator=gen(2))
    # Execute
    with torch.no_grad():
        y = model(x)
        y_good = permute(model, {"res": perm}, good)(x)
        y_bad = permute(model, {"out0": perm}, bad)(x)
    # Assert
    torch.testing.assert_close(y_good, y, rtol=1e-5, atol=1e-6)
    assert (y_bad - y).abs().max() > 1e-2


def test_residual_spec_shares_the_stream_group() -> None:
    # Prepare
    model = ResidualMLP(12, 3, width=8, hidden=16, num_blocks=2)
    # Execute
    spec = spec_for(model)
    # Assert
    writers = set(spec.producers("res"))
    assert {"embed.weight", "embed.bias", "blocks.0.fc2.weight", "blocks.1.fc2.bias",
            "blocks.0.norm.weight"} <= writers
    assert spec.axes["blocks.1.fc1.weight"] == ("blocks.1", "res")
    assert spec.axes["head.weight"] == (None, "res")
    assert spec.order == ("res", "blocks.0", "blocks.1")


def test_layer_norm_and_nested_sequential_are_derived() -> None:
    # Prepare
    inner = nn.Sequential(nn.Linear(6, 10), nn.LayerNorm(10), nn.GELU(), nn.Dropout(0.0))
    model = nn.Sequential(inner, nn.Linear(10, 10), nn.Tanh(), nn.Linear(10, 2)).eval()
    x = torch.randn(5, 6, generator=gen(0))
    # Execute
    spec = derive_spec(model)
    permuted = permute(model, random_perms(spec, model, 1))
    # Assert
    assert spec.axes["0.1.weight"] == ("0.0",) and spec.axes["1.weight"] == ("1", "0.0")
    assert spec.activations["0.0"] == ("0.1",)
    with torch.no_grad():
        torch.testing.assert_close(permuted(x), model(x), rtol=1e-5, atol=1e-6)


def test_axes_helpers() -> None:
    assert linear_axes("fc", "h", None) == {"fc.weight": ("h", None), "fc.bias": ("h",)}
    assert conv_axes("c", "h", "g", bias=False) == {"c.weight": ("h", "g", None, None)}
    assert norm_axes("bn", "h", running_stats=True) == {
        "bn.weight": ("h",), "bn.bias": ("h",), "bn.running_mean": ("h",), "bn.running_var": ("h",),
    }


@pytest.mark.parametrize(
    "model",
    [
        nn.Sequential(nn.Linear(4, 4), nn.Conv2d(4, 4, 3, groups=2)),
        nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 1), nn.Linear(4, 2)),
        nn.Sequential(nn.Linear(4, 4), nn.PReLU(4), nn.Linear(4, 2)),
        ResidualMLP(4, 2),
    ],
)
def test_unsupported_models_are_refused(model: nn.Module) -> None:
    with pytest.raises(ValueError):
        derive_spec(model)


@pytest.mark.parametrize(
    ("axes", "order", "acts", "match"),
    [
        ({"a.weight": ("h", None)}, (), {}, "exactly the groups"),
        ({"a.weight": ("h", None)}, ("h", "h"), {}, "repeats"),
        ({"a.weight": (None, "h")}, ("h",), {}, "without a producer"),
        ({"a.weight": ("h", None)}, ("h",), {"g": ("a",)}, "unknown groups"),
    ],
)
def test_invalid_specs_are_refused(axes: dict, order: tuple, acts: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        PermutationSpec(axes=axes, order=order, activations=acts)


def test_spec_must_fit_the_model() -> None:
    # Prepare
    model = build_model("mlp", (12,), 3, hidden=16)
    state = model.state_dict()
    missing = PermutationSpec(axes={"9.weight": ("h", None)}, order=("h",))
    rank = PermutationSpec(axes={"1.weight": ("h",)}, order=("h",))
    sizes = PermutationSpec(axes={"1.weight": ("h", None), "5.weight": ("h", None)}, order=("h",))
    # Execute / Assert
    with pytest.raises(ValueError, match="not in the model"):
        missing.sizes(state)
    with pytest.raises(ValueError, match="axes"):
        rank.sizes(state)
    with pytest.raises(ValueError, match="disagree"):
        sizes.sizes(state)
    with pytest.raises(ValueError, match="not a permutation"):
        permute(model, {"1": [0] * 16})
    with pytest.raises(ValueError, match="unknown group"):
        permute(model, {"7": list(range(16))})


def test_permute_does_not_modify_its_input() -> None:
    # Prepare
    model = build_model("mlp", (12,), 3, hidden=16)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Execute
    permute(model, {"1": torch.randperm(16, generator=gen(0))})
    # Assert
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
