"""Helpers shared by the SubFLOT tests (imported as ``subflot_helpers``; not a test module)."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from fedot.fusion.spec import spec_for, take_axis
from fedot.learning import build_model
from fedot.subflot import static_slice

IMG = (1, 8, 8)


def gen(seed: int) -> torch.Generator:
    """A seeded CPU generator."""
    return torch.Generator().manual_seed(seed)


def randomize_bn(model: nn.Module, seed: int) -> nn.Module:
    """Give every batch norm non-trivial affine parameters and running statistics; eval mode."""
    g = gen(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g))
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.eval()


def mlp(seed: int = 0, hidden: int = 16) -> nn.Module:
    """A random MLP ``12 -> hidden -> hidden -> 3`` in eval mode."""
    return build_model("mlp", (12,), 3, hidden=hidden, seed=seed).eval()


def cnn(seed: int = 0, hidden: int = 16) -> nn.Module:
    """A random conv-BN CNN on 1x8x8 images with non-trivial BN statistics, eval mode."""
    return randomize_bn(build_model("cnn", IMG, 3, hidden=hidden, seed=seed), seed + 100)


MODELS = {"mlp": (mlp, (12,)), "cnn": (cnn, IMG)}


def batch(input_shape: tuple[int, ...], seed: int = 7, n: int = 16) -> Tensor:
    """A seeded random input batch."""
    return torch.randn(n, *input_shape, generator=gen(seed))


def random_perms(model: nn.Module, seed: int) -> dict[str, Tensor]:
    """A random permutation of every hidden group of ``model``."""
    sizes = spec_for(model).sizes(model.state_dict())
    return {g: torch.randperm(n, generator=gen(seed + i)) for i, (g, n) in enumerate(sizes.items())}


def perturb(model: nn.Module, scale: float, seed: int) -> nn.Module:
    """A copy of ``model`` with Gaussian noise of std ``scale`` on every floating parameter."""
    out = copy.deepcopy(model)
    g = gen(seed)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return out


def duplicated(base: nn.Module, template: nn.Module, seed: int) -> nn.Module:
    """A model of ``template``'s widths (twice ``base``'s) computing exactly ``base``'s function.

    Every hidden unit ``k`` of ``base`` appears twice, at random positions ``j`` and ``j'``: the
    producer rows (weights, bias, BN parameters and statistics) are copied, and the outgoing weights
    (consumer columns, flatten blocks included) are split into fractions ``s`` and ``1 - s`` with a
    random ``s`` in (0.2, 0.8) per unit.
    """
    spec = spec_for(base)
    sizes = spec.sizes(base.state_dict())
    g = gen(seed)
    state = dict(base.state_dict())
    for group in spec.order:
        m = sizes[group]
        order = torch.randperm(2 * m, generator=g)
        src = torch.cat([torch.arange(m), torch.arange(m)])[order]
        second = torch.cat([torch.zeros(m, dtype=torch.bool), torch.ones(m, dtype=torch.bool)])[order]
        share = 0.2 + 0.6 * torch.rand(m, generator=g, dtype=torch.float64)
        frac = torch.where(second, 1.0 - share[src], share[src])
        for key, axis in spec.occurrences(group):
            t = take_axis(state[key], axis, src, m)
            if axis != 0:
                block = t.shape[axis] // (2 * m)
                view = [1] * t.dim()
                view[axis] = -1
                t = t * frac.repeat_interleave(block).to(t.dtype).view(view)
            state[key] = t
    out = copy.deepcopy(template)
    out.load_state_dict(state)
    return out


def duplicated_pair(kind: str, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """``(base, global)``: a random half-width model and a duplicated full-width model equal to it."""
    make, _ = MODELS[kind]
    template = make(seed)
    base = make(seed + 1)
    base = static_slice(base, 0.5).model  # random weights at half of every width
    if kind == "cnn":
        base = randomize_bn(base, seed + 2)
    return base, duplicated(base, template, seed + 3)
