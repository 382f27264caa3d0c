r"""ODE samplers for flow models: :math:`\dot x = v_\theta(t, x)` from :math:`t_0` to :math:`t_1`.

Fixed-step Euler, explicit midpoint and classical RK4, and an adaptive Dormand-Prince 5(4)
method with FSAL and a standard step-size controller (Hairer, Norsett & Wanner, 1993,
Sec. II.4 and II.5), written here to avoid a torchdiffeq dependency. Every call counts the
number of function evaluations (NFE).

References
----------
Hairer, Norsett, Wanner, "Solving ordinary differential equations I", 2nd ed., Springer 1993.
Dormand & Prince, "A family of embedded Runge-Kutta formulae", J. Comput. Appl. Math. 6, 1980.
Lipman et al., ICLR 2023; Tong et al., TMLR 2024 (Euler / dopri5 sampling of CFM models).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["METHODS", "STAGES", "SampleResult", "integrate", "nfe_to_steps"]

#: Integration methods accepted by :func:`integrate`.
METHODS: tuple[str, ...] = ("euler", "midpoint", "rk4", "dopri5")

#: Function evaluations per step of the fixed-step methods.
STAGES: dict[str, int] = {"euler": 1, "midpoint": 2, "rk4": 4}

Field = Callable[[Tensor, Tensor], Tensor]
_Stepper = Callable[[float, Tensor], Tensor]  # internal: time as a float, counts evaluations


@dataclass(frozen=True)
class SampleResult:
    """Result of :func:`integrate`.

    Attributes
    ----------
    x : Tensor
        State at ``t1``.
    nfe : int
        Number of evaluations of the model.
    trajectory : list of Tensor or None
        States at every step boundary including ``t0`` and ``t1`` (accepted steps only for
        dopri5), when requested.
    steps : int
        Number of (accepted) steps.
    times : list of float or None
        Times of the trajectory states, when requested.
    rejected_steps : int
        Rejected step attempts (dopri5 only; 0 otherwise).
    """

    x: Tensor
    nfe: int
    trajectory: list[Tensor] | None
    steps: int
    times: list[float] | None = None
    rejected_steps: int = 0


def nfe_to_steps(method: str, nfe: int) -> int:
    """Return the number of fixed steps giving exactly ``nfe`` model evaluations.

    Euler uses 1 evaluation per step (``steps = nfe``), midpoint 2 and RK4 4, so midpoint needs an
    even ``nfe`` and RK4 a multiple of 4.

    Parameters
    ----------
    method : {"euler", "midpoint", "rk4"}
        Fixed-step method.
    nfe : int
        Requested function evaluations, >= 1.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        For dopri5 (adaptive: NFE is an outcome), an unknown method, or an ``nfe`` that is not a
        positive multiple of the method's stage count.
    """
    if method not in STAGES:
        raise ValueError(f"nfe_to_steps needs a fixed-step method {tuple(STAGES)}, got {method!r}")
    stages = STAGES[method]
    if nfe < 1 or nfe % stages:
        raise ValueError(f"method {method!r} uses {stages} evaluations per step; nfe={nfe} is not a "
                         f"positive multiple of {stages}")
    return nfe // stages


# Dormand-Prince 5(4) tableau (Hairer et al. 1993, Table II.5.2).
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(b5 - b4 for b5, b4 in zip(_B5, _B4, strict=True))


def _fixed(f: _Stepper, x: Tensor, method: str, steps: int, t0: float, t1: float,
           traj: list[Tensor] | None) -> Tensor:
    h = (t1 - t0) / steps
    for i in range(steps):
        t = t0 + i * h
        if method == "euler":
            x = x + h * f(t, x)
        elif method == "midpoint":
            x = x + h * f(t + h / 2, x + (h / 2) * f(t, x))
        else:
            k1 = f(t, x)
            k2 = f(t + h / 2, x + (h / 2) * k1)
            k3 = f(t + h / 2, x + (h / 2) * k2)
            k4 = f(t + h, x + h * k3)
            x = x + (h / 6) * (k1 + 2 * k2 + 2 * k3 + k4)
        if traj is not None:
            traj.append(x)
    return x


def _rms(x: Tensor) -> float:
    return float(x.double().pow(2).mean().sqrt())


def _initial_step(f: _Stepper, t0: float, x0: Tensor, k1: Tensor, direction: float,
                  rtol: float, atol: float) -> float:
    """Choose the starting step size as in Hairer et al. (1993), Sec. II.4 (one extra evaluation)."""
    scale = atol + rtol * x0.abs()
    d0, d1 = _rms(x0 / scale), _rms(k1 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    k2 = f(t0 + direction * h0, x0 + direction * h0 * k1)
    d2 = _rms((k2 - k1) / scale) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
    return min(100 * h0, h1)


def _dopri5(f: _Stepper, x: Tensor, t0: float, t1: float, rtol: float, atol: float,
            traj: list[Tensor] | None, times: list[float] | None,
            max_steps: int) -> tuple[Tensor, int, int]:
    direction = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    t = t0
    k1 = f(t, x)
    h = min(_initial_step(f, t0, x, k1, direction, rtol, atol), span)
    accepted = rejected = 0
    while direction * (t1 - t) > 1e-12 * max(1.0, span):
        if accepted + rejected >= max_steps:
            raise RuntimeError(f"dopri5 did not reach t1={t1} within {max_steps} step attempts "
                               f"(t={t:.6g}, h={h:.3g}); loosen rtol/atol or raise max_steps")
        h = min(h, abs(t1 - t))
        hs = direction * h
        ks = [k1]
        x_new = x
        for i in range(1, 7):
            # the last stage is evaluated at the 5th-order solution (FSAL: _A[6] == _B5[:6])
            x_new = x + hs * sum(a * k for a, k in zip(_A[i], ks, strict=True) if a != 0.0)
            ks.append(f(t + _C[i] * hs, x_new))
        err = hs * sum(e * k for e, k in zip(_E, ks, strict=True) if e != 0.0)
        scale = atol + rtol * torch.maximum(x.abs(), x_new.abs())
        err_norm = _rms(err / scale)
        if not math.isfinite(err_norm):
            raise FloatingPointError(f"non-finite values during dopri5 integration at t={t:.6g}")
        if err_norm <= 1.0:
            t += hs
            x, k1 = x_new, ks[6]  # FSAL: the last stage is the first of the next step
            accepted += 1
            if traj is not None and times is not None:
                traj.append(x)
                times.append(t)
        else:
            rejected += 1
        factor = 10.0 if err_norm == 0.0 else min(10.0, max(0.2, 0.9 * err_norm ** (-1 / 5)))
        if err_norm > 1.0:
            factor = min(factor, 1.0)
        h = h * factor
        if h < 1e-14 * max(1.0, span):
            raise RuntimeError(f"dopri5 step size underflow at t={t:.6g}")
    return x, accepted, rejected


def integrate(
    model: nn.Module | Field,
    x0: Tensor,
    *,
    method: Literal["euler", "midpoint", "rk4", "dopri5"] = "euler",
    steps: int | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    return_trajectory: bool = False,
    t0: float = 0.0,
    t1: float = 1.0,
    max_steps: int = 100_000,
) -> SampleResult:
    r"""Integrate :math:`\dot x = v(t, x)` from ``t0`` to ``t1`` without gradients.

    Parameters
    ----------
    model : torch.nn.Module or callable
        Velocity field called as ``model(t, x)`` with ``t`` a ``(B,)`` tensor in the dtype and
        device of ``x``.
    x0 : Tensor
        Initial states ``(B, ...)``.
    method : {"euler", "midpoint", "rk4", "dopri5"}, default "euler"
        Fixed-step methods use ``steps`` uniform steps and exactly ``steps * (1, 2, 4)``
        evaluations (see :func:`nfe_to_steps`). ``"dopri5"`` is adaptive Dormand-Prince 5(4)
        with FSAL: ``nfe = 2 + 6 * (accepted + rejected)`` (one evaluation at ``t0``, one for
        the initial step-size heuristic, six per attempt).
    steps : int, optional
        Number of steps for fixed-step methods (required there; ignored by dopri5).
    rtol, atol : float, default 1e-5
        Tolerances of dopri5: a step is accepted when the RMS over all entries of
        ``err / (atol + rtol * max(|x|, |x_new|))`` is at most 1.
    return_trajectory : bool, default False
        Also return the states at every step boundary.
    t0, t1 : float, default 0.0 and 1.0
        Integration interval (``t1 < t0`` integrates backwards).
    max_steps : int, default 100000
        Cap on dopri5 step attempts.

    Returns
    -------
    SampleResult

    Raises
    ------
    ValueError
        For an unknown method or a missing/invalid ``steps``.
    RuntimeError
        If dopri5 does not reach ``t1`` within ``max_steps`` attempts.
    FloatingPointError
        If the state becomes non-finite.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if method != "dopri5" and (steps is None or steps < 1):
        raise ValueError(f"method {method!r} needs steps >= 1, got {steps!r}")
    if method == "dopri5" and not (rtol > 0 and atol > 0):
        raise ValueError(f"rtol and atol must be > 0, got rtol={rtol!r}, atol={atol!r}")
    nfe = 0

    def f(t: float, x: Tensor) -> Tensor:
        nonlocal nfe
        nfe += 1
        return model(torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device), x)

    traj: list[Tensor] | None = [x0] if return_trajectory else None
    times: list[float] | None = [float(t0)] if return_trajectory else None
    rejected = 0
    with torch.no_grad():
        if method == "dopri5":
            x, n_steps, rejected = _dopri5(f, x0, float(t0), float(t1), float(rtol), float(atol),
                                           traj, times, int(max_steps))
        else:
            assert steps is not None
            x = _fixed(f, x0, method, int(steps), float(t0), float(t1), traj)
            n_steps = int(steps)
            if times is not None:
                times = [t0 + (t1 - t0) * i / n_steps for i in range(n_steps + 1)]
    if not bool(torch.isfinite(x).all()):
        raise FloatingPointError(f"non-finite state after {method} integration")
    return SampleResult(x=x, nfe=nfe, trajectory=traj, steps=n_steps, times=times,
                        rejected_steps=rejected)
