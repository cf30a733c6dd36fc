"""Compiling gpucal's CUDA sources (cuda/*.cuh + *.cu) with NVRTC through CuPy."""

import functools
from pathlib import Path

import cupy
import numpy as np

CUDA_DIR = Path(__file__).parent / "cuda"
BLOCK = 128  # threads per block of every gpucal kernel
CTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


@functools.cache
def source(*files):
    """portable.cuh and the files of cuda/ as one string.

    One string, not #includes: CuPy's kernel cache is keyed on the source text.
    """
    return "".join((CUDA_DIR / name).read_text() for name in ("portable.cuh", *files))


@cupy.memoize(for_each_device=True)
def function(files, name):
    """The kernel `name` (a template instantiation or an extern "C" name) compiled from `files`."""
    # No fused multiply-adds: the kernels round as the CPU backend does (clip bounds, sums).
    module = cupy.RawModule(code=source(*files), options=("--std=c++17", "--fmad=false"),
                            name_expressions=[name])
    return module.get_function(name)


def blocks(n):
    """Grid size for `n` threads."""
    return ((n + BLOCK - 1) // BLOCK,)
