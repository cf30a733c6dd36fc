"""What every product records about how it was made (HISTORY cards)."""

from ._version import __version__


def _fmt(value):
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "/".join(_fmt(v) for v in value)
    return str(value)


def add_history(header, step, backend, **params):
    """Add one HISTORY card: gpucal version, step, its parameters and where it ran.

    Parameters that are None or False are left out.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.backend import load_backend
    >>> h = fits.Header()
    >>> add_history(h, "combine", load_backend("numpy"), method="median", nlow=None)
    >>> str(h["HISTORY"][0]).endswith("combine: method=median [numpy on cpu]")
    True
    """
    text = ", ".join(f"{k}={_fmt(v)}" for k, v in params.items()
                     if v is not None and v is not False)
    header.add_history(f"gpucal {__version__} {step}: {text} [{backend.name} on {backend.device}]")
