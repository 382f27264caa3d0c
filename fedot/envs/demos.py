r"""Demonstrations: vectorised trajectory sampling in tabular MDPs and Boltzmann-rational experts.

A trajectory has ``H`` states :math:`s_1, \dots, s_H` (with :math:`s_1 \sim p_0`) and the ``H``
actions taken in them; the last action's outcome is not recorded. Terminal states are absorbing,
so a trajectory that reaches one stays there and keeps accumulating visits, exactly as in the
absorbing model used by soft value iteration and the MaxEnt IRL forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fedot.envs.tabular import TabularMDP, soft_value_iteration

__all__ = ["Demonstrations", "expert_demonstrations", "sample_demonstrations"]


@dataclass(frozen=True, eq=False)
class Demonstrations:
    """A batch of equal-length state-action trajectories.

    Attributes
    ----------
    states : numpy.ndarray
        ``(N, H)`` int64 state indices.
    actions : numpy.ndarray
        ``(N, H)`` int64 action indices.
    num_states : int
        Size ``S`` of the state space (for :meth:`visitation_counts`).
    """

    states: np.ndarray
    actions: np.ndarray
    num_states: int

    def __post_init__(self) -> None:
        st, ac = self.states, self.actions
        if st.ndim != 2 or st.shape != ac.shape or st.shape[0] < 1 or st.shape[1] < 1:
            raise ValueError(
                f"states and actions must be non-empty (N, H) arrays of equal shape, got {st.shape}, "
                f"{ac.shape}"
            )
        if not np.issubdtype(st.dtype, np.integer) or not np.issubdtype(ac.dtype, np.integer):
            raise ValueError("states and actions must be integer arrays")
        if st.min() < 0 or st.max() >= self.num_states:
            raise ValueError(f"states must lie in [0, {self.num_states})")
        if ac.min() < 0:
            raise ValueError("actions must be non-negative")

    @property
    def num(self) -> int:
        """Return the number of trajectories ``N``."""
        return int(self.states.shape[0])

    @property
    def horizon(self) -> int:
        """Return the trajectory length ``H``."""
        return int(self.states.shape[1])

    def __len__(self) -> int:
        return self.num

    def visitation_counts(self, gamma: float = 1.0) -> np.ndarray:
        r"""Return the empirical feature (state-visit) expectations.

        :math:`f_E(s) = \frac{1}{N} \sum_{i=1}^{N} \sum_{t=1}^{H} \gamma^{t-1}\,[s^{(i)}_t = s]`;
        with ``gamma = 1`` (default) the counts sum to ``H``.

        Parameters
        ----------
        gamma : float
            Per-step discount of the counts.

        Returns
        -------
        numpy.ndarray
            ``(S,)`` average per-trajectory (discounted) visit counts.
        """
        weights = np.broadcast_to(gamma ** np.arange(self.horizon, dtype=np.float64), self.states.shape)
        return np.bincount(self.states.ravel(), weights.ravel(), minlength=self.num_states) / self.num

    def subset(self, index: np.ndarray | slice) -> Demonstrations:
        """Return the demonstrations ``index`` (e.g. the first ``n`` with ``slice(0, n)``)."""
        return Demonstrations(self.states[index], self.actions[index], self.num_states)


def _sample_rows(cum: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF sampling of one index per row of a cumulative ``(N, A)`` array."""
    idx = (u[:, None] * cum[:, -1:] >= cum).sum(axis=1)
    return np.minimum(idx, cum.shape[1] - 1)


