from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from fedot.learning import build_model, proximal_penalty, train


def _flat(model: torch.nn.Module) -> np.ndarray:
    return np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])


@pytest.mark.parametrize("as_dict", [False, True])
def test_zero_at_reference(as_dict: bool) -> None:
    model = build_model("cnn", (1, 8, 8), 4, hidden=8, seed=0)
    ref = dict(model.state_dict()) if as_dict else copy.deepcopy(model)
    value = proximal_penalty(ref, mu=5.0)(model)
    assert value.ndim == 0
    assert value.item() == 0.0


def test_value_and_gradient_match_formula() -> None:
    ref = build_model("mlp", (5,), 3, hidden=4, seed=0)
    model = build_model("mlp", (5,), 3, hidden=4, seed=1)
    mu = 0.3
    diff = _flat(model).astype(np.float64) - _flat(ref).astype(np.float64)
    value = proximal_penalty(ref, mu)(model)
    assert value.item() == pytest.approx(0.5 * mu * float(diff @ diff), rel=1e-5)
    value.backward()
    grad = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    np.testing.assert_allclose(grad, mu * diff, rtol=1e-5, atol=1e-7)


def test_reference_is_cloned_once() -> None:
    ref = build_model("logreg", (4,), 2, seed=0)
    model = copy.deepcopy(ref)
    penalty = proximal_penalty(ref, mu=1.0)
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(1.0)
    assert penalty(model).item() == 0.0


def test_frozen_parameters_are_ignored() -> None:
    ref = build_model("logreg", (4,), 2, seed=0)
    model = build_model("logreg", (4,), 2, seed=1)
    model[1].weight.requires_grad_(False)
    diff = (model[1].bias - ref[1].bias).detach()
    assert proximal_penalty(ref, 2.0)(model).item() == pytest.approx(float((diff**2).sum()))


def test_large_mu_keeps_weights_near_reference(
    digits_split: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    xtr, ytr, _, _ = digits_split
    start = build_model("mlp", (1, 8, 8), 10, hidden=32, seed=0)
    distances = {}
    for mu in (0.0, 10.0):
        model = copy.deepcopy(start)
        train(model, xtr, ytr, epochs=2, lr=0.05, seed=0, penalty=proximal_penalty(start, mu))
        distances[mu] = float(np.linalg.norm(_flat(model) - _flat(start)))
    assert distances[0.0] > 0.0
    assert distances[10.0] < 0.5 * distances[0.0]


def test_bad_arguments() -> None:
    ref = build_model("logreg", (4,), 2)
    for mu in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="mu"):
            proximal_penalty(ref, mu)
    partial = {"1.weight": ref[1].weight.detach()}
    with pytest.raises(KeyError, match="1.bias"):
        proximal_penalty(partial, 1.0)(ref)
    with pytest.raises(ValueError, match="shape mismatch"):
        proximal_penalty(ref, 1.0)(build_model("logreg", (5,), 2))
