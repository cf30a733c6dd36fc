"""Reading the operands of calibration steps: images, units, gains, exposure times.

ccdproc takes CCDData and astropy Quantities; gpucal also takes Frames, bare
arrays and plain numbers, and answers each with the same kind of result.
"""

import numpy as np
from astropy import units as u

from ._image import is_ccddata
from .errors import FrameError, MissingKeywordError
from .frame import Frame

EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE")


def as_frame(image, name):
    """(Frame, kind) for a Frame, CCDData or 2-D array; `kind` says what to give back.

    CCDData and arrays keep their floating dtype (integers become float64),
    as ccdproc computes in the input's precision. Nothing is copied that
    need not be: the steps never modify their inputs.
    """
    if isinstance(image, Frame):
        return image, "frame"
    if is_ccddata(image):
        kind, make = "ccddata", Frame.from_ccddata
    elif hasattr(image, "__array__") or hasattr(image, "__cuda_array_interface__"):
        kind, make = "array", Frame
    else:
        raise TypeError(f"{name}: expected a Frame, CCDData or 2-D array; "
                        f"got {type(image).__name__}")
    try:
        return make(image, dtype=None), kind
    except (FrameError, TypeError) as exc:  # Frame's messages name "data": say which operand
        raise type(exc)(f"{name}: {exc}") from None


def give_back(frame, kind):
    """The result as the kind of object the caller passed: CCDData for CCDData, else a Frame."""
    return frame.to_ccddata() if kind == "ccddata" else frame


def unit_factor(unit, to, what="calibration image"):
    """Multiplier taking values in `unit` to `to`; 1 when either is unknown (None).

    Raises
    ------
    astropy.units.UnitsError
        When the units do not convert (ccdproc's message).
    """
    if unit is None or to is None:
        return 1.0
    try:
        return float(u.Unit(unit).to(u.Unit(to)))
    except u.UnitConversionError:
        raise u.UnitsError(f"Unit '{to}' of the uncalibrated image does not match unit "
                           f"'{unit}' of the {what}") from None


def quantity(value, unit, header, name):
    """(number, unit or None) of a Quantity, a number (+ `unit`), a header keyword or a ccdproc Keyword.

    A string is a keyword of `header`; its value takes `unit`.

    Raises
    ------
    MissingKeywordError
        If the keyword is not in `header`.
    ValueError
        If the value is not finite, or the keyword's card holds no number (the
        message names `name`, the keyword and the card's value).
    TypeError
        If `value` itself is neither a number nor a Quantity.
    """
    key = None
    if hasattr(value, "value_from"):  # ccdproc.Keyword
        value = value.value_from(header)
    elif isinstance(value, str):
        if header is None or value not in header:
            raise MissingKeywordError(f"{name}: keyword {value!r} is not in the header")
        key, value = value, header[value]
    if isinstance(value, u.Quantity):
        if unit is not None:
            value = value.to(unit)
        return float(value.value), value.unit
    card = None if key is None else f"{name}: {key} = {value!r} in the header"
    try:
        number = float(value)
    except (TypeError, ValueError):
        if card is not None:  # bad data, not a bad call
            raise ValueError(f"{card} is not a number") from None
        raise TypeError(f"{name}: expected a number or an astropy Quantity; "
                        f"got {value!r}") from None
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite; got {number}" if card is None
                         else f"{card} is not finite")
    return number, None if unit is None else u.Unit(unit)


def check_square(value, dtype, name):
    """Refuse a noise whose square overflows `dtype`: the noise model would be inf everywhere.

    Parameters
    ----------
    value : float
        A read noise, in the unit the model squares it in.
    dtype : floating dtype
        The precision of the model's arithmetic (float32 for L.A.Cosmic and
        gpucal's frames by default).
    name : str
        Names the value in the message.

    Raises
    ------
    ValueError
        If ``value**2`` is not finite in `dtype`.
    """
    with np.errstate(over="ignore"):
        square = np.square(np.asarray(value, dtype))
    if not np.isfinite(square):
        raise ValueError(f"{name} = {value:g} is too large: its square overflows "
                         f"{np.dtype(dtype)}, so the noise would be infinite everywhere (an "
                         "all-inf uncertainty, no cosmic ray found)")


def positive_seconds(value, unit=u.s, what="exposure time"):
    """An exposure time in seconds (a Quantity, or a number in `unit`); it must be positive."""
    seconds = u.Quantity(value, unit).to_value(u.s)
    if not np.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{what} must be positive; got {value!r}")
    return seconds


def exposure_seconds(header, key=None, unit=u.s, what="frame"):
    """Exposure time of a frame in seconds, from its header.

    `key` None tries EXPTIME then EXPOSURE. The value is in `unit` unless it
    is a Quantity already.
    """
    keys = EXPOSURE_KEYS if key is None else (key,)
    found = next((k for k in keys if header is not None and k in header), None)
    if found is None:
        raise MissingKeywordError(f"{what}: no exposure time in the header (looked for "
                                  f"{' or '.join(keys)}); pass the exposure time explicitly")
    return positive_seconds(header[found], unit, f"{what}: exposure time {found}")
