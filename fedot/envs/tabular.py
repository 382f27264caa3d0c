r"""Tabular MDPs with sparse dynamics, and exact dynamic programming on them.

A :class:`TabularMDP` stores the transition kernel as a ``scipy.sparse`` CSR matrix of shape
``(S*A, S)`` whose row ``s*A + a`` is :math:`P(\cdot \mid s, a)`. Rewards are *state* rewards
:math:`r(s)`, collected at every time step spent in ``s``. Terminal states are *absorbing*: every
action loops back to the state with probability 1, so an agent that reached a terminal state keeps
collecting :math:`r(s_{\text{terminal}})` until the horizon (this is the convention used by the
demonstrations in :mod:`fedot.envs.demos` and by MaxEnt IRL in :mod:`fedot.learning.irl`).

This module also holds the two dynamic-programming primitives shared by the environments and the
IRL code (kept here so that :mod:`fedot.envs` depends on numpy/scipy only):

* :func:`soft_value_iteration`, the soft (maximum-causal-entropy) Bellman backup;
* :func:`state_visitation`, the forward propagation of state-visitation frequencies.

References
----------
.. [1] B. D. Ziebart, A. Maas, J. A. Bagnell, A. K. Dey, "Maximum Entropy Inverse Reinforcement
   Learning", AAAI 2008.
.. [2] B. D. Ziebart, J. A. Bagnell, A. K. Dey, "Modeling Interaction via the Principle of Maximum
   Causal Entropy", ICML 2010.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

__all__ = [
    "SoftVIResult",
    "SoftVIWarning",
    "TabularMDP",
    "as_transitions",
    "make_mdp",
    "resolve_horizon",
    "soft_value_iteration",
    "state_visitation",
    "state_visitation_by_step",
]

_ROW_TOL = 1e-6


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class TabularMDP:
    r"""A finite MDP with state rewards, absorbing terminals and a state embedding.

    Build instances with :func:`make_mdp` (which converts and repairs the inputs); the constructor
    itself only validates. Array fields are made read-only.

    Attributes
    ----------
    name : str
        Human-readable name.
    transitions : scipy.sparse.csr_matrix
        Shape ``(S*A, S)``; row ``s*A + a`` is :math:`P(\cdot\mid s,a)` and sums to 1.
    num_states, num_actions : int
        ``S`` and ``A``.
    p0 : numpy.ndarray
        ``(S,)`` start distribution (sums to 1).
    terminal : numpy.ndarray
        ``(S,)`` bool; terminal states are absorbing (all actions self-loop with probability 1).
    true_reward : numpy.ndarray
        ``(S,)`` float64 state reward of the task's objective.
    coords : numpy.ndarray
        ``(S, d)`` float64 embedding of the states (ground cost of optimal transport).
    grid_shape : tuple of int or None
        ``(H, W)`` when the states are the row-major cells of an ``H x W`` grid, else ``None``.
    goal_states : numpy.ndarray
        int64 indices of the goal states (success = reaching one); may be empty.
    horizon : int
        Default horizon of demonstrations and of finite-horizon planning.
    meta : dict
        Free-form, JSON-ready description of the instance.
    """

    name: str
    transitions: sp.csr_matrix
    num_states: int
    num_actions: int
    p0: np.ndarray
    terminal: np.ndarray
    true_reward: np.ndarray
    coords: np.ndarray
    grid_shape: tuple[int, int] | None
    goal_states: np.ndarray
    horizon: int
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s, a = self.num_states, self.num_actions
        if s < 1 or a < 1:
            raise ValueError(f"need at least one state and one action, got S={s}, A={a}")
        p = self.transitions
        if not sp.issparse(p) or p.format != "csr":
            raise ValueError("transitions must be a scipy.sparse CSR matrix; use make_mdp to convert")
        if p.shape != (s * a, s):
            raise ValueError(f"transitions must have shape (S*A, S) = {(s * a, s)}, got {p.shape}")
        if not np.all(np.isfinite(p.data)) or np.any(p.data < 0):
            raise ValueError("transition probabilities must be finite and non-negative")
        rows = np.asarray(p.sum(axis=1)).ravel()
        bad = np.flatnonzero(np.abs(rows - 1.0) > _ROW_TOL)
        if bad.size:
            st, ac = divmod(int(bad[0]), a)
            raise ValueError(
                f"{bad.size} transition rows do not sum to 1 (first: state {st}, action {ac}, "
                f"sum {rows[bad[0]]:.6g})"
            )
        _check_vector(self.p0, s, "p0")
        if self.p0.min() < 0 or abs(self.p0.sum() - 1.0) > _ROW_TOL:
            raise ValueError(f"p0 must be a probability vector, got sum {self.p0.sum():.6g}")
        if self.terminal.shape != (s,) or self.terminal.dtype != np.bool_:
            raise ValueError(f"terminal must be a bool array of shape ({s},)")
        _check_vector(self.true_reward, s, "true_reward")
        if self.coords.ndim != 2 or self.coords.shape[0] != s or not np.all(np.isfinite(self.coords)):
            raise ValueError(f"coords must be a finite (S, d) array with S={s}, got {self.coords.shape}")
        if self.grid_shape is not None and (
            len(self.grid_shape) != 2 or self.grid_shape[0] * self.grid_shape[1] != s
        ):
            raise ValueError(f"grid_shape {self.grid_shape} is inconsistent with S={s}")
        g = self.goal_states
        if g.ndim != 1 or (g.size and (g.min() < 0 or g.max() >= s)):
            raise ValueError(f"goal_states must be a 1-D array of state indices in [0, {s})")
        if int(self.horizon) < 1:
            raise ValueError(f"horizon must be >= 1, got {self.horizon}")
        term = np.flatnonzero(self.terminal)
        if term.size:
            rows_idx = (term[:, None] * a + np.arange(a)).ravel()
            self_loop = np.asarray(p[rows_idx, np.repeat(term, a)]).ravel()
            if np.any(np.abs(self_loop - 1.0) > _ROW_TOL):
                raise ValueError("terminal states must be absorbing (self-loop with probability 1)")

    @cached_property
    def transitions_T(self) -> sp.csr_matrix:
        """Return the transposed kernel, shape ``(S, S*A)`` (CSR; used by forward propagation)."""
        return self.transitions.T.tocsr()

    def dense(self) -> np.ndarray:
        """Return the transition kernel as a dense ``(S, A, S)`` array (for small MDPs and tests)."""
        return self.transitions.toarray().reshape(self.num_states, self.num_actions, self.num_states)

    def state_index(self, row: int, col: int) -> int:
        """Return the state index of grid cell ``(row, col)`` (only for grid MDPs)."""
        if self.grid_shape is None:
            raise ValueError(f"{self.name} is not a grid MDP")
        h, w = self.grid_shape
        if not (0 <= row < h and 0 <= col < w):
            raise ValueError(f"cell {(row, col)} outside the {h}x{w} grid")
        return int(row * w + col)


def _check_vector(x: np.ndarray, n: int, name: str) -> None:
    if x.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains non-finite values")


def make_mdp(
    name: str,
    transitions: np.ndarray | sp.spmatrix | sp.sparray,
    p0: np.ndarray,
    terminal: np.ndarray | None,
    true_reward: np.ndarray,
    coords: np.ndarray,
    *,
    grid_shape: tuple[int, int] | None = None,
    goal_states: np.ndarray | tuple[int, ...] | list[int] = (),
    horizon: int | None = None,
    meta: dict[str, Any] | None = None,
    num_actions: int | None = None,
) -> TabularMDP:
    r"""Validate inputs and build a :class:`TabularMDP` whose terminal states are absorbing.

    Parameters
    ----------
    name : str
        Name of the MDP.
    transitions : array_like or sparse matrix
        Either a dense ``(S, A, S)`` array or a (sparse or dense) ``(S*A, S)`` matrix whose row
        ``s*A + a`` is :math:`P(\cdot\mid s,a)`. Rows of non-terminal states must be non-negative
        and sum to 1 (within ``1e-6``; they are then renormalised exactly). Rows of terminal states
        are overwritten with self-loops, so they may be arbitrary (e.g. all zero).
    p0 : array_like
        ``(S,)`` start distribution; must be non-negative and sum to 1 (within ``1e-6``).
    terminal : array_like or None
        ``(S,)`` bool mask of terminal states (``None``: no terminals).
    true_reward : array_like
        ``(S,)`` finite state reward.
    coords : array_like
        ``(S,)`` or ``(S, d)`` finite state embedding.
    grid_shape : tuple of int, optional
        ``(H, W)`` when states are the row-major cells of an ``H x W`` grid.
    goal_states : array_like of int, optional
        Goal state indices.
    horizon : int, optional
        Default horizon; ``None`` uses :math:`2\lceil\sqrt{S}\rceil` (twice the side of a square grid).
    meta : dict, optional
        JSON-ready description.
    num_actions : int, optional
        Expected number of actions (a consistency check; ``A`` is inferred from the shape).

    Returns
    -------
    TabularMDP
        The validated MDP (arrays read-only).

    Raises
    ------
    ValueError
        On inconsistent shapes, negative or non-finite probabilities, rows not summing to 1,
        an invalid ``p0`` or a non-finite reward.
    """
    true_reward = np.asarray(true_reward, dtype=np.float64).copy()
    s = true_reward.shape[0] if true_reward.ndim == 1 else -1
    if s < 1:
        raise ValueError(f"true_reward must be a non-empty 1-D array, got shape {true_reward.shape}")
    if sp.issparse(transitions):
        p = sp.csr_matrix(transitions, dtype=np.float64)
    else:
        dense = np.asarray(transitions, dtype=np.float64)
        if dense.ndim == 3:
            if dense.shape[0] != s or dense.shape[2] != s:
                raise ValueError(
                    f"dense transitions must have shape (S, A, S) with S={s}, got {dense.shape}"
                )
            dense = dense.reshape(s * dense.shape[1], s)
        elif dense.ndim != 2:
            raise ValueError(f"transitions must be (S, A, S) or (S*A, S), got shape {dense.shape}")
        p = sp.csr_matrix(dense)
    if p.shape[1] != s or p.shape[0] % s:
        raise ValueError(f"transitions must have shape (S*A, S) with S={s}, got {p.shape}")
    a = p.shape[0] // s
    if num_actions is not None and num_actions != a:
        raise ValueError(f"num_actions={num_actions} inconsistent with transitions shape {p.shape}")
    if not np.all(np.isfinite(p.data)) or np.any(p.data < 0):
        raise ValueError("transition probabilities must be finite and non-negative")

    term = np.zeros(s, dtype=bool) if terminal is None else np.asarray(terminal, dtype=bool).copy()
    if term.shape != (s,):
        raise ValueError(f"terminal must have shape ({s},), got {term.shape}")

    # Validate and renormalise the non-terminal rows, then make the terminal rows self-loops.
    rows = np.asarray(p.sum(axis=1)).ravel()
    row_term = np.repeat(term, a)
    bad = np.flatnonzero((np.abs(rows - 1.0) > _ROW_TOL) & ~row_term)
    if bad.size:
        st, ac = divmod(int(bad[0]), a)
        raise ValueError(
            f"{bad.size} transition rows do not sum to 1 (first: state {st}, action {ac}, "
            f"sum {rows[bad[0]]:.6g})"
        )
    keep = sp.diags(np.where(row_term, 0.0, 1.0 / np.where(rows > 0, rows, 1.0))) @ p
    loops = sp.csr_matrix(
        (np.ones(int(row_term.sum())), (np.flatnonzero(row_term), np.repeat(np.arange(s), a)[row_term])),
        shape=p.shape,
    )
    p = sp.csr_matrix(keep + loops)
    p.eliminate_zeros()
    p.sort_indices()

    p0 = np.asarray(p0, dtype=np.float64).copy()
    _check_vector(p0, s, "p0")
    if p0.min() < 0 or abs(p0.sum() - 1.0) > _ROW_TOL:
        raise ValueError(f"p0 must be non-negative and sum to 1, got sum {p0.sum():.6g}")
    p0 /= p0.sum()
    _check_vector(true_reward, s, "true_reward")
    coords = np.asarray(coords, dtype=np.float64).copy()
    if coords.ndim == 1:
        coords = coords[:, None]
    goals = np.unique(np.asarray(goal_states, dtype=np.int64).ravel())
    if horizon is None:
        horizon = 2 * math.ceil(math.sqrt(s))
    if grid_shape is not None:
        grid_shape = (int(grid_shape[0]), int(grid_shape[1]))
    return TabularMDP(
        name=name,
        transitions=p,
        num_states=s,
        num_actions=a,
        p0=_readonly(p0),
        terminal=_readonly(term),
        true_reward=_readonly(true_reward),
        coords=_readonly(coords),
        grid_shape=grid_shape,
        goal_states=_readonly(goals),
        horizon=int(horizon),
        meta=dict(meta or {}),
    )


# ---------------------------------------------------------------------------------------------
# Dynamic programming
# ---------------------------------------------------------------------------------------------


class SoftVIWarning(RuntimeWarning):
    """Discounted (soft) value iteration stopped at ``max_iter`` before reaching ``tol``."""


@dataclass(frozen=True, eq=False)
class SoftVIResult:
    """Output of :func:`soft_value_iteration`.

    Attributes
    ----------
    q : numpy.ndarray
        Soft Q-values, ``(H, S, A)`` (finite horizon, index ``h`` = step ``h+1``) or ``(S, A)``.
    v : numpy.ndarray
        Soft values, ``(H, S)`` or ``(S,)``.
    policy : numpy.ndarray
        Soft-optimal (Boltzmann) policy, ``(H, S, A)`` time-dependent or ``(S, A)`` stationary;
        rows sum to 1.
    iterations : int
        Number of Bellman backups performed.
    converged : bool
        Always ``True`` for a finite horizon; whether ``tol`` was met in the discounted case.
    """

    q: np.ndarray
    v: np.ndarray
    policy: np.ndarray
    iterations: int
    converged: bool


def as_transitions(
    model: TabularMDP | np.ndarray | sp.spmatrix | sp.sparray,
) -> tuple[sp.csr_matrix, int, int]:
    """Return ``(P, S, A)`` with ``P`` the ``(S*A, S)`` CSR kernel of ``model``.

    Parameters
    ----------
    model : TabularMDP, numpy.ndarray or sparse matrix
        An MDP, a dense ``(S, A, S)`` kernel, or an ``(S*A, S)`` (sparse or dense) kernel.

    Returns
    -------
    tuple
        ``(P, S, A)``.
    """
    if isinstance(model, TabularMDP):
        return model.transitions, model.num_states, model.num_actions
    if sp.issparse(model):
        p = sp.csr_matrix(model, dtype=np.float64)
    else:
        arr = np.asarray(model, dtype=np.float64)
        if arr.ndim == 3:
            if arr.shape[0] != arr.shape[2]:
                raise ValueError(f"dense transitions must be (S, A, S), got {arr.shape}")
            arr = arr.reshape(-1, arr.shape[2])
        elif arr.ndim != 2:
            raise ValueError(f"transitions must be (S, A, S) or (S*A, S), got shape {arr.shape}")
        p = sp.csr_matrix(arr)
    s = p.shape[1]
    if s < 1 or p.shape[0] % s:
        raise ValueError(f"transitions must have shape (S*A, S), got {p.shape}")
    rows = np.asarray(p.sum(axis=1)).ravel()
    if not np.all(np.isfinite(p.data)) or np.any(p.data < 0) or np.any(np.abs(rows - 1.0) > _ROW_TOL):
        raise ValueError("transition rows must be non-negative, finite and sum to 1")
    return p, s, p.shape[0] // s


def resolve_horizon(horizon: int | None, gamma: float, default: int | None) -> int | None:
    """Resolve the planning horizon shared by all planning functions.

    Parameters
    ----------
    horizon : int or None
        Requested horizon.
    gamma : float
        Discount factor in ``[0, 1]``.
    default : int or None
        Fallback horizon (``mdp.horizon``), if known.

    Returns
    -------
    int or None
        ``horizon`` if given; otherwise ``None`` (infinite-horizon discounted problem) when
        ``gamma < 1``; otherwise ``default``.

    Raises
    ------
    ValueError
        If ``gamma`` is outside ``[0, 1]``, ``horizon < 1``, or the horizon is undetermined
        (``horizon=None``, ``gamma=1`` and no default).
    """
    if not (0.0 <= gamma <= 1.0) or not math.isfinite(gamma):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if horizon is not None:
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be a positive integer, got {horizon}")
        return int(horizon)
    if gamma < 1.0:
        return None
    if default is None:
        raise ValueError("horizon=None with gamma=1 needs an MDP (its default horizon) or gamma < 1")
    return int(default)


def _check_reward(reward: np.ndarray, s: int) -> np.ndarray:
    r = np.asarray(reward, dtype=np.float64)
    if r.shape != (s,):
        raise ValueError(f"reward must have shape ({s},), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("reward contains non-finite values")
    return r


def _rowmax(x: np.ndarray) -> np.ndarray:
    """Max over the (short) last axis; a column loop is several times faster than ``max(axis=-1)``."""
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        np.maximum(out, x[..., j], out=out)
    return out


def _rowsum(x: np.ndarray) -> np.ndarray:
    """Sum over the (short) last axis by a column loop."""
    out = x[..., 0].copy()
    for j in range(1, x.shape[-1]):
        out += x[..., j]
    return out


def _soft_max(q: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(V, log pi)`` with ``V = tau * logsumexp(Q / tau)`` over the last axis."""
    m = _rowmax(q)
    z = np.exp((q - m[..., None]) / temperature)
    v = m + temperature * np.log(_rowsum(z))
    return v, (q - v[..., None]) / temperature


