"""Calibration steps against ccdproc 2.5.1: data, uncertainty and mask, on seeded frames."""

import warnings

import numpy as np
import pytest
from astropy import units as u
from astropy.modeling.models import Polynomial1D
from astropy.nddata import CCDData, StdDevUncertainty

import ccdproc
from gpucal import Frame, MaskFlag, MissingKeywordError
from gpucal.calibrate import (ccd_process, create_deviation, flat_correct, gain_correct,
                              subtract_bias, subtract_dark, subtract_overscan, trim_image)

SHAPE = (40, 56)
RTOL = 1e-12  # float64 throughout: only the order of operations differs from astropy


def ccd(seed, level=1000.0, spread=50.0, unit="adu", sigma=True, mask=True, shape=SHAPE,
        **meta):
    rng = np.random.default_rng(seed)
    data = rng.normal(level, spread, shape)
    return CCDData(data, unit=unit, meta=meta,
                   uncertainty=StdDevUncertainty(rng.uniform(1, 5, shape)) if sigma else None,
                   mask=rng.random(shape) < 0.02 if mask else None)


def assert_same(ours, theirs, rtol=RTOL):
    """Data, uncertainty, mask and unit equal to ccdproc's."""
    assert isinstance(ours, CCDData)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=rtol, atol=0)
    assert (ours.uncertainty is None) == (theirs.uncertainty is None)
    if theirs.uncertainty is not None:
        np.testing.assert_allclose(ours.uncertainty.array, theirs.uncertainty.array,
                                   rtol=rtol, atol=0)
    if theirs.mask is None or not np.any(theirs.mask):
        assert ours.mask is None or not np.any(ours.mask)
    else:
        np.testing.assert_array_equal(ours.mask, theirs.mask)
    assert ours.unit == theirs.unit


@pytest.mark.parametrize("sigmas", [(True, True), (True, False), (False, True), (False, False)])
def test_subtract_bias(sigmas):
    image, bias = ccd(1, sigma=sigmas[0]), ccd(2, level=300, sigma=sigmas[1])
    assert_same(subtract_bias(image, bias), ccdproc.subtract_bias(image, bias))


def test_subtract_bias_units():
    image, bias = ccd(1), ccd(2, unit="electron")
    with pytest.raises(u.UnitsError, match="uncalibrated image"):
        subtract_bias(image, bias)
    with pytest.raises(ValueError, match="shape"):
        subtract_bias(image, ccd(2, shape=(4, 4)))


@pytest.mark.parametrize("scale", [False, True])
def test_subtract_dark_explicit_exposures(scale):
    image, dark = ccd(3), ccd(4, level=40, spread=5)
    args = dict(dark_exposure=1 * u.min, data_exposure=30 * u.s, scale=scale)
    assert_same(subtract_dark(image, dark, **args), ccdproc.subtract_dark(image, dark, **args))


def test_subtract_dark_exposures_from_headers():
    image, dark = ccd(3, EXPTIME=120.0), ccd(4, level=40, EXPTIME=300.0)
    theirs = ccdproc.subtract_dark(image, dark, exposure_time="EXPTIME", exposure_unit=u.s,
                                   scale=True)
    assert_same(subtract_dark(image, dark, exposure_time="EXPTIME", exposure_unit=u.s,
                              scale=True), theirs)
    # gpucal reads EXPTIME by default, and needs no exposure time when it does not scale
    assert_same(subtract_dark(image, dark, scale=True), theirs)
    np.testing.assert_allclose(subtract_dark(image, dark).data, image.data - dark.data)


def test_subtract_dark_bad_exposure_arguments():
    image, dark = ccd(3, EXPTIME=1.0), ccd(4)
    with pytest.raises(TypeError, match="not both"):
        subtract_dark(image, dark, dark_exposure=1 * u.s, data_exposure=1 * u.s,
                      exposure_time="EXPTIME", scale=True)
    with pytest.raises(MissingKeywordError, match="EXPTIME"):
        subtract_dark(image, dark, scale=True)  # the dark has no exposure time
    with pytest.raises(ValueError, match="positive"):
        subtract_dark(image, dark, dark_exposure=0, data_exposure=10, scale=True)


def test_subtract_dark_keyword_with_unit():
    image, dark = ccd(3, EXPTIME=2.0), ccd(4, level=40, EXPTIME=5.0)
    minutes = ccdproc.Keyword("EXPTIME", unit=u.min)
    assert_same(subtract_dark(image, dark, exposure_time=minutes, scale=True),
                ccdproc.subtract_dark(image, dark, exposure_time=minutes, scale=True))


