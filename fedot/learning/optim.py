r"""Optimizers whose state outlives one call: a server optimizer (FedOpt) and portable local state.

* :class:`ServerOptimizer` -- the server of per-step aggregation holds the optimizer. Each round
  it receives the aggregated gradient :math:`g_t = \sum_i \lambda_i \nabla L_i(\theta_t)` of the
  clients' weighted objective and applies one step of a torch optimizer whose state (Adam's
  moments and step count) persists across rounds, so federated training with one local step is
  centralised training of :math:`\sum_i \lambda_i L_i` with the same optimizer -- the server
  optimizer of FedOpt (Reddi et al., *Adaptive federated optimization*, ICLR 2021) fed with
  gradients instead of pseudo-gradients.
* :func:`optimizer_state_arrays` / :func:`load_optimizer_state` -- a local optimizer's state as a
  flat ``{name: tensor}`` dict (what a Flower ``ArrayRecord`` or ``torch.save`` holds) and back,
  so a client that takes several local steps per round keeps its Adam moments from one round to
  the next.

Plain torch; no federated runtime.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor

__all__ = [
    "SERVER_OPTIMIZERS",
    "ServerOptimizer",
    "load_optimizer_state",
    "make_optimizer",
    "optimizer_state_arrays",
]

#: Optimizers :class:`ServerOptimizer` and :func:`make_optimizer` accept.
SERVER_OPTIMIZERS: tuple[str, ...] = ("adam", "sgd")


def make_optimizer(name: str, params: list[Tensor], lr: float) -> torch.optim.Optimizer:
    """Plain Adam (torch defaults: betas (0.9, 0.999), eps 1e-8) or plain SGD (no momentum).

    Raises
    ------
    ValueError
        For an unknown name, ``lr <= 0`` or no parameters.
    """
    if name not in SERVER_OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {SERVER_OPTIMIZERS}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if not params:
        raise ValueError("the model has no trainable parameters")
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.SGD(params, lr=lr)


def optimizer_state_arrays(opt: torch.optim.Optimizer) -> dict[str, Tensor]:
    """Flatten an optimizer's per-parameter state to ``{"<index>.<field>": tensor}`` (CPU copies).

    Parameters are indexed in the order of ``opt.param_groups`` (torch's own ``state_dict``
    numbering); hyperparameters (``lr``, betas) are not state and are not included: the caller
    rebuilds the optimizer from its config. Scalars such as Adam's ``step`` become 0-d tensors.
    """
    out: dict[str, Tensor] = {}
    for index, state in opt.state_dict()["state"].items():
        for field, value in state.items():
            tensor = value if isinstance(value, Tensor) else torch.tensor(value)
            out[f"{index}.{field}"] = tensor.detach().cpu().clone()
    return out


def load_optimizer_state(opt: torch.optim.Optimizer, arrays: Mapping[str, Tensor]) -> None:
    """Restore :func:`optimizer_state_arrays` into ``opt`` (built on the same parameters, in order).

    Raises
    ------
    ValueError
        If a parameter index is out of range or a moment's shape differs from its parameter.
    """
    params = [p for group in opt.param_groups for p in group["params"]]
    state: dict[int, dict[str, Any]] = {}
    for key, value in arrays.items():
        index, _, field = key.partition(".")
        i = int(index)
        if not 0 <= i < len(params):
            raise ValueError(f"optimizer state for parameter {i}, but the optimizer has "
                             f"{len(params)} parameters")
        if value.ndim and value.shape != params[i].shape:
            raise ValueError(f"optimizer state {key!r} has shape {tuple(value.shape)}, parameter "
                             f"{i} has {tuple(params[i].shape)}")
        state.setdefault(i, {})[field] = value
    sd = opt.state_dict()
    sd["state"] = state
    opt.load_state_dict(sd)  # casts moments to each parameter's dtype and device


class ServerOptimizer:
    r"""A torch optimizer over named arrays held by the server; its state persists across rounds.

    ``step(arrays, grads)`` sets the parameters to ``arrays`` (the current global model), their
    ``.grad`` to ``grads`` and takes one optimizer step, returning the new arrays:
    :math:`\theta_{t+1} = \mathrm{opt}(\theta_t, g_t)`. With SGD this is
    :math:`\theta_t - \eta g_t`; with Adam the moments
    :math:`m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t` and
    :math:`v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2` live here, between rounds.

    Parameters
    ----------
    name : {"adam", "sgd"}
        Optimizer (see :func:`make_optimizer`).
    lr : float
        Learning rate.
    keys : sequence of str
        Names of the arrays this optimizer updates (e.g. the velocity field's keys); arrays with
        other names pass through :meth:`step` unchanged.
    """

    def __init__(self, name: Literal["adam", "sgd"], lr: float, keys: list[str]) -> None:
        if not keys:
            raise ValueError("ServerOptimizer needs at least one array key")
        self.name, self.lr, self.keys = name, lr, list(keys)
        self._params: dict[str, torch.nn.Parameter] | None = None
        self._opt: torch.optim.Optimizer | None = None
        self._pending: dict[str, Tensor] | None = None
        self.steps = 0

    def _ensure(self, arrays: Mapping[str, Tensor]) -> None:
        if self._params is None:
            self._params = {k: torch.nn.Parameter(arrays[k].detach().clone()) for k in self.keys}
            self._opt = make_optimizer(self.name, list(self._params.values()), self.lr)
            if self._pending is not None:
                load_optimizer_state(self._opt, self._pending)
                self._pending = None

    def step(self, arrays: Mapping[str, Tensor], grads: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Apply one step to ``arrays`` with gradient ``grads``; return all arrays (new copies).

        Raises
        ------
        KeyError
            If ``arrays`` or ``grads`` lacks one of :attr:`keys`.
        ValueError
            If a gradient's shape differs from its array's.
        """
        missing = [k for k in self.keys if k not in arrays or k not in grads]
        if missing:
            raise KeyError(f"server optimizer: no array or gradient for {missing[:3]}")
        self._ensure(arrays)
        assert self._params is not None and self._opt is not None
        with torch.no_grad():
            for k, p in self._params.items():
                g = grads[k]
                if g.shape != p.shape:
                    raise ValueError(f"gradient {k!r} has shape {tuple(g.shape)}, array has "
                                     f"{tuple(p.shape)}")
                p.copy_(arrays[k])
                p.grad = g.detach().to(dtype=p.dtype, device=p.device).clone()
        self._opt.step()
        self.steps += 1
        out = {k: v for k, v in arrays.items()}
        out.update({k: p.detach().clone() for k, p in self._params.items()})
        return out

    def state_dict(self) -> dict[str, Any]:
        """Return ``{"steps": int, "state": {name: tensor}}`` (``state`` empty before a step)."""
        if self._opt is not None:
            state = optimizer_state_arrays(self._opt)
        else:
            state = dict(self._pending or {})
        return {"steps": self.steps, "state": state}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; applied when the first step builds the optimizer."""
        self.steps = int(state["steps"])
        self._pending = dict(state["state"]) or None
        self._params, self._opt = None, None

