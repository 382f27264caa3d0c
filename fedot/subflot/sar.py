r"""SAR: SubFLOT's scaling-based adaptive regularisation of local training.

Client :math:`i` with pruning rate :math:`\rho_i` minimises (Jiang, He, Chen, Sun, CVPR 2026)

.. math::

    \mathcal{L}_i(W) = \mathcal{L}_{\text{CE}}(W; D_i) + \lambda\, \rho_i\, \|W - \tilde W_i\|_2^2,

where :math:`\tilde W_i` is the personalised submodel received from the server (OTP's output, the
*anchor*) and :math:`\lambda = 1` in the paper. The strength grows linearly with the pruning rate:
full-width clients (:math:`\rho = 0`) are not regularised, the most pruned clients, whose
submodels deviate most from the global model, the most. The gradient of the penalty is
:math:`2 \lambda \rho_i (W - \tilde W_i)`. Unlike FedProx's :math:`\tfrac{\mu}{2}\|\cdot\|^2`
there is no factor :math:`1/2`.

References
----------
.. [1] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and Personalized
   Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from fedot.subflot._common import check_nonnegative, check_rate

__all__ = ["sar_penalty"]


def sar_penalty(model: nn.Module, anchor_state: Mapping[str, Tensor], rate: float, lam: float) -> Tensor:
    r"""Compute the SAR penalty :math:`\lambda \rho \sum_p \|W_p - \tilde W_p\|_2^2` (differentiable).

    The sum runs over ``model.named_parameters()`` (weights, biases, batch-norm :math:`\gamma` and
    :math:`\beta`), frozen ones included; buffers (batch-norm running statistics,
    ``num_batches_tracked``) are not parameters and are not penalised. The anchor is treated as a
    constant (detached and moved to each parameter's device and dtype; a no-op when it already lives
    there, so pass an anchor on the training device to avoid copies every step).

    Parameters
    ----------
    model : torch.nn.Module
        The client's submodel being trained.
    anchor_state : mapping of str to Tensor
        The anchor :math:`\tilde W_i`, e.g. the ``state_dict`` received from the server; must hold
        every parameter name of ``model`` with the same shape (extra entries are ignored).
    rate : float
        The client's pruning rate :math:`\rho \in [0, 1)`.
    lam : float
        Strength :math:`\lambda \ge 0` (1.0 in the paper).

    Returns
    -------
    Tensor
        A 0-dim tensor on the model's device and dtype. When :math:`\rho = 0` or :math:`\lambda = 0`
        it is a constant zero that does not require grad (adding it to a loss changes nothing and
        costs nothing).

    Raises
    ------
    ValueError
        If ``rate`` is not in :math:`[0, 1)`, ``lam`` is negative or not finite, or the anchor lacks
        a parameter or has a different shape.

    Examples
    --------
    >>> import torch
    >>> lin = torch.nn.Linear(2, 1)
    >>> anchor = {k: torch.zeros_like(v) for k, v in lin.state_dict().items()}
    >>> with torch.no_grad():
    ...     _ = lin.weight.fill_(1.0), lin.bias.fill_(2.0)
    >>> float(sar_penalty(lin, anchor, rate=0.5, lam=1.0).detach())
    3.0
    """
    rho = check_rate(rate)
    strength = check_nonnegative(lam, "lam") * rho
    params = list(model.named_parameters())
    for name, p in params:
        if name not in anchor_state:
            raise ValueError(f"anchor_state lacks parameter {name!r}")
        if tuple(anchor_state[name].shape) != tuple(p.shape):
            raise ValueError(f"anchor_state[{name!r}] has shape {tuple(anchor_state[name].shape)}, "
                             f"the parameter {tuple(p.shape)}")
    ref = next((p for _, p in params if p.is_floating_point()), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    if strength == 0.0 or ref is None:
        return torch.zeros((), device=device, dtype=dtype)
    total = torch.zeros((), device=device, dtype=dtype)
    for name, p in params:
        diff = p - anchor_state[name].detach().to(device=p.device, dtype=p.dtype)
        total = total + diff.pow(2).sum()
    return total * strength
