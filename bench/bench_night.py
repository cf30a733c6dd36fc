"""Whole nights: gpucal.reduce from raw frames to calibrated science frames, against ccdproc.

Groups (issue #7's benchmarks):
* the demo night, ``gpucal.simulate.simulate_night``'s defaults (512² data + 32
  overscan columns; 7 biases, darks 3 × 60 s + 3 × 300 s, and in each of V and R
  5 flats and 3 science frames: 29 frames), through ``gpucal.reduce`` on the CPU
  once, with the seconds of each stage (scan, masters, masks, science) and the
  frame and product counts in extra_info;
* a 100-frame night of 2048² frames (+ 32 overscan columns: 20 biases, darks
  10 × 60 s + 10 × 300 s, and in each of V and R 10 flats of 5 s and 20 science
  frames of 120 s) through ``gpucal.reduce`` on the CPU and through the ccdproc
  pipeline below, once each in the same test, each writing its masters and
  science frames to FITS. extra_info: both times and stages, the speed-up
  (target: ≥ 5×) and the median absolute difference between the two pipelines'
  calibrated data for one science frame, relative to its sky level. Twice:
  with simulate_night's default rate of cosmic rays (300 per megapixel per
  minute, ~2500 rays per frame, about 60× a ground-based CCD's) and with a
  ground-based rate (5 per megapixel per minute, ~40 rays per frame).
* on a GPU: the ground-rate night through ``gpucal.reduce(device="gpu")``, with
  the CPU run and the raw FITS read rate in the same test, the GPU's seconds per
  science frame, and how far its science frame and mask are from the CPU's.

gpucal.reduce runs with its CPU default, the thread executor (one task per CPU at
once; extra_info's "executor"), without the QA report (``report=False``: the ccdproc
pipeline makes none, and the results before it had none); the ccdproc pipeline runs one
frame at a time, as its users write it. The ccdproc pipeline does gpucal's steps: each raw frame overscan-subtracted
(BIASSEC, median per row), trimmed (TRIMSEC) and gain-corrected to electrons by
ccd_process; masters averaged by ccdproc.combine with a 5σ clip about the
median with mad_std (gpucal's MASTER_COMBINE): the bias; a dark per exposure
time, bias subtracted; a flat per filter, bias and scaled dark subtracted, each
frame scaled by its inverse median, the result normalised to a median of 1.
Science frames: ccd_process with uncertainty, bias, scaled dark and flat, then
cosmicray_lacosmic (its defaults, read noise from RDNOISE, data in electrons).
Flats and science take the dark master closest in time, as gpucal's planner
does: the 300 s one, scaled. gpucal's masks stage (bad-pixel and hot-pixel
masks) has no counterpart: its time counts against gpucal.

Run:  pytest bench/bench_night.py --benchmark-json=bench/results/night-<machine>.json
"""

import os
import time

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import mad_std

import gpucal
from conftest import quiet, timed
from gpucal.simulate import simulate_night

NIGHT = "2026-11-20"  # simulate_night's default
NIGHT_100 = dict(shape=(2048, 2048), overscan=32, n_bias=20, dark_exposures=(60.0, 300.0),
                 n_dark=10, filters=("V", "R"), n_flat=10, n_science=20)
# Cosmic rays per megapixel per minute: simulate_night's default, and a ground-based CCD's
# (about 2 per cm² per minute on 15 µm pixels).
COSMIC_RATES = {300.0: "simulate_night's cosmic rays (60x ground rate)",
                5.0: "ground-based rate of cosmic rays"}
COMPARED = "sciV_001.fits"
# The sky is ~120 e per pixel (noise ~12 e). Leaving out the bias, the dark or the flat moves
# the median difference to 1-2e-2 of the sky (measured on this night at 256²); the pipelines
# agree to ~1e-5: float32 against float64, and each flat scaled by its mode (gpucal) or its
# median (here), which weights the flats' noise slightly differently in the master.
REL_DIFF_ALLOWED = 1e-3


