"""Property tests of the night pipeline under faults (hypothesis): any header value, any
damage to a raw file, a kill at any moment. Invariants: the run never raises, every raw
frame is used or recorded as skipped with a reason, raw files are never modified, every
product file has a row and every row its file, no temporary file is left; a killed run,
resumed, gives the products of an uninterrupted one.

Apart from test_faults.py because the offline GPU hosts lack hypothesis.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from astropy.io import fits  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import gpucal  # noqa: E402
from gpucal.pipeline.results import ResultsDB  # noqa: E402
from gpucal.simulate import simulate_night  # noqa: E402

from _helpers import sha256  # noqa: E402

TINY = dict(shape=(32, 32), overscan=4, n_bias=3, n_dark=2, n_flat=2, n_science=1,
            filters=("V",), dark_exposures=(60.0,), cosmic_rate=50.0)
_SLOW = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def slow(examples):
    """Each example reduces a night: few of them, no deadline."""
    return settings(deadline=None, max_examples=examples, suppress_health_check=_SLOW)


@pytest.fixture(scope="module")
def clean_night(tmp_path_factory):
    root = tmp_path_factory.mktemp("night")
    sim = simulate_night(root / "raw", **TINY)
    gpucal.reduce(root / "raw", root / "out", device="cpu", executor="serial")
    return sim, root


def _copy(clean_night, tmp_path_factory):
    sim, root = clean_night
    work = tmp_path_factory.mktemp("work")
    shutil.copytree(root / "raw", work / "raw")
    paths = sorted(str(p) for p in (work / "raw").rglob("*.fits"))
    return work, paths


def assert_invariants(raw_paths, sums, out, summary):
    assert {p: sha256(p) for p in raw_paths} == sums  # raw files only read
    with ResultsDB(out, create=False) as db:
        records = db.records()
    rows = {r.path for r in records if r.status == "ok"}
    files = {os.path.relpath(os.path.join(d, f), out) for d, _, names in os.walk(out)
             for f in names if f.endswith(".fits")}
    assert files == rows  # no orphan file, no row without its file
    assert [f for _, _, names in os.walk(out) for f in names
            if f.startswith(".") and f != ".gpucal.lock"] == []
    used = {p for r in records for p in r.inputs}
    for path in raw_paths:  # used, or recorded with the reason
        assert path in used or any(r.status == "skipped" and path in r.inputs and r.reason
                                   for r in records), path
    assert all(r.reason for r in records if r.status != "ok")


CARDS = ("IMAGETYP", "DATE-OBS", "EXPTIME", "GAIN", "EGAIN", "RDNOISE", "FILTER", "BUNIT",
         "SITELONG", "BIASSEC", "TRIMSEC", "INSTRUME", "MJD-OBS", "XBINNING")
VALUES = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90),
    st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.complex_numbers(allow_nan=False, allow_infinity=False, max_magnitude=1e30),
    st.sampled_from(["", " ", "../../etc", "'; DROP TABLE products; --", "2026-11-20",
                     "25/12/99", "[0:0,1:5]", "[1:99999,1:3]", "counts", "electron/s",
                     "LIGHT", "Dark Frame", "-105 30 00", "W", "1e30", "0", "-1", "nan"]))


@slow(30)
@given(cards=st.dictionaries(st.sampled_from(CARDS), VALUES, min_size=1, max_size=4),
       which=st.integers(0, 9))
def test_any_header_value_never_stops_the_night(clean_night, tmp_path_factory, cards, which):
    work, paths = _copy(clean_night, tmp_path_factory)
    target = paths[which % len(paths)]
    with fits.open(target, mode="update") as hdul:
        for key, value in cards.items():
            hdul[0].header[key] = value
    sums = {p: sha256(p) for p in paths}
    summary = gpucal.reduce(work / "raw", work / "out", device="cpu", executor="serial")
    assert_invariants(paths, sums, work / "out", summary)


@slow(25)
@given(which=st.integers(0, 9), cut=st.floats(0.0, 1.0),
       flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=8))
def test_any_damage_to_a_raw_file_never_stops_the_night(clean_night, tmp_path_factory, which,
                                                        cut, flips):
    """Truncated anywhere, bytes overwritten anywhere (header or data)."""
    work, paths = _copy(clean_night, tmp_path_factory)
    target = paths[which % len(paths)]
    data = bytearray(Path(target).read_bytes())
    for where, byte in flips:
        data[int(where * (len(data) - 1))] = byte
    del data[max(1, int(cut * len(data))):]
    with open(target, "wb") as f:
        f.write(data)
    sums = {p: sha256(p) for p in paths}
    summary = gpucal.reduce(work / "raw", work / "out", device="cpu", executor="serial")
    assert_invariants(paths, sums, work / "out", summary)


def _pixels(out):
    found = {}
    for d, _, names in os.walk(out):
        for name in sorted(n for n in names if n.endswith(".fits")):
            with fits.open(os.path.join(d, name)) as hdul:
                found[os.path.relpath(os.path.join(d, name), out)] = [
                    h.data.copy() for h in hdul if h.data is not None]
    return found


@slow(6)
@given(delay=st.floats(0.0, 1.0), executor=st.sampled_from(["serial", "threads"]))
def test_a_run_killed_at_any_moment_resumes_to_the_same_products(clean_night, tmp_path_factory,
                                                                 delay, executor):
    sim, root = clean_night
    work = tmp_path_factory.mktemp("kill")
    raw, out = root / "raw", work / "out"
    sums = {p: sha256(p) for p in sim.paths}
    proc = subprocess.Popen([sys.executable, "-m", "gpucal", "reduce", str(raw), "-o", str(out),
                             "--device", "cpu", "--executor", executor],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out / "gpucal.sqlite").exists() and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.002)  # the run has begun: kill it `delay` seconds into its work
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.failed == []
    assert_invariants(sim.paths, sums, out, summary)
    clean = _pixels(root / "out")
    resumed = _pixels(out)
    assert clean.keys() == resumed.keys()
    for path in clean:
        for a, b in zip(clean[path], resumed[path], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=path)
