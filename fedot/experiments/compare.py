"""Run arms × seeds on identical data and write a side-by-side summary (JSON, markdown, PNG)."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedot.experiments.progress import ProgressDisplay
from fedot.fl.results import read_results

__all__ = ["Arm", "RunFn", "compare", "format_stat", "summarise"]

logger = logging.getLogger(__name__)

#: ``run(overrides, out_dir) -> out_dir``: runs one federated job (inline, Ray or a connection).
RunFn = Callable[[Mapping[str, Any], Path], Path]

#: Server-side metrics reported in summaries (when present).
SUMMARY_METRICS = ("accuracy", "loss")
#: Client-evaluation metrics reported from the last evaluated round (when present): ``loss_p`` is
#: the importance-weighted objective of partial-participation schemes.
EVALUATE_METRICS = ("loss_p", "accuracy_p")


def last_evaluate(result: Mapping[str, Any], metric: str) -> float | None:
    """Return the metric from the last round whose client evaluation reported it."""
    for entry in reversed(result["rounds"]):
        if metric in entry.get("evaluate", {}):
            return float(entry["evaluate"][metric])
    return None


@dataclass(frozen=True)
class Arm:
    """One configuration in a comparison: a label and its run-config overrides."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=dict)


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_parallel(tasks: Sequence[tuple[dict[str, Any], Path, str]], run: RunFn, jobs: int,
                  display: ProgressDisplay | None = None) -> None:
    """Run ``tasks`` in ``jobs`` spawned processes with a fair share of the cores each."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    keys = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: str(threads) for k in keys})  # inherited by the spawned workers
    start = time.perf_counter()
    try:
        with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker, initargs=(threads,)) as pool:
            futures = {pool.submit(run, overrides, run_dir): (i, name)
                       for i, (overrides, run_dir, name) in enumerate(tasks)}
            for done, future in enumerate(as_completed(futures), start=1):
                future.result()  # a failed run stops the comparison with its own error
                index, name = futures[future]
                if display is not None:
                    display.task_done(index)
                logger.info("[%d/%d] %s done (%.0f s elapsed, %d jobs × %d threads)", done,
                            len(tasks), name, time.perf_counter() - start, jobs, threads)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def compare(
    arms: Sequence[Arm],
    *,
    seeds: Sequence[int],
    run: RunFn,
    out_dir: Path,
    base: Mapping[str, Any] | None = None,
    title: str = "comparison",
    jobs: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Run every arm with every seed (same seeds → same data and initial model for all arms).

    ``progress``: show runs done/total, each running run's round and latest metric, and an ETA
    on stderr while they run (:class:`fedot.experiments.progress.ProgressDisplay`).

    With ``jobs > 1`` the runs go to that many worker processes (``spawn``), each limited to
    ``max(1, cpu_count // jobs)`` threads, so small models — which do not scale across threads —
    use all cores; ``run`` must then be picklable. A run's numbers depend only on its config and
    thread count, not on which runs share the machine.

    Returns the summary written to ``out_dir/summary.json``.
    """
    labels = [a.label for a in arms]
    if len(set(labels)) != len(labels):
        raise ValueError(f"arm labels must be unique, got {labels}")
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [({**(base or {}), **arm.overrides, "seed": seed},
              out_dir / f"{_slug(arm.label)}-seed{seed}", f"{arm.label} seed={seed}")
             for arm in arms for seed in seeds]
    with ProgressDisplay([(name, run_dir) for _, run_dir, name in tasks],
                         enabled=progress) as display:
        if jobs == 1:
            for i, (overrides, run_dir, name) in enumerate(tasks):
                logger.info("[%d/%d] %s → %s", i + 1, len(tasks), name, run_dir)
                run(overrides, run_dir)
                display.task_done(i)
        else:
            _run_parallel(tasks, run, jobs, display)
    runs: dict[str, list[dict[str, Any]]] = {a.label: [] for a in arms}
    for (_, run_dir, _), (arm, _) in zip(tasks, ((a, s) for a in arms for s in seeds), strict=True):
        runs[arm.label].append(read_results(run_dir))
    summary = summarise(runs, title=title, seeds=list(seeds))
    summary["arms"] = {a.label: dict(a.overrides) for a in arms}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "summary.md").write_text(markdown_table(summary))
    plot_comparison(runs, out_dir / "comparison.png", title=title)
    return summary


def server_metrics(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """Return the final server metrics in any result: ``accuracy``/``loss`` first, then the rest."""
    seen = [m for r in results for m in r.get("final", {})]
    rest = list(dict.fromkeys(m for m in seen if m not in SUMMARY_METRICS))
    return [m for m in SUMMARY_METRICS if m in seen] + rest


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            "n": int(arr.size)}


def summarise(
    runs: Mapping[str, list[dict[str, Any]]], *, title: str, seeds: list[int]
) -> dict[str, Any]:
    """Summarise final server metrics and mean round time per arm, as mean ± std over seeds."""
    table: dict[str, dict[str, Any]] = {}
    metrics = server_metrics([r for rs in runs.values() for r in rs])
    for label, results in runs.items():
        row: dict[str, Any] = {}
        for metric in metrics:
            vals = [r["final"][metric] for r in results
                    if r.get("final", {}).get(metric) is not None]
            if vals:
                row[metric] = _mean_std(vals)
        for metric in EVALUATE_METRICS:
            evals = [v for r in results if (v := last_evaluate(r, metric)) is not None]
            if evals:
                row[metric] = _mean_std(evals)
        times = [np.mean([e["time_s"] for e in r["rounds"] if e["round"] > 0]) for r in results]
        row["round_time_s"] = _mean_std([float(t) for t in times])
        row["rounds"] = results[0]["config"]["rounds"]
        row["run_dirs"] = [r.get("out_dir", "") for r in results]
        table[label] = row
    return {"title": title, "seeds": seeds, "metrics": metrics, "results": table}


