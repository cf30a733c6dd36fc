"""Bad pixels and columns from a flat (or a ratio of flats): IRAF's ccdmask as ccdproc has it."""

from .sources import image_data

__all__ = ["ccdmask"]

_ESTIMATORS = ("ccdproc", "iraf")
# The 30.9th and 69.1st percentiles of a normal distribution sit at ∓0.5 σ.
_LOW_PCT, _HIGH_PCT = 30.9, 69.1


def _window(value, name):
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def ccdmask(ratio, findbadcolumns=False, byblocks=False, ncmed=7, nlmed=7, ncsig=15, nlsig=15,
            lsigma=9, hsigma=9, ngood=5, *, sigma_estimator="ccdproc"):
    """Find bad pixels and columns in a flat field or a ratio of two flats.

    ccdproc's ``ccdmask`` (after IRAF's task), same parameters, defaults and
    result: a moving median (``nlmed`` lines × ``ncmed`` columns) is
    subtracted; a pixel is bad when its residual is below ``-lsigma·σ`` or
    above ``hsigma·σ``, σ being half the spread between the 30.9th and 69.1st
    percentiles of the residuals in a ``nlsig`` × ``ncsig`` window around it
    (or in fixed blocks with `byblocks`). With `findbadcolumns`, unflagged
    runs of up to `ngood` lines between bad pixels of a column are flagged too.
    The ratio of two flats of different level shows defects best (the seeds'
    tutorial); one flat works too.

    Parameters
    ----------
    ratio : 2-D array (NumPy or CuPy), Frame or CCDData
        float32 and float64 are computed in their own precision, as ccdproc
        does; other types in float64. Masks and uncertainties are ignored,
        as ccdproc ignores them.
    findbadcolumns : bool, default False
        Fill column gaps of at most `ngood` lines; with `byblocks`, also test
        each block's column sums.
    byblocks : bool, default False
        σ from fixed ``nlsig`` × ``ncsig`` blocks instead of a moving window.
    ncmed, nlmed : int, default 7
        Columns and lines of the moving median.
    ncsig, nlsig : int, default 15
        Columns and lines of the σ window or block.
    lsigma, hsigma : float, default 9
        Low and high thresholds in units of σ.
    ngood : int, default 5
        Longest gap filled in a column (only with `findbadcolumns`).
    sigma_estimator : {"ccdproc", "iraf"}, default "ccdproc"
        "ccdproc": σ = (P69.1 − P30.9) / 2, which is about half a Gaussian σ,
        so the default thresholds of 9 are about 4.5 true σ. "iraf": σ = P69.1
        − P30.9 as IRAF's code computes it (its help text says "divided by
        two", its code does not); use IRAF's defaults ``lsigma=6, hsigma=6``
        with it. The windows and ranks stay ccdproc's.

    Returns
    -------
    mask : 2-D bool array on the input's device
        True for bad pixels; non-finite input pixels are always bad.

    Raises
    ------
    TypeError, ValueError
        For input that is not a 2-D numeric image, or bad parameters.

    Notes
    -----
    Bit-identical to ``ccdproc.ccdmask`` 2.5.1 in the default mode and with
    `findbadcolumns`, for images without NaN. Where ccdproc's result is
    undefined or defective, gpucal does what the algorithm intends:

    * NaN pixels take no part in the windowed statistics (scipy's filters
      return undefined values around a NaN, and so ccdproc's neighbours of a
      NaN are flagged or not by chance); infinities take part as large values.
    * ``byblocks``: non-finite pixels stay flagged and a block containing
      one still gets its statistics from its other pixels (ccdproc overwrites
      the non-finite mask and flags nothing in such a block).
    * ``byblocks`` with ``findbadcolumns``: a block column is bad when the sum
      of its n good residuals is outside ``[-lsigma, hsigma] · σ·√n``, the
      spread of a sum of n values of spread σ (IRAF's column test). ccdproc
      compares with ``sqrt(block width - sum)``, mixing a pixel count with
      data values, and never flags low columns.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import ccdmask
    >>> rng = np.random.default_rng(0)
    >>> flat = rng.normal(1.0, 0.01, (200, 200)).astype(np.float32)
    >>> flat[50:60, 80] = 0.5     # a dead stretch of a column
    >>> flat[120, 30] = 1.5       # a hot pixel
    >>> mask = ccdmask(flat)
    >>> int(mask[50:60, 80].sum()), bool(mask[120, 30])
    (10, True)
    """
    data, backend = image_data(ratio, "ratio")
    xp = backend.xp
    ncmed, nlmed = _window(ncmed, "ncmed"), _window(nlmed, "nlmed")
    ncsig, nlsig = _window(ncsig, "ncsig"), _window(nlsig, "nlsig")
    if isinstance(ngood, bool) or int(ngood) != ngood or ngood < 0:
        raise ValueError(f"ngood must be a non-negative integer; got {ngood!r}")
    if sigma_estimator not in _ESTIMATORS:
        raise ValueError(f"sigma_estimator must be one of {_ESTIMATORS}; got {sigma_estimator!r}")
    # Python floats keep the data's precision in the comparisons, as in ccdproc.
    lsigma, hsigma = float(lsigma), float(hsigma)
    spread = 2.0 if sigma_estimator == "ccdproc" else 1.0

    mask = ~xp.isfinite(data)
    medsub = data - backend.rank_filter(data, (nlmed, ncmed), [backend.MEDIAN])[0]
    if not byblocks:
        mask |= backend.spread_outliers(medsub, (nlsig, ncsig), [_LOW_PCT, _HIGH_PCT], lsigma,
                                        hsigma, spread)
    else:
        mask |= _block_mask(xp, backend, medsub, (nlsig, ncsig), lsigma, hsigma, spread,
                            findbadcolumns)
    if findbadcolumns:
        mask = backend.fill_column_gaps(mask, int(ngood))
    return mask


def _block_mask(xp, backend, medsub, block, lsigma, hsigma, spread, column_test):
    """Flags of the byblocks mode: σ per block, then (optionally) the column-sum test."""
    nl, nc = medsub.shape
    bl, bc = block
    low, high = backend.block_percentiles(medsub, block, [_LOW_PCT, _HIGH_PCT])
    sig = (high - low) / spread
    sig_pix = xp.repeat(xp.repeat(sig, bl, axis=0), bc, axis=1)[:nl, :nc]
    bad = backend.outliers(medsub, sig_pix, lsigma, hsigma)
    if not column_test:
        return bad
    good = xp.isfinite(medsub) & ~bad
    nbl = sig.shape[0]
    pad = nbl * bl - nl
    # Sums of each block's column segments: (block rows, columns).
    resid = xp.pad(xp.where(good, medsub, 0), ((0, pad), (0, 0))).reshape(nbl, bl, nc)
    count = xp.pad(good, ((0, pad), (0, 0))).reshape(nbl, bl, nc).sum(axis=1)
    csum = resid.sum(axis=1, dtype=xp.float64)
    csig = xp.repeat(sig, bc, axis=1)[:, :nc].astype(xp.float64) * xp.sqrt(count)
    bad_column = (count > 0) & ((csum < -lsigma * csig) | (csum > hsigma * csig))
    return bad | xp.repeat(bad_column, bl, axis=0)[:nl]
