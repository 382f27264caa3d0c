"""A Flower ServerApp that uses a fedot strategy with plain keyword arguments."""

import json

import torch
from fedot.strategies import FedAvg, FedAVOT, OTFusion
from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp

from flower_app.task import load_test, make_model

app = ServerApp()


def central_evaluate(server_round: int, arrays: ArrayRecord) -> MetricRecord:
    """Accuracy of the global model on the held-out test images."""
    model = make_model()
    model.load_state_dict(arrays.to_torch_state_dict())
    x, y = load_test()
    with torch.no_grad():
        return MetricRecord({"test-accuracy": float((model(x).argmax(1) == y).float().mean())})


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run the chosen fedot strategy; write the evaluation history to ``out``."""
    cfg = context.run_config
    if cfg["strategy"] == "fedavot":
        # Misaligned availability: the clients the objective weighs most show up least.
        strategy = FedAVOT(importance="power", availability="k-of-n",
                           participation={"k": cfg["k"], "importance-power": cfg["importance-power"],
                                          "availability-power": cfg["availability-power"]},
                           partitions="node-order")
    elif cfg["strategy"] == "otfusion":
        strategy = OTFusion(model=make_model())
    else:
        strategy = FedAvg()
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord(make_model().state_dict()),
                            num_rounds=int(cfg["num-server-rounds"]),
                            evaluate_fn=central_evaluate)
    history = {"evaluate": {r: dict(m) for r, m in result.evaluate_metrics_clientapp.items()},
               "server": {r: dict(m) for r, m in result.evaluate_metrics_serverapp.items()}}
    with open(cfg["out"], "w") as f:
        json.dump(history, f, indent=2)
