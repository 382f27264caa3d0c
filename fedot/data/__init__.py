"""Datasets and federated partitioning for fedot (numpy, scikit-learn and flwr-datasets only).

Offline datasets (``digits``, ``wine``, ``breast-cancer``, ``mnist1d``, ``synthetic-regression``)
are generated or shipped locally; ``mnist``, ``fashion-mnist`` and ``cifar10`` come from the
Hugging Face Hub and raise :class:`DatasetUnavailableError` when it cannot be reached.
"""

from fedot.data.containers import ArrayDataset, ClientData, DatasetUnavailableError, LoadedDataset
from fedot.data.federated import client_split, federated_split, label_counts
from fedot.data.loaders import DATASETS, OFFLINE_DATASETS, load_dataset
from fedot.data.partition import PARTITION_KINDS, partition_indices
from fedot.data.plot import plot_label_distribution

__all__ = [
    "DATASETS",
    "OFFLINE_DATASETS",
    "PARTITION_KINDS",
    "ArrayDataset",
    "ClientData",
    "DatasetUnavailableError",
    "LoadedDataset",
    "client_split",
    "federated_split",
    "label_counts",
    "load_dataset",
    "partition_indices",
    "plot_label_distribution",
]
