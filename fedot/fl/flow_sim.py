r"""Batched simulation of per-step federated flow matching: thousands of rounds in minutes.

Per-step FFM (``ffm.local-steps = 1``, and ``ffm.potential-local-steps = 1`` for GOT) is, round
for round, one step of the server's optimizer on the gradient of the clients' weighted objective

.. math::  g_t = \sum_i \lambda_i \nabla_\theta \hat L_i(\theta_t), \qquad \lambda_i \propto n_i ,

each :math:`\hat L_i` on a minibatch drawn by client *i* from its own data with its own seeded
generator. Through Flower a round costs tens of milliseconds of messaging, record conversion and
per-round result writing for a millisecond of arithmetic, so the 10⁴-step budgets at which flow
matching converges take hours. :func:`simulate_flow` runs the same arithmetic without the
transport: every client's draws come from the generator its ClientApp would seed
(:meth:`~fedot.fl.flow.FlowClientEnv.seed`), in the same order, through the same coupling code;
the clients' regression targets are pooled into one forward pass with loss
:math:`\sum_i \lambda_i \operatorname{mean}_{b \in i} \ell_b` (whose gradient is :math:`g_t`);
the optimizer is the same torch optimizer the strategy's
:class:`~fedot.learning.optim.ServerOptimizer` wraps; evaluation is the server task of the Flower
run (:func:`~fedot.fl.flow.flow_server_task`), at the same rounds. A test checks that it
reproduces the Flower run (inline grid, real ServerApp/ClientApp) to float rounding.

``reference="torchcfm"``: a centralised run (one client) whose pairing and regression targets come
from torchcfm 1.0.7 (``ConditionalFlowMatcher`` / ``ExactOptimalTransportConditionalFlowMatcher``
with ``sigma = ffm.sigma``) and whose loss is torchcfm's ``mean((v - u)^2)``, with fedot's data,
model, optimizer, batches and evaluation: the reference implementation trained the same way.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from logging import INFO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.common import log

from fedot.config import RunConfig
from fedot.fl.flow import (
    FlowClientEnv,
    _flow_client_env,
    evaluation_round,
    flow_arrays,
    flow_coupling,
    flow_server_task,
    total_rounds,
)
from fedot.learning.flow import (
    FlowTargets,
    GaussianPath,
    LinearPath,
    flow_matching_targets,
    per_sample_loss,
    potential_step_gradient,
)
from fedot.learning.flow.training import draw_batch
from fedot.learning.optim import make_optimizer

__all__ = ["REFERENCES", "check_simulable", "simulate_flow"]

#: Reference implementations :func:`simulate_flow` can train with (centralised runs only).
REFERENCES: tuple[str, ...] = ("torchcfm",)


def check_simulable(cfg: RunConfig, reference: str | None = None) -> None:
    """Raise ``ValueError`` naming the key when ``cfg`` is not a per-step FFM run.

    The simulation covers exactly the runs whose rounds are one server step on the full
    gradient: scheme ``ffm``, every client in every round, one local step per round (both
    stages), no injected faults.
    """
    f = cfg.ffm
    problems = []
    if cfg.scheme != "ffm":
        problems.append(f"scheme={cfg.scheme!r} (needs 'ffm')")
    if f.local_steps != 1:
        problems.append(f"ffm.local-steps={f.local_steps} (needs 1: per-step aggregation)")
    if f.coupling == "got" and f.potential_local_steps != 1:
        problems.append(f"ffm.potential-local-steps={f.potential_local_steps} (needs 1)")
    if cfg.fraction_train != 1.0:
        problems.append(f"fraction-train={cfg.fraction_train} (needs 1.0: every client, every round)")
    if cfg.fault.kind != "none":
        problems.append(f"fault.kind={cfg.fault.kind!r} (needs 'none')")
    if reference is not None:
        if reference not in REFERENCES:
            problems.append(f"reference={reference!r} (allowed: {', '.join(REFERENCES)})")
        if cfg.clients != 1:
            problems.append(f"clients={cfg.clients} (a reference implementation is centralised: 1)")
        if f.coupling == "got":
            problems.append("ffm.coupling='got' (torchcfm has vanilla and exact-OT couplings)")
    if problems:
        raise ValueError("cannot simulate this run in batch: " + "; ".join(problems))


def _torchcfm_targets(cfg: RunConfig) -> Callable[[torch.Tensor, torch.Tensor], FlowTargets]:
    try:
        import torchcfm
    except ImportError as exc:  # an optional reference, not a dependency
        raise ImportError("reference='torchcfm' needs torchcfm: pip install torchcfm==1.0.7 "
                          "--no-deps (its core needs only torch, numpy and POT)") from exc
    f = cfg.ffm
    cls = (torchcfm.ExactOptimalTransportConditionalFlowMatcher if f.coupling == "lot"
           else torchcfm.ConditionalFlowMatcher)
    matcher = cls(sigma=f.sigma)

    def targets(x0: torch.Tensor, x1: torch.Tensor) -> FlowTargets:
        t, xt, ut = matcher.sample_location_and_conditional_flow(x0, x1)
        return FlowTargets(t=t, x_t=xt, u_t=ut, plan_cost=float("nan"))

    return targets


def simulate_flow(
    cfg: RunConfig, out_dir: Path, *, reference: str | None = None,
    progress_every: float = 30.0,
) -> Path:
    """Run a per-step FFM job in batch and write ``results.json`` like a Flower run.

    Parameters
    ----------
    cfg : RunConfig
        A run accepted by :func:`check_simulable`.
    out_dir : Path
        Run directory: ``config.json``, ``results.json`` (one entry per evaluation round, with
        the mean round time and the mean client compute time of the rounds since the last one),
        ``flow.png``.
    reference : {"torchcfm"}, optional
        Train a centralised run with a reference library's targets and loss (module docstring).
    progress_every : float
        Seconds between progress lines.

    Returns
    -------
    Path
        ``out_dir``.
    """
    check_simulable(cfg, reference)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    f = cfg.ffm
    envs: list[FlowClientEnv] = [_flow_client_env(cfg, pid, cfg.clients)
                                 for pid in range(cfg.clients)]
    sizes = np.array([len(e.train) for e in envs], dtype=np.float64)
    lam = sizes / sizes.sum()
    task = flow_server_task(cfg, out_dir)
    velocity = copy.deepcopy(envs[0].velocity)
    potential = copy.deepcopy(envs[0].potential) if envs[0].potential is not None else None
    device = envs[0].device
    path = GaussianPath(f.sigma) if f.sigma > 0 else LinearPath()
    v_params = [p for p in velocity.parameters() if p.requires_grad]
    v_opt = make_optimizer(f.optimizer, v_params, f.lr)
    p_opt = (make_optimizer(f.optimizer, [p for p in potential.parameters() if p.requires_grad],
                            f.potential_lr) if potential is not None else None)
    ref_targets = _torchcfm_targets(cfg) if reference else None
    if reference:  # torchcfm draws t and its OT resampling from the global RNGs
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)  # noqa: NPY002 - torchcfm samples its plan with it
    total = total_rounds(cfg)
    config = cfg.model_dump(by_alias=True)
    results: dict[str, Any] = {
        "scheme": "ffm", "status": "running", "config": config,
        "engine": {"name": "batched-simulation", "reference": reference},
        "out_dir": str(out_dir), **task.info, "rounds": [], "final": {},
    }
    (out_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    def record(server_round: int, stage: str, window: dict[str, list[float]], seconds: float,
               count: int) -> None:
        arrays = flow_arrays(velocity, potential)
        server = {k: float(v) for k, v in task.evaluate(server_round, arrays).items()}
        train = {k: float(np.mean(v)) for k, v in window.items() if k != "client-time" and v}
        client_time = window.get("client-time", [])
        results["rounds"].append({
            "round": server_round, "stage": stage, "server": server, "train": train,
            "evaluate": {}, "time_s": seconds / count if count else 0.0, "rounds_in_entry": count,
            "compute_s": float(np.mean(client_time)) if client_time else 0.0,
        })
        results["final"] = server

    record(0, "potential" if f.coupling == "got" and f.potential_rounds else "flow", {}, 0.0, 0)
    start = last_log = window_start = time.perf_counter()
    window: dict[str, list[float]] = {}
    count = 0
    for server_round in range(1, total + 1):
        stage = ("potential" if f.coupling == "got" and server_round <= f.potential_rounds
                 else "flow")
        tic = time.perf_counter()
        if stage == "potential":
            assert potential is not None and p_opt is not None
            grads = None
            for i, env in enumerate(envs):
                gen = torch.Generator(device=device).manual_seed(env.seed(server_round))
                step = potential_step_gradient(
                    potential, env.train, batch_size=f.batch_size, candidates=f.candidates,
                    refine_steps=f.refine_steps, step_size=f.step_size, generator=gen)
                scaled = {k: float(lam[i]) * g for k, g in step.grads.items()}
                grads = scaled if grads is None else {k: grads[k] + scaled[k] for k in grads}
                window.setdefault("objective", []).append(step.loss)
            assert grads is not None
            for name, p in potential.named_parameters():
                p.grad = grads[name]
            p_opt.step()
        else:
            if potential is not None:
                potential.requires_grad_(False)
            coupling = flow_coupling(cfg.ffm, potential)
            parts: list[FlowTargets] = []
            for env in envs:
                gen = torch.Generator(device=device).manual_seed(env.seed(server_round))
                x0, x1 = draw_batch(env.train, f.batch_size, gen)
                parts.append(ref_targets(x0, x1) if ref_targets is not None else
                             flow_matching_targets(x0, x1, path=path, coupling=coupling,
                                                   generator=gen))
            pooled = FlowTargets(t=torch.cat([p.t for p in parts]),
                                 x_t=torch.cat([p.x_t for p in parts]),
                                 u_t=torch.cat([p.u_t for p in parts]), plan_cost=float("nan"))
            per = per_sample_loss(velocity, pooled)
            if reference:  # torchcfm's loss: the mean over batch and dimensions
                per = per / float(np.prod(pooled.u_t.shape[1:]))
            losses = torch.stack([seg.mean() for seg in per.split([len(p.t) for p in parts])])
            loss = (torch.as_tensor(lam, dtype=losses.dtype, device=losses.device) * losses).sum()
            if not bool(torch.isfinite(loss.detach())):
                raise FloatingPointError(f"round {server_round}: non-finite loss {float(loss)}")
            v_opt.zero_grad(set_to_none=True)
            loss.backward()
            v_opt.step()
            window.setdefault("loss", []).append(float(loss.detach()))
            if not reference:
                window.setdefault("plan-cost", []).append(
                    float(np.dot(lam, [p.plan_cost for p in parts])))
        window.setdefault("client-time", []).append(time.perf_counter() - tic)
        count += 1
        if evaluation_round(cfg, server_round):
            now = time.perf_counter()
            record(server_round, stage, window, now - window_start, count)
            window, count = {}, 0
            window_start = time.perf_counter()
        now = time.perf_counter()
        if now - last_log >= progress_every:
            rate = server_round / (now - start)
            log(INFO, "fedot simulate %s: round %d/%d (%.0f rounds/s, ETA %.0f s)",
                out_dir.name, server_round, total, rate, (total - server_round) / rate)
            last_log = now
    results["elapsed_s"] = time.perf_counter() - start
    results["status"] = "completed"
    if task.finalize is not None:
        task.finalize(out_dir, flow_arrays(velocity, potential))
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    torch.save(dict(flow_arrays(velocity, potential).to_torch_state_dict()),
               out_dir / "final_arrays.pt")
    return out_dir
