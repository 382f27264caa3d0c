"""Run configuration: pydantic models validated once, at the edge.

Flower hands every app a flat ``run_config`` (``{"rounds": 20, "local.lr": 0.1, ...}``): the
``[tool.flwr.app.config]`` table of ``pyproject.toml`` with nested tables flattened to dotted
keys, merged with ``--run-config`` overrides. :func:`load_run_config` turns it back into a nested
mapping and validates it with :class:`RunConfig` (``extra="forbid"``, strict types). Any bad key or
value raises :class:`ConfigError` with one message naming the key, the value and what is allowed,
before any training starts.

This module imports neither flwr nor torch: the ServerApp, the ClientApp and the ``fedot`` CLI all
call it, and the CLI validates before it launches anything.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "SCHEMES",
    "ConfigError",
    "DataConfig",
    "FaultConfig",
    "FFMConfig",
    "FusionConfig",
    "SubmodelConfig",
    "FedAVOTConfig",
    "IRLConfig",
    "ParticipationConfig",
    "LocalConfig",
    "ModelConfig",
    "PartitionConfig",
    "RunConfig",
    "flatten",
    "load_run_config",
    "parse_value",
    "section",
    "unflatten",
]

SchemeName = Literal[
    "fedavg", "fedavot", "fedavg-subset", "fedavg-k", "fedavg-full", "irl-barycenter", "irl-average",
    "ffm", "otfusion", "subflot", "heterofl", "fedrolex",
]
#: Registered schemes. Each name has a strategy in ``strategies/`` and a client task in ``clients/``
#: (``tests/test_registry.py`` keeps the three lists equal).
SCHEMES: tuple[str, ...] = get_args(SchemeName)
#: Schemes that draw the round's clients from an availability model (``participation.*``).
#: Schemes whose clients run local MaxEnt IRL on tabular environments (``irl.*``).
IRL_SCHEMES = frozenset({"irl-barycenter", "irl-average"})
#: Schemes that train a generative flow (``ffm.*``).
FLOW_SCHEMES = frozenset({"ffm"})
#: Schemes whose clients train width-pruned submodels of the global model (``submodel.*``).
SUBMODEL_SCHEMES = frozenset({"subflot", "heterofl", "fedrolex"})
PARTIAL_PARTICIPATION_SCHEMES = (
    frozenset(SCHEMES) - {"fedavg", "otfusion"} - IRL_SCHEMES - FLOW_SCHEMES - SUBMODEL_SCHEMES
)
DatasetName = Literal[
    "digits", "wine", "breast-cancer", "mnist1d", "synthetic-regression", "mnist-5k",
    "mnist", "fashion-mnist", "cifar10",
]
PartitionKind = Literal["iid", "dirichlet", "pathological", "shard", "natural"]
ModelName = Literal["logreg", "mlp", "cnn", "linear"]

IMAGE_DATASETS = frozenset({"digits", "mnist-5k", "mnist", "fashion-mnist", "cifar10"})
REGRESSION_DATASETS = frozenset({"synthetic-regression"})

Fraction01 = Annotated[float, Field(ge=0.0, le=1.0)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]


def _alias(name: str) -> str:
    return name.replace("_", "-")


class _Section(BaseModel):
    """Base of every config section: frozen, strict, unknown keys rejected, hyphenated keys."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=_alias,
        populate_by_name=True,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _int_is_float(cls, value: Any, info: Any) -> Any:
        # TOML and Flower's parser give ``lr=1`` as an int; accept it where a float belongs.
        field = cls.model_fields.get(info.field_name)
        if field is not None and field.annotation is float and type(value) is int:
            return float(value)
        return value


class PartitionConfig(_Section):
    """How the training pool is split across clients (``partition.*``)."""

    kind: PartitionKind = "dirichlet"
    alpha: PositiveFloat = 0.5
    classes_per_client: Annotated[int, Field(ge=1)] = 2
    shards_per_client: Annotated[int, Field(ge=1)] = 2
    min_size: Annotated[int, Field(ge=0)] = 10


class DataConfig(_Section):
    """Global and local held-out splits (``data.*``)."""

    test_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.2
    local_test_fraction: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2


