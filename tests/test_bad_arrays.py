"""Arrays no frame can be made of: no pixels (0×N), complex numbers. Refused where they enter."""

import numpy as np
import pytest
from astropy.nddata import CCDData

import gpucal
from gpucal import Frame, FrameError, to_device
from gpucal.stats import mode, sigma_clip

EMPTY = [(0, 0), (0, 5), (4, 0)]


def _steps():
    """Each step's entry with one image argument (and whatever else it needs)."""
    return {
        "subtract_bias": lambda image, other: gpucal.subtract_bias(other, image),
        "subtract_bias (ccd)": lambda image, other: gpucal.subtract_bias(image, other),
        "flat_correct": lambda image, other: gpucal.flat_correct(other, image),
        "ccdmask": lambda image, other: gpucal.ccdmask(image),
        "hot_pixel_mask": lambda image, other: gpucal.hot_pixel_mask(image, exposure_time=1.0),
        "static_mask": lambda image, other: gpucal.static_mask([image, other]),
        "cosmicray_lacosmic": lambda image, other: gpucal.cosmicray_lacosmic(Frame(image)),
        "make_master_bias": lambda image, other: gpucal.make_master_bias([image, image]),
    }


@pytest.mark.parametrize("shape", EMPTY)
def test_frame_without_pixels(shape, backend):
    data = to_device(np.zeros(shape), backend.device)
    with pytest.raises(FrameError, match=rf"data has no pixels \(shape \({shape[0]}, "
                                         rf"{shape[1]}\)\)"):
        Frame(data)
    frame = Frame(to_device(np.ones((2, 2)), backend.device))
    with pytest.raises(FrameError, match="data has no pixels"):
        frame.data = data
    assert frame.shape == (2, 2)


@pytest.mark.parametrize("step", sorted(_steps()))
def test_steps_refuse_images_without_pixels(step, backend):
    empty = to_device(np.zeros((0, 5)), backend.device)
    with pytest.raises(FrameError, match=r"has no pixels \(shape \(0, 5\)\)"):
        _steps()[step](empty, empty)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_frame_refuses_complex_data_and_uncertainty(dtype, backend):
    z = to_device(np.full((3, 3), 1 + 1j, dtype), backend.device)
    message = rf"got complex numbers \({np.dtype(dtype)}\); gpucal works on real numbers"
    with pytest.raises(TypeError, match="data: " + message):
        Frame(z)
    frame = Frame(to_device(np.ones((3, 3)), backend.device))
    with pytest.raises(TypeError, match="data: " + message):
        frame.data = z
    with pytest.raises(TypeError, match="uncertainty: " + message):
        frame.uncertainty = z
    with pytest.raises(TypeError, match="uncertainty: " + message):
        Frame(to_device(np.ones((3, 3)), backend.device), uncertainty=z)
    np.testing.assert_array_equal(to_device(frame.data, "cpu"), 1.0)
    assert frame.uncertainty is None


@pytest.mark.parametrize("step", sorted(_steps()))
def test_steps_refuse_complex_images(step, backend):
    z = to_device(np.full((16, 16), 100 + 1j), backend.device)
    real = to_device(np.full((16, 16), 100.0), backend.device)
    with pytest.raises(TypeError, match=r"got complex numbers \(complex128\)"):
        _steps()[step](z, real)


def test_statistics_and_detection_refuse_complex_data():
    z = np.full((16, 16), 100 + 1j)
    for call in (lambda: mode(z), lambda: sigma_clip(z), lambda: gpucal.robust_stats(z),
                 lambda: gpucal.detect_cosmics(z),
                 lambda: gpucal.detect_cosmics(z.real, inbkg=z),
                 lambda: gpucal.cosmicray_lacosmic(CCDData(z, unit="adu"))):
        with pytest.raises(TypeError, match=r"got complex numbers \(complex128\)"):
            call()
