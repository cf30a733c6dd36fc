"""Windowed and column statistics of 2-D images: what ccdmask is built from.

Semantics are scipy.ndimage's and ccdproc's where those are defined:

* :func:`rank_filter` — exact windowed medians and percentiles with
  ``mode="reflect"`` borders and scipy's rank formulas. NaN takes no part (the
  rank is taken among the window's other values), where scipy's selection
  gives undefined results.
* :func:`spread_outliers` — ccdmask's windowed test (below ``-lsigma·σ`` or
  above ``hsigma·σ``, σ from two windowed percentiles), decided from
  bounded percentiles where that is enough and from exact ones elsewhere.
* :func:`fill_column_gaps` — ccdproc's ``findbadcolumns`` gap filling,
  vectorised over the whole image.
* :func:`block_percentiles` — ``np.percentile`` (linear interpolation) of
  each block of a grid, ignoring NaN.

The rank filter and the spread test run in the compiled ``_rankfilter``
module when it was built with the package (a C++ compiler at install time);
otherwise in NumPy, exact but slower (ccdmask of a 2048² flat: 1.9 s against
0.36 s, 2 cores).
"""

import functools
import math

import numpy as np

from .threads import run_all

try:
    from . import _rankfilter
except ImportError:  # built without a C++ compiler: the NumPy path below
    _rankfilter = None

MEDIAN = -1.0  # the rank-filter "percentile" that asks for the median (rank n // 2)


def check_arguments(image, size, percentiles):
    """Validate rank_filter's arguments (both backends): ((h, w), percentiles as floats).

    Raises
    ------
    TypeError
        If `image` is not a 2-D float32 or float64 array.
    ValueError
        For a window that is not positive, or a percentile outside [0, 100]
        that is not MEDIAN.
    """
    if image.ndim != 2 or image.dtype not in (np.float32, np.float64):
        raise TypeError("rank_filter takes a 2-D float32 or float64 array")
    h, w = (int(s) for s in size)
    if h < 1 or w < 1:
        raise ValueError(f"window size must be positive; got {size}")
    out = []
    for p in percentiles:
        p = float(p)
        if p != MEDIAN and not 0.0 <= p <= 100.0:
            raise ValueError(f"percentile must be in [0, 100]; got {p}")
        out.append(p)
    if not out:
        raise ValueError("at least one percentile is needed")
    return (h, w), out


def _ranks(n, percentiles):
    """scipy's rank of each percentile among `n` values (MEDIAN: n // 2)."""
    return [n // 2 if p == MEDIAN else n - 1 if p == 100.0 else
            (n.astype(np.float64) * p / 100.0).astype(np.intp) for p in percentiles]


def _rank_rows_numpy(image, size, percentiles, r0, r1):
    """Reference implementation: sort each window (NaN last) and pick the ranks."""
    h, w = size
    top, left = h // 2, w // 2
    rows = np.arange(r0 - top, r1 - top + h - 1)
    cols = np.arange(-left, image.shape[1] - left + w - 1)
    padded = image[np.ix_(_reflect(rows, image.shape[0]), _reflect(cols, image.shape[1]))]
    win = np.lib.stride_tricks.sliding_window_view(padded, (h, w))
    return _select(win.reshape(win.shape[0], win.shape[1], h * w), percentiles)


def _select(windows, percentiles):
    """The percentiles of windows (..., values), NaN ignored: (len(percentiles), ...)."""
    windows = np.sort(windows, axis=-1)  # NaN last
    n = np.count_nonzero(~np.isnan(windows), axis=-1)
    out = []
    for p, k in zip(percentiles, _ranks(n, percentiles)):
        k = np.clip(k, 0, windows.shape[-1] - 1)
        vals = np.take_along_axis(windows, np.asarray(k)[..., None], axis=-1)[..., 0]
        out.append(np.where(n > 0, vals, np.nan).astype(windows.dtype))
    return np.stack(out)


def _use_compiled(compiled):
    """Whether to run the compiled module: `compiled` if given (True needs it built), else if built."""
    if compiled and _rankfilter is None:
        raise RuntimeError("cpu_fallback._rankfilter was not built (no C++ compiler at install)")
    return _rankfilter is not None if compiled is None else bool(compiled)


