"""Progress of runs and experiments: arm i/n, round r/R, the latest metric and an ETA.

Every run's server rewrites ``progress.json`` in its run directory after each round
(:data:`fedot.fl.results.PROGRESS_FILE`), whatever the backend (in-process, worker processes, Ray
through ``flwr run``). :class:`ProgressDisplay` polls the run directories of the runs in flight
from a background thread, so it needs no hook into the runs themselves:

* on a terminal, one live line (rich): a bar over all runs, ``runs done/total``, the running
  runs as ``label: round r/R metric=value``, elapsed time and the estimated time left;
* elsewhere (CI logs, pipes), a plain line on each finished run and at most every
  ``line_every`` seconds in between.

The estimate counts finished runs plus the finished fraction of the rounds of the running ones:
``ETA = elapsed × (1 − f) / f``. ``fedot run|compare|experiment --quiet`` turns it off.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from fedot.fl.results import PROGRESS_FILE

__all__ = ["ProgressDisplay", "Snapshot", "format_seconds"]


def format_seconds(seconds: float | None) -> str:
    """``75.2`` → ``"1m15s"``; ``None`` → ``"?"``."""
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass(frozen=True)
class Snapshot:
    """The state of a set of runs at one moment (what a display line shows)."""

    done: int
    total: int
    #: Fraction of all the work finished, in [0, 1].
    fraction: float
    #: ``label: round r/R metric=value`` per running run that has reported a round.
    running: tuple[str, ...]
    elapsed_s: float
    eta_s: float | None
    #: The run that finished last, as ``label (round R/R metric=value)``, if any.
    finished: str | None = None

    def line(self) -> str:
        """One status line: ``[3/12 runs] fedavot seed=1: round 14/30 accuracy=0.8123 · ...``."""
        parts = [f"[{self.done}/{self.total} runs]"]
        if self.finished:
            parts.append(f"done {self.finished}")
        if self.running:
            parts.append(("· " if self.finished else "") + "running " + "; ".join(self.running))
        elif self.done < self.total:
            parts.append("· starting" if self.finished else "starting")
        return (" ".join(parts) + f" · elapsed {format_seconds(self.elapsed_s)}, ETA "
                f"{format_seconds(self.eta_s)}")


def _read_progress(run_dir: Path, since: float) -> dict[str, Any] | None:
    """Return the run's progress, or None if not written since ``since`` (a wall-clock time)."""
    path = run_dir / PROGRESS_FILE
    try:
        if path.stat().st_mtime < since:  # left by an earlier run into the same directory
            return None
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet, or caught mid-replace
        return None


#: The metric a progress line shows, the first of these a run reports (else its first metric).
PREFERRED = ("accuracy", "accuracy_p", "loss_p", "loss")


def _describe(label: str, progress: dict[str, Any]) -> str:
    text = f"{label}: round {progress['round']}/{progress['total']}"
    server = progress.get("server") or {}
    if server:
        name = next((m for m in PREFERRED if m in server), next(iter(server)))
        text += f" {name}={server[name]:.4g}"
    return text


class ProgressDisplay:
    """Show the progress of ``tasks`` (label, run directory) while they run; see the module doc.

    Use as a context manager around the runs and call :meth:`task_done` as each one finishes.

    Parameters
    ----------
    tasks : sequence of (str, Path)
        Every run's label and run directory, in the order they are listed.
    enabled : bool
        False shows nothing (``--quiet``).
    stream : text stream, optional
        Where to write (default ``sys.stderr``); a terminal gets the live bar.
    interval : float
        Seconds between polls of the run directories.
    line_every : float
        Off a terminal: seconds between progress lines (one line per finished run regardless).
    """

    def __init__(self, tasks: Sequence[tuple[str, Path]], *, enabled: bool = True,
                 stream: TextIO | None = None, interval: float = 0.5,
                 line_every: float = 30.0) -> None:
        self.tasks = [(label, Path(run_dir)) for label, run_dir in tasks]
        self.enabled = enabled and bool(self.tasks)
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.line_every = line_every
        self._done: set[int] = set()
        self._started = time.perf_counter()
        self._since = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._live: Any = None
        self._last_line = 0.0

    # ------------------------------------------------------------------------------ state
    def task_done(self, index: int) -> None:
        """Mark run ``index`` finished (writes a line off a terminal)."""
        with self._lock:
            self._done.add(index)
        if self.enabled and self._live is None:
            label, run_dir = self.tasks[index]
            progress = _read_progress(run_dir, self._since)
            finished = label if not progress else _describe(label, progress)
            self._emit(replace(self.snapshot(), finished=finished))

    def snapshot(self) -> Snapshot:
        """Read the runs' progress files and return the current :class:`Snapshot`."""
        with self._lock:
            done = set(self._done)
        work, running = float(len(done)), []
        for i, (label, run_dir) in enumerate(self.tasks):
            if i in done:
                continue
            progress = _read_progress(run_dir, self._since)
            if progress is None or not progress.get("round"):
                continue
            total = progress.get("total")
            if isinstance(total, int) and total > 0:
                work += min(1.0, progress["round"] / total)
            running.append(_describe(label, progress))
        n = len(self.tasks)
        fraction = work / n if n else 1.0
        elapsed = time.perf_counter() - self._started
        eta = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        return Snapshot(done=len(done), total=n, fraction=fraction, running=tuple(running),
                        elapsed_s=elapsed, eta_s=eta)

    # ---------------------------------------------------------------------------- display
    def _emit(self, snap: Snapshot) -> None:
        self._last_line = time.perf_counter()
        self.stream.write(snap.line() + "\n")
        self.stream.flush()

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            snap = self.snapshot()
            if self._live is not None:
                progress, task = self._live
                progress.update(task, completed=snap.fraction * 1000,
                                description=f"{snap.done}/{snap.total} runs · "
                                + ("; ".join(snap.running) or "starting"))
            elif time.perf_counter() - self._last_line >= self.line_every:
                self._emit(snap)

    def __enter__(self) -> ProgressDisplay:
        if not self.enabled:
            return self
        self._started = time.perf_counter()
        self._since = time.time() - 1.0  # file-system timestamps may be coarse
        self._last_line = self._started
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=Console(file=self.stream), transient=False,
                                redirect_stdout=False, redirect_stderr=False)
            progress.start()
            self._live = (progress, progress.add_task("starting", total=1000))
        self._thread = threading.Thread(target=self._poll, name="fedot-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self.enabled:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        snap = self.snapshot()
        if self._live is not None:
            progress, task = self._live
            progress.update(task, completed=snap.fraction * 1000,
                            description=f"{snap.done}/{snap.total} runs")
            progress.stop()
            self._live = None
        elif exc_type is None and snap.done < snap.total:  # runs not reported by task_done
            self._emit(snap)
