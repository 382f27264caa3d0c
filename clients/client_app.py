"""The fedot ClientApp: the run config's ``scheme`` picks the client task.

Named in ``pyproject.toml`` as ``clients.client_app:app``; the same object runs under
``flwr run`` (Ray simulation), on SuperNodes and in fedot's in-process runner. The run config is
validated (once per process) before any training.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from flwr.app import Context, Message
from flwr.clientapp import ClientApp

from fedot.fl import keys
from fedot.fl.client import describe, fault_before, inject_fault
from fedot.fl.submodel import NODE_RATE_KEY
from fedot.fl.task import client_env, validated_config

from . import classifier, ffm, maxent_irl, submodel

#: scheme → module with ``train(msg, context)`` and ``evaluate(msg, context)`` handlers.
TASKS: dict[str, ModuleType] = {
    "fedavg": classifier,
    "fedavot": classifier,
    "fedavg-subset": classifier,
    "fedavg-k": classifier,
    "fedavg-full": classifier,
    "irl-barycenter": maxent_irl,
    "irl-average": maxent_irl,
    "ffm": ffm,
    "otfusion": classifier,
    "subflot": submodel,
    "heterofl": submodel,
    "fedrolex": submodel,
}

app = ClientApp()


def _handler(context: Context, name: str) -> Callable[[Message, Context], Message]:
    scheme = validated_config(context.run_config).scheme
    return getattr(TASKS[scheme], name)


@app.train()
def train(msg: Message, context: Context) -> Message:
    """Dispatch a train message to the scheme's client task (``fault.*`` applies here)."""
    fault = validated_config(context.run_config).fault
    if fault.kind == "none":
        return _handler(context, "train")(msg, context)
    pid = int(context.node_config.get(keys.PARTITION_ID, -1))
    fault_before(fault, pid)
    return inject_fault(_handler(context, "train")(msg, context), fault, pid)


@app.evaluate()
def evaluate(msg: Message, context: Context) -> Message:
    """Dispatch an evaluate message to the scheme's client task."""
    return _handler(context, "evaluate")(msg, context)


@app.query()
def query(msg: Message, context: Context) -> Message:
    """Answer a strategy's discovery query: partition id, data sizes, declared rate (no samples)."""
    declared = context.node_config.get(NODE_RATE_KEY)
    extra = {NODE_RATE_KEY: float(declared)} if declared is not None else None
    return describe(msg, client_env(context), extra)
