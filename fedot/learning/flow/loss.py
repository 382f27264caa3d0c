r"""The conditional flow-matching loss, composed from a coupling and a probability path.

.. math::

    \mathcal L(\theta) = \mathbb E_{t \sim U[0,1],\ (x_0, x_1) \sim \pi}
        \big\lVert v_\theta(t, x_t) - u_t(x_t \mid x_0, x_1) \big\rVert^2 ,

estimated on a minibatch as the **mean over the batch of the per-sample squared norm summed over
all non-batch dimensions** (not a mean over dimensions, unlike torchcfm). The coupling
:math:`\pi` (independent, minibatch OT, potential-based) and the path
(:math:`x_t`, :math:`u_t`) are separate objects passed in.

References
----------
Lipman et al., "Flow matching for generative modeling", ICLR 2023.
Tong et al., "Improving and generalizing flow-based generative models with minibatch optimal
transport", TMLR 2024. Liu et al., "Flow straight and fast", ICLR 2023.
Wang et al., "Federated flow matching", arXiv 2509.21250, 2025.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedot.learning.flow.couplings import Coupling
from fedot.learning.flow.paths import ProbabilityPath, rand

__all__ = [
    "FlowLossResult",
    "FlowTargets",
    "flow_matching_loss",
    "flow_matching_targets",
    "per_sample_loss",
]


@dataclass(frozen=True)
class FlowLossResult:
    """Minibatch flow-matching loss.

    Attributes
    ----------
    loss : Tensor
        Scalar loss, differentiable with respect to the model parameters.
    plan_cost : float
        Mean squared distance of the pairs chosen by the coupling
        (:attr:`CouplingResult.plan_cost`).
    """

    loss: Tensor
    plan_cost: float


def flow_matching_loss(
    model: nn.Module,
    x0: Tensor,
    x1: Tensor,
    *,
    path: ProbabilityPath,
    coupling: Coupling,
    generator: torch.Generator,
) -> FlowLossResult:
    r"""Minibatch conditional flow-matching loss.

    Steps, in this order of random draws from ``generator`` (documented so that a caller can
    reproduce them, e.g. to check gradient aggregation):

    1. ``pair = coupling.pair(x0, x1, generator)``;
    2. ``t = torch.rand(B, generator=generator)`` (dtype of ``x1``, drawn on the generator's
       device), ``B = pair.x1.shape[0]``;
    3. ``x_t = path.sample(pair.x0, pair.x1, t, generator)`` (draws noise only for
       :class:`GaussianPath` with ``sigma > 0``), ``u_t = path.target(...)``;
    4. ``loss = mean_b sum_{dims} (model(t, x_t) - u_t)^2``.

    Parameters
    ----------
    model : torch.nn.Module
        Velocity field called as ``model(t, x)`` with ``t`` of shape ``(B,)``.
    x0 : Tensor
        Source batch (``N(0, I)`` draws), shape ``(B0, ...)``.
    x1 : Tensor
        Data batch, shape ``(B1, ...)``.
    path : ProbabilityPath
        For example :class:`LinearPath` or :class:`GaussianPath`.
    coupling : Coupling
        For example :class:`IndependentCoupling` or :class:`ExactOTCoupling`.
    generator : torch.Generator
        Source of all randomness.

    Returns
    -------
    FlowLossResult

    Raises
    ------
    FloatingPointError
        If the loss is not finite.
    """
    tg = flow_matching_targets(x0, x1, path=path, coupling=coupling, generator=generator)
    loss = per_sample_loss(model, tg).mean()
    if not bool(torch.isfinite(loss.detach())):
        raise FloatingPointError(f"non-finite flow-matching loss ({float(loss.detach())})")
    return FlowLossResult(loss=loss, plan_cost=tg.plan_cost)


@dataclass(frozen=True)
class FlowTargets:
    """Regression inputs and targets of one minibatch: ``v(t, x_t)`` should match ``u_t``."""

    t: Tensor
    x_t: Tensor
    u_t: Tensor
    plan_cost: float


def flow_matching_targets(
    x0: Tensor, x1: Tensor, *, path: ProbabilityPath, coupling: Coupling,
    generator: torch.Generator,
) -> FlowTargets:
    """Draw steps 1–3 of :func:`flow_matching_loss` (pairing, ``t``, ``x_t``, ``u_t``).

    Lets a caller pool the targets of several minibatches (e.g. the clients of one federated
    round, each with its own coupling) into one forward pass.
    """
    pair = coupling.pair(x0, x1, generator)
    xa, xb = pair.x0, pair.x1
    t = rand((xb.shape[0],), xb, generator)
    x_t = path.sample(xa, xb, t, generator=generator)
    u_t = path.target(xa, xb, t, x_t)
    return FlowTargets(t=t, x_t=x_t, u_t=u_t, plan_cost=pair.plan_cost)


def per_sample_loss(model: nn.Module, targets: FlowTargets) -> Tensor:
    """Return ``sum_{dims} (model(t, x_t) - u_t)^2`` per sample, shape ``(B,)``."""
    v = model(targets.t, targets.x_t)
    if v.shape != targets.u_t.shape:
        raise ValueError(f"model output shape {tuple(v.shape)} differs from target "
                         f"{tuple(targets.u_t.shape)}")
    return (v - targets.u_t).flatten(1).pow(2).sum(dim=1)
