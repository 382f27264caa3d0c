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

from fedot.experiments.compare import Arm, format_stat
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
#: Quick mode: 4 clients, 5 rounds of 2 epochs — enough for every arm to leave chance (10 %).
QUICK = {"clients": 4, "rounds": 5, "local.epochs": 2, "model.hidden": 32}
#: The personalisation step SubFLOT's OTP ends with, given to a position-based baseline.
PERSONALISE = {"submodel.personalise": True}
#: The assignment variant (the default before SubFLOT's paper algorithm became the default).
MATCH = {"submodel.map": "match", "submodel.lam": 0.1}


def _scheme_arms(splits: Mapping[str, Mapping[str, Any]] = SPLITS) -> list[Arm]:
    arms = []
    for split, over in splits.items():
        arms += [
            Arm(f"subflot, {split}", {**over, "scheme": "subflot"}),
            Arm(f"heterofl, {split}", {**over, "scheme": "heterofl"}),
            Arm(f"heterofl + personalise, {split}", {**over, "scheme": "heterofl", **PERSONALISE}),
            Arm(f"fedrolex, {split}", {**over, "scheme": "fedrolex"}),
            Arm(f"fedrolex + personalise, {split}", {**over, "scheme": "fedrolex", **PERSONALISE}),
            Arm(f"fedavg full width, {split}", {**over, "scheme": "heterofl",
                                                "submodel.rates": "0"}),
        ]
    return arms


def _ablation_arms() -> list[Arm]:
    sub = {**SPLITS["dir0.1"], "scheme": "subflot"}
    return [
        Arm("subflot", sub),
        Arm("without OTP", {**sub, "submodel.otp": False}),
        Arm("without OTP, with the blend", {**sub, "submodel.otp": False, **PERSONALISE}),
        Arm("without SAR", {**sub, "submodel.sar": False}),
        Arm("without OTA", {**sub, "submodel.ota": False}),
        Arm("match variant, lam 0.1", {**sub, **MATCH}),
        Arm("match variant, lam 1", {**sub, "submodel.map": "match"}),
        Arm("heterofl", {**SPLITS["dir0.1"], "scheme": "heterofl"}),
        Arm("heterofl + personalise", {**SPLITS["dir0.1"], "scheme": "heterofl", **PERSONALISE}),
    ]


