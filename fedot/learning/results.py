"""Result records returned by :func:`fedot.learning.train` and :func:`fedot.learning.evaluate`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TrainResult", "EvalResult"]


@dataclass(frozen=True)
class TrainResult:
    """Summary of a call to :func:`train`.

    Attributes
    ----------
    loss : float
        Mean training loss over the last epoch (the data term only, without
        any penalty), measured on each batch before its optimizer step.
    accuracy : float or None
        Training accuracy over the last epoch for classification, ``None`` for
        regression.
    num_examples : int
        Number of training examples.
    num_steps : int
        Number of optimizer steps taken.
    """

    loss: float
    accuracy: float | None
    num_examples: int
    num_steps: int


@dataclass(frozen=True)
class EvalResult:
    """Summary of a call to :func:`evaluate`.

    Attributes
    ----------
    loss : float
        Mean loss over all examples (cross-entropy or mean squared error).
    accuracy : float or None
        Accuracy for classification, ``None`` for regression.
    num_examples : int
        Number of evaluated examples.
    """

    loss: float
    accuracy: float | None
    num_examples: int
