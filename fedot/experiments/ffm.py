"""Federated flow matching experiments: vanilla vs LOT vs GOT vs centralised I-CFM / OT-CFM.

``ffm-2d``: N(0, I) → 8 gaussians, 4 clients, each holding 2 of the 8 modes (``split = mode``),
per-step aggregation (1 local step per round, as in the paper), 400 flow rounds of batch 256 per
client; GOT first learns the dual potential for 300 rounds. Centralised I-CFM and OT-CFM are the
same code with one client holding the pooled data (batch 256). LOT's heterogeneity sweep:
IID, Dirichlet over modes α = 1.0 and 0.1, and the mode split. ``ffm-digits``: 8×8 digits in
[-1, 1], 4 clients with Dirichlet label skew α = 0.3 (LOT and vanilla also at α = 0.1 and 1.0),
FedAvg-style 10 local steps per round. Metrics: W2 (2-D, exact) or sliced W2 and the Fréchet
distance on digits-classifier features, at NFE 1–100 (Euler), straightness and path-length ratio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedot.experiments.compare import Arm
from fedot.experiments.registry import Experiment, register

__all__ = ["ffm_report"]

FLOW_ROUNDS_2D = 400
POTENTIAL_ROUNDS_2D = 300
BASE_2D = {
    "scheme": "ffm", "clients": 4, "rounds": FLOW_ROUNDS_2D, "checkpoint": False,
    "ffm.data": "8gaussians", "ffm.split": "mode", "ffm.local-steps": 1, "ffm.batch-size": 256,
    "ffm.lr": 2e-3, "ffm.eval-every": 100, "ffm.potential-rounds": POTENTIAL_ROUNDS_2D,
    "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0,
}
GOT_2D = {"ffm.coupling": "got"}
CENTRAL = {"clients": 1, "ffm.split": "iid"}


def _2d_arms() -> list[Arm]:
    return [
        Arm("vanilla", {"ffm.coupling": "vanilla"}),
        Arm("lot", {"ffm.coupling": "lot"}),
        Arm("got", GOT_2D),
        Arm("centralised I-CFM", {**CENTRAL, "ffm.coupling": "vanilla"}),
        Arm("centralised OT-CFM", {**CENTRAL, "ffm.coupling": "lot"}),
        Arm("lot, iid", {"ffm.coupling": "lot", "ffm.split": "iid"}),
        Arm("lot, dirichlet 1.0", {"ffm.coupling": "lot", "ffm.split": "dirichlet",
                                   "ffm.alpha": 1.0}),
        Arm("lot, dirichlet 0.1", {"ffm.coupling": "lot", "ffm.split": "dirichlet",
                                   "ffm.alpha": 0.1}),
    ]


FLOW_ROUNDS_DIGITS = 100
POTENTIAL_ROUNDS_DIGITS = 100
BASE_DIGITS = {
    "scheme": "ffm", "clients": 4, "rounds": FLOW_ROUNDS_DIGITS, "checkpoint": False,
    "ffm.data": "digits", "ffm.split": "dirichlet", "ffm.alpha": 0.3, "ffm.local-steps": 10,
    "ffm.batch-size": 128, "ffm.lr": 2e-3, "ffm.channels": 16, "ffm.eval-every": 50,
    "ffm.potential-rounds": POTENTIAL_ROUNDS_DIGITS, "ffm.candidates": 128,
    "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0, "ffm.nfe": "1,2,3,5,10,20,100",
}


def _digits_arms() -> list[Arm]:
    got = {"ffm.coupling": "got"}
    return [
        Arm("vanilla", {"ffm.coupling": "vanilla"}),
        Arm("lot", {"ffm.coupling": "lot"}),
        Arm("got", got),
        Arm("centralised I-CFM", {**CENTRAL, "ffm.coupling": "vanilla"}),
        Arm("centralised OT-CFM", {**CENTRAL, "ffm.coupling": "lot"}),
        Arm("vanilla, alpha 0.1", {"ffm.coupling": "vanilla", "ffm.alpha": 0.1}),
        Arm("lot, alpha 0.1", {"ffm.coupling": "lot", "ffm.alpha": 0.1}),
        Arm("vanilla, alpha 1.0", {"ffm.coupling": "vanilla", "ffm.alpha": 1.0}),
        Arm("lot, alpha 1.0", {"ffm.coupling": "lot", "ffm.alpha": 1.0}),
    ]


def _fmt(stat: Mapping[str, float] | None) -> str:
    return "–" if not stat else f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def ffm_report(summary: dict[str, Any], out_dir: Path) -> None:
    """Write ``ffm.md`` (distance vs NFE per arm, straightness, client train time) and ``ffm.png``."""
    rows = summary["results"]
    prefixes = [p for p in ("w2", "swd", "fd") if any(f"{p}-nfe1" in r for r in rows.values())]
    nfes = sorted({int(m.split("nfe")[1]) for r in rows.values() for m in r
                   if "-nfe" in m and m.split("-")[0] in prefixes})
    train_time = _train_times(summary)
    lines = [f"# {summary['title']}", "", f"Seeds {summary['seeds']}; mean ± std after the last "
             "round; Euler sampling from the same source noise for every arm. Lower is better.", ""]
    for prefix in prefixes:
        lines += [f"## {prefix} vs NFE", "", "| arm | " + " | ".join(f"NFE {n}" for n in nfes)
                  + " |", "|---|" + "---|" * len(nfes)]
        for label, row in rows.items():
            lines.append(f"| {label} | " + " | ".join(_fmt(row.get(f"{prefix}-nfe{n}"))
                                                     for n in nfes) + " |")
        lines.append("")
    lines += ["## straightness and cost", "",
              "| arm | straightness | path-length ratio | client train time per flow round (s) |",
              "|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(f"| {label} | {_fmt(row.get('straightness'))} | "
                     f"{_fmt(row.get('path-length-ratio'))} | {train_time.get(label, '–')} |")
    (out_dir / "ffm.md").write_text("\n".join(lines) + "\n")
    (out_dir / "ffm.json").write_text(json.dumps({"nfes": nfes, "results": rows}, indent=2) + "\n")
    _plot(rows, prefixes, nfes, out_dir / "ffm.png", title=summary["title"])


def _train_times(summary: Mapping[str, Any]) -> dict[str, str]:
    """Mean client training time per flow round, read from the run directories."""
    import numpy as np

    out = {}
    for label, row in summary["results"].items():
        per_run = []
        for run_dir in row.get("run_dirs", []):
            path = Path(run_dir) / "results.json"
            if not path.exists():
                continue
            res = json.loads(path.read_text())
            times = [c["train-time"] for e in res["rounds"] if e.get("stage") == "flow"
                     for c in e.get("clients", []) if "train-time" in c]
            if times:
                per_run.append(float(np.mean(times)))
        if per_run:
            out[label] = f"{np.mean(per_run):.4f}"
    return out


def _plot(rows: Mapping[str, Any], prefixes: list[str], nfes: list[int], path: Path, *,
          title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(prefixes), figsize=(6.5 * len(prefixes), 4.2), squeeze=False)
    for ax, prefix in zip(axes[0], prefixes, strict=True):
        for label, row in rows.items():
            stats = [row.get(f"{prefix}-nfe{n}") for n in nfes]
            if not all(stats):
                continue
            mean = np.array([s["mean"] for s in stats])
            std = np.array([s["std"] for s in stats])
            style = "--" if label.startswith("centralised") else "-"
            ax.plot(nfes, mean, style, marker="o", ms=3, label=label)
            ax.fill_between(nfes, mean - std, mean + std, alpha=0.15)
        ax.set_xscale("log")
        ax.set_xlabel("NFE (Euler steps)")
        ax.set_ylabel(prefix)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


register(Experiment(
    name="ffm-2d",
    description="federated flow matching, N(0,I) → 8 gaussians, 4 clients with 2 modes each",
    arms=_2d_arms(),
    base=BASE_2D,
    seeds=(0, 1, 2),
    quick={"rounds": 6, "ffm.potential-rounds": 3, "ffm.samples": 600, "ffm.eval-samples": 200,
           "ffm.eval-every": 3, "ffm.batch-size": 64, "ffm.hidden": 32, "ffm.candidates": 32},
    quick_seeds=(0,),
    report=ffm_report,
))

register(Experiment(
    name="ffm-digits",
    description="federated flow matching on 8×8 digits, 4 clients, Dirichlet label skew",
    arms=_digits_arms(),
    base=BASE_DIGITS,
    seeds=(0, 1, 2),
    quick={"rounds": 4, "ffm.potential-rounds": 2, "ffm.local-steps": 2, "ffm.eval-every": 2,
           "ffm.channels": 4, "ffm.candidates": 16, "ffm.eval-samples": 100},
    quick_seeds=(0,),
    report=ffm_report,
))

#: A longer budget for sample quality (one seed): 250 flow rounds (2,500 local steps per client) of
#: a 32-channel net; same data, split and evaluation as ``ffm-digits``.
LONG_DIGITS = {**BASE_DIGITS, "rounds": 250, "ffm.channels": 32, "ffm.eval-every": 125}

register(Experiment(
    name="ffm-digits-long",
    description="federated flow matching on 8×8 digits, 4 clients, α=0.3: 2.5× the steps, 32 "
                "channels, one seed (sample quality)",
    arms=_digits_arms()[:3],
    base=LONG_DIGITS,
    seeds=(0,),
    quick={"rounds": 3, "ffm.potential-rounds": 2, "ffm.local-steps": 2, "ffm.eval-every": 3,
           "ffm.channels": 4, "ffm.candidates": 16, "ffm.eval-samples": 100},
    quick_seeds=(0,),
    report=ffm_report,
))

