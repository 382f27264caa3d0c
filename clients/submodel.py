"""Client task ``submodel``: train the width-pruned submodel the server cut for this client.

Used by ``subflot``, ``heterofl`` and ``fedrolex``. The train message carries the client's own
submodel (its widths follow from its pruning rate ``submodel.rate``) and the SAR strength
``submodel.lam``; the received weights are also the SAR anchor W̃_i. The reply holds the trained
submodel and, as personalised evaluation, its accuracy on this client's local test split after
training (the server derives traffic and training FLOPs from the rate and ``num-examples``).
With ``submodel.permute-clients`` the first train message also carries ``submodel.permute-seed``:
the client reorders its hidden units by that seeded permutation before training (same function;
the server is not told the order), so its uploads live in its own unit order.
"""

from __future__ import annotations

from flwr.app import Context, Message

from fedot.fl import keys
from fedot.fl.client import reply, round_settings
from fedot.fl.submodel import RATE_KEY, receive_submodel, submodel_template
from fedot.fl.task import client_env, load_arrays, to_arrays
from fedot.learning import evaluate as evaluate_model
from fedot.learning import train as train_model

__all__ = ["evaluate", "train"]


def train(msg: Message, context: Context) -> Message:
    """Train the received submodel (SAR-anchored to it); reply with it and its personal accuracy."""
    env = client_env(context)
    server_round, local = round_settings(msg)
    received = receive_submodel(msg, env.model, env.device)
    model, rate = received.model, received.rate
    result = train_model(
        model, env.data.train.x, env.data.train.y,
        task=env.dataset.task, epochs=local.epochs, batch_size=local.batch_size, lr=local.lr,
        optimizer=local.optimizer, momentum=local.momentum, weight_decay=local.weight_decay,
        seed=env.seed(server_round), device=env.device, penalty=received.penalty,
    )
    metrics: dict[str, float | int] = {
        "loss": result.loss, keys.NUM_EXAMPLES: result.num_examples, "rate": rate,
    }
    if result.accuracy is not None:
        metrics["accuracy"] = result.accuracy
    if len(env.data.test):
        personal = evaluate_model(model, env.data.test.x, env.data.test.y, task=env.dataset.task,
                                  device=env.device)
        metrics["personal-loss"] = personal.loss
        if personal.accuracy is not None:
            metrics["personal-accuracy"] = personal.accuracy
    return reply(msg, env, metrics, arrays=to_arrays(model))


def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the received (sub)model of rate ``submodel.rate`` on the local test split."""
    env = client_env(context)
    rate = float(msg.content[keys.CONFIG].get(RATE_KEY, 0.0))
    model = load_arrays(submodel_template(env.model, rate), msg.content[keys.ARRAYS])
    result = evaluate_model(model, env.data.test.x, env.data.test.y, task=env.dataset.task,
                            device=env.device)
    metrics: dict[str, float | int] = {"loss": result.loss, keys.NUM_EXAMPLES: result.num_examples}
    if result.accuracy is not None:
        metrics["accuracy"] = result.accuracy
    return reply(msg, env, metrics)
