"""`Frame`: one CCD image with its mask, uncertainty, header and unit, on either device."""

import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits

from . import io
from ._dtype import float_dtype, refuse_complex
from .backend import backend_for_device, get_backend, move
from .device import resolve_device
from .errors import FrameError, require_pixels
from .flags import as_bits

__all__ = ["Frame"]


def _as_header(header):
    if header is None:
        return fits.Header()
    if isinstance(header, fits.Header):
        return header.copy()
    try:
        return fits.Header(list(dict(header).items()))
    except (TypeError, ValueError) as exc:
        raise FrameError(f"header: cannot be made into a FITS header ({exc})") from None


def meta_header(meta, dropped=None):
    """A CCDData's meta (a Header or any mapping) as a FITS header, leniently.

    ccdproc passes any meta through; what FITS cannot hold (lists, dicts, keys
    that are not strings) is left out of the header here and, when `dropped` is
    a list, its keys appended to it. The CCDData results keep the original meta
    (:func:`gpucal.sources.give_back`); only a FITS file written from the
    header loses those values, and says so.
    """
    if meta is None or isinstance(meta, fits.Header):
        return _as_header(meta)
    header = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long keys: HIERARCH
        for key, value in dict(meta).items():
            try:
                header[key] = value
            except (TypeError, ValueError, KeyError):
                if dropped is not None:
                    dropped.append(key)
    return header


def ccddata_header(ccd, dropped=None):
    """A CCDData's meta as a FITS header, its WCS merged in (no data are touched).

    Meta values FITS cannot hold are left out (see :func:`meta_header`).
    """
    header = meta_header(ccd.meta, dropped)
    if ccd.wcs is not None:
        header.update(ccd.wcs.to_header(relax=True))
    return header


