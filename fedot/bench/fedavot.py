"""FedAVOT costs: masked IPFP at scheme sizes, and aggregation time relative to FedAvg.

* IPFP: :func:`fedot.ot.masked_sinkhorn` on N users × M random subsets (2–10 members) with
  feasible marginals (p, q the marginals of a random plan on the mask), and the max-flow
  feasibility test on the same instance.
* Aggregation: ``aggregate_train`` of FedAVOT, of federated flow matching (``ffm``) and of
  fedot's FedAvg on the *same* replies (``clients`` replies of ``params`` float32 parameters),
  medians over repeats, arms alternating. All include the shared reply screening; FedAVOT adds the
  lookup of its precomputed column, FFM the record of its stage. The read floor (one pass over
  every reply's payload) is measured in the same loop.
"""

from __future__ import annotations

import importlib
import statistics
import time
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from fedot.bench.timing import interleaved_medians
from fedot.config import load_run_config
from fedot.fl import keys
from fedot.fl.aggregate import array_view
from fedot.fl.strategy import FedotStrategy
from fedot.fl.validation import array_specs
from fedot.ot import masked_feasibility, masked_sinkhorn

__all__ = ["bench_aggregation", "bench_ipfp"]


def _instance(n: int, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list]:
    sizes = rng.integers(2, 11, size=m)
    subsets = [np.sort(rng.choice(n, size=s, replace=False)) for s in sizes]
    plan = [rng.random(s) for s in sizes]
    p = np.zeros(n)
    for members, w in zip(subsets, plan, strict=True):
        np.add.at(p, members, w)
    q = np.array([w.sum() for w in plan])
    total = q.sum()
    return p / total, q / total, subsets


def bench_ipfp(sizes: list[tuple[int, int]], repeats: int = 3, seed: int = 0) -> list[dict[str, Any]]:
    """Median wall time of masked Sinkhorn (tol 1e-10) and of the feasibility test."""
    rows = []
    for n, m in sizes:
        p, q, subsets = _instance(n, m, np.random.default_rng(seed))
        solve, feas, iters = [], [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            res = masked_sinkhorn(p, q, subsets, tol=1e-10, max_iter=10_000)
            solve.append(time.perf_counter() - start)
            start = time.perf_counter()
            masked_feasibility(p, q, subsets)
            feas.append(time.perf_counter() - start)
            iters = res.n_iter
        rows.append({"N": n, "M": m, "nnz": int(sum(len(s) for s in subsets)), "n_iter": iters,
                     "ipfp_s": statistics.median(solve), "feasibility_s": statistics.median(feas)})
    return rows


def _replies(clients: int, params: int, rng: np.random.Generator) -> tuple[ArrayRecord, list]:
    TaskIdentity.run_id = TaskIdentity.node_id = TaskIdentity.task_id = 1
    shape = (params // 1000, 1000)
    global_arrays = ArrayRecord({"w": Array(rng.standard_normal(shape).astype(np.float32))})
    replies = []
    for pid in range(clients):
        content = RecordDict({
            keys.ARRAYS: ArrayRecord({"w": Array(rng.standard_normal(shape).astype(np.float32))}),
            keys.METRICS: MetricRecord({keys.NUM_EXAMPLES: 10 + pid}),
            keys.CLIENT: ConfigRecord({keys.PARTITION_ID: pid}),
        })
        out = Message(RecordDict({}), pid + 1, "train")
        reply = Message(content, reply_to=out)
        reply.metadata.__dict__["_src_node_id"] = pid + 1
        replies.append(reply)
    return global_arrays, replies


def bench_aggregation(clients: int = 10, params: int = 1_000_000, repeats: int = 5) -> dict[str, Any]:
    """FedAVOT and FFM vs FedAvg ``aggregate_train`` on identical replies (medians, ratios)."""
    # The strategy registry is resolved by name at run time, as Flower resolves the apps.
    strategies = importlib.import_module("strategies").STRATEGIES

    rng = np.random.default_rng(0)
    global_arrays, replies = _replies(clients, params, rng)
    # Two groups of `clients` partitions that are never available together: the replying group
    # is always a support subset, so FedAVOT uses its solved column.
    cfg = load_run_config({"scheme": "fedavot", "clients": 2 * clients,
                           "participation.availability": "restricted", "participation.groups": 2,
                           "participation.k": clients})
    fedavot = strategies["fedavot"].from_config(cfg)
    fedavot.configure_clients(np.ones(2 * clients, dtype=np.int64))  # p uniform: feasible
    fedavg: FedotStrategy = strategies["fedavg"].from_config(load_run_config({"clients": clients}))
    ffm: FedotStrategy = strategies["ffm"].from_config(
        load_run_config({"scheme": "ffm", "clients": clients}))
    views = [array_view(next(iter(m.content.array_records.values()))["w"]) for m in replies]
    for strategy in (fedavg, fedavot, ffm):
        strategy._spec = array_specs(global_arrays)
    med = interleaved_medians({
        "floor": lambda: [view.sum() for view in views],
        **{name: (lambda s=s: s.aggregate_train(1, replies))
           for name, s in (("fedavg", fedavg), ("fedavot", fedavot), ("ffm", ffm))},
    }, repeats)
    return {"clients": clients, "params": params, **{f"{k}_s": v for k, v in med.items()},
            "ratio": med["fedavot"] / med["fedavg"], "ffm_ratio": med["ffm"] / med["fedavg"]}
