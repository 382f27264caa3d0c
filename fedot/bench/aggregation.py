"""Aggregation cost: fedot's shared path vs Flower's ``aggregate_arrayrecords`` vs the read floor.

Replies are ``N`` ArrayRecords of one float32 array of ``P`` parameters (as Flower delivers them:
serialised ``.npy`` bytes). For each (N, P), alternating repeats, medians of:

* **floor** — one read of every reply's payload (``sum`` over zero-copy views): the memory
  bandwidth bound of any aggregation, measured in the same run;
* **output** — one copy of a P-parameter result into a fresh ``bytes`` object (what a Flower
  ``Array`` must hold): the unavoidable write, page faults of the fresh memory included;
* **flower** — ``flwr.serverapp.strategy.strategy_utils.aggregate_arrayrecords`` (FedAvg's own);
* **fedot** — :func:`fedot.fl.aggregate.weighted_average` (zero-copy views, cache-blocked float64
  accumulation, one write of the result).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from fedot.bench.timing import interleaved_medians
from fedot.fl.aggregate import array_view, weighted_average

__all__ = ["bench_aggregation_paths"]


def bench_aggregation_paths(
    sizes: list[tuple[int, int]], repeats: int = 5, seed: int = 0, device: str = "cpu"
) -> list[dict[str, Any]]:
    """Median times of floor, Flower and fedot for each (N clients, P parameters).

    With ``device`` other than ``"cpu"``, fedot's device path (``weighted_average(...,
    device=device)``: every reply copied there, accumulated there, the result copied back) is
    timed too, as ``device_s``.
    """
    rows = []
    rng = np.random.default_rng(seed)
    for n, p in sizes:
        base = rng.standard_normal(p).astype(np.float32)
        records = [ArrayRecord({"w": Array(base + np.float32(i))}) for i in range(n)]
        contents = [RecordDict({"arrays": r, "metrics": MetricRecord({"num-examples": 1 + i})})
                    for i, r in enumerate(records)]
        weights = [1.0 + i for i in range(n)]
        views = [array_view(r["w"]) for r in records]
        result = np.empty(p, dtype=np.float32)
        result[...] = 1.0
        arms = {
            "floor": lambda views=views: [v.sum() for v in views],
            "output": lambda result=result: b"".join((b"", memoryview(result.view(np.uint8)))),
            "flower": lambda c=contents: aggregate_arrayrecords(c, "num-examples"),
            "fedot": lambda r=records, w=weights: weighted_average(r, w),
        }
        if device != "cpu":
            arms["device"] = lambda r=records, w=weights: weighted_average(r, w, device=device)
        med = interleaved_medians(arms, repeats)
        rows.append({"N": n, "P": p, **{f"{k}_s": v for k, v in med.items()},
                     "fedot_vs_flower": med["fedot"] / med["flower"],
                     "fedot_vs_floor": med["fedot"] / med["floor"],
                     "fedot_vs_floors": med["fedot"] / (med["floor"] + med["output"]),
                     "flower_vs_floor": med["flower"] / med["floor"],
                     **({"device_vs_floor": med["device"] / med["floor"]} if "device" in med else {})})
        del records, contents, views, result
    return rows
