"""Two-dimensional toy densities for flow matching, with mode labels for heterogeneous splits.

The densities follow the FFJORD ``toy_data`` definitions (Grathwohl et al., 2019), which are also
the usual targets of conditional flow matching papers (Lipman et al., 2023; Tong et al., 2024,
TMLR). Every sample carries a *mode label* (which Gaussian, which moon, which square, ...); the
federated flow-matching experiments (Wang et al., 2025, arXiv 2509.21250) give different clients
different modes through :func:`split_by_mode`. :func:`mode_labels_by_angle` gives an alternative
labelling by angular region of the plane.

numpy and scikit-learn only (no torch): this module belongs to the data layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from sklearn.datasets import make_circles, make_moons

from fedot.data._checks import check_int

__all__ = ["NUM_MODES", "SPLIT_KINDS", "TOY2D", "mode_labels_by_angle", "sample_toy2d", "split_by_mode"]

#: Names accepted by :func:`sample_toy2d`.
TOY2D: tuple[str, ...] = ("8gaussians", "moons", "checkerboard", "spirals", "circles")

#: Kinds accepted by :func:`split_by_mode`.
SPLIT_KINDS: tuple[str, ...] = ("mode", "dirichlet", "iid")

_SQRT2 = 1.414  # FFJORD's literal constant, kept for comparability with published figures


def _seed_from(rng: np.random.Generator) -> int:
    """Draw an integer seed for scikit-learn generators from ``rng``."""
    return int(rng.integers(0, 2**31 - 1))


def _eight_gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FFJORD 8 Gaussians: centres ``4 u_k / 1.414`` on a circle, std ``0.5 / 1.414``."""
    s = 1.0 / np.sqrt(2.0)
    units = np.array(
        [(1, 0), (s, s), (0, 1), (-s, s), (-1, 0), (-s, -s), (0, -1), (s, -s)], dtype=np.float64
    )
    labels = rng.integers(0, 8, size=n)
    x = (4.0 * units[labels] + 0.5 * rng.standard_normal((n, 2))) / _SQRT2
    return x, labels


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FFJORD moons: ``2 * make_moons(noise=0.05) + (-1, -0.2)``; label 0 = upper, 1 = lower moon."""
    x, labels = make_moons(n_samples=n, noise=0.05, random_state=_seed_from(rng))
    return 2.0 * x + np.array([-1.0, -0.2]), labels


def _checkerboard(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FFJORD checkerboard on ``[-4, 4]^2``: 8 filled squares of side 2.

    ``x1 ~ U[-2, 2)``, ``x2 = U[0, 1) - 2 b + (floor(x1) mod 2)`` with ``b ~ Bernoulli(1/2)``,
    returned as ``2 (x1, x2)``. The label is ``2 * column + b`` (column = ``floor(x1) + 2``).
    """
    x1 = rng.random(n) * 4.0 - 2.0
    b = rng.integers(0, 2, size=n)
    col = np.floor(x1)
    x2 = rng.random(n) - 2.0 * b + np.mod(col, 2.0)
    labels = 2 * (col.astype(np.int64) + 2) + b
    return 2.0 * np.stack([x1, x2], axis=1), labels


