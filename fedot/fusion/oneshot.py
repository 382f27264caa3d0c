r"""One-shot fusion of K independently trained, label-skewed parents (no Flower).

The pipeline of the one-shot experiments of issue 4 (``fedot fusion-experiment fusion-oneshot``):

1. **Data.** :func:`fedot.data.load_dataset` gives a training pool and a global test split; the pool
   is split among ``parents`` shards by :func:`fedot.data.federated_split` (``kind="dirichlet"``,
   Dirichlet(``alpha``) label shares, every sample in exactly one shard; the same partitioner as the
   federated runs). Partition seed = the run seed.
2. **Parents.** Parent ``k`` is built with :func:`fedot.learning.build_model` from seed
   ``1000 * seed + k`` — a *different* initialisation per parent, so hidden units are not aligned —
   and trained on its own shard only (:func:`fedot.learning.train`).
3. **Fusion.** Every method maps the K parents to one model of the parents' architecture:

   ``average``
       Vanilla parameter average (floating buffers, e.g. BN running statistics, too).
   ``ot-weights`` / ``ot-activations``
       OTFusion (:func:`fedot.fusion.fuse`, exact OT, uniform marginals, one iteration, parent 0 is
       the target): ground metric from incoming weights, or from pre-activations on the probe.
   ``rebasin``
       Git Re-Basin weight matching (:func:`fedot.fusion.weight_matching`) of every parent
       ``k > 0`` to parent 0, then the average (for K > 2: all matched to the first).
   ``sae-ot``
       :func:`fedot.fusion.fuse_sae`: the *first* hidden group is aligned through OT-matched SAE
       features (``map="permutation"``, since that group is followed by a ReLU — and, in the CNN,
       a batch norm — where only permutations preserve the function), every other group by
       OTFusion with the weights metric.
   ``ot-weights+repair`` / ``rebasin+repair``
       The same alignments, then REPAIR (:func:`fedot.fusion.repair`): every hidden unit of the
       average renormalised on the probe to the mean and standard deviation of its matched units
       in the aligned parents (BN nets: running statistics re-estimated on the probe).

   Two references are not single models of that architecture: ``ensemble``, the mean of the
   parents' softmax outputs (:class:`PredictionEnsemble`), and the parents themselves.
4. **Probe.** ``probe_size`` inputs drawn uniformly without replacement from the training pool
   (the union of the parents' shards; seed-dependent). It is used by ``ot-activations``,
   ``sae-ot`` and the ``+repair`` methods only; in a federated deployment it is data the fusing
   party must hold.
5. **Fine-tuning.** Every fused model, and every parent (whence "ensemble + FT"), is then trained
   for ``finetune_epochs`` epochs on the union of the parents' shards with the parents' optimiser
   settings (``finetune_lr``, default the training lr) and one shuffling seed shared by all
   methods. BN models are fine-tuned in train mode, so their running statistics are re-estimated.
6. **Metrics** on the global test split: accuracy, cross-entropy, and agreement with the
   ensemble (fraction of test inputs with the same arg-max as the ensemble).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fedot.data import LoadedDataset, federated_split, label_counts, load_dataset
from fedot.fusion.align import LayerDiagnostics, align, fuse, fuse_detailed
from fedot.fusion.rebasin import weight_matching
from fedot.fusion.repair import repair
from fedot.fusion.sae import fuse_sae
from fedot.fusion.spec import spec_for
from fedot.learning import build_model, evaluate, resolve_device, train

__all__ = [
    "METHODS",
    "OneShotConfig",
    "PredictionEnsemble",
    "SavedFusion",
    "average_models",
    "build_from_state",
    "fuse_method",
    "fuse_saved",
    "infer_architecture",
    "load_state",
    "make_shards",
    "run_oneshot",
    "train_parents",
]

METHODS: tuple[str, ...] = ("average", "ot-weights", "ot-activations", "rebasin", "sae-ot",
                             "ot-weights+repair", "rebasin+repair")
"""Fusion methods of :func:`fuse_method`, in report order."""


@dataclass(frozen=True)
class OneShotConfig:
    """Settings of one one-shot fusion setting (see the module docs).

    Attributes
    ----------
    dataset : str
        :func:`fedot.data.load_dataset` name (``"digits"``, ``"mnist1d"``, ...).
    model : str
        :func:`fedot.learning.build_model` name (``"mlp"``, ``"cnn"``).
    parents : int
        Number of parents K.
    hidden : int
        ``hidden`` of :func:`fedot.learning.build_model`.
    alpha : float
        Dirichlet concentration of the label skew.
    min_size : int
        Minimum shard size of the Dirichlet partitioner.
    test_fraction : float
        Global test fraction (digits; MNIST-1D keeps its own split).
    epochs, batch_size, lr, optimizer, momentum
        Parent training (:func:`fedot.learning.train`).
    finetune_epochs : int
        Epochs of fine-tuning on the union of the shards (0: none).
    finetune_lr : float, optional
        Fine-tuning learning rate (default ``lr``).
    probe_size : int
        Probe inputs for ``ot-activations`` and ``sae-ot``.
    sae_steps : int
        SAE training steps (:func:`fedot.fusion.train_sae`).
    sae_features, sae_k : int, optional
        SAE dictionary size and top-k (defaults of :func:`fedot.fusion.train_sae`).
    methods : tuple of str
        Subset of :data:`METHODS` to run.
    """

    dataset: str = "digits"
    model: str = "mlp"
    parents: int = 2
    hidden: int = 128
    alpha: float = 0.1
    min_size: int = 10
    test_fraction: float = 0.2
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    finetune_epochs: int = 1
    finetune_lr: float | None = None
    probe_size: int = 256
    sae_steps: int = 500
    sae_features: int | None = None
    sae_k: int | None = None
    methods: tuple[str, ...] = METHODS

    def __post_init__(self) -> None:
        unknown = set(self.methods) - set(METHODS)
        if unknown:
            raise ValueError(f"unknown methods {sorted(unknown)}; allowed: {', '.join(METHODS)}")
        if self.parents < 1:
            raise ValueError(f"parents must be >= 1, got {self.parents}")
        if self.probe_size < 1 or self.finetune_epochs < 0:
            raise ValueError("probe_size must be >= 1 and finetune_epochs >= 0")

    def with_(self, **changes: Any) -> OneShotConfig:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)


class PredictionEnsemble(nn.Module):
    """Mean of the members' softmax outputs, returned as log-probabilities.

    ``log(mean_k softmax(f_k(x)))`` is a valid logit vector: its arg-max is the ensemble's
    prediction and its cross-entropy is the negative log-likelihood of the mixture, so
    :func:`fedot.learning.evaluate` works on it unchanged.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float] | None = None) -> None:
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)
        w = (torch.ones(len(members)) if weights is None
             else torch.as_tensor(weights, dtype=torch.float32))
        self.register_buffer("weights", w / w.sum())

    def forward(self, x: Tensor) -> Tensor:
        """Log of the weighted mean of the members' softmax outputs."""
        logp = torch.stack([torch.log_softmax(m(x), dim=-1) for m in self.members])
        logw = self.weights.to(logp).log().view(-1, *([1] * (logp.dim() - 1)))
        return torch.logsumexp(logp + logw, dim=0)


