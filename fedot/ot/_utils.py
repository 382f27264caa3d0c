"""Private helpers for :mod:`fedot.ot`: backend conversion, validation, sparse subset masks, max-flow.

Nothing here is public API; the functions are shared by the solvers in :mod:`fedot.ot.masked`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
from ot.backend import Backend, get_backend
from ot.utils import list_to_array
from scipy.sparse.csgraph import maximum_flow

Array: TypeAlias = Any
"""An array of any POT backend (``numpy.ndarray``, ``torch.Tensor``, ...)."""

SUM_RTOL = 1e-9
"""Relative tolerance on ``sum(x) == 1`` for probability vectors."""

_INT32_MAX = 2**31 - 1  # scipy's maximum_flow stores capacities as int32


def to_numpy(*arrays: Any) -> tuple[Backend, list[np.ndarray], Array, list[float]]:
    """Convert backend arrays (or lists) to float64 numpy once.

    Returns the backend, the float64 copies/views, a reference array whose dtype and device the outputs
    should follow (the first argument, or a float64 array when it is not floating point) and the
    machine epsilon of each input's dtype (0 for integer inputs).
    """
    arrays = tuple(list(a) if isinstance(a, tuple) else a for a in arrays)
    converted = list_to_array(*arrays)
    if len(arrays) == 1:
        converted = [converted]
    nx = get_backend(*converted)
    raw = [np.asarray(nx.to_numpy(a)) for a in converted]
    like = converted[0]
    if raw[0].dtype.kind != "f":
        like = nx.from_numpy(np.zeros(0, dtype=np.float64))
    eps = [float(np.finfo(a.dtype).eps) if a.dtype.kind == "f" else 0.0 for a in raw]
    return nx, [a.astype(np.float64, copy=False) for a in raw], like, eps


def check_distribution(x: np.ndarray, name: str, eps: float = 0.0) -> np.ndarray:
    """Validate a probability vector and return it rescaled to sum exactly 1 (in float64).

    ``x`` must be a non-empty 1-D, finite, nonnegative vector whose sum is 1 within a relative
    ``max(1e-9, len(x) * eps)``, where ``eps`` is the machine epsilon of the caller's dtype (so that
    float32 inputs, which cannot sum to 1 within 1e-9, are accepted).
    """
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    if np.any(x < 0):
        raise ValueError(f"{name} must be nonnegative, min is {x.min()}")
    total, rtol = float(x.sum()), max(SUM_RTOL, x.size * eps)
    if abs(total - 1.0) > rtol:
        raise ValueError(f"{name} must sum to 1 (within {rtol:g}), sums to {total!r}")
    return x / total


@dataclass(frozen=True)
class SubsetMask:
    """Column-major sparse mask: entry ``e`` is user ``rows[e]`` in subset ``cols[e]``.

    Entries of subset ``j`` occupy ``starts[j] : starts[j] + sizes[j]`` in the order of ``subsets[j]``.
    """

    rows: np.ndarray  # (nnz,) user index of each entry
    cols: np.ndarray  # (nnz,) subset index of each entry
    starts: np.ndarray  # (M,) offset of each subset's first entry
    sizes: np.ndarray  # (M,) |A_j|
    num_users: int

    @property
    def num_subsets(self) -> int:
        """Number of subsets ``M``."""
        return int(self.sizes.size)


def build_mask(subsets: Sequence[Any], num_users: int, num_subsets: int | None = None) -> SubsetMask:
    """Validate ``subsets`` (distinct in-range ints, non-empty) and build the sparse mask.

    A 2-D integer array of shape ``(M, K)`` is accepted as ``M`` subsets of size ``K``.
    """
    if isinstance(subsets, np.ndarray) and subsets.ndim == 2:
        parts = [subsets.reshape(-1)]
        sizes = np.full(subsets.shape[0], subsets.shape[1], dtype=np.intp)
    else:
        parts = [np.asarray(s) for s in subsets]
        if any(a.ndim != 1 for a in parts):
            raise ValueError("subsets must be a sequence of 1-D integer index arrays")
        sizes = np.fromiter(map(len, parts), dtype=np.intp, count=len(parts))
    if num_subsets is not None and sizes.size != num_subsets:
        raise ValueError(f"len(subsets) = {sizes.size} must equal len(q) = {num_subsets}")
    if sizes.size == 0:
        raise ValueError("subsets must contain at least one subset")
    if np.any(sizes == 0):
        raise ValueError(f"subsets[{int(np.argmin(sizes))}] is empty")
    rows = np.concatenate(parts)
    if rows.dtype.kind not in "iu":
        raise ValueError(f"subsets must hold integer user indices, got dtype {rows.dtype}")
    rows = rows.astype(np.intp, copy=False)
    cols = np.repeat(np.arange(sizes.size, dtype=np.intp), sizes)
    bad = (rows < 0) | (rows >= num_users)
    if np.any(bad):
        e = int(np.argmax(bad))
        raise ValueError(f"subsets[{cols[e]}] has index {rows[e]} outside [0, {num_users})")
    keys = np.sort(cols * num_users + rows, kind="stable")  # runs per subset: near-linear timsort
    dup = np.flatnonzero(keys[1:] == keys[:-1])
    if dup.size:
        j, i = divmod(int(keys[dup[0]]), num_users)
        raise ValueError(f"subsets[{j}] contains user {i} more than once")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
    return SubsetMask(rows=rows, cols=cols, starts=starts, sizes=sizes, num_users=num_users)


def split_flat(nx: Backend, flat: Array, sizes: np.ndarray) -> list[Array]:
    """Split a flat backend array into consecutive views of the given sizes."""
    if nx.__name__ == "torch":
        return list(flat.split(sizes.tolist()))
    bounds = np.concatenate(([0], np.cumsum(sizes))).tolist()
    return [flat[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _int_max_flow(
    tails: np.ndarray, heads: np.ndarray, caps: np.ndarray, num_nodes: int
) -> tuple[int, Any]:
    """Max flow from node 0 to node ``num_nodes - 1`` with int32 capacities, and the flow matrix."""
    keep = caps > 0
    graph = sp.csr_array(
        (caps[keep].astype(np.int32), (tails[keep], heads[keep])), shape=(num_nodes, num_nodes)
    )
    res = maximum_flow(graph, 0, num_nodes - 1)
    return int(res.flow_value), res.flow


def bipartite_max_flow(
    p: np.ndarray, q: np.ndarray, mask: SubsetMask
) -> tuple[float, float, np.ndarray]:
    """Max flow source -> users (cap ``p``) -> subsets (cap inf on the mask) -> sink (cap ``q``).

    ``scipy`` needs int32 capacities. Stage 1 floors ``s1 * cap`` with ``s1 = (2^31 - 1) / max(p, q)``;
    its flow is feasible for the real capacities and, by max-flow / min-cut, short of the optimum by
    less than ``D = (#finite edges + 1) / s1``. Stage 2 solves the residual network (reverse edges
    into the source or out of the sink are useless and left out) with every capacity clipped to ``D``
    (an acyclic flow of value ``<= D`` uses no edge above ``D``) at scale ``s2 = (2^31 - 1) / D``.
    Returns the certified lower bound on the max-flow value, the bound ``E2 / s2`` on its error
    (``E2`` = residual edges with positive capacity), and the users on the source side of a minimum
    cut (boolean, shape ``(N,)``): the users still reachable from the source in the residual
    network of the combined flow (an edge counts as open above a slack of ``8 * D2`` with
    ``D2 = 1 / s2``). By max-flow / min-cut these users ``I`` maximise the Hall deficiency
    ``p(I) - q(N(I))``, which equals the unmatched mass.
    """
    n, m, nnz = p.size, q.size, mask.rows.size
    sink = n + m + 1
    tails = np.concatenate((np.zeros(n, np.intp), 1 + mask.rows, 1 + n + np.arange(m)))
    heads = np.concatenate((1 + np.arange(n), 1 + n + mask.cols, np.full(m, sink, np.intp)))
    real = np.concatenate((p, np.full(nnz, np.inf), q))
    s1 = _INT32_MAX / max(float(p.max()), float(q.max()))
    caps1 = np.floor(np.minimum(real * s1, _INT32_MAX))
    flow1, flow_matrix = _int_max_flow(tails, heads, caps1, sink + 1)
    gap = (np.count_nonzero(p) + np.count_nonzero(q) + 1) / s1
    edge_flows = np.asarray(flow_matrix[tails, heads], dtype=np.float64).reshape(-1) / s1
    forward = np.where(np.isinf(real), gap, np.minimum(real - edge_flows, gap))
    backward = np.minimum(edge_flows[n : n + nnz], gap)  # reverse user -> subset edges only
    caps2 = np.maximum(np.concatenate((forward, backward)), 0.0)
    s2 = _INT32_MAX / gap
    tails2 = np.concatenate((tails, heads[n : n + nnz]))
    heads2 = np.concatenate((heads, tails[n : n + nnz]))
    flow2, flow2_matrix = _int_max_flow(tails2, heads2, np.floor(np.minimum(caps2 * s2, _INT32_MAX)),
                                        sink + 1)
    # Combined flow per original edge (stage 2's reverse edges cancel stage-1 user -> subset flow).
    f2 = np.asarray(flow2_matrix[tails2, heads2], dtype=np.float64).reshape(-1) / s2
    total_flow = edge_flows + f2[: tails.size]
    total_flow[n : n + nnz] -= f2[tails.size :]
    slack = 8.0 / s2
    source_open = p - total_flow[:n] > slack
    back_open = total_flow[n : n + nnz] > slack  # subset -> user residual edges
    side = _reachable_users(source_open, back_open, mask)
    return flow1 / s1 + flow2 / s2, np.count_nonzero(caps2) / s2, side


def _reachable_users(source_open: np.ndarray, back_open: np.ndarray, mask: SubsetMask) -> np.ndarray:
    """Users reachable from the source: open source edges, then user -> subset -> user steps."""
    users = source_open.copy()
    subsets = np.zeros(mask.sizes.size, dtype=bool)
    frontier = users.copy()
    while frontier.any():
        on = frontier[mask.rows]
        new_subsets = np.zeros_like(subsets)
        new_subsets[mask.cols[on]] = True
        new_subsets &= ~subsets
        subsets |= new_subsets
        step = new_subsets[mask.cols] & back_open
        reached = np.zeros_like(users)
        reached[mask.rows[step]] = True
        frontier = reached & ~users
        users |= frontier
    return users


def _row_factor(
    p: np.ndarray, rs: np.ndarray, log_p: np.ndarray, log_u: np.ndarray, kappa: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """Row scaling ``(p / rs)^kappa * u^(kappa - 1)`` and its log (``None`` for plain IPFP)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if kappa == 1.0:
            return p / rs, None
        step = kappa * (log_p - np.log(rs)) + (kappa - 1.0) * log_u
        return np.exp(step), step


