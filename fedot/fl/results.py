"""Results files of a run: ``config.json``, ``results.json``, ``metrics.csv``, a plot, a checkpoint.

:class:`ResultsRecorder` is driven by Flower's round loop through ``evaluate_fn`` (called at round 0
and after every round): it evaluates the global model on the server's held-out set, merges what the
strategy recorded for the round (client metrics, rejections, aggregation time and diagnostics),
and rewrites the files atomically. The schema is documented in ``docs/results.md``; later schemes
add keys, never remove them.

``checkpoint.pt`` is the run's single source of truth for resuming (``resume``): written atomically
after ``results.json`` in every round, it holds the global arrays, the strategy state and the
global RNG states; a resumed run cuts ``results.json`` at the checkpoint's round
(:func:`results_until`), so a kill at any moment (even between the two writes, or during either)
records no round twice and loses none before the checkpoint.

The round loop does not wait for the disk: each round's files are serialised on the calling thread
(``results.json`` incrementally — finished rounds are encoded once, not on every rewrite — and the
checkpoint's contents copied, so both are snapshots of that round) and written by one background writer
thread, in order (``results.json`` before ``checkpoint.pt``); :meth:`ResultsRecorder.finish` waits
for it, and a failed write is raised on the next round.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import random
import textwrap
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from logging import INFO
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, MetricRecord
from flwr.common import log

from fedot.fl.strategy import FedotStrategy
from fedot.fl.tracking import Tracker

__all__ = [
    "ResultsRecorder",
    "atomic_write",
    "plot_metrics",
    "read_checkpoint",
    "read_results",
    "restore_rng_state",
    "results_until",
    "rng_state",
]

RESULTS_FILE = "results.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "metrics.png"
#: Rewritten after every round: round, total rounds, server metrics, elapsed seconds, status
#: (small, for progress displays polling the run directory: fedot.experiments.progress).
PROGRESS_FILE = "progress.json"
CHECKPOINT_FILE = "checkpoint.pt"
#: Layout version of ``checkpoint.pt`` (2: with ``results`` and ``rng``, resumable).
CHECKPOINT_VERSION = 3


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace`` (never half-written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _json_ready(value: Any) -> Any:
    """Plain Python values (NumPy scalars unwrapped); non-finite floats → None."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def results_until(out_dir: str | Path, last_round: int) -> dict[str, Any]:
    """Return ``results.json`` of a run cut after ``last_round`` (the checkpoint's round).

    ``results.json`` is written (atomically) before the checkpoint every round, so it holds at
    least the checkpoint's rounds — one more if the run died between the two writes. Metric
    values written as ``null`` (NaN in the run) are NaN again, so a resumed run holds exactly
    what an uninterrupted one would.

    Raises
    ------
    ValueError
        If ``results.json`` lacks round ``last_round``.
    """
    results = read_results(out_dir)
    rounds = [e for e in results["rounds"] if e["round"] <= last_round]
    if not rounds or rounds[-1]["round"] != last_round:
        raise ValueError(f"{RESULTS_FILE} in {out_dir} does not record round {last_round}")
    for entry in rounds:
        for section in ("server", "train", "evaluate"):
            entry[section] = {k: math.nan if v is None else v
                              for k, v in entry.get(section, {}).items()}
    return {**results, "rounds": rounds, "final": rounds[-1]["server"]}


def _dump(obj: Any) -> bytes:
    return (json.dumps(_json_ready(obj), indent=2) + "\n").encode()


def read_results(out_dir: str | Path) -> dict[str, Any]:
    """Load ``results.json`` of a run directory."""
    return json.loads((Path(out_dir) / RESULTS_FILE).read_text())


def read_checkpoint(out_dir: str | Path) -> dict[str, Any]:
    """Load ``checkpoint.pt`` of a run directory (``weights_only``: plain values and tensors).

    Raises
    ------
    FileNotFoundError
        If the run directory has no checkpoint.
    ValueError
        If the checkpoint predates this checkpoint format.
    """
    path = Path(out_dir) / CHECKPOINT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT_FILE} in {out_dir} (was the run started with "
                                "checkpoint = false, or did it stop before round 0?)")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt.get("version", 1) != CHECKPOINT_VERSION:
        raise ValueError(f"{path} was written by an older fedot and cannot be resumed")
    return ckpt


