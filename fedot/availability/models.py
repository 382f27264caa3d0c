r"""Availability models: seeded samplers of the available subset :math:`S_t` and their laws :math:`q`.

Every model draws only through the ``numpy.random.Generator`` it is given, so a seed fixes the
whole sequence of subsets. ``distribution`` is exact (closed form or enumeration) when the support
has at most ``max_support`` subsets and Monte-Carlo (``num_samples`` draws of the same sampler)
otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import permutations

import numpy as np
from numpy.typing import ArrayLike

from ._core import (
    SubsetDistribution,
    _as_subset_list,
    _categorical,
    _cdf,
    _check_budget,
    _check_int,
    _check_probs,
    _check_weights,
    _chunk_rows,
    _combinations,
    _from_masks,
    _from_rows,
    _rows_to_list,
)

__all__ = ["Bernoulli", "Explicit", "KofN", "Markov", "Restricted", "WithReplacementDrop"]

_MAX_ENUMERATED_K = 6
"""KofN enumerates its exact law (a sum over k! orderings) only for k up to this."""

_MIN_ACCEPTANCE = 1e-6
"""WithReplacementDrop refuses weights whose repeat-free draws are rarer than this."""


class Explicit:
    r"""A given law :math:`q` over subsets, sampled by inverse CDF (exact).

    Parameters
    ----------
    subsets
        The support :math:`A_1..A_M`: non-empty, distinct sequences of client ids (any order).
    probs
        ``(M,)`` probabilities :math:`q_j = P(S_t = A_j)`, >= 0, summing to 1.
    num_clients
        N; default one more than the largest client id in ``subsets``.

    Raises
    ------
    ValueError
        If ``subsets`` are empty, repeated or out of ``range(num_clients)``, or ``probs`` is not a
        probability vector of matching length.
    """

    def __init__(
        self,
        subsets: Sequence[Sequence[int]] | Sequence[np.ndarray],
        probs: ArrayLike,
        *,
        num_clients: int | None = None,
    ) -> None:
        members = _as_subset_list(subsets)
        dist = SubsetDistribution(subsets=members, probs=np.asarray(probs), exact=True)
        top = max(int(s.max()) for s in dist.subsets) + 1
        if num_clients is None:
            num_clients = top
        self.num_clients = _check_int(num_clients, "num_clients", top)
        self._dist = dist
        self._cdf = _cdf(dist.probs)

    @classmethod
    def from_distribution(cls, dist: SubsetDistribution, num_clients: int) -> Explicit:
        """Sample from an existing (for example Monte-Carlo estimated) distribution."""
        return cls(dist.subsets, dist.probs, num_clients=num_clients)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw :math:`A_j` with probability :math:`q_j` (one uniform, inverse CDF)."""
        j = int(_categorical(self._cdf, rng.random()))
        return self._dist.subsets[j].copy()

    def distribution(
        self,
        rng: np.random.Generator | None = None,
        *,
        num_samples: int = 200_000,
        max_support: int = 100_000,
    ) -> SubsetDistribution:
        """Return the given law (exact; ``rng`` and the budgets are unused)."""
        _check_budget(num_samples, max_support)
        return self._dist

    def reset(self) -> None:
        """Do nothing: the model is memoryless."""


