"""REPAIR: renormalising a fused model's hidden units to the aligned parents' statistics."""

from __future__ import annotations

import pytest
import torch
from fusion_helpers import gen, randomize_bn
from torch import nn

from fedot.fusion import align, repair
from fedot.fusion.oneshot import average_models
from fedot.learning import build_model


def _preacts(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every Linear but the last, computed by hand (independent of the hooks)."""
    outs, h = [], x
    linears = [m for m in model if isinstance(m, nn.Linear)]
    for m in model:
        h = m(h)
        if isinstance(m, nn.Linear) and m is not linears[-1]:
            outs.append(h)
    return outs


def _mlp(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))


def test_identical_parents_come_back_unchanged() -> None:
    # Arrange
    model = _mlp(0)
    probe = torch.randn(64, 6, generator=gen(1))
    # Execute: nothing collapsed, so nothing to repair
    out = repair(model, [model, model], probe)
    # Assert
    for a, b in zip(model.state_dict().values(), out.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_repaired_units_have_the_parents_average_statistics() -> None:
    # Arrange: two differently initialised parents, aligned to the first, then averaged
    a, b = _mlp(0), _mlp(1)
    probe = torch.randn(256, 6, generator=gen(2))
    aligned = [align(m, a, metric="weights").model for m in (a, b)]
    fused = average_models(aligned, [0.25, 0.75])
    # Execute
    out = repair(fused, aligned, probe, weights=[0.25, 0.75])
    # Assert: every hidden pre-activation has mean/std = weighted mean of the parents' (per unit)
    with torch.no_grad():
        got = _preacts(out, probe)
        parents = [_preacts(m, probe) for m in aligned]
        before = _preacts(fused, probe)
    targets = []
    for layer, h in enumerate(got):
        mu_t = 0.25 * parents[0][layer].mean(0) + 0.75 * parents[1][layer].mean(0)
        sd_t = 0.25 * parents[0][layer].std(0) + 0.75 * parents[1][layer].std(0)
        torch.testing.assert_close(h.mean(0), mu_t, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(h.std(0), sd_t, rtol=1e-4, atol=1e-5)
        targets.append(sd_t)
    # the average had collapsed: its spread was below the parents' (the reason for REPAIR)
    assert all(float(h.std(0).mean()) < float(t.mean()) for h, t in zip(before, targets,
                                                                         strict=True))
    # the output layer is untouched
    torch.testing.assert_close(out[4].weight, fused[4].weight)


def test_batchnorm_models_get_their_running_statistics_from_the_probe() -> None:
    # Arrange
    model = randomize_bn(build_model("cnn", (1, 8, 8), 10, hidden=16, seed=0), seed=3)
    probe = torch.randn(32, 1, 8, 8, generator=gen(4))
    # Execute
    out = repair(model, [model], probe)
    # Assert: the first BN's running mean is the probe's batch mean of its input
    first_bn = next(m for m in out.modules() if isinstance(m, nn.BatchNorm2d))
    conv = next(m for m in out.modules() if isinstance(m, nn.Conv2d))
    with torch.no_grad():
        expected = conv(probe).mean(dim=(0, 2, 3))
    torch.testing.assert_close(first_bn.running_mean, expected, rtol=1e-4, atol=1e-5)
    assert not out.training and first_bn.momentum == 0.1  # momentum restored


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]])
def test_bad_weights_raise(weights: list[float]) -> None:
    model = _mlp(0)
    with pytest.raises(ValueError, match="weights"):
        repair(model, [model, model], torch.randn(8, 6), weights=weights)
