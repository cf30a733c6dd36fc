"""gpucal's backend: the methods written once for NumPy and CuPy, on cpu_fallback's primitives.

:class:`Backend` inherits the primitives (array placement, rank and median
filters, column gaps) from :class:`cpu_fallback.NumpyBackend` and adds the
stack reductions and the calibration arithmetic, which are array code of the
NumPy/CuPy common subset (``xp``, see :mod:`.stack` and :mod:`.arithmetic`).
An instance computes with NumPy on the CPU's threads; the CuPy backend
(``gpucal._cuda``) subclasses it, runs fused kernels where it has them and
these generic methods, on the device, where it has not.
"""

import math

import numpy as np

from cpu_fallback import NumpyBackend
from cpu_fallback.threads import run_all

from . import arithmetic as _arithmetic
from . import stack


class Backend(NumpyBackend):
    """gpucal's backend protocol on NumPy: cpu_fallback's primitives and the generic methods.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.backend import load_backend
    >>> cpu = load_backend("numpy")
    >>> value, uncertainty, n = cpu.combine_stack(np.array([[1.0], [2.0], [6.0]]),
    ...                                           method="median")
    >>> float(value[0]), int(n[0])
    (2.0, 3)
    """

    #: Stack methods work on chunks of this many values (pixels × frames),
    #: one chunk per thread; NumPy releases the GIL in sorts and ufuncs.
    chunk_values = 1 << 19  # measured: smaller chunks pay NumPy call overhead, larger miss L2
    #: Bytes of scratch per value of a chunk in the stack methods (measured
    #: peak with tracemalloc, rounded up); gpucal.combine sizes bands with it.
    scratch_per_value = 64
    #: Largest band gpucal.combine gathers at once, whatever the memory budget:
    #: a fresh 300 MB buffer costs more in page faults than the combination.
    band_bytes = 64 << 20

    # -- stacks: (frames, ...) arrays or lists of frames -------------------------------------

    def stacked(self, a):
        """A (N, ...) array from a stack given as an array or a list of N frames.

        In a list of masks, None stands for a frame with nothing masked; a list
        of only None is None.
        """
        if not isinstance(a, (list, tuple)):
            return a
        if all(f is None for f in a):
            return None
        shape = next(f.shape for f in a if f is not None)
        return self.xp.stack([self.xp.zeros(shape, bool) if f is None else f for f in a])

    def _map_pixels(self, func, stacks, out=None, **kwargs):
        """Run ``func(xp, *chunks, **kwargs)`` over pixel chunks of stacks.

        A stack is a (N, ...) array or a list of N frames (see :meth:`stacked`);
        a list is gathered chunk by chunk in the worker threads, never as a
        whole. Each chunk reaches `func` as (frames, pixels); None stays None.
        `func` returns a tuple of (pixels,) or (frames, pixels) arrays, which
        come back shaped (...) or (N, ...); or, given `out` (one C-contiguous
        array of that shape per result, any dtype), each chunk's results are
        cast into `out` as they come, and `out` is returned.
        """
        xp = self.xp
        first = stacks[0]
        n = len(first)
        shape = tuple(first[0].shape if isinstance(first, (list, tuple)) else first.shape[1:])
        npix = math.prod(shape)

        def flat(a):
            if isinstance(a, (list, tuple)):
                return None if all(f is None for f in a) else [
                    None if f is None else f.reshape(npix) for f in a]
            return None if a is None else a.reshape(n, npix)

        flats = [flat(a) for a in stacks]
        step = max(1, self.chunk_values // max(n, 1))
        spans = [(i, min(i + step, npix)) for i in range(0, npix, step)] or [(0, 0)]
        if out is not None:
            self._check_out(out)
            targets = [o.reshape(o.shape[:o.ndim - len(shape)] + (npix,)) for o in out]

        def chunk(a, i, j):
            if isinstance(a, list):
                return self.stacked([None if f is None else f[i:j] for f in a])
            return None if a is None else a[:, i:j]

        def run(span):
            results = func(xp, *(chunk(a, *span) for a in flats), **kwargs)
            if out is None:
                return results
            for target, part in zip(targets, results):
                target[..., span[0]:span[1]] = part
            return ()

        parts = run_all(run, spans, self.threads)
        if out is not None:
            return tuple(out)
        outputs = []
        for k, first_part in enumerate(parts[0]):
            whole = xp.concatenate([p[k] for p in parts], axis=-1) if len(parts) > 1 else first_part
            outputs.append(whole.reshape(whole.shape[:-1] + shape))
        return tuple(outputs)

    @staticmethod
    def _check_out(out):
        """Arrays that results are written into are C-contiguous: flat views of them exist."""
        if not all(o.flags.c_contiguous for o in out):
            raise ValueError("out: the arrays must be C-contiguous")

    @staticmethod
    def _split_weights(weights):
        """Per-frame weights travel as a keyword, per-pixel ones are chunked like data."""
        if weights is not None and weights.ndim > 1:
            return weights, None
        return None, weights

    def stack_clip_extrema(self, x, nlow, nhigh):
        """Bool (N, ...): the `nlow` lowest and `nhigh` highest values of each pixel.

        Ranks ignore masks and count NaN as highest (ccdproc's clip_extrema).
        """
        return self._map_pixels(lambda xp, c: (stack.extreme_ranks(xp, c, nlow, nhigh),),
                                [x])[0]

    def stack_sigma_bounds(self, x, valid, *, sigma_lower, sigma_upper, maxiters,
                           cenfunc, stdfunc):
        """Per-pixel sigma-clipping bounds (lo, hi), float64, from the `valid` values.

        astropy.stats.sigma_clip's iteration (see gpucal._xp.stack.sigma_bounds).
        """
        return self._map_pixels(stack.sigma_bounds, [x, valid], sigma_lower=sigma_lower,
                                sigma_upper=sigma_upper, maxiters=maxiters,
                                cenfunc=cenfunc, stdfunc=stdfunc)

    def stack_reduce(self, x, keep, method, weights=None):
        """Per-pixel (value, uncertainty, n) of the kept values (gpucal._xp.stack.reduce)."""
        w_pix, w_frame = self._split_weights(weights)
        return self._map_pixels(
            lambda xp, c, k, w: stack.reduce(xp, c, k, method, w if w is not None else w_frame),
            [x, keep, w_pix])

    def combine_scratch(self, nframes):
        """Bytes of scratch per stack value when combining `nframes` frames (band sizing)."""
        return self.scratch_per_value

    def combine_reserve(self, nframes, dtype):
        """Bytes combining `nframes` frames of `dtype` needs besides its bands (none here)."""
        return 0

    def combine_stack(self, x, mask=None, *, scale=None, minmax=None, extrema=None,
                      sigma=None, method="average", weights=None, out=None):
        """Reject and combine a stack in one pass: (value, uncertainty, n).

        `x` and `mask` are (N, ...) arrays or lists of N frames (a mask list
        may hold None). The fused form of the steps in
        gpucal._xp.stack.combine; the GPU backend runs it as one kernel (one
        thread per pixel). `out`: three C-contiguous arrays of the pixels'
        shape (...) that receive value, uncertainty and n in their own dtypes,
        and are returned; without it they are new arrays (here float64,
        float64 and int64).
        """
        w_pix, w_frame = self._split_weights(weights)
        return self._map_pixels(
            lambda xp, c, m, w: stack.combine(xp, c, m, scale=scale, minmax=minmax,
                                              extrema=extrema, sigma=sigma, method=method,
                                              weights=w if w is not None else w_frame),
            [x, mask, w_pix], out=out)

    # -- calibration: (..., ny, nx) frames ---------------------------------------------------

    def calibrate(self, data, sigma, arithmetic, dtype):
        """(data, deviation or None) of frames calibrated by an :class:`~.arithmetic.Arithmetic`.

        `data` and `sigma` are (..., ny, nx), one frame or a batch, any real
        dtype and strides (a trimmed view of a raw frame is fine); the results
        are new C-contiguous arrays of `dtype`. Rows are processed in bands
        small enough to stay in cache, on the backend's threads.
        """
        xp, dtype = self.xp, np.dtype(dtype)
        out = xp.empty(data.shape, dtype)
        out_sigma = xp.empty(data.shape, dtype) if arithmetic.has_deviation(sigma) else None
        arithmetic = _arithmetic.normalise_flat(xp, arithmetic, dtype)
        ny = data.shape[-2]
        step = max(1, self.chunk_values // max(1, data.size // max(ny, 1)))

        def run(start):
            stop = min(start + step, ny)
            band = (..., slice(start, stop), slice(None))
            _arithmetic.apply(xp, data[band], None if sigma is None else sigma[band],
                              _arithmetic.rows(arithmetic, start, stop, ny), out[band],
                              None if out_sigma is None else out_sigma[band])

        run_all(run, range(0, ny, step), self.threads)
        return out, out_sigma


BACKEND = Backend()
