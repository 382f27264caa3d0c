"""Shared fixtures for the fedot.learning tests."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits


@pytest.fixture(scope="session")
def digits_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sklearn digits scaled to [0, 1] as (n, 1, 8, 8) images, fixed 80/20 split."""
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(x))
    cut = int(0.8 * len(x))
    train_idx, test_idx = order[:cut], order[cut:]
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


@pytest.fixture(scope="session")
def linear_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free regression data y = X w (no intercept)."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(256, 5)).astype(np.float32)
    w = np.array([1.5, -2.0, 0.5, 0.0, 3.0], dtype=np.float32)
    return x, x @ w, w