def ipfp(
    p: np.ndarray,
    q: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    t0: np.ndarray,
    *,
    kappa: float,
    tol: float,
    max_iter: int,
    offset: float = 0.0,
) -> tuple[np.ndarray, int, str]:
    """Masked (kappa-penalised) IPFP in T-form on a flat plan; every column needs ``q_j > 0``.

    Every iterate ends with a column step. Rows with ``p_i = 0`` get factor 0 (1 when ``kappa = 0``).
    The residual is ``||T1 - p||_1`` for ``kappa = 1`` and ``||T1 * (f - 1)||_1`` (the change the next
    row step ``f`` would make to the row marginal) otherwise; ``offset`` is added to it. Before a step
    is applied its factors are checked (finite row factors, column sums finite and positive); a failure
    returns the current, finite iterate with status ``"non-finite"``.
    """
    n, m = p.size, q.size
    covered = np.bincount(rows, minlength=n) > 0
    active = covered & (p > 0)
    fixed = np.where(covered, 1.0 if kappa == 0.0 else 0.0, 1.0)
    log_p = np.log(np.where(active, p, 1.0))
    log_u = np.zeros(n)
    t = t0
    for it in range(max_iter + 1):
        rs = np.bincount(rows, t, minlength=n)
        f, step = _row_factor(p, rs, log_p, log_u, kappa)
        np.copyto(f, fixed, where=~active)
        if not np.isfinite(f).all():
            return t, it, "non-finite"
        resid = np.abs(rs - p).sum() if kappa == 1.0 else np.abs(rs * (f - 1.0)).sum()
        if resid + offset <= tol and np.abs(np.bincount(cols, t, minlength=m) - q).sum() <= tol:
            return t, it, "converged"
        if it == max_iter:
            return t, it, "max_iter"
        w = t * f[rows]
        c = q / np.bincount(cols, w, minlength=m)
        if not ((c > 0) & (c < np.inf)).all():  # a column sum over- or underflowed
            return t, it, "non-finite"
        t = w * c[cols]
        if step is not None:
            log_u = np.where(active, log_u + step, 0.0)
    raise AssertionError("unreachable")  # pragma: no cover


