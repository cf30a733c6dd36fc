"""Code written once for NumPy and CuPy arrays (the array namespace ``xp``): gpucal's backend.

* :mod:`.backend` — :class:`Backend`, cpu_fallback's primitives plus the
  methods below; its instance is the CPU backend, and the CuPy backend
  (``gpucal._cuda``) subclasses it.
* :mod:`.stack` — per-pixel rejection and combination of a stack of frames.
* :mod:`.arithmetic` — ccd_process's per-pixel calibration arithmetic.

Imports neither CuPy nor the steps.
"""

from .backend import BACKEND, Backend

__all__ = ["BACKEND", "Backend"]
