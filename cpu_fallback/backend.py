"""The backend contract and its NumPy/SciPy implementation.

gpucal writes every algorithm once, against a small set of *primitives*: the
operations that differ between devices (array placement, and later the
windowed filters, stack reductions and fused loops that the GPU wants as
kernels).  :class:`NumpyBackend` is both the contract and the CPU runtime: each
method documents what a primitive must do, and implements it with NumPy/SciPy.
The CuPy backend (``gpucal._cuda``) subclasses it and overrides what it
accelerates; every override is parity-tested against the method here.

This module imports neither CuPy nor gpucal.
"""

import numpy as np


class NumpyBackend:
    """NumPy/SciPy implementation of gpucal's backend primitives.

    Attributes
    ----------
    name : str
        ``"numpy"``; the CuPy backend's is ``"cupy"``.
    device : str
        ``"cpu"`` or ``"gpu"``: where this backend's arrays live.
    xp : module
        The array namespace (``numpy`` or ``cupy``) for the operations NumPy
        and CuPy share; anything outside that subset is a primitive.
    """

    name = "numpy"
    device = "cpu"
    xp = np

    def asarray(self, a, dtype=None):
        """Return `a` as an array of this backend, in native byte order.

        FITS data are big-endian; the result is always native-endian so that
        the GPU backend can upload it (CuPy silently mangles big-endian input).
        No copy is made when `a` is already a native array of `dtype`.
        """
        a = np.asarray(a)
        dtype = np.dtype(a.dtype if dtype is None else dtype)
        return np.asarray(a, dtype=dtype.newbyteorder("="))

    def to_numpy(self, a):
        """Return `a` as a NumPy array on the host (no copy on the CPU)."""
        return np.asarray(a)

    def synchronize(self):
        """Wait for queued device work; timing code calls it. No-op on the CPU."""

    def __repr__(self):
        return f"<gpucal backend {self.name!r} on {self.device}>"


BACKEND = NumpyBackend()
