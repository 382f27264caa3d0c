"""In-memory containers for datasets, client partitions and the offline error type."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ArrayDataset", "ClientData", "DatasetUnavailableError", "LoadedDataset"]


class DatasetUnavailableError(RuntimeError):
    """A dataset could not be obtained, typically because the Hugging Face Hub is unreachable."""


@dataclass(frozen=True)
class ArrayDataset:
    """Features and targets held as numpy arrays.

    Parameters
    ----------
    x : numpy.ndarray
        Float32 features of shape ``(n, *input_shape)``.
    y : numpy.ndarray
        Int64 class labels of shape ``(n,)`` for classification, or float32 targets of shape
        ``(n,)`` for regression.

    Notes
    -----
    The dataclass is frozen but the arrays are ordinary (writable) numpy arrays; they may be
    shared with a memoised result of :func:`fedot.data.federated_split`, so do not modify
    them in place.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        """Check that features and targets have the same number of samples."""
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x and y must have the same number of samples, got x.shape={self.x.shape} "
                f"and y.shape={self.y.shape}"
            )

    def __len__(self) -> int:
        """Return the number of samples."""
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> ArrayDataset:
        """Return the samples at positions ``idx``.

        Parameters
        ----------
        idx : numpy.ndarray
            Integer indices (or a boolean mask) into this dataset.

        Returns
        -------
        ArrayDataset
            A new dataset holding copies of the selected rows.
        """
        idx = np.asarray(idx)
        if idx.dtype != np.bool_:
            idx = idx.astype(np.int64, copy=False)
        return ArrayDataset(x=self.x[idx], y=self.y[idx])


@dataclass(frozen=True)
class LoadedDataset:
    """A dataset split into a training pool (to partition among clients) and a global test set.

    Parameters
    ----------
    name : str
        Dataset name, one of :data:`fedot.data.DATASETS`.
    task : {"classification", "regression"}
        Learning task.
    input_shape : tuple of int
        Per-sample shape of ``x``, e.g. ``(1, 8, 8)`` for digits or ``(40,)`` for mnist1d.
    num_classes : int
        Number of classes for classification, number of outputs (1) for regression.
    train : ArrayDataset
        Pool that is partitioned among the clients.
    test : ArrayDataset
        The server's held-out global test set.
    groups : numpy.ndarray or None, optional
        Natural client id of every training sample (only for ``synthetic-regression``).
    """

    name: str
    task: Literal["classification", "regression"]
    input_shape: tuple[int, ...]
    num_classes: int
    train: ArrayDataset
    test: ArrayDataset
    groups: np.ndarray | None = None


@dataclass(frozen=True)
class ClientData:
    """One client's local data.

    Parameters
    ----------
    partition_id : int
        Index of the partition the client holds.
    train : ArrayDataset
        Local training data (never empty).
    test : ArrayDataset
        Local evaluation data (may be empty for tiny partitions).
    """

    partition_id: int
    train: ArrayDataset
    test: ArrayDataset
