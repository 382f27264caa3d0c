"""Build an availability model from a kind name and a few keyword arguments."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from ._core import AvailabilityModel, _check_int
from .models import Bernoulli, Explicit, KofN, Markov, Restricted, WithReplacementDrop

__all__ = ["AVAILABILITY_KINDS", "make_availability"]

AVAILABILITY_KINDS: tuple[str, ...] = (
    "k-of-n",
    "with-replacement",
    "bernoulli",
    "markov",
    "restricted",
    "explicit",
)
"""Every kind accepted by :func:`make_availability`."""


def make_availability(
    kind: str,
    num_clients: int,
    *,
    k: int | None = None,
    weights: ArrayLike | None = None,
    probs: ArrayLike | None = None,
    p_on_off: ArrayLike | None = None,
    p_off_on: ArrayLike | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    group_probs: ArrayLike | None = None,
    subsets: Sequence[Sequence[int]] | None = None,
) -> AvailabilityModel:
    """Return the availability model ``kind`` over ``num_clients`` clients.

    Parameters
    ----------
    kind
        One of :data:`AVAILABILITY_KINDS`:

        * ``"k-of-n"`` -- :class:`KofN` (``weights``, ``k``);
        * ``"with-replacement"`` -- :class:`WithReplacementDrop` (``weights``, ``k``);
        * ``"bernoulli"`` -- :class:`Bernoulli` (``probs`` = per-client availability);
        * ``"markov"`` -- :class:`Markov` (``p_on_off``, ``p_off_on``, both required);
        * ``"restricted"`` -- :class:`Restricted` (``groups`` required, ``group_probs``, ``k``);
        * ``"explicit"`` -- :class:`Explicit` (``subsets`` and ``probs`` = per-subset q).
    num_clients
        N; every model is checked to cover exactly ``0..N-1``.
    k
        Clients per round. None means 2 for ``"k-of-n"`` and ``"with-replacement"`` and the whole
        group for ``"restricted"``; unused by the other kinds.
    weights
        ``(N,)`` availability weights :math:`r_i`; default uniform.
    probs
        ``"bernoulli"``: a scalar or ``(N,)`` availability probabilities (default ``k / N`` with
        ``k`` defaulting to 2, so about ``k`` clients per round); ``"explicit"``: the subset
        probabilities (required).
    p_on_off, p_off_on
        ``"markov"``: scalars or ``(N,)`` transition probabilities.
    groups, group_probs
        ``"restricted"``: disjoint client groups and their probabilities (default uniform).
    subsets
        ``"explicit"``: the support of :math:`q`.

    Returns
    -------
    AvailabilityModel

    Raises
    ------
    ValueError
        If ``kind`` is unknown, a required argument is missing, or the model rejects its
        arguments.
    """
    n = _check_int(num_clients, "num_clients", 1)
    if kind in ("k-of-n", "with-replacement"):
        r = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
        if r.shape != (n,):
            raise ValueError(f"weights must have shape ({n},) (num_clients), got {r.shape}")
        cls = KofN if kind == "k-of-n" else WithReplacementDrop
        return cls(r, 2 if k is None else k)
    if kind == "bernoulli":
        a = np.asarray(min(1.0, (2 if k is None else k) / n) if probs is None else probs, float)
        if a.ndim == 0:
            a = np.full(n, float(a))
        if a.shape != (n,):
            raise ValueError(f"probs must be a scalar or have shape ({n},) (num_clients), got {a.shape}")
        return Bernoulli(a)
    if kind == "markov":
        if p_on_off is None or p_off_on is None:
            raise ValueError("kind='markov' needs both p_on_off and p_off_on")
        return Markov(p_on_off, p_off_on, num_clients=n)
    if kind == "restricted":
        if groups is None:
            raise ValueError("kind='restricted' needs groups (disjoint lists of client ids)")
        return Restricted(groups, group_probs, k, num_clients=n)
    if kind == "explicit":
        if subsets is None or probs is None:
            raise ValueError("kind='explicit' needs subsets and probs (one probability per subset)")
        return Explicit(subsets, probs, num_clients=n)
    raise ValueError(f"kind must be one of {', '.join(AVAILABILITY_KINDS)}; got {kind!r}")
