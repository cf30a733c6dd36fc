"""Row bands of a stack within a memory budget, and the combination of one band.

A stack larger than memory is combined a band of rows at a time: this module
sizes the bands (``mem_limit``, the device's free memory, the backend's scratch)
and combines one band with the backend's ``combine_stack`` (one fused kernel on
the GPU), in memory (:mod:`gpucal.combine`) or on a Dask worker
(:mod:`gpucal.dask_combine`).
"""

import re

import numpy as np

__all__ = ["band_budget", "band_rows", "combine_band", "outputs", "parse_bytes"]

DEFAULT_CPU_LIMIT = 16e9  # ccdproc's default mem_limit, capped by free memory
GPU_MEMORY_SHARE = 0.8  # of the device's free memory, at most


def parse_bytes(value):
    """Bytes from a number or a string like ``"2GB"``, ``"512 MiB"`` or ``"1.5e9"``.

    Examples
    --------
    >>> parse_bytes("2GB"), parse_bytes("512MiB"), parse_bytes(1e6)
    (2000000000, 536870912, 1000000)
    """
    if isinstance(value, (int, float)):
        size = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKMGT]i?B|B)?\s*", str(value))
        if not match:
            raise ValueError(f"not a memory size: {value!r} (examples: 2GB, 512MiB, 1e9)")
        units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
                 "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
        size = float(match.group(1)) * units[match.group(2) or "B"]
    if not size > 0:
        raise ValueError(f"a memory size must be positive; got {value!r}")
    return int(size)


def band_budget(backend, mem_limit, reserve=0):
    """Bytes a band (and its scratch) may use: mem_limit, within what the device has free
    besides `reserve` (the GPU kernel's local memory)."""
    free = backend.available_memory()
    if backend.device == "gpu":
        free = max(0, GPU_MEMORY_SHARE * free - reserve)
    elif mem_limit is None:
        return int(min(DEFAULT_CPU_LIMIT, 0.5 * free))
    return int(free if mem_limit is None else min(parse_bytes(mem_limit), free))


def band_rows(source, dtype, pixel_weights, backend, budget):
    """How many rows of the stack a band may hold within `budget` bytes.

    Per value a band holds the data, the mask, per-pixel weights, and the
    backend's scratch, which the CPU caps at one chunk per thread; the
    backend may prefer smaller bands than the budget allows (``band_bytes``).
    Its results go straight into the outputs (nothing per band). Bands of
    tile-compressed files are whole tiles high where the budget allows it
    (``row_alignment``), so that no tile is decompressed twice.
    """
    ny, nx = source.shape
    stored = dtype.itemsize + source.has_mask + 8 * pixel_weights
    scratch = backend.combine_scratch(source.n)
    row_values = source.n * nx
    rows = budget // (row_values * (stored + scratch))
    cap = backend.threads * backend.chunk_values  # scratch is no larger than this
    capped = (budget - cap * scratch) // (row_values * stored)
    if capped * row_values >= cap:
        rows = max(rows, capped)
    if rows < 1:
        need = row_values * (stored + scratch)
        raise ValueError(f"mem_limit allows {budget} bytes but one row of this stack needs "
                         f"{need}: raise mem_limit")
    if backend.band_bytes:
        rows = min(rows, max(1, backend.band_bytes // (row_values * stored)))
    align = getattr(source, "row_alignment", 1)
    if rows >= align:
        rows -= rows % align
    return int(min(rows, ny))


def outputs(backend, shape, dtype):
    """Empty (value, uncertainty, nkept) arrays of `shape`: `dtype`, `dtype` and int32."""
    xp = backend.xp
    return xp.empty(shape, dtype), xp.empty(shape, dtype), xp.empty(shape, np.int32)


def combine_band(source, start, stop, weights, *, dtype, factors, method, rejection,
                 out=None):
    """(value, uncertainty, nkept) of rows start:stop of a stack source, on its backend.

    `weights` are per frame (N,), or per pixel already cut to the band. The
    results are written into `out`, C-contiguous arrays of the band's shape
    (``combine`` passes the rows of its outputs, so a band's results take no
    memory of their own), or into new ones of `dtype`, `dtype` and int32.
    """
    if out is None:
        out = outputs(source.backend, (stop - start,) + tuple(source.shape[1:]), dtype)
    data, mask = source.band(start, stop, dtype)
    return source.backend.combine_stack(data, mask, scale=factors, method=method,
                                        weights=weights, out=out, **rejection)

