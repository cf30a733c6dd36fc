"""The fused GPU combine kernel, checked against the CPU backend and its limits, four ways.

* On every machine with a C++ compiler: the kernel's per-pixel code
  (gpucal/_cuda/cuda/combine_pixel.cuh) compiled for the host and run over
  every pixel, so its logic is tested without a GPU, at every depth up to 512.
* Where CuPy finds NVRTC (no GPU needed): the CUDA source compiles for sm_90.
* Where nvcc is installed: ptxas' registers, local memory and spills for sm_90, and the
  table of them kept in bench/results.
* On a GPU (or under ../shared/cupy-standin): the real kernel through the CuPy backend
  (marked ``gpu``).
"""

import ctypes
import hashlib
import importlib.util
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from _helpers import build_host_harness, compile_with_nvrtc, cuda_source

from gpucal._combine_kernel import MAX_FRAMES, kernel_name, kernel_scalars, needs_work
from gpucal.backend import load_backend

CPU = load_backend("numpy")
ROOT = Path(__file__).resolve().parents[1]
SIGMAS = [None,
          dict(sigma_lower=3.0, sigma_upper=3.0, maxiters=1, cenfunc="mean", stdfunc="std"),
          dict(sigma_lower=2.0, sigma_upper=2.5, maxiters=None, cenfunc="median", stdfunc="std"),
          dict(sigma_lower=1.5, sigma_upper=1.5, maxiters=3, cenfunc="median", stdfunc="mad_std"),
          dict(sigma_lower=2.0, sigma_upper=2.0, maxiters=2, cenfunc="mean", stdfunc="mad"),
          dict(sigma_lower=1.0, sigma_upper=1.2, maxiters=None, cenfunc="mean", stdfunc="std")]
OPTIONS = list(itertools.product(["average", "median", "sum"], SIGMAS,
                                 [None, (1, 1), (0, 2)], [None, (80.0, 400.0)]))
#: Depths the parity tests cover: shallow, the lab notebook's 61 darks, deep, the limit.
DEPTHS = [2, 3, 7, 21, 61, 64, 100, 256, 300, 512]


def _shape(n):
    """Pixels per test: fewer for deep stacks (the stand-in runs threads one by one)."""
    return (24, 20) if n < 64 else (12, 10) if n < 256 else (8, 8)


def _stack(n, dtype, seed=0, shape=(24, 20)):
    """Outliers, NaN, ±inf, a pixel of ties, a pixel of one repeated value and zeros of
    both signs."""
    rng = np.random.default_rng(seed)
    x = rng.normal(100, 5, (n,) + shape)
    x[rng.random(x.shape) < 0.05] *= 6
    x[rng.random(x.shape) < 0.02] = np.nan
    x[0, 0, 0] = np.inf
    x[-1, 0, 1] = -np.inf
    x[:, 1, 1] = 100.0  # ties
    x[:, 2, 2] = np.round(x[:, 2, 2] / 10) * 10  # some ties
    x[::2, 3, 3], x[1::2, 3, 3] = 0.0, -0.0
    mask = rng.random(x.shape) < 0.05
    return x.astype(dtype), mask


