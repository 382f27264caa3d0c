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

Defaults are the paper's: barycentric maps of exact OT plans (uniform marginals, Euclidean costs),
λ = 1, α = 0.5; ``submodel.map = "match"`` is the one-to-one assignment variant. Switches for the
ablation (``submodel.otp``, ``submodel.sar``, ``submodel.ota``): without OTP the static slice is
sent (blended with the history only with ``submodel.personalise``); without SAR λ = 0; without OTA
the submodels are averaged by position (as HeteroFL). With all three off this is exactly HeteroFL.
Per round ``results.json`` records ``plan_off_identity`` (the mean distance of the OTP and OTA
plans from the identity, :attr:`fedot.ot.PlanResult.off_identity`) and ``ota_weights``. Clients
run the ``submodel`` task.
"""

from __future__ import annotations

import math
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
        #: This round's OTP off-identity values (every group of every non-cold client).
        self._otp_off: list[float] = []
        self._otp_round = 0

    def blends_history(self) -> bool:
        """With OTP on the blend is OTP's own last step; ``personalise`` adds it without OTP."""
        return self.submodel.personalise and not self.submodel.otp

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
        if server_round != self._otp_round:
            self._otp_round, self._otp_off = server_round, []
        if not res.cold_start:
            diag["layers"] = summarise_layers(res.diagnostics)
            self._otp_off += [d.off_identity for d in res.diagnostics]
        # Position-based merging (OTA off) needs positions: the static slice's, as in HeteroFL.
        indices = res.indices if s.ota else static_slice(global_model, rate, spec=self.spec).indices
        return res.model, indices, diag

    def merge(self, server_round: int, partition_ids: list[int], models: list[torch.nn.Module],
              weights: list[float], global_model: torch.nn.Module
              ) -> tuple[torch.nn.Module, dict[str, Any]]:
        """OTA (or position-based averaging with OTA off), with the clients' data-size weights."""
        entry = self.log.entry(server_round)
        off = {"otp": _mean(self._otp_off if self._otp_round == server_round else [])}
        if not self.submodel.ota:
            entry["plan_off_identity"] = {**off, "ota": math.nan}
            return super().merge(server_round, partition_ids, models, weights, global_model)
        s = self.submodel
        if s.map == "match":
            res, _ = ota_match(global_model, models, weights, spec=self.spec)
        else:
            res = ota_aggregate(global_model, models, weights, method=s.method, reg=s.reg,
                                spec=self.spec)
        diags = [d for per_client in res.diagnostics for d in per_client]
        entry["plan_off_identity"] = {**off, "ota": _mean([d.off_identity for d in diags])}
        entry["ota_weights"] = {str(p): w for p, w in zip(partition_ids, res.weights, strict=True)}
        return res.model, {"layers": summarise_layers(diags)}


def _mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none)."""
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else math.nan
