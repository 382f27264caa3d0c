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

import contextlib
import functools
import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord
from numpy.lib import format as npformat

__all__ = ["CHUNK", "array_view", "nonfinite_arrays", "normalise_weights", "weighted_average",
           "weighted_sum"]


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


def weighted_average(
    records: Sequence[ArrayRecord], weights: Sequence[float], *, device: str | None = None
) -> ArrayRecord:
    """Average ArrayRecords array by array with the given (unnormalised) weights.

    Parameters
    ----------
    records : Sequence[ArrayRecord]
        Records with identical keys, shapes and dtypes (screened beforehand).
    weights : Sequence[float]
        One non-negative weight per record; normalised here.
    device : str, optional
        ``None`` (default): the CPU path below. A torch device (``"cuda"``, ``"cuda:1"``, also
        ``"cpu"``): copy each reply to it and accumulate there (:func:`weighted_sum`).

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
    return weighted_sum(records, normalise_weights(weights), device=device)


#: Bytes of the per-chunk working set (N reply slices widened to float64): cache-sized for few
#: replies; for many replies the chunk shrinks only down to ``MIN_CHUNK`` elements, because the
#: per-slice Python overhead then dominates (measured: 16 MiB beat 2 MiB at N = 100).
CHUNK_BYTES = 1 << 24
#: Bounds on the elements per chunk (the Python loop costs ~µs per chunk and reply).
CHUNK = 1 << 15
MIN_CHUNK = 1 << 11


def array_view(array: Array) -> np.ndarray:
    """Return a read-only, zero-copy view of an Array's numpy payload (no deserialisation copy).

    Flower stores an ``Array`` as the bytes of an ``.npy`` file; ``Array.numpy()`` copies them
    through ``np.load``. This parses the header and maps the payload with ``np.frombuffer``.
    Other serialisation types fall back to ``Array.numpy()``.
    """
    if array.stype != "numpy.ndarray":
        return array.numpy()
    buffer = memoryview(array.data)
    header = _npy_header(buffer)
    if header is None:
        return array.numpy()
    shape, fortran, dtype, offset = header
    count = int(np.prod(shape, dtype=np.int64))
    flat = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset)
    return flat.reshape(shape, order="F" if fortran else "C")


def _npy_header(buffer: memoryview) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    """Shape, Fortran flag, dtype and payload offset of an ``.npy`` buffer (``None``: not plain).

    The header is a Python literal that numpy parses with ``ast.literal_eval`` (~50 µs, more than
    reading a 100k-parameter payload); replies of one model repeat the same few headers, so the
    parse is cached on the header's bytes.
    """
    if len(buffer) < 12 or bytes(buffer[:6]) != b"\x93NUMPY":
        return None
    major = buffer[6]
    if major == 1:
        end = 10 + int.from_bytes(buffer[8:10], "little")
    elif major in (2, 3):
        end = 12 + int.from_bytes(buffer[8:12], "little")
    else:
        return None
    return _parse_npy_header(bytes(buffer[:end]))


@functools.lru_cache(maxsize=1024)
def _parse_npy_header(header: bytes) -> tuple[tuple[int, ...], bool, np.dtype, int] | None:
    stream = io.BytesIO(header)
    major, _ = npformat.read_magic(stream)
    read = {1: npformat.read_array_header_1_0, 2: npformat.read_array_header_2_0}.get(major)
    if read is None:  # version 3 (utf-8 field names): numpy's own loader handles it
        return None
    shape, fortran, dtype = read(stream)
    if dtype.hasobject:
        return None
    return tuple(shape), bool(fortran), dtype, stream.tell()


def weighted_sum(
    records: Sequence[ArrayRecord], coefficients: Sequence[float], *, device: str | None = None
) -> ArrayRecord:
    r"""Return :math:`\sum_i c_i w_i` array by array, *without* normalising the coefficients.

    Used directly by schemes whose weights are not a convex combination (FedAvg(K) of the FedAVOT
    paper scales by N/K); :func:`weighted_average` calls it with normalised weights.

    The sum reads each reply's payload in place (:func:`array_view`, no copy) and accumulates in
    cache-sized float64 (complex128) chunks (:data:`CHUNK`), cast back to each array's dtype once
    (integers rounded). Identical inputs with weights summing to 1 therefore come back
    bit-identical, and memory traffic stays close to one pass over the replies.

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
    if device is not None:
        return _torch_sum(records, factors, device)
    out: dict[str, Array] = {}
    with _one_blas_thread():
        for name in records[0]:
            views = [array_view(record[name]) for record in records]
            flat = [view.ravel(order="C") for view in views]  # zero-copy for C order (the norm)
            out[name] = _blocked_sum(flat, factors, views[0].shape)
    return ArrayRecord(out)


