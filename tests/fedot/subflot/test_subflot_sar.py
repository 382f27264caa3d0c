"""SAR: value, autograd gradient 2*lam*rho*(W - W~), zero at rho = 0 or lam = 0, errors."""

from __future__ import annotations

import pytest
import torch
from subflot_helpers import cnn, gen, perturb

from fedot.subflot import sar_penalty, static_slice


def _setup() -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    model = static_slice(cnn(0), 0.5).model.double().train()
    anchor = perturb(model, 0.3, seed=1).state_dict()
    return model, anchor


def test_value_and_gradient_match_the_closed_form() -> None:
    # Prepare
    model, anchor = _setup()
    rate, lam = 0.75, 0.7
    params = dict(model.named_parameters())
    # Execute
    penalty = sar_penalty(model, anchor, rate, lam)
    grads = torch.autograd.grad(penalty, list(params.values()))
    # Assert: all parameters (incl. BN gamma/beta) are penalised; buffers are not
    expected = lam * rate * sum(((p - anchor[k]) ** 2).sum() for k, p in params.items())
    assert torch.allclose(penalty, expected, rtol=1e-12)
    for (k, p), g in zip(params.items(), grads, strict=True):
        assert torch.allclose(g, 2 * lam * rate * (p.detach() - anchor[k]), rtol=1e-12, atol=0), k
    assert penalty.dtype == torch.float64 and penalty.dim() == 0


def test_buffers_are_not_penalised() -> None:
    # Prepare: the anchor differs from the model only in its BN running statistics
    model, _ = _setup()
    anchor = {k: v.clone() for k, v in model.state_dict().items()}
    for k in anchor:
        if "running" in k:
            anchor[k] += 5.0
    # Execute
    penalty = sar_penalty(model, anchor, 0.5, 1.0)
    # Assert
    assert float(penalty.detach()) == 0.0


@pytest.mark.parametrize(("rate", "lam"), [(0.0, 1.0), (0.5, 0.0)])
def test_penalty_vanishes_at_rate_zero_or_lam_zero(rate: float, lam: float) -> None:
    # Prepare
    model, anchor = _setup()
    x = torch.randn(4, 1, 8, 8, generator=gen(2), dtype=torch.float64)
    loss_fn = torch.nn.CrossEntropyLoss()
    y = torch.tensor([0, 1, 2, 0])
    # Execute
    penalty = sar_penalty(model, anchor, rate, lam)
    with_sar = torch.autograd.grad(loss_fn(model(x), y) + penalty, list(model.parameters()))
    without = torch.autograd.grad(loss_fn(model(x), y), list(model.parameters()))
    # Assert
    assert float(penalty) == 0.0 and not penalty.requires_grad
    assert all(torch.equal(a, b) for a, b in zip(with_sar, without, strict=True))


def test_invalid_arguments_raise() -> None:
    # Prepare
    model, anchor = _setup()
    # Execute / Assert
    with pytest.raises(ValueError, match="rate"):
        sar_penalty(model, anchor, 1.0, 1.0)
    with pytest.raises(ValueError, match="lam"):
        sar_penalty(model, anchor, 0.5, -1.0)
    with pytest.raises(ValueError, match="lacks"):
        sar_penalty(model, {}, 0.5, 1.0)
    wrong = dict(anchor)
    wrong["0.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="shape"):
        sar_penalty(model, wrong, 0.5, 1.0)
