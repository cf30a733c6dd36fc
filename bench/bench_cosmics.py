"""Cosmic rays: gpucal.detect_cosmics against astroscrappy.detect_cosmics on the same frame, in one run.

Groups (issue #5's benchmarks):
* L.A.Cosmic (sigclip=8, readnoise=10, niter=4) of a 2048² frame with injected
  cosmic rays (gpucal.simulate.cosmic_ray_frame): astroscrappy and gpucal's CPU
  fallback, with each one's recall of the injected cosmic-ray pixels and false
  positives in extra_info, and whether gpucal's mask and cleaned image equal
  astroscrappy's (target: gpucal's CPU time ≤ 1.5× astroscrappy's); at
  cosmic_ray_frame's default rate (2000 rays) and with 100 rays, where the later
  iterations look only near the cleaned pixels;
* on a GPU: a 4096² frame already in device memory, warm, with the first call
  (NVRTC compile) reported separately, the device time in extra_info, and
  astroscrappy's time on the same frame on the host's CPUs (one run, same test)
  with the speed-up (targets: ≤ 50 ms warm on an H100, ≥ 100× astroscrappy);
  the share of pixels where the GPU's mask differs from the CPU fallback's
  (allowed: ≤ 1e-5);
* on a GPU: a batch of 16 × 4096² frames, frames per second with the batch in
  device memory and end to end (upload from host NumPy, download of the mask
  and the cleaned images).

Run:  pytest bench/bench_cosmics.py --benchmark-json=bench/results/cosmics-<machine>.json
"""

import astroscrappy
import numpy as np
import pytest

import gpucal
from conftest import device_seconds, quiet, timed
from gpucal.simulate import cosmic_ray_frame

READNOISE = 10.0
PARAMS = dict(sigclip=8.0, readnoise=READNOISE, niter=4)
# cosmic_ray_frame's default rate (2000 rays on 2048²; the frame the figures use),
# and 100 rays, about what a ground-based 2048² CCD collects in a few minutes: there
# L.A.Cosmic's later iterations only look near the cleaned pixels (lacosmic.Windows).
RAYS = {"lacosmic 2048^2, niter=4": None, "lacosmic 2048^2, 100 rays, niter=4": 100}
BATCH = 16
MASK_DIFF_ALLOWED = 1e-5  # share of pixels where the GPU's mask may differ from the CPU's


@pytest.fixture(scope="module", params=list(RAYS))
def frame_2048(request):
    """(group name, frame, truth) of a 2048² frame with cosmic rays."""
    return (request.param, *cosmic_ray_frame((2048, 2048), seed=5, readnoise=READNOISE,
                                             n_cosmics=RAYS[request.param]))


@pytest.fixture(scope="module")
def astroscrappy_2048(frame_2048):
    """astroscrappy's (crmask, cleanarr) on the 2048² frame: the reference for gpucal's."""
    return quiet(astroscrappy.detect_cosmics, frame_2048[1], **PARAMS)


@pytest.fixture(scope="module")
def batch_4096():
    """16 seeded 4096² frames (host NumPy, float32, 1 GiB)."""
    return np.stack([cosmic_ray_frame((4096, 4096), seed=100 + i, readnoise=READNOISE)[0]
                     for i in range(BATCH)])


def _quality(mask, truth):
    mask = np.asarray(mask)
    return {"recall": float((mask & truth).sum() / truth.sum()),
            "false_positives": int((mask & ~truth).sum())}


def test_astroscrappy(benchmark, frame_2048):
    benchmark.group, frame, truth = frame_2048
    crmask, _ = benchmark.pedantic(quiet, args=(astroscrappy.detect_cosmics, frame),
                                   kwargs=PARAMS, rounds=3, iterations=1)
    benchmark.extra_info.update(impl="astroscrappy", **_quality(crmask, truth))


def test_gpucal_cpu(benchmark, frame_2048, astroscrappy_2048):
    benchmark.group, frame, truth = frame_2048
    crmask, clean = benchmark.pedantic(gpucal.detect_cosmics, args=(frame,), kwargs=PARAMS,
                                       rounds=3, iterations=1, warmup_rounds=1)
    their_mask, their_clean = astroscrappy_2048
    identical = bool(np.array_equal(crmask, their_mask) and np.array_equal(clean, their_clean))
    benchmark.extra_info.update(impl="gpucal-cpu", identical_to_astroscrappy=identical,
                                **_quality(crmask, truth))


@pytest.mark.gpu
def test_gpucal_gpu_4096(benchmark):
    """A 4096² frame already in device memory; mask and cleaned image stay there."""
    import cupy

    frame, truth = cosmic_ray_frame((4096, 4096), seed=7, readnoise=READNOISE)
    image = cupy.asarray(frame)

    def run():
        result = gpucal.detect_cosmics(image, **PARAMS)
        cupy.cuda.get_current_stream().synchronize()
        return result

    (crmask, _), first_call_s = timed(run)  # includes NVRTC compilation of the kernels
    gpu_mask = cupy.asnumpy(crmask)
    del crmask
    device_s = device_seconds(run, n_repeat=10)

    cpu_mask, _ = gpucal.detect_cosmics(frame, **PARAMS)  # the CPU fallback, once
    # The peer on the host's CPUs, once.
    _, astroscrappy_s = timed(quiet, astroscrappy.detect_cosmics, frame, **PARAMS)
    mask_diff_fraction = float((gpu_mask != cpu_mask).sum() / gpu_mask.size)

    benchmark.group = "lacosmic 4096^2 on the GPU, niter=4"
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(
        impl="gpucal-gpu", first_call_s=first_call_s, device_s=device_s,
        astroscrappy_s=astroscrappy_s,
        speedup_over_astroscrappy=astroscrappy_s / benchmark.stats.stats.median,
        mask_diff_fraction=mask_diff_fraction,
        mask_matches_cpu=mask_diff_fraction <= MASK_DIFF_ALLOWED, **_quality(gpu_mask, truth))


@pytest.mark.gpu
@pytest.mark.parametrize("upload", [False, True], ids=["resident", "upload+download"])
def test_gpucal_gpu_batch(benchmark, batch_4096, upload):
    """16 × 4096² frames detected together: resident in device memory, or from the host and back."""
    import cupy

    device_batch = None if upload else cupy.asarray(batch_4096)

    def run():
        stack = cupy.asarray(batch_4096) if upload else device_batch
        crmask, clean = gpucal.detect_cosmics(stack, **PARAMS)
        if upload:
            crmask, clean = cupy.asnumpy(crmask), cupy.asnumpy(clean)
        cupy.cuda.get_current_stream().synchronize()
        return crmask, clean

    _, first_call_s = timed(run)  # includes NVRTC compilation if no earlier test compiled
    benchmark.group = f"lacosmic batch of {BATCH} x 4096^2 on the GPU, niter=4"
    benchmark.pedantic(run, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(impl="gpucal-gpu", upload=upload, first_call_s=first_call_s,
                                frames_per_s=BATCH / benchmark.stats.stats.median)
    device_batch = None  # give the pool's blocks back before the next test
    cupy.get_default_memory_pool().free_all_blocks()
