r"""Local training loops for flow models and dual potentials (the client side of FFM).

* :func:`train_flow` -- ``steps`` optimizer steps of the flow-matching loss
  (:func:`fedot.learning.flow.loss.flow_matching_loss`) on batches of a local dataset.
* :func:`train_potential` -- ``steps`` ascent steps on the semi-dual objective
  (:func:`fedot.learning.flow.semidual.semidual_objective`), stage 1 of FFM-GOT.
* :func:`flow_matching_gradient`, :func:`semidual_gradient` -- per-parameter gradients on one
  batch, for per-step (FedSGD-style) aggregation :math:`\sum_i \lambda_i g_i` on a server.
* :func:`flow_step_gradient`, :func:`potential_step_gradient` -- the gradient of one step of
  :func:`train_flow` / :func:`train_potential` (same draws, same loss), without the step: what a
  client of per-step aggregation sends to a server that holds the optimizer
  (:class:`fedot.learning.optim.ServerOptimizer`).

Every function draws all its randomness from the ``generator`` it is given, in a documented
order, so the same generator state gives bit-identical results. The training loops build their
optimizer on each call; pass ``optimizer_state`` (the previous call's
:attr:`FlowTrainResult.optimizer_state`) to continue with the same Adam moments, as a client that
keeps its optimizer across federated rounds does.

References
----------
Lipman et al., ICLR 2023; Tong et al., TMLR 2024; Liu et al., ICLR 2023;
Wang et al., "Federated flow matching", arXiv 2509.21250, 2025.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import Tensor, nn

from fedot.learning.flow.couplings import Coupling, IndependentCoupling
from fedot.learning.flow.loss import flow_matching_loss
from fedot.learning.flow.paths import LinearPath, ProbabilityPath, randint, randn
from fedot.learning.flow.semidual import semidual_objective
from fedot.learning.optim import (
    SERVER_OPTIMIZERS,
    load_optimizer_state,
    make_optimizer,
    optimizer_state_arrays,
)

__all__ = [
    "OPTIMIZERS",
    "FlowTrainResult",
    "PotentialTrainResult",
    "StepGradient",
    "draw_batch",
    "flow_matching_gradient",
    "flow_step_gradient",
    "potential_step_gradient",
    "semidual_gradient",
    "train_flow",
    "train_potential",
]

#: Optimizers accepted by the training loops.
OPTIMIZERS: tuple[str, ...] = SERVER_OPTIMIZERS


@dataclass(frozen=True)
class FlowTrainResult:
    """Summary of :func:`train_flow`.

    Attributes
    ----------
    loss : float
        Mean of the per-step losses (each measured before its optimizer step).
    losses : list of float
        Per-step losses.
    plan_cost : float
        Mean over steps of the coupling's mean squared pair distance.
    steps : int
        Number of optimizer steps.
    seconds : float
        Wall-clock duration of the loop.
    optimizer_state : dict of str to Tensor
        The optimizer's state after the loop (:func:`fedot.learning.optim.optimizer_state_arrays`),
        to pass to the next call.
    """

    loss: float
    losses: list[float]
    plan_cost: float
    steps: int
    seconds: float
    optimizer_state: dict[str, Tensor] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class PotentialTrainResult:
    r"""Summary of :func:`train_potential`.

    Attributes
    ----------
    objective : float
        Mean of the per-step minibatch objectives :math:`\hat J` (before each step).
    objectives : list of float
        Per-step objectives.
    steps : int
        Number of optimizer steps.
    seconds : float
        Wall-clock duration of the loop.
    """

    objective: float
    objectives: list[float]
    steps: int
    seconds: float
    optimizer_state: dict[str, Tensor] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StepGradient:
    r"""The gradient of one local step, for a server that holds the optimizer.

    Attributes
    ----------
    grads : dict of str to Tensor
        Gradient of the minimised loss per named trainable parameter (for the potential: of
        :math:`-\hat J`, so every server optimizer descends).
    loss : float
        The step's loss (flow) or objective :math:`\hat J` (potential).
    plan_cost : float
        Mean squared pair distance of the coupling (NaN for the potential).
    seconds : float
        Wall-clock duration.
    """

    grads: dict[str, Tensor]
    loss: float
    plan_cost: float
    seconds: float


def _make_optimizer(
    name: str, params: list[nn.Parameter], lr: float, state: Mapping[str, Tensor] | None
) -> torch.optim.Optimizer:
    opt = make_optimizer(name, list(params), lr)
    if state:
        load_optimizer_state(opt, state)
    return opt


def _check_loop(data: Tensor, steps: int, batch_size: int) -> None:
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if data.ndim < 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty batch (N, ...), got shape {tuple(data.shape)}")


def draw_batch(data: Tensor, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Draw a data batch (indices with replacement), then a source batch ``N(0, I)`` of equal size."""
    idx = randint(data.shape[0], (batch_size,), data.device, generator)
    x1 = data[idx]
    x0 = randn(tuple(x1.shape), x1, generator)
    return x0, x1


