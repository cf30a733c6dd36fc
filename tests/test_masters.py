"""Master bias, dark and flat: each frame calibrated, combined, headers with statistics."""

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import mad_std

import ccdproc
from gpucal import Frame, MissingKeywordError, to_device
from gpucal.masters import MASTER_COMBINE, make_master_bias, make_master_dark, make_master_flat
from gpucal.robust import KEYS, robust_stats

SHAPE = (24, 32)


def frames(seed, n, level, spread, exptime=None, pattern=None):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        data = rng.normal(level, spread, SHAPE) * (1 if pattern is None else pattern[i])
        data[rng.random(SHAPE) < 0.01] += 5000  # cosmic rays, for the clipping
        out.append(Frame(data, unit="adu", header={} if exptime is None
                         else {"EXPTIME": exptime}, dtype=np.float64))
    return out


def test_master_bias_is_ccdproc_combine():
    biases = frames(1, 9, 300, 5)
    ours = make_master_bias(biases)
    theirs = ccdproc.combine([b.to_ccddata() for b in biases], method="average",
                             sigma_clip=True, sigma_clip_low_thresh=5,
                             sigma_clip_high_thresh=5, sigma_clip_func=np.ma.median,
                             sigma_clip_dev_func=mad_std, dtype=np.float32)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-6)
    assert ours.header["IMAGETYP"] == "MASTER BIAS" and ours.header["NCOMBINE"] == 9
    stats = robust_stats(ours)
    for key in KEYS:
        assert ours.header[key] == pytest.approx(stats[key])


def test_master_bias_options_and_files(tmp_path):
    biases = frames(2, 5, 300, 5)
    paths = []
    for i, b in enumerate(biases):
        paths.append(tmp_path / f"bias{i}.fits")
        b.write(paths[-1])
    out = tmp_path / "master.fits"
    from_files = make_master_bias([str(p) for p in paths], method="median", sigma_clip=False,
                                  output_file=out, device="cpu")
    in_memory = make_master_bias(biases, method="median", sigma_clip=False)
    np.testing.assert_array_equal(from_files.data, in_memory.data)
    back = CCDData.read(out)
    np.testing.assert_array_equal(back.data, from_files.data)
    assert back.header["QUANT500"] == from_files.header["QUANT500"]
    assert MASTER_COMBINE["method"] == "average"  # the documented default
    with pytest.raises(ValueError, match="no frames"):
        make_master_bias([])


def test_master_dark_subtracts_bias_and_records_exposure():
    bias = np.full(SHAPE, 300.0)
    darks = frames(3, 5, 320, 4, exptime=600.0)
    ours = make_master_dark(darks, bias=bias)
    expected = make_master_bias([Frame(d.data - bias, unit="adu", dtype=np.float64)
                                 for d in darks])
    np.testing.assert_allclose(ours.data, expected.data, rtol=1e-6)
    assert ours.header["EXPTIME"] == 600.0 and ours.header["IMAGETYP"] == "MASTER DARK"


def test_master_dark_bad_exposures():
    darks = frames(4, 3, 320, 4, exptime=600.0) + frames(5, 2, 320, 4, exptime=60.0)
    with pytest.raises(ValueError, match="different exposure times"):
        make_master_dark(darks)
    with pytest.raises(MissingKeywordError, match="EXPTIME"):
        make_master_dark(frames(6, 3, 320, 4))


@pytest.mark.parametrize("normalize", ["median", "mean"])
def test_master_flat_is_the_ccdproc_recipe(normalize, backend):
    """Bias, scaled dark, each flat over its statistic, combined, normalised again."""
    rng = np.random.default_rng(7)
    bias = CCDData(rng.normal(300, 2, SHAPE), unit="adu")
    dark = CCDData(rng.normal(30, 1, SHAPE), unit="adu", meta={"EXPTIME": 300.0})
    vignetting = np.linspace(0.8, 1.1, SHAPE[1])[None, :]
    flats = []
    for level in (8000, 10000, 12000, 9000, 11000):
        data = 300 + 3 + level * vignetting * rng.normal(1, 0.01, SHAPE)
        flats.append(CCDData(data, unit="adu", meta={"EXPTIME": 30.0}))
    ours = to_device(make_master_flat(flats, bias=bias, dark=dark, normalize=normalize,
                                      device=backend.device), "cpu")
    stat = np.median if normalize == "median" else np.mean
    calibrated = []
    for f in flats:
        c = ccdproc.subtract_dark(ccdproc.subtract_bias(f, bias), dark,
                                  exposure_time="EXPTIME", exposure_unit=u.s, scale=True)
        calibrated.append(c)
    # each frame normalised before the clipping (ccdproc's scale= would clip the unscaled
    # values, which rejects whole frames of flats at different levels)
    normalised = [c.divide(stat(c.data) * c.unit) for c in calibrated]
    combined = ccdproc.combine(normalised, **{**MASTER_COMBINE, "sigma_clip_func": np.ma.median,
                                  "sigma_clip_dev_func": mad_std})
    expected = combined.data / stat(combined.data)
    np.testing.assert_allclose(ours.data, expected, rtol=1e-5)
    assert stat(ours.data) == pytest.approx(1.0, rel=1e-6)
    assert ours.header["NORMVAL"] == pytest.approx(stat(combined.data), rel=1e-6)
    assert ours.header["IMAGETYP"] == "MASTER FLAT"


def test_master_flat_mode_and_errors():
    rng = np.random.default_rng(8)
    flats = [rng.normal(10000, 100, SHAPE) for _ in range(3)]
    ours = make_master_flat(flats)  # the mode
    assert abs(ours.header["MODE"] - 1) < 0.01
    with pytest.raises(ValueError, match="normalize"):
        make_master_flat(flats, normalize="max")
    with pytest.raises(ValueError, match="positive"):
        make_master_flat([-f for f in flats], normalize="median")
