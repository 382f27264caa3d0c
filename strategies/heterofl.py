"""HeteroFL [Diao, Ding & Tarokh, ICLR 2021]: static leading-unit submodels, position-based averaging.

Paper: https://arxiv.org/abs/2010.01264

Client i with pruning rate ρ_i trains the leading ⌈(1 − ρ_i) n_ℓ⌉-style slice (see
:func:`fedot.subflot.submodel_width`) of every hidden group ℓ of the global model (rows, biases,
batch-norm statistics, and the next layer's columns); the server averages every global coordinate
over the clients that hold it (weights: data sizes), coordinates nobody holds keep their value.
The baseline for ``subflot``; with every rate 0 it is FedAvg. Clients run the ``submodel`` task.

Sent each round: the client's own submodel, ``server-round``, ``local.*``, ``submodel.rate`` and
``submodel.lam`` (0). Expected in each reply: exactly the arrays sent to that partition;
``num-examples`` > 0; ``partition-id``.
"""

from __future__ import annotations

from typing import ClassVar

from fedot.fl.submodel import SubmodelStrategy

__all__ = ["HeteroFL"]


class HeteroFL(SubmodelStrategy):
    """Static slices and position-based averaging: the shared base's default behaviour."""

    scheme: ClassVar[str] = "heterofl"
