r"""Permutation specs: which tensors of a network share a neuron permutation.

Hidden units of a network can be permuted without changing its function: if the units of a hidden
layer are reordered by a permutation :math:`P`, the rows of the weights and biases that *produce*
that layer (:math:`W_\ell \mapsto P W_\ell`, :math:`b_\ell \mapsto P b_\ell`, batch-norm
:math:`\gamma, \beta`, running mean and variance) and the input columns of every weight that
*consumes* it (:math:`W_{\ell+1} \mapsto W_{\ell+1} P^\top`) must be reordered with it, because
elementwise nonlinearities commute with permutations. A :class:`PermutationSpec` records this
structure once per architecture; alignment (:mod:`fedot.fusion.align`), Git Re-Basin
(:mod:`fedot.fusion.rebasin`) and SAE alignment (:mod:`fedot.fusion.sae`) all work from it.

Spec format
-----------
``axes``
    ``state_dict`` key -> one entry per tensor axis: the name of the *permutation group* acting on
    that axis, or ``None`` for an axis that is never permuted (network inputs, class outputs, conv
    kernel positions). Keys that are not listed are never permuted (``num_batches_tracked``, the
    output bias). A group on axis 0 of a tensor marks that tensor as a *producer* of the group (its
    rows are the group's units); on any other axis it marks a *consumer*.

    An axis may be longer than its group: an axis of length :math:`k \cdot n` for a group of
    :math:`n` units is read as :math:`n` contiguous blocks of length :math:`k`, and the permutation
    moves blocks. This is exactly the conv :math:`\to` linear flatten: ``Flatten`` of a
    :math:`(C, H, W)` map gives :math:`C` blocks of :math:`HW` features, so a ``Linear`` after it
    has in-axis ``C`` blocks and a channel permutation moves whole blocks.
``order``
    The groups in the order in which layer-wise alignment solves them (input side first). With the
    weights metric, the cost of a group uses its producers whose other axes belong to groups solved
    earlier (or to none), with those axes already mapped to the target (OTFusion's "past
    correction"); every group needs at least one such producer.
``activations``
    group -> names of submodules (``model.named_modules()``) whose outputs carry the group's units on
    dimension 1. Needed only by the activations metric and SAE alignment; several modules (e.g. the
    residual stream after every block) are concatenated along the probe axis.

Residual streams: every tensor that writes into the same residual stream (the embedding, the last
layer of every residual branch, the norms on the stream) and every tensor that reads from it must
carry the *same* group, because the skip connection adds unit :math:`i` of the branch to unit
:math:`i` of the stream. This is the shared-permutation treatment of Git Re-Basin (Ainsworth et al.
2023) and Transformer Fusion (Imfeld et al. 2024); see :class:`fedot.fusion.models.ResidualMLP`.

Automatic derivation (:func:`derive_spec`) covers flat or nested :class:`torch.nn.Sequential` models
of ``Linear``, ``Conv1d/2d/3d`` (``groups=1``), ``BatchNorm1d/2d/3d``, ``LayerNorm`` over the unit
axis, elementwise activations, ``Dropout``, pooling and ``Flatten`` layers, e.g. every ``mlp`` and
``cnn`` of :func:`fedot.learning.build_model`. Every ``Linear``/``Conv`` output except the last one
is a group named after the module; the last one (the class outputs) is never permuted.

References
----------
.. [1] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
.. [2] S. K. Ainsworth, J. Hayase, S. Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
   Symmetries", ICLR 2023.
.. [3] M. Imfeld, J. Graldi, M. Giordano, T. Hofmann, S. Anagnostidis, S. P. Singh, "Transformer
   Fusion with Optimal Transport", ICLR 2024.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import torch
from torch import Tensor, nn

__all__ = [
    "Axes",
    "PermutationSpec",
    "conv_axes",
    "derive_spec",
    "linear_axes",
    "norm_axes",
    "permute",
    "spec_for",
]

Axes = tuple[str | None, ...]
"""Group name (or ``None``) for every axis of one tensor."""

_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
    nn.Tanh, nn.Softplus, nn.Softsign, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Tanhshrink,
    nn.LogSigmoid, nn.Identity, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
    nn.Softmax, nn.LogSoftmax,
)
_POOLING: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.LPPool1d, nn.LPPool2d,
)
_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_AFFINE = (nn.Linear, *_CONV)


@dataclass(frozen=True)
class PermutationSpec:
    """Which axes of which ``state_dict`` tensors each permutation group acts on (see module docs).

    Parameters
    ----------
    axes : mapping of str to tuple of (str or None)
        ``state_dict`` key -> group name (or ``None``) per axis.
    order : sequence of str
        All groups, in alignment order (input side first).
    activations : mapping of str to tuple of str, optional
        Group -> names of submodules whose outputs hold the group's units on dimension 1.

    Raises
    ------
    ValueError
        If ``order`` repeats a group or does not list exactly the groups used in ``axes``, or a group
        has no producer (no tensor with the group on axis 0), or ``activations`` names an unknown
        group.

    Examples
    --------
    A two-layer MLP ``Linear(4, 8) -> ReLU -> Linear(8, 3)`` stored as ``fc1``, ``fc2``:

    >>> spec = PermutationSpec(
    ...     axes={**linear_axes("fc1", "h", None), **linear_axes("fc2", None, "h")},
    ...     order=("h",),
    ...     activations={"h": ("fc1",)},
    ... )
    >>> spec.producers("h")
    ('fc1.weight', 'fc1.bias')
    """

    axes: Mapping[str, Axes]
    order: tuple[str, ...]
    activations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        axes = {str(k): tuple(v) for k, v in self.axes.items()}
        order = tuple(self.order)
        acts = {str(k): tuple(v) for k, v in self.activations.items()}
        used = {g for ax in axes.values() for g in ax if g is not None}
        if len(set(order)) != len(order):
            raise ValueError(f"order repeats a group: {order}")
        if set(order) != used:
            raise ValueError(f"order must list exactly the groups used in axes; missing "
                             f"{sorted(used - set(order))}, unused {sorted(set(order) - used)}")
        producers = {ax[0] for ax in axes.values() if ax and ax[0] is not None}
        if used - producers:
            raise ValueError(f"groups without a producer (a tensor with the group on axis 0): "
                             f"{sorted(used - producers)}")
        if set(acts) - used:
            raise ValueError(f"activations name unknown groups: {sorted(set(acts) - used)}")
        object.__setattr__(self, "axes", MappingProxyType(axes))
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "activations", MappingProxyType(acts))

    def producers(self, group: str) -> tuple[str, ...]:
        """Keys of the tensors whose axis 0 holds the units of ``group``, in ``axes`` order."""
        return tuple(k for k, ax in self.axes.items() if ax and ax[0] == group)

    def occurrences(self, group: str) -> tuple[tuple[str, int], ...]:
        """All ``(key, axis)`` pairs on which ``group`` acts."""
        return tuple((k, i) for k, ax in self.axes.items() for i, g in enumerate(ax) if g == group)

    def sizes(self, state: Mapping[str, Tensor]) -> dict[str, int]:
        """Check the spec against a ``state_dict`` and return the number of units of every group.

        Parameters
        ----------
        state : mapping of str to Tensor
            A model's ``state_dict``.

        Returns
        -------
        dict of str to int
            Group -> number of units (the length of axis 0 of its producers).

        Raises
        ------
        ValueError
            If a key is missing, a tensor's rank differs from its axes entry, producers of one group
            disagree on its size, or a consumer axis is not a multiple of the group size.
        """
        out: dict[str, int] = {}
        for key, ax in self.axes.items():
            if key not in state:
                raise ValueError(f"spec names {key!r}, which is not in the model's state_dict")
            if state[key].dim() != len(ax):
                raise ValueError(f"{key!r} has {state[key].dim()} axes, the spec gives {len(ax)}")
            if ax and ax[0] is not None:
                n = int(state[key].shape[0])
                if out.setdefault(ax[0], n) != n:
                    raise ValueError(f"producers of group {ax[0]!r} disagree on its size "
                                     f"({out[ax[0]]} vs {n} in {key!r})")
        for key, ax in self.axes.items():
            for i, g in enumerate(ax):
                if g is not None and state[key].shape[i] % out[g]:
                    raise ValueError(f"axis {i} of {key!r} (length {state[key].shape[i]}) is not a "
                                     f"multiple of group {g!r} ({out[g]} units)")
        return out


def linear_axes(
    name: str, out_group: str | None, in_group: str | None, *, bias: bool = True
) -> dict[str, Axes]:
    """Spec entries of a ``Linear`` module: ``weight`` (out, in) and ``bias`` (out).

    Parameters
    ----------
    name : str
        Module name in ``model.named_modules()``.
    out_group, in_group : str or None
        Groups of the output units and of the input features (``None``: not permuted).
    bias : bool, default True
        Whether the module has a bias.

    Returns
    -------
    dict of str to Axes
        Entries to merge into :attr:`PermutationSpec.axes`.
    """
    entries: dict[str, Axes] = {f"{name}.weight": (out_group, in_group)}
    if bias:
        entries[f"{name}.bias"] = (out_group,)
    return entries


def conv_axes(
    name: str, out_group: str | None, in_group: str | None, *, bias: bool = True, spatial_dims: int = 2
) -> dict[str, Axes]:
    """Spec entries of a ``Conv{1,2,3}d`` module (``groups=1``): ``weight`` (out, in, *kernel), ``bias``.

    Parameters
    ----------
    name : str
        Module name.
    out_group, in_group : str or None
        Groups of the output and input channels.
    bias : bool, default True
        Whether the module has a bias.
    spatial_dims : int, default 2
        Number of kernel axes (never permuted).

    Returns
    -------
    dict of str to Axes
        Entries to merge into :attr:`PermutationSpec.axes`.
    """
    entries: dict[str, Axes] = {f"{name}.weight": (out_group, in_group) + (None,) * spatial_dims}
    if bias:
        entries[f"{name}.bias"] = (out_group,)
    return entries


def norm_axes(
    name: str, group: str | None, *, affine: bool = True, running_stats: bool = False
) -> dict[str, Axes]:
    r"""Spec entries of a per-unit normalisation (``BatchNorm``, ``LayerNorm`` over the unit axis).

    Parameters
    ----------
    name : str
        Module name.
    group : str or None
        Group of the normalised units (the producing layer's group).
    affine : bool, default True
        Include ``weight`` (:math:`\gamma`) and ``bias`` (:math:`\beta`).
    running_stats : bool, default False
        Include ``running_mean`` and ``running_var`` (batch norm). ``num_batches_tracked`` is a
        scalar and never permuted.

    Returns
    -------
    dict of str to Axes
        Entries to merge into :attr:`PermutationSpec.axes`.
    """
    keys = ["weight", "bias"] if affine else []
    keys += ["running_mean", "running_var"] if running_stats else []
    return {f"{name}.{k}": (group,) for k in keys}


def _leaves(module: nn.Module, prefix: str = "") -> Iterator[tuple[str, nn.Module]]:
    """Yield the non-Sequential modules of a (nested) Sequential in forward order."""
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            yield from _leaves(child, full + ".")
        else:
            yield full, child


def derive_spec(model: nn.Module) -> PermutationSpec:
    r"""Derive the permutation spec of a (nested) :class:`torch.nn.Sequential` feed-forward network.

    Every ``Linear``/``Conv`` layer except the last one opens a group named after the module; a
    following ``BatchNorm``/``LayerNorm`` joins it (:math:`\gamma`, :math:`\beta`, running mean and
    variance), elementwise activations, dropout and pooling pass it through, and ``Flatten`` turns a
    channel group into a block-expanded feature group for the next ``Linear``. The last
    ``Linear``/``Conv`` (the class outputs) is not permuted. The activation of a group is recorded
    at the output of its normalisation layer if there is one, else at the layer itself: the input
    of the nonlinearity (the *pre-activation*).

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`torch.nn.Sequential` (possibly nested).

    Returns
    -------
    PermutationSpec
        The derived spec.

    Raises
    ------
    ValueError
        If ``model`` is not a Sequential, or holds a module whose permutation behaviour is not
        known (pass an explicit spec for such models).
    """
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"derive_spec needs an nn.Sequential, got {type(model).__name__}; pass spec=")
    leaves = list(_leaves(model))
    affine_idx = [i for i, (_, m) in enumerate(leaves) if isinstance(m, _AFFINE)]
    last = affine_idx[-1] if affine_idx else -1
    axes: dict[str, Axes] = {}
    acts: dict[str, tuple[str, ...]] = {}
    order: list[str] = []
    group: str | None = None
    spatial = False
    for i, (name, mod) in enumerate(leaves):
        if isinstance(mod, nn.Linear):
            out = None if i == last else name
            axes.update(linear_axes(name, out, group, bias=mod.bias is not None))
            group, spatial = out, False
        elif isinstance(mod, _CONV):
            if mod.groups != 1:
                raise ValueError(f"{name}: grouped convolutions (groups={mod.groups}) are not supported")
            out = None if i == last else name
            axes.update(conv_axes(name, out, group, bias=mod.bias is not None,
                                  spatial_dims=mod.weight.dim() - 2))
            group, spatial = out, True
        elif isinstance(mod, _BATCHNORM):
            if group is not None:
                axes.update(norm_axes(name, group, affine=mod.affine,
                                      running_stats=mod.running_mean is not None))
        elif isinstance(mod, nn.LayerNorm):
            if group is not None:
                if spatial or len(mod.normalized_shape) != 1:
                    raise ValueError(f"{name}: LayerNorm is supported only over the unit axis")
                if mod.elementwise_affine:
                    axes.update(norm_axes(name, group, affine=True, running_stats=False))
                    if mod.bias is None:
                        del axes[f"{name}.bias"]
        elif isinstance(mod, nn.Flatten):
            if mod.start_dim != 1 or mod.end_dim != -1:
                raise ValueError(f"{name}: only Flatten(start_dim=1, end_dim=-1) is supported")
            spatial = False
        elif isinstance(mod, nn.PReLU):
            if mod.num_parameters != 1:
                raise ValueError(f"{name}: per-channel PReLU is not supported; pass spec=")
        elif not isinstance(mod, (*_ELEMENTWISE, *_POOLING)):
            raise ValueError(f"cannot derive a permutation spec through {name!r} "
                             f"({type(mod).__name__}); pass an explicit spec=")
        if group is not None and isinstance(mod, (*_AFFINE, *_BATCHNORM, nn.LayerNorm)):
            if group not in acts:
                order.append(group)
            acts[group] = (name,)
    return PermutationSpec(axes=axes, order=tuple(order), activations=acts)


def spec_for(model: nn.Module, spec: PermutationSpec | None = None) -> PermutationSpec:
    """Return ``spec``, else ``model.permutation_spec()`` if it exists, else :func:`derive_spec`.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    spec : PermutationSpec, optional
        An explicit spec (returned as is).

    Returns
    -------
    PermutationSpec
        The spec to use for ``model``.
    """
    if spec is not None:
        return spec
    method = getattr(model, "permutation_spec", None)
    if callable(method):
        result = method()
        if not isinstance(result, PermutationSpec):
            raise TypeError(f"{type(model).__name__}.permutation_spec() must return a PermutationSpec")
        return result
    return derive_spec(model)


def take_axis(t: Tensor, axis: int, index: Tensor, n: int) -> Tensor:
    """Reorder the ``n`` (block-)units of ``t`` along ``axis``: ``out[j] = t[index[j]]``.

    The axis has length ``k * n`` and is read as ``n`` contiguous blocks of ``k`` (``k = 1`` for a
    plain unit axis). Returns a new tensor; ``t`` is not modified.
    """
    if t.shape[axis] == n:
        return t.index_select(axis, index)
    return t.unflatten(axis, (n, -1)).index_select(axis, index).flatten(axis, axis + 1)


def contract_axis(t: Tensor, axis: int, mat: Tensor, n: int) -> Tensor:
    """Map the ``n`` (block-)units of ``t`` along ``axis`` through ``mat`` (m x n).

    ``out[j] = sum_i mat[j, i] * t[i]``: unit ``j`` of the result combines the units of ``t``.

    The axis has length ``k * n`` (``n`` blocks of ``k``) and becomes ``k * m``. Returns a new tensor.
    """
    moved = t.movedim(axis, 0)
    k = moved.shape[0] // n
    out = (mat @ moved.reshape(n, -1)).reshape((mat.shape[0] * k, *moved.shape[1:]))
    return out.movedim(0, axis).contiguous()


def permute(
    model: nn.Module,
    permutations: Mapping[str, Tensor | Sequence[int]],
    spec: PermutationSpec | None = None,
) -> nn.Module:
    """Return a copy of ``model`` with the units of every group reordered (same function).

    Unit ``j`` of group ``g`` in the result is unit ``permutations[g][j]`` of ``model``, on every
    axis the spec assigns to ``g`` (producer rows, consumer columns, norm parameters, running
    statistics). Groups left out of ``permutations`` keep their order.

    Parameters
    ----------
    model : torch.nn.Module
        The model (not modified).
    permutations : mapping of str to Tensor or sequence of int
        Group -> permutation of ``range(size)``.
    spec : PermutationSpec, optional
        Default: :func:`spec_for` ``(model)``.

    Returns
    -------
    torch.nn.Module
        A deep copy of ``model`` holding the permuted tensors.

    Raises
    ------
    ValueError
        If a group is unknown or an index is not a permutation of its group's units.
    """
    spec = spec_for(model, spec)
    state = model.state_dict()
    sizes = spec.sizes(state)
    new_state = dict(state)
    for g, perm in permutations.items():
        if g not in sizes:
            raise ValueError(f"unknown group {g!r}; groups are {list(spec.order)}")
        idx = torch.as_tensor(perm, dtype=torch.long).reshape(-1)
        if idx.numel() != sizes[g] or not torch.equal(idx.sort().values, torch.arange(sizes[g])):
            raise ValueError(f"permutations[{g!r}] is not a permutation of range({sizes[g]})")
        for key, axis in spec.occurrences(g):
            t = new_state[key]
            new_state[key] = take_axis(t, axis, idx.to(t.device), sizes[g])
    out = copy.deepcopy(model)
    out.load_state_dict(new_state)
    return out

