r"""Exact tabular models of gymnasium's toy-text environments.

The transition kernel is read from ``env.unwrapped.P`` (``P[s][a] = [(prob, s2, reward, done), ...]``).
Every state that is the target of a ``done`` transition is terminal and made absorbing (the episode
ends there; see :mod:`fedot.envs.tabular` for the absorbing-state convention).

State rewards. Gymnasium's rewards are attached to transitions, while MaxEnt IRL here uses state
rewards :math:`r(s)`. By default (``reward_mode="entering"``) the state reward is the reward
received on *entering* the state, averaged (probability-weighted) over the transitions
:math:`(s, a) \to s'` with :math:`s \ne s'` (for a terminal state: over the episode-ending
``done`` transitions into it only); self-loops are used only for states entered in no other way,
and states never entered get 0. Per environment:

* **FrozenLake**: goal 1, every other state 0 (holes and the goal absorbing).
* **CliffWalking-v1**: gymnasium's ``P`` sends a step into the cliff straight back to the start with
  reward -100, so the cliff cells are never entered and an entering-reward state model would put
  the -100 on the *start* cell. With ``cliff="fall"`` (default) the model is rewired: a step into a
  cliff cell enters that cell, whose every action returns to the start with probability 1 (one
  extra step compared with gymnasium), and the true reward is -100 on cliff cells, -1 on the other
  non-goal cells, and **0 at the (absorbing) goal**, so that the per-step cost stops when the
  episode ends (otherwise the absorbing goal would cost -1 forever, like wandering, and the goal
  would not be preferred). ``cliff="env"`` keeps gymnasium's kernel exactly; cliff cells are then
  unreachable (still -100, 0 at the goal, -1 elsewhere).
* **Taxi-v4**: the 4 terminal states (passenger delivered) get +20 and all other states -1 (the
  -10 of illegal pick-up/drop-off actions is a self-loop and is dropped: a state reward cannot
  express it; those actions still waste a step). ``reward_mode="max-action"`` instead uses
  :math:`r(s) = \max_a \mathbb{E}[R(s,a)]`, which puts +20 on the *pre-drop-off* states; beware
  that with a state reward an agent can then collect +20 forever by idling next to the
  destination instead of finishing (the absorbing terminals get -1 in that mode), so it is only an
  approximation and not the default.

``reward_mode="max-action"`` is available for every environment.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import scipy.sparse as sp

from fedot.envs.tabular import TabularMDP, make_mdp

__all__ = ["SUPPORTED_ENVS", "from_gymnasium", "gym_kernel"]

SUPPORTED_ENVS: tuple[str, ...] = (
    "FrozenLake-v1",
    "FrozenLake8x8-v1",
    "CliffWalking-v1",
    "CliffWalkingSlippery-v1",
    "Taxi-v4",
)


_Kernel = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
_GymP = dict[int, dict[int, list[tuple[float, Any, float, bool]]]]


def gym_kernel(p_dict: _GymP, s: int, a: int) -> _Kernel:
    """Flatten a gymnasium ``P`` dict into transition triplets.

    Parameters
    ----------
    p_dict : dict
        ``P[s][a] = [(prob, next_state, reward, done), ...]``.
    s, a : int
        Numbers of states and actions.

    Returns
    -------
    tuple of numpy.ndarray
        ``(rows, next_states, probs, rewards, done)`` with ``rows = s*A + a``, one entry per outcome.
    """
    rows, nxt, probs, rews, done = [], [], [], [], []
    for st in range(s):
        for ac in range(a):
            for prob, s2, r, d in p_dict[st][ac]:
                rows.append(st * a + ac)
                nxt.append(int(s2))
                probs.append(float(prob))
                rews.append(float(r))
                done.append(bool(d))
    return (
        np.asarray(rows, dtype=np.int64),
        np.asarray(nxt, dtype=np.int64),
        np.asarray(probs, dtype=np.float64),
        np.asarray(rews, dtype=np.float64),
        np.asarray(done, dtype=bool),
    )


def _entering_reward(rows: np.ndarray, nxt: np.ndarray, probs: np.ndarray, rews: np.ndarray,
                     done: np.ndarray, s: int, a: int) -> np.ndarray:
    src = rows // a
    terminal = np.zeros(s, dtype=bool)
    terminal[nxt[done]] = True
    # Terminal states: only the episode-ending transitions count; others: transitions from elsewhere.
    moving = np.where(terminal[nxt], done & (src != nxt), src != nxt)
    mass = np.bincount(nxt[moving], probs[moving], minlength=s)
    total = np.bincount(nxt[moving], probs[moving] * rews[moving], minlength=s)
    mass_loop = np.bincount(nxt[~moving], probs[~moving], minlength=s)
    total_loop = np.bincount(nxt[~moving], probs[~moving] * rews[~moving], minlength=s)
    out = np.zeros(s)
    hit = mass > 0
    out[hit] = total[hit] / mass[hit]
    loop_only = ~hit & (mass_loop > 0)
    out[loop_only] = total_loop[loop_only] / mass_loop[loop_only]
    return out


def _max_action_reward(
    rows: np.ndarray, probs: np.ndarray, rews: np.ndarray, s: int, a: int
) -> np.ndarray:
    expected = np.bincount(rows, probs * rews, minlength=s * a).reshape(s, a)
    return expected.max(axis=1)


def _make_env(env_id: str, kwargs: dict[str, Any]) -> gym.Env:
    kwargs = dict(kwargs)
    if env_id.startswith("FrozenLake"):
        seed = kwargs.pop("random_map_seed", None)
        map_size = kwargs.pop("map_size", None)
        map_p = kwargs.pop("map_p", 0.8)
        if seed is not None or map_size is not None:
            if "desc" in kwargs:
                raise ValueError("pass either desc or random_map_seed/map_size, not both")
            from gymnasium.envs.toy_text.frozen_lake import generate_random_map

            kwargs["desc"] = generate_random_map(size=int(map_size or 8), p=float(map_p), seed=seed)
    return gym.make(env_id, **kwargs)


def from_gymnasium(env_id: str, **kwargs: Any) -> TabularMDP:
    """Build the exact tabular model of a gymnasium toy-text environment.

    Parameters
    ----------
    env_id : str
        One of ``FrozenLake-v1``, ``FrozenLake8x8-v1``, ``CliffWalking-v1``,
        ``CliffWalkingSlippery-v1`` or ``Taxi-v4``.
    **kwargs
        Builder options:

        * ``reward_mode``: ``"entering"`` (default) or ``"max-action"`` (see the module docstring);
        * ``horizon``: default horizon (else the env's ``max_episode_steps``, or ``2 * (H + W)`` for
          CliffWalking);
        * ``cliff``: CliffWalking only, ``"fall"`` (default) or ``"env"``;
        * ``random_map_seed``, ``map_size`` (default 8), ``map_p`` (default 0.8): FrozenLake only,
          draw the map with ``generate_random_map(map_size, map_p, random_map_seed)``;
        * ``name``: name of the MDP;
        * everything else goes to ``gymnasium.make`` (``map_name``, ``is_slippery``, ``desc``,
          ``success_rate``, ``is_rainy``, ...).

    Returns
    -------
    TabularMDP
        Grid coordinates and ``grid_shape`` for FrozenLake/CliffWalking; for Taxi, ``coords`` are
        ``decode(s) = (taxi_row, taxi_col, passenger_location, destination)`` and ``grid_shape`` is
        ``None``. ``p0`` is the env's ``initial_state_distrib`` (normalised).

    Raises
    ------
    ValueError
        For an unsupported environment or inconsistent options.
    """
    if env_id not in SUPPORTED_ENVS:
        raise ValueError(f"unsupported environment {env_id!r}; expected one of {SUPPORTED_ENVS}")
    kwargs = dict(kwargs)
    reward_mode = kwargs.pop("reward_mode", "entering")
    if reward_mode not in ("entering", "max-action"):
        raise ValueError(f"reward_mode must be 'entering' or 'max-action', got {reward_mode!r}")
    horizon = kwargs.pop("horizon", None)
    name = kwargs.pop("name", None)
    if not env_id.startswith("CliffWalking") and "cliff" in kwargs:
        raise ValueError("the cliff option only applies to CliffWalking")
    cliff_mode = kwargs.pop("cliff", "fall")
    if cliff_mode not in ("fall", "env"):
        raise ValueError(f"cliff must be 'fall' or 'env', got {cliff_mode!r}")
    env = _make_env(env_id, kwargs)
    try:
        u = env.unwrapped
        s, a = int(env.observation_space.n), int(env.action_space.n)
        rows, nxt, probs, rews, done = gym_kernel(u.P, s, a)
        terminal = np.zeros(s, dtype=bool)
        terminal[nxt[done]] = True
        p0 = np.asarray(u.initial_state_distrib, dtype=np.float64)
        p0 = p0 / p0.sum()
        max_steps = env.spec.max_episode_steps if env.spec is not None else None
        meta: dict[str, Any] = {"kind": "gymnasium", "env_id": env_id, "reward_mode": reward_mode,
                                "env_kwargs": {k: v for k, v in kwargs.items() if k != "desc"}}
        grid_shape: tuple[int, int] | None
        if env_id.startswith("CliffWalking"):
            grid_shape = (int(u.shape[0]), int(u.shape[1]))
            cliff = np.asarray(u._cliff, dtype=bool).ravel()
            goal = np.array([s - 1], dtype=np.int64)
            if cliff_mode == "fall":
                nxt = _cliff_fall_targets(u, rows, nxt, rews, a)
                # cliff cells: every action returns to the start
                crow = (np.flatnonzero(cliff)[:, None] * a + np.arange(a)).ravel()
                keep = ~np.isin(rows, crow)
                rows = np.concatenate([rows[keep], crow])
                nxt = np.concatenate([nxt[keep], np.full(crow.size, int(u.start_state_index))])
                probs = np.concatenate([probs[keep], np.ones(crow.size)])
                rews = np.concatenate([rews[keep], np.full(crow.size, -1.0)])
            if reward_mode == "entering":
                reward = np.full(s, -1.0)
                reward[cliff] = -100.0
                reward[goal] = 0.0
            else:
                reward = _max_action_reward(rows, probs, rews, s, a)
            coords = np.stack(np.divmod(np.arange(s), grid_shape[1]), axis=1).astype(np.float64)
            meta.update({"cliff": cliff_mode, "cliff_states": np.flatnonzero(cliff).tolist()})
            if horizon is None:
                horizon = max_steps or 2 * (grid_shape[0] + grid_shape[1])
        elif env_id.startswith("FrozenLake"):
            desc = np.asarray(u.desc).astype(str)
            grid_shape = (int(desc.shape[0]), int(desc.shape[1]))
            goal = np.flatnonzero(desc.ravel() == "G")
            coords = np.stack(np.divmod(np.arange(s), grid_shape[1]), axis=1).astype(np.float64)
            meta["map"] = ["".join(row) for row in desc]
            if reward_mode == "entering":
                reward = _entering_reward(rows, nxt, probs, rews, done, s, a)
            else:
                reward = _max_action_reward(rows, probs, rews, s, a)
            horizon = horizon or max_steps or 4 * (grid_shape[0] + grid_shape[1])
        else:  # Taxi
            grid_shape = None
            goal = np.flatnonzero(terminal)
            coords = np.array([list(u.decode(st)) for st in range(s)], dtype=np.float64)
            if reward_mode == "entering":
                reward = _entering_reward(rows, nxt, probs, rews, done, s, a)
            else:
                reward = _max_action_reward(rows, probs, rews, s, a)
                reward[terminal] = -1.0
            meta["coords"] = ["taxi_row", "taxi_col", "passenger_location", "destination"]
            horizon = horizon or max_steps or 200
        p = sp.csr_matrix((probs, (rows, nxt)), shape=(s * a, s))
        p.sum_duplicates()
        return make_mdp(
            name or env_id,
            p,
            p0,
            terminal,
            reward,
            coords,
            grid_shape=grid_shape,
            goal_states=goal,
            horizon=int(horizon),
            meta=meta,
        )
    finally:
        env.close()


def _cliff_fall_targets(
    u: Any, rows: np.ndarray, nxt: np.ndarray, rews: np.ndarray, a: int
) -> np.ndarray:
    """Redirect the -100 "back to start" outcomes of CliffWalking to the cliff cell stepped into.

    Gymnasium lists the outcomes of ``(s, a)`` in the order of the deltas of
    ``_calculate_transition_prob`` (intended move only, or ``a - 1, a, a + 1`` when slippery); the
    same deltas are replayed here to find the cliff cell.
    """
    from gymnasium.envs.toy_text.cliffwalking import POSITION_MAPPING

    h, w = u.shape
    out = nxt.copy()
    slippery = bool(getattr(u, "is_slippery", False))
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    for first in starts:
        st, ac = divmod(int(rows[first]), a)
        moves = [(ac - 1) % 4, ac, (ac + 1) % 4] if slippery else [ac]
        pos = np.array(divmod(st, w))
        for j, mv in enumerate(moves):
            k = first + j
            if rews[k] != -100.0:
                continue
            new = np.clip(pos + np.array(POSITION_MAPPING[mv]), [0, 0], [h - 1, w - 1])
            if not u._cliff[tuple(new)]:
                raise RuntimeError("unexpected CliffWalking transition layout in gymnasium's P")
            out[k] = int(new[0] * w + new[1])
    return out
