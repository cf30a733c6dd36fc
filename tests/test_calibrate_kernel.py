"""The fused calibration kernel, checked against the CPU backend without and with a GPU.

* With a C++ compiler: the kernel's per-pixel code (gpucal/_cuda/cuda/calibrate_pixel.cuh)
  compiled for the host equals the CPU backend's arithmetic (gpucal._xp.arithmetic)
  bit for bit.
* Where CuPy finds NVRTC (no GPU needed): the CUDA source compiles.
* On a GPU: tests/test_calibrate.py runs the real kernel through the backend fixture,
  and the parity test below compares it with the CPU.
"""

import ctypes

import numpy as np
import pytest
from _helpers import build_host_harness, compile_with_nvrtc, cuda_source

from gpucal._calibrate_kernel import operands
from gpucal._xp.arithmetic import Arithmetic, Term
from gpucal.backend import load_backend

CPU = load_backend("numpy")


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return build_host_harness(tmp_path_factory.mktemp("kernel"), "calibrate_host.cpp")


def host_calibrate(lib, data, sigma, plan, dtype):
    arrays, masked, flags, scalars = operands(np, data, sigma, plan, dtype)
    shape = data.shape
    full = [np.ascontiguousarray(np.broadcast_to(a, shape)) for a in arrays]
    masked = np.ascontiguousarray(np.broadcast_to(masked, shape), np.uint8)
    pointers = (ctypes.c_void_p * len(full))(*[a.ctypes.data for a in full])
    flags = np.asarray(flags, np.int32)
    scalars = np.asarray(scalars, dtype)
    out, out_sigma = np.empty(shape, dtype), np.empty(shape, dtype)
    entry = lib.calibrate_f32 if np.dtype(dtype) == np.float32 else lib.calibrate_f64
    entry(ctypes.c_longlong(data.size), pointers, masked.ctypes.data_as(ctypes.c_void_p),
          flags.ctypes.data_as(ctypes.c_void_p), scalars.ctypes.data_as(ctypes.c_void_p),
          out.ctypes.data_as(ctypes.c_void_p), out_sigma.ctypes.data_as(ctypes.c_void_p))
    return out, out_sigma if plan.has_deviation(sigma) else None


def random_plan(rng, shape, dtype):
    """A plan with each step present or not, per-frame scales for a batch."""
    ny, nx = shape[-2:]

    def maybe(p=0.6):
        return rng.random() < p

    def image(level, spread):
        return rng.normal(level, spread, (ny, nx)).astype(dtype)

    def term(level):
        scale = rng.uniform(0.5, 2, (shape[0], 1, 1)) if len(shape) == 3 and maybe() else \
            float(rng.uniform(0.5, 2))
        return Term(image(level, level / 10), image(2, 0.5) if maybe() else None, scale)

    flat = Term(image(1.0, 0.1), image(0.01, 0.002) if maybe() else None,
                float(rng.uniform(0.5, 2))) if maybe() else None
    overscan = None
    if maybe():
        overscan = rng.normal(300, 5, shape[:-1] + (1,)).astype(dtype)
    return Arithmetic(
        overscan=overscan,
        readnoise=float(rng.uniform(2, 10)) if maybe() else None,
        deviation_gain=float(rng.uniform(0.5, 3)), disregard_nan=maybe(0.5),
        gain=float(rng.uniform(0.5, 3)) if maybe() else 1.0,
        bias=term(100) if maybe() else None, dark=term(20) if maybe() else None, flat=flat,
        flat_mask=rng.random((ny, nx)) < 0.05 if flat is not None and maybe() else None,
        flat_min=0.9 if flat is not None and maybe() else None,
        final_gain=float(rng.uniform(0.5, 3)) if maybe(0.3) else 1.0)


@pytest.mark.parametrize("seed", range(40))
def test_kernel_equals_the_cpu(host, seed):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(np.float32 if seed % 2 else np.float64)
    shape = (3, 17, 23) if seed % 3 == 0 else (17, 23)
    raw = rng.normal(300, 400, shape).astype(dtype)  # negatives: NaN or zero counts
    raw[rng.random(shape) < 0.02] = np.nan
    sigma = rng.uniform(1, 5, shape).astype(dtype) if rng.random() < 0.5 else None
    plan = random_plan(rng, shape, dtype)
    theirs = CPU.calibrate(raw, sigma, plan, dtype)
    ours = host_calibrate(host, raw, sigma, plan, dtype)
    np.testing.assert_array_equal(ours[0], theirs[0])
    assert (ours[1] is None) == (theirs[1] is None)
    if theirs[1] is not None:
        np.testing.assert_array_equal(ours[1], theirs[1])


def test_cuda_source_compiles():
    source = cuda_source("calibrate_pixel.cuh") + """
template <typename T>
__global__ void probe(const T* x, T* out, T* sig) {
    GpucalCalScalars<T> s = {1, 1, 0, 1, 1, T(5), T(2), T(1.5), T(0.5), T(0.9), T(1)};
    gpucal_calibrate_pixel<T>(s, x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7], x[8], x[9],
                              x[10], false, out[0], sig[0]);
}
"""
    compile_with_nvrtc(source, "calibrate_probe.cu", ["probe<float>", "probe<double>"])


@pytest.mark.gpu
@pytest.mark.parametrize("seed", range(10))
def test_gpu_kernel_equals_the_cpu(seed):
    from gpucal.backend import load_backend

    gpu = load_backend("cupy")
    rng = np.random.default_rng(seed)
    dtype = np.dtype(np.float32)
    shape = (3, 17, 23) if seed % 2 else (17, 23)
    raw = rng.normal(300, 400, shape).astype(dtype)
    sigma = rng.uniform(1, 5, shape).astype(dtype)
    plan = random_plan(rng, shape, dtype)
    theirs = CPU.calibrate(raw, sigma, plan, dtype)

    def up(a):
        return gpu.asarray(a) if isinstance(a, np.ndarray) else a

    gplan = plan._replace(**{k: up(getattr(plan, k)) for k in ("overscan", "flat_mask")},
                          **{k: None if getattr(plan, k) is None else Term(
                              *(up(v) for v in getattr(plan, k))) for k in ("bias", "dark",
                                                                             "flat")})
    ours = gpu.calibrate(gpu.asarray(raw), gpu.asarray(sigma), gplan, dtype)
    np.testing.assert_array_equal(gpu.to_numpy(ours[0]), theirs[0])
    np.testing.assert_array_equal(gpu.to_numpy(ours[1]), theirs[1])
