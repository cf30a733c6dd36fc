"""L.A.Cosmic's median filters, bit for bit astroscrappy's, on every backend.

* The selection networks, cpu_fallback's and the GPU kernels' (median_pixel.cuh on the
  host): exact by the 0-1 principle for the separable sizes, and on random data with ties
  for the full windows.
* ``backend.median_filter`` equals ``astroscrappy.utils.medfilt3/5/7`` and
  ``sepmedfilt3/5/7/9`` exactly (on CuPy too where a GPU is present).
* With a C++ compiler: the kernels' per-pixel code equals cpu_fallback, and so does the
  compiled median_band.
* Where CuPy finds NVRTC (no GPU needed): the CUDA source compiles.
"""

import ctypes
import itertools

import astroscrappy.utils
import numpy as np
import pytest
from _helpers import build_host_harness, compile_with_nvrtc, cuda_source

from cpu_fallback import filters, medians

MODES = [(size, False) for size in medians.FULL_SIZES] + \
        [(size, True) for size in medians.SEPARABLE_SIZES]


def _astroscrappy(image, size, separable):
    name = f"{'sep' if separable else ''}medfilt{size}"
    return getattr(astroscrappy.utils, name)(np.ascontiguousarray(image))


def _image(shape, seed, ties=False):
    """Seeded float32 frames; with `ties`, small integers and many zeros."""
    rng = np.random.default_rng(seed)
    if ties:
        a = rng.integers(-3, 4, shape).astype(np.float32)
        a[rng.random(shape) < 0.4] = 0.0
        return a
    return rng.normal(100.0, 10.0, shape).astype(np.float32)


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    return build_host_harness(tmp_path_factory.mktemp("kernel"), "median_host.cpp")


def _ptr(a):
    return a.ctypes.data_as(ctypes.c_void_p)


def host_select(lib, values):
    """The kernels' gpucal_median_select<K> of each row of a (count, K) float32 array."""
    values = np.ascontiguousarray(values, np.float32)
    out = np.empty(len(values), np.float32)
    assert lib.median_select(_ptr(values), ctypes.c_longlong(len(values)),
                             ctypes.c_int(values.shape[1]), _ptr(out)) == 0
    return out


def host_median_filter(lib, images, size, separable):
    """The kernels' per-pixel code run on the host over a (..., ny, nx) float32 array."""
    images = np.ascontiguousarray(images, np.float32)
    out = np.empty_like(images)
    ny, nx = images.shape[-2:]
    assert lib.median_filter(_ptr(images), _ptr(out), ctypes.c_longlong(ny),
                             ctypes.c_longlong(nx), ctypes.c_longlong(images.size),
                             ctypes.c_int(size), ctypes.c_int(int(separable))) == 0
    return out


@pytest.fixture(params=["cpu_fallback", "kernel"])
def select(request):
    """Median of each row of a (count, n) array through one implementation's network."""
    if request.param == "cpu_fallback":
        return lambda values: medians.network_median(list(values.T))
    lib = request.getfixturevalue("host")
    return lambda values: host_select(lib, values)


@pytest.mark.parametrize("n", medians.SEPARABLE_SIZES)
def test_selection_network_zero_one_principle(select, n):
    """A comparator network selects the median of every input iff of every 0-1 input."""
    values = np.array(list(itertools.product((0.0, 1.0), repeat=n)), np.float32)
    np.testing.assert_array_equal(select(values), np.median(values, axis=1))


@pytest.mark.parametrize("n", [25, 49])
def test_selection_network_random_with_ties(select, n):
    rng = np.random.default_rng(n)
    values = rng.normal(0, 1, (3000, n)).astype(np.float32)
    values[1000:2000] = rng.integers(-2, 3, (1000, n))  # many ties
    values[2000:][rng.random((1000, n)) < 0.6] = 0.0
    np.testing.assert_array_equal(select(values), np.median(values, axis=1))


