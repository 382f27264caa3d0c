r"""REPAIR: restore the activation statistics a fused model lost by averaging.

Averaging aligned networks shrinks the variance of their hidden units: matched units are
correlated, not identical, so the mean of their weight vectors produces pre-activations with a
smaller spread than either parent's ("variance collapse"), and the fused model's later layers see
inputs on the wrong scale. REPAIR (Jordan et al., 2023) renormalises each hidden unit of the fused
model so that, on a probe batch, its pre-activation mean and standard deviation equal the
weighted average of the matched units' statistics in the aligned parents:

.. math::

    \mu^\star_j = \sum_k w_k \mu_{k,j}, \qquad \sigma^\star_j = \sum_k w_k \sigma_{k,j}, \qquad
    W'_j = \frac{\sigma^\star_j}{\sigma_j} W_j, \qquad
    b'_j = \frac{\sigma^\star_j}{\sigma_j}(b_j - \mu_j) + \mu^\star_j,

where :math:`\mu_j, \sigma_j` are the fused model's statistics of unit :math:`j` measured after
the layers before it were corrected (layers are processed in order). Conv channels use the
statistics over batch and space. In networks with batch normalisation the same repair is the
reset of every BN layer's running statistics on the probe (the BN then renormalises its input).
The output layer is left alone. Without a bias the mean is not corrected (only the scale).

The probe is data the server must hold (see the privacy note in ``docs/fusion.md``).

References
----------
.. [1] K. Jordan, H. Sedghi, O. Saukh, R. Entezari, B. Neyshabur, "REPAIR: REnormalizing Permuted
   Activations for Interpolation Repair", ICLR 2023.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from fedot.fusion.align import eval_mode, normalised_weights

__all__ = ["repair"]

_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)
_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


def _hidden_layers(model: nn.Module) -> list[nn.Module]:
    layers = [m for m in model.modules() if isinstance(m, _LAYERS)]
    return layers[:-1]  # the last one is the output layer


def _stats(out: Tensor) -> tuple[Tensor, Tensor]:
    dims = [0, *range(2, out.dim())]  # per unit / channel
    return out.mean(dim=dims), out.std(dim=dims)


def _layer_stats(
    model: nn.Module, probe: Tensor, layers: Sequence[nn.Module]
) -> list[tuple[Tensor, Tensor]]:
    """Per-unit mean and std of each of ``layers``' outputs on ``probe`` (one forward pass)."""
    found: dict[int, tuple[Tensor, Tensor]] = {}
    hooks = [layer.register_forward_hook(
        lambda _m, _i, out, i=i: found.__setitem__(i, _stats(out.detach())))
        for i, layer in enumerate(layers)]
    try:
        with eval_mode(model), torch.no_grad():
            model(probe)
    finally:
        for hook in hooks:
            hook.remove()
    return [found[i] for i in range(len(layers))]


def repair(
    fused: nn.Module,
    aligned: Sequence[nn.Module],
    probe: Tensor,
    *,
    weights: Sequence[float] | None = None,
    eps: float = 1e-6,
) -> nn.Module:
    """Return a copy of ``fused`` with its hidden units' statistics repaired (see module docs).

    Parameters
    ----------
    fused : torch.nn.Module
        The fused model (e.g. :func:`fedot.fusion.fuse` of ``aligned``).
    aligned : sequence of torch.nn.Module
        The parents *aligned to the fused model's units* (same architecture and unit order), e.g.
        ``align(parent, target).model``; their statistics are the targets.
    probe : Tensor
        Input batch ``(N, ...)`` on which statistics are measured.
    weights : sequence of float, optional
        Weights of the parents' statistics (default uniform; normalised).
    eps : float
        Units whose fused standard deviation is below ``eps`` are only shifted, not scaled.

    Returns
    -------
    torch.nn.Module
        A repaired copy, in eval mode (``fused`` is not modified).
    """
    if not aligned:
        raise ValueError("repair needs at least one aligned parent")
    w = normalised_weights(weights, len(aligned))
    out = copy.deepcopy(fused)
    ref = next(out.parameters())
    probe = probe.to(device=ref.device, dtype=ref.dtype)
    norms = [m for m in out.modules() if isinstance(m, _NORMS)]
    if norms:
        return _reset_norms(out, norms, probe)
    layers = _hidden_layers(out)
    parents = [_hidden_layers(model) for model in aligned]
    if any(len(p) != len(layers) for p in parents):
        raise ValueError("aligned parents must have the fused model's architecture")
    stats = [_layer_stats(model, probe, p) for model, p in zip(aligned, parents, strict=True)]
    for i, layer in enumerate(layers):
        mu_t = sum(wk * s[i][0] for wk, s in zip(w, stats, strict=True))
        sd_t = sum(wk * s[i][1] for wk, s in zip(w, stats, strict=True))
        (mu, sd), = _layer_stats(out, probe, [layer])  # after the layers before it were fixed
        scale = torch.where(sd > eps, sd_t / sd.clamp_min(eps), torch.ones_like(sd))
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        with torch.no_grad():
            layer.weight.mul_(scale.reshape(shape))
            if layer.bias is not None:
                layer.bias.copy_((layer.bias - mu) * scale + mu_t)
    return out.eval()


def _reset_norms(model: nn.Module, norms: list[nn.Module], probe: Tensor) -> nn.Module:
    momenta = [m.momentum for m in norms]
    try:
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the probe
        model.train()
        with torch.no_grad():
            model(probe)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
    return model.eval()