@pytest.mark.parametrize("args", [{}, {"min_value": 900.0}, {"norm_value": 1234.5},
                                  {"min_value": 950.0, "norm_value": 800.0}])
@pytest.mark.parametrize("flat_sigma", [True, False])
def test_flat_correct(args, flat_sigma):
    image, flat = ccd(5), ccd(6, sigma=flat_sigma)
    assert_same(flat_correct(image, flat, **args), ccdproc.flat_correct(image, flat, **args))


def test_flat_correct_errors_and_nan():
    image, flat = ccd(5), ccd(6, mask=False)
    with pytest.raises(ValueError, match="greater than zero"):
        flat_correct(image, flat, norm_value=0)
    with pytest.raises(ValueError, match="not positive"):
        flat_correct(image, ccd(6, level=-5, spread=1))
    # one NaN in the flat: ccdproc's mean (and result) is all NaN; gpucal's ignores it
    flat.data[3, 4] = np.nan
    ours = flat_correct(image, flat)
    assert np.isnan(ours.data).sum() == 1
    clean = flat.data[np.isfinite(flat.data)].mean()
    np.testing.assert_allclose(ours.data[0, 0], image.data[0, 0] * clean / flat.data[0, 0])


@pytest.mark.parametrize("gain", [1.9 * u.electron / u.adu, 2.5, -0.5 * u.electron / u.adu])
def test_gain_correct(gain):
    image = ccd(7)
    assert_same(gain_correct(image, gain), ccdproc.gain_correct(image, gain))


def test_gain_from_header():
    image = ccd(7, GAIN=1.9)
    ours = gain_correct(image, "GAIN", gain_unit=u.electron / u.adu)
    assert_same(ours, ccdproc.gain_correct(image, 1.9 * u.electron / u.adu))
    theirs = ccdproc.gain_correct(image, ccdproc.Keyword("GAIN", unit=u.electron / u.adu))
    assert_same(gain_correct(image, ccdproc.Keyword("GAIN", unit=u.electron / u.adu)), theirs)


@pytest.mark.parametrize("disregard_nan", [False, True])
@pytest.mark.parametrize("gain", [None, 2.2 * u.electron / u.adu])
def test_create_deviation(gain, disregard_nan):
    image = ccd(8, level=30, spread=30, sigma=False)  # some negative pixels
    readnoise = 6.5 * (u.adu if gain is None else u.electron)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = ccdproc.create_deviation(image, gain=gain, readnoise=readnoise,
                                          disregard_nan=disregard_nan)
    ours = create_deviation(image, gain=gain, readnoise=readnoise, disregard_nan=disregard_nan)
    np.testing.assert_array_equal(np.isnan(ours.uncertainty.array),
                                  np.isnan(theirs.uncertainty.array))
    assert disregard_nan or np.isnan(ours.uncertainty.array).any()
    assert_same(ours, theirs)


@pytest.mark.parametrize("dtype, readnoise", [(np.float32, 1e30), (np.float64, 1e200)])
def test_create_deviation_refuses_a_readnoise_whose_square_overflows(dtype, readnoise):
    """The uncertainty would be inf everywhere: refused, not written."""
    image = Frame(np.full((4, 4), 100.0, dtype), unit="electron", dtype=None)
    with pytest.raises(ValueError, match=rf"readnoise = {readnoise:g} is too large: its "
                                         rf"square overflows {np.dtype(dtype)}".replace("+", r"\+")):
        create_deviation(image, readnoise=readnoise)
    assert np.isfinite(create_deviation(image, readnoise=1e10).uncertainty).all()


def test_create_deviation_units():
    image = ccd(8, sigma=False)
    with pytest.raises(u.UnitsError, match="readnoise"):
        create_deviation(image, readnoise=5 * u.electron)  # ADU × no gain ≠ electrons
    with pytest.raises(ValueError, match="readnoise"):
        create_deviation(image, gain=2 * u.electron / u.adu)


def raw_frame(seed, shape=(60, 80)):
    """A raw frame: overscan columns 71-80 with a row gradient, data in 1-70."""
    rng = np.random.default_rng(seed)
    rows = np.arange(shape[0])[:, None]
    data = rng.normal(1500, 30, shape) + 0.5 * rows
    data[:, 70:] = rng.normal(300, 3, (shape[0], 10)) + 0.5 * rows
    return CCDData(data, unit="adu", mask=rng.random(shape) < 0.01,
                   meta={"EXPTIME": 60.0, "CRPIX1": 40.0, "CRPIX2": 30.0})


