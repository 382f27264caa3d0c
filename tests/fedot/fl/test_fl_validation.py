"""Reply screening: every malformed reply is set aside with a reason, good replies never are."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import array_record, make_content_reply, make_reply
from flwr.app import MetricRecord, RecordDict

from fedot.fl import keys
from fedot.fl.validation import Rejection, array_specs, check_content, screen_replies

GOOD = {
    "w": np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32),
    "b": np.array([0.5, -0.5], dtype=np.float32),
    "n": np.array(7, dtype=np.int64),
}
SPEC = {"w": ((2, 2), "float32"), "b": ((2,), "float32"), "n": ((), "int64")}


def good_metrics(n: int = 10, loss: float = 0.5) -> dict:
    return {keys.NUM_EXAMPLES: n, "loss": loss}


def with_array(name: str, value: np.ndarray) -> dict[str, np.ndarray]:
    return {**GOOD, name: value}


def test_array_specs_reads_shape_and_dtype() -> None:
    # Prepare
    record = array_record(GOOD)
    # Execute
    spec = array_specs(record)
    # Assert
    assert spec == SPEC


def test_good_train_reply_passes() -> None:
    # Prepare
    reply = make_reply(GOOD, good_metrics(), node_id=3, partition_id=0)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    screen = screen_replies([reply], spec=SPEC)
    # Assert
    assert reason is None
    assert screen.valid == [reply]
    assert screen.rejected == []


def test_list_valued_and_integer_metrics_are_accepted() -> None:
    # Prepare
    metrics = {keys.NUM_EXAMPLES: 4, "loss": 1, "per-class": [0.5, 1.0, 2.0]}
    reply = make_reply(GOOD, metrics, node_id=3, partition_id=0)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    # Assert
    assert reason is None


def test_flower_error_reply_is_rejected_with_its_reason() -> None:
    # Prepare
    reply = make_reply(None, {}, node_id=11, partition_id=None, error="boom in fit")
    good = make_reply(GOOD, good_metrics(), node_id=12, partition_id=1)
    # Execute
    screen = screen_replies([reply, good], spec=SPEC)
    # Assert
    assert screen.valid == [good]
    assert len(screen.rejected) == 1
    rejection = screen.rejected[0]
    assert rejection.node_id == 11
    assert rejection.partition_id is None
    assert "client error" in rejection.reason
    assert "boom in fit" in rejection.reason


# (metrics, words the reason must contain)
BAD_METRICS = {
    "no-weight": ({"loss": 0.1}, ["num-examples", "missing"]),
    "zero-weight": ({keys.NUM_EXAMPLES: 0, "loss": 0.1}, ["num-examples", "0", "> 0"]),
    "negative-weight": ({keys.NUM_EXAMPLES: -5, "loss": 0.1}, ["num-examples", "-5"]),
    "nan-weight": ({keys.NUM_EXAMPLES: math.nan, "loss": 0.1}, ["num-examples", "nan"]),
    "inf-weight": ({keys.NUM_EXAMPLES: math.inf, "loss": 0.1}, ["num-examples", "inf"]),
    "list-weight": ({keys.NUM_EXAMPLES: [3, 4], "loss": 0.1}, ["num-examples", "scalar", "list"]),
    "nan-metric": ({keys.NUM_EXAMPLES: 10, "loss": math.nan}, ["loss", "not finite"]),
    "inf-in-list-metric": (
        {keys.NUM_EXAMPLES: 10, "loss": 0.1, "per-class": [0.1, -math.inf]},
        ["per-class", "not finite"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_METRICS))
def test_bad_metrics_are_rejected_with_reason(case: str) -> None:
    # Prepare
    metrics, words = BAD_METRICS[case]
    bad = make_reply(GOOD, metrics, node_id=21, partition_id=4)
    good = make_reply(GOOD, good_metrics(), node_id=22, partition_id=5)
    # Execute
    reason = check_content(bad.content, spec=SPEC)
    screen = screen_replies([bad, good], spec=SPEC)
    # Assert
    assert reason is not None
    for word in words:
        assert word in reason
    assert screen.valid == [good]
    assert screen.rejected == [Rejection(21, 4, reason)]


def test_missing_metric_record_is_rejected() -> None:
    # Prepare
    content = RecordDict({keys.ARRAYS: array_record(GOOD)})
    reply = make_content_reply(content, node_id=5)
    # Execute
    reason = check_content(content, spec=SPEC)
    screen = screen_replies([reply], spec=SPEC)
    # Assert
    assert reason == "expected exactly one MetricRecord, found 0"
    assert screen.valid == []
    assert screen.rejected == [Rejection(5, None, reason)]


def test_two_metric_records_are_rejected() -> None:
    # Prepare
    content = RecordDict(
        {
            keys.ARRAYS: array_record(GOOD),
            keys.METRICS: MetricRecord(good_metrics()),
            "extra-metrics": MetricRecord(good_metrics()),
        }
    )
    # Execute
    reason = check_content(content, spec=SPEC)
    # Assert
    assert reason == "expected exactly one MetricRecord, found 2"


def test_missing_array_record_is_rejected_in_train() -> None:
    # Prepare
    reply = make_reply(None, good_metrics(), node_id=6, partition_id=2)
    # Execute
    screen = screen_replies([reply], spec=SPEC)
    # Assert
    assert screen.valid == []
    assert screen.rejected == [
        Rejection(6, 2, "expected exactly one ArrayRecord, found 0")
    ]


def test_two_array_records_are_rejected() -> None:
    # Prepare
    content = RecordDict(
        {
            keys.ARRAYS: array_record(GOOD),
            "arrays-copy": array_record(GOOD),
            keys.METRICS: MetricRecord(good_metrics()),
        }
    )
    # Execute
    reason = check_content(content, spec=SPEC)
    # Assert
    assert reason == "expected exactly one ArrayRecord, found 2"


def test_missing_array_key_is_named() -> None:
    # Prepare
    arrays = {k: v for k, v in GOOD.items() if k != "b"}
    reply = make_reply(arrays, good_metrics(), node_id=7, partition_id=3)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    # Assert
    assert reason is not None
    assert "missing ['b']" in reason
    assert "unexpected []" in reason


def test_extra_array_key_is_named() -> None:
    # Prepare
    arrays = {**GOOD, "z": np.zeros(2, dtype=np.float32)}
    reply = make_reply(arrays, good_metrics(), node_id=7, partition_id=3)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    # Assert
    assert reason is not None
    assert "missing []" in reason
    assert "unexpected ['z']" in reason


def test_renamed_array_key_reports_both_sides() -> None:
    # Prepare
    arrays = {("bias" if k == "b" else k): v for k, v in GOOD.items()}
    reply = make_reply(arrays, good_metrics(), node_id=7, partition_id=3)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    # Assert
    assert reason is not None
    assert "missing ['b']" in reason
    assert "unexpected ['bias']" in reason


BAD_ARRAYS = {
    "wrong-shape": (with_array("w", np.zeros((2, 3), np.float32)), ["'w'", "(2, 3)", "(2, 2)"]),
    "transposed-shape": (with_array("b", np.zeros((2, 1), np.float32)), ["'b'", "shape"]),
    "float64": (with_array("w", np.zeros((2, 2), np.float64)), ["'w'", "float64", "float32"]),
    "int-counter-as-float": (with_array("n", np.array(7.0, np.float32)), ["'n'", "int64"]),
    "nan": (with_array("w", np.array([[1, np.nan], [3, 4]], np.float32)), ["'w'", "non-finite"]),
    "inf": (with_array("b", np.array([np.inf, 0], np.float32)), ["'b'", "non-finite"]),
    "neg-inf": (with_array("b", np.array([0, -np.inf], np.float32)), ["'b'", "non-finite"]),
}


@pytest.mark.parametrize("case", sorted(BAD_ARRAYS))
def test_bad_arrays_are_rejected_with_reason(case: str) -> None:
    # Prepare
    arrays, words = BAD_ARRAYS[case]
    bad = make_reply(arrays, good_metrics(), node_id=31, partition_id=8)
    good = make_reply(GOOD, good_metrics(), node_id=32, partition_id=9)
    # Execute
    screen = screen_replies([bad, good], spec=SPEC)
    # Assert
    assert screen.valid == [good]
    assert len(screen.rejected) == 1
    rejection = screen.rejected[0]
    assert (rejection.node_id, rejection.partition_id) == (31, 8)
    for word in words:
        assert word in rejection.reason


def test_large_finite_values_are_not_rejected() -> None:
    # Prepare
    big = np.finfo(np.float32).max
    arrays = with_array("b", np.array([big, -big], np.float32))
    reply = make_reply(arrays, good_metrics(), node_id=1, partition_id=0)
    # Execute
    reason = check_content(reply.content, spec=SPEC)
    # Assert
    assert reason is None


def test_minority_metric_keys_are_set_aside() -> None:
    # Prepare
    replies = [
        make_reply(GOOD, good_metrics(), node_id=41, partition_id=0),
        make_reply(GOOD, {**good_metrics(), "acc": 0.9}, node_id=42, partition_id=1),
        make_reply(GOOD, good_metrics(), node_id=43, partition_id=2),
    ]
    # Execute
    screen = screen_replies(replies, spec=SPEC)
    # Assert
    assert [m.metadata.src_node_id for m in screen.valid] == [41, 43]
    assert len(screen.rejected) == 1
    rejection = screen.rejected[0]
    assert (rejection.node_id, rejection.partition_id) == (42, 1)
    assert "metric keys" in rejection.reason
    assert "'acc'" in rejection.reason


def test_consistent_metric_keys_are_all_kept() -> None:
    # Prepare
    replies = [
        make_reply(GOOD, {**good_metrics(n), "acc": 0.5}, node_id=50 + n, partition_id=n)
        for n in (1, 2, 3)
    ]
    # Execute
    screen = screen_replies(replies, spec=SPEC)
    # Assert
    assert screen.valid == replies
    assert screen.rejected == []


def test_metric_key_tie_does_not_depend_on_arrival_order() -> None:
    # Prepare
    a = make_reply(GOOD, good_metrics(), node_id=61, partition_id=0)
    b = make_reply(GOOD, {**good_metrics(), "acc": 0.9}, node_id=62, partition_id=1)
    # Execute
    forward = screen_replies([a, b], spec=SPEC)
    backward = screen_replies([b, a], spec=SPEC)
    # Assert
    kept_forward = [m.metadata.src_node_id for m in forward.valid]
    kept_backward = [m.metadata.src_node_id for m in backward.valid]
    assert kept_forward == kept_backward


def test_valid_replies_are_sorted_by_partition_regardless_of_arrival() -> None:
    # Prepare: node ids deliberately in the opposite order to the partition ids
    pids = [3, 0, 4, 1, 2]
    replies = [
        make_reply(GOOD, good_metrics(), node_id=100 - pid, partition_id=pid) for pid in pids
    ]
    rng = np.random.default_rng(0)
    orders = [rng.permutation(len(replies)) for _ in range(3)]
    # Execute
    results = [screen_replies([replies[i] for i in order], spec=SPEC) for order in orders]
    # Assert
    for screen in results:
        partitions = [m.content[keys.CLIENT][keys.PARTITION_ID] for m in screen.valid]
        assert partitions == [0, 1, 2, 3, 4]
        assert [m.metadata.src_node_id for m in screen.valid] == [100, 99, 98, 97, 96]


def test_replies_without_partition_sort_first_then_by_node() -> None:
    # Prepare
    replies = [
        make_reply(GOOD, good_metrics(), node_id=9, partition_id=0),
        make_reply(GOOD, good_metrics(), node_id=8, partition_id=None),
        make_reply(GOOD, good_metrics(), node_id=7, partition_id=None),
    ]
    # Execute
    screen = screen_replies(replies, spec=SPEC)
    # Assert
    assert [m.metadata.src_node_id for m in screen.valid] == [7, 8, 9]


def test_evaluate_screening_ignores_arrays() -> None:
    # Prepare: spec=None; one reply without arrays, one with arrays that would fail a train check
    no_arrays = make_reply(None, good_metrics(), node_id=71, partition_id=1)
    odd_arrays = make_reply(
        {"other": np.array([np.nan], np.float64)}, good_metrics(), node_id=72, partition_id=0
    )
    # Execute
    screen = screen_replies([no_arrays, odd_arrays], spec=None)
    # Assert
    assert screen.rejected == []
    assert screen.valid == [odd_arrays, no_arrays]


def test_evaluate_screening_still_checks_metrics() -> None:
    # Prepare
    bad = make_reply(None, {keys.NUM_EXAMPLES: 0, "loss": 1.0}, node_id=81, partition_id=2)
    err = make_reply(None, {}, node_id=82, partition_id=None, error="oom")
    # Execute
    screen = screen_replies([bad, err], spec=None)
    # Assert
    assert screen.valid == []
    assert [(r.node_id, r.partition_id) for r in screen.rejected] == [(81, 2), (82, None)]
    assert "num-examples" in screen.rejected[0].reason
    assert "oom" in screen.rejected[1].reason


def test_custom_weight_key_is_used() -> None:
    # Prepare
    reply = make_reply(GOOD, {"weight": 2.0, "loss": 0.1}, node_id=1, partition_id=0)
    # Execute
    default_reason = check_content(reply.content, spec=SPEC)
    custom_reason = check_content(reply.content, spec=SPEC, weight_key="weight")
    # Assert
    assert default_reason is not None and "num-examples" in default_reason
    assert custom_reason is None


def test_rejection_as_dict() -> None:
    # Prepare
    rejection = Rejection(5, 2, "why")
    # Execute
    data = rejection.as_dict()
    # Assert
    assert data == {"node_id": 5, "partition_id": 2, "reason": "why"}
