"""The options of a combination, checked once for combine and Combiner, and its result.

Scale factors, weights, clip_extrema's ranks and sigma clipping's statistics
as the backend's primitives take them; the combined Frame with its mask
(:attr:`MaskFlag.NO_DATA` where every value was rejected), NCOMBINE and HISTORY.
"""

import math

import numpy as np

from ._dtype import refuse_complex
from .backend import get_backend, move
from .flags import MASK_DTYPE, MaskFlag
from .frame import Frame
from .provenance import add_history
from .sources import to_user
from .stats import stat_name, statistic

__all__ = ["DEFAULT_DTYPE", "METHODS", "check_method", "checked_weights", "combined_frame",
           "extrema_ranks", "history_of", "scale_factors", "sigma_options"]

METHODS = ("average", "median", "sum")
SCALE_STATISTICS = ("mode", "median", "mean")
DEFAULT_DTYPE = np.dtype(np.float32)


def check_method(method):
    """Refuse a method that is not one of METHODS (ccdproc's message)."""
    if method not in METHODS:
        raise ValueError(f"unrecognised combine method {method!r}: method must be one of "
                         f"{', '.join(map(repr, METHODS))}")


def scale_factors(scale, source, dtype):
    """Per-frame multipliers (float64, host) from `scale` (see `combine`)."""
    if scale is None:
        return None
    if isinstance(scale, str):
        if scale not in SCALE_STATISTICS:
            raise ValueError(f"scale must be one of {', '.join(map(repr, SCALE_STATISTICS))}, "
                             f"an array or a callable; got {scale!r}")
        values = [statistic(scale, *source.frame(i, dtype)) for i in range(source.n)]
        for i, v in enumerate(values):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"frames[{i}]: its {scale} is {v}; scale={scale!r} divides "
                                 "each frame by it, which needs a positive number")
        return np.array([1.0 / v for v in values])
    if callable(scale):  # as ccdproc.combine calls it: on each frame's NumPy data, either device
        values = [scale(to_user(source.frame(i, dtype)[0], None, source.backend).data)
                  for i in range(source.n)]
        for value in values:  # float() would drop a NumPy complex's imaginary part
            refuse_complex(getattr(value, "dtype", type(value)), "scale")
        factors = [float(v) for v in values]
    else:
        factors = np.asarray(get_backend(scale).to_numpy(scale))
        refuse_complex(factors.dtype, "scale")
        if factors.shape != (source.n,):
            raise ValueError(f"scale: expected {source.n} factors, one per frame; got shape "
                             f"{factors.shape}")
    factors = np.asarray(factors, dtype=np.float64)
    if not np.isfinite(factors).all():
        raise ValueError(f"scale: every factor must be finite; got {factors}")
    return factors


def checked_weights(weights, source, backend):
    """Weights as float64 on the backend: (N,) per frame or (N, ny, nx) per pixel."""
    if weights is None:
        return None
    w = move(weights, backend) if hasattr(weights, "shape") else backend.asarray(weights)
    refuse_complex(w.dtype, "weights")
    if w.dtype.kind != "f":  # floating weights are taken to float64 chunk by chunk, not copied
        w = w.astype(np.float64)
    if w.shape not in ((source.n,), (source.n,) + tuple(source.shape)):
        raise ValueError(f"weights: expected shape ({source.n},) or "
                         f"{(source.n,) + tuple(source.shape)}; got {w.shape}")
    if not bool(backend.xp.isfinite(w).all()):
        raise ValueError("weights: every weight must be finite")
    return w


def extrema_ranks(n, nlow, nhigh):
    """Validated (nlow, nhigh) for clip_extrema; None counts as 0 (ccdproc)."""
    nlow, nhigh = int(nlow or 0), int(nhigh or 0)
    if not (0 <= nlow <= n and 0 <= nhigh <= n):
        raise ValueError(f"clip_extrema: nlow={nlow} and nhigh={nhigh} must be between 0 and "
                         f"the number of frames ({n})")
    return nlow, nhigh


def sigma_options(low_thresh, high_thresh, func, dev_func, maxiters):
    """Keyword arguments of the sigma-clipping primitives; thresholds of None or 0 mean 3."""
    if maxiters is not None and int(maxiters) < 0:
        raise ValueError(f"maxiters must be positive (or None: until nothing changes); "
                         f"got {maxiters}")
    return dict(sigma_lower=float(low_thresh or 3.0), sigma_upper=float(high_thresh or 3.0),
                maxiters=int(maxiters) if maxiters else None,
                cenfunc=stat_name(func, "cenfunc"), stdfunc=stat_name(dev_func, "stdfunc"))


def combined_frame(value, uncertainty, nkept, source, backend, dtype, history):
    """The result as a Frame: the source's header and unit, NO_DATA where nothing was kept."""
    xp = backend.xp
    no_data = xp.where(nkept == 0, MASK_DTYPE.type(MaskFlag.NO_DATA), MASK_DTYPE.type(0))
    frame = Frame(value.astype(dtype, copy=False), no_data,
                  uncertainty.astype(dtype, copy=False), source.header, source.unit, dtype=None)
    frame.header["NCOMBINE"] = (source.n, "number of frames combined")
    add_history(frame.header, "combine", backend, **history)
    return frame



def history_of(rejection):
    """The rejection options for the HISTORY card."""
    out = {}
    if rejection["minmax"] is not None:
        out["minmax"] = rejection["minmax"]
    if rejection["extrema"] is not None:
        out["clip_extrema"] = rejection["extrema"]
    if rejection["sigma"] is not None:
        s = rejection["sigma"]
        out["sigma_clip"] = (s["sigma_lower"], s["sigma_upper"], s["cenfunc"], s["stdfunc"])
        out["maxiters"] = s["maxiters"] or "converge"
    return out

