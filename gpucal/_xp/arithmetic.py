"""Calibration arithmetic per pixel: overscan, deviation, gain, bias, dark, flat.

:func:`apply` is the whole of ccdproc's ``ccd_process`` arithmetic in one pass
over the pixels, with astropy's StdDevUncertainty propagation (no
correlation), written once for NumPy and CuPy (``xp``). gpucal.calibrate
decides *what* to apply (units, exposures, normalisation) and hands the
numbers over as an :class:`Arithmetic`; the GPU runs the same arithmetic as
one fused kernel (``gpucal/_cuda/cuda/calibrate_pixel.cuh``).

Shapes: the data are (..., ny, nx) — one frame or a batch; calibration images
are (ny, nx); per-frame numbers are scalars or arrays broadcastable to the data
(e.g. (n, 1, 1)).
"""

from typing import Any, NamedTuple

import numpy as np


class Term(NamedTuple):
    """One calibration image: value = scale × data, deviation = |scale| × sigma."""

    data: Any
    sigma: Any = None
    scale: Any = 1.0  # unit conversion × exposure ratio; per frame as (n, 1, 1)


class Arithmetic(NamedTuple):
    """What :func:`apply` does, in ccd_process's order; None or 1 skips a step."""

    overscan: Any = None  # subtracted first; broadcastable to the data
    readnoise: Any = None  # create the deviation, in units of deviation_gain × data
    deviation_gain: float = 1.0
    disregard_nan: bool = False  # negative data: deviation rn/g instead of NaN
    gain: float = 1.0  # multiply data and deviation, before bias
    bias: Term = None
    dark: Term = None
    flat: Term = None  # scale = 1/normalisation
    flat_mask: Any = None  # True: the normalised flat is 1 there (ccdproc ≥ 2.5)
    flat_min: Any = None  # flat values below are raised to it, before normalising
    final_gain: float = 1.0  # multiply at the end (ccd_process's gain_corrected=False)

    def has_deviation(self, sigma):
        """Whether the result has an uncertainty, given the input's `sigma`."""
        return (sigma is not None or self.readnoise is not None
                or any(t is not None and t.sigma is not None
                       for t in (self.bias, self.dark, self.flat)))


def normalise_flat(xp, arithmetic, dtype):
    """`arithmetic` with its flat replaced by the divisor itself: min_value, scale and mask
    applied."""
    flat = arithmetic.flat
    if flat is None:
        return arithmetic
    f = flat.data.astype(dtype, copy=True)
    if arithmetic.flat_min is not None:
        f[f < arithmetic.flat_min] = arithmetic.flat_min  # NaN stays NaN, as in ccdproc
    f *= dtype.type(flat.scale)
    if arithmetic.flat_mask is not None:
        f[arithmetic.flat_mask] = 1  # its deviation is kept, as in ccdproc
    sigma = None if flat.sigma is None else flat.sigma * dtype.type(abs(flat.scale))
    return arithmetic._replace(flat=Term(f, sigma), flat_min=None, flat_mask=None)


def apply(xp, data, sigma, arithmetic, out, out_sigma):
    """Calibrate `data` (and its deviation `sigma`, or None) into `out`/`out_sigma`.

    `out_sigma` is None when `arithmetic` makes no deviation. Its flat must
    have been through :func:`normalise_flat` (callers working in bands do that
    once).
    """
    dtype = out.dtype
    x = out
    if arithmetic.overscan is None:
        x[...] = data
    else:
        xp.subtract(data, arithmetic.overscan, out=x, casting="unsafe")
    var = None
    if out_sigma is not None:
        var = out_sigma
        if sigma is None:
            var[...] = 0
        else:
            xp.square(sigma, out=var, casting="unsafe")
    if arithmetic.readnoise is not None:
        g = dtype.type(arithmetic.deviation_gain)
        counts = x * g
        counts[counts < 0] = 0 if arithmetic.disregard_nan else np.nan
        # var = (sqrt(g·x + rn²) / g)², ccdproc's deviation squared
        xp.divide(counts + dtype.type(arithmetic.readnoise) ** 2, g * g, out=var)
    if arithmetic.gain != 1:
        x *= dtype.type(arithmetic.gain)
        if var is not None:
            var *= dtype.type(arithmetic.gain) ** 2
    for term in (arithmetic.bias, arithmetic.dark):
        if term is None:
            continue
        scale = xp.asarray(term.scale, dtype)
        x -= term.data * scale
        if term.sigma is not None:
            var += xp.square(term.sigma * scale)
    if arithmetic.flat is not None:
        f, f_sigma = arithmetic.flat.data, arithmetic.flat.sigma
        if var is not None:
            # astropy: σ² = (σx²·F² + x²·σF²) / F⁴
            f2 = f * f
            var *= f2
            if f_sigma is not None:
                var += xp.square(x * f_sigma)
            var /= f2 * f2
        x /= f
    if arithmetic.final_gain != 1:
        x *= dtype.type(arithmetic.final_gain)
        if var is not None:
            var *= dtype.type(arithmetic.final_gain) ** 2
    if var is not None:
        xp.sqrt(var, out=var)


def rows(arithmetic, start, stop, ny):
    """The arithmetic for rows start:stop of the data (arrays spanning the ny rows are sliced)."""
    def cut(a):
        if getattr(a, "ndim", 0) >= 2 and a.shape[-2] == ny:
            return a[..., start:stop, :]
        return a

    def cut_term(t):
        return None if t is None else Term(cut(t.data), cut(t.sigma), t.scale)

    a = arithmetic
    return a._replace(overscan=cut(a.overscan), flat_mask=cut(a.flat_mask),
                      bias=cut_term(a.bias), dark=cut_term(a.dark), flat=cut_term(a.flat))
