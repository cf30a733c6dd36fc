"""The image primitives under ccdmask: rank filter, column-gap filling, block percentiles."""

import os

import numpy as np
import pytest
import scipy.ndimage as ndi

from cpu_fallback import filters
from cpu_fallback.filters import MEDIAN

from gpucal import to_device

SHAPES_SIZES = [((37, 53), (15, 15)), ((5, 3), (15, 15)), ((1, 1), (7, 7)),
                ((40, 41), (4, 6)), ((64, 64), (7, 7)), ((30, 30), (1, 1)), ((2, 90), (3, 15)),
                # strips taller than the compiled module's vector path (64)
                ((90, 12), (67, 3))]
PERCENTILES = [MEDIAN, 0.0, 30.9, 50.0, 69.1, 100.0]


def _scipy(a, size, p):
    if p == MEDIAN:
        return ndi.median_filter(a, size=size, mode="reflect")
    return ndi.percentile_filter(a, p, size=size, mode="reflect")


def _image(shape, dtype, seed, nan=0.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(1, 0.01, shape)
    a.flat[::7] = 1.0  # ties
    a[rng.random(shape) < 0.05] = 0.0
    a[rng.random(shape) < nan] = np.nan
    if nan:
        a[rng.random(shape) < 0.03] = np.inf
        a[rng.random(shape) < 0.03] = -np.inf
    return a.astype(dtype)


needs_compiled = pytest.mark.skipif(filters._rankfilter is None,
                                    reason="cpu_fallback._rankfilter not built")


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=needs_compiled), False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", SHAPES_SIZES)
def test_rank_filter_equals_scipy(shape, size, dtype, compiled):
    """Without NaN: scipy.ndimage's median/percentile filters, bit for bit, borders included."""
    a = _image(shape, dtype, seed=sum(shape))
    got = filters.rank_filter(a, size, PERCENTILES, threads=2, compiled=compiled)
    for p, g in zip(PERCENTILES, got):
        ref = _scipy(a, size, p)
        assert g.dtype == ref.dtype
        np.testing.assert_array_equal(g, ref, err_msg=f"percentile {p}")


@needs_compiled
@pytest.mark.parametrize("seed", range(40))
def test_rank_filter_nan_compiled_equals_reference(seed):
    """NaN takes no part: the compiled kernel equals sorting each window with NaN last."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 30, 2))
    size = tuple(int(v) for v in rng.integers(1, 9, 2))
    a = _image(shape, np.float64 if seed % 2 else np.float32, seed, nan=rng.random() * 0.6)
    fast = filters.rank_filter(a, size, PERCENTILES, compiled=True)
    slow = filters.rank_filter(a, size, PERCENTILES, compiled=False)
    np.testing.assert_array_equal(fast, slow)


def test_rank_filter_nan_semantics():
    """Ranks are taken among the non-NaN values; an all-NaN window gives NaN."""
    a = np.array([[1.0, np.nan, 3.0, 2.0, np.nan]], np.float32)
    med, top = filters.rank_filter(a, (1, 3), [MEDIAN, 100.0])
    # windows (reflect): [1 1 nan], [1 nan 3], [nan 3 2], [3 2 nan], [2 nan nan]
    np.testing.assert_array_equal(med, [[1, 3, 3, 3, 2]])
    np.testing.assert_array_equal(top, [[1, 3, 3, 3, 2]])
    out = filters.rank_filter(np.full((3, 3), np.nan), (3, 3), [50.0])
    assert np.isnan(out).all()


def test_rank_filter_bad_input():
    with pytest.raises(TypeError, match="2-D float32 or float64"):
        filters.rank_filter(np.zeros((3, 3, 3)), (3, 3), [50])
    with pytest.raises(TypeError, match="2-D float32 or float64"):
        filters.rank_filter(np.zeros((3, 3), int), (3, 3), [50])
    with pytest.raises(ValueError, match="in \\[0, 100\\]"):
        filters.rank_filter(np.zeros((3, 3)), (3, 3), [101])
    with pytest.raises(ValueError, match="positive"):
        filters.rank_filter(np.zeros((3, 3)), (0, 3), [50])


def _spread_reference(a, size, percentiles, lsigma, hsigma, spread):
    """ccdmask's windowed test from the exact NumPy rank filter: the oracle."""
    low, high = filters.rank_filter(a, size, percentiles, compiled=False)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, never an outlier
        return (a < -lsigma * ((high - low) / spread)) | (a > hsigma * ((high - low) / spread))


