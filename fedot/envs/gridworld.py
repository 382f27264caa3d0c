r"""Gridworlds with slip, obstacles and smooth goal rewards, and heterogeneous client variants.

States are the row-major cells of an ``H x W`` grid (state ``s = row * W + col``); the four actions
are ``0 = up, 1 = right, 2 = down, 3 = left``. With probability ``1 - slip`` the intended move is
executed and with probability ``slip`` a uniformly random *other* action (``slip / 3`` each).
Moves into a wall or an obstacle leave the agent in place.

The default true reward is a smooth bump around each goal,

.. math:: r(s) = \max_g \exp\bigl(-\lVert x(s) - g\rVert^2 / (2 w^2)\bigr),

plus ``obstacle_penalty`` on obstacle cells, with :math:`x(s)` the (row, col) coordinates. This
shape makes the translation of a goal a translation of the reward, which is the setting in which a
Wasserstein barycenter of client rewards is expected to beat parameter averaging.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.ndimage as ndi
import scipy.sparse as sp

from fedot.envs.tabular import TabularMDP, make_mdp

__all__ = ["ACTIONS", "VARIANT_KINDS", "client_variants", "gridworld"]

#: Action names and their (d_row, d_col) moves.
ACTIONS: tuple[tuple[str, tuple[int, int]], ...] = (
    ("up", (-1, 0)),
    ("right", (0, 1)),
    ("down", (1, 0)),
    ("left", (0, -1)),
)
#: Heterogeneity kinds understood by :func:`client_variants`.
VARIANT_KINDS: tuple[str, ...] = ("none", "goal-shift", "slip", "layout", "demos")

_MOVES = np.array([m for _, m in ACTIONS], dtype=np.int64)


def _grid_size(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        h = w = int(size)
    else:
        if len(size) != 2:
            raise ValueError(f"size must be an int or a (H, W) pair, got {size!r}")
        h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1 or h * w < 2:
        raise ValueError(f"grid must have at least 2 cells, got {h}x{w}")
    return h, w


def _cell(cell: Sequence[float], h: int, w: int, what: str) -> tuple[int, int]:
    if len(cell) != 2:
        raise ValueError(f"{what} must be a (row, col) pair, got {cell!r}")
    r, c = int(np.rint(cell[0])), int(np.rint(cell[1]))
    if not (0 <= r < h and 0 <= c < w):
        raise ValueError(f"{what} {tuple(cell)} lies outside the {h}x{w} grid")
    return r, c


def gridworld(
    size: int | tuple[int, int],
    *,
    goals: Sequence[Sequence[float]] | None = None,
    obstacles: Sequence[Sequence[int]] = (),
    slip: float = 0.0,
    reward_width: float | None = None,
    obstacle_penalty: float = -1.0,
    start: Sequence[int] | str = (0, 0),
    horizon: int | None = None,
    terminal_goals: bool = False,
    name: str | None = None,
) -> TabularMDP:
    """Build a gridworld MDP.

    Parameters
    ----------
    size : int or tuple of int
        Side of a square grid, or ``(H, W)``.
    goals : sequence of (row, col), optional
        Goal positions; default the bottom-right cell. Coordinates may be fractional: the reward
        bump is centred at the exact point and the goal *state* is the nearest cell.
    obstacles : sequence of (row, col)
        Obstacle cells. They remain states (so the state space is shared across layouts) but are
        never entered, have ``p0 = 0``, self-loop, and carry ``obstacle_penalty``.
    slip : float
        Probability in ``[0, 1]`` that a uniformly random other action is executed.
    reward_width : float, optional
        Width :math:`w` of the goal bump; default ``max(1, max(H, W) / 10)``.
    obstacle_penalty : float
        Reward added on obstacle cells.
    start : (row, col) or "uniform"
        Start cell, or ``"uniform"`` over the free non-goal cells.
    horizon : int, optional
        Default horizon; ``2 * max(H, W)``.
    terminal_goals : bool
        Make the goal cells absorbing terminals with reward 1 there and 0 elsewhere (plus
        ``obstacle_penalty`` on obstacles) instead of the smooth bump.
    name : str, optional
        Name of the MDP; default ``"gridworld-HxW"``.

    Returns
    -------
    TabularMDP
        With ``coords`` = (row, col), ``grid_shape = (H, W)`` and the goal cells as ``goal_states``.

    Raises
    ------
    ValueError
        On out-of-grid or obstructed goals/start, ``slip`` outside ``[0, 1]``, or a non-positive
        reward width.
    """
    h, w = _grid_size(size)
    s = h * w
    if not (0.0 <= slip <= 1.0):
        raise ValueError(f"slip must lie in [0, 1], got {slip}")
    width = max(1.0, max(h, w) / 10.0) if reward_width is None else float(reward_width)
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"reward_width must be positive, got {reward_width}")
    if not math.isfinite(obstacle_penalty):
        raise ValueError("obstacle_penalty must be finite")
    goal_points = np.array([(h - 1, w - 1)] if goals is None else goals, dtype=np.float64)
    if goal_points.ndim != 2 or goal_points.shape[1] != 2 or len(goal_points) == 0:
        raise ValueError(f"goals must be a non-empty sequence of (row, col) pairs, got {goals!r}")
    goal_cells = [_cell(g, h, w, "goal") for g in goal_points]
    blocked = np.zeros((h, w), dtype=bool)
    for o in obstacles:
        blocked[_cell(o, h, w, "obstacle")] = True
    for g in goal_cells:
        if blocked[g]:
            raise ValueError(f"goal {g} is an obstacle")
    goal_idx = np.array(sorted({r * w + c for r, c in goal_cells}), dtype=np.int64)

    rows, cols = np.divmod(np.arange(s), w)
    coords = np.stack([rows, cols], axis=1).astype(np.float64)

    # Deterministic successor of every (state, move); walls and obstacles keep the agent in place.
    tr = rows[:, None] + _MOVES[None, :, 0]
    tc = cols[:, None] + _MOVES[None, :, 1]
    inside = (tr >= 0) & (tr < h) & (tc >= 0) & (tc < w)
    trc, tcc = np.clip(tr, 0, h - 1), np.clip(tc, 0, w - 1)
    ok = inside & ~blocked[trc, tcc]
    succ = np.where(ok, trc * w + tcc, np.arange(s)[:, None])
    succ[blocked.ravel()] = np.arange(s)[blocked.ravel(), None]  # obstacle cells self-loop

    a = len(ACTIONS)
    # weight[a_intended, m_executed]
    weight = np.full((a, a), slip / (a - 1))
    np.fill_diagonal(weight, 1.0 - slip)
    row_idx = np.repeat(np.arange(s * a), a)  # (s, a_int, m)
    col_idx = np.repeat(succ, a, axis=0).ravel()  # succ[s, m] for each (s, a_int)
    data = np.tile(weight.ravel(), s)
    p = sp.csr_matrix((data, (row_idx, col_idx)), shape=(s * a, s))
    p.sum_duplicates()

    terminal = np.zeros(s, dtype=bool)
    if terminal_goals:
        terminal[goal_idx] = True
        reward = np.zeros(s)
        reward[goal_idx] = 1.0
    else:
        d2 = ((coords[:, None, :] - goal_points[None, :, :]) ** 2).sum(axis=2)
        reward = np.exp(-d2 / (2.0 * width**2)).max(axis=1)
    reward[blocked.ravel()] += obstacle_penalty

    free = ~blocked.ravel()
    p0 = np.zeros(s)
    if isinstance(start, str):
        if start != "uniform":
            raise ValueError(f"start must be a (row, col) cell or 'uniform', got {start!r}")
        cand = free.copy()
        cand[goal_idx] = False
        if not cand.any():
            cand = free
        p0[cand] = 1.0 / cand.sum()
        start_meta: Any = "uniform"
    else:
        sc = _cell(start, h, w, "start")
        if blocked[sc]:
            raise ValueError(f"start {sc} is an obstacle")
        p0[sc[0] * w + sc[1]] = 1.0
        start_meta = list(sc)

    meta = {
        "kind": "gridworld",
        "size": [h, w],
        "goals": goal_points.tolist(),
        "goal_cells": [list(g) for g in goal_cells],
        "obstacles": [list(map(int, o)) for o in zip(*np.nonzero(blocked), strict=True)],
        "slip": float(slip),
        "reward_width": width,
        "obstacle_penalty": float(obstacle_penalty),
        "start": start_meta,
        "terminal_goals": bool(terminal_goals),
        "actions": [n for n, _ in ACTIONS],
    }
    return make_mdp(
        name or f"gridworld-{h}x{w}",
        p,
        p0,
        terminal,
        reward,
        coords,
        grid_shape=(h, w),
        goal_states=goal_idx,
        horizon=2 * max(h, w) if horizon is None else horizon,
        meta=meta,
    )


def _connected(blocked: np.ndarray, sources: list[tuple[int, int]], all_free: bool) -> bool:
    """Check that ``sources`` lie in one 4-connected free component (the only one if ``all_free``)."""
    labels, n = ndi.label(~blocked)
    ids = {int(labels[c]) for c in sources}
    if 0 in ids or len(ids) != 1:
        return False
    return n == 1 if all_free else True


def client_variants(
    base: dict[str, Any],
    num_clients: int,
    kind: str,
    strength: float,
    seed: int,
) -> list[TabularMDP]:
    r"""Make ``num_clients`` heterogeneous variants of a base gridworld.

    The base MDP ``gridworld(**base)`` holds the *shared objective* (its ``true_reward``); each
    variant carries its client's own ``true_reward`` (which differs from the shared one only for
    ``"goal-shift"`` and, through the obstacle penalty, ``"layout"``).

    Parameters
    ----------
    base : dict
        Keyword arguments of :func:`gridworld` (must contain ``size``).
    num_clients : int
        Number of clients ``K >= 1``.
    kind : str
        One of:

        * ``"none"``: identical copies;
        * ``"goal-shift"``: every goal of client ``k`` is translated by
          :math:`\delta_k = \text{strength}\,(\cos\phi_k, \sin\phi_k)` (in cells, fractional) with
          :math:`\phi_k = \phi_0 + 2\pi k/K` and a seeded random :math:`\phi_0`, so that
          :math:`\sum_k \delta_k = 0` (the mean goal is the base goal) before clipping to the grid;
          with ``K = 1`` there is no shift. A shifted goal landing on an obstacle is pulled back
          towards the base goal;
        * ``"slip"``: client ``k`` gets slip :math:`\text{strength}\cdot k/(K-1)` (from 0 to
          ``strength``; 0 when ``K = 1``);
        * ``"layout"``: each client adds its own random obstacles on a fraction ``strength`` in
          ``[0, 0.5)`` of the cells (never on the start or goals), resampled until the start and
          goals stay 4-connected (for ``start="uniform"``: until all free cells are connected);
        * ``"demos"``: identical MDPs (the demonstration counts differ, handled by the caller).
    strength : float
        Heterogeneity strength (cells for goal-shift, slip probability, obstacle density).
    seed : int
        Seed; the same seed gives the same variants.

    Returns
    -------
    list of TabularMDP
        One MDP per client, all on the same state space as the base MDP; ``meta["client"]``,
        ``meta["variant"]`` and ``meta["strength"]`` describe the variant.

    Raises
    ------
    ValueError
        On an unknown kind, ``num_clients < 1``, or a strength outside the kind's range.
    """
    if kind not in VARIANT_KINDS:
        raise ValueError(f"unknown variant kind {kind!r}; expected one of {VARIANT_KINDS}")
    if num_clients < 1:
        raise ValueError(f"num_clients must be >= 1, got {num_clients}")
    if "size" not in base:
        raise ValueError("base must contain the gridworld 'size'")
    if not math.isfinite(strength) or strength < 0:
        raise ValueError(f"strength must be a finite non-negative number, got {strength}")
    h, w = _grid_size(base["size"])
    base_mdp = gridworld(**base)
    base_name = base_mdp.name
    k_all = num_clients
    out: list[TabularMDP] = []

    def build(k: int, **override: Any) -> TabularMDP:
        kwargs = {**base, **override, "name": f"{base_name}-{kind}-client{k}"}
        mdp = gridworld(**kwargs)
        mdp.meta.update({"variant": kind, "client": k, "strength": float(strength), "seed": int(seed)})
        return mdp

    if kind in ("none", "demos"):
        return [build(k) for k in range(k_all)]

    if kind == "slip":
        if strength > 1:
            raise ValueError(f"slip strength must lie in [0, 1], got {strength}")
        for k in range(k_all):
            slip = 0.0 if k_all == 1 else strength * k / (k_all - 1)
            out.append(build(k, slip=slip))
        return out

    blocked0 = np.zeros((h, w), dtype=bool)
    for o in base.get("obstacles", ()):
        blocked0[_cell(o, h, w, "obstacle")] = True
    goal_points = np.array(base_mdp.meta["goals"], dtype=np.float64)

    if kind == "goal-shift":
        rng = np.random.default_rng(seed)
        phi0 = rng.uniform(0.0, 2.0 * np.pi)
        lo, hi = np.zeros(2), np.array([h - 1, w - 1], dtype=np.float64)
        for k in range(k_all):
            phi = phi0 + 2.0 * np.pi * k / k_all
            delta = np.zeros(2) if k_all == 1 else strength * np.array([np.cos(phi), np.sin(phi)])
            shifted = []
            for g in goal_points:
                for frac in np.linspace(1.0, 0.0, 21):
                    cand = np.clip(g + frac * delta, lo, hi)
                    if not blocked0[tuple(np.rint(cand).astype(int))]:
                        break
                shifted.append(cand.tolist())
            mdp = build(k, goals=shifted)
            mdp.meta["goal_shift"] = delta.tolist()
            out.append(mdp)
        return out

    # layout
    if not (0.0 <= strength < 0.5):
        raise ValueError(f"layout obstacle density must lie in [0, 0.5), got {strength}")
    start = base.get("start", (0, 0))
    uniform = isinstance(start, str)
    goal_cells = [tuple(c) for c in base_mdp.meta["goal_cells"]]
    keep_free = list(goal_cells) if uniform else [*goal_cells, _cell(start, h, w, "start")]
    cand_mask = ~blocked0
    for c in keep_free:
        cand_mask[c] = False
    candidates = np.flatnonzero(cand_mask.ravel())
    n_obs = min(int(round(strength * h * w)), candidates.size)
    children = np.random.SeedSequence(seed).spawn(k_all)
    for k in range(k_all):
        rng = np.random.default_rng(children[k])
        for _ in range(10_000):
            blocked = blocked0.copy()
            blocked.ravel()[rng.choice(candidates, size=n_obs, replace=False)] = True
            if _connected(blocked, keep_free, uniform):
                break
        else:
            raise ValueError(
                f"could not sample a connected layout with obstacle density {strength} on a {h}x{w} grid"
            )
        obstacles = [(int(r), int(c)) for r, c in zip(*np.nonzero(blocked), strict=True)]
        out.append(build(k, obstacles=obstacles))
    return out
