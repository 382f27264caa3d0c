"""``python -m fedot.bench`` (``make bench``): run the benchmarks, write docs/benchmarks.md + PNGs."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from fedot.bench.aggregation import bench_aggregation_paths
from fedot.bench.barycenter import bench_barycenter, bench_fusion
from fedot.bench.e2e import bench_ray_overhead, bench_scale
from fedot.bench.fedavot import bench_aggregation, bench_ipfp
from fedot.bench.kernels import bench_kernels, kernel_lines
from fedot.bench.otfusion import bench_otfusion
from fedot.bench.rounds import bench_round_overhead
from fedot.bench.subflot import bench_subflot
from fedot.fl.inline import project_root
from fedot.learning import resolve_device

_LOG = logging.getLogger("fedot.bench")


def _plot(overhead: dict[str, Any], ray: dict[str, Any], paths: list[dict[str, Any]],
          path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.6))
    a.bar(["Flower FedAvg", "fedot fedavg"],
          [overhead["flower_fedavg_round_s"] * 1e3, overhead["fedot_fedavg_round_s"] * 1e3],
          color=["#888", "#1f77b4"])
    a.set_ylabel("median round time (ms)")
    a.set_title(f"in-process grid (ratio {overhead['ratio']:.2f})")
    names = ["Flower FedAvg\n(Ray)", "fedot fedavg\n(Ray)", "fedot fedavg\n(inline)"]
    b.bar(names, [ray["flower_round_s"], ray["fedot_round_s"], ray["inline_round_s"]],
          color=["#888", "#1f77b4", "#2ca02c"])
    b.set_ylabel("mean round time (s), rounds ≥ 2 (inline: median)")
    b.set_title(f"flwr run, Ray simulation (ratio {ray['ratio']:.2f})")
    for n, marker in ((10, "o"), (100, "s")):
        rows = [r for r in paths if r["N"] == n]
        ps = [r["P"] for r in rows]
        for key, color in (("floor", "#888"), ("flower", "#d62728"), ("fedot", "#1f77b4")):
            c.plot(ps, [r[f"{key}_s"] * 1e3 for r in rows], marker=marker, color=color,
                   label=f"{key}, N={n}")
    c.set_xscale("log")
    c.set_yscale("log")
    c.set_xlabel("parameters P")
    c.set_ylabel("time (ms)")
    c.set_title("aggregation of N replies")
    c.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _Sections:
    """Run benchmark sections in turn, recording each one's wall time and the machine's load."""

    def __init__(self) -> None:
        self.load: list[dict[str, Any]] = []

    def __call__(self, name: str, fn: Any) -> Any:
        before = os.getloadavg()[0]
        start = time.perf_counter()
        _LOG.info("%s ...", name)
        out = fn()
        wall = time.perf_counter() - start
        after = os.getloadavg()[0]
        self.load.append({"section": name, "wall_s": wall, "load_before": before,
                          "load_after": after})
        _LOG.info("%s: done in %.1f s (1-min load %.2f -> %.2f)", name, wall, before, after)
        return out


def main() -> None:
    """Run all benchmarks and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=project_root() / "docs")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, sizes and repeats")
    parser.add_argument("--device", default="cpu",
                        help="torch device for the OT kernels, OTFusion and the device "
                             "aggregation path (cpu, cuda, cuda:N)")
    parser.add_argument("--no-scale", action="store_true",
                        help="skip the 1,000 / 10,000-client scale runs")
    args = parser.parse_args()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s fedot.bench: %(message)s", "%H:%M:%S"))
    _LOG.addHandler(handler)
    _LOG.setLevel(logging.INFO)
    _LOG.propagate = False
    os.environ.setdefault("FLWR_LOG_LEVEL", "WARNING")
    quick, device = args.quick, str(resolve_device(args.device))
    run = _Sections()
    started = time.perf_counter()
    overhead = run("round overhead (in-process)", lambda: bench_round_overhead(
        clients=10, rounds=4 if quick else 20, repeats=1 if quick else 3))
    ray = run("end to end (Ray)", lambda: bench_ray_overhead(
        rounds=4 if quick else 15, clients=10, repeats=1 if quick else 2))
    scale = None
    if not args.no_scale:
        scale = run("scale", lambda: bench_scale(
            ray_clients=100 if quick else 1000, inline_clients=1000 if quick else 10_000))
    agg_sizes = [(n, p) for n in (10, 100) for p in (100_000, 1_000_000, 10_000_000)]
    if quick:
        agg_sizes = [(n, p) for n, p in agg_sizes if n * p <= 10_000_000]
    paths = run("aggregation paths", lambda: bench_aggregation_paths(
        agg_sizes, repeats=3 if quick else 5, device=device))
    schemes = run("per-scheme aggregation", lambda: [
        bench_aggregation(clients=10, params=p, repeats=3 if quick else 7)
        for p in (100_000, 1_000_000)])
    ipfp_sizes = [(100, 1000), (100, 10000), (1000, 1000), (1000, 10000)]
    if not quick:
        ipfp_sizes += [(100, 100_000), (1000, 100_000)]
    ipfp = run("FedAVOT IPFP", lambda: bench_ipfp(ipfp_sizes, repeats=1 if quick else 3))
    kernels = run("OT kernels", lambda: bench_kernels(device=device, quick=quick,
                                                      repeats=1 if quick else 3))
    bary = run("IRL barycenters", lambda: bench_barycenter(
        [32, 64] if quick else [32, 64, 128], [2, 5, 10], repeats=1 if quick else 3))
    fusion = run("IRL fusion", bench_fusion)
    otfusion = run("OTFusion", lambda: bench_otfusion(repeats=1 if quick else 3, device=device))
    subflot = run("SubFLOT", lambda: bench_subflot(
        [64, 256] if quick else [64, 256, 1024], clients=20, repeats=1 if quick else 3))
    total = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    _plot(overhead, ray, paths, args.out / "bench_rounds.png")
    (args.out / "benchmarks.json").write_text(json.dumps(
        {"device": device, "quick": quick, "total_s": total, "load": run.load,
         "round_overhead": overhead, "ray": ray, "scale": scale, "aggregation_paths": paths,
         "scheme_aggregation": schemes, "fedavot_ipfp": ipfp, "kernels": kernels,
         "irl_barycenter": bary, "irl_fusion": fusion, "subflot": subflot,
         "otfusion": otfusion}, indent=2) + "\n")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m fedot.bench{' --quick' if quick else ''}"
        f"{f' --device {device}' if device != 'cpu' else ''}`) on {when} in {total:.0f} s; "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch "
        f"{torch.__version__}, device {device}. Absolute times on a shared machine are noise; read "
        "the ratios, measured side by side in one run (alternatives interleaved, medians). The "
        "machine's load during each section is in the last table.",
        "",
    ]
    lines += _overhead_lines(overhead, ray)
    if scale is not None:
        lines += _scale_lines(scale)
    lines += _aggregation_lines(paths, schemes)
    lines += [
        "## FedAVOT: masked IPFP (Sinkhorn) and feasibility test",
        "",
        "Random subsets of 2–10 users with feasible marginals (p, q = marginals of a random plan on "
        "the mask), tol 1e-10; median of repeats.",
        "",
        "| N | M | nnz | iterations | IPFP (ms) | max-flow feasibility (ms) |",
        "|---|---|---|---|---|---|",
        *[f"| {r['N']} | {r['M']} | {r['nnz']} | {r['n_iter']} | {r['ipfp_s'] * 1e3:.1f} | "
          f"{r['feasibility_s'] * 1e3:.1f} |" for r in ipfp],
        "",
    ]
    lines += kernel_lines(kernels)
    lines += _barycenter_lines(bary, fusion)
    lines += _subflot_lines(subflot)
    lines += _otfusion_lines(otfusion)
    lines += [
        "## Machine load per section",
        "",
        "1-minute load average (`os.getloadavg`) when each section started and ended, on "
        f"{os.cpu_count()} CPUs; a load above the CPU count means other work shared the machine.",
        "",
        "| section | wall (s) | load before | load after |",
        "|---|---|---|---|",
        *[f"| {r['section']} | {r['wall_s']:.1f} | {r['load_before']:.2f} | "
          f"{r['load_after']:.2f} |" for r in run.load],
        "",
    ]
    (args.out / "benchmarks.md").write_text("\n".join(lines))
    _LOG.info("wrote %s in %.0f s", args.out / "benchmarks.md", total)


