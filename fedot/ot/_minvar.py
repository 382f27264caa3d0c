r"""Minimum-variance masked transport plan: a semismooth Newton method on the QP's dual.

Primal (a strictly convex separable QP over the entries :math:`e = (i, j)` of the mask):

.. math:: \min_{T \ge 0} \sum_{e} \frac{T_e^2}{q_j} \quad \text{s.t.} \quad T 1 = r, \; 1^\top T = q.

With :math:`w_e = q_j / 2` and dual variables :math:`\alpha \in \mathbb R^N, \beta \in \mathbb R^M`,
the KKT conditions give :math:`T_e = w_e\,(\alpha_i + \beta_j)_+`, and the dual

.. math::
    D(\alpha, \beta) = r^\top \alpha + q^\top \beta - \sum_e \tfrac{w_e}{2} (\alpha_i + \beta_j)_+^2

is concave and piecewise quadratic with gradient :math:`(r - T 1,\; q - T^\top 1)`. Each iteration
takes the generalised Hessian on the active entries (:math:`\alpha_i + \beta_j > 0`), adds a
Levenberg-Marquardt shift :math:`\mu\,\mathrm{diag}(H_{\text{all}})` with :math:`\mu` proportional to
the residual (so the step tends to a Newton step as the marginals converge), solves it through
the :math:`N \times N` Schur complement of the diagonal subset block, and backtracks (Armijo) on
:math:`D`. Every iterate's plan is nonnegative by construction; the residual is the marginal error.
This is the method of Lorenz, Manns & Meyer (2021) for quadratically regularised OT, with the cost
constant on the mask and the entry weights :math:`1/q_j`.

References
----------
.. [1] D. A. Lorenz, P. Manns, C. Meyer, "Quadratically regularized optimal transport",
   Applied Mathematics & Optimization 83, 1919-1949, 2021.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from fedot.ot._utils import SubsetMask

_ARMIJO = 1e-4
_MAX_HALVINGS = 60
_MU_MAX = 1e-2


def _dual_increase(r: np.ndarray, q: np.ndarray, w: np.ndarray, s: np.ndarray, s_new: np.ndarray,
                   step_a: np.ndarray, step_b: np.ndarray, t: float) -> float:
    """``D(x + t d) - D(x)``, summed as differences (no cancellation of the O(1) values of D)."""
    old, new = np.maximum(s, 0.0), np.maximum(s_new, 0.0)
    return float(t * (r @ step_a + q @ step_b) - 0.5 * (w * (new - old) * (new + old)).sum())


def min_variance_plan(
    r: np.ndarray, q: np.ndarray, mask: SubsetMask, *, tol: float, max_iter: int
) -> tuple[np.ndarray, int, str]:
    r"""Solve the minimum-second-moment plan with row marginal ``r`` and column marginal ``q``.

    Entries of rows with :math:`r_i = 0` and of columns with :math:`q_j = 0` are fixed at 0. The
    caller guarantees that a feasible plan exists (max-flow); on an infeasible instance the dual
    is unbounded and the iteration ends at ``max_iter`` with the marginal error still large.

    Returns
    -------
    plan : numpy.ndarray, shape (nnz,)
        :math:`T_e \ge 0` aligned with ``mask.rows`` / ``mask.cols``.
    n_iter : int
        Newton iterations performed.
    stopped : str
        ``"converged"`` (:math:`\|T1 - r\|_1 \le` tol and :math:`\|1^\top T - q\|_1 \le` tol),
        ``"max_iter"`` or ``"stalled"`` (no ascent step found: rounding floor reached).
    """
    n, m = mask.num_users, mask.num_subsets
    live = (r[mask.rows] > 0) & (q[mask.cols] > 0)
    rows, cols = mask.rows[live], mask.cols[live]
    w = 0.5 * q[cols]
    # fully active diagonal: the scale of each block for the Levenberg-Marquardt shift
    full_a = np.bincount(rows, w, minlength=n)
    full_b = np.bincount(cols, w, minlength=m)
    ref_a = np.where(full_a > 0, full_a, 1.0)
    ref_b = np.where(full_b > 0, full_b, 1.0)
    # start at uniform averaging inside each subset: T_e = q_j / |A_j| (alpha = 0, beta_j = 2/|A_j|)
    alpha = np.zeros(n)
    beta = np.zeros(m)
    count_b = np.bincount(cols, minlength=m)
    beta[count_b > 0] = 2.0 / count_b[count_b > 0]
    stopped, it = "max_iter", 0
    s = alpha[rows] + beta[cols]
    for it in range(max_iter + 1):
        plan_live = w * np.maximum(s, 0.0)
        g_a = r - np.bincount(rows, plan_live, minlength=n)
        g_b = q - np.bincount(cols, plan_live, minlength=m)
        res = float(np.abs(g_a).sum()), float(np.abs(g_b).sum())
        if res[0] <= tol and res[1] <= tol:
            stopped = "converged"
            break
        if it == max_iter:
            break
        mu = min(_MU_MAX, max(res[0] + res[1], 1e-14))
        act = s > 0
        wa = w[act]
        d_a = np.bincount(rows[act], wa, minlength=n) + mu * ref_a
        d_b = np.bincount(cols[act], wa, minlength=m) + mu * ref_b
        b = sp.csr_matrix((wa, (rows[act], cols[act])), shape=(n, m))
        b_scaled = b @ sp.diags(1.0 / d_b)
        schur = np.diag(d_a) - (b_scaled @ b.T).toarray()
        rhs = g_a - b_scaled @ g_b
        step_a = scipy.linalg.solve(schur, rhs, assume_a="pos", check_finite=False)
        step_b = (g_b - b.T @ step_a) / d_b
        slope = float(g_a @ step_a + g_b @ step_b)  # > 0: an ascent direction (H + mu D is SPD)
        t = 1.0
        for _ in range(_MAX_HALVINGS):
            s_new = s + t * (step_a[rows] + step_b[cols])
            if _dual_increase(r, q, w, s, s_new, step_a, step_b, t) >= _ARMIJO * t * slope:
                break
            t *= 0.5
        else:
            stopped = "stalled"
            break
        alpha, beta = alpha + t * step_a, beta + t * step_b
        s = alpha[rows] + beta[cols]
    plan = np.zeros(mask.rows.size)
    plan[live] = plan_live  # the plan of the final (alpha, beta)
    return plan, it, stopped
