"""Argument checks shared by the partitioning helpers."""

from __future__ import annotations

import numpy as np


def is_int(value: object) -> bool:
    """Return whether ``value`` is a Python or numpy integer (bools excluded)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_int(name: str, value: object, low: int, high: int | None = None) -> None:
    """Raise ValueError unless ``low <= value (<= high)`` and value is an integer."""
    if not is_int(value) or value < low or (high is not None and value > high):  # type: ignore[operator]
        allowed = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise ValueError(f"{name} must be {allowed}, got {name}={value!r}")


def check_local_test_fraction(value: float) -> None:
    """Raise ValueError unless ``0 <= value < 1``."""
    if not 0.0 <= value < 1.0:
        raise ValueError(f"local_test_fraction must be in [0, 1), got local_test_fraction={value!r}")