def format_stat(stat: Mapping[str, float] | None, digits: int = 4) -> str:
    """``mean ± std`` of a :func:`summarise` entry; the mean alone from one seed (no spread)."""
    if not stat:
        return "–"
    if stat.get("n", 2) < 2:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


_fmt = format_stat


def markdown_table(summary: Mapping[str, Any]) -> str:
    """Render the summary as a markdown table."""
    rows = summary["results"]
    server = summary.get("metrics", list(SUMMARY_METRICS))
    extra = [m for m in EVALUATE_METRICS if any(m in r for r in rows.values())]
    lines = [
        f"# {summary['title']}",
        "",
        f"Seeds: {summary['seeds']} ("
        + ("mean ± sample std over seeds; " if len(summary["seeds"]) > 1 else "one seed: no spread; ")
        + ", ".join(server) + " from the server's evaluation after the last round"
        + ("; loss_p / accuracy_p: p-weighted client objective / accuracy" if extra else "") + ")",
        "",
        "| arm | " + "".join(f"{m} | " for m in [*server, *extra]) + "round time (s) | rounds |",
        "|---|" + "---|" * (len(server) + len(extra)) + "---|---|",
    ]
    for label, row in rows.items():
        lines.append(
            f"| {label} | "
            + "".join(f"{_fmt(row.get(m))} | " for m in [*server, *extra])
            + f"{_fmt(row.get('round_time_s'), 3)} | {row['rounds']} |"
        )
    return "\n".join(lines) + "\n"


#: Line styles and markers cycled with the colours, so arms differ in more than colour.
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def arm_style(index: int) -> dict[str, Any]:
    """Colour, line style and marker of arm ``index``: no two of the first 40 arms look alike."""
    return {"color": f"C{index % 10}", "linestyle": LINESTYLES[index % 4],
            "marker": MARKERS[index % 8]}


def comparison_figure(runs: Mapping[str, list[dict[str, Any]]], *, title: str) -> Any:
    """Build the figure of :func:`plot_comparison` (returned for tests and callers)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    everything = [r for rs in runs.values() for r in rs]
    panels = [("evaluate", m) for m in EVALUATE_METRICS
              if any(last_evaluate(r, m) is not None for r in everything)]
    panels += [("server", m) for m in server_metrics(everything)[:4]]
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5 * max(1, len(panels)), 3.6))
    axes = np.atleast_1d(axes)
    handles: dict[str, Any] = {}
    for ax, (section, metric) in zip(axes, panels, strict=False):
        positive = True
        for index, (label, results) in enumerate(runs.items()):
            style = arm_style(index)
            rounds = [e["round"] for e in results[0]["rounds"] if metric in e.get(section, {})]
            if not rounds:  # a metric only some arms report is drawn for those arms only
                continue
            curves = [[next((e[section][metric] for e in r["rounds"] if e["round"] == x
                             and metric in e.get(section, {})), math.nan) for x in rounds]
                      for r in results]
            arr = np.asarray(curves, dtype=np.float64)
            positive = positive and bool(np.nanmin(arr) > 0)
            if metric.startswith("loss") and np.nanmin(arr) > 0:
                # log-scale panel: geometric mean with a ×/÷ geometric-std band
                logs = np.log(arr)
                centre, spread = np.nanmean(logs, axis=0), np.nanstd(logs, axis=0)
                mean, low, high = np.exp(centre), np.exp(centre - spread), np.exp(centre + spread)
            else:
                mean, std = np.nanmean(arr, axis=0), np.nanstd(arr, axis=0)
                low, high = mean - std, mean + std
            (line,) = ax.plot(rounds, mean, label=label, markevery=max(1, len(rounds) // 8),
                              markersize=4, **style)  # one style per arm in every panel
            handles.setdefault(label, line)
            if len(results) > 1:  # one seed: no spread to draw
                ax.fill_between(rounds, low, high, alpha=0.15, color=style["color"])
        ax.set_xlabel("round")
        ax.set_ylabel(f"{section} {metric}")
        if metric.startswith("loss") and positive:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    seeds = max((len(rs) for rs in runs.values()), default=1)
    fig.suptitle(title + ("" if seeds > 1 else " (one seed)"))
    fig.tight_layout()
    # one legend for all panels, below them: it never covers a curve
    fig.legend(list(handles.values()), list(handles), loc="upper center",
               bbox_to_anchor=(0.5, 0.0), ncol=min(4, max(1, len(handles))), fontsize=8,
               frameon=False)
    return fig


def plot_comparison(runs: Mapping[str, list[dict[str, Any]]], path: Path, *, title: str) -> Path:
    """Plot each arm's server metrics over rounds (mean with a ± std band over seeds).

    Every arm has its own colour, line style and marker (:func:`arm_style`), the same in every
    panel; the legend sits below the panels; with one seed there is no band.
    """
    import matplotlib.pyplot as plt

    fig = comparison_figure(runs, title=title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
