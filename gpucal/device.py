"""Where computation runs: GPU detection and ``device=`` resolution.

The device is chosen only at the edges (reading files, the pipeline, the CLI);
library functions run wherever their input arrays live.  ``device`` is one of
``"auto"`` (the GPU when CuPy sees one, else the CPU), ``"cpu"`` or ``"gpu"``;
``None`` means the ``GPUCAL_DEVICE`` environment variable, or ``"auto"``.
"""

import functools
import logging
import os
from dataclasses import dataclass, field

from .errors import GPUUnavailableError

log = logging.getLogger("gpucal")

DEVICES = ("auto", "cpu", "gpu")
ENV_VAR = "GPUCAL_DEVICE"

# CUDA runtime status codes that have a plain-language cause.
_CUDA_INSUFFICIENT_DRIVER = 35
_CUDA_NO_DEVICE = 100


@dataclass(frozen=True)
class GPUInfo:
    """One CUDA device as CuPy sees it."""

    index: int
    name: str
    total_memory: int
    #: None for devices other than the current one: measuring opens a CUDA context
    #: (hundreds of MB) on the device, in every process that asks (each Dask worker).
    free_memory: int | None
    compute_capability: str


@dataclass(frozen=True)
class GPUStatus:
    """What gpucal found when it looked for a GPU (see :func:`gpu_status`)."""

    available: bool
    reason: str | None = None  # why not, when not available
    cupy_version: str | None = None
    cuda_runtime: str | None = None
    cuda_driver: str | None = None
    devices: tuple[GPUInfo, ...] = field(default_factory=tuple)


def _cuda_version(v):
    """CUDA encodes 13.2 as 13020."""
    return f"{v // 1000}.{v % 1000 // 10}" if v else None


@functools.cache
def gpu_status():
    """Look for a usable GPU once per process and say what was found.

    Returns
    -------
    GPUStatus
        ``available`` is True when CuPy imports and sees at least one CUDA
        device; otherwise ``reason`` says why not: CuPy not installed, no
        NVIDIA driver, a driver too old for CuPy's CUDA runtime, or no device.

    Notes
    -----
    This imports CuPy (when installed) the first time it is called;
    ``import gpucal`` itself never does.
    """
    try:
        import cupy
    except ImportError:
        return GPUStatus(False, "CuPy is not installed (pip install 'gpucal[cuda13]', "
                                "or 'gpucal[cuda12]' for a CUDA 12 driver)")
    except Exception as exc:  # a broken CuPy install must not break gpucal on the CPU
        return GPUStatus(False, f"CuPy is installed but failed to import: {exc}")

    rt = cupy.cuda.runtime
    base = dict(cupy_version=cupy.__version__)
    try:
        base["cuda_runtime"] = _cuda_version(rt.runtimeGetVersion())
        driver = rt.driverGetVersion()
    except Exception as exc:
        return GPUStatus(False, f"CUDA is not usable: {exc}", **base)
    base["cuda_driver"] = _cuda_version(driver)
    if not driver:
        return GPUStatus(False, "no NVIDIA driver found (the CUDA driver library "
                                "libcuda could not be loaded)", **base)
    try:
        count = rt.getDeviceCount()
    except rt.CUDARuntimeError as exc:
        if exc.status == _CUDA_INSUFFICIENT_DRIVER:
            reason = (f"the NVIDIA driver (CUDA {base['cuda_driver']}) is older than "
                      f"CuPy's CUDA runtime ({base['cuda_runtime']}); install the "
                      "CuPy build that matches the driver, or update the driver")
        elif exc.status == _CUDA_NO_DEVICE:
            reason = "the NVIDIA driver sees no CUDA device"
        else:
            reason = f"CUDA error: {exc}"
        return GPUStatus(False, reason + _visible_devices_note(), **base)
    if count == 0:
        return GPUStatus(False, "no CUDA device" + _visible_devices_note(), **base)

    devices = []
    current = rt.getDevice()
    for i in range(count):
        props = rt.getDeviceProperties(i)  # no context needed
        free = rt.memGetInfo()[0] if i == current else None
        name = props["name"]
        devices.append(GPUInfo(i, name.decode() if isinstance(name, bytes) else str(name),
                               int(props["totalGlobalMem"]), free,
                               f"{props['major']}.{props['minor']}"))
    return GPUStatus(True, None, devices=tuple(devices), **base)


def _visible_devices_note():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "" if visible is None else f" (CUDA_VISIBLE_DEVICES={visible!r})"


def gpu_available():
    """Return True when CuPy is installed and sees a CUDA device.

    Examples
    --------
    >>> import gpucal
    >>> gpucal.gpu_available() in (True, False)
    True
    """
    return gpu_status().available


def _check_device(device, source="device"):
    if device not in DEVICES:
        raise ValueError(f"{source} must be one of {', '.join(map(repr, DEVICES))}; "
                         f"got {device!r}")


@functools.cache
def _say_auto_choice(choice, reason):
    # functools.cache makes this log once per process and choice.
    log.info("device='auto': using the %s%s", choice.upper(), f" ({reason})" if reason else "")


def resolve_device(device=None):
    """Turn a ``device`` argument into ``"cpu"`` or ``"gpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "gpu"} or None
        None means the ``GPUCAL_DEVICE`` environment variable, or ``"auto"``
        when it is unset or empty.

    Returns
    -------
    str
        ``"cpu"`` or ``"gpu"``.

    Raises
    ------
    ValueError
        For any other value (of the argument or of ``GPUCAL_DEVICE``).
    GPUUnavailableError
        For ``"gpu"`` where no GPU is usable; the message says why.
    """
    if device is None:
        device = os.environ.get(ENV_VAR) or "auto"
        _check_device(device, f"the {ENV_VAR} environment variable")
    else:
        _check_device(device)
    if device == "cpu":
        return device  # no probe: a CPU run never imports CuPy
    status = gpu_status()
    if device == "auto":
        choice = "gpu" if status.available else "cpu"
        _say_auto_choice(choice, status.reason)
        return choice
    if not status.available:
        raise GPUUnavailableError(f"device='gpu' was requested but no GPU is usable: "
                                  f"{status.reason}")
    return device
