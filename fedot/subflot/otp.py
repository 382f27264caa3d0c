r"""OTP: optimal-transport submodel extraction from the global model towards a client's history.

SubFLOT (Jiang, He, Chen, Sun, CVPR 2026) personalises the pruned submodel of client :math:`i` on the
server, without data: its *historical model* :math:`W_i` (the submodel it uploaded last) stands in
for its data. For every hidden group :math:`\ell = 1, \dots, L-1` in order, with :math:`n_\ell`
global and :math:`m_\ell` client units and :math:`T^{(0)} = I` (the inputs are shared):

.. math::

    \hat W_G^{(\ell)} &= W_G^{(\ell,\ell-1)} \operatorname{diag}(1/\mu^{(\ell-1)})\, T^{(\ell-1)}
        \qquad \text{(past correction: inputs mapped to the client's units, summed)} \\
    C^{(\ell)}_{jk} &= \bigl\| [\hat W_G^{(\ell)} \mid b_G^{(\ell)} \mid \dots]_j
        - [W_i^{(\ell)} \mid b_i^{(\ell)} \mid \dots]_k \bigr\|_2 \\
    T^{(\ell)} &= \arg\min_{T \in \Pi(\mu^{(\ell)}, \nu^{(\ell)})} \langle C^{(\ell)}, T \rangle,
        \qquad \mu = 1_{n}/n,\ \nu = 1_{m}/m \\
    W_{\text{aligned}}^{(\ell)} &= \operatorname{diag}(1/\nu^{(\ell)})\, T^{(\ell)\top}
        \hat W_G^{(\ell)} \qquad \text{(output side: average of the matched global units)} \\
    \tilde W_i^{(\ell)} &= \alpha\, W_{\text{aligned}}^{(\ell)} + (1 - \alpha)\, W_i^{(\ell)}.

The rows of a group's producers are concatenated into the neuron vector (weights, bias, batch-norm
:math:`\gamma, \beta`, running mean and variance; conv kernels flattened over
:math:`c_{\text{in}} \times k_h \times k_w`, with :math:`T^{(\ell-1)}` applied over the input
channels at every kernel position). Batch-norm parameters and statistics are mapped with the output
side of the same plan. The class-output layer is never pruned (:math:`T^{(L)} = I`).

Normalisation. The notes on the paper write plain :math:`T^\top W` and :math:`W T`; we use the
marginal-corrected maps of the design document (``docs/subflot.md``): the output side
averages (:math:`\operatorname{diag}(1/\nu) T^\top`, each client unit a convex combination of
global units) and the input side *sums* (:math:`\operatorname{diag}(1/\mu) T`, every global unit
hands its whole outgoing weight to the client units it is sent to). If the global units merged
into one client unit are duplicates, the submodel computes exactly the global function; at
:math:`n = m` with a permutation plan both maps are the permutation, so a permuted copy of the
global model is recovered exactly. This is
:func:`fedot.fusion.align` with ``input_side="sum"`` (global model as source, history as target).

The exact plans on rectangular problems come from POT's network simplex (``ot.emd``); square uniform
problems use the Hungarian algorithm (same optimal cost, a permutation). Without a history (first
round, cold start) the client receives the HeteroFL static slice.

References
----------
.. [1] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and Personalized
   Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631.
.. [2] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fedot.fusion.align import LayerDiagnostics, Method, align
from fedot.fusion.spec import PermutationSpec, spec_for
from fedot.subflot._common import check_compatible, check_fraction, check_rate, reference
from fedot.subflot.submodels import static_slice, submodel_width

__all__ = ["OTPResult", "blend", "otp_extract"]


@dataclass(frozen=True)
class OTPResult:
    r"""Result of :func:`otp_extract`.

    Attributes
    ----------
    model : torch.nn.Module
        The personalised submodel :math:`\tilde W_i` (history's architecture, the global model's
        device and dtype). Send its state to client :math:`i` as model and SAR anchor.
    plans : mapping of str to Tensor
        Group -> plan :math:`T^{(\ell)}` of shape ``(n, m)`` (global x client units), rows summing to
        :math:`1/n`, columns to :math:`1/m`. Empty at a cold start.
    diagnostics : tuple of LayerDiagnostics
        Per group, in alignment order: transport cost :math:`\langle C, T\rangle`, plan entropy,
        marginal error, ``off_identity`` (the fraction of mass moved to a different index; ``nan``
        for rectangular plans), solver. Empty at a cold start.
    indices : mapping of str to Tensor
        Group -> hard index set for bookkeeping: client unit :math:`k` corresponds to global unit
        :math:`\arg\max_j T_{jk}` (the static slice's indices at a cold start). ``int64``, CPU.
    cold_start : bool
        ``True`` when there was no history and the static slice was returned.
    """

    model: nn.Module
    plans: Mapping[str, Tensor]
    diagnostics: tuple[LayerDiagnostics, ...]
    indices: Mapping[str, Tensor]
    cold_start: bool


def _like(module: nn.Module, ref: Tensor) -> nn.Module:
    """Return ``module`` if its tensors are on ``ref``'s device and dtype, else a converted copy."""
    r = reference(module)
    if r.device == ref.device and r.dtype == ref.dtype:
        return module
    return copy.deepcopy(module).to(device=ref.device, dtype=ref.dtype)


def _start(global_model: nn.Module, history: nn.Module | None, rate: float,
           spec: PermutationSpec) -> OTPResult | nn.Module:
    """Return the cold-start result, or the validated history on the global model's device/dtype."""
    rho = check_rate(rate)
    if history is None:
        sl = static_slice(global_model, rho, spec=spec)
        return OTPResult(model=sl.model, plans={}, diagnostics=(), indices=sl.indices, cold_start=True)
    history = _like(history, reference(global_model))
    global_state = global_model.state_dict()
    widths = check_compatible(global_state, history.state_dict(), spec, "history")
    expected = {g: submodel_width(n, rho) for g, n in spec.sizes(global_state).items()}
    if widths != expected:
        raise ValueError(f"history has group widths {widths}, but rate {rate} needs {expected}")
    return history


def blend(model: nn.Module, history: nn.Module, alpha: float) -> nn.Module:
    r"""Set ``model`` to :math:`\alpha W_{\text{model}} + (1-\alpha) W_{\text{history}}` in place.

    Every floating ``state_dict`` entry is blended (parameters and batch-norm running statistics: a
    convex combination, so variances stay positive); integer buffers keep ``model``'s. Returns
    ``model``; a no-op for ``alpha = 1``.
    """
    if alpha < 1.0:
        hist_state = history.state_dict()
        with torch.no_grad():
            blended = {k: torch.lerp(hist_state[k].to(v), v, alpha) if v.is_floating_point() else v
                       for k, v in model.state_dict().items()}
        model.load_state_dict(blended)
    return model


def otp_extract(
    global_model: nn.Module,
    history: nn.Module | None,
    rate: float,
    *,
    alpha: float = 0.5,
    method: Method = "exact",
    reg: float = 0.01,
    spec: PermutationSpec | None = None,
) -> OTPResult:
    r"""Extract client :math:`i`'s personalised submodel by layer-wise OT (SubFLOT's OTP).

    See the module docs for the algorithm and the normalisation. The final blend
    :math:`\tilde W = \alpha W_{\text{aligned}} + (1 - \alpha) W_i` is applied to every floating
    entry of the state (parameters and batch-norm running statistics, a convex combination, so
    variances stay positive); integer buffers come from the global model.

    Parameters
    ----------
    global_model : torch.nn.Module
        The global model :math:`W_G` (not modified); fixes device and dtype of the result.
    history : torch.nn.Module or None
        Client :math:`i`'s last uploaded submodel :math:`W_i` (not modified), of the global
        architecture with the widths :func:`~fedot.subflot.submodel_width` gives for ``rate``.
        ``None`` at a cold start: the HeteroFL static slice is returned.
    rate : float
        The client's pruning rate :math:`\rho_i \in [0, 1)`.
    alpha : float, default 0.5
        Fusion weight :math:`\alpha \in [0, 1]` of the aligned global model (1: the aligned global
        model alone; 0: the history alone).
    method : {"exact", "emd", "lsa", "sinkhorn"}, default "exact"
        OT solver (:func:`fedot.ot.assignment.transport_plan`); the paper uses exact OT.
    reg : float, default 0.01
        Sinkhorn regularisation relative to each layer's largest cost (``method="sinkhorn"``).
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    OTPResult
        The submodel, plans, per-group diagnostics and hard index sets.

    Raises
    ------
    ValueError
        If ``rate`` is not in :math:`[0, 1)`, ``alpha`` not in :math:`[0, 1]`, or the history is
        not the global architecture at the widths of ``rate``.

    Examples
    --------
    >>> import torch
    >>> from fedot.learning import build_model
    >>> from fedot.fusion.spec import permute
    >>> g = build_model("mlp", (6,), 3, hidden=8, seed=0)
    >>> hist = permute(g, {"1": torch.randperm(8, generator=torch.Generator().manual_seed(0))})
    >>> res = otp_extract(g, hist, 0.0)
    >>> x = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    >>> bool(torch.allclose(res.model(x), g(x), atol=1e-6))
    True
    """
    a = check_fraction(alpha, "alpha")
    spec = spec_for(global_model, spec)
    start = _start(global_model, history, rate, spec)
    if isinstance(start, OTPResult):
        return start
    res = align(global_model, start, spec=spec, method=method, reg=reg, input_side="sum")
    model = blend(res.model, start, a)
    indices = {g: plan.argmax(dim=0).cpu() for g, plan in res.plans.items()}
    return OTPResult(model=model, plans=dict(res.plans), diagnostics=res.diagnostics, indices=indices,
                     cold_start=False)