class LocalConfig(_Section):
    """Local training on each client (``local.*``); sent to clients every round."""

    epochs: Annotated[int, Field(ge=1)] = 2
    batch_size: Annotated[int, Field(ge=1)] = 32
    lr: PositiveFloat = 0.1
    optimizer: Literal["sgd", "adam"] = "sgd"
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.9
    weight_decay: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    proximal_mu: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0


class ParticipationConfig(_Section):
    """Importance p and availability q for partial-participation schemes (``participation.*``).

    ``importance``: ``data-size`` (p_i ∝ n_i), ``uniform``, or ``power`` (p_i ∝ (N+1−i)^a with
    a = ``importance-power``, decreasing in the partition id, as in FedAVOT's experiments).
    ``availability``: how the server draws each round's available clients: ``k-of-n`` (k clients
    without replacement, weights r_i ∝ i^b with b = ``availability-power``; b = 0 is uniform),
    ``with-replacement`` (FedAVOT's sampler: k i.i.d. draws from r, redrawn on repeats),
    ``bernoulli`` (client i available with probability min(1, k·r_i)), ``markov`` (the same
    stationary probabilities with lag-1 correlation ``markov-rho``), ``restricted`` (``groups``
    contiguous groups of clients that are never available together; k of one group per round),
    ``all`` (every client, every round) or ``observed`` (deployment: whoever replies; q is learned
    online from the subsets seen).
    """

    importance: Literal["data-size", "uniform", "power"] = "data-size"
    importance_power: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.8
    availability: Literal[
        "k-of-n", "with-replacement", "bernoulli", "markov", "restricted", "all", "observed"
    ] = "k-of-n"
    k: Annotated[int, Field(ge=1)] = 2
    availability_power: Annotated[float, Field(allow_inf_nan=False)] = 0.0
    markov_rho: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.5
    groups: Annotated[int, Field(ge=1)] = 2
    mc_samples: Annotated[int, Field(ge=1000)] = 200_000
    evaluate_every: Annotated[int, Field(ge=1)] = 1
    evaluate_split: Literal["train", "test"] = "test"


class FedAVOTConfig(_Section):
    """Masked-OT solver settings of FedAVOT (``fedavot.*``).

    ``plan``: ``ipfp`` (the paper's masked Sinkhorn/IPFP plan, :func:`fedot.ot.masked_sinkhorn`)
    or ``min-variance`` (the unbiased plan of least second moment Σ_j q_j Σ_i Y_ij²,
    :func:`fedot.ot.masked_min_variance`). ``max-iter`` caps IPFP; the Newton solver of
    ``min-variance`` stops at ``tol`` too (at most 500 iterations).
    """

    plan: Literal["ipfp", "min-variance"] = "ipfp"
    tol: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] = 1e-10
    max_iter: Annotated[int, Field(ge=1)] = 10_000
    kappa: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0


