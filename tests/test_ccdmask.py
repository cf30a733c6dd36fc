"""ccdmask against ccdproc 2.5.1, and where gpucal deliberately differs."""

import functools
import warnings

import ccdproc
import numpy as np
import pytest
import scipy.ndimage as ndi
from astropy.nddata import CCDData

from gpucal import Frame, ccdmask, to_device
from gpucal.simulate import defective_flat


def _ccdproc(image, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ccdproc.ccdmask(CCDData(image, unit="adu"), **kw)


@functools.cache
def _images():
    flat, _ = defective_flat((203, 190), seed=3)
    other, _ = defective_flat((203, 190), seed=4, level=14000.0)
    grad = np.linspace(0.9, 1.1, 190)[None, :] * np.linspace(1.05, 0.95, 203)[:, None]
    ratio2 = (other * grad / flat).astype(np.float32)
    return {"flat": flat, "flat-float64": flat.astype(np.float64),
            "ratio": (other / flat).astype(np.float32), "ratio-gradient": ratio2}


MODES = [dict(), dict(findbadcolumns=True), dict(findbadcolumns=True, ngood=1),
         dict(findbadcolumns=True, ngood=3), dict(findbadcolumns=True, ngood=9),
         dict(byblocks=True), dict(ncmed=5, nlmed=3, ncsig=11, nlsig=9, lsigma=6, hsigma=7),
         dict(ncmed=4, nlmed=6, ncsig=10, nlsig=16, findbadcolumns=True)]


@pytest.mark.parametrize("kind", ["flat", "flat-float64", "ratio", "ratio-gradient"])
@pytest.mark.parametrize("mode", MODES, ids=lambda m: ",".join(f"{k}={v}" for k, v in m.items())
                         or "defaults")
def test_bit_identical_to_ccdproc(backend, kind, mode):
    image = _images()[kind]
    want = _ccdproc(image, **mode)
    got = ccdmask(backend.asarray(image), **mode)
    assert got.dtype == bool and got.shape == image.shape
    np.testing.assert_array_equal(backend.to_numpy(got), want)
    assert 0 < want.sum() < want.size // 5


@pytest.mark.parametrize("mode", [dict(), dict(findbadcolumns=True)])
def test_nan_pixels(mode):
    """NaN pixels are bad and take no part in their neighbours' statistics.

    ccdproc's scipy filters give undefined values around a NaN, so its
    neighbours of a NaN are flagged or not by chance; everywhere else the masks
    are identical.
    """
    flat, _ = defective_flat((203, 190), seed=3, nan_pixels=6)
    got, want = ccdmask(flat, **mode), _ccdproc(flat, **mode)
    assert got[np.isnan(flat)].all()
    # reach of a NaN: the median window, then the sigma window (then the gap fill)
    reach = np.ones((7 + 15 + (13 if mode else 0), 7 + 15), bool)
    near = ndi.binary_dilation(np.isnan(flat), reach)
    np.testing.assert_array_equal(got[~near], want[~near])
    clean = flat.copy()
    clean[np.isnan(flat)] = np.nanmedian(flat)
    assert (got != _ccdproc(clean, **mode))[~np.isnan(flat)].sum() < 20


def test_byblocks_keeps_nan_flagged_and_tests_its_block():
    """ccdproc: a NaN makes its whole block unflagged; gpucal: the block keeps its statistics."""
    flat = _images()["ratio"].copy()
    flat[40, 40] = np.nan          # block (2, 2) of 15x15
    flat[35, 33] = 0.2 * flat[35, 33]  # a dead pixel in the same block
    want, got = _ccdproc(flat, byblocks=True), ccdmask(flat, byblocks=True)
    assert not want[30:45, 30:45].any()
    assert got[40, 40] and got[35, 33]
    other = np.ones(flat.shape, bool)
    other[30:45, 30:45] = False
    np.testing.assert_array_equal(got[other], want[other])


def test_byblocks_column_test_finds_a_faint_column():
    """The column sum is compared with σ·√n: a column 2σ low is found, no pixel of it is.

    ccdproc compares with sqrt(block width - sum) and clips low sums to 0, so
    it never flags a low column.
    """
    rng = np.random.default_rng(7)
    flat = rng.normal(1.0, 0.01, (150, 150)).astype(np.float32)
    flat[:, 70] -= 0.02
    without = ccdmask(flat, byblocks=True)
    got = ccdmask(flat, byblocks=True, findbadcolumns=True)
    assert not without[:, 70].any()
    assert got[:, 70].mean() > 0.9
    assert got[:, :69].mean() < 0.01
    assert _ccdproc(flat, byblocks=True, findbadcolumns=True)[:, 70].mean() < 0.1


def test_iraf_sigma_is_twice_ccdprocs():
    image = _images()["ratio"]
    np.testing.assert_array_equal(ccdmask(image, lsigma=6, hsigma=6, sigma_estimator="iraf"),
                                  _ccdproc(image, lsigma=12, hsigma=12))


def test_inputs_frame_ccddata_and_lists():
    image = _images()["flat"]
    want = ccdmask(image)
    np.testing.assert_array_equal(ccdmask(Frame(image)), want)
    np.testing.assert_array_equal(ccdmask(CCDData(image, unit="adu")), want)
    np.testing.assert_array_equal(ccdmask(image.astype(np.int32)),
                                  ccdmask(image.astype(np.int32).astype(np.float64)))


@pytest.mark.parametrize("bad,kw,error,match", [
    (np.zeros((3, 4, 5)), {}, ValueError, "two-dimensional"),
    (np.zeros(5), {}, ValueError, "two-dimensional"),
    ("flat.fits", {}, TypeError, "expected a 2-D array"),
    (np.array([["a", "b"]]), {}, TypeError, "expected numbers"),
    (np.ones((9, 9)), {"ncmed": 0}, ValueError, "ncmed must be a positive integer"),
    (np.ones((9, 9)), {"nlsig": 2.5}, ValueError, "nlsig must be a positive integer"),
    (np.ones((9, 9)), {"ngood": -1}, ValueError, "ngood must be a non-negative"),
    (np.ones((9, 9)), {"sigma_estimator": "mad"}, ValueError, "sigma_estimator"),
])
def test_bad_input(bad, kw, error, match):
    with pytest.raises(error, match=match):
        ccdmask(bad, **kw)


def test_finds_injected_defects():
    """Recall of injected defects and false positives, as in bench/bench_ccdmask.py."""
    flat, defects = defective_flat((512, 512), seed=11)
    mask = ccdmask(flat, findbadcolumns=True)
    recall = (mask & defects).sum() / defects.sum()
    false_positives = int((mask & ~defects).sum())
    assert recall > 0.97
    assert false_positives < 0.001 * flat.size


@pytest.mark.gpu
def test_gpu_result_stays_on_gpu():
    import cupy

    image = to_device(_images()["flat"], "gpu")
    assert isinstance(ccdmask(image), cupy.ndarray)
