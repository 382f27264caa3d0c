"""A plain Flower ClientApp (no fedot inside): local SGD, replies with "arrays" + "metrics"."""

import torch
from flwr.app import ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from flower_app.task import load_partition, make_model

app = ClientApp()


def _data(context: Context) -> tuple[torch.Tensor, torch.Tensor]:
    return load_partition(int(context.node_config["partition-id"]),
                          int(context.node_config["num-partitions"]))


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Train the received model on the local data; reply with its weights and data size."""
    model = make_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = _data(context)
    cfg = context.run_config
    opt = torch.optim.SGD(model.parameters(), lr=float(cfg["lr"]))
    gen = torch.Generator().manual_seed(int(msg.content["config"]["server-round"]))
    for _ in range(int(cfg["local-epochs"])):
        for idx in torch.randperm(len(x), generator=gen).split(int(cfg["batch-size"])):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    metrics = MetricRecord({"train-loss": loss.item(), "num-examples": len(x)})
    return Message(RecordDict({"arrays": ArrayRecord(model.state_dict()), "metrics": metrics}),
                   reply_to=msg)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Reply with the received model's loss and accuracy on the local data."""
    model = make_model()
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    x, y = _data(context)  # FedAVOT's objective F_p is the p-weighted *training* loss
    with torch.no_grad():
        logits = model(x)
    metrics = {"loss": float(torch.nn.functional.cross_entropy(logits, y)),
               "accuracy": float((logits.argmax(1) == y).float().mean()), "num-examples": len(x)}
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
