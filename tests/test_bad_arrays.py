"""Arrays no frame can be made of: no pixels (0×N). Refused where they enter."""

import numpy as np
import pytest

import gpucal
from gpucal import Frame, FrameError, to_device

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
