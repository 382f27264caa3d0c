"""Screening of client replies before aggregation.

Every fedot strategy passes its replies through :func:`screen_replies`. A reply that carries a
Flower error, lacks a record or the weight, has a non-positive or non-finite weight, arrays with the
wrong keys, shapes or dtypes, or any non-finite value is *set aside* with a reason; the round goes on
with the rest. The global model therefore never becomes non-finite because of one client.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from flwr.app import ArrayRecord, Message, MetricRecord, RecordDict

from fedot.fl import keys
from fedot.fl.aggregate import array_view

__all__ = [
    "ArraySpec",
    "Rejection",
    "ReplyScreen",
    "array_specs",
    "check_content",
    "metrics_of",
    "partition_of",
    "screen_replies",
]

#: Expected (shape, dtype) of each array, keyed like the ArrayRecord.
ArraySpec = Mapping[str, tuple[tuple[int, ...], str]]


@dataclass(frozen=True)
class Rejection:
    """A reply that was set aside, with the node that sent it and why."""

    node_id: int
    partition_id: int | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict."""
        return {"node_id": self.node_id, "partition_id": self.partition_id, "reason": self.reason}


@dataclass(frozen=True)
class ReplyScreen:
    """Outcome of :func:`screen_replies`: the valid replies (sorted) and the rejections."""

    valid: list[Message]
    rejected: list[Rejection]


def array_specs(record: ArrayRecord) -> dict[str, tuple[tuple[int, ...], str]]:
    """Return ``{key: (shape, dtype)}`` of an ArrayRecord (no deserialisation)."""
    return {k: (tuple(a.shape), str(a.dtype)) for k, a in record.items()}


def metrics_of(content: RecordDict) -> MetricRecord:
    """Return a reply's (first) MetricRecord."""
    return next(iter(content.metric_records.values()))


def partition_of(content: RecordDict) -> int | None:
    """Return the partition id a client put in its reply's ``client`` ConfigRecord, if any."""
    record = content.config_records.get(keys.CLIENT)
    value = record.get(keys.PARTITION_ID) if record is not None else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: Largest accepted aggregation weight: ``num-examples`` is a count of local examples, and no client
#: holds more than this; a larger value can only be a bug or an attempt to dominate the average.
MAX_WEIGHT = 1e12


def _check_metrics(metrics: MetricRecord, weight_key: str) -> str | None:
    if weight_key not in metrics:
        return f"metric {weight_key!r} (the aggregation weight) is missing"
    weight = metrics[weight_key]
    if isinstance(weight, list):
        return f"weight {weight_key!r} must be a scalar, got a list"
    if not math.isfinite(weight) or weight <= 0:
        return f"weight {weight_key!r} = {weight!r} must be finite and > 0"
    if weight > MAX_WEIGHT:
        return f"weight {weight_key!r} = {weight!r} exceeds {MAX_WEIGHT:g} (not a plausible count)"
    for name, value in metrics.items():
        values = value if isinstance(value, list) else [value]
        if not all(math.isfinite(v) for v in values):
            return f"metric {name!r} is not finite ({value!r})"
    return None


def _check_arrays(arrays: ArrayRecord, spec: ArraySpec, check_finite: bool) -> str | None:
    missing = sorted(set(spec) - set(arrays))
    extra = sorted(set(arrays) - set(spec))
    if missing or extra:
        return f"array keys differ from the global model (missing {missing}, unexpected {extra})"
    views = {}
    for name, array in arrays.items():
        shape, dtype = spec[name]
        if tuple(array.shape) != shape:
            return f"array {name!r} has shape {tuple(array.shape)}, expected {shape}"
        if str(array.dtype) != dtype:
            return f"array {name!r} has dtype {array.dtype}, expected {dtype}"
        try:
            views[name] = array_view(array)  # the payload itself, not only the metadata
        except (ValueError, TypeError, OSError) as exc:
            return f"array {name!r} payload is unreadable ({exc})"
        if views[name].shape != shape or str(views[name].dtype) != dtype:
            got = f"{views[name].dtype}{views[name].shape}"
            return f"array {name!r} payload is {got}, expected {dtype}{shape}"
    if check_finite:
        for name, values in views.items():
            if values.dtype.kind in "fc" and not np.isfinite(values).all():
                return f"array {name!r} has non-finite values"
    return None


