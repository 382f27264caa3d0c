"""Glue between a validated :class:`~fedot.config.RunConfig` and the Flower-free core.

Turns config sections into the plain keyword arguments of :mod:`fedot.data` and
:mod:`fedot.learning`, and caches what a process needs across messages (the data set and its
partitions, the model template), so that a Ray actor or a SuperNode's ClientApp serving many
messages loads data once. Both the ServerApp and the ClientApp use these functions, so the two sides
always agree on which client holds which samples: the partition is a pure function of
``(dataset, seed, partition settings, num-partitions, partition-id)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, Context

from fedot.config import RunConfig, load_run_config
from fedot.data import (
    ClientData,
    LoadedDataset,
    client_split,
    federated_split,
    label_counts,
    plot_label_distribution,
)
from fedot.fl import keys
from fedot.learning import build_model, evaluate, resolve_device

__all__ = [
    "ClientEnv",
    "ServerTask",
    "classifier_server_task",
    "client_env",
    "derive_seed",
    "federated_data",
    "node_partition",
    "global_model",
    "server_evaluator",
    "validated_config",
]


def derive_seed(seed: int, *parts: int) -> int:
    """Derive an independent 63-bit seed from a run seed and integers (round, partition, ...)."""
    return int(np.random.SeedSequence([seed, *parts]).generate_state(2, np.uint64)[0] >> 1)


@lru_cache(maxsize=8)
def _validated(items: tuple[tuple[str, Any], ...]) -> RunConfig:
    return load_run_config(dict(items))


def validated_config(run_config: Mapping[str, Any]) -> RunConfig:
    """Validate a run config once per process (cached on its items)."""
    return _validated(tuple(sorted(run_config.items())))


def federated_data(cfg: RunConfig, num_partitions: int) -> tuple[LoadedDataset, list[np.ndarray]]:
    """Load the configured dataset and split its training pool into ``num_partitions`` parts."""
    p = cfg.partition
    return federated_split(
        cfg.dataset,
        seed=cfg.seed,
        num_partitions=num_partitions,
        kind=p.kind,
        alpha=p.alpha,
        classes_per_client=p.classes_per_client,
        shards_per_client=p.shards_per_client,
        min_size=p.min_size,
        test_fraction=cfg.data.test_fraction,
        local_test_fraction=cfg.data.local_test_fraction,
    )


def global_model(cfg: RunConfig, dataset: LoadedDataset) -> torch.nn.Module:
    """Build the configured model, initialised from the run seed."""
    return build_model(
        cfg.model.name, dataset.input_shape, dataset.num_classes,
        hidden=cfg.model.hidden, seed=cfg.seed,
    )


def load_arrays(model: torch.nn.Module, arrays: ArrayRecord) -> torch.nn.Module:
    """Load an ArrayRecord into ``model`` in place (strict: keys and shapes must match)."""
    model.load_state_dict(arrays.to_torch_state_dict(), strict=True)
    return model


def to_arrays(model: torch.nn.Module) -> ArrayRecord:
    """Return the model's state as an ArrayRecord (CPU copies, so CUDA models work too)."""
    return ArrayRecord({k: v.detach().cpu() for k, v in model.state_dict().items()})


def server_evaluator(cfg: RunConfig) -> Any:
    """Return ``f(arrays) -> {"loss", "accuracy"?}`` on the server's held-out global test set."""
    dataset, _ = federated_data(cfg, cfg.clients)
    model = global_model(cfg, dataset)
    device = resolve_device(cfg.device)

    def evaluate_arrays(arrays: ArrayRecord) -> dict[str, float]:
        load_arrays(model, arrays)
        res = evaluate(model, dataset.test.x, dataset.test.y, task=dataset.task, device=device)
        out = {"loss": res.loss}
        if res.accuracy is not None:
            out["accuracy"] = res.accuracy
        return out

    return evaluate_arrays


