r"""OTP and OTA with *matched* units: OT plans rounded to one-to-one assignments.

The barycentric maps of :func:`~fedot.subflot.otp_extract` (merge global units into a client unit)
and :func:`~fedot.subflot.ota_aggregate` (split a client unit over the global units it covers) use
the plans' full mass. With uniform marginals and :math:`m < n` that mass must cover *every* global
unit: OTA then copies each client unit into :math:`n/m` global units and overwrites the units the
client never held, so after a few rounds the global model fills with duplicates of the pruned
clients' units (measured in ``docs/subflot.md``: global accuracy drops far below HeteroFL's).

This module keeps SubFLOT's progressive layer-wise matching on incoming weights but solves, per
hidden group :math:`\ell`, the *assignment* form of the transport problem — OT between the
:math:`m_\ell` small-side units and :math:`m_\ell` of the :math:`n_\ell` large-side units, each
matched once (``scipy.optimize.linear_sum_assignment``):

.. math::

    \sigma_\ell = \arg\min_{\sigma \text{ injective}} \sum_{k=1}^{m_\ell}
        \bigl\| w^{\text{small}}_k - w^{\text{big}}_{\sigma(k)}[\sigma_{<\ell}] \bigr\|_2^2,

where :math:`w_k` concatenates every tensor produced by unit :math:`k` (weight row, bias,
batch-norm parameters and statistics) and :math:`[\sigma_{<\ell}]` restricts the large model's
input axes to the units already matched in earlier groups (the progressive correction of OTP):

* **OTP, matched** (:func:`otp_match`): client unit :math:`k` receives global unit
  :math:`\sigma(k)` exactly (rows, biases, batch-norm statistics, and the next layer's columns at
  the matched inputs), then the blend :math:`\alpha W_{\text{matched}} + (1-\alpha) W_i` with the
  history as in the paper. No unit is averaged with another.
* **OTA, matched** (:func:`ota_match`): client unit :math:`k` is written back at global unit
  :math:`\sigma_i(k)` and every global coordinate is averaged over the clients that hold it
  (:func:`~fedot.subflot.positional_aggregate`); coordinates no client holds keep their value.
  This is HeteroFL's aggregation with OT-found positions instead of fixed ones.

At :math:`\rho = 0` with a permuted history the assignment is the permutation (zero cost), and an
untrained static slice is matched back to its own positions, so both maps return their input
unchanged (the tests check it).

References
----------
.. [1] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT", CVPR 2026, arXiv:2604.06631.
.. [2] E. Diao, J. Ding, V. Tarokh, "HeteroFL", ICLR 2021, arXiv:2010.01264.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

from fedot.fusion.align import LayerDiagnostics
from fedot.fusion.spec import PermutationSpec, spec_for, take_axis
from fedot.subflot._common import check_compatible, check_fraction, reference
from fedot.subflot.ota import OTAResult, _normalise
from fedot.subflot.otp import OTPResult, _like, _start, blend
from fedot.subflot.positional import positional_aggregate
from fedot.subflot.submodels import slice_model

__all__ = ["match_units", "ota_match", "otp_match"]


def match_units(
    small: Mapping[str, Tensor], big: Mapping[str, Tensor], spec: PermutationSpec
) -> tuple[dict[str, Tensor], tuple[LayerDiagnostics, ...]]:
    """Match every unit of ``small`` to a distinct unit of ``big``, group by group (see module docs).

    Parameters
    ----------
    small, big : mapping of str to Tensor
        ``state_dict`` s of the same architecture; every group of ``small`` is at most as wide as
        in ``big``.
    spec : PermutationSpec
        Groups and axes; groups are matched in ``spec.order`` (inputs first).

    Returns
    -------
    (dict of str to Tensor, tuple of LayerDiagnostics)
        Group -> ``int64`` CPU tensor ``sigma`` of shape ``(m,)`` (small unit ``k`` is big unit
        ``sigma[k]``, entries distinct); per group the mean squared distance of the matched pairs
        (``cost``) and the fraction of units not matched to their own index (``off_identity``).

    Raises
    ------
    ValueError
        If a group of ``small`` is wider than in ``big``, or a producer reads a group that is
        matched later in ``spec.order``.
    """
    n_big, n_small = spec.sizes(big), spec.sizes(small)
    sigma: dict[str, Tensor] = {}
    diagnostics = []
    for g in spec.order:
        if n_small[g] > n_big[g]:
            raise ValueError(f"group {g!r}: {n_small[g]} units do not fit into {n_big[g]}")
        fs, fb = [], []
        for key in spec.producers(g):
            tb, ts = big[key], small[key]
            if not tb.is_floating_point():
                continue
            for axis, h in enumerate(spec.axes[key][1:], start=1):
                if h is None or h == g:
                    continue
                if h not in sigma:
                    raise ValueError(f"{key!r} reads group {h!r}, which is matched after {g!r}")
                tb = take_axis(tb, axis, sigma[h].to(tb.device), n_big[h])
            fb.append(tb.detach().reshape(tb.shape[0], -1).to("cpu", torch.float64))
            fs.append(ts.detach().reshape(ts.shape[0], -1).to("cpu", torch.float64))
        cost = torch.cdist(torch.cat(fs, 1), torch.cat(fb, 1)).square()
        if not torch.isfinite(cost).all():
            raise ValueError(f"group {g!r}: non-finite matching cost (non-finite weights)")
        rows, cols = linear_sum_assignment(cost.numpy())
        idx = torch.empty(n_small[g], dtype=torch.int64)
        idx[torch.as_tensor(rows, dtype=torch.int64)] = torch.as_tensor(cols, dtype=torch.int64)
        sigma[g] = idx
        matched = cost[torch.arange(n_small[g]), idx]
        off = float((idx != torch.arange(n_small[g])).double().mean())
        diagnostics.append(LayerDiagnostics(
            group=g, n_model=n_small[g], n_target=n_big[g], cost=float(matched.mean()),
            entropy=float("nan"), off_identity=off, marginal_error=0.0, method="assignment"))
    return sigma, tuple(diagnostics)


def otp_match(
    global_model: nn.Module,
    history: nn.Module | None,
    rate: float,
    *,
    alpha: float = 0.5,
    spec: PermutationSpec | None = None,
) -> OTPResult:
    r"""OTP with matched units: the global units assigned to the history's, blended with it.

    Parameters
    ----------
    global_model : torch.nn.Module
        The global model (not modified); fixes device and dtype of the result.
    history : torch.nn.Module or None
        The client's last uploaded submodel at the widths of ``rate``; ``None``: cold start, the
        static slice.
    rate : float
        Pruning rate in :math:`[0, 1)`.
    alpha : float, default 0.5
        Weight of the matched global units in the blend with the history.
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    OTPResult
        ``model`` = :math:`\alpha\, W_G[\sigma] + (1-\alpha) W_i`; ``indices`` = :math:`\sigma` per
        group; ``plans`` = the assignments as ``n x m`` 0/1 matrices scaled to mass :math:`1/m`
        per client unit; ``diagnostics`` from :func:`match_units`.
    """
    a = check_fraction(alpha, "alpha")
    spec = spec_for(global_model, spec)
    start = _start(global_model, history, rate, spec)
    if isinstance(start, OTPResult):
        return start
    global_state = global_model.state_dict()
    sigma, diagnostics = match_units(start.state_dict(), global_state, spec)
    model = blend(slice_model(global_model, sigma, spec=spec), start, a)
    sizes = spec.sizes(global_state)
    plans = {g: _plan(idx, sizes[g]).to(reference(global_model).device)
             for g, idx in sigma.items()}
    return OTPResult(model=model, plans=plans, diagnostics=diagnostics, indices=sigma,
                     cold_start=False)


def _plan(idx: Tensor, n: int) -> Tensor:
    """Return the assignment ``idx`` (m,) as an ``n x m`` plan, mass ``1/m`` per matched pair."""
    m = len(idx)
    plan = torch.zeros(n, m, dtype=torch.float64)
    plan[idx, torch.arange(m)] = 1.0 / m
    return plan


def ota_match(
    global_model: nn.Module,
    client_models: Sequence[nn.Module],
    weights: Sequence[float] | Tensor | None = None,
    *,
    spec: PermutationSpec | None = None,
) -> tuple[OTAResult, list[dict[str, Tensor]]]:
    r"""OTA with matched units: each client unit written back at its assigned global unit.

    Each client is matched to ``global_model`` by :func:`match_units`; its own tensors are then
    averaged into the global coordinates they were matched to
    (:func:`~fedot.subflot.positional_aggregate`, weights :math:`p_i`); coordinates no client holds
    keep the previous global value.

    Returns
    -------
    (OTAResult, list of dict of str to Tensor)
        The new global model, weights and per-client diagnostics; the per-client index sets.

    Raises
    ------
    ValueError
        If ``client_models`` is empty, the weights are invalid, or a client is not the global
        architecture up to widths.
    """
    if len(client_models) == 0:
        raise ValueError("client_models must not be empty")
    p = _normalise(weights, len(client_models))
    spec = spec_for(global_model, spec)
    global_state = global_model.state_dict()
    ref = reference(global_model)
    contributions, indices, diagnostics = [], [], []
    for k, client in enumerate(client_models):
        state = _like(client, ref).state_dict()
        check_compatible(global_state, state, spec, f"client model {k}")
        sigma, diag = match_units(state, global_state, spec)
        contributions.append((state, sigma, p[k]))
        indices.append(sigma)
        diagnostics.append(diag)
    model = copy.deepcopy(global_model)
    model.load_state_dict(positional_aggregate(global_state, contributions, spec=spec))
    return OTAResult(model=model, weights=p, diagnostics=tuple(diagnostics)), indices
