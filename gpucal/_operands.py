"""The operands of calibration steps besides images: units, gains, exposure times, and
ccdproc's keyword log (``add_keyword``).

ccdproc takes astropy Quantities; gpucal also takes plain numbers. Images are
read, and results given back, by :mod:`gpucal.sources`.
"""

import functools
import inspect
import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits

from .errors import MissingKeywordError
from .frame import Frame
from .provenance import RECORDING
from .sources import is_ccddata

EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE")


# ccdproc's names for its keyword log (ccdproc.core._short_names, 2.5.1)
SHORT_NAMES = {"ccd_process": "ccdproc", "create_deviation": "creatvar",
               "flat_correct": "flatcor", "gain_correct": "gaincor", "subtract_bias": "subbias",
               "subtract_dark": "subdark", "subtract_overscan": "suboscan",
               "trim_image": "trimim"}


def _placeholder(value):
    """ccdproc's rendering of an argument in the log: arrays and images by their type."""
    if isinstance(value, (list, tuple)) and any(
            isinstance(v, Frame) or is_ccddata(v) or hasattr(v, "shape") for v in value):
        many = True  # a batch of images
    elif isinstance(value, u.Quantity):
        many = not value.isscalar
    elif isinstance(value, Frame) or is_ccddata(value) or hasattr(value, "__array__") and (
            hasattr(value, "shape")):
        many = getattr(value, "size", 2) != 1 if not isinstance(value, Frame) else True
    else:
        many = False
    return f"<{type(value).__name__}>" if many else value


def _insert(target, key, value):
    """One logged item into a header or meta, as ccdproc's _insert_in_metadata_fits_safe."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)  # long keys: HIERARCH
        if isinstance(target, fits.Header) and isinstance(value, str):
            value = value.encode("ascii", "replace").decode()  # FITS: printable ASCII only
        if key in SHORT_NAMES:
            short = SHORT_NAMES[key]
            entry = (short, "Shortened name for ccdproc command")
            if isinstance(target, fits.Header):
                target[f"HIERARCH {key.upper()}"] = entry
            else:
                target[key] = entry
            target[short] = value
        else:
            target[key] = value


def logged(func):
    """Give a step ccdproc's ``add_keyword`` (its ``log_to_metadata``).

    ``add_keyword=True`` (default) records the call under the function's name
    (``{name: (short name, comment), short name: "arg=value, ..."}``, arrays as
    ``<type>``); a string adds that key with no value; a ccdproc ``Keyword``
    its name and value; a mapping its items; None or False adds nothing —
    not even gpucal's HISTORY card, so the result's meta has the input's keys.
    Applied to a CCDData's meta or a Frame's header, to each frame of a
    batch; array results (tuples) get nothing.
    """
    params = list(inspect.signature(func).parameters)

    @functools.wraps(func)
    def wrapper(*args, add_keyword=True, **kwargs):
        token = RECORDING.set(bool(add_keyword))
        try:
            result = func(*args, **kwargs)
        finally:
            RECORDING.reset(token)
        if not add_keyword:
            return result
        if add_keyword is True:
            items = list(zip(params, args)) + list(kwargs.items())
            text = ", ".join(f"{k}={_placeholder(v)}" for k, v in items).replace("\n", "")
            entries = {func.__name__: text}
        elif isinstance(add_keyword, str):
            entries = {add_keyword: None}
        elif hasattr(add_keyword, "name") and hasattr(add_keyword, "value") and not hasattr(
                add_keyword, "items"):
            entries = {add_keyword.name: add_keyword.value}
        else:
            entries = add_keyword  # a mapping (anything else: AttributeError, as ccdproc)
        for out in result if isinstance(result, list) else [result]:
            target = out.header if isinstance(out, Frame) else getattr(out, "meta", None)
            if target is None:
                continue
            for key, value in entries.items():
                _insert(target, key, value)
        return result

    return wrapper


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
