"""Calibration: overscan, trim, uncertainty, gain, bias, dark and flat — ccdproc's steps.

Each function has ccdproc 2.5.1's name, parameters and arithmetic (astropy's
StdDevUncertainty propagation, masks OR-ed), and takes a :class:`~gpucal.Frame`,
an astropy ``CCDData`` or a bare 2-D array, and gives back the type that came in
(:mod:`gpucal.sources`: a CCDData, a Frame, or the data array), on the device
of the input; inputs are never modified.

All of them are one routine: :func:`ccd_process` turns its arguments into an
:class:`~gpucal._xp.arithmetic.Arithmetic` and the backend applies the whole chain
in one pass over the pixels — on the GPU one fused kernel, reading the raw frame
once. A list of frames (or a 3-D array) is processed as one batch.

Deliberate differences from ccdproc, each for a result ccdproc gets wrong or
refuses:

- Overscan statistics ignore NaN (ccdproc: a NaN in the overscan makes its
  whole row NaN).
- The flat's mean ignores non-finite pixels (ccdproc: one NaN makes the whole
  calibrated frame NaN); a flat whose mean is not positive is an error.
- Exposure times are needed only when the dark is scaled (ccdproc requires
  them and then ignores them); by default they come from EXPTIME/EXPOSURE.
- Plain numbers are accepted for gain and read noise (taken in the units
  the data need); Quantities are converted where ccdproc demands equal units.
"""

import numpy as np
from astropy import units as u

from ._operands import (check_square, exposure_seconds, logged, positive_seconds, quantity,
                        unit_factor)
from ._xp.arithmetic import Arithmetic, Term
from .backend import get_backend
from .flags import MaskFlag, as_bits
from .frame import Frame
from .provenance import add_history
from .sections import check_section, parse_section
from .sources import as_frame, give_back, is_ccddata, parts

__all__ = ["ccd_process", "create_deviation", "flat_correct", "gain_correct",
           "subtract_bias", "subtract_dark", "subtract_overscan", "trim_image"]


class _Batch:
    """Frames to calibrate as (..., ny, nx) arrays: one frame, or a batch of n."""

    def __init__(self, ccd):
        self.stacked = False  # a 3-D array: its results come back as one
        if isinstance(ccd, (list, tuple)):
            if not ccd:
                raise ValueError("ccd_process: an empty list of frames")
            pairs = [as_frame(c, f"ccd[{i}]") for i, c in enumerate(ccd)]
            frames = [f for f, _ in pairs]
            self.kind, self.batch, self.likes = pairs[0][1], True, list(ccd)
        elif getattr(ccd, "ndim", 2) == 3 and not isinstance(ccd, Frame):
            frames = [Frame(plane, dtype=None) for plane in ccd]
            self.kind, self.batch, self.likes = "array", True, [None] * len(frames)
            self.stacked = True
        else:
            frame, self.kind = as_frame(ccd, "ccd")
            frames, self.batch, self.likes = [frame], False, [ccd]
        shapes = {f.shape for f in frames}
        units = {f.unit for f in frames}
        if len(shapes) > 1 or len(units) > 1:
            raise ValueError(f"a batch must share one shape and one unit; got shapes "
                             f"{sorted(shapes)} and units {sorted(map(str, units))}")
        self.backend = get_backend(*(f.data for f in frames))
        xp = self.backend.xp
        self.headers = [f.header.copy() for f in frames]
        self.unit = frames[0].unit
        self.dtype = np.result_type(*(f.dtype for f in frames))

        def gather(arrays, fill):
            if all(a is None for a in arrays):
                return None
            if not self.batch:
                return arrays[0]
            return xp.stack([fill(frames[0].shape) if a is None else a for a in arrays])

        self.data = gather([f.data for f in frames], None)
        self.sigma = gather([f.uncertainty for f in frames], lambda s: xp.zeros(s, self.dtype))
        self.mask = gather([f.mask for f in frames], lambda s: xp.zeros(s, np.uint16))

    @property
    def shape(self):
        return self.data.shape[-2:]

    def per_frame(self, values):
        """A scalar, or (n, 1, 1) values for a batch, of a list of per-frame numbers."""
        if not self.batch:
            return values[0]
        return self.backend.xp.asarray(values, self.dtype).reshape(-1, 1, 1)

    def results(self, data, sigma, mask):
        if self.stacked:
            return data
        frames = []
        for i, header in enumerate(self.headers):
            pick = (lambda a: a[i]) if self.batch else (lambda a: a)
            frames.append(Frame(pick(data), None if mask is None else pick(mask),
                                None if sigma is None else pick(sigma), header, self.unit,
                                dtype=None))
        out = [give_back(f, self.kind, like if is_ccddata(like) else None)
               for f, like in zip(frames, self.likes)]
        return out if self.batch else out[0]


