"""Hot pixels, drizzlepac's static mask, mask algebra and mask files."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from gpucal import (Frame, FrameError, MaskFlag, combine_masks, hot_pixel_mask, read_mask,
                    static_mask, write_mask)

from _helpers import sha256


def _dark(seed=0, shape=(60, 50)):
    rng = np.random.default_rng(seed)
    current = rng.gamma(2.0, 0.05, shape)  # e/s, a few hot ones added below
    hot = rng.random(shape) < 0.01
    current[hot] = rng.uniform(5, 50, hot.sum())
    return current, hot


def test_hot_pixels_from_a_master_dark(backend):
    current, hot = _dark()
    dark = backend.asarray((current * 300.0).astype(np.float32))  # electrons in 300 s
    got = hot_pixel_mask(dark, exposure_time=300)
    np.testing.assert_array_equal(backend.to_numpy(got), hot)
    frame = Frame(dark, header=fits.Header({"EXPTIME": 300.0}), unit="electron")
    np.testing.assert_array_equal(backend.to_numpy(hot_pixel_mask(frame)), hot)
    strict = backend.to_numpy(hot_pixel_mask(dark, exposure_time=300 * u.s, threshold=0.2))
    assert strict[hot].all() and strict.sum() > hot.sum()


def test_hot_pixels_units():
    current, hot = _dark()
    adu = CCDData(current * 300 / 1.5, unit="adu", meta={"EXPOSURE": 300})
    with pytest.raises(ValueError, match="gain-correct the dark first"):
        hot_pixel_mask(adu)
    # the same threshold given in ADU/s (gain 1.5 e/ADU)
    np.testing.assert_array_equal(hot_pixel_mask(adu, threshold=4 / 1.5, unit="adu/s"), hot)
    per_minute = hot_pixel_mask(current * 300, exposure_time=5 * u.min,
                                threshold=240 * u.electron / u.min)
    np.testing.assert_array_equal(per_minute, hot)


def test_hot_pixels_bad_input():
    with pytest.raises(ValueError, match="no exposure time"):
        hot_pixel_mask(np.ones((3, 3)))
    with pytest.raises(ValueError, match="must be positive"):
        hot_pixel_mask(np.ones((3, 3)), exposure_time=0)
    nan = np.ones((3, 3))
    nan[1, 1] = np.nan
    assert hot_pixel_mask(nan, exposure_time=10)[1, 1]


def _drizzlepac_static_mask(images, static_sig=4.0):
    """drizzlepac.staticMask's per-image test, with the statistics from stsci.imagestats."""
    ImageStats = pytest.importorskip("stsci.imagestats").ImageStats  # not on the GPU hosts
    good = np.ones(images[0].shape, bool)
    for image in images:
        stats = ImageStats(image, nclip=3, fields="mode")
        if len(stats.histogram) >= 2:
            good &= ~(image < stats.mode - static_sig * stats.stddev)
    return ~good


@pytest.mark.parametrize("seed", range(6))
def test_static_mask_equals_drizzlepac(backend, seed):
    rng = np.random.default_rng(seed)
    images = []
    for k in range(3):
        sky = rng.normal(500 + 50 * k, 12, (80, 70))
        low = rng.random(sky.shape) < 0.002
        sky[low] -= rng.uniform(50, 300, low.sum())
        stars = rng.random(sky.shape) < 0.01
        sky[stars] += rng.uniform(100, 5000, stars.sum())
        images.append(sky.astype(np.float32))
    want = _drizzlepac_static_mask(images, static_sig=3.5 + seed % 2)
    got = static_mask([backend.asarray(i) for i in images], static_sig=3.5 + seed % 2)
    np.testing.assert_array_equal(backend.to_numpy(got), want)
    assert want.sum() > 0


def test_static_mask_bad_input():
    with pytest.raises(ValueError, match="no images"):
        static_mask([])
    with pytest.raises(ValueError, match="shape"):
        static_mask([np.ones((4, 4)), np.ones((4, 5))])
    flat = [np.full((8, 8), 7.0, np.float32)]  # degenerate histogram: skipped
    assert not static_mask(flat).any()


def test_combine_masks_and_frame_flags(backend):
    bad = backend.asarray(np.array([[True, False, False]]))
    hot = backend.asarray(np.array([[0, 2, 0]], np.uint16))
    flags = combine_masks([bad, hot], flag=MaskFlag.BAD_PIXEL)
    assert backend.to_numpy(flags).tolist() == [[1, 2, 0]]
    frame = Frame(backend.asarray(np.zeros((1, 3))))
    frame.flag(flags)
    frame.flag(backend.asarray(np.array([[False, False, True]])), MaskFlag.COSMIC_RAY)
    assert backend.to_numpy(frame.mask).tolist() == [[1, 2, 16]]
    frame.flag(backend.asarray(np.array([[0, 1, 0]], np.uint8)), MaskFlag.SATURATED)  # 0/1 image
    assert backend.to_numpy(frame.mask).tolist() == [[1, 10, 16]]
    with pytest.raises(TypeError, match="give booleans with a flag"):
        frame.flag(bad)
    with pytest.raises(FrameError, match="not gpucal MaskFlags"):
        frame.flag(backend.asarray(np.array([[0, 4096, 0]], np.uint16)))
    with pytest.raises(ValueError, match="masks\\[1\\]"):
        combine_masks([bad, backend.asarray(np.array([[0.5, 0, 0]]))])
    with pytest.raises(ValueError, match="shape"):
        combine_masks([bad, backend.asarray(np.zeros((2, 3), bool))])


def test_mask_file_round_trip_and_ccddata(tmp_path):
    flags = np.zeros((5, 6), np.uint16)
    flags[1, 2] = MaskFlag.BAD_PIXEL
    flags[3, 4] = MaskFlag.HOT_PIXEL | MaskFlag.STATIC
    path = tmp_path / "mask.fits"
    write_mask(path, flags, header=fits.Header({"IMAGETYP": "mask"}))
    np.testing.assert_array_equal(read_mask(path), flags)
    ccd = CCDData.read(path)
    np.testing.assert_array_equal(ccd.mask, flags != 0)
    np.testing.assert_array_equal(ccd.data, (flags != 0).astype(np.uint8))
    assert ccd.header["IMAGETYP"] == "mask"
    with pytest.raises(FileExistsError):
        write_mask(path, flags)
    write_mask(path, flags == 0, flag=MaskFlag.USER, overwrite=True)
    assert (read_mask(path) == np.where(flags == 0, 64, 0)).all()


def test_read_mask_of_other_tools(tmp_path):
    """A tutorial-style mask (uint8 image, no MASK extension) reads as USER flags; the file stays."""
    path = tmp_path / "mask_from_ccdmask.fits"
    CCDData(np.array([[0, 1], [1, 0]], np.uint8), unit=u.dimensionless_unscaled).write(path)
    before = sha256(path)
    assert read_mask(path).tolist() == [[0, 64], [64, 0]]
    assert sha256(path) == before
    nan = tmp_path / "nan.fits"
    fits.PrimaryHDU(np.array([[np.nan, 1.0]])).writeto(nan)
    with pytest.raises(FrameError, match="integers"):
        read_mask(nan)
    with pytest.raises(FileNotFoundError):
        read_mask(tmp_path / "missing.fits")
