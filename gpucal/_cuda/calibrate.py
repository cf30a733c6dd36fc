"""ccd_process on the GPU: one elementwise kernel over the (batch of) frames.

The kernel reads the raw view (trimmed, any strides), broadcasts the overscan
levels, calibration images and per-frame scales, and writes data and deviation
once (cuda/calibrate_pixel.cuh).
"""

import functools

import cupy
import numpy as np

from .._calibrate_kernel import ARRAYS, FLAGS, SCALARS, operands
from .kernels import CTYPES, source


@functools.cache
def _kernel():
    params = ", ".join([f"T {a}" for a in ARRAYS] + ["bool flat_masked"]
                       + [f"int32 {f}" for f in FLAGS] + [f"T {s}" for s in SCALARS])
    body = (f"GpucalCalScalars<T> s = {{{', '.join(FLAGS + SCALARS)}}};\n"
            f"gpucal_calibrate_pixel<T>(s, {', '.join(ARRAYS)}, flat_masked, out, out_sigma);")
    return cupy.ElementwiseKernel(params, "T out, T out_sigma", body, "gpucal_calibrate",
                                  preamble=source("calibrate_pixel.cuh"),
                                  options=("--fmad=false",))


def calibrate(data, sigma, arithmetic, dtype):
    """(data, deviation or None): gpucal._xp.arithmetic.apply's arithmetic, fused."""
    dtype = np.dtype(dtype)
    CTYPES[dtype]  # float32 or float64 only: a KeyError names anything else
    arrays, masked, flags, scalars = operands(cupy, data, sigma, arithmetic, dtype)
    out = cupy.empty(data.shape, dtype)
    out_sigma = cupy.empty(data.shape, dtype)
    _kernel()(*arrays, masked, *flags, *scalars, out, out_sigma)
    return out, out_sigma if arithmetic.has_deviation(sigma) else None
