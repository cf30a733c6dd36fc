"""Robust statistics on either backend: astropy's sigma clipping, the histogram mode."""

import math

import numpy as np

from ._dtype import refuse_complex
from .backend import get_backend

__all__ = ["image_stats", "mode", "sigma_clip", "statistic"]

#: Values binned at a time by :func:`image_stats`: its temporaries stay near 7 MB.
_HISTOGRAM_CHUNK = 1 << 18

# Callables that scripts pass to astropy/ccdproc, by the statistic they compute.
_CENFUNC_NAMES = {np.mean: "mean", np.nanmean: "mean", np.ma.mean: "mean",
                  np.median: "median", np.nanmedian: "median", np.ma.median: "median"}
_STDFUNC_NAMES = {np.std: "std", np.nanstd: "std", np.ma.std: "std"}


def stat_name(func, kind):
    """The name ("mean", "median", "std", "mad_std" or "mad") of a centre or deviation function.

    Accepts astropy's strings and the callables scripts commonly pass
    (``np.median``, ``np.ma.mean``, ``astropy.stats.mad_std``, ...).
    """
    from astropy.stats import mad_std, median_absolute_deviation

    if kind == "cenfunc":
        names, valid = _CENFUNC_NAMES, ("mean", "median")
    else:
        names = {**_STDFUNC_NAMES, mad_std: "mad_std", median_absolute_deviation: "mad"}
        valid = ("std", "mad_std")
    if isinstance(func, str):
        if func not in valid:
            raise ValueError(f"{kind} must be one of {', '.join(map(repr, valid))} "
                             f"(or the matching NumPy/astropy function); got {func!r}")
        return func
    try:
        return names[func]
    except (KeyError, TypeError):
        raise TypeError(f"{kind}={func!r} is not supported: gpucal computes {kind} on the GPU "
                        f"too, so it takes one of {', '.join(map(repr, valid))} or the "
                        "matching NumPy/astropy function") from None


def _clip_layout(shape, axis):
    """Axes clipped over, and the permutation that puts them first."""
    ndim = len(shape)
    if axis is None:
        axes = tuple(range(ndim))
    else:
        axes = tuple(sorted({int(a) % ndim for a in np.atleast_1d(axis)}))
        if any(not -ndim <= int(a) < ndim for a in np.atleast_1d(axis)):
            raise np.exceptions.AxisError(f"axis {axis} is out of bounds for {ndim}-D data")
    rest = tuple(a for a in range(ndim) if a not in axes)
    return axes, rest


