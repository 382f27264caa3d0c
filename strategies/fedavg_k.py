r"""FedAvg(K): the FedAVOT paper's unnormalised partial-participation baseline.

:math:`\theta^{t+1} = \sum_{i\in S_t} \frac{N}{K} p_i \theta_i` with K = ``participation.k``
(Rahimi & Kalogerias, arXiv:2509.14444, authors' code). Unbiased only under uniform K-of-N
sampling; the weights do not sum to 1, so the model is rescaled every round (the "amplitude
distortion" of the later papers). Kept exactly as published, as a reference point.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from fedot.fl.participation import PartialParticipation

__all__ = ["FedAvgK"]


class FedAvgK(PartialParticipation):
    """Coefficients N/K · p_i over the replying subset (no renormalisation)."""

    scheme: ClassVar[str] = "fedavg-k"

    def coefficients(self, server_round: int, subset: list[int]) -> tuple[np.ndarray, dict[str, Any]]:
        """N/K · p_i for i in the subset."""
        coef = self.num_clients / self.participation.k * self.importance[subset]
        return coef, {"coefficient_sum": float(coef.sum())}
