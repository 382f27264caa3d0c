r"""SubFLOT: server-side personalised submodel extraction and aggregation with optimal transport.

SubFLOT (Z. Jiang, Y. He, J. Chen, Y. Sun, "SubFLOT: Submodel Extraction for Efficient and
Personalized Federated Learning via Optimal Transport", CVPR 2026, arXiv:2604.06631) lets clients
with different resources train width-pruned submodels (pruning rate :math:`\rho_i \in [0, 1)`) of one
global model. Each round:

1. **OTP** (:func:`otp_extract`): the server aligns the global model to client :math:`i`'s last
   uploaded submodel (its *history*, a data-free proxy of its data) by layer-wise OT and blends:
   :math:`\tilde W_i = \alpha\, \mathrm{OT}(W_G \to W_i) + (1 - \alpha) W_i`. Cold start: the
   HeteroFL static slice (:func:`static_slice`).
2. **SAR** (:func:`sar_penalty`): the client trains on
   :math:`\mathcal{L}_{\text{CE}} + \lambda \rho_i \|W - \tilde W_i\|^2`.
3. **OTA** (:func:`ota_aggregate`): the server aligns every updated submodel into the previous
   global model by layer-wise OT and averages with weights :math:`p_i \propto |D_i|`.

Normalisation conventions (a plan :math:`T` from a source with marginal :math:`\alpha = T1` to a
target with marginal :math:`\beta = T^\top 1`): producer rows, biases and batch-norm tensors are
*averaged*, :math:`\operatorname{diag}(1/\beta) T^\top W`; consumer columns are *summed*,
:math:`W \operatorname{diag}(1/\alpha) T` (each source unit hands its whole outgoing weight to the
target units it is sent to). In OTP (global :math:`\to` client, merging) this makes a submodel whose
merged global units are duplicates compute the global function; in OTA (client :math:`\to` global,
splitting) it copies a client unit into the global units it covers and divides its outgoing weight
among the copies, which preserves the client's function exactly for split plans. Both conventions
reduce to the same permutation at :math:`\rho = 0`, so OTA(OTP(:math:`W_G`)) = :math:`W_G` there.
Implemented by :func:`fedot.fusion.align` with ``input_side="sum"``.

Baselines with position-based extraction and aggregation are included: HeteroFL
(:func:`static_slice`), FedRolex (:func:`rolling_slice`) and :func:`positional_aggregate`. Cost
accounting: :func:`submodel_cost`, :func:`forward_macs`, :func:`training_flops`.

This package uses torch, :mod:`fedot.fusion`, :mod:`fedot.ot` and :mod:`fedot.learning` only (no
Flower, no configuration layer).
"""

from fedot.subflot.accounting import SubmodelCost, forward_macs, submodel_cost, training_flops
from fedot.subflot.match import match_units, ota_match, otp_match
from fedot.subflot.ota import OTAResult, ota_aggregate
from fedot.subflot.otp import OTPResult, blend, otp_extract
from fedot.subflot.positional import Contribution, history_view, positional_aggregate
from fedot.subflot.sar import sar_penalty
from fedot.subflot.submodels import (
    SliceResult,
    build_submodel,
    permute_units,
    rolling_indices,
    rolling_slice,
    slice_model,
    slice_state,
    static_indices,
    static_slice,
    submodel_width,
    submodel_widths,
)

__all__ = [
    "Contribution",
    "OTAResult",
    "OTPResult",
    "SliceResult",
    "SubmodelCost",
    "blend",
    "build_submodel",
    "forward_macs",
    "history_view",
    "match_units",
    "ota_aggregate",
    "ota_match",
    "otp_extract",
    "otp_match",
    "permute_units",
    "positional_aggregate",
    "rolling_indices",
    "rolling_slice",
    "sar_penalty",
    "slice_model",
    "slice_state",
    "static_indices",
    "static_slice",
    "submodel_cost",
    "submodel_width",
    "submodel_widths",
    "training_flops",
]
