"""Weighted averaging of ArrayRecords: numpy-equal results, dtypes kept, weights validated."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import array_record

from fedot.fl.aggregate import normalise_weights, weighted_average
from fedot.fl.task import to_arrays
from fedot.learning import build_model


def as_numpy(record) -> dict[str, np.ndarray]:
    return {name: array.numpy() for name, array in record.items()}


def test_normalise_weights_hand_computed() -> None:
    # Prepare
    weights = [1, 3, 4]
    # Execute
    out = normalise_weights(weights)
    # Assert
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [0.125, 0.375, 0.5])


def test_normalise_weights_allows_some_zeros() -> None:
    # Prepare
    weights = [0.0, 2.0, 0.0, 6.0]
    # Execute
    out = normalise_weights(weights)
    # Assert
    np.testing.assert_array_equal(out, [0.0, 0.25, 0.0, 0.75])


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([], "no weights"),
        ([1.0, -1.0], "finite and >= 0"),
        ([1.0, float("nan")], "finite and >= 0"),
        ([1.0, float("inf")], "finite and >= 0"),
        ([0, 0, 0], "at least one must be > 0"),
    ],
    ids=["empty", "negative", "nan", "inf", "all-zero"],
)
def test_normalise_weights_rejects_bad_weights(weights: list[float], match: str) -> None:
    # Prepare / Execute / Assert
    with pytest.raises(ValueError, match=match):
        normalise_weights(weights)


def test_normalise_weights_large_finite_weights_still_sum_to_one() -> None:
    # Prepare
    weights = [1e308, 1e308]
    # Execute
    with np.errstate(over="ignore"):
        out = normalise_weights(weights)
    # Assert
    np.testing.assert_allclose(out, [0.5, 0.5])


def test_float32_weighted_mean_matches_numpy() -> None:
    # Prepare
    rng = np.random.default_rng(42)
    weights = [5, 17, 3, 40]
    arrays = [
        {"w": rng.normal(size=(4, 3)).astype(np.float32),
         "b": rng.normal(size=3).astype(np.float32)}
        for _ in weights
    ]
    records = [array_record(a) for a in arrays]
    # Execute
    out = as_numpy(weighted_average(records, weights))
    # Assert
    assert list(out) == ["w", "b"]
    for name in ("w", "b"):
        expected = np.average(np.stack([a[name] for a in arrays]), axis=0, weights=weights)
        assert out[name].dtype == np.float32
        assert out[name].shape == arrays[0][name].shape
        np.testing.assert_allclose(out[name], expected, rtol=1e-6, atol=1e-6)


def test_float32_hand_computed_example() -> None:
    # Prepare: (3 * [0, 2] + 1 * [4, 6]) / 4 = [1, 3]
    a = array_record({"x": np.array([0.0, 2.0], np.float32)})
    b = array_record({"x": np.array([4.0, 6.0], np.float32)})
    # Execute
    out = weighted_average([a, b], [3, 1])["x"].numpy()
    # Assert
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([1.0, 3.0], np.float32))


def test_float64_arrays_stay_float64() -> None:
    # Prepare
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([3.0, -2.0, 0.0])
    # Execute
    out = weighted_average([array_record({"x": a}), array_record({"x": b})], [1, 2])["x"].numpy()
    # Assert
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, [7.0 / 3.0, -2.0 / 3.0, 1.0], rtol=1e-15)


def test_int64_buffers_stay_int64_and_are_rounded() -> None:
    # Prepare: weights 1:2 -> (1*10 + 2*13) / 3 = 12 exactly; (1*0 + 2*1) / 3 = 0.67 -> 1;
    # (1*100 + 2*101) / 3 = 100.67 -> 101
    a = {"v": np.array([10, 0, 100], np.int64)}
    b = {"v": np.array([13, 1, 101], np.int64)}
    # Execute
    out = as_numpy(weighted_average([array_record(a), array_record(b)], [1, 2]))
    # Assert
    assert out["v"].dtype == np.int64
    np.testing.assert_array_equal(out["v"], [12, 1, 101])
    reference = np.rint(np.average(np.stack([a["v"], b["v"]]), axis=0, weights=[1, 2]))
    np.testing.assert_array_equal(out["v"], reference.astype(np.int64))


def test_mixed_dtypes_in_one_record() -> None:
    # Prepare
    a = {"w": np.array([1.0, 2.0], np.float32), "n": np.array([10], np.int64)}
    b = {"w": np.array([3.0, 6.0], np.float32), "n": np.array([20], np.int64)}
    # Execute
    out = as_numpy(weighted_average([array_record(a), array_record(b)], [1, 1]))
    # Assert
    assert {k: v.dtype for k, v in out.items()} == {"w": np.float32, "n": np.int64}
    np.testing.assert_array_equal(out["w"], np.array([2.0, 4.0], np.float32))
    np.testing.assert_array_equal(out["n"], [15])


def test_zero_dim_float_array_keeps_shape() -> None:
    # Prepare: (1 * 2 + 3 * 6) / 4 = 5
    a = array_record({"s": np.array(2.0, np.float32)})
    b = array_record({"s": np.array(6.0, np.float32)})
    # Execute
    out = weighted_average([a, b], [1, 3])["s"].numpy()
    # Assert
    assert out.shape == () and out.dtype == np.float32
    assert float(out) == 5.0


ZERO_DIM_INT_BUG = (
    "aggregate.py:79 `np.rint(acc).astype(...)` turns a 0-d int array into a numpy scalar, "
    "and Array(scalar) raises TypeError: BatchNorm's num_batches_tracked (0-d int64) cannot "
    "be aggregated, so FedAvg of the 'cnn' model crashes"
)


def test_zero_dim_int64_counter_is_averaged_and_rounded() -> None:
    # Prepare: (1 * 4 + 2 * 5) / 3 = 4.67 -> 5
    a = array_record({"num_batches_tracked": np.array(4, np.int64)})
    b = array_record({"num_batches_tracked": np.array(5, np.int64)})
    # Execute
    out = weighted_average([a, b], [1, 2])["num_batches_tracked"].numpy()
    # Assert
    assert out.shape == () and out.dtype == np.int64
    assert int(out) == 5


def test_cnn_state_with_batchnorm_can_be_averaged() -> None:
    # Prepare
    record = to_arrays(build_model("cnn", (1, 8, 8), 4, hidden=8, seed=0))
    # Execute
    out = weighted_average([record, record], [1, 1])
    # Assert
    assert {k: (a.shape, a.dtype) for k, a in out.items()} == {
        k: (a.shape, a.dtype) for k, a in record.items()
    }


@pytest.mark.parametrize("weights", [[1, 1], [1, 3], [2, 2, 4], [8, 8, 8, 8]])
def test_identical_dyadic_inputs_come_back_bitwise(weights: list[int]) -> None:
    # Prepare: values and normalised weights exactly representable in float32
    x = np.array([[0.5, -1.25, 3.0], [1024.0, -0.0078125, 0.0]], np.float32)
    n = np.array([123, 0, -7], np.int64)
    records = [array_record({"x": x, "n": n}) for _ in weights]
    # Execute
    out = as_numpy(weighted_average(records, weights))
    # Assert
    assert out["x"].dtype == np.float32
    np.testing.assert_array_equal(out["x"], x)
    assert out["n"].dtype == np.int64
    np.testing.assert_array_equal(out["n"], n)


def test_identical_random_inputs_come_back_within_float32_rounding() -> None:
    # Prepare: arbitrary weights, not exactly representable as float32 fractions
    rng = np.random.default_rng(7)
    x = rng.normal(size=200).astype(np.float32)
    weights = [3, 7, 11, 13, 17]
    records = [array_record({"x": x}) for _ in weights]
    # Execute
    out = weighted_average(records, weights)["x"].numpy()
    # Assert: a few float32 ulps at most
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x, rtol=4 * np.finfo(np.float32).eps, atol=0)


def test_single_record_returns_itself() -> None:
    # Prepare
    rng = np.random.default_rng(3)
    arrays = {"w": rng.normal(size=(3, 2)).astype(np.float32), "n": np.array([9, 2], np.int64)}
    # Execute
    out = as_numpy(weighted_average([array_record(arrays)], [17.5]))
    # Assert
    assert list(out) == ["w", "n"]
    np.testing.assert_array_equal(out["w"], arrays["w"])
    assert out["w"].dtype == np.float32
    assert out["n"].dtype == np.int64
    np.testing.assert_array_equal(out["n"], [9, 2])


def test_zero_weight_record_does_not_contribute() -> None:
    # Prepare
    a = array_record({"x": np.array([1.0, 2.0], np.float32)})
    b = array_record({"x": np.array([100.0, 200.0], np.float32)})
    # Execute
    out = weighted_average([a, b], [5, 0])["x"].numpy()
    # Assert
    np.testing.assert_array_equal(out, np.array([1.0, 2.0], np.float32))


def test_inputs_are_not_modified() -> None:
    # Prepare
    x = np.array([1.0, 2.0], np.float32)
    y = np.array([3.0, 5.0], np.float32)
    a, b = array_record({"x": x}), array_record({"x": y})
    # Execute
    weighted_average([a, b], [1, 1])
    # Assert
    np.testing.assert_array_equal(a["x"].numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(b["x"].numpy(), [3.0, 5.0])


@pytest.mark.parametrize(("n_records", "n_weights"), [(2, 1), (1, 2), (0, 1)])
def test_mismatched_lengths_raise(n_records: int, n_weights: int) -> None:
    # Prepare
    records = [array_record({"x": np.zeros(2, np.float32)}) for _ in range(n_records)]
    weights = [1.0] * n_weights
    # Execute / Assert
    with pytest.raises(ValueError, match=f"{n_records} records but {n_weights} weights"):
        weighted_average(records, weights)


def test_bad_weights_propagate_from_normalise() -> None:
    # Prepare
    records = [array_record({"x": np.zeros(2, np.float32)}) for _ in range(2)]
    # Execute / Assert
    with pytest.raises(ValueError, match="at least one must be > 0"):
        weighted_average(records, [0, 0])
