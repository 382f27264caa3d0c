"""Flow matching for federated generative modelling (FFM-vanilla, FFM-LOT, FFM-GOT).

Composable pieces: probability *paths* (:class:`LinearPath`, :class:`GaussianPath`), *couplings*
(:class:`IndependentCoupling`, :class:`ExactOTCoupling`, :class:`EntropicOTCoupling`,
:class:`PotentialCoupling`) combined in :func:`flow_matching_loss`; small velocity fields and
dual potentials; the semi-dual objective with an approximate c-transform; local training loops;
ODE samplers; and evaluation metrics. torch, numpy, scipy and POT only: no federated runtime.

References
----------
Lipman et al., "Flow matching for generative modeling", ICLR 2023.
Liu et al., "Flow straight and fast: learning to generate and transfer data with rectified flow",
ICLR 2023.
Tong et al., "Improving and generalizing flow-based generative models with minibatch optimal
transport", TMLR 2024.
Wang, Dong, Selim, Zavlanos, Johansson, "Federated flow matching", arXiv 2509.21250, 2025.
"""

from fedot.learning.flow.couplings import (
    Coupling,
    CouplingResult,
    EntropicOTCoupling,
    ExactOTCoupling,
    IndependentCoupling,
    PotentialCoupling,
)
from fedot.learning.flow.loss import (
    FlowLossResult,
    FlowTargets,
    flow_matching_loss,
    flow_matching_targets,
    per_sample_loss,
)
from fedot.learning.flow.metrics import (
    frechet_distance,
    path_length_ratio,
    sliced_w2,
    straightness,
    w2_exact,
)
from fedot.learning.flow.models import (
    PotentialConv8,
    PotentialConv28,
    PotentialMLP,
    TimeEmbedding,
    VelocityConv8,
    VelocityConv28,
    VelocityMLP,
)
from fedot.learning.flow.paths import GaussianPath, LinearPath, ProbabilityPath
from fedot.learning.flow.samplers import METHODS, SampleResult, integrate, nfe_to_steps
from fedot.learning.flow.semidual import (
    CTransformResult,
    SemiDualResult,
    c_transform,
    quadratic_cost,
    semidual_objective,
)
from fedot.learning.flow.training import (
    OPTIMIZERS,
    FlowTrainResult,
    PotentialTrainResult,
    StepGradient,
    flow_matching_gradient,
    flow_step_gradient,
    potential_step_gradient,
    semidual_gradient,
    train_flow,
    train_potential,
)

__all__ = [
    "METHODS",
    "OPTIMIZERS",
    "CTransformResult",
    "Coupling",
    "CouplingResult",
    "EntropicOTCoupling",
    "ExactOTCoupling",
    "FlowLossResult",
    "FlowTargets",
    "StepGradient",
    "FlowTrainResult",
    "GaussianPath",
    "IndependentCoupling",
    "LinearPath",
    "PotentialConv8",
    "PotentialConv28",
    "PotentialCoupling",
    "PotentialMLP",
    "PotentialTrainResult",
    "ProbabilityPath",
    "SampleResult",
    "SemiDualResult",
    "TimeEmbedding",
    "VelocityConv8",
    "VelocityConv28",
    "VelocityMLP",
    "c_transform",
    "flow_matching_gradient",
    "flow_matching_targets",
    "flow_step_gradient",
    "per_sample_loss",
    "potential_step_gradient",
    "flow_matching_loss",
    "frechet_distance",
    "integrate",
    "nfe_to_steps",
    "path_length_ratio",
    "quadratic_cost",
    "semidual_gradient",
    "semidual_objective",
    "sliced_w2",
    "straightness",
    "train_flow",
    "train_potential",
    "w2_exact",
]
