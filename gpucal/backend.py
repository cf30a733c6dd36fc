"""Which backend computes, and moving arrays between backends.

Compute follows the data: a step runs on the backend that owns its input
arrays. CuPy arrays are recognised without importing CuPy: if CuPy was never
imported, nothing can be a CuPy array.
"""

import functools
import sys

import numpy as np

from . import _xp
from ._xp import Backend
from .device import gpu_available, resolve_device

__all__ = ["Backend", "available_backends", "backend_for_device", "get_backend",
           "load_backend", "move", "to_device"]


@functools.cache
def load_backend(name):
    """Return the backend object called `name` (``"numpy"`` or ``"cupy"``).

    ``"cupy"`` imports CuPy; it raises GPUUnavailableError where no GPU is usable.
    """
    if name == "numpy":
        return _xp.BACKEND
    if name == "cupy":
        resolve_device("gpu")  # a clear error instead of a CUDA traceback
        from . import _cuda

        return _cuda.BACKEND
    raise ValueError(f"unknown backend {name!r}; expected 'numpy' or 'cupy'")


def available_backends():
    """Names of the backends usable in this process: ``"numpy"``, and ``"cupy"`` with a GPU."""
    return ("numpy", "cupy") if gpu_available() else ("numpy",)


def _is_cupy(x):
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(x, cupy.ndarray)


def get_backend(*arrays):
    """Return the backend of the given arrays: compute follows the data.

    Parameters
    ----------
    *arrays : array_like or None
        NumPy or CuPy arrays; None, scalars and other objects are ignored.

    Returns
    -------
    Backend
        The CuPy backend if the arrays are CuPy arrays, else the NumPy one.

    Raises
    ------
    TypeError
        When CuPy and NumPy arrays are mixed: gpucal never moves data behind
        your back. Move them to one device with :func:`gpucal.to_device`.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.backend import get_backend
    >>> get_backend(np.zeros(3)).name
    'numpy'
    """
    places = {"gpu" if _is_cupy(a) else "cpu"
              for a in arrays if isinstance(a, np.ndarray) or _is_cupy(a)}
    if len(places) > 1:
        raise TypeError("mixed CuPy (GPU) and NumPy (CPU) inputs; move them to one "
                        "device first, e.g. with gpucal.to_device(x, 'gpu')")
    return load_backend("cupy" if "gpu" in places else "numpy")


def backend_for_device(device=None):
    """Return the backend object that computes on `device` (see resolve_device)."""
    return load_backend("cupy" if resolve_device(device) == "gpu" else "numpy")


def to_device(x, device):
    """Move an array or a :class:`~gpucal.Frame` to the CPU or the GPU.

    Parameters
    ----------
    x : array_like or Frame
        NumPy or CuPy array, anything ``numpy.asarray`` accepts, or a Frame.
    device : {"cpu", "gpu", "auto"} or None
        Where the result should live (see :func:`resolve_device`).

    Returns
    -------
    numpy.ndarray, cupy.ndarray or Frame
        `x` itself when it is already there; otherwise a copy on `device`
        (uploads are converted to native byte order first).

    Examples
    --------
    >>> import numpy as np, gpucal
    >>> gpucal.to_device(np.arange(3.0), "cpu")
    array([0., 1., 2.])
    """
    if not (isinstance(x, np.ndarray) or _is_cupy(x)) and hasattr(x, "to_device"):
        return x.to_device(device)  # a Frame moves itself (frame.py builds on this module)
    return move(x, backend_for_device(device))


def move(x, backend):
    """`x` as an array of `backend` (no copy when it already is one)."""
    source = get_backend(x)
    return x if source is backend else backend.asarray(source.to_numpy(x))
