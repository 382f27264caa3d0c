"""A bare Flower FedAvg ServerApp: the baseline fedot's ``fedavg`` is timed against.

Flower's own :class:`flwr.serverapp.strategy.FedAvg` with the run config's model, clients and
sampling fractions, driving fedot's ClientApp, with the same server-side evaluation every round
and nothing else: no reply screening, no dtype-preserving aggregation, no results files beyond one
``results.json`` written at the end (round times measured exactly as fedot measures them: between
the ends of consecutive server evaluations). :mod:`fedot.bench.e2e` starts it with ``flwr run``
exactly as fedot's app is started (same federation, same supernodes, same run-config overrides,
the same staged FAB with only its ``serverapp`` line naming this ServerApp).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from flwr.app import ArrayRecord, ConfigRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from fedot.config import load_run_config
from fedot.fl.task import federated_data, global_model, server_evaluator, to_arrays

__all__ = ["app"]

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run Flower's FedAvg on fedot's task; write round times to ``<out-dir>/results.json``."""
    cfg = load_run_config(dict(context.run_config))
    dataset, _ = federated_data(cfg, cfg.clients)
    evaluate = server_evaluator(cfg)
    rounds: list[dict[str, object]] = []
    last = time.perf_counter()

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        nonlocal last
        server = {k: float(v) for k, v in evaluate(arrays).items()}
        now = time.perf_counter()
        rounds.append({"round": server_round, "time_s": now - last if server_round else 0.0,
                       "server": server})
        last = now
        return MetricRecord(server)

    local = {f"local.{k}": v for k, v in cfg.local.model_dump(by_alias=True).items()}
    strategy = FedAvg(fraction_train=cfg.fraction_train, fraction_evaluate=cfg.fraction_evaluate,
                      min_available_nodes=cfg.min_replies)
    strategy.start(grid=grid, initial_arrays=to_arrays(global_model(cfg, dataset)),
                   num_rounds=cfg.rounds, train_config=ConfigRecord(local),
                   evaluate_fn=evaluate_fn)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(
        {"scheme": "flower-fedavg", "status": "completed", "rounds": rounds,
         "final": rounds[-1]["server"] if rounds else {}}, indent=2) + "\n")