class FaultConfig(_Section):
    """Client-side fault injection for tests (``fault.*``); off unless ``kind`` is set.

    The clients whose partition id is listed in ``partitions`` (comma-separated, e.g. ``"1,3"``)
    corrupt their train replies: ``nan``/``inf`` (one array), ``shape`` (one array reshaped),
    ``huge-weight`` (``num-examples`` = 1e30), ``crash`` (the ClientApp raises) or ``slow``
    (sleep ``slow-seconds`` before replying).
    """

    kind: Literal["none", "nan", "inf", "shape", "crash", "slow", "huge-weight"] = "none"
    partitions: str = ""
    slow_seconds: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 5.0

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_from_toml(cls, value: Any) -> Any:
        # `--set fault.kind=nan` parses as TOML, giving the float NaN (or inf): take the name.
        if isinstance(value, float) and not math.isfinite(value):
            return "nan" if math.isnan(value) else "inf"
        return value

    @field_validator("partitions", mode="before")
    @classmethod
    def _ids_from_int(cls, value: Any) -> Any:
        # `--set fault.partitions=1` parses as the int 1.
        return str(value) if type(value) is int else value

    @field_validator("partitions")
    @classmethod
    def _ids(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not all(p.isdigit() for p in parts):
            raise ValueError("must be comma-separated partition ids, e.g. '0,3'")
        return ",".join(parts)

    def targets(self) -> frozenset[int]:
        """Partition ids that inject the fault."""
        return frozenset(int(p) for p in self.partitions.split(",") if p)


IRLEnvName = Literal[
    "gridworld", "frozenlake-4x4", "frozenlake-8x8", "frozenlake-random", "cliffwalking", "taxi",
    "mountaincar", "pendulum",
]
#: Environments whose clients may differ (``irl.heterogeneity``) beyond ``none`` and ``demos``.
IRL_HETEROGENEITY: dict[str, frozenset[str]] = {
    "gridworld": frozenset({"none", "goal-shift", "slip", "layout", "demos"}),
    "frozenlake-random": frozenset({"none", "layout", "demos"}),
}


class IRLConfig(_Section):
    """Federated MaxEnt IRL (``irl.*``), used by ``irl-barycenter`` and ``irl-average``.

    Environment: ``env`` (a gridworld of ``grid-size`` with goal at 70 % of the diagonal, start in
    the corner and ``slip``; gymnasium FrozenLake (``slip`` > 0 makes it slippery;
    ``frozenlake-random`` draws an 8×8 map per seed, or per client with ``layout``), CliffWalking,
    Taxi; MountainCar or Pendulum discretised on ``bins``×``bins`` cells). ``sources`` environment
    variants (0: one per client) differ by ``heterogeneity`` with ``strength`` (goal-shift: cells;
    slip: the largest slip; layout: obstacle density; demos: unequal demonstration counts);
    variant j belongs to client j mod clients. Each variant has ``demos`` expert demonstrations
    (Boltzmann-rational with ``expert-temperature``) plus ``test-demos`` held out.
    Local MaxEnt IRL: ``iterations`` of Adam with ``lr`` and ``l2``; the last ``undertrained``
    variants run only ``undertrained-iterations``. From round 2 a client warm-starts from the
    broadcast reward (``warm-start``) and is pulled to it with ``prior-weight``.
    Fusion (``irl-barycenter``): reward → measure map ``measure`` with temperature ``tau``,
    entropic regularisation ``reg`` (relative to the max ground cost), solver ``barycenter``;
    both schemes weight clients by demonstration count or uniformly (``weights``).
    """

    env: IRLEnvName = "gridworld"
    grid_size: Annotated[int, Field(ge=3, le=256)] = 10
    slip: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    bins: Annotated[int, Field(ge=4, le=200)] = 20
    heterogeneity: Literal["none", "goal-shift", "slip", "layout", "demos"] = "goal-shift"
    strength: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 2.0
    sources: Annotated[int, Field(ge=0)] = 0
    demos: Annotated[int, Field(ge=1)] = 50
    test_demos: Annotated[int, Field(ge=0)] = 20
    horizon: Annotated[int, Field(ge=0)] = 0
    expert_temperature: PositiveFloat = 0.2
    iterations: Annotated[int, Field(ge=1)] = 100
    lr: PositiveFloat = 0.1
    l2: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.05
    undertrained: Annotated[int, Field(ge=0)] = 0
    undertrained_iterations: Annotated[int, Field(ge=1)] = 5
    warm_start: bool = True
    prior_weight: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    measure: Literal["softmax", "shift", "minmax"] = "softmax"
    tau: PositiveFloat = 1.0
    reg: PositiveFloat = 0.01
    barycenter: Literal["auto", "sinkhorn_log", "ibp", "convolutional"] = "auto"
    weights: Literal["demos", "uniform"] = "demos"


class FFMConfig(_Section):
    """Federated flow matching (``ffm.*``), scheme ``ffm``.

    Clients hold samples of their part of the target (``data``: a 2-D density, 8x8 ``digits`` or
    28x28 ``mnist-5k`` (real MNIST, offline) scaled to [-1, 1]); the source is N(0, I).
    ``split``: ``mode`` (each client its own modes/regions; for images, its own classes),
    ``region`` (2-D only: client ``c`` holds the points in the ``c``-th of ``clients`` equal
    angular sectors of the plane, whatever the modes), ``dirichlet`` over modes or labels with
    ``alpha``, or ``iid``.
    ``samples``: size of the 2-D training pool (plus ``eval-samples`` held out).
    ``coupling``: ``vanilla`` (independent pairs), ``lot`` (exact minibatch OT on each client) or
    ``got`` (a dual potential learned federatedly in ``potential-rounds`` extra rounds, before the
    ``rounds`` flow rounds, of
    ``potential-local-steps`` steps each — 1, per-step aggregation, because averaging potentials
    trained apart on different modes does not give the potential of the mixture — then
    frozen; pairs (x0*(x1), x1) from its c-transform with ``candidates`` source candidates and
    ``refine-steps`` gradient steps of size ``step-size``). Optimizer semantics (``optimizer``,
    ``lr``; ``potential-lr`` in stage 1): with ``local-steps = 1`` (``potential-local-steps = 1``
    in stage 1) each client replies with the gradient of its loss on one batch of
    ``batch-size`` and the **server** holds the optimizer (its Adam state persists across rounds),
    so a round is one step of the optimizer on Σ λ_i L_i — per-step aggregation, centralised
    training of the weighted objective. With more local steps each client trains
    ``local-steps`` steps from the global model and the server averages the models (FedAvg);
    ``optimizer-state = "persist"`` keeps each client's optimizer state across rounds (in its
    Flower ``Context``, mirrored to disk when ``checkpoint`` is on so a resumed run continues
    it), ``"reset"`` builds a fresh optimizer every round. ``sigma`` > 0 uses the
    Gaussian path (I-CFM). Models: an MLP (``hidden``, ``layers``) for 2-D, a small conv net
    (``channels``) for digits and a two-level one for mnist-5k. The server evaluates
    ``eval-samples`` generated samples at NFE ∈ ``nfe`` (Euler) at round 0, every
    ``eval-every`` rounds and after the last (clients evaluate in the same rounds only).
    """

    data: Literal[
        "8gaussians", "moons", "checkerboard", "spirals", "circles", "digits", "mnist-5k"
    ] = "8gaussians"
    split: Literal["mode", "region", "dirichlet", "iid"] = "mode"
    alpha: PositiveFloat = 0.3
    samples: Annotated[int, Field(ge=10)] = 4000
    coupling: Literal["vanilla", "lot", "got"] = "vanilla"
    local_steps: Annotated[int, Field(ge=1)] = 20
    batch_size: Annotated[int, Field(ge=2)] = 256
    optimizer: Literal["adam", "sgd"] = "adam"
    optimizer_state: Literal["persist", "reset"] = "persist"
    lr: PositiveFloat = 2e-3
    sigma: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 0.0
    hidden: Annotated[int, Field(ge=1)] = 128
    layers: Annotated[int, Field(ge=1)] = 3
    channels: Annotated[int, Field(ge=1)] = 32
    potential_rounds: Annotated[int, Field(ge=0)] = 200
    potential_local_steps: Annotated[int, Field(ge=1)] = 1
    potential_lr: PositiveFloat = 5e-3
    candidates: Annotated[int, Field(ge=1)] = 256
    refine_steps: Annotated[int, Field(ge=0)] = 5
    step_size: PositiveFloat = 0.1
    eval_samples: Annotated[int, Field(ge=10)] = 1000
    eval_every: Annotated[int, Field(ge=1)] = 10
    nfe: str = "1,2,3,5,10,20,100"

    @field_validator("nfe")
    @classmethod
    def _nfe(cls, value: str) -> str:
        parts = [p.strip() for p in value.split(",") if p.strip()]
        if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("must be comma-separated positive integers, e.g. '1,3,10'")
        return ",".join(str(v) for v in sorted({int(p) for p in parts}))

    def nfe_list(self) -> tuple[int, ...]:
        """Return the NFE values to evaluate, ascending."""
        return tuple(int(p) for p in self.nfe.split(","))

    def server_steps(self, stage: str) -> bool:
        """Whether clients reply with gradients and the server steps the optimizer in ``stage``."""
        steps = self.potential_local_steps if stage == "potential" else self.local_steps
        return steps == 1


class FusionConfig(_Section):
    """OT model fusion (``fusion.*``), scheme ``otfusion``.

    Each round the server aligns every client model to the current global model layer by layer
    (OTFusion; Singh & Jaggi 2020) and averages with the FedAvg weights. ``metric``: neuron
    ground cost from incoming ``weights`` or from ``activations`` on a probe batch the server
    holds — ``probe = "server-test"`` (``probe-size`` samples of the server's held-out set: the
    server must hold data like the clients') or ``"noise"`` (Gaussian inputs: no data, weaker
    signal). ``method``: ``exact`` plans (assignment / ``ot.emd``) or entropic ``sinkhorn`` with
    ``reg`` (relative to each layer's largest cost). ``iterations`` of align-then-average per
    round. ``basis = "sae"`` aligns the hidden group ``sae-layer`` (default: the first) in the basis of
    sparse-autoencoder features (``sae-features`` dictionary size, ``sae-k`` active features, 0 =
    defaults; ``sae-steps``) learned on the probe, the other groups by OTFusion.
    """

    metric: Literal["weights", "activations"] = "weights"
    method: Literal["exact", "sinkhorn"] = "exact"
    reg: PositiveFloat = 0.01
    probe: Literal["server-test", "noise"] = "server-test"
    probe_size: Annotated[int, Field(ge=2)] = 256
    iterations: Annotated[int, Field(ge=1)] = 1
    basis: Literal["neurons", "sae"] = "neurons"
    sae_layer: str = ""
    sae_features: Annotated[int, Field(ge=0)] = 0
    sae_k: Annotated[int, Field(ge=0)] = 0
    sae_steps: Annotated[int, Field(ge=1)] = 500


class SubmodelConfig(_Section):
    """Width-heterogeneous clients (``submodel.*``), schemes ``subflot``, ``heterofl``, ``fedrolex``.

    Client ``i`` can only train a model whose hidden widths are ``1 - rho_i`` of the global
    model's. ``rates``: the pruning rates rho in [0, 1) the server draws from, uniformly and seeded
    per partition id (a SuperNode's ``node-config`` key ``submodel-rate`` overrides the draw).
    SubFLOT (arXiv 2604.06631): the server cuts each client's submodel by layer-wise OT against
    the client's last uploaded model (``otp``; blend ``alpha`` of the aligned global model and the
    history), clients add ``lam * rho_i * ||W - W_anchor||^2`` to the local loss (``sar``), and
    the server aligns the updated submodels back into the global space by OT and averages them
    with data-size weights (``ota``); switching a module off replaces it by HeteroFL's
    leading-unit slice / position-based averaging / no penalty.

    ``map``: how OTP and OTA use a plan between global and client units. ``barycentric`` (the
    default, the paper's algorithm): exact OT with uniform marginals on Euclidean distances, the
    plan's full mass used (OTP merges global units into client units, OTA copies each client unit
    into the global units it covers; ``sum_i p_i T_i(W_i)`` with ``p_i`` proportional to data size).
    ``match``: a variant that rounds the problem to a one-to-one assignment on squared distances
    (OTP takes the matched global units, OTA writes each client unit back at its matched global
    unit and averages every coordinate over its holders, HeteroFL's rule at OT-found positions).
    ``method``: ``exact`` plans or ``sinkhorn`` with ``reg``. ``lam`` = 1.0 is the paper's value
    (which trains with SGD at lr 0.001; at a larger local lr the penalty's pull per step,
    ``2 * lr * lam * rho``, grows with it, see docs/subflot.md).

    ``personalise``: blend every sent submodel with the client's own last upload,
    ``alpha * W_sent + (1 - alpha) * W_history`` (at the global units the history held; the
    other units keep the sent values) — the personalisation step that SubFLOT's OTP ends with,
    offered to ``heterofl``, ``fedrolex`` and to ``subflot`` with ``otp`` off, so comparisons can
    separate what OT alignment buys from what personalisation buys. (With ``otp`` on, SubFLOT
    always blends; ``alpha = 1`` turns the blend off.)

    ``permute-clients``: a stress setting. On its first round every client reorders the hidden
    units of the model it received by its own seeded random permutation (the same function), so
    the clients' models — and their uploads — are in different unit orders the server does not
    know. Position-based averaging then mixes unrelated units; OT alignment can undo it.
    """

    rates: str = "0,0.25,0.5,0.75"
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5
    lam: Annotated[float, Field(ge=0.0, allow_inf_nan=False)] = 1.0
    otp: bool = True
    sar: bool = True
    ota: bool = True
    map: Literal["barycentric", "match"] = "barycentric"
    method: Literal["exact", "sinkhorn"] = "exact"
    reg: PositiveFloat = 0.01
    personalise: bool = False
    permute_clients: bool = False

    @field_validator("rates", mode="before")
    @classmethod
    def _rates_list(cls, value: Any) -> Any:
        # `--set submodel.rates=0.5` parses as a float; a list from TOML as a list.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            try:
                rates = [float(p) for p in parts]
            except ValueError:
                raise ValueError(f"rates must be comma-separated numbers, got {value!r}") from None
            if not rates or any(not 0.0 <= r < 1.0 for r in rates):
                raise ValueError(f"every rate must lie in [0, 1), got {value!r}")
        return value

    @property
    def rate_choices(self) -> tuple[float, ...]:
        """The pruning rates to draw from."""
        return tuple(float(p) for p in self.rates.split(",") if p.strip())


class ModelConfig(_Section):
    """The global model (``model.*``)."""

    name: ModelName = "mlp"
    hidden: Annotated[int, Field(ge=1)] = 64

#: Experiment-tracking backends of the ``tracking`` key (fedot.fl.tracking).
TRACKING_BACKENDS = ("tensorboard", "mlflow")


class RunConfig(_Section):
    """The whole validated run configuration.

    Field names use underscores in Python; the run-config keys are the same names with hyphens
    (``fraction_train`` ↔ ``fraction-train``) and dotted sections (``local.lr``).
    """

    scheme: SchemeName = "fedavg"
    rounds: Annotated[int, Field(ge=1)] = 20
    clients: Annotated[int, Field(ge=1)] = 10
    seed: Annotated[int, Field(ge=0)] = 0
    dataset: DatasetName = "digits"
    device: str = "auto"
    out_dir: str = ""
    fraction_train: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    fraction_evaluate: Fraction01 = 1.0
    round_timeout: PositiveFloat = 3600.0
    wait_timeout: PositiveFloat = 120.0
    min_replies: Annotated[int, Field(ge=1)] = 1
    checkpoint: bool = True
    #: Run directory of an interrupted run to continue from its last checkpoint (empty: a new run).
    resume: str = ""
    #: Experiment tracking of the per-round metrics: "none", "tensorboard", "mlflow", or both
    #: comma-separated ("tensorboard,mlflow"); see fedot.fl.tracking and docs/results.md.
    tracking: str = "none"
    #: MLflow tracking URI (empty: an SQLite store ``mlflow.db`` in the run directory).
    tracking_uri: str = ""
    #: MLflow experiment the runs are logged under.
    tracking_experiment: Annotated[str, Field(min_length=1)] = "fedot"
    partition: PartitionConfig = PartitionConfig()
    data: DataConfig = DataConfig()
    local: LocalConfig = LocalConfig()
    model: ModelConfig = ModelConfig()
    participation: ParticipationConfig = ParticipationConfig()
    fedavot: FedAVOTConfig = FedAVOTConfig()
    fault: FaultConfig = FaultConfig()
    irl: IRLConfig = IRLConfig()
    ffm: FFMConfig = FFMConfig()
    fusion: FusionConfig = FusionConfig()
    submodel: SubmodelConfig = SubmodelConfig()

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, value: str) -> str:
        kinds = [k.strip() for k in value.split(",") if k.strip()]
        if kinds == ["none"]:
            return "none"
        bad = [k for k in kinds if k not in TRACKING_BACKENDS]
        if not kinds or bad or len(set(kinds)) != len(kinds):
            raise ValueError("must be 'none' or a comma-separated list of distinct backends from "
                             f"{', '.join(repr(k) for k in TRACKING_BACKENDS)}")
        if "mlflow" in kinds and importlib.util.find_spec("mlflow") is None:
            raise ValueError("'mlflow' needs the mlflow extra: pip install 'fedot[mlflow]'")
        return ",".join(kinds)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or (
            value.startswith("cuda:") and value[5:].isdigit()
        ):
            return value
        raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")

    @model_validator(mode="after")
    def _compatible(self) -> RunConfig:
        if self.model.name == "cnn" and self.dataset not in IMAGE_DATASETS:
            raise ValueError(
                f"model.name='cnn' needs an image dataset ({', '.join(sorted(IMAGE_DATASETS))}); "
                f"dataset={self.dataset!r} is vector data: use 'mlp' or 'logreg'"
            )
        regression = self.dataset in REGRESSION_DATASETS
        if regression and self.model.name not in ("linear", "mlp"):
            raise ValueError(
                f"dataset={self.dataset!r} is a regression task: model.name must be 'linear' or "
                f"'mlp', not {self.model.name!r}"
            )
        if not regression and self.model.name == "linear":
            raise ValueError(
                f"model.name='linear' is for regression; dataset={self.dataset!r} is a "
                "classification task: use 'logreg', 'mlp' or 'cnn'"
            )
        if regression and self.partition.kind not in ("iid", "natural"):
            raise ValueError(
                f"partition.kind={self.partition.kind!r} splits by label; dataset="
                f"{self.dataset!r} is a regression task: use 'iid' or 'natural'"
            )
        if (
            self.scheme in PARTIAL_PARTICIPATION_SCHEMES
            and self.participation.availability not in ("all", "observed")
            and self.participation.k > self.clients
        ):
            raise ValueError(
                f"participation.k={self.participation.k} exceeds clients={self.clients}"
            )
        if self.scheme in SUBMODEL_SCHEMES and self.model.name not in ("mlp", "cnn"):
            raise ValueError(
                f"scheme={self.scheme!r} prunes hidden widths: model.name must be 'mlp' or 'cnn', "
                f"not {self.model.name!r}"
            )
        if self.ffm.split == "region" and self.ffm.data in ("digits", "mnist-5k"):
            raise ValueError(
                "ffm.split='region' splits the plane into angular sectors and needs 2-D data; "
                f"ffm.data={self.ffm.data!r} is split by label: use 'mode', 'dirichlet' or 'iid'"
            )
        irl = self.irl
        allowed = IRL_HETEROGENEITY.get(irl.env, frozenset({"none", "demos"}))
        if self.scheme in IRL_SCHEMES and irl.heterogeneity not in allowed:
            raise ValueError(
                f"irl.heterogeneity={irl.heterogeneity!r} is not available for irl.env="
                f"{irl.env!r}; allowed: {', '.join(sorted(allowed))}"
            )
        sources = irl.sources or self.clients
        if self.scheme in IRL_SCHEMES and sources < self.clients:
            raise ValueError(
                f"irl.sources={irl.sources} is smaller than clients={self.clients}: every client "
                "needs at least one environment variant (0 means one per client)"
            )
        if self.scheme in IRL_SCHEMES and irl.undertrained > sources:
            raise ValueError(f"irl.undertrained={irl.undertrained} exceeds the {sources} variants")
        if self.scheme in IRL_SCHEMES and irl.barycenter == "convolutional" and irl.env in (
            "taxi",
        ):
            raise ValueError("irl.barycenter='convolutional' needs a grid; irl.env='taxi' is not one")
        if self.partition.kind == "natural" and not regression:
            raise ValueError(
                f"partition.kind='natural' needs a dataset with natural clients "
                f"(synthetic-regression); dataset={self.dataset!r}"
            )
        return self

    def flat(self) -> dict[str, Any]:
        """Return the config as Flower's flat run-config mapping (dotted, hyphenated keys)."""
        return flatten(self.model_dump(by_alias=True))