def sigma_clip(data, sigma=3.0, sigma_lower=None, sigma_upper=None, maxiters=5,
               cenfunc="median", stdfunc="std", axis=None, masked=True, return_bounds=False):
    """Sigma-clip data as ``astropy.stats.sigma_clip`` does, on the CPU or the GPU.

    Values outside ``[cen - sigma_lower·std, cen + sigma_upper·std]`` are
    rejected, the statistics recomputed on the values kept, until nothing
    changes or `maxiters` is reached; the last bounds are then applied to all
    data. Non-finite values and masked values (of a NumPy MaskedArray) never
    take part and are always masked.

    Parameters
    ----------
    data : array_like, numpy.ma.MaskedArray or cupy.ndarray
    sigma : float, default 3
        Used for a bound whose own value is None or 0 (astropy's rule).
    sigma_lower, sigma_upper : float, optional
    maxiters : int or None, default 5
        None or 0: iterate until nothing changes.
    cenfunc : {"median", "mean"} or the matching NumPy function
    stdfunc : {"std", "mad_std"}, ``np.std`` or ``astropy.stats.mad_std``
        ``std`` is about the mean even when the centre is the median.
    axis : None, int or tuple of int
        Axes to clip along; None clips the flattened data.
    masked : bool, default True
        True: a MaskedArray (NumPy input only). False: with `axis`, a float
        copy with clipped values set to NaN (integers become float32); without,
        the values kept, flattened.
    return_bounds : bool, default False
        Also return the lower and upper bounds (scalars without `axis`, else
        arrays shaped like the data without the clipped axes).

    Returns
    -------
    result : numpy.ma.MaskedArray or array
    lo, hi : float or array, only with ``return_bounds=True``

    Raises
    ------
    TypeError
        For ``masked=True`` with CuPy input (NumPy's masked arrays have no GPU
        counterpart: use ``masked=False``), or an unsupported function.

    See Also
    --------
    astropy.stats.sigma_clip : the reference; its C fast path's results.

    Notes
    -----
    Statistics are computed in float64 for any input dtype, as astropy's fast
    path does. With ``axis=None`` astropy computes them in the data's dtype, so
    float32 masks can differ where a value lies within float32 rounding of a
    bound. With ``masked=False, axis=None`` gpucal returns the values inside
    the last bounds; astropy returns those that survived every iteration (the
    same unless an early-rejected value falls back inside). No warning is
    emitted for non-finite input.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import sigma_clip
    >>> x = np.array([1.0, 2.0, 3.0, 2.0, 100.0])
    >>> sigma_clip(x, sigma=2).mask
    array([False, False, False, False,  True])
    """
    mask_in = None
    if isinstance(data, np.ma.MaskedArray):
        mask_in = np.ma.getmaskarray(data)
        data = data.data
    backend = get_backend(data)
    xp = backend.xp
    values = backend.asarray(data)
    refuse_complex(values.dtype, "sigma_clip")
    if masked and backend.device == "gpu":
        raise TypeError("sigma_clip(masked=True) returns a NumPy MaskedArray; for CuPy input "
                        "use masked=False (clipped values become NaN)")
    sigma_lower = sigma_lower or sigma
    sigma_upper = sigma_upper or sigma
    cen, dev = stat_name(cenfunc, "cenfunc"), stat_name(stdfunc, "stdfunc")
    if values.size == 0:
        result = np.ma.MaskedArray(values) if masked else values
        return (result, math.nan, math.nan) if return_bounds else result

    axes, rest = _clip_layout(values.shape, axis)
    rest_shape = tuple(values.shape[a] for a in rest)
    stack = xp.transpose(values, axes + rest).reshape(-1, math.prod(rest_shape))
    valid = (xp.ones(stack.shape, bool) if mask_in is None
             else ~np.transpose(mask_in, axes + rest).reshape(stack.shape))
    lo, hi = backend.stack_sigma_bounds(stack, valid, sigma_lower=sigma_lower,
                                        sigma_upper=sigma_upper, maxiters=maxiters or None,
                                        cenfunc=cen, stdfunc=dev)
    # bounds broadcast back over the clipped axes
    expand = [slice(None) if a in rest else None for a in range(values.ndim)]
    lo_b, hi_b = lo.reshape(rest_shape)[tuple(expand)], hi.reshape(rest_shape)[tuple(expand)]
    clipped = ~xp.isfinite(values) | (values < lo_b) | (values > hi_b)
    if mask_in is not None:
        clipped |= mask_in
    if masked:
        result = np.ma.MaskedArray(values, mask=clipped, copy=True)
    elif axis is None:
        result = values[~clipped]
    else:
        result = values.astype(values.dtype if values.dtype.kind == "f" else xp.float32, copy=True)
        result[clipped] = xp.nan
    if not return_bounds:
        return result
    if axis is None:
        return result, float(lo[0]), float(hi[0])
    return result, lo.reshape(rest_shape), hi.reshape(rest_shape)


def mode(image, mask=None, *, nclip=3, lsig=3.0, usig=3.0, binwidth=0.1):
    """Histogram mode of the sigma-clipped pixel values (drizzlepac's sky mode).

    This is ``stsci.imagestats.ImageStats(image, fields="mode", nclip=3)``,
    the statistic drizzlepac's static mask and the seeds' flat normalisation
    use: values are clipped `nclip` times at mean ± `lsig`/`usig` × standard
    deviation (ddof 1); the whole image is then binned over the clipped range
    with bins of `binwidth` × the clipped standard deviation, and the peak is
    located by parabolic interpolation.

    Parameters
    ----------
    image : array_like (NumPy or CuPy)
    mask : array_like of bool, optional
        True pixels are ignored.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If no finite, unmasked pixel is left.

    Notes
    -----
    Computed in float32 as ImageStats does. Differences from ImageStats:
    non-finite and masked pixels are ignored (ImageStats returns NaN when the
    image contains a NaN), and a single pixel value, or a constant image, has
    that value as its mode (ImageStats: NaN for a single pixel).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.stats import mode
    >>> rng = np.random.default_rng(1)
    >>> sky = np.concatenate([rng.normal(1000, 10, 100_000), rng.uniform(0, 5e4, 5_000)])
    >>> abs(mode(sky) - 1000) < 1
    True
    """
    return image_stats(image, mask, nclip=nclip, lsig=lsig, usig=usig,
                       binwidth=binwidth)[0]


