"""Parameter averaging of client rewards: the FedAvg baseline of federated MaxEnt IRL.

The new global reward is r̄ = Σ_k w_k r_k with w_k ∝ demonstration counts (``num-examples``) or
uniform (``irl.weights``). Everything else (the ``maxent-irl`` client task, the one-shot and
multi-round protocols, the server's oracle metrics) is shared with ``irl-barycenter``
(:class:`fedot.fl.irl.RewardStrategy`), so the two schemes differ only in the fusion.
"""

from __future__ import annotations

from typing import ClassVar

from fedot.fl.irl import RewardStrategy

__all__ = ["RewardAveragingIRL"]


class RewardAveragingIRL(RewardStrategy):
    """Weighted mean of the client rewards (the base's default :meth:`fuse`)."""

    scheme: ClassVar[str] = "irl-average"
