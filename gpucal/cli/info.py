"""``gpucal info``: versions, backends and GPUs, or why there are none."""

import os
import platform
import sys

from .._version import __version__
from ..device import ENV_VAR, gpu_status, resolve_device
from ..errors import GPUUnavailableError


def _gib(nbytes):
    return f"{nbytes / 2**30:.1f} GiB"


def info_lines():
    """What ``gpucal info`` prints: versions, backends, GPUs or why there are none."""
    import astropy
    import numpy
    import scipy

    status = gpu_status()
    rows = [
        ("gpucal", __version__),
        ("Python", f"{platform.python_version()} ({sys.executable})"),
        ("NumPy", numpy.__version__),
        ("SciPy", scipy.__version__),
        ("astropy", astropy.__version__),
        ("CuPy", status.cupy_version or "not installed"),
        ("CUDA", f"runtime {status.cuda_runtime or '-'}, driver {status.cuda_driver or '-'}"
         if status.cupy_version else "-"),
        ("backends", "numpy (CPU): available"),
        ("", "cupy (GPU): " + ("available" if status.available
                               else f"unavailable: {status.reason}")),
    ]
    for dev in status.devices:
        rows.append((f"GPU {dev.index}", f"{dev.name}, compute capability "
                     f"{dev.compute_capability}, {_gib(dev.total_memory)} total"
                     + ("" if dev.free_memory is None else f", {_gib(dev.free_memory)} free")))
    if not status.devices:
        rows.append(("GPU", f"none: {status.reason}"))
    setting = os.environ.get(ENV_VAR)
    try:
        chosen = resolve_device()
    except (ValueError, GPUUnavailableError) as exc:
        chosen = f"error: {exc}"
    rows.append(("device", f"{ENV_VAR}={setting!r} → {chosen}" if setting
                 else f"auto → {chosen} ({ENV_VAR} not set)"))
    if status.cupy_version:
        rows.append(("kernel cache", os.environ.get("CUPY_CACHE_DIR",
                                                    os.path.expanduser("~/.cupy/kernel_cache"))))
    width = max(len(k) for k, _ in rows)
    return [f"{k:<{width}}  {v}" for k, v in rows]


def _cmd_info(args):
    print("\n".join(info_lines()))
    return 0


def add_command(sub):
    """Add ``info`` to the ``gpucal`` parser's subcommands."""
    p = sub.add_parser("info", help="versions, backends and GPUs (or why there are none)")
    p.set_defaults(func=_cmd_info)
