"""Bad-pixel masks besides ccdmask: hot pixels, static masks, and masks as files.

A gpucal mask is a 16-bit array of :class:`~gpucal.MaskFlag` bits; the
functions that find defects return booleans (True = bad) and a Frame takes
them with :meth:`Frame.flag <gpucal.Frame.flag>` under the flag that says why.
"""

import os

import numpy as np
from astropy import units as u
from astropy.io import fits

from . import io
from ._operands import exposure_seconds, positive_seconds
from .backend import get_backend
from .errors import FrameError
from .flags import MaskFlag, as_bits, decode
from .sources import image_data, unit_and_header
from .stats import image_stats

__all__ = ["combine_masks", "hot_pixel_mask", "read_mask", "static_mask", "write_mask"]


def _exposure(exposure_time, header):
    if exposure_time is None:
        return exposure_seconds(header, what="hot_pixel_mask: the dark")
    return positive_seconds(exposure_time, what="hot_pixel_mask: exposure time")


def hot_pixel_mask(dark, *, exposure_time=None, threshold=4.0, unit="electron/s"):
    """Pixels whose dark current exceeds a threshold (the seeds' hot-pixel recipe).

    The dark current of each pixel is the (bias-subtracted, combined) dark
    divided by its exposure time; pixels above `threshold` are hot. Many hot
    pixels are not linear with exposure time, so dark subtraction cannot fix
    them: mask them instead.

    Parameters
    ----------
    dark : 2-D array (NumPy or CuPy), Frame or CCDData
        A master dark. Arrays are taken to be in ``unit × s`` (electrons for
        the default unit); a Frame's or CCDData's unit must convert to it.
    exposure_time : float or astropy Quantity, optional
        Seconds; default: the header's EXPTIME or EXPOSURE.
    threshold : float or astropy Quantity, default 4
        Dark current above which a pixel is hot, in `unit`.
    unit : str or astropy Unit, default "electron/s"

    Returns
    -------
    2-D bool array on the dark's device
        True for hot pixels; non-finite dark pixels are flagged too (they
        cannot be dark-corrected).

    Raises
    ------
    ValueError
        Without an exposure time, or when the dark's unit does not convert
        (a dark in ADU against a threshold in electrons: gain-correct it first).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Frame, MaskFlag
    >>> from gpucal.masks import hot_pixel_mask
    >>> dark = np.full((4, 4), 30.0)       # electrons in 300 s: 0.1 e/s
    >>> dark[1, 2] = 3000.0                # 10 e/s
    >>> hot = hot_pixel_mask(dark, exposure_time=300)
    >>> np.argwhere(hot).tolist()
    [[1, 2]]
    >>> frame = Frame(np.zeros((4, 4)))
    >>> frame.flag(hot, MaskFlag.HOT_PIXEL)
    """
    data, backend = image_data(dark, "dark")
    data_unit, header = unit_and_header(dark)
    seconds = _exposure(exposure_time, header)
    limit = u.Quantity(threshold, unit)
    if data_unit is not None and data_unit != u.dimensionless_unscaled:
        try:
            limit = limit.to(u.Unit(data_unit) / u.s)
        except u.UnitConversionError:
            raise ValueError(f"hot_pixel_mask: the dark is in {data_unit} but the threshold in "
                             f"{limit.unit}; gain-correct the dark first or give the threshold "
                             f"in {data_unit}/s") from None
    current = data / data.dtype.type(seconds)
    return ~(current <= float(limit.value))


def static_mask(images, static_sig=4.0):
    """Pixels far below the sky in any image: drizzlepac's static mask.

    For each image, the mode and the clipped standard deviation come from
    3σ-clipped statistics with a histogram mode (``stsci.imagestats``, as
    drizzlepac's ``staticMask.createMask`` uses); a pixel is flagged when it
    is below ``mode - static_sig · stddev`` in **any** image (an image whose
    histogram is degenerate is skipped, as drizzlepac does).

    Parameters
    ----------
    images : sequence of 2-D arrays (NumPy or CuPy), Frames or CCDData
        Science frames of one detector (same shape).
    static_sig : float, default 4
        The threshold in standard deviations below the mode.

    Returns
    -------
    2-D bool array on the images' device
        True for flagged pixels. drizzlepac's mask has the opposite polarity
        (1 = good); gpucal's masks are True where bad.

    Raises
    ------
    ValueError
        For an empty sequence or images of different shapes.

    Notes
    -----
    Non-finite pixels take no part in the statistics and are not flagged
    (drizzlepac's statistics become NaN when an image holds one NaN).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.masks import static_mask
    >>> rng = np.random.default_rng(0)
    >>> sky = [rng.normal(100, 5, (64, 64)).astype(np.float32) for _ in range(3)]
    >>> sky[1][10, 20] = 20.0                # a low pixel in one image
    >>> np.argwhere(static_mask(sky)).tolist()
    [[10, 20]]
    """
    images = list(images)
    if not images:
        raise ValueError("static_mask: no images")
    flagged = None
    for i, image in enumerate(images):
        data, backend = image_data(image, f"images[{i}]")
        if flagged is None:
            flagged = backend.xp.zeros(data.shape, bool)
        elif data.shape != flagged.shape:
            raise ValueError(f"static_mask: images[{i}] has shape {data.shape}, "
                             f"images[0] {flagged.shape}")
        get_backend(flagged, data)  # one device for all
        sky, rms, nbins = image_stats(data)
        if nbins >= 2:
            flagged |= data < sky - static_sig * rms
    return flagged


