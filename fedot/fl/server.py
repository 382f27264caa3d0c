"""ServerApp body shared by every scheme: validate, wait for nodes, run the strategy, record.

``strategies/server_app.py`` is three lines around :func:`run_server`; the round loop itself is
Flower's ``Strategy.start``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from logging import INFO
from pathlib import Path

from flwr.app import Context
from flwr.common import log
from flwr.serverapp import Grid

from fedot.config import RunConfig, load_run_config
from fedot.fl.results import ResultsRecorder
from fedot.fl.strategy import FedotStrategy

__all__ = ["resolve_out_dir", "run_server", "wait_for_nodes"]

StrategyFactory = Callable[[RunConfig], FedotStrategy]


def resolve_out_dir(cfg: RunConfig, run_id: int) -> Path:
    """``out-dir`` if set, else ``./outputs/<scheme>-<timestamp>-<run id>`` (absolute)."""
    if cfg.out_dir:
        return Path(cfg.out_dir).expanduser().resolve()
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (Path.cwd() / "outputs" / f"{cfg.scheme}-{stamp}-{run_id}").resolve()


def wait_for_nodes(grid: Grid, expected: int, timeout: float, poll: float = 0.5) -> list[int]:
    """Wait until ``expected`` nodes are connected, at most ``timeout`` seconds.

    Raises
    ------
    TimeoutError
        Naming how many nodes connected and the config key to change (Flower's own wait has no
        timeout and would hang forever).
    """
    deadline = time.monotonic() + timeout
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"only {len(nodes)} of clients={expected} nodes connected within "
                f"wait-timeout={timeout}s: start more SuperNodes, or set clients={len(nodes)} "
                "(in simulation, clients must equal num-supernodes)"
            )
        time.sleep(poll)


def run_server(grid: Grid, context: Context, strategies: Mapping[str, type[FedotStrategy]]) -> Path:
    """Run one federated experiment with the strategy registered for ``scheme``.

    Returns the run directory with ``config.json``, ``results.json``, ``metrics.csv``, the plot and
    the checkpoint.
    """
    cfg = load_run_config(context.run_config)
    strategy = strategies[cfg.scheme].from_config(cfg)
    out_dir = resolve_out_dir(cfg, context.run_id)
    log(INFO, "fedot: scheme=%s, results in %s", cfg.scheme, out_dir)
    wait_for_nodes(grid, cfg.clients, cfg.wait_timeout)
    out_dir.mkdir(parents=True, exist_ok=True)
    task = strategy.server_task(cfg, out_dir)
    recorder = ResultsRecorder(
        out_dir,
        scheme=cfg.scheme,
        config=cfg.model_dump(by_alias=True),
        strategy=strategy,
        server_eval=task.evaluate,
        checkpoint=cfg.checkpoint,
        extra={"run_id": context.run_id, "out_dir": str(out_dir), **task.info},
        total_rounds=strategy.num_rounds(cfg),
    )
    try:
        result = strategy.start(
            grid=grid,
            initial_arrays=task.initial_arrays,
            num_rounds=strategy.num_rounds(cfg),
            timeout=cfg.round_timeout,
            evaluate_fn=recorder.evaluate_fn,
        )
        if task.finalize is not None:
            task.finalize(out_dir, result.arrays)
    except BaseException:
        recorder.finish("failed")
        raise
    return recorder.finish("completed")