class ConfigError(ValueError):
    """A run configuration that fails validation; the message names key, value and what is allowed."""


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Turn dotted keys (``{"local.lr": 0.1}``) into nested dicts (``{"local": {"lr": 0.1}}``).

    Raises
    ------
    ConfigError
        If a key is used both as a value and as a section (``model=1`` and ``model.name=...``).
    """
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        node = nested
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"config key {'.'.join(parts[: i + 1])!r} is a section, not a value "
                    f"(got {child!r}); set keys inside it such as {key!r}"
                )
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ConfigError(
                f"config key {key!r} is a section; set one of its keys instead "
                f"({', '.join(f'{key}.{k}' for k in node[parts[-1]])})"
            )
        node[parts[-1]] = value
    return nested


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of :func:`unflatten`."""
    flat: dict[str, Any] = {}
    for key, value in nested.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix=f"{name}."))
        else:
            flat[name] = value
    return flat


def _allowed_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys.extend(_allowed_keys(ann, prefix=f"{prefix}{alias}."))
        else:
            keys.append(f"{prefix}{alias}")
    return keys


def _describe(error: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    if kind == "extra_forbidden":
        section = ".".join(str(p) for p in error["loc"][:-1])
        allowed = [k for k in _allowed_keys(RunConfig) if not section or k.startswith(section + ".")]
        return f"unknown config key {key!r}; allowed keys: {', '.join(allowed)}"
    value = error.get("input")
    msg = str(error["msg"])
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    if not key:  # a model-level (cross-field) check
        return msg
    return f"config key {key!r} = {value!r}: {msg}"


def load_run_config(run_config: Mapping[str, Any]) -> RunConfig:
    """Validate Flower's flat run config (or a nested mapping) into a :class:`RunConfig`.

    Parameters
    ----------
    run_config : Mapping[str, Any]
        ``context.run_config`` or any mapping with dotted keys; missing keys take defaults.

    Returns
    -------
    RunConfig
        The frozen, validated configuration.

    Raises
    ------
    ConfigError
        One message listing every bad key with its value and what is allowed.

    Examples
    --------
    >>> load_run_config({"rounds": 3, "local.lr": 0.05}).local.lr
    0.05
    >>> load_run_config({"rounds": 0})
    Traceback (most recent call last):
    ...
    fedot.config.ConfigError: invalid run config: config key 'rounds' = 0: Input should be \
greater than or equal to 1
    """
    nested = unflatten(run_config)
    try:
        return RunConfig.model_validate(nested)
    except ValidationError as exc:
        lines = [_describe(e) for e in exc.errors()]
        raise ConfigError("invalid run config: " + "; ".join(lines)) from None


SectionT = TypeVar("SectionT", bound=BaseModel)


def section(model: type[SectionT], value: SectionT | Mapping[str, Any] | None, name: str) -> SectionT:
    """Validate one config section given as keyword arguments (library use of the strategies).

    Parameters
    ----------
    model : type
        The section's model, e.g. :class:`FedAVOTConfig`.
    value : model instance, mapping or None
        An instance (returned as is), a mapping of its keys — run-config spelling
        (``{"max-iter": 500}``) or Python spelling (``{"max_iter": 500}``) — or None for the
        defaults.
    name : str
        The section's run-config name (``"fedavot"``), used in error messages.

    Raises
    ------
    ConfigError
        Naming ``name.key``, the value and what is allowed (unknown keys list the allowed ones).

    Examples
    --------
    >>> section(FedAVOTConfig, {"max-iter": 500}, "fedavot").max_iter
    500
    >>> section(FedAVOTConfig, {"plan": "exact"}, "fedavot")
    Traceback (most recent call last):
    ...
    fedot.config.ConfigError: invalid fedavot settings: config key 'fedavot.plan' = 'exact': \
Input should be 'ipfp' or 'min-variance'
    """
    if value is None:
        return model()
    if isinstance(value, model):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"{name} settings must be a {model.__name__} or a mapping of its keys, "
                          f"got {type(value).__name__}")
    try:
        return model.model_validate(dict(value))
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            key = ".".join([name, *(str(p) for p in error["loc"])])
            if error["type"] == "extra_forbidden":
                allowed = ", ".join(_allowed_keys(model, prefix=f"{name}."))
                lines.append(f"unknown config key {key!r}; allowed keys: {allowed}")
            else:
                msg = str(error["msg"]).removeprefix("Value error, ")
                lines.append(f"config key {key!r} = {error.get('input')!r}: {msg}")
        raise ConfigError(f"invalid {name} settings: " + "; ".join(lines)) from None


def parse_value(text: str) -> Any:
    """Parse one ``--set key=value`` value the way Flower parses ``--run-config``: as TOML.

    ``5`` → int, ``0.1`` → float, ``true`` → bool, ``"x"`` or a bare word → str.
    """
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def is_finite_number(value: Any) -> bool:
    """Return True for an int or a finite float (bools excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
