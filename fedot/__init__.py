"""fedot: optimal transport for federated learning on Flower.

Layers (imports point one way): ``fedot.ot`` (pure OT math) ← ``fedot.data``, ``fedot.learning``,
``fedot.config`` ← ``fedot.fl`` (the only Flower adapter) ← ``strategies/`` and ``clients/``.
"""

__version__ = "0.1.0"
