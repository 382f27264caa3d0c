"""FedAvg [McMahan et al., 2017] strategy, the reference scheme ``fedavg``.

Paper: https://arxiv.org/abs/1602.05629

Server behaviour is Flower's message-API FedAvg with fedot's shared reply screening, per-round
records and seeded sampling (:class:`fedot.fl.strategy.FedotStrategy`): the new global model is
the ``num-examples``-weighted mean of the valid replies. Clients run the ``classifier`` task: local
SGD/Adam for ``local.epochs`` epochs, with the FedProx term when ``local.proximal-mu`` > 0.

Sent each round (ConfigRecord): ``server-round`` and ``local.*``.
Expected in each train reply: ArrayRecord ``arrays`` with the global model's keys, shapes and dtypes;
MetricRecord ``metrics`` with ``num-examples`` > 0; ConfigRecord ``client`` with ``partition-id``.
"""

from __future__ import annotations

from typing import ClassVar

from fedot.fl.strategy import FedotStrategy

__all__ = ["FedAvg"]


class FedAvg(FedotStrategy):
    """Federated averaging; every behaviour is the shared base's."""

    scheme: ClassVar[str] = "fedavg"
