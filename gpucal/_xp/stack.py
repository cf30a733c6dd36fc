"""Per-pixel statistics over a stack of frames, written once for NumPy and CuPy.

Every function takes the array namespace ``xp`` and a (frames, pixels) stack
``x``: reductions over frames are then N vector operations on contiguous rows.
Sorts, which want each pixel's values contiguous, transpose internally.
Rejected values are carried in a boolean ``keep`` array, never by compacting.

The semantics are those of ccdproc 2.5.1's Combiner and astropy 8's
``sigma_clip`` (its C fast path), which the tests use as oracles:

* statistics are float64 whatever the data's dtype;
* sigma clipping keeps ``lo <= x <= hi``; each iteration recomputes centre
  and deviation on the values kept so far and stops when nothing changes,
  nothing is left, or after ``maxiters``; the last bounds apply to all values;
* ``std`` is the population standard deviation (about the mean, even when the
  centre is the median); ``mad_std`` is 1.482602218505602 × the median
  absolute deviation from the median (``mad`` without the factor); medians of
  an even count average the two middle values.

Clipping keeps a contiguous run of each pixel's sorted values, so for the
median-based statistics one sort serves every iteration: the run's ends move,
the data do not.
"""

import contextlib

MAD_TO_STD = 1.482602218505602  # 1 / Φ⁻¹(3/4): a normal distribution's σ / MAD


def _quiet(xp):
    """Silence 0/0 and sqrt(NaN) warnings where the namespace has them (NumPy)."""
    errstate = getattr(xp, "errstate", None)
    return errstate(invalid="ignore", divide="ignore") if errstate else contextlib.nullcontext()


def _masked_sum(xp, a, where):
    """Sum over frames of the values where `where` holds."""
    if getattr(xp, "__name__", "") == "numpy":  # no temporary array: 2x faster
        return xp.sum(a, axis=0, where=where)
    return xp.where(where, a, 0).sum(axis=0)


def _sorted(xp, x, keep):
    """(N, P) view: each pixel's kept values ascending, then NaN (x's dtype)."""
    s = xp.where(keep, x, xp.nan).T.copy()
    s.sort(axis=1)
    return s.T  # a view: each pixel's values stay contiguous for gathers and sorts


def _kth(xp, s, k):
    """``s[k[p], p]`` for every pixel p, k clipped into the stack."""
    k = xp.clip(k, 0, s.shape[0] - 1)
    return xp.take_along_axis(s, k[None, :], axis=0)[0]