@needs_compiled
@pytest.mark.parametrize("seed", range(60))
def test_spread_outliers_equal_the_exact_test(seed, monkeypatch):
    """Bounded percentiles decide exactly what the exact ones do: ties, ±0, NaN, ±inf, odd thresholds."""
    monkeypatch.setattr(filters, "UNDECIDED_LIMIT", 1.0)  # never the whole-image fallback
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 60, 2))
    size = tuple(int(v) for v in rng.integers(1, 16, 2))
    dtype = np.float64 if seed % 2 else np.float32
    a = _image(shape, dtype, seed, nan=rng.random() * 0.3 if seed % 3 == 0 else 0.0)
    a -= np.median(a[np.isfinite(a)]) if np.isfinite(a).any() else 0
    if seed % 4 == 1:
        a = np.round(a * 300) / 300  # few distinct values: many ties between windows
        a[a == 0] = -0.0
    if seed % 5 == 2:
        a[rng.random(shape) < 0.02] = rng.choice([-5, 5]) * 0.01  # outliers near the thresholds
    if seed % 7 == 3:  # differences that overflow to ±inf, and subnormals
        k = rng.random(shape)
        a[k < 0.1] = np.finfo(dtype).max * 0.9
        a[(k > 0.1) & (k < 0.2)] = -np.finfo(dtype).max * 0.9
        a[(k > 0.2) & (k < 0.3)] *= np.finfo(dtype).smallest_subnormal * 1e4
    percentiles = sorted(float(p) for p in rng.choice([0, 10, 30.9, 50, 69.1, 90, 100], 2))
    lsigma, hsigma = (float(v) for v in rng.choice([-2, 0, 1.5, 3, 9, 9.1], 2))
    spread = float(rng.choice([1.0, 2.0, 0.7]))
    want = _spread_reference(a, size, percentiles, lsigma, hsigma, spread)
    got = filters.spread_outliers(a, size, percentiles, lsigma, hsigma, spread, threads=2)
    np.testing.assert_array_equal(got, want)


def test_spread_outliers_decide_most_pixels_from_bins(monkeypatch):
    """On a flat, the bins decide all but a few pixels; those get their own exact windows."""
    if filters._rankfilter is None:
        pytest.skip("cpu_fallback._rankfilter not built")
    a = _image((400, 300), np.float32, 11)
    a -= np.median(a)
    a[rng_pixels := np.random.default_rng(1).random(a.shape) < 0.01] *= 200  # outliers
    a[~rng_pixels & (np.random.default_rng(2).random(a.shape) < 0.02)] = 0.0449  # near 4.5 σ
    windows = []
    select = filters._select
    monkeypatch.setattr(filters, "_select", lambda w, p: windows.append(len(w)) or select(w, p))

    def whole_image(*args, **kwargs):
        raise AssertionError("the exact pass over the whole image ran")

    monkeypatch.setattr(filters, "_exact_outliers", whole_image)
    got = filters.spread_outliers(a, (15, 15), [30.9, 69.1], 9.0, 9.0, 2.0)
    assert 0 < sum(windows) < 0.01 * a.size
    np.testing.assert_array_equal(got, _spread_reference(a, (15, 15), [30.9, 69.1], 9, 9, 2))


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=needs_compiled), False])
def test_spread_outliers_without_a_usable_scale(compiled):
    """Constant images, all-NaN images and undecidable ones take the exact path, same answer."""
    rng = np.random.default_rng(5)
    two_levels = np.where(rng.random((60, 70)) < 0.5, 0.0, 1.0)  # bins cannot split the windows
    two_levels[rng.random(two_levels.shape) < 0.2] = rng.normal(0.5, 0.2, 1)
    for a in (np.zeros((20, 30)), np.full((9, 9), np.nan), two_levels,
              rng.normal(0, 1, (40, 50)).astype(np.float32)):
        want = _spread_reference(a, (5, 7), [30.9, 69.1], 3, 3, 2)
        got = filters.spread_outliers(a, (5, 7), [30.9, 69.1], 3, 3, 2, compiled=compiled)
        np.testing.assert_array_equal(got, want)


def test_spread_outliers_bad_input():
    with pytest.raises(ValueError, match="a low and a high percentile"):
        filters.spread_outliers(np.zeros((3, 3)), (3, 3), [50], 3, 3, 2)
    with pytest.raises(ValueError, match="a low and a high percentile"):
        filters.spread_outliers(np.zeros((3, 3)), (3, 3), [MEDIAN, 60], 3, 3, 2)
    with pytest.raises(ValueError, match="spread must be positive"):
        filters.spread_outliers(np.zeros((3, 3)), (3, 3), [30, 60], 3, 3, 0)
    with pytest.raises(TypeError, match="2-D float32 or float64"):
        filters.spread_outliers(np.zeros((3, 3), int), (3, 3), [30, 60], 3, 3, 2)