def _permuted_arms() -> list[Arm]:
    split = SPLITS["dir0.1"]
    perm = {**split, "submodel.permute-clients": True}
    return [
        Arm("subflot, permuted", {**perm, "scheme": "subflot"}),
        Arm("subflot match variant, permuted", {**perm, "scheme": "subflot", **MATCH}),
        Arm("heterofl, permuted", {**perm, "scheme": "heterofl"}),
        Arm("heterofl + personalise, permuted", {**perm, "scheme": "heterofl", **PERSONALISE}),
        Arm("fedrolex + personalise, permuted", {**perm, "scheme": "fedrolex", **PERSONALISE}),
        Arm("subflot, not permuted", {**split, "scheme": "subflot"}),
        Arm("heterofl + personalise, not permuted", {**split, "scheme": "heterofl",
                                                      **PERSONALISE}),
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


def _plan_distances(summary: Mapping[str, Any]) -> dict[str, dict[int, tuple[float, float]]]:
    """Per arm with OT plans: round -> (mean OTP, mean OTA) ``plan_off_identity`` over seeds."""
    import math

    out: dict[str, dict[int, tuple[float, float]]] = {}
    for label, row in summary["results"].items():
        acc: dict[int, list[tuple[float, float]]] = {}
        for d in row.get("run_dirs", []):
            path = Path(d) / "results.json"
            if not path.exists():
                continue
            for e in json.loads(path.read_text())["rounds"]:
                if "plan_off_identity" in e:
                    v = e["plan_off_identity"]
                    pair = tuple(math.nan if v[k] is None else float(v[k]) for k in ("otp", "ota"))
                    acc.setdefault(int(e["round"]), []).append(pair)  # type: ignore[arg-type]
        if acc:
            out[label] = {}
            for r, vals in sorted(acc.items()):
                means = []
                for k in (0, 1):
                    finite = [v[k] for v in vals if math.isfinite(v[k])]
                    means.append(sum(finite) / len(finite) if finite else math.nan)
                out[label][r] = (means[0], means[1])
    return out


def _pair(v: tuple[float, float] | None) -> str:
    if v is None:
        return "–"
    return " / ".join("–" if x != x else f"{x:.2f}" for x in v)


def _plot_plans(plans: Mapping[str, Mapping[int, tuple[float, float]]], path: Path) -> None:
    """Plot the OTP and OTA plan distances from the identity per round, one colour per arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
    colours = plt.get_cmap("tab10")
    for i, (label, per) in enumerate(plans.items()):
        rounds = sorted(per)
        for k, ax in enumerate(axes):
            ax.plot(rounds, [per[r][k] for r in rounds], color=colours(i % 10),
                    linestyle=("-", "--", ":", "-.")[i % 4], label=label)
    for ax, title in zip(axes, ("OTP (global → client)", "OTA (client → global)"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("round")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("plan distance from the identity")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _fmt(stat: Mapping[str, float] | None) -> str:
    return format_stat(stat, 3)


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
    plans = _plan_distances(summary)
    if plans:
        rounds = sorted({r for per in plans.values() for r in per})
        shown = [r for r in rounds if r in (1, 2, 3, 5, 10) or r % 10 == 0 or r == rounds[-1]]
        lines += ["", "Distance of the OT plans from the identity (`plan_off_identity`, mean over "
                  "clients, groups and seeds): OTP (global → client) / OTA (client → global). "
                  "0: every unit keeps its index; 1: none does.", "",
                  "| arm | " + " | ".join(f"round {r}" for r in shown) + " |",
                  "|---|" + "---|" * len(shown)]
        for label, per in plans.items():
            cells = [_pair(per.get(r)) for r in shown]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        _plot_plans(plans, out_dir / "plans.png")
    (out_dir / "subflot.md").write_text("\n".join(lines) + "\n")
    (out_dir / "subflot.json").write_text(json.dumps(
        {"results": summary["results"], "cost": table, "plan_off_identity": {
            label: {str(r): v for r, v in per.items()} for label, per in plans.items()}},
        indent=2) + "\n")


for _name, _desc, _over in (
    ("subflot-digits", "digits, MLP", {"dataset": "digits", "model.name": "mlp"}),
    ("subflot-cnn", "digits, BN CNN", {"dataset": "digits", "model.name": "cnn"}),
    ("subflot-mnist1d", "MNIST-1D, MLP", {"dataset": "mnist1d", "model.name": "mlp"}),
):
    register(Experiment(
        name=_name,
        description=f"SubFLOT vs HeteroFL and FedRolex (each also with SubFLOT's personalisation "
                    f"step) vs FedAvg (full width), {_desc}, 20 clients, rates {{0, 1/4, 1/2, 3/4}}, "
                    "Dirichlet 0.1 and 2 classes per client",
        arms=_scheme_arms(),
        base={**BASE, **_over},
        seeds=(0, 1, 2),
        quick=QUICK,
        quick_seeds=(0,),
        report=subflot_report,
    ))

register(Experiment(
    name="subflot-ablation",
    description="SubFLOT ablation (without OTP / SAR / OTA; the match variant; HeteroFL with and "
                "without the personalisation step), digits, MLP, 20 clients, Dirichlet 0.1",
    arms=_ablation_arms(),
    base={**BASE, "dataset": "digits", "model.name": "mlp"},
    seeds=(0, 1, 2),
    quick=QUICK,
    quick_seeds=(0,),
    report=subflot_report,
))

register(Experiment(
    name="subflot-permuted",
    description="Clients whose hidden units are permuted relative to each other (each reorders its "
                "model once, unknown to the server): does OT alignment then help? digits, MLP, "
                "20 clients, Dirichlet 0.1",
    arms=_permuted_arms(),
    base={**BASE, "dataset": "digits", "model.name": "mlp"},
    seeds=(0, 1, 2),
    quick=QUICK,
    quick_seeds=(0,),
    report=subflot_report,
))

#: The paper's training regime (arXiv 2604.06631 §3(c)): plain SGD, batch 256, 5 local epochs,
#: λ = 1, α = 0.5, 20 clients at full participation, rates {0, 1/4, 1/2, 3/4}; 200 rounds at lr
#: 0.001. Here on real MNIST-5k (28 × 28) in 100 rounds (to fit about 15 minutes on 2 cores).
#: A client holds ~200 images here against ~2,500 for the paper's CIFAR-10 clients, so batch 256
#: is one step per epoch (5 per round, not ~50), and at lr 0.001 nothing trains in 100 rounds
#: (measured: every arm's global accuracy 0.10-0.17, docs/subflot.md). The learning rate is
#: therefore scaled so that lr × local steps over the run matches the paper's (0.001 × 50 × 200 =
#: 10 = 0.02 × 5 × 100).
PAPER = {
    "clients": 20, "rounds": 100, "checkpoint": False, "dataset": "mnist-5k", "model.name": "mlp",
    "model.hidden": 64, "submodel.rates": "0,0.25,0.5,0.75", "submodel.lam": 1.0,
    "submodel.alpha": 0.5, "local.epochs": 5, "local.batch-size": 256, "local.lr": 0.02,
    "local.momentum": 0.0, "local.optimizer": "sgd",
}

register(Experiment(
    name="subflot-paper",
    description="SubFLOT in the paper's training regime (plain SGD, batch 256, 5 epochs, lambda "
                "1; 100 rounds at lr 0.02 for the paper's 200 at 0.001, the same lr x steps) vs "
                "HeteroFL and FedRolex with and without the personalisation step, real MNIST-5k, "
                "MLP, Dirichlet 0.1",
    arms=_scheme_arms({"dir0.1": SPLITS["dir0.1"]}),
    base=PAPER,
    seeds=(0, 1, 2),
    quick={"clients": 4, "rounds": 5, "model.hidden": 32, "local.lr": 0.05},
    quick_seeds=(0,),
    report=subflot_report,
))

#: The BN CNN on real MNIST-5k (28 × 28; issue 16). ``build_model("cnn")`` has a third
#: conv-BN-ReLU-pool block (64 channels) at 28 × 28, pruned and aligned like the others. A CNN
#: step on 28 × 28 images costs far more than the digits MLP's, so the budget is cut to fit the
#: three 3-seed MNIST-5k runs of issue 16 into about 75 minutes on 2 shared cores: one split
#: (Dirichlet 0.1), 10 clients (about 320 training images each), 15 rounds of 1 local epoch
#: (the 3-seed run took 2222 s with one torch thread, ≈ 8 s per round; not converged, see
#: docs/subflot.md); fedot's default local training (SGD lr 0.1, momentum 0.9, batch 32), hidden 64.
CNN_MNIST = {
    **BASE, "dataset": "mnist-5k", "model.name": "cnn", "clients": 10, "rounds": 15,
    "local.epochs": 1,
}

register(Experiment(
    name="subflot-cnn-mnist",
    description="SubFLOT vs HeteroFL and FedRolex (each also with SubFLOT's personalisation step) "
                "vs FedAvg (full width), real MNIST-5k, BN CNN, 10 clients, rates {0, 1/4, 1/2, "
                "3/4}, Dirichlet 0.1, 15 rounds",
    arms=_scheme_arms({"dir0.1": SPLITS["dir0.1"]}),
    base=CNN_MNIST,
    seeds=(0, 1, 2),
    # quick: a smoke test of the arms and the report on 8 × 8 digits (subflot-cnn's quick
    # settings). On 28 × 28 no arm's global model left chance in 2 rounds (4 clients, IID or
    # Dirichlet 0.1) at 10-25 s per round on the shared CPU; in the full run the baselines' global
    # models leave it from round 2.
    quick={**QUICK, "dataset": "digits"},
    quick_seeds=(0,),
    report=subflot_report,
))
