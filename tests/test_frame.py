"""Frame: construction, validation, devices, flags and CCDData conversion."""

import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, InverseVariance, StdDevUncertainty, VarianceUncertainty
from astropy.wcs import WCS

from gpucal import Frame, FrameError, MaskFlag, to_device


def host(x):
    return to_device(x, "cpu")


def test_defaults_float32_and_empty_header():
    f = Frame(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert f.dtype == np.float32 and f.shape == (2, 3)
    assert f.mask is None and f.uncertainty is None and f.unit is None
    assert isinstance(f.header, fits.Header) and len(f.header) == 0
    assert f.bool_mask is None


def test_dtype_none_keeps_float64_and_widens_integers():
    assert Frame(np.zeros((2, 2)), dtype=None).dtype == np.float64
    assert Frame(np.zeros((2, 2), np.float32), dtype=None).dtype == np.float32
    assert Frame(np.zeros((2, 2), np.int16), dtype=None).dtype == np.float64
    with pytest.raises(ValueError, match="floating-point"):
        Frame(np.zeros((2, 2)), dtype=np.int32)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4), ()])
def test_data_must_be_2d(shape):
    with pytest.raises(FrameError, match=r"a Frame is 2-D, got \d-D"):
        Frame(np.zeros(shape))


def test_data_must_be_real_numbers():
    with pytest.raises(TypeError, match=r"data: got complex numbers \(complex128\)"):
        Frame(np.zeros((2, 2), complex))
    with pytest.raises(FrameError, match="real numbers"):
        Frame(np.array([["a", "b"]]))


def test_mask_and_uncertainty_shapes_are_checked():
    with pytest.raises(FrameError, match=r"mask: shape \(3, 2\) does not match"):
        Frame(np.zeros((2, 3)), mask=np.zeros((3, 2), bool))
    with pytest.raises(FrameError, match=r"uncertainty: shape \(2, 2\) does not match"):
        Frame(np.zeros((2, 3)), uncertainty=np.zeros((2, 2)))
    f = Frame(np.zeros((2, 3)), mask=np.zeros((2, 3), bool))
    with pytest.raises(FrameError, match="does not match the mask"):
        f.data = np.zeros((3, 3))
    f.mask = None
    f.data = np.zeros((3, 3), np.int64)  # integer data take the Frame's dtype
    assert f.shape == (3, 3) and f.dtype == np.float32


def test_boolean_mask_becomes_user_flag_and_integers_are_flags():
    m = np.array([[True, False], [False, True]])
    f = Frame(np.zeros((2, 2)), mask=m)
    assert f.mask.dtype == np.uint16
    np.testing.assert_array_equal(f.mask, np.where(m, int(MaskFlag.USER), 0))
    np.testing.assert_array_equal(f.bool_mask, m)
    bits = np.array([[MaskFlag.BAD_PIXEL | MaskFlag.COSMIC_RAY, 0], [MaskFlag.NO_DATA, 0]])
    f.mask = bits
    np.testing.assert_array_equal(f.mask, bits)


def test_mask_rejects_unknown_bits_and_floats():
    with pytest.raises(FrameError, match="not gpucal MaskFlags"):
        Frame(np.zeros((2, 2)), mask=np.full((2, 2), 255))
    with pytest.raises(FrameError, match="not gpucal MaskFlags"):
        Frame(np.zeros((2, 2)), mask=np.full((2, 2), -1))
    with pytest.raises(FrameError, match="booleans or MaskFlag integers"):
        Frame(np.zeros((2, 2)), mask=np.zeros((2, 2)))


def test_mask_flags_are_distinct_bits_that_fit_a_signed_16_bit_fits_image():
    values = [int(f) for f in MaskFlag]
    assert all(v & (v - 1) == 0 for v in values) and len(set(values)) == len(values)
    assert int(MaskFlag.all()) < 2**15  # MASK is written as BITPIX=16
    assert MaskFlag.all() == sum(values)
    assert int(MaskFlag.all()) & (int(MaskFlag.all()) + 1) == 0  # contiguous low bits


def test_header_and_unit_are_normalised():
    hdr = fits.Header({"OBJECT": "M31"})
    f = Frame(np.zeros((2, 2)), header=hdr, unit="adu")
    assert f.unit == u.adu and f.header["OBJECT"] == "M31"
    hdr["OBJECT"] = "changed"
    assert f.header["OBJECT"] == "M31"  # copied, not shared
    assert Frame(np.zeros((2, 2)), header={"EXPTIME": 30.0}).header["EXPTIME"] == 30.0
    with pytest.raises(ValueError):
        Frame(np.zeros((2, 2)), unit="not a unit")


def test_copy_is_deep(backend):
    f = Frame(backend.asarray(np.ones((2, 2))), mask=backend.asarray(np.eye(2, dtype=bool)),
              uncertainty=backend.asarray(np.ones((2, 2))), header={"A": 1}, unit="adu")
    g = f.copy()
    g.data[0, 0] = 5
    g.mask[0, 0] = 0
    g.uncertainty[0, 0] = 7
    g.header["A"] = 2
    assert float(f.data[0, 0]) == 1 and int(f.mask[0, 0]) == int(MaskFlag.USER)
    assert float(f.uncertainty[0, 0]) == 1 and f.header["A"] == 1
    assert g.device == f.device and g.unit == f.unit


