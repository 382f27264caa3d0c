r"""The shared aggregation path: weighted averages of ArrayRecords.

.. math::

    \bar w_k = \sum_i \frac{n_i}{\sum_j n_j} w_{i,k}

for every array :math:`k` of the replies :math:`i` with weights :math:`n_i` (McMahan et al., 2017,
*Communication-Efficient Learning of Deep Networks from Decentralized Data*, arXiv:1602.05629).

Unlike Flower's ``aggregate_arrayrecords``, the result keeps each array's dtype: integer buffers
(BatchNorm's ``num_batches_tracked``) are rounded back instead of silently becoming float64, so the
global model's specification never drifts between rounds. Sums run in float64 and are cast back
once, so identical inputs come back bit-identical whatever the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flwr.app import Array, ArrayRecord

__all__ = ["normalise_weights", "weighted_average", "weighted_sum"]


def normalise_weights(weights: Sequence[float]) -> np.ndarray:
    """Return ``weights / sum(weights)`` as float64.

    Raises
    ------
    ValueError
        If there are no weights, or any weight is negative or non-finite, or all are zero.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.size == 0:
        raise ValueError("no weights to normalise")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
    top = w.max()
    if top <= 0:
        raise ValueError(f"weights sum to 0; at least one must be > 0, got {w.tolist()}")
    w = w / top  # scale first: a sum of large finite weights must not overflow to inf
    return w / w.sum()


def weighted_average(records: Sequence[ArrayRecord], weights: Sequence[float]) -> ArrayRecord:
    """Average ArrayRecords array by array with the given (unnormalised) weights.

    Parameters
    ----------
    records : Sequence[ArrayRecord]
        Records with identical keys, shapes and dtypes (screened beforehand).
    weights : Sequence[float]
        One non-negative weight per record; normalised here.

    Returns
    -------
    ArrayRecord
        The weighted mean, in the key order of ``records[0]``, each array in its input dtype.

    Examples
    --------
    >>> import numpy as np
    >>> a = ArrayRecord([np.array([0.0, 2.0], dtype=np.float32)])
    >>> b = ArrayRecord([np.array([4.0, 6.0], dtype=np.float32)])
    >>> out = weighted_average([a, b], [3, 1])
    >>> next(iter(out.values())).numpy()
    array([1., 3.], dtype=float32)
    """
    if len(records) != len(weights):
        raise ValueError(f"{len(records)} records but {len(weights)} weights")
    return weighted_sum(records, normalise_weights(weights))


def weighted_sum(records: Sequence[ArrayRecord], coefficients: Sequence[float]) -> ArrayRecord:
    r"""Return :math:`\sum_i c_i w_i` array by array, *without* normalising the coefficients.

    Used directly by schemes whose weights are not a convex combination (FedAvg(K) of the FedAVOT
    paper scales by N/K); :func:`weighted_average` calls it with normalised weights. Sums run in
    float64 (complex128) and each array is cast back to its input dtype once (integers rounded).

    Raises
    ------
    ValueError
        On a length mismatch, no records, or a non-finite coefficient.
    """
    factors = np.asarray(coefficients, dtype=np.float64)
    if len(records) != factors.size or factors.size == 0:
        raise ValueError(f"{len(records)} records but {factors.size} coefficients")
    if not np.isfinite(factors).all():
        raise ValueError(f"coefficients must be finite, got {factors.tolist()}")
    out: dict[str, Array] = {}
    for name in records[0]:
        first = records[0][name].numpy()
        wide = np.complex128 if first.dtype.kind == "c" else np.float64
        acc = np.zeros(first.shape, dtype=wide)
        for record, factor in zip(records, factors, strict=True):
            acc += record[name].numpy() * factor
        if first.dtype.kind not in "fc":
            acc = np.rint(acc)
        out[name] = Array(np.asarray(acc.astype(first.dtype)))
    return ArrayRecord(out)
