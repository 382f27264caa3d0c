r"""Client-availability models for FedAVOT: seeded samplers of :math:`S_t` and their laws :math:`q`.

In round :math:`t` the server observes an available subset :math:`S_t \subseteq \{0..N-1\}`;
the availability distribution :math:`q` is its law over subsets. Every model here offers
``sample(rng)`` (one round's subset, drawn only through the given ``numpy.random.Generator``),
``distribution(rng)`` (:math:`q` as a :class:`SubsetDistribution`: exact where the support is
enumerable, else a Monte-Carlo estimate from the same sampler) and ``reset()``.

Pure numpy: no Flower, torch or pydantic, and no other ``fedot`` subpackage.
"""

from ._core import (
    AvailabilityModel,
    SubsetDistribution,
    inclusion,
    power_weights,
    surrogate_importance,
)
from .estimator import OnlineEstimator
from .factory import AVAILABILITY_KINDS, make_availability
from .models import Bernoulli, Explicit, KofN, Markov, Restricted, WithReplacementDrop

__all__ = [
    "AVAILABILITY_KINDS",
    "AvailabilityModel",
    "Bernoulli",
    "Explicit",
    "KofN",
    "Markov",
    "OnlineEstimator",
    "Restricted",
    "SubsetDistribution",
    "WithReplacementDrop",
    "inclusion",
    "make_availability",
    "power_weights",
    "surrogate_importance",
]
