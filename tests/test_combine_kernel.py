"""The fused GPU combine kernel, checked against cpu_fallback three ways.

* On every machine with a C++ compiler: the kernel's per-pixel code
  (gpucal/_cuda/cuda/combine_pixel.cuh) compiled for the host and run over
  every pixel, so its logic is tested without a GPU.
* Where CuPy finds NVRTC (no GPU needed): the CUDA source compiles for sm_90.
* On a GPU: the real kernel through the CuPy backend (marked ``gpu``).
"""

import ctypes
import itertools

import numpy as np
import pytest
from _helpers import build_host_harness, compile_with_nvrtc, cuda_source

from cpu_fallback import BACKEND as CPU
from gpucal._combine_kernel import kernel_scalars
from gpucal.backend import load_backend


SIGMAS = [None,
          dict(sigma_lower=3.0, sigma_upper=3.0, maxiters=1, cenfunc="mean", stdfunc="std"),
          dict(sigma_lower=2.0, sigma_upper=2.5, maxiters=None, cenfunc="median", stdfunc="std"),
          dict(sigma_lower=1.5, sigma_upper=1.5, maxiters=3, cenfunc="median", stdfunc="mad_std"),
          dict(sigma_lower=2.0, sigma_upper=2.0, maxiters=2, cenfunc="mean", stdfunc="mad")]
OPTIONS = list(itertools.product(["average", "median", "sum"], SIGMAS,
                                 [None, (1, 1), (0, 2)], [None, (80.0, 400.0)]))


def _stack(n, dtype, seed=0, shape=(24, 20)):
    rng = np.random.default_rng(seed)
    x = rng.normal(100, 5, (n,) + shape)
    x[rng.random(x.shape) < 0.05] *= 6
    x[rng.random(x.shape) < 0.02] = np.nan
    x[0, 0, 0] = np.inf
    x[:, 1, 1] = 100.0  # ties
    mask = rng.random(x.shape) < 0.05
    return x.astype(dtype), mask


def assert_same(got, ref, dtype):
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for g, r in zip(got[:2], ref[:2]):
        np.testing.assert_allclose(g, r.astype(dtype), rtol=rtol, equal_nan=True)
    np.testing.assert_array_equal(got[2], ref[2])


# -- the kernel's C++ on the host ------------------------------------------------------------

@pytest.fixture(scope="module")
def host_kernel(tmp_path_factory):
    built = {}

    def get(n):
        if n not in built:
            built[n] = build_host_harness(tmp_path_factory.mktemp("kernel"), "combine_host.cpp",
                                          f"-DNFRAMES={n}")
        return built[n]

    return get


def host_combine(lib, x, mask=None, *, scale=None, minmax=None, extrema=None, sigma=None,
                 method="average", weights=None):
    """Call the host-built kernel body like gpucal/_cuda/combine.py calls the CUDA kernel."""
    n, shape = x.shape[0], x.shape[1:]
    npix = int(np.prod(shape))
    x = np.ascontiguousarray(x.reshape(n, npix))
    entry = lib.combine_f32 if x.dtype == np.float32 else lib.combine_f64
    value, unc = np.empty(npix, x.dtype), np.empty(npix, x.dtype)
    nkept = np.empty(npix, np.int32)

    def ptr(a):
        return None if a is None else a.ctypes.data_as(ctypes.c_void_p)

    m = None if mask is None else np.ascontiguousarray(mask.reshape(n, npix), dtype=np.uint8)
    s = None if scale is None else np.ascontiguousarray(scale, dtype=np.float64)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    kind = 0 if weights is None else (1 if weights.ndim == 1 else 2)
    scalars = [ctypes.c_double(a) if isinstance(a, float) else ctypes.c_int(a)
               for a in kernel_scalars(method, minmax, extrema, sigma, kind)]
    entry(ptr(x), ptr(m), ptr(s), ptr(w), ctypes.c_longlong(npix), ctypes.c_int(m is not None),
          ctypes.c_int(s is not None), *scalars, ptr(value), ptr(unc), ptr(nkept))
    return value.reshape(shape), unc.reshape(shape), nkept.reshape(shape)


