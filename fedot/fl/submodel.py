r"""Width-heterogeneous federated learning: the shared Flower side of SubFLOT, HeteroFL and FedRolex.

Client :math:`i` can only train a model whose hidden widths are :math:`1 - \rho_i` of the global
model's (:mod:`fedot.subflot`). :class:`SubmodelStrategy` adds to
:class:`~fedot.fl.strategy.FedotStrategy`:

* **identity and rates** — before round 1 one ``query`` message per node returns its stable
  ``partition-id`` and data size (never a sample); the pruning rate :math:`\rho_i` is the node's
  ``node-config`` value ``submodel-rate`` when it sets one (deployment), else a seeded draw from
  ``submodel.rates`` keyed by the partition id (simulation). Histories are keyed by partition id,
  not by the transient Flower node id;
* **per-client messages** — :meth:`SubmodelStrategy.configure_train` sends every connected client
  its own submodel (:meth:`~SubmodelStrategy.extract`) with its rate and SAR strength
  (``submodel.rate``, ``submodel.lam``); all clients take part every round (join ratio 1, as in
  the paper);
* **screening per architecture** — a reply must hold exactly the arrays (shapes, dtypes) sent to
  its partition; anything else is set aside like any bad reply;
* **aggregation** — :meth:`~SubmodelStrategy.merge` maps the screened submodels back into one
  global model (OT alignment or position-based averaging);
* **accounting and personalised evaluation** — per round and client: parameters sent and
  received, forward MACs per sample and local-training FLOPs (computed on the server from the
  submodel's architecture, once per rate, and the reply's ``num-examples``); each client's
  accuracy on its own test split after local training (``personal-accuracy``), summarised as
  the mean and the worst client in the server metrics (``personal-accuracy-mean``,
  ``personal-accuracy-worst``). The server metric ``accuracy`` is the full-width global
  model on the server's held-out set.

The schemes differ only in :meth:`~SubmodelStrategy.extract`, :meth:`~SubmodelStrategy.merge` and
the SAR strength; each is one class in ``strategies/``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from logging import INFO
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, RecordDict
from flwr.common import log
from flwr.serverapp import Grid

from fedot.config import RunConfig, SubmodelConfig, section
from fedot.fl import keys
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import (
    ServerTask,
    derive_seed,
    federated_data,
    global_model,
    load_arrays,
    to_arrays,
)
from fedot.fl.validation import ArraySpec, array_specs, metrics_of, partition_of
from fedot.fusion import spec_for
from fedot.fusion.spec import PermutationSpec
from fedot.subflot import (
    SubmodelCost,
    blend,
    history_view,
    permute_units,
    positional_aggregate,
    sar_penalty,
    static_slice,
    submodel_cost,
)

__all__ = [
    "LAM_KEY",
    "NODE_RATE_KEY",
    "PERMUTE_KEY",
    "RATE_KEY",
    "ReceivedSubmodel",
    "SubmodelStrategy",
    "assign_rate",
    "receive_submodel",
    "submodel_template",
]

#: Train-config key of the client's pruning rate.
RATE_KEY = "submodel.rate"
#: Train-config key of the client's SAR strength λ (0: no penalty).
LAM_KEY = "submodel.lam"
#: ``node-config`` key with which a SuperNode declares its own pruning rate.
NODE_RATE_KEY = "submodel-rate"
#: Train-config key (``submodel.permute-clients``, first round of a client only): the seed of the
#: unit permutation the client applies to the received model before training.
PERMUTE_KEY = "submodel.permute-seed"

Extraction = tuple[torch.nn.Module, Mapping[str, torch.Tensor], dict[str, Any]]


def submodel_template(template: torch.nn.Module, rate: float) -> torch.nn.Module:
    """Return a module of the submodel architecture at ``rate`` (weights to be overwritten)."""
    return static_slice(template, rate).model


def assign_rate(choices: tuple[float, ...], seed: int, partition_id: int) -> float:
    """Draw partition ``partition_id``'s pruning rate uniformly from ``choices`` (seeded, stable).

    The draw depends only on the run seed and the partition id, so a client keeps its rate when
    nodes reconnect or the client count changes.
    """
    rng = np.random.default_rng(derive_seed(seed, 0x5B, partition_id))
    return float(choices[int(rng.integers(len(choices)))])


@dataclass(frozen=True)
class ReceivedSubmodel:
    """What a client of a submodel scheme trains: see :func:`receive_submodel`."""

    #: The submodel at this client's width, holding the server's weights (permuted when asked).
    model: torch.nn.Module
    #: This client's pruning rate ρ (``submodel.rate``).
    rate: float
    #: SAR strength λ (``submodel.lam``; 0 for HeteroFL and FedRolex).
    lam: float
    #: SAR's penalty λρ Σ‖W − W̃‖² to add to the training loss (None when λρ = 0).
    penalty: Callable[[torch.nn.Module], torch.Tensor] | None


def receive_submodel(msg: Message, model: torch.nn.Module,
                     device: torch.device | str = "cpu") -> ReceivedSubmodel:
    """Decode a SubFLOT / HeteroFL / FedRolex train message for any ClientApp (library use).

    The server sends each client the submodel cut at its width; this rebuilds that architecture
    from the client's own full-width ``model`` (:func:`submodel_template`), loads the received
    weights, applies the seeded unit permutation of ``submodel.permute-clients`` when the message
    carries one, and returns SAR's penalty anchored to the received weights W̃ (Jiang et al.,
    2026: loss + λρ Σ‖W − W̃‖²). Train ``model``, then reply with its ``state_dict`` as
    ``"arrays"`` and ``num-examples`` (and, optionally, ``personal-accuracy``) in ``"metrics"``.

    Parameters
    ----------
    msg : Message
        The train message.
    model : torch.nn.Module
        The client's full-width model (its weights are not used).
    device : torch.device or str
        Where the submodel and the SAR anchor are put.
    """
    config = msg.content[keys.CONFIG]
    rate, lam = float(config[RATE_KEY]), float(config.get(LAM_KEY, 0.0))
    sub = load_arrays(submodel_template(model, rate), msg.content[keys.ARRAYS]).to(device)
    if PERMUTE_KEY in config:
        sub, _ = permute_units(sub, int(config[PERMUTE_KEY]))
    anchor = {k: v.detach().clone().to(device) for k, v in sub.state_dict().items()}
    penalty = (lambda m: sar_penalty(m, anchor, rate, lam)) if rate * lam > 0 else None
    return ReceivedSubmodel(model=sub, rate=rate, lam=lam, penalty=penalty)


class SubmodelStrategy(FedotStrategy):
    """Per-client submodels of one global model; see the module docstring.

    Parameters
    ----------
    submodel : SubmodelConfig, mapping or None
        Rates and (SubFLOT) module switches (``submodel.*`` keys).
    model : torch.nn.Module, optional
        Library use: the global model's architecture (weights unused). fedot's ServerApp sets it
        from the run config in :meth:`server_task`.
    input_shape : tuple of int, optional
        Library use, with ``model``: one sample's shape, for the per-round MACs and FLOPs.
    partitions : {"query", "node-order"}
        ``query`` asks every node for its ``partition-id``, data size and optional declared rate
        (fedot's ClientApp, or :func:`fedot.fl.client.describe_partition`); ``node-order``
        numbers the connected nodes by sorted node id (any ClientApp). Rates not declared are
        seeded draws from ``submodel.rates`` per partition.
    **kwargs
        As :class:`~fedot.fl.strategy.FedotStrategy`.
    """

    scheme: ClassVar[str] = "heterofl"
    linear_aggregation: ClassVar[bool] = False

    def __init__(self, *, submodel: SubmodelConfig | Mapping[str, Any] | None = None,
                 model: torch.nn.Module | None = None, input_shape: tuple[int, ...] | None = None,
                 partitions: Literal["query", "node-order"] = "query", **kwargs: Any) -> None:
        super().__init__(partitions=partitions, **kwargs)
        self.submodel = section(SubmodelConfig, submodel, "submodel")
        self.template: torch.nn.Module | None = None
        self.spec: PermutationSpec | None = None
        self.input_shape: tuple[int, ...] = ()
        if model is not None:
            if input_shape is None:
                raise ValueError("pass input_shape=(one sample's shape) with model=: the server "
                                 "counts each submodel's MACs and FLOPs from it")
            self.template = copy.deepcopy(model).cpu()
            self.spec = spec_for(self.template)
            self.input_shape = tuple(int(d) for d in input_shape)
        self.nodes: dict[int, int] = {}  # partition id → Flower node id
        self.sizes: dict[int, int] = {}
        self.rates: dict[int, float] = {}
        self._submodels: dict[int, tuple[ArraySpec, Mapping[str, torch.Tensor]]] = {}
        self._global: torch.nn.Module | None = None
        self._personal: dict[str, float] = {}
        #: Per pruning rate: the submodel architecture and its cost (fixed for the run).
        self._templates: dict[float, torch.nn.Module] = {}
        self._costs: dict[float, SubmodelCost] = {}
        #: partition id → its last uploaded submodel and the global units it held.
        self.history: dict[int, torch.nn.Module] = {}
        self.history_indices: dict[int, Mapping[str, torch.Tensor]] = {}

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the shared constructor arguments plus the ``submodel.*`` section."""
        return {**super().config_kwargs(cfg), "submodel": cfg.submodel}

    def server_task(self, cfg: RunConfig, out_dir: Path) -> ServerTask:
        """Supervised task; server metrics gain the last round's personalised accuracies."""
        dataset, _ = federated_data(cfg, cfg.clients)
        self.template = global_model(cfg, dataset)
        self.spec = spec_for(self.template)
        self.input_shape = tuple(dataset.input_shape)
        task = super().server_task(cfg, out_dir)
        evaluate = task.evaluate

        def with_personal(server_round: int, arrays: ArrayRecord) -> dict[str, float]:
            return {**evaluate(server_round, arrays), **self._personal}

        task.evaluate = with_personal
        return task

    def hyperparameters(self) -> dict[str, Any]:
        """Return the shared hyperparameters plus every ``submodel.*`` key."""
        section = {f"submodel.{k}": v for k, v in self.submodel.model_dump(by_alias=True).items()}
        return {**super().hyperparameters(), **section}

    # ----------------------------------------------------------------------- scheme hooks
    def sar_strength(self) -> float:
        """λ sent to clients (SubFLOT's SAR; 0 for the position-based baselines)."""
        return 0.0

    def extract(self, server_round: int, partition_id: int, rate: float,
                global_model: torch.nn.Module) -> Extraction:
        """Return client ``partition_id``'s submodel, its global unit indices and diagnostics.

        Default: HeteroFL's static slice (the leading units of every hidden group).
        """
        sliced = static_slice(global_model, rate, spec=self.spec)
        return sliced.model, sliced.indices, {}

    def blends_history(self) -> bool:
        """Whether :meth:`configure_train` blends with the history (``submodel.personalise``)."""
        return self.submodel.personalise

    def personalise(self, partition_id: int, model: torch.nn.Module,
                    indices: Mapping[str, torch.Tensor], global_model: torch.nn.Module
                    ) -> torch.nn.Module:
        """Blend ``model`` with the client's last upload seen at ``indices`` (``alpha`` of ``model``).

        :func:`fedot.subflot.history_view` gives the history at the units sent now; a no-op at a
        client's first round (no history).
        """
        history = self.history.get(partition_id)
        if history is None:
            return model
        assert self.spec is not None
        view = copy.deepcopy(model)
        view.load_state_dict(history_view(global_model.state_dict(), history.state_dict(),
                                          self.history_indices[partition_id], indices,
                                          spec=self.spec))
        return blend(model, view, self.submodel.alpha)

    def merge(self, server_round: int, partition_ids: list[int], models: list[torch.nn.Module],
              weights: list[float], global_model: torch.nn.Module
              ) -> tuple[torch.nn.Module, dict[str, Any]]:
        """Return the new global model from the screened submodels.

        Default: position-based averaging (HeteroFL): every global coordinate is the weighted mean
        over the clients holding it, with the indices sent in :meth:`configure_train`.
        """
        assert self.spec is not None
        contributions = [(m.state_dict(), self._submodels[pid][1], w)
                         for pid, m, w in zip(partition_ids, models, weights, strict=True)]
        state = positional_aggregate(global_model.state_dict(), contributions, spec=self.spec)
        merged = copy.deepcopy(global_model)
        merged.load_state_dict(state)
        return merged, {}

    # --------------------------------------------------------------------------- discovery
    def discover(self, grid: Grid) -> None:
        """Find every node's partition id, data size and pruning rate (query or node order)."""
        restored = dict(self.rates)
        for pid, (node, metrics) in self.find_partitions(grid).items():
            self.nodes[pid] = node
            if keys.NUM_EXAMPLES in metrics:
                self.sizes[pid] = int(metrics[keys.NUM_EXAMPLES])
            declared = metrics.get(NODE_RATE_KEY)
            self.rates[pid] = (float(declared) if declared is not None else
                               assign_rate(self.submodel.rate_choices, self.seed, pid))
            if not 0.0 <= self.rates[pid] < 1.0:
                raise ValueError(f"node {node} (partition {pid}) declares "
                                 f"{NODE_RATE_KEY}={self.rates[pid]}; allowed: [0, 1)")
        if not self.nodes:
            raise RuntimeError("discovery: no node answered with a partition id")
        changed = {p: (r, self.rates[p]) for p, r in restored.items()
                   if p in self.rates and self.rates[p] != r}
        if changed:  # a resumed run whose nodes now declare other rates
            raise RuntimeError(f"discovery: rates changed since the checkpoint {changed}")
        self.log.setup.update({"rates": {str(p): r for p, r in sorted(self.rates.items())},
                               "sizes": {str(p): s for p, s in sorted(self.sizes.items())}})
        log(INFO, "%s: %d clients, rates %s", self.scheme, len(self.nodes),
            [self.rates[p] for p in sorted(self.rates)])

    # ------------------------------------------------------------------------------ rounds
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send every connected client its own submodel, rate and SAR strength."""
        assert self.template is not None
        if not self.nodes:
            self.discover(grid)
        self._spec = array_specs(arrays)
        self._global = load_arrays(copy.deepcopy(self.template), arrays)
        connected = set(grid.get_node_ids())
        self._submodels = {}
        messages, extraction = [], {}
        base = {**config, **self.client_config(server_round), keys.SERVER_ROUND: server_round,
                LAM_KEY: self.sar_strength()}
        for pid in sorted(self.nodes):
            if self.nodes[pid] not in connected:
                continue
            rate = self.rates[pid]
            model, indices, diag = self.extract(server_round, pid, rate, self._global)
            if self.blends_history():
                model = self.personalise(pid, model, indices, self._global)
            record = to_arrays(model)
            self._submodels[pid] = (array_specs(record), indices)
            if diag:
                extraction[str(pid)] = diag
            extra: dict[str, Any] = {RATE_KEY: rate}
            if self.submodel.permute_clients and pid not in self.history:
                extra[PERMUTE_KEY] = derive_seed(self.seed, 0x9E, pid)
            content = RecordDict({self.arrayrecord_key: record, self.configrecord_key:
                                  ConfigRecord({**base, **extra})})
            messages.append(Message(content, self.nodes[pid], MessageType.TRAIN))
        if extraction:
            self.log.entry(server_round)["extraction"] = extraction
        return messages

    def reply_spec(self) -> Callable[[RecordDict], ArraySpec | None]:
        """Return the check for a reply: exactly the arrays sent to its partition."""
        def expected(content: RecordDict) -> ArraySpec:
            pid = partition_of(content)
            return (self._submodels[pid][0] if pid in self._submodels
                    else {"<no submodel sent>": ((), "")})

        return expected

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Decode the submodels, :meth:`merge` them, record accounting and personal accuracy."""
        assert self.template is not None and self._global is not None
        pids = [int(partition_of(c)) for c in contents]  # type: ignore[arg-type]
        models = [load_arrays(self._submodel(self.rates[pid]), next(iter(c.array_records.values())))
                  for pid, c in zip(pids, contents, strict=True)]
        merged, diagnostics = self.merge(server_round, pids, models, weights, self._global)
        for pid, model in zip(pids, models, strict=True):
            self.history[pid] = model
            self.history_indices[pid] = self._submodels[pid][1]
        self._account(server_round, pids, contents)
        return to_arrays(merged), diagnostics

    def _submodel(self, rate: float) -> torch.nn.Module:
        """Return a fresh module of the submodel architecture at ``rate`` (sliced once per rate)."""
        assert self.template is not None
        if rate not in self._templates:
            self._templates[rate] = submodel_template(self.template, rate)
        return copy.deepcopy(self._templates[rate])

    def _cost(self, rate: float) -> SubmodelCost:
        """Return the submodel's parameters, payload and MACs at ``rate`` (computed once per rate)."""
        assert self.template is not None
        if rate not in self._costs:
            self._costs[rate] = submodel_cost(self.template, rate, self.input_shape, spec=self.spec)
        return self._costs[rate]

    def _account(self, server_round: int, pids: list[int], contents: list[RecordDict]) -> None:
        """Record traffic, compute and personalised accuracy of this round's clients.

        Local-training FLOPs are 6 × forward MACs × examples × ``local.epochs``
        (:func:`fedot.subflot.training_flops`), from the reply's ``num-examples``.
        """
        traffic: dict[str, dict[str, Any]] = {}
        for pid, content in zip(pids, contents, strict=True):
            cost = self._cost(self.rates[pid])
            received = sum(int(np.prod(a.shape)) for a in
                           next(iter(content.array_records.values())).values())
            examples = int(metrics_of(content)[keys.NUM_EXAMPLES])
            traffic[str(pid)] = {
                "rate": self.rates[pid], "params": cost.parameters, "sent": cost.payload,
                "received": received, "macs": cost.macs,
            }
            if self.local is not None:  # the epochs are known only when the server sets them
                traffic[str(pid)]["train-flops"] = cost.training_flops(
                    examples, epochs=self.local.epochs)
        entry = self.log.entry(server_round)
        entry["accounting"] = traffic
        totals = ("sent", "received", "train-flops") if self.local is not None else ("sent",
                                                                                    "received")
        entry["accounting_total"] = {k: int(sum(t[k] for t in traffic.values())) for k in totals}
        personal = {str(pid): float(metrics_of(c)["personal-accuracy"])
                    for pid, c in zip(pids, contents, strict=True)
                    if "personal-accuracy" in metrics_of(c)}
        if personal:
            values = list(personal.values())
            self._personal = {"personal-accuracy-mean": float(np.mean(values)),
                              "personal-accuracy-worst": float(np.min(values))}
            entry["personal_accuracy"] = personal

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send nothing: clients evaluate their own submodels after training instead.

        That personalised evaluation comes back with the train replies.
        """
        return []

    # ------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Return rates, data sizes, histories (last uploads and their units) and personal metrics.

        Node ids are transient and not kept: discovery maps partitions to nodes again.
        """
        return {**super().state_dict(), "submodel": {
            "rates": {str(p): r for p, r in self.rates.items()},
            "sizes": {str(p): s for p, s in self.sizes.items()},
            "personal": dict(self._personal),
            "history": {str(p): m.state_dict() for p, m in self.history.items()},
            "history_indices": {str(p): {g: i.tolist() for g, i in idx.items()}
                                for p, idx in self.history_indices.items()}}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (discovery then re-maps partitions to node ids)."""
        state = dict(state)
        own = state.pop("submodel")
        super().load_state_dict(state)
        self.rates = {int(p): float(r) for p, r in own["rates"].items()}
        self.sizes = {int(p): int(s) for p, s in own["sizes"].items()}
        self._personal = {k: float(v) for k, v in own["personal"].items()}
        self.history, self.history_indices = {}, {}
        for key, sub_state in own["history"].items():
            model = self._submodel(self.rates[int(key)])
            model.load_state_dict(sub_state)
            self.history[int(key)] = model
            self.history_indices[int(key)] = {
                g: torch.tensor(i, dtype=torch.int64) for g, i in own["history_indices"][key].items()}
