"""The federated IRL problem: deterministic, per-source variants, demo counts, private demos."""

from __future__ import annotations

import numpy as np
import pytest

from fedot.envs.federated import federated_irl, source_demos


def test_same_arguments_give_the_same_problem_and_demos() -> None:
    # Execute
    a = federated_irl("gridworld", 4, heterogeneity="goal-shift", strength=2.0, grid_size=8, seed=3)
    federated_irl.cache_clear()
    b = federated_irl("gridworld", 4, heterogeneity="goal-shift", strength=2.0, grid_size=8, seed=3)
    # Assert
    for ma, mb in zip(a.sources, b.sources, strict=True):
        np.testing.assert_array_equal(ma.true_reward, mb.true_reward)
    np.testing.assert_array_equal(source_demos(a, 2)[0].states, source_demos(b, 2)[0].states)


def test_goal_shift_moves_source_rewards_but_not_the_shared_objective() -> None:
    # Prepare
    p = federated_irl("gridworld", 4, heterogeneity="goal-shift", strength=2.0, grid_size=10)
    # Execute
    peaks = [int(np.argmax(m.true_reward)) for m in p.sources]
    # Assert: every source's peak moved; the evaluation view keeps the source dynamics, shared reward
    assert all(pk != int(np.argmax(p.base.true_reward)) for pk in peaks)
    shared = p.shared(1)
    np.testing.assert_array_equal(shared.true_reward, p.base.true_reward)
    assert shared.transitions is p.sources[1].transitions


def test_demos_heterogeneity_spreads_counts_around_the_mean() -> None:
    # Execute
    p = federated_irl("gridworld", 5, heterogeneity="demos", demos=50, grid_size=6)
    # Assert
    assert p.demo_counts == (10, 30, 50, 70, 90)
    train, test = source_demos(p, 0)
    assert train.num == 10 and test is not None and test.num == p.test_demos


def test_sources_have_distinct_demonstrations() -> None:
    # Prepare
    p = federated_irl("gridworld", 3, grid_size=6, test_demos=0)
    # Execute
    d0, t0 = source_demos(p, 0)
    d1, _ = source_demos(p, 1)
    # Assert
    assert t0 is None
    assert not np.array_equal(d0.states, d1.states)


@pytest.mark.parametrize(
    ("env", "states"),
    [("frozenlake-4x4", 16), ("cliffwalking", 48), ("taxi", 500), ("mountaincar", 100)],
)
def test_gym_and_control_environments_build(env: str, states: int) -> None:
    # Execute
    p = federated_irl(env, 2, bins=10)
    # Assert
    assert p.base.num_states == states and len(p.sources) == 2


def test_random_lake_layouts_differ_per_source() -> None:
    # Execute
    p = federated_irl("frozenlake-random", 3, heterogeneity="layout", seed=1)
    # Assert: same state space, different maps (different terminal sets)
    terminals = {tuple(np.nonzero(m.terminal)[0]) for m in p.sources}
    assert len(terminals) > 1
    assert {m.num_states for m in p.sources} == {64}


def test_unknown_environment_is_named() -> None:
    with pytest.raises(ValueError, match="unknown IRL environment 'atari'"):
        federated_irl("atari", 2)
