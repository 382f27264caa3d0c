"""Federated partitioning of a training pool with flwr-datasets partitioners (no hub access)."""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

import numpy as np

from fedot.data.containers import ArrayDataset, ClientData, LoadedDataset
from fedot.data.loaders import load_dataset

__all__ = [
    "PARTITION_KINDS",
    "client_split",
    "federated_split",
    "label_counts",
    "partition_indices",
]

logger = logging.getLogger(__name__)

PARTITION_KINDS: tuple[str, ...] = ("iid", "dirichlet", "pathological", "shard", "natural")
"""Every partitioning scheme accepted by :func:`partition_indices`."""

_REGRESSION_KINDS: tuple[str, ...] = ("iid", "natural")


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise ValueError unless ``low <= value (<= high)`` and value is an integer."""
    if not _is_int(value) or value < low or (high is not None and value > high):  # type: ignore[operator]
        allowed = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{name} must be {allowed}, got {name}={value!r}")


def _check_local_test_fraction(value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"local_test_fraction must be in [0, 1), got local_test_fraction={value!r}"
        )


def _natural(groups: np.ndarray | None, num_partitions: int, n: int) -> list[np.ndarray]:
    if groups is None:
        raise ValueError(
            "kind='natural' needs groups (a natural client id per sample); only datasets "
            "with natural clients (synthetic-regression) provide them"
        )
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},) like labels, got {groups.shape}")
    ids = np.unique(groups)
    if len(ids) != num_partitions:
        raise ValueError(
            f"kind='natural' needs num_partitions equal to the number of groups ({len(ids)}), "
            f"got num_partitions={num_partitions}"
        )
    return [np.flatnonzero(groups == g).astype(np.int64) for g in ids]


def _make_partitioner(
    kind: str,
    *,
    num_partitions: int,
    seed: int,
    alpha: float,
    classes_per_client: int,
    shards_per_client: int,
    min_size: int,
) -> Any:
    from flwr_datasets.partitioner import (
        DirichletPartitioner,
        IidPartitioner,
        PathologicalPartitioner,
        ShardPartitioner,
    )

    if kind == "iid":
        return IidPartitioner(num_partitions=num_partitions)
    if kind == "dirichlet":
        return DirichletPartitioner(
            num_partitions=num_partitions,
            partition_by="label",
            alpha=float(alpha),
            min_partition_size=int(min_size),
            self_balancing=False,
            shuffle=True,
            seed=seed,
        )
    if kind == "pathological":
        return PathologicalPartitioner(
            num_partitions=num_partitions,
            partition_by="label",
            num_classes_per_partition=int(classes_per_client),
            class_assignment_mode="first-deterministic",
            shuffle=True,
            seed=seed,
        )
    return ShardPartitioner(
        num_partitions=num_partitions,
        partition_by="label",
        num_shards_per_partition=int(shards_per_client),
        shuffle=True,
        seed=seed,
    )


def partition_indices(
    labels: np.ndarray,
    *,
    kind: str,
    num_partitions: int,
    seed: int,
    alpha: float = 0.5,
    classes_per_client: int = 2,
    shards_per_client: int = 2,
    min_size: int = 10,
    groups: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Split sample indices among clients.

    Parameters
    ----------
    labels : numpy.ndarray
        One label (or regression target, for ``iid``/``natural``) per sample, shape ``(n,)``.
    kind : str
        One of :data:`PARTITION_KINDS`: ``iid`` (equal random shares, sizes within 1),
        ``dirichlet`` (per-class Dirichlet(alpha) shares; disjoint, covers every sample),
        ``pathological`` (``classes_per_client`` labels per client, first one deterministic;
        covers every sample when ``num_partitions >= number of classes``), ``shard``
        (``shards_per_client`` label-sorted shards per client; equal sizes, the remainder of
        ``n`` over the shard size is dropped) or ``natural`` (client ``p`` gets the samples
        whose group is the ``p``-th smallest group id).
    num_partitions : int
        Number of clients, ``1 <= num_partitions <= n``.
    seed : int
        Seed of every random choice; same arguments, same partitions.
    alpha : float, optional
        Dirichlet concentration, > 0 (smaller is more skewed).
    classes_per_client : int, optional
        Labels per client for ``pathological``.
    shards_per_client : int, optional
        Shards per client for ``shard``.
    min_size : int, optional
        Minimum partition size for ``dirichlet`` (resampled up to 10 times).
    groups : numpy.ndarray or None, optional
        Natural client id per sample, required for ``natural``.

    Returns
    -------
    list of numpy.ndarray
        ``num_partitions`` sorted int64 index arrays into ``labels``; partitions are disjoint.

    Raises
    ------
    ValueError
        If an argument is invalid, or the Dirichlet sampling cannot reach ``min_size``.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    n = int(labels.size)
    if kind not in PARTITION_KINDS:
        raise ValueError(f"unknown kind={kind!r}; allowed: {', '.join(PARTITION_KINDS)}")
    _check_int("num_partitions", num_partitions, 1, n)
    _check_int("seed", seed, 0)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got alpha={alpha!r}")
    _check_int("min_size", min_size, 0)
    _check_int("classes_per_client", classes_per_client, 1)
    _check_int("shards_per_client", shards_per_client, 1)
    seed = int(seed)
    if kind == "natural":
        return _natural(groups, int(num_partitions), n)
    if kind == "pathological" and classes_per_client > len(np.unique(labels)):
        raise ValueError(
            f"classes_per_client must be <= the number of classes ({len(np.unique(labels))}), "
            f"got classes_per_client={classes_per_client}"
        )
    if kind == "shard" and num_partitions * shards_per_client > n:
        raise ValueError(
            f"shards_per_client * num_partitions must be <= the number of samples ({n}), got "
            f"shards_per_client={shards_per_client}, num_partitions={num_partitions}"
        )

    from datasets import Dataset

    table = Dataset.from_dict({"label": labels, "idx": np.arange(n, dtype=np.int64)})
    if kind == "iid":  # IidPartitioner cuts contiguous blocks: shuffle the rows first.
        table = table.select(np.random.default_rng(seed).permutation(n))
    partitioner = _make_partitioner(
        kind,
        num_partitions=int(num_partitions),
        seed=seed,
        alpha=float(alpha),
        classes_per_client=int(classes_per_client),
        shards_per_client=int(shards_per_client),
        min_size=int(min_size),
    )
    partitioner.dataset = table
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parts = [
                np.sort(np.asarray(partitioner.load_partition(p).with_format("numpy")["idx"]))
                for p in range(int(num_partitions))
            ]
        except ValueError as exc:
            if kind == "dirichlet" and "max number of attempts" in str(exc):
                raise ValueError(
                    f"Dirichlet partitioning could not give every one of {num_partitions} "
                    f"clients at least min_size={min_size} samples (alpha={alpha}, "
                    f"{n} samples) after 10 draws: lower partition.min-size or raise "
                    "partition.alpha (or use fewer clients)"
                ) from exc
            raise
    for w in caught:
        if not issubclass(w.category, FutureWarning):  # pyarrow null_placement: harmless
            logger.debug("%s partitioner: %s", kind, w.message)
    parts = [p.astype(np.int64, copy=False) for p in parts]
    used = sum(len(p) for p in parts)
    if used < n:
        logger.info("%s partitioning left %d of %d samples unassigned", kind, n - used, n)
    return parts


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
    _check_int("partition_id", partition_id, 0)
    _check_int("seed", seed, 0)
    _check_local_test_fraction(local_test_fraction)
    indices = np.asarray(indices, dtype=np.int64)
    n = int(indices.size)
    if n == 0:
        raise ValueError(f"partition {partition_id} is empty: a client needs at least one sample")
    if indices.min() < 0 or indices.max() >= len(dataset.train):
        raise ValueError(
            f"indices must lie in [0, {len(dataset.train)}) for partition {partition_id}"
        )
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
    _check_local_test_fraction(local_test_fraction)
    _check_int("num_partitions", num_partitions, 1)
    dataset = load_dataset(
        name, seed=seed, test_fraction=test_fraction, num_clients=int(num_partitions)
    )
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
    _check_int("num_classes", num_classes, 1)
    labels = np.asarray(labels)
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer)
        or labels.min() < 0
        or labels.max() >= num_classes
    ):
        raise ValueError(
            f"labels must be integers in [0, {num_classes}) for num_classes={num_classes}"
        )
    counts = np.zeros((len(partitions), int(num_classes)), dtype=np.int64)
    for row, idx in enumerate(partitions):
        counts[row] = np.bincount(labels[np.asarray(idx, dtype=np.int64)], minlength=num_classes)
    return counts
