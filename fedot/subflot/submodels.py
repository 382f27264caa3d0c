r"""Width-pruned submodels: widths per pruning rate, index slicing (HeteroFL, FedRolex), architectures.

A client with pruning rate :math:`\rho \in [0, 1)` trains a submodel in which every hidden
permutation group :math:`\ell` (see :class:`~fedot.fusion.spec.PermutationSpec`: hidden units of an
MLP, channels of a conv layer together with its batch norm) keeps

.. math:: m_\ell = \max\bigl(1, \operatorname{round}((1 - \rho)\, n_\ell)\bigr)

of the global model's :math:`n_\ell` units (:func:`submodel_width`). The network input and the class
outputs are never pruned, because they carry no group.

Position-based extraction keeps a fixed index set :math:`I_\ell \subset \{0, \dots, n_\ell - 1\}`,
:math:`|I_\ell| = m_\ell`, on every axis of group :math:`\ell` (producer rows, consumer columns,
bias, :math:`\gamma`, :math:`\beta`, running mean and variance; whole blocks after a ``Flatten``):

* HeteroFL (Diao et al. 2021) takes the leading units, :math:`I_\ell = \{0, \dots, m_\ell - 1\}`
  (:func:`static_slice`; also SubFLOT's cold start);
* FedRolex (Alam et al. 2022) rolls a window, :math:`I_\ell = (o + \{0, \dots, m_\ell - 1\}) \bmod
  n_\ell`, with the offset :math:`o` advanced every round (:func:`rolling_slice`).

The matching server rule is :func:`fedot.subflot.positional_aggregate`.

References
----------
.. [1] E. Diao, J. Ding, V. Tarokh, "HeteroFL: Computation and Communication Efficient Federated
   Learning for Heterogeneous Clients", ICLR 2021.
.. [2] S. Alam, L. Liu, M. Yan, M. Zhang, "FedRolex: Model-Heterogeneous Federated Learning with
   Rolling Sub-Model Extraction", NeurIPS 2022.
.. [3] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and Personalized
   Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedot.fusion.spec import PermutationSpec, permute, spec_for, take_axis
from fedot.learning.models import build_model
from fedot.subflot._common import check_rate

__all__ = [
    "SliceResult",
    "build_submodel",
    "permute_units",
    "rolling_indices",
    "rolling_slice",
    "slice_model",
    "slice_state",
    "static_indices",
    "static_slice",
    "submodel_width",
    "submodel_widths",
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclass(frozen=True)
class SliceResult:
    """A position-based submodel and the global units it holds.

    Attributes
    ----------
    model : torch.nn.Module
        The submodel (a narrower copy of the global module, same device, dtype and mode).
    indices : mapping of str to Tensor
        Group -> ``int64`` CPU tensor of shape ``(m,)``: unit ``k`` of the submodel is global unit
        ``indices[group][k]``. Pass it to :func:`fedot.subflot.positional_aggregate`.
    """

    model: nn.Module
    indices: Mapping[str, Tensor]


def submodel_width(n: int, rate: float) -> int:
    r"""Return the number of units a group of ``n`` units keeps at pruning rate ``rate``.

    .. math:: m = \max\bigl(1, \operatorname{round}((1 - \rho)\, n)\bigr),

    with Python's :func:`round` (halves go to the even neighbour, e.g. :math:`n = 10`,
    :math:`\rho = 3/4` gives 2). For the rates :math:`\{0, 1/4, 1/2, 3/4\}` of the SubFLOT paper and
    widths divisible by 4 this is exactly :math:`(1 - \rho) n`. At least one unit is always kept.

    Parameters
    ----------
    n : int
        Width of the group in the global model (>= 1).
    rate : float
        Pruning rate :math:`\rho \in [0, 1)`.

    Returns
    -------
    int
        The submodel width :math:`m \in [1, n]`.

    Raises
    ------
    ValueError
        If ``n < 1`` or ``rate`` is not in :math:`[0, 1)`.

    Examples
    --------
    >>> [submodel_width(64, r) for r in (0, 0.25, 0.5, 0.75)]
    [64, 48, 32, 16]
    """
    rho = check_rate(rate)
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return max(1, round((1.0 - rho) * int(n)))


def submodel_widths(
    model: nn.Module, rate: float, *, spec: PermutationSpec | None = None
) -> dict[str, int]:
    """Width of every hidden group of ``model``'s submodel at ``rate`` (:func:`submodel_width`).

    Parameters
    ----------
    model : torch.nn.Module
        The global model.
    rate : float
        Pruning rate in :math:`[0, 1)`.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(model)``.

    Returns
    -------
    dict of str to int
        Group -> submodel width.
    """
    spec = spec_for(model, spec)
    return {g: submodel_width(n, rate) for g, n in spec.sizes(model.state_dict()).items()}


def static_indices(sizes: Mapping[str, int], rate: float) -> dict[str, Tensor]:
    """HeteroFL index sets: the leading ``submodel_width(n, rate)`` units of every group.

    Parameters
    ----------
    sizes : mapping of str to int
        Group -> global width (e.g. ``spec.sizes(state)``).
    rate : float
        Pruning rate in :math:`[0, 1)`.

    Returns
    -------
    dict of str to Tensor
        Group -> ``arange(m)`` (``int64``, CPU).
    """
    return {g: torch.arange(submodel_width(n, rate)) for g, n in sizes.items()}


def rolling_indices(
    sizes: Mapping[str, int], rate: float, offset: int | Mapping[str, int]
) -> dict[str, Tensor]:
    r"""FedRolex index sets: the window :math:`(o + \{0, \dots, m-1\}) \bmod n` of every group.

    Parameters
    ----------
    sizes : mapping of str to int
        Group -> global width.
    rate : float
        Pruning rate in :math:`[0, 1)`.
    offset : int or mapping of str to int
        Window start :math:`o` (any integer, taken modulo each group's width); one for all groups
        (FedRolex advances it by one per round) or one per group.

    Returns
    -------
    dict of str to Tensor
        Group -> window in order (``int64``, CPU); it wraps around the end of the group.

    Examples
    --------
    >>> rolling_indices({"h": 8}, 0.5, 6)["h"].tolist()
    [6, 7, 0, 1]
    """
    out = {}
    for g, n in sizes.items():
        o = offset[g] if isinstance(offset, Mapping) else offset
        if int(o) != o:
            raise ValueError(f"offset must be an integer, got {o!r} for group {g!r}")
        out[g] = (int(o) + torch.arange(submodel_width(n, rate))) % n
    return out


def _check_indices(indices: Mapping[str, Tensor], sizes: Mapping[str, int]) -> dict[str, Tensor]:
    out = {}
    for g, idx in indices.items():
        if g not in sizes:
            raise ValueError(f"unknown group {g!r}; groups are {sorted(sizes)}")
        i = torch.as_tensor(idx, dtype=torch.long).reshape(-1).cpu()
        bad = i.numel() == 0 or int(i.min()) < 0 or int(i.max()) >= sizes[g]
        if bad or i.unique().numel() != i.numel():
            raise ValueError(f"indices[{g!r}] must be distinct units in range({sizes[g]}), "
                             f"got {i.tolist()}")
        out[g] = i
    return out


def slice_state(
    state: Mapping[str, Tensor], spec: PermutationSpec, indices: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Keep the units ``indices[g]`` of every group ``g`` on every axis the spec assigns to it.

    Parameters
    ----------
    state : mapping of str to Tensor
        Global ``state_dict`` (not modified).
    spec : PermutationSpec
        Its spec.
    indices : mapping of str to Tensor
        Group -> distinct global unit indices, in submodel order; groups left out are kept whole.

    Returns
    -------
    dict of str to Tensor
        The submodel's state (new tensors for the sliced entries; the others are the input tensors).

    Raises
    ------
    ValueError
        If a group is unknown or an index set is empty, repeats a unit or is out of range.
    """
    sizes = spec.sizes(state)
    checked = _check_indices(indices, sizes)
    out = dict(state)
    for g, idx in checked.items():
        for key, axis in spec.occurrences(g):
            t = out[key]
            out[key] = take_axis(t, axis, idx.to(t.device), sizes[g])
    return out


def _resize_attributes(name: str, module: nn.Module) -> None:
    """Update the size attributes of a module whose tensors were replaced by narrower ones."""
    if isinstance(module, nn.Linear):
        module.out_features, module.in_features = module.weight.shape
    elif isinstance(module, _CONV):
        module.out_channels = module.weight.shape[0]
        module.in_channels = module.weight.shape[1] * module.groups
    elif isinstance(module, _BATCHNORM):
        ref = module.weight if module.weight is not None else module.running_mean
        assert ref is not None
        module.num_features = ref.shape[0]
    elif isinstance(module, nn.LayerNorm) and len(module.normalized_shape) == 1:
        assert module.weight is not None
        module.normalized_shape = (module.weight.shape[0],)
    else:
        raise ValueError(f"cannot change the width of module {name!r} ({type(module).__name__}); "
                         "supported: Linear, Conv1d/2d/3d, BatchNorm1d/2d/3d, LayerNorm over units")


def slice_model(
    model: nn.Module, indices: Mapping[str, Tensor], *, spec: PermutationSpec | None = None
) -> nn.Module:
    """Build the submodel holding the global units ``indices`` (see :func:`slice_state`).

    The result is a deep copy of ``model`` (same module types, device, dtype, ``training`` flags and
    ``requires_grad`` flags) in which every resized ``Linear``/``Conv``/``BatchNorm``/``LayerNorm``
    gets narrower tensors and consistent size attributes (``in_features``, ``out_channels``,
    ``num_features``, ...).

    Parameters
    ----------
    model : torch.nn.Module
        The global model (not modified).
    indices : mapping of str to Tensor
        Group -> global unit indices (see :func:`slice_state`).
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(model)``.

    Returns
    -------
    torch.nn.Module
        The submodel.

    Raises
    ------
    ValueError
        On invalid indices or a resized module of an unsupported type.
    """
    spec = spec_for(model, spec)
    state = model.state_dict()
    new_state = slice_state(state, spec, indices)
    out = copy.deepcopy(model)
    for name, module in out.named_modules():
        prefix = f"{name}." if name else ""
        changed = False
        for store in (module._parameters, module._buffers):
            for attr, t in store.items():
                key = prefix + attr
                if t is None or key not in new_state or new_state[key].shape == t.shape:
                    continue
                new = torch.empty_like(new_state[key], dtype=t.dtype, device=t.device)
                store[attr] = nn.Parameter(new, t.requires_grad) if isinstance(t, nn.Parameter) else new
                changed = True
        if changed:
            _resize_attributes(name, module)
    out.load_state_dict(new_state)
    return out


def static_slice(
    global_model: nn.Module, rate: float, *, spec: PermutationSpec | None = None
) -> SliceResult:
    r"""HeteroFL submodel: the leading :func:`submodel_width` units of every hidden group.

    All tensors sharing a group are sliced consistently (producer rows and biases, consumer columns,
    batch-norm :math:`\gamma`, :math:`\beta`, running mean and variance, ``Flatten`` blocks). At
    ``rate = 0`` the result is a copy of the global model.

    Parameters
    ----------
    global_model : torch.nn.Module
        The global model (not modified).
    rate : float
        Pruning rate in :math:`[0, 1)`.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    SliceResult
        The submodel and its index sets.

    Raises
    ------
    ValueError
        If ``rate`` is not in :math:`[0, 1)`.

    Examples
    --------
    >>> g = build_model("mlp", (5,), 3, hidden=8, seed=0)
    >>> static_slice(g, 0.5).model[1].weight.shape
    torch.Size([4, 5])
    """
    spec = spec_for(global_model, spec)
    indices = static_indices(spec.sizes(global_model.state_dict()), rate)
    return SliceResult(model=slice_model(global_model, indices, spec=spec), indices=indices)


def rolling_slice(
    global_model: nn.Module,
    rate: float,
    offset: int | Mapping[str, int],
    *,
    spec: PermutationSpec | None = None,
) -> SliceResult:
    r"""FedRolex submodel: the window :math:`(o + \{0, \dots, m-1\}) \bmod n` of every hidden group.

    Parameters
    ----------
    global_model : torch.nn.Module
        The global model (not modified).
    rate : float
        Pruning rate in :math:`[0, 1)`.
    offset : int or mapping of str to int
        Window start (see :func:`rolling_indices`); FedRolex uses the round number.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    SliceResult
        The submodel and its (possibly wrapping) index sets.
    """
    spec = spec_for(global_model, spec)
    indices = rolling_indices(spec.sizes(global_model.state_dict()), rate, offset)
    return SliceResult(model=slice_model(global_model, indices, spec=spec), indices=indices)


def build_submodel(
    name: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    rate: float,
    hidden: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Build the client architecture for ``rate`` from the global model's :func:`build_model` arguments.

    The global model ``build_model(name, input_shape, num_outputs, hidden=hidden, seed=seed)`` is
    sliced with :func:`static_slice`: every hidden group (the ``hidden`` units of an ``mlp``/``cnn``
    and the conv channels of a ``cnn``) keeps :func:`submodel_width` units; input and class outputs
    are never pruned. The initial weights are those of the HeteroFL slice of the seeded global
    model (clients normally overwrite them with the server's payload).

    Parameters
    ----------
    name, input_shape, num_outputs, hidden, seed
        As in :func:`fedot.learning.build_model`.
    rate : float
        Pruning rate in :math:`[0, 1)`.

    Returns
    -------
    torch.nn.Module
        The submodel, on the CPU in training mode.

    Examples
    --------
    >>> sub = build_submodel("mlp", (5,), 3, rate=0.25, hidden=16)
    >>> [tuple(p.shape) for p in sub.parameters()][::2]
    [(12, 5), (12, 12), (3, 12)]
    """
    check_rate(rate)
    global_model = build_model(name, input_shape, num_outputs, hidden=hidden, seed=seed)
    return static_slice(global_model, rate).model


def permute_units(
    model: nn.Module, seed: int, *, spec: PermutationSpec | None = None
) -> tuple[nn.Module, dict[str, Tensor]]:
    r"""Reorder the units of every hidden group of ``model`` by seeded random permutations.

    The result computes the same function as ``model`` (:func:`fedot.fusion.spec.permute`): only the
    order of the hidden units changes. Used for the ``submodel.permute-clients`` stress setting, in
    which every client keeps its model in its own unit order, unknown to the server.

    Parameters
    ----------
    model : torch.nn.Module
        The (sub)model (not modified).
    seed : int
        Seed of the permutations (``torch.Generator``); the same seed gives the same orders.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(model)``.

    Returns
    -------
    (torch.nn.Module, dict of str to Tensor)
        The permuted copy and, per group, the permutation (unit ``j`` of the copy is unit
        ``perm[j]`` of ``model``).

    Examples
    --------
    >>> import torch
    >>> g = build_model("mlp", (5,), 3, hidden=8, seed=0)
    >>> p, perms = permute_units(g, seed=1)
    >>> x = torch.randn(2, 5)
    >>> bool(torch.allclose(p(x), g(x), atol=1e-6)), sorted(perms["1"].tolist()) == list(range(8))
    (True, True)
    """
    spec = spec_for(model, spec)
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    perms = {g: torch.randperm(n, generator=gen) for g, n in spec.sizes(model.state_dict()).items()}
    return permute(model, perms, spec=spec), perms