def _spirals(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """FFJORD two spirals: ``r = sqrt(U) * 3 pi``, points ``±(-r cos r, r sin r) / 3`` plus noise.

    Label 0 is the spiral with sign ``+1``, label 1 the point-reflected one.
    """
    labels = rng.integers(0, 2, size=n)
    r = np.sqrt(rng.random(n)) * 540.0 * (2.0 * np.pi) / 360.0
    d = np.stack([-np.cos(r) * r, np.sin(r) * r], axis=1) + rng.random((n, 2)) * 0.5
    sign = (1 - 2 * labels)[:, None]
    return sign * d / 3.0 + 0.1 * rng.standard_normal((n, 2)), labels


def _circles(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``3 * make_circles(noise=0.03, factor=0.5)``: radii 3 and 1.5; label 0 = outer, 1 = inner."""
    x, labels = make_circles(n_samples=n, noise=0.03, factor=0.5, random_state=_seed_from(rng))
    return 3.0 * x, labels


_SAMPLERS: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "8gaussians": _eight_gaussians,
    "moons": _moons,
    "checkerboard": _checkerboard,
    "spirals": _spirals,
    "circles": _circles,
}

#: Number of modes of each density (the possible values of its mode label).
NUM_MODES: dict[str, int] = {"8gaussians": 8, "moons": 2, "checkerboard": 8, "spirals": 2, "circles": 2}


def sample_toy2d(name: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points from a 2-D toy density, with their mode labels.

    Parameters
    ----------
    name : str
        One of :data:`TOY2D`:

        ``"8gaussians"``
            Mixture of 8 equally weighted isotropic Gaussians with centres
            ``4 (cos(k pi/4), sin(k pi/4)) / 1.414`` (radius about 2.83) and standard deviation
            ``0.5 / 1.414`` (about 0.354), as in FFJORD. Label ``k`` = the Gaussian, counted
            counter-clockwise from the positive x-axis.
        ``"moons"``
            ``2 * make_moons(noise=0.05) + (-1, -0.2)`` (FFJORD scaling, noise 0.05);
            label 0 = upper moon, 1 = lower moon.
        ``"checkerboard"``
            FFJORD checkerboard: uniform on 8 squares of side 2 in ``[-4, 4]^2``;
            label ``2 * column + b`` in ``0..7`` (columns left to right, ``b = 1`` for the lower
            square of the column).
        ``"spirals"``
            FFJORD two spirals (radius up to about 3.3, noise 0.1); label = which spiral.
        ``"circles"``
            ``3 * make_circles(noise=0.03, factor=0.5)``; label 0 = outer (radius 3),
            1 = inner (radius 1.5).
    n : int
        Number of points, at least 1.
    rng : numpy.random.Generator
        Source of all randomness; the same generator state gives the same output.

    Returns
    -------
    x : numpy.ndarray
        Points, shape ``(n, 2)``, ``float32``.
    labels : numpy.ndarray
        Mode labels, shape ``(n,)``, ``int64``, in ``0 .. NUM_MODES[name] - 1``.

    Raises
    ------
    ValueError
        If ``name`` is unknown or ``n < 1``.

    References
    ----------
    Grathwohl et al., "FFJORD: Free-form continuous dynamics for scalable reversible generative
    models", ICLR 2019. Tong et al., "Improving and generalizing flow-based generative models
    with minibatch optimal transport", TMLR 2024.
    """
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy density {name!r}; expected one of {TOY2D}")
    check_int("n", n, 1)
    x, labels = _SAMPLERS[name](int(n), rng)
    return np.ascontiguousarray(x, dtype=np.float32), np.asarray(labels, dtype=np.int64)


def mode_labels_by_angle(x: np.ndarray, k: int, *, offset: float = 0.0) -> np.ndarray:
    """Label points by the angular sector of the plane they fall in.

    Sector ``j`` is ``offset + 2 pi j / k <= angle(x) < offset + 2 pi (j + 1) / k`` (angles
    counter-clockwise from the positive x-axis, taken modulo ``2 pi``). Use it to give every client
    a different *region* of a density rather than a different mode.

    Parameters
    ----------
    x : numpy.ndarray
        Points, shape ``(n, 2)``.
    k : int
        Number of sectors, at least 1.
    offset : float, default 0.0
        Angle (radians) of the first sector boundary. For ``"8gaussians"`` with ``k = 8`` the
        default puts the boundaries *through* the centres; ``offset = pi / 8`` puts them between.

    Returns
    -------
    numpy.ndarray
        Sector labels in ``0 .. k - 1``, shape ``(n,)``, ``int64``. The origin gets sector of
        angle 0.

    Raises
    ------
    ValueError
        If ``x`` is not ``(n, 2)`` or ``k < 1``.
    """
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must have shape (n, 2), got {x.shape}")
    check_int("k", k, 1)
    angle = np.mod(np.arctan2(x[:, 1], x[:, 0]) - offset, 2.0 * np.pi)
    sector = np.floor(angle / (2.0 * np.pi / k)).astype(np.int64)
    return np.clip(sector, 0, k - 1)


def _split_modes(labels: np.ndarray, modes: np.ndarray, num_clients: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Disjoint modes per client; with fewer modes than clients, split each mode among a group."""
    if len(modes) >= num_clients:
        return [np.flatnonzero(np.isin(labels, modes[c::num_clients])) for c in range(num_clients)]
    parts: list[np.ndarray] = []
    for mode, group in zip(modes, np.array_split(np.arange(num_clients), len(modes)), strict=True):
        idx = rng.permutation(np.flatnonzero(labels == mode))
        parts.extend(np.sort(chunk) for chunk in np.array_split(idx, len(group)))
    return parts


def _split_dirichlet(labels: np.ndarray, modes: np.ndarray, num_clients: int, alpha: float,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """Per mode, split its samples among clients with proportions ``~ Dir(alpha 1)``."""
    buckets: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for mode in modes:
        idx = rng.permutation(np.flatnonzero(labels == mode))
        props = rng.dirichlet(np.full(num_clients, alpha))
        cuts = (np.cumsum(props)[:-1] * len(idx)).astype(np.int64)
        for c, chunk in enumerate(np.split(idx, cuts)):
            buckets[c].append(chunk)
    return [np.sort(np.concatenate(b)) for b in buckets]


def split_by_mode(
    labels: np.ndarray,
    num_clients: int,
    *,
    kind: Literal["mode", "dirichlet", "iid"],
    alpha: float = 1.0,
    rng: np.random.Generator,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Split sample indices among clients according to their mode labels.

    Parameters
    ----------
    labels : numpy.ndarray
        Mode label of every sample, shape ``(n,)`` (from :func:`sample_toy2d` or
        :func:`mode_labels_by_angle`).
    num_clients : int
        Number of clients, at least 1.
    kind : {"mode", "dirichlet", "iid"}
        ``"mode"``
            Each client gets a disjoint set of modes. With at least as many modes as clients the
            sorted modes are dealt round-robin (client ``c`` gets modes ``c, c + C, ...``). With
            fewer modes than clients the clients are cut into ``n_modes`` contiguous groups
            (``numpy.array_split``) and the shuffled samples of mode ``m`` are split evenly
            among group ``m``; clients of different groups then share no mode. Deterministic
            when there are at least as many modes as clients.
        ``"dirichlet"``
            For every mode, proportions ``p ~ Dir(alpha, ..., alpha)`` over the clients; the
            mode's shuffled samples are cut by ``p``. Small ``alpha`` gives skewed clients.
            Draws are repeated (up to ``max_tries``) until every client is non-empty.
        ``"iid"``
            A uniform random permutation cut into ``num_clients`` near-equal parts.
    alpha : float, default 1.0
        Dirichlet concentration (``kind="dirichlet"`` only), > 0.
    rng : numpy.random.Generator
        Source of all randomness.
    max_tries : int, default 100
        Number of Dirichlet draws before giving up on a split with no empty client.

    Returns
    -------
    list of numpy.ndarray
        ``num_clients`` sorted ``int64`` index arrays, pairwise disjoint, whose union is
        ``range(n)``, each non-empty.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, ``alpha <= 0``, ``labels`` is not 1-D, or the split would leave a
        client empty (fewer samples than clients, a mode with fewer samples than its client
        group, or ``max_tries`` Dirichlet draws all leaving a client empty).
    """
    if kind not in SPLIT_KINDS:
        raise ValueError(f"unknown split kind {kind!r}; expected one of {SPLIT_KINDS}")
    check_int("num_clients", num_clients, 1)
    check_int("max_tries", max_tries, 1)
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got alpha={alpha!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    n = len(labels)
    if n < num_clients:
        raise ValueError(f"cannot split {n} samples among {num_clients} non-empty clients")
    modes = np.unique(labels)
    if kind == "iid":
        parts = [np.sort(p) for p in np.array_split(rng.permutation(n), num_clients)]
    elif kind == "mode":
        parts = _split_modes(labels, modes, num_clients, rng)
    else:
        for _ in range(max_tries):
            parts = _split_dirichlet(labels, modes, num_clients, float(alpha), rng)
            if all(len(p) > 0 for p in parts):
                break
    empty = [c for c, p in enumerate(parts) if len(p) == 0]
    if empty:
        detail = f" after {max_tries} Dirichlet draws (alpha={alpha})" if kind == "dirichlet" else ""
        raise ValueError(
            f"split kind={kind!r} leaves client(s) {empty} empty{detail}: {n} samples, "
            f"{len(modes)} modes, {num_clients} clients"
        )
    return [p.astype(np.int64) for p in parts]
