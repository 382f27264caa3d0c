r"""Conditional probability paths for flow matching.

A path maps a coupled pair :math:`(x_0, x_1)` and a time :math:`t \in [0, 1]` to a point
:math:`x_t` and a regression target :math:`u_t` for the velocity field. Paths are small objects
that the loss composes with a *coupling* (how :math:`x_0` and :math:`x_1` are paired); see
:mod:`fedot.learning.flow.couplings`.

This module also holds the explicit-generator random helpers used by the whole package: every
random draw in :mod:`fedot.learning.flow` goes through a caller-supplied
:class:`torch.Generator`, never the global RNG.

References
----------
Lipman et al., "Flow matching for generative modeling", ICLR 2023.
Liu et al., "Flow straight and fast: learning to generate and transfer data with rectified flow",
ICLR 2023.
Tong et al., "Improving and generalizing flow-based generative models with minibatch optimal
transport", TMLR 2024.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

__all__ = ["GaussianPath", "LinearPath", "ProbabilityPath", "expand_time"]


def expand_time(t: Tensor | float, x: Tensor) -> Tensor:
    """Broadcast a time to the shape of a batch ``x``.

    Parameters
    ----------
    t : Tensor or float
        A scalar, a 0-d tensor, or a per-sample tensor of shape ``(B,)`` or ``(B, 1)``.
    x : Tensor
        Batch of shape ``(B, ...)``.

    Returns
    -------
    Tensor
        ``t`` with dtype and device of ``x`` and shape ``(B, 1, ..., 1)`` (``x.ndim`` dims), or
        0-d for a scalar ``t``.

    Raises
    ------
    ValueError
        If a per-sample ``t`` does not have ``B`` entries.
    """
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
    if t.ndim == 0:
        return t
    if t.numel() != x.shape[0]:
        raise ValueError(f"t must be a scalar or have {x.shape[0]} entries, got shape {tuple(t.shape)}")
    return t.reshape(x.shape[0], *([1] * (x.ndim - 1)))


def _generator_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def randn(shape: tuple[int, ...], like: Tensor, generator: torch.Generator) -> Tensor:
    """Draw standard normals with the dtype and device of ``like`` from ``generator``.

    The numbers are drawn on the generator's device and then moved, so a CPU generator gives the
    same values whatever the device of ``like``.
    """
    out = torch.randn(shape, generator=generator, dtype=like.dtype, device=_generator_device(generator))
    return out.to(like.device)


def rand(shape: tuple[int, ...], like: Tensor, generator: torch.Generator) -> Tensor:
    """Draw uniforms in ``[0, 1)`` with the dtype and device of ``like`` from ``generator``."""
    out = torch.rand(shape, generator=generator, dtype=like.dtype, device=_generator_device(generator))
    return out.to(like.device)


def randint(high: int, shape: tuple[int, ...], device: torch.device,
            generator: torch.Generator) -> Tensor:
    """Draw integers uniform in ``[0, high)`` from ``generator`` and move them to ``device``."""
    out = torch.randint(high, shape, generator=generator, device=_generator_device(generator))
    return out.to(device)


@runtime_checkable
class ProbabilityPath(Protocol):
    """Interface of a conditional probability path (see :class:`LinearPath`)."""

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """Return :math:`x_t` for paired batches ``x0``, ``x1`` and times ``t``."""
        ...

    def target(self, x0: Tensor, x1: Tensor, t: Tensor, x_t: Tensor) -> Tensor:
        r"""Return the conditional velocity :math:`u_t(x_t \mid x_0, x_1)`."""
        ...


class LinearPath:
    r"""Straight-line interpolation (rectified flow, CFM with :math:`\sigma = 0`).

    .. math::

        x_t = (1 - t)\, x_0 + t\, x_1, \qquad u_t = x_1 - x_0 .

    References
    ----------
    Liu et al., ICLR 2023 (rectified flow); Lipman et al., ICLR 2023; Tong et al., TMLR 2024.
    """

    sigma: float = 0.0

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """Interpolate ``(1 - t) x0 + t x1``.

        Parameters
        ----------
        x0, x1 : Tensor
            Paired batches of the same shape ``(B, ...)``.
        t : Tensor
            Times, shape ``(B,)``, ``(B, 1)`` or scalar; broadcast over the trailing dims.
        generator : torch.Generator, optional
            Unused (the path is deterministic); accepted for a uniform interface.

        Returns
        -------
        Tensor
            :math:`x_t`, same shape, dtype and device as ``x0``.
        """
        if x0.shape != x1.shape:
            raise ValueError(f"x0 and x1 differ in shape: {tuple(x0.shape)} and {tuple(x1.shape)}")
        tt = expand_time(t, x0)
        return (1 - tt) * x0 + tt * x1

    def target(self, x0: Tensor, x1: Tensor, t: Tensor, x_t: Tensor) -> Tensor:
        """Return the constant velocity ``x1 - x0`` (``t`` and ``x_t`` are unused)."""
        return x1 - x0

    def __repr__(self) -> str:
        return "LinearPath()"


class GaussianPath(LinearPath):
    r"""Independent-coupling CFM path with a Gaussian tube (I-CFM).

    .. math::

        x_t = (1 - t)\, x_0 + t\, x_1 + \sigma \varepsilon,\quad \varepsilon \sim N(0, I),
        \qquad u_t = x_1 - x_0 .

    Parameters
    ----------
    sigma : float
        Noise level, ``>= 0``. With ``sigma = 0`` it is :class:`LinearPath`.

    References
    ----------
    Tong et al., "Improving and generalizing flow-based generative models with minibatch optimal
    transport", TMLR 2024, Sec. 3.2 (I-CFM).
    """

    def __init__(self, sigma: float) -> None:
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        self.sigma = float(sigma)

    def sample(self, x0: Tensor, x1: Tensor, t: Tensor,
               generator: torch.Generator | None = None) -> Tensor:
        """Interpolate and add ``sigma * eps``, with ``eps`` drawn from ``generator``.

        Raises
        ------
        ValueError
            If ``sigma > 0`` and no generator is given (no hidden global randomness).
        """
        x_t = super().sample(x0, x1, t)
        if self.sigma == 0.0:
            return x_t
        if generator is None:
            raise ValueError("GaussianPath with sigma > 0 needs an explicit torch.Generator")
        return x_t + self.sigma * randn(tuple(x0.shape), x0, generator)

    def __repr__(self) -> str:
        return f"GaussianPath(sigma={self.sigma})"
