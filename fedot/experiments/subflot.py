"""SubFLOT experiments: width-heterogeneous clients, SubFLOT vs HeteroFL vs FedRolex vs FedAvg.

20 clients with pruning rates drawn from {0, 1/4, 1/2, 3/4} (seeded per client), full
participation. Every arm reports the full-width global model's accuracy on the server's held-out
set, and the personalised accuracy — each client's submodel after local training on its own test
split — as the mean and the worst client; plus traffic and local-training FLOPs per round. "FedAvg
(full width)" is HeteroFL with every rate 0, which is exactly FedAvg (a test checks it) evaluated
the same personalised way; it is the reference every client could reach with full compute.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedot.experiments.compare import Arm
from fedot.experiments.registry import Experiment, register

__all__ = ["subflot_report"]

ROUNDS = 30
BASE = {
    "clients": 20, "rounds": ROUNDS, "checkpoint": False, "local.epochs": 2,
    "submodel.rates": "0,0.25,0.5,0.75", "model.hidden": 64,
}
SPLITS = {
    "dir0.1": {"partition.kind": "dirichlet", "partition.alpha": 0.1},
    "path2": {"partition.kind": "pathological", "partition.classes-per-client": 2},
}
QUICK = {"clients": 4, "rounds": 2, "local.epochs": 1, "model.hidden": 16}


def _scheme_arms() -> list[Arm]:
    arms = []
    for split, over in SPLITS.items():
        arms += [
            Arm(f"subflot, {split}", {**over, "scheme": "subflot"}),
            Arm(f"heterofl, {split}", {**over, "scheme": "heterofl"}),
            Arm(f"fedrolex, {split}", {**over, "scheme": "fedrolex"}),
            Arm(f"fedavg full width, {split}", {**over, "scheme": "heterofl",
                                                "submodel.rates": "0"}),
        ]
    return arms


def _ablation_arms() -> list[Arm]:
    sub = {**SPLITS["dir0.1"], "scheme": "subflot"}
    return [
        Arm("subflot", sub),
        Arm("without OTP", {**sub, "submodel.otp": False}),
        Arm("without SAR", {**sub, "submodel.sar": False}),
        Arm("without OTA", {**sub, "submodel.ota": False}),
        Arm("barycentric maps", {**sub, "submodel.map": "barycentric"}),
        Arm("barycentric maps, lam 1", {**sub, "submodel.map": "barycentric",
                                         "submodel.lam": 1.0}),
        Arm("heterofl", {**SPLITS["dir0.1"], "scheme": "heterofl"}),
    ]


def _per_round(run_dir: str) -> dict[str, float]:
    """Mean per-round traffic (float32 MB both ways) and local-training GFLOPs of one run."""
    path = Path(run_dir) / "results.json"
    if not path.exists():
        return {}
    rounds = [e for e in json.loads(path.read_text())["rounds"] if "accounting_total" in e]
    if not rounds:
        return {}
    n = len(rounds)
    total = {k: sum(e["accounting_total"][k] for e in rounds) / n
             for k in ("sent", "received", "train-flops")}
    return {"traffic_mb": (total["sent"] + total["received"]) * 4 / 1e6,
            "gflops": total["train-flops"] / 1e9}


def _fmt(stat: Mapping[str, float] | None) -> str:
    return "–" if not stat else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def subflot_report(summary: dict[str, Any], out_dir: Path) -> None:
    """Write ``subflot.md``: accuracies (global, personal mean and worst) and cost per round."""
    import numpy as np

    lines = [f"# {summary['title']}", "",
             f"Seeds {summary['seeds']}; mean ± std after the last round. Global: the full-width "
             "model on the server's held-out set. Personal: each client's submodel after local "
             "training, on its own test split (mean over clients, and the worst client). Traffic: "
             "parameters sent + received per round, float32. FLOPs: local training per round, "
             "6 × forward MACs × samples × epochs, summed over clients.", "",
             "| arm | global acc | personal mean | personal worst | traffic / round (MB) | "
             "train GFLOPs / round |", "|---|---|---|---|---|---|"]
    table = {}
    for label, row in summary["results"].items():
        costs = [c for d in row.get("run_dirs", []) if (c := _per_round(d))]
        mb = np.mean([c["traffic_mb"] for c in costs]) if costs else float("nan")
        gf = np.mean([c["gflops"] for c in costs]) if costs else float("nan")
        table[label] = {"traffic_mb": float(mb), "gflops": float(gf)}
        lines.append(f"| {label} | {_fmt(row.get('accuracy'))} | "
                     f"{_fmt(row.get('personal-accuracy-mean'))} | "
                     f"{_fmt(row.get('personal-accuracy-worst'))} | {mb:.2f} | {gf:.3f} |")
    (out_dir / "subflot.md").write_text("\n".join(lines) + "\n")
    (out_dir / "subflot.json").write_text(json.dumps(
        {"results": summary["results"], "cost": table}, indent=2) + "\n")


for _name, _desc, _over in (
    ("subflot-digits", "digits, MLP", {"dataset": "digits", "model.name": "mlp"}),
    ("subflot-cnn", "digits, BN CNN", {"dataset": "digits", "model.name": "cnn"}),
    ("subflot-mnist1d", "MNIST-1D, MLP", {"dataset": "mnist1d", "model.name": "mlp"}),
):
    register(Experiment(
        name=_name,
        description=f"SubFLOT vs HeteroFL vs FedRolex vs FedAvg (full width), {_desc}, 20 clients, "
                    "rates {0, 1/4, 1/2, 3/4}, Dirichlet 0.1 and 2 classes per client",
        arms=_scheme_arms(),
        base={**BASE, **_over},
        seeds=(0, 1, 2),
        quick=QUICK,
        quick_seeds=(0,),
        report=subflot_report,
    ))

register(Experiment(
    name="subflot-ablation",
    description="SubFLOT ablation (without OTP / SAR / OTA; the paper's barycentric maps), digits, "
                "MLP, 20 clients, Dirichlet 0.1",
    arms=_ablation_arms(),
    base={**BASE, "dataset": "digits", "model.name": "mlp"},
    seeds=(0, 1, 2),
    quick=QUICK,
    quick_seeds=(0,),
    report=subflot_report,
))
