r"""OTFusion: layer-wise optimal-transport alignment of networks, and fusion by aligned averaging.

Neurons of independently trained networks are identified only up to a permutation, so averaging
their parameters coordinate-wise ("vanilla averaging") mixes unrelated units. OTFusion (Singh &
Jaggi 2020) first transports the units of every model onto the units of a target network, layer by
layer, and then averages.

For every permutation group :math:`\ell` of a :class:`~fedot.fusion.spec.PermutationSpec`, in
``spec.order``, with :math:`n` model units and :math:`m` target units:

1. **Past correction.** Every axis of the model's tensors that belongs to an already solved group
   has been mapped onto the target's units (step 4 of the earlier groups), so the incoming weights
   of the model and of the target live in the same coordinates.
2. **Ground metric.** :math:`C_{ij} = \|f_i - g_j\|_2` between model unit :math:`i` and target unit
   :math:`j` (Euclidean, not squared, as in the published OTFusion commands), where

   * ``metric="weights"``: :math:`f_i` is row :math:`i` of all producers of the group whose other
     axes are already solved, concatenated: :math:`[\hat W_\ell \mid b_\ell \mid \gamma \mid \beta
     \mid \mu \mid \sigma^2]` (conv kernels flattened over ``in x kh x kw``);
   * ``metric="activations"``: :math:`f_i` is the unit's activation over a probe batch, recorded at
     the modules named in ``spec.activations`` with the models in eval mode. The derived specs record
     the **pre-activation** (the input of the nonlinearity, after batch norm when there is one),
     OTFusion's ``--prelu-acts``: pre-activations are affine in the weights and keep the information
     that a ReLU discards, so units that are inactive on the probe are still told apart. A conv
     channel's vector is its feature map over all probe images (``N x H x W`` entries).
3. **Transport.** :math:`T = \arg\min_{T \in \Pi(\alpha, \beta)} \langle C, T\rangle` by
   :func:`fedot.ot.assignment.transport_plan`: exact (``"exact"``: the Hungarian algorithm on square
   uniform problems, where it equals ``ot.emd``; the network simplex otherwise) or entropic
   (``"sinkhorn"``, with ``reg`` relative to :math:`\max C`, log domain when it is small). The
   marginals are uniform or proportional to the norms :math:`\|f_i\|` (``marginals="importance"``).
4. **Map.** Every axis of every model tensor carrying group :math:`\ell` is mapped through the
   barycentric projection :math:`\tilde T = T \operatorname{diag}(1 / T^\top 1)` (columns sum to 1;
   :math:`T^\top 1 = \beta` up to the solver's tolerance):

   .. math:: \tilde W_{\text{rows}} = \tilde T^\top W, \qquad \hat W_{\text{cols}} = W \tilde T,

   i.e. target unit :math:`j` receives the :math:`\tilde T`-weighted average of the model units sent
   to it. For an exact square uniform problem :math:`\tilde T` is a permutation matrix and the map is
   a re-indexing (done by ``index_select``, not a matrix product), so the aligned model computes
   exactly the same function. For :math:`m < n` it merges units (data-free compression).

   ``input_side="sum"`` keeps the averaging on the output (producer) side but maps the input
   (consumer) axes with the row-normalised plan :math:`\operatorname{diag}(1/\alpha) T`,
   :math:`\alpha = T 1`:

   .. math:: \hat W_{\text{cols}} = W \operatorname{diag}(1/\alpha)\, T,

   so every model unit hands its *whole* outgoing weight to the target units it is sent to: the
   weights from model units merged into one target unit are summed, and a model unit split over
   several target units has its weight divided among them. With the output map
   :math:`A = \operatorname{diag}(1/\beta) T^\top` (hidden units :math:`h \mapsto A h`) and the
   input map :math:`B = \operatorname{diag}(1/\alpha) T` (next layer :math:`W \mapsto W B`), the
   composite :math:`B A = \operatorname{diag}(1/\alpha) T \operatorname{diag}(1/\beta) T^\top` is
   row-stochastic, so the next layer's pre-activations :math:`W B A h = W h` are preserved whenever
   the model's units are constant on the blocks the plan merges (duplicated neurons), and for every
   :math:`h` when the plan only splits units (each target unit fed by one model unit:
   :math:`B A = I`). This is the convention of SubFLOT's extraction and aggregation
   (:mod:`fedot.subflot`); the default ``"average"`` is OTFusion's. Both coincide on permutations.

The class-output axis is never part of a group, so the output layer is never permuted. Fusion
(:func:`fuse`) aligns every model to the current estimate :math:`F` (initially ``target``) and sets
:math:`F \leftarrow \sum_k w_k \tilde\theta_k` (one free-support Wasserstein-barycenter step over
every layer's neuron measure), optionally repeated.

All computations stay on the target's device and in its dtype; only the cost matrix of an exact
problem is copied to the CPU (``ot.emd`` / ``linear_sum_assignment`` are CPU solvers).

References
----------
.. [1] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
.. [2] H. Wang, M. Yurochkin, Y. Sun, D. Papailiopoulos, Y. Khazaeni, "Federated Learning with
   Matched Averaging" (FedMA), ICLR 2020.
.. [3] S. K. Ainsworth, J. Hayase, S. Srinivasa, "Git Re-Basin: Merging Models modulo Permutation
   Symmetries", ICLR 2023.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from fedot.fusion.spec import PermutationSpec, contract_axis, spec_for, take_axis
from fedot.ot.assignment import pairwise_sq_dists, transport_plan

__all__ = [
    "AlignmentResult",
    "eval_mode",
    "summarise_layers",
    "FusionResult",
    "GroupMap",
    "LayerDiagnostics",
    "activations",
    "align",
    "fuse",
    "fuse_detailed",
]

Metric = Literal["weights", "activations"]
Method = Literal["exact", "emd", "lsa", "sinkhorn"]
Marginals = Literal["uniform", "importance"]
InputSide = Literal["average", "sum"]


@dataclass(frozen=True)
class LayerDiagnostics:
    r"""Diagnostics of the alignment of one permutation group.

    Attributes
    ----------
    group : str
        Group name.
    n_model, n_target : int
        Number of units in the model and in the target.
    cost : float
        Transport cost :math:`\langle C, T \rangle` (0 for the identity).
    entropy : float
        Entropy of the plan normalised to unit mass (:math:`\log n` for a permutation).
    off_identity : float
        :math:`1 - \operatorname{tr}(T) / \sum T` for square plans: the fraction of mass that moves
        a unit to a different index; for rectangular plans the diagonal mass relative to the most
        it can hold (:attr:`fedot.ot.PlanResult.off_identity`).
    marginal_error : float
        :math:`\|T 1 - \alpha\|_1 + \|T^\top 1 - \beta\|_1`.
    method : str
        Solver used (``"lsa"``, ``"emd"``, ``"sinkhorn"``, ``"sinkhorn_log"``), ``"identity"`` for a
        model aligned to itself, or the name of an external map (e.g. ``"sae"``).
    iterations : int
        Solver iterations (Sinkhorn only).
    converged : bool
        Whether the solver met its tolerance.
    """

    group: str
    n_model: int
    n_target: int
    cost: float
    entropy: float
    off_identity: float
    marginal_error: float
    method: str
    iterations: int = 0
    converged: bool = True


@dataclass(frozen=True)
class AlignmentResult:
    r"""Result of :func:`align`; unpacks as ``aligned_model, plans = align(...)``.

    Attributes
    ----------
    model : torch.nn.Module
        The aligned model: a copy of the target's module (architecture, widths, mode, device, dtype)
        holding the model's parameters mapped onto the target's units.
    plans : mapping of str to Tensor
        Group -> transport plan :math:`T` (``n_model x n_target``, rows sum to :math:`\alpha`,
        columns to :math:`\beta`) on the target's device.
    permutations : mapping of str to Tensor or None
        Group -> ``perm`` with unit ``j`` of the aligned model = unit ``perm[j]`` of the model, when the
        plan is a permutation (exact, square, uniform); ``None`` otherwise.
    diagnostics : tuple of LayerDiagnostics
        One entry per group, in alignment order.
    """

    model: nn.Module
    plans: Mapping[str, Tensor]
    permutations: Mapping[str, Tensor | None]
    diagnostics: tuple[LayerDiagnostics, ...]

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.plans))


@dataclass(frozen=True)
class FusionResult:
    """Result of :func:`fuse_detailed`.

    Attributes
    ----------
    model : torch.nn.Module
        The fused model (a copy of the target's module).
    diagnostics : tuple of tuple of LayerDiagnostics
        Per input model, the per-group diagnostics of its alignment in the last iteration.
    iterations : int
        Number of align-and-average iterations performed.
    """

    model: nn.Module
    diagnostics: tuple[tuple[LayerDiagnostics, ...], ...]
    iterations: int


@dataclass(frozen=True)
class GroupMap:
    r"""A precomputed linear map of one group's units (used for non-permutation bases, e.g. SAE maps).

    Exactly one of ``index`` or (``forward``, ``backward``) is set. With ``index``, unit ``j`` of the
    result is unit ``index[j]`` on every axis of the group. Otherwise axis 0 of every producer
    (rows, biases) is mapped by ``forward`` (``m x n``, :math:`h \mapsto M h`) and every other axis
    (consumer columns) by ``backward`` (``m x n``, :math:`(M^+)^\top`), so that
    :math:`W_{\text{next}} M^+ M W = W_{\text{next}} W` when :math:`M` has full column rank.
    """

    index: Tensor | None = None
    forward: Tensor | None = None
    backward: Tensor | None = None
    diagnostics: LayerDiagnostics | None = None


@dataclass(frozen=True)
class _Options:
    metric: Metric
    method: Method
    reg: float
    marginals: Marginals
    max_iter: int
    tol: float | None
    input_side: InputSide = "average"


def _check_options(
    metric: str, method: str, marginals: str, probe: Tensor | None, reg: float,
    input_side: str = "average",
) -> None:
    if metric not in ("weights", "activations"):
        raise ValueError(f"metric must be 'weights' or 'activations', got {metric!r}")
    if metric == "activations" and probe is None:
        raise ValueError("metric='activations' needs a probe batch (probe=...)")
    if method not in ("exact", "emd", "lsa", "sinkhorn"):
        raise ValueError(f"method must be 'exact', 'emd', 'lsa' or 'sinkhorn', got {method!r}")
    if marginals not in ("uniform", "importance"):
        raise ValueError(f"marginals must be 'uniform' or 'importance', got {marginals!r}")
    if method == "sinkhorn" and not (reg > 0 and math.isfinite(reg)):
        raise ValueError(f"reg must be a finite number > 0, got {reg}")
    if input_side not in ("average", "sum"):
        raise ValueError(f"input_side must be 'average' or 'sum', got {input_side!r}")


def _reference(module: nn.Module) -> Tensor:
    """First floating parameter or buffer of ``module`` (device and dtype of the computation)."""
    for t in (*module.parameters(), *module.buffers()):
        if t.is_floating_point():
            return t
    raise ValueError(f"{type(module).__name__} has no floating-point parameters")


def _state(module: nn.Module, like: Tensor) -> dict[str, Tensor]:
    """Detached ``state_dict``, floating tensors on ``like``'s device and dtype (no copy if equal)."""
    return {
        k: (v.detach().to(device=like.device, dtype=like.dtype) if v.is_floating_point() else v.detach())
        for k, v in module.state_dict().items()
    }


def summarise_layers(diagnostics: Iterable[LayerDiagnostics]) -> dict[str, dict[str, float]]:
    """Mean ``cost``, ``marginal_error`` and ``off_identity`` per group over many alignments.

    For per-round records (one alignment per client): NaN entries (``off_identity`` of a
    rectangular plan) are skipped; a group whose values are all NaN gets NaN.
    """
    keys = ("cost", "marginal_error", "off_identity")
    groups: dict[str, dict[str, list[float]]] = {}
    for d in diagnostics:
        g = groups.setdefault(d.group, {k: [] for k in keys})
        for k in keys:
            if not math.isnan(value := float(getattr(d, k))):
                g[k].append(value)
    return {name: {k: math.fsum(v) / len(v) if v else math.nan for k, v in g.items()}
            for name, g in groups.items()}


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[None]:
    """Put ``module`` in eval mode and restore every submodule's ``training`` flag afterwards."""
    flags = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def activations(
    model: nn.Module, spec: PermutationSpec, probe: Tensor, groups: Sequence[str] | None = None
) -> dict[str, Tensor]:
    """Record every group's unit activations on a probe batch (eval mode, no gradients).

    Parameters
    ----------
    model : torch.nn.Module
        The model (its ``training`` flags are restored afterwards).
    spec : PermutationSpec
        Spec whose ``activations`` name the modules to record.
    probe : Tensor
        Input batch ``(N, ...)``; moved to the model's device and dtype.
    groups : sequence of str, optional
        Groups to record (default: all in ``spec.order``).

    Returns
    -------
    dict of str to Tensor
        Group -> ``(units, N * spatial * modules)`` matrix: row ``i`` is unit ``i``'s activation over
        the probe, concatenated over the group's modules.

    Raises
    ------
    ValueError
        If a group has no activation modules in the spec or a module is missing or gives an output
        whose dimension 1 is not the group.
    """
    groups = tuple(spec.order if groups is None else groups)
    modules = dict(model.named_modules())
    store: dict[str, list[Tensor]] = {g: [] for g in groups}
    hooks = []

    def hook(g: str) -> Any:
        return lambda _m, _i, out: store[g].append(out.detach())

    try:
        for g in groups:
            names = spec.activations.get(g)
            if not names:
                raise ValueError(f"the spec names no activation module for group {g!r}")
            for name in names:
                if name not in modules:
                    raise ValueError(f"activation module {name!r} of group {g!r} is not in the model")
                hooks.append(modules[name].register_forward_hook(hook(g)))
        ref = _reference(model)
        with eval_mode(model), torch.no_grad():
            model(probe.to(device=ref.device, dtype=ref.dtype))
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for g in groups:
        mats = [o.movedim(1, 0).reshape(o.shape[1], -1) for o in store[g]]
        if len({m.shape[0] for m in mats}) != 1:
            raise ValueError(f"activation modules of group {g!r} disagree on its size")
        out[g] = torch.cat(mats, dim=1)
    return out


def _inverse(perm: Tensor) -> Tensor:
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


def apply_group_map(
    state: dict[str, Tensor], spec: PermutationSpec, group: str, n: int, gmap: GroupMap
) -> None:
    """Map every axis of ``group`` in ``state`` (the dict entries are replaced, tensors not modified)."""
    for key, axis in spec.occurrences(group):
        t = state[key]
        if gmap.index is not None:
            state[key] = take_axis(t, axis, gmap.index, n)
        else:
            mat = gmap.forward if axis == 0 else gmap.backward
            assert mat is not None
            state[key] = contract_axis(t, axis, mat.to(t.dtype), n)


def _features(
    state: Mapping[str, Tensor], spec: PermutationSpec, group: str, n: int, solved: set[str]
) -> Tensor:
    keys = [
        k for k in spec.producers(group) if all(g is None or g in solved for g in spec.axes[k][1:])
    ]
    if not keys:
        raise ValueError(
            f"group {group!r} has no producer whose other axes are solved before it (a cycle in "
            "spec.order); reorder the spec or use metric='activations'"
        )
    return torch.cat([state[k].reshape(n, -1) for k in keys], dim=1)


def _marginal(features: Tensor, kind: Marginals) -> Tensor | None:
    if kind == "uniform":
        return None
    w = features.double().norm(dim=1)
    total = w.sum()
    if not torch.isfinite(total) or total <= 0:
        return None
    return (w / total).to(features.dtype)


def _plan_map(plan: Tensor, input_side: InputSide) -> GroupMap:
    r"""Build the :class:`GroupMap` of a non-permutation plan :math:`T` (``n x m``, see module docs).

    ``forward`` is :math:`\operatorname{diag}(1/\beta) T^\top` (averaging on the output side);
    ``backward`` (applied to consumer axes by :func:`~fedot.fusion.spec.contract_axis`) is the same
    matrix for ``"average"`` and :math:`(\operatorname{diag}(1/\alpha) T)^\top` for ``"sum"``.
    Units without mass (zero marginal) are mapped to zero instead of dividing by zero.
    """
    col = plan.sum(0)
    col = torch.where(col > 0, col, torch.ones_like(col))
    t_bar = (plan / col).T.contiguous()
    if input_side == "average":
        return GroupMap(forward=t_bar, backward=t_bar)
    row = plan.sum(1)
    row = torch.where(row > 0, row, torch.ones_like(row))
    return GroupMap(forward=t_bar, backward=(plan / row[:, None]).T.contiguous())


def align_state(
    model_state: Mapping[str, Tensor],
    target_state: Mapping[str, Tensor],
    spec: PermutationSpec,
    opts: _Options,
    *,
    model_acts: Mapping[str, Tensor] | None = None,
    target_acts: Mapping[str, Tensor] | None = None,
    overrides: Mapping[str, GroupMap] | None = None,
    keep_plans: bool = True,
    target_cache: dict[str, Tensor] | None = None,
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor | None], list[LayerDiagnostics]]:
    """Align a state dict to a target state dict group by group (the core of :func:`align`).

    ``target_cache`` (group -> target features) lets several models share the target's weight
    features; it must be emptied whenever the target state changes. ``opts.input_side`` selects
    the consumer-axis normalisation (module docs, step 4); with the weights metric it also shapes
    the past correction, so the cost of a later group compares summed (or averaged) incoming weights.
    """
    n_sizes, m_sizes = spec.sizes(model_state), spec.sizes(target_state)
    cur = dict(model_state)
    plans: dict[str, Tensor] = {}
    perms: dict[str, Tensor | None] = {}
    diags: list[LayerDiagnostics] = []
    solved: set[str] = set()
    overrides = overrides or {}
    for g in spec.order:
        n, m = n_sizes[g], m_sizes[g]
        if g in overrides:
            gmap = overrides[g]
            apply_group_map(cur, spec, g, n, gmap)
            perms[g] = gmap.index
            if gmap.diagnostics is not None:
                diags.append(gmap.diagnostics)
            solved.add(g)
            continue
        if opts.metric == "weights":
            f_model = _features(cur, spec, g, n, solved)
            if target_cache is not None and g in target_cache:
                f_target = target_cache[g]
            else:
                f_target = _features(target_state, spec, g, m, solved)
                if target_cache is not None:
                    target_cache[g] = f_target
        else:
            assert model_acts is not None and target_acts is not None
            f_model, f_target = model_acts[g], target_acts[g]
        if f_model.shape[1] != f_target.shape[1]:
            raise ValueError(f"group {g!r}: model and target features differ in length "
                             f"({f_model.shape[1]} vs {f_target.shape[1]})")
        cost = pairwise_sq_dists(f_model, f_target).sqrt_()
        reg = opts.reg
        if opts.method == "sinkhorn":
            scale = float(cost.max())
            reg = reg * scale if scale > 0 else reg
        res = transport_plan(
            cost,
            _marginal(f_model, opts.marginals),
            _marginal(f_target, opts.marginals),
            method=opts.method,
            reg=reg,
            max_iter=opts.max_iter,
            tol=opts.tol,
        )
        if res.assignment is not None:
            perm = _inverse(res.assignment)
            gmap = GroupMap(index=perm)
        else:
            perm = None
            gmap = _plan_map(res.plan, opts.input_side)
        apply_group_map(cur, spec, g, n, gmap)
        if keep_plans:
            plans[g] = res.plan
        perms[g] = perm
        diags.append(LayerDiagnostics(
            group=g, n_model=n, n_target=m, cost=res.cost, entropy=res.entropy,
            off_identity=res.off_identity, marginal_error=res.marginal_error, method=res.method,
            iterations=res.iterations, converged=res.converged,
        ))
        solved.add(g)
    return cur, plans, perms, diags


