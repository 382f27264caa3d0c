r"""Tabular models of 2-D classic-control tasks by state discretisation and one-step sampling.

The 2-D state space is cut into a regular grid of ``bins = (n0, n1)`` cells (state index
``i0 * n1 + i1``). For every cell, ``samples_per_cell`` points are drawn uniformly inside it (from
the ``seed``), the environment's state is *set* to each point (``env.unwrapped.state``), one step
is taken per action, and the next state is binned; :math:`P(s'\mid s,a)` is the empirical
frequency. This is the standard "sample a model from the simulator" construction; it is a
stochastic approximation of deterministic dynamics (the discretisation aliasing becomes
transition noise).

* **MountainCar-v0**: position :math:`\in [-1.2, 0.6]` x velocity :math:`\in [-0.07, 0.07]`,
  actions ``0, 1, 2`` (push left, no push, push right). *Goal cells* are the position bins that
  intersect :math:`[0.5, 0.6]` (gymnasium terminates when the position reaches 0.5); they are
  absorbing terminals with true reward 1, every other cell has reward 0 (a success indicator;
  gymnasium's -1 per step is equivalent to rewarding early arrival at an absorbing goal).
  ``p0`` is gymnasium's reset law (position :math:`U[-0.6, -0.4]`, velocity 0) pushed through the
  binning exactly.
* **Pendulum-v1**: angle :math:`\theta \in [-\pi, \pi)` (wrapped) x angular velocity
  :math:`\dot\theta \in [-8, 8]`, torques ``actions`` (default ``(-2, 0, 2)``). No terminals; the
  true reward is gymnasium's :math:`-(\theta^2 + 0.1\dot\theta^2)` at the cell centres (the small
  action cost is dropped since rewards are state-only); ``p0`` is uniform over cells; goal cells
  (for success rates) are those whose centre is within one cell width of the upright rest point
  :math:`(0, 0)` in both coordinates.

``coords`` are the cell centres normalised to ``[0, 1]`` per dimension; ``grid_shape = bins``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import scipy.sparse as sp

from fedot.envs.tabular import TabularMDP, make_mdp

__all__ = ["CONTROL_ENVS", "discretized_control"]

CONTROL_ENVS: tuple[str, ...] = ("MountainCar-v0", "Pendulum-v1")


def _bin(x: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    return np.clip(np.floor((x - lo) / (hi - lo) * n), 0, n - 1).astype(np.int64)


def discretized_control(
    env_id: str,
    bins: tuple[int, int] = (20, 20),
    samples_per_cell: int = 20,
    actions: Sequence[float] | None = None,
    seed: int = 0,
    *,
    horizon: int | None = None,
) -> TabularMDP:
    """Build a tabular model of ``MountainCar-v0`` or ``Pendulum-v1`` on a 2-D state grid.

    Parameters
    ----------
    env_id : str
        ``"MountainCar-v0"`` or ``"Pendulum-v1"``.
    bins : tuple of int
        Number of cells per state dimension (position x velocity, or angle x angular velocity).
    samples_per_cell : int
        Number of uniformly drawn points per cell used to estimate each transition row. Too few
        samples create spurious traps: a slow cell whose every sample stays inside becomes
        absorbing for every action. On MountainCar 20x20, 5 samples cap the optimal success
        probability at about 0.3 (H = 200), while 20 (the default) give about 0.98.
    actions : sequence, optional
        MountainCar: a subset of the discrete actions ``(0, 1, 2)`` (default all). Pendulum:
        torques in ``[-2, 2]`` (default ``(-2.0, 0.0, 2.0)``).
    seed : int
        Seed of the sample points (same seed, same model).
    horizon : int, optional
        Default horizon; the env's ``max_episode_steps`` (200) by default.

    Returns
    -------
    TabularMDP
        The discretised model (see the module docstring for rewards, terminals and ``p0``).

    Raises
    ------
    ValueError
        For an unsupported env, fewer than 2 bins per dimension, ``samples_per_cell < 1`` or
        invalid actions.
    """
    if env_id not in CONTROL_ENVS:
        raise ValueError(f"unsupported environment {env_id!r}; expected one of {CONTROL_ENVS}")
    n0, n1 = int(bins[0]), int(bins[1])
    if len(bins) != 2 or n0 < 2 or n1 < 2:
        raise ValueError(f"bins must be two integers >= 2, got {bins!r}")
    if samples_per_cell < 1:
        raise ValueError(f"samples_per_cell must be >= 1, got {samples_per_cell}")
    env = gym.make(env_id)
    try:
        u = env.unwrapped
        env.reset(seed=seed)
        if env_id == "MountainCar-v0":
            lo = np.array([u.min_position, -u.max_speed], dtype=np.float64)
            hi = np.array([u.max_position, u.max_speed], dtype=np.float64)
            acts: list[Any] = list(range(3)) if actions is None else [int(x) for x in actions]
            if not acts or any(x not in (0, 1, 2) for x in acts):
                raise ValueError(
                    f"MountainCar actions must be a non-empty subset of (0, 1, 2), got {actions}"
                )
        else:
            lo = np.array([-np.pi, -u.max_speed], dtype=np.float64)
            hi = np.array([np.pi, u.max_speed], dtype=np.float64)
            torques = (-2.0, 0.0, 2.0) if actions is None else tuple(float(x) for x in actions)
            if not torques or any(abs(x) > u.max_torque for x in torques):
                raise ValueError(f"Pendulum torques must lie in [-2, 2], got {actions}")
            acts = [np.array([x], dtype=np.float32) for x in torques]
        s, a = n0 * n1, len(acts)
        width = (hi - lo) / np.array([n0, n1])
        i0, i1 = np.divmod(np.arange(s), n1)
        cell_lo = lo + np.stack([i0, i1], axis=1) * width
        centres = cell_lo + 0.5 * width
        rng = np.random.default_rng(seed)
        pts = cell_lo[:, None, :] + rng.random((s, samples_per_cell, 2)) * width

        if env_id == "MountainCar-v0":
            goal_bin = int(_bin(np.array([u.goal_position]), lo[0], hi[0], n0)[0])
            terminal = i0 >= goal_bin
        else:
            terminal = np.zeros(s, dtype=bool)
        todo = np.flatnonzero(~terminal)

        nxt = np.empty((todo.size, a, samples_per_cell, 2))
        for j, st in enumerate(todo):
            for k in range(samples_per_cell):
                x = pts[st, k]
                for ai, act in enumerate(acts):
                    u.state = np.array([x[0], x[1]], dtype=np.float64)
                    u.step(act)
                    nxt[j, ai, k] = np.asarray(u.state, dtype=np.float64)
        if env_id == "Pendulum-v1":
            nxt[..., 0] = np.mod(nxt[..., 0] + np.pi, 2.0 * np.pi) - np.pi
        b0 = _bin(nxt[..., 0], lo[0], hi[0], n0)
        b1 = _bin(nxt[..., 1], lo[1], hi[1], n1)
        rows = np.broadcast_to((todo[:, None] * a + np.arange(a))[:, :, None], b0.shape).ravel()
        cols = (b0 * n1 + b1).ravel()
        p = sp.csr_matrix(
            (np.full(cols.size, 1.0 / samples_per_cell), (rows, cols)), shape=(s * a, s)
        )
        p.sum_duplicates()

        if env_id == "MountainCar-v0":
            reward = terminal.astype(np.float64)
            goal = np.flatnonzero(terminal)
            # reset law: position ~ U[-0.6, -0.4], velocity = 0, pushed through the binning
            edges = lo[0] + np.arange(n0 + 1) * width[0]
            overlap = np.clip(np.minimum(edges[1:], -0.4) - np.maximum(edges[:-1], -0.6), 0.0, None)
            p0 = np.zeros(s)
            v_bin = int(_bin(np.array([0.0]), lo[1], hi[1], n1)[0])
            p0[np.arange(n0) * n1 + v_bin] = overlap / overlap.sum()
            meta_extra: dict[str, Any] = {"actions": acts, "goal_position": float(u.goal_position)}
        else:
            reward = -(centres[:, 0] ** 2 + 0.1 * centres[:, 1] ** 2)
            goal = np.flatnonzero(np.all(np.abs(centres) < width, axis=1))
            p0 = np.full(s, 1.0 / s)
            meta_extra = {"torques": [float(t[0]) for t in acts]}
        coords = (np.stack([i0, i1], axis=1) + 0.5) / np.array([n0, n1])
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
        meta = {
            "kind": "discretized-control",
            "env_id": env_id,
            "bins": [n0, n1],
            "samples_per_cell": int(samples_per_cell),
            "seed": int(seed),
            "low": lo.tolist(),
            "high": hi.tolist(),
            "dims": ["position", "velocity"] if env_id == "MountainCar-v0" else ["theta", "theta_dot"],
            **meta_extra,
        }
        return make_mdp(
            f"{env_id}-{n0}x{n1}",
            p,
            p0,
            terminal,
            reward,
            coords,
            grid_shape=(n0, n1),
            goal_states=goal,
            horizon=int(horizon or max_steps or 200),
            meta=meta,
        )
    finally:
        env.close()