def _extrema(n):
    """clip_extrema's (nlow, nhigh): the usual ones and those that reject everything."""
    return [None, (1, 1), (0, 2), (n // 3, n // 4), (n, 0), (0, n), (n - 1, 1)]


def assert_same(got, ref, dtype):
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    for g, r in zip(got[:2], ref[:2]):
        np.testing.assert_allclose(g, r.astype(dtype), rtol=rtol, equal_nan=True)
    np.testing.assert_array_equal(got[2], ref[2])


# -- the kernel's C++ on the host ------------------------------------------------------------

@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    """The host build of the kernel's per-pixel code: one build serves every depth."""
    return build_host_harness(tmp_path_factory.mktemp("kernel"), "combine_host.cpp")


def host_combine(lib, x, mask=None, *, scale=None, minmax=None, extrema=None, sigma=None,
                 method="average", weights=None):
    """Call the host-built kernel body like gpucal/_cuda/combine.py calls the CUDA kernel.

    The scratch gets a guard row either side (a write outside a pixel's column fails), and
    is not passed at all where the kernel does not need it.
    """
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
    guarded = np.full((n + 2, npix), 12345.0) if needs_work(method, extrema, sigma) else None
    work = None if guarded is None else guarded[1:]
    kind = 0 if weights is None else (1 if weights.ndim == 1 else 2)
    scalars = [ctypes.c_double(a) if isinstance(a, float) else ctypes.c_int(a)
               for a in kernel_scalars(method, minmax, extrema, sigma, kind)]
    entry(ptr(x), ptr(m), ptr(s), ptr(w), ptr(work), ctypes.c_int(n), ctypes.c_longlong(npix),
          ctypes.c_int(m is not None), ctypes.c_int(s is not None), *scalars, ptr(value),
          ptr(unc), ptr(nkept))
    if guarded is not None:
        assert (guarded[0] == 12345.0).all() and (guarded[-1] == 12345.0).all()
    return value.reshape(shape), unc.reshape(shape), nkept.reshape(shape)


@pytest.mark.parametrize("n", DEPTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_logic_matches_the_cpu(host_lib, n, dtype):
    x, mask = _stack(n, dtype, seed=n, shape=_shape(n))
    scale = np.linspace(0.8, 1.2, n)
    for method, sigma, extrema, minmax in OPTIONS:
        for m, s in ((mask, None), (None, scale), (None, None)):
            kwargs = dict(scale=s, minmax=minmax, extrema=extrema, sigma=sigma, method=method)
            assert_same(host_combine(host_lib, x, m, **kwargs), CPU.combine_stack(x, m, **kwargs),
                        dtype)


@pytest.mark.parametrize("n", [2, 3, 7, 64, 300])
def test_kernel_logic_extrema_ties_and_limits(host_lib, n):
    """Ranks of equal values go by frame order; nlow or nhigh up to every frame."""
    x, mask = _stack(n, np.float64, seed=n + 1, shape=(6, 5))
    x[:, 4] = np.round(x[:, 4] / 20)  # many ties in a row of pixels
    for method, extrema, sigma, m in itertools.product(["average", "median"], _extrema(n),
                                                        SIGMAS[:4], (mask, None)):
        kwargs = dict(extrema=extrema, sigma=sigma, method=method)
        assert_same(host_combine(host_lib, x, m, **kwargs), CPU.combine_stack(x, m, **kwargs),
                    np.float64)


@pytest.mark.parametrize("weights", ["frame", "pixel"])
@pytest.mark.parametrize("n", [8, 300])
def test_kernel_logic_weights(host_lib, weights, n):
    x, mask = _stack(n, np.float64, seed=4, shape=_shape(n))
    rng = np.random.default_rng(1)
    w = rng.uniform(0.5, 2, n) if weights == "frame" else rng.uniform(0.5, 2, x.shape)
    for method, sigma, extrema in itertools.product(("average", "sum"), SIGMAS[:4],
                                                    (None, (1, 2))):
        kwargs = dict(method=method, weights=w, sigma=sigma, extrema=extrema)
        assert_same(host_combine(host_lib, x, mask, **kwargs),
                    CPU.combine_stack(x, mask, **kwargs), np.float64)


@pytest.mark.parametrize("weights", ["frame", "pixel"])
def test_kernel_logic_zero_weights_keep_nothing(host_lib, weights):
    """A pixel whose kept values all weigh 0 keeps nothing (gpucal.combine flags NO_DATA)."""
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
        got = host_combine(host_lib, x, mask, **kwargs)
        assert_same(got, CPU.combine_stack(x, mask, **kwargs), np.float64)
        np.testing.assert_array_equal(got[2] == 0, nothing)
        assert np.isnan(got[1][nothing]).all()


def test_kernel_logic_edge_pixels(host_lib):
    """All values rejected, a single value left, all NaN, all equal."""
    x = np.array([[1.0, np.nan, 7.0, 2.0], [1.0, np.nan, 7.0, 2.0], [1.0, np.nan, 7.0, 5.0],
                  [1.0, np.nan, 7.0, 9.0], [1.0, np.nan, 7.0, 3.0]])
    mask = np.zeros(x.shape, bool)
    mask[:, 0] = True
    mask[1:, 3] = True
    for method, sigma, extrema in itertools.product(("average", "median", "sum"), SIGMAS,
                                                    (None, (2, 2))):
        for m in (mask, None):
            kwargs = dict(method=method, sigma=sigma, extrema=extrema)
            assert_same(host_combine(host_lib, x, m, **kwargs),
                        CPU.combine_stack(x, m, **kwargs), np.float64)


def test_kernel_logic_is_bit_identical_in_float64(host_lib):
    """Sums in the CPU backend's order, medians and MADs of the same values: the same bits."""
    n = 100
    x, mask = _stack(n, np.float64, seed=7, shape=(12, 10))
    for method, sigma in itertools.product(("average", "median", "sum"), SIGMAS):
        kwargs = dict(method=method, sigma=sigma)
        got, ref = host_combine(host_lib, x, mask, **kwargs), CPU.combine_stack(x, mask, **kwargs)
        for g, r in zip(got, ref):
            np.testing.assert_array_equal(g, r)


# -- what compiles, and how many times ---------------------------------------------------------

def test_every_depth_shares_one_instantiation_per_dtype():
    """At most six compiled kernels for every depth 1..512: here one per dtype."""
    names = {kernel_name(n, t) for n in range(1, MAX_FRAMES + 1) for t in ("float", "double")}
    assert names == {"gpucal_combine_stack<float>", "gpucal_combine_stack<double>"}
    assert len(names) <= 6
    with pytest.raises(ValueError, match="1 to 512 frames"):
        kernel_name(MAX_FRAMES + 1, "float")


def test_cuda_source_compiles_with_nvrtc():
    source = cuda_source("combine_pixel.cuh", "combine.cu")
    names = [kernel_name(n, t) for n in (3,) for t in ("float", "double")]
    assert set(compile_with_nvrtc(source, "combine.cu", names)) == set(names)


def _ptxas_tool():
    spec = importlib.util.spec_from_file_location("ptxas_combine", ROOT / "bench" / "ptxas_combine.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="no nvcc")
def test_ptxas_no_local_memory_and_at_most_128_registers():
    """ptxas -v for sm_90, as CuPy would compile it: no stack frame, no spill, <= 128 regs."""
    tool = _ptxas_tool()
    code = tool.source(None)
    for name in sorted({kernel_name(n, t) for n in (2, 256, 512) for t in ("float", "double")}):
        r = tool.ptxas(code, name)
        assert r["regs"] <= 128, (name, r)
        assert r["stack"] == r["spill_stores"] == r["spill_loads"] == 0, (name, r)


def test_ptxas_table_is_of_this_source():
    """bench/results keeps the ptxas figures of the kernel as it is (rerun
    bench/ptxas_combine.py after changing it), and they are within the limits."""
    tool = _ptxas_tool()
    table = json.loads(tool.OUT.read_text())
    after = table["after"]
    assert after["source_sha256"] == hashlib.sha256(tool.source(None).encode()).hexdigest(), \
        "the kernel source changed: rerun python bench/ptxas_combine.py"
    assert {k["name"] for k in after["kernels"]} == {kernel_name(2, t) for t in ("float", "double")}
    for k in after["kernels"]:
        assert k["regs"] <= 128 and k["stack"] == k["spill_stores"] == k["spill_loads"] == 0, k


# -- the real kernel on a GPU -----------------------------------------------------------------

def _gpu_combine(x, m, **kwargs):
    import cupy

    gpu = load_backend("cupy")
    if kwargs.get("weights") is not None:  # the backend takes its own arrays
        kwargs = dict(kwargs, weights=cupy.asarray(kwargs["weights"]))
    got = gpu.combine_stack(cupy.asarray(x), None if m is None else cupy.asarray(m), **kwargs)
    return [cupy.asnumpy(a) for a in got]


@pytest.mark.gpu
@pytest.mark.parametrize("n", DEPTHS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_kernel_matches_the_cpu(n, dtype):
    x, mask = _stack(n, dtype, seed=n, shape=_shape(n) if n >= 64 else (70, 90))
    scale = np.linspace(0.8, 1.2, n)
    for method, sigma, extrema, minmax in OPTIONS:
        for m, s in ((mask, None), (None, scale)):
            kwargs = dict(scale=s, minmax=minmax, extrema=extrema, sigma=sigma, method=method)
            assert_same(_gpu_combine(x, m, **kwargs), CPU.combine_stack(x, m, **kwargs), dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("n", [3, 64, 512])
def test_gpu_kernel_extrema_limits_and_weights(n):
    x, mask = _stack(n, np.float64, seed=n + 2, shape=(8, 8))
    rng = np.random.default_rng(n)
    for w in (None, rng.uniform(0.5, 2, n), rng.uniform(0.5, 2, x.shape)):
        for method, extrema, sigma in itertools.product(("average", "sum", "median"),
                                                        _extrema(n), SIGMAS[:4]):
            if w is not None and method == "median":
                continue
            kwargs = dict(method=method, extrema=extrema, sigma=sigma, weights=w)
            assert_same(_gpu_combine(x, mask, **kwargs), CPU.combine_stack(x, mask, **kwargs),
                        np.float64)


@pytest.mark.gpu
def test_gpu_kernel_reserves_no_local_memory():
    """No depth reserves local memory at launch; the scratch is budgeted per value."""
    gpu = load_backend("cupy")
    for n in (2, 61, 256, MAX_FRAMES):
        assert gpu.combine_reserve(n, np.float32) == 0
        assert gpu.combine_reserve(n, np.float64) == 0
