"""In-process runner: a Flower ``Grid`` that calls the ClientApp directly (no Ray, no SuperLink).

:class:`InlineGrid` implements Flower's ``Grid`` interface: ``send_and_receive`` hands each message,
as a private copy (as serialisation would), to the very same ``ClientApp`` object that ``flwr run``
loads, with a per-node persistent ``Context`` (``node_config`` carries ``partition-id`` and
``num-partitions`` exactly as the simulation engine injects them). A ClientApp exception becomes an
error reply, as in Flower's simulation engine, so the strategy sees the same failure modes.
:func:`run_inline` then calls the real ``ServerApp`` object with this grid: tests, debugging and
fast sweeps exercise the production code path, not a copy of it.
"""

from __future__ import annotations

import copy
import importlib
import time
import tomllib
import traceback
from collections.abc import Callable, Iterable, Mapping
from logging import ERROR
from pathlib import Path
from typing import Any
from uuid import uuid4

from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common import log
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from fedot.fl import keys

__all__ = ["InlineGrid", "load_apps", "project_root", "run_inline"]

_FIRST_NODE_ID = 1001


def project_root() -> Path:
    """Return the fedot app directory (the one holding ``pyproject.toml`` with ``[tool.flwr.app]``)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        pyproject = parent / "pyproject.toml"
        if pyproject.is_file() and "[tool.flwr.app" in pyproject.read_text():
            return parent
    raise FileNotFoundError(
        "cannot find fedot's pyproject.toml; install fedot from a source checkout (pip install -e .)"
    )


def _load_object(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_apps(root: Path | None = None) -> tuple[ServerApp, ClientApp, dict[str, Any]]:
    """Load the ServerApp and ClientApp named in ``pyproject.toml`` and its default run config.

    The apps are resolved by their ``module:attribute`` strings, as Flower does, so nothing in
    ``fedot`` imports ``strategies`` or ``clients``.
    """
    pyproject = tomllib.loads(((root or project_root()) / "pyproject.toml").read_text())
    app = pyproject["tool"]["flwr"]["app"]
    from fedot.config import flatten

    return (
        _load_object(app["components"]["serverapp"]),
        _load_object(app["components"]["clientapp"]),
        flatten(app.get("config", {})),
    )


class InlineGrid(Grid):
    """A Grid whose nodes are in-process calls of a ClientApp.

    Parameters
    ----------
    client_app : ClientApp or callable
        Called as ``client_app(message, context)``.
    run_config : Mapping[str, Any]
        The run config every node's Context carries.
    num_nodes : int
        Number of nodes; node ``i`` gets ``partition-id=i``, ``num-partitions=num_nodes``.
    run_id : int
        Run id used for the task identity and contexts.
    """

    def __init__(
        self,
        client_app: Callable[[Message, Context], Message],
        run_config: Mapping[str, Any],
        num_nodes: int,
        run_id: int = 1,
    ) -> None:
        # Message(...) outside a Flower runtime needs a process-wide task identity.
        TaskIdentity.run_id = run_id
        TaskIdentity.node_id = 0
        TaskIdentity.task_id = run_id
        self.client_app = client_app
        self._run = Run.create_empty(run_id=run_id)
        self.contexts = {
            _FIRST_NODE_ID + i: Context(
                run_id=run_id,
                node_id=_FIRST_NODE_ID + i,
                node_config={keys.PARTITION_ID: i, keys.NUM_PARTITIONS: num_nodes},
                state=RecordDict(),
                run_config=dict(run_config),
            )
            for i in range(num_nodes)
        }
        #: Node ids that are "down": their messages get no reply (for fault tests).
        self.offline: set[int] = set()
        self.client_time_s = 0.0

    def set_run(self, run: Run) -> None:  # noqa: D102 (Grid API)
        self._run = run

    @property
    def run(self) -> Run:  # noqa: D102 (Grid API)
        return self._run

    def create_message(  # noqa: D102 (Grid API)
        self, content: RecordDict, message_type: str, dst_node_id: int, group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:  # noqa: D102 (Grid API)
        return [n for n in self.contexts if n not in self.offline]

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:  # noqa: D102
        raise NotImplementedError("InlineGrid only supports send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:  # noqa: D102
        raise NotImplementedError("InlineGrid only supports send_and_receive")

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        """Deliver each message to its node's ClientApp and collect the replies."""
        replies = []
        for msg in messages:
            node = msg.metadata.dst_node_id
            if node not in self.contexts or node in self.offline:
                continue
            msg.metadata.__dict__["_message_id"] = str(uuid4())
            delivered = Message(copy.deepcopy(msg.content), node, msg.metadata.message_type)
            delivered.metadata.__dict__.update(
                {k: v for k, v in msg.metadata.__dict__.items() if k != "_content"}
            )
            replies.append(self._call(node, delivered, msg))
        return replies

    def _call(self, node: int, delivered: Message, original: Message) -> Message:
        context = self.contexts[node]
        before = dict(context.run_config)
        start = time.perf_counter()
        try:
            out = self.client_app(delivered, context)
            if context.run_config != before:
                raise ValueError("The `run_config` field of the `Context` object cannot be modified")
        except Exception as exc:  # noqa: BLE001 - every ClientApp failure becomes an error reply
            log(ERROR, "ClientApp on node %d raised: %s", node, exc)
            log(ERROR, traceback.format_exc())
            reason = f"{type(exc)}:<'{exc}'>"
            out = Message(Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=reason),
                          reply_to=original)
        finally:
            self.client_time_s += time.perf_counter() - start
        out.metadata.__dict__["_src_node_id"] = node
        return out


def run_inline(
    run_config: Mapping[str, Any], num_nodes: int, *, run_id: int = 1, root: Path | None = None,
    node_config: Mapping[int, Mapping[str, Any]] | None = None,
) -> InlineGrid:
    """Run the project's ServerApp against an :class:`InlineGrid` of ``num_nodes`` ClientApps.

    ``run_config`` overrides the ``pyproject.toml`` defaults, as ``flwr run --run-config`` does
    (unknown keys pass through and fail validation in the apps, with the key named).
    ``node_config``: extra ``node-config`` entries per partition id, as a SuperNode's
    ``--node-config`` would add them (e.g. ``{2: {"submodel-rate": 0.5}}``).
    """
    server_app, client_app, defaults = load_apps(root)
    config = {**defaults, **run_config}
    grid = InlineGrid(client_app, config, num_nodes, run_id=run_id)
    for context in grid.contexts.values():
        extra = (node_config or {}).get(int(context.node_config[keys.PARTITION_ID]), {})
        context.node_config.update(extra)
    server_context = Context(
        run_id=run_id, node_id=0, node_config={}, state=RecordDict(), run_config=config
    )
    server_app(grid, server_context)
    return grid