def rng_state() -> dict[str, Any]:
    """Return the process-wide RNG states (``random``, NumPy's legacy global, torch CPU)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002 (global state)
    return {"python": random.getstate(), "numpy": [name, keys.tolist(), pos, has_gauss, cached],
            "torch": torch.get_rng_state()}


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Set the process-wide RNG states saved by :func:`rng_state`."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    torch.set_rng_state(state["torch"])


class _FileWriter:
    """One background thread writing files atomically, in submission order.

    A write error is raised by the next :meth:`submit` or by :meth:`flush`, and no write queued
    after a failed one is carried out: the files on disk stay a prefix of what was submitted
    (``results.json`` of a round is never missing under a checkpoint of that round).
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fedot-writer")
        self._closed = False
        self._last: Future[None] | None = None
        self._failed = False
        self._error: BaseException | None = None  # the failure, until raised to the caller

    def submit(self, path: Path, data: bytes | Callable[[], bytes]) -> None:
        """Queue writing ``data`` (bytes, or a function returning them, run on the writer)."""
        self._raise()
        if self._closed:  # after close(): write inline
            _write_file(path, data)
        else:
            self._last = self._pool.submit(self._write, path, data)

    def _write(self, path: Path, data: bytes | Callable[[], bytes]) -> None:
        if self._failed:  # a previous write failed: nothing after it may land
            return
        try:
            _write_file(path, data)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller by _raise
            self._failed, self._error = True, exc

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def flush(self) -> None:
        """Wait for every queued write (one thread, in order: the last one finishes last)."""
        if self._last is not None:
            self._last.result()
        self._raise()

    def close(self) -> None:
        """Wait for every queued write, then stop the thread (later writes run inline)."""
        self._pool.shutdown(wait=True)
        self._closed = True
        self._raise()


def _write_file(path: Path, data: bytes | Callable[[], bytes]) -> None:
    atomic_write(path, data() if callable(data) else data)


#: Stands for the ``rounds`` list while the rest of ``results.json`` is encoded.
_ROUNDS_SLOT = "\u0000fedot-rounds\u0000"


