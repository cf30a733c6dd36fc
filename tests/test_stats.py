"""sigma_clip against astropy, mode against stsci.imagestats."""

import itertools
import warnings

import numpy as np
import pytest
from astropy.stats import mad_std, median_absolute_deviation
from astropy.stats import sigma_clip as astropy_sigma_clip

from gpucal import sigma_clip, to_device
from gpucal.stats import mode, stat_name


def _data(dtype, seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(0, 1, (9, 30, 20))
    d[rng.random(d.shape) < 0.05] *= 20  # outliers
    d[rng.random(d.shape) < 0.01] = np.nan
    d[0, 0, 0] = np.inf
    return d.astype(dtype)


def _astropy(d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Input data contains invalid values"
        return astropy_sigma_clip(d, **kw)


GRID = list(itertools.product(["mean", "median"], ["std", "mad_std"], [1, 3, None],
                              [(3, 3), (2, 4), (1.5, 1.5)], [0, None, (1, 2), 2]))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_masks_and_bounds_equal_astropy(dtype, seed):
    """Every cenfunc/stdfunc/maxiters/sigma/axis combination, on data with outliers and NaN/inf."""
    d = _data(dtype, seed)
    for cen, std, maxiters, (lo, hi), axis in GRID:
        kw = dict(sigma_lower=lo, sigma_upper=hi, maxiters=maxiters, cenfunc=cen, stdfunc=std,
                  axis=axis, return_bounds=True)
        ref, ref_lo, ref_hi = _astropy(d, **kw)
        got, got_lo, got_hi = sigma_clip(d, **kw)
        case = (cen, std, maxiters, lo, hi, axis)
        np.testing.assert_array_equal(got.mask, ref.mask, err_msg=str(case))
        np.testing.assert_allclose(got_lo, ref_lo, rtol=1e-12 if dtype == np.float64 else 1e-6,
                                   err_msg=str(case))
        np.testing.assert_allclose(got_hi, ref_hi, rtol=1e-12 if dtype == np.float64 else 1e-6,
                                   err_msg=str(case))


def test_defaults_masked_input_and_unmasked_output():
    d = _data(np.float64, 4)[0]
    m = np.zeros(d.shape, bool)
    m[3:5] = True
    md = np.ma.MaskedArray(d, m)
    np.testing.assert_array_equal(sigma_clip(md).mask, _astropy(md).mask)
    ref = _astropy(d, axis=1, masked=False)
    got = sigma_clip(d, axis=1, masked=False)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(sigma_clip(d, masked=False), _astropy(d, masked=False))
    ints = np.nan_to_num(d * 10, posinf=0).astype(np.int32)
    assert sigma_clip(ints, axis=0, masked=False).dtype == np.float32  # as astropy


def test_threshold_rules_follow_astropy():
    d = _data(np.float64, 5)[1]
    for kw in [dict(sigma_lower=0), dict(sigma_upper=None, sigma=2.5), dict(maxiters=0),
               dict(maxiters=None)]:
        np.testing.assert_array_equal(sigma_clip(d, **kw).mask, _astropy(d, **kw).mask)


def test_callables_are_accepted_for_known_statistics():
    d = _data(np.float64, 6)[2]
    ref = _astropy(d, cenfunc="median", stdfunc="mad_std").mask
    np.testing.assert_array_equal(sigma_clip(d, cenfunc=np.median, stdfunc=mad_std).mask, ref)
    assert stat_name(np.ma.mean, "cenfunc") == "mean"
    assert stat_name(median_absolute_deviation, "stdfunc") == "mad"
    with pytest.raises(TypeError, match="stdfunc=.*is not supported"):
        sigma_clip(d, stdfunc=lambda a, axis=None: np.ptp(a, axis=axis))
    with pytest.raises(ValueError, match="cenfunc must be one of 'mean', 'median'"):
        sigma_clip(d, cenfunc="mode")


def test_empty_input():
    result, lo, hi = sigma_clip(np.array([]), return_bounds=True)
    assert result.size == 0 and np.isnan(lo) and np.isnan(hi)


def test_on_every_backend(backend):
    d = _data(np.float32, 7)
    ref = _astropy(d, axis=0)
    got = sigma_clip(to_device(d, backend.device), axis=0, masked=False)
    np.testing.assert_array_equal(np.isnan(to_device(got, "cpu")), ref.mask)


@pytest.mark.gpu
def test_masked_output_needs_numpy():
    with pytest.raises(TypeError, match="masked=False"):
        sigma_clip(to_device(np.ones(5), "gpu"))


# -- mode ------------------------------------------------------------------------------------

def _sky(rng, trial):
    n = int(rng.integers(1000, 200_000))
    sky = rng.normal(rng.uniform(-100, 3000), rng.uniform(0.5, 50), n)
    if trial % 2:
        sky = np.concatenate([sky, rng.uniform(-1e3, 6e4, n // 20)])  # stars, hot pixels
    if trial % 3 == 0:
        sky = np.round(sky)  # integer ADU
    return sky


def test_mode_equals_stsci_imagestats():
    imagestats = pytest.importorskip("stsci.imagestats")
    rng = np.random.default_rng(0)
    for trial in range(30):
        sky = _sky(rng, trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = imagestats.ImageStats(sky, fields="mode", nclip=3).mode
        assert mode(sky) == pytest.approx(ref, rel=1e-12, abs=1e-12), trial


def test_mode_of_a_known_distribution():
    """A skewed sky (Poisson-like tail of stars) has its mode at the sky level, not the mean."""
    rng = np.random.default_rng(8)
    sky = np.concatenate([rng.normal(1200.0, 15.0, 400_000), rng.exponential(800, 40_000) + 1200])
    assert abs(mode(sky) - 1200.0) < 1.5
    assert sky.mean() > 1250


def test_mode_ignores_nan_and_masked_pixels_and_handles_constants(backend):
    img = np.full((50, 60), 7.0)
    assert mode(to_device(img, backend.device)) == 7.0
    img[0, :10] = np.nan
    img[1, :] = 1e6
    mask = np.zeros(img.shape, bool)
    mask[1] = True
    assert mode(to_device(img, backend.device), to_device(mask, backend.device)) == 7.0
    with pytest.raises(ValueError, match="no finite, unmasked pixel"):
        mode(np.full((3, 3), np.nan))
