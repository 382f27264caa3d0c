from __future__ import annotations

import numpy as np
import pytest

from fedot.data.toy2d import NUM_MODES, TOY2D, mode_labels_by_angle, sample_toy2d, split_by_mode


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("name", TOY2D)
def test_sample_shapes_labels_and_determinism(name: str) -> None:
    x, labels = sample_toy2d(name, 501, _rng(1))
    x2, labels2 = sample_toy2d(name, 501, _rng(1))
    x3, _ = sample_toy2d(name, 501, _rng(2))
    assert x.shape == (501, 2) and x.dtype == np.float32
    assert labels.shape == (501,) and labels.dtype == np.int64
    assert set(np.unique(labels)) == set(range(NUM_MODES[name]))
    assert np.array_equal(x, x2) and np.array_equal(labels, labels2)
    assert not np.array_equal(x, x3)
    assert np.all(np.abs(x) < 5.0)


def test_eight_gaussians_labels_match_their_centres() -> None:
    x, labels = sample_toy2d("8gaussians", 4000, _rng(0))
    angles = 2 * np.pi * np.arange(8) / 8
    centres = 4 / 1.414 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    for k in range(8):
        pts = x[labels == k]
        assert np.allclose(pts.mean(0), centres[k], atol=0.06)
        assert np.allclose(pts.std(0), 0.5 / 1.414, atol=0.04)


def test_checkerboard_labels_are_squares_of_side_two() -> None:
    x, labels = sample_toy2d("checkerboard", 4000, _rng(0))
    cells = np.floor(x / 2).astype(int)  # integer cell coordinates in [-2, 1]^2
    for k in range(8):
        assert len({tuple(c) for c in cells[labels == k]}) == 1
    # filled cells alternate like a checkerboard: (column + row) is even for every point
    assert np.all((cells[:, 0] + cells[:, 1]) % 2 == 0)


def test_circles_and_moons_labels() -> None:
    x, labels = sample_toy2d("circles", 2000, _rng(0))
    radius = np.linalg.norm(x, axis=1)
    assert np.allclose(np.median(radius[labels == 0]), 3.0, atol=0.1)
    assert np.allclose(np.median(radius[labels == 1]), 1.5, atol=0.1)
    x, labels = sample_toy2d("moons", 2000, _rng(0))
    assert x[labels == 0, 1].mean() > x[labels == 1, 1].mean()  # label 0 is the upper moon


def test_spirals_are_point_reflections_of_each_other() -> None:
    x, labels = sample_toy2d("spirals", 6000, _rng(0))
    a, b = x[labels == 0], x[labels == 1]
    r_a, r_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    assert abs(np.median(r_a) - np.median(r_b)) < 0.1
    assert np.allclose(a.mean(0), -b.mean(0), atol=0.1)


def test_sample_toy2d_errors() -> None:
    with pytest.raises(ValueError, match="unknown"):
        sample_toy2d("swissroll", 10, _rng())
    with pytest.raises(ValueError):
        sample_toy2d("moons", 0, _rng())


def test_mode_labels_by_angle_by_hand() -> None:
    degrees = np.deg2rad([10.0, 100.0, 190.0, 280.0, 350.0])
    x = 2.0 * np.stack([np.cos(degrees), np.sin(degrees)], axis=1)
    assert mode_labels_by_angle(x, 4).tolist() == [0, 1, 2, 3, 3]
    assert mode_labels_by_angle(x, 2).tolist() == [0, 0, 1, 1, 1]
    assert mode_labels_by_angle(x, 4, offset=np.pi / 4).tolist() == [3, 0, 1, 2, 3]
    assert mode_labels_by_angle(x, 1).tolist() == [0] * 5
    with pytest.raises(ValueError):
        mode_labels_by_angle(np.zeros((3, 3)), 2)


def _check_partition(parts: list[np.ndarray], n: int, clients: int) -> None:
    assert len(parts) == clients
    assert all(len(p) > 0 and p.dtype == np.int64 for p in parts)
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def test_mode_split_deals_modes_round_robin() -> None:
    labels = np.repeat(np.arange(8), 5)
    parts = split_by_mode(labels, 3, kind="mode", rng=_rng())
    _check_partition(parts, 40, 3)
    assert [sorted(set(labels[p].tolist())) for p in parts] == [[0, 3, 6], [1, 4, 7], [2, 5]]


def test_mode_split_with_fewer_modes_than_clients_groups_clients() -> None:
    labels = np.array([0] * 10 + [1] * 9)
    parts = split_by_mode(labels, 5, kind="mode", rng=_rng(3))
    _check_partition(parts, 19, 5)
    modes = [set(labels[p].tolist()) for p in parts]
    assert modes == [{0}, {0}, {0}, {1}, {1}]  # array_split of 5 clients into 2 groups: 3 + 2
    assert [len(p) for p in parts] == [4, 3, 3, 5, 4]


def test_dirichlet_split_skew_depends_on_alpha() -> None:
    x, labels = sample_toy2d("8gaussians", 4000, _rng(0))

    def mean_modes_per_client(alpha: float) -> float:
        parts = split_by_mode(labels, 4, kind="dirichlet", alpha=alpha, rng=_rng(5))
        _check_partition(parts, 4000, 4)
        # count the modes holding at least 5% of the client's data
        return float(
            np.mean([np.sum(np.bincount(labels[p], minlength=8) >= 0.05 * len(p)) for p in parts])
        )

    assert mean_modes_per_client(0.1) < 4 < mean_modes_per_client(100.0)
    assert mean_modes_per_client(100.0) == 8.0
    a = split_by_mode(labels, 4, kind="dirichlet", alpha=0.5, rng=_rng(9))
    b = split_by_mode(labels, 4, kind="dirichlet", alpha=0.5, rng=_rng(9))
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_iid_split_sizes() -> None:
    parts = split_by_mode(np.zeros(10, dtype=int), 3, kind="iid", rng=_rng())
    _check_partition(parts, 10, 3)
    assert sorted(len(p) for p in parts) == [3, 3, 4]


def test_impossible_splits_raise() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        split_by_mode(np.zeros(2, dtype=int), 3, kind="iid", rng=_rng())
    with pytest.raises(ValueError, match="empty"):  # mode 1 has 1 sample but a group of 2 clients
        split_by_mode(np.array([0, 0, 0, 1]), 4, kind="mode", rng=_rng())
    with pytest.raises(ValueError, match="Dirichlet"):
        split_by_mode(
            np.array([0, 0, 1, 1, 2]), 5, kind="dirichlet", alpha=0.01, rng=_rng(), max_tries=3
        )
    with pytest.raises(ValueError, match="unknown split kind"):
        split_by_mode(np.zeros(4, dtype=int), 2, kind="shard", rng=_rng())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="alpha"):
        split_by_mode(np.zeros(4, dtype=int), 2, kind="dirichlet", alpha=0.0, rng=_rng())
