"""The fedot ServerApp: the run config's ``scheme`` picks the strategy.

Named in ``pyproject.toml`` as ``strategies.server_app:app``; the same object runs under
``flwr run`` (Ray simulation), in deployment and in fedot's in-process runner.
"""

from __future__ import annotations

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fedot.fl.server import run_server

from . import STRATEGIES

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Validate the run config, run the scheme's strategy, write the results files."""
    run_server(grid, context, STRATEGIES)
