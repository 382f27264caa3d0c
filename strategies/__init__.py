"""Flower strategies of fedot, one class per file, and the ServerApp (``server_app.py``).

``STRATEGIES`` maps each run-config ``scheme`` to its strategy class.

Everything here is imported on first use (PEP 562 module ``__getattr__``): ``flwr run`` validates
the app's ``strategies.server_app:app`` reference with ``importlib.util.find_spec``, which executes
this package's ``__init__`` in the Flower CLI's process; importing every strategy (and torch) there
kept the CLI busy for 4.7–5.0 s before it started the SuperLink (1.3 s with lazy imports).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedot.fl.strategy import FedotStrategy
    from strategies.fedavg import FedAvg
    from strategies.fedavg_full import FedAvgFull
    from strategies.fedavg_k import FedAvgK
    from strategies.fedavg_subset import FedAvgSubset
    from strategies.fedavot import FedAVOT
    from strategies.fedrolex import FedRolex
    from strategies.ffm import FederatedFlowMatching
    from strategies.heterofl import HeteroFL
    from strategies.irl_average import RewardAveragingIRL
    from strategies.irl_barycenter import WassersteinBarycenterIRL
    from strategies.otfusion import OTFusion
    from strategies.subflot import SubFLOT

    STRATEGIES: dict[str, type[FedotStrategy]]

#: Class name → module, in registry order.
_CLASSES: dict[str, str] = {
    "FedAvg": "strategies.fedavg",
    "FedAVOT": "strategies.fedavot",
    "FedAvgSubset": "strategies.fedavg_subset",
    "FedAvgK": "strategies.fedavg_k",
    "FedAvgFull": "strategies.fedavg_full",
    "WassersteinBarycenterIRL": "strategies.irl_barycenter",
    "RewardAveragingIRL": "strategies.irl_average",
    "FederatedFlowMatching": "strategies.ffm",
    "OTFusion": "strategies.otfusion",
    "SubFLOT": "strategies.subflot",
    "HeteroFL": "strategies.heterofl",
    "FedRolex": "strategies.fedrolex",
}

__all__ = [
    "STRATEGIES",
    "FedAVOT",
    "FedAvg",
    "FedAvgFull",
    "FedAvgK",
    "FedAvgSubset",
    "FedRolex",
    "FederatedFlowMatching",
    "HeteroFL",
    "OTFusion",
    "RewardAveragingIRL",
    "SubFLOT",
    "WassersteinBarycenterIRL",
]


def __getattr__(name: str) -> Any:
    if name in _CLASSES:
        return getattr(importlib.import_module(_CLASSES[name]), name)
    if name == "STRATEGIES":
        registry = {cls.scheme: cls for cls in (__getattr__(n) for n in _CLASSES)}
        globals()["STRATEGIES"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
