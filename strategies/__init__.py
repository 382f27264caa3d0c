"""Flower strategies of fedot, one class per file, and the ServerApp (``server_app.py``).

``STRATEGIES`` maps each run-config ``scheme`` to its strategy class. Installed, this package is
``fedot.strategies`` (``from fedot.strategies import FedAVOT``: docs/library.md); in a source
checkout it is also the top-level ``strategies`` the Flower app names in ``pyproject.toml``.
Imports inside it are relative, so both names work.

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

    from .fedavg import FedAvg
    from .fedavg_full import FedAvgFull
    from .fedavg_k import FedAvgK
    from .fedavg_subset import FedAvgSubset
    from .fedavot import FedAVOT
    from .fedrolex import FedRolex
    from .ffm import FederatedFlowMatching
    from .heterofl import HeteroFL
    from .irl_average import RewardAveragingIRL
    from .irl_barycenter import WassersteinBarycenterIRL
    from .otfusion import OTFusion
    from .subflot import SubFLOT

    STRATEGIES: dict[str, type[FedotStrategy]]

#: Class name → module (relative: the wheel installs this package as ``fedot.strategies``).
_CLASSES: dict[str, str] = {
    "FedAvg": ".fedavg",
    "FedAVOT": ".fedavot",
    "FedAvgSubset": ".fedavg_subset",
    "FedAvgK": ".fedavg_k",
    "FedAvgFull": ".fedavg_full",
    "WassersteinBarycenterIRL": ".irl_barycenter",
    "RewardAveragingIRL": ".irl_average",
    "FederatedFlowMatching": ".ffm",
    "OTFusion": ".otfusion",
    "SubFLOT": ".subflot",
    "HeteroFL": ".heterofl",
    "FedRolex": ".fedrolex",
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
        return getattr(importlib.import_module(_CLASSES[name], __name__), name)
    if name == "STRATEGIES":
        registry = {cls.scheme: cls for cls in (__getattr__(n) for n in _CLASSES)}
        globals()["STRATEGIES"] = registry
        return registry
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
