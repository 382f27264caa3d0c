r"""The subset-distribution container, the model protocol and shared helpers.

A round's *available subset* :math:`S_t \subseteq \{0, \dots, N-1\}` is drawn from the
availability distribution :math:`q`, a law over subsets. :class:`SubsetDistribution` stores the
support :math:`A_1, \dots, A_M` of :math:`q` with :math:`q_j = P(S_t = A_j)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "AvailabilityModel",
    "SubsetDistribution",
    "inclusion",
    "power_weights",
    "surrogate_importance",
]

_SUM_TOL = 1e-6
"""How far from 1 a probability vector given by a caller may sum before it is rejected."""

_CHUNK_ELEMENTS = 1 << 22
"""Monte-Carlo draws are made in batches of about this many random numbers (bounds memory)."""


@dataclass(frozen=True, eq=False)
class SubsetDistribution:
    r"""A law over client subsets: the support :math:`A_1..A_M` and :math:`q_j = P(S_t = A_j)`.

    Parameters
    ----------
    subsets
        The support: one sorted ``int64`` array of client ids per subset, all distinct and
        non-empty. Lists or tuples are converted (and must already be strictly increasing).
    probs
        ``(M,)`` float64 probabilities :math:`q_j \ge 0` with :math:`\sum_j q_j = 1` (a sum within
        ``1e-6`` of 1 is renormalised exactly; otherwise it is an error).
    exact
        True if ``probs`` are closed-form or enumerated, False if they are a Monte-Carlo estimate.
    num_samples
        The number of draws behind a Monte-Carlo estimate; 0 when ``exact``.

    Notes
    -----
    Instances are immutable: the arrays are copied and made read-only. Equality is identity
    (``eq=False``), since comparing numpy arrays elementwise has no single truth value.

    Raises
    ------
    ValueError
        If the subsets are empty, unsorted, negative, repeated or duplicated, or ``probs`` has the
        wrong shape, a negative or non-finite entry, or does not sum to 1.
    """

    subsets: list[np.ndarray]
    probs: np.ndarray
    exact: bool
    num_samples: int = 0
    _index: dict[frozenset[int], int] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        subsets = [_as_member_array(s) for s in self.subsets]
        probs = np.array(self.probs, dtype=np.float64)
        if probs.ndim != 1 or probs.shape[0] != len(subsets):
            raise ValueError(
                f"probs must have shape ({len(subsets)},) like subsets, got {probs.shape}"
            )
        if len(subsets) == 0:
            raise ValueError("subsets must hold at least one subset")
        lengths = np.fromiter((s.shape[0] for s in subsets), dtype=np.int64, count=len(subsets))
        if (lengths == 0).any():
            raise ValueError("subsets must be non-empty (a round needs an available client)")
        flat = np.concatenate(subsets)
        if (flat < 0).any():
            raise ValueError("subsets must hold client ids >= 0")
        starts = np.cumsum(lengths)[:-1]
        steps = np.diff(flat)
        inside = np.ones(steps.shape[0], dtype=bool)
        inside[starts - 1] = False  # the step from one subset's end to the next's start
        if (steps[inside] <= 0).any():
            raise ValueError("subsets must be strictly increasing arrays (sorted, no repeats)")
        if len({s.tobytes() for s in subsets}) != len(subsets):
            raise ValueError("subsets must be unique (merge the mass of repeated subsets)")
        probs = _check_probs(probs, "probs")
        probs.setflags(write=False)
        for s in subsets:
            s.setflags(write=False)
        object.__setattr__(self, "subsets", subsets)
        object.__setattr__(self, "probs", probs)
        object.__setattr__(self, "exact", bool(self.exact))
        num_samples = int(self.num_samples)
        if num_samples < 0 or (self.exact and num_samples != 0):
            raise ValueError(
                f"num_samples must be >= 0, and 0 when exact, got {num_samples} (exact={self.exact})"
            )
        object.__setattr__(self, "num_samples", num_samples)

    def __len__(self) -> int:
        return len(self.subsets)

    def index(self) -> dict[frozenset[int], int]:
        """Map each subset (as a frozenset of client ids) to its position in ``subsets``.

        Returns
        -------
        dict[frozenset[int], int]
            Built on the first call and cached on the instance.
        """
        if self._index is None:
            built = {frozenset(s.tolist()): j for j, s in enumerate(self.subsets)}
            object.__setattr__(self, "_index", built)
        assert self._index is not None
        return self._index

    def mask(self, num_clients: int) -> np.ndarray:
        r"""Return the ``(num_clients, M)`` boolean membership mask :math:`E[i, j] = [i \in A_j]`.

        Raises
        ------
        ValueError
            If a subset holds a client id ``>= num_clients``.
        """
        idx, cols = self._flat(num_clients)
        out = np.zeros((num_clients, len(self.subsets)), dtype=bool)
        out[idx, cols] = True
        return out

    def _flat(self, num_clients: int) -> tuple[np.ndarray, np.ndarray]:
        """Return every (client id, subset position) pair as two flat arrays."""
        lengths = np.fromiter((s.shape[0] for s in self.subsets), dtype=np.int64)
        idx = np.concatenate(self.subsets)
        if int(num_clients) < 1 or int(idx.max()) >= num_clients:
            raise ValueError(
                f"num_clients must exceed every client id in the subsets (max id "
                f"{int(idx.max())}), got {num_clients}"
            )
        return idx, np.repeat(np.arange(len(self.subsets)), lengths)


@runtime_checkable
class AvailabilityModel(Protocol):
    """How clients become available: a seeded sampler of :math:`S_t` and its law :math:`q`.

    Attributes
    ----------
    num_clients
        N; subsets hold client ids in ``0..N-1``.
    """

    num_clients: int

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw one round's available subset (sorted ``int64``); may advance internal state."""
        ...

    def distribution(
        self,
        rng: np.random.Generator,
        *,
        num_samples: int = 200_000,
        max_support: int = 100_000,
    ) -> SubsetDistribution:
        """Return :math:`q`: exact if its support has at most ``max_support`` subsets, else MC."""
        ...

    def reset(self) -> None:
        """Forget internal state (time-correlated models); a no-op for memoryless ones."""
        ...


