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

Server, per-step aggregation (``ffm.local-steps = 1``; ``ffm.potential-local-steps = 1`` in GOT's
stage 1): clients reply with the gradient of their loss on one batch; the server averages them
with data-size weights, g = Σ λ_i ∇L_i(θ) = ∇ Σ λ_i L_i(θ), and applies one step of its own
optimizer (``ffm.optimizer``, ``ffm.lr``; ``ffm.potential-lr`` for φ) whose state — Adam's moments
— persists across rounds and in the checkpoint (FedOpt's server optimizer, Reddi et al. 2021):
federated training is then centralised training of the weighted objective, step for step.
With several local steps: FedAvg of the returned models (θ, and φ for ``got``) weighted by data
size. Each round's ConfigRecord carries ``ffm.stage`` and the stage is recorded per round.
The server never sees a data sample; it evaluates generated samples against a held-out target.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from fedot.config import FFMConfig, RunConfig
from fedot.fl.aggregate import nonfinite_arrays, weighted_average
from fedot.fl.flow import (
    POTENTIAL,
    RUN_KEY,
    STAGE_KEY,
    VELOCITY,
    evaluation_round,
    flow_server_task,
    run_key,
    total_rounds,
)
from fedot.fl.strategy import FedotStrategy
from fedot.fl.task import ServerTask
from fedot.learning.optim import ServerOptimizer

__all__ = ["FederatedFlowMatching"]


class FederatedFlowMatching(FedotStrategy):
    """FedAvg over the flow (and potential) with the GOT stage schedule; see the module docstring."""

    scheme: ClassVar[str] = "ffm"

    def __init__(self, *, ffm: FFMConfig, cfg: RunConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ffm = ffm
        self.cfg = cfg
        #: The server's optimizers of per-step aggregation, by model prefix (built on first use).
        self.server_optimizers: dict[str, ServerOptimizer] = {}
        self._pending_state: dict[str, Any] = {}
        self._global: ArrayRecord | None = None
        self._run_key: str | None = None

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
        self._run_key = run_key(out_dir)
        return flow_server_task(cfg, out_dir)

    def client_config(self, server_round: int) -> dict[str, Any]:
        """Send the round's stage and the run key (clients read ``ffm.*`` from the run config)."""
        out: dict[str, Any] = {STAGE_KEY: self.stage(server_round)}
        if self._run_key is not None:
            out[RUN_KEY] = self._run_key
        return out

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Remember the global arrays (the point the server optimizer steps from), then send."""
        self._global = arrays
        return super().configure_train(server_round, arrays, config, grid)

    def _server_optimizer(self, prefix: str, keys: list[str]) -> ServerOptimizer:
        if prefix not in self.server_optimizers:
            lr = self.ffm.potential_lr if prefix == POTENTIAL else self.ffm.lr
            opt = ServerOptimizer(self.ffm.optimizer, lr, keys)
            if prefix in self._pending_state:
                opt.load_state_dict(self._pending_state.pop(prefix))
            self.server_optimizers[prefix] = opt
        return self.server_optimizers[prefix]

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
        """Data-size-weighted mean of the replies: the new model, or (one local step) the gradient.

        In per-step mode the mean gradient g = Σ λ_i ∇L_i goes to the server optimizer of the
        stage's model (θ, or φ in GOT's stage 1), which steps from the broadcast global arrays;
        the other model is returned unchanged. A non-finite mean is returned as is, before any
        step, so screening drops the offending reply and the optimizer's state is untouched.
        """
        stage = self.stage(server_round)
        self.log.entry(server_round)["stage"] = stage
        records = [next(iter(c.array_records.values())) for c in contents]
        mean = weighted_average(records, weights)
        if not self.ffm.server_steps(stage):
            return mean, {"stage": stage, "update": "fedavg"}
        if nonfinite_arrays(mean) or self._global is None:
            return mean, {"stage": stage, "update": "server-optimizer"}
        prefix = POTENTIAL if stage == "potential" else VELOCITY
        grads = mean.to_torch_state_dict()
        current = self._global.to_torch_state_dict()
        keys = [k for k in current if k.startswith(prefix)]
        opt = self._server_optimizer(prefix, keys)
        new = opt.step(current, grads)
        grad_norm = float(sum(float(grads[k].double().pow(2).sum()) for k in keys) ** 0.5)
        return ArrayRecord(new), {"stage": stage, "update": "server-optimizer",
                                  "grad-norm": grad_norm, "server-steps": opt.steps}

    def state_dict(self) -> dict[str, Any]:
        """Add the server optimizers' state (Adam moments, step counts) to the checkpoint."""
        opts = {p: o.state_dict() for p, o in self.server_optimizers.items()}
        return {**super().state_dict(), "ffm.server-optimizers": {**self._pending_state, **opts}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: the server optimizers resume with their moments."""
        state = dict(state)
        self._pending_state = dict(state.pop("ffm.server-optimizers", {}))
        self.server_optimizers = {}
        super().load_state_dict(state)

    def hyperparameters(self) -> dict[str, Any]:
        """Return the shared hyperparameters plus every ``ffm.*`` key."""
        ffm = {f"ffm.{k}": v for k, v in self.ffm.model_dump(by_alias=True).items()}
        return {**super().hyperparameters(), **ffm}