@pytest.mark.parametrize("median", [False, True])
@pytest.mark.parametrize("model", [None, Polynomial1D(2)])
def test_subtract_overscan_section(median, model):
    raw = raw_frame(9)
    args = dict(fits_section="[71:80,:]", median=median, model=model)
    assert_same(subtract_overscan(raw, **args), ccdproc.subtract_overscan(raw, **args))


@pytest.mark.parametrize("axis", [0, 1, None])
def test_subtract_overscan_region_and_axis(axis):
    raw = raw_frame(10)
    region = raw[:, 70:] if axis != 0 else raw[50:, :]
    ours = subtract_overscan(raw, overscan=region, overscan_axis=axis)
    assert_same(ours, ccdproc.subtract_overscan(raw, overscan=region, overscan_axis=axis))


def test_subtract_overscan_ignores_nan():
    raw = raw_frame(11)
    raw.data[5, 75] = np.nan
    ours = subtract_overscan(raw, fits_section="[71:80,:]", median=True)
    expected = raw.data[5, :70] - np.nanmedian(raw.data[5, 70:])
    np.testing.assert_allclose(ours.data[5, :70], expected, rtol=RTOL)


def test_subtract_overscan_arguments():
    raw = raw_frame(11)
    with pytest.raises(TypeError, match="not both"):
        subtract_overscan(raw)
    with pytest.raises(TypeError, match="not both"):
        subtract_overscan(raw, overscan=raw[:, 70:], fits_section="[71:80,:]")
    with pytest.raises(ValueError, match="span"):
        subtract_overscan(raw, overscan=raw[:10, 70:], overscan_axis=1)
    with pytest.raises(ValueError, match="outside|exceeds|beyond|shape"):
        subtract_overscan(raw, fits_section="[71:90,:]")


def test_trim_image():
    raw = raw_frame(12)
    raw.uncertainty = StdDevUncertainty(np.ones(raw.shape))
    ours, theirs = trim_image(raw, "[5:70,2:59]"), ccdproc.trim_image(raw, "[5:70,2:59]")
    assert_same(ours, theirs)
    assert ours.header["CRPIX1"] == 36.0 and ours.header["CRPIX2"] == 29.0
    with pytest.raises(TypeError):
        trim_image(raw, (slice(1, 2), slice(1, 2)))


def process_args(seed, gain_corrected=True):
    """A raw frame and full ccd_process arguments, calibrations in the right unit."""
    unit = "electron" if gain_corrected else "adu"
    bias = ccd(seed + 1, level=20, spread=2, unit=unit, shape=(58, 66))
    dark = ccd(seed + 2, level=10, spread=1, unit=unit, shape=(58, 66), EXPTIME=300.0)
    flat = ccd(seed + 3, level=20000, spread=300, unit=unit, shape=(58, 66))
    rng = np.random.default_rng(seed)
    return raw_frame(seed), dict(
        oscan="[71:80,:]", trim="[3:68,2:59]", error=True, master_bias=bias, dark_frame=dark,
        master_flat=flat, bad_pixel_mask=rng.random((58, 66)) < 0.01,
        gain=1.9 * u.electron / u.adu, readnoise=5.0 * u.electron,
        gain_corrected=gain_corrected, min_value=19500.0, exposure_key="EXPTIME",
        exposure_unit=u.s)


@pytest.mark.parametrize("gain_corrected", [True, False])
@pytest.mark.parametrize("oscan_median", [True, False])
@pytest.mark.parametrize("dark_scale", [False, True])
def test_ccd_process(gain_corrected, oscan_median, dark_scale):
    raw, args = process_args(20, gain_corrected)
    args.update(oscan_median=oscan_median, dark_scale=dark_scale)
    theirs = ccdproc.ccd_process(raw, **args)
    ours = ccd_process(raw, **args)
    assert_same(ours, theirs)
    assert ours.unit == u.electron
    assert "ccd_process" in str(ours.meta["HISTORY"])


def test_ccd_process_oscan_model_and_partial_chains():
    raw, args = process_args(30, gain_corrected=False)
    for keep in (("oscan", "trim"), ("oscan", "trim", "master_bias"),
                 ("trim", "error", "gain", "readnoise"), ("trim", "master_flat")):
        partial = {k: args[k] for k in keep}
        assert_same(ccd_process(raw, **partial), ccdproc.ccd_process(raw, **partial))
    modelled = dict(oscan="[71:80,:]", oscan_model=Polynomial1D(1), oscan_median=False)
    assert_same(ccd_process(raw, **modelled), ccdproc.ccd_process(raw, **modelled))