def mask_weights(
    p: np.ndarray, q: np.ndarray, mask: SubsetMask, plan: np.ndarray, col_sums: np.ndarray
) -> tuple[np.ndarray, int]:
    """Flat weights ``Y = T / (1^T T)`` with fallbacks, and the number of underflowed columns.

    Columns with ``q_j = 0`` get ``p_i / sum_{k in A_j} p_k`` (uniform when that sum is 0); columns with
    ``q_j > 0`` whose plan mass is not positive and finite get uniform weights.
    """
    cols = mask.cols
    ratio = (q > 0) & (col_sums > 0) & np.isfinite(col_sums)
    p_in = p[mask.rows]
    p_sums = np.bincount(cols, p_in, minlength=q.size)
    by_p = (q == 0) & (p_sums > 0)
    num = np.where(ratio[cols], plan, np.where(by_p[cols], p_in, 1.0))
    den = np.where(ratio, col_sums, np.where(by_p, p_sums, mask.sizes))
    return num / den[cols], int(np.count_nonzero((q > 0) & ~ratio))


def subset_sums(values: np.ndarray, num_bits: int) -> np.ndarray:
    """Sum over subsets (zeta transform): ``out[S] = sum_{R subset of S} values[R]`` for bitmasks."""
    out = values.astype(np.float64, copy=True)
    for b in range(num_bits):
        view = out.reshape(-1, 2, 1 << b)
        view[:, 1, :] += view[:, 0, :]
    return out


