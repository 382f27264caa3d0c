"""Client task ``classifier``: local supervised training and evaluation of the global model.

Used by ``fedavg`` (and every scheme that trains a classifier or regressor locally). A handler
decodes the message, calls :mod:`fedot.learning`, and encodes the reply.
"""

from __future__ import annotations

import copy

from flwr.app import Context, Message

from fedot.fl import keys
from fedot.fl.client import evaluate_split, reply, round_settings
from fedot.fl.task import client_env, load_arrays, to_arrays
from fedot.learning import evaluate as evaluate_model
from fedot.learning import proximal_penalty
from fedot.learning import train as train_model

__all__ = ["evaluate", "train"]


def train(msg: Message, context: Context) -> Message:
    """Train the received global model on this client's data; reply with the new weights."""
    env = client_env(context)
    server_round, local = round_settings(msg)
    model = load_arrays(copy.deepcopy(env.model), msg.content[keys.ARRAYS])
    penalty = proximal_penalty(model, local.proximal_mu) if local.proximal_mu > 0 else None
    result = train_model(
        model, env.data.train.x, env.data.train.y,
        task=env.dataset.task, epochs=local.epochs, batch_size=local.batch_size, lr=local.lr,
        optimizer=local.optimizer, momentum=local.momentum, weight_decay=local.weight_decay,
        seed=env.seed(server_round), device=env.device, penalty=penalty,
    )
    metrics = {"loss": result.loss, keys.NUM_EXAMPLES: result.num_examples}
    if result.accuracy is not None:
        metrics["accuracy"] = result.accuracy
    return reply(msg, env, metrics, arrays=to_arrays(model))


def evaluate(msg: Message, context: Context) -> Message:
    """Evaluate the received global model on this client's local test (or train) split."""
    env = client_env(context)
    split = evaluate_split(msg)
    data = env.data.train if split == "train" else env.data.test
    if len(data) == 0:
        raise ValueError(
            f"partition {env.partition_id} has an empty local {split} split "
            "(data.local-test-fraction too small for its size)"
        )
    model = load_arrays(copy.deepcopy(env.model), msg.content[keys.ARRAYS])
    result = evaluate_model(model, data.x, data.y, task=env.dataset.task, device=env.device)
    metrics = {"loss": result.loss, keys.NUM_EXAMPLES: result.num_examples}
    if result.accuracy is not None:
        metrics["accuracy"] = result.accuracy
    return reply(msg, env, metrics)
