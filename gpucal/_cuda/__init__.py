"""The CuPy backend: the only gpucal code that computes with CuPy.

:class:`CupyBackend` inherits gpucal's backend (:class:`gpucal._xp.Backend`: the
primitives' contract and NumPy/SciPy implementation, and the methods written once for
NumPy and CuPy) and overrides what it runs on the GPU.
gpucal loads this module only when it sees a CuPy array or is asked for the
GPU, so ``import gpucal`` works where CuPy is absent or has no device.
"""

import cupy
import numpy as np

from cpu_fallback import NumpyBackend, filters, medians

from .._combine_kernel import MAX_FRAMES
from .._xp import Backend
from . import calibrate as _calibrate
from . import ccdmask as _ccdmask
from . import combine as _combine
from . import median as _median


class CupyBackend(Backend):
    """CuPy implementation of gpucal's backend primitives (device arrays)."""

    name = "cupy"
    device = "gpu"
    xp = cupy
    threads = 1  # the device is the parallelism: one chunk, no host threads
    chunk_values = 1 << 62
    #: The fused kernel's scratch per stack value: a contiguous copy of a band view (at most
    #: float64) and the float64 slot each value has in the kernel's sort scratch.
    scratch_per_value = 8 + _combine.WORK_PER_VALUE
    band_bytes = None  # bands as large as the budget: fewer, larger uploads

    def asarray(self, a, dtype=None):
        if isinstance(a, cupy.ndarray):
            return a if dtype is None else a.astype(dtype, copy=False)
        # Byte order is fixed on the host: CuPy uploads big-endian bytes as if native.
        return cupy.asarray(NumpyBackend.asarray(self, a, dtype))

    def to_numpy(self, a):
        return cupy.asnumpy(a) if isinstance(a, cupy.ndarray) else np.asarray(a)

    def combine_scratch(self, nframes):
        # A stack deeper than the fused kernel holds takes the generic path in one chunk:
        # its whole-band temporaries need the CPU's measured scratch.
        return self.scratch_per_value if nframes <= MAX_FRAMES else Backend.scratch_per_value

    def combine_reserve(self, nframes, dtype):
        # Local memory is reserved at launch for every thread the device can hold: the fused
        # kernel has none (its scratch is per value, in the band's budget), unless it spills.
        return 0 if nframes > MAX_FRAMES else _combine.launch_reserve(nframes, dtype)

    def combine_stack(self, x, mask=None, *, scale=None, minmax=None, extrema=None,
                      sigma=None, method="average", weights=None, out=None):
        if len(x) > MAX_FRAMES:  # deeper than the fused kernel is checked for: the generic path
            return super().combine_stack(x, mask, scale=scale, minmax=minmax, extrema=extrema,
                                         sigma=sigma, method=method, weights=weights, out=out)
        if out is not None:
            self._check_out(out)
        return _combine.combine_stack(self.stacked(x), self.stacked(mask), scale=scale,
                                      minmax=minmax, extrema=extrema, sigma=sigma,
                                      method=method, weights=weights, out=out)

    def calibrate(self, data, sigma, arithmetic, dtype):
        return _calibrate.calibrate(data, sigma, arithmetic, dtype)

    def rank_filter(self, image, size, percentiles):
        size, percentiles = filters.check_arguments(image, size, percentiles)
        if _ccdmask.capacity_for(size[0] * size[1]) is None:  # too large for one thread
            return cupy.asarray(super().rank_filter(cupy.asnumpy(image), size, percentiles))
        return _ccdmask.rank_filter(image, size, percentiles)

    def spread_outliers(self, image, size, percentiles, lsigma, hsigma, spread):
        # The exact percentiles are cheap here: the fused rank filter, then the test.
        low, high = self.rank_filter(image, size, percentiles)
        return filters.spread_test(image, low, high, lsigma, hsigma, spread)

    def median_filter(self, images, size, separable=False):
        size = medians.check_arguments(images, size, separable)
        return _median.median_filter(images, size, separable)

    def block_percentiles(self, image, block, percentiles):
        # One statistic per block: cheap on the host, and np.percentile's arithmetic exactly.
        return cupy.asarray(super().block_percentiles(cupy.asnumpy(image), block, percentiles))

    def fill_column_gaps(self, mask, ngood):
        return _ccdmask.fill_column_gaps(mask, ngood)

    def available_memory(self):
        free, _total = cupy.cuda.runtime.memGetInfo()
        return free + cupy.get_default_memory_pool().free_bytes()

    def synchronize(self):
        cupy.cuda.get_current_stream().synchronize()


BACKEND = CupyBackend()
