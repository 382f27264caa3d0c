"""Reward fusion: measure maps, barycenter invariants on rewards, the translation test, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from fedot.learning.irl import pearson
from fedot.learning.reward_fusion import (
    average_rewards,
    fuse_rewards,
    measure_to_reward,
    reward_to_measure,
)

SHAPE = (15, 15)
ROWS, COLS = np.divmod(np.arange(SHAPE[0] * SHAPE[1]), SHAPE[1])


def bump_reward(centre: tuple[float, float], width: float = 1.5) -> np.ndarray:
    return np.exp(-((ROWS - centre[0]) ** 2 + (COLS - centre[1]) ** 2) / (2 * width**2))


def peak(r: np.ndarray) -> tuple[int, int]:
    i = int(np.argmax(r))
    return int(ROWS[i]), int(COLS[i])


@pytest.mark.parametrize("kind", ["softmax", "shift", "minmax"])
def test_measure_maps_are_probability_vectors_that_invert_up_to_affine(kind: str) -> None:
    # Prepare
    r = 3.0 * bump_reward((7, 4)) - 2.0
    # Execute
    rho = reward_to_measure(r, kind=kind, tau=0.7)
    back = measure_to_reward(rho, kind=kind, tau=0.7, location=float(r.mean()),
                             scale=float(r.std()))
    # Assert: strictly positive, sums to 1, inverse recovers r (same mean/std, correlation 1)
    assert np.all(rho > 0) and rho.sum() == pytest.approx(1.0)
    assert back.mean() == pytest.approx(r.mean()) and back.std() == pytest.approx(r.std())
    np.testing.assert_allclose(back, r, atol=1e-9)


def test_constant_reward_maps_to_uniform() -> None:
    # Execute
    rho = reward_to_measure(np.full(10, 4.0))
    # Assert
    np.testing.assert_allclose(rho, np.full(10, 0.1))


@pytest.mark.parametrize("method", ["convolutional", "sinkhorn_log", "ibp"])
def test_identical_rewards_fuse_to_the_same_reward(method: str) -> None:
    # Prepare
    r = bump_reward((9, 5))
    # Execute
    res = fuse_rewards(np.stack([r, r, r]), [1, 2, 3], grid_shape=SHAPE, reg=0.002,
                       method=method)
    # Assert: same peak, near-perfect correlation, same mean and scale as the inputs
    assert peak(res.reward) == (9, 5)
    assert pearson(res.reward, r) > 0.98
    assert res.reward.mean() == pytest.approx(r.mean()) and res.reward.std() == pytest.approx(r.std())
    assert res.solver.converged


def test_weight_e_k_returns_client_k() -> None:
    # Prepare
    rewards = np.stack([bump_reward((3, 3)), bump_reward((11, 10)), bump_reward((3, 12))])
    # Execute
    res = fuse_rewards(rewards, [0.0, 1.0, 0.0], grid_shape=SHAPE, reg=0.002)
    # Assert
    assert peak(res.reward) == (11, 10)
    assert pearson(res.reward, rewards[1]) > 0.98


def test_translation_barycenter_keeps_one_peak_at_the_mean_shift_average_smears() -> None:
    # Prepare: four clients see the goal displaced by ±3 cells around (7, 7)
    centres = [(4, 7), (10, 7), (7, 4), (7, 10)]
    rewards = np.stack([bump_reward(c) for c in centres])
    truth = bump_reward((7, 7))
    # Execute
    fused = fuse_rewards(rewards, grid_shape=SHAPE, reg=0.002).reward
    averaged = average_rewards(rewards)
    # Assert: the barycenter peaks at the mean goal and correlates with the unshifted reward;
    # the average peaks at the shifted goals, with a dip at the mean goal (a ring of four bumps)
    assert peak(fused) == (7, 7)
    assert pearson(fused, truth) > 0.9
    assert pearson(averaged, truth) < pearson(fused, truth) - 0.3
    assert peak(averaged) in centres
    assert averaged.reshape(SHAPE)[7, 7] < 0.6 * averaged.max()


def test_coords_and_grid_solvers_agree() -> None:
    # Prepare
    rewards = np.stack([bump_reward((4, 4)), bump_reward((10, 9))])
    coords = np.stack([ROWS, COLS], axis=1).astype(float)
    # Execute
    conv = fuse_rewards(rewards, [0.3, 0.7], grid_shape=SHAPE, reg=0.01)
    dense = fuse_rewards(rewards, [0.3, 0.7], coords=coords, reg=0.01, method="ibp")
    # Assert
    np.testing.assert_allclose(conv.measure, dense.measure, atol=1e-10)
    np.testing.assert_allclose(conv.reward, dense.reward, atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_reward_is_refused_before_the_solver(bad: float) -> None:
    # Prepare
    rewards = np.stack([bump_reward((4, 4)), bump_reward((10, 9))])
    rewards[1, 17] = bad
    # Execute / Assert
    with pytest.raises(ValueError, match=r"clients \[1\]"):
        fuse_rewards(rewards, grid_shape=SHAPE)


def test_bad_arguments_are_named() -> None:
    # Prepare
    rewards = np.stack([bump_reward((4, 4)), bump_reward((10, 9))])
    # Execute / Assert
    with pytest.raises(ValueError, match="grid_shape"):
        fuse_rewards(rewards, grid_shape=(4, 4))
    with pytest.raises(ValueError, match="coords or grid_shape"):
        fuse_rewards(rewards)
    with pytest.raises(ValueError, match="weights"):
        fuse_rewards(rewards, [1.0, -1.0], grid_shape=SHAPE)