def _reflect(i, n):
    """scipy's "reflect" border: d c b a | a b c d | d c b a."""
    if n == 1:
        return np.zeros_like(i)
    i = np.mod(i, 2 * n)
    return np.where(i < n, i, 2 * n - 1 - i)


def rank_filter(image, size, percentiles, *, threads=1, compiled=None):
    """Windowed rank statistics of a 2-D image, one output per percentile.

    Parameters
    ----------
    image : numpy.ndarray, 2-D, float32 or float64
    size : (int, int)
        Window (rows, columns); the window of pixel (i, j) spans rows
        ``i - size[0]//2`` ... ``i - size[0]//2 + size[0] - 1`` (scipy's origin 0).
    percentiles : sequence of float
        Each in [0, 100], or :data:`MEDIAN`. Of the n non-NaN window values,
        percentile p is the one of rank ``int(n * p / 100)`` (n - 1 for
        100) and the median is rank ``n // 2`` — scipy.ndimage's formulas
        with n for the window size; no interpolation.
    threads : int
        Row bands computed at once (the compiled module releases the GIL).
    compiled : bool, optional
        Force (True) or forbid (False) the compiled module; default: use it
        when built.

    Returns
    -------
    numpy.ndarray, shape (len(percentiles), *image.shape), image's dtype
        NaN where a window holds no value.
    """
    image = np.ascontiguousarray(image)
    (h, w), percentiles = check_arguments(image, size, percentiles)
    use_compiled = _use_compiled(compiled)
    H, W = image.shape
    out = np.empty((len(percentiles), H, W), image.dtype)
    if image.size == 0:
        return out
    # Bands of rows: each thread fills its own; the NumPy path bounds its window copies.
    spans = _bands(H, threads) if use_compiled else _spans(H, max(1, (1 << 22) // (W * h * w)))

    def run(span):
        r0, r1 = span
        if use_compiled:
            band = np.empty((len(percentiles), r1 - r0, W), image.dtype)
            _rankfilter.rank_rows(image, band, H, W, h, w, r0, r1,
                                  image.dtype == np.float64, percentiles)
        else:
            band = _rank_rows_numpy(image, (h, w), percentiles, r0, r1)
        out[:, r0:r1] = band

    run_all(run, spans, threads)
    return out


def outliers(x, sig, lsigma, hsigma):
    """ccdmask's test: `x` below ``-lsigma·sig`` or above ``hsigma·sig`` (NumPy or CuPy arrays).

    Python-float thresholds keep the arrays' precision, as in ccdproc.
    """
    return (x < -lsigma * sig) | (x > hsigma * sig)


def spread_test(x, low, high, lsigma, hsigma, spread):
    """:func:`outliers` with σ = ``(high - low) / spread``: ccdmask's test, given the percentiles."""
    return outliers(x, (high - low) / float(spread), float(lsigma), float(hsigma))


#: Most pixels whose spread test may be left to the exact rank filter, as a fraction of
#: the image: past it, one exact pass over the whole image is cheaper.
UNDECIDED_LIMIT = 0.01


def spread_outliers(image, size, percentiles, lsigma, hsigma, spread, *, threads=1,
                    compiled=None):
    """ccdmask's windowed test: ``outliers(image, (high - low) / spread, lsigma, hsigma)``.

    `low` and `high` are :func:`rank_filter`'s two `percentiles` of the
    ``size`` window around each pixel, and the result is that expression's,
    bit for bit. Only the decision is needed, so the compiled path bounds
    each percentile instead of finding it: the values go into 255 ordered
    bins (a monotone map keeps their rank order), a sliding histogram of bin
    numbers finds the bin of each rank, and the lowest and highest value in
    that bin bound the percentile. Rounding is monotone, so the bounds carry
    through ``(high - low) / spread`` and the products; a pixel outside both
    threshold ranges is decided, and the few near a threshold (about 1 in
    10⁴ on a flat) get their exact percentiles from their own windows.
    Where more than :data:`UNDECIDED_LIMIT` of the image is undecided (a
    scale the bins do not resolve), the exact :func:`rank_filter` does all.

    Parameters
    ----------
    image : numpy.ndarray, 2-D, float32 or float64
    size : (int, int)
        Window (rows, columns), as for :func:`rank_filter`.
    percentiles : (float, float)
        The low and high percentile.
    lsigma, hsigma : float
    spread : float
        Positive; σ is ``(high - low) / spread``.
    threads, compiled
        As for :func:`rank_filter`.

    Returns
    -------
    numpy.ndarray of bool
        False where `image` is NaN or a window has no value.
    """
    image = np.ascontiguousarray(image)
    size, percentiles = check_arguments(image, size, percentiles)
    # inf - inf (and 0 · inf) is NaN: never an outlier; near the float range's ends σ and
    # the thresholds overflow to ±inf, and compare as such (the compiled path says nothing).
    with np.errstate(invalid="ignore", over="ignore"):
        return _spread_outliers(image, size, percentiles, lsigma, hsigma, spread, threads,
                                compiled)


def _spread_outliers(image, size, percentiles, lsigma, hsigma, spread, threads, compiled):
    if len(percentiles) != 2 or MEDIAN in percentiles:
        raise ValueError(f"spread_outliers takes a low and a high percentile; got {percentiles}")
    lsigma, hsigma, spread = float(lsigma), float(hsigma), float(spread)
    if not spread > 0:
        raise ValueError(f"spread must be positive; got {spread}")
    use_compiled = _use_compiled(compiled)
    exact = functools.partial(_exact_outliers, image, size, percentiles, lsigma, hsigma, spread,
                              threads=threads, compiled=compiled)
    bins = _bins(image, percentiles) if use_compiled and image.size else None
    if bins is None:
        return exact()
    q, bmin, bmax = _quantize(image, *bins, threads)
    (H, W), (h, w) = image.shape, size
    state = np.empty(image.shape, np.uint8)

    def run(span):
        r0, r1 = span
        _rankfilter.classify(image, q, state[r0:r1], H, W, h, w, r0, r1, *percentiles, bmin, bmax,
                             lsigma, hsigma, spread, image.dtype == np.float64)

    run_all(run, _bands(H, threads), threads)
    undecided = np.flatnonzero(state == 2)
    if undecided.size > UNDECIDED_LIMIT * image.size:
        return exact()
    result = state == 1
    for start in range(0, undecided.size, 8192):  # bounded window copies
        chunk = undecided[start:start + 8192]
        rows, cols = np.divmod(chunk, W)
        rows = _reflect(rows[:, None] - h // 2 + np.arange(h), H)
        cols = _reflect(cols[:, None] - w // 2 + np.arange(w), W)
        low, high = _select(image[rows[:, :, None], cols[:, None, :]].reshape(-1, h * w),
                            percentiles)
        result.flat[chunk] = spread_test(image.flat[chunk], low, high, lsigma, hsigma, spread)
    return result


def _exact_outliers(image, size, percentiles, lsigma, hsigma, spread, *, threads, compiled):
    low, high = rank_filter(image, size, percentiles, threads=threads, compiled=compiled)
    return spread_test(image, low, high, lsigma, hsigma, spread)


def _bins(image, percentiles):
    """The range of values :func:`spread_outliers` splits into bins, or None.

    The binned range is the image's median ± 4 times the spread of the two
    percentiles, estimated from a sample of about 65 000 pixels.
    """
    step = max(1, image.size // 65536) | 1  # odd: not one column over and over
    sample = image.reshape(-1)[::step]
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return None
    low, mid, high = np.percentile(sample, [percentiles[0], 50.0, percentiles[1]])
    width = 8.0 * float(high - low)
    if not (np.isfinite(width) and width > 0):
        return None
    return float(mid) - width / 2, float(mid) + width / 2


def _quantize(image, lo, hi, threads):
    """Bin numbers (uint8, 255 for NaN) and each bin's lowest and highest value."""
    q = np.empty(image.shape, np.uint8)
    spans = _bands(image.shape[0], threads)
    bmin = np.full((len(spans), 255), np.inf, image.dtype)
    bmax = np.full((len(spans), 255), -np.inf, image.dtype)

    def run(i):
        r0, r1 = spans[i]
        _rankfilter.quantize(image[r0:r1], q[r0:r1], lo, hi, bmin[i], bmax[i],
                             image.dtype == np.float64)

    run_all(run, range(len(spans)), threads)
    return q, bmin.min(axis=0), bmax.max(axis=0)


def _bands(rows, threads):
    """Row ranges, one per thread."""
    return _spans(rows, max(1, math.ceil(rows / max(1, threads))))


def _spans(total, step):
    """(start, stop) ranges of `step` covering ``range(total)``."""
    return [(r, min(r + step, total)) for r in range(0, total, step)]


def fill_column_gaps(mask, ngood):
    """ccdproc's findbadcolumns gap filling, without a loop over columns.

    ccdproc walks each column from the top: at every flagged line ``L <=
    nlines - ngood - 2`` it flags everything up to the farthest flagged line
    within ``L + ngood + 1``, and lines it fills become starting points too.
    That loop works out to two rules, applied here to all columns at once:

    1. a gap of at most `ngood` unflagged lines between two flagged lines is
       filled when its upper flagged line is at or above ``nlines - ngood - 2``;
    2. a column whose line ``nlines - ngood - 2`` is flagged after rule 1 is
       flagged from there down to its last flagged line.

    Parameters
    ----------
    mask : numpy.ndarray of bool, 2-D (lines, columns)
    ngood : int

    Returns
    -------
    numpy.ndarray of bool
        A new array.
    """
    nl = mask.shape[0]
    last_start = nl - ngood - 2
    mask = np.array(mask, dtype=bool)
    if last_start < 0 or mask.size == 0:
        return mask
    # Work on the flagged pixels only, column by column: (column, line) sorted.
    lines, cols = np.divmod(np.flatnonzero(mask), mask.shape[1])  # n-D nonzero is slow
    order = np.argsort(cols, kind="stable")
    cols, lines = cols[order], lines[order]
    same_col = cols[1:] == cols[:-1]
    gap = lines[1:] - lines[:-1] - 1
    rule1 = same_col & (gap >= 1) & (gap <= ngood) & (lines[:-1] <= last_start)
    _fill_runs(mask, cols[:-1][rule1], lines[:-1][rule1] + 1, gap[rule1])
    last = np.flatnonzero(np.append(~same_col, True)) if cols.size else cols
    col_last, line_last = cols[last], lines[last]
    rule2 = mask[last_start, col_last] & (line_last > last_start)
    _fill_runs(mask, col_last[rule2], np.full(int(rule2.sum()), last_start),
               line_last[rule2] - last_start)
    return mask


def _fill_runs(mask, cols, starts, lengths):
    """Set mask[start:start + length, col] for each run, without a loop."""
    total = int(lengths.sum())
    if not total:
        return
    offsets = np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    mask[np.repeat(starts, lengths) + offsets, np.repeat(cols, lengths)] = True


def block_percentiles(image, block, percentiles):
    """``np.percentile`` of every block of a grid, NaN ignored.

    Parameters
    ----------
    image : numpy.ndarray, 2-D
    block : (int, int)
        Block (rows, columns); the last block row and column may be partial.
    percentiles : sequence of float

    Returns
    -------
    numpy.ndarray, shape (len(percentiles), block rows, block columns)
        NaN for a block with no value. Equal, bit for bit, to
        ``np.percentile(values, p)`` of each block's non-NaN values.
    """
    nl, nc = image.shape
    bl, bc = block
    nbl, nbc = -(-nl // bl), -(-nc // bc)
    padded = np.full((nbl * bl, nbc * bc), np.nan, image.dtype)
    padded[:nl, :nc] = image
    blocks = padded.reshape(nbl, bl, nbc, bc).swapaxes(1, 2).reshape(nbl * nbc, bl * bc)
    blocks = np.sort(blocks, axis=1)  # NaN (and the padding) last
    n = np.count_nonzero(~np.isnan(blocks), axis=1)
    result = np.full((len(percentiles), nbl * nbc), np.nan, image.dtype)
    for count in np.unique(n[n > 0]):  # blocks of one size go through np.percentile together
        rows = np.flatnonzero(n == count)
        result[:, rows] = np.percentile(blocks[rows, :count], list(percentiles), axis=1)
    return result.reshape(len(percentiles), nbl, nbc)
