r"""Fusing client rewards on a shared state space: Wasserstein barycenter or parameter averaging.

Client k's reward r_k ∈ R^{|S|} (from local MaxEnt IRL) is standardised,
z_k = (r_k − mean r_k) / std r_k (MaxEnt rewards are defined only up to additive constants), mapped
to a probability measure ρ_k on the states, and the measures are fused by an entropic Wasserstein
barycenter whose ground cost is the squared Euclidean distance between state coordinates x(s)
(normalised by its max):

.. math::

    \bar\rho = \arg\min_{\rho} \sum_k w_k \mathrm{OT}_\varepsilon(\rho_k, \rho),
    \qquad C[s, s'] = \|x(s) - x(s')\|^2 / \max C.

The barycenter is mapped back to a reward and given the clients' mean location and scale,
r̂ = m̄ + s̄ · standardise(g⁻¹(ρ̄)), with m̄ = Σ w_k mean(r_k), s̄ = Σ w_k std(r_k) and g the
reward → measure map:

* ``"softmax"`` (default): ρ ∝ exp(z / τ); inverse g⁻¹(ρ) = τ log ρ (exact up to a constant);
* ``"shift"``: ρ ∝ z − min z + δ (keeps the reward's shape linear); inverse: ρ itself;
* ``"minmax"``: ρ ∝ (z − min z) / (max z − min z) + δ (equal scales); inverse: ρ itself.

Where clients' rewards are shifted copies of one another (a goal displaced by local dynamics or
sensing), the barycenter keeps one peak at the weighted mean location with the original shape, while
the parameter average r̄ = Σ w_k r_k is a multi-modal smear (Millard & Baheri 2026 motivate the
barycenter by this).

References
----------
Millard, L. and Baheri, A. (2026). Federated inverse reinforcement learning with Wasserstein
barycenters. L4DC, PMLR 331 (arXiv:2601.00309).
Ziebart, B. et al. (2008). Maximum entropy inverse reinforcement learning. AAAI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedot.ot.barycenter import BarycenterResult, barycenter, convolutional_barycenter

__all__ = [
    "FusionResult",
    "MEASURE_MAPS",
    "average_rewards",
    "fuse_rewards",
    "measure_to_reward",
    "reward_to_measure",
]

MeasureMap = Literal["softmax", "shift", "minmax"]
MEASURE_MAPS: tuple[str, ...] = ("softmax", "shift", "minmax")
BarycenterMethod = Literal["auto", "sinkhorn_log", "ibp", "convolutional"]
#: Above this many states, ``method="auto"`` uses fedot's scaling IBP instead of POT's log domain.
LOG_DOMAIN_MAX_STATES = 2048


@dataclass(frozen=True)
class FusionResult:
    """A fused reward with what produced it.

    Attributes
    ----------
    reward : np.ndarray, shape (S,)
        The fused reward r̂ on the clients' mean location and scale.
    measure : np.ndarray, shape (S,)
        The barycenter ρ̄.
    measures : np.ndarray, shape (K, S)
        The clients' measures ρ_k.
    weights : np.ndarray, shape (K,)
        The normalised barycentric weights.
    solver : BarycenterResult
        Diagnostics of the barycenter solver (iterations, marginal error, cost, method).
    """

    reward: np.ndarray
    measure: np.ndarray
    measures: np.ndarray
    weights: np.ndarray
    solver: BarycenterResult


def _check_rewards(rewards: np.ndarray) -> np.ndarray:
    r = np.asarray(rewards, dtype=np.float64)
    if r.ndim == 1:
        r = r[None]
    if r.ndim != 2 or r.shape[1] < 2:
        raise ValueError(f"rewards must have shape (K, S) with S ≥ 2, got {r.shape}")
    if not np.all(np.isfinite(r)):
        bad = np.unique(np.nonzero(~np.isfinite(r))[0]).tolist()
        raise ValueError(f"rewards of clients {bad} have non-finite entries")
    return r


def _weights(weights: np.ndarray | None, k: int) -> np.ndarray:
    if weights is None:
        return np.full(k, 1.0 / k)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (k,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"weights must be {k} finite nonnegative numbers, not all 0; got {w}")
    return w / w.sum()


def _standardise(r: np.ndarray) -> tuple[np.ndarray, float, float]:
    mean, std = float(r.mean()), float(r.std())
    if std <= 1e-12 * max(1.0, abs(mean)):
        return np.zeros_like(r), mean, 0.0
    return (r - mean) / std, mean, std


def reward_to_measure(
    reward: np.ndarray, *, kind: MeasureMap = "softmax", tau: float = 1.0, delta: float = 1e-3
) -> np.ndarray:
    """Map one reward vector to a probability measure on the states (after z-scoring).

    Parameters
    ----------
    reward : np.ndarray, shape (S,)
        A finite reward; a constant reward maps to the uniform measure.
    kind : {"softmax", "shift", "minmax"}
        ρ ∝ exp(z/τ), ρ ∝ z − min z + δ, or ρ ∝ (z − min z)/(max z − min z) + δ.
    tau : float
        Softmax temperature (> 0).
    delta : float
        Floor added by ``"shift"`` and ``"minmax"`` so that no state has zero mass (> 0).

    Returns
    -------
    np.ndarray, shape (S,)
        Strictly positive, sums to 1.
    """
    if not tau > 0 or not delta > 0:
        raise ValueError(f"tau and delta must be > 0, got tau={tau}, delta={delta}")
    z, _, _ = _standardise(_check_rewards(reward)[0])
    if kind == "softmax":
        e = np.exp((z - z.max()) / tau)
    elif kind == "shift":
        e = z - z.min() + delta
    elif kind == "minmax":
        span = z.max() - z.min()
        e = (z - z.min()) / (span if span > 0 else 1.0) + delta
    else:
        raise ValueError(f"kind must be one of {MEASURE_MAPS}, got {kind!r}")
    return e / e.sum()


def measure_to_reward(
    measure: np.ndarray, *, kind: MeasureMap = "softmax", tau: float = 1.0,
    location: float = 0.0, scale: float = 1.0,
) -> np.ndarray:
    """Invert :func:`reward_to_measure` up to an affine map, then set mean and std.

    ``softmax``: τ log ρ (entries are floored at the smallest positive float); ``shift`` and
    ``minmax``: ρ itself. The result is standardised and returned as ``location + scale · z``.
    """
    rho = np.asarray(measure, dtype=np.float64)
    if not np.all(np.isfinite(rho)) or np.any(rho < 0):
        raise ValueError("measure must be finite and nonnegative")
    if kind == "softmax":
        raw = tau * np.log(np.maximum(rho, np.finfo(np.float64).tiny))
    elif kind in ("shift", "minmax"):
        raw = rho
    else:
        raise ValueError(f"kind must be one of {MEASURE_MAPS}, got {kind!r}")
    z, _, _ = _standardise(raw)
    return location + scale * z


def average_rewards(rewards: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Parameter averaging (the FedAvg baseline): r̄ = Σ_k w_k r_k."""
    r = _check_rewards(rewards)
    return _weights(weights, r.shape[0]) @ r