def average_models(models: Sequence[nn.Module], weights: Sequence[float] | None = None) -> nn.Module:
    """Plain (weighted) average of every floating tensor of the models' ``state_dict``.

    Integer buffers (``num_batches_tracked``) are taken from the first model.
    """
    if not models:
        raise ValueError("models must not be empty")
    w = np.ones(len(models)) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    states = [m.state_dict() for m in models]
    out = copy.deepcopy(models[0])
    avg = {}
    for key, value in states[0].items():
        if value.is_floating_point():
            avg[key] = sum(float(wk) * s[key] for wk, s in zip(w, states, strict=True))
        else:
            avg[key] = value.clone()
    out.load_state_dict(avg)
    return out


def _probe(x: np.ndarray, size: int, seed: int) -> Tensor:
    """Return a seeded probe batch: ``min(size, len(x))`` rows of ``x``, without replacement."""
    idx = np.random.default_rng([seed, 7]).choice(len(x), size=min(size, len(x)), replace=False)
    return torch.as_tensor(x[idx], dtype=torch.float32)


def make_shards(cfg: OneShotConfig, seed: int) -> tuple[LoadedDataset, list[np.ndarray]]:
    """Load ``cfg.dataset`` and split its training pool into ``cfg.parents`` Dirichlet shards."""
    dataset, parts = federated_split(cfg.dataset, seed=seed, num_partitions=cfg.parents,
                                     kind="dirichlet", alpha=cfg.alpha, min_size=cfg.min_size,
                                     test_fraction=cfg.test_fraction)
    return dataset, list(parts)