def soft_value_iteration(
    model: TabularMDP | np.ndarray | sp.spmatrix | sp.sparray,
    reward: np.ndarray,
    *,
    horizon: int | None = None,
    gamma: float = 1.0,
    temperature: float = 1.0,
    tol: float = 1e-8,
    max_iter: int = 10_000,
) -> SoftVIResult:
    r"""Soft (maximum-causal-entropy) value iteration for a state reward.

    Finite horizon ``H`` (time-dependent policy), with :math:`V_{H+1} = 0` and for
    :math:`h = H, \dots, 1`:

    .. math::

        Q_h(s,a) &= r(s) + \gamma \sum_{s'} P(s'\mid s,a)\, V_{h+1}(s'), \\
        V_h(s) &= \tau \log \sum_a \exp\bigl(Q_h(s,a)/\tau\bigr), \\
        \pi_h(a\mid s) &= \exp\bigl((Q_h(s,a) - V_h(s))/\tau\bigr).

    Infinite horizon (``gamma < 1``, ``horizon=None``): the same backup without the time index,
    iterated until :math:`\|V_{k+1} - V_k\|_\infty < \mathrm{tol}` (a :math:`\gamma`-contraction),
    giving a stationary policy. The temperature :math:`\tau` is the Boltzmann-rationality
    parameter: :math:`\tau \to 0` recovers hard value iteration.

    Absorbing terminals self-loop, so an agent keeps collecting :math:`r(s)` in a terminal state
    until the horizon; this matches :func:`fedot.envs.demos.sample_demonstrations`, whose
    trajectories stay in the terminal state.

    Parameters
    ----------
    model : TabularMDP or array_like
        MDP or transition kernel (``(S, A, S)`` dense or ``(S*A, S)``).
    reward : numpy.ndarray
        ``(S,)`` finite state reward.
    horizon : int, optional
        Finite horizon. ``None``: discounted infinite horizon if ``gamma < 1``, otherwise
        ``model.horizon`` (``model`` must then be a :class:`TabularMDP`).
    gamma : float
        Discount factor in ``[0, 1]``.
    temperature : float
        Boltzmann temperature :math:`\tau > 0`.
    tol : float
        Sup-norm tolerance of the discounted iteration.
    max_iter : int
        Maximum number of discounted backups.

    Returns
    -------
    SoftVIResult
        Q, V, policy (rows sum to 1), iterations and convergence flag.

    Warns
    -----
    SoftVIWarning
        If the discounted iteration did not converge within ``max_iter``.

    References
    ----------
    Ziebart et al., "Maximum Entropy Inverse Reinforcement Learning", AAAI 2008; Ziebart et al.,
    "Modeling Interaction via the Principle of Maximum Causal Entropy", ICML 2010.
    """
    p, s, a = as_transitions(model)
    r = _check_reward(reward, s)
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be positive and finite, got {temperature}")
    h = resolve_horizon(horizon, gamma, model.horizon if isinstance(model, TabularMDP) else None)
    if h is not None:
        q, v, logpi = _soft_backup_finite(p, r, h, gamma, temperature, s, a)
        return SoftVIResult(q=q, v=v, policy=np.exp(logpi), iterations=h, converged=True)
    v = np.zeros(s)
    converged = False
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - `it` is reported
        q = r[:, None] + gamma * (p @ v).reshape(s, a)
        v_new, _ = _soft_max(q, temperature)
        delta = float(np.max(np.abs(v_new - v)))
        v = v_new
        if delta < tol:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"soft value iteration did not converge in {max_iter} iterations (gamma={gamma}, tol={tol})",
            SoftVIWarning,
            stacklevel=2,
        )
    q = r[:, None] + gamma * (p @ v).reshape(s, a)
    v, logpi = _soft_max(q, temperature)
    return SoftVIResult(q=q, v=v, policy=np.exp(logpi), iterations=it, converged=converged)


