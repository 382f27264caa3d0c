"""Tabular models of gymnasium environments (toy-text exact models, discretised control)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from fedot.envs import discretized_control, expert_demonstrations, from_gymnasium
from fedot.learning.irl import optimal_policy, policy_return, soft_value_iteration, success_rate


def _env_value_iteration(env_id: str, gamma: float, **kwargs: object) -> np.ndarray:
    """Independent value iteration on gymnasium's own P with (s, a, s') rewards, V = 0 after done."""
    env = gym.make(env_id, **kwargs)
    p = env.unwrapped.P
    n_s, n_a = env.observation_space.n, env.action_space.n
    v = np.zeros(n_s)
    for _ in range(5000):
        q = np.array(
            [[sum(pr * (r + gamma * v[s2] * (not d)) for pr, s2, r, d in p[s][a]) for a in range(n_a)]
             for s in range(n_s)]
        )
        v_new = q.max(axis=1)
        if np.max(np.abs(v_new - v)) < 1e-12:
            break
        v = v_new
    env.close()
    return v_new


def _rows(mdp) -> np.ndarray:  # noqa: ANN001
    return np.asarray(mdp.transitions.sum(axis=1)).ravel()


# ---------------------------------------------------------------- FrozenLake


def test_frozenlake_slippery_model() -> None:
    # Prepare
    mdp = from_gymnasium("FrozenLake-v1", is_slippery=True)
    desc = "SFFFFHFHFFFHHFFG"
    holes = [i for i, ch in enumerate(desc) if ch == "H"]
    # Execute
    dense = mdp.dense()
    # Assert
    assert (mdp.num_states, mdp.num_actions, mdp.grid_shape) == (16, 4, (4, 4))
    np.testing.assert_allclose(_rows(mdp), 1.0, atol=1e-12)
    np.testing.assert_array_equal(np.flatnonzero(mdp.terminal), [*holes, 15])
    for s in [*holes, 15]:
        np.testing.assert_array_equal(dense[s, :, s], 1.0)
    np.testing.assert_array_equal(mdp.goal_states, [15])
    np.testing.assert_array_equal(mdp.true_reward, np.eye(16)[15])
    np.testing.assert_allclose(dense[14, 1, [13, 14, 15]], 1.0 / 3.0)
    assert mdp.p0[0] == 1.0


def test_frozenlake_value_matches_the_reference_0542() -> None:
    # Prepare
    gamma = 0.99
    mdp = from_gymnasium("FrozenLake-v1")
    # Execute: env's own (s, a, s') rewards, and our state-reward model
    v_env = _env_value_iteration("FrozenLake-v1", gamma)[0]
    pi = optimal_policy(mdp, mdp.true_reward, gamma=gamma)
    v_model = policy_return(mdp, pi, mdp.true_reward, gamma=gamma)
    # Assert: data.md reports 0.542; reward 1 on entering G at step t is worth gamma^t, while the
    # absorbing state reward pays sum_{k>t} gamma^k = gamma^(t+1) / (1 - gamma): a factor gamma/(1-gamma)
    assert v_env == pytest.approx(0.542, abs=5e-4)
    assert v_model == pytest.approx(v_env * gamma / (1 - gamma), rel=1e-6)


def test_frozenlake_variants() -> None:
    big = from_gymnasium("FrozenLake8x8-v1")
    a = from_gymnasium("FrozenLake-v1", random_map_seed=3, map_size=6, is_slippery=False)
    b = from_gymnasium("FrozenLake-v1", random_map_seed=3, map_size=6, is_slippery=False)
    assert big.num_states == 64 and big.grid_shape == (8, 8) and big.horizon == 200
    assert a.num_states == 36 and a.meta["map"] == b.meta["map"]
    assert (a.transitions != b.transitions).nnz == 0
    # non-slippery: every row of a non-terminal state is deterministic
    nonterm = np.repeat(~a.terminal, 4)
    assert np.all(a.transitions[nonterm].max(axis=1).toarray() == 1.0)


# ---------------------------------------------------------------- CliffWalking


def test_cliffwalking_fall_model_and_optimal_return() -> None:
    # Prepare
    mdp = from_gymnasium("CliffWalking-v1")
    dense = mdp.dense()
    cliff = list(range(37, 47))
    # Execute
    pi = optimal_policy(mdp, mdp.true_reward, horizon=20)
    ret = policy_return(mdp, pi, mdp.true_reward)
    # Assert: shapes, rewards, fall dynamics
    assert (mdp.num_states, mdp.num_actions, mdp.grid_shape) == (48, 4, (4, 12))
    np.testing.assert_allclose(_rows(mdp), 1.0)
    assert mdp.meta["cliff_states"] == cliff
    np.testing.assert_array_equal(mdp.true_reward[cliff], -100.0)
    assert mdp.true_reward[47] == 0.0 and mdp.true_reward[36] == -1.0
    assert dense[36, 1, 37] == 1.0  # right from the start falls into the cliff cell
    np.testing.assert_array_equal(dense[cliff][:, :, 36], 1.0)  # the cliff returns to the start
    assert mdp.terminal[47] and mdp.terminal.sum() == 1 and mdp.p0[36] == 1.0
    # shortest safe path: 13 states at -1 (start, up, 11 rights) then the goal at 0
    assert ret == pytest.approx(-13.0)
    assert success_rate(mdp, pi) == 1.0


def test_cliffwalking_env_mode_matches_gymnasium() -> None:
    mdp = from_gymnasium("CliffWalking-v1", cliff="env")
    env = gym.make("CliffWalking-v1")
    dense = mdp.dense()
    for s in range(47):
        for a in range(4):
            expected = np.zeros(48)
            for pr, s2, _, _ in env.unwrapped.P[s][a]:
                expected[s2] += pr
            np.testing.assert_allclose(dense[s, a], expected)
    env.close()


# ---------------------------------------------------------------- Taxi


def test_taxi_model() -> None:
    mdp = from_gymnasium("Taxi-v4")
    env = gym.make("Taxi-v4")
    assert (mdp.num_states, mdp.num_actions, mdp.grid_shape) == (500, 6, None)
    np.testing.assert_allclose(_rows(mdp), 1.0)
    np.testing.assert_array_equal(mdp.goal_states, [0, 85, 410, 475])
    np.testing.assert_array_equal(mdp.goal_states, np.flatnonzero(mdp.terminal))
    np.testing.assert_array_equal(mdp.true_reward[mdp.goal_states], 20.0)
    assert np.all(np.delete(mdp.true_reward, mdp.goal_states) == -1.0)
    np.testing.assert_array_equal(mdp.coords[85], list(env.unwrapped.decode(85)))
    assert mdp.p0.sum() == pytest.approx(1.0) and np.count_nonzero(mdp.p0) == 300
    env.close()


def test_taxi_expert_delivers() -> None:
    mdp = from_gymnasium("Taxi-v4")
    pi = optimal_policy(mdp, mdp.true_reward, horizon=30)
    assert success_rate(mdp, pi) == pytest.approx(1.0)


def test_taxi_max_action_reward_mode() -> None:
    mdp = from_gymnasium("Taxi-v4", reward_mode="max-action")
    assert np.sum(mdp.true_reward == 20.0) == 4  # the pre-drop-off states
    assert np.all(mdp.true_reward[mdp.goal_states] == -1.0)


def test_from_gymnasium_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        from_gymnasium("Blackjack-v1")
    with pytest.raises(ValueError, match="cliff"):
        from_gymnasium("FrozenLake-v1", cliff="env")
    with pytest.raises(ValueError, match="reward_mode"):
        from_gymnasium("Taxi-v4", reward_mode="sum")


# ---------------------------------------------------------------- discretised control


@pytest.fixture(scope="module")
def mountain_car():  # noqa: ANN201
    return discretized_control("MountainCar-v0", bins=(20, 20), seed=0)


def test_mountaincar_model(mountain_car) -> None:  # noqa: ANN001
    mdp = mountain_car
    dense = mdp.dense()
    goal = mdp.goal_states
    assert (mdp.num_states, mdp.num_actions, mdp.grid_shape) == (400, 3, (20, 20))
    np.testing.assert_allclose(_rows(mdp), 1.0, atol=1e-12)
    np.testing.assert_array_equal(goal, np.flatnonzero(mdp.terminal))
    # goal cells: position bins intersecting [0.5, 0.6] with width 0.09 -> bins 18 and 19
    np.testing.assert_array_equal(np.unique(goal // 20), [18, 19])
    for g in goal:
        np.testing.assert_array_equal(dense[g, :, g], 1.0)
    np.testing.assert_array_equal(mdp.true_reward, mdp.terminal.astype(float))
    # reset law: positions U[-0.6, -0.4] cover bins 6, 7, 8 (edges -0.66, -0.57, -0.48, -0.39),
    # velocity 0 falls in bin 10
    np.testing.assert_array_equal(np.flatnonzero(mdp.p0), [6 * 20 + 10, 7 * 20 + 10, 8 * 20 + 10])
    np.testing.assert_allclose(mdp.p0[[130, 150, 170]], [0.03 / 0.2, 0.09 / 0.2, 0.08 / 0.2])
    assert np.all((mdp.coords > 0) & (mdp.coords < 1))


def test_mountaincar_expert_reaches_the_goal(mountain_car) -> None:  # noqa: ANN001
    # Prepare
    mdp = mountain_car
    horizon = 200
    # Execute
    soft = soft_value_iteration(mdp, mdp.true_reward, horizon=horizon, temperature=0.1)
    demos = expert_demonstrations(mdp, 200, seed=0, horizon=horizon, temperature=0.1)
    reached = np.isin(demos.states, mdp.goal_states).any(axis=1).mean()
    # Assert (measured: exact 0.97, greedy 0.98 with the default 20 samples per cell)
    assert success_rate(mdp, soft.policy) > 0.9
    assert reached > 0.8


def test_mountaincar_is_seeded() -> None:
    a = discretized_control("MountainCar-v0", bins=(6, 5), samples_per_cell=3, seed=1)
    b = discretized_control("MountainCar-v0", bins=(6, 5), samples_per_cell=3, seed=1)
    c = discretized_control("MountainCar-v0", bins=(6, 5), samples_per_cell=3, seed=2)
    assert (a.transitions != b.transitions).nnz == 0
    assert (a.transitions != c.transitions).nnz > 0


def test_pendulum_model() -> None:
    mdp = discretized_control("Pendulum-v1", bins=(12, 10), samples_per_cell=4)
    assert (mdp.num_states, mdp.num_actions, mdp.grid_shape) == (120, 3, (12, 10))
    np.testing.assert_allclose(_rows(mdp), 1.0, atol=1e-12)
    assert not mdp.terminal.any()
    np.testing.assert_allclose(mdp.p0, 1.0 / 120)
    # 4 cells around the upright rest point, which carry the highest reward
    assert mdp.goal_states.size == 4
    top = np.argsort(mdp.true_reward)[-4:]
    np.testing.assert_array_equal(np.sort(top), mdp.goal_states)
    assert mdp.meta["torques"] == [-2.0, 0.0, 2.0]


def test_discretized_control_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        discretized_control("CartPole-v1")
    with pytest.raises(ValueError):
        discretized_control("Pendulum-v1", actions=(-3.0, 3.0))
    with pytest.raises(ValueError):
        discretized_control("MountainCar-v0", bins=(1, 5))
