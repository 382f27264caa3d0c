"""OTFusion in federated training under large client drift: FedAvg vs align-then-average.

Every client starts each round from the global model, so with a few local epochs its neurons stay
where they were and OTFusion's plans are the identity (it then equals FedAvg, tested). This
experiment makes the clients drift: 20 local epochs per round at Dirichlet 0.1 label skew, so that
each round's client models are far apart, and compares FedAvg with OTFusion (weights metric, and
activations on the server's held-out probe) over rounds.

``otfusion-drift`` runs it on digits (8 × 8), ``otfusion-drift-mnist`` on real MNIST-5k (28 × 28,
4,000 training images; issue 16) with the same arms, clients, split and local training.
"""

from __future__ import annotations

from fedot.experiments.compare import Arm
from fedot.experiments.registry import Experiment, register

#: The three arms shared by both datasets.
ARMS = (
    Arm("fedavg", {"scheme": "fedavg"}),
    Arm("otfusion (weights)", {"scheme": "otfusion"}),
    Arm("otfusion (activations)", {"scheme": "otfusion", "fusion.metric": "activations"}),
)
#: 10 clients, Dirichlet 0.1, 20 local epochs per round (fedot's SGD lr 0.1, momentum 0.9), MLP 64.
BASE = {"clients": 10, "rounds": 10, "local.epochs": 20, "partition.kind": "dirichlet",
        "partition.alpha": 0.1, "checkpoint": False, "fraction-evaluate": 0.0, "model.hidden": 64}

register(Experiment(
    name="otfusion-drift",
    description="FedAvg vs OTFusion with large client drift (20 local epochs, Dirichlet 0.1, "
                "digits MLP, 10 clients)",
    arms=ARMS,
    base=BASE,
    seeds=(0, 1, 2),
    quick={"clients": 3, "rounds": 2, "local.epochs": 2},
    quick_seeds=(0,),
))

register(Experiment(
    name="otfusion-drift-mnist",
    description="FedAvg vs OTFusion with large client drift (20 local epochs, Dirichlet 0.1, "
                "real MNIST-5k 28x28, MLP, 10 clients)",
    arms=ARMS,
    base={**BASE, "dataset": "mnist-5k"},
    seeds=(0, 1, 2),
    quick={"clients": 3, "rounds": 2, "local.epochs": 2},
    quick_seeds=(0,),
))
