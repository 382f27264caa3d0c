"""Model fusion modulo permutation symmetry: OTFusion, Git Re-Basin, and SAE-feature alignment.

Independently trained networks compute similar functions with differently ordered hidden units, so
their parameters must be aligned before they are averaged. This package provides

* :mod:`fedot.fusion.spec` — permutation specs (which tensors share a permutation), derived
  automatically for ``nn.Sequential`` MLPs/CNNs or written explicitly for residual models;
* :mod:`fedot.fusion.align` — OTFusion (Singh & Jaggi 2020): layer-wise OT alignment (weights or
  activations ground metric, exact or entropic plans, different widths) and multi-model fusion;
* :mod:`fedot.fusion.rebasin` — Git Re-Basin weight matching (Ainsworth et al. 2023), a baseline;
* :mod:`fedot.fusion.repair` — REPAIR (Jordan et al. 2023): renormalise the fused model's hidden
  units to the matched parents' statistics on a probe (undoes averaging's variance collapse);
* :mod:`fedot.fusion.sae` — sparse autoencoders per model and alignment of hidden spaces through
  OT-matched SAE features, which also recovers non-permutation (e.g. rotation) symmetries;
* :mod:`fedot.fusion.models` — small residual networks with their specs.

The OT math lives in :mod:`fedot.ot.assignment` (no ``torch.nn``).
"""

from fedot.fusion.align import (
    AlignmentResult,
    FusionResult,
    LayerDiagnostics,
    align,
    fuse,
    fuse_detailed,
)
from fedot.fusion.models import ResidualCNN, ResidualMLP
from fedot.fusion.rebasin import RebasinResult, weight_matching
from fedot.fusion.repair import repair
from fedot.fusion.sae import (
    SAEAlignmentResult,
    SAEResult,
    SparseAutoencoder,
    fuse_sae,
    sae_align,
    train_sae,
)
from fedot.fusion.spec import (
    PermutationSpec,
    conv_axes,
    derive_spec,
    linear_axes,
    norm_axes,
    permute,
    spec_for,
)

__all__ = [
    "AlignmentResult",
    "FusionResult",
    "LayerDiagnostics",
    "PermutationSpec",
    "RebasinResult",
    "ResidualCNN",
    "ResidualMLP",
    "SAEAlignmentResult",
    "SAEResult",
    "SparseAutoencoder",
    "align",
    "conv_axes",
    "derive_spec",
    "fuse",
    "fuse_detailed",
    "fuse_sae",
    "linear_axes",
    "norm_axes",
    "permute",
    "repair",
    "sae_align",
    "spec_for",
    "train_sae",
    "weight_matching",
]
