"""Model <-> ArrayRecord conversion and seed derivation of fedot.fl.task."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import array_record
from torch import nn

from fedot.fl.task import ClientEnv, derive_seed, load_arrays, to_arrays


def bn_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))


def trained_bn_model() -> nn.Module:
    """A BatchNorm model whose running statistics moved (two training-mode batches)."""
    model = bn_model(0)
    gen = torch.Generator().manual_seed(1)
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 4, generator=gen) * 3 + 1)
    return model


def test_to_arrays_mirrors_the_state_dict() -> None:
    # Prepare
    model = trained_bn_model()
    state = model.state_dict()
    # Execute
    record = to_arrays(model)
    # Assert
    assert list(record) == list(state)
    for name, tensor in state.items():
        np.testing.assert_array_equal(record[name].numpy(), tensor.numpy())
        assert tuple(record[name].shape) == tuple(tensor.shape)
    assert record["1.num_batches_tracked"].dtype == "int64"
    assert tuple(record["1.num_batches_tracked"].shape) == ()
    assert int(record["1.num_batches_tracked"].numpy()) == 2
    assert record["0.weight"].dtype == "float32"


def test_to_arrays_is_a_copy() -> None:
    # Prepare
    model = trained_bn_model()
    record = to_arrays(model)
    before = record["0.weight"].numpy().copy()
    # Execute
    with torch.no_grad():
        model[0].weight.add_(1.0)
    # Assert
    np.testing.assert_array_equal(record["0.weight"].numpy(), before)


def test_round_trip_restores_state_including_batchnorm_buffers() -> None:
    # Prepare
    source = trained_bn_model()
    target = bn_model(123)
    assert not torch.equal(source[0].weight, target[0].weight)
    assert int(target[1].num_batches_tracked) == 0
    # Execute
    returned = load_arrays(target, to_arrays(source))
    # Assert
    assert returned is target
    src, dst = source.state_dict(), target.state_dict()
    assert list(src) == list(dst)
    for name in src:
        assert dst[name].dtype == src[name].dtype
        assert torch.equal(dst[name], src[name]), name
    assert dst["1.num_batches_tracked"].dtype == torch.int64
    assert int(dst["1.num_batches_tracked"]) == 2
    assert not torch.equal(dst["1.running_mean"], torch.zeros(3))  # stats really moved


def test_round_trip_gives_identical_outputs() -> None:
    # Prepare
    source = trained_bn_model().eval()
    target = bn_model(99).eval()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(2))
    # Execute
    load_arrays(target, to_arrays(source))
    # Assert
    with torch.no_grad():
        assert torch.equal(target(x), source(x))


def test_load_arrays_is_strict_about_keys() -> None:
    # Prepare
    record = to_arrays(trained_bn_model())
    partial = array_record({k: a.numpy() for k, a in record.items() if k != "1.running_var"})
    # Execute / Assert
    with pytest.raises(RuntimeError, match="running_var"):
        load_arrays(bn_model(0), partial)


def test_load_arrays_rejects_wrong_shapes() -> None:
    # Prepare
    arrays = {k: a.numpy() for k, a in to_arrays(trained_bn_model()).items()}
    arrays["0.weight"] = np.zeros((4, 3), np.float32)
    # Execute / Assert
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_arrays(bn_model(0), array_record(arrays))


def test_derive_seed_is_deterministic_and_63_bit() -> None:
    # Prepare
    args = [(0,), (0, 1), (7, 3, 2, 1), (2**31, 10**6, 99, 0)]
    # Execute
    first = [derive_seed(*a) for a in args]
    second = [derive_seed(*a) for a in args]
    # Assert
    assert first == second
    for seed in first:
        assert isinstance(seed, int)
        assert 0 <= seed < 2**63


def test_derive_seed_differs_across_parts() -> None:
    # Prepare: every (run seed, round, partition, stream) combination of a small grid
    combos = list(itertools.product(range(3), range(1, 4), range(4), range(2)))
    # Execute
    seeds = {derive_seed(*c) for c in combos}
    # Assert
    assert len(seeds) == len(combos)


def test_derive_seed_depends_on_part_order() -> None:
    # Prepare / Execute
    a = derive_seed(5, 1, 2)
    b = derive_seed(5, 2, 1)
    # Assert
    assert a != b


def test_derived_seeds_give_different_streams() -> None:
    # Prepare
    s1, s2 = derive_seed(0, 1, 0, 0), derive_seed(0, 1, 1, 0)
    # Execute
    x1 = np.random.default_rng(s1).random(4)
    x2 = np.random.default_rng(s2).random(4)
    # Assert
    assert not np.array_equal(x1, x2)


def test_client_env_seed_uses_run_seed_round_partition_stream() -> None:
    # Prepare: ClientEnv.seed only reads cfg.seed and partition_id
    env = ClientEnv(cfg=SimpleNamespace(seed=5), partition_id=2, num_partitions=4,
                    dataset=None, data=None, model=None, device=torch.device("cpu"))
    # Execute
    seeds = {(r, s): env.seed(r, s) for r in (1, 2) for s in (0, 1)}
    # Assert
    assert seeds[(1, 0)] == env.seed(1) == derive_seed(5, 1, 2, 0)
    assert seeds[(2, 1)] == derive_seed(5, 2, 2, 1)
    assert len(set(seeds.values())) == 4
