"""Pure optimal-transport math on POT backends (no Flower, no ``torch.nn``, no pydantic)."""

from fedot.ot.masked import (
    FeasibilityResult,
    MaskedSinkhornResult,
    MaskedSinkhornWarning,
    hall_violations,
    inclusion_probabilities,
    masked_feasibility,
    masked_sinkhorn,
)

__all__ = [
    "FeasibilityResult",
    "MaskedSinkhornResult",
    "MaskedSinkhornWarning",
    "hall_violations",
    "inclusion_probabilities",
    "masked_feasibility",
    "masked_sinkhorn",
]
