"""The zero-copy, blocked aggregation path and the fused finiteness check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import make_reply
from flwr.app import Array, ArrayRecord

from fedot.fl import aggregate
from fedot.fl.aggregate import array_view, nonfinite_arrays, weighted_average, weighted_sum
from fedot.fl.validation import array_specs, check_content


@pytest.mark.parametrize(
    "value",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(12, dtype=np.float64).reshape(3, 4)),
        np.array(7, dtype=np.int64),
        np.zeros((0, 3), dtype=np.float32),
        (np.arange(6) + 1j).astype(np.complex64),
        np.array([True, False]),
    ],
    ids=["f32", "fortran-f64", "0d-int", "empty", "complex", "bool"],
)
def test_array_view_equals_numpy_and_is_read_only(value: np.ndarray) -> None:
    # Prepare
    array = Array(value)
    # Execute
    view = array_view(array)
    # Assert
    np.testing.assert_array_equal(view, array.numpy())
    assert view.dtype == value.dtype and view.shape == value.shape
    assert not view.flags.writeable


def test_blocked_sum_matches_numpy_across_chunk_boundaries(monkeypatch: pytest.MonkeyPatch) -> None:
    # Prepare: a chunk much smaller than the arrays, sizes not multiples of it
    monkeypatch.setattr(aggregate, "CHUNK", 7)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((5, 9)).astype(np.float32) for _ in range(4)]
    coef = rng.random(4)
    # Execute
    out = weighted_sum([ArrayRecord({"w": Array(a)}) for a in arrays], coef)["w"].numpy()
    # Assert
    expected = sum(c * a.astype(np.float64) for c, a in zip(coef, arrays, strict=True))
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-6)
    assert out.dtype == np.float32


def test_identical_inputs_come_back_bit_identical_for_any_weights() -> None:
    # Prepare
    value = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    records = [ArrayRecord({"w": Array(value)}) for _ in range(5)]
    # Execute
    out = weighted_average(records, [0.3, 1.7, 2.9, 0.11, 5.0])["w"].numpy()
    # Assert
    assert np.array_equal(out, value)


def test_nonfinite_arrays_names_the_bad_ones() -> None:
    record = ArrayRecord({"a": Array(np.array([1.0, np.inf])), "b": Array(np.ones(2)),
                          "n": Array(np.array([1, 2]))})
    assert nonfinite_arrays(record) == ["a"]


def test_payload_that_contradicts_its_metadata_is_rejected() -> None:
    # Prepare: metadata says (2,) float32, the payload holds 3 float32 values
    good = Array(np.zeros(2, dtype=np.float32))
    forged = Array(dtype=good.dtype, shape=good.shape, stype=good.stype,
                   data=Array(np.zeros(3, dtype=np.float32)).data)
    spec = array_specs(ArrayRecord({"w": good}))
    from flwr.app import MetricRecord, RecordDict

    content = RecordDict({"arrays": ArrayRecord({"w": forged}),
                          "metrics": MetricRecord({"num-examples": 1})})
    # Execute
    reason = check_content(content, spec=spec)
    # Assert
    assert reason is not None and "payload" in reason


def _strategy(linear: bool):
    from fedot.config import LocalConfig
    from fedot.fl.strategy import FedotStrategy

    cls = type("S", (FedotStrategy,), {"linear_aggregation": linear})
    strategy = cls(local=LocalConfig())
    strategy._spec = array_specs(ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))}))
    return strategy


@pytest.mark.parametrize("linear", [True, False], ids=["fused-check", "upfront-check"])
def test_nan_reply_is_set_aside_in_both_paths(linear: bool) -> None:
    # Prepare
    good = [make_reply({"w": np.full(3, v, np.float32)}, {"num-examples": 1}, node_id=n,
                       partition_id=n) for n, v in ((1, 1.0), (2, 3.0))]
    bad = make_reply({"w": np.array([1, np.nan, 2], np.float32)}, {"num-examples": 5},
                     node_id=3, partition_id=3)
    strategy = _strategy(linear)
    # Execute
    arrays, _ = strategy.aggregate_train(1, [good[0], bad, good[1]])
    # Assert
    np.testing.assert_array_equal(arrays["w"].numpy(), np.full(3, 2.0, np.float32))
    rejected = strategy.log.entry(1)["train_rejected"]
    assert [(r["node_id"], "non-finite" in r["reason"]) for r in rejected] == [(3, True)]


def test_overflow_of_finite_replies_raises() -> None:
    # Prepare: two finite float32 replies whose weighted mean overflows float32
    big = np.finfo(np.float32).max
    replies = [make_reply({"w": np.full(3, big, np.float32)}, {"num-examples": 1}, node_id=n,
                          partition_id=n) for n in (1, 2)]
    strategy = _strategy(True)
    strategy.aggregate_arrays = lambda r, c, w: (weighted_sum(  # type: ignore[method-assign]
        [next(iter(x.array_records.values())) for x in c], [1.0, 1.0]), {})
    # Execute / Assert
    with pytest.raises(FloatingPointError, match="overflow"):
        strategy.aggregate_train(1, replies)


def test_observed_availability_counts_each_round_once_without_the_nan_reply() -> None:
    import importlib

    from fedot.config import load_run_config

    # Prepare: FedAVOT learning q online; partition 2 replies NaN in round 1
    strategies = importlib.import_module("strategies").STRATEGIES
    cfg = load_run_config({"scheme": "fedavot", "clients": 3,
                           "participation.availability": "observed"})
    strategy = strategies["fedavot"].from_config(cfg)
    strategy.configure_clients(np.array([1, 1, 1]))
    strategy._spec = array_specs(ArrayRecord({"w": Array(np.zeros(3, dtype=np.float32))}))

    def replies(nan_partition: int | None) -> list:
        return [make_reply({"w": np.full(3, np.nan if n == nan_partition else 1.0, np.float32)},
                           {"num-examples": 1}, node_id=n + 1, partition_id=n) for n in range(3)]

    # Execute
    strategy.aggregate_train(1, replies(2))
    strategy.aggregate_train(2, replies(None))
    # Assert: one observation per round, of the subset actually aggregated
    dist = strategy.estimator.distribution()
    assert strategy.estimator.rounds == 2
    assert sorted(tuple(s.tolist()) for s in dist.subsets) == [(0, 1), (0, 1, 2)]
    assert strategy.log.entry(1)["aggregation"]["in_support"] is False  # nothing seen before it


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                           reason="needs CUDA"))],
)
def test_device_path_equals_the_host_path(device: str) -> None:
    # Arrange: mixed dtypes, an integer counter, a 0-d array
    rng = np.random.default_rng(3)
    records = [ArrayRecord({
        "w": Array(rng.standard_normal((33, 17)).astype(np.float32)),
        "h": Array(rng.standard_normal(9).astype(np.float16)),
        "d": Array(rng.standard_normal(5)),
        "n": Array(np.array(10 * i + 3, dtype=np.int64)),
    }) for i in range(5)]
    weights = [1.0, 2.0, 3.5, 0.25, 4.0]
    # Execute
    host = weighted_average(records, weights)
    moved = weighted_average(records, weights, device=device)
    # Assert: same dtypes and shapes; float64 accumulation on both sides
    for name in host:
        a, b = host[name].numpy(), moved[name].numpy()
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(b, a, rtol=1e-12 if a.dtype == np.float64 else 0, atol=0)
    same = [ArrayRecord({"w": Array(records[0]["w"].numpy())}) for _ in range(3)]
    out = weighted_average(same, [1, 5, 7], device=device)["w"].numpy()
    assert np.array_equal(out, records[0]["w"].numpy())  # identical inputs come back unchanged


def test_fortran_ordered_replies_are_averaged_element_by_element() -> None:
    # Arrange: the same values, one reply stored in Fortran order
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3))
    b = rng.standard_normal((4, 3))
    records = [ArrayRecord({"w": Array(np.asfortranarray(a))}), ArrayRecord({"w": Array(b)})]
    # Execute
    out = weighted_average(records, [1.0, 3.0])["w"].numpy()
    # Assert: against numpy on the logical arrays
    np.testing.assert_allclose(out, (a + 3 * b) / 4, rtol=1e-15)