def _overhead_lines(overhead: dict[str, Any], ray: dict[str, Any]) -> list[str]:
    acc = ray["final_accuracy"]
    return [
        "## Round overhead: fedot fedavg vs bare Flower FedAvg",
        "",
        f"**In-process grid.** Same ClientApp, same in-process grid, {overhead['clients']} "
        f"clients, digits MLP, {overhead['rounds']} rounds × {overhead['repeats']} repeats, arms "
        "alternating; median round time with round 1 dropped. fedot's round includes reply "
        "screening, the dtype-preserving average, the per-round records and the results files and "
        "checkpoint (written by a background thread).",
        "",
        "| arm | median round (ms) | ratio to Flower |",
        "|---|---|---|",
        f"| Flower `FedAvg` | {overhead['flower_fedavg_round_s'] * 1e3:.1f} | 1.00 |",
        f"| fedot `fedavg` | {overhead['fedot_fedavg_round_s'] * 1e3:.1f} | {overhead['ratio']:.2f} |",
        "",
        f"**Ray simulation.** `flwr run <app> local` (the managed local SuperLink, "
        f"{ray['clients']} virtual SuperNodes) of fedot's app and of a bare Flower FedAvg app "
        "(`fedot.bench.bare_flower`: Flower's `FedAvg`, the same ClientApp, model, run config and "
        "server evaluation), started the same way, alternating, "
        f"{ray['rounds']} rounds × {ray['repeats']} runs each; mean and median round time with "
        "round 1 dropped; wall = the whole `flwr run` (start-up, rounds, shut-down). Ray round "
        "times come in steps of ~0.1 s (Flower's polling), so medians flip between steps from run "
        "to run; the ratio is of the means. fedot's in-process runner on the same config for "
        "comparison (its median).",
        "",
        "| arm | mean round (s) | median round (s) | round 1 (s) | wall (s) | final accuracy | "
        "ratio to Flower (means) |",
        "|---|---|---|---|---|---|---|",
        f"| Flower `FedAvg`, Ray | {ray['flower_round_s']:.3f} | "
        f"{ray['flower_round_median_s']:.3f} | {ray['flower_round1_s']:.2f} | "
        f"{ray['flower_wall_s']:.1f} | {acc.get('flower', float('nan')):.4f} | 1.00 |",
        f"| fedot `fedavg`, Ray | {ray['fedot_round_s']:.3f} | {ray['fedot_round_median_s']:.3f} | "
        f"{ray['fedot_round1_s']:.2f} | {ray['fedot_wall_s']:.1f} | "
        f"{acc.get('fedot', float('nan')):.4f} | {ray['ratio']:.2f} |",
        f"| fedot `fedavg`, inline | – | {ray['inline_round_s']:.3f} | "
        f"{ray['inline_round1_s']:.2f} | {ray['inline_wall_s']:.1f} | "
        f"{acc.get('inline', float('nan')):.4f} | – |",
        "",
        "![round times and aggregation](bench_rounds.png)",
        "",
    ]


