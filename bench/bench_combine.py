"""Stack combination: gpucal against ccdproc.combine on the same frames, in one run.

Groups (issue #3's benchmarks):
* median and 3σ-clipped average of 20 × 2048² float32 frames;
* median of 61 × 256² int16 darks (the seed lab's stack);
* the 20 × 2048² median from FITS files (I/O included).

ccdproc is timed in its fastest configuration: bottleneck installed and, for
sigma clipping, the string statistics ('mean', 'std') that take astropy's C
path; its default np.ma statistics are timed too ("ccdproc-defaults").

GPU cases: "gpu" is end to end from host frames (upload, combine, download);
"gpu-kernel" is the fused kernel on a stack already in device memory, with
its achieved bandwidth (stack bytes / kernel time) in extra_info.

Run:  pytest bench/bench_combine.py --benchmark-json=bench/results/combine-<machine>.json
"""

import ccdproc
import numpy as np
import pytest

import gpucal
from conftest import device_seconds, gpu_name, hbm_bandwidth, quiet, timed

SIGMA = dict(sigma_clip=True, sigma_clip_low_thresh=3, sigma_clip_high_thresh=3)
CASES = {
    "median 20x2048^2 float32": ("flats_2048", dict(method="median")),
    "3-sigma-clipped average 20x2048^2 float32": ("flats_2048", dict(method="average", **SIGMA)),
    "median 61x256^2 int16 darks": ("darks_61", dict(method="median")),
}


def _rounds(slow):
    return dict(rounds=3, iterations=1, warmup_rounds=0) if slow else \
        dict(rounds=7, iterations=1, warmup_rounds=1)


@pytest.mark.parametrize("case", list(CASES))
def test_ccdproc(benchmark, request, case):
    fixture, kwargs = CASES[case]
    frames = request.getfixturevalue(fixture)
    fast = dict(sigma_clip_func="mean", sigma_clip_dev_func="std") if "sigma_clip" in kwargs else {}
    benchmark.group = case
    benchmark.extra_info["impl"] = "ccdproc"
    benchmark.pedantic(quiet, args=(ccdproc.combine, frames), kwargs={**kwargs, **fast},
                       **_rounds(slow=fixture != "darks_61"))


@pytest.mark.parametrize("case", [c for c in CASES if "sigma" in c])
def test_ccdproc_defaults(benchmark, request, case):
    fixture, kwargs = CASES[case]
    frames = request.getfixturevalue(fixture)
    benchmark.group = case
    benchmark.extra_info["impl"] = "ccdproc-defaults"
    benchmark.pedantic(quiet, args=(ccdproc.combine, frames), kwargs=kwargs,
                       **_rounds(slow=True))


@pytest.mark.parametrize("case", list(CASES))
def test_gpucal_cpu(benchmark, request, case):
    fixture, kwargs = CASES[case]
    frames = request.getfixturevalue(fixture)
    benchmark.group = case
    benchmark.extra_info["impl"] = "gpucal-cpu"
    benchmark.pedantic(gpucal.combine, args=(frames,), kwargs=dict(device="cpu", **kwargs),
                       **_rounds(slow=False))


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpucal_gpu(benchmark, request, case):
    """End to end from host frames: upload, combine, result back on the host."""
    fixture, kwargs = CASES[case]
    frames = request.getfixturevalue(fixture)

    def run():  # CCDData in: CCDData out, its data on the host
        return gpucal.combine(frames, device="gpu", **kwargs)

    _, first_call_s = timed(run)  # includes NVRTC compilation of the kernel for this depth
    benchmark.extra_info.update(impl="gpucal-gpu", first_call_s=first_call_s)
    benchmark.group = case
    benchmark.pedantic(run, **_rounds(slow=False))


@pytest.mark.gpu
@pytest.mark.parametrize("case", list(CASES))
def test_gpucal_gpu_kernel(benchmark, request, case):
    """The fused kernel alone, on a stack in device memory; bandwidth in extra_info."""
    import cupy

    fixture, kwargs = CASES[case]
    frames = request.getfixturevalue(fixture)
    backend = gpucal.backend.load_backend("cupy")
    stack = cupy.asarray(np.array([f.data for f in frames], dtype=np.float32))
    sigma = None
    if kwargs.get("sigma_clip"):
        sigma = dict(sigma_lower=3.0, sigma_upper=3.0, maxiters=1, cenfunc="mean", stdfunc="std")

    def run():
        backend.combine_stack(stack, method=kwargs["method"], sigma=sigma)
        backend.synchronize()

    run()  # compile
    device_s = device_seconds(run, n_repeat=20)
    peak = hbm_bandwidth(gpu_name())
    benchmark.extra_info.update(impl="gpucal-gpu-kernel", stack_bytes=stack.nbytes,
                                device_s=device_s, bandwidth_Bps=stack.nbytes / device_s,
                                hbm_share=None if peak is None else stack.nbytes / device_s / peak)
    benchmark.group = case
    benchmark.pedantic(run, **_rounds(slow=False))


# -- from FITS files ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def flat_files(flats_2048, tmp_path_factory):
    directory = tmp_path_factory.mktemp("flats")
    paths = []
    for i, ccd in enumerate(flats_2048):
        paths.append(str(directory / f"flat{i:02d}.fits"))
        ccd.write(paths[-1])
    return paths


@pytest.mark.parametrize("impl", ["ccdproc", "gpucal-cpu"])
def test_median_from_files(benchmark, flat_files, impl):
    benchmark.group = "median 20x2048^2 float32 from FITS files"
    benchmark.extra_info["impl"] = impl
    if impl == "ccdproc":
        benchmark.pedantic(quiet, args=(ccdproc.combine, flat_files), kwargs=dict(method="median"),
                           **_rounds(slow=True))
    else:
        benchmark.pedantic(gpucal.combine, args=(flat_files,),
                           kwargs=dict(method="median", device="cpu"), **_rounds(slow=False))