class KofN:
    r"""K-of-N weighted sampling without replacement (successive sampling).

    The first member is client :math:`i` with probability :math:`r_i / \sum_j r_j`, each next one
    is drawn proportionally to :math:`r` among the clients not yet drawn. With :math:`r`
    normalised, the law of the set :math:`\{a_1, \dots, a_k\}` is

    .. math::

        q(\{a_1..a_k\}) = \sum_{\sigma \in \mathfrak S_k} \prod_{t=1}^{k}
            \frac{r_{a_{\sigma(t)}}}{1 - \sum_{s<t} r_{a_{\sigma(s)}}}.

    Parameters
    ----------
    weights
        ``(N,)`` availability weights :math:`r_i \ge 0` (any positive scale), at least ``k``
        positive.
    k
        Clients per round, ``1 <= k <= N``.

    Notes
    -----
    Draws use the exponential race: with :math:`E_i \sim \mathrm{Exp}(1)` i.i.d., the ``k``
    smallest :math:`E_i / r_i` are the successive sample (memorylessness), the same law as
    ``rng.choice(N, k, replace=False, p=r)`` but vectorisable over many draws.
    ``distribution`` enumerates when :math:`\binom{N_+}{k} \le` ``max_support`` and
    :math:`k \le 6` (:math:`N_+` clients with :math:`r_i > 0`; the others never appear).
    """

    def __init__(self, weights: ArrayLike, k: int) -> None:
        r = np.array(weights, dtype=np.float64)
        n = r.shape[0] if r.ndim == 1 else 0
        self.k = _check_int(k, "k", 1, n if n else None)
        self.weights = _check_weights(r, "weights", min_positive=self.k)
        self.num_clients = int(self.weights.shape[0])
        with np.errstate(divide="ignore"):
            self._inv = np.where(self.weights > 0, 1.0 / self.weights, np.inf)

    def _draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        keys = rng.standard_exponential((n, self.num_clients)) * self._inv
        if self.k == self.num_clients:
            top = np.broadcast_to(np.arange(self.num_clients), (n, self.k))
        else:
            top = np.argpartition(keys, self.k - 1, axis=1)[:, : self.k]
        return np.sort(top, axis=1).astype(np.int64)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw ``k`` distinct clients by successive weighted sampling."""
        return self._draw(rng, 1)[0]

    def distribution(
        self, rng: np.random.Generator, *, num_samples: int = 200_000, max_support: int = 100_000
    ) -> SubsetDistribution:
        """Return the exact law (enumerated over orderings) or a Monte-Carlo estimate."""
        num_samples, max_support = _check_budget(num_samples, max_support)
        positive = np.flatnonzero(self.weights > 0)
        count = math.comb(positive.shape[0], self.k)
        if count == 1 or (count <= max_support and self.k <= _MAX_ENUMERATED_K):
            return self._exact(positive)
        rows = np.concatenate(
            [self._draw(rng, m) for m in _batches(num_samples, self.num_clients)]
        )
        return _from_rows(rows)

    def _exact(self, positive: np.ndarray) -> SubsetDistribution:
        rows = positive[_combinations(positive.shape[0], self.k)]
        r = self.weights[rows]
        probs = np.zeros(rows.shape[0])
        for order in permutations(range(self.k)):
            picked = r[:, order]
            remaining = 1.0 - np.cumsum(picked, axis=1) + picked  # 1 - sum_{s<t}
            remaining = np.maximum(remaining, picked)  # exact arithmetic guarantees >=
            probs += np.prod(picked / remaining, axis=1)
        return SubsetDistribution(_rows_to_list(rows), probs / probs.sum(), exact=True)

    def reset(self) -> None:
        """Do nothing: the model is memoryless."""


class WithReplacementDrop:
    r"""The FedAVOT authors' sampler: ``k`` i.i.d. draws from :math:`r`, redrawn on any repeat.

    Every ordering of a ``k``-set is equally likely, so

    .. math::

        q(A) = \frac{\prod_{i \in A} r_i}{e_k(r)}, \qquad
        e_k(r) = \sum_{|B| = k} \prod_{i \in B} r_i,

    over all :math:`\binom{N}{k}` subsets; a draw is accepted with probability :math:`k!\,e_k(r)`.

    Parameters
    ----------
    weights
        ``(N,)`` availability weights :math:`r_i \ge 0` (any positive scale), at least ``k``
        positive.
    k
        Clients per round, ``1 <= k <= N``.

    Raises
    ------
    ValueError
        If the acceptance probability :math:`k!\,e_k(r)` is below ``1e-6`` (redrawing would
        practically never finish; use :class:`KofN`).
    """

    def __init__(self, weights: ArrayLike, k: int) -> None:
        r = np.array(weights, dtype=np.float64)
        n = r.shape[0] if r.ndim == 1 else 0
        self.k = _check_int(k, "k", 1, n if n else None)
        self.weights = _check_weights(r, "weights", min_positive=self.k)
        self.num_clients = int(self.weights.shape[0])
        e = np.zeros(self.k + 1)
        e[0] = 1.0
        for w in self.weights:  # elementary symmetric polynomials e_0..e_k
            e[1:] += w * e[:-1]
        self.acceptance = float(math.factorial(self.k) * e[self.k])
        if self.acceptance < _MIN_ACCEPTANCE:
            raise ValueError(
                f"weights and k={self.k} give repeat-free draws with probability "
                f"{self.acceptance:.3g} < {_MIN_ACCEPTANCE}; use KofN (sampling without replacement)"
            )
        self._cdf = _cdf(self.weights)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw ``k`` indices with replacement from :math:`r` until they are distinct; sort them."""
        while True:
            idx = np.sort(_categorical(self._cdf, rng.random(self.k)))
            if self.k == 1 or (np.diff(idx) > 0).all():
                return idx.astype(np.int64)

    def distribution(
        self, rng: np.random.Generator, *, num_samples: int = 200_000, max_support: int = 100_000
    ) -> SubsetDistribution:
        """Return the exact product-form law or a Monte-Carlo estimate of the same sampler."""
        num_samples, max_support = _check_budget(num_samples, max_support)
        positive = np.flatnonzero(self.weights > 0)
        if math.comb(positive.shape[0], self.k) <= max_support:
            rows = positive[_combinations(positive.shape[0], self.k)]
            probs = np.prod(self.weights[rows], axis=1)
            return SubsetDistribution(_rows_to_list(rows), probs / probs.sum(), exact=True)
        kept: list[np.ndarray] = []
        have = 0
        while have < num_samples:
            m = _chunk_rows(int((num_samples - have) / self.acceptance) + 1, self.k)
            idx = np.sort(_categorical(self._cdf, rng.random((m, self.k))), axis=1)
            ok = idx[(np.diff(idx, axis=1) > 0).all(axis=1)][: num_samples - have]
            kept.append(ok)
            have += ok.shape[0]
        return _from_rows(np.concatenate(kept).astype(np.int64))

    def reset(self) -> None:
        """Do nothing: the model is memoryless."""


