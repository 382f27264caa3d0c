"""OTFusion server cost at scale: 10 clients of a ~3M-parameter MLP, vs its compute floor.

OTFusion's per-round work is, per client and hidden group, the pairwise distances between the
client's and the target's neurons (one GEMM on the incoming weights, the past plan applied) and
one assignment problem on the ``n x n`` cost. The *floor* measured here is exactly that work done
directly — ``torch.cdist``-free GEMM distances plus ``scipy.optimize.linear_sum_assignment`` for
every client and group, no re-indexing, no averaging — together with the plain FedAvg average of
the same state dicts; the fusion is :func:`fedot.fusion.fuse_detailed` (exact plans, weights
metric). Medians over repeats, alternatives interleaved.
"""

from __future__ import annotations

from typing import Any

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from fedot.bench.timing import interleaved_medians, sync_device
from fedot.fusion import fuse_detailed
from fedot.ot.assignment import pairwise_sq_dists

__all__ = ["bench_otfusion"]


def _mlp(widths: tuple[int, ...], seed: int) -> nn.Sequential:
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(b, a, generator=gen) / a ** 0.5)
            lin.bias.copy_(0.01 * torch.randn(b, generator=gen))
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _floor(models: list[nn.Sequential], target: nn.Sequential) -> None:
    """Distances (GEMM) + assignment for every client and hidden layer, then the plain average."""
    linears = [i for i, m in enumerate(target) if isinstance(m, nn.Linear)][:-1]
    for model in models:
        for i in linears:
            w = torch.cat([model[i].weight, model[i].bias[:, None]], 1).detach()
            t = torch.cat([target[i].weight, target[i].bias[:, None]], 1).detach()
            cost = pairwise_sq_dists(w, t)
            linear_sum_assignment(cost.cpu().numpy())
    states = [m.state_dict() for m in models]
    with torch.no_grad():
        _ = {k: sum(s[k] for s in states) / len(states) for k in states[0]}


def _fedavg(models: list[nn.Sequential]) -> None:
    states = [m.state_dict() for m in models]
    with torch.no_grad():
        _ = {k: sum(s[k] for s in states) / len(states) for k in states[0]}


def bench_otfusion(clients: int = 10, widths: tuple[int, ...] = (784, 1024, 1024, 1024, 10),
                   repeats: int = 3, device: str = "cpu") -> dict[str, Any]:
    """Median OTFusion time for ``clients`` models vs its floor and vs FedAvg's average.

    ``device``: where the models live; distances (and the averages) are computed there, the
    assignment problems on the CPU, in both OTFusion and the floor.
    """
    dev = torch.device(device)
    models = [_mlp(widths, seed=i).to(dev) for i in range(clients)]
    target = models[0]
    weights = [1.0] * clients

    def synced(fn: Any) -> Any:
        return lambda: (fn(), sync_device(dev))

    arms = {
        "otfusion": synced(lambda: fuse_detailed(models, target=target, weights=weights)),
        "floor": synced(lambda: _floor(models, target)),
        "fedavg": synced(lambda: _fedavg(models)),
    }
    med = interleaved_medians(arms, repeats)
    params = sum(p.numel() for p in target.parameters())
    return {"clients": clients, "widths": list(widths), "params": params, "device": str(dev),
            "threads": torch.get_num_threads(), **{f"{k}_s": v for k, v in med.items()},
            "ratio_floor": med["otfusion"] / med["floor"],
            "ratio_fedavg": med["otfusion"] / med["fedavg"]}
