r"""Semi-dual optimal transport with a source-side potential (FFM-GOT, stage 1).

With the cost :math:`c(x_0, x_1) = \tfrac12 \lVert x_0 - x_1 \rVert^2` (on flattened samples) and
a potential :math:`f_\varphi` on the *source* side, the semi-dual objective is

.. math::

    J(\varphi) = \mathbb{E}_{x_0 \sim q_0}\big[f_\varphi(x_0)\big]
               + \mathbb{E}_{x_1 \sim q_1}\big[f_\varphi^c(x_1)\big],
    \qquad
    f^c(x_1) = \min_{x_0}\; c(x_0, x_1) - f_\varphi(x_0),

and :math:`\max_\varphi J(\varphi) = W_2^2(q_0, q_1) / 2`. With :math:`q_1 = \sum_i \lambda_i q_{i1}`
the second term splits into client terms, and the c-transform only needs samples of the public
source :math:`q_0`, so each client can evaluate its own term (Wang et al., 2025).

The c-transform is approximated as in the FFM reviews: a pool of :math:`K` candidates
:math:`z_k \sim N(0, I)`, the best candidate :math:`k^* = \arg\min_k c(z_k, x_1) - f(z_k)`, then a
few steps of gradient descent on :math:`x_0 \mapsto c(x_0, x_1) - f(x_0)` with :math:`f` frozen.
By the envelope theorem :math:`\nabla_\varphi f^c(x_1) = -\nabla_\varphi f_\varphi(x_0^*(x_1))`, so
:math:`x_0^*` is detached when differentiating :math:`J`.

The potential must act per sample (no batch statistics, e.g. no batch norm in training mode):
the refinement differentiates the summed objective with respect to the whole batch.

References
----------
Wang, Dong, Selim, Zavlanos, Johansson, "Federated flow matching", arXiv 2509.21250, 2025.
Villani, "Optimal transport: old and new", 2009, Ch. 5 (c-transforms, Kantorovich duality).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedot.learning.flow.paths import randn

__all__ = ["CTransformResult", "SemiDualResult", "c_transform", "quadratic_cost", "semidual_objective"]


def quadratic_cost(x0: Tensor, x1: Tensor) -> Tensor:
    r"""Per-pair cost :math:`c(x_0, x_1) = \tfrac12 \lVert x_0 - x_1 \rVert^2` on flattened samples.

    Parameters
    ----------
    x0, x1 : Tensor
        Batches of the same shape ``(B, ...)``.

    Returns
    -------
    Tensor
        Shape ``(B,)``.
    """
    return 0.5 * (x0 - x1).flatten(1).pow(2).sum(dim=1)


def _pairwise_cost(x1: Tensor, z: Tensor) -> Tensor:
    """Matrix ``C[b, k] = 1/2 |x1_b - z_k|^2`` (shape ``(B, K)``), via the expansion of the square."""
    a, b = x1.flatten(1), z.flatten(1)
    sq = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T
    return 0.5 * sq.clamp_min(0.0)


def _potential_values(potential: nn.Module, x: Tensor) -> Tensor:
    """Evaluate ``potential`` and check that it returns one scalar per sample, shape ``(B,)``."""
    out = potential(x)
    if out.shape != (x.shape[0],):
        out = out.reshape(-1)
        if out.shape != (x.shape[0],):
            raise ValueError(f"potential must return one scalar per sample, got {tuple(out.shape)}")
    return out


def _check_finite(name: str, value: Tensor) -> None:
    if not bool(torch.isfinite(value).all()):
        raise FloatingPointError(f"non-finite values in {name}")


@dataclass(frozen=True)
class CTransformResult:
    """Approximate c-transform of a batch (see :func:`c_transform`).

    Attributes
    ----------
    x0_star : Tensor
        Approximate minimisers :math:`x_0^*(x_1)`, detached, same shape/dtype/device as ``x1``.
    value : Tensor
        Estimates of :math:`f^c(x_1) = c(x_0^*, x_1) - f(x_0^*)`, shape ``(B,)``, detached. They
        upper-bound the exact c-transform (the minimum is approximated from above).
    argmin_index : Tensor
        Index ``k*`` of the best candidate of the pool for every sample, shape ``(B,)``, ``int64``.
    """

    x0_star: Tensor
    value: Tensor
    argmin_index: Tensor


@dataclass(frozen=True)
class SemiDualResult:
    r"""Minibatch semi-dual objective (see :func:`semidual_objective`).

    Attributes
    ----------
    objective : Tensor
        Scalar :math:`\hat J(\varphi)`, differentiable with respect to the potential's parameters
        (maximise it).
    x0_star : Tensor
        Detached c-transform minimisers of the ``x1`` batch.
    ctransform_value : Tensor
        Detached estimates of :math:`f^c(x_1)`, shape ``(B,)``.
    """

    objective: Tensor
    x0_star: Tensor
    ctransform_value: Tensor


def c_transform(
    potential: nn.Module,
    x1: Tensor,
    *,
    candidates: int,
    refine_steps: int,
    step_size: float,
    generator: torch.Generator,
) -> CTransformResult:
    r"""Approximate the c-transform :math:`f^c(x_1) = \min_{x_0} c(x_0, x_1) - f(x_0)`.

    1. Draw one pool of ``candidates`` source samples :math:`z_k \sim N(0, I)` of shape
       ``(K, *x1.shape[1:])`` with ``generator`` (shared by the whole batch).
    2. Pick :math:`k^*(b) = \arg\min_k \tfrac12 \lVert z_k - x_{1,b} \rVert^2 - f(z_k)`.
    3. Run ``refine_steps`` steps of gradient descent
       :math:`x_0 \leftarrow x_0 - \eta\,[(x_0 - x_1) - \nabla f(x_0)]` from :math:`z_{k^*}`;
       for samples where the last iterate has a higher objective than :math:`z_{k^*}` (a step
       size too large for the local curvature) the candidate is kept, so refinement never makes
       the estimate worse than the best candidate.

    Only gradients with respect to :math:`x_0` are taken (``torch.autograd.grad``), so the
    potential's ``.grad`` fields are untouched; the function works inside ``torch.no_grad``.

    Parameters
    ----------
    potential : torch.nn.Module
        Maps a batch ``(B, ...)`` of source-space points to scalars ``(B,)``; per-sample.
    x1 : Tensor
        Target batch ``(B, ...)``.
    candidates : int
        Pool size ``K`` (>= 1). 128-256 in the FFM setting.
    refine_steps : int
        Gradient-descent steps (>= 0); 0 returns the best candidate.
    step_size : float
        Step :math:`\eta` (> 0 when ``refine_steps > 0``); 0.1 suits unit-variance data.
    generator : torch.Generator
        Source of the candidate pool.

    Returns
    -------
    CTransformResult

    Raises
    ------
    ValueError
        For invalid sizes or step parameters.
    FloatingPointError
        If the potential or the refined points become non-finite.
    """
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")
    if refine_steps < 0:
        raise ValueError(f"refine_steps must be >= 0, got {refine_steps}")
    if refine_steps > 0 and not step_size > 0:
        raise ValueError(f"step_size must be > 0, got {step_size!r}")
    x1 = x1.detach()
    pool = randn((candidates, *x1.shape[1:]), x1, generator)
    with torch.no_grad():
        f_pool = _potential_values(potential, pool)
        _check_finite("potential values of the candidate pool", f_pool)
        scores = _pairwise_cost(x1, pool) - f_pool[None, :]
        k_star = scores.argmin(dim=1)
    shape = (-1, *([1] * (x1.ndim - 1)))
    start = pool[k_star]
    x = start
    for step in range(refine_steps + 1):
        last = step == refine_steps
        with torch.enable_grad():
            xr = x.detach().requires_grad_(not last)
            obj = quadratic_cost(xr, x1) - _potential_values(potential, xr)
            grad = None if last else torch.autograd.grad(obj.sum(), xr)[0]
        obj = obj.detach()
        _check_finite("c-transform objective", obj)
        if step == 0:
            start_val = obj
        if grad is not None:
            x = xr.detach() - step_size * grad
    # keep the refined point unless refinement increased the objective (then the candidate)
    worse = obj > start_val
    value = torch.where(worse, start_val, obj)
    x0_star = torch.where(worse.reshape(shape), start, x.detach())
    return CTransformResult(x0_star=x0_star, value=value, argmin_index=k_star)


def semidual_objective(
    potential: nn.Module,
    x0: Tensor,
    x1: Tensor,
    *,
    candidates: int,
    refine_steps: int,
    step_size: float,
    generator: torch.Generator,
) -> SemiDualResult:
    r"""Minibatch estimate of the semi-dual objective :math:`J(\varphi)`.

    .. math::

        \hat J(\varphi) = \frac1{B_0} \sum_a f_\varphi(x_{0,a})
            + \frac1{B_1} \sum_b \big[c(x_{0,b}^*, x_{1,b}) - f_\varphi(x_{0,b}^*)\big],

    with :math:`x_0^*` from :func:`c_transform` and detached (envelope theorem), so
    :math:`\nabla_\varphi \hat J = \overline{\nabla f(x_0)} - \overline{\nabla f(x_0^*)}`. The
    caller maximises :math:`\hat J` (minimises :math:`-\hat J`). For a federated client the first
    term is the public part and the second its private term.

    Parameters
    ----------
    potential : torch.nn.Module
        Source-side potential, ``(B, ...) -> (B,)``.
    x0 : Tensor
        Source batch ``(B0, ...)`` (fresh ``N(0, I)`` draws).
    x1 : Tensor
        Target batch ``(B1, ...)``.
    candidates, refine_steps, step_size, generator
        Passed to :func:`c_transform`.

    Returns
    -------
    SemiDualResult

    Raises
    ------
    FloatingPointError
        If the objective is not finite.
    """
    ct = c_transform(potential, x1, candidates=candidates, refine_steps=refine_steps,
                     step_size=step_size, generator=generator)
    source_term = _potential_values(potential, x0).mean()
    target_term = (quadratic_cost(ct.x0_star, x1.detach())
                   - _potential_values(potential, ct.x0_star)).mean()
    objective = source_term + target_term
    _check_finite("semi-dual objective", objective.detach())
    return SemiDualResult(objective=objective, x0_star=ct.x0_star, ctransform_value=ct.value)
