r"""FedAvg over the available subset: the normalised partial-participation baseline of FedAVOT.

Each round's replying clients S are averaged with the importance renormalised over S,
:math:`\theta^{t+1} = \sum_{i\in S} \frac{p_i}{\sum_{k\in S} p_k}\theta_i` (plain FedAvg with
data-size weights when ``participation.importance = "data-size"``). In expectation over the
availability law it minimises a surrogate of :math:`F = \sum_i p_i f_i`, biased whenever the
subsets are not drawn in proportion to p (Rahimi & Kalogerias, arXiv:2509.14444).
"""

from __future__ import annotations

from typing import ClassVar

from fedot.fl.participation import PartialParticipation

__all__ = ["FedAvgSubset"]


class FedAvgSubset(PartialParticipation):
    """p renormalised over the available subset (the base's default coefficients)."""

    scheme: ClassVar[str] = "fedavg-subset"
