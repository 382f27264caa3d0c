"""Message and record keys shared by fedot's strategies and client apps, defined once.

Both sides import these constants; no handler or strategy spells a key as a string literal.
"""

from __future__ import annotations

__all__ = [
    "ARRAYS",
    "CLIENT",
    "CONFIG",
    "EVALUATE_SPLIT",
    "LOCAL_KEYS",
    "METRICS",
    "NUM_EXAMPLES",
    "PARTITION_ID",
    "NUM_PARTITIONS",
    "SERVER_ROUND",
]

#: ArrayRecord with the model (server → client in train/evaluate, client → server in train replies).
ARRAYS = "arrays"
#: ConfigRecord with per-round settings (server → client).
CONFIG = "config"
#: MetricRecord in every reply.
METRICS = "metrics"
#: ConfigRecord in every reply identifying the client (stable across rounds and backends).
CLIENT = "client"

#: Weight of a reply in aggregation; a scalar > 0 in the reply's MetricRecord.
NUM_EXAMPLES = "num-examples"
#: Added by Flower's FedAvg to every round's ConfigRecord.
SERVER_ROUND = "server-round"
#: node_config keys (injected by the simulation engine; ``--node-config`` in deployment).
PARTITION_ID = "partition-id"
NUM_PARTITIONS = "num-partitions"

#: Which local split a client evaluates on ("test" by default, or "train" for the training
#: objective, e.g. FedAVOT's p-weighted global objective).
EVALUATE_SPLIT = "evaluate-split"

#: Per-round local-training settings travel in the ConfigRecord under these keys
#: (the same dotted names as the run config's ``local.*`` section).
LOCAL_KEYS: tuple[str, ...] = (
    "local.epochs",
    "local.batch-size",
    "local.lr",
    "local.optimizer",
    "local.momentum",
    "local.weight-decay",
    "local.proximal-mu",
)