def fuse_rewards(
    rewards: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    coords: np.ndarray | None = None,
    grid_shape: tuple[int, int] | None = None,
    kind: MeasureMap = "softmax",
    tau: float = 1.0,
    delta: float = 1e-3,
    reg: float = 0.01,
    method: BarycenterMethod = "auto",
    tol: float = 1e-9,
    max_iter: int = 10_000,
) -> FusionResult:
    """Fuse K client rewards by the entropic Wasserstein barycenter of their measures.

    Parameters
    ----------
    rewards : np.ndarray, shape (K, S)
        Client rewards on the shared states (finite; checked).
    weights : np.ndarray, shape (K,), optional
        Barycentric weights (e.g. demonstration counts); uniform by default.
    coords : np.ndarray, shape (S, d), optional
        State coordinates for the ground cost. Required unless ``grid_shape`` is given.
    grid_shape : (int, int), optional
        When the states are the row-major cells of an H × W grid (S = HW): enables the
        convolutional solver, and the coordinates default to (row, col).
    kind, tau, delta
        The reward → measure map (:func:`reward_to_measure`).
    reg : float
        Entropic regularisation ε relative to max C.
    method : {"auto", "sinkhorn_log", "ibp", "convolutional"}
        ``"auto"``: convolutional on grids, POT's log domain up to
        :data:`LOG_DOMAIN_MAX_STATES` states, scaling IBP above.
    tol, max_iter
        Solver stopping rule.

    Returns
    -------
    FusionResult
    """
    r = _check_rewards(rewards)
    k, s = r.shape
    w = _weights(weights, k)
    if grid_shape is not None and int(grid_shape[0]) * int(grid_shape[1]) != s:
        raise ValueError(f"grid_shape {tuple(grid_shape)} does not have {s} cells")
    if method == "auto":
        if grid_shape is not None:
            method = "convolutional"
        else:
            method = "sinkhorn_log" if s <= LOG_DOMAIN_MAX_STATES else "ibp"
    stats = [_standardise(row) for row in r]
    measures = np.stack([reward_to_measure(row, kind=kind, tau=tau, delta=delta) for row in r])
    if method == "convolutional":
        if grid_shape is None:
            raise ValueError("method='convolutional' needs grid_shape")
        h, wd = int(grid_shape[0]), int(grid_shape[1])
        solver = convolutional_barycenter(measures.reshape(k, h, wd), reg, w, tol=tol,
                                          max_iter=max_iter)
        rho = np.asarray(solver.barycenter).reshape(-1)
    else:
        if coords is None:
            if grid_shape is None:
                raise ValueError("fuse_rewards needs coords or grid_shape for the ground cost")
            rows, cols = np.divmod(np.arange(s), int(grid_shape[1]))
            coords = np.stack([rows, cols], axis=1)
        x = np.asarray(coords, dtype=np.float64).reshape(s, -1)
        cost = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        if cost.max() <= 0:
            raise ValueError("all state coordinates coincide: the ground cost is zero")
        solver = barycenter(measures.T, cost / cost.max(), reg, w, method=method, tol=tol,
                            max_iter=max_iter)
        rho = np.asarray(solver.barycenter)
    location = float(sum(wi * m for wi, (_, m, _) in zip(w, stats, strict=True)))
    scale = float(sum(wi * sd for wi, (_, _, sd) in zip(w, stats, strict=True)))
    reward = measure_to_reward(rho, kind=kind, tau=tau, location=location, scale=scale)
    return FusionResult(reward, rho, measures, w, solver)
