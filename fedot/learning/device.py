"""Device selection and CPU thread settings."""

from __future__ import annotations

import re

import torch

__all__ = ["resolve_device", "set_torch_threads"]

_CUDA_RE = re.compile(r"^cuda(?::(\d+))?$")


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """Turn a device specification into a :class:`torch.device`.

    Parameters
    ----------
    spec : str or torch.device, default "auto"
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or
        ``"cuda:N"``. Case and surrounding whitespace are ignored.

    Returns
    -------
    torch.device
        The resolved device.

    Raises
    ------
    ValueError
        If the specification is not understood, or CUDA is requested but not
        available (or the index ``N`` does not exist).
    """
    text = str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text == "cpu":
        return torch.device("cpu")
    match = _CUDA_RE.match(text)
    if match is None:
        raise ValueError(f"unknown device {spec!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if not torch.cuda.is_available():
        raise ValueError(
            f"device {spec!r} requested but CUDA is not available "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
            "use device='cpu' or 'auto'"
        )
    if match.group(1) is not None:
        index = int(match.group(1))
        count = torch.cuda.device_count()
        if index >= count:
            raise ValueError(
                f"device {spec!r} requested but only {count} CUDA device(s) are visible"
            )
        return torch.device("cuda", index)
    return torch.device("cuda")


def set_torch_threads(n: int | None) -> None:
    """Set the number of intra-op CPU threads used by torch.

    Parameters
    ----------
    n : int or None
        Number of threads; ``None`` leaves the current setting unchanged.

    Raises
    ------
    ValueError
        If ``n`` is smaller than 1.
    """
    if n is None:
        return
    if n < 1:
        raise ValueError(f"number of threads must be >= 1, got {n}")
    torch.set_num_threads(int(n))
