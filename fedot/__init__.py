"""fedot: optimal transport for federated learning on Flower.

Layers (imports point one way): ``fedot.ot`` (pure OT math) ← ``fedot.data``, ``fedot.learning``,
``fedot.config`` ← ``fedot.fl`` (the only Flower adapter) ← ``fedot.strategies`` and
``fedot.clients`` (the repository's ``strategies/`` and ``clients/``; nothing below imports them).

Library use: ``from fedot.strategies import FedAVOT, OTFusion, ...`` in any Flower ServerApp
(docs/library.md).
"""

from pathlib import Path as _Path

from fedot import _checkout

__version__ = "0.1.0"

_checkout.install(_Path(__file__).resolve().parent)