def train_parents(
    cfg: OneShotConfig, dataset: LoadedDataset, parts: Sequence[np.ndarray], seed: int
) -> list[nn.Module]:
    """Train parent ``k`` from init seed ``1000 * seed + k`` on shard ``k`` only."""
    parents = []
    for k, idx in enumerate(parts):
        model = build_model(cfg.model, dataset.input_shape, dataset.num_classes, hidden=cfg.hidden,
                            seed=1000 * seed + k)
        shard = dataset.train.subset(idx)
        train(model, shard.x, shard.y, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
              optimizer=cfg.optimizer, momentum=cfg.momentum, seed=1000 * seed + k)
        parents.append(model.eval())
    return parents


def fuse_method(
    method: str, parents: Sequence[nn.Module], *, probe: Tensor, cfg: OneShotConfig, seed: int = 0
) -> nn.Module:
    """Fuse ``parents`` with one of :data:`METHODS` (see the module docs)."""
    models = list(parents)
    if method == "average":
        return average_models(models)
    if method == "ot-weights":
        return fuse(models, metric="weights", method="exact")
    if method == "ot-activations":
        return fuse(models, metric="activations", probe=probe, method="exact")
    if method in ("rebasin", "rebasin+repair"):
        matched = [models[0]] + [weight_matching(m, models[0], seed=seed).model for m in models[1:]]
        fused = average_models(matched)
        return repair(fused, matched, probe) if method.endswith("+repair") else fused
    if method == "ot-weights+repair":
        aligned = [align(m, models[0], metric="weights", method="exact").model for m in models]
        return repair(average_models(aligned), aligned, probe)
    if method == "sae-ot":
        return fuse_sae(models, layer=spec_for(models[0]).order[0], probe=probe, map="permutation",
                        metric="weights", steps=cfg.sae_steps, features=cfg.sae_features,
                        k=cfg.sae_k, seed=seed)
    raise ValueError(f"unknown method {method!r}; allowed: {', '.join(METHODS)}")


def _predict(model: nn.Module, x: np.ndarray) -> Tensor:
    with torch.no_grad():
        model.eval()
        return model(torch.as_tensor(x, dtype=torch.float32)).argmax(-1)


def _metrics(model: nn.Module, dataset: LoadedDataset, ens_pred: Tensor | None) -> dict[str, float]:
    res = evaluate(model, dataset.test.x, dataset.test.y)
    out = {"accuracy": float(res.accuracy), "loss": float(res.loss)}
    if ens_pred is not None:
        out["agreement"] = float((_predict(model, dataset.test.x) == ens_pred).float().mean())
    return out


def _finetune(
    model: nn.Module, x: np.ndarray, y: np.ndarray, cfg: OneShotConfig, seed: int
) -> nn.Module:
    out = copy.deepcopy(model)
    train(out, x, y, epochs=cfg.finetune_epochs, batch_size=cfg.batch_size,
          lr=cfg.finetune_lr if cfg.finetune_lr is not None else cfg.lr, optimizer=cfg.optimizer,
          momentum=cfg.momentum, seed=seed)
    return out.eval()


