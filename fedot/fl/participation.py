"""Partial participation: the server draws each round's available clients from an availability model.

:class:`PartialParticipation` is the shared base of the FedAVOT scheme and its baselines
(``fedavg-subset``, ``fedavg-k``, ``fedavg-full``). It adds to :class:`~fedot.fl.strategy.FedotStrategy`:

* **discovery** — before round 1 it sends one ``query`` message to every node; each ClientApp answers
  with its stable ``partition-id`` and its data sizes (never a sample). That maps the availability
  model's client indices (partition ids) to Flower node ids, in simulation and deployment alike;
* the **importance** p (by data size, uniform, or a power law) and the **availability** model
  (:mod:`fedot.availability`) with its subset distribution q (exact or Monte-Carlo, seeded);
* **configure_train** sends the global model only to the round's available subset; in ``observed``
  mode (deployment, q unknown) it asks every node and q is learned online from who replies;
* **aggregate_arrays** calls :meth:`PartialParticipation.coefficients` for the partitions that
  actually replied (a node lost mid-round is simply not in the subset) and takes the weighted sum;
* federated evaluation every ``evaluate-every`` rounds (and the last), on the split
  ``evaluate-split``, with the p-weighted loss ``loss_p`` = Σ p_i f_i / Σ p_i over the evaluated
  clients (the FedAVOT objective F_p when all clients evaluate) and the p-weighted accuracy
  ``accuracy_p``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from logging import INFO
from typing import Any, Literal

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MessageType, MetricRecord, RecordDict
from flwr.common import log
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result

from fedot import availability as av
from fedot.config import ParticipationConfig, RunConfig, section
from fedot.fl import keys
from fedot.fl.aggregate import weighted_sum
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import derive_seed
from fedot.fl.validation import array_specs, metrics_of, partition_of

__all__ = ["PartialParticipation", "build_availability", "importance_vector"]


def importance_vector(kind: str, sizes: np.ndarray, power: float) -> np.ndarray:
    """Return the importance p over clients 0..N-1 (sums to 1)."""
    n = len(sizes)
    if kind == "data-size":
        p = sizes.astype(np.float64)
    elif kind == "uniform":
        p = np.ones(n)
    else:  # "power": p_i ∝ (N + 1 − i)^a, i = 1..N (decreasing in the partition id)
        p = av.power_weights(n, power, increasing=False)
    return p / p.sum()


def _importance_weights(values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"importance must be a non-empty vector of finite weights >= 0 with a "
                         f"positive sum, got {values!r}")
    return p / p.sum()


def build_availability(cfg: ParticipationConfig, num_clients: int) -> av.AvailabilityModel:
    """Build the configured availability model over clients 0..N-1."""
    r = av.power_weights(num_clients, cfg.availability_power, increasing=True)
    kind = cfg.availability
    if kind == "k-of-n":
        return av.KofN(r, cfg.k)
    if kind == "with-replacement":
        return av.WithReplacementDrop(r, cfg.k)
    probs = np.clip(cfg.k * r, 1e-3, 1.0)
    if kind == "bernoulli":
        return av.Bernoulli(probs)
    if kind == "markov":
        rho = cfg.markov_rho
        return av.Markov(p_on_off=(1 - probs) * (1 - rho), p_off_on=probs * (1 - rho))
    if kind == "restricted":
        groups = [g.tolist() for g in np.array_split(np.arange(num_clients), cfg.groups)]
        return av.Restricted(groups, k=min(cfg.k, min(len(g) for g in groups)))
    raise ValueError(f"participation.availability={kind!r} has no sampler")


class PartialParticipation(FedotStrategy):
    """FedotStrategy whose rounds train only the clients an availability model makes available.

    Parameters
    ----------
    participation : ParticipationConfig, mapping or None
        Importance, availability model and evaluation cadence (``participation.*`` keys; None:
        the defaults).
    rounds : int or None
        Number of rounds (the last one is always evaluated); None takes ``num_rounds`` of
        :meth:`start`.
    importance : str, sequence of float or None
        Library use: the importance p over clients 0..N-1 given directly (normalised to sum 1),
        or a ``participation.importance`` kind (``"uniform"``, ``"data-size"``, ``"power"``).
    availability : str, AvailabilityModel or None
        Library use: a :mod:`fedot.availability` model over clients 0..N-1 (its subset law q is
        computed at discovery), or a ``participation.availability`` kind.
    partitions : {"query", "node-order"}
        How client indices are found: ``query`` asks every node once (fedot's ClientApp, or any
        ClientApp whose query handler calls :func:`fedot.fl.client.describe_partition`) for its
        ``partition-id`` and data size; ``node-order`` numbers the connected nodes by sorted
        node id (any ClientApp; data sizes are then unknown, so importance must not be
        ``data-size``).
    **kwargs
        Passed to :class:`~fedot.fl.strategy.FedotStrategy`.
    """

    def __init__(
        self,
        *,
        participation: ParticipationConfig | Mapping[str, Any] | None = None,
        rounds: int | None = None,
        importance: str | Sequence[float] | np.ndarray | None = None,
        availability: str | av.AvailabilityModel | None = None,
        partitions: Literal["query", "node-order"] = "query",
        **kwargs: Any,
    ) -> None:
        super().__init__(partitions=partitions, **kwargs)
        part = section(ParticipationConfig, participation, "participation")
        update: dict[str, Any] = {}
        if isinstance(importance, str):
            update["importance"] = importance
        if isinstance(availability, str):
            update["availability"] = availability
        if update:
            part = section(ParticipationConfig, {**part.model_dump(), **update}, "participation")
        self.participation = part
        self.fixed_importance = None if importance is None or isinstance(importance, str) else (
            _importance_weights(importance))
        if availability is not None and not isinstance(availability, str | av.AvailabilityModel):
            raise TypeError(f"availability must be a kind or a fedot.availability model, got "
                            f"{type(availability).__name__}")
        self.fixed_model = availability if isinstance(availability, av.AvailabilityModel) else None
        if (partitions == "node-order" and self.fixed_importance is None
                and part.importance == "data-size"):
            raise ValueError(
                "importance='data-size' needs every client's data size, which partitions="
                "'node-order' does not learn: give importance explicitly (a vector, 'uniform' "
                "or 'power'), or use partitions='query' with a ClientApp that answers queries "
                "(fedot.fl.client.describe_partition)")
        if rounds is not None and rounds < 1:
            raise ValueError(f"rounds={rounds} must be >= 1")
        self.rounds = rounds
        self.nodes: dict[int, int] = {}  # partition id → node id
        self.sizes = np.zeros(0, dtype=np.int64)
        self.importance = np.zeros(0)
        self.model: av.AvailabilityModel | None = None
        self.distribution: av.SubsetDistribution | None = None
        self.estimator: av.OnlineEstimator | None = None
        self.rng = np.random.default_rng(derive_seed(self.seed, 0xA7A1))

    @classmethod
    def from_config(cls, cfg: RunConfig) -> PartialParticipation:
        """Build from the run config (``participation.*``; schemes add their own section)."""
        return cls(**cls.config_kwargs(cfg))

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the constructor arguments taken from the run config."""
        return {**super().config_kwargs(cfg), "fraction_train": 1.0,
                "participation": cfg.participation, "rounds": cfg.rounds}

    @property
    def num_clients(self) -> int:
        """Number of clients N (known after discovery)."""
        return len(self.sizes)

    def start(self, grid: Grid, initial_arrays: ArrayRecord, num_rounds: int = 3,
              *args: Any, **kwargs: Any) -> Result:
        """Run the rounds (Flower's loop); with ``rounds`` unset, the last is ``num_rounds``."""
        if self.rounds is None:
            self.rounds = kwargs.get("round_offset", 0) + num_rounds
        return super().start(grid, initial_arrays, num_rounds, *args, **kwargs)

    # ----------------------------------------------------------------------------- discovery
    def discover(self, grid: Grid) -> None:
        """Find the clients (query or node order), then prepare p and q."""
        sizes: dict[int, int] = {}
        for pid, (node, metrics) in self.find_partitions(grid).items():
            self.nodes[pid] = node
            # node order declares nothing: sizes 0 (unknown; data-size importance is refused)
            sizes[pid] = int(metrics[keys.NUM_EXAMPLES]) if self.partitions == "query" else 0
        expected = list(range(len(sizes)))
        if sorted(sizes) != expected:
            raise RuntimeError(f"discovery: partition ids {sorted(sizes)} are not 0..{len(sizes) - 1}")
        found = np.array([sizes[i] for i in expected], dtype=np.int64)
        if self.num_clients:  # restored from a checkpoint: keep p, q and the RNG where they are
            if not np.array_equal(found, self.sizes):
                raise RuntimeError(f"discovery: client data sizes {found.tolist()} differ from the "
                                   f"checkpoint's {self.sizes.tolist()}")
            return
        self.configure_clients(found)

    def configure_clients(self, sizes: np.ndarray) -> None:
        """Set the clients' data sizes, then derive p, the availability model, q and the plan.

        Called by :meth:`discover`; callable directly (tests, offline analysis) without Flower.
        """
        self.sizes = np.asarray(sizes, dtype=np.int64)
        if self.fixed_importance is not None:
            if len(self.fixed_importance) != self.num_clients:
                raise ValueError(f"importance has {len(self.fixed_importance)} entries for "
                                 f"{self.num_clients} clients")
            self.importance = self.fixed_importance
        else:
            self.importance = importance_vector(
                self.participation.importance, self.sizes, self.participation.importance_power)
        kind = self.participation.availability
        if self.fixed_model is not None:
            if self.fixed_model.num_clients != self.num_clients:
                raise ValueError(f"the availability model covers {self.fixed_model.num_clients} "
                                 f"clients, {self.num_clients} were found")
            self.model = self.fixed_model
            self.distribution = self.model.distribution(
                self.rng, num_samples=self.participation.mc_samples)
            kind = type(self.model).__name__
        elif kind == "observed":
            self.estimator = av.OnlineEstimator(self.num_clients)
        elif kind != "all":
            self.model = build_availability(self.participation, self.num_clients)
            self.distribution = self.model.distribution(
                self.rng, num_samples=self.participation.mc_samples)
        self.log.setup.update({
            "num_clients": self.num_clients,
            "sizes": self.sizes.tolist() if self.partitions == "query" else None,
            "importance": self.importance.tolist(),
            "support_size": len(self.distribution.subsets) if self.distribution else None,
            "q_exact": self.distribution.exact if self.distribution else None,
        })
        if self.distribution is not None:
            self.log.setup["surrogate_l1"] = float(np.abs(
                av.surrogate_importance(self.distribution, self.num_clients) - self.importance
            ).sum())
        self.prepare()
        log(INFO, "%s: %d clients, availability %s, support %s", self.scheme, self.num_clients,
            kind, self.log.setup["support_size"])

    def prepare(self) -> None:
        """Run once after discovery (hook ; FedAVOT solves its transport plan here)."""

    def state_dict(self) -> dict[str, Any]:
        """Return data sizes, availability RNG, Markov chain state and the online q estimate.

        The data sizes (not p, q or FedAVOT's plan) are saved: :meth:`load_state_dict` derives
        those again exactly as discovery did, then puts the RNG where the run had left it.
        """
        markov = self.model.state if isinstance(self.model, av.Markov) else None
        return {
            **super().state_dict(),
            "participation": {
                "sizes": self.sizes.tolist(),
                "rng": self.rng.bit_generator.state,
                "markov": None if markov is None else markov.tolist(),
                "estimator": None if self.estimator is None else self.estimator.state_dict(),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; discovery then only maps partitions to (new) node ids."""
        state = dict(state)
        own = state.pop("participation")
        super().load_state_dict(state)
        self.rng = np.random.default_rng(derive_seed(self.seed, 0xA7A1))
        if own["sizes"]:
            self.configure_clients(np.asarray(own["sizes"], dtype=np.int64))
        self.rng.bit_generator.state = own["rng"]
        if own["markov"] is not None:
            assert isinstance(self.model, av.Markov)
            self.model.state = np.asarray(own["markov"], dtype=bool)
        if own["estimator"] is not None:
            assert self.estimator is not None
            self.estimator.load_state_dict(own["estimator"])

    # ------------------------------------------------------------------------------- rounds
    def draw(self, server_round: int) -> list[int]:
        """Return the partition ids available in this round."""
        if self.model is None:  # "all" and "observed": ask everyone
            return list(range(self.num_clients))
        return sorted(int(i) for i in self.model.sample(self.rng))

    def client_config(self, server_round: int) -> dict[str, Any]:
        """Local settings plus the evaluation split."""
        return {**super().client_config(server_round),
                keys.EVALUATE_SPLIT: self.participation.evaluate_split}

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global model to this round's available clients only."""
        if not self.nodes:
            self.discover(grid)
        self._spec = array_specs(arrays)
        connected = set(grid.get_node_ids())
        available = self.draw(server_round)
        targets = [self.nodes[p] for p in available if self.nodes.get(p) in connected]
        self.log.entry(server_round)["available"] = available
        config = ConfigRecord({**config, **self.client_config(server_round),
                               keys.SERVER_ROUND: server_round})
        record = RecordDict({self.arrayrecord_key: arrays, self.configrecord_key: config})
        return self._construct_messages(record, targets, MessageType.TRAIN)

    def coefficients(self, server_round: int, subset: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """Return aggregation coefficients for the replying ``subset`` (sorted partition ids).

        Default: importance renormalised over the subset, p_i / Σ_{k∈S} p_k.
        """
        p = self.importance[subset]
        return p / p.sum(), {}

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Weighted sum of the replies with :meth:`coefficients` of the replying partitions."""
        subset = [partition_of(c) for c in contents]
        if any(pid is None or not 0 <= pid < self.num_clients for pid in subset):
            raise ValueError(f"round {server_round}: replies must name known partitions: {subset}")
        coef, diagnostics = self.coefficients(server_round, subset)  # type: ignore[arg-type]
        records = [next(iter(c.array_records.values())) for c in contents]
        diag = {"subset": subset, "coefficients": np.asarray(coef).tolist(), **diagnostics}
        return weighted_sum(records, coef), diag

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Aggregate; in ``observed`` mode, then record the subset that was actually aggregated.

        Recording after aggregation (not inside :meth:`aggregate_arrays`, which the base may call
        again after dropping a non-finite reply) counts each round once, and keeps the round's own
        subset out of the q̂ that weights it: q is estimated from the previous rounds only.
        """
        arrays, metrics = super().aggregate_train(server_round, replies)
        if self.estimator is not None and arrays is not None:
            self.estimator.observe(np.asarray(self.log.entry(server_round)["aggregation"]["subset"]))
        return arrays, metrics

    # --------------------------------------------------------------------------- evaluation
    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Evaluate every ``evaluate-every`` rounds and in the last round."""
        every = self.participation.evaluate_every
        if server_round % every and server_round != self.rounds:
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)

    def evaluate_metrics(self, server_round: int, contents: list[RecordDict]) -> MetricRecord:
        """Data-size-weighted metrics plus ``loss_p`` and ``accuracy_p``, p-weighted over the clients.

        ``loss_p`` = Σ_i p_i f_i / Σ_i p_i over the valid replies (F_p itself when every client
        evaluated; ``importance_covered`` = Σ_i p_i tells how much of p was evaluated);
        ``accuracy_p`` = Σ_i p_i acc_i / Σ_i p_i likewise (classification), the accuracy of the
        clients that matter, each on its own ``evaluate-split`` data.
        """
        metrics = super().evaluate_metrics(server_round, contents)
        pairs: dict[str, list[tuple[float, float]]] = {"loss": [], "accuracy": []}
        for c in contents:
            pid, values = partition_of(c), metrics_of(c)
            if pid is None or not 0 <= pid < self.num_clients:
                continue
            for name, found in pairs.items():
                if values.get(name) is not None:
                    found.append((self.importance[pid], float(values[name])))
        for name, found in pairs.items():
            covered = sum(p for p, _ in found)
            if covered > 0:
                metrics[f"{name}_p"] = sum(p * v for p, v in found) / covered
                metrics.setdefault("importance_covered", covered)
        return metrics

    def hyperparameters(self) -> dict[str, Any]:
        """Return the base hyperparameters plus the participation settings."""
        part = self.participation.model_dump(by_alias=True)
        extra: dict[str, Any] = {}
        if self.partitions != "query":
            extra["partitions"] = self.partitions
        if self.fixed_importance is not None:
            extra["importance"] = self.fixed_importance.tolist()
        if self.fixed_model is not None:
            extra["availability"] = type(self.fixed_model).__name__
        return {**super().hyperparameters(), **{f"participation.{k}": v for k, v in part.items()},
                **extra}
