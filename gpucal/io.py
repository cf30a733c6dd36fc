"""FITS files ⇄ host arrays: the only module that reads or writes image files.

Reading returns native-endian NumPy arrays (FITS is big-endian; CuPy must
never see big-endian bytes), with scaled integers (BZERO/BSCALE, BLANK)
applied, and the conventions of astropy's ``CCDData``: the image in the
primary HDU or an extension, a ``MASK`` extension (non-zero = masked) and an
``UNCERT`` extension whose ``UTYPE`` card names the uncertainty kind.
Writing produces files that ``CCDData.read`` opens, atomically: a temporary
file in the target directory, renamed into place when complete.

Every failure names the file and the problem (:class:`~gpucal.FrameError`,
or ``FileNotFoundError``/``FileExistsError``).
"""

import os
import uuid
from typing import NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

from . import flags
from ._dtype import float_dtype
from .errors import FrameError

MASK_EXTNAME = "MASK"
UNCERT_EXTNAME = "UNCERT"
_UNCERT_KEY = "UTYPE"  # astropy's key for the uncertainty class name

# Cards that describe the storage of one HDU, not the image: never carried over.
_STORAGE_KEYS = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
                 "BZERO", "BSCALE", "BLANK", "EXTNAME", "EXTVER", "EXTLEVEL",
                 "CHECKSUM", "DATASUM", "INHERIT", "BUNIT"}


class FitsImage(NamedTuple):
    """What :func:`read_fits` returns: host arrays plus header and unit."""

    data: np.ndarray
    mask: np.ndarray | None
    uncertainty: np.ndarray | None
    header: fits.Header
    unit: u.UnitBase | None


def _clean_header(header):
    """A copy of `header` without storage cards (those are the writer's business)."""
    out = header.copy(strip=True)
    for key in list(out.keys()):
        if key in _STORAGE_KEYS or (key.startswith("NAXIS") and key[5:].isdigit()):
            out.remove(key, remove_all=True)
    return out


def _describe(hdul):
    parts = []
    for i, h in enumerate(hdul):
        shape = "×".join(map(str, h.shape)) if h.is_image and h.shape else "no data"
        parts.append(f"{i} {h.name or '-'} ({type(h).__name__}, {shape})")
    return "; ".join(parts)


def _has_image(h):
    return h.is_image and len(h.shape) > 0


def _pick_hdu(hdul, hdu, path):
    if hdu is None:
        for h in hdul:
            if _has_image(h) and h.name not in (MASK_EXTNAME, UNCERT_EXTNAME):
                return h
        raise FrameError(f"{path}: no image HDU in the file; it holds: {_describe(hdul)}")
    try:
        h = hdul[hdu]
    except (KeyError, IndexError):
        raise FrameError(f"{path}: no HDU {hdu!r}; the file holds: {_describe(hdul)}") from None
    if not _has_image(h):
        raise FrameError(f"{path}: HDU {hdu!r} is not an image with data "
                         f"({type(h).__name__}); the file holds: {_describe(hdul)}")
    return h


def _image_data(h, path, what):
    """The HDU's pixels as stored (scaled by astropy), BLANK pixels as NaN."""
    hdr = h.header
    blank, bscale, bzero = hdr.get("BLANK"), hdr.get("BSCALE", 1), hdr.get("BZERO", 0)
    data = h.data
    if data.ndim != 2:
        raise FrameError(f"{path}: {what} is {data.ndim}-D (shape {data.shape}); gpucal "
                         "works on 2-D frames: select one plane or extension with hdu=")
    # astropy turns BLANK into NaN when it scales to float, but not for
    # pseudo-unsigned integers (BZERO = 2**(n-1)): do it here.
    if blank is not None and data.dtype.kind in "iu":
        out = data.astype(np.float64)
        out[data == blank * bscale + bzero] = np.nan
        return out
    return data


def _unit(header, unit, path):
    if unit is not None:
        return u.Unit(unit)
    text = str(header.get("BUNIT", "")).strip()
    if not text:
        return None
    # The spellings CCDData.read accepts, so both read the same files.
    text = "adu" if text.lower() == "adu" else CCDData.known_invalid_fits_unit_strings.get(text, text)
    try:
        return u.Unit(text)
    except ValueError:
        raise FrameError(f"{path}: BUNIT = {header['BUNIT']!r} is not a unit astropy "
                         "understands; pass unit= to override it") from None


def _uncertainty_as_stddev(values, header, dtype, path):
    kind = header.get(_UNCERT_KEY, "StdDevUncertainty")
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "StdDevUncertainty":
            pass
        elif kind == "VarianceUncertainty":
            values = np.sqrt(values)
        elif kind == "InverseVariance":
            values = 1.0 / np.sqrt(values)
        else:
            raise FrameError(f"{path}: {UNCERT_EXTNAME} extension has {_UNCERT_KEY} = "
                             f"{kind!r}; gpucal reads StdDevUncertainty, "
                             "VarianceUncertainty and InverseVariance")
    return values.astype(dtype)