def test_to_device_moves_every_array(backend):
    rng = np.random.default_rng(1)
    f = Frame(rng.normal(size=(4, 5)), mask=rng.random((4, 5)) > 0.5,
              uncertainty=rng.random((4, 5)), header={"OBJECT": "x"}, unit="electron")
    g = f.to_device(backend.device)
    assert g.device == backend.device
    assert all(isinstance(a, backend.xp.ndarray) for a in (g.data, g.mask, g.uncertainty))
    assert g.to_device(backend.device) is g
    back = g.to_device("cpu")
    for a, b in ((f.data, back.data), (f.mask, back.mask), (f.uncertainty, back.uncertainty)):
        np.testing.assert_array_equal(a, b)
    assert back.header["OBJECT"] == "x" and back.unit == u.electron
    assert "on " + backend.device in repr(g)


@pytest.mark.gpu
def test_mixed_devices_in_one_frame_are_a_type_error():
    gpu = to_device(np.zeros((2, 2)), "gpu")
    with pytest.raises(TypeError, match="mixed CuPy"):
        Frame(gpu, mask=np.zeros((2, 2), bool))
    f = Frame(gpu)
    with pytest.raises(TypeError, match="mixed CuPy"):
        f.uncertainty = np.zeros((2, 2))


# -- CCDData --------------------------------------------------------------------------------

def _ccd(uncertainty_cls=StdDevUncertainty, rng=None):
    rng = rng or np.random.default_rng(7)
    data = rng.normal(100, 5, (6, 8)).astype(np.float32)
    std = rng.uniform(1, 2, (6, 8)).astype(np.float32)
    unc = {StdDevUncertainty: std, VarianceUncertainty: std**2, InverseVariance: 1 / std**2}
    ccd = CCDData(data, unit="adu", mask=rng.random((6, 8)) > 0.7,
                  uncertainty=uncertainty_cls(unc[uncertainty_cls]),
                  meta=fits.Header({"OBJECT": "NGC 1", "EXPTIME": 30.0}))
    return ccd, std


@pytest.mark.parametrize("kind", [StdDevUncertainty, VarianceUncertainty, InverseVariance])
def test_from_ccddata(kind):
    ccd, std = _ccd(kind)
    f = Frame.from_ccddata(ccd)
    np.testing.assert_array_equal(f.data, ccd.data)
    np.testing.assert_array_equal(f.bool_mask, ccd.mask)
    assert set(np.unique(f.mask)) <= {0, int(MaskFlag.USER)}
    np.testing.assert_allclose(f.uncertainty, std, rtol=1e-6)
    assert f.unit == u.adu and f.header["OBJECT"] == "NGC 1"


def test_from_ccddata_converts_uncertainty_unit_and_merges_wcs():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [10.0, 20.0]
    ccd = CCDData(np.ones((3, 3)), unit="electron/s", wcs=w,
                  uncertainty=StdDevUncertainty(np.full((3, 3), 120.0), unit="electron/min"))
    f = Frame.from_ccddata(ccd)
    np.testing.assert_allclose(f.uncertainty, 2.0)
    assert f.header["CTYPE1"] == "RA---TAN" and f.header["CRVAL2"] == 20.0


def test_to_ccddata_round_trip(backend):
    ccd, std = _ccd()
    f = Frame.from_ccddata(ccd).to_device(backend.device)
    back = f.to_ccddata()
    assert isinstance(back, CCDData) and isinstance(back.data, np.ndarray)
    np.testing.assert_array_equal(back.data, ccd.data)
    np.testing.assert_array_equal(back.mask, ccd.mask)
    assert back.mask.dtype == bool
    assert isinstance(back.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(back.uncertainty.array, std)
    assert back.unit == u.adu and back.meta["EXPTIME"] == 30.0


def test_to_ccddata_needs_a_unit():
    with pytest.raises(FrameError, match="no unit"):
        Frame(np.zeros((2, 2))).to_ccddata()


def test_from_ccddata_rejects_other_objects():
    with pytest.raises(TypeError, match="expected an astropy CCDData"):
        Frame.from_ccddata(np.zeros((2, 2)))


def test_flag_sets_bits_and_keeps_existing_ones(backend):
    data = backend.asarray(np.array([[1.0, 5.0], [9.0, 0.0]]))
    f = Frame(data)
    f.flag(data > 4, MaskFlag.HOT_PIXEL)
    f.flag(data > 8, MaskFlag.SATURATED | MaskFlag.BAD_PIXEL)
    f.flag(data > 100, MaskFlag.COSMIC_RAY)  # nowhere: nothing changes
    HOT, SAT, BAD = int(MaskFlag.HOT_PIXEL), int(MaskFlag.SATURATED), int(MaskFlag.BAD_PIXEL)
    np.testing.assert_array_equal(host(f.mask), [[0, HOT], [HOT | SAT | BAD, 0]])
    assert f.mask.dtype == np.uint16
    with pytest.raises(FrameError, match="where: shape"):
        f.flag(backend.asarray(np.ones((3, 3), bool)), MaskFlag.USER)
    with pytest.raises(ValueError):
        f.flag(data > 0, 1024)  # not a MaskFlag
