r"""Maximum-entropy inverse reinforcement learning on tabular MDPs, planning, and reward metrics.

Everything is numpy + ``scipy.sparse`` and vectorised over states; the only Python loops are over
time steps and optimisation iterations.

Conventions (shared with :mod:`fedot.envs`):

* rewards are state rewards :math:`r(s)` collected at each of the ``H`` time steps of a trajectory
  :math:`s_1, \dots, s_H`; a return is :math:`\sum_{h=1}^{H} \gamma^{h-1} r(s_h)`;
* terminal states are absorbing, so an agent that reached a terminal state keeps collecting
  :math:`r(s)` there (the demonstrations stay there too);
* planning functions take ``horizon`` and ``gamma``: a given ``horizon`` means a finite-horizon,
  time-dependent problem; ``horizon=None`` with ``gamma < 1`` means the infinite-horizon discounted
  problem (stationary policy); ``horizon=None`` with ``gamma = 1`` uses ``mdp.horizon``.

MaxEnt IRL (Ziebart et al. 2008) models the expert as Boltzmann-rational,
:math:`\pi_h(a\mid s) = \exp((Q_h(s,a) - V_h(s))/\tau)` with the soft Bellman backup of
:func:`soft_value_iteration`, and fits a linear reward :math:`r_\theta = \Phi\theta` (tabular by
default, :math:`\Phi = I`) by ascending

.. math::

    \nabla_\theta = \Phi^\top\Bigl(f_E - \sum_{h=1}^{H}\gamma^{h-1} D_h\Bigr)
        - \lambda_2\,\theta - \lambda_p\,\Phi^\top(\Phi\theta - r_{\text{prior}}),

where :math:`f_E` are the demonstrations' (discounted) state-visit counts and :math:`D_h` the
state distributions of the current soft policy. With :math:`\gamma = 1` the data term is
:math:`\tau` times the gradient of the demonstrations' mean log-likelihood.

References
----------
.. [1] B. D. Ziebart, A. Maas, J. A. Bagnell, A. K. Dey, "Maximum Entropy Inverse Reinforcement
   Learning", AAAI 2008.
.. [2] A. Gleave, M. Dennis, S. Legg, S. Russell, J. Leike, "Quantifying Differences in Reward
   Functions", ICLR 2021 (EPIC).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import scipy.stats

from fedot.envs.demos import Demonstrations
from fedot.envs.tabular import (
    SoftVIResult,
    SoftVIWarning,
    TabularMDP,
    resolve_horizon,
    soft_value_iteration,
    state_visitation,
    state_visitation_by_step,
)

__all__ = [
    "IRLIterate",
    "IRLResult",
    "IRLWarning",
    "MetricWarning",
    "SoftVIResult",
    "SoftVIWarning",
    "demo_log_likelihood",
    "epic_distance",
    "expected_value_difference",
    "maxent_gradient",
    "maxent_irl",
    "maxent_irl_pooled",
    "optimal_policy",
    "pearson",
    "policy_return",
    "soft_value_iteration",
    "spearman",
    "state_visitation",
    "state_visitation_by_step",
    "success_rate",
]


class IRLWarning(RuntimeWarning):
    """MaxEnt IRL stopped at ``iterations`` before the gradient norm fell below ``tol``."""


class MetricWarning(RuntimeWarning):
    """A reward metric is undefined (constant input) and was returned as ``nan``."""


@dataclass(frozen=True, eq=False)
class IRLResult:
    r"""Output of :func:`maxent_irl` / :func:`maxent_irl_pooled`.

    Attributes
    ----------
    reward : numpy.ndarray
        ``(S,)`` learned state reward :math:`\Phi\theta` after the last update.
    theta : numpy.ndarray
        ``(F,)`` final parameters (equal to ``reward`` for tabular features).
    grad_norms : list of float
        Euclidean norm of the full objective gradient at each iteration (before its update).
    log_likelihoods : list of float
        Mean per-trajectory log-likelihood :math:`\frac1N\sum_i\sum_t \log\pi_t(a_t^i\mid s_t^i)`
        of the demonstrations under the soft policy of each iterate (before its update).
    iterations : int
        Number of gradient steps taken.
    """

    reward: np.ndarray
    theta: np.ndarray
    grad_norms: list[float]
    log_likelihoods: list[float]
    iterations: int


@dataclass(frozen=True, eq=False)
class IRLIterate:
    """State of one MaxEnt IRL iteration, passed to the optional ``callback``.

    Attributes
    ----------
    iteration : int
        0-based iteration index.
    theta, reward : numpy.ndarray
        Current parameters and reward (copies).
    gradient : numpy.ndarray
        ``(F,)`` full objective gradient at ``theta``.
    visitations : tuple of numpy.ndarray
        Per problem, the ``(S,)`` expected (discounted) visitation counts of the current soft
        policy (undiscounted: each sums to that problem's horizon).
    log_likelihood : float
        Pooled mean per-trajectory log-likelihood of the demonstrations.
    """

    iteration: int
    theta: np.ndarray
    reward: np.ndarray
    gradient: np.ndarray
    visitations: tuple[np.ndarray, ...]
    log_likelihood: float


# ---------------------------------------------------------------------------------------------
# MaxEnt IRL
# ---------------------------------------------------------------------------------------------


def _features(features: np.ndarray | None, s: int) -> np.ndarray | None:
    if features is None:
        return None
    phi = np.asarray(features, dtype=np.float64)
    if phi.ndim != 2 or phi.shape[0] != s or phi.shape[1] < 1:
        raise ValueError(f"features must have shape (S, F) with S={s}, got {phi.shape}")
    if not np.all(np.isfinite(phi)):
        raise ValueError("features contain non-finite values")
    return phi


def _demo_counts(demos: Demonstrations, h: int, gamma: float) -> np.ndarray:
    if h > demos.horizon:
        raise ValueError(f"horizon={h} exceeds the demonstrations' length {demos.horizon}")
    d = demos if h == demos.horizon else demos.subset((slice(None), slice(0, h)))
    return d.visitation_counts(gamma)


def _soft_step(
    mdp: TabularMDP, reward: np.ndarray, h: int, gamma: float, temperature: float
) -> tuple[SoftVIResult, np.ndarray]:
    """Return the soft-VI result and the per-step state distributions ``(H, S)``."""
    res = soft_value_iteration(mdp, reward, horizon=h, gamma=gamma, temperature=temperature)
    return res, state_visitation_by_step(mdp, res.policy, h)


def _log_likelihood(res: SoftVIResult, demos: Demonstrations, h: int, temperature: float) -> float:
    t = np.arange(h)[None, :]
    st, ac = demos.states[:, :h], demos.actions[:, :h]
    logp = (res.q[t, st, ac] - res.v[t, st]) / temperature
    return float(logp.sum(axis=1).mean())


def demo_log_likelihood(
    mdp: TabularMDP,
    reward: np.ndarray,
    demos: Demonstrations,
    *,
    gamma: float = 1.0,
    temperature: float = 1.0,
) -> float:
    r"""Mean per-trajectory log-likelihood of demonstrations under a reward's soft-optimal policy.

    :math:`rac{1}{N}\sum_n \sum_{h=1}^{H} \log \pi_h(a^n_h \mid s^n_h)` with
    :math:`\pi_h = \exp((Q_h - V_h)/	au)` the finite-horizon soft-optimal policy of ``reward`` in
    ``mdp`` over the demonstrations' horizon: the MaxEnt IRL objective (without the regulariser),
    used to score a reward on held-out demonstrations.
    """
    h = demos.horizon
    res = soft_value_iteration(mdp, _reward(reward, mdp.num_states), horizon=h, gamma=gamma,
                               temperature=temperature)
    return _log_likelihood(res, demos, h, temperature)


def maxent_gradient(
    mdp: TabularMDP,
    reward: np.ndarray,
    expert_counts: np.ndarray,
    *,
    horizon: int | None = None,
    gamma: float = 1.0,
    temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Return the tabular MaxEnt IRL gradient :math:`f_E - D` and the expected counts :math:`D`.

    :math:`D = \sum_{h=1}^{H} \gamma^{h-1} D_h` is the expected state-visitation count of the
    finite-horizon soft-optimal policy of ``reward`` (Ziebart et al. 2008, Algorithm 1). The
    gradient vanishes exactly when the expert counts match the model's.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP.
    reward : numpy.ndarray
        ``(S,)`` current reward.
    expert_counts : numpy.ndarray
        ``(S,)`` expert (discounted) state-visit counts :math:`f_E`.
    horizon : int, optional
        Horizon ``H``; default ``mdp.horizon``.
    gamma : float
        Discount of the backup and of the counts.
    temperature : float
        Boltzmann temperature.

    Returns
    -------
    tuple of numpy.ndarray
        ``(gradient, expected_counts)``, both ``(S,)``.
    """
    h = mdp.horizon if horizon is None else resolve_horizon(horizon, gamma, mdp.horizon)
    assert h is not None
    f_e = np.asarray(expert_counts, dtype=np.float64)
    if f_e.shape != (mdp.num_states,) or not np.all(np.isfinite(f_e)):
        raise ValueError(f"expert_counts must be a finite ({mdp.num_states},) array")
    _, d_h = _soft_step(mdp, np.asarray(reward, dtype=np.float64), h, gamma, temperature)
    d = (gamma ** np.arange(h)) @ d_h
    return f_e - d, d


def maxent_irl(
    mdp: TabularMDP,
    demos: Demonstrations,
    *,
    features: np.ndarray | None = None,
    iterations: int = 200,
    lr: float = 0.1,
    optimizer: Literal["adam", "sgd"] = "adam",
    l2: float = 0.0,
    prior: np.ndarray | None = None,
    prior_weight: float = 0.0,
    init: np.ndarray | None = None,
    horizon: int | None = None,
    gamma: float = 1.0,
    temperature: float = 1.0,
    tol: float = 0.0,
    callback: Callable[[IRLIterate], None] | None = None,
) -> IRLResult:
    r"""Fit a state reward to demonstrations by maximum-entropy IRL (Ziebart et al. 2008).

    Maximises the mean log-likelihood of the demonstrations under the finite-horizon soft-optimal
    policy of :math:`r_\theta = \Phi\theta`, minus :math:`\frac{\lambda_2}{2}\lVert\theta\rVert^2`
    and :math:`\frac{\lambda_p}{2}\lVert r_\theta - r_{\text{prior}}\rVert^2` (the pull towards a
    broadcast reward in multi-round federated IRL). Each iteration runs a backward soft Bellman
    pass and a forward visitation pass (see the module docstring for the gradient). Deterministic.

    Parameters
    ----------
    mdp : TabularMDP
        The demonstrator's MDP.
    demos : Demonstrations
        Demonstrations on ``mdp``'s state space.
    features : numpy.ndarray, optional
        ``(S, F)`` state features :math:`\Phi`; default one-hot (tabular reward, ``theta = reward``).
    iterations : int
        Number of gradient steps.
    lr : float
        Step size.
    optimizer : {"adam", "sgd"}
        Adam (default; :math:`\beta = (0.9, 0.999)`, :math:`\epsilon = 10^{-8}`) or plain
        gradient ascent.
    l2 : float
        :math:`\lambda_2 \ge 0`, L2 penalty on :math:`\theta`.
    prior : numpy.ndarray, optional
        ``(S,)`` reward the fit is pulled towards (e.g. the server's fused reward).
    prior_weight : float
        :math:`\lambda_p \ge 0`.
    init : numpy.ndarray, optional
        ``(F,)`` initial :math:`\theta` (warm start); default zeros.
    horizon : int, optional
        Horizon ``H`` (at most the demonstrations' length, which is the default).
    gamma : float
        Discount in ``[0, 1]`` of the backup and of the visitation counts.
    temperature : float
        Boltzmann temperature :math:`\tau` of the expert model.
    tol : float
        Stop early when the gradient norm falls below ``tol`` (``0``: run all iterations); if
        ``tol > 0`` is never reached an :class:`IRLWarning` is issued.
    callback : callable, optional
        Called with an :class:`IRLIterate` at every iteration.

    Returns
    -------
    IRLResult
        Learned reward, parameters and per-iteration diagnostics.

    Raises
    ------
    ValueError
        On inconsistent shapes, non-finite inputs or invalid hyper-parameters.

    References
    ----------
    Ziebart, Maas, Bagnell, Dey, "Maximum Entropy Inverse Reinforcement Learning", AAAI 2008.
    """
    return maxent_irl_pooled(
        [(mdp, demos)],
        features=features,
        iterations=iterations,
        lr=lr,
        optimizer=optimizer,
        l2=l2,
        prior=prior,
        prior_weight=prior_weight,
        init=init,
        horizon=horizon,
        gamma=gamma,
        temperature=temperature,
        tol=tol,
        callback=callback,
    )


def maxent_irl_pooled(
    problems: Sequence[tuple[TabularMDP, Demonstrations]],
    *,
    features: np.ndarray | None = None,
    iterations: int = 200,
    lr: float = 0.1,
    optimizer: Literal["adam", "sgd"] = "adam",
    l2: float = 0.0,
    prior: np.ndarray | None = None,
    prior_weight: float = 0.0,
    init: np.ndarray | None = None,
    horizon: int | None = None,
    gamma: float = 1.0,
    temperature: float = 1.0,
    tol: float = 0.0,
    callback: Callable[[IRLIterate], None] | None = None,
) -> IRLResult:
    r"""Centralised MaxEnt IRL on the pooled demonstrations of several MDPs sharing a state space.

    Maximises :math:`\sum_k \log p(\mathcal D_k \mid r, P_k)`, each client's demonstrations being
    explained under its own dynamics; the data gradient is

    .. math:: \frac{\sum_k n_k\,(f_{E,k} - D_k)}{\sum_k n_k},

    with :math:`n_k` the number of trajectories of problem ``k``. This is the "pooled data" upper
    bound of federated IRL; with a single problem it is exactly :func:`maxent_irl`. All other
    arguments are as in :func:`maxent_irl` (``horizon=None`` uses each problem's demonstration
    length).

    Parameters
    ----------
    problems : sequence of (TabularMDP, Demonstrations)
        Non-empty; all MDPs must have the same number of states.
    features, iterations, lr, optimizer, l2, prior, prior_weight, init
        See :func:`maxent_irl`.
    horizon, gamma, temperature, tol, callback
        See :func:`maxent_irl`.

    Returns
    -------
    IRLResult
        The pooled fit.

    Raises
    ------
    ValueError
        On an empty problem list, mismatched state spaces or invalid inputs.
    """
    if len(problems) == 0:
        raise ValueError("problems must be non-empty")
    s = problems[0][0].num_states
    horizons: list[int] = []
    f_es: list[np.ndarray] = []
    for mdp, demos in problems:
        if mdp.num_states != s or demos.num_states != s:
            raise ValueError(f"all MDPs and demonstrations must share the state space (S={s})")
        if demos.actions.max() >= mdp.num_actions:
            raise ValueError(f"demonstration actions must lie in [0, {mdp.num_actions}) for {mdp.name}")
        h = demos.horizon if horizon is None else resolve_horizon(horizon, gamma, None)
        assert h is not None
        horizons.append(h)
        f_es.append(_demo_counts(demos, h, gamma))
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be positive and finite, got {temperature}")
    if iterations < 0 or not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"need iterations >= 0 and lr > 0, got {iterations}, {lr}")
    if optimizer not in ("adam", "sgd"):
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    if l2 < 0 or prior_weight < 0 or tol < 0:
        raise ValueError("l2, prior_weight and tol must be non-negative")
    phi = _features(features, s)
    n_params = s if phi is None else phi.shape[1]
    theta = np.zeros(n_params) if init is None else np.array(init, dtype=np.float64)
    if theta.shape != (n_params,) or not np.all(np.isfinite(theta)):
        raise ValueError(f"init must be a finite ({n_params},) array")
    prior_r: np.ndarray | None = None
    if prior_weight > 0:
        if prior is None:
            raise ValueError("prior_weight > 0 needs a prior reward")
        prior_r = np.asarray(prior, dtype=np.float64)
        if prior_r.shape != (s,) or not np.all(np.isfinite(prior_r)):
            raise ValueError(f"prior must be a finite ({s},) array")
    counts = np.array([d.num for _, d in problems], dtype=np.float64)
    weights = counts / counts.sum()

    def to_reward(th: np.ndarray) -> np.ndarray:
        return th.copy() if phi is None else phi @ th

    m1 = np.zeros(n_params)
    m2 = np.zeros(n_params)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    grad_norms: list[float] = []
    log_liks: list[float] = []
    done = 0
    for it in range(iterations):
        reward = to_reward(theta)
        g_state = np.zeros(s)
        ll = 0.0
        visits: list[np.ndarray] = []
        for (mdp, demos), h, f_e, w in zip(problems, horizons, f_es, weights, strict=True):
            res, d_h = _soft_step(mdp, reward, h, gamma, temperature)
            d = (gamma ** np.arange(h)) @ d_h
            visits.append(d)
            g_state += w * (f_e - d)
            ll += w * _log_likelihood(res, demos, h, temperature)
        if prior_r is not None:
            g_state -= prior_weight * (reward - prior_r)
        grad = g_state.copy() if phi is None else phi.T @ g_state
        if l2 > 0:
            grad -= l2 * theta
        gnorm = float(np.linalg.norm(grad))
        grad_norms.append(gnorm)
        log_liks.append(ll)
        if callback is not None:
            callback(IRLIterate(it, theta.copy(), reward, grad.copy(), tuple(visits), ll))
        if tol > 0 and gnorm < tol:
            break
        if optimizer == "adam":
            m1 = beta1 * m1 + (1 - beta1) * grad
            m2 = beta2 * m2 + (1 - beta2) * grad**2
            m1_hat = m1 / (1 - beta1 ** (it + 1))
            m2_hat = m2 / (1 - beta2 ** (it + 1))
            theta = theta + lr * m1_hat / (np.sqrt(m2_hat) + eps)
        else:
            theta = theta + lr * grad
        done += 1
    else:
        if tol > 0 and iterations > 0:
            warnings.warn(
                f"MaxEnt IRL did not reach gradient norm {tol} in {iterations} iterations "
                f"(last {grad_norms[-1]:.3g})",
                IRLWarning,
                stacklevel=3 if len(problems) == 1 else 2,
            )
    if not np.all(np.isfinite(theta)):
        raise FloatingPointError("MaxEnt IRL diverged (non-finite parameters); lower lr")
    return IRLResult(
        reward=to_reward(theta),
        theta=theta,
        grad_norms=grad_norms,
        log_likelihoods=log_liks,
        iterations=done,
    )