def check_options(tol: float, max_iter: int, kappa: float) -> None:
    if not (np.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int | np.integer) or max_iter < 0:
        raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if not 0.0 <= kappa <= 1.0:
        raise ValueError(f"kappa must lie in [0, 1], got {kappa}")


def solve_masked(
    p: np.ndarray, q: np.ndarray, mask: SubsetMask, *, tol: float, max_iter: int, kappa: float
) -> tuple[np.ndarray, int, str]:
    """Run IPFP on the live columns; q_j = 0 columns stay 0, dead columns stay uniform."""
    t0 = q[mask.cols] / mask.sizes[mask.cols]
    if not np.isfinite(t0).all():
        raise FloatingPointError("the initial plan q_j / |A_j| is not finite")
    has_p = np.bincount(mask.cols, p[mask.rows] > 0, minlength=q.size) > 0
    live = (q > 0) & (has_p | (kappa == 0.0))
    dead = (q > 0) & ~live  # all members have p_i = 0: no kappa > 0 plan can serve this column
    opts: dict[str, Any] = {"kappa": kappa, "tol": tol, "max_iter": max_iter, "offset": q[dead].sum()}
    if live.all():
        t, n_iter, stopped = ipfp(p, q, mask.rows, mask.cols, t0, **opts)
        return t, n_iter, stopped
    entries = live[mask.cols]
    live_cols = (np.cumsum(live) - 1)[mask.cols[entries]]
    t, n_iter, stopped = ipfp(p, q[live], mask.rows[entries], live_cols, t0[entries], **opts)
    plan = np.where(dead[mask.cols], t0, 0.0)
    plan[entries] = t
    return plan, n_iter, stopped


def warning_messages(
    stopped: str, n_iter: int, row_error: float, feasibility: str, n_underflow: int
) -> list[str]:
    """Messages for the ``MaskedSinkhornWarning`` of a masked Sinkhorn run (empty when all is well).

    ``feasibility`` is the max-flow diagnosis (unmatched mass first, then the worst Hall violator
    set); it leads every non-convergence message.
    """
    state = f"row error {row_error:.3e}"
    msgs = []
    if stopped == "max_iter":
        msgs.append(f"masked Sinkhorn did not converge in {n_iter} iterations: {feasibility}; "
                    f"{state}")
    elif stopped == "non-finite":
        msgs.append(f"masked Sinkhorn stopped at iteration {n_iter} (a row or column sum under- or "
                    f"overflowed; the last finite iterate is returned): {feasibility}; {state}")
    if n_underflow:
        msgs.append(f"{n_underflow} column(s) with q_j > 0 lost all plan mass; using uniform weights")
    return msgs
