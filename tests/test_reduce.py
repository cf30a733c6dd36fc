"""Whole nights: gpucal.reduce / gpucal reduce / gpucal demo on simulated nights.

The oracle for the science frames is ccdproc's chain (ccd_process, then
cosmicray_lacosmic) run with gpucal's masters; nothing lost is shown by killing runs
and re-running them, and by checksumming the raw files.
"""

import glob
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData

import gpucal
from _helpers import sha256
from gpucal import Frame, MaskFlag, OutputBusyError
from gpucal.cli import main
from gpucal.pipeline.execute import ThreadExecutor, execute, plan_reduction
from gpucal.pipeline.results import ResultsDB
from gpucal.simulate import simulate_night

NIGHT = "2026-11-20"
SMALL = dict(shape=(96, 96), overscan=8, n_bias=3, n_dark=2, n_flat=3, n_science=2)
# 3 bias + 2×2 darks + 2×3 flats + 2×2 science = 17 frames; 1 + 2 + 2 masters, 4 masks, 4 science
N_PRODUCTS = 13


def simulate(directory, seed=0, **kwargs):
    return simulate_night(directory, seed=seed, **{**SMALL, **kwargs})


def checksums(paths):
    return {p: sha256(p) for p in paths}


def products(out_dir):
    """{relative path: (data, mask, uncertainty)} of every FITS product under out_dir."""
    found = {}
    for path in sorted(glob.glob(os.path.join(out_dir, "*", "*", "*.fits"))):
        with fits.open(path) as hdul:
            found[os.path.relpath(path, out_dir)] = tuple(
                None if name not in hdul else hdul[name].data.copy()
                for name in ("PRIMARY", "MASK", "UNCERT"))
    return found


def assert_same_products(a, b):
    assert sorted(a) == sorted(b)
    for path in a:
        for x, y in zip(a[path], b[path]):
            assert (x is None) == (y is None), path
            if x is not None:
                np.testing.assert_array_equal(x, y, err_msg=path)