def inclusion(dist: SubsetDistribution, num_clients: int) -> np.ndarray:
    r"""Return the inclusion probabilities :math:`\pi_i = \sum_{A \ni i} q(A) = P(i \in S_t)`.

    FedAVOT's transport is feasible only if :math:`p_i \le \pi_i` for every client.

    Parameters
    ----------
    dist
        The availability distribution :math:`q`.
    num_clients
        N, the length of the result.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64; clients outside every subset get 0.
    """
    idx, cols = dist._flat(num_clients)
    return np.bincount(idx, weights=dist.probs[cols], minlength=num_clients)


def surrogate_importance(dist: SubsetDistribution, num_clients: int) -> np.ndarray:
    r"""Return :math:`\tilde p_i = \sum_{A \ni i} q(A) / |A|`, the importance uniform averaging uses.

    Averaging the available clients uniformly (plain FedAvg over :math:`S_t`) minimises
    :math:`\tilde F = \sum_i \tilde p_i f_i` rather than the target :math:`F = \sum_i p_i f_i`.
    :math:`\sum_i \tilde p_i = 1`.

    Parameters
    ----------
    dist
        The availability distribution :math:`q`.
    num_clients
        N, the length of the result.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` float64.
    """
    idx, cols = dist._flat(num_clients)
    sizes = np.fromiter((s.shape[0] for s in dist.subsets), dtype=np.float64)
    return np.bincount(idx, weights=(dist.probs / sizes)[cols], minlength=num_clients)


def power_weights(n: int, exponent: float, *, increasing: bool) -> np.ndarray:
    r"""Return normalised power-law weights over ``n`` clients.

    .. math::

        w_i \propto i^{\gamma} \ \text{(increasing)}, \qquad
        w_i \propto (n + 1 - i)^{\gamma} \ \text{(decreasing)}, \qquad i = 1..n,

    so client id ``i - 1`` gets :math:`w_i`. FedAVOT's linear-regression run uses importance
    ``power_weights(100, 0.8, increasing=False)`` and availability
    ``power_weights(100, 0.8, increasing=True)``.

    Raises
    ------
    ValueError
        If ``n < 1`` or ``exponent`` is not finite.
    """
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be an integer >= 1, got {n!r}")
    if not math.isfinite(exponent):
        raise ValueError(f"exponent must be finite, got {exponent!r}")
    ranks = np.arange(1, int(n) + 1, dtype=np.float64)
    w = ranks**exponent if increasing else ranks[::-1] ** exponent
    return w / w.sum()


# ---------------------------------------------------------------------------------------------
# Shared helpers (private).


