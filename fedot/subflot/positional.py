r"""Position-based aggregation of width-pruned submodels (the HeteroFL / FedRolex server rule).

Client :math:`i` holds the global coordinates :math:`I_i` (the product of its index sets
:math:`I_{i,\ell}` over the axes of every tensor, see :mod:`fedot.subflot.submodels`). Every global
coordinate :math:`c` is the weighted mean over the clients that hold it,

.. math::

    \theta_c \leftarrow \frac{\sum_{i : c \in I_i} w_i\, \theta_{i, c}}{\sum_{i : c \in I_i} w_i},

and keeps its previous value when no client (with positive weight) holds it. Axes without a group
(inputs, class outputs, kernel positions) are held whole by every client. This is the rule SubFLOT
replaces by OT aggregation (:func:`fedot.subflot.ota_aggregate`); the paper's ablation "without OTA
(position-based averaging)" is this function applied to static slices.

References
----------
.. [1] E. Diao, J. Ding, V. Tarokh, "HeteroFL: Computation and Communication Efficient Federated
   Learning for Heterogeneous Clients", ICLR 2021.
.. [2] S. Alam, L. Liu, M. Yan, M. Zhang, "FedRolex: Model-Heterogeneous Federated Learning with
   Rolling Sub-Model Extraction", NeurIPS 2022.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from fedot.fusion.spec import PermutationSpec
from fedot.subflot.submodels import _check_indices, slice_state

__all__ = ["Contribution", "history_view", "positional_aggregate"]

Contribution = tuple[Mapping[str, Tensor], Mapping[str, Tensor], float]
"""``(sub_state, indices, weight)``: a client's submodel state, its index sets, its weight."""


def _axis_index(
    key: str, shape: torch.Size, spec: PermutationSpec, sizes: Mapping[str, int],
    indices: Mapping[str, Tensor], device: torch.device,
) -> tuple[Tensor, ...]:
    """Broadcastable advanced index (one tensor per axis) of a submodel tensor inside ``shape``."""
    axes = spec.axes.get(key, (None,) * len(shape))
    out = []
    for i, (length, group) in enumerate(zip(shape, axes, strict=True)):
        if group is None or group not in indices:
            idx = torch.arange(length)
        else:
            block = length // sizes[group]
            idx = (indices[group][:, None] * block + torch.arange(block)).reshape(-1)
        view = [1] * len(shape)
        view[i] = -1
        out.append(idx.to(device).view(view))
    return tuple(out)


def positional_aggregate(
    global_state: Mapping[str, Tensor],
    contributions: Sequence[Contribution],
    *,
    spec: PermutationSpec,
) -> dict[str, Tensor]:
    """Average every global coordinate over the clients whose submodel holds it (see module docs).

    Parameters
    ----------
    global_state : mapping of str to Tensor
        The current global ``state_dict`` (not modified); fixes device and dtype of the result.
    contributions : sequence of (state, indices, weight)
        Per client: its submodel ``state_dict`` (same keys as the global), its index sets
        (group -> global unit of every submodel unit, e.g. :attr:`SliceResult.indices`; a group
        left out means the client holds all of its units) and a nonnegative weight (e.g. its number
        of training examples). The weights need not sum to one.
    spec : PermutationSpec
        Spec of the global architecture.

    Returns
    -------
    dict of str to Tensor
        The new global state. Non-floating entries (``num_batches_tracked``) are taken from
        ``global_state``.

    Raises
    ------
    ValueError
        On a negative or non-finite weight, invalid index sets, missing keys, or a submodel tensor
        whose shape does not match its index sets.

    Examples
    --------
    >>> import torch
    >>> from fedot.fusion.spec import PermutationSpec, linear_axes
    >>> spec = PermutationSpec(axes=linear_axes("fc", "h", None), order=("h",))
    >>> g = {"fc.weight": torch.zeros(3, 1), "fc.bias": torch.zeros(3)}
    >>> a = ({"fc.weight": torch.ones(2, 1), "fc.bias": torch.ones(2)},
    ...      {"h": torch.tensor([0, 1])}, 1.0)
    >>> b = ({"fc.weight": torch.full((1, 1), 3.0), "fc.bias": torch.full((1,), 3.0)},
    ...      {"h": torch.tensor([1])}, 1.0)
    >>> positional_aggregate(g, [a, b], spec=spec)["fc.bias"].tolist()
    [1.0, 2.0, 0.0]
    """
    sizes = spec.sizes(global_state)
    checked = []
    for k, (state, indices, weight) in enumerate(contributions):
        w = float(weight)
        if not (math.isfinite(w) and w >= 0):
            raise ValueError(f"contribution {k}: weight must be finite and >= 0, got {weight!r}")
        missing = sorted(set(global_state) - set(state))
        if missing:
            raise ValueError(f"contribution {k}: state lacks keys {missing}")
        checked.append((state, _check_indices(indices, sizes), w))
    out: dict[str, Tensor] = {}
    for key, g in global_state.items():
        if not g.is_floating_point():
            out[key] = g
            continue
        acc = torch.zeros_like(g)
        mass = torch.zeros_like(g)
        for k, (state, indices, w) in enumerate(checked):
            if w == 0:
                continue
            index = _axis_index(key, g.shape, spec, sizes, indices, g.device)
            expected = tuple(int(i.numel()) for i in index)
            t = state[key].detach().to(device=g.device, dtype=g.dtype)
            if tuple(t.shape) != expected:
                raise ValueError(f"contribution {k}: {key!r} has shape {tuple(t.shape)}, its index "
                                 f"sets give {expected}")
            if g.dim() == 0:
                acc += t * w
                mass += w
                continue
            acc.index_put_(index, t * w, accumulate=True)
            mass.index_put_(index, torch.full_like(t, w), accumulate=True)
        out[key] = torch.where(mass > 0, acc / mass.clamp_min(torch.finfo(g.dtype).tiny), g)
    return out


