"""gpucal: GPU-accelerated CCD reduction with a NumPy/SciPy fallback.

Functions run on the device of their input arrays (CuPy → GPU, NumPy → CPU);
the device is chosen where data enter: ``Frame.read(..., device=)``, the CLI's
``--device`` and the ``GPUCAL_DEVICE`` environment variable.  Importing gpucal
never imports CuPy.
"""

from ._version import __version__
from .backend import available_backends, get_backend, to_device
from .badpixels import ccdmask
from .combine import Combiner, combine
from .device import GPUStatus, gpu_available, gpu_status, resolve_device
from .errors import FrameError, GPUUnavailableError
from .flags import MaskFlag
from .frame import Frame
from .masks import combine_masks, hot_pixel_mask, read_mask, static_mask, write_mask
from .stats import sigma_clip

__all__ = [
    "Combiner",
    "Frame",
    "FrameError",
    "GPUStatus",
    "GPUUnavailableError",
    "MaskFlag",
    "__version__",
    "available_backends",
    "ccdmask",
    "combine",
    "combine_masks",
    "get_backend",
    "gpu_available",
    "gpu_status",
    "hot_pixel_mask",
    "read_mask",
    "resolve_device",
    "sigma_clip",
    "static_mask",
    "to_device",
    "write_mask",
]
