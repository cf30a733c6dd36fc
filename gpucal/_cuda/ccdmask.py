"""Launching ccdmask's kernels (cuda/ccdmask.cu) from CuPy."""

import cupy
import numpy as np

from .kernels import BLOCK, CTYPES, blocks, function

_FILES = ("ccdmask_pixel.cuh", "ccdmask.cu")
#: Window sizes the rank-filter kernel holds in per-thread memory; larger windows go
#: through the CPU implementation.
CAPACITIES = (64, 256, 1024)


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
        kernel = function(_FILES, f"gpucal_rank_filter<{capacity_for(h * w)}, "
                                  f"{CTYPES[image.dtype]}>")
        pcts = cupy.asarray(percentiles, dtype=np.float64)
        kernel(blocks(H * W), (BLOCK,),
               (image, np.int64(H), np.int64(W), np.int32(h), np.int32(w), pcts,
                np.int32(len(percentiles)), out))
    return out


def fill_column_gaps(mask, ngood):
    """ccdproc's findbadcolumns loop, one thread per column, on a copy of a CuPy mask."""
    work = cupy.ascontiguousarray(mask, dtype=cupy.uint8).copy()
    nl, nc = work.shape
    if work.size:
        kernel = function(_FILES, "gpucal_fill_column_gaps")
        kernel(blocks(nc), (BLOCK,),
               (work, np.int64(nl), np.int64(nc), np.int32(ngood)))
    return work.astype(bool)
