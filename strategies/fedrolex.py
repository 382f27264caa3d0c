"""FedRolex [Alam, Liu, Yan & Zhang, NeurIPS 2022]: rolling submodel windows, position-based averaging.

Paper: https://arxiv.org/abs/2212.01548

In round t client i trains the window (t − 1 + {0, …, m_ℓ − 1}) mod n_ℓ of every hidden group ℓ
(m_ℓ its submodel width): the window rolls by one unit per round, so over n_ℓ rounds every global
unit is trained by every client. The server averages every global coordinate over the clients that
hold it (data-size weights). Clients run the ``submodel`` task.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedot.fl.submodel import Extraction, SubmodelStrategy
from fedot.subflot import rolling_slice

__all__ = ["FedRolex"]


class FedRolex(SubmodelStrategy):
    """Rolling-window extraction; aggregation is the shared position-based average."""

    scheme: ClassVar[str] = "fedrolex"

    def extract(self, server_round: int, partition_id: int, rate: float,
                global_model: torch.nn.Module) -> Extraction:
        """Return the window starting at unit ``server_round - 1`` of every hidden group."""
        sliced = rolling_slice(global_model, rate, server_round - 1, spec=self.spec)
        return sliced.model, sliced.indices, {}
