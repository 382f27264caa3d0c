"""Local training and evaluation on plain numpy arrays.

No ``DataLoader``: the data are converted once to tensors on the target device
and mini-batches are taken by index slicing, which keeps small federated
clients fast. Shuffling uses a local :class:`torch.Generator`; the global RNG
state is forked and seeded for the duration of training, so the same seed gives
bit-identical results on the CPU and the caller's RNG state is left untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fedot.learning.device import resolve_device
from fedot.learning.results import EvalResult, TrainResult

__all__ = ["TASKS", "OPTIMIZERS", "train", "evaluate"]

logger = logging.getLogger(__name__)

#: Accepted values of the ``task`` argument.
TASKS: tuple[str, ...] = ("classification", "regression")
#: Accepted values of the ``optimizer`` argument.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {TASKS}")


def _to_tensors(
    x: np.ndarray, y: np.ndarray, task: str, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate the arrays and convert them once to tensors on ``device``."""
    x_arr = np.ascontiguousarray(x, dtype=np.float32)
    y_arr = np.asarray(y)
    if x_arr.ndim < 1 or x_arr.shape[0] == 0:
        raise ValueError(f"empty data: x has shape {x_arr.shape}")
    if y_arr.ndim < 1 or y_arr.shape[0] != x_arr.shape[0]:
        raise ValueError(
            f"x and y disagree on the number of examples: {x_arr.shape} vs {y_arr.shape}"
        )
    if task == "classification":
        if y_arr.ndim != 1:
            raise ValueError(f"classification labels must be 1-D, got shape {y_arr.shape}")
        labels = y_arr.astype(np.int64)
        if not np.array_equal(labels, y_arr) or labels.min() < 0:
            raise ValueError("classification labels must be non-negative integers")
        y_arr = labels
    else:
        if y_arr.ndim > 2:
            raise ValueError(f"regression targets must be 1-D or 2-D, got shape {y_arr.shape}")
        y_arr = np.ascontiguousarray(y_arr, dtype=np.float32)
    # from_numpy shares memory; copy read-only inputs to avoid torch's warning.
    if not x_arr.flags.writeable:
        x_arr = x_arr.copy()
    if not y_arr.flags.writeable:
        y_arr = y_arr.copy()
    return torch.from_numpy(x_arr).to(device), torch.from_numpy(y_arr).to(device)