def rows(out_dir):
    """The database rows that do not depend on when or where they were made."""
    with ResultsDB(out_dir, create=False) as db:
        return {r.path: (r.kind, r.status, r.inputs, r.calibrations, r.parameters, r.stats,
                         r.flags, r.checksum) for r in db.records()}


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A small simulated night reduced once on the CPU: (sim, raw_dir, out_dir, summary, sums)."""
    root = tmp_path_factory.mktemp("night")
    sim = simulate(root / "raw")
    before = checksums(sim.paths)
    summary = gpucal.reduce(root / "raw", root / "out", device="cpu")
    return sim, root / "raw", root / "out", summary, before


def test_a_night_makes_every_product_and_records_it(night):
    sim, _, out, summary, _ = night
    assert summary.failed == [] and summary.skipped == [] and summary.frames == 17
    assert dict(summary.made) == {"bias": 1, "dark": 2, "flat": 2, "hot_pixels": 2,
                                  "ccdmask": 2, "science": 4}
    assert summary.flagged == 0 and set(summary.stage_seconds) == {"scan", "detector", "masters",
                                                                    "masks", "science", "report"}
    assert summary.report.path == out / "report.html" and summary.report.notes == []
    with ResultsDB(out, create=False) as db:
        records = db.records()
    assert len(records) == N_PRODUCTS and all(r.status == "ok" for r in records)
    for r in records:  # every file recorded with its checksum, nothing unrecorded
        assert sha256(out / r.path) == r.checksum
    assert sorted(products(out)) == sorted(r.path for r in records)
    science = [r for r in records if r.kind == "science"]
    assert sorted(os.path.basename(r.inputs[0]) for r in science) == \
        sorted(os.path.basename(p) for p in sim.cosmics)
    for r in science:
        assert set(r.calibrations) == {"bias", "dark", "flat", "hot_pixels", "ccdmask"}
        assert all(c["checksum"] for c in r.calibrations.values())
        assert r.flags["IERR_BIAS"] == r.flags["IERR_DARK"] == r.flags["IERR_FLAT"] == 0
        assert r.stats["NCOSMIC"] > 0 and r.stats["NPOINTS"] > 0.9 * 96 * 96
        assert r.parameters["cosmics"] == {"enabled": True} and r.signature["FILTER"] in "VR"
        assert r.parameters["readout"] == {  # what the product was made with, and whence
            "unit": "adu", "unit_source": "header BUNIT='adu'",
            "gain": [1.5, None, "header GAIN"], "readnoise": [6.0, None, "header RDNOISE"]}
        assert (r.stats["GAIN"], r.stats["GAINSRC"]) == (1.5, "header GAIN")


def test_raw_files_are_never_modified(night):
    sim, raw, _, _, before = night
    assert checksums(sim.paths) == before
    assert sorted(glob.glob(str(raw / "**" / "*"), recursive=True)) == \
        sorted([str(raw / NIGHT)] + sim.paths)


def test_science_frames_match_ccdproc_with_the_same_masters(night):
    """ccdproc.ccd_process + cosmicray_lacosmic with gpucal's masters and masks: the same
    data to float32 rounding, the same uncertainty, the same cosmic rays."""
    sim, raw, out, _, _ = night
    with ResultsDB(out, create=False) as db:
        rec = db.query("science", "FILTER == 'V'")[0]
    ours = Frame.read(out / rec.path, device="cpu")
    masters = {k: CCDData.read(out / rec.calibrations[k]["path"]) for k in ("bias", "dark", "flat")}
    raw = CCDData.read(rec.inputs[0], unit="adu")
    h = raw.header
    raw = CCDData(raw.data.astype(np.float32), unit="adu", meta=h)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        calibrated = ccdproc.ccd_process(
            raw, oscan=h["BIASSEC"], oscan_median=True, trim=h["TRIMSEC"], error=True,
            gain=h["GAIN"] * u.electron / u.adu, readnoise=h["RDNOISE"] * u.electron,
            master_bias=masters["bias"], dark_frame=masters["dark"], exposure_key="EXPTIME",
            exposure_unit=u.s, dark_scale=True, master_flat=masters["flat"])
        before = (ours.mask & ~np.uint16(MaskFlag.COSMIC_RAY)) != 0  # masks, saturation
        calibrated.mask = before
        expected = ccdproc.cosmicray_lacosmic(calibrated, readnoise=h["RDNOISE"], gain=1.0,
                                              gain_apply=False)
    scale = np.abs(expected.data).max()
    np.testing.assert_allclose(ours.data, expected.data, rtol=0, atol=4 * scale * 2**-24)
    np.testing.assert_allclose(ours.uncertainty, expected.uncertainty.array, rtol=1e-6)
    ours_cr = (ours.mask & MaskFlag.COSMIC_RAY) != 0
    np.testing.assert_array_equal(ours_cr, expected.mask & ~before)
    assert ours_cr.sum() == ours.header["NCOSMIC"] == rec.stats["NCOSMIC"] > 0


def test_science_headers_masks_and_quality(night):
    sim, _, out, _, _ = night
    found = injected = 0
    for raw_path, rays in sim.cosmics.items():
        path = out / NIGHT / "science" / os.path.basename(raw_path)
        frame = Frame.read(path, device="cpu")
        h = frame.header
        assert frame.unit == u.electron and frame.shape == (96, 96)
        for kind in ("BIAS", "DARK", "FLAT"):
            assert h[f"IERR_{kind}"] == 0 and h[f"DELTA_MJD_{kind}"] < 0
            assert h[f"CAL{kind}"].startswith(f"{NIGHT}/masters/{kind.lower()}_")
        assert "QCFLAGS" not in h and h["QUANT500"] > 0 and "ROBUSTSTD" in h
        bad = (frame.mask & MaskFlag.BAD_PIXEL) != 0
        hot = (frame.mask & MaskFlag.HOT_PIXEL) != 0
        cosmic = (frame.mask & MaskFlag.COSMIC_RAY) != 0
        # The simulated defects are found: dead columns and patches by ccdmask of the
        # flat, hot pixels (2-30 e/s; the threshold is 4 e/s) by the dark.
        assert (bad & sim.bad_pixels).sum() >= 0.95 * sim.bad_pixels.sum()
        assert (hot & sim.hot_pixels).sum() >= 0.7 * sim.hot_pixels.sum()
        found, injected = found + (cosmic & rays).sum(), injected + rays.sum()
        ccd = CCDData.read(path)  # astropy opens the product
        assert ccd.mask.sum() == (frame.mask != 0).sum()
    # ~50 cosmic-ray pixels in these small frames, many faint (from 100 e) or piled up on
    # the border; ccdproc finds exactly the same ones (the parity test above). The 512²
    # demo night finds 0.91-0.96 of them (bench/bench_night.py).
    assert found >= 0.7 * injected


def test_a_second_run_reuses_everything(night, tmp_path):
    _, raw, out, _, _ = night
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    stamps = {p: os.stat(p).st_mtime_ns for p in glob.glob(str(copy / "*" / "*" / "*.fits"))}
    summary = gpucal.reduce(raw, copy, device="cpu")
    assert summary.reused == N_PRODUCTS and summary.products == 0
    assert stamps == {p: os.stat(p).st_mtime_ns for p in stamps}
    forced = gpucal.reduce(raw, copy, device="cpu", force=True)
    assert forced.products == N_PRODUCTS and forced.reused == 0
    assert_same_products(products(copy), products(out))


def test_only_what_changed_is_redone(night, tmp_path):
    _, raw, out, _, _ = night
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / NIGHT / "science" / "sciV_001.fits").unlink()
    summary = gpucal.reduce(raw, copy, device="cpu")
    assert dict(summary.made) == {"science": 1}
    # A product whose file changed is redone (its checksum no longer matches)
    with open(copy / NIGHT / "science" / "sciR_002.fits", "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"corruption")
    assert dict(gpucal.reduce(raw, copy, device="cpu").made) == {"science": 1}
    # New L.A.Cosmic parameters: the science frames again, not the masters
    (tmp_path / "inst.toml").write_text("[cosmics]\nsigclip = 6.0\n")
    summary = gpucal.reduce(raw, copy, config=tmp_path / "inst.toml", device="cpu")
    assert dict(summary.made) == {"science": 4} and summary.reused == N_PRODUCTS - 4
    with ResultsDB(copy, create=False) as db:
        assert all(r.parameters["cosmics"]["sigclip"] == 6.0 for r in db.records("science"))
    # A master made differently: it and everything made from it
    (tmp_path / "inst.toml").write_text("[cosmics]\nsigclip = 6.0\n[combine.bias]\n"
                                        "method = 'median'\n")
    summary = gpucal.reduce(raw, copy, config=tmp_path / "inst.toml", device="cpu")
    assert summary.made["bias"] == 1 and summary.made["science"] == 4
    assert summary.made["dark"] == summary.made["flat"] == 2


def test_temporary_files_of_a_killed_run_are_swept(night, tmp_path):
    _, raw, out, _, _ = night
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    stale = copy / NIGHT / "science" / ".sciV_001.fits.0123456789ab.tmp"
    stale.write_bytes(b"SIMPLE  =                    T")
    kept = copy / NIGHT / "notes.tmp"  # not a gpucal temporary name: left alone
    kept.write_text("mine")
    gpucal.reduce(raw, copy, device="cpu")
    assert not stale.exists() and kept.exists()


def _run_cli(argv, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "gpucal", *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, **kwargs)


def _rows(db_path):
    try:
        with sqlite3.connect(db_path, timeout=0.1) as con:
            return con.execute("SELECT count(*) FROM products").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("after_rows", [0, 2, 7, 11])
def test_a_killed_run_finishes_with_the_same_products(night, tmp_path, after_rows):
    """SIGKILL a `gpucal reduce` once `after_rows` products are recorded (0: as soon as
    the database exists), run it again: the same products as an uninterrupted run, no
    temporary or partial files, the raw files untouched."""
    sim, raw, out, _, before = night
    target = tmp_path / "out"
    proc = _run_cli(["reduce", str(raw), "-o", str(target), "--device", "cpu"],
                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if (target / "gpucal.sqlite").exists() and _rows(target / "gpucal.sqlite") >= after_rows:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _rows(target / "gpucal.sqlite") if (target / "gpucal.sqlite").exists() else 0
    summary = gpucal.reduce(raw, target, device="cpu")
    assert summary.failed == [] and summary.reused == done + summary.adopted  # + rowless files
    assert summary.products + summary.reused == N_PRODUCTS
    assert_same_products(products(target), products(out))
    leftovers = [p for p in glob.glob(str(target / "**" / ".*"), recursive=True)
                 if not p.endswith(".gpucal.lock")]
    assert leftovers == []
    with ResultsDB(target, create=False) as db:
        assert len(db.records(status="ok")) == N_PRODUCTS
    assert checksums(sim.paths) == before


class _ProcessExecutor:
    """Tasks in other processes, in any order: what a Dask executor does with them."""

    name = "processes"

    def map(self, function, tasks):
        with ProcessPoolExecutor(2) as pool:
            yield from pool.map(function, tasks[::-1])


def test_tasks_are_pure_so_any_executor_gives_the_same_night(night, tmp_path):
    _, raw, out, _, _ = night
    plan, _ = plan_reduction(raw, tmp_path / "out")
    summary = execute(plan, tmp_path / "out", executor=_ProcessExecutor(), device="cpu")
    assert summary.executor == "processes" and summary.products == N_PRODUCTS
    assert_same_products(products(tmp_path / "out"), products(out))


def test_threads_give_the_serial_products_and_rows(night, tmp_path):
    _, raw, out, summary, _ = night
    assert summary.executor == "threads"  # the CPU's default
    serial = gpucal.reduce(raw, tmp_path / "serial", device="cpu", executor="serial")
    assert serial.executor == "serial" and serial.products == N_PRODUCTS
    assert_same_products(products(tmp_path / "serial"), products(out))
    assert rows(tmp_path / "serial") == rows(out)


def test_cli_chooses_the_executor(night, tmp_path, capsys):
    _, raw, out, _, _ = night
    assert main(["reduce", str(raw), "-o", str(tmp_path / "out"), "--device", "cpu",
                 "--executor", "serial"]) == 0
    assert "(serial executor)" in capsys.readouterr().out
    assert main(["reduce", str(raw), "-o", str(tmp_path / "out"), "--device", "cpu",
                 "--workers", "3", "--force"]) == 0
    assert "(threads executor)" in capsys.readouterr().out
    assert_same_products(products(tmp_path / "out"), products(out))


def test_the_thread_executor_computes_tasks_at_once_and_stops_when_the_driver_does():
    """`threads` tasks compute at once; `stages.threads` are under way (reading ahead,
    waiting for a turn, writing); when the driver stops, none more begins."""
    executor = ThreadExecutor(2)
    started, computing, most = [], set(), [0]
    release, lock = threading.Event(), threading.Lock()

    def task(n):
        started.append(n)
        with executor.stages.computing():
            with lock:
                computing.add(n)
                most[0] = max(most[0], len(computing))
            if n:
                release.wait(10)
            with lock:
                computing.discard(n)
        return n

    under_way = executor.stages.threads
    results = executor.map(task, range(under_way + 4))
    assert next(results) == 0
    deadline = time.monotonic() + 10
    while len(started) < under_way + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    assert sorted(started) == list(range(under_way + 1))  # 1.. hold every thread
    assert computing == {1, 2}  # two compute; the others wait for a turn
    threading.Timer(0.2, release.set).start()
    results.close()  # the driver stops: the tasks not started are cancelled, the others finish
    assert sorted(started) == list(range(under_way + 1)) and most[0] == 2
    with pytest.raises(ValueError, match="at least 1"):
        ThreadExecutor(0)


def test_bad_files_are_skipped_and_recorded(tmp_path):
    sim = simulate(tmp_path / "raw", n_science=1)
    folder = tmp_path / "raw" / NIGHT
    (folder / "corrupt.fits").write_bytes(b"SIMPLE  = T\nthis is not FITS")
    with fits.open(sim.paths[0]) as hdul:
        hdul[0].header["IMAGETYP"] = "FOCUS"
        hdul.writeto(folder / "focus.fits")
    summary = gpucal.reduce(tmp_path / "raw", tmp_path / "out", device="cpu")
    assert summary.failed == [] and summary.made["science"] == 2
    reasons = {os.path.basename(r.inputs[0]): r.reason for r in summary.skipped}
    assert set(reasons) == {"corrupt.fits", "focus.fits"}
    assert "not readable as FITS" in reasons["corrupt.fits"] or "FITS" in reasons["corrupt.fits"]
    assert "'FOCUS' is not one of the configured kinds" in reasons["focus.fits"]
    with ResultsDB(tmp_path / "out", create=False) as db:
        skipped = db.records(kind="raw", status="skipped")
    assert sorted(os.path.basename(r.inputs[0]) for r in skipped) == ["corrupt.fits",
                                                                       "focus.fits"]


def test_science_without_calibrations_is_written_and_flagged(tmp_path):
    sim = simulate(tmp_path / "raw")
    for path in sim.paths:  # keep only the science frames, one without RDNOISE or GAIN
        if "sci" not in os.path.basename(path):
            os.unlink(path)
    for name, key in (("sciV_001.fits", "RDNOISE"), ("sciR_001.fits", "GAIN")):
        with fits.open(tmp_path / "raw" / NIGHT / name, mode="update") as hdul:
            del hdul[0].header[key]
    summary = gpucal.reduce(tmp_path / "raw", tmp_path / "out", device="cpu")
    assert summary.failed == [] and summary.made == {"science": 4} and summary.flagged == 4
    with ResultsDB(tmp_path / "out", create=False) as db:
        records = {os.path.basename(r.path): r for r in db.records("science")}
    for name, r in records.items():
        h = fits.getheader(tmp_path / "out" / r.path)
        assert h["IERR_BIAS"] == h["IERR_DARK"] == h["IERR_FLAT"] == 2
        assert r.flags["IERR_FLAT"] == 2 and r.flags["DELTA_MJD_FLAT"] is None
        assert "CALBIAS" not in h and "DELTA_MJD_BIAS" not in h
    v1, r1 = records["sciV_001.fits"], records["sciR_001.fits"]
    assert v1.flags["NO_RDNOISE"] and v1.flags["NO_COSMICS"] and v1.stats["NCOSMIC"] is None
    assert "NO_COSMICS" in fits.getheader(tmp_path / "out" / v1.path)["QCFLAGS"]
    assert r1.flags["NO_GAIN"] and fits.getheader(tmp_path / "out" / r1.path)["BUNIT"] == "adu"
    assert records["sciV_002.fits"].stats["NCOSMIC"] > 0


def test_a_failed_master_is_recorded_and_its_science_flagged(tmp_path, capsys):
    sim = simulate(tmp_path / "raw")
    for path in sim.paths:  # darks without exposure times cannot make a master dark
        if "dark060" in path:
            with fits.open(path, mode="update") as hdul:
                del hdul[0].header["EXPTIME"]
    assert main(["reduce", str(tmp_path / "raw"), "-o", str(tmp_path / "out"),
                 "--device", "cpu"]) == 1
    out = capsys.readouterr().out
    assert "failed: 2" in out and "no exposure time" in out and "was not made" in out
    with ResultsDB(tmp_path / "out", create=False) as db:
        failed = db.records(status="failed")
        science = db.records("science")
    assert [r.kind for r in failed] == ["hot_pixels", "dark"]  # the dark, then its mask
    assert "EXPTIME" in failed[1].reason and failed[1].path in failed[0].reason
    assert all(r.status == "ok" for r in science)  # they use the 300 s dark, scaled


def test_input_errors(tmp_path, capsys):
    assert main(["reduce", str(tmp_path / "missing"), "-o", str(tmp_path / "out")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["reduce", str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 1
    assert "no FITS files" in capsys.readouterr().err
    simulate(tmp_path / "raw", n_science=1)
    assert main(["reduce", str(tmp_path / "raw"), "-o", str(tmp_path / "raw" / "out")]) == 1
    assert "inside the raw directory" in capsys.readouterr().err
    assert not (tmp_path / "raw" / "out").exists()


def test_one_run_at_a_time(tmp_path):
    simulate(tmp_path / "raw", n_science=1)
    from gpucal.pipeline.outdir import _Lock

    with _Lock(tmp_path / "out"):
        with pytest.raises(OutputBusyError, match="another gpucal run"):
            gpucal.reduce(tmp_path / "raw", tmp_path / "out", device="cpu")


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    simulate(tmp_path / "raw")
    assert main(["reduce", str(tmp_path / "raw"), "-o", str(tmp_path / "out"),
                 "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "bias group" in text and "science sciV_001.fits" in text
    assert text.strip().endswith("science: 4 (0 with IERR > 0); unclassified: 0; skipped: 0")
    assert not (tmp_path / "out").exists()


def test_demo_simulates_reduces_and_shows_the_table(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "29 raw frames" in out and "failed: 0" in out
    assert f"gpucal list {tmp_path / 'demo' / 'out'}" in out
    assert out.count(f"{NIGHT}/science/sci") == 6 and "NCOSMIC" in out
    assert main(["demo", str(tmp_path / "demo"), "--device", "cpu"]) == 0  # again: reused
    assert "up to date already: 15" in capsys.readouterr().out


@pytest.mark.gpu
def test_gpu_night_matches_the_cpu_night(night, tmp_path):
    _, raw, out, _, _ = night
    summary = gpucal.reduce(raw, tmp_path / "out", device="gpu")
    assert summary.failed == [] and summary.device == "gpu"
    gpu, cpu = products(tmp_path / "out"), products(out)
    assert sorted(gpu) == sorted(cpu)
    for path in cpu:
        data_gpu, mask_gpu, _ = gpu[path]
        data_cpu, mask_cpu, _ = cpu[path]
        np.testing.assert_allclose(data_gpu, data_cpu, rtol=1e-5, atol=1e-3, err_msg=path)
        if mask_cpu is not None:  # float32 rounding may move a few threshold pixels
            assert (mask_gpu != mask_cpu).mean() <= 1e-3, path