def _scale_lines(scale: dict[str, Any]) -> list[str]:
    ray, inline = scale["ray"], scale["inline"]

    def times(row: dict[str, Any]) -> str:
        return " / ".join(f"{t:.1f}" for t in row["round_s"])

    return [
        "## Scale: many clients",
        "",
        "fedavg on `synthetic-regression` (100 samples per natural client, a linear model), every "
        "client training each round, no federated evaluation (`fraction-evaluate = 0`), no "
        "checkpoint. Ray: `flwr run` with that many virtual SuperNodes; memory = peak over time of "
        "the summed PSS of every process the run started (`flwr run`, SuperLink, Ray, ServerApp, "
        "workers). "
        "Inline: fedot's in-process runner in a fresh process; memory = its peak RSS.",
        "",
        "| backend | clients | rounds | round times (s) | wall (s) | peak memory (MiB) |",
        "|---|---|---|---|---|---|",
        f"| Ray simulation | {ray['clients']:,} | {ray['rounds']} | {times(ray)} | "
        f"{ray['wall_s']:.1f} | {ray['peak_mib']:.0f} ({ray['processes']} processes) |",
        f"| inline | {inline['clients']:,} | {inline['rounds']} | {times(inline)} | "
        f"{inline['wall_s']:.1f} | {inline['peak_mib']:.0f} |",
        "",
    ]


