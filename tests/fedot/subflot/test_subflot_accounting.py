"""Accounting: hand-computed MACs of tiny MLP/CNN, parameter counts, payload, training FLOPs."""

from __future__ import annotations

import pytest
import torch
from subflot_helpers import IMG, MODELS

from fedot.learning import build_model, count_parameters
from fedot.subflot import forward_macs, static_slice, submodel_cost, training_flops


def test_mlp_macs_by_hand() -> None:
    # Prepare: 5 -> 4 -> 4 -> 3
    model = build_model("mlp", (5,), 3, hidden=4)
    # Execute / Assert
    assert forward_macs(model, (5,)) == 5 * 4 + 4 * 4 + 4 * 3


def test_cnn_macs_by_hand() -> None:
    # Prepare: 1x4x4 input; conv 1->16 and 16->32 (3x3, same padding) at 4x4; pool to 2x2;
    # linear 32*2*2 -> 8 -> 3
    model = build_model("cnn", (1, 4, 4), 3, hidden=8)
    half = static_slice(model, 0.5).model  # channels 8, 16; hidden 4
    # Execute
    macs, half_macs = forward_macs(model, (1, 4, 4)), forward_macs(half, (1, 4, 4))
    # Assert
    assert macs == 16 * 9 * 1 * 16 + 16 * 9 * 16 * 32 + 128 * 8 + 8 * 3 == 77080
    assert half_macs == 16 * 9 * 1 * 8 + 16 * 9 * 8 * 16 + 64 * 4 + 4 * 3 == 19852


def test_forward_macs_leaves_the_model_untouched() -> None:
    # Prepare
    model = build_model("cnn", IMG, 3, hidden=8).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # Execute
    forward_macs(model, IMG)
    # Assert: BN statistics unchanged, training mode restored
    assert model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("rate", [0.0, 0.25, 0.5, 0.75])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_parameter_counts_match_the_built_submodel(kind: str, rate: float) -> None:
    # Prepare
    make, shape = MODELS[kind]
    global_model = make(0)
    sub = static_slice(global_model, rate).model
    # Execute
    cost = submodel_cost(global_model, rate, shape)
    # Assert
    floating = sum(t.numel() for t in sub.state_dict().values() if t.is_floating_point())
    assert cost.parameters == count_parameters(sub)
    assert cost.payload == floating
    assert cost.macs == forward_macs(sub, shape)
    assert cost.training_flops(100, epochs=5) == 6 * cost.macs * 100 * 5
    if rate == 0:
        assert cost.parameters == count_parameters(global_model)


def test_training_flops_formula_and_errors() -> None:
    assert training_flops(48, 10) == 3 * 2 * 48 * 10
    assert training_flops(48, 10, epochs=2) == 5760
    with pytest.raises(ValueError):
        training_flops(-1, 10)
