r"""Federated flow matching [Wang, Dong, Selim, Zavlanos & Johansson, 2025]: FFM-vanilla/LOT/GOT.

Paper: https://arxiv.org/abs/2509.21250. The method sections were not available; the algorithms are
reconstructed from the abstract and public reviews (see ``docs/ffm.md``).

Clients hold samples of their part q_{i1} of the target q_{1,λ} = Σ_i λ_i q_{i1} (λ_i ∝ data
size); all share the public source q_0 = N(0, I). They train one velocity field v_θ on the flow
matching loss E ‖v_θ(t, (1−t)x0 + t x1) − (x1 − x0)‖² over a coupling π of (q_0, q_{1,λ}):

* ``vanilla`` — independent pairs (I-CFM with stratified batches): curved flows;
* ``lot`` — each client re-pairs its minibatch by exact OT (``ot.emd``): π = Σ λ_i OT(q_0, q_{i1}),
  a valid coupling but not the global OT plan, further from it as clients differ;
* ``got`` — a shared dual potential f_φ on the source side is learned first (stage 1,
  ``ffm.potential-rounds`` rounds before the ``rounds`` flow rounds): clients ascend the semi-dual
  J(φ) = E_{q0} f_φ + Σ λ_i E_{q_{i1}} f_φ^c, f^c(x1) = min_{x0} ½‖x0 − x1‖² − f_φ(x0), whose
  client terms need only their own data and public source samples; then (stage 2, φ frozen) they
  train v_θ on pairs (x0*(x1), x1) from the approximate c-transform — the restriction of the global
  OT plan to their data.

Server: FedAvg of the ArrayRecord (θ, and φ for ``got``) weighted by data size; with
``ffm.local-steps = 1`` and ``ffm.optimizer = "sgd"`` this is per-step aggregation of the gradient
of Σ λ_i L_i. Each round's ConfigRecord carries ``ffm.stage`` and the stage is recorded per round.
The server never sees a data sample; it evaluates generated samples against a held-out target.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedot.config import FFMConfig, RunConfig
from fedot.fl.aggregate import weighted_average
from fedot.fl.flow import STAGE_KEY, evaluation_round, flow_server_task, total_rounds
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import ServerTask

__all__ = ["FederatedFlowMatching"]


class FederatedFlowMatching(FedotStrategy):
    """FedAvg over the flow (and potential) with the GOT stage schedule; see the module docstring."""

    scheme: ClassVar[str] = "ffm"

    def __init__(self, *, ffm: FFMConfig, cfg: RunConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ffm = ffm
        self.cfg = cfg

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Return the shared constructor arguments plus the ``ffm.*`` section and the config."""
        return {**super().config_kwargs(cfg), "ffm": cfg.ffm, "cfg": cfg}

    def stage(self, server_round: int) -> str:
        """``"potential"`` for GOT's first ``ffm.potential-rounds`` rounds, else ``"flow"``."""
        if self.ffm.coupling == "got" and server_round <= self.ffm.potential_rounds:
            return "potential"
        return "flow"

    def num_rounds(self, cfg: RunConfig) -> int:
        """Return ``rounds`` flow rounds plus, for GOT, ``ffm.potential-rounds`` before them."""
        return total_rounds(cfg)

    def server_task(self, cfg: RunConfig, out_dir: Path) -> ServerTask:
        """Return initial θ (and φ), sample-quality metrics vs the held-out target, plots."""
        return flow_server_task(cfg, out_dir)

    def client_config(self, server_round: int) -> dict[str, Any]:
        """Send the stage of this round (and nothing else: clients read ``ffm.*`` from the run)."""
        return {STAGE_KEY: self.stage(server_round)}

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Ask clients to evaluate only in the server's evaluation rounds (cheap rounds else)."""
        if not evaluation_round(self.cfg, server_round):
            return []
        return super().configure_evaluate(server_round, arrays, config, grid)

    def aggregate_arrays(
        self, server_round: int, contents: list[RecordDict], weights: list[float]
    ) -> tuple[ArrayRecord, dict[str, Any]]:
        """Weighted mean of the replies (data-size weights); records the round's stage."""
        self.log.entry(server_round)["stage"] = self.stage(server_round)
        records = [next(iter(c.array_records.values())) for c in contents]
        return weighted_average(records, weights), {"stage": self.stage(server_round)}

    def hyperparameters(self) -> dict[str, Any]:
        """Return the shared hyperparameters plus every ``ffm.*`` key."""
        ffm = {f"ffm.{k}": v for k, v in self.ffm.model_dump(by_alias=True).items()}
        return {**super().hyperparameters(), **ffm}
