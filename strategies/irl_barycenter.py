r"""Wasserstein-barycenter reward fusion for federated MaxEnt IRL [Millard & Baheri, 2026].

Paper: https://arxiv.org/abs/2601.00309 (L4DC 2026, PMLR 331). The method sections were not
available; this is the standard realisation of what the abstract describes (see
``docs/irl.md``).

Each client learns a reward r_k on the shared states by local MaxEnt IRL (Ziebart et al., 2008) and
uploads it. The server standardises each reward, maps it to a measure ρ_k (softmax with temperature
τ by default), computes the entropic Wasserstein barycenter

.. math::

    \bar\rho = \arg\min_\rho \sum_k w_k \mathrm{OT}_\varepsilon(\rho_k, \rho),
    \qquad C[s, s'] = \|x(s) - x(s')\|^2 / \max C,

(POT's log-domain solver, or fedot's convolutional solver on grids, both exact for non-uniform
weights) and maps it back to a reward r̂ = m̄ + s̄·standardise(τ log ρ̄). One round is the one-shot
protocol; with more rounds, clients warm-start from (and may be pulled towards) the broadcast r̂.
Weights w_k ∝ demonstration counts (``num-examples``) or uniform (``irl.weights``).

Clients run the ``maxent-irl`` task. Config: ``irl.*`` (``measure``, ``tau``, ``reg``,
``barycenter`` for the fusion). The fusion is non-linear, so every reply is checked for NaN/Inf
before it reaches POT.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fedot.fl.irl import RewardStrategy
from fedot.learning.reward_fusion import fuse_rewards

__all__ = ["WassersteinBarycenterIRL"]


class WassersteinBarycenterIRL(RewardStrategy):
    """Fuse client rewards by an entropic Wasserstein barycenter; see the module docstring."""

    scheme: ClassVar[str] = "irl-barycenter"
    linear_aggregation: ClassVar[bool] = False

    def fuse(self, rewards: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Barycenter of the clients' reward measures, mapped back to a reward."""
        assert self.problem is not None, "server_task() must run before aggregation"
        base = self.problem.base
        res = fuse_rewards(
            rewards, weights, coords=base.coords, grid_shape=base.grid_shape,
            kind=self.irl.measure, tau=self.irl.tau, reg=self.irl.reg, method=self.irl.barycenter,
        )
        solver = res.solver
        return res.reward, {
            "barycenter": {
                "method": solver.method, "iterations": solver.iterations,
                "marginal_error": solver.marginal_error, "cost": solver.cost,
                "converged": solver.converged,
            }
        }