def _shapes(size):
    """The smallest frame with an interior, then odd/even and non-square ones."""
    return [(size, size), (size + 1, size + 2), (37, 53), (64, 64), (52, 31)]


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("size,separable", MODES)
def test_equals_astroscrappy(backend, size, separable, ties):
    for i, shape in enumerate(_shapes(size)):
        image = _image(shape, seed=100 * size + i, ties=ties)
        original = image.copy()
        got = backend.to_numpy(backend.median_filter(backend.asarray(image), size, separable))
        assert got.dtype == np.float32 and got.shape == shape
        np.testing.assert_array_equal(got, _astroscrappy(image, size, separable),
                                      err_msg=f"shape {shape}")
        np.testing.assert_array_equal(image, original)  # the input is never written


@pytest.mark.skipif(not filters._use_compiled(None), reason="cpu_fallback._rankfilter not built")
@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("size,separable", MODES)
def test_compiled_equals_the_numpy_network(size, separable, ties):
    """The compiled median_band (blocks of 256 columns, several bands, signed zeros in the
    ties) is NumPy's network bit for bit, on frames wider than a block and on windows."""
    for shape in [(2, 67, 600), (40, 21, 21), (1, 300, 257)]:
        image = _image(shape, seed=size + len(shape), ties=ties)
        image[0, 1:4, ::3] *= -1  # -0.0 beside 0.0
        numpy = medians.median_filter(image, size, separable, threads=2, compiled=False)
        compiled = medians.median_filter(image, size, separable, threads=2, compiled=True)
        np.testing.assert_array_equal(compiled.view(np.uint32), numpy.view(np.uint32),
                                      err_msg=f"shape {shape}")


@pytest.mark.parametrize("shape", ["thin", "flat", "pixel", "empty", "batch"])
@pytest.mark.parametrize("size,separable", MODES)
def test_frame_without_interior_is_copied(backend, size, separable, shape):
    """What astroscrappy documents; not compared with it: astroscrappy 1.3.0 reads and
    writes out of bounds (heap corruption, aborts) on frames narrower than the window."""
    shape = {"thin": (40, size - 1), "flat": (size - 1, 40), "pixel": (1, 1), "empty": (0, 5),
             "batch": (3, size - 1, size)}[shape]
    image = backend.asarray(_image(shape, seed=size))
    got = backend.median_filter(image, size, separable)
    assert got is not image
    np.testing.assert_array_equal(backend.to_numpy(got), backend.to_numpy(image))


@pytest.mark.parametrize("batch", [(4,), (2, 3)])
@pytest.mark.parametrize("size,separable", MODES)
def test_batch_frames_are_independent(backend, size, separable, batch):
    """Each frame of a stack is filtered on its own: no window crosses a frame boundary."""
    images = _image(batch + (23, 30), seed=size, ties=size % 2 == 1)
    got = backend.to_numpy(backend.median_filter(backend.asarray(images), size, separable))
    assert got.shape == images.shape
    for index in np.ndindex(batch):
        np.testing.assert_array_equal(got[index],
                                      _astroscrappy(images[index], size, separable),
                                      err_msg=f"frame {index}")


@pytest.mark.parametrize("images,size,separable,error", [
    (np.zeros((9, 9)), 3, False, TypeError),
    (np.zeros(9, np.float32), 3, True, TypeError),
    (np.zeros((9, 9), np.float32), 4, True, ValueError),
    (np.zeros((9, 9), np.float32), 9, False, ValueError),
])
def test_bad_arguments_raise(backend, images, size, separable, error):
    with pytest.raises(error):
        backend.median_filter(backend.asarray(images), size, separable)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("size,separable", MODES)
def test_kernel_equals_cpu_fallback(host, size, separable, seed):
    rng = np.random.default_rng(seed)
    batch = () if seed % 2 else tuple(int(v) for v in rng.integers(1, 4, seed % 3 + 1))
    shape = batch + tuple(int(v) for v in rng.integers(1, 40, 2))
    images = _image(shape, seed, ties=seed % 3 == 0)
    np.testing.assert_array_equal(host_median_filter(host, images, size, separable),
                                  medians.median_filter(images, size, separable))


def test_cuda_source_compiles_with_nvrtc():
    source = cuda_source("median_pixel.cuh", "median.cu")
    names = [f"gpucal_median_box<{size // 2}>" for size in medians.FULL_SIZES] + \
            [f"gpucal_median_{kind}<{size // 2}>" for size in medians.SEPARABLE_SIZES
             for kind in ("rows", "columns")]
    assert set(compile_with_nvrtc(source, "median.cu", names)) == set(names)
