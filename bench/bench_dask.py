"""Scale-out: a night through gpucal.reduce serially and on a 2-worker Dask LocalCluster.

Group (issue #8's benchmark): a 40-frame night of 2048² frames (+ 32 overscan
columns; 10 biases, darks 5 × 60 s + 5 × 300 s, and in each of V and R 5 flats and
5 science frames: ``gpucal.simulate.simulate_night(seed=2)``) reduced on the CPU by
the serial executor, by the thread executor (gpucal's CPU default: one task per CPU
at once) and by the Dask executor on a LocalCluster of 2 single-threaded worker
processes (cluster start-up not timed), once each in the same test. extra_info: the
three times, their stages and the speed-ups of Dask and of the threads over serial.
Every run must make every product (none failed).

Run:  pytest bench/bench_dask.py --benchmark-json=bench/results/dask-<machine>.json
"""

import distributed
import pytest

import gpucal
from conftest import timed
from gpucal.simulate import simulate_night

NIGHT_40 = dict(shape=(2048, 2048), overscan=32, n_bias=10, dark_exposures=(60.0, 300.0),
                n_dark=5, filters=("V", "R"), n_flat=5, n_science=5)
WORKERS = 2


@pytest.fixture(scope="module")
def night_40(tmp_path_factory):
    raw = tmp_path_factory.mktemp("dask") / "raw"
    sim = simulate_night(raw, seed=2, **NIGHT_40)
    assert len(sim.paths) == 40
    return raw


@pytest.mark.benchmark(group="night of 40 frames of 2048^2, CPU")
def test_night_40_dask_vs_serial(benchmark, night_40, tmp_path):
    serial, serial_s = timed(gpucal.reduce, night_40, tmp_path / "serial", device="cpu",
                             executor="serial", report=False)
    threads, threads_s = timed(gpucal.reduce, night_40, tmp_path / "threads", device="cpu",
                               executor="threads", report=False)
    with distributed.LocalCluster(n_workers=WORKERS, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        client.wait_for_workers(WORKERS)

        def run():
            return gpucal.reduce(night_40, tmp_path / "dask", device="cpu", executor="dask",
                                 client=client, force=True, report=False)

        dask = benchmark.pedantic(run, rounds=1, iterations=1)
    dask_s = benchmark.stats.stats.median
    assert serial.failed == threads.failed == dask.failed == []
    assert serial.products == threads.products == dask.products == 19
    benchmark.extra_info.update(
        impl=f"gpucal-dask-{WORKERS}-workers",
        serial_s=serial_s, speedup_over_serial=serial_s / dask_s, frames=40,
        products=dask.products, failed=0, stage_seconds=dask.stage_seconds,
        serial_stage_seconds=serial.stage_seconds, threads_s=threads_s,
        threads_speedup_over_serial=serial_s / threads_s,
        threads_stage_seconds=threads.stage_seconds)
