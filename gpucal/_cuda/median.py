"""Launching L.A.Cosmic's median filters (cuda/median.cu) from CuPy."""

import cupy
import numpy as np

from .kernels import BLOCK, blocks, function

_FILES = ("median_pixel.cuh", "median.cu")


def median_filter(images, size, separable):
    """astroscrappy's (separable) median filter of each frame of a CuPy float32 stack.

    Parameters
    ----------
    images : cupy.ndarray, float32, shape (..., ny, nx)
        Finite values; leading dimensions are independent frames.
    size : int
        Window size, already validated (cpu_fallback.medians.check_arguments).
    separable : bool
        Rows then columns instead of the full ``size × size`` window.

    Returns
    -------
    cupy.ndarray
        New array of the same shape; the ``size // 2`` border is the input's.
    """
    images = cupy.ascontiguousarray(images)
    h = size // 2
    ny, nx = images.shape[-2:]
    if images.size == 0 or ny <= 2 * h or nx <= 2 * h:  # no interior: nothing to launch
        return images.copy()
    out = cupy.empty_like(images)
    grid = blocks(images.size)
    ny, nx, n = np.int64(ny), np.int64(nx), np.int64(images.size)
    if separable:
        rows = cupy.empty_like(images)
        function(_FILES, f"gpucal_median_rows<{h}>")(grid, (BLOCK,), (images, rows, nx, n))
        function(_FILES, f"gpucal_median_columns<{h}>")(grid, (BLOCK,),
                                                         (images, rows, out, ny, nx, n))
    else:
        function(_FILES, f"gpucal_median_box<{h}>")(grid, (BLOCK,), (images, out, ny, nx, n))
    return out
