"""gpucal: GPU-accelerated CCD reduction with a NumPy/SciPy fallback.

Functions run on the device of their input arrays (CuPy → GPU, NumPy → CPU);
the device is chosen where data enter: ``Frame.read(..., device=)``, the CLI's
``--device`` and the ``GPUCAL_DEVICE`` environment variable.  Importing gpucal
never imports CuPy.
"""

from ._version import __version__
from .backend import available_backends, get_backend, to_device
from .badpixels import ccdmask
from .calibrate import (ccd_process, create_deviation, flat_correct, gain_correct,
                        subtract_bias, subtract_dark, subtract_overscan, trim_image)
from .combine import Combiner, combine
from .cosmics import cosmicray_lacosmic, detect_cosmics
from .device import GPUStatus, gpu_available, gpu_status, resolve_device
from .errors import FrameError, GPUUnavailableError, MissingKeywordError, OutputBusyError
from .pipeline.execute import reduce
from .flags import MaskFlag
from .frame import Frame
from .masks import combine_masks, hot_pixel_mask, read_mask, static_mask, write_mask
from .masters import make_master_bias, make_master_dark, make_master_flat
from .robust import robust_stats
from .sections import parse_section
from .stats import sigma_clip

__all__ = [
    "Combiner",
    "Frame",
    "FrameError",
    "GPUStatus",
    "GPUUnavailableError",
    "MaskFlag",
    "MissingKeywordError",
    "OutputBusyError",
    "__version__",
    "available_backends",
    "ccd_process",
    "ccdmask",
    "combine",
    "combine_masks",
    "cosmicray_lacosmic",
    "create_deviation",
    "detect_cosmics",
    "flat_correct",
    "gain_correct",
    "get_backend",
    "gpu_available",
    "gpu_status",
    "hot_pixel_mask",
    "make_master_bias",
    "make_master_dark",
    "make_master_flat",
    "parse_section",
    "read_mask",
    "reduce",
    "resolve_device",
    "robust_stats",
    "sigma_clip",
    "static_mask",
    "subtract_bias",
    "subtract_dark",
    "subtract_overscan",
    "to_device",
    "trim_image",
    "write_mask",
]
