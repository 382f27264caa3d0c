"""Federated partitioning of a training pool with flwr-datasets partitioners (no hub access)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from fedot.data._checks import check_int

__all__ = ["PARTITION_KINDS", "partition_indices"]

logger = logging.getLogger(__name__)

PARTITION_KINDS: tuple[str, ...] = ("iid", "dirichlet", "pathological", "shard", "natural")
"""Every partitioning scheme accepted by :func:`partition_indices`."""


def _natural(groups: np.ndarray | None, num_partitions: int, n: int) -> list[np.ndarray]:
    """Give partition ``p`` the samples of the ``p``-th smallest group id."""
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
    """Build the flwr-datasets partitioner for ``kind`` (imported lazily: it is slow to import)."""
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
    check_int("num_partitions", num_partitions, 1, n)
    check_int("seed", seed, 0)
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be a finite number > 0, got alpha={alpha!r}")
    check_int("min_size", min_size, 0)
    check_int("classes_per_client", classes_per_client, 1)
    check_int("shards_per_client", shards_per_client, 1)
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
