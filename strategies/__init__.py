"""Flower strategies of fedot, one class per file, and the ServerApp (``server_app.py``).

``STRATEGIES`` maps each run-config ``scheme`` to its strategy class.
"""

from __future__ import annotations

from fedot.fl.strategy import FedotStrategy
from strategies.fedavg import FedAvg

__all__ = ["STRATEGIES", "FedAvg"]

STRATEGIES: dict[str, type[FedotStrategy]] = {cls.scheme: cls for cls in (FedAvg,)}