@dataclass
class ServerTask:
    """What the ServerApp needs from a scheme's task, besides the strategy.

    Attributes
    ----------
    initial_arrays : ArrayRecord
        The initial global model.
    evaluate : Callable[[int, ArrayRecord], Mapping[str, float]]
        Server-side evaluation ``evaluate(server_round, arrays)`` of the global arrays (at round 0
        and after every round; the true round also on a resumed run).
    info : dict
        JSON-ready facts about the data/environments, merged into ``results.json``.
    finalize : Callable[[Path, ArrayRecord], None], optional
        Writes the task's extra artefacts (plots) to the run directory after the last round.
    """

    initial_arrays: ArrayRecord
    evaluate: Callable[[int, ArrayRecord], Mapping[str, float]]
    info: dict[str, Any] = field(default_factory=dict)
    finalize: Callable[[Path, ArrayRecord], None] | None = None


def classifier_server_task(cfg: RunConfig, out_dir: Path) -> ServerTask:
    """Build the supervised task: initial model, held-out test evaluation, partition facts and plot."""
    dataset, partitions = federated_data(cfg, cfg.clients)
    partition_info: dict[str, object] = {"sizes": [int(len(p)) for p in partitions]}
    if dataset.task == "classification":
        counts = label_counts(dataset.train.y, partitions, dataset.num_classes)
        partition_info["label_counts"] = counts.tolist()
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_label_distribution(
            counts, out_dir / "label_distribution.png",
            title=f"{cfg.dataset}, {cfg.partition.kind} partition, {cfg.clients} clients",
        )
    info = {
        "partition": partition_info,
        "dataset": {
            "name": dataset.name, "task": dataset.task, "train_pool": len(dataset.train),
            "test": len(dataset.test), "input_shape": list(dataset.input_shape),
        },
    }
    evaluate = server_evaluator(cfg)
    return ServerTask(to_arrays(global_model(cfg, dataset)),
                      lambda _round, arrays: evaluate(arrays), info)


@dataclass
class ClientEnv:
    """What a client needs across messages: config, its data, a model template, the device."""

    cfg: RunConfig
    partition_id: int
    num_partitions: int
    dataset: LoadedDataset
    data: ClientData
    model: torch.nn.Module
    device: torch.device

    def seed(self, server_round: int, stream: int = 0) -> int:
        """Seed for this client's randomness in one round (run seed, round, partition, stream)."""
        return derive_seed(self.cfg.seed, server_round, self.partition_id, stream)


@lru_cache(maxsize=4096)  # one entry per (config, client): a 100-client run must not thrash it
def _client_env(cfg: RunConfig, partition_id: int, num_partitions: int) -> ClientEnv:
    dataset, partitions = federated_data(cfg, num_partitions)
    data = client_split(
        dataset, partitions[partition_id], partition_id=partition_id,
        local_test_fraction=cfg.data.local_test_fraction, seed=cfg.seed,
    )
    device = resolve_device(cfg.device)
    return ClientEnv(cfg, partition_id, num_partitions, dataset, data,
                     global_model(cfg, dataset), device)


def node_partition(context: Context) -> tuple[int, int]:
    """Return ``(partition-id, num-partitions)`` from a ClientApp context's ``node_config``.

    Raises
    ------
    ValueError
        If ``node_config`` lacks ``partition-id``/``num-partitions`` or they are out of range.
    """
    node = context.node_config
    try:
        pid, n = node[keys.PARTITION_ID], node[keys.NUM_PARTITIONS]
    except KeyError as exc:
        raise ValueError(
            f"node_config {dict(node)} lacks {exc.args[0]!r}: start the SuperNode with "
            f'--node-config "{keys.PARTITION_ID}=<i> {keys.NUM_PARTITIONS}=<n>"'
        ) from None
    if not (isinstance(pid, int) and isinstance(n, int) and 0 <= pid < n):
        raise ValueError(
            f"node_config {keys.PARTITION_ID}={pid!r} must be an int in [0, {keys.NUM_PARTITIONS}"
            f"={n!r})"
        )
    return pid, n


def client_env(context: Context) -> ClientEnv:
    """Return the (cached) environment of the client this ``context`` belongs to.

    Raises
    ------
    ValueError
        If ``node_config`` lacks ``partition-id``/``num-partitions`` or they are out of range.
    """
    cfg = validated_config(context.run_config)
    pid, n = node_partition(context)
    return _client_env(cfg, pid, n)