def _gap_fill_loop(mask, ngood):
    """ccdproc 2.5.1's findbadcolumns loop, pixel by pixel: the oracle."""
    mask = mask.copy()
    nlines, ncols = mask.shape
    for col in range(ncols):
        for line in range(nlines - ngood - 1):
            if not mask[line, col]:
                continue
            for step in range(2, ngood + 2):
                end = line + step
                if mask[end, col] and not mask[line:end + 1, col].all():
                    mask[line:end, col] = True
    return mask


@pytest.mark.parametrize("seed", range(300))
def test_fill_column_gaps_equals_ccdproc_loop(seed):
    rng = np.random.default_rng(seed)
    nl, nc, ngood = int(rng.integers(1, 25)), int(rng.integers(1, 6)), int(rng.integers(0, 8))
    mask = rng.random((nl, nc)) < rng.random() * 0.5
    np.testing.assert_array_equal(filters.fill_column_gaps(mask, ngood),
                                  _gap_fill_loop(mask, ngood))


def test_fill_column_gaps_documented_cases():
    """Gap of ngood filled, ngood + 1 not; a late gap only from a start in reach (spec §2.3)."""
    col = np.zeros((16, 1), bool)
    col[[0, 6]] = True  # gap of 5 lines
    assert filters.fill_column_gaps(col, 5)[:7, 0].all()
    col = np.zeros((16, 1), bool)
    col[[0, 7]] = True  # gap of 6
    assert filters.fill_column_gaps(col, 5).sum() == 2
    col = np.zeros((16, 1), bool)
    col[[10, 12]] = True  # start below line 16 - 5 - 2 = 9: not filled
    assert not filters.fill_column_gaps(col, 5)[11, 0]
    col[9] = True  # line 9 reaches down to the last flagged line
    assert filters.fill_column_gaps(col, 5)[9:13, 0].all()


def test_block_percentiles_equal_numpy():
    rng = np.random.default_rng(5)
    a = rng.normal(0, 1, (47, 38)).astype(np.float32)
    a[rng.random(a.shape) < 0.05] = np.nan
    a[:15, :15] = np.nan  # an empty block
    got = filters.block_percentiles(a, (15, 15), [30.9, 69.1])
    assert got.shape == (2, 4, 3)
    for i in range(4):
        for j in range(3):
            block = a[15 * i:15 * (i + 1), 15 * j:15 * (j + 1)]
            block = block[~np.isnan(block)]
            for k, p in enumerate([30.9, 69.1]):
                if block.size:
                    assert got[k, i, j] == np.percentile(block, p)
                else:
                    assert np.isnan(got[k, i, j])


@pytest.mark.gpu
@pytest.mark.parametrize("size", [(7, 7), (15, 15), (4, 6)])
def test_gpu_rank_filter_equals_cpu(size):
    from gpucal.backend import load_backend

    cpu, gpu = load_backend("numpy"), load_backend("cupy")
    a = _image((300, 257), np.float32, 3, nan=0.02)
    want = cpu.rank_filter(a, size, PERCENTILES)
    got = gpu.to_numpy(gpu.rank_filter(to_device(a, "gpu"), size, PERCENTILES))
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
def test_gpu_spread_outliers_equal_cpu():
    from gpucal.backend import load_backend

    cpu, gpu = load_backend("numpy"), load_backend("cupy")
    a = _image((300, 257), np.float32, 4, nan=0.02)
    a -= np.float32(1.0)
    want = cpu.spread_outliers(a, (15, 15), [30.9, 69.1], 9.0, 9.0, 2.0)
    got = gpu.to_numpy(gpu.spread_outliers(to_device(a, "gpu"), (15, 15), [30.9, 69.1], 9.0,
                                           9.0, 2.0))
    np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
@pytest.mark.parametrize("ngood", [0, 2, 5, 9])
def test_gpu_fill_column_gaps_equals_cpu(ngood):
    from gpucal.backend import load_backend

    cpu, gpu = load_backend("numpy"), load_backend("cupy")
    mask = np.random.default_rng(ngood).random((500, 301)) < 0.1
    got = gpu.to_numpy(gpu.fill_column_gaps(to_device(mask, "gpu"), ngood))
    np.testing.assert_array_equal(got, cpu.fill_column_gaps(mask, ngood))


@pytest.mark.skipif(not os.environ.get("CI"), reason="only CI promises a C++ compiler")
def test_compiled_rank_filter_is_built_in_ci():
    """CI must test the compiled kernel, not silently fall back to NumPy."""
    assert filters._rankfilter is not None