def _model_device_data(model: nn.Module, data: Tensor) -> Tensor:
    param = next(model.parameters(), None)
    return data if param is None else data.to(device=param.device)


def train_flow(
    model: nn.Module,
    data: Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    optimizer: Literal["adam", "sgd"] = "adam",
    path: ProbabilityPath | None = None,
    coupling: Coupling | None = None,
    generator: torch.Generator,
    grad_clip: float | None = None,
    optimizer_state: Mapping[str, Tensor] | None = None,
) -> FlowTrainResult:
    r"""Train a velocity field with conditional flow matching on a local dataset.

    Each step draws, from ``generator`` and in this order: ``batch_size`` data indices
    uniformly **with replacement** (i.i.d. minibatches, no epochs), a source batch
    ``x0 ~ N(0, I)`` of the same shape, then the draws of :func:`flow_matching_loss`
    (coupling, ``t``, path noise). It then takes one optimizer step on the loss, after optional
    gradient-norm clipping. The optimizer is built per call, from ``optimizer_state`` when given
    (Adam's moments and step count carry over); the model's train/eval mode is left as it is.

    Parameters
    ----------
    model : torch.nn.Module
        Velocity field ``model(t, x)``; updated in place.
    data : Tensor
        Local target samples ``(N, ...)``; moved to the model's device.
    steps : int
        Number of optimizer steps (0 leaves the model unchanged).
    batch_size : int
        Minibatch size ``B``.
    lr : float
        Learning rate.
    optimizer : {"adam", "sgd"}, default "adam"
        Plain Adam (default betas) or plain SGD (no momentum).
    path : ProbabilityPath, optional
        Defaults to :class:`LinearPath`.
    coupling : Coupling, optional
        Defaults to :class:`IndependentCoupling`.
    generator : torch.Generator
        Source of all randomness.
    grad_clip : float, optional
        Maximum global gradient norm.
    optimizer_state : dict of str to Tensor, optional
        A previous call's :attr:`FlowTrainResult.optimizer_state` (same model, same optimizer).

    Returns
    -------
    FlowTrainResult

    Raises
    ------
    FloatingPointError
        If a loss is not finite.
    """
    _check_loop(data, steps, batch_size)
    path = LinearPath() if path is None else path
    coupling = IndependentCoupling() if coupling is None else coupling
    data = _model_device_data(model, data)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, optimizer_state)
    losses: list[float] = []
    costs: list[float] = []
    start = time.perf_counter()
    for _ in range(steps):
        x0, x1 = draw_batch(data, batch_size, generator)
        res = flow_matching_loss(model, x0, x1, path=path, coupling=coupling, generator=generator)
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        losses.append(float(res.loss.detach()))
        costs.append(res.plan_cost)
    seconds = time.perf_counter() - start
    return FlowTrainResult(
        loss=sum(losses) / len(losses) if losses else float("nan"),
        losses=losses,
        plan_cost=sum(costs) / len(costs) if costs else float("nan"),
        steps=steps,
        seconds=seconds,
        optimizer_state=optimizer_state_arrays(opt),
    )


def train_potential(
    potential: nn.Module,
    data: Tensor,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    candidates: int,
    refine_steps: int,
    step_size: float,
    generator: torch.Generator,
    optimizer: Literal["adam", "sgd"] = "adam",
    optimizer_state: Mapping[str, Tensor] | None = None,
) -> PotentialTrainResult:
    r"""Gradient ascent on the semi-dual objective :math:`J(\varphi)` (FFM-GOT stage 1).

    Each step draws, from ``generator`` and in this order: ``batch_size`` data indices with
    replacement, a source batch ``x0 ~ N(0, I)`` of the same shape, then the c-transform
    candidate pool; it then takes one optimizer step on :math:`-\hat J`. The optimizer is built
    per call, from ``optimizer_state`` when given.

    Parameters
    ----------
    potential : torch.nn.Module
        Source-side potential ``(B, ...) -> (B,)``; updated in place.
    data : Tensor
        Local target samples ``(N, ...)``.
    steps, batch_size, lr
        Loop length, minibatch size and learning rate.
    candidates, refine_steps, step_size
        c-transform settings (see :func:`fedot.learning.flow.semidual.c_transform`).
    generator : torch.Generator
        Source of all randomness.
    optimizer : {"adam", "sgd"}, default "adam"
        Optimizer.
    optimizer_state : dict of str to Tensor, optional
        A previous call's :attr:`PotentialTrainResult.optimizer_state`.

    Returns
    -------
    PotentialTrainResult
    """
    _check_loop(data, steps, batch_size)
    data = _model_device_data(potential, data)
    params = [p for p in potential.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, optimizer_state)
    objectives: list[float] = []
    start = time.perf_counter()
    for _ in range(steps):
        x0, x1 = draw_batch(data, batch_size, generator)
        res = semidual_objective(potential, x0, x1, candidates=candidates, refine_steps=refine_steps,
                                 step_size=step_size, generator=generator)
        opt.zero_grad(set_to_none=True)
        (-res.objective).backward()
        opt.step()
        objectives.append(float(res.objective.detach()))
    seconds = time.perf_counter() - start
    return PotentialTrainResult(
        objective=sum(objectives) / len(objectives) if objectives else float("nan"),
        objectives=objectives,
        steps=steps,
        seconds=seconds,
        optimizer_state=optimizer_state_arrays(opt),
    )


