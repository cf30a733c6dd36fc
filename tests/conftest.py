"""Shared fixtures: every behavioural test runs on every available backend.

``backend`` is the NumPy backend always, and the CuPy backend too (marked
``gpu``).  Tests marked ``gpu`` are skipped where no GPU is usable, unless
``GPUCAL_REQUIRE_GPU=1``: then they fail, so a GPU run cannot pass by skipping.
"""

import os

import pytest
from hypothesis import settings

from gpucal import gpu_status
from gpucal.backend import load_backend

REQUIRE_GPU = os.environ.get("GPUCAL_REQUIRE_GPU", "") not in ("", "0")

settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_report_header(config):
    status = gpu_status()
    gpus = ", ".join(d.name for d in status.devices) or f"none ({status.reason})"
    return [f"gpucal GPU: {gpus}; GPUCAL_REQUIRE_GPU={'1' if REQUIRE_GPU else '0'}"]


def pytest_runtest_setup(item):
    if item.get_closest_marker("gpu") is None:
        return
    status = gpu_status()
    if status.available:
        return
    if REQUIRE_GPU:
        pytest.fail(f"GPUCAL_REQUIRE_GPU=1 but no GPU is usable: {status.reason}",
                    pytrace=False)
    pytest.skip(f"no GPU: {status.reason}")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """The backend under test (cpu_fallback, or gpucal._cuda on a GPU)."""
    return load_backend(request.param)
