"""Tests of fedot.availability: samplers, exact and Monte-Carlo laws q, estimator and helpers."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from fedot.availability import (
    AVAILABILITY_KINDS,
    AvailabilityModel,
    Bernoulli,
    Explicit,
    KofN,
    Markov,
    OnlineEstimator,
    Restricted,
    SubsetDistribution,
    WithReplacementDrop,
    inclusion,
    make_availability,
    power_weights,
    surrogate_importance,
)

SKEW6 = np.array([1.0, 2.0, 3.0, 5.0, 8.0, 13.0])
SKEW7 = np.array([0.5, 1.0, 1.0, 2.0, 4.0, 6.0, 9.0])


# ---------------------------------------------------------------------------------------------
# Helpers


def _as_dict(dist: SubsetDistribution) -> dict[frozenset[int], float]:
    return {frozenset(s.tolist()): float(p) for s, p in zip(dist.subsets, dist.probs, strict=True)}


def _tv(p: dict[frozenset[int], float], q: dict[frozenset[int], float]) -> float:
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def _frequencies(draw: Callable[[], np.ndarray], n: int) -> dict[frozenset[int], float]:
    counts = Counter(frozenset(draw().tolist()) for _ in range(n))
    return {k: c / n for k, c in counts.items()}


def _assert_valid(dist: SubsetDistribution, num_clients: int) -> None:
    assert dist.probs.dtype == np.float64
    assert dist.probs.shape == (len(dist.subsets),)
    assert (dist.probs >= 0).all()
    assert dist.probs.sum() == pytest.approx(1.0, abs=1e-12)
    keys = set()
    for s in dist.subsets:
        assert s.dtype == np.int64 and s.ndim == 1 and s.size > 0
        assert (np.diff(s) > 0).all()
        assert s[0] >= 0 and s[-1] < num_clients
        keys.add(frozenset(s.tolist()))
    assert len(keys) == len(dist.subsets)


def _successive_law(r: np.ndarray, k: int) -> dict[frozenset[int], float]:
    """Independent reference: sum over every ordered draw of successive sampling."""
    r = r / r.sum()
    out: dict[frozenset[int], float] = {}
    for seq in itertools.permutations(range(len(r)), k):
        p, left = 1.0, 1.0
        for i in seq:
            p *= r[i] / left
            left -= r[i]
        key = frozenset(seq)
        out[key] = out.get(key, 0.0) + p
    return out


def _bernoulli_law(a: np.ndarray) -> dict[frozenset[int], float]:
    out = {}
    for bits in itertools.product([False, True], repeat=len(a)):
        if any(bits):
            p = math.prod(ai if b else 1 - ai for ai, b in zip(a, bits, strict=True))
            out[frozenset(i for i, b in enumerate(bits) if b)] = p
    z = sum(out.values())
    return {key: v / z for key, v in out.items() if v > 0}


# ---------------------------------------------------------------------------------------------
# SubsetDistribution and the helpers


def test_subset_distribution_normalises_freezes_and_indexes() -> None:
    dist = SubsetDistribution([[0, 2], np.array([1])], np.array([0.25, 0.75]), exact=True)
    assert isinstance(dist.subsets[0], np.ndarray) and dist.subsets[0].dtype == np.int64
    assert dist.index() == {frozenset({0, 2}): 0, frozenset({1}): 1}
    assert dist.index() is dist.index()  # cached
    with pytest.raises(ValueError, match="read-only"):
        dist.probs[0] = 1.0
    np.testing.assert_array_equal(dist.mask(3), [[True, False], [False, True], [True, False]])
    assert len(dist) == 2 and dist.num_samples == 0


@pytest.mark.parametrize(
    ("subsets", "probs", "match"),
    [
        ([[0], [1]], [0.5, 0.4], "probs must sum to 1"),
        ([[0], [1]], [1.5, -0.5], "probs must be finite and >= 0"),
        ([[0], [1]], [1.0], "probs must have shape"),
        ([[0, 1], [0, 1]], [0.5, 0.5], "subsets must be unique"),
        ([[1, 0]], [1.0], "strictly increasing"),
        ([[0, 0]], [1.0], "strictly increasing"),
        ([[]], [1.0], "non-empty"),
        ([[-1]], [1.0], ">= 0"),
    ],
)
def test_subset_distribution_rejects_bad_input(subsets: list, probs: list, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SubsetDistribution(subsets, np.array(probs), exact=True)


def test_subset_distribution_num_samples_must_be_zero_when_exact() -> None:
    with pytest.raises(ValueError, match="num_samples"):
        SubsetDistribution([[0]], np.array([1.0]), exact=True, num_samples=5)


def test_inclusion_and_surrogate_importance_by_hand() -> None:
    dist = SubsetDistribution([[0], [0, 1], [1, 2]], np.array([0.2, 0.5, 0.3]), exact=True)
    np.testing.assert_allclose(inclusion(dist, 4), [0.7, 0.8, 0.3, 0.0])
    np.testing.assert_allclose(surrogate_importance(dist, 4), [0.45, 0.40, 0.15, 0.0])
    with pytest.raises(ValueError, match="num_clients"):
        inclusion(dist, 2)


def test_power_weights_by_hand() -> None:
    np.testing.assert_allclose(power_weights(3, 1.0, increasing=True), [1 / 6, 2 / 6, 3 / 6])
    np.testing.assert_allclose(power_weights(3, 2.0, increasing=False), [9 / 14, 4 / 14, 1 / 14])
    p = power_weights(100, 0.8, increasing=False)
    assert p.sum() == pytest.approx(1.0)
    assert p[0] == pytest.approx(100**0.8 / (np.arange(1, 101) ** 0.8).sum())
    with pytest.raises(ValueError, match="n must"):
        power_weights(0, 1.0, increasing=True)
    with pytest.raises(ValueError, match="exponent"):
        power_weights(3, float("nan"), increasing=True)


# ---------------------------------------------------------------------------------------------
# KofN


@pytest.mark.parametrize(("r", "k"), [(SKEW6, 2), (SKEW7, 3)])
def test_kofn_exact_law_matches_reference_and_samples(r: np.ndarray, k: int) -> None:
    model = KofN(r, k)
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, len(r))
    assert dist.exact and dist.num_samples == 0 and len(dist) == math.comb(len(r), k)
    ref = _successive_law(r, k)
    got = _as_dict(dist)
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    rng = np.random.default_rng(1)
    assert _tv(_frequencies(lambda: model.sample(rng), 100_000), ref) < 0.02


def test_kofn_pairs_closed_form_and_rng_choice_agree() -> None:
    # For k = 2: P({i, j}) = r_i r_j (1 / (1 - r_i) + 1 / (1 - r_j)).
    r = SKEW6 / SKEW6.sum()
    got = _as_dict(KofN(SKEW6, 2).distribution(np.random.default_rng(0)))
    for i, j in itertools.combinations(range(6), 2):
        assert got[frozenset({i, j})] == pytest.approx(r[i] * r[j] * (1 / (1 - r[i]) + 1 / (1 - r[j])))
    # numpy's own successive sampler draws the same law as the exponential race.
    rng = np.random.default_rng(3)
    freq = _frequencies(lambda: rng.choice(6, 2, replace=False, p=r), 50_000)
    assert _tv(freq, got) < 0.02


def test_kofn_exact_and_monte_carlo_agree() -> None:
    model = KofN(SKEW7, 3)
    exact = model.distribution(np.random.default_rng(0))
    mc = model.distribution(np.random.default_rng(0), num_samples=200_000, max_support=10)
    _assert_valid(mc, 7)
    assert not mc.exact and mc.num_samples == 200_000
    assert _tv(_as_dict(exact), _as_dict(mc)) < 0.02
    # k > 6 is never enumerated, whatever max_support.
    big = KofN(np.ones(8), 7).distribution(np.random.default_rng(0), num_samples=2_000)
    assert not big.exact and len(big) == 8


def test_kofn_enumerates_4950_pairs_of_100() -> None:
    r = power_weights(100, 0.8, increasing=True)
    dist = KofN(r, 2).distribution(np.random.default_rng(0))
    assert dist.exact and len(dist) == 4950
    assert dist.probs.sum() == pytest.approx(1.0)
    # Inclusion probabilities of a k-subset law sum to k.
    assert inclusion(dist, 100).sum() == pytest.approx(2.0)


def test_kofn_zero_weight_clients_never_appear() -> None:
    model = KofN([0.0, 1.0, 2.0, 0.0, 3.0], 2)
    dist = model.distribution(np.random.default_rng(0))
    assert len(dist) == 3 and all(0 not in s and 3 not in s for s in dist.subsets)
    rng = np.random.default_rng(0)
    assert all(set(model.sample(rng).tolist()) <= {1, 2, 4} for _ in range(2_000))
    full = KofN([1.0, 2.0, 3.0], 3)
    np.testing.assert_array_equal(full.sample(rng), [0, 1, 2])
    assert full.distribution(rng).exact


# ---------------------------------------------------------------------------------------------
# WithReplacementDrop


def test_with_replacement_drop_law_by_hand_and_samples() -> None:
    model = WithReplacementDrop(SKEW6, 2)
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, 6)
    assert dist.exact and len(dist) == 15
    r = SKEW6
    z = sum(r[i] * r[j] for i, j in itertools.combinations(range(6), 2))
    got = _as_dict(dist)
    assert got[frozenset({0, 1})] == pytest.approx(r[0] * r[1] / z)
    assert got[frozenset({4, 5})] == pytest.approx(r[4] * r[5] / z)
    rng = np.random.default_rng(2)
    assert _tv(_frequencies(lambda: model.sample(rng), 100_000), got) < 0.02
    # Acceptance = k! e_k(r) with r normalised.
    assert model.acceptance == pytest.approx(2 * z / r.sum() ** 2)


def test_with_replacement_drop_monte_carlo_agrees_with_exact() -> None:
    model = WithReplacementDrop(SKEW7, 3)
    exact = model.distribution(np.random.default_rng(0))
    mc = model.distribution(np.random.default_rng(5), num_samples=150_000, max_support=0)
    assert not mc.exact and mc.num_samples == 150_000
    _assert_valid(mc, 7)
    assert _tv(_as_dict(exact), _as_dict(mc)) < 0.02


# ---------------------------------------------------------------------------------------------
# Bernoulli


def test_bernoulli_exact_law_and_samples() -> None:
    a = np.array([0.1, 0.3, 0.5, 0.2, 0.05])
    model = Bernoulli(a)
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, 5)
    assert dist.exact and len(dist) == 31
    ref = _bernoulli_law(a)
    got = _as_dict(dist)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-12)
    rng = np.random.default_rng(4)
    assert _tv(_frequencies(lambda: model.sample(rng), 100_000), ref) < 0.02
    mc = model.distribution(np.random.default_rng(4), num_samples=100_000, max_support=30)
    assert not mc.exact and _tv(_as_dict(mc), ref) < 0.02


def test_bernoulli_certain_and_impossible_clients() -> None:
    a = np.array([1.0, 0.0, 0.5, 0.5])
    dist = Bernoulli(a).distribution(np.random.default_rng(0))
    assert _as_dict(dist) == pytest.approx(
        {frozenset({0}): 0.25, frozenset({0, 2}): 0.25, frozenset({0, 3}): 0.25,
         frozenset({0, 2, 3}): 0.25}
    )
    assert not Bernoulli(np.full(17, 0.5)).distribution(
        np.random.default_rng(0), num_samples=1_000
    ).exact
    assert Bernoulli(np.full(16, 0.5)).distribution(np.random.default_rng(0)).exact


# ---------------------------------------------------------------------------------------------
# Markov


P_ON_OFF = np.array([0.3, 0.5, 0.2, 0.4])
P_OFF_ON = np.array([0.2, 0.3, 0.5, 0.1])


def _watched_chain_stationary(alpha: np.ndarray, beta: np.ndarray) -> dict[frozenset[int], float]:
    """Independent reference: the full 2^N chain, watched on its non-empty states."""
    n = len(alpha)
    states = list(itertools.product([0, 1], repeat=n))
    m = np.ones((len(states), len(states)))
    for x, s in enumerate(states):
        for y, t in enumerate(states):
            for i in range(n):
                stay_on, turn_on = 1 - alpha[i], beta[i]
                p_on = stay_on if s[i] else turn_on
                m[x, y] *= p_on if t[i] else 1 - p_on
    empty = [states.index(tuple([0] * n))]
    rest = [x for x in range(len(states)) if x not in empty]
    watched = m[np.ix_(rest, rest)] + m[np.ix_(rest, empty)] @ np.linalg.solve(
        np.eye(1) - m[np.ix_(empty, empty)], m[np.ix_(empty, rest)]
    )
    vals, vecs = np.linalg.eig(watched.T)
    pi = np.real(vecs[:, np.argmin(np.abs(vals - 1))])
    pi = pi / pi.sum()
    return {frozenset(i for i in range(n) if states[x][i]): pi[j] for j, x in enumerate(rest)}


def test_markov_stationary_law_matches_watched_chain_and_long_run() -> None:
    model = Markov(P_ON_OFF, P_OFF_ON)
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, 4)
    assert dist.exact and len(dist) == 15
    ref = _watched_chain_stationary(P_ON_OFF, P_OFF_ON)
    got = _as_dict(dist)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-9)
    np.testing.assert_allclose(model.stationary, P_OFF_ON / (P_ON_OFF + P_OFF_ON))
    rng = np.random.default_rng(6)
    assert _tv(_frequencies(lambda: model.sample(rng), 150_000), ref) < 0.02
    mc = model.distribution(np.random.default_rng(7), num_samples=150_000, max_support=0)
    assert not mc.exact and mc.num_samples == 150_000
    assert _tv(_as_dict(mc), ref) < 0.02


@pytest.mark.parametrize(("p_on_off", "p_off_on", "low", "high"), [
    (0.05, 0.05, 0.8, 1.0),  # sticky: autocorrelation 1 - 0.1 = 0.9
    (0.4, 0.6, -0.02, 0.02),  # p_on_off + p_off_on = 1: i.i.d. rounds
])
def test_markov_lag1_autocorrelation(p_on_off: float, p_off_on: float, low: float, high: float) -> None:
    model = Markov(p_on_off, p_off_on, num_clients=4)
    rng = np.random.default_rng(8)
    on = np.array([0 in model.sample(rng) for _ in range(60_000)], dtype=float)
    rho = np.corrcoef(on[:-1], on[1:])[0, 1]
    assert low < rho < high


def test_markov_init_state_and_reset() -> None:
    # p_on_off = 0, p_off_on = 1: every client is on after one step.
    model = Markov(0.0, 1.0, init=[0, 2], num_clients=3)
    assert model.state is None
    np.testing.assert_array_equal(model.sample(np.random.default_rng(0)), [0, 1, 2])
    # Client 0 switches off for good, client 1 flips every step; empty steps are skipped.
    flip = Markov([1.0, 1.0], [0.0, 1.0], init=np.array([True, False]))
    rng = np.random.default_rng(0)
    assert [flip.sample(rng).tolist() for _ in range(5)] == [[1]] * 5
    np.testing.assert_array_equal(flip.state, [False, True])
    # reset() forgets the state: the same seed then replays the same run.
    model = Markov(P_ON_OFF, P_OFF_ON)
    rng = np.random.default_rng(10)
    run1 = [tuple(model.sample(rng).tolist()) for _ in range(30)]
    assert model.state is not None
    model.reset()
    assert model.state is None
    rng = np.random.default_rng(10)
    run2 = [tuple(model.sample(rng).tolist()) for _ in range(30)]
    assert run1 == run2


# ---------------------------------------------------------------------------------------------
# Restricted and Explicit


GROUPS = [[0, 1, 2], [5, 3], [4, 6, 7, 8]]


def test_restricted_whole_groups() -> None:
    model = Restricted(GROUPS, [0.2, 0.5, 0.3])
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, 9)
    ref = {frozenset({0, 1, 2}): 0.2, frozenset({3, 5}): 0.5, frozenset({4, 6, 7, 8}): 0.3}
    assert dist.exact and _as_dict(dist) == pytest.approx(ref)
    rng = np.random.default_rng(11)
    assert _tv(_frequencies(lambda: model.sample(rng), 100_000), ref) < 0.02


def test_restricted_k_subsets_never_mix_groups() -> None:
    model = Restricted(GROUPS, k=2)
    dist = model.distribution(np.random.default_rng(0))
    _assert_valid(dist, 9)
    assert dist.exact and len(dist) == 3 + 1 + 6
    got = _as_dict(dist)
    assert got[frozenset({0, 1})] == pytest.approx(1 / 3 / 3)
    assert got[frozenset({3, 5})] == pytest.approx(1 / 3)
    assert got[frozenset({6, 8})] == pytest.approx(1 / 3 / 6)
    rng = np.random.default_rng(12)
    draws = [model.sample(rng) for _ in range(100_000)]
    owner = {c: g for g, members in enumerate(GROUPS) for c in members}
    assert all(len({owner[c] for c in s.tolist()}) == 1 for s in draws)
    freq = Counter(frozenset(s.tolist()) for s in draws)
    assert _tv({key: c / len(draws) for key, c in freq.items()}, got) < 0.02
    mc = model.distribution(np.random.default_rng(13), num_samples=100_000, max_support=5)
    assert not mc.exact and _tv(_as_dict(mc), got) < 0.02


def test_explicit_samples_its_law() -> None:
    model = Explicit([[2, 0], [1], [0, 1, 3]], [0.5, 0.2, 0.3])
    assert model.num_clients == 4
    dist = model.distribution()
    _assert_valid(dist, 4)
    ref = {frozenset({0, 2}): 0.5, frozenset({1}): 0.2, frozenset({0, 1, 3}): 0.3}
    assert _as_dict(dist) == pytest.approx(ref)
    rng = np.random.default_rng(14)
    assert _tv(_frequencies(lambda: model.sample(rng), 100_000), ref) < 0.02
    again = Explicit.from_distribution(dist, 6)
    assert again.num_clients == 6 and _as_dict(again.distribution()) == pytest.approx(ref)


# ---------------------------------------------------------------------------------------------
# Determinism


MODELS: dict[str, Callable[[], AvailabilityModel]] = {
    "k-of-n": lambda: KofN(SKEW7, 3),
    "with-replacement": lambda: WithReplacementDrop(SKEW7, 3),
    "bernoulli": lambda: Bernoulli(np.linspace(0.1, 0.6, 7)),
    "markov": lambda: Markov(0.3, 0.2, num_clients=7),
    "restricted": lambda: Restricted([[0, 1, 2, 3], [4, 5, 6]], k=2),
    "explicit": lambda: Explicit([[0], [1, 2], [3, 4, 5, 6]], [0.3, 0.3, 0.4]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_draws_different_seed_different(name: str) -> None:
    def run(seed: int) -> list[tuple[int, ...]]:
        model = MODELS[name]()
        rng = np.random.default_rng(seed)
        return [tuple(model.sample(rng).tolist()) for _ in range(200)]

    assert run(1) == run(1)
    assert run(1) != run(2)
    model = MODELS[name]()
    assert isinstance(model, AvailabilityModel)
    if name != "explicit":  # explicit is always exact, the others have a Monte-Carlo path
        a = model.distribution(np.random.default_rng(3), num_samples=3_000, max_support=1)
        b = model.distribution(np.random.default_rng(3), num_samples=3_000, max_support=1)
        c = model.distribution(np.random.default_rng(4), num_samples=3_000, max_support=1)
        assert not a.exact and a.num_samples == 3_000
        assert _as_dict(a) == _as_dict(b)
        assert _as_dict(a) != _as_dict(c)


# ---------------------------------------------------------------------------------------------
# OnlineEstimator


def test_online_estimator_converges_to_the_sampled_law() -> None:
    model = KofN(SKEW6, 2)
    est = OnlineEstimator(6)
    rng = np.random.default_rng(15)
    for _ in range(100_000):
        est.observe(model.sample(rng))
    dist = est.distribution()
    _assert_valid(dist, 6)
    assert not dist.exact and dist.num_samples == 100_000 and est.rounds == 100_000
    assert _tv(_as_dict(dist), _as_dict(model.distribution(rng))) < 0.02


def test_online_estimator_decay_by_hand() -> None:
    est = OnlineEstimator(3, decay=0.5)
    for subset in ([0, 1], [1, 0], [2]):
        est.observe(subset)
    # Weights 0.25 + 0.5 for {0, 1} and 1 for {2}.
    assert _as_dict(est.distribution()) == pytest.approx(
        {frozenset({0, 1}): 3 / 7, frozenset({2}): 4 / 7}
    )
    plain = OnlineEstimator(3)
    for subset in ([0, 1], [1, 0], [2]):
        plain.observe(subset)
    assert _as_dict(plain.distribution()) == pytest.approx(
        {frozenset({0, 1}): 2 / 3, frozenset({2}): 1 / 3}
    )


def test_online_estimator_long_decayed_run_stays_finite() -> None:
    est = OnlineEstimator(2, decay=0.5)
    for t in range(1_000):  # weights 2^t would overflow without rescaling
        est.observe([t % 2])
    got = _as_dict(est.distribution())
    assert got == pytest.approx({frozenset({1}): 2 / 3, frozenset({0}): 1 / 3})


def test_online_estimator_errors_and_reset() -> None:
    est = OnlineEstimator(3)
    with pytest.raises(ValueError, match="no subsets observed"):
        est.distribution()
    with pytest.raises(NotImplementedError):
        est.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="subset must hold client ids"):
        est.observe([3])
    with pytest.raises(ValueError, match="non-empty"):
        est.observe([])
    est.observe([1])
    est.reset()
    assert est.rounds == 0
    with pytest.raises(ValueError, match="decay"):
        OnlineEstimator(3, decay=0.0)


# ---------------------------------------------------------------------------------------------
# Factory and validation


def test_make_availability_builds_every_kind() -> None:
    assert AVAILABILITY_KINDS == (
        "k-of-n", "with-replacement", "bernoulli", "markov", "restricted", "explicit"
    )
    built = {
        "k-of-n": make_availability("k-of-n", 5, k=3, weights=np.arange(1.0, 6.0)),
        "with-replacement": make_availability("with-replacement", 5),
        "bernoulli": make_availability("bernoulli", 5, probs=0.3),
        "markov": make_availability("markov", 5, p_on_off=0.1, p_off_on=0.2),
        "restricted": make_availability("restricted", 5, groups=[[0, 1], [2, 3, 4]]),
        "explicit": make_availability("explicit", 5, subsets=[[0], [4]], probs=[0.5, 0.5]),
    }
    classes = (KofN, WithReplacementDrop, Bernoulli, Markov, Restricted, Explicit)
    for (kind, model), cls in zip(built.items(), classes, strict=True):
        assert type(model) is cls, kind
        assert model.num_clients == 5
        assert isinstance(model, AvailabilityModel)
    assert built["k-of-n"].k == 3 and built["with-replacement"].k == 2
    np.testing.assert_allclose(make_availability("bernoulli", 4).probs, 0.5)  # k / N
    assert built["restricted"].k is None


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: KofN(SKEW6, 7), "k must be"),
        (lambda: KofN(SKEW6, 0), "k must be"),
        (lambda: KofN([-1.0, 1.0, 1.0], 2), "weights must be finite and >= 0"),
        (lambda: KofN([1.0, 0.0, 0.0], 2), "weights needs at least 2 positive"),
        (lambda: WithReplacementDrop(SKEW6, 7), "k must be"),
        (lambda: WithReplacementDrop([1.0, -2.0], 1), "weights must be"),
        (lambda: WithReplacementDrop(np.ones(40), 40), "weights and k=40"),
        (lambda: Bernoulli([0.5, 1.2]), "probs must lie in"),
        (lambda: Bernoulli([0.0, 0.0]), "probs needs at least one positive"),
        (lambda: Explicit([[0], [1]], [0.5, 0.4]), "probs must sum to 1"),
        (lambda: Explicit([[0], [0]], [0.5, 0.5]), "subsets must be unique"),
        (lambda: Explicit([[0, 0]], [1.0]), "subsets must not repeat"),
        (lambda: Explicit([[0, 3]], [1.0], num_clients=3), "num_clients"),
        (lambda: Markov(1.5, 0.5, num_clients=3), "p_on_off must lie in"),
        (lambda: Markov(0.5, -0.1, num_clients=3), "p_off_on must lie in"),
        (lambda: Markov(0.0, 0.0, num_clients=3), "p_on_off \\+ p_off_on"),
        (lambda: Markov(0.5, 0.5), "num_clients is required"),
        (lambda: Markov([0.5, 0.5], [0.5, 0.5, 0.5]), "p_on_off and p_off_on must"),
        (lambda: Markov(0.5, 0.5, init=[5], num_clients=3), "init"),
        (lambda: Restricted([[0, 1], [1, 2]]), "groups must be disjoint"),
        (lambda: Restricted([[0, 1], []]), "groups must be non-empty"),
        (lambda: Restricted([[0, 1], [2]], k=2), "k must be"),
        (lambda: Restricted([[0, 1], [2]], group_probs=[0.5, 0.6]), "group_probs must sum to 1"),
        (lambda: Restricted([[0, 1], [2]], group_probs=[1.0]), "group_probs must have shape"),
        (lambda: make_availability("uniform", 4), "kind must be one of k-of-n, with-replacement"),
        (lambda: make_availability("k-of-n", 4, weights=np.ones(3)), "weights must have shape"),
        (lambda: make_availability("bernoulli", 4, probs=[0.5] * 3), "probs must be a scalar"),
        (lambda: make_availability("markov", 4, p_on_off=0.1), "p_on_off and p_off_on"),
        (lambda: make_availability("restricted", 4), "needs groups"),
        (lambda: make_availability("explicit", 4, subsets=[[0]]), "needs subsets and probs"),
        (lambda: KofN(SKEW6, 2).distribution(np.random.default_rng(0), num_samples=0),
         "num_samples"),
        (lambda: KofN(SKEW6, 2).distribution(np.random.default_rng(0), max_support=-1),
         "max_support"),
    ],
)
def test_validation_errors_name_the_argument(build: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build()