def _named_grads(model: nn.Module, value: Tensor) -> dict[str, Tensor]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    grads = torch.autograd.grad(value, [p for _, p in named], allow_unused=True)
    return {
        n: torch.zeros_like(p) if g is None else g.detach()
        for (n, p), g in zip(named, grads, strict=True)
    }


def flow_matching_gradient(
    model: nn.Module,
    x0: Tensor,
    x1: Tensor,
    *,
    path: ProbabilityPath,
    coupling: Coupling,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    r"""Gradient of the flow-matching loss on one batch, per named trainable parameter.

    Computes :math:`g = \nabla_\theta \hat{\mathcal L}(\theta)` for
    :func:`flow_matching_loss` (same draws from ``generator``) with ``torch.autograd.grad``; the
    parameters' ``.grad`` fields are not touched. A server aggregating
    :math:`\sum_i \lambda_i g_i` obtains the gradient of :math:`\sum_i \lambda_i \hat{\mathcal L}_i`.

    Returns
    -------
    dict of str to Tensor
        Detached gradients keyed by ``model.named_parameters()`` names (zeros for unused ones).
    """
    res = flow_matching_loss(model, x0, x1, path=path, coupling=coupling, generator=generator)
    return _named_grads(model, res.loss)


def semidual_gradient(
    potential: nn.Module,
    x0: Tensor,
    x1: Tensor,
    *,
    candidates: int,
    refine_steps: int,
    step_size: float,
    generator: torch.Generator,
) -> dict[str, Tensor]:
    r"""Ascent direction :math:`\nabla_\varphi \hat J(\varphi)` of the semi-dual objective on one batch.

    Per named trainable parameter of the potential; ``.grad`` fields untouched. Aggregating
    :math:`\sum_i \lambda_i g_i` over clients (each with its own ``x1`` and a source batch
    ``x0``) gives the gradient of :math:`\sum_i \lambda_i \hat J_i`; apply it with a plus sign
    (ascent).
    """
    res = semidual_objective(potential, x0, x1, candidates=candidates, refine_steps=refine_steps,
                             step_size=step_size, generator=generator)
    return _named_grads(potential, res.objective)


def flow_step_gradient(
    model: nn.Module,
    data: Tensor,
    *,
    batch_size: int,
    path: ProbabilityPath | None = None,
    coupling: Coupling | None = None,
    generator: torch.Generator,
) -> StepGradient:
    r"""Gradient of the loss of one :func:`train_flow` step, without taking it.

    Same draws from ``generator`` as the first step of :func:`train_flow` (data indices with
    replacement, source batch, then the loss's draws), so a server that applies this gradient with
    optimizer *O* reproduces one step of ``train_flow(..., optimizer=O)`` exactly.
    """
    _check_loop(data, 1, batch_size)
    path = LinearPath() if path is None else path
    coupling = IndependentCoupling() if coupling is None else coupling
    data = _model_device_data(model, data)
    start = time.perf_counter()
    x0, x1 = draw_batch(data, batch_size, generator)
    res = flow_matching_loss(model, x0, x1, path=path, coupling=coupling, generator=generator)
    grads = _named_grads(model, res.loss)
    return StepGradient(grads, float(res.loss.detach()), res.plan_cost,
                        time.perf_counter() - start)


def potential_step_gradient(
    potential: nn.Module,
    data: Tensor,
    *,
    batch_size: int,
    candidates: int,
    refine_steps: int,
    step_size: float,
    generator: torch.Generator,
) -> StepGradient:
    r"""Gradient of :math:`-\hat J(\varphi)` for one :func:`train_potential` step, without taking it.

    Same draws as the first step of :func:`train_potential`; the sign makes it a descent
    direction, so the server's optimizer (which minimises) ascends :math:`J`.
    """
    _check_loop(data, 1, batch_size)
    data = _model_device_data(potential, data)
    start = time.perf_counter()
    x0, x1 = draw_batch(data, batch_size, generator)
    res = semidual_objective(potential, x0, x1, candidates=candidates, refine_steps=refine_steps,
                             step_size=step_size, generator=generator)
    grads = _named_grads(potential, -res.objective)
    return StepGradient(grads, float(res.objective.detach()), float("nan"),
                        time.perf_counter() - start)