def _aggregation_lines(paths: list[dict[str, Any]], schemes: list[dict[str, Any]]) -> list[str]:
    device = any("device_s" in r for r in paths)
    head = ("| N | P | read floor (ms) | output (ms) | Flower (ms) | fedot (ms) | fedot / Flower | "
            "fedot / read floor | fedot / (read + output) | Flower / read floor |"
            + (" device path (ms) | device / floor |" if device else ""))
    return [
        "## Aggregation: fedot vs Flower's FedAvg aggregation vs the read floor",
        "",
        "N replies of one float32 array of P parameters, as Flower delivers them (serialised "
        "`.npy` bytes); medians over alternating repeats. Read floor: one read of every payload "
        "(zero-copy views); output: one copy of a P-parameter result into fresh `bytes` (what an "
        "`Array` holds; the unavoidable write, page faults included); both measured in the same "
        "run. fedot: `fedot.fl.aggregate.weighted_average` "
        "(zero-copy views, cache-blocked float64 accumulation through BLAS, dtype kept, identical "
        "inputs bit-exact). Flower: `aggregate_arrayrecords` (FedAvg's own)."
        + (" Device path: `weighted_average(..., device=...)` (copy each reply to the device, "
           "accumulate there, copy back)." if device else ""),
        "",
        head,
        "|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if device else ""),
        *[f"| {r['N']} | {r['P']:,} | {r['floor_s'] * 1e3:.1f} | {r['output_s'] * 1e3:.1f} | "
          f"{r['flower_s'] * 1e3:.1f} | {r['fedot_s'] * 1e3:.1f} | {r['fedot_vs_flower']:.2f} | "
          f"{r['fedot_vs_floor']:.1f} | {r['fedot_vs_floors']:.1f} | {r['flower_vs_floor']:.1f} |"
          + (f" {r['device_s'] * 1e3:.1f} | {r['device_vs_floor']:.1f} |" if device else "")
          for r in paths],
        "",
        "## Per-scheme server aggregation on identical replies",
        "",
        "`aggregate_train` (screening + aggregation) of each strategy on the same 10 replies of "
        "one float32 array, medians, arms interleaved; floor = one read of every reply. The "
        "OT-based aggregations with their own model structure (SubFLOT, OTFusion, IRL barycenter) "
        "have their own sections below, each against FedAvg and a floor measured in the same run.",
        "",
        "| clients | parameters | floor (ms) | FedAvg (ms) | FedAVOT (ms) | FFM (ms) | "
        "FedAVOT / FedAvg | FFM / FedAvg | FedAvg / floor |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {a['clients']} | {a['params']:,} | {a['floor_s'] * 1e3:.2f} | "
          f"{a['fedavg_s'] * 1e3:.1f} | {a['fedavot_s'] * 1e3:.1f} | {a['ffm_s'] * 1e3:.1f} | "
          f"{a['ratio']:.2f} | {a['ffm_ratio']:.2f} | {a['fedavg_s'] / a['floor_s']:.1f} |"
          for a in schemes],
        "",
    ]


