"""Validation and small utilities shared by the SubFLOT modules (private)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from torch import Tensor, nn

from fedot.fusion.spec import PermutationSpec

__all__ = [
    "check_compatible", "check_fraction", "check_nonnegative", "check_rate", "reference",
]


def check_rate(rate: float) -> float:
    r"""Return ``rate`` as a float after checking that it is a pruning rate :math:`\rho \in [0, 1)`.

    Raises
    ------
    ValueError
        If ``rate`` is not a real number in :math:`[0, 1)` (NaN included).
    """
    try:
        value = float(rate)
    except (TypeError, ValueError) as err:
        raise ValueError(f"rate must be a number in [0, 1), got {rate!r}") from err
    if not 0.0 <= value < 1.0:
        raise ValueError(f"rate must be in [0, 1) (the fraction of hidden units pruned), got {rate!r}")
    return value


def check_fraction(value: float, name: str) -> float:
    """Return ``value`` as a float after checking that it lies in ``[0, 1]``."""
    v = float(value)
    if not 0.0 <= v <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def check_nonnegative(value: float, name: str) -> float:
    """Return ``value`` as a float after checking that it is finite and nonnegative."""
    v = float(value)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def reference(module: nn.Module) -> Tensor:
    """First floating parameter or buffer of ``module`` (the device and dtype of the computation)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t
    raise ValueError(f"{type(module).__name__} has no floating-point parameters")




def check_compatible(
    reference_state: Mapping[str, Tensor],
    other_state: Mapping[str, Tensor],
    spec: PermutationSpec,
    what: str,
) -> dict[str, int]:
    r"""Check that ``other_state`` is the same architecture as ``reference_state`` up to group widths.

    Both states must have the same keys and ranks; every axis that carries no permutation group
    (network inputs, class outputs, kernel positions) must have the same length, and every group
    axis the same block size (length / group width, e.g. the :math:`H W` features per channel after
    a ``Flatten``).

    Parameters
    ----------
    reference_state, other_state : mapping of str to Tensor
        The two ``state_dict`` s (reference: the global model).
    spec : PermutationSpec
        Spec of the architecture.
    what : str
        Name of ``other_state`` in error messages (e.g. ``"history"``).

    Returns
    -------
    dict of str to int
        Group widths of ``other_state``.

    Raises
    ------
    ValueError
        On any mismatch.
    """
    missing = sorted(set(reference_state) - set(other_state))
    extra = sorted(set(other_state) - set(reference_state))
    if missing or extra:
        raise ValueError(f"{what} is not the global model's architecture: missing keys {missing}, "
                         f"unexpected keys {extra}")
    n_sizes = spec.sizes(reference_state)
    try:
        m_sizes = spec.sizes(other_state)
    except ValueError as err:
        raise ValueError(f"{what} does not fit the global model's permutation spec: {err}") from err
    for key, ref in reference_state.items():
        other = other_state[key]
        if other.dim() != ref.dim():
            raise ValueError(f"{what}[{key!r}] has {other.dim()} axes, the global model {ref.dim()}")
        axes = spec.axes.get(key, (None,) * ref.dim())
        for i, group in enumerate(axes):
            if group is None:
                ok = other.shape[i] == ref.shape[i]
            else:
                ok = other.shape[i] * n_sizes[group] == ref.shape[i] * m_sizes[group]
            if not ok:
                raise ValueError(f"{what}[{key!r}] has shape {tuple(other.shape)}, incompatible with "
                                 f"the global model's {tuple(ref.shape)} (axis {i}, group {group!r})")
    return m_sizes
