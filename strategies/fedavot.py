r"""FedAVOT [Rahimi & Kalogerias, 2026] strategy: masked-OT aggregation for partial participation.

Paper: https://arxiv.org/abs/2509.14444 (ICASSP 2026).

When the clients that show up in a round (availability q over subsets A_1..A_M) are not distributed
like the clients the objective cares about (importance p), averaging the participants minimises a
biased surrogate. FedAVOT solves, once, the masked transport problem

.. math::

    T \ge 0,\quad T\mathbf 1 = p,\quad \mathbf 1^\top T = q,\quad T_{ij} = 0 \text{ unless }
    i \in A_j,

by masked Sinkhorn/IPFP (:func:`fedot.ot.masked_sinkhorn`) and aggregates round t, in which subset
:math:`A_{j_t}` replied, with the column :math:`Y_{\cdot j_t} = T_{\cdot j_t}/q_{j_t}`:
:math:`\theta^{t+1} = \sum_{i\in A_{j_t}} Y_{i j_t}\theta_i`. Then
:math:`\mathbb E_j[\sum_i Y_{ij} g_i] = \sum_i p_i g_i`: the aggregate is unbiased for
:math:`F = \sum_i p_i f_i`. When no exact plan exists (max-flow test), IPFP matches
:math:`\hat p = T\mathbf 1` instead; the run records ‖p − p̂‖₁ and the infeasible mass ν.
A subset outside the solved support gets the p-restricted weights p_i / Σ_{k∈A} p_k. In
``observed`` mode (deployment) q is the empirical law of the subsets aggregated in the previous
rounds, re-solved each round (the first round, and any new subset, gets the fallback weights).

Clients run the ``classifier`` task. Config: ``participation.*`` (p, q) and ``fedavot.*``
(``plan``: ``ipfp``, the paper's, or ``min-variance``, the unbiased plan whose weights have the
least second moment Σ_j q_j Σ_i Y_ij² (:func:`fedot.ot.masked_min_variance`); ``tol``,
``max-iter``, ``kappa`` for the κ-penalised variant; κ = 1 is plain IPFP).
"""

from __future__ import annotations

from collections.abc import Mapping
from logging import WARNING
from typing import Any, ClassVar

import numpy as np
from flwr.common import log

from fedot.config import FedAVOTConfig, RunConfig, section
from fedot.fl.participation import PartialParticipation
from fedot.ot import masked_feasibility, masked_min_variance, masked_sinkhorn

__all__ = ["FedAVOT"]


class FedAVOT(PartialParticipation):
    """Masked-OT aggregation weights; see the module docstring.

    Parameters
    ----------
    fedavot : FedAVOTConfig, mapping or None
        Plan, solver tolerance, iteration cap and κ (``fedavot.*`` keys; None: the defaults).
    **kwargs
        Passed to :class:`~fedot.fl.participation.PartialParticipation`: ``importance`` and
        ``availability`` (given directly or as kinds), ``participation``, ``partitions``, ...

    Examples
    --------
    In any Flower ServerApp, with any ClientApp that replies with ``"arrays"`` and
    ``"metrics"`` (``num-examples``) — docs/library.md:

    >>> from fedot.availability import WithReplacementDrop
    >>> strategy = FedAVOT(importance=[0.4, 0.3, 0.2, 0.1],
    ...                    availability=WithReplacementDrop([1, 1, 1, 1], k=2),
    ...                    partitions="node-order")
    >>> strategy.configure_clients([0, 0, 0, 0])  # what discovery does with 4 nodes
    >>> strategy.log.setup["fedavot"]["feasible"]
    True
    """

    scheme: ClassVar[str] = "fedavot"

    def __init__(self, *, fedavot: FedAVOTConfig | Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fedavot = section(FedAVOTConfig, fedavot, "fedavot")
        self.columns: dict[frozenset[int], dict[int, float]] = {}

    @classmethod
    def from_config(cls, cfg: RunConfig) -> FedAVOT:
        """Build from ``participation.*`` and ``fedavot.*``."""
        return cls(fedavot=cfg.fedavot, **cls.config_kwargs(cfg))

    def _solve(self, subsets: list[np.ndarray], q: np.ndarray) -> dict[str, Any]:
        opts = {"tol": self.fedavot.tol, "kappa": self.fedavot.kappa}
        res = (masked_sinkhorn(self.importance, q, subsets, max_iter=self.fedavot.max_iter, **opts)
               if self.fedavot.plan == "ipfp" else
               masked_min_variance(self.importance, q, subsets, ipfp_max_iter=self.fedavot.max_iter,
                                   **opts))
        self.columns = {
            frozenset(int(i) for i in members): dict(zip(members.tolist(), np.asarray(w).tolist(),
                                                         strict=True))
            for members, w in zip(subsets, res.weights, strict=True)
        }
        return {"row_error": res.row_error, "col_error": res.col_error, "n_iter": res.n_iter,
                "converged": res.converged, "stopped": res.stopped,
                "p_hat_l1": float(np.abs(np.asarray(res.p_hat) - self.importance).sum()),
                "infeasible_mass": res.infeasible_mass, "plan": res.method,
                "second_moment": res.second_moment}

    def prepare(self) -> None:
        """Check feasibility and solve the masked transport plan for the known q."""
        if self.distribution is None:
            return
        dist = self.distribution
        feas = masked_feasibility(self.importance, dist.probs, dist.subsets)
        # Max-flow's unmatched mass and the worst Hall violator set lead: the singleton bound
        # (infeasible_mass, nu) can be 0 while a group of users is short of availability.
        self.log.setup["fedavot"] = {
            "unmatched_mass": feas.unmatched_mass, "hall_violator": list(feas.hall_violator),
            "hall_deficiency": feas.hall_deficiency, "feasible": feas.feasible,
            "matchable_mass": feas.matchable_mass, **self._solve(dist.subsets, dist.probs),
        }
        if not feas.feasible:
            log(WARNING, "FedAVOT: p cannot be matched exactly under this availability: %s; "
                "aggregation is unbiased for p_hat, ‖p − p_hat‖₁ = %.4f", feas.describe(),
                self.log.setup["fedavot"]["p_hat_l1"])

    def coefficients(self, server_round: int, subset: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """Column of Y for the replying subset (p-restricted fallback off the support)."""
        diag: dict[str, Any] = {}
        if self.estimator is not None and self.estimator.rounds > 0:
            # deployment: q learned from the subsets aggregated in earlier rounds
            dist = self.estimator.distribution()
            diag = self._solve(dist.subsets, dist.probs)
        column = self.columns.get(frozenset(subset))
        if column is None:
            p = self.importance[subset]
            return p / p.sum(), {**diag, "in_support": False}
        return np.array([column[i] for i in subset]), {**diag, "in_support": True}

    def hyperparameters(self) -> dict[str, Any]:
        """Participation settings plus the solver settings."""
        solver = self.fedavot.model_dump(by_alias=True)
        return {**super().hyperparameters(), **{f"fedavot.{k}": v for k, v in solver.items()}}
