"""What every product records about how it was made (HISTORY cards)."""

import contextvars

from ._version import __version__

# False while a step runs with ``add_keyword=None/False`` (ccdproc's "no logging"): then
# the result's header gets nothing, not even gpucal's HISTORY card.
RECORDING = contextvars.ContextVar("gpucal_recording", default=True)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def add_history(header, step, backend, **params):
    """Add one HISTORY card: gpucal version, step, its parameters and where it ran.

    Parameters that are None or False are left out. Nothing is added while a
    step runs with ``add_keyword=None`` or False (see :data:`RECORDING`).

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.backend import load_backend
    >>> h = fits.Header()
    >>> add_history(h, "combine", load_backend("numpy"), method="median", nlow=None)
    >>> str(h["HISTORY"][0]).endswith("combine: method=median [numpy on cpu]")
    True
    """
    if not RECORDING.get():
        return
    text = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()
                     if v is not None and v is not False)
    header.add_history(f"gpucal {__version__} {step}: {text} [{backend.name} on {backend.device}]")