class ResultsRecorder:
    """Collect per-round results and write them to ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Run directory (created).
    scheme : str
        Scheme name.
    config : Mapping[str, Any]
        The validated run config (nested, JSON-ready), written to ``config.json``.
    strategy : FedotStrategy
        The strategy whose :class:`~fedot.fl.strategy.RoundLog` is merged into each round.
    server_eval : Callable[[int, ArrayRecord], Mapping[str, float]]
        Evaluates global arrays on the server's held-out test set.
    checkpoint : bool
        Write ``checkpoint.pt`` (global arrays, strategy state, round) after every round.
    extra : Mapping[str, Any], optional
        Facts merged into ``results.json`` (data, environment, ...).
    total_rounds : int, optional
        Flower rounds of the run, for progress lines (default: the config's ``rounds``).
    resume : Mapping[str, Any], optional
        The checkpoint (:func:`read_checkpoint`) of the run this one continues: its results are
        the starting point (``results.json`` is rebuilt from them) and the evaluation of its round
        (the resumed start's initial evaluation) returns the recorded metrics without recording
        anything.
    tracking : Tracker, optional
        Also logs every recorded round to TensorBoard / MLflow (:mod:`fedot.fl.tracking`); closed
        by :meth:`finish`. Where it logs is recorded in ``results.json`` under ``tracking``.
    """

    def __init__(
        self,
        out_dir: Path,
        *,
        scheme: str,
        config: Mapping[str, Any],
        strategy: FedotStrategy,
        server_eval: Callable[[int, ArrayRecord], Mapping[str, float]],
        checkpoint: bool = True,
        extra: Mapping[str, Any] | None = None,
        total_rounds: int | None = None,
        resume: Mapping[str, Any] | None = None,
        tracking: Tracker | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.tracker = tracking if tracking else None
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.strategy = strategy
        self.server_eval = server_eval
        self.checkpoint = checkpoint
        self.total_rounds = total_rounds if total_rounds is not None else config.get("rounds", "?")
        self.results: dict[str, Any] = {
            "scheme": scheme,
            "status": "running",
            "config": dict(config),
            "strategy": strategy.hyperparameters(),
            **(extra or {}),
            **({"tracking": self.tracker.info} if self.tracker is not None else {}),
            "rounds": [],
            "final": {},
        }
        self._last = time.perf_counter()
        self._start = self._last
        self._writer = _FileWriter()
        #: ``results.json`` text of each recorded round (a round's entry is final once recorded).
        self._round_texts: list[str] = []
        #: Round of the checkpoint this run resumed from (None: a new run).
        self.resumed_round: int | None = None
        if resume is not None:
            done = resume["results"]
            self.resumed_round = int(resume["round"])
            self.results.update({k: v for k, v in done.items() if k not in self.results}, **{
                "rounds": list(done["rounds"]), "final": done["final"],
                "resumed": [*done.get("resumed", []), {"after_round": self.resumed_round,
                                                       **({"run_id": extra["run_id"]}
                                                          if extra and "run_id" in extra else {})}],
            })
            self._start = self._last - float(done.get("elapsed_s", 0.0))
            for stale in self.out_dir.glob(".*.tmp"):  # temporaries left by a kill mid-write
                stale.unlink(missing_ok=True)
        atomic_write(self.out_dir / CONFIG_FILE, _dump(config))
        if resume is not None:
            self._write()

    def evaluate_fn(self, server_round: int, arrays: ArrayRecord) -> MetricRecord:
        """Flower ``evaluate_fn``: evaluate, record the round, rewrite results and checkpoint.

        On a resumed run, the round of the checkpoint is not evaluated again: its recorded server
        metrics are returned.
        """
        if server_round == self.resumed_round:
            self.strategy.log.pop(server_round)
            self._last = time.perf_counter()
            last = self.results["rounds"][-1]
            log(INFO, "fedot: resumed after round %d/%s", server_round, self.total_rounds)
            return MetricRecord(dict(last["server"]))
        server = {k: float(v) for k, v in self.server_eval(server_round, arrays).items()}
        now = time.perf_counter()
        logged = self.strategy.log.pop(server_round)
        entry: dict[str, Any] = {
            "round": server_round,
            "server": server,
            "train": logged.pop("train_metrics", {}),
            "evaluate": logged.pop("evaluate_metrics", {}),
            "time_s": now - self._last if server_round > 0 else 0.0,
            **logged,
        }
        self._last = now
        log(INFO, "fedot round %d/%s: server %s (%.2f s)", server_round, self.total_rounds,
            ", ".join(f"{k}={v:.4f}" for k, v in server.items()), entry["time_s"])
        self.results["rounds"].append(entry)
        if self.tracker is not None:
            self.tracker.log_round(entry)
        self.results["final"] = server
        self.results["elapsed_s"] = now - self._start
        if self.strategy.log.setup:
            self.results["setup"] = self.strategy.log.setup
        self._write()
        if self.checkpoint:
            self._save_checkpoint(server_round, arrays)
        return MetricRecord(server)

    def finish(self, status: str = "completed") -> Path:
        """Mark the run finished, write all files and the plot; return the run directory."""
        self.results["status"] = status
        self._write()
        self._writer.close()
        if self.tracker is not None:
            self.tracker.close(status)
            self.tracker = None
        if self.results["rounds"]:
            plot_metrics(self.results, self.out_dir / PLOT_FILE)
        return self.out_dir

    def _write(self) -> None:
        self._writer.submit(self.out_dir / RESULTS_FILE, self._results_json())
        self._writer.submit(self.out_dir / METRICS_FILE, _metrics_csv(self.results["rounds"]))
        rounds = self.results["rounds"]
        self._writer.submit(self.out_dir / PROGRESS_FILE, _dump({
            "round": rounds[-1]["round"] if rounds else 0, "total": self.total_rounds,
            "server": self.results["final"], "elapsed_s": self.results.get("elapsed_s", 0.0),
            "status": self.results["status"],
        }))

    def _results_json(self) -> bytes:
        """``_dump(self.results)``, encoding only the rounds recorded since the last call."""
        rounds = self.results["rounds"]
        for entry in rounds[len(self._round_texts):]:
            self._round_texts.append(textwrap.indent(json.dumps(_json_ready(entry), indent=2),
                                                     "    "))
        head = json.dumps(_json_ready({**self.results, "rounds": _ROUNDS_SLOT}), indent=2)
        body = "[\n" + ",\n".join(self._round_texts) + "\n  ]" if self._round_texts else "[]"
        return (head.replace(json.dumps(_ROUNDS_SLOT), body, 1) + "\n").encode()

    def _save_checkpoint(self, server_round: int, arrays: ArrayRecord) -> None:
        # A snapshot of this round, taken here (fresh arrays, RNG states, a deep copy of the
        # strategy state, which the next round mutates); serialised and written by the writer.
        state = {
            "version": CHECKPOINT_VERSION,
            "round": server_round,
            "arrays": {k: torch.from_numpy(a.numpy()) for k, a in arrays.items()},
            "strategy_state": copy.deepcopy(self.strategy.state_dict()),
            "config": self.results["config"],
            "rng": rng_state(),
        }
        self._writer.submit(self.out_dir / CHECKPOINT_FILE, lambda: _serialise(state))


def _serialise(state: Mapping[str, Any]) -> bytes:
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    return buf.getvalue()


def _metrics_csv(rounds: list[dict[str, Any]]) -> bytes:
    columns: list[str] = ["round", "time_s"]
    rows = []
    for entry in rounds:
        row: dict[str, Any] = {"round": entry["round"], "time_s": round(entry["time_s"], 6)}
        for section in ("server", "train", "evaluate"):
            for name, value in entry.get(section, {}).items():
                if isinstance(value, list):
                    continue
                col = f"{section}_{name}"
                row[col] = value
                if col not in columns:
                    columns.append(col)
        if "aggregation" in entry:
            row["aggregation_time_s"] = entry["aggregation"].get("time_s")
            if "aggregation_time_s" not in columns:
                columns.append("aggregation_time_s")
        rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def plot_metrics(results: Mapping[str, Any], path: Path) -> Path:
    """Plot server accuracy/loss and client metrics over rounds to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = results["rounds"]
    names = sorted({n for e in rounds for n in e.get("server", {})})
    fig, axes = plt.subplots(1, max(1, len(names)), figsize=(5 * max(1, len(names)), 3.6))
    axes = np.atleast_1d(axes)
    for ax, name in zip(axes, names, strict=False):
        xs = [e["round"] for e in rounds if name in e.get("server", {})]
        ax.plot(xs, [e["server"][name] for e in rounds if name in e["server"]], "o-",
                label="server (global test)")
        for section, style in (("evaluate", "s--"), ("train", "^:")):
            pts = [(e["round"], e[section][name]) for e in rounds if name in e.get(section, {})]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"clients ({section})")
        ax.set_xlabel("round")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{results['scheme']} — {results['config'].get('dataset', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