class Frame:
    """A 2-D CCD image with bit-flag mask, uncertainty, header and unit.

    The arrays live together on the CPU (NumPy) or the GPU (CuPy); gpucal's
    functions run wherever a Frame's arrays are.

    Parameters
    ----------
    data : array_like
        The 2-D image (NumPy or CuPy).
    mask : array_like, optional
        Same shape as `data`. Boolean: True pixels get :attr:`MaskFlag.USER`.
        Integer: :class:`MaskFlag` bits.
    uncertainty : array_like, optional
        One standard deviation per pixel, in the unit of `data`.
    header : astropy.io.fits.Header or dict, optional
        Copied.
    unit : str or astropy.units.Unit, optional
        Unit of `data`, e.g. ``"adu"`` or ``"electron"``.
    dtype : floating dtype or None, default float32
        Dtype of data and uncertainty. None keeps a floating input's dtype
        (integers become float64).

    Attributes
    ----------
    data, mask, uncertainty : array or None
        Assignable; new values are checked like the constructor's.
    header : astropy.io.fits.Header
    unit : astropy.units.Unit or None

    Raises
    ------
    FrameError
        If `data` is not 2-D or has no pixels, or `mask`/`uncertainty` have
        another shape, or an integer mask holds bits that are not MaskFlags.
    TypeError
        If the arrays are on different devices (NumPy and CuPy mixed), or
        data or uncertainty are complex (the imaginary part would be lost).

    See Also
    --------
    astropy.nddata.CCDData : the astropy container; see from_ccddata/to_ccddata.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Frame, MaskFlag
    >>> f = Frame(np.ones((4, 5)), unit="adu")
    >>> f.shape, f.dtype, f.device
    ((4, 5), dtype('float32'), 'cpu')
    >>> f.mask = np.eye(4, 5, dtype=bool)
    >>> MaskFlag(int(f.mask[0, 0]))
    <MaskFlag.USER: 64>
    """

    __slots__ = ("_data", "_mask", "_uncertainty", "header", "unit")

    def __init__(self, data, mask=None, uncertainty=None, header=None, unit=None, *,
                 dtype=np.float32):
        backend = get_backend(data, mask, uncertainty)
        data = backend.asarray(data)
        refuse_complex(data.dtype, "data")
        if data.dtype.kind not in "biuf":
            raise FrameError(f"data: expected real numbers, got dtype {data.dtype}")
        self._mask = self._uncertainty = None
        self._data = self._checked(backend.asarray(data, float_dtype(dtype, data.dtype)),
                                   "data")
        self.mask = mask
        self.uncertainty = uncertainty
        self.header = _as_header(header)
        self.unit = None if unit is None else u.Unit(unit)

    # -- arrays -------------------------------------------------------------------------

    def _checked(self, arr, what):
        if arr.ndim != 2:
            raise FrameError(f"{what}: a Frame is 2-D, got {arr.ndim}-D (shape {arr.shape}); "
                             "stacks of frames are lists of Frames or 3-D arrays")
        if what == "data":
            require_pixels(arr.shape, what)
        if what != "data" and arr.shape != self._data.shape:
            raise FrameError(f"{what}: shape {arr.shape} does not match the data's "
                             f"{self._data.shape}")
        return arr

    @property
    def data(self):
        return self._data

    @data.setter
    def data(self, value):
        backend = get_backend(value, self._mask, self._uncertainty)
        value = backend.asarray(value)
        refuse_complex(value.dtype, "data")
        if value.dtype.kind != "f":
            value = value.astype(self._data.dtype)
        value = self._checked(value, "data")
        for what, arr in (("mask", self._mask), ("uncertainty", self._uncertainty)):
            if arr is not None and arr.shape != value.shape:
                raise FrameError(f"data: shape {value.shape} does not match the {what}'s "
                                 f"{arr.shape}; set the {what} to None or reshape it first")
        self._data = value

    @property
    def mask(self):
        """MaskFlag bits (uint16 array) or None; see :attr:`bool_mask`."""
        return self._mask

    @mask.setter
    def mask(self, value):
        if value is None:
            self._mask = None
            return
        backend = get_backend(self._data, value)
        value = self._checked(backend.asarray(value), "mask")
        try:
            self._mask = as_bits(value)
        except (TypeError, ValueError) as exc:
            raise FrameError(f"mask: {exc}") from None

    def flag(self, where, flag=None):
        """OR flags into the mask (which is created if absent).

        Parameters
        ----------
        where : array_like of bool, or of MaskFlag bits
            Same shape as the data, on the same device: with `flag`, the
            pixels to flag (non-zero values count as True); without, a mask
            of MaskFlag bits, e.g. one that :func:`gpucal.masks.read_mask`
            returns.
        flag : MaskFlag, optional
            One flag or several OR-ed together, set where `where` is True.
            Bits already set are kept.

        Examples
        --------
        >>> import numpy as np
        >>> from gpucal import Frame, MaskFlag
        >>> f = Frame(np.array([[10.0, 70000.0]]))
        >>> f.flag(f.data > 65000, MaskFlag.SATURATED)
        >>> f.flag(f.data > 0, MaskFlag.USER)
        >>> f.flag(np.array([[int(MaskFlag.BAD_PIXEL), 0]], np.uint16))
        >>> [MaskFlag(int(v)) for v in f.mask[0]]
        [<MaskFlag.BAD_PIXEL|USER: 65>, <MaskFlag.SATURATED|USER: 72>]
        """
        backend = get_backend(self._data, where)
        # With a flag, anything non-zero is "where" (a 0/1 mask image too), as before.
        where = self._checked(backend.asarray(where, None if flag is None else bool), "where")
        if flag is None and where.dtype.kind not in "iu":
            raise TypeError("flag(): give booleans with a flag, or MaskFlag bits without one")
        try:
            bits = as_bits(where, flag)
        except ValueError as exc:
            raise FrameError(f"where: {exc}") from None
        self._mask = bits if self._mask is None else self._mask | bits

    @property
    def uncertainty(self):
        """Standard deviation per pixel (data's dtype and unit) or None."""
        return self._uncertainty

    @uncertainty.setter
    def uncertainty(self, value):
        if value is None:
            self._uncertainty = None
            return
        backend = get_backend(self._data, value)
        value = backend.asarray(value)
        refuse_complex(value.dtype, "uncertainty")
        self._uncertainty = self._checked(backend.asarray(value, self._data.dtype),
                                          "uncertainty")

    @property
    def bool_mask(self):
        """The mask as CCDData users see it (True = masked), or None."""
        return None if self._mask is None else self._mask != 0

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def backend(self):
        """The backend that computes on this Frame's arrays."""
        return get_backend(self._data)

    @property
    def device(self):
        """``"cpu"`` or ``"gpu"``."""
        return self.backend.device

    def _arrays(self):
        return self._data, self._mask, self._uncertainty

    def _rebuild(self, convert):
        data, mask, unc = (None if a is None else convert(a) for a in self._arrays())
        return Frame(data, mask, unc, self.header, self.unit, dtype=None)

    def copy(self):
        """A deep copy (arrays and header) on the same device."""
        return self._rebuild(lambda a: a.copy())

    def to_device(self, device):
        """This Frame on `device` (``"cpu"``, ``"gpu"`` or ``"auto"``).

        Returns the Frame itself when it is already there, else a copy.
        """
        backend = backend_for_device(device)
        if backend is self.backend:
            return self
        return self._rebuild(lambda a: move(a, backend))

    def __repr__(self):
        extras = [f"unit={self.unit}" if self.unit is not None else "no unit"]
        extras += [name for name, a in (("mask", self._mask), ("uncertainty", self._uncertainty))
                   if a is not None]
        ny, nx = self.shape
        return f"<Frame {ny}×{nx} {self.dtype} on {self.device}, {', '.join(extras)}>"

    # -- files --------------------------------------------------------------------------

    @classmethod
    def read(cls, path, hdu=None, device=None, *, unit=None, dtype=np.float32):
        """Read a Frame from a FITS file.

        Parameters
        ----------
        path : str or os.PathLike
        hdu : int, str or (str, int), optional
            Index, EXTNAME or (EXTNAME, EXTVER) of the image HDU. Default: the
            first HDU with image data (also inside tile-compressed files).
        device : {"auto", "cpu", "gpu"}, optional
            Where the arrays go. Default: the ``GPUCAL_DEVICE`` environment
            variable, or ``"auto"`` (the GPU when there is one).
        unit : str or astropy.units.Unit, optional
            Overrides the header's BUNIT.
        dtype : floating dtype or None, default float32

        Returns
        -------
        Frame
            With the MASK and UNCERT extensions when present (astropy's
            CCDData conventions; other uncertainty kinds are converted to
            standard deviation). Scaled integers are scaled, big-endian data
            converted to native order, BLANK pixels set to NaN.

        Raises
        ------
        FileNotFoundError, FrameError, GPUUnavailableError
            See :func:`gpucal.io.read_fits` and :func:`gpucal.device.resolve_device`.

        Examples
        --------
        >>> import numpy as np, tempfile, os
        >>> from gpucal import Frame
        >>> path = os.path.join(tempfile.mkdtemp(), "f.fits")
        >>> _ = Frame(np.zeros((3, 4)), unit="adu").write(path)  # returns its SHA-256
        >>> Frame.read(path, device="cpu")
        <Frame 3×4 float32 on cpu, unit=adu>
        """
        device = resolve_device(device)  # fail before reading a large file
        img = io.read_fits(path, hdu, unit=unit, dtype=dtype)
        frame = cls(img.data, img.mask, img.uncertainty, img.header, img.unit, dtype=None)
        return frame.to_device(device)

    def write(self, path, overwrite=False, *, compress="none"):
        """Write the Frame to FITS (MASK and UNCERT extensions), atomically.

        ``CCDData.read`` opens the file with the same data, a boolean mask and
        a StdDevUncertainty; gpucal reads the mask's named bits back.
        `compress`: "none", "mask" or "mask+uncert", lossless tile compression
        of those extensions (see :func:`gpucal.io.write_fits`).

        Returns
        -------
        str
            The file's SHA-256 (hex), computed as it was written.

        Raises
        ------
        FileExistsError
            If `path` exists and `overwrite` is False.
        """
        host = self.to_device("cpu")
        return io.write_fits(path, host.data, self.header, mask=host.mask,
                             uncertainty=host.uncertainty, unit=self.unit,
                             overwrite=overwrite, compress=compress)

    # -- astropy ------------------------------------------------------------------------

    @classmethod
    def from_ccddata(cls, ccd, *, dtype=np.float32):
        """Make a Frame (on the CPU) from an astropy CCDData.

        The boolean mask becomes :attr:`MaskFlag.USER`; Variance and
        InverseVariance uncertainties become standard deviations in the
        data's unit; the WCS is merged into the header.
        """
        from astropy.nddata import StdDevUncertainty

        if not all(hasattr(ccd, a) for a in ("data", "mask", "uncertainty", "meta", "unit")):
            raise TypeError(f"expected an astropy CCDData, got {type(ccd).__name__}")
        unc = None
        if ccd.uncertainty is not None:
            std = ccd.uncertainty.represent_as(StdDevUncertainty)
            unc = std.array
            if std.unit is not None and ccd.unit is not None and std.unit != ccd.unit:
                unc = (unc * std.unit).to_value(ccd.unit)
        mask = None if ccd.mask is None else np.asarray(ccd.mask) != 0
        return cls(ccd.data, mask, unc, ccddata_header(ccd), ccd.unit, dtype=dtype)

    def to_ccddata(self):
        """An astropy CCDData (host arrays): boolean mask, StdDevUncertainty.

        Raises
        ------
        FrameError
            If the Frame has no unit (CCDData requires one).
        """
        from astropy.nddata import CCDData, StdDevUncertainty

        if self.unit is None:
            raise FrameError("this Frame has no unit and CCDData requires one; set "
                             "frame.unit (e.g. 'adu' or 'electron') first")
        host = self.to_device("cpu")
        unc = None if host.uncertainty is None else StdDevUncertainty(host.uncertainty)
        return CCDData(host.data, mask=host.bool_mask, uncertainty=unc,
                       meta=self.header.copy(), unit=self.unit)
