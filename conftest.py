"""pytest setup shared by tests/ and bench/: the ``gpu`` marker.

Tests and benchmarks marked ``gpu`` are skipped where no GPU is usable, unless
``GPUCAL_REQUIRE_GPU=1``: then they fail, so a GPU run cannot pass by skipping.
"""

import os

import pytest

from gpucal import gpu_status

REQUIRE_GPU = os.environ.get("GPUCAL_REQUIRE_GPU", "") not in ("", "0")


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
