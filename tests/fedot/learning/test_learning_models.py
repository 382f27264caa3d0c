from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fedot.learning import MODELS, build_model, count_parameters

VECTOR_SHAPES = [(40,), (13,), (1, 8, 8)]
IMAGE_SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


def _cases() -> list[tuple[str, tuple[int, ...]]]:
    cases = [(name, shape) for name in ("logreg", "linear", "mlp") for shape in VECTOR_SHAPES]
    return cases + [("cnn", shape) for shape in IMAGE_SHAPES]


@pytest.mark.parametrize(("name", "shape"), _cases())
def test_output_shape(name: str, shape: tuple[int, ...]) -> None:
    model = build_model(name, shape, 7, hidden=16, seed=0)
    assert isinstance(model, nn.Sequential)
    model.eval()
    out = model(torch.zeros(3, *shape))
    assert out.shape == (3, 7)


def test_models_constant_lists_all_names() -> None:
    assert set(MODELS) == {"logreg", "mlp", "cnn", "linear"}


def test_logreg_and_linear_are_single_affine_maps() -> None:
    for name in ("logreg", "linear"):
        model = build_model(name, (1, 8, 8), 3)
        linears = [m for m in model if isinstance(m, nn.Linear)]
        assert len(linears) == 1
        assert (linears[0].in_features, linears[0].out_features) == (64, 3)
        assert count_parameters(model) == 64 * 3 + 3


def test_mlp_layout_is_flat_sequential() -> None:
    model = build_model("mlp", (13,), 4, hidden=10)
    kinds = [type(m) for m in model]
    assert kinds == [nn.Flatten, nn.Linear, nn.ReLU, nn.Linear, nn.ReLU, nn.Linear]
    sizes = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert sizes == [(13, 10), (10, 10), (10, 4)]
    expected = 13 * 10 + 10 + 10 * 10 + 10 + 10 * 4 + 4
    assert count_parameters(model) == expected


@pytest.mark.parametrize(("shape", "n_bn"), [((1, 8, 8), 2), ((1, 28, 28), 3), ((3, 32, 32), 3)])
def test_cnn_has_batchnorm_and_right_depth(shape: tuple[int, ...], n_bn: int) -> None:
    model = build_model("cnn", shape, 10, hidden=32)
    bns = [m for m in model if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == n_bn
    assert all(not isinstance(m, nn.Sequential) for m in model)  # flat
    first_linear = next(m for m in model if isinstance(m, nn.Linear))
    side = shape[1] // 2 if n_bn == 2 else shape[1] // 4
    channels = 32 if n_bn == 2 else 64
    assert first_linear.in_features == channels * side * side


@pytest.mark.parametrize("shape", [(40,), (8, 8)])
def test_cnn_rejects_non_image_input(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(C, H, W\).*mlp"):
        build_model("cnn", shape, 10)


def test_unknown_model_and_bad_hidden() -> None:
    with pytest.raises(ValueError, match="logreg"):
        build_model("resnet", (10,), 2)
    with pytest.raises(ValueError, match="hidden"):
        build_model("mlp", (10,), 2, hidden=0)
    with pytest.raises(ValueError, match="num_outputs"):
        build_model("mlp", (10,), 0)


@pytest.mark.parametrize("name", MODELS)
def test_same_seed_same_weights_different_seed_different(name: str) -> None:
    shape = (1, 8, 8)
    a = build_model(name, shape, 5, hidden=8, seed=3).state_dict()
    b = build_model(name, shape, 5, hidden=8, seed=3).state_dict()
    c = build_model(name, shape, 5, hidden=8, seed=4).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    weights = [k for k in a if k.endswith("weight") and a[k].ndim > 1]
    assert weights and all(not torch.equal(a[k], c[k]) for k in weights)


def test_build_model_leaves_global_rng_untouched() -> None:
    torch.manual_seed(99)
    expected = torch.rand(3)
    torch.manual_seed(99)
    build_model("mlp", (20,), 3, seed=5)
    assert torch.equal(torch.rand(3), expected)


def test_count_parameters_trainable_only() -> None:
    model = build_model("mlp", (6,), 2, hidden=4)
    total = count_parameters(model)
    model[1].weight.requires_grad_(False)
    assert count_parameters(model, trainable_only=True) == total - 24
    assert count_parameters(model) == total == sum(math.prod(p.shape) for p in model.parameters())