def _median_of_run(xp, s, start, n):
    """Median of ``s[start:start+n, p]`` (sorted), float64; NaN where n is 0."""
    lo = _kth(xp, s, start + (n - 1) // 2).astype(xp.float64)
    hi = _kth(xp, s, start + n // 2).astype(xp.float64)
    with _quiet(xp):
        return xp.where(n > 0, (lo + hi) / 2, xp.nan)


def _mad_sorted(xp, s, med, n, in_run=None):
    """Median absolute deviation from `med` of each pixel's sorted run, float64.

    `s` is what :func:`_sorted` returns; the run is its first `n` values, or
    those where `in_run` holds. Deviations are taken on the sorted rows as
    they lie in memory, so no further transposes are needed.
    """
    dev = xp.subtract(s.T, med[:, None], dtype=xp.float64)
    xp.abs(dev, out=dev)  # NaN (values not kept) stays NaN and sorts last
    if in_run is not None:
        dev = xp.where(in_run.T, dev, xp.nan)
        n = xp.count_nonzero(in_run, axis=0)
    dev.sort(axis=1)
    return _median_of_run(xp, dev.T, xp.zeros_like(n), n)


def _sum_mean_std(xp, x, keep, n):
    """Sum, mean and (two-pass, population) standard deviation of the kept values."""
    with _quiet(xp):
        total = _masked_sum(xp, x, keep)
        mean = total / n
        d = x - mean
        d *= d
        return total, mean, xp.sqrt(_masked_sum(xp, d, keep) / n)


def extreme_ranks(xp, x, nlow, nhigh):
    """True for the `nlow` lowest and `nhigh` highest values of each pixel.

    Ranks ignore any mask and put NaN above every number (ccdproc's
    ``clip_extrema``); ties are ranked by frame order.
    """
    order = xp.argsort(x.T, axis=1, kind="stable")
    rank = xp.argsort(order, axis=1, kind="stable").T
    return (rank < nlow) | (rank >= x.shape[0] - nhigh)


def _bounds_mean_std(xp, x, keep, sigma_lower, sigma_upper, maxiters):
    """Mean/std clipping needs no sort: iterate on the keep mask itself."""
    n = xp.count_nonzero(keep, axis=0)
    lo = xp.full(n.shape, xp.nan)
    hi = xp.full(n.shape, xp.nan)
    active = n > 0
    iteration = 0
    while maxiters is None or iteration < maxiters:
        iteration += 1
        _, mean, std = _sum_mean_std(xp, x, keep, n)
        lo = xp.where(active, mean - sigma_lower * std, lo)
        hi = xp.where(active, mean + sigma_upper * std, hi)
        if iteration == maxiters:  # the last bounds: no need to find what they keep
            break
        new_keep = x >= lo
        new_keep &= x <= hi
        new_keep &= keep
        new_n = xp.count_nonzero(new_keep, axis=0)
        keep = xp.where(active, new_keep, keep)
        active &= (new_n != n) & (new_n > 0)
        n = xp.where(active, new_n, n)
        if not bool(active.any()):
            break
    return lo, hi


def _run_stats(xp, s, start, stop, cenfunc, stdfunc):
    """Centre and deviation of the sorted run ``s[start:stop, p]`` (float64)."""
    n = stop - start
    rows = xp.arange(s.shape[0])[:, None]
    in_run = (rows >= start) & (rows < stop)
    if cenfunc == "mean" or stdfunc == "std":
        _, mean, std = _sum_mean_std(xp, s, in_run, n)
    if cenfunc == "median" or stdfunc != "std":
        med = _median_of_run(xp, s, start, n)
    cen = mean if cenfunc == "mean" else med
    if stdfunc == "std":
        return cen, std
    mad = _mad_sorted(xp, s, med, n, in_run)
    return cen, (mad * MAD_TO_STD if stdfunc == "mad_std" else mad)


def sigma_bounds(xp, x, valid, *, sigma_lower, sigma_upper, maxiters, cenfunc, stdfunc):
    """Sigma-clipping bounds per pixel, computed from the `valid` values.

    Parameters
    ----------
    x : (N, P) array
    valid : (N, P) bool
        Values that take part in the statistics (non-finite ones never do).
    maxiters : int or None
        None iterates until nothing changes.

    Returns
    -------
    lo, hi : (P,) float64
        NaN where a pixel has no valid value.
    """
    keep = valid & xp.isfinite(x)
    x = x.astype(xp.float64, copy=False)
    if cenfunc == "mean" and stdfunc == "std":
        return _bounds_mean_std(xp, x, keep, sigma_lower, sigma_upper, maxiters)
    s = _sorted(xp, x, keep)
    start = xp.zeros(s.shape[1], dtype=xp.int64)
    stop = xp.count_nonzero(keep, axis=0).astype(xp.int64)
    lo = xp.full(s.shape[1], xp.nan)
    hi = xp.full(s.shape[1], xp.nan)
    active = stop > 0
    iteration = 0
    while maxiters is None or iteration < maxiters:
        iteration += 1
        cen, dev = _run_stats(xp, s, start, stop, cenfunc, stdfunc)
        lo = xp.where(active, cen - sigma_lower * dev, lo)
        hi = xp.where(active, cen + sigma_upper * dev, hi)
        if iteration == maxiters:
            break
        # the kept run shrinks to the values inside the new bounds
        new_start = xp.maximum(start, xp.count_nonzero(s < lo, axis=0))
        new_stop = xp.minimum(stop, xp.count_nonzero(s <= hi, axis=0))
        changed = (new_start != start) | (new_stop != stop)
        start = xp.where(active, new_start, start)
        stop = xp.where(active, new_stop, stop)
        active &= changed & (stop > start)
        if not bool(active.any()):
            break
    return lo, hi


def reduce(xp, x, keep, method, weights=None):
    """Combine the kept values of each pixel as ccdproc does.

    Parameters
    ----------
    x : (N, P) array
    keep : (N, P) bool
        False for rejected and non-finite values.
    method : {"median", "average", "sum"}
    weights : (N,) or (N, P) array, optional
        For "average" and "sum". Weights of rejected values are left out of
        the normalisation (ccdproc 2.5.1 keeps them: its issue #893). A pixel
        whose kept values all weigh 0 has nothing kept (n = 0): its average
        would be 0/0.

    Returns
    -------
    value, uncertainty : (P,) float64
        median: median and 1.4826·MAD/√n; average: mean (weighted if given)
        and std/√n; sum: sum and std·√n.  Standard deviations are unweighted
        (as in ccdproc). With nothing kept: NaN, NaN for median and average;
        0, NaN for sum.
    n : (P,) int
        Number of kept values.
    """
    if method not in ("median", "average", "sum"):
        raise ValueError(f"method must be 'average', 'median' or 'sum'; got {method!r}")
    n = xp.count_nonzero(keep, axis=0)
    with _quiet(xp):
        if method == "median":
            # the median is an order statistic: sorting in x's dtype is exact and fast;
            # deviations from it are not, so _mad_sorted takes them in float64
            s = _sorted(xp, x, keep)
            value = _median_of_run(xp, s, xp.zeros_like(n), n)
            return value, MAD_TO_STD * _mad_sorted(xp, s, value, n) / xp.sqrt(n), n
        x = x.astype(xp.float64, copy=False)
        total, average, std = _sum_mean_std(xp, x, keep, n)
        if weights is not None:
            w = xp.asarray(weights, dtype=xp.float64)
            if w.ndim == 1:
                w = w[:, None]
            total = _masked_sum(xp, x * w, keep)
            average = total / _masked_sum(xp, xp.broadcast_to(w, x.shape), keep)
            weighed = xp.count_nonzero(keep & (w != 0), axis=0) > 0
            n = xp.where(weighed, n, 0)  # only zero weights kept: no data
            std = xp.where(weighed, std, xp.nan)
        if method == "average":
            return average, std / xp.sqrt(n), n
        return total, std * xp.sqrt(n), n


def combine(xp, x, mask=None, *, scale=None, minmax=None, extrema=None, sigma=None,
            method="average", weights=None):
    """Reject and combine, per pixel: the whole of ``gpucal.combine`` for one chunk.

    Order: non-finite and masked values are rejected; ``minmax = (min, max)``
    rejects raw values outside it (either may be None); then the values are
    multiplied by ``scale`` (N,); ``extrema = (nlow, nhigh)`` rejects the
    extreme ranks and ``sigma`` (a dict of :func:`sigma_bounds` keywords)
    rejects values outside bounds computed from every finite value (masked
    ones included, as ccdproc does); finally :func:`reduce`.

    Returns what :func:`reduce` returns.
    """
    finite = xp.isfinite(x)
    keep = finite.copy()
    if mask is not None:
        keep &= ~mask
    if minmax is not None:  # thresholds compared exactly: float64, not rounded to x's dtype
        low, high = minmax
        if low is not None:
            keep &= ~(x < xp.float64(low))
        if high is not None:
            keep &= ~(x > xp.float64(high))
    if scale is not None:
        x = x * xp.asarray(scale, dtype=xp.float64)[:, None]
    if extrema is not None:
        keep &= ~extreme_ranks(xp, x, *extrema)
    if sigma is not None:
        if method != "median":  # convert once for both the bounds and the sums
            x = x.astype(xp.float64, copy=False)
        lo, hi = sigma_bounds(xp, x, finite, **sigma)
        keep &= x >= lo
        keep &= x <= hi
    return reduce(xp, x, keep, method, weights)
