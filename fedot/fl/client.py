"""Client-side message plumbing shared by every client task."""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from pydantic import ValidationError

from fedot.config import ConfigError, FaultConfig, LocalConfig, unflatten
from fedot.fl import keys
from fedot.fl.task import ClientEnv, node_partition

__all__ = [
    "describe", "describe_partition", "evaluate_split", "inject_fault", "reply", "round_settings",
]


def inject_fault(reply_msg: Message, fault: FaultConfig, partition_id: int) -> Message:
    """Corrupt a train reply as ``fault.*`` asks (tests only; a no-op unless configured).

    ``crash`` and ``slow`` act before training (see :func:`fault_before`); here the reply is
    altered: NaN/Inf in the first floating array, that array flattened and shortened (wrong
    shape), or a weight of 1e30.
    """
    if fault.kind == "none" or partition_id not in fault.targets():
        return reply_msg
    content = reply_msg.content
    if fault.kind in ("nan", "inf", "shape"):
        arrays = content[keys.ARRAYS]
        name = next(n for n in arrays if arrays[n].numpy().dtype.kind == "f")
        value = arrays[name].numpy().copy()
        if fault.kind == "shape":
            value = value.reshape(-1)[: max(1, value.size - 1)].copy()
        else:
            value.reshape(-1)[0] = np.nan if fault.kind == "nan" else np.inf
        arrays[name] = Array(value)
    elif fault.kind == "huge-weight":
        content[keys.METRICS][keys.NUM_EXAMPLES] = 1e30
    return reply_msg


def fault_before(fault: FaultConfig, partition_id: int) -> None:
    """Raise (``crash``) or sleep (``slow``) before training, for the targeted partitions."""
    if fault.kind == "none" or partition_id not in fault.targets():
        return
    if fault.kind == "crash":
        raise RuntimeError(f"injected crash (fault.kind='crash', partition {partition_id})")
    if fault.kind == "slow":
        time.sleep(fault.slow_seconds)


def evaluate_split(msg: Message) -> str:
    """Return the local split an evaluate message asks for (``"test"`` unless it says otherwise)."""
    split = msg.content[keys.CONFIG].get(keys.EVALUATE_SPLIT, "test")
    if split not in ("train", "test"):
        raise ConfigError(f"{keys.EVALUATE_SPLIT}={split!r}: must be 'train' or 'test'")
    return str(split)


def describe(msg: Message, env: ClientEnv, extra: Mapping[str, float] | None = None) -> Message:
    """Reply to a ``query`` with the client's identity and local data sizes.

    Strategies use it once, before round 1, to map stable partition ids to Flower node ids and to
    learn data sizes (importance by data size) without seeing any sample. ``extra``: facts the
    node declares in its ``node-config`` (e.g. its pruning rate ``submodel-rate``).
    """
    metrics = {keys.NUM_EXAMPLES: len(env.data.train), "num-test-examples": len(env.data.test),
               **(extra or {})}
    return reply(msg, env, metrics)


def describe_partition(msg: Message, context: Context, num_examples: int,
                       extra: Mapping[str, float] | None = None) -> Message:
    """Answer a strategy's discovery ``query`` from any ClientApp (library use).

    Register it in your own ClientApp so that fedot's partial-participation strategies (FedAVOT
    and its baselines, with ``partitions="query"``) learn the node's stable ``partition-id``
    (read from its ``node-config``, as Flower's simulation sets it and
    ``flower-supernode --node-config`` does in deployment) and its data size::

        @app.query()
        def query(msg: Message, context: Context) -> Message:
            return describe_partition(msg, context, num_examples=len(trainset))

    Parameters
    ----------
    msg, context
        The query message and the node's context.
    num_examples : int
        Number of local training examples (the weight of ``importance="data-size"``).
    extra : mapping, optional
        Further facts to declare (e.g. ``{"submodel-rate": 0.5}``).
    """
    if not isinstance(num_examples, int) or isinstance(num_examples, bool) or num_examples < 1:
        raise ValueError(f"num_examples={num_examples!r} must be an int >= 1")
    pid, _ = node_partition(context)
    content = RecordDict({
        keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: num_examples, **(extra or {})}),
        keys.CLIENT: ConfigRecord({keys.PARTITION_ID: pid}),
    })
    return Message(content, reply_to=msg)


def round_settings(msg: Message) -> tuple[int, LocalConfig]:
    """Validate the round's ConfigRecord: return the server round and the local settings.

    Raises
    ------
    ConfigError
        If a ``local.*`` value is missing or invalid.
    """
    config = msg.content[keys.CONFIG]
    if keys.SERVER_ROUND not in config:
        raise ConfigError(f"round config lacks {keys.SERVER_ROUND!r}")
    server_round = int(config[keys.SERVER_ROUND])
    local = {k: config[k] for k in keys.LOCAL_KEYS if k in config}
    missing = sorted(set(keys.LOCAL_KEYS) - set(local))
    if missing:
        raise ConfigError(f"round {server_round} config lacks {missing}")
    try:
        return server_round, LocalConfig.model_validate(unflatten(local)["local"])
    except ValidationError as exc:
        bad = "; ".join(
            f"'local.{'.'.join(map(str, e['loc']))}' = {e.get('input')!r}: {e['msg']}"
            for e in exc.errors()
        )
        raise ConfigError(f"round {server_round}: invalid local settings: {bad}") from None


def reply(
    msg: Message,
    env: ClientEnv,
    metrics: Mapping[str, float | int],
    *,
    arrays: ArrayRecord | None = None,
) -> Message:
    """Build a reply with ``metrics``, optional ``arrays`` and the client's identity record."""
    content = RecordDict(
        {
            keys.METRICS: MetricRecord(dict(metrics)),
            keys.CLIENT: ConfigRecord({keys.PARTITION_ID: env.partition_id}),
        }
    )
    if arrays is not None:
        content[keys.ARRAYS] = arrays
    return Message(content, reply_to=msg)
