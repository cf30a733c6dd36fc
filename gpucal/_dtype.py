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


def refuse_complex(dtype, name):
    """Refuse complex data, whose imaginary part a conversion to float would drop silently.

    Parameters
    ----------
    dtype : dtype
        Of the data `name` gives.
    name : str
        Names the input in the message.

    Raises
    ------
    TypeError
        If `dtype` is complex; the message names `name` and the dtype.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(f"{name}: got complex numbers ({dtype}); gpucal works on real numbers "
                        "and would drop the imaginary part: pass the real part, the imaginary "
                        "part or the modulus")
