"""End-to-end round times through ``flwr run`` (Ray simulation), and scale.

* :func:`bench_ray_overhead` — fedot's ``fedavg`` app vs a bare Flower FedAvg app
  (:mod:`fedot.bench.bare_flower`) with the same ClientApp, model, clients and run config, both
  started with ``flwr run <app> local`` (fedot's managed local SuperLink, Ray simulation) by
  :func:`fedot.fl.runner.run_flwr` from the same staged FAB but for the ServerApp line,
  alternating fedot / Flower / fedot / …; the mean round time (round 1 dropped) of each and
  their ratio, and the medians. Round times in Ray simulation come in steps of ~0.1 s (Flower's
  polling), so a median flips between steps from run to run (a median ratio of 1.64 was seen on
  identical code); the mean over all rounds is the stable estimate. fedot's inline runner is
  timed on the same config.
* :func:`bench_scale` — many clients: ``ray_clients`` virtual SuperNodes in Ray simulation and
  ``inline_clients`` in the in-process runner, on ``synthetic-regression`` (100 samples per natural
  client, a linear model), round times and peak memory. Memory of a Ray run is the peak over time
  of the summed proportional set size (PSS, shared pages split between sharers) of every process
  the run started (descendants of this process: ``flwr run``, the SuperLink, Ray's
  raylet/GCS/workers, the ServerApp), sampled every 0.25 s; of an inline run, the peak resident
  set (``ru_maxrss``) of its own process.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fedot.fl.inline import project_root, run_inline
from fedot.fl.results import read_results
from fedot.fl.runner import run_flwr

__all__ = ["BARE_SERVERAPP", "PeakMemory", "bench_ray_overhead", "bench_scale"]

BARE_SERVERAPP = "fedot.bench.bare_flower:app"


def _round_times(out_dir: Path) -> tuple[list[float], dict[str, Any]]:
    results = read_results(out_dir)
    times = [float(e["time_s"]) for e in results["rounds"] if e["round"] > 0]
    return times, results.get("final", {})


class PeakMemory:
    """Peak summed PSS (bytes) of this process's descendants, sampled in a thread.

    Descendants are found through ``/proc/<pid>/stat`` parent links at every sample, so processes
    that other jobs start on the machine are never counted (the managed SuperLink is a child of
    ``flwr run`` for the whole run, and Ray's processes descend from it).
    """

    def __init__(self, interval: float = 0.25) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0
        self.processes = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _descendants(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
        out, todo = [], list(children.get(root, []))
        while todo:
            pid = todo.pop()
            out.append(pid)
            todo.extend(children.get(pid, []))
        return out

    @staticmethod
    def _pss(pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            pids = self._descendants(me)
            total = sum(self._pss(p) for p in pids)
            if total > self.peak:
                self.peak, self.processes = total, len(pids)
            self._stop.wait(self._interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_ray_overhead(*, rounds: int = 20, clients: int = 10, repeats: int = 2) -> dict[str, Any]:
    """Mean (and median) Ray round time of fedot's fedavg vs bare Flower FedAvg, and inline."""
    root = project_root()
    config: dict[str, Any] = {"rounds": rounds, "clients": clients}
    times: dict[str, list[float]] = {"fedot": [], "flower": []}
    walls: dict[str, list[float]] = {"fedot": [], "flower": []}
    first: dict[str, list[float]] = {"fedot": [], "flower": []}
    final: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            for arm, serverapp in (("fedot", None), ("flower", BARE_SERVERAPP)):
                out = Path(tmp, f"{arm}-{rep}")
                start = time.perf_counter()
                run_flwr(root, config, out_dir=out, num_supernodes=clients, serverapp=serverapp)
                walls[arm].append(time.perf_counter() - start)
                t, final[arm] = _round_times(out)
                first[arm].append(t[0])
                times[arm] += t[1:]
        start = time.perf_counter()
        run_inline({**config, "out-dir": f"{tmp}/inline"}, clients)
        inline_wall = time.perf_counter() - start
        inline_times, final["inline"] = _round_times(Path(tmp, "inline"))
    med = {arm: statistics.median(v) for arm, v in times.items()}
    mean = {arm: statistics.fmean(v) for arm, v in times.items()}
    return {
        "rounds": rounds, "clients": clients, "repeats": repeats,
        "fedot_round_s": mean["fedot"], "flower_round_s": mean["flower"],
        "ratio": mean["fedot"] / mean["flower"],
        "fedot_round_median_s": med["fedot"], "flower_round_median_s": med["flower"],
        "median_ratio": med["fedot"] / med["flower"],
        "round_times_s": times,
        "fedot_wall_s": statistics.median(walls["fedot"]),
        "flower_wall_s": statistics.median(walls["flower"]),
        "fedot_round1_s": statistics.median(first["fedot"]),
        "flower_round1_s": statistics.median(first["flower"]),
        "inline_round_s": statistics.median(inline_times[1:]), "inline_round1_s": inline_times[0],
        "inline_wall_s": inline_wall,
        "final_accuracy": {k: v.get("accuracy") for k, v in final.items()},
    }


SCALE_CONFIG: dict[str, Any] = {
    "dataset": "synthetic-regression", "model.name": "linear", "partition.kind": "natural",
    "fraction-evaluate": 0.0, "checkpoint": False,
}


def _inline_scale(clients: int, rounds: int, out_dir: Path) -> dict[str, Any]:
    """Run the inline runner in a fresh process (its own peak RSS); return times and memory."""
    config = {**SCALE_CONFIG, "clients": clients, "rounds": rounds, "out-dir": str(out_dir)}
    code = ("import json, sys; from fedot.fl.inline import run_inline; "
            "run_inline(json.loads(sys.argv[1]), int(sys.argv[2]))")
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(config), str(clients)],
                            stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"inline scale run with {clients} clients exited {proc.returncode}")
    times, _ = _round_times(out_dir)
    return {"clients": clients, "rounds": rounds, "wall_s": wall, "round_s": times,
            "peak_mib": usage.ru_maxrss / 1024}


def bench_scale(*, ray_clients: int = 1000, inline_clients: int = 10_000, rounds: int = 2,
                inline_rounds: int = 1, timeout: float = 600.0) -> dict[str, Any]:
    """Round times and peak memory with many clients, in Ray simulation and in-process."""
    root = project_root()
    out: dict[str, Any] = {"config": SCALE_CONFIG}
    with tempfile.TemporaryDirectory() as tmp:
        config = {**SCALE_CONFIG, "clients": ray_clients, "rounds": rounds}
        start = time.perf_counter()
        with PeakMemory() as mem:
            run_flwr(root, config, out_dir=Path(tmp, "ray"), num_supernodes=ray_clients,
                     timeout=timeout)
        times, _ = _round_times(Path(tmp, "ray"))
        out["ray"] = {"clients": ray_clients, "rounds": rounds,
                      "wall_s": time.perf_counter() - start, "round_s": times,
                      "peak_mib": mem.peak / 2**20, "processes": mem.processes}
        out["inline"] = _inline_scale(inline_clients, inline_rounds, Path(tmp, "inline"))
    return out
