"""ccdproc's step-by-step combination (``Combiner``), on the CPU or the GPU."""

import functools

import numpy as np

from . import combine_options as options
from .backend import get_backend
from .sources import from_user, give_back, to_user
from .stack_sources import ArraySource, open_stack

__all__ = ["Combiner"]


def _mirrored(step):
    """A step that takes in what a script wrote to :attr:`Combiner.data_arr` on the GPU (a
    host mirror there) and updates the mirror with what it rejected."""

    @functools.wraps(step)
    def run(self, *args, **kwargs):
        mirror = self._mirror
        if mirror is not None:
            self.data = self.backend.asarray(mirror.data)
            self.mask = self.backend.asarray(np.ma.getmaskarray(mirror))
        result = step(self, *args, **kwargs)
        if mirror is not None:
            mirror.data[...] = self.backend.to_numpy(self.data)
            mirror.mask = self.backend.to_numpy(self.mask)
        return result

    return run


class Combiner:
    """ccdproc's step-by-step combination, on the CPU or the GPU.

    Hold a stack in memory, reject values with the clipping methods (each
    adds to :attr:`mask`), then combine. Results equal :func:`combine`'s with
    the same options.

    Parameters
    ----------
    ccd_iter : 3-D array or sequence of 2-D arrays, Frames or CCDData
    dtype : floating dtype, default float32
    device : {"auto", "cpu", "gpu"}, optional
        Where CCDData inputs are loaded; arrays and Frames stay where they are.

    Attributes
    ----------
    data : (N, ny, nx) array
    mask : (N, ny, nx) bool array
        True for rejected values; starts with the inputs' masks and every
        non-finite value.
    weights : array or None
        (N,) or (N, ny, nx).
    scaling : array, callable or None
        Multipliers per frame, or a callable returning one from a frame's
        data. Clipping (extrema and sigma) uses scaled values (see
        :mod:`gpucal.combine`'s notes).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Combiner
    >>> c = Combiner(np.array([np.full((2, 2), v) for v in (1.0, 2.0, 3.0, 50.0)]))
    >>> c.minmax_clipping(max_clip=10)
    >>> c.average_combine()[0, 0]        # an array in: an array out
    np.float32(2.0)
    """

    def __init__(self, ccd_iter, dtype=None, device=None):
        if ccd_iter is None:
            raise TypeError("Combiner needs frames: a 3-D array or a list of frames")
        self.dtype = options.DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
        self._source = open_stack(ccd_iter, device)
        self.backend = self._source.backend
        data, mask = (self.backend.stacked(a) for a in
                      self._source.band(0, self._source.shape[0], self.dtype))
        xp = self.backend.xp
        self.data = xp.ascontiguousarray(data)
        self.mask = ~xp.isfinite(self.data) if mask is None else mask | ~xp.isfinite(self.data)
        self._weights = None
        self._scaling = None
        self._mirror = None  # data_arr on the GPU

    @property
    def data_arr(self):
        """The stack as a NumPy masked array (True = rejected): ccdproc's ``data_arr``.

        Changing its values or its mask changes what the Combiner combines, as in
        ccdproc: on the CPU it is a view of :attr:`data` and :attr:`mask`; on the
        GPU a host mirror of them, which the next step (clipping, combining)
        takes in, and updates.
        """
        if self.backend.device == "cpu":
            return to_user(self.data, self.mask, self.backend)
        if self._mirror is None:
            self._mirror = to_user(self.data, self.mask, self.backend)
        return self._mirror

    @property
    def weights(self):
        """The weights as set (a NumPy array stays one on either device, and changing it in
        place changes the weights, as in ccdproc); None."""
        return self._weights

    @weights.setter
    def weights(self, value):
        if value is not None and getattr(value, "ndim", 1 if isinstance(value, (list, tuple))
                                         else 0) == 0:
            raise TypeError(f"weights must be an array, (N,) or (N, ny, nx); got "
                            f"{type(value).__name__}")
        options.checked_weights(value, self._source, self.backend)  # refused now, not later
        self._weights = np.asarray(value) if isinstance(value, (list, tuple)) else value

    def _device_weights(self):
        return options.checked_weights(self._weights, self._source, self.backend)

    @property
    def scaling(self):
        return self._scaling

    @scaling.setter
    def scaling(self, value):
        if isinstance(value, str):
            raise TypeError("Combiner.scaling takes multipliers or a callable; for "
                            "scale='mode'/'median'/'mean' use gpucal.combine")
        if value is not None and not callable(value) and getattr(
                value, "ndim", 1 if isinstance(value, (list, tuple)) else 0) == 0:
            raise TypeError(f"scaling must be a callable or one multiplier per frame; got "
                            f"{type(value).__name__}")
        if callable(value):  # ccdproc calls it on each frame of data_arr
            value = [value(frame) for frame in self.data_arr]
        self._scaling = options.scale_factors(value, ArraySource(self.data), self.dtype)

    def _scaled(self, factors=None):
        factors = self._scaling if factors is None else factors
        if factors is None:
            return self.data
        return self.data * self.backend.asarray(factors)[:, None, None]

    @_mirrored
    def minmax_clipping(self, min_clip=None, max_clip=None):
        """Reject raw values below `min_clip` or above `max_clip` (None: no bound)."""
        xp = self.backend.xp  # thresholds compared exactly, not rounded to float32
        if min_clip is not None:
            self.mask |= self.data < xp.float64(min_clip)
        if max_clip is not None:
            self.mask |= self.data > xp.float64(max_clip)

    @_mirrored
    def clip_extrema(self, nlow=0, nhigh=0):
        """Reject each pixel's `nlow` lowest and `nhigh` highest values.

        Ranks ignore earlier rejections (a rejected value still uses up a
        rank) and count NaN as highest, as in ccdproc.
        """
        nlow, nhigh = options.extrema_ranks(len(self.data), nlow, nhigh)
        self.mask |= self.backend.stack_clip_extrema(self._scaled(), nlow, nhigh)

    @_mirrored
    def sigma_clipping(self, low_thresh=3, high_thresh=3, func="mean", dev_func="std",
                       maxiters=1):
        """Reject values outside func ± thresh × dev_func of each pixel.

        As in ccdproc, the statistics use every finite value, including ones
        rejected before; `maxiters` > 1 iterates as astropy's sigma_clip does.
        """
        sigma = options.sigma_options(low_thresh, high_thresh, func, dev_func, maxiters)
        x = self._scaled()
        xp = self.backend.xp
        lo, hi = self.backend.stack_sigma_bounds(x, xp.isfinite(x), **sigma)
        self.mask |= ~((x >= lo) & (x <= hi))

    @_mirrored
    def _combine_frame(self, method, scale_to, func, uncertainty_func, sum_func):
        """(Frame, kind, like) for :func:`gpucal.sources.give_back`: the fast path, and the
        generic one for user functions."""
        factors = None if scale_to is None else options.scale_factors(
            scale_to, ArraySource(self.data), self.dtype)
        x = self._scaled(factors)
        value, uncertainty, nkept = self.backend.stack_reduce(
            x, ~self.mask, method, None if method == "median" else self._device_weights())
        if any(f is not None for f in (func, uncertainty_func, sum_func)):
            value, uncertainty = self._generic(method, x, nkept, value, uncertainty, func,
                                               uncertainty_func, sum_func)
        history = dict(method=method, nframes=len(self.data), combiner=True,
                       user_functions=", ".join(getattr(f, "__name__", "callable") for f in
                                                (func, uncertainty_func, sum_func)
                                                if f is not None) or None)
        frame = options.combined_frame(value, uncertainty, nkept, self._source, self.backend,
                                        self.dtype, history)
        return frame, self._source.kind, self._source.like

    def _generic(self, method, x, nkept, value, uncertainty, func, uncertainty_func, sum_func):
        """ccdproc's combination with user functions, called on the whole stack.

        The functions get what ccdproc 2.5.1 gives them, on either device (on
        the GPU host copies, see :func:`gpucal.sources.to_user`): a combination
        function a NumPy masked array of the (scaled) stack; an uncertainty
        function the same when a combination function was given too, else
        the stack with rejected values as NaN. Their results go back to the
        device. The uncertainty is divided by √n (and multiplied by n for
        "sum"), n the values kept.
        """
        xp = self.backend.xp
        wrapped = to_user(x, self.mask, self.backend)
        with_nan = wrapped.filled(np.nan)

        def plain(v):
            return from_user(v, self.backend)

        w = self._weights
        if w is not None:
            w = get_backend(w).to_numpy(w)
            w = w[:, None, None] if w.ndim == 1 else w
        if w is not None and method != "median" and sum_func is not None:
            total = plain(sum_func((wrapped if func is not None else with_nan) * w, axis=0))
            value = total if method == "sum" else total / plain(sum_func(
                np.broadcast_to(w, x.shape), axis=0))
        elif func is not None and (method == "median" or w is None):
            value = plain(func(wrapped, axis=0))
        if uncertainty_func is not None:
            n = nkept.astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                uncertainty = plain(uncertainty_func(wrapped if func is not None else with_nan,
                                                     axis=0)) / xp.sqrt(n)
                if method == "sum":
                    uncertainty = uncertainty * n
        return value, uncertainty

    def _combine(self, method, scale_to, func, uncertainty_func, sum_func=None):
        return give_back(*self._combine_frame(method, scale_to, func, uncertainty_func, sum_func))

    def median_combine(self, median_func=None, scale_to=None, uncertainty_func=None):
        """Median of the kept values; uncertainty 1.4826·MAD/√n.

        `median_func` and `uncertainty_func` (called as ``f(stack, axis=0)``)
        replace the statistics, as in ccdproc; they run on the generic path
        (see :meth:`_generic` for what they are given). The result is a
        CCDData, a Frame or an array, as the frames came in
        (:func:`gpucal.sources.give_back`).
        """
        return self._combine("median", scale_to, median_func, uncertainty_func)

    def average_combine(self, scale_func=None, scale_to=None, uncertainty_func=None,
                        sum_func=None):
        """Mean (weighted by :attr:`weights`) of the kept values; uncertainty std/√n.

        `scale_func` (the mean), `sum_func` (sums with weights) and
        `uncertainty_func` replace the statistics, as in ccdproc (generic path).
        """
        return self._combine("average", scale_to, scale_func, uncertainty_func, sum_func)

    def sum_combine(self, sum_func=None, scale_to=None, uncertainty_func=None):
        """Sum (weighted by :attr:`weights`) of the kept values; uncertainty std·√n.

        `sum_func` and `uncertainty_func` replace the statistics, as in ccdproc
        (generic path).
        """
        return self._combine("sum", scale_to, sum_func, uncertainty_func, sum_func)
