"""Calibration: gpucal.ccd_process against ccdproc.ccd_process on the same frame, in one run.

Groups (issue #6's benchmarks):
* a 4096² raw frame (64 overscan columns) through overscan + trim + uncertainty +
  gain + bias + dark (scaled by exposure) + flat: ccdproc on CCDData, gpucal's CPU
  fallback on Frames; the largest difference from ccdproc's result is in extra_info;
* on a GPU: a batch of 4096² frames, frames per second with the data already in
  device memory and end to end (upload of the raw frames, download of data,
  uncertainty and mask), the first call (kernel compile) reported separately.

Run:  pytest bench/bench_calibrate.py --benchmark-json=bench/results/calibrate-<machine>.json
"""

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData

import gpucal
from conftest import quiet, timed

NY, NX, OVERSCAN = 4096, 4096, 64
GAIN, READNOISE = 1.5 * u.electron / u.adu, 5.0 * u.electron


def _raw(rng, exptime=60.0):
    """A raw frame in ADU: bias level 1000 with a row gradient, sky and stars above it."""
    rows = np.arange(NY, dtype=np.float32)[:, None]
    frame = rng.normal(1000, 4, (NY, NX + OVERSCAN)).astype(np.float32) + 0.01 * rows
    frame[:, :NX] += rng.gamma(4, 500, (NY, NX)).astype(np.float32)
    return CCDData(frame, unit="adu", meta={"EXPTIME": exptime})


@pytest.fixture(scope="session")
def calibration():
    """(raw, ccd_process arguments): masters in electrons, as after gain correction."""
    rng = np.random.default_rng(6)

    def master(level, spread, **meta):
        return CCDData(rng.normal(level, spread, (NY, NX)).astype(np.float32),
                       unit="electron", meta=meta)

    flat = master(20000, 200)
    flat.data[rng.random((NY, NX)) < 1e-4] = 10  # dead pixels, raised by min_value
    args = dict(oscan=f"[{NX + 1}:{NX + OVERSCAN},*]", trim=f"[1:{NX},*]", error=True,
                gain=GAIN, readnoise=READNOISE, master_bias=master(5, 2),
                dark_frame=master(30, 3, EXPTIME=300.0), master_flat=flat, min_value=1000.0,
                dark_scale=True, exposure_key="EXPTIME", exposure_unit=u.s)
    return _raw(rng), args


def _as_frames(args):
    keys = ("master_bias", "dark_frame", "master_flat")
    return {**args, **{k: gpucal.Frame.from_ccddata(args[k]) for k in keys}}


def test_ccdproc(benchmark, calibration):
    raw, args = calibration
    benchmark.group = "ccd_process 4096^2: overscan+trim+deviation+gain+bias+dark+flat"
    benchmark.pedantic(quiet, args=(ccdproc.ccd_process, raw), kwargs=args, rounds=5,
                       iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(impl="ccdproc")


def test_gpucal_cpu(benchmark, calibration):
    raw, args = calibration
    frame, frame_args = gpucal.Frame.from_ccddata(raw), _as_frames(args)
    benchmark.group = "ccd_process 4096^2: overscan+trim+deviation+gain+bias+dark+flat"
    ours = benchmark.pedantic(gpucal.ccd_process, args=(frame,), kwargs=frame_args, rounds=7,
                              iterations=1, warmup_rounds=1)
    theirs = quiet(ccdproc.ccd_process, raw, **args)
    good = np.isfinite(theirs.data)
    benchmark.extra_info.update(
        impl="gpucal-cpu",
        max_abs_diff_data=float(np.max(np.abs(ours.data[good] - theirs.data[good]))),
        max_rel_diff_data=float(np.max(np.abs(ours.data[good] / theirs.data[good] - 1))),
        max_rel_diff_uncertainty=float(np.nanmax(
            np.abs(ours.uncertainty / theirs.uncertainty.array - 1))))


@pytest.mark.gpu
@pytest.mark.parametrize("upload", [False, True], ids=["resident", "upload+download"])
def test_gpucal_gpu_batch(benchmark, calibration, upload):
    """A batch of 8 raw 4096² frames through the fused kernel."""
    import cupy

    raw, args = calibration
    batch = 8
    rng = np.random.default_rng(7)
    host = np.stack([raw.data] + [_raw(rng).data for _ in range(batch - 1)])
    frame_args = {k: (v.to_device("gpu") if isinstance(v, gpucal.Frame) else v)
                  for k, v in _as_frames(args).items()}
    device_stack = cupy.asarray(host)
    headers = [{"EXPTIME": 60.0}] * batch

    def run():
        stack = cupy.asarray(host) if upload else device_stack
        frames = [gpucal.Frame(plane, header=h, unit="adu") for plane, h in zip(stack, headers)]
        out = gpucal.ccd_process(frames, **frame_args)
        if upload:
            for f in out:
                f.to_device("cpu")
        cupy.cuda.get_current_stream().synchronize()
        return out

    _, first_call_s = timed(run)  # includes NVRTC compilation of the kernel
    benchmark.group = f"ccd_process batch of {batch} x 4096^2 on the GPU"
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(impl="gpucal-gpu", upload=upload, first_call_s=first_call_s,
                                frames_per_s=batch / benchmark.stats.stats.median)