def check_content(
    content: RecordDict,
    *,
    spec: ArraySpec | None,
    weight_key: str = keys.NUM_EXAMPLES,
    check_finite: bool = True,
) -> str | None:
    """Return why a reply's content is unusable, or None if it is valid.

    Parameters
    ----------
    content : RecordDict
        The reply's content.
    spec : ArraySpec or None
        Expected arrays (train replies); None for evaluate replies, which must carry no arrays check.
    weight_key : str
        Name of the scalar weight in the MetricRecord.
    check_finite : bool
        Also scan every array for NaN/Inf. Strategies that aggregate linearly skip this pass and
        check the aggregate instead (a non-finite input always makes it non-finite), re-screening
        only when it is (:class:`~fedot.fl.strategy.FedotStrategy`).
    """
    metric_records = list(content.metric_records.values())
    if len(metric_records) != 1:
        return f"expected exactly one MetricRecord, found {len(metric_records)}"
    reason = _check_metrics(metric_records[0], weight_key)
    if reason is not None or spec is None:
        return reason
    array_records = list(content.array_records.values())
    if len(array_records) != 1:
        return f"expected exactly one ArrayRecord, found {len(array_records)}"
    return _check_arrays(array_records[0], spec, check_finite)


def screen_replies(
    replies: Iterable[Message],
    *,
    spec: ArraySpec | Callable[[RecordDict], ArraySpec | None] | None,
    weight_key: str = keys.NUM_EXAMPLES,
    check_finite: bool = True,
) -> ReplyScreen:
    """Split replies into valid ones and rejections, each rejection with node and reason.

    ``spec`` is the expected ``{key: (shape, dtype)}`` of every reply's arrays, or a function of
    the reply's content returning it (schemes that send each client a different architecture).

    Valid replies must also agree on their metric keys (Flower aggregates key by key); replies
    whose key set differs from the most common one are rejected. Valid replies come back sorted by
    partition id (then node id), so aggregation order, and hence floating-point results, do not
    depend on the order replies arrived in.
    """
    valid: list[Message] = []
    rejected: list[Rejection] = []
    for msg in replies:
        node = int(msg.metadata.src_node_id)
        if msg.has_error():
            rejected.append(Rejection(node, None, f"client error: {msg.error.reason}"))
            continue
        expected = spec(msg.content) if callable(spec) else spec
        reason = check_content(msg.content, spec=expected, weight_key=weight_key,
                               check_finite=check_finite)
        if reason is None:
            valid.append(msg)
        else:
            rejected.append(Rejection(node, partition_of(msg.content), reason))

    key_sets = [frozenset(metrics_of(m.content).keys()) for m in valid]
    if len(set(key_sets)) > 1:
        # most common key set; a tie goes to the lexicographically first sorted key list, so the
        # choice never depends on arrival order
        counts = Counter(key_sets)
        common = min(counts, key=lambda ks: (-counts[ks], sorted(ks)))
        kept = []
        for msg, ks in zip(valid, key_sets, strict=True):
            if ks == common:
                kept.append(msg)
            else:
                reason = f"metric keys {sorted(ks)} differ from the other replies' {sorted(common)}"
                node = int(msg.metadata.src_node_id)
                rejected.append(Rejection(node, partition_of(msg.content), reason))
        valid = kept

    def order(msg: Message) -> tuple[int, int]:
        pid = partition_of(msg.content)
        return (pid if pid is not None else -1, int(msg.metadata.src_node_id))

    return ReplyScreen(sorted(valid, key=order), rejected)
