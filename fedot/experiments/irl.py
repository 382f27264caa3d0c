"""Federated MaxEnt IRL experiments: barycenter vs averaging vs local vs centralised.

``irl-gridworld``: 5 clients on a 10×10 gridworld (slip 0.1), 50 demonstrations each, one-shot
fusion, 5 seeds, under a heterogeneity sweep — goal shift of 0–4 cells, slip spread 0–0.4, random
obstacle layouts, unequal demonstration counts, two under-trained clients — plus a 5-round
multi-round run at goal shift 2. ``irl-gym``: gymnasium FrozenLake 4×4 (slippery; slip and demo
heterogeneity are not available there, so equal and unequal demos), FrozenLake 8×8 with a random
map per client, CliffWalking, Taxi, and discretised MountainCar and Pendulum (20×20).
``irl-sensitivity``: the barycenter's temperature τ and regularisation ε at goal shift 2.

Every setting runs ``irl-barycenter`` and ``irl-average`` on the same clients and demonstrations
(same seed) and the centralised upper bound (``irl-average`` with one client holding every
source's demonstrations: MaxEnt IRL on the pooled data, each trajectory with its own dynamics).
The local-only baseline is read from the federated runs (``local-*``: each client's own reward,
scored like the global one). Metrics are against the shared objective: Pearson, Spearman, EPIC,
EVD (in each client's own dynamics) and success rate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fedot.experiments.compare import Arm, format_stat
from fedot.experiments.registry import Experiment, register

__all__ = ["GRID_SETTINGS", "GYM_SETTINGS", "irl_report"]

METHODS = {
    "barycenter": {"scheme": "irl-barycenter"},
    "average": {"scheme": "irl-average"},
    "centralised": {"scheme": "irl-average", "clients": 1, "irl.sources": 5},
}
GRID_SETTINGS: dict[str, dict[str, Any]] = {
    "none": {"irl.heterogeneity": "none"},
    **{f"goal-shift {s:g}": {"irl.heterogeneity": "goal-shift", "irl.strength": float(s)}
       for s in (1, 2, 3, 4)},
    "slip 0-0.4": {"irl.heterogeneity": "slip", "irl.strength": 0.4},
    "layout 0.15": {"irl.heterogeneity": "layout", "irl.strength": 0.15},
    "demos 10-90": {"irl.heterogeneity": "demos"},
    "undertrained 2/5": {"irl.heterogeneity": "none", "irl.undertrained": 2},
}
GYM_SETTINGS: dict[str, dict[str, Any]] = {
    "frozenlake-4x4": {"irl.env": "frozenlake-4x4", "irl.heterogeneity": "none"},
    "frozenlake-4x4 demos": {"irl.env": "frozenlake-4x4", "irl.heterogeneity": "demos"},
    "frozenlake-8x8 layouts": {"irl.env": "frozenlake-random", "irl.heterogeneity": "layout"},
    "cliffwalking": {"irl.env": "cliffwalking", "irl.heterogeneity": "none"},
    "taxi": {"irl.env": "taxi", "irl.heterogeneity": "none", "irl.horizon": 40},
    "mountaincar": {"irl.env": "mountaincar", "irl.heterogeneity": "none"},
    "pendulum": {"irl.env": "pendulum", "irl.heterogeneity": "none", "irl.horizon": 60},
}
COMMON = {"clients": 5, "rounds": 1, "checkpoint": False}
REPORTED = ("pearson", "spearman", "epic", "evd", "success")


def _arms(settings: Mapping[str, Mapping[str, Any]]) -> list[Arm]:
    return [Arm(f"{name} · {method}", {**setting, **over})
            for name, setting in settings.items() for method, over in METHODS.items()]


def _grid_arms() -> list[Arm]:
    arms = _arms(GRID_SETTINGS)
    multi = {"irl.heterogeneity": "goal-shift", "irl.strength": 2.0, "rounds": 5}
    arms += [Arm("goal-shift 2, 5 rounds · barycenter", {**multi, **METHODS["barycenter"]}),
             Arm("goal-shift 2, 5 rounds · average", {**multi, **METHODS["average"]})]
    return arms


def _fmt(stat: Mapping[str, float] | None) -> str:
    return format_stat(stat, 3)


def irl_report(summary: dict[str, Any], out_dir: Path) -> None:
    """Write ``irl.md`` (settings × methods, local-only from the federated runs) and ``irl.png``."""
    rows: dict[str, dict[str, Any]] = {}
    for label, row in summary["results"].items():
        setting, method = (p.strip() for p in label.split("·"))
        rows.setdefault(setting, {})[method] = row
        if method == "average":  # the local-only baseline measured in the federated run
            rows[setting]["local"] = {m: row.get(f"local-{m}") for m in REPORTED}
    methods = ["barycenter", "average", "local", "centralised"]
    lines = [f"# {summary['title']}", "",
             f"Seeds {summary['seeds']}; mean ± std. Against the shared objective's true reward: "
             "Pearson/Spearman (higher is better), EPIC distance and EVD (lower is better), "
             "success rate of the reward's optimal policy.", ""]
    for metric in REPORTED:
        if not any(metric in r.get(m, {}) or r.get(m, {}).get(metric) for r in rows.values()
                   for m in methods):
            continue
        lines += [f"## {metric}", "", "| setting | " + " | ".join(methods) + " |",
                  "|---|" + "---|" * len(methods)]
        for setting, by_method in rows.items():
            lines.append(f"| {setting} | " + " | ".join(
                _fmt((by_method.get(m) or {}).get(metric)) for m in methods) + " |")
        lines.append("")
    (out_dir / "irl.md").write_text("\n".join(lines))
    (out_dir / "irl.json").write_text(json.dumps(rows, indent=2) + "\n")
    _plot(rows, methods, out_dir / "irl.png", title=summary["title"])


def _plot(rows: Mapping[str, Any], methods: list[str], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = ("pearson", "epic", "evd")
    settings = list(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 0.45 * len(settings) + 2))
    y = np.arange(len(settings))
    height = 0.8 / len(methods)
    for ax, metric in zip(axes, metrics, strict=True):
        for i, method in enumerate(methods):
            stats = [(rows[s].get(method) or {}).get(metric) for s in settings]
            mean = [st["mean"] if st else np.nan for st in stats]
            std = [st["std"] if st else 0.0 for st in stats]
            ax.barh(y + i * height, mean, height, xerr=std, label=method)
        ax.set_yticks(y + 0.4 - height / 2, settings, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(metric + (" (lower is better)" if metric in ("epic", "evd") else ""))
        ax.grid(alpha=0.3, axis="x")
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


register(Experiment(
    name="irl-gridworld",
    description="federated MaxEnt IRL on a 10×10 gridworld: barycenter vs averaging vs local vs "
                "centralised under a heterogeneity sweep",
    arms=_grid_arms(),
    base=COMMON,
    seeds=(0, 1, 2, 3, 4),
    quick={"irl.iterations": 30, "irl.demos": 20, "irl.grid-size": 6},
    quick_seeds=(0,),
    report=irl_report,
))

register(Experiment(
    name="irl-gym",
    description="federated MaxEnt IRL on gymnasium FrozenLake, CliffWalking, Taxi and "
                "discretised MountainCar / Pendulum",
    arms=_arms(GYM_SETTINGS),
    base=COMMON,
    seeds=(0, 1, 2, 3, 4),
    quick={"irl.iterations": 10, "irl.demos": 10, "irl.bins": 8, "irl.test-demos": 5},
    quick_seeds=(0,),
    report=irl_report,
))

register(Experiment(
    name="irl-sensitivity",
    description="barycenter temperature τ and entropic ε at goal shift 2 (10×10 gridworld)",
    arms=[Arm(f"tau {tau:g}, reg {reg:g} · barycenter",
              {"scheme": "irl-barycenter", "irl.tau": tau, "irl.reg": reg})
          for tau in (0.5, 1.0, 2.0) for reg in (0.003, 0.01, 0.03)]
    + [Arm("reference · average", {"scheme": "irl-average"})],
    base={**COMMON, "irl.heterogeneity": "goal-shift", "irl.strength": 2.0},
    seeds=(0, 1, 2),
    quick={"irl.iterations": 30, "irl.demos": 20, "irl.grid-size": 6},
    quick_seeds=(0,),
    report=irl_report,
))