def history_view(
    global_state: Mapping[str, Tensor],
    history_state: Mapping[str, Tensor],
    history_indices: Mapping[str, Tensor],
    indices: Mapping[str, Tensor],
    *,
    spec: PermutationSpec,
) -> dict[str, Tensor]:
    r"""Return a client's last upload seen at the global units ``indices`` (to blend with).

    The history (held at the global units ``history_indices``) is written into the global state —
    every coordinate it held takes its value, the others keep the global value (
    :func:`positional_aggregate` with one contribution) — and the result is sliced at ``indices``.
    When ``indices == history_indices`` (HeteroFL: the same leading units every round) this is the
    history itself; for FedRolex's rolling window the units the client did not hold last round
    come from the global model. Blending the sent submodel with this view,
    :math:`\alpha W_{\text{sent}} + (1 - \alpha) W_{\text{view}}`, is the personalisation step
    SubFLOT's OTP ends with, applied at fixed positions.

    Parameters
    ----------
    global_state : mapping of str to Tensor
        The current global ``state_dict`` (not modified).
    history_state : mapping of str to Tensor
        The client's last uploaded submodel.
    history_indices : mapping of str to Tensor
        Global unit of every history unit, per group (as sent with it).
    indices : mapping of str to Tensor
        Global units of the submodel being sent now.
    spec : PermutationSpec
        Spec of the global architecture.

    Returns
    -------
    dict of str to Tensor
        A submodel state at ``indices``.

    Examples
    --------
    >>> import torch
    >>> from fedot.fusion.spec import PermutationSpec, linear_axes
    >>> spec = PermutationSpec(axes=linear_axes("fc", "h", None), order=("h",))
    >>> g = {"fc.weight": torch.zeros(3, 1), "fc.bias": torch.zeros(3)}
    >>> h = {"fc.weight": torch.ones(2, 1), "fc.bias": torch.ones(2)}
    >>> view = history_view(g, h, {"h": torch.tensor([0, 1])}, {"h": torch.tensor([1, 2])}, spec=spec)
    >>> view["fc.bias"].tolist()
    [1.0, 0.0]
    """
    if history_indices.keys() == indices.keys() and all(
            torch.equal(history_indices[g].cpu(), indices[g].cpu()) for g in indices):
        return dict(history_state)  # the same units as last round (HeteroFL): the history itself
    lifted = positional_aggregate(global_state, [(history_state, history_indices, 1.0)], spec=spec)
    return slice_state(lifted, spec, indices)
