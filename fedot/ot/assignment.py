r"""Optimal-transport plans between two sets of neurons (or features), for model alignment and fusion.

Given a ground cost :math:`C \in \mathbb{R}^{n \times m}` between the ``n`` units of a model and the
``m`` units of a target, and marginals :math:`a \in \Delta_n`, :math:`b \in \Delta_m` (uniform by
default), :func:`transport_plan` solves

.. math::

    T^\star = \arg\min_{T \in \Pi(a, b)} \langle C, T \rangle - \varepsilon H(T), \qquad
    \Pi(a, b) = \{T \ge 0 : T 1_m = a,\ T^\top 1_n = b\},

exactly (:math:`\varepsilon = 0`, network simplex ``ot.emd`` or the Hungarian algorithm) or with
entropic regularisation (Sinkhorn, optionally in the log domain). This is the per-layer step of
OTFusion (Singh & Jaggi 2020): neurons of one network are transported onto the neurons of another
before their weights are averaged.

**Exact plans on square, uniform problems are permutations.** For :math:`n = m` and
:math:`a = b = 1/n`, :math:`\Pi(a, b)` is :math:`1/n` times the Birkhoff polytope, whose vertices are
the permutation matrices (Birkhoff–von Neumann), so a linear objective attains its minimum at
:math:`P/n` for some permutation :math:`P`. ``scipy.optimize.linear_sum_assignment`` (Hungarian /
Jonker–Volgenant) finds that :math:`P` directly; its plan has the same optimal cost as ``ot.emd``
(the two can differ only by the choice among tied optima). ``method="exact"`` therefore uses the
assignment solver on square uniform problems and ``ot.emd`` otherwise, and the result carries the
permutation in :attr:`PlanResult.assignment` so that callers can apply it by indexing instead of a
dense :math:`n \times m` matrix product.

Plans keep the backend, dtype and device of ``cost`` (numpy or torch, CPU or GPU). The exact solvers
are CPU-only: only the cost matrix is copied to host memory (as float64), the plan is built back on
the cost's device. Sinkhorn runs on the cost's backend and device.

References
----------
.. [1] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
.. [2] M. Cuturi, "Sinkhorn Distances: Lightspeed Computation of Optimal Transport", NeurIPS 2013.
.. [3] B. Schmitzer, "Stabilized Sparse Scaling Algorithms for Entropy Regularized Transport
   Problems", SIAM J. Sci. Comput. 41(3), 2019 (log-domain Sinkhorn).
.. [4] R. Jonker, A. Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
   assignment problems", Computing 38, 1987 (``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import ot
from ot.backend import Backend, get_backend
from scipy.optimize import linear_sum_assignment

from fedot.ot._utils import Array

__all__ = ["PlanResult", "PlanWarning", "pairwise_sq_dists", "transport_plan"]

Method = Literal["exact", "emd", "lsa", "sinkhorn"]

#: ``method="sinkhorn"`` switches to the log domain (when ``log_domain=None``) once the spread of
#: the cost in units of ``reg`` exceeds this: beyond it ``exp(-C / reg)`` loses most of its digits in
#: float32 and the scaling vectors over- or underflow soon after (POT's kernel ``exp(-C/reg)`` has
#: dynamic range ``exp(ptp(C) / reg)``).
LOG_DOMAIN_THRESHOLD = 30.0

_UNIFORM_RTOL = 1e-6


class PlanWarning(UserWarning):
    """A transport solver stopped early: Sinkhorn hit ``max_iter`` or ``ot.emd`` reported a problem."""


@dataclass(frozen=True)
class PlanResult:
    r"""A transport plan and its diagnostics (see :func:`transport_plan`).

    Attributes
    ----------
    plan : array, shape (n, m)
        :math:`T`, in the backend, dtype and device of the cost.
    cost : float
        Transport cost :math:`\langle C, T \rangle` (without the entropy term).
    marginal_error : float
        :math:`\|T 1_m - a\|_1 + \|T^\top 1_n - b\|_1`.
    entropy : float
        :math:`H(\hat T) = -\sum_{ij} \hat T_{ij} \log \hat T_{ij}` of the plan normalised to unit
        mass, :math:`\hat T = T / \sum T`. It lies between :math:`\max(H(a), H(b))` (a deterministic
        map; :math:`\log n` for a permutation with uniform marginals) and :math:`H(a) + H(b)` (the
        independent coupling :math:`a b^\top`).
    off_identity : float
        :math:`1 - \operatorname{tr}(T) / \sum T` for square plans: 0 when every unit is matched to the
        unit with the same index, 1 when none is. For a rectangular plan (:math:`n \ne m`) the
        diagonal mass is compared with the most it can hold, :math:`1 - \sum_{k < r} T_{kk} /
        \sum_{k < r} \min(a_k, b_k)` with :math:`r = \min(n, m)` and :math:`a = T1`,
        :math:`b = T^\top 1`: 0 when every unit of the smaller side takes all the mass it can from
        the unit with its own index (e.g. a pruned submodel matched to the leading units of the
        full model), 1 when none does.
    iterations : int
        Sinkhorn iterations; 0 for the exact solvers.
    method : str
        The solver that produced the plan: ``"lsa"``, ``"emd"``, ``"sinkhorn"`` or ``"sinkhorn_log"``.
    converged : bool
        Whether the solver met its tolerance (always ``True`` for ``"lsa"``).
    assignment : array of int, shape (n,), or None
        For permutation plans (``method="lsa"``): ``assignment[i]`` is the target unit matched with
        unit ``i``; same backend and device as the plan. ``None`` otherwise.
    """

    plan: Array
    cost: float
    marginal_error: float
    entropy: float
    off_identity: float
    iterations: int
    method: str
    converged: bool = True
    assignment: Array | None = None


def pairwise_sq_dists(x: Any, y: Any) -> Array:
    r"""Squared Euclidean distances between the rows of two matrices, by one matrix product.

    .. math::

        D_{ij} = \|x_i\|^2 + \|y_j\|^2 - 2 \langle x_i, y_j \rangle, \qquad D \leftarrow \max(D, 0).

    The cross term is a single GEMM, so the cost is :math:`2 n m d` flops at the BLAS rate (the
    compute floor of OTFusion's ground metric); the clamp removes the small negative values that
    cancellation produces for (near-)identical rows.

    Parameters
    ----------
    x : array, shape (n, d)
        Rows of the first set (numpy or torch; any device).
    y : array, shape (m, d)
        Rows of the second set, same backend, dtype and device as ``x``.

    Returns
    -------
    array, shape (n, m)
        Nonnegative squared distances, same backend, dtype and device as ``x``.

    Raises
    ------
    ValueError
        If the inputs are not 2-D or their widths differ.
    """
    nx = get_backend(x, y)
    if len(x.shape) != 2 or len(y.shape) != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-D with equal widths, {tuple(x.shape)}, {tuple(y.shape)}")
    x2 = nx.sum(x * x, axis=1)
    y2 = nx.sum(y * y, axis=1)
    if nx.__name__ == "torch":  # fused: the GEMM accumulates into the norm matrix, clamp in place
        import torch

        return torch.addmm(x2[:, None] + y2[None, :], x, y.T, alpha=-2.0).clamp_min_(0.0)
    d = x2[:, None] + y2[None, :] - 2.0 * nx.dot(x, y.T)
    return nx.maximum(d, 0.0)


def _marginal(nx: Backend, v: Any, size: int, like: Array, name: str) -> tuple[Array, bool]:
    """Validate a marginal (or build the uniform one); return it in the cost's type and uniformity."""
    if v is None:
        return nx.ones(size, type_as=like) / size, True
    if isinstance(v, list | tuple):
        v = np.asarray(v, dtype=np.float64)
    vn = np.asarray(get_backend(v).to_numpy(v), dtype=np.float64)
    if vn.shape != (size,):
        raise ValueError(f"{name} must have shape ({size},), got {vn.shape}")
    if not np.all(np.isfinite(vn)) or np.any(vn < 0):
        raise ValueError(f"{name} must be finite and nonnegative")
    total = float(vn.sum())
    if abs(total - 1.0) > max(1e-9, 10 * size * _eps(v.dtype)):
        raise ValueError(f"{name} must sum to 1, sums to {total!r}")
    uniform = bool(np.all(np.abs(vn * size - 1.0) <= _UNIFORM_RTOL))
    return nx.from_numpy(vn / total, type_as=like), uniform


def _eps(dtype: Any) -> float:
    """Machine epsilon of a numpy or torch floating dtype (float64's for anything not 16/32-bit)."""
    name = str(dtype)
    if "16" in name:
        return float(np.finfo(np.float16).eps)
    return float(np.finfo(np.float32 if "32" in name else np.float64).eps)


def _index(nx: Backend, idx: np.ndarray, like: Array) -> Array:
    """Convert an integer index array to the backend and device of ``like``."""
    if nx.__name__ == "torch":
        import torch

        return torch.as_tensor(idx, dtype=torch.int64, device=like.device)
    return nx.from_numpy(idx)


def _entropy(nx: Backend, plan: Array) -> float:
    # 0·log 0 = 0 without a boolean gather (a copy, and a device sync on GPU): log of max(p, tiny)
    p = plan / nx.sum(plan)
    tiny = float(np.finfo(nx.to_numpy(p[:1, :1]).dtype).tiny)
    return float(-nx.sum(p * nx.log(nx.maximum(p, tiny))))


def _off_identity(nx: Backend, plan: Array) -> float:
    n, m = plan.shape
    if n == m:
        return float(1.0 - nx.sum(nx.diag(plan)) / nx.sum(plan))
    r = min(n, m)
    top = nx.minimum(nx.sum(plan, axis=1)[:r], nx.sum(plan, axis=0)[:r])
    most = float(nx.sum(top))
    if most <= 0:
        return math.nan
    return float(1.0 - nx.sum(nx.diag(plan[:r, :r])) / most)


def _solve_lsa(nx: Backend, cost: Array, cost_np: np.ndarray, a: Array) -> PlanResult:
    n = cost_np.shape[0]
    _, cols = linear_sum_assignment(cost_np)
    rows_b, cols_b = _index(nx, np.arange(n), cost), _index(nx, cols.astype(np.int64), cost)
    plan = nx.zeros((n, n), type_as=cost)
    plan[rows_b, cols_b] = a
    a_np = np.asarray(nx.to_numpy(a), dtype=np.float64)
    matched = a_np[a_np > 0]
    return PlanResult(
        plan=plan,
        cost=float(np.dot(cost_np[np.arange(n), cols], a_np)),
        marginal_error=0.0,
        entropy=float(-np.sum(matched * np.log(matched))),
        off_identity=float(1.0 - a_np[cols == np.arange(n)].sum() / a_np.sum()),
        iterations=0,
        method="lsa",
        assignment=cols_b,
    )


def transport_plan(
    cost: Any,
    a: Any = None,
    b: Any = None,
    *,
    method: Method = "exact",
    reg: float = 0.01,
    log_domain: bool | None = None,
    max_iter: int = 10_000,
    tol: float | None = None,
) -> PlanResult:
    r"""Optimal transport plan between two discrete measures for a given ground cost.

    Solves :math:`\min_{T \in \Pi(a, b)} \langle C, T \rangle - \varepsilon H(T)` with
    :math:`H(T) = -\sum_{ij} T_{ij} (\log T_{ij} - 1)`.

    * ``"exact"`` (:math:`\varepsilon = 0`): ``"lsa"`` when the problem is square with uniform
      marginals (then an optimal plan is :math:`P / n`, see the module docstring), ``"emd"`` otherwise.
    * ``"emd"``: POT's network simplex ``ot.emd`` (any shapes and marginals).
    * ``"lsa"``: ``scipy.optimize.linear_sum_assignment``; square, uniform problems only.
    * ``"sinkhorn"``: entropic OT with :math:`\varepsilon` = ``reg`` in the units of ``cost``
      (normalise the cost, e.g. by its maximum, to make ``reg`` scale-free). As
      :math:`\varepsilon \to 0` the plan converges to the exact plan of maximal entropy among the
      optimal ones (Cominetti & San Martín 1994; Peyré & Cuturi 2019, Prop. 4.1).

    Parameters
    ----------
    cost : array, shape (n, m)
        Ground cost between the ``n`` source and ``m`` target units (numpy or torch, any device).
    a : array, shape (n,), optional
        Source marginal (nonnegative, summing to 1); uniform :math:`1/n` by default.
    b : array, shape (m,), optional
        Target marginal; uniform :math:`1/m` by default.
    method : {"exact", "emd", "lsa", "sinkhorn"}, default "exact"
        Solver, see above.
    reg : float, default 0.01
        Entropic regularisation :math:`\varepsilon > 0` (``"sinkhorn"`` only).
    log_domain : bool, optional
        Run Sinkhorn in the log domain (``ot.bregman.sinkhorn_log``: stable for any ``reg``, several
        times slower per iteration). ``None`` (default) picks it when
        :math:`(\max C - \min C) / \varepsilon >` :data:`LOG_DOMAIN_THRESHOLD`.
    max_iter : int, default 10000
        Sinkhorn iteration cap (``"emd"`` uses ``100 * max_iter`` simplex pivots at least 100000).
    tol : float, optional
        Sinkhorn stops when :math:`\|T^\top 1 - b\|_2 <` ``tol`` (its row marginal is exact after
        every iteration). Default ``max(1e-9, 100 * eps)`` of the cost's dtype (1e-9 in float64,
        1.2e-5 in float32).

    Returns
    -------
    PlanResult
        The plan (backend, dtype and device of ``cost``) and its diagnostics.

    Warns
    -----
    PlanWarning
        When Sinkhorn stops at ``max_iter`` before ``tol`` or ``ot.emd`` reports a problem (e.g. the
        pivot limit); the last iterate is returned with ``converged=False``.

    Raises
    ------
    ValueError
        If ``cost`` is not a finite 2-D array, a marginal is invalid, ``reg`` is not positive, or
        ``"lsa"`` is asked for a rectangular or non-uniform problem.
    FloatingPointError
        If the solver produced a non-finite plan.

    Examples
    --------
    >>> import numpy as np
    >>> res = transport_plan(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> res.plan
    array([[0. , 0.5],
           [0.5, 0. ]])
    >>> res.off_identity, res.method
    (1.0, 'lsa')
    """
    if isinstance(cost, list | tuple):
        cost = np.asarray(cost, dtype=np.float64)
    nx = get_backend(cost)
    if len(cost.shape) != 2 or cost.shape[0] == 0 or cost.shape[1] == 0:
        raise ValueError(f"cost must be a non-empty 2-D array, got shape {tuple(cost.shape)}")
    # a finite sum implies finite entries (NaN and inf propagate); only an overflowing sum needs the
    # elementwise check, which costs an extra pass over the matrix
    if not math.isfinite(float(nx.sum(cost))) and bool(nx.any(~nx.isfinite(cost))):
        raise ValueError("cost must be finite")
    n, m = int(cost.shape[0]), int(cost.shape[1])
    a_b, a_uniform = _marginal(nx, a, n, cost, "a")
    b_b, b_uniform = _marginal(nx, b, m, cost, "b")
    square_uniform = n == m and a_uniform and b_uniform

    if method == "exact":
        method = "lsa" if square_uniform else "emd"
    if method == "lsa":
        if not square_uniform:
            raise ValueError("method='lsa' needs a square cost with uniform marginals; use 'emd'")
        return _solve_lsa(nx, cost, np.asarray(nx.to_numpy(cost), dtype=np.float64), a_b)

    if method == "emd":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            plan, log = ot.emd(a_b, b_b, cost, numItermax=max(100_000, 100 * max_iter), log=True)
        problems = [str(w.message) for w in caught] + ([log["warning"]] if log.get("warning") else [])
        converged = int(log.get("result_code", 1)) == 1 and not problems
        if not converged:
            detail = "; ".join(problems) or f"result_code {log.get('result_code')}"
            warnings.warn(f"ot.emd: {detail}", PlanWarning, stacklevel=2)
        iterations, used = 0, "emd"
    elif method == "sinkhorn":
        if not (reg > 0 and math.isfinite(reg)):
            raise ValueError(f"reg must be a finite number > 0, got {reg}")
        if log_domain is None:
            log_domain = float(nx.max(cost) - nx.min(cost)) / reg > LOG_DOMAIN_THRESHOLD
        if tol is None:
            tol = max(1e-9, 100.0 * _eps(cost.dtype))
        used = "sinkhorn_log" if log_domain else "sinkhorn"
        with np.errstate(all="ignore"):  # under/overflow is detected below and raised
            plan, log = ot.sinkhorn(a_b, b_b, cost, reg, method=used, numItermax=max_iter, stopThr=tol,
                                    log=True, warn=False)
        iterations = int(log.get("niter", max_iter)) + 1
        col_err = float(nx.norm(nx.sum(plan, axis=0) - b_b))
        mass = float(nx.sum(plan))
        if not (math.isfinite(col_err) and abs(mass - 1.0) < 0.5):
            raise FloatingPointError(f"{used} produced a non-finite or massless plan (mass {mass!r}, "
                                     f"reg={reg}): the scaling vectors under- or overflowed; use "
                                     "log_domain=True or a larger reg")
        converged = col_err < tol
        if not converged:
            warnings.warn(f"Sinkhorn stopped after {iterations} iterations with column-marginal error "
                          f"{col_err:.3e} >= tol {tol:.1e}; increase max_iter or reg", PlanWarning,
                          stacklevel=2)
    else:
        raise ValueError(f"unknown method {method!r}; expected 'exact', 'emd', 'lsa' or 'sinkhorn'")

    if bool(nx.any(~nx.isfinite(plan))):  # diagnostics below stay on the plan's device
        raise FloatingPointError(f"{used} produced a non-finite plan (reg={reg}); try log_domain=True "
                                 "or a larger reg")
    marginal_error = float(nx.sum(nx.abs(nx.sum(plan, axis=1) - a_b))) + float(
        nx.sum(nx.abs(nx.sum(plan, axis=0) - b_b))
    )
    return PlanResult(
        plan=plan,
        cost=float(nx.sum(plan * cost)),
        marginal_error=marginal_error,
        entropy=_entropy(nx, plan),
        off_identity=_off_identity(nx, plan),
        iterations=iterations,
        method=used,
        converged=converged,
    )
