"""Tabular MDP container, gridworlds, client variants and demonstrations."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from fedot.envs import (
    Demonstrations,
    client_variants,
    expert_demonstrations,
    gridworld,
    make_mdp,
    sample_demonstrations,
    state_visitation,
)

UP, RIGHT, DOWN, LEFT = 0, 1, 2, 3


def _reachable(h: int, w: int, obstacles: set[tuple[int, int]], start: tuple[int, int]) -> set:
    """Independent BFS over free cells (4-neighbourhood)."""
    seen = {start}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < h and 0 <= nxt[1] < w and nxt not in obstacles and nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


# ---------------------------------------------------------------- make_mdp / TabularMDP


def test_make_mdp_makes_terminals_absorbing_and_accepts_dense_input() -> None:
    # Prepare: 3 states, 2 actions; state 2 terminal with a non-self-loop row given
    p = np.zeros((3, 2, 3))
    p[0, :, 1] = 1.0
    p[1, 0, 2] = 1.0
    p[1, 1, 0] = 1.0
    p[2, :, 0] = 1.0
    # Execute
    mdp = make_mdp("toy", p, [1, 0, 0], [False, False, True], [0.0, 0.0, 1.0], np.arange(3.0))
    # Assert
    dense = mdp.dense()
    assert mdp.transitions.shape == (6, 3)
    np.testing.assert_array_equal(dense[2], [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_array_equal(dense[:2], p[:2])
    assert mdp.coords.shape == (3, 1)
    assert mdp.horizon == 2 * 2  # 2 * ceil(sqrt(3))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"row": 0.9}, "do not sum to 1"),
        ({"p0": [0.5, 0.2, 0.2]}, "p0"),
        ({"reward": [0.0, np.nan, 1.0]}, "non-finite"),
        ({"reward": [0.0, 1.0]}, "shape"),
    ],
)
def test_make_mdp_rejects_bad_inputs(kwargs: dict, match: str) -> None:
    # Prepare
    p = np.full((3, 2, 3), 1.0 / 3.0)
    p[0, 0] = [kwargs.get("row", 1.0), 0.0, 0.0]
    p0 = kwargs.get("p0", [1.0, 0.0, 0.0])
    reward = kwargs.get("reward", [0.0, 0.0, 1.0])
    # Execute / Assert
    with pytest.raises(ValueError, match=match):
        make_mdp("bad", p, p0, None, reward, np.zeros((3, 2)))


def test_mdp_arrays_are_read_only() -> None:
    mdp = gridworld(3)
    with pytest.raises(ValueError):
        mdp.true_reward[0] = 5.0


# ---------------------------------------------------------------- gridworld


def test_gridworld_rows_sum_to_one_with_slip_and_obstacles() -> None:
    mdp = gridworld((4, 6), slip=0.2, obstacles=[(1, 1), (2, 3)])
    rows = np.asarray(mdp.transitions.sum(axis=1)).ravel()
    np.testing.assert_allclose(rows, 1.0, atol=1e-12)
    assert mdp.num_states == 24 and mdp.num_actions == 4 and mdp.grid_shape == (4, 6)
    assert mdp.horizon == 12


def test_gridworld_slip_semantics_hand_case() -> None:
    # Prepare: 3x3, slip 0.3: intended move 0.7, each other action 0.1
    mdp = gridworld(3, slip=0.3)
    dense = mdp.dense()
    centre, corner = mdp.state_index(1, 1), mdp.state_index(0, 0)
    # Execute / Assert: from the centre, "up" reaches (0,1) w.p. 0.7 and each neighbour w.p. 0.1
    expected = np.zeros(9)
    expected[mdp.state_index(0, 1)] = 0.7
    expected[[mdp.state_index(1, 2), mdp.state_index(2, 1), mdp.state_index(1, 0)]] = 0.1
    np.testing.assert_allclose(dense[centre, UP], expected)
    # from the corner, "up" and "left" bump into walls: stay w.p. 0.7 + 0.1
    expected = np.zeros(9)
    expected[corner] = 0.8
    expected[mdp.state_index(0, 1)] = 0.1
    expected[mdp.state_index(1, 0)] = 0.1
    np.testing.assert_allclose(dense[corner, UP], expected)


def test_gridworld_deterministic_moves() -> None:
    mdp = gridworld(3)
    dense = mdp.dense()
    s = mdp.state_index(1, 1)
    assert dense[s, RIGHT, mdp.state_index(1, 2)] == 1.0
    assert dense[s, LEFT, mdp.state_index(1, 0)] == 1.0
    assert dense[s, DOWN, mdp.state_index(2, 1)] == 1.0


def test_obstacles_are_unreachable() -> None:
    # Prepare
    obstacles = [(1, 1), (1, 2), (3, 0)]
    mdp = gridworld(5, obstacles=obstacles, slip=0.25)
    obs_idx = [mdp.state_index(*o) for o in obstacles]
    free = np.setdiff1d(np.arange(25), obs_idx)
    dense = mdp.dense()
    # Execute: mass flowing into obstacles from free cells, and visitation of a uniform policy
    inflow = dense[free][:, :, obs_idx].sum()
    visits = state_visitation(mdp, np.full((25, 4), 0.25), 30)
    # Assert
    assert inflow == 0.0
    assert np.all(mdp.p0[obs_idx] == 0.0)
    np.testing.assert_allclose(visits[obs_idx], 0.0)
    assert np.all(mdp.true_reward[obs_idx] < 0)


def test_gridworld_reward_bump_values() -> None:
    # 5x5: width max(1, 0.5) = 1; goal default (4, 4)
    mdp = gridworld(5)
    goal = mdp.state_index(4, 4)
    assert mdp.true_reward.argmax() == goal
    assert mdp.true_reward[goal] == pytest.approx(1.0)
    assert mdp.true_reward[mdp.state_index(3, 4)] == pytest.approx(np.exp(-0.5))
    assert mdp.true_reward[mdp.state_index(3, 3)] == pytest.approx(np.exp(-1.0))
    np.testing.assert_array_equal(mdp.goal_states, [goal])
    assert not mdp.terminal.any()
    np.testing.assert_array_equal(mdp.coords[7], [1.0, 2.0])


def test_gridworld_terminal_goals_and_uniform_start() -> None:
    mdp = gridworld(4, goals=[(0, 3)], terminal_goals=True, start="uniform", obstacles=[(2, 2)])
    goal = mdp.state_index(0, 3)
    dense = mdp.dense()
    assert mdp.terminal[goal] and mdp.terminal.sum() == 1
    np.testing.assert_array_equal(dense[goal, :, goal], 1.0)
    assert mdp.true_reward[goal] == 1.0
    assert mdp.true_reward[mdp.state_index(0, 0)] == 0.0
    # uniform over the 14 free non-goal cells
    assert mdp.p0[goal] == 0.0 and mdp.p0[mdp.state_index(2, 2)] == 0.0
    np.testing.assert_allclose(mdp.p0[mdp.p0 > 0], 1.0 / 14.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"slip": 1.5},
        {"goals": [(5, 5)]},
        {"goals": [(1, 1)], "obstacles": [(1, 1)]},
        {"start": "random"},
    ],
)
def test_gridworld_rejects_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        gridworld(4, **kwargs)


# ---------------------------------------------------------------- client variants


def test_variants_none_and_demos_are_identical_copies() -> None:
    base = {"size": 5, "slip": 0.1}
    for kind in ("none", "demos"):
        variants = client_variants(base, 3, kind, 0.0, seed=0)
        ref = gridworld(**base)
        assert len(variants) == 3
        for mdp in variants:
            assert (mdp.transitions != ref.transitions).nnz == 0
            np.testing.assert_array_equal(mdp.true_reward, ref.true_reward)
            assert mdp.meta["variant"] == kind


def test_goal_shift_displacements_average_to_zero() -> None:
    # Prepare: centred goal so that no clipping happens
    base = {"size": 11, "goals": [(5, 5)]}
    # Execute
    variants = client_variants(base, 6, "goal-shift", 2.0, seed=3)
    goals = np.array([v.meta["goals"][0] for v in variants])
    # Assert
    shifts = goals - np.array([5.0, 5.0])
    np.testing.assert_allclose(shifts.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(shifts, axis=1), 2.0)
    for v, g in zip(variants, goals, strict=True):
        cell = np.rint(g).astype(int)
        assert v.true_reward.argmax() == v.state_index(*cell)
        assert v.true_reward.max() < 1.0 or np.allclose(g, cell)
    assert len({tuple(np.rint(g)) for g in goals}) > 1


def test_goal_shift_is_seeded() -> None:
    base = {"size": 9, "goals": [(4, 4)]}
    a = client_variants(base, 4, "goal-shift", 1.5, seed=7)
    b = client_variants(base, 4, "goal-shift", 1.5, seed=7)
    c = client_variants(base, 4, "goal-shift", 1.5, seed=8)
    assert [x.meta["goals"] for x in a] == [x.meta["goals"] for x in b]
    assert [x.meta["goals"] for x in a] != [x.meta["goals"] for x in c]


def test_slip_variants_spread_from_zero_to_strength() -> None:
    variants = client_variants({"size": 4}, 5, "slip", 0.4, seed=0)
    slips = [v.meta["slip"] for v in variants]
    np.testing.assert_allclose(slips, [0.0, 0.1, 0.2, 0.3, 0.4])
    # client 0 deterministic, client 4: intended move w.p. 0.6 from the centre of the grid
    s = variants[4].state_index(1, 1)
    assert variants[4].dense()[s, RIGHT, variants[4].state_index(1, 2)] == pytest.approx(0.6)
    assert variants[0].dense()[s, RIGHT, variants[0].state_index(1, 2)] == 1.0


def test_layout_variants_keep_start_and_goal_connected() -> None:
    # Prepare
    base = {"size": 8}
    # Execute
    variants = client_variants(base, 5, "layout", 0.35, seed=11)
    again = client_variants(base, 5, "layout", 0.35, seed=11)
    # Assert
    layouts = []
    for v, w in zip(variants, again, strict=True):
        obstacles = {tuple(o) for o in v.meta["obstacles"]}
        layouts.append(frozenset(obstacles))
        assert len(obstacles) == round(0.35 * 64)
        assert (0, 0) not in obstacles and (7, 7) not in obstacles
        assert (7, 7) in _reachable(8, 8, obstacles, (0, 0))
        assert v.meta["obstacles"] == w.meta["obstacles"]
    assert len(set(layouts)) == 5


def test_layout_with_uniform_start_connects_all_free_cells() -> None:
    variants = client_variants({"size": 6, "start": "uniform"}, 3, "layout", 0.3, seed=2)
    for v in variants:
        obstacles = {tuple(o) for o in v.meta["obstacles"]}
        free = {(r, c) for r in range(6) for c in range(6)} - obstacles
        assert _reachable(6, 6, obstacles, (5, 5)) == free


@pytest.mark.parametrize(("kind", "strength"), [("warp", 1.0), ("layout", 0.6), ("slip", 1.5)])
def test_client_variants_rejects_bad_arguments(kind: str, strength: float) -> None:
    with pytest.raises(ValueError):
        client_variants({"size": 5}, 3, kind, strength, seed=0)


# ---------------------------------------------------------------- demonstrations


def test_deterministic_policy_gives_the_exact_path() -> None:
    # Prepare: always move right on a 1x4 corridor
    mdp = gridworld((1, 4), goals=[(0, 3)])
    policy = np.zeros((4, 4))
    policy[:, RIGHT] = 1.0
    # Execute
    demos = sample_demonstrations(mdp, policy, 3, np.random.default_rng(0), horizon=6)
    # Assert
    np.testing.assert_array_equal(demos.states, np.tile([0, 1, 2, 3, 3, 3], (3, 1)))
    np.testing.assert_array_equal(demos.actions, RIGHT)
    np.testing.assert_array_equal(demos.visitation_counts(), [1, 1, 1, 3])


def test_demonstrations_stay_in_absorbing_terminals() -> None:
    mdp = gridworld(3, terminal_goals=True, slip=0.3)
    demos = expert_demonstrations(mdp, 200, seed=1, horizon=12)
    goal = int(mdp.goal_states[0])
    reached = demos.states == goal
    first = np.where(reached.any(axis=1), reached.argmax(axis=1), 12)
    after = np.arange(12)[None, :] >= first[:, None]
    assert reached.any()
    np.testing.assert_array_equal(reached, after)


def test_visitation_counts_sum_to_horizon_and_match_expectation() -> None:
    # Prepare
    mdp = gridworld(4, slip=0.2)
    policy = np.full((16, 4), 0.25)
    # Execute
    demos = sample_demonstrations(mdp, policy, 20_000, np.random.default_rng(5), horizon=7)
    counts = demos.visitation_counts()
    # Assert: exact sum, and law of large numbers against the forward pass
    assert counts.sum() == pytest.approx(7.0)
    np.testing.assert_allclose(counts, state_visitation(mdp, policy, 7), atol=0.05)
    assert demos.visitation_counts(0.5).sum() == pytest.approx(sum(0.5**t for t in range(7)))


def test_demonstrations_are_seeded() -> None:
    mdp = gridworld(5, slip=0.1)
    a = expert_demonstrations(mdp, 10, seed=4)
    b = expert_demonstrations(mdp, 10, seed=4)
    c = expert_demonstrations(mdp, 10, seed=5)
    np.testing.assert_array_equal(a.states, b.states)
    np.testing.assert_array_equal(a.actions, b.actions)
    assert not np.array_equal(a.states, c.states)
    assert a.states.shape == (10, mdp.horizon)


def test_sampling_rejects_bad_policy_and_demos() -> None:
    mdp = gridworld(3)
    with pytest.raises(ValueError, match="sum to 1"):
        sample_demonstrations(mdp, np.full((9, 4), 0.3), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="shape"):
        sample_demonstrations(mdp, np.full((9, 3), 1 / 3), 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="states"):
        Demonstrations(np.array([[0, 9]]), np.array([[0, 0]]), num_states=9)
