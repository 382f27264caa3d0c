r"""Couplings: how a source batch :math:`x_0` and a data batch :math:`x_1` are paired.

A coupling is a small object with ``pair(x0, x1, generator) -> CouplingResult``; the flow-matching
loss composes it with a probability path (:mod:`fedot.learning.flow.paths`). The couplings are

* :class:`IndependentCoupling` -- identity pairing, :math:`\pi = q_0 \otimes q_1`
  (I-CFM; FFM-vanilla);
* :class:`ExactOTCoupling` -- exact minibatch OT with squared Euclidean cost
  (OT-CFM; FFM-LOT when applied per client);
* :class:`EntropicOTCoupling` -- entropic minibatch OT (Sinkhorn, log domain);
* :class:`PotentialCoupling` -- pairs every :math:`x_1` with the approximate c-transform minimiser
  :math:`x_0^*(x_1)` of a learned source-side potential (FFM-GOT, stage 2).

``plan_cost`` is always the mean squared Euclidean distance
:math:`\frac1n \sum_j \lVert x_{0,j} - x_{1,j} \rVert^2` between the *returned* pairs (flattened
samples; no factor :math:`\tfrac12`), so it is comparable across couplings and, for exact OT with
equal batch sizes, equals the minibatch :math:`W_2^2` estimate.

References
----------
Tong et al., "Improving and generalizing flow-based generative models with minibatch optimal
transport", TMLR 2024 (OT-CFM). Pooladian et al., "Multisample flow matching", ICML 2023.
Cuturi, "Sinkhorn distances", NeurIPS 2013. Wang et al., "Federated flow matching",
arXiv 2509.21250, 2025.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import ot
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from fedot.learning.flow.semidual import c_transform

__all__ = [
    "Coupling",
    "CouplingResult",
    "EntropicOTCoupling",
    "ExactOTCoupling",
    "IndependentCoupling",
    "PotentialCoupling",
]


@dataclass(frozen=True)
class CouplingResult:
    """Re-paired batches returned by a coupling.

    Attributes
    ----------
    x0, x1 : Tensor
        Paired batches (row ``j`` of ``x0`` is paired with row ``j`` of ``x1``), in the input
        dtype and device.
    plan_cost : float
        Mean squared Euclidean distance between the returned pairs.
    info : dict
        Coupling-specific diagnostics (for example the OT plan as ``numpy`` under ``"plan"``).
    """

    x0: Tensor
    x1: Tensor
    plan_cost: float
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Coupling(Protocol):
    """Interface of a coupling."""

    def pair(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> CouplingResult:
        """Return re-paired batches."""
        ...


def _pair_cost(x0: Tensor, x1: Tensor) -> float:
    return float((x0 - x1).flatten(1).pow(2).sum(1).mean())


def _check_batches(x0: Tensor, x1: Tensor) -> None:
    if x0.ndim < 1 or x1.ndim < 1 or x0.shape[1:] != x1.shape[1:]:
        raise ValueError(
            f"x0 and x1 must share their sample shape, got {tuple(x0.shape)} and {tuple(x1.shape)}"
        )
    if x0.shape[0] == 0 or x1.shape[0] == 0:
        raise ValueError("empty batch")


def _cost_matrix(x0: Tensor, x1: Tensor) -> np.ndarray:
    """Squared Euclidean cost matrix on flattened samples, float64 numpy (CPU)."""
    # Computed with torch, not numpy: a numpy BLAS call (OpenBLAS threads) between torch ops
    # (OpenMP threads) oversubscribes the cores — measured 5× slower LOT steps on 2 cores.
    a = x0.detach().flatten(1).to("cpu", torch.float64)
    b = x1.detach().flatten(1).to("cpu", torch.float64)
    cost = torch.cdist(a, b).square_().numpy()
    if not np.all(np.isfinite(cost)):
        raise FloatingPointError("non-finite values in the OT cost matrix")
    return cost


def _sample_rows(plan: np.ndarray, generator: torch.Generator | None) -> np.ndarray:
    """For every row ``a`` draw a column ``b ~ plan[a, :] / plan[a, :].sum()`` with ``generator``."""
    if generator is None:
        raise ValueError("sampling pairs from an OT plan needs an explicit torch.Generator")
    probs = torch.as_tensor(np.maximum(plan, 0.0), dtype=torch.float64, device=generator.device)
    if bool((probs.sum(1) <= 0).any()):
        raise FloatingPointError("OT plan has an empty row; cannot sample pairs")
    return torch.multinomial(probs, 1, replacement=True, generator=generator)[:, 0].cpu().numpy()


def _index(x: Tensor, idx: np.ndarray) -> Tensor:
    return x[torch.as_tensor(idx, dtype=torch.long, device=x.device)]


class IndependentCoupling:
    r"""Identity pairing: :math:`(x_{0,j}, x_{1,j})`, i.e. the product coupling for i.i.d. batches.

    This is the I-CFM / FFM-vanilla coupling (Lipman et al., ICLR 2023; Tong et al., TMLR 2024).
    Needs equal batch sizes; ``generator`` is unused.
    """

    def pair(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> CouplingResult:
        """Return the batches unchanged.

        Raises
        ------
        ValueError
            If the batches differ in size or sample shape.
        """
        _check_batches(x0, x1)
        if x0.shape[0] != x1.shape[0]:
            raise ValueError(
                f"IndependentCoupling needs equal batch sizes, got {x0.shape[0]} and {x1.shape[0]}"
            )
        return CouplingResult(x0, x1, _pair_cost(x0, x1), {})

    def __repr__(self) -> str:
        return "IndependentCoupling()"


class ExactOTCoupling:
    r"""Exact minibatch optimal transport (OT-CFM; FFM-LOT per client).

    Solves :math:`P = \arg\min_{P \in \Pi(u_{B_0}, u_{B_1})} \langle P, C \rangle` with
    :math:`C_{ab} = \lVert x_{0,a} - x_{1,b} \rVert^2` (``ot.emd`` in float64 on the CPU).

    * Equal batch sizes: :math:`B\,P` is a permutation matrix; ``x0`` is kept and
      ``x1`` is re-ordered to ``x1[sigma]`` with :math:`\sigma(a) = \arg\max_b P_{ab}`
      (deterministic, ``generator`` unused). Should the network simplex return a
      non-permutation vertex (degenerate ties), the assignment is recomputed with
      ``scipy.optimize.linear_sum_assignment``.
    * Unequal sizes: ``x0`` is kept and for every row ``a`` a partner
      :math:`b \sim P_{a,\cdot} / P_{a,\cdot}\mathbf 1` is drawn with ``generator`` (so the output
      has ``B0`` pairs).

    ``info["plan"]`` holds the plan (numpy, rows = ``x0``), ``info["ot_cost"]`` the exact
    :math:`\langle P, C \rangle` and ``info["assignment"]`` the column of every row.

    Parameters
    ----------
    num_iter_max : int, default 1_000_000
        Iteration cap of the network simplex; a warning is issued when it is hit.

    References
    ----------
    Tong et al., TMLR 2024; Pooladian et al., ICML 2023; Wang et al., arXiv 2509.21250 (FFM-LOT).
    """

    def __init__(self, num_iter_max: int = 1_000_000) -> None:
        self.num_iter_max = int(num_iter_max)

    def pair(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> CouplingResult:
        """Pair the batches along the exact OT plan.

        Raises
        ------
        ValueError
            On mismatched sample shapes, or unequal sizes without a generator.
        FloatingPointError
            On non-finite inputs.
        """
        _check_batches(x0, x1)
        cost = _cost_matrix(x0, x1)
        n0, n1 = cost.shape
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan = ot.emd(ot.unif(n0), ot.unif(n1), cost, numItermax=self.num_iter_max)
        for w in caught:
            warnings.warn(f"ExactOTCoupling: ot.emd did not converge cleanly: {w.message}",
                          RuntimeWarning, stacklevel=2)
        if n0 == n1:
            assignment = plan.argmax(axis=1)
            if len(np.unique(assignment)) != n0:
                assignment = linear_sum_assignment(cost)[1]
        else:
            assignment = _sample_rows(plan, generator)
        x1p = _index(x1, assignment)
        info = {"plan": plan, "ot_cost": float(np.sum(plan * cost)), "assignment": assignment}
        return CouplingResult(x0, x1p, _pair_cost(x0, x1p), info)

    def __repr__(self) -> str:
        return "ExactOTCoupling()"


class EntropicOTCoupling:
    r"""Entropic minibatch OT (log-domain Sinkhorn) with sampled pairs.

    Solves :math:`\min_P \langle P, \tilde C\rangle - \varepsilon H(P)` over
    :math:`\Pi(u_{B_0}, u_{B_1})` with ``ot.sinkhorn(method="sinkhorn_log")``, where
    :math:`\tilde C = C / \max C` if ``normalize_cost`` (as torchcfm does) else :math:`C`. Then
    ``x0`` is kept and for every row ``a`` a partner :math:`b \sim P_{a,\cdot}/P_{a,\cdot}\mathbf 1`
    is drawn with ``generator`` (with replacement across rows). As ``reg -> 0`` this recovers
    :class:`ExactOTCoupling`.

    A :class:`RuntimeWarning` is issued when the marginal error
    :math:`\lVert P\mathbf 1 - a\rVert_1 + \lVert P^\top \mathbf 1 - b\rVert_1` exceeds ``tol``.
    ``info`` holds ``"plan"``, ``"marginal_error"``, ``"ot_cost"`` (:math:`\langle P, C\rangle`
    with the unnormalised cost) and ``"assignment"``.

    Parameters
    ----------
    reg : float
        Entropic regularisation :math:`\varepsilon > 0` (relative to the normalised cost when
        ``normalize_cost``).
    normalize_cost : bool, default True
        Divide the cost by its maximum before solving.
    num_iter_max : int, default 10_000
        Sinkhorn iteration cap.
    stop_thr : float, default 1e-9
        Sinkhorn stopping threshold.
    tol : float, default 1e-4
        Marginal error above which a non-convergence warning is issued.

    References
    ----------
    Cuturi, NeurIPS 2013; Tong et al., TMLR 2024 (SB-CFM / entropic OT-CFM).
    """

    def __init__(self, reg: float, normalize_cost: bool = True, *, num_iter_max: int = 10_000,
                 stop_thr: float = 1e-9, tol: float = 1e-4) -> None:
        if not reg > 0:
            raise ValueError(f"reg must be > 0, got {reg!r}")
        self.reg = float(reg)
        self.normalize_cost = bool(normalize_cost)
        self.num_iter_max = int(num_iter_max)
        self.stop_thr = float(stop_thr)
        self.tol = float(tol)

    def pair(self, x0: Tensor, x1: Tensor, generator: torch.Generator | None = None) -> CouplingResult:
        """Solve the entropic plan and sample one partner per ``x0`` row.

        Raises
        ------
        ValueError
            On mismatched sample shapes or a missing generator.
        FloatingPointError
            If the plan is not finite.
        """
        _check_batches(x0, x1)
        cost = _cost_matrix(x0, x1)
        n0, n1 = cost.shape
        scale = float(cost.max()) if self.normalize_cost and cost.max() > 0 else 1.0
        a, b = ot.unif(n0), ot.unif(n1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence is checked below on the marginals
            plan = ot.sinkhorn(a, b, cost / scale, self.reg, method="sinkhorn_log",
                               numItermax=self.num_iter_max, stopThr=self.stop_thr)
        plan = np.asarray(plan, dtype=np.float64)
        if not np.all(np.isfinite(plan)):
            raise FloatingPointError(f"EntropicOTCoupling: non-finite plan (reg={self.reg})")
        err = float(np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum())
        if err > self.tol:
            warnings.warn(
                f"EntropicOTCoupling: Sinkhorn did not converge (marginal error {err:.2e} > "
                f"{self.tol:.0e}, reg={self.reg}, {self.num_iter_max} iterations)",
                RuntimeWarning, stacklevel=2)
        assignment = _sample_rows(plan, generator)
        x1p = _index(x1, assignment)
        info = {"plan": plan, "ot_cost": float(np.sum(plan * cost)), "marginal_error": err,
                "assignment": assignment}
        return CouplingResult(x0, x1p, _pair_cost(x0, x1p), info)

    def __repr__(self) -> str:
        return f"EntropicOTCoupling(reg={self.reg}, normalize_cost={self.normalize_cost})"


class PotentialCoupling:
    r"""Global-OT pairing through a source-side dual potential (FFM-GOT, stage 2).

    Every data point :math:`x_1` is paired with the approximate c-transform minimiser

    .. math:: x_0^*(x_1) = \arg\min_{x_0}\; \tfrac12 \lVert x_0 - x_1\rVert^2 - f_\varphi(x_0)

    computed by :func:`fedot.learning.flow.semidual.c_transform`: a pool of ``candidates``
    fresh :math:`N(0, I)` samples of the shape of one ``x1`` sample, drawn with ``generator``,
    the best candidate, then ``refine_steps`` gradient steps. At the semi-dual optimum the
    pairs :math:`(x_0^*(x_1), x_1)` lie on the support of the *global* OT plan, whichever client
    holds :math:`x_1`.

    The ``x0`` argument is ignored (kept for the common coupling interface): the source points
    come from the candidate pool, which plays the role of the source batch. The output has the
    size of ``x1``. The potential is used frozen (no gradient reaches its parameters).

    Parameters
    ----------
    potential : torch.nn.Module
        Trained potential, ``(B, ...) -> (B,)``.
    candidates : int, default 256
        Pool size ``K``.
    refine_steps : int, default 5
        Gradient-descent refinement steps.
    step_size : float, default 0.1
        Refinement step size.

    References
    ----------
    Wang et al., "Federated flow matching", arXiv 2509.21250, 2025.
    """

    def __init__(self, potential: nn.Module, candidates: int = 256, refine_steps: int = 5,
                 step_size: float = 0.1) -> None:
        self.potential = potential
        self.candidates = int(candidates)
        self.refine_steps = int(refine_steps)
        self.step_size = float(step_size)

    def pair(self, x0: Tensor | None, x1: Tensor,
             generator: torch.Generator | None = None) -> CouplingResult:
        """Return ``(x0*(x1), x1)``; ``x0`` is ignored.

        Raises
        ------
        ValueError
            Without a generator (the candidate pool is random).
        FloatingPointError
            If the potential produces non-finite values.
        """
        if generator is None:
            raise ValueError("PotentialCoupling needs a torch.Generator for the candidate pool")
        ct = c_transform(self.potential, x1, candidates=self.candidates, refine_steps=self.refine_steps,
                         step_size=self.step_size, generator=generator)
        x0s = ct.x0_star.to(dtype=x1.dtype)
        info = {"ctransform_value": float(ct.value.mean()), "argmin_index": ct.argmin_index}
        return CouplingResult(x0s, x1, _pair_cost(x0s, x1), info)

    def __repr__(self) -> str:
        return (f"PotentialCoupling(candidates={self.candidates}, refine_steps={self.refine_steps}, "
                f"step_size={self.step_size})")
