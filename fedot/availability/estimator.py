r"""Estimating :math:`q` online from the subsets a deployment actually observes."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from ._core import SubsetDistribution, _as_subset_list, _check_budget, _check_int

__all__ = ["OnlineEstimator"]

_RESCALE_AT = 1e150
"""Stored weights are rescaled when the next round's weight would exceed this (no overflow)."""


class OnlineEstimator:
    r"""Empirical availability distribution of the subsets observed so far.

    After rounds :math:`t = 1..T` with observed subsets :math:`S_t`, the estimate is

    .. math::

        \hat q(A) = \frac{\sum_{t=1}^{T} \lambda^{T-t} [S_t = A]}{\sum_{t=1}^{T} \lambda^{T-t}},

    restricted to the observed support. :math:`\lambda = 1` (the default) gives plain
    frequencies; :math:`\lambda < 1` forgets old rounds exponentially (effective memory
    :math:`1 / (1 - \lambda)` rounds) for non-stationary availability.

    Parameters
    ----------
    num_clients
        N; observed subsets must hold client ids in ``0..N-1``.
    decay
        The forgetting factor :math:`\lambda \in (0, 1]`.

    Notes
    -----
    The estimator only estimates: ``sample`` raises ``NotImplementedError`` (sample from
    ``Explicit.from_distribution(est.distribution(), N)`` if needed). ``num_samples`` of the
    returned distribution is the number of rounds observed.
    """

    def __init__(self, num_clients: int, *, decay: float = 1.0) -> None:
        self.num_clients = _check_int(num_clients, "num_clients", 1)
        decay = float(decay)
        if not 0.0 < decay <= 1.0:
            raise ValueError(f"decay must lie in (0, 1], got {decay!r}")
        self.decay = decay
        self._weights: dict[bytes, float] = {}
        self._increment = 1.0
        self._rounds = 0

    @property
    def rounds(self) -> int:
        """The number of subsets observed since construction or the last ``reset``."""
        return self._rounds

    def observe(self, subset: ArrayLike) -> None:
        """Record the subset available in one round (client ids, any order, no repeats).

        Raises
        ------
        ValueError
            If ``subset`` is empty, repeats a client or holds an id outside ``0..N-1``.
        """
        members = _as_subset_list([subset])[0]
        if members.size == 0:
            raise ValueError("subset must be non-empty (a round needs an available client)")
        if members[0] < 0 or members[-1] >= self.num_clients:
            raise ValueError(
                f"subset must hold client ids in 0..{self.num_clients - 1}, got {members.tolist()}"
            )
        if self._increment > _RESCALE_AT:
            for key in self._weights:
                self._weights[key] /= self._increment
            self._increment = 1.0
        key = members.tobytes()
        self._weights[key] = self._weights.get(key, 0.0) + self._increment
        self._increment /= self.decay
        self._rounds += 1

    def distribution(
        self,
        rng: np.random.Generator | None = None,
        *,
        num_samples: int = 200_000,
        max_support: int = 100_000,
    ) -> SubsetDistribution:
        """Return the (decayed) empirical frequencies; ``rng`` and the budgets are unused.

        Raises
        ------
        ValueError
            If nothing has been observed yet.
        """
        _check_budget(num_samples, max_support)
        if self._rounds == 0:
            raise ValueError("no subsets observed yet: call observe() before distribution()")
        keys = list(self._weights)
        weights = np.fromiter((self._weights[k] for k in keys), dtype=np.float64, count=len(keys))
        return SubsetDistribution(
            subsets=[np.frombuffer(k, dtype=np.int64).copy() for k in keys],
            probs=weights / weights.sum(),
            exact=False,
            num_samples=self._rounds,
        )

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Raise ``NotImplementedError``: the estimator observes subsets, it does not draw them."""
        raise NotImplementedError(
            "OnlineEstimator only estimates q; sample with Explicit.from_distribution(...)"
        )

    def reset(self) -> None:
        """Forget every observation."""
        self._weights = {}
        self._increment = 1.0
        self._rounds = 0

    def state_dict(self) -> dict[str, object]:
        """Return the observations as plain lists (insertion order kept), for checkpoints."""
        return {
            "subsets": [np.frombuffer(k, dtype=np.int64).tolist() for k in self._weights],
            "weights": list(self._weights.values()),
            "increment": self._increment,
            "rounds": self._rounds,
        }

    def load_state_dict(self, state: dict[str, object]) -> None:
        """Restore :meth:`state_dict` exactly (same support order, weights and round count)."""
        subsets, weights = state["subsets"], state["weights"]
        self._weights = {np.asarray(s, dtype=np.int64).tobytes(): float(w)
                         for s, w in zip(subsets, weights, strict=True)}  # type: ignore[call-overload]
        self._increment = float(state["increment"])  # type: ignore[arg-type]
        self._rounds = int(state["rounds"])  # type: ignore[call-overload]
