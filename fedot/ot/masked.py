r"""Masked optimal transport for FedAVOT: aggregation weights that make partial participation unbiased.

Users :math:`i \in [N]` carry importance :math:`p \in \Delta^N`; the round's participant set is
:math:`A_j` with probability :math:`q_j`. FedAVOT looks for a coupling :math:`T \ge 0` supported on the
mask :math:`E = \{(i, j) : i \in A_j\}` with :math:`T 1 = p` and :math:`1^\top T = q`; the per-round
aggregation weights are :math:`Y_{ij} = T_{ij} / q_j`. The mask is stored sparsely (the members of every
subset, concatenated in the order of ``subsets``), so memory and time per iteration are
:math:`O(\mathrm{nnz})`; no dense :math:`N \times M` matrix is built. The routines are numpy-only
inside, like POT's exact solver: backend inputs are converted to float64 numpy once and outputs are
converted back to the type, dtype and device of ``p`` (of ``q`` for :func:`inclusion_probabilities`).

References
----------
.. [1] M. Rahimi, D. S. Kalogerias, "FedAVOT: Exact Distribution Alignment in Federated Learning via
   Masked Optimal Transport", ICASSP 2026, arXiv:2509.14444.
.. [2] R. Sinkhorn, P. Knopp, "Concerning nonnegative matrices and doubly stochastic matrices",
   Pacific J. Math. 21(2), 343-348, 1967.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedot.ot._minvar import min_variance_plan
from fedot.ot._utils import (
    Array,
    SubsetMask,
    bipartite_max_flow,
    build_mask,
    check_distribution,
    check_options,
    mask_weights,
    solve_masked,
    split_flat,
    subset_sums,
    to_numpy,
    warning_messages,
)

__all__ = [
    "FeasibilityResult",
    "MaskedSinkhornResult",
    "MaskedSinkhornWarning",
    "hall_violations",
    "inclusion_probabilities",
    "masked_feasibility",
    "masked_min_variance",
    "masked_sinkhorn",
    "plan_second_moment",
]

_HALL_MAX_USERS = 16


class MaskedSinkhornWarning(UserWarning):
    """Masked scaling did not converge: iteration cap, stalled (infeasible) row error, numerical stop."""


@dataclass(frozen=True)
class MaskedSinkhornResult:
    r"""Result of :func:`masked_sinkhorn`; arrays follow the backend, dtype and device of ``p``.

    Attributes
    ----------
    weights : list of array
        ``weights[j][k]`` is :math:`Y_{ij}` for user ``i = subsets[j][k]``; every entry sums to 1.
    plan : array, shape (nnz,)
        :math:`T_{ij} = q_j Y_{ij}` aligned with the concatenated ``subsets``.
    p_hat : array, shape (N,)
        Effective importance :math:`\hat p = T 1`.
    inclusion : array, shape (N,)
        Inclusion probabilities :math:`\pi_i = \sum_{j : i \in A_j} q_j`.
    infeasible_mass : float
        :math:`\nu = \sum_{i : p_i > \pi_i} p_i`, the mass of users violating the singleton Hall bound.
    row_error, col_error : float
        :math:`\|T 1 - p\|_1` and :math:`\|1^\top T - q\|_1` at return.
    n_iter : int
        Number of (row step, column step) pairs performed.
    converged : bool
        Whether the stopping criterion of :func:`masked_sinkhorn` was met.
    stopped : str
        ``"converged"``, ``"max_iter"`` or ``"non-finite"`` (numerical stop, last finite iterate kept);
        :func:`masked_min_variance` also ``"stalled"`` (no ascent step: rounding floor).
    second_moment : float
        Variance proxy :math:`\sum_j q_j \sum_{i \in A_j} Y_{ij}^2`: the expected squared norm of a
        round's weight vector. For fixed client updates :math:`g_i` with :math:`\|g_i\| \le G`,
        :math:`\mathbb E\|\sum_i Y_{ij} g_i\|^2 \le G^2 \cdot` ``second_moment`` when the
        :math:`g_i` are orthogonal, so it orders plans by the aggregate's variance.
    method : str
        ``"ipfp"`` (:func:`masked_sinkhorn`) or ``"min-variance"`` (:func:`masked_min_variance`).
    """

    weights: list[Array]
    plan: Array
    p_hat: Array
    inclusion: Array
    infeasible_mass: float
    row_error: float
    col_error: float
    n_iter: int
    converged: bool
    stopped: str
    second_moment: float
    method: str = "ipfp"


@dataclass(frozen=True)
class FeasibilityResult:
    r"""Result of :func:`masked_feasibility`; arrays follow the backend, dtype and device of ``p``.

    Attributes
    ----------
    unmatched_mass : float
        ``1 - matchable_mass / sum(p)``: the fraction of ``p`` no plan can transport. This is the
        number to read first: the singleton bound :math:`\nu` can be 0 on an infeasible instance
        (a *group* of users may be short of availability although each user alone is not).
    hall_violator : tuple of int
        The worst Hall violator set :math:`I` (sorted user indices; empty when feasible): the users
        on the source side of a minimum cut, which maximise the deficiency
        :math:`p(I) - q(N(I))` with :math:`N(I) = \{j : A_j \cap I \ne \emptyset\}`.
    hall_deficiency : float
        :math:`(p(I) - q(N(I))) / \sum p` for that set, computed directly from ``p`` and ``q``; it
        equals ``unmatched_mass`` (max-flow / min-cut) up to the max-flow rounding.
    feasible : bool
        Whether an exact plan exists (unmatched mass within the tolerance).
    matchable_mass : float
        Max-flow value: the mass of ``p`` that can be transported onto ``q`` inside the mask.
    inclusion : array, shape (N,)
        Inclusion probabilities :math:`\pi`.
    infeasible_mass : float
        Singleton Hall violation mass :math:`\nu` (see :class:`MaskedSinkhornResult`).
    """

    unmatched_mass: float
    hall_violator: tuple[int, ...]
    hall_deficiency: float
    feasible: bool
    matchable_mass: float
    inclusion: Array
    infeasible_mass: float

    def describe(self) -> str:
        """One line leading with the unmatched mass and the worst violator set (for warnings/logs)."""
        return describe_feasibility(self.unmatched_mass, self.hall_violator, self.hall_deficiency,
                                    self.infeasible_mass)


def _prepare(
    p: Any, q: Any, subsets: Sequence[Any]
) -> tuple[Any, np.ndarray, np.ndarray, Array, SubsetMask]:
    nx, (p_np, q_np), like, (p_eps, q_eps) = to_numpy(p, q)
    p_np, q_np = check_distribution(p_np, "p", p_eps), check_distribution(q_np, "q", q_eps)
    return nx, p_np, q_np, like, build_mask(subsets, p_np.size, q_np.size)


def _inclusion(q: np.ndarray, mask: SubsetMask) -> np.ndarray:
    return np.bincount(mask.rows, q[mask.cols], minlength=mask.num_users)


def _infeasible_mass(p: np.ndarray, pi: np.ndarray) -> float:
    # relative slack 1e-12 absorbs rounding in pi; users in no subset (pi = 0) always count
    return float(p[p > pi * (1.0 + 1e-12)].sum())


def inclusion_probabilities(q: Any, subsets: Sequence[Any], num_users: int) -> Array:
    r"""Probability that each user participates in a round.

    .. math:: \pi_i = \sum_{j : i \in A_j} q_j, \qquad i = 0, \dots, N - 1.

    A necessary condition for an exact FedAVOT plan is :math:`p_i \le \pi_i` for every user.

    Parameters
    ----------
    q : array-like, shape (M,)
        Probabilities of the subsets (nonnegative, summing to 1).
    subsets : sequence of array-like of int
        ``subsets[j]`` lists the distinct members of :math:`A_j` (a 2-D ``(M, K)`` array also works).
    num_users : int
        Number of users ``N``; indices must lie in ``[0, N)``.

    Returns
    -------
    array, shape (N,)
        :math:`\pi`, in the backend, dtype and device of ``q``.

    Raises
    ------
    ValueError
        If ``q`` is not a probability vector or ``subsets`` is malformed.
    """
    nx, (q_np,), like, (q_eps,) = to_numpy(q)
    q_np = check_distribution(q_np, "q", q_eps)
    mask = build_mask(subsets, int(num_users), q_np.size)
    return nx.from_numpy(_inclusion(q_np, mask), type_as=like)


def masked_sinkhorn(
    p: Any,
    q: Any,
    subsets: Sequence[Any],
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    kappa: float = 1.0,
) -> MaskedSinkhornResult:
    r"""FedAVOT aggregation weights by masked Sinkhorn scaling (IPFP), optionally penalised.

    Finds :math:`T \ge 0` on the mask :math:`E = \{(i, j) : i \in A_j\}` with

    .. math:: T 1_M = p, \qquad 1_N^\top T = q, \qquad Y_{ij} = T_{ij} / q_j,

    so that :math:`\mathbb{E}_{j \sim q}\big[\sum_{i \in A_j} Y_{ij} g_i\big] = \sum_i p_i g_i` (unbiased
    aggregation). Starting from :math:`T^0_{ij} = q_j / |A_j|` (uniform averaging), each iteration scales
    rows then columns:

    .. math::
        T \leftarrow \operatorname{diag}(f)\, T, \quad
        f = \Big(\frac{p}{T 1}\Big)^{\kappa} \odot u^{\kappa - 1}, \quad u \leftarrow u \odot f;
        \qquad T \leftarrow T \operatorname{diag}\Big(\frac{q}{1^\top T}\Big),

    where :math:`u` is the accumulated row scaling. This is the :math:`u, v` iteration
    :math:`u = (p \oslash K v)^{\kappa}`, :math:`v = q \oslash K^\top u` with :math:`K = T^0`, i.e. the
    unbalanced problem :math:`\min \mathrm{KL}(T \| K) + \lambda \mathrm{KL}(T 1 \| p)` s.t.
    :math:`1^\top T = q` with :math:`\kappa = \lambda / (1 + \lambda)`. :math:`\kappa = 1` is plain IPFP
    (the KL projection of :math:`T^0` onto the feasible plans, [2]_), :math:`\kappa = 0` returns uniform
    averaging. The last step is always a column step, so every weight vector sums to 1. For
    :math:`\kappa < 1` the map :math:`\log u \mapsto \log u'` contracts in the sup norm (factor
    :math:`\kappa`) even on infeasible instances, and at the fixed points
    :math:`\mathrm{KL}(\hat p \| p)` is non-increasing in :math:`\kappa` (penalty argument), so
    :math:`\kappa` trades fidelity to :math:`p` against closeness to uniform averaging.

    Stopping: the iteration stops when :math:`r \le` ``tol`` and :math:`\|1^\top T - q\|_1 \le` ``tol``,
    where :math:`r = \|T 1 - p\|_1` for :math:`\kappa = 1` and, for :math:`\kappa < 1`, the stationarity
    residual :math:`r = \|(T 1) \odot (f - 1)\|_1` (the change the next row step would make to
    :math:`T 1`; for :math:`\kappa = 1` it equals :math:`\|T 1 - p\|_1`). ``row_error`` is always
    :math:`\|T 1 - p\|_1`, generally nonzero for :math:`\kappa < 1` or infeasible instances.

    Special cases: a user with :math:`p_i > 0` in no subset can never be served; its row stays 0
    and counts in ``row_error`` (the instance is infeasible). Rows with :math:`p_i = 0` are zeroed by
    the first row step (:math:`\kappa > 0`). A column with :math:`q_j = 0` has zero plan and the
    fallback weights :math:`Y_{ij} = p_i / \sum_{k \in A_j} p_k` (uniform if that sum is 0). A column
    with :math:`q_j > 0` whose members all have :math:`p = 0` cannot be served for :math:`\kappa > 0`:
    it keeps the uniform plan :math:`T^0` and its mass counts in the residual. On infeasible instances
    (see :func:`masked_feasibility`) the row error stalls; :math:`\hat p = T 1 \le \pi` always holds.

    Numerical safety: before applying a step its factors are checked; if a row factor or a column
    scaling is not finite and positive (a sum needed as a divisor under- or overflowed), the last finite
    iterate is returned with ``stopped="non-finite"``. Returned weights are always finite.

    .. note:: Accepts arrays of any POT backend but, like POT's exact solver, computes in float64
       numpy (one conversion each way, no gradients); outputs follow the type, dtype and device of ``p``.

    Parameters
    ----------
    p : array-like, shape (N,)
        Importance of the users: nonnegative, finite, summing to 1 within a relative
        ``max(1e-9, N * eps)`` (``eps`` of the input dtype); rescaled to sum exactly 1 before solving.
    q : array-like, shape (M,)
        Probability of each subset: nonnegative, finite, summing to 1 (same tolerance, rescaled too).
    subsets : sequence of array-like of int
        ``subsets[j]`` lists the distinct members of :math:`A_j` in ``[0, N)``; a 2-D ``(M, K)`` integer
        array also works.
    tol : float, default 1e-10
        Tolerance on the (L1) residuals.
    max_iter : int, default 10000
        Maximum number of (row, column) step pairs.
    kappa : float, default 1.0
        Penalty exponent :math:`\kappa \in [0, 1]`.

    Returns
    -------
    MaskedSinkhornResult
        Weights, flat plan, :math:`\hat p`, :math:`\pi`, :math:`\nu`, errors and status.

    Raises
    ------
    ValueError
        If ``p`` or ``q`` is not a probability vector, ``subsets`` is malformed (index out of range,
        duplicate member, empty subset, ``len(subsets) != len(q)``) or an option is out of range.
    FloatingPointError
        If the initial plan is not finite.

    Warns
    -----
    MaskedSinkhornWarning
        If ``max_iter`` is reached before convergence (with the row error, :math:`\nu` and a hint to call
        :func:`masked_feasibility`), on a numerical stop, or when a column's mass underflowed to 0.

    References
    ----------
    .. [1] M. Rahimi, D. S. Kalogerias, "FedAVOT: Exact Distribution Alignment in Federated Learning
       via Masked Optimal Transport", ICASSP 2026, arXiv:2509.14444.
    .. [2] R. Sinkhorn, P. Knopp, "Concerning nonnegative matrices and doubly stochastic matrices",
       Pacific J. Math. 21(2), 343-348, 1967.

    Examples
    --------
    >>> import numpy as np
    >>> res = masked_sinkhorn(np.array([0.5, 0.3, 0.2]), np.array([0.6, 0.4]), [[0, 1], [1, 2]])
    >>> [np.round(w, 4).tolist() for w in res.weights]
    [[0.8333, 0.1667], [0.5, 0.5]]
    >>> res.converged
    True
    """
    check_options(tol, max_iter, kappa)
    nx, p_np, q_np, like, mask = _prepare(p, q, subsets)
    opts: dict[str, Any] = {"tol": tol, "max_iter": max_iter, "kappa": float(kappa)}
    plan, n_iter, stopped = solve_masked(p_np, q_np, mask, **opts)
    res, n_underflow = _result(nx, like, p_np, q_np, mask, plan, n_iter, stopped, "ipfp")
    why = ""
    if stopped != "converged":  # the max-flow diagnosis, only on the failure path
        flow = _max_flow_feasibility(p_np, q_np, mask, tol=1e-9)
        why = describe_feasibility(flow.unmatched, flow.violator, flow.deficiency,
                                   res.infeasible_mass)
    for msg in warning_messages(stopped, n_iter, res.row_error, why, n_underflow):
        warnings.warn(msg, MaskedSinkhornWarning, stacklevel=2)
    return res


def _result(nx: Any, like: Array, p_np: np.ndarray, q_np: np.ndarray, mask: SubsetMask,
            plan: np.ndarray, n_iter: int, stopped: str, method: str
            ) -> tuple[MaskedSinkhornResult, int]:
    """Weights, marginals and diagnostics of a flat plan; also the number of underflowed columns."""
    pi = _inclusion(q_np, mask)
    nu = _infeasible_mass(p_np, pi)
    p_hat = np.bincount(mask.rows, plan, minlength=p_np.size)
    col_sums = np.bincount(mask.cols, plan, minlength=q_np.size)
    row_error = float(np.abs(p_hat - p_np).sum())
    col_error = float(np.abs(col_sums - q_np).sum())
    weights, n_underflow = mask_weights(p_np, q_np, mask, plan, col_sums)
    return MaskedSinkhornResult(
        weights=split_flat(nx, nx.from_numpy(weights, type_as=like), mask.sizes),
        plan=nx.from_numpy(plan, type_as=like),
        p_hat=nx.from_numpy(p_hat, type_as=like),
        inclusion=nx.from_numpy(pi, type_as=like),
        infeasible_mass=nu,
        row_error=row_error,
        col_error=col_error,
        n_iter=int(n_iter),
        converged=stopped == "converged",
        stopped=stopped,
        second_moment=float((q_np[mask.cols] * weights * weights).sum()),
        method=method,
    ), n_underflow


def plan_second_moment(q: Any, subsets: Sequence[Any], weights: Sequence[Any]) -> float:
    r"""Variance proxy of a FedAVOT weight table: :math:`\sum_j q_j \sum_{i \in A_j} Y_{ij}^2`.

    Parameters
    ----------
    q : array-like, shape (M,)
        Subset probabilities.
    subsets : sequence of array-like of int
        Members of each subset.
    weights : sequence of array-like
        ``weights[j]`` aligned with ``subsets[j]`` (e.g. :attr:`MaskedSinkhornResult.weights`).

    Returns
    -------
    float
        The second moment of a round's weight vector under :math:`j \sim q`.
    """
    q_np = np.asarray(to_numpy(q)[1][0], dtype=np.float64)
    if len(weights) != q_np.size or len(subsets) != q_np.size:
        raise ValueError(f"need one weight vector and one subset per q_j: {len(weights)}, "
                         f"{len(subsets)}, {q_np.size}")
    total = 0.0
    for qj, members, wj in zip(q_np, subsets, weights, strict=True):
        w_np = np.asarray(to_numpy(wj)[1][0], dtype=np.float64)
        if w_np.shape != np.shape(members):
            raise ValueError(f"weights of shape {w_np.shape} for a subset of {np.size(members)}")
        total += float(qj * (w_np * w_np).sum())
    return total


def masked_min_variance(
    p: Any,
    q: Any,
    subsets: Sequence[Any],
    *,
    tol: float = 1e-10,
    max_iter: int = 500,
    kappa: float = 1.0,
    ipfp_max_iter: int = 10_000,
) -> MaskedSinkhornResult:
    r"""FedAVOT weights of minimum variance among all unbiased plans (the ``min-variance`` plan).

    IPFP (:func:`masked_sinkhorn`) returns the plan closest in KL to uniform averaging among all
    :math:`T \ge 0` on the mask with :math:`T 1 = p`, :math:`1^\top T = q`; on a feasible instance
    there are many such plans, all unbiased. This one minimises the second moment of the round's
    weights, :math:`\sum_j q_j \sum_i Y_{ij}^2 = \sum_{(i,j) \in E} T_{ij}^2 / q_j`:

    .. math:: \min_{T \ge 0,\ T_{E^c} = 0} \sum_{(i,j) \in E} \frac{T_{ij}^2}{q_j}
        \quad\text{s.t.}\quad T 1 = p,\quad 1^\top T = q,

    a strictly convex QP with a unique solution. It is solved exactly (to ``tol`` in both
    marginals) by a semismooth Newton method on its dual: :math:`T_{ij} = \tfrac{q_j}{2}
    (\alpha_i + \beta_j)_+`, the dual is concave piecewise quadratic, each Newton system is solved
    through an :math:`N \times N` Schur complement (scipy, dense Cholesky) and steps are
    backtracked on the dual value. Measured: 7 iterations to 1e-10 on the feasible instances of
    ``docs/fedavot.md``, 12-107 when the target is a stalled IPFP's :math:`\hat p`.

    Row marginal on instances IPFP cannot match: when max-flow (:func:`masked_feasibility`) finds
    no exact plan, or when ``kappa < 1``, IPFP's effective importance :math:`\hat p = T_{\mathrm{IPFP}}
    1` is used as the row marginal instead of ``p`` (it is matchable: IPFP's own plan attains it),
    and a :class:`MaskedSinkhornWarning` says so. The result then has IPFP's bias
    (:math:`\|p - \hat p\|_1`) with less variance; ``row_error`` is still :math:`\|T1 - p\|_1`.

    Parameters
    ----------
    p, q, subsets
        As in :func:`masked_sinkhorn`.
    tol : float, default 1e-10
        Tolerance on the L1 marginal errors (against the row marginal actually targeted).
    max_iter : int, default 500
        Maximum number of Newton iterations.
    kappa : float, default 1.0
        Penalty exponent of the IPFP run that sets the row marginal when ``kappa < 1``.
    ipfp_max_iter : int, default 10000
        Iteration cap of that IPFP run (infeasible instances or ``kappa < 1`` only).

    Returns
    -------
    MaskedSinkhornResult
        With ``method="min-variance"``; ``second_moment`` is at most IPFP's for the same marginals.

    Raises
    ------
    ValueError
        On invalid inputs or options (as :func:`masked_sinkhorn`).

    Warns
    -----
    MaskedSinkhornWarning
        When the row marginal is IPFP's :math:`\hat p` (with the unmatched mass), when the Newton
        iteration does not converge, or when a column lost all its mass.

    References
    ----------
    .. [1] M. Rahimi, D. S. Kalogerias, "FedAVOT", ICASSP 2026, arXiv:2509.14444.
    .. [2] D. A. Lorenz, P. Manns, C. Meyer, "Quadratically regularized optimal transport",
       Appl. Math. Optim. 83, 2021.

    Examples
    --------
    >>> import numpy as np
    >>> p, q = np.full(4, 0.25), np.full(6, 1 / 6)
    >>> pairs = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    >>> res = masked_min_variance(p, q, pairs)
    >>> round(res.second_moment, 6), res.converged   # uniform weights 1/2: 6 * (1/6) * 2 * (1/4)
    (0.5, True)
    """
    check_options(tol, max_iter, kappa)
    nx, p_np, q_np, like, mask = _prepare(p, q, subsets)
    target = p_np
    flow = _max_flow_feasibility(p_np, q_np, mask, tol=1e-9)
    if not flow.feasible or kappa < 1.0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MaskedSinkhornWarning)
            ipfp_plan, _, _ = solve_masked(p_np, q_np, mask, tol=tol, max_iter=ipfp_max_iter,
                                           kappa=float(kappa))
        target = np.bincount(mask.rows, ipfp_plan, minlength=p_np.size)
        why = (describe_feasibility(flow.unmatched, flow.violator, flow.deficiency,
                                    _infeasible_mass(p_np, _inclusion(q_np, mask)))
               if not flow.feasible else f"kappa = {kappa} < 1")
        warnings.warn(f"min-variance plan: {why}; using IPFP's effective importance p_hat "
                      f"(||p - p_hat||_1 = {np.abs(target - p_np).sum():.4f}) as the row marginal",
                      MaskedSinkhornWarning, stacklevel=2)
    plan, n_iter, stopped = min_variance_plan(target, q_np, mask, tol=tol, max_iter=max_iter)
    if not np.isfinite(plan).all():
        raise FloatingPointError("the min-variance plan is not finite")
    res, n_underflow = _result(nx, like, p_np, q_np, mask, plan, n_iter, stopped, "min-variance")
    if stopped != "converged":
        p_hat = np.bincount(mask.rows, plan, minlength=p_np.size)
        err = float(np.abs(p_hat - target).sum()) + res.col_error
        warnings.warn(f"min-variance Newton iteration ended ({stopped}) after {n_iter} iterations "
                      f"with marginal error {err:.3e} > tol = {tol:g}", MaskedSinkhornWarning,
                      stacklevel=2)
    if n_underflow:
        warnings.warn(f"{n_underflow} column(s) with q_j > 0 have no plan mass; using uniform "
                      "weights there", MaskedSinkhornWarning, stacklevel=2)
    return res


def masked_feasibility(
    p: Any, q: Any, subsets: Sequence[Any], *, tol: float = 1e-9
) -> FeasibilityResult:
    r"""Decide whether an exact FedAVOT plan exists, by maximum flow.

    An exact plan exists iff the max flow of the network source :math:`\to` user :math:`i` (capacity
    :math:`p_i`) :math:`\to` subset :math:`j` (unbounded, for :math:`i \in A_j`) :math:`\to` sink
    (capacity :math:`q_j`) equals :math:`\sum_i p_i`; by max-flow/min-cut this is Hall's condition

    .. math:: \sum_{i \in I} p_i \le \sum_{j \in N(I)} q_j \quad \forall I \subseteq [N], \qquad
        N(I) = \{j : A_j \cap I \ne \emptyset\}.

    ``scipy.sparse.csgraph.maximum_flow`` needs int32 capacities. Stage 1 floors the capacities scaled
    by :math:`s_1 = (2^{31} - 1) / \max(p, q)`; its flow is feasible and short of the optimum by less
    than :math:`D = (\#\{p_i > 0\} + \#\{q_j > 0\} + 1) / s_1`. Stage 2 recovers that gap on the residual
    network (capacities clipped to :math:`D`, scale :math:`s_2 = (2^{31} - 1) / D`), leaving a rounding
    error below :math:`\epsilon = E_2 / s_2` (:math:`E_2` = number of residual edges; about
    :math:`10^{-10}` for :math:`N = 10^3`, :math:`M = 10^5`). ``matchable_mass`` is a certified lower
    bound (up to floating-point rounding) and the instance is declared feasible iff
    ``unmatched_mass <= tol + eps / sum(p)``. Any plan with column marginal :math:`q` satisfies
    :math:`\|T 1 - p\|_1 \ge 2\,` ``unmatched_mass``, so a masked Sinkhorn row error stalls above that.

    Parameters
    ----------
    p : array-like, shape (N,)
        Importance of the users (a probability vector).
    q : array-like, shape (M,)
        Probabilities of the subsets.
    subsets : sequence of array-like of int
        Members of each subset, as in :func:`masked_sinkhorn`.
    tol : float, default 1e-9
        Tolerance on the unmatched mass (relative to the total mass of ``p``).

    Returns
    -------
    FeasibilityResult
        ``feasible``, ``matchable_mass``, ``unmatched_mass``, inclusion probabilities and :math:`\nu`.

    Raises
    ------
    ValueError
        On invalid ``p``, ``q``, ``subsets`` or a negative ``tol``.

    References
    ----------
    .. [1] M. Rahimi, D. S. Kalogerias, "FedAVOT", ICASSP 2026, arXiv:2509.14444 (Theorem 1).
    .. [2] R. Sinkhorn, P. Knopp, Pacific J. Math. 21(2), 1967.
    """
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    nx, p_np, q_np, like, mask = _prepare(p, q, subsets)
    flow = _max_flow_feasibility(p_np, q_np, mask, tol=tol)
    pi = _inclusion(q_np, mask)
    return FeasibilityResult(
        unmatched_mass=flow.unmatched,
        hall_violator=flow.violator,
        hall_deficiency=flow.deficiency,
        feasible=flow.feasible,
        matchable_mass=flow.matchable,
        inclusion=nx.from_numpy(pi, type_as=like),
        infeasible_mass=_infeasible_mass(p_np, pi),
    )


@dataclass(frozen=True)
class _Flow:
    feasible: bool
    matchable: float
    unmatched: float
    violator: tuple[int, ...]
    deficiency: float


def _max_flow_feasibility(
    p_np: np.ndarray, q_np: np.ndarray, mask: SubsetMask, *, tol: float
) -> _Flow:
    """Feasibility, matchable mass, unmatched fraction and worst Hall set by max-flow."""
    lower, error, side = bipartite_max_flow(p_np, q_np, mask)
    total = float(p_np.sum())
    matchable = min(lower, total)
    unmatched = max(0.0, 1.0 - matchable / total)
    feasible = bool(unmatched <= tol + error / total)
    violator: tuple[int, ...] = ()
    deficiency = 0.0
    if not feasible and side.any():
        touched = np.zeros(q_np.size, dtype=bool)
        touched[mask.cols[side[mask.rows]]] = True
        deficiency = max(0.0, (float(p_np[side].sum()) - float(q_np[touched].sum())) / total)
        violator = tuple(int(i) for i in np.flatnonzero(side))
    return _Flow(feasible, matchable, unmatched, violator, deficiency)


def describe_feasibility(unmatched: float, violator: Sequence[int], deficiency: float,
                         nu: float) -> str:
    """Text leading with max-flow's unmatched mass and the worst Hall violator set."""
    if not violator and unmatched <= 0:
        return f"max-flow: an exact plan exists (unmatched mass 0; singleton nu = {nu:.3e})"
    shown = ", ".join(str(i) for i in list(violator)[:12]) + (", ..." if len(violator) > 12 else "")
    return (f"max-flow leaves {unmatched:.4f} of p unmatched (no exact plan exists); worst Hall "
            f"violator: the {len(violator)} user(s) {{{shown}}} carry {deficiency:.4f} more of p "
            f"than all subsets containing any of them can take (singleton bound nu = {nu:.3e})")


def hall_violations(
    p: Any, q: Any, subsets: Sequence[Any], *, tol: float = 1e-12
) -> list[tuple[int, ...]]:
    r"""All user sets that violate Hall's condition, by brute force over :math:`2^N - 1` sets.

    A non-empty :math:`I \subseteq [N]` is violated iff

    .. math:: \sum_{i \in I} p_i > \sum_{j \in N(I)} q_j + \mathrm{tol}, \qquad
        N(I) = \{j : A_j \cap I \ne \emptyset\}.

    The lower bound :math:`\sum_{j : A_j \subseteq I} q_j \le p(I)` of the FedAVOT feasibility theorem
    is the same condition for the complement :math:`[N] \setminus I` (both marginals have mass 1), so an
    exact plan exists iff the list is empty. Sums over all sets use a subset-sum (zeta) transform,
    :math:`O(2^N N + \mathrm{nnz})`.

    Parameters
    ----------
    p : array-like, shape (N,)
        Importance of the users, ``N <= 16``.
    q : array-like, shape (M,)
        Probabilities of the subsets.
    subsets : sequence of array-like of int
        Members of each subset, as in :func:`masked_sinkhorn`.
    tol : float, default 1e-12
        Slack of the inequality.

    Returns
    -------
    list of tuple of int
        The violated sets (sorted user indices), ordered by their bitmask.

    Raises
    ------
    ValueError
        If ``N > 16`` or the inputs are invalid.

    References
    ----------
    .. [1] M. Rahimi, D. S. Kalogerias, "FedAVOT", ICASSP 2026, arXiv:2509.14444 (Theorem 1).
    """
    _, p_np, q_np, _, mask = _prepare(p, q, subsets)
    n = p_np.size
    if n > _HALL_MAX_USERS:
        raise ValueError(f"hall_violations enumerates 2^N sets; N = {n} exceeds {_HALL_MAX_USERS}")
    full = (1 << n) - 1
    col_bits = np.bitwise_or.reduceat(np.left_shift(1, mask.rows), mask.starts)
    q_inside = subset_sums(np.bincount(col_bits, q_np, minlength=full + 1), n)  # q of {j: A_j ⊆ S}
    p_of = subset_sums(np.bincount(1 << np.arange(n), p_np, minlength=full + 1), n)  # p(S)
    sets = np.arange(full + 1)
    violated = p_of > q_np.sum() - q_inside[full ^ sets] + tol
    violated[0] = False
    return [tuple(i for i in range(n) if (s >> i) & 1) for s in np.flatnonzero(violated).tolist()]