def statistic(name, data, mask=None):
    """The "mode", "median" or "mean" of the finite, unmasked values of `data` (NaN if none).

    Flat normalisation uses it (``combine(..., scale="mode")``, master flats).
    """
    if name == "mode":
        try:
            return mode(data, mask)
        except ValueError:  # nothing finite and unmasked
            return math.nan
    xp = get_backend(data).xp
    good = xp.isfinite(data) if mask is None else xp.isfinite(data) & ~mask
    values = data[good]  # a copy, which the median may reorder
    del good
    if values.size == 0:
        return math.nan
    return float(xp.median(values, overwrite_input=True) if name == "median"
                 else values.mean(dtype=xp.float64))


def image_stats(image, mask=None, *, nclip=3, lsig=3.0, usig=3.0, binwidth=0.1):
    """(mode, stddev, nbins) as ``stsci.imagestats.ImageStats`` computes them.

    `stddev` is the clipped standard deviation; `nbins` is the length of the
    histogram the mode was read from (1 when it was degenerate: drizzlepac's
    static mask then skips the image). See :func:`mode` for the parameters.
    """
    backend = get_backend(image, mask)
    xp = backend.xp
    x = backend.asarray(image)
    refuse_complex(x.dtype, "image")
    x = backend.asarray(x, np.float32).ravel()
    good = xp.isfinite(x)
    if mask is not None:
        good &= ~backend.asarray(mask, bool).ravel()
    if not bool(good.all()):  # no copy of an image that is all good
        x = x[good]
    del good
    if x.size == 0:
        raise ValueError("mode: no finite, unmasked pixel")
    f32 = np.float32
    lower, upper = f32(float(x.min())), f32(float(x.max()))  # float(): CuPy 0-d arrays
    clipmin, clipmax = lower, upper
    scratch = xp.empty_like(x)  # the deviations of every pass, without fresh allocations
    for iteration in range(nclip + 1):
        # The first pass takes every value: [lower, upper] is their whole range.
        sel = x if iteration == 0 else x[(x >= clipmin) & (x <= clipmax)]
        n = sel.size
        mean = f32(float(sel.sum(dtype=xp.float64)) / n)
        d = xp.subtract(sel, mean, out=scratch[:n])
        d *= d
        std = f32(math.sqrt(float(d.sum(dtype=xp.float64)) / (n - 1))) if n > 1 else f32(0)
        if iteration < nclip:
            clipmin = f32(max(lower, float(mean) - lsig * float(std)))
            clipmax = f32(min(upper, float(mean) + usig * float(std)))
    low, high = float(sel.min()), float(sel.max())  # of the last pass's values
    hwidth = binwidth * float(std)
    drange = high - low
    tiny = 10.0 * float(np.finfo(np.float32).eps)
    if hwidth < tiny or abs(drange) < tiny or hwidth > drange:
        return low + 0.5 * hwidth, float(std), 1
    nbins = int((high - low) / hwidth) + 1
    # stsci.imagestats' histogram1d, in its float32 arithmetic
    width, origin = f32((high - low) / (nbins - 1)), f32(low)
    edge = f32(origin + width * f32(nbins))
    scale = f32(1.0) / width
    del sel, d, scratch
    counts = xp.zeros(nbins, xp.int64)
    for start in range(0, x.size, _HISTOGRAM_CHUNK):  # the same counts in bounded memory
        part = x[start:start + _HISTOGRAM_CHUNK]
        inside = part[(part >= origin) & (part < edge)]
        counts += xp.bincount(xp.minimum((scale * (inside - origin)).astype(xp.int64),
                                         nbins - 1), minlength=nbins)
    bins = [int(b) for b in backend.to_numpy(counts)]
    return low + _peak_offset(bins) * hwidth, float(std), nbins


def _peak_offset(bins):
    """Position of the histogram's peak in bins, parabolically interpolated (ImageStats)."""
    if len(bins) == 2:
        return 0.5 if bins[0] > bins[1] else 1.5 if bins[0] < bins[1] else 1.0
    peak = bins.index(max(bins))
    if peak == 0:
        return 0.5
    if peak == len(bins) - 1:
        return len(bins) - 0.5
    dh1, dh2 = bins[peak] - bins[peak - 1], bins[peak] - bins[peak + 1]
    return peak + 0.5 + (0.0 if dh1 + dh2 == 0 else 0.5 * (dh1 - dh2) / (dh1 + dh2))