def _load(template: nn.Module, state: Mapping[str, Tensor]) -> nn.Module:
    out = copy.deepcopy(template)
    out.load_state_dict(state)
    return out


def align(
    model: nn.Module,
    target: nn.Module,
    *,
    spec: PermutationSpec | None = None,
    metric: Metric = "weights",
    probe: Tensor | None = None,
    method: Method = "exact",
    reg: float = 0.01,
    marginals: Marginals = "uniform",
    max_iter: int = 10_000,
    tol: float | None = None,
    input_side: InputSide = "average",
) -> AlignmentResult:
    r"""Align the units of ``model`` to those of ``target`` layer by layer (OTFusion, see module docs).

    Parameters
    ----------
    model : torch.nn.Module
        The model to align (not modified).
    target : torch.nn.Module
        The reference model; same depth and spec, widths may differ (not modified).
    spec : PermutationSpec, optional
        Default: ``target.permutation_spec()`` if defined, else derived from a Sequential
        (:func:`fedot.fusion.spec.derive_spec`).
    metric : {"weights", "activations"}, default "weights"
        Ground metric: incoming weights with the past correction, or pre-activations on ``probe``.
    probe : Tensor, optional
        Input batch for ``metric="activations"``.
    method : {"exact", "emd", "lsa", "sinkhorn"}, default "exact"
        OT solver (:func:`fedot.ot.assignment.transport_plan`).
    reg : float, default 0.01
        Sinkhorn regularisation relative to the largest ground cost of each layer.
    marginals : {"uniform", "importance"}, default "uniform"
        Unit measures: uniform, or proportional to the feature norms :math:`\|f_i\|` (importance
        marginals make exact plans on equal widths non-permutation in general).
    max_iter : int, default 10000
        Sinkhorn iteration cap.
    tol : float, optional
        Sinkhorn tolerance (default depends on the dtype).
    input_side : {"average", "sum"}, default "average"
        Normalisation of the consumer (input) axes of a non-permutation plan: OTFusion's barycentric
        average :math:`W T \operatorname{diag}(1/\beta)`, or the sum
        :math:`W \operatorname{diag}(1/\alpha) T` that preserves pre-activations when merged units
        are duplicates (SubFLOT). Output axes are always averaged; see the module docs.

    Returns
    -------
    AlignmentResult
        The aligned model (target's architecture), plans, permutations and diagnostics.

    Raises
    ------
    ValueError
        On unknown options, a missing probe, or a spec that does not fit the models.

    Examples
    --------
    >>> from fedot.learning import build_model
    >>> a = build_model("mlp", (8,), 3, hidden=16, seed=0)
    >>> b = build_model("mlp", (8,), 3, hidden=16, seed=1)
    >>> aligned, plans = align(a, b)
    >>> sorted(plans)
    ['1', '3']
    """
    _check_options(metric, method, marginals, probe, reg, input_side)
    opts = _Options(metric, method, float(reg), marginals, int(max_iter), tol, input_side)
    spec = spec_for(target, spec)
    ref = _reference(target)
    model_acts = target_acts = None
    if metric == "activations":
        assert probe is not None
        model_acts = activations(model, spec, probe)
        target_acts = activations(target, spec, probe)
    with torch.no_grad():
        state, plans, perms, diags = align_state(
            _state(model, ref), _state(target, ref), spec, opts,
            model_acts=model_acts, target_acts=target_acts,
        )
        aligned = _load(target, state)
    return AlignmentResult(model=aligned, plans=plans, permutations=perms, diagnostics=tuple(diags))


