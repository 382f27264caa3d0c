"""FFM on 28×28 MNIST-5k: the data option, the velocity net and the FD feature extractor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fedot.config import load_run_config
from fedot.data import load_dataset
from fedot.fl.flow import flow_data, flow_models, mnist_feature_extractor
from fedot.fl.inline import load_apps
from fedot.learning.flow import PotentialConv28, VelocityConv28, frechet_distance, integrate
from fedot.learning.flow.features import train_feature_cnn


def _cfg(**overrides: object):  # noqa: ANN202
    _, _, defaults = load_apps()
    return load_run_config({**defaults, "scheme": "ffm", "clients": 4, "ffm.data": "mnist-5k",
                            "ffm.split": "dirichlet", "ffm.alpha": 0.3, **overrides})


def test_mnist_flow_data_is_28x28_in_minus_one_one_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: no socket may be opened while the data are built
    import socket

    from fedot.data import loaders

    def no_network(*_: object, **__: object) -> None:
        raise AssertionError("ffm.data='mnist-5k' must not open a socket")

    loaders._mnist5k_arrays.cache_clear()
    flow_data.cache_clear()
    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    cfg = _cfg(seed=2)
    # Execute
    data = flow_data(cfg, 4)
    # Assert: shapes, dtype and the [-1, 1] range (MNIST has both pure black and pure white pixels)
    assert data.sample_shape == (1, 28, 28)
    assert data.train.shape == (4000, 1, 28, 28) and data.test.shape == (1000, 1, 28, 28)
    assert data.train.dtype == np.float32
    both = np.concatenate([data.train, data.test])
    assert both.min() == -1.0 and both.max() == 1.0
    # 8-bit pixels mapped by p -> 2 p / 255 - 1: every value is on that grid
    grid = (both[:50] + 1.0) * 127.5
    assert np.allclose(grid, np.round(grid), atol=1e-3)
    # the held-out images are the dataset's test split, unseen by the clients
    ds = load_dataset("mnist-5k", seed=2, test_fraction=cfg.data.test_fraction)
    np.testing.assert_array_equal(data.test, ds.test.x * 2.0 - 1.0)
    # the clients partition the training pool, with label skew (not every client sees the same mix)
    idx = np.concatenate(data.parts)
    assert sorted(idx.tolist()) == list(range(4000))
    mixes = np.stack([np.bincount(data.modes[p], minlength=10) / len(p) for p in data.parts])
    assert np.abs(mixes - 0.1).max() > 0.1


def test_region_split_is_refused_for_mnist() -> None:
    with pytest.raises(ValueError, match="ffm.split='region'"):
        _cfg(**{"ffm.split": "region"})


def test_velocity_conv28_is_zero_at_init_seeded_and_shaped_like_its_input() -> None:
    # Prepare
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    a, b, c = VelocityConv28(8, seed=1), VelocityConv28(8, seed=1), VelocityConv28(8, seed=2)
    # Execute
    out = a(torch.rand(5), x)
    # Assert: zero-initialised output layer: the untrained flow leaves the noise where it is
    assert out.shape == x.shape and torch.count_nonzero(out) == 0
    assert torch.equal(integrate(a, x, steps=3).x, x)
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name
    assert not torch.equal(a.conv_in.weight, c.conv_in.weight)
    # once the output layer is non-zero the field depends on t and x
    torch.nn.init.normal_(a.conv_out.weight, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(a(0.1, x), a(0.9, x))
    assert PotentialConv28(8, seed=0)(x).shape == (5,)
    with pytest.raises(ValueError, match="28, 28"):
        a(0.5, torch.zeros(2, 1, 8, 8))


def test_flow_models_pick_the_28x28_nets() -> None:
    velocity, potential = flow_models(_cfg(**{"ffm.coupling": "got", "ffm.channels": 8}))
    assert isinstance(velocity, VelocityConv28) and isinstance(potential, PotentialConv28)


def test_feature_cnn_training_is_deterministic_for_a_seed() -> None:
    # Prepare: a small slice keeps this fast; the full extractor runs the same function
    ds = load_dataset("mnist-5k", seed=0)
    x, y = ds.train.x[:640] * 2.0 - 1.0, ds.train.y[:640]
    # Execute
    a = train_feature_cnn(x, y, seed=5, epochs=1)
    b = train_feature_cnn(x, y, seed=5, epochs=1)
    c = train_feature_cnn(x, y, seed=6, epochs=1)
    # Assert: same seed, bit-identical weights and features; another seed, other weights
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(p, q), name
    probe = torch.as_tensor(ds.test.x[:32] * 2.0 - 1.0)
    with torch.no_grad():
        assert torch.equal(a.features(probe), b.features(probe))
        assert a.features(probe).shape == (32, 64)
        assert not torch.equal(a.features(probe), c.features(probe))


def test_mnist_feature_extractor_is_cached_and_separates_real_from_noise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Prepare
    monkeypatch.setenv("FEDOT_CACHE_DIR", str(tmp_path))
    ds = load_dataset("mnist-5k", seed=1)
    test = ds.test.x[:400] * 2.0 - 1.0
    # Execute: the first call trains and caches, the second loads the cache
    first = mnist_feature_extractor(1)
    second = mnist_feature_extractor(1)
    # Assert: one cache file, identical features from the trained and the loaded classifier
    assert len(list(tmp_path.glob("mnist5k-features-cnn-seed1-*.pt"))) == 1
    np.testing.assert_array_equal(first(test), second(test))
    # a useful feature space: the classifier reads held-out MNIST well, and real training images
    # are far closer to the held-out ones than uniform noise or a blurred mean image is
    assert first.test_accuracy > 0.9
    real = frechet_distance(first(ds.train.x[:400] * 2.0 - 1.0), first(test))
    noise = np.random.default_rng(0).uniform(-1, 1, test.shape).astype(np.float32)
    mean_img = np.repeat(test.mean(0, keepdims=True), 400, axis=0)
    mean_img += 0.05 * np.random.default_rng(1).standard_normal(test.shape).astype(np.float32)
    assert real < 0.1 * frechet_distance(first(noise), first(test))
    assert real < 0.1 * frechet_distance(first(mean_img), first(test))


def test_ffm_mnist_experiment_mirrors_ffm_digits_on_mnist() -> None:
    from fedot.experiments import EXPERIMENTS

    exp, digits = EXPERIMENTS["ffm-mnist"], EXPERIMENTS["ffm-digits"]
    # the digits experiment's coupling arms and its centralised OT-CFM reference, three seeds
    wanted = ["vanilla", "lot", "got", "centralised OT-CFM"]
    assert [a.label for a in exp.arms] == wanted
    by_label = {a.label: dict(a.overrides) for a in digits.arms}
    assert [dict(a.overrides) for a in exp.arms] == [by_label[w] for w in wanted]
    assert tuple(exp.seeds) == (0, 1, 2) and tuple(exp.quick_seeds) == (0,)
    for arm in exp.arms:  # valid on mnist-5k, with the same Dirichlet label skew, quick included
        cfg = load_run_config({**exp.base, **arm.overrides})
        assert cfg.ffm.data == "mnist-5k" and cfg.ffm.nfe_list() == (1, 2, 3, 5, 10, 20, 100)
        if cfg.clients > 1:
            assert (cfg.clients, cfg.ffm.split, cfg.ffm.alpha) == (4, "dirichlet", 0.3)
        load_run_config({**exp.base, **exp.quick, **arm.overrides})
