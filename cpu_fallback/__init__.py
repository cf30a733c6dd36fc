"""gpucal's NumPy/SciPy/C++ primitives: the CPU runtime and the GPU kernels' oracle.

Import :mod:`gpucal`, not this package; gpucal's backends build on
:class:`NumpyBackend` and pick the one that matches the input arrays. This
package never imports CuPy or gpucal.
"""

from .backend import NumpyBackend

__all__ = ["NumpyBackend"]
