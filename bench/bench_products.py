"""Host work per science product, and how well a night overlaps it with compute (issue #23).

On a GPU server a 2048² science frame's compute takes milliseconds; reading its raw frame
and writing its product (data, MASK, UNCERT) are the host's work and decide the night's
rate. One 2048² night (3 biases, 2 darks, 3 flats, 4 science frames, ground-rate cosmic
rays) is reduced once with the default executor; then, for one science product, the median
of 5 rounds of:

* ``read_ms``: Frame.read of its raw frame (uint16, 2048² + overscan);
* ``write_ms``: Frame.write of the product: FITS encoding, SHA-256 of the bytes as they pass
  (no re-read), fsync, rename;
* ``hash_ms``: SHA-256 of the product's bytes alone (part of write_ms; what reading the file
  back to hash it cost before, plus the read);
* ``reread_hash_ms``: file_checksum(product), the old way, for comparison;
* ``product_mb``: the product's size (MASK in 8 bits).

and for the night: ``wall_s`` and ``task_s`` (the sum of every task's own duration) per
executor: ``task_s / wall_s`` is how many tasks' worth of work ran at once (1: no overlap).

Run:  pytest bench/bench_products.py --benchmark-json=bench/results/products-<machine>.json
"""

import hashlib
import os
import time

import numpy as np

import gpucal
from gpucal import Frame
from gpucal.pipeline.execute import SerialExecutor, ThreadExecutor, execute, plan_reduction
from gpucal.pipeline.results import file_checksum
from gpucal.simulate import simulate_night

NIGHT = dict(shape=(2048, 2048), overscan=32, n_bias=3, dark_exposures=(120.0,), n_dark=2,
             filters=("V",), n_flat=3, n_science=4, cosmic_rate=5.0)


def _median_ms(func, rounds=5):
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return 1000 * float(np.median(times))


class _Timed:
    """An executor that adds up each task's own duration (around the wrapped executor's)."""

    def __init__(self, inner):
        self.inner, self.name, self.task_s = inner, inner.name, 0.0

    def map(self, function, tasks):
        def timed(task):
            started = time.perf_counter()
            try:
                return function(task)
            finally:
                self.task_s += time.perf_counter() - started

        return self.inner.map(timed, tasks)


def test_science_product_host_costs(benchmark, tmp_path):
    sim = simulate_night(tmp_path / "raw", **NIGHT)
    info = {}

    def night():
        for name, executor in (("serial", SerialExecutor()), ("threads", ThreadExecutor())):
            plan, _ = plan_reduction(tmp_path / "raw")
            timed = _Timed(executor)
            started = time.perf_counter()
            summary = execute(plan, tmp_path / name, executor=timed, device="cpu")
            assert summary.failed == []
            info[f"{name}_wall_s"] = time.perf_counter() - started
            info[f"{name}_task_s"] = timed.task_s
            info[f"{name}_overlap"] = timed.task_s / info[f"{name}_wall_s"]

    benchmark.pedantic(night, rounds=1, iterations=1)
    raw = next(p for p in sim.paths if "sci" in os.path.basename(p))
    product = next((tmp_path / "serial").rglob("sciV_001.fits"))
    frame = Frame.read(product, device="cpu")
    target = tmp_path / "rewrite.fits"
    data = product.read_bytes()
    info.update(
        read_ms=_median_ms(lambda: Frame.read(raw, device="cpu")),
        write_ms=_median_ms(lambda: frame.write(target, overwrite=True)),
        hash_ms=_median_ms(lambda: hashlib.sha256(data).hexdigest()),
        reread_hash_ms=_median_ms(lambda: file_checksum(product)),
        product_mb=len(data) / 1e6, cpus=gpucal.backend.load_backend("numpy").threads)
    info["host_ms_per_product"] = info["read_ms"] + info["write_ms"]
    benchmark.extra_info.update(info)
    assert info["product_mb"] < 40  # 2048² float32 data and uncertainty, 8-bit MASK
