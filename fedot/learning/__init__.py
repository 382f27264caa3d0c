"""Models, local training and evaluation for fedot clients.

Framework-agnostic: this package depends only on torch and numpy and never
imports the federated runtime (flwr, ray, grpc) or the configuration layer.
"""

from fedot.learning.device import resolve_device, set_torch_threads
from fedot.learning.models import MODELS, build_model, count_parameters
from fedot.learning.penalties import proximal_penalty
from fedot.learning.results import EvalResult, TrainResult
from fedot.learning.training import (
    OPTIMIZERS,
    TASKS,
    evaluate,
    train,
)

__all__ = [
    "MODELS",
    "OPTIMIZERS",
    "TASKS",
    "EvalResult",
    "TrainResult",
    "build_model",
    "count_parameters",
    "evaluate",
    "proximal_penalty",
    "resolve_device",
    "set_torch_threads",
    "train",
]
