r"""OTFusion [Singh & Jaggi, NeurIPS 2020] as a federated aggregation: align, then average.

Paper: https://arxiv.org/abs/1910.05653.

Neurons of independently trained networks are identified only up to a permutation, so averaging
parameters coordinate-wise mixes unrelated units — badly so when clients drift apart during many
local epochs. Each round, every client model is aligned to the current global model layer by layer:
for hidden group ℓ, a transport plan T_ℓ between the client's and the global model's neurons
(ground cost from the incoming weights with the previous layer's plan applied, or from
pre-activations on a probe batch) re-indexes the client's rows (and the next layer's columns),
W ← diag(1/β) T_ℓᵀ W; the output layer is never permuted. The aligned models are then averaged with
the FedAvg weights (data sizes). Diagnostics per round: the mean fraction of plan mass off the
identity per layer (0 when the clients did not permute anything) and the transport cost.

With ``fusion.basis = "sae"``, one hidden group is aligned in the basis of sparse-autoencoder
features learned on the probe (:func:`fedot.fusion.fuse_sae`), the others by OTFusion.

Clients run the ``classifier`` task. Config: ``fusion.*``. The alignment is non-linear, so every
reply is checked for NaN/Inf before it is aligned. The server aligns on the run's ``device``
(``auto``: CUDA when the server has it): models, probe, distances and entropic plans live there;
exact plans are solved on the CPU from the cost computed on the device.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedot.config import FusionConfig, RunConfig, section
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import ServerTask, derive_seed, federated_data, global_model, load_arrays, to_arrays
from fedot.fusion import derive_spec, fuse_detailed, fuse_sae
from fedot.fusion.align import summarise_layers
from fedot.learning import resolve_device

__all__ = ["OTFusion"]


class OTFusion(FedotStrategy):
    """Align every client model to the global model, then average; see the module docstring.

    Parameters
    ----------
    fusion : FusionConfig, mapping or None
        ``fusion.*`` settings (metric, plan method, regularisation, probe, SAE basis).
    model : torch.nn.Module, optional
        Library use: the architecture of the global model (its weights are not used; each
        round's global arrays are loaded into a copy). fedot's ServerApp sets it from the run
        config in :meth:`server_task`.
    probe : torch.Tensor, optional
        Library use: inputs for ``fusion.metric = "activations"`` and the SAE basis (e.g. a
        held-out batch the server owns); required by those settings.
    device : str or torch.device
        Where the server aligns (``"cpu"``, ``"cuda"``, ...).
    **kwargs
        Passed to :class:`~fedot.fl.strategy.FedotStrategy`.
    """

    scheme: ClassVar[str] = "otfusion"
    linear_aggregation: ClassVar[bool] = False

    def __init__(self, *, fusion: FusionConfig | Mapping[str, Any] | None = None,
                 model: torch.nn.Module | None = None, probe: torch.Tensor | None = None,
                 device: str | torch.device = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fusion = section(FusionConfig, fusion, "fusion")
        self.device = torch.device(device)
        self.template = None if model is None else copy.deepcopy(model).to(self.device)
        self.probe = None if probe is None else torch.as_tensor(probe).to(self.device)
        needs_probe = self.fusion.metric == "activations" or self.fusion.basis == "sae"
        if model is not None and needs_probe and probe is None:
            raise ValueError(f"fusion.metric={self.fusion.metric!r}, fusion.basis="
                             f"{self.fusion.basis!r} align on activations: pass probe=<inputs>")
        self._broadcast: ArrayRecord | None = None

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the shared constructor arguments plus the ``fusion.*`` section."""
        return {**super().config_kwargs(cfg), "fusion": cfg.fusion}

    def server_task(self, cfg: RunConfig, out_dir: Path) -> ServerTask:
        """Return the supervised task; keep the model template and the server's probe batch."""
        dataset, _ = federated_data(cfg, cfg.clients)
        self.device = resolve_device(cfg.device)
        self.template = global_model(cfg, dataset).to(self.device)
        f = self.fusion
        if f.probe == "server-test":
            self.probe = torch.as_tensor(dataset.test.x[: f.probe_size])
        else:
            gen = torch.Generator().manual_seed(derive_seed(cfg.seed, 91))
            self.probe = torch.randn((f.probe_size, *dataset.input_shape), generator=gen)
        self.probe = self.probe.to(self.device)
        return super().server_task(cfg, out_dir)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the broadcast global model (the alignment target), then configure as FedAvg."""
        self._broadcast = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def hyperparameters(self) -> dict[str, Any]:
        """Return the shared hyperparameters plus every ``fusion.*`` key."""
        fusion = {f"fusion.{k}": v for k, v in self.fusion.model_dump(by_alias=True).items()}
        return {**super().hyperparameters(), **fusion}

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Align the replies' models to the broadcast global model and average them."""
        if self.template is None:
            raise RuntimeError("OTFusion needs the model architecture: pass model=<torch module> "
                               "(library use) or run it through fedot's ServerApp")
        assert self._broadcast is not None
        f = self.fusion
        models = [load_arrays(copy.deepcopy(self.template), next(iter(c.array_records.values())))
                  for c in contents]
        target = load_arrays(copy.deepcopy(self.template), self._broadcast)
        probe = self.probe if (f.metric == "activations" or f.basis == "sae") else None
        if f.basis == "sae":
            fused = fuse_sae(
                models, layer=f.sae_layer or derive_spec(self.template).order[0], probe=probe,
                target=target, weights=weights, features=f.sae_features or None,
                k=f.sae_k or None, steps=f.sae_steps, seed=derive_seed(self.seed, server_round, 92),
                metric=f.metric, method=f.method, reg=f.reg, iterations=f.iterations,
            )
            return to_arrays(fused), {"basis": "sae"}
        res = fuse_detailed(models, target=target, weights=weights, metric=f.metric, probe=probe,
                            method=f.method, reg=f.reg, iterations=f.iterations)
        layers = summarise_layers(d for per_model in res.diagnostics for d in per_model)
        return to_arrays(res.model), {"layers": layers}