def _identity_diagnostics(
    spec: PermutationSpec, sizes: Mapping[str, int]
) -> tuple[LayerDiagnostics, ...]:
    return tuple(
        LayerDiagnostics(group=g, n_model=sizes[g], n_target=sizes[g], cost=0.0,
                         entropy=math.log(sizes[g]), off_identity=0.0, marginal_error=0.0,
                         method="identity")
        for g in spec.order
    )


def normalised_weights(weights: Sequence[float] | Tensor | None, k: int) -> list[float]:
    """Return ``k`` model weights normalised to sum 1 (uniform when ``None``); validated."""
    if weights is None:
        return [1.0 / k] * k
    w = [float(x) for x in (weights.tolist() if isinstance(weights, Tensor) else weights)]
    if len(w) != k:
        raise ValueError(f"weights has {len(w)} entries for {k} models")
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be finite, nonnegative and not all zero, got {w}")
    total = sum(w)
    return [x / total for x in w]


AlignFn = Any  # Callable[[int, nn.Module, nn.Module, dict, spec], tuple[state, diags]]


def fuse_with(
    models: Sequence[nn.Module],
    align_one: AlignFn,
    *,
    target: nn.Module | None,
    weights: Sequence[float] | Tensor | None,
    spec: PermutationSpec | None,
    iterations: int,
) -> FusionResult:
    """Run the iterated align-and-average loop shared by :func:`fuse_detailed` and SAE fusion.

    ``align_one(k, model, estimate_module, estimate_state, spec)`` returns the aligned state of model
    ``k`` and its diagnostics.
    """
    if len(models) == 0:
        raise ValueError("models must not be empty")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    w = normalised_weights(weights, len(models))
    anchor = models[0] if target is None else target
    spec = spec_for(anchor, spec)
    ref = _reference(anchor)
    estimate_module = anchor
    estimate_state = _state(anchor, ref)
    diagnostics: list[tuple[LayerDiagnostics, ...]] = []
    with torch.no_grad():
        for it in range(iterations):
            acc: dict[str, Tensor] = {}
            diagnostics = []
            for k, model in enumerate(models):
                if it == 0 and model is anchor:
                    state = _state(model, ref)
                    diags = _identity_diagnostics(spec, spec.sizes(state))
                else:
                    state, diags = align_one(k, model, estimate_module, estimate_state, spec)
                diagnostics.append(tuple(diags))
                for key, value in state.items():
                    if not value.is_floating_point():
                        continue
                    if key in acc:
                        acc[key].add_(value, alpha=w[k])
                    else:
                        acc[key] = value * w[k]
            estimate_state = {k: acc.get(k, v) for k, v in estimate_state.items()}
            estimate_module = _load(anchor, estimate_state)
    return FusionResult(model=estimate_module, diagnostics=tuple(diagnostics), iterations=iterations)


