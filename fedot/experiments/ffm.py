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
FedAvg-style 10 local steps per round. ``ffm-mnist``: the same protocol on real 28×28 MNIST
(``mnist-5k``: 4,000 training / 1,000 held-out images) with a two-level conv velocity field,
sized for a shared 2-core CPU. Metrics: W2 (2-D, exact) or sliced W2 and the Fréchet distance on
the features of a classifier trained on the run's training images, at NFE 1–100 (Euler),
straightness and path-length ratio; for MNIST also the same distances between real training
and held-out images (the floor).
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


FLOW_ROUNDS_MNIST = 30
POTENTIAL_ROUNDS_MNIST = 30
#: MNIST-5k at 28×28: 4 clients, Dirichlet label skew α = 0.3, 10 local Adam steps per round
#: (persistent client state), batch 64, 30 rounds (300 local steps per client) of a 16-channel
#: ``VelocityConv28`` (63 k parameters); 500 generated vs 500 held-out images, evaluated at round
#: 0 and after the last (an evaluation at 500 images × 141 NFE costs about as much as 10 rounds).
#: Sized for a 2-core CPU shared with other jobs: the 12 runs took 36 min with ``--jobs 1`` and
#: one torch thread (``OMP_NUM_THREADS=1``; docs/ffm.md). A short budget, not converged.
BASE_MNIST = {
    "scheme": "ffm", "clients": 4, "rounds": FLOW_ROUNDS_MNIST, "checkpoint": False,
    "ffm.data": "mnist-5k", "ffm.split": "dirichlet", "ffm.alpha": 0.3, "ffm.local-steps": 10,
    "ffm.batch-size": 64, "ffm.lr": 2e-3, "ffm.channels": 16, "ffm.eval-every": FLOW_ROUNDS_MNIST,
    "ffm.eval-samples": 500, "ffm.potential-rounds": POTENTIAL_ROUNDS_MNIST,
    "ffm.candidates": 64, "data.local-test-fraction": 0.0, "fraction-evaluate": 0.0,
    "ffm.nfe": "1,2,3,5,10,20,100",
}
#: ``--quick``: 30 local steps per client of an 8-channel net at lr 5e-3, evaluated on 200 images
#: at NFE 1 and 10 only (an evaluation at all seven NFEs cost more than the training): FD falls
#: well below its round-0 value in seconds per arm.
QUICK_MNIST = {"rounds": 3, "ffm.potential-rounds": 2, "ffm.eval-every": 3, "ffm.channels": 8,
               "ffm.candidates": 16, "ffm.eval-samples": 200, "ffm.lr": 5e-3, "ffm.nfe": "1,10"}


def _mnist_arms() -> list[Arm]:
    return [
        Arm("vanilla", {"ffm.coupling": "vanilla"}),
        Arm("lot", {"ffm.coupling": "lot"}),
        Arm("got", {"ffm.coupling": "got"}),
        Arm("centralised OT-CFM", {**CENTRAL, "ffm.coupling": "lot"}),
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
    lines += _floor_lines(summary)
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
    floors = _floors(summary)
    payload: dict[str, Any] = {"nfes": nfes, "results": rows}
    if floors:
        payload["floors"] = floors
    (out_dir / "ffm.json").write_text(json.dumps(payload, indent=2) + "\n")
    _plot(rows, prefixes, nfes, out_dir / "ffm.png", title=summary["title"])


#: Run-level floors (``results.json`` → ``flow``) reported by :func:`ffm_report`: the distance
#: between real training and held-out images, and the feature classifier's held-out accuracy.
_FLOOR_KEYS = {
    "fd_real_train_vs_test": "FD, real training images vs held-out images",
    "swd_real_train_vs_test": "sliced W2, real training images vs held-out images",
    "feature_classifier_test_accuracy": "feature classifier's held-out accuracy",
}


def _floors(summary: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Mean ± std over seeds of the floors in the run directories (one value per seed)."""
    import numpy as np

    per_seed: dict[str, dict[int, float]] = {}
    for row in summary["results"].values():
        for run_dir in row.get("run_dirs", []):
            path = Path(run_dir) / "results.json"
            if not path.exists():
                continue
            res = json.loads(path.read_text())
            for key in _FLOOR_KEYS:
                if key in res.get("flow", {}):  # the same for every arm of a seed
                    per_seed.setdefault(key, {})[int(res["config"]["seed"])] = res["flow"][key]
    out = {}
    for key, by_seed in per_seed.items():
        vals = np.array([by_seed[s] for s in sorted(by_seed)], dtype=float)
        out[key] = {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if len(vals) > 1
                    else 0.0, "n": len(vals), "values": vals.tolist()}
    return out


def _floor_lines(summary: Mapping[str, Any]) -> list[str]:
    floors = _floors(summary)
    if not floors:
        return []
    lines = ["## floor", "", "Measured on the same held-out images with the same features "
             "(mean ± std over seeds).", "", "| quantity | value |", "|---|---|"]
    lines += [f"| {_FLOOR_KEYS[k]} | {_fmt(v)} |" for k, v in floors.items()]
    return [*lines, ""]


def _convergence_lines(summary: Mapping[str, Any]) -> list[str]:
    """W2 (or FD) at NFE 1 and 100 at every evaluation round (mean over seeds), and the floor."""
    import numpy as np

    curves: dict[str, dict[int, list[tuple[float, float]]]] = {}
    floors = []
    metric = "w2"
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
            if res["config"]["ffm"]["data"] == "mnist-5k":
                metric = "fd"
            for e in res["rounds"]:
                server = e.get("server", {})
                if f"{metric}-nfe1" in server and f"{metric}-nfe100" in server:
                    step = max(e["round"] - offset, 0)
                    curves.setdefault(label, {}).setdefault(step, []).append(
                        (server[f"{metric}-nfe1"], server[f"{metric}-nfe100"]))
    if not curves:
        return []
    steps = sorted({s for c in curves.values() for s in c})
    unit = "flow steps" if metric == "w2" else "flow rounds"
    lines = [f"## convergence: {metric.upper()} at NFE 1 / NFE 100 after each number of {unit}",
             "", "Mean over seeds. GOT's potential rounds come before its flow step 0.", ""]
    if floors:
        lines += [f"Sampling floor: W2 between two independent target samples of the evaluation's "
                  f"size is {np.mean(floors):.3f} (mean over runs).", ""]
    word = "step" if metric == "w2" else "round"
    lines += ["| arm | " + " | ".join(f"{word} {s}" for s in steps) + " |",
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


register(Experiment(
    name="ffm-mnist",
    description="federated flow matching on real 28×28 MNIST (mnist-5k), 4 clients, Dirichlet "
                "label skew α=0.3, vs centralised OT-CFM (short CPU budget)",
    arms=_mnist_arms(),
    base=BASE_MNIST,
    seeds=(0, 1, 2),
    quick=QUICK_MNIST,
    quick_seeds=(0,),
    report=ffm_report,
))