def _batch_loss(
    out: torch.Tensor, target: torch.Tensor, task: str, reduction: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return the loss and, for classification, the number of correct predictions."""
    if task == "classification":
        if out.ndim != 2:
            raise ValueError(f"classification needs (batch, classes) outputs, got {out.shape}")
        loss = F.cross_entropy(out, target, reduction=reduction)
        return loss, (out.argmax(dim=1) == target).sum()
    out = out.reshape(out.shape[0], -1)
    if target.ndim == 1:
        if out.shape[1] != 1:
            raise ValueError(f"1-D regression targets need one output per example, got {out.shape}")
        out = out[:, 0]
    elif out.shape != target.shape:
        raise ValueError(f"output shape {tuple(out.shape)} != target shape {tuple(target.shape)}")
    return F.mse_loss(out, target, reduction=reduction), None


def _make_optimizer(
    params: list[nn.Parameter], optimizer: str, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    if optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if momentum != 0.0:
        logger.debug("momentum=%s is ignored by adam", momentum)
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _state_is_finite(model: nn.Module) -> bool:
    tensors = [p.detach() for p in model.parameters()]
    tensors += [b for b in model.buffers() if b.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all())


def train(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str = "classification",
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 0.1,
    optimizer: str = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    seed: int = 0,
    device: torch.device | str = "cpu",
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` in place with mini-batch gradient descent.

    Parameters
    ----------
    model : torch.nn.Module
        The model; it is moved to ``device`` (in place) and left in eval mode.
    x : numpy.ndarray
        Inputs, shape ``(n, *input_shape)``; converted to float32.
    y : numpy.ndarray
        Integer labels of shape ``(n,)`` for classification; float targets of
        shape ``(n,)`` or ``(n, k)`` for regression.
    task : {"classification", "regression"}, default "classification"
        Cross-entropy or mean squared error loss (for 1-D targets the model
        output is squeezed to ``(n,)``).
    epochs : int, default 1
        Number of passes over the data (>= 1).
    batch_size : int, default 32
        Mini-batch size (>= 1); the last batch of an epoch may be smaller.
    lr : float, default 0.1
        Learning rate (> 0).
    optimizer : {"sgd", "adam"}, default "sgd"
        Optimizer; ``momentum`` only applies to ``"sgd"``.
    momentum : float, default 0.0
        SGD momentum (>= 0).
    weight_decay : float, default 0.0
        L2 weight decay passed to the optimizer (>= 0).
    seed : int, default 0
        Seed for the per-epoch shuffling and for any stochastic layer.
    device : torch.device or str, default "cpu"
        Where to train; see :func:`fedot.learning.resolve_device`.
    penalty : callable, optional
        ``penalty(model) -> scalar tensor`` added to the loss that is
        minimised (e.g. :func:`fedot.learning.proximal_penalty`); it is not
        included in the reported loss.

    Returns
    -------
    TrainResult
        Last-epoch loss and accuracy, number of examples and of steps.

    Raises
    ------
    ValueError
        On empty or inconsistent data, or an invalid argument.
    FloatingPointError
        If the loss (or the model state after an epoch) becomes non-finite;
        the message names the epoch and step.
    """
    _check_task(task)
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {OPTIMIZERS}")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if not momentum >= 0 or not weight_decay >= 0:
        raise ValueError(f"momentum and weight_decay must be >= 0, got {momentum}, {weight_decay}")
    dev = resolve_device(device)
    xt, yt = _to_tensors(x, y, task, dev)
    n = int(xt.shape[0])

    model.to(dev)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters")
    opt = _make_optimizer(params, optimizer, lr, momentum, weight_decay)
    shuffle = torch.Generator()
    shuffle.manual_seed(seed)
    # torch.manual_seed below seeds every visible CUDA device, so fork them all.
    cuda_devices = list(range(torch.cuda.device_count())) if dev.type == "cuda" else []

    steps = 0
    loss_sum = 0.0
    correct = 0.0
    with torch.random.fork_rng(devices=cuda_devices):
        # Seed only the generators in use: torch.manual_seed also (lazily) seeds every CUDA device,
        # which costs ~1 ms per call even on CPU-only machines.
        torch.default_generator.manual_seed(seed)
        if dev.type == "cuda":
            torch.cuda.manual_seed_all(seed)
        for epoch in range(1, epochs + 1):
            perm = torch.randperm(n, generator=shuffle).to(dev)
            loss_sum, correct = 0.0, 0.0
            for start in range(0, n, batch_size):
                idx = perm[start : start + batch_size]
                opt.zero_grad(set_to_none=True)
                loss, n_correct = _batch_loss(model(xt[idx]), yt[idx], task)
                objective = loss if penalty is None else loss + penalty(model)
                stats = [loss.detach(), objective.detach()]
                if n_correct is not None:
                    stats.append(n_correct.to(loss.dtype))
                values = torch.stack(stats).tolist()  # one device sync per step
                if not (np.isfinite(values[0]) and np.isfinite(values[1])):
                    model.eval()
                    raise FloatingPointError(
                        f"non-finite training loss (loss={values[0]}, objective={values[1]}) "
                        f"at epoch {epoch}/{epochs}, step {steps + 1}; "
                        "lower the learning rate or check the inputs"
                    )
                objective.backward()
                opt.step()
                steps += 1
                loss_sum += values[0] * int(idx.shape[0])
                if n_correct is not None:
                    correct += values[2]
            if not _state_is_finite(model):
                model.eval()
                raise FloatingPointError(
                    f"model parameters became non-finite during epoch {epoch}/{epochs} "
                    f"(after step {steps})"
                )
    model.eval()
    accuracy = correct / n if task == "classification" else None
    return TrainResult(loss=loss_sum / n, accuracy=accuracy, num_examples=n, num_steps=steps)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str = "classification",
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> EvalResult:
    """Evaluate ``model`` without gradient tracking.

    Parameters
    ----------
    model : torch.nn.Module
        The model; it is moved to ``device`` and put in eval mode.
    x : numpy.ndarray
        Inputs, shape ``(n, *input_shape)``.
    y : numpy.ndarray
        Labels or targets, as for :func:`train`.
    task : {"classification", "regression"}, default "classification"
        Selects the loss and whether accuracy is computed.
    batch_size : int, default 256
        Evaluation batch size (>= 1).
    device : torch.device or str, default "cpu"
        Where to evaluate; see :func:`fedot.learning.resolve_device`.

    Returns
    -------
    EvalResult
        Mean loss over all examples (over all target elements for regression),
        accuracy (``None`` for regression) and the number of examples.

    Raises
    ------
    ValueError
        On empty or inconsistent data, or an invalid argument.
    """
    _check_task(task)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = resolve_device(device)
    xt, yt = _to_tensors(x, y, task, dev)
    n = int(xt.shape[0])
    model.to(dev)
    model.eval()
    loss_total = torch.zeros((), dtype=torch.float64, device=dev)
    correct_total = torch.zeros((), dtype=torch.int64, device=dev)
    for start in range(0, n, batch_size):
        loss, n_correct = _batch_loss(
            model(xt[start : start + batch_size]), yt[start : start + batch_size], task, "sum"
        )
        loss_total += loss.double()
        if n_correct is not None:
            correct_total += n_correct
    denom = yt.numel()
    accuracy = float(correct_total) / n if task == "classification" else None
    return EvalResult(loss=float(loss_total) / denom, accuracy=accuracy, num_examples=n)
