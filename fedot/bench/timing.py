"""Side-by-side timing: alternatives interleaved, medians over repeats."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

import torch

__all__ = ["interleaved_medians", "sync_device"]


def interleaved_medians(arms: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Run every arm once per repeat, in turn (so drifting machine load hits all alike).

    Returns the median wall time (seconds) of each arm.
    """
    times: dict[str, list[float]] = {k: [] for k in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}


def sync_device(device: torch.device) -> None:
    """Wait for queued CUDA work on ``device`` before a clock stops (no-op on other devices)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