def _calibrate(path, **kwargs):
    """The raw frame at `path` overscan-subtracted, trimmed, in electrons, then `kwargs`' steps."""
    ccd = CCDData.read(path)
    header = ccd.header
    return ccdproc.ccd_process(
        ccd, oscan=header["BIASSEC"], oscan_median=True, trim=header["TRIMSEC"],
        gain=header["GAIN"] * u.electron / u.adu, readnoise=header["RDNOISE"] * u.electron,
        exposure_key="EXPTIME", exposure_unit=u.s, dark_scale=True, **kwargs)


def _combine(ccds, **kwargs):
    return ccdproc.combine(ccds, method="average", sigma_clip=True, sigma_clip_low_thresh=5,
                           sigma_clip_high_thresh=5, sigma_clip_func=np.ma.median,
                           sigma_clip_dev_func=mad_std, **kwargs)


def ccdproc_night(folder, out):
    """Reduce the simulated night in `folder` with ccdproc, into `out`/masters and `out`/science.

    Returns
    -------
    dict
        Seconds of each stage: "scan", "masters", "science".
    """
    clock = [time.perf_counter()]

    def lap():
        clock.append(time.perf_counter())
        return clock[-1] - clock[-2]

    files = ccdproc.ImageFileCollection(folder)
    stages = {"scan": lap()}
    masters, science = os.path.join(out, "masters"), os.path.join(out, "science")
    os.makedirs(masters)
    os.makedirs(science)

    def select(**keywords):
        return files.files_filtered(include_path=True, **keywords)

    bias = _combine([_calibrate(p) for p in select(imagetyp="bias")])
    bias.write(os.path.join(masters, "bias.fits"))
    darks = {}
    for exptime in files.filter(imagetyp="dark").values("exptime", unique=True):
        darks[exptime] = _combine([_calibrate(p, master_bias=bias)
                                   for p in select(imagetyp="dark", exptime=exptime)])
        darks[exptime].write(os.path.join(masters, f"dark_{exptime:g}s.fits"))
    dark = darks[300.0]  # closest in time to the flats and science frames
    flats = {}
    for filt in files.filter(imagetyp="flat").values("filter", unique=True):
        flat = _combine([_calibrate(p, master_bias=bias, dark_frame=dark)
                         for p in select(imagetyp="flat", filter=filt)],
                        scale=lambda data: 1 / np.ma.median(data))
        flats[filt] = flat.divide(np.median(flat.data) * flat.unit, handle_meta="first_found")
        flats[filt].write(os.path.join(masters, f"flat_{filt}.fits"))
    stages["masters"] = lap()

    for filt, flat in flats.items():
        for path in select(imagetyp="light", filter=filt):
            ccd = _calibrate(path, error=True, master_bias=bias, dark_frame=dark,
                             master_flat=flat)
            ccd = ccdproc.cosmicray_lacosmic(ccd, readnoise=ccd.header["RDNOISE"], gain=1.0,
                                             gain_apply=False)
            ccd.write(os.path.join(science, os.path.basename(path)))
    stages["science"] = lap()
    return stages


def median_rel_diff(ours, theirs):
    """Median |ours - theirs| over pixels finite in both, relative to the median of `theirs`."""
    good = np.isfinite(ours) & np.isfinite(theirs)
    return float(np.median(np.abs(ours[good] - theirs[good])) / np.median(theirs[good]))


def test_demo_night(benchmark, tmp_path):
    sim = simulate_night(tmp_path / "raw", seed=0)
    benchmark.group = f"demo night end to end: {len(sim.paths)} frames of 512^2"
    summary = benchmark.pedantic(gpucal.reduce, args=(tmp_path / "raw", tmp_path / "out"),
                                 kwargs=dict(device="cpu", progress=False, report=False), rounds=1,
                                 iterations=1)
    benchmark.extra_info.update(impl="gpucal-cpu", executor=summary.executor,
                                frames=summary.frames, products=summary.products, failed=len(summary.failed),
                                stage_seconds=summary.stage_seconds)
    assert summary.frames == len(sim.paths) and not summary.failed


