r"""Cost accounting of width-pruned submodels: parameters, payload, forward MACs, training FLOPs.

Multiply-accumulates (MACs) of one forward pass per sample count only the affine layers:

* ``Linear(d_in, d_out)``: :math:`d_{\text{in}} \cdot d_{\text{out}}`;
* ``Conv2d(c_in, c_out, k)`` with an :math:`h_{\text{out}} \times w_{\text{out}}` output:
  :math:`h_{\text{out}} w_{\text{out}} \cdot k^2 \cdot (c_{\text{in}} / \text{groups})
  \cdot c_{\text{out}}` (``Conv1d``/``Conv3d`` analogously).

Biases, batch norm, activations and pooling are ignored (the usual convention; they are
:math:`O(\text{activations})`, not :math:`O(\text{weights})`). Local training costs about
:math:`3 \times 2 \times \text{MACs}` FLOPs per sample and epoch (forward + backward with respect to
activations and weights, two FLOPs per MAC). Width pruning at rate :math:`\rho` scales the MACs of a
hidden-to-hidden layer by :math:`(1 - \rho)^2` and of the first and last layers by :math:`1 - \rho`.

References
----------
.. [1] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and Personalized
   Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631.
.. [2] J. Kaplan et al., "Scaling Laws for Neural Language Models", arXiv:2001.08361, 2020 (the
   6 FLOPs per parameter and token rule).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fedot.fusion.align import eval_mode
from fedot.fusion.spec import PermutationSpec, spec_for
from fedot.subflot._common import reference
from fedot.subflot.submodels import static_slice, submodel_width

__all__ = ["SubmodelCost", "forward_macs", "submodel_cost", "training_flops"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass(frozen=True)
class SubmodelCost:
    """Size and compute of the submodel at one pruning rate (see :func:`submodel_cost`).

    Attributes
    ----------
    rate : float
        Pruning rate.
    widths : dict of str to int
        Group -> submodel width.
    parameters : int
        Number of scalar parameters (equals :func:`fedot.learning.count_parameters` of the submodel).
    payload : int
        Number of floating ``state_dict`` entries sent per transfer: parameters plus batch-norm
        running statistics.
    macs : int
        Forward multiply-accumulates per sample (:func:`forward_macs`).
    """

    rate: float
    widths: dict[str, int]
    parameters: int
    payload: int
    macs: int

    def training_flops(self, samples: int, epochs: int = 1) -> int:
        """Local-training FLOPs for ``samples`` examples, ``epochs`` epochs (:func:`training_flops`)."""
        return training_flops(self.macs, samples, epochs=epochs)


def forward_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass per sample (``Linear`` and ``Conv`` layers only).

    One sample of zeros is passed through ``model`` in eval mode without gradients (batch-norm
    statistics are not touched; ``training`` flags are restored), with forward hooks counting every
    ``Linear`` (input features x output features per output row) and ``Conv1d/2d/3d`` (output
    positions x kernel volume x input channels per group x output channels).

    Parameters
    ----------
    model : torch.nn.Module
        The model (not modified).
    input_shape : tuple of int
        Shape of one example, without the batch dimension.

    Returns
    -------
    int
        MACs per sample.

    Examples
    --------
    >>> from fedot.learning import build_model
    >>> forward_macs(build_model("mlp", (5,), 3, hidden=4), (5,))  # 5*4 + 4*4 + 4*3
    48
    """
    total = [0]

    def hook(module: nn.Module, _inputs: Any, out: Tensor) -> None:
        if isinstance(module, nn.Linear):
            rows = out.numel() // out.shape[-1]
            total[0] += rows * module.in_features * module.out_features
        else:
            assert isinstance(module, _CONV)
            kernel = math.prod(module.kernel_size)
            total[0] += out.numel() * kernel * (module.in_channels // module.groups)

    counted = [m for m in model.modules() if isinstance(m, (nn.Linear, *_CONV))]
    hooks = [m.register_forward_hook(hook) for m in counted]
    ref = reference(model)
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros((1, *input_shape), device=ref.device, dtype=ref.dtype))
    finally:
        for h in hooks:
            h.remove()
    return total[0]


def training_flops(macs: int, samples: int, *, epochs: int = 1) -> int:
    r"""Approximate local-training FLOPs: :math:`6 \cdot \text{MACs} \cdot N \cdot E`.

    For N samples and E epochs. Forward pass: 2 FLOPs per MAC; backward pass (gradients with respect
    to activations and to weights): twice the forward, hence :math:`3 \times 2 \times \text{MACs}`
    per sample and epoch.

    Parameters
    ----------
    macs : int
        Forward MACs per sample (:func:`forward_macs`).
    samples : int
        Training examples per epoch.
    epochs : int, default 1
        Local epochs.

    Returns
    -------
    int
        FLOPs (forward, plus backward at twice the forward cost).

    Raises
    ------
    ValueError
        If an argument is negative.
    """
    if macs < 0 or samples < 0 or epochs < 0:
        raise ValueError(f"macs, samples and epochs must be >= 0, got {macs}, {samples}, {epochs}")
    return 6 * int(macs) * int(samples) * int(epochs)


def submodel_cost(
    global_model: nn.Module,
    rate: float,
    input_shape: tuple[int, ...],
    *,
    spec: PermutationSpec | None = None,
) -> SubmodelCost:
    r"""Parameters, payload and forward MACs of ``global_model``'s submodel at ``rate``.

    Parameter and payload counts are computed from the tensor shapes alone: every axis of group
    :math:`\ell` shrinks by :math:`m_\ell / n_\ell` (:func:`~fedot.subflot.submodel_width`),
    other axes are unchanged. The MACs are those of the static slice (:func:`forward_macs`); every
    submodel of the same widths (OTP, rolling) costs the same.

    Parameters
    ----------
    global_model : torch.nn.Module
        The global model (not modified).
    rate : float
        Pruning rate in :math:`[0, 1)`.
    input_shape : tuple of int
        Shape of one example, without the batch dimension.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    SubmodelCost
        The counts.
    """
    spec = spec_for(global_model, spec)
    state = global_model.state_dict()
    sizes = spec.sizes(state)
    widths = {g: submodel_width(n, rate) for g, n in sizes.items()}

    def numel(key: str, t: Tensor) -> int:
        axes = spec.axes.get(key, (None,) * t.dim())
        return math.prod(
            (s // sizes[g]) * widths[g] if g is not None else s
            for s, g in zip(t.shape, axes, strict=True)
        )

    param_keys = {k for k, _ in global_model.named_parameters()}
    parameters = sum(numel(k, t) for k, t in state.items() if k in param_keys)
    payload = sum(numel(k, t) for k, t in state.items() if t.is_floating_point())
    macs = forward_macs(static_slice(global_model, rate, spec=spec).model, input_shape)
    return SubmodelCost(rate=float(rate), widths=widths, parameters=parameters, payload=payload,
                        macs=macs)
