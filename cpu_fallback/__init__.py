"""gpucal's NumPy/SciPy backend: every primitive, the CPU runtime and the GPU oracle.

Import :mod:`gpucal`, not this package; gpucal picks the backend that matches
its input arrays.  This package never imports CuPy or gpucal.
"""

from .backend import BACKEND, NumpyBackend

__all__ = ["BACKEND", "NumpyBackend"]