def fuse_detailed(
    models: Sequence[nn.Module],
    *,
    target: nn.Module | None = None,
    weights: Sequence[float] | Tensor | None = None,
    spec: PermutationSpec | None = None,
    metric: Metric = "weights",
    probe: Tensor | None = None,
    method: Method = "exact",
    reg: float = 0.01,
    marginals: Marginals = "uniform",
    iterations: int = 1,
    max_iter: int = 10_000,
    tol: float | None = None,
    input_side: InputSide = "average",
) -> FusionResult:
    """Fuse models like :func:`fuse` and also return the per-model alignment diagnostics.

    Parameters
    ----------
    models, target, weights, spec, metric, probe, method, reg, marginals, iterations, max_iter, tol
        See :func:`fuse`.
    input_side : {"average", "sum"}, default "average"
        Consumer-axis normalisation of every alignment, see :func:`align`.

    Returns
    -------
    FusionResult
        The fused model and, per model, the diagnostics of its last alignment.
    """
    _check_options(metric, method, marginals, probe, reg, input_side)
    opts = _Options(metric, method, float(reg), marginals, int(max_iter), tol, input_side)
    cached_acts: dict[int, dict[str, Tensor]] = {}
    target_acts: dict[int, dict[str, Tensor]] = {}
    target_feats: dict[int, dict[str, Tensor]] = {}

    def align_one(
        k: int, model: nn.Module, est: nn.Module, est_state: dict[str, Tensor], spec: PermutationSpec
    ) -> tuple[dict[str, Tensor], list[LayerDiagnostics]]:
        m_acts = t_acts = None
        if metric == "activations":
            assert probe is not None
            if k not in cached_acts:
                cached_acts[k] = activations(model, spec, probe)
            key = id(est)
            if key not in target_acts:
                target_acts.clear()
                target_acts[key] = activations(est, spec, probe)
            m_acts, t_acts = cached_acts[k], target_acts[key]
        if id(est_state) not in target_feats:
            target_feats.clear()
            target_feats[id(est_state)] = {}
        state, _, _, diags = align_state(
            _state(model, _reference(est)), est_state, spec, opts,
            model_acts=m_acts, target_acts=t_acts, keep_plans=False,
            target_cache=target_feats[id(est_state)],
        )
        return state, diags

    return fuse_with(models, align_one, target=target, weights=weights, spec=spec, iterations=iterations)