def test_ccd_process_does_not_change_input():
    raw, args = process_args(40)
    before = raw.data.copy(), raw.mask.copy(), dict(raw.meta)
    ccd_process(raw, **args)
    np.testing.assert_array_equal(raw.data, before[0])
    np.testing.assert_array_equal(raw.mask, before[1])
    assert dict(raw.meta) == before[2]


def test_ccd_process_batch_equals_frames():
    frames, args = [], None
    for seed in (50, 51, 52):
        raw, args = process_args(seed)
        raw.meta["EXPTIME"] = 30.0 * (seed - 49)  # a different dark scale per frame
        frames.append(raw)
    args.update(dark_scale=True)
    batch = ccd_process(frames, **args)
    assert len(batch) == 3
    for raw, ours in zip(frames, batch):
        assert_same(ours, ccdproc.ccd_process(raw, **args))


def test_ccd_process_3d_array_batch():
    rng = np.random.default_rng(60)
    stack = rng.normal(1000, 10, (4, 20, 30))
    bias = rng.normal(100, 1, (20, 25))
    out = ccd_process(stack, oscan="[26:30,:]", trim="[1:25,:]", master_bias=bias)
    for plane, frame in zip(stack, out):
        level = np.median(plane[:, 25:], axis=1, keepdims=True)
        np.testing.assert_allclose(frame.data, plane[:, :25] - level - bias, rtol=RTOL)


def test_ccd_process_frames_keep_flags(backend):
    """Frames on every backend: float32 arithmetic and MaskFlag bits through the chain."""
    raw, args = process_args(70)
    frame = Frame.from_ccddata(raw).to_device(backend.device)
    frame.flag(frame.data > 1e9, MaskFlag.SATURATED)
    cal = {k: Frame.from_ccddata(args[k]).to_device(backend.device)
           for k in ("master_bias", "dark_frame", "master_flat")}
    cal["master_flat"].mask = None
    bpm = backend.asarray(args["bad_pixel_mask"])
    out = ccd_process(frame, **{**args, **cal, "bad_pixel_mask": bpm})
    assert isinstance(out, Frame) and out.device == backend.device and out.dtype == np.float32
    flat = args["master_flat"].copy()
    flat.mask = None
    theirs = ccdproc.ccd_process(raw, **{**args, "master_flat": flat})
    np.testing.assert_allclose(backend.to_numpy(out.data), theirs.data, rtol=2e-5)
    np.testing.assert_allclose(backend.to_numpy(out.uncertainty),
                               theirs.uncertainty.array, rtol=2e-5)
    mask = backend.to_numpy(out.mask)
    assert ((mask & MaskFlag.BAD_PIXEL) != 0).sum() == args["bad_pixel_mask"].sum()
    assert ((mask & MaskFlag.USER) != 0).any()  # the bias and dark masks, OR-ed


def test_mixed_devices_and_bad_types():
    with pytest.raises(TypeError, match="Frame, CCDData or 2-D array"):
        subtract_bias("raw.fits", np.zeros((2, 2)))
    with pytest.raises(TypeError, match="oscan|section"):
        ccd_process(np.zeros((3, 4, 5)), oscan=np.zeros((4, 2)))


def test_real_frame_a8280271():
    """ccdproc's shipped SAAO frame: overscan, trim, gain and deviation give ccdproc's result."""
    from astropy.utils.data import get_pkg_data_filename

    path = get_pkg_data_filename("data/a8280271.fits", package="ccdproc.tests")
    raw = CCDData.read(path, unit="adu")
    header = raw.header
    args = dict(oscan=header["BIASSEC"], trim=header["TRIMSEC"], error=True,
                gain=header["GAIN"] * u.electron / u.adu,
                readnoise=header["RDNOISE"] * u.electron)
    ours, theirs = ccd_process(raw, **args), ccdproc.ccd_process(raw, **args)
    assert ours.shape == (520, 512)
    assert_same(ours, theirs)
    # the same from the file through gpucal's reader, as float32 Frames
    frame = Frame.read(path, device="cpu", unit="adu")
    np.testing.assert_allclose(ccd_process(frame, **args).data, theirs.data, rtol=1e-5)
