"""Combining a stack on a Dask cluster, one task per row band (``combine(..., client=)``).

Each task holds the whole stack for its rows: a band of a Dask array (Dask
materialises it on the worker) or the rows of every FITS file, which the worker
reads itself. The per-pixel work is :func:`gpucal.banding.combine_band`, the same
as in memory, so the result is identical; bands come back to the caller's process
as they finish and are placed in the output there.
"""

import math
import os

import numpy as np

from .backend import backend_for_device, get_backend, move
from .device import ENV_VAR
from .banding import band_rows, combine_band, parse_bytes
from .sources import backend_of
from .stack_sources import ArraySource, FileSource

DEFAULT_BAND_LIMIT = 2e9  # bytes of stack per band (and its scratch) on a worker


class _Files:
    """FITS inputs as a worker opens them (paths, HDU and unit travel; pixels do not)."""

    def __init__(self, paths, hdu, unit):
        self.paths, self.hdu, self.unit = paths, hdu, unit

    def open(self, device):
        return FileSource(self.paths, device, self.hdu, self.unit)


def _band_task(stack, start, stop, weights, device, work):
    """(value, uncertainty, nkept) of rows start:stop, as NumPy arrays, on a worker."""
    if isinstance(stack, _Files):
        source = stack.open(device)
    else:  # this band of a Dask array, already computed here
        source = ArraySource(move(np.asarray(stack), backend_of(device)))
        start, stop = 0, stack.shape[1]
    try:
        if weights is not None:
            weights = move(weights, source.backend)
        result = combine_band(source, start, stop, weights, **work)
        return tuple(source.backend.to_numpy(a) for a in result)
    finally:
        source.close()


def _workers(client):
    if client is None:
        return os.cpu_count() or 1
    return max(1, len(client.scheduler_info().get("workers", {})))


def combine_bands(source, client, weights, pixel_weights, mem_limit, *, device, hdu, unit,
                  **work):
    """Yield (first row, (value, uncertainty, nkept)) of each band of `source`, computed on
    the cluster of `client` (Dask's default scheduler if None), on the caller's backend.
    """
    import dask

    if isinstance(source, FileSource):
        stack = _Files(source.files.paths, hdu, unit)
    budget = parse_bytes(mem_limit) if mem_limit is not None else DEFAULT_BAND_LIMIT
    numpy = backend_for_device("cpu")
    rows = band_rows(source, work["dtype"], pixel_weights, numpy, budget)
    rows = max(1, min(rows, math.ceil(source.shape[0] / (2 * _workers(client)))))
    if weights is not None:
        weights = get_backend(weights).to_numpy(weights)
    worker_device = device if device is not None else os.environ.get(ENV_VAR)  # the caller's
    tasks, starts = [], range(0, source.shape[0], rows)
    for start in starts:
        stop = min(start + rows, source.shape[0])
        band = stack if isinstance(source, FileSource) else source.band(start, stop, None)[0]
        w = weights[:, start:stop] if pixel_weights else weights
        tasks.append(dask.delayed(_band_task, pure=True)(band, start, stop, w, worker_device,
                                                         work))
    if client is None:
        results = zip(starts, dask.compute(*tasks))
    else:
        futures = client.compute(tasks)
        start_of = {f.key: start for f, start in zip(futures, starts)}
        results = ((start_of[f.key], f.result()) for f in _as_completed(futures))
    for start, band in results:
        yield start, tuple(move(a, source.backend) for a in band)


def _as_completed(futures):
    from distributed import as_completed

    return as_completed(futures)
