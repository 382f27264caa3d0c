"""The base every fedot strategy shares: Flower's message-API FedAvg plus screening and records.

:class:`FedotStrategy` subclasses :class:`flwr.serverapp.strategy.FedAvg` and overrides only the
hooks it must:

* ``configure_train`` / ``configure_evaluate`` — remember the broadcast global arrays (the reference
  for reply screening), add the per-round client settings to a *copy* of the ConfigRecord, and draw
  the node sample from a seeded RNG;
* ``aggregate_train`` / ``aggregate_evaluate`` — screen replies (:mod:`fedot.fl.validation`), log and
  record every rejection with node and reason, then aggregate the valid ones through the
  :meth:`aggregate_arrays` hook (weighted mean by default) and record timing and diagnostics;
* ``summary`` — log every hyperparameter.

A scheme subclasses it (one class, one file in ``strategies/``) and overrides
:meth:`aggregate_arrays` and, when it sends extra client settings, :meth:`client_config`.
The round loop is Flower's ``Strategy.start``; it is never copied.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from logging import INFO, WARNING
from pathlib import Path
from typing import Any, ClassVar

from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Result

from fedot.config import LocalConfig, RunConfig, section
from fedot.fl import keys
from fedot.fl.aggregate import nonfinite_arrays, weighted_average
from fedot.fl.task import ServerTask, classifier_server_task
from fedot.fl.validation import (
    ArraySpec,
    Rejection,
    array_specs,
    metrics_of,
    partition_of,
    screen_replies,
)

__all__ = ["PARTITION_MODES", "FedotStrategy", "NoValidRepliesError", "RoundLog"]

#: How a strategy finds its clients' partition ids (:meth:`FedotStrategy.find_partitions`).
PARTITION_MODES = ("query", "node-order")


def wait_for_nodes(grid: Grid, expected: int, timeout: float, poll: float = 0.5, *,
                   key: str = "clients") -> list[int]:
    """Wait until ``expected`` nodes are connected, at most ``timeout`` seconds.

    Used before the first round (for ``clients`` nodes) and before every round's sampling (for
    the quorum ``min-replies``: nodes may have died since), because Flower's own wait for
    ``min_available_nodes`` has no timeout and would hang forever.

    Raises
    ------
    TimeoutError
        Naming how many nodes connected and the config ``key`` that asked for ``expected``.
    """
    deadline = time.monotonic() + timeout
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"only {len(nodes)} of {key}={expected} nodes connected within "
                f"wait-timeout={timeout}s: start more SuperNodes, or set {key}={len(nodes)} "
                "(in simulation, clients must equal num-supernodes)"
            )
        time.sleep(poll)


class NoValidRepliesError(RuntimeError):
    """Raised when every train reply of a round was rejected; the message lists the reasons."""


class RoundLog:
    """Per-round facts a strategy records for the results files (plain JSON-ready dicts)."""

    def __init__(self) -> None:
        self.rounds: dict[int, dict[str, Any]] = {}
        #: One-off facts established during the run (e.g. after client discovery), JSON-ready.
        self.setup: dict[str, Any] = {}

    def entry(self, server_round: int) -> dict[str, Any]:
        """Return (creating it) the mutable record of one round."""
        return self.rounds.setdefault(server_round, {})

    def pop(self, server_round: int) -> dict[str, Any]:
        """Remove and return the record of one round (empty if nothing was recorded)."""
        return self.rounds.pop(server_round, {})


class FedotStrategy(FedAvg):
    """FedAvg with reply screening, per-round records and seeded sampling.

    Every argument is a plain keyword, so the class is usable from any Flower ServerApp with any
    ClientApp that replies as Flower's FedAvg expects (``ArrayRecord "arrays"`` and
    ``MetricRecord "metrics"`` holding ``num-examples``); see docs/library.md.

    Parameters
    ----------
    local : LocalConfig, mapping or None
        Local-training settings sent to clients every round under :data:`fedot.fl.keys.LOCAL_KEYS`
        (a mapping of ``local.*`` keys is validated; None sends none: the ClientApp trains as it
        likes).
    seed : int
        Seed of the node-sampling RNG (used when ``fraction_train`` or ``fraction_evaluate`` < 1).
    min_replies : int
        Quorum: a round with fewer usable train replies (but at least one) is skipped and the
        global model kept; a round with none raises :class:`NoValidRepliesError`.
    partitions : {"query", "node-order"}
        How strategies that need client identities find them (:meth:`find_partitions`).
    fraction_train, fraction_evaluate, min_available_nodes
        As in Flower's ``FedAvg``; ``min_train_nodes`` and ``min_evaluate_nodes`` are 1 (0 when the
        fraction is 0), and the weight key, record keys are fedot's constants.
    """

    #: The run-config ``scheme`` name of this strategy.
    scheme: ClassVar[str] = "fedavg"
    #: True when :meth:`aggregate_arrays` is linear in the replies' arrays (every scheme that takes
    #: a weighted sum): a NaN/Inf anywhere then shows in the aggregate, so screening skips its
    #: separate finiteness pass over every reply and only a non-finite aggregate triggers the
    #: per-reply search. Schemes that aggregate non-linearly set it to False.
    linear_aggregation: ClassVar[bool] = True

    def __init__(
        self,
        *,
        local: LocalConfig | Mapping[str, Any] | None = None,
        seed: int = 0,
        fraction_train: float = 1.0,
        fraction_evaluate: float = 1.0,
        min_available_nodes: int = 2,
        min_replies: int = 1,
        wait_timeout: float = 120.0,
        partitions: str = "query",
    ) -> None:
        if partitions not in PARTITION_MODES:
            raise ValueError(f"partitions={partitions!r}: allowed are "
                             f"{' and '.join(map(repr, PARTITION_MODES))}")
        super().__init__(
            fraction_train=fraction_train,
            fraction_evaluate=fraction_evaluate,
            min_train_nodes=1,
            min_evaluate_nodes=1,
            min_available_nodes=min_available_nodes,
            weighted_by_key=keys.NUM_EXAMPLES,
            arrayrecord_key=keys.ARRAYS,
            configrecord_key=keys.CONFIG,
        )
        self.local = None if local is None else section(LocalConfig, local, "local")
        self.seed = seed
        self.min_replies = min_replies
        self.wait_timeout = wait_timeout
        self.log = RoundLog()
        self._spec: ArraySpec | None = None
        #: Per phase: the round and the destination nodes of the messages last sent (``*_missing``).
        self._sent: dict[str, tuple[int, list[int]]] = {}
        #: Node id → partition id, for ClientApps whose replies carry no ``client`` record (a plain
        #: Flower ClientApp): strategies that map nodes to partitions themselves (discovery by
        #: node order) fill it, and :meth:`identify` stamps each such reply with its partition.
        self.node_partitions: dict[int, int] = {}
        #: How :meth:`find_partitions` numbers the clients (``query`` or ``node-order``).
        self.partitions = partitions

    @classmethod
    def from_config(cls, cfg: RunConfig) -> FedotStrategy:
        """Build the strategy from a validated run config (:meth:`config_kwargs`)."""
        return cls(**cls.config_kwargs(cfg))

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the constructor arguments taken from the run config (schemes add their section)."""
        return {
            "local": cfg.local, "seed": cfg.seed, "fraction_train": cfg.fraction_train,
            "fraction_evaluate": cfg.fraction_evaluate, "min_available_nodes": cfg.min_replies,
            "min_replies": cfg.min_replies, "wait_timeout": cfg.wait_timeout,
        }

    # ----------------------------------------------------------------------------- hooks to extend
    def num_rounds(self, cfg: RunConfig) -> int:
        """Return how many Flower rounds the run takes (``rounds``; schemes with stages add theirs)."""
        return cfg.rounds

    def server_task(self, cfg: RunConfig, out_dir: Path) -> ServerTask:
        """Return the initial arrays, server-side evaluation and facts of this scheme's task.

        The default is the supervised task (:func:`fedot.fl.task.classifier_server_task`).
        """
        return classifier_server_task(cfg, out_dir)

    def client_config(self, server_round: int) -> dict[str, Any]:
        """Return the per-round settings every client receives (flat, ConfigRecord-typed values)."""
        return self.local_settings()

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Aggregate the screened replies' arrays; return the new global arrays and diagnostics.

        The default is the weighted mean of FedAvg (:func:`fedot.fl.aggregate.weighted_average`).
        """
        records = [next(iter(c.array_records.values())) for c in contents]
        return weighted_average(records, weights), {}

    def evaluate_metrics(self, server_round: int, contents: list[RecordDict]) -> MetricRecord:
        """Aggregate the screened evaluate replies' metrics (``num-examples``-weighted mean)."""
        return self.evaluate_metrics_aggr_fn(contents, self.weighted_by_key)

    def hyperparameters(self) -> dict[str, Any]:
        """Return every hyperparameter of the strategy (for ``summary`` and ``results.json``)."""
        return {
            "scheme": self.scheme,
            "seed": self.seed,
            "fraction_train": self.fraction_train,
            "fraction_evaluate": self.fraction_evaluate,
            "min_available_nodes": self.min_available_nodes,
            "min_replies": self.min_replies,
            **self.local_settings(),
        }

    def local_settings(self) -> dict[str, Any]:
        """Return the ``local.*`` settings as flat keys (empty when the ClientApp owns them)."""
        if self.local is None:
            return {}
        return {f"local.{k}": v for k, v in self.local.model_dump(by_alias=True).items()}

    def query_partitions(self, grid: Grid) -> dict[int, tuple[int, MetricRecord]]:
        """Send one ``query`` message to every node; return partition id → (node id, metrics).

        The ClientApp answers with its stable ``partition-id``, data sizes and any facts its
        ``node-config`` declares (never a sample). Strategies that need client identities (partial
        participation, per-client submodels) call it once, before round 1; a node that errs or
        names no partition is logged and left out.
        """
        messages = [Message(RecordDict({keys.CONFIG: ConfigRecord()}), node, MessageType.QUERY)
                    for node in grid.get_node_ids()]
        found: dict[int, tuple[int, MetricRecord]] = {}
        for reply in grid.send_and_receive(messages):
            pid = None if reply.has_error() else partition_of(reply.content)
            if pid is None:
                log(WARNING, "discovery: node %d gave no partition id (%s)",
                    reply.metadata.src_node_id, reply.error.reason if reply.has_error() else "")
                continue
            found[pid] = (int(reply.metadata.src_node_id), metrics_of(reply.content))
        return found

    def find_partitions(self, grid: Grid) -> dict[int, tuple[int, MetricRecord]]:
        """Return partition id → (node id, declared facts) and remember node → partition.

        ``partitions="query"``: :meth:`query_partitions`. ``"node-order"``: the connected nodes
        numbered by sorted node id, with no facts (any ClientApp; data sizes unknown). Either
        way :attr:`node_partitions` is filled, so :meth:`identify` can stamp replies that name
        no partition.
        """
        if self.partitions == "node-order":
            nodes = sorted(int(n) for n in grid.get_node_ids())
            found = {pid: (node, MetricRecord()) for pid, node in enumerate(nodes)}
            log(INFO, "%s: partitions by node order: %s", self.scheme, dict(enumerate(nodes)))
        else:
            found = self.query_partitions(grid)
        self.node_partitions.update({node: pid for pid, (node, _) in found.items()})
        return found

    def reply_spec(self) -> ArraySpec | Callable[[RecordDict], ArraySpec | None] | None:
        """Return the expected arrays of this round's train replies (shapes and dtypes).

        The default is the broadcast global model's; schemes that send each client its own
        architecture return a function of the reply's content.
        """
        return self._spec

    def state_dict(self) -> dict[str, Any]:
        """Return the state a checkpoint must keep to resume exactly; FedAvg keeps none.

        Plain values only (dicts, lists, numbers, strings, tensors: ``torch.load`` with
        ``weights_only=True`` must read it). Everything a round derives from its number (node
        sampling, client seeds, FFM's stage) is not state. Schemes that keep state across rounds
        extend it (``{**super().state_dict(), ...}``) and :meth:`load_state_dict`.
        """
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`server_task`, before :meth:`start`).

        Schemes pop their own keys and pass the rest up; the base refuses keys nobody took.
        """
        if state:
            raise ValueError(f"{type(self).__name__} cannot restore checkpoint state {sorted(state)}")

    # ------------------------------------------------------------------------------ Flower hooks
    def summary(self) -> None:
        """Log every hyperparameter."""
        log(INFO, "\t├──> fedot scheme %r (%s)", self.scheme, type(self).__name__)
        for name, value in self.hyperparameters().items():
            log(INFO, "\t│\t├── %s: %s", name, value)
        super().summary()

    #: The hooks :meth:`start` calls with the run's true round number on a resumed run.
    ROUND_HOOKS: ClassVar[tuple[str, ...]] = (
        "configure_train", "aggregate_train", "configure_evaluate", "aggregate_evaluate",
    )

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: Callable[[int, ArrayRecord], MetricRecord | None] | None = None,
        *,
        round_offset: int = 0,
    ) -> Result:
        """Run Flower's round loop for rounds ``round_offset + 1 .. round_offset + num_rounds``.

        ``round_offset`` > 0 continues a run after that many completed rounds (resume from a
        checkpoint): Flower's loop still counts 1..``num_rounds``, and every round hook
        (:data:`ROUND_HOOKS`) and ``evaluate_fn`` receive the true round ``round_offset + t``
        (the initial evaluation gets ``round_offset``). The translation happens here only, on
        the instance, so an overriding subclass sees true rounds and its ``super()`` calls are
        not shifted twice; ``server-round`` in every ConfigRecord is the true round too. The same
        wrappers record where each round's instructions went, for every scheme alike, so the
        round's record names the nodes that never replied (``train_missing``,
        ``evaluate_missing``).
        """
        if round_offset < 0:
            raise ValueError(f"round_offset must be >= 0, got {round_offset}")

        def shifted(fn: Callable[..., Any]) -> Callable[..., Any]:
            return lambda server_round, *args: fn(server_round + round_offset, *args)

        def sending(phase: str, fn: Callable[..., Any]) -> Callable[..., Any]:
            # Every scheme's instructions pass here, whatever it overrides: remember where they
            # went, so the round can name the nodes that never replied (``*_missing``).
            def configure(server_round: int, *args: Any) -> list[Message]:
                messages = list(fn(server_round, *args))
                self._sent[phase] = (server_round, [int(m.metadata.dst_node_id) for m in messages])
                return messages
            return configure

        for name in self.ROUND_HOOKS:  # instance attributes shadow the (overridden) methods
            hook = getattr(self, name)
            if name.startswith("configure_"):
                hook = sending(name.removeprefix("configure_"), hook)
            setattr(self, name, shifted(hook))  # the recorder sees the true round too
        try:
            return super().start(grid, initial_arrays, num_rounds, timeout, train_config,
                                 evaluate_config, evaluate_fn and shifted(evaluate_fn))
        finally:
            for name in self.ROUND_HOOKS:
                self.__dict__.pop(name, None)

    @contextmanager
    def _seeded(self, server_round: int, stream: int) -> Iterable[None]:
        # Flower samples nodes with the global `random` module; seed it per round and restore it.
        state = random.getstate()
        random.seed(f"{self.seed}-{server_round}-{stream}")
        try:
            yield
        finally:
            random.setstate(state)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays and send them with this round's client settings."""
        self._spec = array_specs(arrays)
        config = ConfigRecord({**config, **self.client_config(server_round)})
        wait_for_nodes(grid, self.min_available_nodes, self.wait_timeout, key="min-replies")
        with self._seeded(server_round, 0):
            return super().configure_train(server_round, arrays, config, grid)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global arrays for federated evaluation (seeded sampling)."""
        config = ConfigRecord({**config, **self.client_config(server_round)})
        if self.fraction_evaluate > 0:
            wait_for_nodes(grid, self.min_available_nodes, self.wait_timeout, key="min-replies")
        with self._seeded(server_round, 1):
            return super().configure_evaluate(server_round, arrays, config, grid)

    def _record_screen(
        self, server_round: int, phase: str, replies: list[Message], rejected: list[Rejection]
    ) -> None:
        for rej in rejected:
            log(
                WARNING,
                "round %d %s: set aside reply from node %d (partition %s): %s",
                server_round, phase, rej.node_id, rej.partition_id, rej.reason,
            )
        entry = self.log.entry(server_round)
        entry[f"{phase}_replies"] = len(replies)
        entry[f"{phase}_rejected"] = [r.as_dict() for r in rejected]
        sent_round, sent = self._sent.pop(phase, (None, []))
        if sent_round == server_round:
            # Sent an instruction but no reply of its own: nothing before the round timeout, or the
            # SuperLink answered for it (an error reply from node 1, e.g. NODE_UNAVAILABLE).
            missing = sorted(set(sent) - {int(m.metadata.src_node_id) for m in replies})
            if missing:
                log(WARNING, "round %d %s: no reply from node(s) %s", server_round, phase, missing)
            entry[f"{phase}_missing"] = missing

    def identify(self, replies: Iterable[Message]) -> list[Message]:
        """Return the replies, each without a ``client`` record stamped with its node's partition.

        Only nodes in :attr:`node_partitions` are stamped (fedot's own ClientApp names its
        partition itself; a plain ClientApp's partition is the one the strategy assigned to
        its node). Error replies are left as they are.
        """
        replies = list(replies)
        for msg in replies:
            if msg.has_error() or partition_of(msg.content) is not None:
                continue
            pid = self.node_partitions.get(int(msg.metadata.src_node_id))
            if pid is not None:
                msg.content[keys.CLIENT] = ConfigRecord({keys.PARTITION_ID: pid})
        return replies

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Screen the replies, then aggregate the valid ones with :meth:`aggregate_arrays`."""
        start = time.perf_counter()
        replies = self.identify(replies)
        screen = screen_replies(replies, spec=self.reply_spec(), weight_key=self.weighted_by_key,
                                check_finite=not self.linear_aggregation)
        valid, rejected = screen.valid, list(screen.rejected)
        try:
            while True:
                if not valid:
                    reasons = "; ".join(f"node {r.node_id}: {r.reason}" for r in rejected)
                    raise NoValidRepliesError(
                        f"round {server_round}: none of {len(replies)} train replies is usable"
                        + (f" ({reasons})" if reasons else " (no replies arrived)")
                    )
                if len(valid) < self.min_replies:
                    reason = (f"only {len(valid)} usable train replies, min-replies="
                              f"{self.min_replies}: round skipped, global model kept")
                    log(WARNING, "round %d: %s", server_round, reason)
                    self.log.entry(server_round)["skipped"] = reason
                    return None, None
                contents = [m.content for m in valid]
                weights = [float(metrics_of(c)[self.weighted_by_key]) for c in contents]
                arrays, diagnostics = self.aggregate_arrays(server_round, contents, weights)
                if not nonfinite_arrays(arrays):
                    break
                # A non-finite input poisons a linear aggregate: find and drop it, then retry
                # (the quorum is checked again on what is left).
                valid = self._drop_nonfinite(server_round, valid, rejected)
        finally:
            self._record_screen(server_round, "train", replies, rejected)
        metrics = self.train_metrics_aggr_fn(contents, self.weighted_by_key)
        entry = self.log.entry(server_round)
        entry["train_metrics"] = dict(metrics)
        entry["aggregation"] = {"time_s": time.perf_counter() - start, **diagnostics}
        entry["clients"] = [
            {"node_id": int(m.metadata.src_node_id), "partition_id": partition_of(m.content),
             "weight": w, **{k: v for k, v in metrics_of(m.content).items() if k != keys.NUM_EXAMPLES}}
            for m, w in zip(valid, weights, strict=True)
        ]
        return arrays, metrics

    def _drop_nonfinite(
        self, server_round: int, valid: list[Message], rejected: list[Rejection]
    ) -> list[Message]:
        """Move replies with NaN/Inf arrays from ``valid`` to ``rejected``; return the rest.

        Raises
        ------
        FloatingPointError
            If no reply is non-finite: the aggregation itself overflowed.
        """
        kept = []
        for msg in valid:
            bad = nonfinite_arrays(next(iter(msg.content.array_records.values())))
            if bad:
                rejected.append(Rejection(int(msg.metadata.src_node_id), partition_of(msg.content),
                                          f"array {bad[0]!r} has non-finite values"))
            else:
                kept.append(msg)
        if len(kept) == len(valid):
            raise FloatingPointError(
                f"round {server_round}: the aggregate of finite replies is not finite (overflow)"
            )
        return kept

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Screen the evaluate replies and average the valid ones' metrics."""
        replies = self.identify(replies)
        screen = screen_replies(replies, spec=None, weight_key=self.weighted_by_key)
        self._record_screen(server_round, "evaluate", replies, screen.rejected)
        if not screen.valid:
            if replies:
                log(WARNING, "round %d: no usable evaluate reply", server_round)
            return None
        metrics = self.evaluate_metrics(server_round, [m.content for m in screen.valid])
        self.log.entry(server_round)["evaluate_metrics"] = dict(metrics)
        return metrics
