r"""Full participation: every client trains every round, weights p (the target FedAVOT approximates).

:math:`\theta^{t+1} = \sum_{i=1}^N p_i \theta_i` — the reference curve of the FedAVOT experiments
(Rahimi & Kalogerias, arXiv:2509.14444). ``participation.availability`` is ignored (always ``all``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from fedot.config import RunConfig
from fedot.fl.participation import PartialParticipation

__all__ = ["FedAvgFull"]


class FedAvgFull(PartialParticipation):
    """All clients every round, p-weighted."""

    scheme: ClassVar[str] = "fedavg-full"

    @classmethod
    def config_kwargs(cls, cfg: RunConfig) -> dict[str, Any]:
        """Force ``participation.availability = "all"``."""
        kwargs = super().config_kwargs(cfg)
        kwargs["participation"] = kwargs["participation"].model_copy(update={"availability": "all"})
        return kwargs
