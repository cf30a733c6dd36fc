"""Shared fixtures: every behavioural test runs on every available backend.

``backend`` is the NumPy backend always, and the CuPy backend too (marked
``gpu``: see the repository's conftest.py for how a missing GPU is handled).
"""

import os

import pytest

from gpucal.backend import load_backend

try:
    from hypothesis import settings
except ImportError:  # the offline GPU hosts: the *_properties.py tests skip
    settings = None
if settings is not None:
    settings.register_profile("ci", derandomize=True, deadline=None)
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(params=["numpy", pytest.param("cupy", marks=pytest.mark.gpu)])
def backend(request):
    """The backend under test (NumPy, or gpucal._cuda on a GPU)."""
    return load_backend(request.param)
