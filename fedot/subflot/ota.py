r"""OTA: optimal-transport aggregation of width-pruned client submodels into the global model.

SubFLOT's server aggregation (Jiang, He, Chen, Sun, CVPR 2026): every updated client submodel
:math:`W_i^t` (:math:`m_\ell^i` units per hidden group) is aligned *into* the previous global model
:math:`W_G^t` (:math:`n_\ell` units) with the same progressive layer-wise OT as OTP, now with the
client as source and the global model as target, plans :math:`T_i'^{(\ell)} \in
\mathbb{R}^{m^i_\ell \times n_\ell}` with marginals :math:`\alpha = 1_m/m` (client) and
:math:`\beta = 1_n/n` (global), and the aligned models are averaged:

.. math::

    \mathcal{T}_i(W_i^t)^{(\ell)} &= \operatorname{diag}(1/\beta^{(\ell)})\, T_i'^{(\ell)\top}\,
        W_i^{t,(\ell)}\, \operatorname{diag}(1/\alpha^{(\ell-1)})\, T_i'^{(\ell-1)}
        \in \mathbb{R}^{n_\ell \times n_{\ell-1}}, \\
    W_G^{t+1} &= \sum_i p_i\, \mathcal{T}_i(W_i^t), \qquad p_i \propto |D_i|.

Normalisation (the same convention as OTP, :func:`fedot.fusion.align` with ``input_side="sum"``):
the output side averages the client units sent to a global unit, so a client unit spread over
:math:`r` global units is *copied* into each of them, and the input side divides the client unit's
outgoing weight among those copies (:math:`\operatorname{diag}(1/\alpha) T'` has unit row sums).
When :math:`n_\ell` is a multiple of :math:`m_\ell` the exact plan is a pure split (every global
unit fed by one client unit, by integrality of the transportation polytope), the input and output
maps compose to the identity, and :math:`\mathcal{T}_i(W_i)` computes exactly the client's function.
With averaging on the input side instead, every pre-activation would be scaled by :math:`n/m`.
Hence OTA(OTP(:math:`W_G`)) = :math:`W_G` at :math:`\rho = 0` (both maps are mutually inverse
permutations) and, as functions, whenever the merged global units are duplicates.

Batch-norm parameters and running statistics are aligned with the output side and averaged like
the weights; integer buffers come from the previous global model.

References
----------
.. [1] Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and Personalized
   Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631.
.. [2] S. P. Singh, M. Jaggi, "Model Fusion via Optimal Transport", NeurIPS 2020.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor, nn

from fedot.fusion.align import LayerDiagnostics, Method, fuse_detailed
from fedot.fusion.spec import PermutationSpec, spec_for
from fedot.subflot._common import check_compatible

__all__ = ["OTAResult", "ota_aggregate"]


@dataclass(frozen=True)
class OTAResult:
    """Result of :func:`ota_aggregate`.

    Attributes
    ----------
    model : torch.nn.Module
        The new global model (a copy of the previous global module: architecture, device, dtype,
        mode).
    weights : tuple of float
        The normalised averaging weights :math:`p_i` (sum to 1).
    diagnostics : tuple of tuple of LayerDiagnostics
        Per client, the per-group diagnostics of its alignment into the global model (transport
        cost, entropy, marginal error, ``off_identity``, solver).
    """

    model: nn.Module
    weights: tuple[float, ...]
    diagnostics: tuple[tuple[LayerDiagnostics, ...], ...]


def _normalise(weights: Sequence[float] | Tensor | None, k: int) -> tuple[float, ...]:
    if weights is None:
        return (1.0 / k,) * k
    w = [float(x) for x in (weights.tolist() if isinstance(weights, Tensor) else weights)]
    if len(w) != k:
        raise ValueError(f"weights has {len(w)} entries for {k} client models")
    if any(not math.isfinite(x) or x < 0 for x in w) or sum(w) <= 0:
        raise ValueError(f"weights must be finite, nonnegative and not all zero, got {w}")
    total = sum(w)
    return tuple(x / total for x in w)


def ota_aggregate(
    global_model: nn.Module,
    client_models: Sequence[nn.Module],
    weights: Sequence[float] | Tensor | None = None,
    *,
    method: Method = "exact",
    reg: float = 0.01,
    spec: PermutationSpec | None = None,
) -> OTAResult:
    r"""Aggregate client submodels by OT alignment into the global model and averaging (SubFLOT's OTA).

    See the module docs for the maps and the normalisation.

    Parameters
    ----------
    global_model : torch.nn.Module
        The previous global model :math:`W_G^t`: alignment target and architecture of the result
        (not modified, not averaged in).
    client_models : sequence of torch.nn.Module
        Updated client submodels :math:`W_i^t` of the global architecture, any widths (not
        modified); converted to the global model's device and dtype.
    weights : sequence of float or Tensor, optional
        Nonnegative weights, e.g. the clients' numbers of training examples (normalised to
        :math:`p_i`); uniform when ``None``.
    method : {"exact", "emd", "lsa", "sinkhorn"}, default "exact"
        OT solver (:func:`fedot.ot.assignment.transport_plan`).
    reg : float, default 0.01
        Sinkhorn regularisation relative to each layer's largest cost (``method="sinkhorn"``).
    spec : PermutationSpec, optional
        Default: :func:`fedot.fusion.spec.spec_for` ``(global_model)``.

    Returns
    -------
    OTAResult
        The new global model, the weights used and per-client diagnostics.

    Raises
    ------
    ValueError
        If ``client_models`` is empty, the weights are invalid, or a client is not the global
        architecture up to widths.

    Examples
    --------
    >>> import torch
    >>> from fedot.learning import build_model
    >>> from fedot.subflot import static_slice
    >>> g = build_model("mlp", (6,), 3, hidden=8, seed=0)
    >>> new = ota_aggregate(g, [static_slice(g, 0.5).model, g], [1.0, 3.0])
    >>> new.weights, new.model[1].weight.shape
    ((0.25, 0.75), torch.Size([8, 6]))
    """
    if len(client_models) == 0:
        raise ValueError("client_models must not be empty")
    p = _normalise(weights, len(client_models))
    spec = spec_for(global_model, spec)
    global_state = global_model.state_dict()
    for k, client in enumerate(client_models):
        check_compatible(global_state, client.state_dict(), spec, f"client model {k}")
    res = fuse_detailed(list(client_models), target=global_model, weights=list(p), spec=spec,
                        method=method, reg=reg, input_side="sum")
    return OTAResult(model=res.model, weights=p, diagnostics=res.diagnostics)