def _barycenter_lines(bary: list[dict[str, Any]], fusion: dict[str, Any]) -> list[str]:
    def cell(row: dict[str, Any], name: str) -> str:
        if f"{name}_s" not in row:
            return "–"
        return f"{row[f'{name}_s'] * 1e3:.1f} ms / {row[f'{name}_mib']:.1f} MiB"

    return [
        "## IRL reward fusion: barycenter solvers",
        "",
        "K smooth bumps on n × n grids, reg 0.004 (cost normalised to max 1), tol 1e-6; time "
        "(median) / peak traced memory. conv: fedot's convolutional IBP (exact for non-uniform "
        "weights); POT conv: `convolutional_barycenter2d` (scaling; wrong for non-uniform "
        "weights, uniform here); dense: fedot's scaling IBP on the n²×n² cost; log: POT "
        "`barycenter(method='sinkhorn_log')` (– where skipped for size).",
        "",
        "| grid | K | iterations | conv | POT conv | dense IBP | POT log |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r['grid']}² | {r['K']} | {r['iterations']} | {cell(r, 'conv')} | "
          f"{cell(r, 'pot_conv')} | {cell(r, 'dense')} | {cell(r, 'log')} |" for r in bary],
        "",
        f"Per-round fusion on a {fusion['grid']}×{fusion['grid']} grid, {fusion['clients']} "
        f"clients: barycenter (convolutional) {fusion['fuse_conv_s'] * 1e3:.2f} ms, "
        f"(POT log domain) {fusion['fuse_log_s'] * 1e3:.1f} ms, parameter averaging "
        f"{fusion['average_s'] * 1e3:.3f} ms: ratios {fusion['ratio_conv']:.0f}× and "
        f"{fusion['ratio_log']:.0f}×.",
        "",
    ]


def _subflot_lines(rows: list[dict[str, Any]]) -> list[str]:
    arms = ("fedavg", "heterofl", "subflot (match)", "subflot (barycentric)")
    return [
        "## SubFLOT server round vs HeteroFL and FedAvg",
        "",
        "One server round on identical models: an MLP 64 → h → h → 10, 20 clients with rates "
        "cycling through {0, ¼, ½, ¾}; FedAvg = the weighted mean of 20 full-width state dicts; "
        "HeteroFL = static slices out + position-based average; SubFLOT = OTP for every client + "
        "OTA (matched or barycentric maps). Medians over repeats, arms interleaved (`fedot.bench."
        "subflot`).",
        "",
        "| h | params | " + " | ".join(arms) + " |",
        "|---|---|" + "---|" * len(arms),
        *[f"| {r['hidden']} | {r['params']:,} | " + " | ".join(
            f"{r[f'{a}_s'] * 1e3:.1f} ms ({r[f'{a}_ratio']:.0f}×)" for a in arms) + " |"
          for r in rows],
        "",
    ]


def _otfusion_lines(r: dict[str, Any]) -> list[str]:
    return [
        "## OTFusion aggregation vs its compute floor and vs FedAvg",
        "",
        f"{r['clients']} clients of an MLP {' → '.join(map(str, r['widths']))} "
        f"({r['params']:,} parameters), independently initialised (every neuron permuted), "
        f"{r['threads']} torch threads. OTFusion = `fuse_detailed` (exact plans, weights metric) "
        "into the first model. Floor = the unavoidable work done directly: per client and hidden "
        "layer one GEMM for the pairwise neuron distances and one `linear_sum_assignment`, plus "
        "the plain average. Medians, arms interleaved (`fedot.bench.otfusion`).",
        "",
        "| OTFusion (s) | floor (s) | FedAvg average (s) | OTFusion / floor | OTFusion / FedAvg |",
        "|---|---|---|---|---|",
        f"| {r['otfusion_s']:.3f} | {r['floor_s']:.3f} | {r['fedavg_s']:.4f} | "
        f"{r['ratio_floor']:.2f} | {r['ratio_fedavg']:.0f} |",
        "",
    ]


if __name__ == "__main__":
    main()
