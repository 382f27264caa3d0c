"""Pure optimal-transport math on POT backends (no Flower, no ``torch.nn``, no pydantic)."""

from fedot.ot.assignment import PlanResult, PlanWarning, pairwise_sq_dists, transport_plan
from fedot.ot.barycenter import (
    BarycenterResult,
    BarycenterWarning,
    barycenter,
    convolutional_barycenter,
    grid_cost,
)
from fedot.ot.masked import (
    FeasibilityResult,
    MaskedSinkhornResult,
    MaskedSinkhornWarning,
    hall_violations,
    inclusion_probabilities,
    masked_feasibility,
    masked_min_variance,
    masked_sinkhorn,
    plan_second_moment,
)

__all__ = [
    "PlanResult",
    "PlanWarning",
    "pairwise_sq_dists",
    "transport_plan",
    "BarycenterResult",
    "BarycenterWarning",
    "barycenter",
    "convolutional_barycenter",
    "grid_cost",
    "FeasibilityResult",
    "MaskedSinkhornResult",
    "MaskedSinkhornWarning",
    "hall_violations",
    "inclusion_probabilities",
    "masked_feasibility",
    "masked_min_variance",
    "masked_sinkhorn",
    "plan_second_moment",
]
