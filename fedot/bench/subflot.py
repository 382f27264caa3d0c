"""SubFLOT server cost: OTP extraction and OTA aggregation vs HeteroFL and FedAvg, side by side.

Per round the SubFLOT server solves, for every client, one OT problem per hidden group twice (OTP
before sending, OTA after receiving). This benchmark times, on identical models (an MLP
``64 -> h -> h -> 10`` as for digits, ``clients`` clients with rates cycling through
{0, 1/4, 1/2, 3/4}), with the alternatives interleaved and medians over repeats:

* ``fedavg``: the weighted mean of ``clients`` full-width state dicts (the reference);
* ``heterofl``: static slices out, position-based average back;
* ``subflot (match)`` / ``subflot (barycentric)``: OTP for every client, then OTA.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from fedot.bench.timing import interleaved_medians
from fedot.fusion import spec_for
from fedot.learning import build_model
from fedot.subflot import (
    ota_aggregate,
    ota_match,
    otp_extract,
    otp_match,
    positional_aggregate,
    static_slice,
)

__all__ = ["bench_subflot"]

RATES = (0.0, 0.25, 0.5, 0.75)


def _setup(hidden: int, clients: int) -> tuple[torch.nn.Module, list[torch.nn.Module], list[float]]:
    g = build_model("mlp", (64,), 10, hidden=hidden, seed=0)
    rates = [RATES[i % len(RATES)] for i in range(clients)]
    subs = []
    for i, rate in enumerate(rates):
        sub = static_slice(g, rate).model
        with torch.no_grad():  # a trained-looking history: the slice plus noise
            gen = torch.Generator().manual_seed(i)
            for p in sub.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=gen))
        subs.append(sub)
    return g, subs, rates


def _arms(hidden: int, clients: int) -> dict[str, Callable[[], object]]:
    """Return the four server rounds on one fixed set of models, as zero-argument callables."""
    g, subs, rates = _setup(hidden, clients)
    spec = spec_for(g)
    fulls = [build_model("mlp", (64,), 10, hidden=hidden, seed=i).state_dict()
             for i in range(clients)]
    w = [1.0] * clients

    def fedavg() -> object:
        with torch.no_grad():
            return {k: sum(s[k] for s in fulls) / clients for k in fulls[0]}

    def heterofl() -> object:
        sliced = [static_slice(g, r, spec=spec) for r in rates]
        return positional_aggregate(
            g.state_dict(), [(s.state_dict(), sl.indices, 1.0)
                             for s, sl in zip(subs, sliced, strict=True)], spec=spec)

    def subflot_match() -> object:
        for s, r in zip(subs, rates, strict=True):
            otp_match(g, s, r, spec=spec)
        return ota_match(g, subs, w, spec=spec)

    def subflot_bary() -> object:
        for s, r in zip(subs, rates, strict=True):
            otp_extract(g, s, r, spec=spec)
        return ota_aggregate(g, subs, w, spec=spec)

    return {"fedavg": fedavg, "heterofl": heterofl, "subflot (match)": subflot_match,
            "subflot (barycentric)": subflot_bary}


def bench_subflot(hiddens: list[int], clients: int = 20, repeats: int = 3) -> list[dict[str, Any]]:
    """Median server time per round of each arm, and its ratio to FedAvg's, per hidden width."""
    out = []
    for hidden in hiddens:
        arms = _arms(hidden, clients)
        med = interleaved_medians(arms, repeats)
        params = sum(p.numel() for p in build_model("mlp", (64,), 10, hidden=hidden).parameters())
        out.append({"hidden": hidden, "clients": clients, "params": params,
                    **{f"{k}_s": v for k, v in med.items()},
                    **{f"{k}_ratio": v / med["fedavg"] for k, v in med.items()}})
    return out