class Bernoulli:
    r"""Independent availability: client :math:`i` is available with probability :math:`a_i`.

    Conditioned on the subset being non-empty:

    .. math::

        q(A) = \frac{\prod_{i \in A} a_i \prod_{i \notin A} (1 - a_i)}{1 - \prod_i (1 - a_i)},
        \qquad A \ne \emptyset.

    Parameters
    ----------
    probs
        ``(N,)`` availability probabilities :math:`a_i \in [0, 1]`, at least one positive.

    Notes
    -----
    Sampling is exact without rejection: the smallest available id is :math:`i` with probability
    :math:`a_i \prod_{j<i}(1-a_j) / Z`, and clients :math:`j > i` are then independent
    Bernoulli(:math:`a_j`); this is the law of "resample while empty". Clients with
    :math:`a_i = 0` never appear and those with :math:`a_i = 1` always do, so the support has
    :math:`2^F` subsets (:math:`-1` if none is always available) for :math:`F` clients with
    :math:`0 < a_i < 1`; it is enumerated when that is at most ``max_support``.
    """

    def __init__(self, probs: ArrayLike) -> None:
        a = np.array(probs, dtype=np.float64)
        if a.ndim != 1 or a.shape[0] == 0:
            raise ValueError(f"probs must be a non-empty 1-D array, got shape {a.shape}")
        if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
            raise ValueError(f"probs must lie in [0, 1], got {a.tolist()[:10]}")
        if not (a > 0).any():
            raise ValueError("probs needs at least one positive entry (else no subset is non-empty)")
        self.probs = a
        self.num_clients = int(a.shape[0])
        off_before = np.concatenate([[1.0], np.cumprod(1.0 - a)[:-1]])
        first = a * off_before  # P(smallest available id = i), unnormalised
        self.nonempty = float(first.sum())  # Z = 1 - prod(1 - a)
        self._first_cdf = _cdf(first)
        self._ids = np.arange(self.num_clients)

    def _draw_masks(self, rng: np.random.Generator, n: int) -> np.ndarray:
        first = _categorical(self._first_cdf, rng.random(n))[:, None]
        u = rng.random((n, self.num_clients))
        return ((u < self.probs) & (self._ids > first)) | (self._ids == first)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Draw a non-empty subset of independently available clients."""
        return np.flatnonzero(self._draw_masks(rng, 1)[0]).astype(np.int64)

    def distribution(
        self, rng: np.random.Generator, *, num_samples: int = 200_000, max_support: int = 100_000
    ) -> SubsetDistribution:
        """Return the exact conditioned product law or a Monte-Carlo estimate."""
        num_samples, max_support = _check_budget(num_samples, max_support)
        exact = self._enumerate(max_support)
        if exact is not None:
            return exact
        masks = np.concatenate(
            [self._draw_masks(rng, m) for m in _batches(num_samples, self.num_clients)]
        )
        return _from_masks(masks)

    def _enumerate(self, max_support: int) -> SubsetDistribution | None:
        """Return the exact law, or None if its support exceeds ``max_support`` subsets."""
        a = self.probs
        always = np.flatnonzero(a == 1.0)
        free = np.flatnonzero((a > 0) & (a < 1))
        if free.shape[0] >= 62 or 2 ** free.shape[0] - (0 if always.size else 1) > max_support:
            return None
        codes = np.arange(0 if always.size else 1, 2 ** free.shape[0], dtype=np.int64)
        bits = ((codes[:, None] >> np.arange(free.shape[0])) & 1).astype(bool)
        af = a[free]
        probs = np.prod(np.where(bits, af, 1.0 - af), axis=1) / self.nonempty
        subsets = [np.sort(np.concatenate([always, free[b]])).astype(np.int64) for b in bits]
        return SubsetDistribution(subsets, probs / probs.sum(), exact=True)

    def reset(self) -> None:
        """Do nothing: the model is memoryless."""


class Markov:
    r"""Time-correlated availability: an independent two-state on/off Markov chain per client.

    Each call of ``sample`` advances every client one step (off→on with probability
    :math:`\beta_i` = ``p_off_on``, on→off with :math:`\alpha_i` = ``p_on_off``) and returns the
    clients that are on; if none is, the chains advance again. The observed process is the chain
    watched on the non-empty states, so its stationary law is the product of the stationary
    Bernoulli marginals conditioned on non-empty:

    .. math::

        a_i = \frac{\beta_i}{\alpha_i + \beta_i}, \qquad
        q(A) = \frac{\prod_{i \in A} a_i \prod_{i \notin A}(1 - a_i)}{1 - \prod_i (1 - a_i)}.

    The lag-1 autocorrelation of one client's (unconditioned) state is :math:`1 - \alpha_i -
    \beta_i`: positive for sticky chains, zero when :math:`\alpha_i + \beta_i = 1` (i.i.d.).

    Parameters
    ----------
    p_on_off, p_off_on
        Transition probabilities in [0, 1], scalars or ``(N,)`` arrays, with
        :math:`\alpha_i + \beta_i > 0` and at least one :math:`\beta_i > 0`.
    init
        The state before the first step: a boolean ``(N,)`` mask or a sequence of the client ids
        that are on. Default: a draw from the stationary product law (through the ``rng`` of the
        first ``sample``).
    num_clients
        N, needed only when both transition probabilities are scalars.

    Notes
    -----
    ``distribution`` is exact when the stationary law is enumerable (see :class:`Bernoulli`),
    otherwise a Monte-Carlo estimate from one simulated run on its own chain (started from the
    stationary law, then a burn-in of :math:`\lceil 10 / \text{gap} \rceil` steps, capped at
    10,000, then every observed subset counted); it leaves the state used by ``sample`` alone.
    """

    def __init__(
        self,
        p_on_off: ArrayLike,
        p_off_on: ArrayLike,
        init: ArrayLike | None = None,
        *,
        num_clients: int | None = None,
    ) -> None:
        alpha = np.array(p_on_off, dtype=np.float64)
        beta = np.array(p_off_on, dtype=np.float64)
        sizes = {x.shape[0] for x in (alpha, beta) if x.ndim == 1}
        if alpha.ndim > 1 or beta.ndim > 1 or len(sizes) > 1:
            raise ValueError(
                f"p_on_off and p_off_on must be scalars or (N,) arrays of one length, got shapes "
                f"{alpha.shape} and {beta.shape}"
            )
        if sizes:
            n = sizes.pop()
            if num_clients is not None and num_clients != n:
                raise ValueError(f"num_clients={num_clients} disagrees with the arrays' length {n}")
        elif num_clients is None:
            raise ValueError("num_clients is required when p_on_off and p_off_on are both scalars")
        else:
            n = _check_int(num_clients, "num_clients", 1)
        for name, x in (("p_on_off", alpha), ("p_off_on", beta)):
            if not np.isfinite(x).all() or (x < 0).any() or (x > 1).any():
                raise ValueError(f"{name} must lie in [0, 1], got {np.atleast_1d(x).tolist()[:10]}")
        self.p_on_off = np.broadcast_to(alpha, (n,)).copy()
        self.p_off_on = np.broadcast_to(beta, (n,)).copy()
        total = self.p_on_off + self.p_off_on
        if (total <= 0).any():
            raise ValueError(
                "p_on_off + p_off_on must be > 0 for every client (a frozen chain has no unique "
                "stationary law)"
            )
        self.num_clients = int(n)
        self.stationary = self.p_off_on / total
        self._marginal = Bernoulli(self.stationary)  # raises if no client is ever on
        self._init: np.ndarray | None = None if init is None else self._as_state(init)
        self._state: np.ndarray | None = None
        gap = 1.0 - np.abs(1.0 - total)  # 1 - |second eigenvalue| per client
        self.burn_in = int(min(10_000, math.ceil(10.0 / max(float(gap.min()), 1e-3))))

    def _as_state(self, init: ArrayLike) -> np.ndarray:
        raw = np.asarray(init)
        if raw.dtype == bool:
            if raw.shape != (self.num_clients,):
                raise ValueError(f"init mask must have shape ({self.num_clients},), got {raw.shape}")
            return raw.copy()
        ids = np.asarray(raw, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_clients):
            raise ValueError(f"init ids must lie in 0..{self.num_clients - 1}, got {ids.tolist()}")
        state = np.zeros(self.num_clients, dtype=bool)
        state[ids] = True
        return state

    @property
    def state(self) -> np.ndarray | None:
        """The current on/off state (a copy), or None before the first ``sample``."""
        return None if self._state is None else self._state.copy()

    @state.setter
    def state(self, value: ArrayLike | None) -> None:
        """Set the current on/off state (a boolean mask or the ids that are on; None: unset)."""
        self._state = None if value is None else self._as_state(value)

    def _step(self, state: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.where(state, u >= self.p_on_off, u < self.p_off_on)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Advance every chain one step (again while all are off) and return the clients on."""
        state = self._state
        if state is None:
            state = (
                self._init.copy() if self._init is not None
                else rng.random(self.num_clients) < self.stationary
            )
        while True:
            state = self._step(state, rng.random(self.num_clients))
            if state.any():
                break
        self._state = state
        return np.flatnonzero(state).astype(np.int64)

    def distribution(
        self, rng: np.random.Generator, *, num_samples: int = 200_000, max_support: int = 100_000
    ) -> SubsetDistribution:
        """Return the stationary law of the observed subsets (exact or from a long run)."""
        num_samples, max_support = _check_budget(num_samples, max_support)
        exact = self._marginal._enumerate(max_support)
        if exact is not None:
            return exact
        n = self.num_clients
        state = rng.random(n) < self.stationary
        for _ in range(self.burn_in):
            state = self._step(state, rng.random(n))
        masks = np.zeros((num_samples, n), dtype=bool)
        t = 0
        while t < num_samples:
            for u in rng.random((_chunk_rows(num_samples - t, n), n)):
                state = self._step(state, u)
                if state.any():
                    masks[t] = state
                    t += 1
                    if t == num_samples:
                        break
        return _from_masks(masks)

    def reset(self) -> None:
        """Forget the state: the next ``sample`` restarts from ``init`` or a stationary draw."""
        self._state = None


class Restricted:
    r"""Clients in different groups are never available together.

    Each round picks group :math:`g` with probability :math:`w_g`; the available subset is the
    whole group (``k=None``) or ``k`` of its members uniformly without replacement:

    .. math::

        q(G_g) = w_g \quad \text{or} \quad q(A) = \frac{w_g}{\binom{|G_g|}{k}}
        \ \text{for } A \subseteq G_g,\ |A| = k.

    Parameters
    ----------
    groups
        Disjoint, non-empty groups of client ids. Clients in no group are never available.
    group_probs
        ``(G,)`` probabilities :math:`w_g` summing to 1; default uniform.
    k
        None (the whole group) or ``1 <= k <= min_g |G_g|``.
    num_clients
        N; default one more than the largest client id.

    Notes
    -----
    ``distribution`` is exact unless ``k`` is given and :math:`\sum_g \binom{|G_g|}{k}` (over
    groups with :math:`w_g > 0`) exceeds ``max_support``; then it is a Monte-Carlo estimate.
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]],
        group_probs: ArrayLike | None = None,
        k: int | None = None,
        *,
        num_clients: int | None = None,
    ) -> None:
        if len(groups) == 0:
            raise ValueError("groups must hold at least one group")
        members = _as_subset_list(groups)
        if any(g.size == 0 for g in members):
            raise ValueError("groups must be non-empty")
        flat = np.concatenate(members)
        if (flat < 0).any():
            raise ValueError("groups must hold client ids >= 0")
        if np.unique(flat).shape[0] != flat.shape[0]:
            raise ValueError("groups must be disjoint (a client appears in two groups)")
        top = int(flat.max()) + 1
        self.num_clients = _check_int(top if num_clients is None else num_clients, "num_clients", top)
        if group_probs is None:
            w = np.full(len(members), 1.0 / len(members))
        else:
            w = np.array(group_probs, dtype=np.float64)
            if w.shape != (len(members),):
                raise ValueError(
                    f"group_probs must have shape ({len(members)},) like groups, got {w.shape}"
                )
            w = _check_probs(w, "group_probs")
        smallest = min(g.size for g in members)
        self.k = None if k is None else _check_int(k, "k", 1, smallest)
        self.groups = members
        self.group_probs = w
        self._cdf = _cdf(w)

    def sample(self, rng: np.random.Generator) -> np.ndarray:
        """Pick a group, then the whole group or ``k`` of its members uniformly."""
        g = self.groups[int(_categorical(self._cdf, rng.random()))]
        if self.k is None:
            return g.copy()
        return np.sort(g[rng.choice(g.shape[0], self.k, replace=False)])

    def distribution(
        self, rng: np.random.Generator, *, num_samples: int = 200_000, max_support: int = 100_000
    ) -> SubsetDistribution:
        """Return the exact law (enumerated per group) or a Monte-Carlo estimate."""
        num_samples, max_support = _check_budget(num_samples, max_support)
        used = [(g, w) for g, w in zip(self.groups, self.group_probs, strict=True) if w > 0]
        if self.k is None:
            return SubsetDistribution([g for g, _ in used], np.array([w for _, w in used]), True)
        if sum(math.comb(g.shape[0], self.k) for g, _ in used) <= max_support:
            subsets: list[np.ndarray] = []
            probs: list[np.ndarray] = []
            for g, w in used:
                rows = g[_combinations(g.shape[0], self.k)]
                subsets.extend(_rows_to_list(rows))
                probs.append(np.full(rows.shape[0], w / rows.shape[0]))
            return SubsetDistribution(subsets, np.concatenate(probs), exact=True)
        rows = []
        for g, c in zip(self.groups, rng.multinomial(num_samples, self.group_probs), strict=True):
            for m in _batches(int(c), g.shape[0]) if c else []:
                keys = rng.random((m, g.shape[0]))  # uniform keys: k smallest = uniform k-subset
                rows.append(np.sort(g[np.argpartition(keys, self.k - 1, axis=1)[:, : self.k]]))
        return _from_rows(np.concatenate(rows))

    def reset(self) -> None:
        """Do nothing: the model is memoryless."""


def _batches(num_samples: int, width: int) -> list[int]:
    """Split ``num_samples`` draws into batch sizes that each hold a bounded number of floats."""
    size = _chunk_rows(num_samples, width)
    full, rest = divmod(num_samples, size)
    return [size] * full + ([rest] if rest else [])
