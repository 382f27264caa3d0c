"""Federated flow matching experiments: vanilla vs LOT vs GOT vs centralised I-CFM / OT-CFM.

``ffm-2d``: N(0, I) → 8 gaussians, 4 clients, each holding 2 of the 8 modes (``split = mode``),
per-step aggregation (1 local step per round, as in the paper; the server holds Adam) for 10k
flow rounds of batch 64 per client; GOT first learns the dual potential for 2k rounds.
Centralised I-CFM and OT-CFM are the same code with one client holding the pooled data (batch
256 = the clients' union); torchcfm 1.0.7's I-CFM / OT-CFM are trained the same way. Runs go to
the batched simulation (:mod:`fedot.fl.flow_sim`, tested equal to the Flower path).
``ffm-2d-heterogeneity``: LOT and vanilla under IID, Dirichlet over modes α = 1.0 and 0.1, and
the mode split. ``ffm-digits``: 8×8 digits in
[-1, 1], 4 clients with Dirichlet label skew α = 0.3 (LOT and vanilla also at α = 0.1 and 1.0),
FedAvg-style 10 local steps per round. Metrics: W2 (2-D, exact) or sliced W2 and the Fréchet
distance on digits-classifier features, at NFE 1–100 (Euler), straightness and path-length ratio.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedot.experiments.compare import Arm, format_stat
from fedot.experiments.registry import Experiment, register

__all__ = ["SimulatedRun", "ffm_report"]

FLOW_ROUNDS_2D = 10_000
POTENTIAL_ROUNDS_2D = 2_000
#: Per-step aggregation through the server's Adam: 4 clients × batch 64 = 256 samples a step, the
#: centralised baselines' batch; 10k steps (torchcfm's 2-D examples train 10–20k).
BASE_2D = {
    "scheme": "ffm", "clients": 4, "rounds": FLOW_ROUNDS_2D, "checkpoint": False,
    "ffm.data": "8gaussians", "ffm.split": "mode", "ffm.local-steps": 1,
    "ffm.potential-local-steps": 1, "ffm.batch-size": 64, "ffm.lr": 2e-3,
    "ffm.eval-every": 2_500, "ffm.potential-rounds": POTENTIAL_ROUNDS_2D,
    "ffm.nfe": "1,2,3,10,100", "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0,
}
GOT_2D = {"ffm.coupling": "got"}
CENTRAL = {"clients": 1, "ffm.split": "iid"}
CENTRAL_2D = {**CENTRAL, "ffm.batch-size": 256}
#: ``--quick``: 400 steps of a smaller model: enough to move W2 at NFE 100 well off its start.
QUICK_2D = {"rounds": 400, "ffm.potential-rounds": 50, "ffm.samples": 1000,
            "ffm.eval-samples": 300, "ffm.eval-every": 200, "ffm.hidden": 64, "ffm.candidates": 32,
            "ffm.lr": 5e-3}


@dataclass(frozen=True)
class SimulatedRun:
    """``run(overrides, out_dir)`` on the batched simulation of per-step FFM (picklable).

    An arm's ``reference`` override (not a run-config key) selects a reference implementation
    (:data:`fedot.fl.flow_sim.REFERENCES`).
    """

    def __call__(self, overrides: Mapping[str, Any], out_dir: Path) -> Path:
        """Validate the run config, simulate it into ``out_dir``; return ``out_dir``."""
        from fedot.config import load_run_config
        from fedot.fl.flow_sim import simulate_flow
        from fedot.fl.inline import load_apps

        overrides = dict(overrides)
        reference = overrides.pop("reference", None)
        _, _, defaults = load_apps()
        out_dir = Path(out_dir).resolve()
        cfg = load_run_config({**defaults, **overrides, "out-dir": str(out_dir)})
        return simulate_flow(cfg, out_dir, reference=reference)


def _2d_arms() -> list[Arm]:
    return [
        Arm("vanilla", {"ffm.coupling": "vanilla"}),
        Arm("lot", {"ffm.coupling": "lot"}),
        Arm("got", GOT_2D),
        Arm("centralised I-CFM", {**CENTRAL_2D, "ffm.coupling": "vanilla"}),
        Arm("centralised OT-CFM", {**CENTRAL_2D, "ffm.coupling": "lot"}),
        Arm("torchcfm I-CFM", {**CENTRAL_2D, "ffm.coupling": "vanilla", "reference": "torchcfm"}),
        Arm("torchcfm OT-CFM", {**CENTRAL_2D, "ffm.coupling": "lot", "reference": "torchcfm"}),
    ]


def _2d_split_arms() -> list[Arm]:
    out = []
    for coupling in ("lot", "vanilla"):
        out += [
            Arm(f"{coupling}, iid", {"ffm.coupling": coupling, "ffm.split": "iid"}),
            Arm(f"{coupling}, dirichlet 1.0", {"ffm.coupling": coupling, "ffm.split": "dirichlet",
                                                "ffm.alpha": 1.0}),
            Arm(f"{coupling}, dirichlet 0.1", {"ffm.coupling": coupling, "ffm.split": "dirichlet",
                                                "ffm.alpha": 0.1}),
            Arm(f"{coupling}, 2 modes per client", {"ffm.coupling": coupling}),
        ]
    return out


FLOW_ROUNDS_DIGITS = 100
POTENTIAL_ROUNDS_DIGITS = 100
BASE_DIGITS = {
    "scheme": "ffm", "clients": 4, "rounds": FLOW_ROUNDS_DIGITS, "checkpoint": False,
    "ffm.data": "digits", "ffm.split": "dirichlet", "ffm.alpha": 0.3, "ffm.local-steps": 10,
    "ffm.batch-size": 128, "ffm.lr": 2e-3, "ffm.channels": 16, "ffm.eval-every": 50,
    "ffm.potential-rounds": POTENTIAL_ROUNDS_DIGITS, "ffm.candidates": 128,
    "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0, "ffm.nfe": "1,2,3,5,10,20,100",
    # the documented digits tables were measured with a fresh local Adam every round
    "ffm.optimizer-state": "reset",
}


#: ``--quick``: 60 local steps per client of an 8-channel net at lr 5e-3: FD at NFE 10 falls from
#: 199 to 47 (vanilla, seed 0, measured), a clear signal in seconds per arm.
QUICK_DIGITS = {"rounds": 6, "ffm.potential-rounds": 2, "ffm.local-steps": 10, "ffm.eval-every": 3,
                "ffm.channels": 8, "ffm.candidates": 16, "ffm.eval-samples": 200, "ffm.lr": 5e-3}


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
    return format_stat(stat, 3)


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
    lines += _convergence_lines(summary)
    lines += ["## straightness and cost", "",
              "| arm | straightness | path-length ratio | train time per flow round (s)¹ |",
              "|---|---|---|---|"]
    for label, row in rows.items():
        lines.append(f"| {label} | {_fmt(row.get('straightness'))} | "
                     f"{_fmt(row.get('path-length-ratio'))} | {train_time.get(label, '–')} |")
    lines += ["", "¹ Flower runs: mean client training time; batched simulation: the compute time "
              "of a whole round (all clients' steps and the server's)."]
    (out_dir / "ffm.md").write_text("\n".join(lines) + "\n")
    (out_dir / "ffm.json").write_text(json.dumps({"nfes": nfes, "results": rows}, indent=2) + "\n")
    _plot(rows, prefixes, nfes, out_dir / "ffm.png", title=summary["title"])


def _convergence_lines(summary: Mapping[str, Any]) -> list[str]:
    """W2 at NFE 1 and 100 at every evaluation round (mean over seeds), and the sampling floor."""
    import numpy as np

    curves: dict[str, dict[int, list[tuple[float, float]]]] = {}
    floors = []
    for label, row in summary["results"].items():
        for run_dir in row.get("run_dirs", []):
            path = Path(run_dir) / "results.json"
            if not path.exists():
                continue
            res = json.loads(path.read_text())
            if "w2_two_target_samples" in res.get("flow", {}):
                floors.append(res["flow"]["w2_two_target_samples"])
            offset = (res["config"]["ffm"]["potential-rounds"]
                      if res["config"]["ffm"]["coupling"] == "got" else 0)
            for e in res["rounds"]:
                server = e.get("server", {})
                if "w2-nfe1" in server and "w2-nfe100" in server:
                    step = max(e["round"] - offset, 0)
                    curves.setdefault(label, {}).setdefault(step, []).append(
                        (server["w2-nfe1"], server["w2-nfe100"]))
    if not curves:
        return []
    steps = sorted({s for c in curves.values() for s in c})
    lines = ["## convergence: W2 at NFE 1 / NFE 100 after each number of flow steps", "",
             "Mean over seeds. GOT's potential rounds come before its flow step 0.", ""]
    if floors:
        lines += [f"Sampling floor: W2 between two independent target samples of the evaluation's "
                  f"size is {np.mean(floors):.3f} (mean over runs).", ""]
    lines += ["| arm | " + " | ".join(f"step {s}" for s in steps) + " |",
              "|---|" + "---|" * len(steps)]
    for label, c in curves.items():
        cells = []
        for s in steps:
            vals = c.get(s)
            cells.append("–" if not vals else
                         f"{np.mean([v[0] for v in vals]):.3f} / {np.mean([v[1] for v in vals]):.3f}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return [*lines, ""]


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
            if res.get("engine", {}).get("name") == "batched-simulation":
                # all clients of a round are computed together: the round's compute time
                times = [e["time_s"] for e in res["rounds"]
                         if e.get("stage") == "flow" and e["round"] > 0]
            else:
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
    description="federated flow matching to convergence (10k server-Adam steps), N(0,I) → 8 "
                "gaussians, 4 clients with 2 modes each, vs centralised and torchcfm",
    arms=_2d_arms(),
    base=BASE_2D,
    seeds=(0, 1, 2),
    quick=QUICK_2D,
    quick_seeds=(0,),
    report=ffm_report,
    runner=SimulatedRun(),
))

register(Experiment(
    name="ffm-2d-heterogeneity",
    description="LOT and vanilla FFM to convergence under IID, Dirichlet 1.0 / 0.1 and 2-modes "
                "client splits (8 gaussians)",
    arms=_2d_split_arms(),
    base=BASE_2D,
    seeds=(0, 1, 2),
    quick=QUICK_2D,
    quick_seeds=(0,),
    report=ffm_report,
    runner=SimulatedRun(),
))

register(Experiment(
    name="ffm-digits",
    description="federated flow matching on 8×8 digits, 4 clients, Dirichlet label skew",
    arms=_digits_arms(),
    base=BASE_DIGITS,
    seeds=(0, 1, 2),
    quick=QUICK_DIGITS,
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
    quick=QUICK_DIGITS,
    quick_seeds=(0,),
    report=ffm_report,
))