def _as_member_array(subset: ArrayLike) -> np.ndarray:
    """Return ``subset`` as a fresh 1-D ``int64`` array (checked for integrality, not order)."""
    raw = np.asarray(subset)
    if raw.ndim != 1:
        raise ValueError(f"each subset must be a 1-D sequence of client ids, got shape {raw.shape}")
    if raw.size and not np.issubdtype(raw.dtype, np.integer):
        if raw.dtype == bool or not np.array_equal(raw, np.round(raw)):
            raise ValueError(f"subsets must hold integer client ids, got {raw.tolist()}")
    return raw.astype(np.int64, copy=True)


def _check_probs(probs: np.ndarray, name: str) -> np.ndarray:
    """Check a probability vector (finite, >= 0, sums to 1 within tolerance) and renormalise it."""
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {probs.tolist()[:10]}")
    total = float(probs.sum())
    if abs(total - 1.0) > _SUM_TOL:
        raise ValueError(f"{name} must sum to 1, got sum {total!r}")
    return probs / total


def _check_weights(weights: ArrayLike, name: str, *, min_positive: int = 1) -> np.ndarray:
    """Return non-negative 1-D ``weights`` normalised to sum 1 (any positive scale is accepted)."""
    w = np.array(weights, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"{name} must be finite and >= 0, got {w.tolist()[:10]}")
    positive = int((w > 0).sum())
    if positive < min_positive:
        raise ValueError(f"{name} needs at least {min_positive} positive entries, got {positive}")
    return w / w.sum()


def _check_int(value: int, name: str, low: int, high: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = "" if high is None else f" and <= {high}"
        raise ValueError(f"{name} must be >= {low}{upper}, got {value}")
    return int(value)


def _check_budget(num_samples: int, max_support: int) -> tuple[int, int]:
    """Validate the keyword arguments every ``distribution`` method takes."""
    return _check_int(num_samples, "num_samples", 1), _check_int(max_support, "max_support", 0)


def _cdf(weights: np.ndarray) -> np.ndarray:
    """Return the cumulative sums of normalised weights with the last entry exactly 1."""
    c = np.cumsum(weights)
    return c / c[-1]


def _categorical(cdf: np.ndarray, u: np.ndarray | float) -> np.ndarray:
    """Map uniforms ``u`` in [0, 1) to categories by inverse CDF (zero-weight ones never come up)."""
    return np.searchsorted(cdf, u, side="right")


def _chunk_rows(num_samples: int, width: int) -> int:
    """Rows per Monte-Carlo batch so that one batch holds about ``_CHUNK_ELEMENTS`` numbers."""
    return max(1, min(num_samples, _CHUNK_ELEMENTS // max(1, width)))


def _from_rows(rows: np.ndarray) -> SubsetDistribution:
    """Empirical distribution of fixed-size draws: ``rows`` is ``(n, k)``, each row sorted."""
    uniq, counts = np.unique(rows, axis=0, return_counts=True)
    return SubsetDistribution(
        subsets=list(uniq.astype(np.int64)),
        probs=counts / rows.shape[0],
        exact=False,
        num_samples=rows.shape[0],
    )


def _from_masks(masks: np.ndarray) -> SubsetDistribution:
    """Empirical distribution of variable-size draws: ``masks`` is ``(n, N)`` boolean."""
    packed = np.packbits(masks, axis=1)
    _, first, counts = np.unique(packed, axis=0, return_index=True, return_counts=True)
    return SubsetDistribution(
        subsets=[np.flatnonzero(masks[j]).astype(np.int64) for j in first],
        probs=counts / masks.shape[0],
        exact=False,
        num_samples=masks.shape[0],
    )


def _combinations(n: int, k: int) -> np.ndarray:
    """All k-subsets of ``range(n)`` as a ``(C(n, k), k)`` int64 array in lexicographic order."""
    from itertools import chain, combinations

    count = math.comb(n, k)
    flat = np.fromiter(chain.from_iterable(combinations(range(n), k)), np.int64, count * k)
    return flat.reshape(count, k)


def _rows_to_list(rows: np.ndarray) -> list[np.ndarray]:
    """Split an ``(M, k)`` array into a list of its rows (for ``SubsetDistribution.subsets``)."""
    return list(np.ascontiguousarray(rows, dtype=np.int64))


def _as_subset_list(subsets: Sequence[ArrayLike]) -> list[np.ndarray]:
    """Convert caller-given subsets to sorted int64 arrays, rejecting repeated members."""
    out = []
    for s in subsets:
        a = _as_member_array(s)
        a.sort()
        if a.size and (np.diff(a) == 0).any():
            raise ValueError(f"subsets must not repeat a client, got {a.tolist()}")
        out.append(a)
    return out
