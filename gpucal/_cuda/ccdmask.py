"""Launching ccdmask's kernels (cuda/ccdmask.cu) from CuPy."""

import functools
from pathlib import Path

import cupy
import numpy as np

_CUDA_DIR = Path(__file__).parent / "cuda"
_BLOCK = 128
_CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
#: Window sizes the rank-filter kernel holds in per-thread memory; larger windows go
#: through the CPU implementation.
CAPACITIES = (64, 256, 1024)


@functools.cache
def _source():
    # One string, not an #include: CuPy's kernel cache is keyed on the source text.
    return (_CUDA_DIR / "ccdmask_pixel.cuh").read_text() + (_CUDA_DIR / "ccdmask.cu").read_text()


@cupy.memoize(for_each_device=True)
def _module(capacity, ctype):
    name = f"gpucal_rank_filter<{capacity}, {ctype}>"
    module = cupy.RawModule(code=_source(), options=("--std=c++17",), name_expressions=[name])
    return module.get_function(name), module.get_function("gpucal_fill_column_gaps")


def capacity_for(window):
    """The smallest kernel capacity that holds `window` values, or None."""
    return next((c for c in CAPACITIES if window <= c), None)


def rank_filter(image, size, percentiles):
    """(len(percentiles), H, W) rank statistics of a 2-D CuPy image, one thread per pixel."""
    h, w = size
    image = cupy.ascontiguousarray(image)
    H, W = image.shape
    out = cupy.empty((len(percentiles), H, W), image.dtype)
    if image.size:
        kernel, _ = _module(capacity_for(h * w), _CTYPES[image.dtype])
        pcts = cupy.asarray(percentiles, dtype=np.float64)
        kernel(((H * W + _BLOCK - 1) // _BLOCK,), (_BLOCK,),
               (image, np.int64(H), np.int64(W), np.int32(h), np.int32(w), pcts,
                np.int32(len(percentiles)), out))
    return out


def fill_column_gaps(mask, ngood):
    """ccdproc's findbadcolumns loop, one thread per column, on a copy of a CuPy mask."""
    work = cupy.ascontiguousarray(mask, dtype=cupy.uint8).copy()
    nl, nc = work.shape
    if work.size:
        _, kernel = _module(CAPACITIES[0], "float")
        kernel(((nc + _BLOCK - 1) // _BLOCK,), (_BLOCK,),
               (work, np.int64(nl), np.int64(nc), np.int32(ngood)))
    return work.astype(bool)
