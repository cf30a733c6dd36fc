"""The primitives' contract and their NumPy/SciPy implementation.

gpucal writes every algorithm once, against a small set of *primitives*: the
operations that differ between devices (array placement, windowed rank
filters, L.A.Cosmic's medians, column-gap filling).  :class:`NumpyBackend` is
both their contract and their CPU runtime: each method documents what a
primitive must do, and implements it with NumPy/SciPy (and the compiled rank
filter).  gpucal's backend (``gpucal._xp.Backend``) adds the methods written
once for NumPy and CuPy on top of it; the CuPy backend (``gpucal._cuda``)
subclasses that and overrides what it accelerates, and every override is
parity-tested against the CPU.

This module imports neither CuPy nor gpucal.
"""

import os

import numpy as np

from . import filters, medians


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class NumpyBackend:
    """NumPy/SciPy implementation of gpucal's backend primitives.

    Attributes
    ----------
    name : str
        ``"numpy"``; the CuPy backend's is ``"cupy"``.
    device : str
        ``"cpu"`` or ``"gpu"``: where this backend's arrays live.
    xp : module
        The array namespace (``numpy`` or ``cupy``) for the operations NumPy
        and CuPy share; anything outside that subset is a primitive.
    threads : int
        Host threads the primitives use (the CPUs this process may run on).
    """

    name = "numpy"
    device = "cpu"
    xp = np
    threads = _cpu_count()
    #: The "percentile" that asks :meth:`rank_filter` for the median.
    MEDIAN = filters.MEDIAN

    def asarray(self, a, dtype=None):
        """Return `a` as an array of this backend, in native byte order.

        FITS data are big-endian; the result is always native-endian so that
        the GPU backend can upload it (CuPy silently mangles big-endian input).
        No copy is made when `a` is already a native array of `dtype`.
        """
        a = np.asarray(a)
        dtype = np.dtype(a.dtype if dtype is None else dtype)
        return np.asarray(a, dtype=dtype.newbyteorder("="))

    def to_numpy(self, a):
        """Return `a` as a NumPy array on the host (no copy on the CPU)."""
        return np.asarray(a)

    def synchronize(self):
        """Wait for queued device work; timing code calls it. No-op on the CPU."""

    def available_memory(self):
        """Bytes this backend can allocate now (host: MemAvailable; GPU: free memory)."""
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")

    # -- image primitives: 2-D (lines, columns) arrays -------------------------------------

    def rank_filter(self, image, size, percentiles):
        """Exact windowed percentiles (or :data:`cpu_fallback.filters.MEDIAN`) of a 2-D image.

        (len(percentiles), ...) in the image's float dtype; reflect borders,
        scipy's rank formulas, NaN ignored (cpu_fallback.filters.rank_filter).
        """
        return filters.rank_filter(image, size, percentiles, threads=self.threads)

    def spread_outliers(self, image, size, percentiles, lsigma, hsigma, spread):
        """ccdmask's windowed test of a 2-D image: bool, True below ``-lsigma·σ`` or above ``hsigma·σ``.

        σ is ``(high - low) / spread`` of the two windowed `percentiles`
        (:meth:`rank_filter`'s); bit for bit that expression's result
        (cpu_fallback.filters.spread_outliers).
        """
        return filters.spread_outliers(image, size, percentiles, lsigma, hsigma, spread,
                                       threads=self.threads)

    def median_filter(self, images, size, separable=False):
        """L.A.Cosmic's exact medians of float32 frames (..., ny, nx), astroscrappy's borders.

        Full ``size × size`` (3, 5, 7) or separable rows-then-columns (3, 5,
        7, 9) windows; the ``size // 2`` border is copied from the input
        (cpu_fallback.medians.median_filter). Values must be finite.
        """
        return medians.median_filter(images, size, separable, threads=self.threads)

    def outliers(self, x, sig, lsigma, hsigma):
        """ccdmask's threshold test: bool, `x` below ``-lsigma·sig`` or above ``hsigma·sig``.

        The very expression :meth:`spread_outliers` decides (cpu_fallback.filters.outliers);
        it is written in the NumPy/CuPy common subset, so every backend shares it.
        """
        return filters.outliers(x, sig, lsigma, hsigma)

    def block_percentiles(self, image, block, percentiles):
        """``np.percentile`` of each block of a grid, NaN ignored: (len(percentiles), rows, cols)."""
        return filters.block_percentiles(image, block, percentiles)

    def fill_column_gaps(self, mask, ngood):
        """ccdproc's findbadcolumns gap filling along axis 0 (cpu_fallback.filters)."""
        return filters.fill_column_gaps(mask, ngood)

    def __repr__(self):
        return f"<gpucal backend {self.name!r} on {self.device}>"

