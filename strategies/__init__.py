"""Flower strategies of fedot, one class per file, and the ServerApp (``server_app.py``).

``STRATEGIES`` maps each run-config ``scheme`` to its strategy class.
"""

from __future__ import annotations

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

STRATEGIES: dict[str, type[FedotStrategy]] = {
    cls.scheme: cls
    for cls in (FedAvg, FedAVOT, FedAvgSubset, FedAvgK, FedAvgFull, WassersteinBarycenterIRL,
                RewardAveragingIRL, FederatedFlowMatching, OTFusion, SubFLOT, HeteroFL, FedRolex)
}