def _check_shape(arr, shape, path, what):
    if arr.shape != shape:
        raise FrameError(f"{path}: the {what} extension has shape {arr.shape} but the "
                         f"image has shape {shape}")


def read_fits(path, hdu=None, *, unit=None, dtype=np.float32):
    """Read one image (and its MASK/UNCERT extensions) from a FITS file.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file (tile-compressed images included).
    hdu : int, str or (str, int), optional
        Which HDU holds the image: index, EXTNAME or (EXTNAME, EXTVER).
        Default: the first HDU with 2-D image data that is not MASK/UNCERT.
    unit : str or astropy.units.Unit, optional
        Overrides the header's BUNIT.
    dtype : floating dtype or None
        Dtype of data and uncertainty; None keeps the file's float type
        (integers become float64).

    Returns
    -------
    FitsImage
        Native-endian host arrays; the mask as gpucal flags (uint16) or None.
        The header of an extension is completed by the primary header's
        cards it lacks; storage cards (BITPIX, NAXISn, BZERO, ...) and BUNIT
        are removed (the unit is returned separately).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    FrameError
        If the file is not FITS, is truncated, has no (such) image HDU, the
        image is not 2-D, MASK/UNCERT do not match the image's shape, or
        BUNIT is not a unit.
    """
    path = os.fspath(path)
    data, header, extensions = _load(path, hdu)
    dtype = float_dtype(dtype, data.dtype)
    data = np.asarray(data, dtype=dtype.newbyteorder("="))
    mask = uncertainty = None
    if MASK_EXTNAME in extensions:
        mask = flags.decode(*extensions[MASK_EXTNAME])
        _check_shape(mask, data.shape, path, MASK_EXTNAME)
    if UNCERT_EXTNAME in extensions:
        uncertainty = _uncertainty_as_stddev(*extensions[UNCERT_EXTNAME], dtype, path)
        _check_shape(uncertainty, data.shape, path, UNCERT_EXTNAME)
    return FitsImage(data, mask, uncertainty, _clean_header(header), _unit(header, unit, path))


def _load(path, hdu):
    """The image, its header and the MASK/UNCERT (data, header) pairs, as astropy reads them.

    Everything astropy or NumPy raise on a damaged file becomes a FrameError.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise FrameError(f"{path}: is a directory, not a FITS file")
    try:
        with fits.open(path, memmap=False) as hdul:
            h = _pick_hdu(hdul, hdu, path)
            data = _image_data(h, path, "the image" if hdu is None else f"HDU {hdu!r}")
            header = h.header.copy()
            if h is not hdul[0]:
                header.extend(_clean_header(hdul[0].header), unique=True)
            extensions = {name: (hdul[name].data, hdul[name].header.copy())
                          for name in (MASK_EXTNAME, UNCERT_EXTNAME)
                          if name in hdul and hdul[name] is not h}
    except (FrameError, MemoryError):
        raise
    except Exception as exc:
        raise FrameError(f"{path}: cannot read it as FITS ({type(exc).__name__}: {exc}); "
                         "the file is damaged, truncated or not FITS") from exc
    return data, header, extensions


def write_fits(path, data, header, *, mask=None, uncertainty=None, unit=None,
               overwrite=False):
    """Write an image with optional MASK and UNCERT extensions, atomically.

    The primary HDU holds `data` and `header` (with BUNIT from `unit`); MASK
    holds the flag bits as 16-bit integers with the bits named in its header;
    UNCERT holds the standard deviation with ``UTYPE = 'StdDevUncertainty'``.
    ``CCDData.read`` opens the result with a boolean mask.

    The file is written under a temporary name in the target directory and
    renamed over `path` only when complete, so a crash never leaves a partial
    file under the final name.

    Raises
    ------
    FileExistsError
        If `path` exists and `overwrite` is False.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    hdr = _clean_header(header)
    if unit is not None and unit != u.dimensionless_unscaled:
        hdr["BUNIT"] = u.Unit(unit).to_string()
    hdus = [fits.PrimaryHDU(data, hdr)]
    if mask is not None:
        mhdr = fits.Header(flags.header_cards())
        hdus.append(fits.ImageHDU(mask.astype(np.int16), mhdr, name=MASK_EXTNAME))
    if uncertainty is not None:
        uhdr = fits.Header([(_UNCERT_KEY, "StdDevUncertainty", "uncertainty kind (astropy)")])
        hdus.append(fits.ImageHDU(uncertainty, uhdr, name=UNCERT_EXTNAME))

    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        # O_EXCL: never write into someone else's file; astropy wants mode "wb".
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            fits.HDUList(hdus).writeto(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
