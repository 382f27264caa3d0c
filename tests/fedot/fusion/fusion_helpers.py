"""Helpers shared by the fusion tests (imported as ``fusion_helpers``; not a test module)."""

from __future__ import annotations

import torch
from torch import nn


def gen(seed: int) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def inverse(perm: torch.Tensor) -> torch.Tensor:
    """The inverse permutation."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel())
    return inv


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Give every batch norm non-trivial affine parameters and running statistics."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()
