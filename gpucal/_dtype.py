"""gpucal's dtype policy: frames are floating point, float32 unless asked otherwise."""

import numpy as np


def float_dtype(dtype, src):
    """The floating dtype for data of dtype `src`.

    `dtype` None keeps a floating `src` and turns integers into float64 (exact
    for FITS integers up to 32 bits); otherwise `dtype` must be floating.
    """
    if dtype is None:
        src = np.dtype(src)
        return src if src.kind == "f" else np.dtype(np.float64)
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"dtype must be a floating-point type; got {dtype}")
    return dtype
