r"""Evaluation metrics for flow models: Wasserstein distances, straightness, Frechet distance.

All functions accept torch tensors or numpy arrays (samples along the first axis, flattened
beyond it) and return Python floats.

References
----------
Peyre & Cuturi, "Computational optimal transport", Found. Trends Mach. Learn. 2019 (exact and
sliced Wasserstein). Bonneel et al., "Sliced and Radon Wasserstein barycenters of measures",
J. Math. Imaging Vis. 2015. Liu et al., "Flow straight and fast", ICLR 2023 (straightness).
Tong et al., TMLR 2024. Heusel et al., "GANs trained by a two time-scale update rule converge to
a local Nash equilibrium", NeurIPS 2017 (Frechet distance). Dowson & Landau, J. Multivar. Anal.
1982 (Frechet distance between Gaussians).
"""

from __future__ import annotations

import numpy as np
import ot
import scipy.linalg
import torch
from scipy.spatial.distance import cdist
from torch import Tensor, nn

from fedot.learning.flow.paths import LinearPath, ProbabilityPath, rand

__all__ = ["frechet_distance", "path_length_ratio", "sliced_w2", "straightness", "w2_exact"]


def _as_2d(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    """Float64 numpy copy with samples flattened to rows."""
    if isinstance(x, Tensor):
        arr = x.detach().to("cpu", torch.float64).numpy()
    else:
        arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty batch of samples, got shape {arr.shape}")
    arr = arr.reshape(arr.shape[0], -1)
    if not np.all(np.isfinite(arr)):
        raise FloatingPointError(f"non-finite values in {name}")
    return arr


def w2_exact(x: Tensor | np.ndarray, y: Tensor | np.ndarray) -> float:
    r"""Exact 2-Wasserstein distance between two empirical measures with uniform weights.

    :math:`W_2 = \big(\min_{P \in \Pi(u_n, u_m)} \sum_{ij} P_{ij} \lVert x_i - y_j\rVert^2\big)^{1/2}`,
    solved with ``ot.emd2`` on float64 CPU copies. The cost matrix is computed exactly (pairwise
    differences, not the expansion of the square), so ``w2_exact(x, x) == 0``. Memory is
    ``O(n m)``.

    Parameters
    ----------
    x, y : Tensor or numpy.ndarray
        Samples ``(n, ...)`` and ``(m, ...)`` with the same sample size.

    Returns
    -------
    float
    """
    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y have different sample dimensions {a.shape[1]} and {b.shape[1]}")
    cost = cdist(a, b, metric="sqeuclidean")
    value = float(ot.emd2(ot.unif(len(a)), ot.unif(len(b)), cost, numItermax=10_000_000))
    return float(np.sqrt(max(value, 0.0)))


def _quantiles(proj: np.ndarray, k: int) -> np.ndarray:
    """Empirical quantile function of every column of ``proj`` at levels ``(j + 1/2) / k``."""
    srt = np.sort(proj, axis=0)
    n = len(srt)
    if n == k:
        return srt
    idx = np.minimum(np.floor((np.arange(k) + 0.5) / k * n).astype(np.int64), n - 1)
    return srt[idx]


def sliced_w2(x: Tensor | np.ndarray, y: Tensor | np.ndarray, *, projections: int = 500,
              seed: int = 0) -> float:
    r"""Monte-Carlo sliced 2-Wasserstein distance.

    .. math::

        SW_2(\mu, \nu) = \Big(\frac1L \sum_{l=1}^L W_2^2(\theta_l^\top \# \mu,
        \theta_l^\top \# \nu)\Big)^{1/2},

    with ``L = projections`` unit directions :math:`\theta_l` drawn from
    ``numpy.random.default_rng(seed)``. Each 1-D distance compares sorted projections; for
    unequal sample sizes both empirical quantile functions are evaluated at the levels
    ``(j + 1/2) / max(n, m)``.

    Parameters
    ----------
    x, y : Tensor or numpy.ndarray
        Samples ``(n, ...)`` and ``(m, ...)``.
    projections : int, default 500
        Number of random directions.
    seed : int, default 0
        Seed of the directions (the same seed gives the same value).

    Returns
    -------
    float
    """
    a, b = _as_2d(x, "x"), _as_2d(y, "y")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and y have different sample dimensions {a.shape[1]} and {b.shape[1]}")
    if projections < 1:
        raise ValueError(f"projections must be >= 1, got {projections}")
    theta = np.random.default_rng(seed).standard_normal((a.shape[1], projections))
    theta /= np.linalg.norm(theta, axis=0, keepdims=True)
    k = max(len(a), len(b))
    diff = _quantiles(a @ theta, k) - _quantiles(b @ theta, k)
    return float(np.sqrt(np.mean(diff**2)))


def straightness(
    model: nn.Module,
    x0: Tensor,
    x1: Tensor,
    *,
    path: ProbabilityPath | None = None,
    t_points: int = 10,
    generator: torch.Generator | None = None,
) -> float:
    r"""Straightness error :math:`\mathbb E_t \lVert u_t - v_\theta(t, x_t) \rVert^2` on given pairs.

    With the default :class:`LinearPath`, :math:`u_t = x_1 - x_0` and
    :math:`x_t = (1 - t) x_0 + t x_1`, this is the straightness measure of Liu et al. (2023) on
    the pairs ``(x0[j], x1[j])`` (e.g. generated pairs ``(x0, ODE(x0))``); 0 means the model moves
    every pair along a straight line at constant speed. The squared norm is summed over the
    sample dimensions and averaged over samples and times.

    Parameters
    ----------
    model : torch.nn.Module
        Velocity field ``model(t, x)``.
    x0, x1 : Tensor
        Paired batches of the same shape.
    path : ProbabilityPath, optional
        Defaults to :class:`LinearPath`.
    t_points : int, default 10
        Number of times per pair. Without a generator the deterministic midpoint grid
        ``t_k = (k + 1/2) / t_points`` is used; with one, ``t ~ U[0, 1]`` independently per time
        point and pair.
    generator : torch.Generator, optional
        Randomness for random times (and path noise).

    Returns
    -------
    float
    """
    if t_points < 1:
        raise ValueError(f"t_points must be >= 1, got {t_points}")
    path = LinearPath() if path is None else path
    total = 0.0
    with torch.no_grad():
        for k in range(t_points):
            if generator is None:
                t = torch.full((x0.shape[0],), (k + 0.5) / t_points, dtype=x0.dtype, device=x0.device)
            else:
                t = rand((x0.shape[0],), x0, generator)
            x_t = path.sample(x0, x1, t, generator=generator)
            err = path.target(x0, x1, t, x_t) - model(t, x_t)
            total += float(err.flatten(1).pow(2).sum(1).mean())
    value = total / t_points
    if not np.isfinite(value):
        raise FloatingPointError("non-finite straightness")
    return value


def path_length_ratio(trajectory: list[Tensor] | list[np.ndarray]) -> float:
    r"""Mean ratio of trajectory length to end-to-end distance.

    For every sample :math:`j`,
    :math:`r_j = \sum_k \lVert x^{(k+1)}_j - x^{(k)}_j\rVert / \lVert x^{(K)}_j - x^{(0)}_j \rVert
    \ge 1`, with equality for straight (monotone) paths; returns the mean of :math:`r_j` over the
    samples whose end-to-end distance is positive.

    Parameters
    ----------
    trajectory : list of Tensor or numpy.ndarray
        States ``(B, ...)`` at successive times (e.g. ``SampleResult.trajectory``), at least 2.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        With fewer than 2 states, or if no sample moves.
    """
    if len(trajectory) < 2:
        raise ValueError("a trajectory needs at least 2 states")
    states = np.stack([_as_2d(s, "trajectory state") for s in trajectory])  # (K+1, B, D)
    length = np.linalg.norm(np.diff(states, axis=0), axis=2).sum(axis=0)
    chord = np.linalg.norm(states[-1] - states[0], axis=1)
    moved = chord > 0
    if not np.any(moved):
        raise ValueError("no sample moves along the trajectory; the ratio is undefined")
    return float(np.mean(length[moved] / chord[moved]))


def frechet_distance(feat_a: np.ndarray, feat_b: np.ndarray) -> float:
    r"""Frechet distance between Gaussians fitted to two feature sets (the FID formula).

    .. math::

        d^2 = \lVert \mu_a - \mu_b \rVert^2
              + \operatorname{tr}\big(\Sigma_a + \Sigma_b - 2 (\Sigma_a \Sigma_b)^{1/2}\big),

    with sample means and unbiased covariances; the matrix square root is
    ``scipy.linalg.sqrtm`` (real part kept). If it is not finite, ``1e-6 I`` is added to both
    covariances (as in pytorch-fid). Tiny negative results from round-off are clipped to 0.

    Parameters
    ----------
    feat_a, feat_b : numpy.ndarray
        Features ``(n, d)`` and ``(m, d)``, ``n, m >= 2``.

    Returns
    -------
    float
        The squared Frechet distance :math:`d^2` (as FID reports it).
    """
    a, b = _as_2d(feat_a, "feat_a"), _as_2d(feat_b, "feat_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature dimensions differ: {a.shape[1]} and {b.shape[1]}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least 2 samples per feature set")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    covmean = scipy.linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):
        eye = 1e-6 * np.eye(len(cov_a))
        covmean = scipy.linalg.sqrtm((cov_a + eye) @ (cov_b + eye))
    covmean = np.real(covmean)
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean)
    value = float(np.sum((mu_a - mu_b) ** 2) + trace_term)
    if not np.isfinite(value):
        raise FloatingPointError("non-finite Frechet distance")
    return max(value, 0.0)
