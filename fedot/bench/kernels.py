"""OT kernels at the sizes fedot's schemes use: exact plans, Sinkhorn, minibatch couplings.

Three families, each timed with the alternatives interleaved and medians over repeats
(:func:`fedot.bench.timing.interleaved_medians`), after one interleaved warm-up round per row (a
row whose warm-up round exceeds ``row_budget_s`` is reported from that round alone):

* ``exact``: an ``n x n`` squared-Euclidean cost between two random point clouds in 64-D (float32,
  built with :func:`fedot.ot.pairwise_sq_dists` on the device; its own time is reported too).
  :func:`fedot.ot.transport_plan` ``(method="exact")`` on uniform marginals (the assignment solver,
  from the device tensor, plan built back on the device) against POT's network simplex ``ot.emd``
  and the bare ``scipy.optimize.linear_sum_assignment`` (the floor), both on the float64 numpy cost.
  ``ot.emd`` is skipped (``None``) above ``n = 1024`` when one probe call exceeds ``emd_max_s``.
  The optimal costs of the three solvers are recorded: they must agree (tied optima aside).
* ``sinkhorn``: entropic OT on the same kind of cost normalised to max 1, for two regularisations:
  :func:`fedot.ot.transport_plan` ``(method="sinkhorn")`` (it switches to the log domain when
  ``ptp(C) / reg > 30``) against POT's ``ot.sinkhorn`` in the scaling and in the log domain on the
  same torch tensors (POT's torch backend keeps the device), with the same stopping threshold and
  iteration cap as fedot's defaults. Iterations (POT's last loop index + 1, fedot's convention)
  and the L1 marginal error of every plan are kept: a fast but diverged plan shows as a large (or
  missing, when non-finite) error.
* ``coupling``: one minibatch coupling of :mod:`fedot.learning.flow.couplings` (independent, exact
  OT, entropic OT with reg 0.05) against one flow-matching training step of a
  :class:`~fedot.learning.flow.VelocityMLP` (hidden 128, 3 layers: the defaults of fedot's
  flow-matching runs): :func:`~fedot.learning.flow.flow_matching_loss` with the independent
  coupling (sample ``t``, the linear path and its target, forward, loss), backward, one Adam
  step. Data: the 8-Gaussians toy density in 2-D, digits scaled to [-1, 1] in 64-D (pixel
  vectors), a standard normal in any other dimension; source batches ``N(0, I)``.

All randomness comes from explicit generators seeded from ``seed``; the global RNGs are untouched.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import ot
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from fedot.bench.timing import interleaved_medians, sync_device
from fedot.data import load_dataset
from fedot.learning.device import resolve_device
from fedot.learning.flow import (
    EntropicOTCoupling,
    ExactOTCoupling,
    IndependentCoupling,
    LinearPath,
    VelocityMLP,
    flow_matching_loss,
)
from fedot.ot import pairwise_sq_dists, transport_plan

__all__ = ["bench_kernels", "kernel_lines"]

#: Exact-OT problem sizes (full run, ``quick`` run).
EXACT_SIZES: tuple[int, ...] = (256, 512, 1024, 2048)
QUICK_EXACT_SIZES: tuple[int, ...] = (256, 512)
#: Sinkhorn problem sizes (full run, ``quick`` run) and regularisations (cost normalised to max 1).
SINKHORN_SIZES: tuple[int, ...] = (256, 1024, 2048)
QUICK_SINKHORN_SIZES: tuple[int, ...] = (256,)
SINKHORN_REGS: tuple[float, ...] = (0.05, 0.005)
#: Minibatch sizes (full run, ``quick`` run) and data dimensions of the coupling benchmark.
BATCH_SIZES: tuple[int, ...] = (64, 256, 1024)
QUICK_BATCH_SIZES: tuple[int, ...] = (64, 256)
DIMS: tuple[int, ...] = (2, 64)

#: Dimension of the point clouds of the exact and Sinkhorn benchmarks.
POINT_DIM = 64
#: ``ot.emd`` is probed once above this size and skipped when the probe takes longer than
#: ``emd_max_s``.
EMD_PROBE_ABOVE = 1024
#: Simplex iteration cap of the POT arm: fedot's own (``transport_plan(method="emd")`` and
#: :class:`~fedot.learning.flow.ExactOTCoupling`); POT's default 100000 stops early at n = 2048.
EMD_ITER_MAX = 1_000_000
#: Sinkhorn iteration cap of every arm (fedot's default).
SINKHORN_MAX_ITER = 10_000
#: Regularisation of the entropic coupling (relative to the cost normalised to max 1).
ENTROPIC_REG = 0.05
#: Velocity model and optimizer of the training step (fedot's flow-matching defaults).
HIDDEN, LAYERS, LR = 128, 3, 2e-3


def _timed(arms: dict[str, Callable[[], object]], repeats: int,
           budget_s: float) -> tuple[dict[str, float], int]:
    """Interleaved medians of ``arms``, after one interleaved warm-up round.

    A row whose warm-up round takes longer than ``budget_s`` in all is reported from that round
    alone. Returns the medians and the number of rounds they come from.
    """
    first = interleaved_medians(arms, 1)
    if repeats <= 1 or sum(first.values()) > budget_s:
        return first, 1
    return interleaved_medians(arms, repeats), repeats


def _finite(value: float) -> float | None:
    """``float(value)``, or ``None`` when it is not finite (keeps the result strict JSON)."""
    value = float(value)
    return value if math.isfinite(value) else None


def _clouds(n: int, dim: int, device: torch.device, seed: int, tag: int) -> tuple[Tensor, Tensor]:
    """Two independent standard-normal clouds ``(n, dim)``, float32, on ``device``."""
    rng = np.random.default_rng((seed, tag, n))
    x = rng.standard_normal((n, dim), dtype=np.float32)
    y = rng.standard_normal((n, dim), dtype=np.float32)
    return torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)


def _marginal_error(plan: Tensor, a: Tensor, b: Tensor) -> float | None:
    r""":math:`\|T 1 - a\|_1 + \|T^\top 1 - b\|_1` (fedot's definition); ``None`` if not finite."""
    err = (plan.sum(1) - a).abs().sum() + (plan.sum(0) - b).abs().sum()
    return _finite(float(err))


def _exact_row(n: int, device: torch.device, seed: int, repeats: int, emd_max_s: float,
               budget_s: float) -> dict[str, Any]:
    x, y = _clouds(n, POINT_DIM, device, seed, 1)
    cost = pairwise_sq_dists(x, y)
    sync_device(device)
    cost_np = cost.detach().cpu().numpy().astype(np.float64)
    u = ot.unif(n)
    last: dict[str, Any] = {}

    def cost_arm() -> None:
        pairwise_sq_dists(x, y)
        sync_device(device)

    def fedot_arm() -> None:
        last["fedot"] = transport_plan(cost, method="exact")
        sync_device(device)

    def emd_arm() -> None:
        last["emd"] = ot.emd(u, u, cost_np, numItermax=EMD_ITER_MAX, log=True)

    def lsa_arm() -> None:
        last["lsa"] = linear_sum_assignment(cost_np)

    arms: dict[str, Callable[[], object]] = {"cost": cost_arm, "fedot": fedot_arm, "lsa": lsa_arm}
    probe_s = None
    if n > EMD_PROBE_ABOVE:
        probe_s = interleaved_medians({"emd": emd_arm}, 1)["emd"]
    if probe_s is None or probe_s <= emd_max_s:
        arms["pot_emd"] = emd_arm
    med, rounds = _timed(arms, repeats, budget_s)

    rows, cols = last["lsa"]
    lsa_cost = float(cost_np[rows, cols].sum() / n)
    row: dict[str, Any] = {
        "n": n, "dim": POINT_DIM, "repeats": rounds, "cost_s": med["cost"], "fedot_s": med["fedot"],
        "pot_emd_s": med.get("pot_emd"), "lsa_s": med["lsa"], "fedot_method": last["fedot"].method,
        "fedot_vs_lsa": med["fedot"] / med["lsa"],
        "pot_emd_vs_lsa": med["pot_emd"] / med["lsa"] if "pot_emd" in med else None,
        "fedot_plan_cost": float(last["fedot"].cost), "lsa_plan_cost": lsa_cost,
        "pot_emd_plan_cost": None, "pot_emd_converged": None, "pot_emd_probe_s": probe_s,
    }
    if "emd" in last:
        plan, log = last["emd"]
        row["pot_emd_plan_cost"] = float(np.sum(plan * cost_np))
        row["pot_emd_converged"] = int(log.get("result_code", 0)) == 1
    return row


def _sinkhorn_rows(n: int, regs: Sequence[float], device: torch.device, seed: int, repeats: int,
                   budget_s: float) -> list[dict[str, Any]]:
    x, y = _clouds(n, POINT_DIM, device, seed, 2)
    cost = pairwise_sq_dists(x, y)
    cost = cost / cost.max()
    a = torch.full((n,), 1.0 / n, dtype=cost.dtype, device=device)
    tol = max(1e-9, 100.0 * torch.finfo(cost.dtype).eps)  # fedot's default stopping threshold
    out = []
    for reg in regs:
        last: dict[str, Any] = {}

        def fedot_arm(reg: float = reg, last: dict[str, Any] = last) -> None:
            last["fedot"] = transport_plan(cost, method="sinkhorn", reg=reg,
                                           max_iter=SINKHORN_MAX_ITER)
            sync_device(device)

        def pot_arm(reg: float = reg, last: dict[str, Any] = last) -> None:
            last["pot"] = ot.sinkhorn(a, a, cost, reg, method="sinkhorn", numItermax=SINKHORN_MAX_ITER,
                                      stopThr=tol, log=True, warn=False)
            sync_device(device)

        def pot_log_arm(reg: float = reg, last: dict[str, Any] = last) -> None:
            last["pot_log"] = ot.sinkhorn(a, a, cost, reg, method="sinkhorn_log",
                                          numItermax=SINKHORN_MAX_ITER, stopThr=tol, log=True,
                                          warn=False)
            sync_device(device)

        med, rounds = _timed({"fedot": fedot_arm, "pot": pot_arm, "pot_log": pot_log_arm},
                             repeats, budget_s)
        res = last["fedot"]
        (pot_plan, pot_log), (log_plan, log_log) = last["pot"], last["pot_log"]
        out.append({
            "n": n, "reg": reg, "repeats": rounds, "tol": tol, "fedot_s": med["fedot"],
            "pot_s": med["pot"], "pot_log_s": med["pot_log"], "fedot_method": res.method,
            "fedot_iterations": res.iterations, "fedot_converged": bool(res.converged),
            "marginal_error": _finite(res.marginal_error),
            "pot_iterations": int(pot_log.get("niter", -1)) + 1,
            "pot_marginal_error": _marginal_error(pot_plan, a, a),
            "pot_log_iterations": int(log_log.get("niter", -1)) + 1,
            "pot_log_marginal_error": _marginal_error(log_plan, a, a),
        })
    return out


def _flow_data(dim: int, seed: int) -> np.ndarray:
    """Training data of the coupling benchmark: 8 Gaussians (2-D), digits (64-D), else N(0, I)."""
    rng = np.random.default_rng((seed, 3, dim))
    if dim == 2:
        from fedot.data.toy2d import sample_toy2d

        return sample_toy2d("8gaussians", 4000, rng)[0].astype(np.float32)
    if dim == 64:  # the digits of the ffm scheme (fedot.fl.flow.flow_data), flattened
        train = load_dataset("digits", seed=seed).train.x
        return (train.reshape(len(train), -1) * 2.0 - 1.0).astype(np.float32)
    return rng.standard_normal((4000, dim), dtype=np.float32)


def _coupling_row(dim: int, batch: int, data: Tensor, device: torch.device, seed: int,
                  repeats: int, budget_s: float) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(data.shape[0], (batch,), generator=gen).to(device)
    x1 = data[idx]
    x0 = torch.randn(tuple(x1.shape), generator=gen).to(device)
    model = VelocityMLP(dim, hidden=HIDDEN, layers=LAYERS, seed=seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    path, independent = LinearPath(), IndependentCoupling()
    exact, entropic = ExactOTCoupling(), EntropicOTCoupling(ENTROPIC_REG)
    last: dict[str, Any] = {}

    def independent_arm() -> None:
        independent.pair(x0, x1, gen)
        sync_device(device)

    def exact_arm() -> None:
        exact.pair(x0, x1, gen)
        sync_device(device)

    def entropic_arm() -> None:
        last["entropic"] = entropic.pair(x0, x1, gen)
        sync_device(device)

    def step_arm() -> None:
        res = flow_matching_loss(model, x0, x1, path=path, coupling=independent, generator=gen)
        opt.zero_grad(set_to_none=True)
        res.loss.backward()
        opt.step()
        sync_device(device)

    med, rounds = _timed({"independent": independent_arm, "exact": exact_arm,
                          "entropic": entropic_arm, "step": step_arm}, repeats, budget_s)
    return {
        "dim": dim, "batch": batch, "repeats": rounds, "independent_s": med["independent"],
        "exact_s": med["exact"], "entropic_s": med["entropic"], "step_s": med["step"],
        "exact_vs_step": med["exact"] / med["step"], "entropic_vs_step": med["entropic"] / med["step"],
        "entropic_reg": ENTROPIC_REG,
        "entropic_marginal_error": _finite(last["entropic"].info["marginal_error"]),
    }


def bench_kernels(
    *,
    device: str = "cpu",
    quick: bool = False,
    repeats: int = 3,
    seed: int = 0,
    exact_sizes: Sequence[int] | None = None,
    sinkhorn_sizes: Sequence[int] | None = None,
    sinkhorn_regs: Sequence[float] = SINKHORN_REGS,
    batch_sizes: Sequence[int] | None = None,
    dims: Sequence[int] = DIMS,
    emd_max_s: float = 5.0,
    row_budget_s: float = 5.0,
) -> dict[str, Any]:
    """Time fedot's OT kernels against POT and scipy, and minibatch couplings against a training step.

    Parameters
    ----------
    device : str, default "cpu"
        Torch device of the costs, Sinkhorn and the flow model (``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, ``"auto"``). The exact solvers always run on the host.
    quick : bool, default False
        Use the smaller default sizes (``QUICK_*``) for the sizes not given explicitly.
    repeats : int, default 3
        Interleaved repeats per row; medians are reported.
    seed : int, default 0
        Seed of every random draw (point clouds, batches, model initialisation).
    exact_sizes, sinkhorn_sizes, batch_sizes : sequence of int, optional
        Problem sizes; default :data:`EXACT_SIZES`, :data:`SINKHORN_SIZES`, :data:`BATCH_SIZES`
        (or their ``QUICK_`` variants).
    sinkhorn_regs : sequence of float, default (0.05, 0.005)
        Entropic regularisations, relative to the cost normalised to max 1.
    dims : sequence of int, default (2, 64)
        Data dimensions of the coupling benchmark.
    emd_max_s : float, default 5.0
        Above ``n = 1024``, ``ot.emd`` is skipped (``None``) when one call takes longer than this.
    row_budget_s : float, default 5.0
        Every row starts with one interleaved warm-up round (first-call costs: allocations, lazy
        initialisation, Adam's state); a row whose warm-up round takes longer than this in all is
        reported from that round alone (its ``"repeats"`` is then 1), the others from ``repeats``
        further rounds.

    Returns
    -------
    dict
        JSON-serialisable: ``"exact"``, ``"sinkhorn"`` and ``"coupling"`` (lists of rows, times
        in seconds under keys ending in ``_s``), ``"device"``, ``"threads"`` (torch intra-op
        threads), ``"repeats"``, ``"seed"``, ``"load_start"`` and ``"load_end"``
        (``os.getloadavg()``).
    """
    load_start = list(os.getloadavg())
    dev = resolve_device(device)
    if exact_sizes is None:
        exact_sizes = QUICK_EXACT_SIZES if quick else EXACT_SIZES
    if sinkhorn_sizes is None:
        sinkhorn_sizes = QUICK_SINKHORN_SIZES if quick else SINKHORN_SIZES
    if batch_sizes is None:
        batch_sizes = QUICK_BATCH_SIZES if quick else BATCH_SIZES
    with warnings.catch_warnings():
        # convergence is recorded in the rows (flags, iterations, marginal errors) instead
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        exact = [_exact_row(int(n), dev, seed, repeats, emd_max_s, row_budget_s)
                 for n in exact_sizes]
        sinkhorn = [row for n in sinkhorn_sizes
                    for row in _sinkhorn_rows(int(n), sinkhorn_regs, dev, seed, repeats, row_budget_s)]
        coupling = []
        for dim in dims:
            data = torch.as_tensor(_flow_data(int(dim), seed), device=dev)
            coupling += [_coupling_row(int(dim), int(b), data, dev, seed, repeats, row_budget_s)
                         for b in batch_sizes]
    return {"device": str(dev), "threads": torch.get_num_threads(), "repeats": repeats,
            "seed": seed, "exact": exact, "sinkhorn": sinkhorn, "coupling": coupling,
            "load_start": load_start, "load_end": list(os.getloadavg())}


def _ms(seconds: float | None) -> str:
    """Seconds as milliseconds with one decimal; ``–`` for a skipped arm, ``<0.1`` below 0.05 ms."""
    if seconds is None:
        return "–"
    ms = seconds * 1e3
    return "<0.1" if ms < 0.05 else f"{ms:.1f}"


def _err(value: float | None) -> str:
    return "non-finite" if value is None else f"{value:.1e}"


def kernel_lines(result: dict[str, Any]) -> list[str]:
    """Markdown section ``## OT kernels``: a paragraph and three tables of a benchmark result.

    Parameters
    ----------
    result : dict
        The return value of :func:`bench_kernels`.

    Returns
    -------
    list of str
        Lines of the section, ending with an empty line.
    """
    load = (f"load average {result['load_start'][0]:.2f} at the start, "
            f"{result['load_end'][0]:.2f} at the end")
    full = result["repeats"]

    def label(row: dict[str, Any], key: str) -> str:
        return f"{row[key]}" + (" †" if row["repeats"] < full else "")

    lines = [
        "## OT kernels",
        "",
        f"Device `{result['device']}`, torch threads: {result['threads']}, repeats: "
        f"{full} with the arms interleaved after one warm-up round, medians († : a row over its "
        f"time budget, from the warm-up round alone); {load} (`fedot.bench.kernels`). "
        "Exact OT: random squared-Euclidean costs between two 64-D point clouds (float32, "
        "`pairwise_sq_dists` on the device, its time as *cost*); fedot = `transport_plan("
        "method='exact')` on uniform marginals (assignment solver, from the device tensor, plan "
        "back on the device), POT = `ot.emd` and the floor = scipy `linear_sum_assignment`, both on "
        "the float64 numpy cost (– where ot.emd was skipped for time). Sinkhorn: the same kind of "
        "cost normalised to max 1, fedot's `transport_plan(method='sinkhorn')` (log domain chosen "
        "by fedot when ptp(C)/reg > 30) vs POT `ot.sinkhorn` scaling and log domain on the same "
        "tensors, same stopping threshold (column marginal, L2) and cap; the L1 marginal errors "
        "show whether a plan is usable. Couplings: one `pair()` of the minibatch couplings vs one "
        "flow-matching training step (VelocityMLP 128×3, linear path, Adam); 2-D = 8 Gaussians, "
        "64-D = digits pixels.",
        "",
        "| n | cost (ms) | fedot exact (ms) | POT emd (ms) | LSA floor (ms) | fedot / floor | "
        "emd / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["exact"]:
        emd_ratio = "–" if r["pot_emd_vs_lsa"] is None else f"{r['pot_emd_vs_lsa']:.2f}"
        lines.append(f"| {label(r, 'n')} | {_ms(r['cost_s'])} | {_ms(r['fedot_s'])} | "
                     f"{_ms(r['pot_emd_s'])} | {_ms(r['lsa_s'])} | {r['fedot_vs_lsa']:.2f} | "
                     f"{emd_ratio} |")
    lines += [
        "",
        "| n | reg | fedot solver | fedot (ms) | iters | marginal error | POT sinkhorn (ms) | "
        "iters | marginal error | POT log (ms) | iters | marginal error |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["sinkhorn"]:
        lines.append(
            f"| {label(r, 'n')} | {r['reg']:g} | {r['fedot_method']} | {_ms(r['fedot_s'])} | "
            f"{r['fedot_iterations']} | {_err(r['marginal_error'])} | {_ms(r['pot_s'])} | "
            f"{r['pot_iterations']} | {_err(r['pot_marginal_error'])} | {_ms(r['pot_log_s'])} | "
            f"{r['pot_log_iterations']} | {_err(r['pot_log_marginal_error'])} |")
    lines += [
        "",
        "| d | batch | independent (ms) | exact OT (ms) | entropic OT (ms) | training step (ms) | "
        "exact / step | entropic / step |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["coupling"]:
        lines.append(
            f"| {r['dim']} | {label(r, 'batch')} | {_ms(r['independent_s'])} | {_ms(r['exact_s'])} | "
            f"{_ms(r['entropic_s'])} | {_ms(r['step_s'])} | {r['exact_vs_step']:.1f} | "
            f"{r['entropic_vs_step']:.1f} |")
    lines.append("")
    return lines
