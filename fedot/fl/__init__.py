"""Flower adapters: the only part of ``fedot`` that imports ``flwr``.

Records and keys, reply screening, the shared strategy base, results files, the in-process grid
and the ``flwr run`` runner.
"""