@pytest.mark.parametrize("cosmic_rate", list(COSMIC_RATES))
def test_night_100(benchmark, tmp_path, cosmic_rate):
    """gpucal.reduce timed by the benchmark; ccdproc's pipeline once, in the same test."""
    sim = simulate_night(tmp_path / "raw", seed=1, cosmic_rate=cosmic_rate, **NIGHT_100)
    assert len(sim.paths) == 100
    ccdproc_stages, ccdproc_s = timed(quiet, ccdproc_night, tmp_path / "raw" / NIGHT,
                                      tmp_path / "ccdproc")
    benchmark.group = f"night of 100 frames of 2048^2 on the CPU, {COSMIC_RATES[cosmic_rate]}"
    summary = benchmark.pedantic(gpucal.reduce, args=(tmp_path / "raw", tmp_path / "out"),
                                 kwargs=dict(device="cpu", progress=False, report=False), rounds=1,
                                 iterations=1)
    ours = gpucal.Frame.read(tmp_path / "out" / NIGHT / "science" / COMPARED, device="cpu")
    theirs = quiet(CCDData.read, tmp_path / "ccdproc" / "science" / COMPARED)
    rel_diff = median_rel_diff(np.asarray(ours.data), theirs.data)
    benchmark.extra_info.update(
        impl="gpucal-cpu", executor=summary.executor, frames=summary.frames,
        products=summary.products, failed=len(summary.failed), stage_seconds=summary.stage_seconds, ccdproc_s=ccdproc_s,
        ccdproc_stage_seconds=ccdproc_stages,
        speedup_over_ccdproc=ccdproc_s / benchmark.stats.stats.median,
        compared=COMPARED, median_rel_diff=rel_diff, cosmic_rate=cosmic_rate)
    assert summary.frames == len(sim.paths) and not summary.failed
    assert rel_diff <= REL_DIFF_ALLOWED


@pytest.mark.gpu
def test_night_100_gpu(benchmark, tmp_path):
    """The ground-rate night on the GPU, with the CPU run and the FITS read rate in the same test.

    extra_info has what an N-GPU throughput estimate needs (#8): the GPU's stages and
    seconds per science frame, the CPU's, and how fast this host decodes the raw FITS
    files (just written, so from the page cache: an upper bound on the I/O rate).
    """
    sim = simulate_night(tmp_path / "raw", seed=1, cosmic_rate=5.0, **NIGHT_100)
    started, raw_bytes = time.perf_counter(), 0
    for path in sim.paths:
        raw_bytes += gpucal.Frame.read(path, device="cpu").data.nbytes
    read_s = time.perf_counter() - started
    cpu, cpu_s = timed(gpucal.reduce, tmp_path / "raw", tmp_path / "cpu", device="cpu",
                       progress=False, report=False)
    benchmark.group = "night of 100 frames of 2048^2 on the GPU, ground-based rate of cosmic rays"
    summary = benchmark.pedantic(gpucal.reduce, args=(tmp_path / "raw", tmp_path / "gpu"),
                                 kwargs=dict(device="gpu", progress=False, report=False), rounds=1,
                                 iterations=1)
    ours, theirs = (gpucal.Frame.read(tmp_path / run / NIGHT / "science" / COMPARED, device="cpu")
                    for run in ("gpu", "cpu"))
    n_science = 2 * NIGHT_100["n_science"]
    benchmark.extra_info.update(
        impl="gpucal-gpu", executor=summary.executor, frames=summary.frames,
        products=summary.products, failed=len(summary.failed),
        stage_seconds=summary.stage_seconds,
        science_s_per_frame=summary.stage_seconds["science"] / n_science,
        cpu_s=cpu_s, cpu_executor=cpu.executor, cpu_stage_seconds=cpu.stage_seconds,
        speedup_over_cpu=cpu_s / benchmark.stats.stats.median,
        raw_mb=raw_bytes / 1e6, fits_read_mb_per_s=raw_bytes / 1e6 / read_s,
        compared=COMPARED, median_rel_diff_gpu_cpu=median_rel_diff(np.asarray(ours.data),
                                                                   np.asarray(theirs.data)),
        mask_pixels_differing=float(np.mean(ours.mask != theirs.mask)))
    assert summary.frames == len(sim.paths) and not summary.failed and not cpu.failed
