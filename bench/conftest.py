"""Shared data and machine facts for the benchmarks.

Every benchmark times gpucal and its peer on the same seeded data in one run;
`bench/report.py` turns the JSON into speed-ups. GPU cases are marked ``gpu``
(the repository's conftest.py skips them without a GPU, or fails them with
GPUCAL_REQUIRE_GPU=1).
"""

import time
import warnings

import numpy as np
import pytest
from astropy.nddata import CCDData

import gpucal

# Peak HBM bandwidth (TB/s) by GPU name, for "achieved bandwidth as a share of the device's".
HBM_TBPS = {"H200": 4.8, "H100 NVL": 3.9, "H100 PCIe": 2.0, "H100": 3.35, "A100": 2.0,
            "L40S": 0.864, "L4": 0.3}


def gpu_name():
    status = gpucal.gpu_status()
    return status.devices[0].name if status.devices else None


def hbm_bandwidth(name):
    """Peak bytes/s of the named GPU, or None if unknown."""
    for key, tbps in HBM_TBPS.items():
        if name and key in name:
            return tbps * 1e12
    return None


def pytest_benchmark_update_machine_info(config, machine_info):
    status = gpucal.gpu_status()
    machine_info["gpucal"] = gpucal.__version__
    machine_info["gpu"] = gpu_name() or f"none ({status.reason})"
    machine_info["cupy"] = status.cupy_version


def timed(func, *args, **kwargs):
    """(result, seconds) of one call: a GPU path's first call includes kernel compilation."""
    started = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - started


def device_seconds(run, n_repeat):
    """Median device time of `run`, in seconds, from cupyx.profiler.benchmark."""
    from cupyx.profiler import benchmark

    return float(np.median(benchmark(run, n_repeat=n_repeat).gpu_times))


def quiet(func, *args, **kwargs):
    """Run a peer without its warnings (NaN input, 0/0 for empty pixels)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def _flats(n, size, seed=0):
    """Flat-like frames: a vignetted illumination, noise, a few hot pixels, float32."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size - 0.5
    illumination = 20000 * (1 - 0.3 * (x**2 + y**2))
    frames = []
    for i in range(n):
        frame = illumination * (1 + 0.02 * i) + rng.normal(0, 140, (size, size))
        frame[rng.random((size, size)) < 1e-4] = 65000
        frames.append(CCDData(frame.astype(np.float32), unit="adu"))
    return frames


@pytest.fixture(scope="session")
def flats_2048():
    """20 × 2048² float32 frames: the issue's stack."""
    return _flats(20, 2048)


@pytest.fixture(scope="session")
def darks_61():
    """61 × 256² int16 darks: the seed lab's stack (ProEM, 4×4 binning)."""
    rng = np.random.default_rng(2)
    hot = rng.random((256, 256)) < 0.002
    frames = []
    for _ in range(61):
        dark = rng.normal(1038, 9, (256, 256)) + 2000 * hot
        frames.append(CCDData(np.round(dark).astype(np.int16), unit="adu"))
    return frames
