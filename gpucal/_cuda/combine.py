"""Launching the fused combine kernel (cuda/combine.cu) from CuPy."""

import math

import cupy
import numpy as np

from .._combine_kernel import kernel_name, kernel_scalars, needs_work
from .kernels import BLOCK, CTYPES, blocks, function

_FILES = ("combine_pixel.cuh", "combine.cu")
#: Bytes of the kernel's scratch per stack value: one float64 for each value it sorts.
WORK_PER_VALUE = 8


def combine_stack(x, mask, *, scale, minmax, extrema, sigma, method, weights, out=None):
    """(value, uncertainty, n) of a (N, ...) CuPy stack in one kernel launch.

    Given `out` (C-contiguous: see gpucal._xp.Backend.combine_stack), the kernel
    writes into it where it has the kernel's dtypes (x's, x's, int32), else the
    results are copied there; `out` is returned.
    """
    nframes, shape = x.shape[0], x.shape[1:]
    npix = math.prod(shape)
    if x.dtype not in CTYPES:
        x = x.astype(np.float32)
    x = cupy.ascontiguousarray(x).reshape(nframes, npix)
    dummy = cupy.zeros(1, np.float64)
    mask_arg = dummy if mask is None else cupy.ascontiguousarray(mask, dtype=bool).reshape(nframes, npix)
    scale_arg = dummy if scale is None else cupy.asarray(scale, dtype=np.float64)
    if weights is None:
        weights_kind, weights_arg = 0, dummy
    else:
        weights_kind = 1 if weights.ndim == 1 else 2
        weights_arg = cupy.ascontiguousarray(weights, dtype=np.float64)
    dtypes = (x.dtype, x.dtype, np.dtype(np.int32))
    direct = out is not None and all(o.dtype == t for o, t in zip(out, dtypes))
    results = tuple(o.reshape(npix) if direct else cupy.empty(npix, t)
                    for o, t in zip(out or dtypes, dtypes))
    if npix:
        # value i of pixel p at work[i, p]: a warp's threads touch consecutive addresses
        work = (cupy.empty((nframes, npix), np.float64) if needs_work(method, extrema, sigma)
                else dummy)
        args = (x, mask_arg, scale_arg, weights_arg, work, np.int32(nframes), np.int64(npix),
                np.int32(mask is not None), np.int32(scale is not None))
        scalars = kernel_scalars(method, minmax, extrema, sigma, weights_kind)
        typed = tuple(np.float64(a) if isinstance(a, float) else np.int32(a) for a in scalars)
        kernel = _kernel(nframes, x.dtype)
        kernel(blocks(npix), (BLOCK,), args + typed + results)
    if out is None:
        return tuple(r.reshape(shape) for r in results)
    if not direct:
        for o, r in zip(out, results):
            o[...] = r.reshape(shape)
    return tuple(out)


def _kernel(nframes, dtype):
    return function(_FILES, kernel_name(nframes, CTYPES[np.dtype(dtype)]))


def launch_reserve(nframes, dtype):
    """Bytes of local memory a launch of the kernel for `nframes` frames reserves on the device
    (the kernel keeps no per-thread arrays: 0 unless the compiler spills)."""
    dtype = np.dtype(dtype) if np.dtype(dtype) in CTYPES else np.dtype(np.float32)
    rt, device = cupy.cuda.runtime, cupy.cuda.Device().id
    threads = (rt.deviceGetAttribute(rt.cudaDevAttrMaxThreadsPerMultiProcessor, device)
               * rt.deviceGetAttribute(rt.cudaDevAttrMultiProcessorCount, device))
    return _kernel(nframes, dtype).local_size_bytes * threads
