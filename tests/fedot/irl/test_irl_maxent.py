"""Soft value iteration, visitation frequencies and MaxEnt IRL."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from fedot.envs import Demonstrations, expert_demonstrations, gridworld, make_mdp
from fedot.learning.irl import (
    IRLIterate,
    IRLWarning,
    SoftVIWarning,
    maxent_gradient,
    maxent_irl,
    maxent_irl_pooled,
    soft_value_iteration,
    state_visitation,
    state_visitation_by_step,
)


def _two_state_mdp():  # noqa: ANN202
    """States {0, 1}; action 0 stays, action 1 switches; r = (0, 1)."""
    p = np.zeros((2, 2, 2))
    p[0, 0, 0] = p[1, 0, 1] = 1.0
    p[0, 1, 1] = p[1, 1, 0] = 1.0
    return make_mdp("two", p, [1.0, 0.0], None, [0.0, 1.0], np.arange(2.0), horizon=2)


# ---------------------------------------------------------------- soft value iteration


def test_soft_vi_two_state_hand_values() -> None:
    # Prepare
    mdp = _two_state_mdp()
    log2, l1e = math.log(2.0), math.log(1.0 + math.e)
    # Execute
    res = soft_value_iteration(mdp, mdp.true_reward, horizon=2)
    # Assert: h = 2: Q = r; h = 1: Q(s, a) = r(s) + V_2(next)
    np.testing.assert_allclose(res.q[1], [[0, 0], [1, 1]])
    np.testing.assert_allclose(res.v[1], [log2, 1 + log2])
    np.testing.assert_allclose(res.q[0], [[log2, 1 + log2], [2 + log2, 1 + log2]])
    np.testing.assert_allclose(res.v[0], [log2 + l1e, 1 + log2 + l1e])
    np.testing.assert_allclose(res.policy[0, 0], [1 / (1 + math.e), math.e / (1 + math.e)])
    np.testing.assert_allclose(res.policy.sum(axis=-1), 1.0)
    assert res.converged and res.iterations == 2


def test_soft_vi_temperature_scales_like_hand_formula() -> None:
    mdp = _two_state_mdp()
    res = soft_value_iteration(mdp, mdp.true_reward, horizon=2, temperature=0.5)
    # V_2 = 0.5 * log(2 exp(r / 0.5)) = r + 0.5 log 2
    np.testing.assert_allclose(res.v[1], [0.5 * math.log(2), 1 + 0.5 * math.log(2)])


def test_soft_vi_horizon_one_is_uniform() -> None:
    mdp = gridworld(4, slip=0.2)
    res = soft_value_iteration(mdp, np.arange(16.0), horizon=1)
    assert res.policy.shape == (1, 16, 4)
    np.testing.assert_allclose(res.policy, 0.25)


def test_soft_vi_discounted_is_a_fixed_point() -> None:
    # Prepare
    mdp = gridworld(5, slip=0.1)
    gamma = 0.9
    # Execute
    res = soft_value_iteration(mdp, mdp.true_reward, gamma=gamma, tol=1e-12)
    # Assert: V = logsumexp_a (r + gamma P V), independent of the implementation's loop
    dense = mdp.dense()
    q = mdp.true_reward[:, None] + gamma * dense @ res.v
    np.testing.assert_allclose(res.v, np.log(np.exp(q).sum(axis=1)), atol=1e-9)
    np.testing.assert_allclose(res.policy.sum(axis=1), 1.0)
    assert res.policy.shape == (25, 4) and res.converged


def test_soft_vi_warns_when_not_converged() -> None:
    mdp = gridworld(3)
    with pytest.warns(SoftVIWarning):
        res = soft_value_iteration(mdp, mdp.true_reward, gamma=0.99, max_iter=3)
    assert not res.converged


@pytest.mark.parametrize("reward", [np.zeros(8), np.full(9, np.inf)])
def test_soft_vi_rejects_bad_rewards(reward: np.ndarray) -> None:
    with pytest.raises(ValueError):
        soft_value_iteration(gridworld(3), reward, horizon=3)


def test_soft_vi_requires_horizon_or_discount_for_raw_kernels() -> None:
    with pytest.raises(ValueError, match="horizon"):
        soft_value_iteration(gridworld(3).dense(), np.zeros(9))


# ---------------------------------------------------------------- state visitation


def test_visitation_sums_to_horizon_with_absorbing_terminals() -> None:
    # Prepare
    mdp = gridworld(5, terminal_goals=True, slip=0.2)
    policy = soft_value_iteration(mdp, mdp.true_reward, horizon=15).policy
    # Execute
    per_step = state_visitation_by_step(mdp, policy)
    total = state_visitation(mdp, policy)
    # Assert
    np.testing.assert_allclose(per_step.sum(axis=1), 1.0, atol=1e-12)
    assert total.sum() == pytest.approx(15.0, abs=1e-10)
    goal = mdp.goal_states[0]
    assert np.all(np.diff(per_step[:, goal]) >= -1e-15)  # absorbing: goal mass never decreases


def test_discounted_visitation_closed_form() -> None:
    mdp = gridworld(4, slip=0.3)
    policy = np.full((16, 4), 0.25)
    d_inf = state_visitation(mdp, policy, gamma=0.8, discounted=True)
    d_trunc = state_visitation(mdp, policy, 200, gamma=0.8, discounted=True)
    assert d_inf.sum() == pytest.approx(5.0)
    np.testing.assert_allclose(d_inf, d_trunc, atol=1e-12)


def test_visitation_from_transitions_and_p0_pair() -> None:
    mdp = _two_state_mdp()
    policy = np.array([[0.0, 1.0], [0.0, 1.0]])  # always switch
    d = state_visitation((mdp.dense(), np.array([1.0, 0.0])), policy, 5)
    np.testing.assert_allclose(d, [3.0, 2.0])


# ---------------------------------------------------------------- MaxEnt IRL


def test_gradient_vanishes_at_matched_expected_counts() -> None:
    # Prepare: f_E := expected counts of the soft-optimal policy of r*
    mdp = gridworld(5, slip=0.2)
    rng = np.random.default_rng(0)
    r_star = rng.normal(size=25)
    policy = soft_value_iteration(mdp, r_star, horizon=10).policy
    f_e = state_visitation(mdp, policy)
    # Execute
    grad, d = maxent_gradient(mdp, r_star, f_e, horizon=10)
    grad_off, _ = maxent_gradient(mdp, r_star + rng.normal(size=25), f_e, horizon=10)
    # Assert
    assert np.linalg.norm(grad) < 1e-12
    np.testing.assert_allclose(d, f_e)
    assert np.linalg.norm(grad_off) > 0.1


def test_gradient_nearly_vanishes_for_many_sampled_demos() -> None:
    # Prepare: demonstrations sampled from the model itself at r*
    mdp = gridworld(4, slip=0.1)
    r_star = np.linspace(-1.0, 1.0, 16)
    demos = expert_demonstrations(mdp, 40_000, seed=3, reward=r_star, horizon=8)
    # Execute: one evaluation at r* and at 0
    at_star = maxent_irl(mdp, demos, iterations=1, init=r_star)
    at_zero = maxent_irl(mdp, demos, iterations=1)
    # Assert: sampling noise only (~ sqrt(H / N) per state)
    assert at_star.grad_norms[0] < 0.05
    assert at_zero.grad_norms[0] > 10 * at_star.grad_norms[0]


def _agreement(mdp, demos: Demonstrations, reward: np.ndarray) -> float:  # noqa: ANN001
    """Fraction of visited (t, s) pairs, t < H - 1, where the learned greedy action is a demo action.

    The last step is excluded: there Q_H(s, .) = r(s) for every action, so both the expert and the
    learned policy are uniform and the demonstrated action is arbitrary.
    """
    greedy = soft_value_iteration(mdp, reward, horizon=demos.horizon).policy.argmax(axis=-1)
    taken: dict[tuple[int, int], set[int]] = {}
    for states, actions in zip(demos.states, demos.actions, strict=True):
        for t in range(demos.horizon - 1):
            taken.setdefault((t, int(states[t])), set()).add(int(actions[t]))
    return float(np.mean([greedy[t, s] in acts for (t, s), acts in taken.items()]))


@pytest.mark.parametrize("terminal_goals", [False, True])
def test_maxent_irl_recovers_the_goal_on_a_5x5_grid(terminal_goals: bool) -> None:
    # Prepare
    mdp = gridworld(5, terminal_goals=terminal_goals)
    demos = expert_demonstrations(mdp, 200, seed=0, temperature=0.1)
    # Execute
    res = maxent_irl(mdp, demos, iterations=200, lr=0.1)
    # Assert
    assert res.reward.argmax() == mdp.goal_states[0]
    assert _agreement(mdp, demos, res.reward) > 0.95
    assert res.log_likelihoods[-1] > res.log_likelihoods[0]
    assert res.grad_norms[-1] < 0.1 * res.grad_norms[0]
    assert res.iterations == 200 and len(res.grad_norms) == len(res.log_likelihoods) == 200


def test_visitation_sums_to_horizon_at_every_irl_iteration() -> None:
    # Prepare
    mdp = gridworld(4, terminal_goals=True, slip=0.2)
    demos = expert_demonstrations(mdp, 50, seed=2)
    sums: list[float] = []
    # Execute
    maxent_irl(
        mdp, demos, iterations=25, callback=lambda it: sums.append(float(it.visitations[0].sum()))
    )
    # Assert
    assert len(sums) == 25
    np.testing.assert_allclose(sums, demos.horizon, atol=1e-10)


def test_log_likelihood_matches_direct_computation() -> None:
    mdp = gridworld(3, slip=0.1)
    demos = expert_demonstrations(mdp, 7, seed=1)
    seen: list[IRLIterate] = []
    res = maxent_irl(mdp, demos, iterations=3, callback=seen.append)
    pol = soft_value_iteration(mdp, seen[2].reward, horizon=demos.horizon).policy
    t = np.arange(demos.horizon)[None, :]
    direct = np.log(pol[t, demos.states, demos.actions]).sum(axis=1).mean()
    assert res.log_likelihoods[2] == pytest.approx(direct)
    # the very first iterate (r = 0) is a uniform policy: log-likelihood -H log A
    assert res.log_likelihoods[0] == pytest.approx(-demos.horizon * math.log(4))


def test_pooled_with_one_problem_equals_maxent_irl() -> None:
    mdp = gridworld(4, slip=0.1)
    demos = expert_demonstrations(mdp, 30, seed=4)
    single = maxent_irl(mdp, demos, iterations=40, lr=0.05, l2=0.01)
    pooled = maxent_irl_pooled([(mdp, demos)], iterations=40, lr=0.05, l2=0.01)
    np.testing.assert_array_equal(single.reward, pooled.reward)
    assert single.grad_norms == pooled.grad_norms
    assert single.log_likelihoods == pooled.log_likelihoods


def test_pooled_on_one_mdp_equals_concatenated_demos() -> None:
    # sum_k n_k (f_k - D) / n = f_concat - D when the MDPs coincide
    mdp = gridworld(4, slip=0.1)
    d1 = expert_demonstrations(mdp, 10, seed=1)
    d2 = expert_demonstrations(mdp, 30, seed=2)
    both = Demonstrations(np.vstack([d1.states, d2.states]), np.vstack([d1.actions, d2.actions]), 16)
    pooled = maxent_irl_pooled([(mdp, d1), (mdp, d2)], iterations=30, optimizer="sgd")
    concat = maxent_irl(mdp, both, iterations=30, optimizer="sgd")
    np.testing.assert_allclose(pooled.reward, concat.reward, atol=1e-10)


def test_pooled_across_different_dynamics_runs() -> None:
    a, b = gridworld(4, slip=0.0), gridworld(4, slip=0.3)
    res = maxent_irl_pooled(
        [(a, expert_demonstrations(a, 20, seed=0)), (b, expert_demonstrations(b, 60, seed=1))],
        iterations=50,
    )
    assert res.reward.argmax() == a.goal_states[0]


def test_prior_pulls_the_reward_and_warm_start_is_kept() -> None:
    mdp = gridworld(4)
    demos = expert_demonstrations(mdp, 20, seed=0)
    prior = np.linspace(-1.0, 1.0, 16)[::-1]
    pulled = maxent_irl(mdp, demos, iterations=300, prior=prior, prior_weight=100.0)
    kept = maxent_irl(mdp, demos, iterations=0, init=prior)
    assert np.max(np.abs(pulled.reward - prior)) < 0.1
    np.testing.assert_array_equal(kept.reward, prior)
    assert kept.iterations == 0


def test_linear_features_fit() -> None:
    # features = (row, col, 1): the goal at the bottom-right needs positive row and col weights
    mdp = gridworld(5)
    demos = expert_demonstrations(mdp, 100, seed=0, temperature=0.2)
    phi = np.column_stack([mdp.coords, np.ones(25)])
    res = maxent_irl(mdp, demos, features=phi, iterations=150)
    assert res.theta.shape == (3,)
    assert res.theta[0] > 0 and res.theta[1] > 0
    np.testing.assert_allclose(res.reward, phi @ res.theta)


def test_maxent_irl_is_deterministic_and_warns_on_tolerance() -> None:
    mdp = gridworld(3)
    demos = expert_demonstrations(mdp, 10, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = maxent_irl(mdp, demos, iterations=20)
    b = maxent_irl(mdp, demos, iterations=20)
    np.testing.assert_array_equal(a.reward, b.reward)
    with pytest.warns(IRLWarning):
        maxent_irl(mdp, demos, iterations=2, tol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [{"features": np.ones((8, 2))}, {"init": np.zeros(3)}, {"prior_weight": 1.0}, {"horizon": 99},
     {"optimizer": "rmsprop"}, {"lr": -1.0}],
)
def test_maxent_irl_rejects_bad_inputs(kwargs: dict) -> None:
    mdp = gridworld(3)
    demos = expert_demonstrations(mdp, 5, seed=0)
    with pytest.raises(ValueError):
        maxent_irl(mdp, demos, iterations=2, **kwargs)


def test_pooled_rejects_mismatched_state_spaces() -> None:
    a, b = gridworld(3), gridworld(4)
    with pytest.raises(ValueError, match="state space"):
        maxent_irl_pooled([(a, expert_demonstrations(a, 2, 0)), (b, expert_demonstrations(b, 2, 0))])
