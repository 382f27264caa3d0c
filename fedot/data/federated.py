"""Per-client views of a partitioned dataset: local splits, memoised splits, label counts."""

from __future__ import annotations

import functools

import numpy as np

from fedot.data._checks import check_int, check_local_test_fraction
from fedot.data.containers import ArrayDataset, ClientData, LoadedDataset
from fedot.data.loaders import load_dataset
from fedot.data.partition import partition_indices

__all__ = ["client_split", "federated_split", "label_counts"]

_REGRESSION_KINDS: tuple[str, ...] = ("iid", "natural")


def client_split(
    dataset: LoadedDataset,
    indices: np.ndarray,
    *,
    partition_id: int,
    local_test_fraction: float,
    seed: int,
) -> ClientData:
    """Split one partition of ``dataset.train`` into local train and test sets.

    Parameters
    ----------
    dataset : LoadedDataset
        Dataset whose training pool was partitioned.
    indices : numpy.ndarray
        The partition's indices into ``dataset.train``.
    partition_id : int
        Partition (client) id; together with ``seed`` it seeds the split.
    local_test_fraction : float
        Fraction of the partition kept for local evaluation, in [0, 1). At least one sample
        goes to the test set when the fraction is positive, and at least one stays in train.
    seed : int
        Run seed.

    Returns
    -------
    ClientData
        Disjoint local train (never empty) and test (empty if the partition has < 2 samples).
    """
    check_int("partition_id", partition_id, 0)
    check_int("seed", seed, 0)
    check_local_test_fraction(local_test_fraction)
    indices = np.asarray(indices, dtype=np.int64)
    n = int(indices.size)
    if n == 0:
        raise ValueError(f"partition {partition_id} is empty: a client needs at least one sample")
    if indices.min() < 0 or indices.max() >= len(dataset.train):
        raise ValueError(f"indices must lie in [0, {len(dataset.train)}) for partition {partition_id}")
    perm = np.random.default_rng([int(seed), int(partition_id)]).permutation(indices)
    n_test = 0
    if n >= 2 and local_test_fraction > 0:
        n_test = min(max(int(round(n * local_test_fraction)), 1), n - 1)
    test_idx, train_idx = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    train: ArrayDataset = dataset.train.subset(train_idx)
    test: ArrayDataset = dataset.train.subset(test_idx)
    return ClientData(partition_id=int(partition_id), train=train, test=test)


@functools.lru_cache(maxsize=8)
def federated_split(
    name: str,
    *,
    seed: int,
    num_partitions: int,
    kind: str,
    alpha: float = 0.5,
    classes_per_client: int = 2,
    shards_per_client: int = 2,
    min_size: int = 10,
    test_fraction: float = 0.2,
    local_test_fraction: float = 0.2,
) -> tuple[LoadedDataset, list[np.ndarray]]:
    """Load a dataset and partition its training pool, memoised per argument set.

    Parameters
    ----------
    name : str
        Dataset name, see :func:`fedot.data.load_dataset`.
    seed : int
        Seed of the dataset split and of the partitioning.
    num_partitions : int
        Number of clients (also the number of natural clients of synthetic-regression).
    kind : str
        Partitioning scheme, see :func:`partition_indices`; regression datasets accept only
        ``iid`` and ``natural``.
    alpha, classes_per_client, shards_per_client, min_size : optional
        Partitioner settings, see :func:`partition_indices`.
    test_fraction : float, optional
        Global test fraction, see :func:`fedot.data.load_dataset`.
    local_test_fraction : float, optional
        Validated here so a bad configuration fails early; the local split itself is done by
        :func:`client_split`.

    Returns
    -------
    tuple of (LoadedDataset, list of numpy.ndarray)
        The dataset and every partition's indices into ``dataset.train``. The result is
        cached and shared between callers: do not modify the arrays in place.
    """
    check_local_test_fraction(local_test_fraction)
    check_int("num_partitions", num_partitions, 1)
    dataset = load_dataset(name, seed=seed, test_fraction=test_fraction, num_clients=int(num_partitions))
    if dataset.task == "regression" and kind not in _REGRESSION_KINDS:
        raise ValueError(
            f"kind={kind!r} needs class labels; for the regression dataset {name!r} use one of: "
            f"{', '.join(_REGRESSION_KINDS)}"
        )
    parts = partition_indices(
        dataset.train.y,
        kind=kind,
        num_partitions=num_partitions,
        seed=seed,
        alpha=alpha,
        classes_per_client=classes_per_client,
        shards_per_client=shards_per_client,
        min_size=min_size,
        groups=dataset.groups,
    )
    return dataset, parts


def label_counts(labels: np.ndarray, partitions: list[np.ndarray], num_classes: int) -> np.ndarray:
    """Count the labels of every partition.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels in ``[0, num_classes)``, shape ``(n,)``.
    partitions : list of numpy.ndarray
        Index arrays into ``labels``.
    num_classes : int
        Number of classes.

    Returns
    -------
    numpy.ndarray
        Int64 array of shape ``(len(partitions), num_classes)``.
    """
    check_int("num_classes", num_classes, 1)
    labels = np.asarray(labels)
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= num_classes
    ):
        raise ValueError(f"labels must be integers in [0, {num_classes}) for num_classes={num_classes}")
    counts = np.zeros((len(partitions), int(num_classes)), dtype=np.int64)
    for row, idx in enumerate(partitions):
        counts[row] = np.bincount(labels[np.asarray(idx, dtype=np.int64)], minlength=num_classes)
    return counts