def _soft_backup_finite(
    p: sp.csr_matrix, r: np.ndarray, horizon: int, gamma: float, temperature: float, s: int, a: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-horizon soft backups; returns ``(Q, V, log pi)`` with leading axis ``H``."""
    q = np.empty((horizon, s, a))
    v = np.empty((horizon, s))
    logpi = np.empty((horizon, s, a))
    v_next = np.zeros(s)
    for t in range(horizon - 1, -1, -1):
        q[t] = r[:, None] + gamma * (p @ v_next).reshape(s, a)
        v[t], logpi[t] = _soft_max(q[t], temperature)
        v_next = v[t]
    return q, v, logpi


def _model_and_p0(
    model: TabularMDP | tuple[Any, np.ndarray],
) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray, int, int, int | None]:
    """Return ``(P, P^T, p0, S, A, default_horizon)`` from an MDP or a ``(transitions, p0)`` pair."""
    if isinstance(model, TabularMDP):
        return (
            model.transitions,
            model.transitions_T,
            model.p0,
            model.num_states,
            model.num_actions,
            model.horizon,
        )
    if not isinstance(model, tuple) or len(model) != 2:
        raise ValueError("model must be a TabularMDP or a (transitions, p0) pair")
    p, s, a = as_transitions(model[0])
    p0 = np.asarray(model[1], dtype=np.float64)
    _check_vector(p0, s, "p0")
    if p0.min() < 0 or abs(p0.sum() - 1.0) > _ROW_TOL:
        raise ValueError(f"p0 must be a probability vector, got sum {p0.sum():.6g}")
    return p, p.T.tocsr(), p0, s, a, None


def _check_policy(policy: np.ndarray, s: int, a: int) -> np.ndarray:
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim not in (2, 3) or pol.shape[-2:] != (s, a):
        raise ValueError(
            f"policy must have shape (S, A) or (H, S, A) with S={s}, A={a}, got {pol.shape}"
        )
    rows_ok = np.max(np.abs(_rowsum(pol) - 1.0)) <= _ROW_TOL
    if not np.all(np.isfinite(pol)) or pol.min() < 0 or not rows_ok:
        raise ValueError("policy rows must be finite, non-negative and sum to 1")
    return pol


def _forward(p_t: sp.csr_matrix, p0: np.ndarray, policy: np.ndarray, horizon: int) -> np.ndarray:
    """Return ``D`` of shape ``(H, S)``: ``D_1 = p0``, ``D_{h+1} = P^T (D_h * pi_h)``."""
    s = p0.shape[0]
    d = np.empty((horizon, s))
    d[0] = p0
    stationary = policy.ndim == 2
    for t in range(horizon - 1):
        pi = policy if stationary else policy[t]
        d[t + 1] = p_t @ (d[t][:, None] * pi).ravel()
    return d


def state_visitation_by_step(
    model: TabularMDP | tuple[Any, np.ndarray],
    policy: np.ndarray,
    horizon: int | None = None,
) -> np.ndarray:
    r"""Return the per-step state distributions :math:`D_h`, shape ``(H, S)``.

    :math:`D_1 = p_0` and :math:`D_{h+1}(s') = \sum_{s,a} D_h(s)\,\pi_h(a\mid s)\,P(s'\mid s,a)`;
    every row sums to 1.

    Parameters
    ----------
    model : TabularMDP or tuple
        MDP, or a ``(transitions, p0)`` pair.
    policy : numpy.ndarray
        ``(S, A)`` stationary or ``(H, S, A)`` time-dependent policy.
    horizon : int, optional
        Number of steps ``H``; defaults to the policy's ``H`` or to ``model.horizon``.

    Returns
    -------
    numpy.ndarray
        ``(H, S)`` array.
    """
    p, p_t, p0, s, a, default = _model_and_p0(model)
    pol = _check_policy(policy, s, a)
    h = _policy_horizon(pol, horizon, default)
    return _forward(p_t, p0, pol, h)


def _policy_horizon(pol: np.ndarray, horizon: int | None, default: int | None) -> int:
    if pol.ndim == 3:
        if horizon is not None and horizon != pol.shape[0]:
            raise ValueError(f"horizon={horizon} differs from the policy's horizon {pol.shape[0]}")
        return pol.shape[0]
    h = resolve_horizon(horizon, 1.0, default)
    assert h is not None
    return h


def state_visitation(
    model: TabularMDP | tuple[Any, np.ndarray],
    policy: np.ndarray,
    horizon: int | None = None,
    *,
    gamma: float = 1.0,
    discounted: bool = False,
) -> np.ndarray:
    r"""Return the expected state-visitation counts of a policy (the forward pass of MaxEnt IRL).

    Undiscounted: :math:`D(s) = \sum_{h=1}^{H} D_h(s)` with :math:`D_1 = p_0` and
    :math:`D_{h+1}(s') = \sum_{s,a} D_h(s)\pi_h(a\mid s)P(s'\mid s,a)`, so that
    :math:`\sum_s D(s) = H` exactly (up to rounding); absorbing terminals keep their mass.

    Discounted (``discounted=True``): :math:`D(s) = \sum_{h=1}^{H} \gamma^{h-1} D_h(s)`; for a
    stationary policy with ``horizon=None`` and ``gamma < 1`` the infinite sum is solved exactly,
    :math:`D^\top = p_0^\top (I - \gamma P_\pi)^{-1}`, and sums to :math:`1/(1-\gamma)`.

    Parameters
    ----------
    model : TabularMDP or tuple
        MDP, or a ``(transitions, p0)`` pair.
    policy : numpy.ndarray
        ``(S, A)`` stationary or ``(H, S, A)`` time-dependent policy (rows sum to 1).
    horizon : int, optional
        ``H``; defaults to the policy's ``H`` or to ``model.horizon``.
    gamma : float
        Discount used when ``discounted=True``.
    discounted : bool
        Weight step ``h`` by :math:`\gamma^{h-1}`.

    Returns
    -------
    numpy.ndarray
        ``(S,)`` expected visitation counts.

    References
    ----------
    Ziebart et al., "Maximum Entropy Inverse Reinforcement Learning", AAAI 2008 (Algorithm 1).
    """
    p, p_t, p0, s, a, default = _model_and_p0(model)
    pol = _check_policy(policy, s, a)
    if discounted and not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if discounted and pol.ndim == 2 and horizon is None and gamma < 1.0:
        p_pi = _policy_kernel(p, pol, s, a)
        lhs = (sp.identity(s, format="csc") - gamma * p_pi.T).tocsc()
        return np.asarray(spla.spsolve(lhs, p0), dtype=np.float64)
    h = _policy_horizon(pol, horizon, default)
    d = _forward(p_t, p0, pol, h)
    if discounted:
        return (gamma ** np.arange(h)) @ d
    return d.sum(axis=0)


def _policy_kernel(p: sp.csr_matrix, policy: np.ndarray, s: int, a: int) -> sp.csr_matrix:
    r"""Return the ``(S, S)`` state kernel :math:`P_\pi(s'|s) = \sum_a \pi(a|s) P(s'|s,a)`."""
    rows = np.repeat(np.arange(s), a)
    mix = sp.csr_matrix((policy.ravel(), (rows, np.arange(s * a))), shape=(s, s * a))
    return (mix @ p).tocsr()
