"""Taking one image from whatever a user passes: an array, a Frame or a CCDData."""

import sys

import numpy as np

from ._dtype import refuse_complex
from .backend import get_backend
from .errors import require_pixels
from .frame import Frame


def is_ccddata(item):
    """True for an astropy CCDData (without importing astropy.nddata)."""
    nddata = sys.modules.get("astropy.nddata")
    return nddata is not None and isinstance(item, nddata.CCDData)


def float_data(data, name):
    """`data` as float32 or float64 (kept) or float64 (other numbers); TypeError otherwise."""
    refuse_complex(data.dtype, name)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got {data.dtype}")
    return data if data.dtype in (np.float32, np.float64) else data.astype(np.float64)


def image_data(image, name, *, with_mask=False):
    """(data, backend) of a 2-D image given as a NumPy/CuPy array, Frame or CCDData.

    Float32 and float64 data keep their dtype (ccdproc computes in the input's
    dtype); other numbers become float64. Uncertainties are not looked at; the
    mask only `with_mask`: then (data, mask, backend), the mask boolean or None
    (a Frame's, a CCDData's or a NumPy MaskedArray's).

    Raises
    ------
    TypeError
        For anything else, or non-numeric or complex data.
    ValueError
        If the data are not 2-D or have no pixels (FrameError), or the mask is
        not of their shape.
    """
    mask = None
    if isinstance(image, Frame):
        data, mask = image.data, image.bool_mask
    elif is_ccddata(image):
        data, mask = np.asarray(image.data), image.mask
    elif isinstance(image, np.ma.MaskedArray):
        data, mask = image.data, np.ma.getmaskarray(image)
    elif isinstance(image, (list, tuple)) or hasattr(image, "__array__") or hasattr(
            image, "__cuda_array_interface__"):
        data = image
    else:
        raise TypeError(f"{name}: expected a 2-D array, Frame or CCDData; "
                        f"got {type(image).__name__}")
    backend = get_backend(data, mask if with_mask else None)
    data = float_data(backend.asarray(data), name)
    if data.ndim != 2:
        raise ValueError(f"{name} must be two-dimensional; got shape {data.shape}")
    require_pixels(data.shape, name)
    if not with_mask:
        return data, backend
    if mask is not None:
        mask = backend.asarray(mask, bool)
        if mask.shape != data.shape:
            raise ValueError(f"{name}: mask shape {tuple(mask.shape)} does not match the "
                             f"data's {tuple(data.shape)}")
    return data, mask, backend