def combine_masks(masks, flag=MaskFlag.USER):
    """OR masks together into one array of MaskFlag bits.

    Parameters
    ----------
    masks : sequence of 2-D arrays (NumPy or CuPy)
        Flag arrays (any unsigned integer type holding MaskFlag bits), as
        :func:`read_mask` returns, or booleans, which count as `flag`.
    flag : MaskFlag, default MaskFlag.USER
        The flag of boolean masks.

    Returns
    -------
    2-D uint16 array on the masks' device

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import MaskFlag
    >>> from gpucal.masks import combine_masks
    >>> bad = np.array([[True, False]])
    >>> hot = np.array([[0, int(MaskFlag.HOT_PIXEL)]], np.uint16)
    >>> combine_masks([bad, hot], flag=MaskFlag.BAD_PIXEL).tolist()
    [[1, 2]]
    """
    masks = list(masks)
    if not masks:
        raise ValueError("combine_masks: no masks")
    backend = get_backend(*masks)
    out = None
    for i, m in enumerate(masks):
        try:
            m = as_bits(backend.asarray(m), flag)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"combine_masks: masks[{i}] {exc}") from None
        if out is not None and m.shape != out.shape:
            raise ValueError(f"combine_masks: masks[{i}] has shape {m.shape}, "
                             f"masks[0] {out.shape}")
        out = m if out is None else out | m
    return out


def write_mask(path, mask, *, flag=MaskFlag.BAD_PIXEL, header=None, overwrite=False,
               compress="none"):
    """Write a mask to FITS so that gpucal, ccdproc and the seeds' notebooks can read it.

    The primary HDU holds 0/1 (uint8, dimensionless), which
    ``CCDData.read(path)`` returns as data, as the tutorials' mask files do;
    the MASK extension holds the flag bits with the bits named in its header,
    which ``CCDData.read`` turns into a boolean mask and :func:`read_mask`
    back into flags. The file is written atomically.

    Parameters
    ----------
    path : str or path-like
    mask : 2-D array (NumPy or CuPy)
        Booleans (stored as `flag`) or MaskFlag bits.
    flag : MaskFlag, default MaskFlag.BAD_PIXEL
    header : astropy.io.fits.Header, optional
        Cards for the primary header (e.g. HISTORY of how the mask was made).
    overwrite : bool, default False
    compress : {"none", "mask"}, default "none"
        Lossless tile compression of the MASK extension.

    Returns
    -------
    str
        The file's SHA-256 (hex).
    """
    flags = combine_masks([mask], flag=flag)
    flags = get_backend(flags).to_numpy(flags)
    hdr = fits.Header() if header is None else header
    return io.write_fits(path, (flags != 0).astype(np.uint8), hdr, mask=flags,
                         unit=u.dimensionless_unscaled, overwrite=overwrite, compress=compress)


def read_mask(path, hdu=None):
    """Read a mask file as MaskFlag bits (uint16, on the host).

    gpucal's mask files and products: their MASK extension, named bits
    decoded. Other files: the MASK extension if present, else the image
    (`hdu`, default the first with data); non-zero pixels become
    :attr:`MaskFlag.USER` unless the header names bits.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    FrameError
        For an unreadable file, one without a 2-D image, or NaN in the image.
    """
    image = io.read_fits(path, hdu, dtype=None)
    if image.mask is not None:
        return image.mask
    if not np.isfinite(image.data).all():
        raise FrameError(f"{os.fspath(path)}: a mask image must hold integers, not NaN/inf")
    return decode(image.data, image.header)
