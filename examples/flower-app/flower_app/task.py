"""Model and data of the example: an MLP on real MNIST (mnist-5k, 5,000 images shipped offline)."""

from functools import lru_cache

import torch

from fedot.data import federated_split


def make_model() -> torch.nn.Module:
    """Build the 784-64-10 MLP (seeded: every node builds the same initial weights)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 64), torch.nn.ReLU(),
                               torch.nn.Linear(64, 10))


@lru_cache
def load_partition(partition_id: int, num_partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return one client's share of mnist-5k's 4,000 training images (Dirichlet 0.5 label skew)."""
    data, parts = federated_split("mnist-5k", seed=0, num_partitions=num_partitions,
                                  kind="dirichlet", alpha=0.5)
    idx = parts[partition_id]
    return torch.as_tensor(data.train.x[idx]), torch.as_tensor(data.train.y[idx])


@lru_cache
def load_test() -> tuple[torch.Tensor, torch.Tensor]:
    """Return mnist-5k's held-out test images (server-side evaluation)."""
    data, _ = federated_split("mnist-5k", seed=0, num_partitions=1, kind="iid")
    return torch.as_tensor(data.test.x), torch.as_tensor(data.test.y)
