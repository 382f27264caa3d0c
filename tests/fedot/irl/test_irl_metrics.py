"""Planning utilities and reward metrics: returns, success, EVD, correlations, EPIC."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedot.envs import gridworld
from fedot.learning.irl import (
    MetricWarning,
    epic_distance,
    expected_value_difference,
    optimal_policy,
    pearson,
    policy_return,
    spearman,
    success_rate,
)


@pytest.fixture(scope="module")
def grid():  # noqa: ANN201
    return gridworld(5, slip=0.1)


# ---------------------------------------------------------------- planning


def test_optimal_policy_is_one_hot_and_reaches_the_goal() -> None:
    # Prepare: deterministic 5x5, start (0, 0), goal (4, 4): 8 moves needed
    mdp = gridworld(5)
    # Execute
    pi = optimal_policy(mdp, mdp.true_reward, horizon=10)
    # Assert
    assert pi.shape == (10, 25, 4)
    np.testing.assert_array_equal(pi.sum(axis=-1), 1.0)
    assert set(np.unique(pi)) == {0.0, 1.0}
    assert success_rate(mdp, pi) == 1.0


def test_success_rate_is_zero_when_the_horizon_is_too_short() -> None:
    # 8 moves need 9 states; with H = 8 the goal is out of reach
    mdp = gridworld(5)
    assert success_rate(mdp, optimal_policy(mdp, mdp.true_reward, horizon=8)) == 0.0
    assert success_rate(mdp, optimal_policy(mdp, mdp.true_reward, horizon=9)) == 1.0


def test_success_rate_counts_goals_as_absorbing() -> None:
    # a policy that walks right along row 0 passes (0, 2) and leaves it; reaching counts
    mdp = gridworld((1, 5), goals=[(0, 2)])
    pi = np.zeros((5, 4))
    pi[:, 1] = 1.0
    assert success_rate(mdp, pi, horizon=3) == 1.0
    assert success_rate(mdp, pi, horizon=2) == 0.0


def test_policy_return_hand_values() -> None:
    # 1x3 corridor, reward (0, 1, 2), always right: states 0, 1, 2, 2, ...
    mdp = gridworld((1, 3), goals=[(0, 2)])
    reward = np.array([0.0, 1.0, 2.0])
    pi = np.zeros((3, 4))
    pi[:, 1] = 1.0
    assert policy_return(mdp, pi, reward, horizon=4) == pytest.approx(0 + 1 + 2 + 2)
    assert policy_return(mdp, pi, reward, horizon=3, gamma=0.5) == pytest.approx(0 + 0.5 + 0.25 * 2)
    # infinite discounted: 0.5 + sum_{k>=2} 2 * 0.5^k = 0.5 + 1
    assert policy_return(mdp, pi, reward, gamma=0.5) == pytest.approx(1.5)


def test_discounted_optimal_policy_is_stationary_and_optimal(grid) -> None:  # noqa: ANN001
    gamma = 0.9
    pi = optimal_policy(grid, grid.true_reward, gamma=gamma)
    v = policy_return(grid, pi, grid.true_reward, gamma=gamma)
    uniform = policy_return(grid, np.full((25, 4), 0.25), grid.true_reward, gamma=gamma)
    assert pi.shape == (25, 4)
    assert v > uniform


# ---------------------------------------------------------------- EVD


def test_evd_is_zero_for_the_true_reward_and_its_affine_images(grid) -> None:  # noqa: ANN001
    r = grid.true_reward
    assert expected_value_difference(grid, r) == pytest.approx(0.0, abs=1e-12)
    assert expected_value_difference(grid, 3.0 * r + 2.0) == pytest.approx(0.0, abs=1e-12)
    assert expected_value_difference(grid, r, gamma=0.9) == pytest.approx(0.0, abs=1e-12)


def test_evd_is_non_negative_and_positive_for_a_wrong_reward(grid) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    values = [expected_value_difference(grid, rng.normal(size=25)) for _ in range(10)]
    assert min(values) >= -1e-9
    assert expected_value_difference(grid, -grid.true_reward) > 1.0


# ---------------------------------------------------------------- correlations


def test_pearson_and_spearman_hand_values() -> None:
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert pearson([1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(0.5)
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)  # monotone, non-linear
    assert pearson(a, np.exp(a)) < 1.0
    assert spearman([1.0, 2.0, 3.0], [3.0, 1.0, 2.0]) == pytest.approx(-0.5)


def test_correlations_of_constant_input_are_nan_with_warning() -> None:
    with pytest.warns(MetricWarning):
        assert math.isnan(pearson(np.ones(4), np.arange(4.0)))
    with pytest.warns(MetricWarning):
        assert math.isnan(spearman(np.arange(4.0), np.zeros(4)))


def test_correlations_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        pearson(np.ones(3), np.ones(4))
    with pytest.raises(ValueError):
        spearman(np.array([1.0, np.nan]), np.ones(2))


# ---------------------------------------------------------------- EPIC


def test_epic_is_invariant_to_positive_affine_maps(grid) -> None:  # noqa: ANN001
    r = np.random.default_rng(1).normal(size=25)
    assert epic_distance(r, 2.5 * r - 7.0, grid) == pytest.approx(0.0, abs=1e-7)
    coverage = np.random.default_rng(2).dirichlet(np.ones(25))
    assert epic_distance(r, 0.1 * r + 3.0, grid, coverage=coverage) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_epic_is_invariant_to_potential_shaping(grid, gamma: float) -> None:  # noqa: ANN001
    # Prepare: R2(s, s') = 2 r(s') + gamma * Phi(s') - Phi(s) + 1, an (S, S) transition reward
    rng = np.random.default_rng(3)
    r = rng.normal(size=25)
    phi = rng.normal(size=25) * 5
    shaped = 2 * r[None, :] + gamma * phi[None, :] - phi[:, None] + 1.0
    shaped_sas = np.broadcast_to(shaped[:, None, :], (25, 4, 25))
    # Execute / Assert
    assert epic_distance(r, shaped, grid, gamma=gamma) == pytest.approx(0.0, abs=1e-7)
    assert epic_distance(shaped_sas, r, grid, gamma=gamma) == pytest.approx(0.0, abs=1e-7)
    # the shaping does change the raw transition reward
    assert not np.allclose(shaped, 2 * r[None, :] + 1.0)


def test_epic_for_state_rewards_is_the_pearson_distance(grid) -> None:  # noqa: ANN001
    rng = np.random.default_rng(4)
    r1, r2 = rng.normal(size=25), rng.normal(size=25)
    expected = math.sqrt((1.0 - pearson(r1, r2)) / 2.0)
    assert epic_distance(r1, r2, grid) == pytest.approx(expected)
    # same value through the general (S, S) path
    assert epic_distance(np.tile(r1, (25, 1)), r2, grid) == pytest.approx(expected)
    assert epic_distance(r1, -r1, grid) == pytest.approx(1.0)
    assert epic_distance(r1, r2, grid) == pytest.approx(epic_distance(r2, r1, grid))


def test_epic_constant_rewards() -> None:
    mdp = gridworld(3)
    assert epic_distance(np.ones(9), np.full(9, 4.0), mdp) == 0.0
    with pytest.warns(MetricWarning):
        assert math.isnan(epic_distance(np.ones(9), np.arange(9.0), mdp))


@pytest.mark.parametrize(
    ("r2", "kwargs"),
    [(np.zeros(8), {}), (np.zeros(9), {"coverage": np.ones(9)}), (np.zeros(9), {"coverage": "visits"}),
     (np.full(9, np.nan), {})],
)
def test_epic_rejects_bad_input(r2: np.ndarray, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        epic_distance(np.arange(9.0), r2, gridworld(3), **kwargs)