def sample_demonstrations(
    mdp: TabularMDP,
    policy: np.ndarray,
    num: int,
    rng: np.random.Generator,
    horizon: int | None = None,
) -> Demonstrations:
    """Sample trajectories of a policy, vectorised over trajectories.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP (terminal states are absorbing, so trajectories stay in them).
    policy : numpy.ndarray
        ``(S, A)`` stationary or ``(H, S, A)`` time-dependent policy; rows sum to 1.
    num : int
        Number of trajectories ``N >= 1``.
    rng : numpy.random.Generator
        Source of randomness (same generator state, same demonstrations).
    horizon : int, optional
        Trajectory length; default the policy's ``H`` or ``mdp.horizon``.

    Returns
    -------
    Demonstrations
        ``N`` trajectories of length ``H`` starting from ``p0``.

    Raises
    ------
    ValueError
        On bad policy shapes, rows not summing to 1, or an inconsistent horizon.
    """
    s, a = mdp.num_states, mdp.num_actions
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim not in (2, 3) or pol.shape[-2:] != (s, a):
        raise ValueError(
            f"policy must have shape (S, A) or (H, S, A) with S={s}, A={a}, got {pol.shape}"
        )
    if not np.all(np.isfinite(pol)) or pol.min() < 0 or np.max(np.abs(pol.sum(axis=-1) - 1.0)) > 1e-6:
        raise ValueError("policy rows must be finite, non-negative and sum to 1")
    if num < 1:
        raise ValueError(f"num must be >= 1, got {num}")
    if pol.ndim == 3:
        if horizon is not None and horizon != pol.shape[0]:
            raise ValueError(f"horizon={horizon} differs from the policy's horizon {pol.shape[0]}")
        h = pol.shape[0]
    else:
        h = mdp.horizon if horizon is None else int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be >= 1, got {h}")
    cum_pol = np.cumsum(pol, axis=-1)
    p = mdp.transitions
    # Global cumulative sum of the CSR data: row r spans cum[indptr[r]:indptr[r+1]].
    cum_p = np.cumsum(p.data)
    row_base = np.concatenate([[0.0], cum_p])[p.indptr[:-1]]
    states = np.empty((num, h), dtype=np.int64)
    actions = np.empty((num, h), dtype=np.int64)
    cur = rng.choice(s, size=num, p=mdp.p0)
    for t in range(h):
        states[:, t] = cur
        cp = cum_pol[cur] if pol.ndim == 2 else cum_pol[t, cur]
        act = _sample_rows(cp, rng.random(num))
        actions[:, t] = act
        if t == h - 1:
            break
        row = cur * a + act
        lo, hi = p.indptr[row], p.indptr[row + 1]
        target = row_base[row] + rng.random(num) * (cum_p[hi - 1] - row_base[row])
        pos = np.clip(np.searchsorted(cum_p, target, side="right"), lo, hi - 1)
        cur = p.indices[pos].astype(np.int64)
    return Demonstrations(states=states, actions=actions, num_states=s)


def expert_demonstrations(
    mdp: TabularMDP,
    num: int,
    seed: int,
    *,
    reward: np.ndarray | None = None,
    temperature: float = 1.0,
    horizon: int | None = None,
    gamma: float | None = None,
) -> Demonstrations:
    r"""Sample demonstrations of a Boltzmann-rational (soft-optimal) expert.

    The expert follows the finite-horizon soft-optimal policy
    :math:`\pi_h(a\mid s) = \exp((Q_h(s,a) - V_h(s))/\tau)` of ``reward`` (see
    :func:`fedot.envs.tabular.soft_value_iteration`), which is the generative model assumed by
    MaxEnt IRL (Ziebart et al., AAAI 2008); a smaller temperature :math:`\tau` gives a more
    optimal expert.

    Parameters
    ----------
    mdp : TabularMDP
        The expert's MDP.
    num : int
        Number of trajectories.
    seed : int
        Seed of ``np.random.default_rng`` (same seed, same demonstrations).
    reward : numpy.ndarray, optional
        ``(S,)`` reward; default ``mdp.true_reward``.
    temperature : float
        Boltzmann temperature :math:`\tau > 0`.
    horizon : int, optional
        Trajectory length and planning horizon; default ``mdp.horizon``.
    gamma : float, optional
        Discount of the finite-horizon planning; default 1.

    Returns
    -------
    Demonstrations
        ``num`` trajectories of length ``horizon``.
    """
    r = mdp.true_reward if reward is None else reward
    h = mdp.horizon if horizon is None else horizon
    res = soft_value_iteration(mdp, r, horizon=h, gamma=1.0 if gamma is None else gamma,
                               temperature=temperature)
    return sample_demonstrations(mdp, res.policy, num, np.random.default_rng(seed), horizon=h)
