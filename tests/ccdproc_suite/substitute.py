"""pytest plugin: ccdproc's own tests with gpucal's same-named objects in place of ccdproc's.

Loaded with ``-p substitute`` (this directory on sys.path) before ccdproc's test
modules are imported, it replaces, in ``ccdproc``, ``ccdproc.core`` and
``ccdproc.combiner``, every public name gpucal also provides; the test modules'
``from ccdproc.core import ...`` then bind gpucal's objects. Functions gpucal does
not provide (cosmicray_median, wcs_project, block_reduce, Keyword ...) stay ccdproc's.

Environment: ``GPUCAL_SUITE_RESULTS`` names a JSON file that gets
``{test id: outcome}``; ``GPUCAL_DEVICE`` chooses where CCDData inputs are loaded
(the harness sets "cpu", or "gpu" to run the same tests on the GPU path);
``GPUCAL_SUITE_DTYPE`` (e.g. float64) replaces combine's default float32.
"""

import json
import os

import ccdproc
import ccdproc.combiner
import ccdproc.core

import gpucal

SUBSTITUTED = ("Combiner", "combine", "ccdmask", "ccd_process", "create_deviation",
               "flat_correct", "gain_correct", "subtract_bias", "subtract_dark",
               "subtract_overscan", "trim_image", "cosmicray_lacosmic")

if os.environ.get("GPUCAL_SUITE_DTYPE"):  # e.g. float64: shows which failures are float32's
    import importlib

    import numpy as np

    importlib.import_module("gpucal.combine_options").DEFAULT_DTYPE = np.dtype(
        os.environ["GPUCAL_SUITE_DTYPE"])

for _name in SUBSTITUTED:
    for _module in (ccdproc, ccdproc.core, ccdproc.combiner):
        if hasattr(_module, _name):
            setattr(_module, _name, getattr(gpucal, _name))

from ccdproc.tests.pytest_fixtures import triage_setup  # noqa: E402,F401  (ccdproc's conftest)

_results = {}


def _test_id(report):
    """``test_combiner.py::test_x[p]`` whatever path pytest was given."""
    return f"{os.path.basename(report.location[0])}::{report.nodeid.split('::', 1)[1]}"


def pytest_runtest_logreport(report):
    key = _test_id(report)
    if report.when == "call" or report.outcome != "passed":
        outcome = "xfailed" if hasattr(report, "wasxfail") and report.skipped else report.outcome
        if _results.get(key) in (None, "passed"):
            _results[key] = outcome


def pytest_sessionfinish(session):
    path = os.environ.get("GPUCAL_SUITE_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(_results, f, indent=1, sort_keys=True)