def run_oneshot(
    cfg: OneShotConfig,
    seed: int,
    *,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one seed of a one-shot fusion setting; returns a JSON-ready result.

    Returns
    -------
    dict
        ``config``, ``seed``, ``label_counts`` (per shard), ``probe`` (description),
        ``parents`` (list of metrics, each with ``finetuned``), ``ensemble`` and ``methods``
        (method -> ``accuracy``, ``loss``, ``agreement`` with the ensemble, ``time_s`` of the
        fusion and ``finetuned`` metrics), ``time_s`` (per stage).
    """
    say = log or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    dataset, parts = make_shards(cfg, seed)
    timings["data"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    parents = train_parents(cfg, dataset, parts, seed)
    timings["train_parents"] = time.perf_counter() - t0
    # the Dirichlet shards partition the whole training pool: their union is dataset.train
    probe = _probe(dataset.train.x, cfg.probe_size, seed)
    ensemble = PredictionEnsemble(parents)
    ens_pred = _predict(ensemble, dataset.test.x)
    x_union, y_union = dataset.train.x, dataset.train.y
    ft_seed = 10_000 + seed
    do_ft = cfg.finetune_epochs > 0

    t0 = time.perf_counter()
    parent_rows = []
    ft_parents = []
    for p in parents:
        row: dict[str, Any] = _metrics(p, dataset, ens_pred)
        if do_ft:
            ftp = _finetune(p, x_union, y_union, cfg, ft_seed)
            ft_parents.append(ftp)
            row["finetuned"] = _metrics(ftp, dataset, ens_pred)
        parent_rows.append(row)
    ens_row: dict[str, Any] = _metrics(ensemble, dataset, ens_pred)
    if do_ft:
        ens_row["finetuned"] = _metrics(PredictionEnsemble(ft_parents), dataset, ens_pred)
    timings["references"] = time.perf_counter() - t0
    say(f"parents {[round(r['accuracy'], 3) for r in parent_rows]}, ensemble {ens_row['accuracy']:.3f}")

    methods: dict[str, dict[str, Any]] = {}
    for method in cfg.methods:
        t0 = time.perf_counter()
        fused = fuse_method(method, parents, probe=probe, cfg=cfg, seed=seed)
        fuse_time = time.perf_counter() - t0
        row = {**_metrics(fused, dataset, ens_pred), "time_s": fuse_time}
        if do_ft:
            row["finetuned"] = _metrics(_finetune(fused, x_union, y_union, cfg, ft_seed), dataset,
                                        ens_pred)
        methods[method] = row
        timings[f"method:{method}"] = time.perf_counter() - t0
        say(f"{method}: {row['accuracy']:.3f}"
            + (f" (FT {row['finetuned']['accuracy']:.3f})" if do_ft else "") + f", {fuse_time:.2f} s")
    return {
        "config": asdict(cfg),
        "seed": int(seed),
        "label_counts": label_counts(dataset.train.y, list(parts), dataset.num_classes).tolist(),
        "shard_sizes": [int(len(p)) for p in parts],
        "test_size": len(dataset.test),
        "probe": f"{int(probe.shape[0])} inputs drawn uniformly without replacement from the union "
                 "of the parents' training shards",
        "parents": parent_rows,
        "ensemble": ens_row,
        "methods": methods,
        "time_s": timings,
    }


# ---------------------------------------------------------------------------------------------
# Saved models (``fedot fuse``)


def load_state(path: str | Path) -> tuple[dict[str, Tensor], dict[str, Any] | None]:
    """Read a saved model: a ``state_dict`` file or a fedot run directory.

    Parameters
    ----------
    path : str or Path
        A run directory (its ``checkpoint.pt`` ``arrays`` = the global model, and ``config.json``),
        a ``checkpoint.pt`` itself, or a ``.pt`` file holding a ``state_dict`` (or a dict with a
        ``"state_dict"`` entry). Loaded with ``weights_only=True``.

    Returns
    -------
    tuple of (dict, dict or None)
        The state dict (CPU tensors) and the run config when there is one.

    Raises
    ------
    FileNotFoundError
        If the path does not exist or a run directory has no ``checkpoint.pt``.
    ValueError
        If the file holds no recognisable state dict.
    """
    p = Path(path)
    config: dict[str, Any] | None = None
    if p.is_dir():
        if (p / "config.json").is_file():
            config = json.loads((p / "config.json").read_text())
        p = p / "checkpoint.pt"
        if not p.is_file():
            raise FileNotFoundError(f"{path} is a directory without checkpoint.pt (not a fedot run "
                                    "directory, or the run had checkpoint = false)")
    elif not p.is_file():
        raise FileNotFoundError(f"no such file or directory: {path}")
    obj = torch.load(p, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and "arrays" in obj:
        config = config or obj.get("config")
        obj = obj["arrays"]
    elif isinstance(obj, Mapping) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path}: expected a state_dict (str -> Tensor), a checkpoint with 'arrays' "
                         "or a dict with 'state_dict'")
    return {str(k): v for k, v in obj.items()}, config


def infer_architecture(state: Mapping[str, Tensor]) -> tuple[str, int, int]:
    """Guess ``(model name, hidden, num_classes)`` of a :func:`fedot.learning.build_model` state dict.

    ``"cnn"`` when a 4-D weight is present, ``"logreg"`` for a single linear layer, else ``"mlp"``;
    ``hidden`` and ``num_classes`` from the last linear layer ``(classes, hidden)``.
    """
    linear = [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2]
    if not linear:
        raise ValueError("the state dict has no linear layer: not a build_model() model")
    name = "cnn" if any(k.endswith("weight") and v.dim() == 4 for k, v in state.items()) else (
        "logreg" if len(linear) == 1 else "mlp")
    last = linear[-1]
    return name, int(last.shape[1]), int(last.shape[0])


def build_from_state(
    state: Mapping[str, Tensor],
    *,
    model: str | None = None,
    hidden: int | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> nn.Module:
    """Build the :func:`fedot.learning.build_model` architecture of ``state`` and load it (strict).

    ``model``/``hidden`` default to :func:`infer_architecture`; ``input_shape`` defaults to the first
    linear layer's input width for vector models and is required for ``"cnn"``.
    """
    name, inferred_hidden, classes = infer_architecture(state)
    name = model or name
    if input_shape is None:
        if name == "cnn":
            raise ValueError("a cnn needs its input shape (C, H, W): give a dataset")
        first = next(v for k, v in state.items() if k.endswith("weight") and v.dim() == 2)
        input_shape = (int(first.shape[1]),)
    net = build_model(name, tuple(input_shape), classes, hidden=hidden or inferred_hidden, seed=0)
    net.load_state_dict(dict(state), strict=True)
    return net.eval()


@dataclass(frozen=True)
class SavedFusion:
    """Result of :func:`fuse_saved`.

    Attributes
    ----------
    model : torch.nn.Module
        The fused model.
    parents : list of torch.nn.Module
        The loaded input models.
    dataset : LoadedDataset or None
        The dataset used for the architecture, the probe and evaluation (if any).
    diagnostics : tuple of tuple of LayerDiagnostics
        Per input model, the per-group alignment diagnostics.
    """

    model: nn.Module
    parents: list[nn.Module]
    dataset: LoadedDataset | None
    diagnostics: tuple[tuple[LayerDiagnostics, ...], ...]


def fuse_saved(
    paths: Sequence[str | Path],
    *,
    model: str | None = None,
    hidden: int | None = None,
    dataset: str | None = None,
    seed: int | None = None,
    metric: str = "weights",
    method: str = "exact",
    reg: float = 0.01,
    weights: Sequence[float] | None = None,
    probe_size: int = 256,
    iterations: int = 1,
    device: str | torch.device = "cpu",
) -> SavedFusion:
    """Fuse K saved models (state-dict files or run directories, :func:`load_state`) by OTFusion.

    Every input's architecture comes from ``model``/``hidden``, else from its run config
    (``model.name``, ``model.hidden``), else from its state dict (:func:`infer_architecture`);
    widths may differ (fusion maps every input to the first one's width). The dataset
    (``dataset``, else the first run config's) gives the input shape and, for
    ``metric="activations"``, the probe: ``probe_size`` training inputs drawn with ``seed`` (default
    the run config's seed, else 0). The first model is the fusion target.

    ``device`` (``"cpu"``, ``"cuda"``, ``"auto"``): where the models are loaded and every distance
    and plan is computed (exact plans solve on the CPU from the cost computed there); the fused
    model and the parents stay on it.
    """
    if not paths:
        raise ValueError("give at least one model to fuse")
    where = resolve_device(device)
    loaded = [load_state(p) for p in paths]
    config = next((c for _, c in loaded if c), None) or {}
    dataset = dataset or config.get("dataset")
    seed = int(seed if seed is not None else config.get("seed", 0))
    data = None
    if dataset is not None:
        test_fraction = float(config.get("data", {}).get("test-fraction", 0.2))
        data = load_dataset(dataset, seed=seed, test_fraction=test_fraction)
    parents = []
    for state, cfg_k in loaded:  # every input keeps its own width (fusion maps it to the target's)
        arch = (cfg_k or {}).get("model", {})
        parents.append(build_from_state(
            state, model=model or arch.get("name"), hidden=hidden or arch.get("hidden"),
            input_shape=data.input_shape if data is not None else None).to(where))
    probe = None
    if metric == "activations":
        if data is None:
            raise ValueError("metric='activations' needs a dataset for the probe (dataset=...)")
        probe = _probe(data.train.x, probe_size, seed)
    res = fuse_detailed(parents, weights=weights, metric=metric, probe=probe,  # type: ignore[arg-type]
                        method=method, reg=reg, iterations=iterations)  # type: ignore[arg-type]
    return SavedFusion(model=res.model.eval(), parents=parents, dataset=data,
                       diagnostics=res.diagnostics)
