"""Bad-pixel masks: gpucal.ccdmask against ccdproc.ccdmask on the same flat, in one run.

Groups (issue #4's benchmarks):
* a 2048² flat with injected defects (gpucal.simulate.defective_flat), default
  parameters and with findbadcolumns=True; the recall of the injected defects
  and the false positives of each implementation are in extra_info;
* on a GPU: a 4096² flat, warm, with the first call (NVRTC compile) reported
  separately and the device time of the whole ccdmask in extra_info.

Run:  pytest bench/bench_ccdmask.py --benchmark-json=bench/results/ccdmask-<machine>.json
"""

import ccdproc
import numpy as np
import pytest
from astropy.nddata import CCDData

import gpucal
from conftest import device_seconds, quiet, timed
from gpucal.simulate import defective_flat

MODES = {"ccdmask 2048^2 flat, defaults": {},
         "ccdmask 2048^2 flat, findbadcolumns": {"findbadcolumns": True}}


@pytest.fixture(scope="session")
def flat_2048():
    return defective_flat((2048, 2048), seed=3)


def _quality(mask, defects):
    mask = np.asarray(mask)
    return {"recall": float((mask & defects).sum() / defects.sum()),
            "false_positives": int((mask & ~defects).sum())}


@pytest.mark.parametrize("case", list(MODES))
def test_ccdproc(benchmark, flat_2048, case):
    flat, defects = flat_2048
    ccd = CCDData(flat, unit="adu")
    benchmark.group = case
    mask = benchmark.pedantic(quiet, args=(ccdproc.ccdmask, ccd), kwargs=MODES[case],
                              rounds=1, iterations=1)
    benchmark.extra_info.update(impl="ccdproc", **_quality(mask, defects))


@pytest.mark.parametrize("case", list(MODES))
def test_gpucal_cpu(benchmark, flat_2048, case):
    flat, defects = flat_2048
    benchmark.group = case
    mask = benchmark.pedantic(gpucal.ccdmask, args=(flat,), kwargs=MODES[case], rounds=7,
                              iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(impl="gpucal-cpu", **_quality(mask, defects))


@pytest.mark.gpu
@pytest.mark.parametrize("kwargs", [{}, {"findbadcolumns": True}], ids=["defaults",
                                                                         "findbadcolumns"])
def test_gpucal_gpu_4096(benchmark, kwargs):
    """A 4096² flat already in device memory; the mask stays there."""
    import cupy

    flat, defects = defective_flat((4096, 4096), seed=5)
    image = cupy.asarray(flat)

    def run():
        mask = gpucal.ccdmask(image, **kwargs)
        cupy.cuda.get_current_stream().synchronize()
        return mask

    mask, first_call_s = timed(run)  # includes NVRTC compilation of the kernels
    device_s = device_seconds(run, n_repeat=10)
    benchmark.group = f"ccdmask 4096^2 flat on the GPU, {'findbadcolumns' if kwargs else 'defaults'}"
    benchmark.extra_info.update(impl="gpucal-gpu", first_call_s=first_call_s, device_s=device_s,
                                **_quality(cupy.asnumpy(mask), defects))
    benchmark.pedantic(run, rounds=10, iterations=1, warmup_rounds=1)
