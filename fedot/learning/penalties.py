"""Regularisers added to the local training objective."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

__all__ = ["proximal_penalty"]


def proximal_penalty(
    reference: nn.Module | dict[str, torch.Tensor], mu: float
) -> Callable[[nn.Module], torch.Tensor]:
    """Build the FedProx proximal term.

    The returned callable computes ``(mu / 2) * sum_i ||w_i - w_ref_i||^2``
    over the trainable parameters ``w_i`` of the model it is given, where the
    reference weights are detached and cloned once, when this function is
    called (later changes to ``reference`` have no effect).

    Parameters
    ----------
    reference : torch.nn.Module or dict of str to torch.Tensor
        The anchor weights, usually the global model received from the server:
        a module (its named parameters are used) or a mapping from parameter
        names (as in ``model.named_parameters()``; extra keys such as buffers
        are ignored) to tensors.
    mu : float
        Proximal coefficient, ``mu >= 0``.

    Returns
    -------
    callable
        ``penalty(model) -> torch.Tensor``, a differentiable scalar on the
        device of the model's parameters.

    Raises
    ------
    ValueError
        If ``mu`` is negative or not finite. The callable raises ``KeyError``
        if the model has a trainable parameter missing from the reference and
        ``ValueError`` on a shape mismatch.

    References
    ----------
    .. [1] T. Li, A. K. Sahu, M. Zaheer, M. Sanjabi, A. Talwalkar, V. Smith,
       "Federated Optimization in Heterogeneous Networks", MLSys 2020,
       arXiv:1812.06127.
    """
    mu = float(mu)
    if not mu >= 0.0 or mu == float("inf"):
        raise ValueError(f"mu must be a finite number >= 0, got {mu}")
    items: Iterable[tuple[str, torch.Tensor]]
    if isinstance(reference, nn.Module):
        items = reference.named_parameters()
    else:
        items = reference.items()
    ref: dict[str, torch.Tensor] = {name: torch.as_tensor(t).detach().clone() for name, t in items}

    def penalty(model: nn.Module) -> torch.Tensor:
        total: torch.Tensor | None = None
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            if name not in ref:
                raise KeyError(f"parameter {name!r} of the model is missing from the reference")
            anchor = ref[name]
            if anchor.shape != param.shape:
                raise ValueError(
                    f"shape mismatch for {name!r}: model {tuple(param.shape)}, "
                    f"reference {tuple(anchor.shape)}"
                )
            if anchor.device != param.device or anchor.dtype != param.dtype:
                anchor = anchor.to(device=param.device, dtype=param.dtype)
                ref[name] = anchor
            term = (param - anchor).pow(2).sum()
            total = term if total is None else total + term
        if total is None:
            device = next(iter(model.parameters()), torch.empty(0)).device
            return torch.zeros((), device=device)
        return 0.5 * mu * total

    return penalty
