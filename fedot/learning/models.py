"""Small PyTorch models used by the federated clients.

Every model is a flat :class:`torch.nn.Sequential` so that later code (for
example optimal-transport neuron alignment) can walk it layer by layer.
Initialisation is seeded explicitly and never touches the global RNG state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["MODELS", "build_model", "count_parameters"]

#: Names accepted by :func:`build_model`.
MODELS: tuple[str, ...] = ("logreg", "mlp", "cnn", "linear")

_VECTOR_MODELS: tuple[str, ...] = ("logreg", "mlp", "linear")


def _check_shape(input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """Validate and normalise an input shape (without batch dimension)."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 0 or any(s < 1 for s in shape):
        raise ValueError(
            f"input_shape must be a non-empty tuple of positive ints, got {input_shape!r}"
        )
    return shape


def _linear(input_shape: tuple[int, ...], num_outputs: int) -> nn.Sequential:
    """Flatten followed by a single affine layer."""
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_outputs))


def _mlp(input_shape: tuple[int, ...], num_outputs: int, hidden: int) -> nn.Sequential:
    """Two-hidden-layer ReLU perceptron."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(math.prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_outputs),
    )


def _conv_bn_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    """3x3 same-padding convolution, batch norm and ReLU."""
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def _cnn(input_shape: tuple[int, ...], num_outputs: int, hidden: int) -> nn.Sequential:
    """Small batch-normalised CNN for ``(C, H, W)`` images."""
    if len(input_shape) != 3:
        raise ValueError(
            f"model 'cnn' needs an image input_shape (C, H, W), got {input_shape!r}; "
            f"for vector input use one of {_VECTOR_MODELS}"
        )
    channels, height, width = input_shape
    if height < 2 or width < 2:
        raise ValueError(f"model 'cnn' needs H >= 2 and W >= 2, got input_shape {input_shape!r}")
    layers: list[nn.Module] = [
        *_conv_bn_relu(channels, 16),
        *_conv_bn_relu(16, 32),
        nn.MaxPool2d(2),
    ]
    out_channels, height, width = 32, height // 2, width // 2
    if min(input_shape[1:]) >= 28:
        layers += [*_conv_bn_relu(32, 64), nn.MaxPool2d(2)]
        out_channels, height, width = 64, height // 2, width // 2
    flat_dim = out_channels * height * width
    layers += [
        nn.Flatten(),
        nn.Linear(flat_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_outputs),
    ]
    return nn.Sequential(*layers)


def build_model(
    name: str,
    input_shape: tuple[int, ...],
    num_outputs: int,
    *,
    hidden: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Build a freshly initialised model on the CPU.

    Parameters
    ----------
    name : str
        One of :data:`MODELS`:

        ``"logreg"``
            ``Flatten`` + ``Linear(prod(input_shape), num_outputs)``.
        ``"linear"``
            Same architecture as ``"logreg"``; meant for regression with
            ``num_outputs=1``.
        ``"mlp"``
            ``Flatten, Linear(d, hidden), ReLU, Linear(hidden, hidden), ReLU,
            Linear(hidden, num_outputs)``.
        ``"cnn"``
            Two conv-BN-ReLU blocks (16 and 32 channels) and a 2x2 max-pool;
            for ``H, W >= 28`` one more conv-BN-ReLU-pool block with 64
            channels; then ``Flatten, Linear(flat, hidden), ReLU,
            Linear(hidden, num_outputs)``. Needs ``input_shape = (C, H, W)``.
    input_shape : tuple of int
        Shape of one example, without the batch dimension.
    num_outputs : int
        Number of classes (classification) or targets (regression).
    hidden : int, default 64
        Width of the hidden layers (``mlp``, ``cnn``); ignored by the linear models.
    seed : int, default 0
        Seed for the parameter initialisation. The global RNG state is left
        unchanged; the same seed gives bit-identical weights.

    Returns
    -------
    torch.nn.Module
        A flat :class:`torch.nn.Sequential` in training mode, on the CPU.

    Raises
    ------
    ValueError
        If ``name`` is unknown, ``hidden`` or ``num_outputs`` is below 1, or
        ``input_shape`` does not suit the model.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; expected one of {MODELS}")
    if hidden < 1:
        raise ValueError(f"hidden must be >= 1, got {hidden}")
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be >= 1, got {num_outputs}")
    shape = _check_shape(input_shape)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)  # CPU init; cheaper than torch.manual_seed
        if name in ("logreg", "linear"):
            model = _linear(shape, num_outputs)
        elif name == "mlp":
            model = _mlp(shape, num_outputs, hidden)
        else:
            model = _cnn(shape, num_outputs, hidden)
    return model


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Count the scalar parameters of a model.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    trainable_only : bool, default False
        Count only parameters with ``requires_grad=True``.

    Returns
    -------
    int
        Total number of parameter elements (buffers such as batch-norm running
        statistics are not counted).
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
