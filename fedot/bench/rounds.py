"""Round overhead: fedot's fedavg round vs a bare Flower FedAvg round on the same model and grid.

Both arms drive the same ClientApp through the same :class:`~fedot.fl.inline.InlineGrid` (no Ray,
no SuperLink, so framework overhead is not drowned in transport), with the same server-side
evaluation each round. The fedot arm is the full ServerApp path: reply screening, dtype-preserving
aggregation, per-round records, ``results.json``/``metrics.csv`` rewrite and the checkpoint. Arms
alternate (A B A B …) so machine load hits both alike; the ratio of medians is reported.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord, RecordDict
from flwr.serverapp.strategy import FedAvg as FlowerFedAvg

from fedot.config import load_run_config
from fedot.fl.inline import InlineGrid, load_apps
from fedot.fl.results import read_results
from fedot.fl.task import federated_data, global_model, server_evaluator, to_arrays

__all__ = ["bench_round_overhead"]


def _flower_round_times(config: dict[str, Any], client_app: Any, clients: int) -> list[float]:
    cfg = load_run_config(config)
    dataset, _ = federated_data(cfg, clients)
    evaluate = server_evaluator(cfg)
    stamps: list[float] = []

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        out = MetricRecord(evaluate(arrays))
        stamps.append(time.perf_counter())
        return out

    local = {f"local.{k}": v for k, v in cfg.local.model_dump(by_alias=True).items()}
    strategy = FlowerFedAvg(min_available_nodes=clients)
    strategy.start(
        grid=InlineGrid(client_app, config, clients),
        initial_arrays=to_arrays(global_model(cfg, dataset)),
        num_rounds=cfg.rounds,
        train_config=ConfigRecord(local),
        evaluate_fn=evaluate_fn,
    )
    return [b - a for a, b in zip(stamps, stamps[1:], strict=False)]


def _fedot_round_times(config: dict[str, Any], server_app: Any, client_app: Any,
                       clients: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        run_config = {**config, "out-dir": tmp}
        grid = InlineGrid(client_app, run_config, clients)
        server_app(grid, Context(run_id=1, node_id=0, node_config={}, state=RecordDict(),
                                 run_config=run_config))
        rounds = read_results(tmp)["rounds"]
    return [e["time_s"] for e in rounds if e["round"] > 0]


def bench_round_overhead(*, clients: int = 10, rounds: int = 10, repeats: int = 3) -> dict[str, Any]:
    """Median per-round time of both arms (round 1 dropped as warm-up) and their ratio."""
    server_app, client_app, defaults = load_apps()
    config = {**defaults, "clients": clients, "rounds": rounds}
    flower: list[float] = []
    fedot: list[float] = []
    for _ in range(repeats):
        flower += _flower_round_times(config, client_app, clients)[1:]
        fedot += _fedot_round_times(config, server_app, client_app, clients)[1:]
    med_flower, med_fedot = statistics.median(flower), statistics.median(fedot)
    return {
        "clients": clients, "rounds": rounds, "repeats": repeats,
        "flower_fedavg_round_s": med_flower, "fedot_fedavg_round_s": med_fedot,
        "ratio": med_fedot / med_flower, "n_rounds_each": len(flower),
    }
