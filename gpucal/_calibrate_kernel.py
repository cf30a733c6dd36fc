"""The operands of the fused calibration kernel, shared by its CuPy launcher and the host
test harness that compiles the same C++ on the CPU.  Imports no CuPy: `xp` is the array
module the operands are made with."""

import numpy as np

#: Per-pixel operands in the kernel's order (then flat_masked, the flags and the scalars).
ARRAYS = ("pixel", "sigma", "overscan", "bias", "bias_sigma", "bias_scale", "dark",
          "dark_sigma", "dark_scale", "flat", "flat_sigma")
FLAGS = ("has_sigma", "make_deviation", "disregard_nan", "has_flat_min", "has_flat_sigma")
SCALARS = ("readnoise", "deviation_gain", "gain", "flat_scale", "flat_min", "final_gain")


def operands(xp, data, sigma, arithmetic, dtype):
    """(arrays, flat_masked, flags, scalars) for an Arithmetic (gpucal._xp.arithmetic);
    absent steps get neutral 0-d values.

    Arrays broadcast against the data; flags are int32, scalars of `dtype`.
    """
    dtype = np.dtype(dtype)

    def arr(a, neutral=0):
        return xp.asarray(neutral if a is None else a, dtype)

    def term(t):  # subtracted: absent is 0 × 1
        if t is None:
            return arr(None), arr(None), arr(None, 1)
        return arr(t.data), arr(t.sigma), arr(t.scale)

    a = arithmetic
    flat = a.flat
    arrays = [arr(data), arr(sigma), arr(a.overscan), *term(a.bias),
              *term(a.dark), arr(None if flat is None else flat.data, 1),
              arr(None if flat is None else flat.sigma)]
    masked = xp.asarray(False if a.flat_mask is None else a.flat_mask, bool)
    flags = [np.int32(v) for v in (sigma is not None, a.readnoise is not None,
                                   a.disregard_nan, a.flat_min is not None,
                                   flat is not None and flat.sigma is not None)]
    scalars = [dtype.type(v) for v in (
        a.readnoise or 0, a.deviation_gain, a.gain,
        1 if flat is None else flat.scale, a.flat_min or 0, a.final_gain)]
    return arrays, masked, flags, scalars