def fuse(
    models: Sequence[nn.Module],
    *,
    target: nn.Module | None = None,
    weights: Sequence[float] | Tensor | None = None,
    spec: PermutationSpec | None = None,
    metric: Metric = "weights",
    probe: Tensor | None = None,
    method: Method = "exact",
    reg: float = 0.01,
    marginals: Marginals = "uniform",
    iterations: int = 1,
    max_iter: int = 10_000,
    tol: float | None = None,
    input_side: InputSide = "average",
) -> nn.Module:
    r"""Fuse several networks into one by OT alignment and weighted averaging (OTFusion).

    With the estimate :math:`F^{(0)}` = ``target``, every iteration aligns each model to the current
    estimate (:func:`align`) and averages:

    .. math:: F^{(t+1)} = \sum_k w_k \, \mathcal{A}(\theta_k \to F^{(t)}),

    one free-support Wasserstein-barycenter update of every layer's neuron measure (Singh & Jaggi
    2020, Sec. 4). ``iterations=1`` is the published one-shot fusion. Floating buffers (batch-norm
    running statistics) are aligned and averaged like parameters; integer buffers
    (``num_batches_tracked``) are taken from the target.

    Parameters
    ----------
    models : sequence of torch.nn.Module
        Models with the same depth and spec; widths may differ from the target's (not modified).
    target : torch.nn.Module, optional
        Initial estimate and architecture of the result (device, dtype, widths). Default: the first
        model, which (being the reference itself) is not re-aligned in the first iteration. A
        ``target`` that is not in ``models`` only fixes the architecture and the first alignment
        reference; it is not averaged in. A narrower target compresses the models.
    weights : sequence of float or Tensor, optional
        Nonnegative averaging weights (normalised to sum 1), e.g. client data sizes. Default uniform.
    spec : PermutationSpec, optional
        Default: derived from the target (see :func:`align`).
    metric, probe, method, reg, marginals, max_iter, tol
        Alignment options, see :func:`align`.
    iterations : int, default 1
        Number of align-and-average iterations.
    input_side : {"average", "sum"}, default "average"
        Consumer-axis normalisation of every alignment, see :func:`align`.

    Returns
    -------
    torch.nn.Module
        The fused model: a new copy of the target's module.

    Raises
    ------
    ValueError
        On empty ``models``, invalid weights or options.

    Examples
    --------
    >>> import torch
    >>> from fedot.learning import build_model
    >>> from fedot.fusion.spec import permute
    >>> a = build_model("mlp", (8,), 3, hidden=16, seed=0)
    >>> b = permute(a, {"1": torch.randperm(16, generator=torch.Generator().manual_seed(0))})
    >>> x = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    >>> bool(torch.allclose(fuse([a, b])(x), a(x), atol=1e-6))
    True
    """
    return fuse_detailed(
        models, target=target, weights=weights, spec=spec, metric=metric, probe=probe, method=method,
        reg=reg, marginals=marginals, iterations=iterations, max_iter=max_iter, tol=tol,
        input_side=input_side,
    ).model