@functools.cache
def _blas_controller() -> Any:
    from threadpoolctl import ThreadpoolController  # built once: ~ms; limit() then ~15 us

    return ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread for the memory-bound sum.

    A second BLAS thread only contends (measured here on the idle machine: 174 ms with two
    threads, 92 ms with one for 100 replies x 1M parameters; far worse under load).
    """
    return _blas_controller().limit(limits=1, user_api="blas")


@functools.lru_cache(maxsize=256)
def _npy_header_for(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """Return the ``.npy`` header ``np.save`` writes for a C-ordered array (``Array``'s bytes)."""
    stream = io.BytesIO()
    npformat.write_array_header_1_0(stream, {"descr": npformat.dtype_to_descr(dtype),
                                             "fortran_order": False, "shape": shape})
    return stream.getvalue()


class _Workspace(threading.local):
    """Per-thread scratch buffers, reused across calls.

    Fresh large allocations are page-faulted in on first touch and run at a fraction of memory
    bandwidth. A thread keeps at most one chunk block (``CHUNK_BYTES``) and one buffer as large as
    the largest array it aggregated.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, np.dtype], np.ndarray] = {}

    def get(self, name: str, size: int, dtype: np.dtype) -> np.ndarray:
        key = (name, np.dtype(dtype))
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = self.buffers[key] = np.empty(size, dtype=dtype)
        return buf[:size]


_WORKSPACE = _Workspace()


def _blocked_sum(views: list[np.ndarray], factors: np.ndarray, shape: tuple[int, ...]) -> Array:
    """Return Σ_i factors[i]·views[i] as an ``Array`` of ``shape``, computed chunk by chunk.

    Each chunk widens the N slices into one (N, chunk) block of a reused workspace and takes one
    BLAS matrix-vector product; the result is cast back to the input dtype into a reused buffer
    and copied once, behind its ``.npy`` header, into the bytes the ``Array`` stores (no
    ``np.save`` pass, no zero-filled or page-faulted scratch).
    """
    dtype = views[0].dtype
    wide = np.dtype(np.complex128 if dtype.kind == "c" else np.float64)
    size, count = views[0].size, len(views)
    chunk = int(np.clip(CHUNK_BYTES // (16 * count), MIN_CHUNK, CHUNK))
    width = min(chunk, size)
    header = _npy_header_for(dtype, tuple(shape))
    result = _WORKSPACE.get("result", size, dtype)
    block = _WORKSPACE.get("block", count * width, wide).reshape(count, width)
    acc = _WORKSPACE.get("acc", width, wide)
    weights = factors.astype(wide)
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        rows, a = block[:, : stop - start], acc[: stop - start]
        for row, view in zip(rows, views, strict=True):
            row[...] = view[start:stop]
        np.dot(weights, rows, out=a)
        if dtype.kind not in "fc":
            np.rint(a, out=a)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow shows as Inf; callers check
            result[start:stop] = a
    # one fresh allocation for the output: header and payload copied once into the bytes it keeps
    data = b"".join((header, memoryview(result.view(np.uint8))))
    return Array(dtype=str(dtype), shape=tuple(int(d) for d in shape), stype="numpy.ndarray",
                 data=data)


def _torch_sum(records: Sequence[ArrayRecord], factors: np.ndarray, device: str) -> ArrayRecord:
    """:func:`weighted_sum` on a torch device: each reply copied there once, float64 accumulate.

    For replies that already sit in host memory the copies (PCIe on a GPU) bound this path; it pays
    off where the accumulation, not the transfer, dominates, and keeps the server's host cores free.
    """
    import warnings

    import torch

    dev = torch.device(device)
    out: dict[str, Array] = {}
    for name in records[0]:
        views = [array_view(record[name]) for record in records]
        dtype = views[0].dtype
        wide = torch.complex128 if dtype.kind == "c" else torch.float64
        acc = torch.zeros(views[0].shape, dtype=wide, device=dev)
        for view, factor in zip(views, factors, strict=True):
            with warnings.catch_warnings():  # read-only reply buffer: read here, never written
                warnings.simplefilter("ignore", UserWarning)
                host = torch.from_numpy(view)
            acc.add_(host.to(dev).to(wide), alpha=float(factor))
        if dtype.kind not in "fc":
            acc = torch.round(acc)
        with np.errstate(over="ignore"):
            out[name] = Array(acc.cpu().numpy().astype(dtype, copy=False))
    return ArrayRecord(out)


def nonfinite_arrays(record: ArrayRecord) -> list[str]:
    """Names of the floating/complex arrays of ``record`` holding NaN or Inf (zero-copy check)."""
    bad = []
    for name, array in record.items():
        view = array_view(array)
        if view.dtype.kind in "fc" and not np.isfinite(view).all():
            bad.append(name)
    return bad
