"""IRL reward-fusion costs: barycenter solvers at grid sizes, and fusion vs averaging per round.

* Solvers: fedot's convolutional IBP (:func:`fedot.ot.convolutional_barycenter`), fedot's dense
  scaling IBP and POT's log-domain ``barycenter(method="sinkhorn_log")`` on K smooth bumps (random
  centres) on H × W grids, with POT's ``convolutional_barycenter2d`` (scaling) for reference (it
  ignores non-uniform weights; uniform weights are used here so that it computes the same thing).
  Time (median of repeats) and peak traced memory (``tracemalloc``: numpy allocations).
* Fusion vs averaging: :func:`fedot.learning.reward_fusion.fuse_rewards` (z-score, softmax, the
  barycenter, back-map) against :func:`~fedot.learning.reward_fusion.average_rewards` on the same
  client rewards — the per-round server cost of ``irl-barycenter`` relative to ``irl-average``.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import ot

from fedot.learning.reward_fusion import average_rewards, fuse_rewards
from fedot.ot import barycenter, convolutional_barycenter, grid_cost

__all__ = ["bench_barycenter", "bench_fusion"]


def _bumps(k: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = np.arange(h)[:, None], np.arange(w)[None]
    centres = rng.uniform(0.25, 0.75, size=(k, 2)) * [h, w]
    width = max(h, w) / 12
    a = np.stack([np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * width**2)) + 1e-6
                  for r, c in centres])
    return a / a.sum(axis=(1, 2), keepdims=True)


def _measure(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20


def bench_barycenter(
    grids: list[int], ks: list[int], *, reg: float = 0.004, repeats: int = 3,
    dense_max_states: int = 4096, log_max_states: int = 1024,
) -> list[dict[str, Any]]:
    """Time and peak memory of each solver on K bumps on n × n grids (tol 1e-6)."""
    rows = []
    for n in grids:
        for k in ks:
            a = _bumps(k, n, n)
            row: dict[str, Any] = {"grid": n, "K": k, "states": n * n, "reg": reg}
            res = convolutional_barycenter(a, reg, tol=1e-6)
            row["iterations"] = res.iterations
            row["conv_s"], row["conv_mib"] = _measure(
                lambda a=a: convolutional_barycenter(a, reg, tol=1e-6), repeats)
            row["pot_conv_s"], row["pot_conv_mib"] = _measure(
                lambda a=a: ot.bregman.convolutional_barycenter2d(a, reg, stopThr=1e-6), repeats)
            if n * n <= dense_max_states:
                cost = grid_cost((n, n))
                cols = a.reshape(k, -1).T
                row["dense_s"], row["dense_mib"] = _measure(
                    lambda c=cols, m=cost: barycenter(c, m, reg, method="ibp", tol=1e-6), 1)
            if n * n <= log_max_states:
                cost = grid_cost((n, n))
                cols = a.reshape(k, -1).T
                row["log_s"], row["log_mib"] = _measure(
                    lambda c=cols, m=cost: barycenter(c, m, reg, method="sinkhorn_log", tol=1e-6), 1)
            rows.append(row)
    return rows


def bench_fusion(grid: int = 10, clients: int = 5, repeats: int = 20) -> dict[str, Any]:
    """Per-round server cost: barycenter fusion vs parameter averaging of the same rewards."""
    rng = np.random.default_rng(0)
    rewards = _bumps(clients, grid, grid).reshape(clients, -1) + 0.05 * rng.random(
        (clients, grid * grid))
    weights = np.arange(1, clients + 1, dtype=np.float64)
    fuse_s, _ = _measure(lambda: fuse_rewards(rewards, weights, grid_shape=(grid, grid)), repeats)
    coords = np.stack(np.divmod(np.arange(grid * grid), grid), axis=1)
    log_s, _ = _measure(lambda: fuse_rewards(rewards, weights, coords=coords,
                                             method="sinkhorn_log"), max(1, repeats // 5))
    avg_s, _ = _measure(lambda: average_rewards(rewards, weights), repeats)
    return {"grid": grid, "clients": clients, "fuse_conv_s": fuse_s, "fuse_log_s": log_s,
            "average_s": avg_s, "ratio_conv": fuse_s / avg_s, "ratio_log": log_s / avg_s}
