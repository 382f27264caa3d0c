"""Shared helpers for the fedot.fl (Flower adapter) tests: real flwr Messages, a stub Grid."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.common.constant import ErrorCode
from flwr.supercore.task_identity import TaskIdentity

from fedot.fl import keys


@pytest.fixture(autouse=True)
def task_identity() -> Iterator[None]:
    """Give the process the task identity Message() needs outside a Flower runtime."""
    saved = (TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id)
    TaskIdentity.run_id = TaskIdentity.node_id = TaskIdentity.task_id = 1
    yield
    TaskIdentity._run_id, TaskIdentity._node_id, TaskIdentity._task_id = saved


def array_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Wrap numpy arrays (kept in the given key order) into an ArrayRecord."""
    return ArrayRecord({name: Array(np.asarray(value)) for name, value in arrays.items()})


def _outgoing(node_id: int, message_type: str = "train") -> Message:
    return Message(RecordDict({keys.CONFIG: ConfigRecord({keys.SERVER_ROUND: 1})}), node_id,
                   message_type)


def make_reply(
    arrays: dict[str, np.ndarray] | None,
    metrics: dict,
    *,
    node_id: int,
    partition_id: int | None,
    error: str | None = None,
    message_type: str = "train",
) -> Message:
    """Build a real flwr reply Message as a fedot client would send it.

    ``arrays=None`` leaves out the ArrayRecord (evaluate replies), ``partition_id=None`` leaves out
    the ``client`` ConfigRecord, and ``error`` turns the reply into a Flower error reply.
    """
    msg = _outgoing(node_id, message_type)
    if error is not None:
        reply = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=error),
                        reply_to=msg)
    else:
        content = RecordDict({keys.METRICS: MetricRecord(dict(metrics))})
        if partition_id is not None:
            content[keys.CLIENT] = ConfigRecord({keys.PARTITION_ID: partition_id})
        if arrays is not None:
            content[keys.ARRAYS] = array_record(arrays)
        reply = Message(content, reply_to=msg)
    reply.metadata.__dict__["_src_node_id"] = node_id
    return reply


def make_content_reply(content: RecordDict, *, node_id: int) -> Message:
    """Build a reply with hand-made content (for malformed record layouts)."""
    reply = Message(content, reply_to=_outgoing(node_id))
    reply.metadata.__dict__["_src_node_id"] = node_id
    return reply


class StubGrid:
    """The part of flwr's Grid that FedAvg's configure_* use: the connected node ids."""

    def __init__(self, node_ids: list[int]) -> None:
        self.node_ids = list(node_ids)

    def get_node_ids(self) -> list[int]:
        return list(self.node_ids)


@pytest.fixture
def global_arrays() -> dict[str, np.ndarray]:
    """A tiny global model: float32 weight and bias, a 1-d int64 buffer (all float32-exact).

    The buffer is 1-d on purpose: 0-d int arrays hit the aggregation bug in test_fl_aggregate.
    """
    return {
        "w": np.array([[1.0, -2.0, 0.5], [0.25, 4.0, -1.0]], dtype=np.float32),
        "b": np.array([0.5, -0.5], dtype=np.float32),
        "n": np.array([3, 40], dtype=np.int64),
    }
