"""Tests of fedot.data partitioning, client splits, label counts and the distribution plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedot.data import (
    PARTITION_KINDS,
    ArrayDataset,
    LoadedDataset,
    client_split,
    federated_split,
    label_counts,
    load_dataset,
    partition_indices,
    plot_label_distribution,
)

LABEL_KINDS = ("iid", "dirichlet", "pathological", "shard")


@pytest.fixture(scope="module")
def digits() -> LoadedDataset:
    return load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def labels(digits: LoadedDataset) -> np.ndarray:
    return digits.train.y


def _entropy(counts: np.ndarray) -> np.ndarray:
    p = counts / counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.nansum(np.where(p > 0, p * np.log(p), 0.0), axis=1)


def _assert_disjoint(parts: list[np.ndarray]) -> np.ndarray:
    union = np.concatenate(parts)
    assert len(np.unique(union)) == len(union), "partitions overlap"
    return union


def test_partition_kinds() -> None:
    assert PARTITION_KINDS == ("iid", "dirichlet", "pathological", "shard", "natural")


@pytest.mark.parametrize("kind", LABEL_KINDS)
def test_partitions_are_deterministic_sorted_and_disjoint(labels: np.ndarray, kind: str) -> None:
    a = partition_indices(labels, kind=kind, num_partitions=10, seed=0)
    b = partition_indices(labels, kind=kind, num_partitions=10, seed=0)
    c = partition_indices(labels, kind=kind, num_partitions=10, seed=1)
    assert len(a) == 10
    for left, right in zip(a, b, strict=True):
        np.testing.assert_array_equal(left, right)
    assert any(not np.array_equal(left, right) for left, right in zip(a, c, strict=True))
    for part in a:
        assert part.dtype == np.int64
        assert len(part) > 0
        assert (np.diff(part) > 0).all()
        assert part.min() >= 0 and part.max() < len(labels)
    _assert_disjoint(a)


@pytest.mark.parametrize("kind", ["iid", "dirichlet", "pathological"])
def test_partitions_cover_every_sample(labels: np.ndarray, kind: str) -> None:
    parts = partition_indices(labels, kind=kind, num_partitions=10, seed=0)
    union = _assert_disjoint(parts)
    np.testing.assert_array_equal(np.sort(union), np.arange(len(labels)))


def test_iid_sizes_within_one_and_all_labels(labels: np.ndarray) -> None:
    parts = partition_indices(labels, kind="iid", num_partitions=7, seed=0)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert sum(sizes) == len(labels)
    assert (label_counts(labels, parts, 10) > 0).all()


def test_pathological_gives_exactly_two_labels(labels: np.ndarray) -> None:
    parts = partition_indices(
        labels, kind="pathological", num_partitions=10, seed=0, classes_per_client=2
    )
    for p, part in enumerate(parts):
        present = set(np.unique(labels[part]).tolist())
        assert len(present) == 2
        assert p in present  # first-deterministic: client p's first class is p


def test_pathological_three_classes(labels: np.ndarray) -> None:
    parts = partition_indices(
        labels, kind="pathological", num_partitions=10, seed=0, classes_per_client=3
    )
    assert all(len(np.unique(labels[part])) == 3 for part in parts)


def test_shard_equal_sizes_few_labels(labels: np.ndarray) -> None:
    parts = partition_indices(labels, kind="shard", num_partitions=10, seed=0, shards_per_client=2)
    shard_size = len(labels) // 20
    assert all(len(p) == 2 * shard_size for p in parts)
    union = _assert_disjoint(parts)
    assert len(labels) - len(union) < 20  # only the remainder of n / shard_size is dropped
    # a shard is smaller than a class, so it spans at most 2 labels: at most 4 per client
    assert all(len(np.unique(labels[p])) <= 4 for p in parts)


def test_dirichlet_small_alpha_is_more_skewed(labels: np.ndarray) -> None:
    def mean_entropy(alpha: float) -> float:
        parts = partition_indices(
            labels, kind="dirichlet", num_partitions=10, seed=0, alpha=alpha, min_size=5
        )
        return float(_entropy(label_counts(labels, parts, 10)).mean())

    skewed, uniform = mean_entropy(0.1), mean_entropy(100.0)
    assert skewed < uniform - 0.5
    assert uniform > 0.95 * np.log(10)


def test_dirichlet_respects_min_size(labels: np.ndarray) -> None:
    parts = partition_indices(
        labels, kind="dirichlet", num_partitions=10, seed=0, alpha=0.3, min_size=40
    )
    assert min(len(p) for p in parts) >= 40


def test_dirichlet_impossible_min_size_explains_fix() -> None:
    tiny = np.repeat(np.arange(3), 10)
    with pytest.raises(ValueError, match="min-size") as info:
        partition_indices(tiny, kind="dirichlet", num_partitions=10, seed=0, min_size=10)
    assert "alpha" in str(info.value)


def test_natural_partition_of_synthetic_regression() -> None:
    ds, parts = federated_split("synthetic-regression", seed=0, num_partitions=5, kind="natural")
    assert ds.groups is not None
    assert len(parts) == 5
    for p, part in enumerate(parts):
        np.testing.assert_array_equal(part, np.flatnonzero(ds.groups == p))
        assert len(part) == 100
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(len(ds.train)))


def test_natural_needs_matching_groups(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="groups"):
        partition_indices(labels, kind="natural", num_partitions=10, seed=0)
    groups = np.arange(len(labels)) % 4
    with pytest.raises(ValueError, match="num_partitions"):
        partition_indices(labels, kind="natural", num_partitions=3, seed=0, groups=groups)


def test_iid_works_on_regression_targets() -> None:
    ds, parts = federated_split("synthetic-regression", seed=0, num_partitions=4, kind="iid")
    assert ds.task == "regression"
    assert sorted(len(p) for p in parts) == [100, 100, 100, 100]


def test_regression_rejects_label_kinds() -> None:
    with pytest.raises(ValueError, match="kind='dirichlet'"):
        federated_split("synthetic-regression", seed=0, num_partitions=4, kind="dirichlet")


def test_federated_split_is_memoised_and_matches_parts() -> None:
    kwargs = {"seed": 2, "num_partitions": 5, "kind": "dirichlet", "alpha": 0.5}
    first = federated_split("wine", **kwargs)  # type: ignore[arg-type]
    assert federated_split("wine", **kwargs) is first  # type: ignore[arg-type]
    ds, parts = first
    expected = partition_indices(ds.train.y, kind="dirichlet", num_partitions=5, seed=2, alpha=0.5)
    for got, want in zip(parts, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"kind": "nope"}, "kind"),
        ({"num_partitions": 0}, "num_partitions"),
        ({"num_partitions": 10_000}, "num_partitions"),
        ({"alpha": 0.0}, "alpha"),
        ({"alpha": -1.0}, "alpha"),
        ({"kind": "pathological", "classes_per_client": 0}, "classes_per_client"),
        ({"kind": "pathological", "classes_per_client": 11}, "classes_per_client"),
        ({"kind": "shard", "shards_per_client": 1000}, "shards_per_client"),
        ({"min_size": -1}, "min_size"),
        ({"seed": -3}, "seed"),
    ],
)
def test_bad_partition_arguments(labels: np.ndarray, kwargs: dict[str, object], argument: str) -> None:
    args: dict[str, object] = {"kind": "dirichlet", "num_partitions": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=argument) as info:
        partition_indices(labels, **args)  # type: ignore[arg-type]
    assert repr(kwargs[argument]) in str(info.value)


def test_unknown_kind_lists_allowed(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="allowed: iid, dirichlet, pathological, shard, natural"):
        partition_indices(labels, kind="random", num_partitions=2, seed=0)


def _indexed_dataset(n: int) -> LoadedDataset:
    """A dataset whose feature equals the sample index, to trace rows through splits."""
    pool = ArrayDataset(np.arange(n, dtype=np.float32)[:, None], np.zeros(n, dtype=np.int64))
    return LoadedDataset("indexed", "classification", (1,), 1, pool, pool)


def test_client_split_disjoint_deterministic() -> None:
    ds = _indexed_dataset(200)
    part = np.arange(3, 200, 2)  # 99 samples
    a = client_split(ds, part, partition_id=4, local_test_fraction=0.2, seed=0)
    b = client_split(ds, part, partition_id=4, local_test_fraction=0.2, seed=0)
    c = client_split(ds, part, partition_id=5, local_test_fraction=0.2, seed=0)
    assert a.partition_id == 4
    train_ids, test_ids = a.train.x[:, 0].astype(int), a.test.x[:, 0].astype(int)
    assert len(test_ids) == 20 and len(train_ids) == 79
    assert not set(train_ids) & set(test_ids)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_ids, test_ids])), part)
    np.testing.assert_array_equal(a.test.x, b.test.x)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    assert not np.array_equal(a.test.x, c.test.x)


def test_client_split_tiny_and_zero_fraction() -> None:
    ds = _indexed_dataset(10)
    one = client_split(ds, np.array([7]), partition_id=0, local_test_fraction=0.5, seed=0)
    assert len(one.train) == 1 and len(one.test) == 0
    assert one.test.x.shape == (0, 1)
    two = client_split(ds, np.array([1, 2]), partition_id=0, local_test_fraction=0.9, seed=0)
    assert len(two.train) == 1 and len(two.test) == 1
    none = client_split(ds, np.arange(10), partition_id=0, local_test_fraction=0.0, seed=0)
    assert len(none.train) == 10 and len(none.test) == 0


@pytest.mark.parametrize(
    ("indices", "kwargs", "argument"),
    [
        (np.arange(5), {"local_test_fraction": 1.0}, "local_test_fraction"),
        (np.arange(5), {"partition_id": -1}, "partition_id"),
        (np.array([], dtype=np.int64), {}, "empty"),
        (np.array([3, 99]), {}, "indices"),
    ],
)
def test_client_split_bad_arguments(
    indices: np.ndarray, kwargs: dict[str, object], argument: str
) -> None:
    args: dict[str, object] = {"partition_id": 0, "local_test_fraction": 0.2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=argument):
        client_split(_indexed_dataset(10), indices, **args)  # type: ignore[arg-type]


def test_client_split_on_real_partition(digits: LoadedDataset) -> None:
    ds, parts = federated_split("digits", seed=0, num_partitions=10, kind="iid")
    data = client_split(ds, parts[3], partition_id=3, local_test_fraction=0.25, seed=0)
    assert len(data.train) + len(data.test) == len(parts[3])
    assert data.train.x.shape[1:] == (1, 8, 8)
    np.testing.assert_array_equal(ds.train.y, digits.train.y)


def test_label_counts(labels: np.ndarray) -> None:
    parts = partition_indices(labels, kind="pathological", num_partitions=10, seed=0)
    counts = label_counts(labels, parts, 10)
    assert counts.shape == (10, 10) and counts.dtype == np.int64
    np.testing.assert_array_equal(counts.sum(axis=1), [len(p) for p in parts])
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(labels, minlength=10))
    assert ((counts > 0).sum(axis=1) == 2).all()
    with pytest.raises(ValueError, match="num_classes"):
        label_counts(labels, parts, 5)


def test_plot_writes_png(labels: np.ndarray, tmp_path: Path) -> None:
    parts = partition_indices(labels, kind="dirichlet", num_partitions=10, seed=0)
    out = plot_label_distribution(
        label_counts(labels, parts, 10), tmp_path / "nested" / "dist.png", title="digits"
    )
    assert out == tmp_path / "nested" / "dist.png"
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000
    with pytest.raises(ValueError, match="counts"):
        plot_label_distribution(np.zeros(3), tmp_path / "bad.png")