@pytest.mark.parametrize("n", [3, 8, 21])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_logic_matches_cpu_fallback(host_kernel, n, dtype):
    lib = host_kernel(n)
    x, mask = _stack(n, dtype, seed=n)
    scale = np.linspace(0.8, 1.2, n)
    for method, sigma, extrema, minmax in OPTIONS:
        for m, s in ((mask, None), (None, scale)):
            kwargs = dict(scale=s, minmax=minmax, extrema=extrema, sigma=sigma, method=method)
            assert_same(host_combine(lib, x, m, **kwargs), CPU.combine_stack(x, m, **kwargs),
                        dtype)


@pytest.mark.parametrize("weights", ["frame", "pixel"])
def test_kernel_logic_weights(host_kernel, weights):
    lib = host_kernel(8)
    x, mask = _stack(8, np.float64, seed=4)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 2, 8) if weights == "frame" else rng.uniform(0.5, 2, x.shape)
    for method in ("average", "sum"):
        kwargs = dict(method=method, weights=w, sigma=SIGMAS[1])
        assert_same(host_combine(lib, x, mask, **kwargs), CPU.combine_stack(x, mask, **kwargs),
                    np.float64)


@pytest.mark.parametrize("weights", ["frame", "pixel"])
def test_kernel_logic_zero_weights_keep_nothing(host_kernel, weights):
    """A pixel whose kept values all weigh 0 keeps nothing (gpucal.combine flags NO_DATA)."""
    lib = host_kernel(8)
    x, mask = _stack(8, np.float64, seed=6)
    nothing = np.ones(x.shape[1:], bool)
    if weights == "frame":
        w = np.zeros(8)
    else:
        w = np.random.default_rng(3).uniform(0.5, 2, x.shape)
        w[:, 2, 3] = 0  # every weight 0
        w[:4, 5, 6], mask[4:, 5, 6] = 0, True  # the kept values' weights 0
        nothing[:] = False
        nothing[2, 3] = nothing[5, 6] = True
    for method in ("average", "sum"):
        kwargs = dict(method=method, weights=w)
        got = host_combine(lib, x, mask, **kwargs)
        assert_same(got, CPU.combine_stack(x, mask, **kwargs), np.float64)
        np.testing.assert_array_equal(got[2] == 0, nothing)
        assert np.isnan(got[1][nothing]).all()


def test_kernel_logic_edge_pixels(host_kernel):
    """All values rejected, a single value left, all NaN, all equal."""
    lib = host_kernel(5)
    x = np.array([[1.0, np.nan, 7.0, 2.0], [1.0, np.nan, 7.0, 2.0], [1.0, np.nan, 7.0, 5.0],
                  [1.0, np.nan, 7.0, 9.0], [1.0, np.nan, 7.0, 3.0]])
    mask = np.zeros(x.shape, bool)
    mask[:, 0] = True
    mask[1:, 3] = True
    for method in ("average", "median", "sum"):
        for sigma in SIGMAS:
            kwargs = dict(method=method, sigma=sigma)
            assert_same(host_combine(lib, x, mask, **kwargs), CPU.combine_stack(x, mask, **kwargs),
                        np.float64)


def test_cuda_source_compiles_with_nvrtc():
    source = cuda_source("combine_pixel.cuh", "combine.cu")
    names = [f"gpucal_combine_stack<{n}, {t}>" for n in (3, 512) for t in ("float", "double")]
    assert set(compile_with_nvrtc(source, "combine.cu", names)) == set(names)


# -- the real kernel on a GPU -----------------------------------------------------------------

@pytest.mark.gpu
@pytest.mark.parametrize("n", [3, 21, 61])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernel_matches_cpu_fallback(n, dtype):
    import cupy

    gpu = load_backend("cupy")
    x, mask = _stack(n, dtype, seed=n, shape=(70, 90))
    scale = np.linspace(0.8, 1.2, n)
    for method, sigma, extrema, minmax in OPTIONS:
        for m, s in ((mask, None), (None, scale)):
            kwargs = dict(scale=s, minmax=minmax, extrema=extrema, sigma=sigma, method=method)
            got = gpu.combine_stack(cupy.asarray(x), None if m is None else cupy.asarray(m),
                                    **kwargs)
            assert_same([cupy.asnumpy(a) for a in got], CPU.combine_stack(x, m, **kwargs), dtype)
