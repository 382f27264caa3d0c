r"""SubFLOT [Jiang, He, Chen & Sun, CVPR 2026]: personalised submodels by OT pruning and OT aggregation.

Paper: https://arxiv.org/abs/2604.06631

Each round, for every client i with pruning rate ρ_i (:mod:`fedot.subflot`):

* **OTP** (server): align the global model to client i's last uploaded submodel (its history, a
  data-free proxy of its data) by progressive layer-wise exact OT on incoming-weight rows, merging
  global units into the client's (rows averaged, inputs summed), then blend
  W̃_i = α·W_aligned + (1 − α)·W_i. Cold start (no history yet): the static leading slice.
* **SAR** (client): local loss + λ·ρ_i·‖W − W̃_i‖² (the anchor is the received submodel).
* **OTA** (server): align every updated submodel into the previous global model by the same
  progressive OT (client units copied into the global units they cover) and average with data-size
  weights.

Switches for the ablation (``submodel.otp``, ``submodel.sar``, ``submodel.ota``): without OTP the
static slice is sent; without SAR λ = 0; without OTA the submodels are averaged by position (as
HeteroFL). With all three off this is exactly HeteroFL. Clients run the ``submodel`` task.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedot.fl.submodel import Extraction, SubmodelStrategy
from fedot.fusion.align import summarise_layers
from fedot.subflot import ota_aggregate, ota_match, otp_extract, otp_match, static_slice

__all__ = ["SubFLOT"]


class SubFLOT(SubmodelStrategy):
    """OTP extraction against each client's history, SAR, OTA aggregation; see the module docs."""

    scheme: ClassVar[str] = "subflot"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: partition id → its last uploaded submodel (the OTP proxy of its data).
        self.history: dict[int, torch.nn.Module] = {}

    def sar_strength(self) -> float:
        """λ when SAR is on, else 0."""
        return self.submodel.lam if self.submodel.sar else 0.0

    def extract(self, server_round: int, partition_id: int, rate: float,
                global_model: torch.nn.Module) -> Extraction:
        """OTP against the client's history (static slice at a cold start or with OTP off)."""
        s = self.submodel
        if not s.otp:
            sliced = static_slice(global_model, rate, spec=self.spec)
            return sliced.model, sliced.indices, {}
        history = self.history.get(partition_id)
        if s.map == "match":
            res = otp_match(global_model, history, rate, alpha=s.alpha, spec=self.spec)
        else:
            res = otp_extract(global_model, history, rate, alpha=s.alpha, method=s.method,
                              reg=s.reg, spec=self.spec)
        diag: dict[str, Any] = {"cold_start": res.cold_start}
        if not res.cold_start:
            diag["layers"] = summarise_layers(res.diagnostics)
        # Position-based merging (OTA off) needs positions: the static slice's, as in HeteroFL.
        indices = res.indices if s.ota else static_slice(global_model, rate, spec=self.spec).indices
        return res.model, indices, diag

    def merge(self, server_round: int, partition_ids: list[int], models: list[torch.nn.Module],
              weights: list[float], global_model: torch.nn.Module
              ) -> tuple[torch.nn.Module, dict[str, Any]]:
        """OTA (or position-based averaging with OTA off); keep every submodel as history."""
        for pid, model in zip(partition_ids, models, strict=True):
            self.history[pid] = model
        if not self.submodel.ota:
            return super().merge(server_round, partition_ids, models, weights, global_model)
        s = self.submodel
        if s.map == "match":
            res, _ = ota_match(global_model, models, weights, spec=self.spec)
        else:
            res = ota_aggregate(global_model, models, weights, method=s.method, reg=s.reg,
                                spec=self.spec)
        layers = summarise_layers(d for per_client in res.diagnostics for d in per_client)
        return res.model, {"layers": layers}

    def state_dict(self) -> dict[str, Any]:
        """Return the base state plus every client's history (its last uploaded submodel)."""
        return {**super().state_dict(),
                "history": {str(p): m.state_dict() for p, m in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; histories are rebuilt at each partition's rate."""
        state = dict(state)
        history = state.pop("history")
        super().load_state_dict(state)
        self.history = {}
        for key, sub_state in history.items():
            model = self._submodel(self.rates[int(key)])
            model.load_state_dict(sub_state)
            self.history[int(key)] = model