# ---------------------------------------------------------------------------------------------
# Planning and evaluation
# ---------------------------------------------------------------------------------------------


def _reward(reward: np.ndarray, s: int, name: str = "reward") -> np.ndarray:
    r = np.asarray(reward, dtype=np.float64)
    if r.shape != (s,):
        raise ValueError(f"{name} must have shape ({s},), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError(f"{name} contains non-finite values")
    return r


def optimal_policy(
    mdp: TabularMDP,
    reward: np.ndarray,
    *,
    horizon: int | None = None,
    gamma: float = 1.0,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> np.ndarray:
    r"""Return a deterministic optimal policy of a state reward (hard value iteration).

    Finite horizon: :math:`Q_h = r + \gamma P V_{h+1}`, :math:`V_h = \max_a Q_h`, with
    :math:`V_{H+1} = 0`; the policy is time-dependent, ``(H, S, A)``. Discounted
    (``horizon=None``, ``gamma < 1``): value iteration to ``tol``, stationary ``(S, A)`` policy.
    Ties are broken towards the lowest action index.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP.
    reward : numpy.ndarray
        ``(S,)`` state reward.
    horizon : int, optional
        See the module docstring (``None`` and ``gamma = 1``: ``mdp.horizon``).
    gamma : float
        Discount factor.
    tol : float
        Sup-norm tolerance of discounted value iteration.
    max_iter : int
        Iteration cap of discounted value iteration.

    Returns
    -------
    numpy.ndarray
        One-hot policy, ``(H, S, A)`` or ``(S, A)``.

    Warns
    -----
    SoftVIWarning
        If discounted value iteration did not converge.
    """
    p, s, a = mdp.transitions, mdp.num_states, mdp.num_actions
    r = _reward(reward, s)
    h = resolve_horizon(horizon, gamma, mdp.horizon)
    eye = np.eye(a)
    if h is not None:
        pol = np.empty((h, s, a))
        v = np.zeros(s)
        for t in range(h - 1, -1, -1):
            q = r[:, None] + gamma * (p @ v).reshape(s, a)
            best = q.argmax(axis=1)
            pol[t] = eye[best]
            v = q[np.arange(s), best]
        return pol
    v = np.zeros(s)
    for _ in range(max_iter):
        v_new = (r[:, None] + gamma * (p @ v).reshape(s, a)).max(axis=1)
        delta = float(np.max(np.abs(v_new - v)))
        v = v_new
        if delta < tol:
            break
    else:
        warnings.warn(
            f"value iteration did not converge in {max_iter} iterations (gamma={gamma})",
            SoftVIWarning,
            stacklevel=2,
        )
    q = r[:, None] + gamma * (p @ v).reshape(s, a)
    return eye[q.argmax(axis=1)]


def policy_return(
    mdp: TabularMDP,
    policy: np.ndarray,
    reward: np.ndarray,
    *,
    horizon: int | None = None,
    gamma: float = 1.0,
) -> float:
    r"""Return the exact expected return of a policy from ``p0``.

    Finite horizon: :math:`\sum_{h=1}^{H} \gamma^{h-1} \langle D_h, r\rangle` by forward
    propagation. Infinite-horizon discounted (stationary policy, ``horizon=None``, ``gamma < 1``):
    :math:`p_0^\top (I - \gamma P_\pi)^{-1} r` by a sparse linear solve.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP.
    policy : numpy.ndarray
        ``(S, A)`` or ``(H, S, A)`` policy.
    reward : numpy.ndarray
        ``(S,)`` reward to evaluate.
    horizon : int, optional
        Horizon (the policy's own for a time-dependent policy).
    gamma : float
        Discount factor.

    Returns
    -------
    float
        Expected return.
    """
    r = _reward(reward, mdp.num_states)
    pol = np.asarray(policy, dtype=np.float64)
    if pol.ndim == 3:
        h: int | None = pol.shape[0] if horizon is None else horizon
    else:
        h = resolve_horizon(horizon, gamma, mdp.horizon)
    d = state_visitation(mdp, pol, h, gamma=gamma, discounted=True)
    return float(d @ r)


def expected_value_difference(
    mdp: TabularMDP,
    learned_reward: np.ndarray,
    *,
    true_reward: np.ndarray | None = None,
    horizon: int | None = None,
    gamma: float = 1.0,
) -> float:
    r"""Return the expected value difference (EVD) of a learned reward.

    .. math:: \mathrm{EVD} = V^{\pi^*_{r}}_{r}(p_0) - V^{\pi^*_{\hat r}}_{r}(p_0) \ge 0,

    the loss in true return of acting optimally (greedily, :func:`optimal_policy`) for the learned
    reward :math:`\hat r` instead of the true reward :math:`r` (Levine et al. 2011, "Nonlinear
    inverse reinforcement learning with Gaussian processes", NeurIPS).

    Parameters
    ----------
    mdp : TabularMDP
        The MDP in which the policies act.
    learned_reward : numpy.ndarray
        ``(S,)`` learned reward.
    true_reward : numpy.ndarray, optional
        ``(S,)`` true reward; default ``mdp.true_reward``.
    horizon : int, optional
        Horizon (see the module docstring).
    gamma : float
        Discount factor.

    Returns
    -------
    float
        Non-negative up to rounding; 0 when ``learned_reward`` induces an optimal policy.
    """
    r_true = mdp.true_reward if true_reward is None else true_reward
    r_true = _reward(r_true, mdp.num_states, "true_reward")
    r_hat = _reward(learned_reward, mdp.num_states, "learned_reward")
    pi_true = optimal_policy(mdp, r_true, horizon=horizon, gamma=gamma)
    pi_hat = optimal_policy(mdp, r_hat, horizon=horizon, gamma=gamma)
    v_true = policy_return(mdp, pi_true, r_true, horizon=horizon, gamma=gamma)
    v_hat = policy_return(mdp, pi_hat, r_true, horizon=horizon, gamma=gamma)
    return v_true - v_hat


def success_rate(mdp: TabularMDP, policy: np.ndarray, *, horizon: int | None = None) -> float:
    r"""Return the exact probability of visiting a goal state within the horizon.

    The goal states are made absorbing and the state distribution is propagated for ``H - 1``
    transitions (a trajectory has ``H`` states :math:`s_1, \dots, s_H`); the result is the mass on
    the goal states at step ``H``.

    Parameters
    ----------
    mdp : TabularMDP
        The MDP; ``mdp.goal_states`` must be non-empty.
    policy : numpy.ndarray
        ``(S, A)`` or ``(H, S, A)`` policy.
    horizon : int, optional
        ``H``; default the policy's or ``mdp.horizon``.

    Returns
    -------
    float
        Success probability in ``[0, 1]``.
    """
    if mdp.goal_states.size == 0:
        raise ValueError(f"{mdp.name} has no goal states")
    a = mdp.num_actions
    goals = mdp.goal_states
    p = mdp.transitions.tolil()
    for g in goals:
        for j in range(a):
            p.rows[g * a + j] = [int(g)]
            p.data[g * a + j] = [1.0]
    p_abs = sp.csr_matrix(p)
    pol = np.asarray(policy, dtype=np.float64)
    h = pol.shape[0] if (pol.ndim == 3 and horizon is None) else horizon
    d = state_visitation_by_step((p_abs, mdp.p0), pol, h if h is not None else mdp.horizon)
    return float(np.clip(d[-1, goals].sum(), 0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# Reward metrics
# ---------------------------------------------------------------------------------------------


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape or x.size < 2:
        raise ValueError(f"inputs must have the same size >= 2, got {x.size} and {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("inputs contain non-finite values")
    return x, y


def _constant(x: np.ndarray) -> bool:
    return bool(np.ptp(x) <= 1e-12 * max(1.0, float(np.max(np.abs(x)))))


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Return the Pearson correlation of two reward vectors.

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of equal size (flattened).

    Returns
    -------
    float
        Correlation in ``[-1, 1]``; ``nan`` (with a :class:`MetricWarning`) if either input is
        constant, since the correlation is then undefined.
    """
    x, y = _pair(a, b)
    if _constant(x) or _constant(y):
        warnings.warn(
            "pearson: constant input, correlation undefined (nan)", MetricWarning, stacklevel=2
        )
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    return float(np.clip(xc @ yc / math.sqrt((xc @ xc) * (yc @ yc)), -1.0, 1.0))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Return the Spearman rank correlation of two reward vectors (ties get average ranks).

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of equal size (flattened).

    Returns
    -------
    float
        Rank correlation in ``[-1, 1]``; ``nan`` (with a :class:`MetricWarning`) if either input
        is constant.
    """
    x, y = _pair(a, b)
    if _constant(x) or _constant(y):
        warnings.warn(
            "spearman: constant input, correlation undefined (nan)", MetricWarning, stacklevel=2
        )
        return float("nan")
    return pearson(scipy.stats.rankdata(x), scipy.stats.rankdata(y))


def _as_transition_reward(r: np.ndarray, s: int, a: int, name: str) -> np.ndarray:
    x = np.asarray(r, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains non-finite values")
    if x.shape == (s,):
        return x[None, None, :]  # R(s, a, s') = r(s')
    if x.shape == (s, s):
        return x[:, None, :]
    if x.shape == (s, a, s):
        return x
    raise ValueError(
        f"{name} must have shape (S,), (S, S) or (S, A, S) with S={s}, A={a}, got {x.shape}"
    )


def epic_distance(
    r1: np.ndarray,
    r2: np.ndarray,
    mdp: TabularMDP,
    *,
    gamma: float = 1.0,
    coverage: Literal["uniform"] | np.ndarray = "uniform",
) -> float:
    r"""Return the EPIC pseudometric between two rewards (Gleave et al., ICLR 2021).

    Each reward is canonicalised with independent :math:`S, S' \sim \mathcal D_S` (``coverage``)
    and :math:`A \sim \mathcal U(\mathcal A)`,

    .. math::

        C(R)(s,a,s') = R(s,a,s') + \mathbb E\bigl[\gamma R(s',A,S') - R(s,A,S')
            - \gamma R(S,A,S')\bigr],

    which removes potential shaping :math:`\gamma\Phi(s') - \Phi(s)` and constants, and the
    distance is the Pearson distance :math:`\sqrt{(1-\rho)/2}` between :math:`C(R_1)` and
    :math:`C(R_2)` over :math:`(s,a,s') \sim \mathcal D_S \times \mathcal U(\mathcal A) \times
    \mathcal D_S`. It is 0 iff :math:`R_2` is a positive rescaling of a potential-shaped
    :math:`R_1` (plus a constant), and lies in ``[0, 1]``.

    A state reward ``(S,)`` is interpreted as :math:`R(s,a,s') = r(s')` (the reward of the state
    entered); its canonical form is :math:`r(s') - \mathbb E_{\mathcal D_S}[r]`, so for two state
    rewards EPIC is the Pearson distance of :math:`r_1, r_2` weighted by ``coverage``. (The
    convention :math:`R = r(s)` gives the same value for any :math:`\gamma > 0`.) ``(S, S)``
    action-independent and ``(S, A, S)`` transition rewards are accepted too, e.g. to compare a
    state reward with a potential-shaped one.

    Parameters
    ----------
    r1, r2 : numpy.ndarray
        Rewards of shape ``(S,)``, ``(S, S)`` or ``(S, A, S)``.
    mdp : TabularMDP
        Defines ``S`` and ``A`` (the dynamics are not used: EPIC is dynamics-free).
    gamma : float
        Discount of the shaping to be removed.
    coverage : "uniform" or numpy.ndarray
        State distribution :math:`\mathcal D_S` (``(S,)``, non-negative, sums to 1).

    Returns
    -------
    float
        The EPIC distance; 0 if both rewards are equivalent to a constant, ``nan`` (with a
        :class:`MetricWarning`) if exactly one is.
    """
    s, a = mdp.num_states, mdp.num_actions
    if not (0.0 <= gamma <= 1.0):
        raise ValueError(f"gamma must lie in [0, 1], got {gamma}")
    if isinstance(coverage, str):
        if coverage != "uniform":
            raise ValueError(f"coverage must be 'uniform' or an (S,) distribution, got {coverage!r}")
        d_s = np.full(s, 1.0 / s)
    else:
        d_s = np.asarray(coverage, dtype=np.float64)
        valid = d_s.shape == (s,) and bool(np.all(np.isfinite(d_s)))
        if not valid or d_s.min() < 0 or abs(d_s.sum() - 1) > 1e-6:
            raise ValueError(f"coverage must be a probability vector of shape ({s},)")
    x1 = _as_transition_reward(r1, s, a, "r1")
    x2 = _as_transition_reward(r2, s, a, "r2")
    if x1.shape[0] == 1 and x2.shape[0] == 1:
        # Both state rewards: C(R)(s, a, s') = r(s') - E[r] depends on s' only, so the weighted
        # Pearson over (s, a, s') equals the D_S-weighted Pearson of r1, r2 (O(S), not O(S^2)).
        return _pearson_distance(x1.ravel(), x2.ravel(), d_s)
    n_a = max(x1.shape[1], x2.shape[1])

    def canon(x: np.ndarray) -> np.ndarray:
        full = np.broadcast_to(x, (x.shape[0], n_a, s))
        m = full.mean(axis=1) @ d_s  # E_{A,S'} R(x, A, S'), shape (S,) or (1,)
        m = np.broadcast_to(m, (s,))
        big_m = float(d_s @ m)
        return full + gamma * m[None, None, :] - m[:, None, None] - gamma * big_m

    w = d_s[:, None, None] * np.full((1, n_a, 1), 1.0 / n_a) * d_s[None, None, :]
    return _pearson_distance(canon(x1).ravel(), canon(x2).ravel(), w.ravel())


def _pearson_distance(c1: np.ndarray, c2: np.ndarray, w: np.ndarray) -> float:
    r"""Return :math:`\sqrt{(1-\rho_w)/2}` for the ``w``-weighted Pearson correlation (EPIC)."""
    mu1, mu2 = float(w @ c1), float(w @ c2)
    d1, d2 = c1 - mu1, c2 - mu2
    v1, v2 = float(w @ d1**2), float(w @ d2**2)
    flat1 = v1 <= 1e-24 * max(1.0, float(np.max(np.abs(c1)))) ** 2
    flat2 = v2 <= 1e-24 * max(1.0, float(np.max(np.abs(c2)))) ** 2
    if flat1 and flat2:
        return 0.0
    if flat1 or flat2:
        warnings.warn(
            "epic_distance: one reward is equivalent to a constant, distance undefined (nan)",
            MetricWarning,
            stacklevel=3,
        )
        return float("nan")
    rho = float(w @ (d1 * d2)) / math.sqrt(v1 * v2)
    return math.sqrt(max(0.0, (1.0 - min(1.0, max(-1.0, rho))) / 2.0))
