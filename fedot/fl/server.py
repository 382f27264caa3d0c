"""ServerApp body shared by every scheme: validate, wait for nodes, run the strategy, record.

``strategies/server_app.py`` is three lines around :func:`run_server`; the round loop itself is
Flower's ``Strategy.start``.

With ``resume`` = a run directory, the run continues from that directory's ``checkpoint.pt``
(:func:`load_resume`): global arrays, strategy state, RNG states and results of the last completed
round r, then Flower's loop for the remaining rounds with true round numbers r + 1, ... (the
strategy's ``round_offset``), so the results equal those of an uninterrupted run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from logging import INFO
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, Context
from flwr.common import log
from flwr.serverapp import Grid

from fedot.config import RunConfig, flatten, load_run_config
from fedot.fl.results import (
    RESULTS_FILE,
    ResultsRecorder,
    read_checkpoint,
    read_results,
    restore_rng_state,
    results_until,
)
from fedot.fl.strategy import FedotStrategy, wait_for_nodes
from fedot.fl.tracking import Tracker

__all__ = ["ResumeError", "load_resume", "resolve_out_dir", "run_server"]

StrategyFactory = Callable[[RunConfig], FedotStrategy]


def resolve_out_dir(cfg: RunConfig, run_id: int) -> Path:
    """``out-dir`` if set, else ``./outputs/<scheme>-<timestamp>-<run id>`` (absolute)."""
    if cfg.out_dir:
        return Path(cfg.out_dir).expanduser().resolve()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (Path.cwd() / "outputs" / f"{cfg.scheme}-{stamp}-{run_id}").resolve()


class ResumeError(RuntimeError):
    """A run cannot be resumed (no checkpoint, another config, already complete)."""


#: Config keys that may differ between a run and its resumption.
RESUME_FREE_KEYS = frozenset({"out-dir", "resume"})


def load_resume(cfg: RunConfig, total_rounds: int) -> tuple[Path, dict[str, Any]]:
    """Return the run directory named by ``cfg.resume`` and its checkpoint, checked for resuming.

    Raises
    ------
    ResumeError
        If ``out-dir`` names another directory, the checkpoint is missing or unreadable, its
        config differs from ``cfg`` in any key other than ``out-dir``/``resume`` (each difference
        is listed), or the run is already complete.
    """
    out_dir = Path(cfg.resume).expanduser().resolve()
    if cfg.out_dir and Path(cfg.out_dir).expanduser().resolve() != out_dir:
        raise ResumeError(f"resume={cfg.resume!r} continues the run in its own directory; "
                          f"out-dir={cfg.out_dir!r} must be empty or the same directory")
    try:
        ckpt = read_checkpoint(out_dir)
    except Exception as exc:  # missing, unreadable or from an older fedot: say which and why
        raise ResumeError(f"cannot resume from {out_dir}: {exc}") from exc
    # compared as JSON: the checkpoint's lists are the requested config's tuples
    saved = {k: json.dumps(v) for k, v in flatten(ckpt["config"]).items()
             if k not in RESUME_FREE_KEYS}
    wanted = {k: json.dumps(v) for k, v in flatten(cfg.model_dump(by_alias=True)).items()
              if k not in RESUME_FREE_KEYS}
    diff = [f"{k}: checkpoint {saved.get(k, '<unset>')}, requested {wanted.get(k, '<unset>')}"
            for k in sorted(saved.keys() | wanted.keys()) if saved.get(k) != wanted.get(k)]
    if diff:
        raise ResumeError(f"cannot resume {out_dir}: the config differs from the checkpoint's "
                          f"({'; '.join(diff)})")
    done = int(ckpt["round"])
    if not 0 <= done <= total_rounds:
        raise ResumeError(f"cannot resume {out_dir}: inconsistent checkpoint (round {done} of "
                          f"{total_rounds})")
    try:  # the results so far come from results.json, cut at the checkpoint's round
        ckpt["results"] = results_until(out_dir, done)
    except (OSError, ValueError) as exc:
        raise ResumeError(f"cannot resume {out_dir}: {exc}") from exc
    if done == total_rounds:
        status = read_results(out_dir).get("status") if (out_dir / RESULTS_FILE).is_file() else None
        if status == "completed":
            raise ResumeError(f"nothing to resume: {out_dir} is complete (all {total_rounds} "
                              "rounds recorded)")
    return out_dir, ckpt


def run_server(grid: Grid, context: Context, strategies: Mapping[str, type[FedotStrategy]]) -> Path:
    """Run one federated experiment with the strategy registered for ``scheme``.

    Returns the run directory with ``config.json``, ``results.json``, ``metrics.csv``, the plot and
    the checkpoint.
    """
    cfg = load_run_config(context.run_config)
    strategy = strategies[cfg.scheme].from_config(cfg)
    total = strategy.num_rounds(cfg)
    config = cfg.model_dump(by_alias=True)
    ckpt: dict[str, Any] | None = None
    if cfg.resume:
        out_dir, ckpt = load_resume(cfg, total)
        # config.json stays the run's own: no resume key, out-dir as it was set (or not)
        config.update(resume="", **{"out-dir": str(out_dir) if ckpt["config"].get("out-dir") else ""})
    else:
        out_dir = resolve_out_dir(cfg, context.run_id)
    log(INFO, "fedot: scheme=%s, results in %s", cfg.scheme, out_dir)
    wait_for_nodes(grid, cfg.clients, cfg.wait_timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = strategy.server_task(cfg, out_dir)
    initial, done = task.initial_arrays, 0
    if ckpt is not None:
        done = int(ckpt["round"])
        try:
            strategy.load_state_dict(ckpt["strategy_state"])
        except (KeyError, ValueError) as exc:
            raise ResumeError(f"cannot resume {out_dir}: {cfg.scheme} strategy state: {exc}") from exc
        initial = ArrayRecord(dict(ckpt["arrays"]))
        log(INFO, "fedot: resuming after round %d of %d", done, total)
    tracking = Tracker(cfg.tracking, out_dir, config, uri=cfg.tracking_uri,
                       experiment=cfg.tracking_experiment,
                       resume=ckpt["results"].get("tracking") if ckpt is not None else None)
    recorder = ResultsRecorder(
        out_dir,
        scheme=cfg.scheme,
        config=config,
        strategy=strategy,
        server_eval=task.evaluate,
        checkpoint=cfg.checkpoint,
        extra={"run_id": context.run_id, "out_dir": str(out_dir), **task.info},
        total_rounds=total,
        resume=ckpt,
        tracking=tracking,
    )
    try:
        if ckpt is not None:
            restore_rng_state(ckpt["rng"])
        result = strategy.start(
            grid=grid,
            initial_arrays=initial,
            num_rounds=total - done,
            timeout=cfg.round_timeout,
            evaluate_fn=recorder.evaluate_fn,
            round_offset=done,
        )
        if task.finalize is not None:
            # no round of this call changed the model (all skipped, or resumed at the end)
            task.finalize(out_dir, result.arrays if len(result.arrays) else initial)
    except BaseException:
        recorder.finish("failed")
        raise
    return recorder.finish("completed")