def _operand(image, name, batch):
    """An image as a Frame on the batch's device (TypeError when devices are mixed)."""
    frame, _ = as_frame(image, name)
    get_backend(batch.data, frame.data)
    return frame


def _calibration(image, name, batch):
    """A calibration image as a Frame on the batch's device, of the batch's shape."""
    frame = _operand(image, name, batch)
    if frame.shape != batch.shape:
        raise ValueError(f"{name}: shape {frame.shape} does not match the image's {batch.shape}"
                         " (after trimming)")
    return frame


def _term(frame, scale, batch):
    """A calibration image as a Term in the data's dtype (so both backends compute alike)."""
    sigma = frame.uncertainty
    return Term(frame.data.astype(batch.dtype, copy=False),
                None if sigma is None else sigma.astype(batch.dtype, copy=False), scale)


def _or_mask(mask, frame, xp):
    if frame.mask is None:
        return mask
    return frame.mask if mask is None else xp.bitwise_or(mask, frame.mask)


# -- overscan and trim ----------------------------------------------------------------------


def _section(text, what, batch):
    """(rows, cols) of a FITS section inside the batch's frames (parse_section's errors;
    TypeError for anything but a string, as ccdproc)."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a FITS section string such as '[1:100,1:200]'; got "
                        f"{type(text).__name__}")
    section = parse_section(text, what)
    check_section(section, batch.shape, what)
    return section


def _overscan_region(batch, overscan, fits_section):
    if fits_section is not None:
        return batch.data[(..., *_section(fits_section, "overscan section", batch))]
    if batch.batch:
        raise TypeError("a batch takes its overscan as a FITS section (fits_section/oscan)")
    data = parts(overscan, "overscan", ndim=None)[0]
    if data.ndim == 1:  # one strip: collapsed to one level, as ccdproc
        return get_backend(batch.data, data).asarray(data).astype(batch.dtype, copy=False)
    return _operand(overscan, "overscan", batch).data


def _overscan_values(batch, region, axis, median, model):
    """The overscan level to subtract, broadcastable to the (untrimmed) data."""
    xp = batch.backend.xp
    if axis not in (0, 1, None):
        raise ValueError(f"overscan_axis must be 0, 1 or None; got {axis!r}")
    if region.ndim == 1:  # a 1-D overscan strip: its one level, for every pixel (ccdproc)
        region, along = region.reshape(1, -1), (-2, -1)
    else:
        if axis is None:
            axis = 0 if region.shape[-1] > region.shape[-2] else 1
        along = -1 if axis == 1 else -2  # axis 1: one value per row
        if region.shape[-2 if axis == 1 else -1] != batch.shape[0 if axis == 1 else 1]:
            raise ValueError(f"the overscan region {region.shape[-2:]} does not span the "
                             f"image {batch.shape} along the axis it is subtracted on "
                             f"(overscan_axis={axis})")
    if xp.isnan(region).any():
        level = (xp.nanmedian if median else xp.nanmean)(region, axis=along, keepdims=True)
    else:  # the plain statistics are faster and give ccdproc's values bit for bit
        level = (xp.median if median else xp.mean)(region, axis=along, keepdims=True)
    if model is not None:
        level = _fit_overscan(batch.backend, level, model)
    return level


def _fit_overscan(backend, level, model):
    """The overscan levels replaced by `model` fitted to them (astropy's linear least squares)."""
    from astropy.modeling import fitting

    host = backend.to_numpy(level).astype(np.float64)
    flat = host.reshape(-1, host.shape[-2] * host.shape[-1])  # one level vector per frame
    x = np.arange(flat.shape[1])
    fitter = fitting.LinearLSQFitter()
    fitted = np.stack([fitter(model, x, v)(x) for v in flat])
    return backend.asarray(fitted.reshape(host.shape), level.dtype)


def _trim(batch, trim, level):
    """Trim the batch's arrays (views) and the overscan level; shift a WCS's reference pixel."""
    rows, cols = _section(trim, "trim section", batch)
    batch.data = batch.data[..., rows, cols]
    if batch.sigma is not None:
        batch.sigma = batch.sigma[..., rows, cols]
    if batch.mask is not None:
        batch.mask = batch.mask[..., rows, cols]
    if level is not None:
        level = level[..., rows if level.shape[-2] > 1 else slice(None),
                      cols if level.shape[-1] > 1 else slice(None)]
    for header in batch.headers:
        for key, cut in (("CRPIX1", cols), ("CRPIX2", rows)):
            if key in header and (cut.step or 1) == 1:
                header[key] -= cut.start or 0
    return level


# -- the arithmetic's numbers ---------------------------------------------------------------


def _times(unit, other):
    if unit is None or other is None:
        return unit if other is None else None
    return u.Unit(unit) * u.Unit(other)


def _readnoise(readnoise, g, g_unit, batch):
    """(readnoise, gain) numbers for the deviation, readnoise in units of gain × data."""
    if readnoise is None:
        raise ValueError("must provide a readnoise to create the uncertainty")
    rn, rn_unit = quantity(readnoise, None, batch.headers[0], "readnoise")
    counts_unit = batch.unit if g_unit is None else _times(batch.unit, g_unit)
    if rn_unit is not None and counts_unit is not None:
        try:
            rn = float((rn * rn_unit).to_value(counts_unit))
        except u.UnitConversionError:
            raise u.UnitsError(f"readnoise is in {rn_unit} but gain × data is in {counts_unit};"
                               " give the gain that converts the data to the read noise's "
                               "unit") from None
    if g == 0:
        raise ValueError("gain must not be zero")
    check_square(rn, batch.dtype, "readnoise")
    return rn, g


def _exposure_arguments(dark_exposure, data_exposure, exposure_time):
    """TypeError for contradictory exposure arguments (checked even when not scaling, as
    ccdproc does; unlike ccdproc, giving none is fine unless the dark is scaled)."""
    explicit = dark_exposure is not None or data_exposure is not None
    if explicit and exposure_time is not None:
        raise TypeError("specify either exposure_time or (dark_exposure and data_exposure), "
                        "not both")
    if explicit and (dark_exposure is None or data_exposure is None):
        raise TypeError("give both dark_exposure and data_exposure")


def _dark_scale(batch, dark, dark_exposure, data_exposure, exposure_time, exposure_unit):
    """Per-frame data_exposure / dark_exposure."""
    explicit = dark_exposure is not None or data_exposure is not None
    # a ccdproc Keyword carries its unit; plain numbers are seconds unless told
    unit = exposure_unit or getattr(exposure_time, "unit", None) or u.s
    if explicit:
        if dark_exposure is None or data_exposure is None:
            raise TypeError("give both dark_exposure and data_exposure")
        return (positive_seconds(data_exposure, unit, "data_exposure")
                / positive_seconds(dark_exposure, unit, "dark_exposure"))
    key = getattr(exposure_time, "name", exposure_time)  # a ccdproc Keyword or a name
    dark_s = exposure_seconds(dark.header, key, unit, "dark")
    return batch.per_frame([exposure_seconds(h, key, unit, "image") / dark_s
                            for h in batch.headers])


def _flat_terms(flat, min_value, norm_value, batch):
    """(Term, mask, min) for flat_correct: the flat over its mean or over `norm_value`."""
    xp = batch.backend.xp
    low = None if min_value is None else quantity(min_value, flat.unit, None, "min_value")[0]
    if norm_value is not None:
        norm = quantity(norm_value, flat.unit, None, "norm_value")[0]
        if norm <= 0:
            raise ValueError("norm_value must be greater than zero")
    else:
        values = flat.data if low is None else xp.maximum(flat.data, low)
        finite = values[xp.isfinite(values)]
        norm = float(finite.mean(dtype=np.float64)) if finite.size else float("nan")
        if not norm > 0:
            raise ValueError(f"the flat's mean ({norm}) is not positive: it cannot normalise "
                             "a flat field")
    return _term(flat, 1.0 / norm, batch), flat.bool_mask, low


# -- the one routine -----------------------------------------------------------------------


def _process(ccd, step, *, oscan=None, oscan_section=None, oscan_axis=1, oscan_median=True,
             oscan_model=None, trim=None, error=False, readnoise=None, disregard_nan=False,
             bad_pixel_mask=None, gain=None, gain_unit=None, apply_gain=None,
             master_bias=None, dark_frame=None, dark_exposure=None, data_exposure=None,
             exposure_key=None, exposure_unit=None, dark_scale=False, master_flat=None,
             min_value=None, norm_value=None, history=None):
    batch = _Batch(ccd)
    xp = batch.backend.xp
    level = None
    if oscan is not None or oscan_section is not None:
        region = _overscan_region(batch, oscan, oscan_section)
        level = _overscan_values(batch, region, oscan_axis, oscan_median, oscan_model)
    if trim is not None:
        level = _trim(batch, trim, level)
    if error and gain is None and step == "ccd_process":
        raise ValueError("ccd_process: error=True needs gain and readnoise to create the "
                         "uncertainty")
    terms = dict(overscan=level)
    unit, mask = batch.unit, batch.mask
    g, g_unit = (1.0, None) if gain is None else quantity(gain, gain_unit, batch.headers[0],
                                                          "gain")
    if error:
        terms["readnoise"], terms["deviation_gain"] = _readnoise(readnoise, g, g_unit, batch)
        terms["disregard_nan"] = disregard_nan
    if bad_pixel_mask is not None:
        if getattr(bad_pixel_mask, "ndim", 0) == 0:
            raise TypeError(f"bad_pixel_mask must be an array; got "
                            f"{type(bad_pixel_mask).__name__}")
        bpm = batch.backend.asarray(bad_pixel_mask)
        if bpm.dtype.kind == "f":  # ccdproc's documented 0/1 masks: non-zero is bad
            if not bool(((bpm == 0) | (bpm == 1)).all()):
                raise ValueError("bad_pixel_mask: a float mask must hold only 0 and 1 "
                                 "(1 = bad); or give booleans")
            bpm = bpm != 0
        if bpm.shape[-2:] != batch.shape:
            raise ValueError(f"bad_pixel_mask: shape {bpm.shape} does not match the image's "
                             f"{batch.shape} (after trimming)")
        mask = as_bits(bpm, MaskFlag.BAD_PIXEL)  # it replaces the mask, as in ccdproc
    if apply_gain == "before":
        terms["gain"], unit = g, _times(unit, g_unit)
    if master_bias is not None:
        bias = _calibration(master_bias, "master_bias", batch)
        terms["bias"] = _term(bias, unit_factor(bias.unit, unit), batch)
        mask = _or_mask(mask, bias, xp)
    if dark_frame is not None:
        _exposure_arguments(dark_exposure, data_exposure, exposure_key)
        dark = _calibration(dark_frame, "dark_frame", batch)
        scale = unit_factor(dark.unit, unit)
        if dark_scale:
            scale = scale * _dark_scale(batch, dark, dark_exposure, data_exposure,
                                        exposure_key, exposure_unit)
        terms["dark"] = _term(dark, scale, batch)
        mask = _or_mask(mask, dark, xp)
    if master_flat is not None:
        flat = _calibration(master_flat, "master_flat", batch)
        terms["flat"], terms["flat_mask"], terms["flat_min"] = _flat_terms(
            flat, min_value, norm_value, batch)
        mask = _or_mask(mask, flat, xp)
    if apply_gain == "after":
        terms["final_gain"], unit = g, _times(unit, g_unit)
    data, sigma = batch.backend.calibrate(batch.data, batch.sigma, Arithmetic(**terms), batch.dtype)
    batch.unit = unit
    for header in batch.headers:
        add_history(header, step, batch.backend, **(history or {}))
    if mask is not None:  # a copy: the inputs' masks are never shared
        mask = xp.array(xp.broadcast_to(mask, data.shape))
    return batch.results(data, sigma, mask)


# -- the public steps -----------------------------------------------------------------------


@logged
def ccd_process(ccd, oscan=None, trim=None, error=False, master_bias=None, dark_frame=None,
                master_flat=None, bad_pixel_mask=None, gain=None, readnoise=None,
                oscan_median=True, oscan_model=None, min_value=None, dark_exposure=None,
                data_exposure=None, exposure_key=None, exposure_unit=None, dark_scale=False,
                gain_corrected=True):
    """Calibrate a raw frame (or a batch) in one pass: ccdproc's ``ccd_process``.

    The steps, in ccdproc's order: overscan subtraction, trimming, the
    uncertainty from gain and read noise, the bad-pixel mask, gain, bias,
    dark, flat (and the gain at the end instead, if `gain_corrected` is
    False). Uncertainties propagate as astropy's StdDevUncertainty does;
    masks are OR-ed. On the GPU the whole chain is one kernel.

    Parameters
    ----------
    ccd : Frame, CCDData, 2-D array; or a list of them, or a 3-D array
        A list or a 3-D array is a batch: the frames share shape and unit
        and are processed together (on the GPU in one launch).
    oscan : str, Frame, CCDData or array, optional
        The overscan region: a FITS section (``"[1:10,1:100]"``, 1-based,
        x first) or the overscan pixels themselves (single frames only).
        Subtracted row by row (ccdproc's ``overscan_axis=1``).
    trim : str, optional
        FITS section of the data to keep.
    error : bool, default False
        Create the uncertainty (:func:`create_deviation`; needs `readnoise`).
    master_bias, dark_frame, master_flat : Frame, CCDData or array, optional
        Calibration images of the trimmed shape; their units must convert
        to the data's at that step (a bias in ADU cannot be subtracted from
        gain-corrected electrons).
    bad_pixel_mask : array of bool or MaskFlag bits, optional
        Replaces the frame's mask, as in ccdproc; booleans become
        :attr:`MaskFlag.BAD_PIXEL`.
    gain : Quantity, float, header keyword or ccdproc Keyword, optional
        e.g. ``1.5 * u.electron / u.adu``.
    readnoise : Quantity or float, optional
        In the units of gain × data (electrons).
    oscan_median : bool, default True
        Median of the overscan (else the mean), NaN ignored.
    oscan_model : astropy linear model, optional
        Fitted to the overscan levels (e.g. ``Polynomial1D(2)``).
    min_value : float, optional
        Flat values below it are raised to it before normalising.
    dark_exposure, data_exposure : Quantity or float (seconds), optional
    exposure_key : str or ccdproc Keyword, optional
        Header keyword of the exposure times (default EXPTIME, then EXPOSURE).
    exposure_unit : astropy Unit, optional
        Of the exposure times in headers; default seconds.
    dark_scale : bool, default False
        Scale the dark by data_exposure / dark_exposure.
    gain_corrected : bool, default True
        True: gain-correct before bias/dark/flat (the calibration images are
        in electrons). False: multiply by the gain at the end.

    Returns
    -------
    Frame or CCDData, or a list of them for a batch
        CCDData for CCDData input, Frames otherwise, on the input's device.

    Raises
    ------
    TypeError
        Inputs of unsupported types, mixed devices, contradictory exposure
        arguments.
    ValueError
        Malformed or out-of-range sections, mismatched shapes, no read noise
        with ``error=True``, a flat whose mean is not positive.
    astropy.units.UnitsError
        Units that do not convert.

    See Also
    --------
    ccdproc.ccd_process : the reference.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from gpucal import Frame
    >>> from gpucal.calibrate import ccd_process
    >>> raw = Frame(np.full((4, 6), 1100.0), unit="adu")
    >>> raw.data[:, 4:] = 100.0                     # overscan columns 5-6
    >>> bias = Frame(np.full((4, 4), 10.0), unit="electron")
    >>> out = ccd_process(raw, oscan="[5:6,1:4]", trim="[1:4,1:4]", error=True,
    ...                   gain=2 * u.electron / u.adu, readnoise=5 * u.electron,
    ...                   master_bias=bias)
    >>> out.data[0, 0], out.unit
    (np.float32(1990.0), Unit("electron"))
    >>> float(out.uncertainty[0, 0])         # 2 × sqrt(2·1000 + 5²) / 2
    45.0
    """
    if oscan is not None and not isinstance(oscan, str):
        oscan_image, oscan_section = oscan, None
    else:
        oscan_image, oscan_section = None, oscan
    return _process(ccd, "ccd_process", oscan=oscan_image, oscan_section=oscan_section,
                    oscan_median=oscan_median, oscan_model=oscan_model, trim=trim,
                    error=error, readnoise=readnoise, bad_pixel_mask=bad_pixel_mask,
                    gain=gain, apply_gain=None if gain is None else
                    "before" if gain_corrected else "after", master_bias=master_bias,
                    dark_frame=dark_frame, dark_exposure=dark_exposure,
                    data_exposure=data_exposure, exposure_key=exposure_key,
                    exposure_unit=exposure_unit, dark_scale=dark_scale,
                    master_flat=master_flat, min_value=min_value,
                    history=dict(oscan=oscan_section, trim=trim, error=error,
                                 bias=master_bias is not None, dark=dark_frame is not None,
                                 dark_scale=dark_scale, flat=master_flat is not None,
                                 gain=None if gain is None else str(gain)))


@logged
def subtract_overscan(ccd, overscan=None, overscan_axis=1, fits_section=None, median=False,
                      model=None):
    """Subtract the overscan level, row by row (axis 1) or column by column (axis 0).

    Parameters
    ----------
    ccd : Frame, CCDData or 2-D array (or a batch, with `fits_section`)
    overscan : Frame, CCDData or array, optional
        The overscan pixels; or give `fits_section`.
    overscan_axis : {1, 0, None}, default 1
        1: average along rows (one level per row). None: along the longer
        axis of the overscan region.
    fits_section : str, optional
        The overscan region as a FITS section, e.g. ``"[4:13,1:520]"``.
    median : bool, default False
        Median instead of the mean; NaN ignored by both.
    model : astropy linear model, optional
        Fitted to the levels (``LinearLSQFitter``) and evaluated instead.

    Returns
    -------
    Frame or CCDData
        Mask and uncertainty unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.calibrate import subtract_overscan
    >>> raw = np.array([[105.0, 5.0, 5.0], [210.0, 10.0, 10.0]])
    >>> subtract_overscan(raw, fits_section="[2:3,1:2]")  # an array in: an array out
    array([[100.,   0.,   0.],
           [200.,   0.,   0.]])
    """
    if (overscan is None) == (fits_section is None):
        raise TypeError("specify either overscan or fits_section, but not both")
    return _process(ccd, "subtract_overscan", oscan=overscan, oscan_section=fits_section,
                    oscan_axis=overscan_axis, oscan_median=median, oscan_model=model,
                    history=dict(fits_section=fits_section, overscan_axis=overscan_axis,
                                 median=median))


@logged
def trim_image(ccd, fits_section=None):
    """Keep the FITS section `fits_section` of the data, mask and uncertainty.

    A WCS reference pixel (CRPIX1/2) in the header is shifted to match.
    Without `fits_section` the image is returned as it is (a copy): ccdproc's
    ``trim_image(ccd[:, :32])``, the slicing already done (a sliced CCDData's
    WCS is already shifted).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.calibrate import trim_image
    >>> trim_image(np.arange(12.0).reshape(3, 4), "[2:3,1:2]")
    array([[1., 2.],
           [5., 6.]])
    """
    return _process(ccd, "trim_image", trim=fits_section, history=dict(fits_section=fits_section))


@logged
def subtract_bias(ccd, master):
    """Subtract a master bias: data − bias, σ in quadrature, masks OR-ed.

    Raises
    ------
    ValueError
        Shapes differ.
    astropy.units.UnitsError
        The units do not convert.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.calibrate import subtract_bias
    >>> subtract_bias(np.full((2, 2), 110.0), np.full((2, 2), 10.0))
    array([[100., 100.],
           [100., 100.]])
    """
    return _process(ccd, "subtract_bias", master_bias=master)


@logged
def subtract_dark(ccd, master, dark_exposure=None, data_exposure=None, exposure_time=None,
                  exposure_unit=None, scale=False):
    """Subtract a master dark, scaled by the ratio of exposure times if `scale`.

    Parameters
    ----------
    ccd, master : Frame, CCDData or 2-D array
    dark_exposure, data_exposure : Quantity or float (in `exposure_unit`, seconds by default)
    exposure_time : str or ccdproc Keyword, optional
        Header keyword of both exposure times; default EXPTIME, then EXPOSURE.
    exposure_unit : astropy Unit, optional
    scale : bool, default False
        Subtract ``master × data_exposure / dark_exposure`` (σ scaled alike).
        Exposure times are read only when scaling.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from gpucal.calibrate import subtract_dark
    >>> out = subtract_dark(np.full((1, 2), 50.0), np.full((1, 2), 20.0),
    ...                     dark_exposure=60 * u.s, data_exposure=30 * u.s, scale=True)
    >>> out
    array([[40., 40.]])
    """
    return _process(ccd, "subtract_dark", dark_frame=master, dark_exposure=dark_exposure,
                    data_exposure=data_exposure, exposure_key=exposure_time,
                    exposure_unit=exposure_unit, dark_scale=scale, history=dict(scale=scale))


@logged
def flat_correct(ccd, flat, min_value=None, norm_value=None):
    """Divide by a flat normalised by its mean (or by `norm_value`).

    Flat values below `min_value` are raised to it first; masked flat
    pixels divide by 1 (their mask is OR-ed into the result), as in
    ccdproc 2.5. The mean ignores non-finite pixels (ccdproc's does not).

    Raises
    ------
    ValueError
        `norm_value` ≤ 0, or a flat whose mean is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.calibrate import flat_correct
    >>> flat_correct(np.full((1, 2), 100.0), np.array([[1.0, 3.0]]))
    array([[200.        ,  66.66666667]])
    """
    return _process(ccd, "flat_correct", master_flat=flat, min_value=min_value,
                    norm_value=norm_value, history=dict(min_value=min_value,
                                                        norm_value=norm_value))


@logged
def gain_correct(ccd, gain, gain_unit=None):
    """Multiply data and uncertainty by the gain; the unit becomes unit × gain unit.

    Parameters
    ----------
    gain : Quantity, float, header keyword (str) or ccdproc Keyword
    gain_unit : astropy Unit, optional
        The unit of a plain-number or header gain.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from gpucal import Frame
    >>> from gpucal.calibrate import gain_correct
    >>> out = gain_correct(Frame(np.ones((1, 1)), unit="adu"), 1.5 * u.electron / u.adu)
    >>> out.data, out.unit
    (array([[1.5]], dtype=float32), Unit("electron"))
    """
    return _process(ccd, "gain_correct", gain=gain, gain_unit=gain_unit, apply_gain="before",
                    history=dict(gain=str(gain)))


@logged
def create_deviation(ccd_data, gain=None, readnoise=None, disregard_nan=False):
    """Set the uncertainty to the CCD noise: ``sqrt(gain·data + readnoise²) / gain``.

    The data are unchanged. Negative data have a NaN uncertainty (ccdproc's
    result), or ``readnoise / gain`` with `disregard_nan`.

    Parameters
    ----------
    gain : Quantity or float, optional
        Converts the data to the read noise's unit; default 1.
    readnoise : Quantity or float
        Required.

    Examples
    --------
    >>> import numpy as np
    >>> from astropy import units as u
    >>> from gpucal import Frame
    >>> from gpucal.calibrate import create_deviation
    >>> f = Frame(np.array([[400.0, -1.0]]), unit="adu")
    >>> create_deviation(f, gain=1 * u.electron / u.adu, readnoise=3 * u.electron).uncertainty
    array([[20.22375,      nan]], dtype=float32)
    """
    return _process(ccd_data, "create_deviation", error=True, readnoise=readnoise,
                    gain=gain, disregard_nan=disregard_nan,
                    history=dict(gain=None if gain is None else str(gain),
                                 readnoise=str(readnoise), disregard_nan=disregard_nan))
