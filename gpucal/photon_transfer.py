"""Gain (e⁻/ADU) and read noise (e⁻) of a CCD measured from a night's own flats and biases.

Many acquisition programs (NINA, SharpCap, ASIAIR) write no usable e⁻/ADU or
read noise into their headers; the photon transfer method (Janesick, *Photon
Transfer*, 2007; IRAF's ``findgain``) measures both from two flats and two
biases of the same detector::

    gain      = (S1 + S2) / (var(F1 - F2) - var(B1 - B2))        [e⁻/ADU]
    readnoise = gain * std(B1 - B2) / sqrt(2)                     [e⁻]

where ``S1, S2`` are the flats' mean levels above the bias. Differencing two
frames cancels their fixed pattern (the flat field's pixel response, the
bias's column structure), leaving photon and read noise.

How gpucal computes it
----------------------
Region
    By default the central half of the frame in each axis (rows and columns
    ``n//4`` to ``n//4 + n//2``): it avoids vignetted corners, edge rows and
    columns and most amplifier glow. Frames narrower than 128 pixels are used
    whole. Any region is accepted as an IRAF section string (``"[*,*]"`` is
    the whole frame) or a ``(rows, cols)`` pair of slices; overscan and
    trimming are the caller's concern (give raw data sections).
Tiles
    The region is cut into a grid of equal tiles (``side // 32`` per axis,
    at least 2 and at most 16; the few rows or columns left over at the far
    side are not used). Each tile's difference image is measured about its
    own centre, so a slow change of illumination between two twilight flats
    does not count as noise; the spread of the tiles' estimates gives the
    uncertainty (standard error = standard deviation of the tile estimates
    / sqrt(number of tiles)). The value itself is pooled over all tiles.
Robust variance
    Each tile's difference is clipped iteratively at ±4σ about its mean,
    starting from the median and 1.4826·MAD (5 passes). The variance of the
    values kept is divided by the variance of a unit normal truncated at
    ±4σ (0.99893), so that for Gaussian noise the estimate is unbiased:
    the fixed point of the iteration is the true σ. Compared with the
    1.4826·MAD or IQR scale (also unbiased, but only 37 % efficient) this
    keeps almost all of the statistical power of the plain variance
    (an uncertainty ~1.65 times smaller for the same pixels) while cosmic rays,
    hot pixels and other defects beyond 4σ are rejected. The flats' and
    biases' mean levels are taken over the pixels kept in the difference,
    so the mean and the variance describe the same pixels.
Unequal flats
    Twilight flats differ in level. The second flat is scaled to the first
    about the bias, ``D = (F1 - B) - a (F2 - B)`` with ``a = S1 / S2``
    (ratio of the bias-subtracted medians), which cancels the pixel
    response pattern exactly; the photon transfer relation then reads
    ``gain = (S1 + a² S2) / (var(D) - (1 + a²) σ²)``, ``σ² = var(B1-B2)/2``
    the read variance of one frame in ADU² (the usual formula for ``a = 1``).
    A dark signal does not scale with the flat's level: in a scaled pair a
    hot pixel's dark charge leaves ``(1 - a)·dark`` in the difference. For
    flats of a few seconds this is negligible (hot pixels of up to 5000 e⁻
    in 0.5 % of the pixels and flats 5 % apart: about -0.4 % in the gain);
    pair flats of equal level where the detector has many very hot pixels.

Everything is computed in float64 on the backend of the input (NumPy or CuPy);
integer input (uint16) is converted before it is differenced, so it never wraps.
"""

import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._xp.stack import MAD_TO_STD
from .backend import get_backend
from .sections import check_section, parse_section
from .sources import image_data

__all__ = ["DetectorMeasurement", "GainEstimate", "ReadNoiseEstimate", "gain_from_flats",
           "measure_detector", "readnoise_from_biases"]

#: Clipping threshold (in σ) of the difference images.
CLIP_SIGMA = 4.0
#: Clipping passes.
CLIP_ITERS = 5
#: A flat is saturated when more than this fraction of its region is at or above saturation.
SATURATED_FRACTION = 1e-3
# Variance of a unit normal truncated to [-k, k]: 1 - 2kφ(k) / (2Φ(k) - 1).
_TRUNCATED_VARIANCE = 1.0 - (2.0 * CLIP_SIGMA * math.exp(-0.5 * CLIP_SIGMA ** 2)
                             / math.sqrt(2.0 * math.pi) / math.erf(CLIP_SIGMA / math.sqrt(2.0)))
_MIN_SIDE = 16  # pixels a region needs along each axis (two tiles of 8)


class GainEstimate(NamedTuple):
    """Gain measured from one pair of flats (:func:`gain_from_flats`).

    Attributes
    ----------
    value : float
        e⁻/ADU (NaN when the pair shows no photon noise above the read noise).
    uncertainty : float
        Its standard error (from the spread over the region's tiles).
    level : float
        Mean level of the two flats above the bias, ADU.
    scale : float
        Factor ``a`` the second flat was scaled by to match the first (1 for
        equal levels).
    """

    value: float
    uncertainty: float
    level: float
    scale: float


class ReadNoiseEstimate(NamedTuple):
    """Read noise measured from one pair of biases (:func:`readnoise_from_biases`).

    Attributes
    ----------
    value : float
        Read noise of one frame: e⁻ when a gain was given, ADU with ``gain=1``.
    uncertainty : float
        Its standard error, in the same unit (includes the gain's when a
        :class:`GainEstimate` was given).
    bias_level : float
        Mean bias level, ADU.
    """

    value: float
    uncertainty: float
    bias_level: float


@dataclass(frozen=True)
class DetectorMeasurement:
    """Gain and read noise of a detector from a night's flats and biases.

    What :func:`measure_detector` returns.

    Attributes
    ----------
    gain, gain_err : float or None
        e⁻/ADU and its standard error; None when not measured (see
        `gain_source`).
    readnoise, readnoise_err : float or None
        Read noise in e⁻ and its standard error (the gain's uncertainty
        included); None without a gain or without two biases.
    readnoise_adu, readnoise_adu_err : float or None
        Read noise in ADU; measured whenever there are two biases, with or
        without a gain.
    n_flat_pairs, n_bias_pairs : int
        Pairs the values were measured from.
    gain_source, readnoise_source : str
        Where each value came from, for headers and the results database:
        ``'measured: 3 flat pairs'``, ``'measured: 4 bias pairs'``, or
        ``'not measured: ...'`` with the reason.
    source : str
        Both, in one line.
    flat_pairs : tuple of (int, int)
        Indices into `flats` of the pairs used.
    pair_gains : tuple of GainEstimate
        The estimate of each pair, in the order of `flat_pairs`.
    bias_level : float or None
        Mean bias level in the region, ADU.
    """

    gain: float | None
    gain_err: float | None
    readnoise: float | None
    readnoise_err: float | None
    readnoise_adu: float | None
    readnoise_adu_err: float | None
    n_flat_pairs: int
    n_bias_pairs: int
    gain_source: str
    readnoise_source: str
    source: str
    flat_pairs: tuple = ()
    pair_gains: tuple = ()
    bias_level: float | None = None


# -- inputs ------------------------------------------------------------------------------

class _Layout(NamedTuple):
    rows: slice
    cols: slice
    ny: int  # tiles along y
    nx: int
    h: int  # tile height
    w: int


def _raw(image, what):
    """(data, boolean mask or None) of an array, Frame, CCDData or MaskedArray."""
    data, mask, _ = image_data(image, what, with_mask=True)
    return data, mask


def _inputs(func, named):
    """Check that `named` ((name, image) pairs, None skipped) are 2-D and of one shape."""
    raws, first = {}, None
    for name, image in named:
        if image is None:
            continue
        raws[name] = _raw(image, f"{func}: {name}")
        shape = tuple(raws[name][0].shape)
        if first is None:
            first = (name, shape)
        elif shape != first[1]:
            raise ValueError(f"{func}: {name} has shape {shape} but {first[0]} has {first[1]}; "
                             "all frames must be the same detector readout (same shape)")
    backend = get_backend(*(d for d, _ in raws.values()), *(m for _, m in raws.values()))
    return raws, backend, (first[1] if first else None)


def _layout(region, shape):
    """The region's slices and its tile grid."""
    ny, nx = shape
    if region is None:
        if min(ny, nx) >= 128:
            rows, cols = slice(ny // 4, ny // 4 + ny // 2), slice(nx // 4, nx // 4 + nx // 2)
        else:
            rows, cols = slice(None), slice(None)
    elif isinstance(region, str):
        rows, cols = parse_section(region, "region")
        check_section((rows, cols), shape, "region")
    elif (isinstance(region, tuple) and len(region) == 2
          and all(isinstance(s, slice) for s in region)):
        rows, cols = region
    else:
        raise TypeError("region must be None, an IRAF section such as '[257:768,257:768]' "
                        f"or a (rows, cols) pair of slices; got {region!r}")
    side_y, side_x = len(range(*rows.indices(ny))), len(range(*cols.indices(nx)))
    if side_y < _MIN_SIDE or side_x < _MIN_SIDE:
        raise ValueError(f"region {region!r} holds {side_y}×{side_x} pixels of a {ny}×{nx} "
                         f"frame; the photon transfer method needs at least "
                         f"{_MIN_SIDE}×{_MIN_SIDE}")
    tiles_y = min(16, max(2, side_y // 32))
    tiles_x = min(16, max(2, side_x // 32))
    return _Layout(rows, cols, tiles_y, tiles_x, side_y // tiles_y, side_x // tiles_x)


def _tiles(raw, layout, backend):
    """The region of `raw` as float64, one row per tile; masked and non-finite pixels NaN."""
    data, mask = raw
    xp = backend.xp
    ny, nx, h, w = layout.ny, layout.nx, layout.h, layout.w
    t = data[layout.rows, layout.cols][:ny * h, :nx * w].astype(np.float64)
    if data.dtype.kind == "f":
        t = xp.where(xp.isfinite(t), t, xp.nan)
    if mask is not None:
        t[mask[layout.rows, layout.cols][:ny * h, :nx * w]] = xp.nan
    return t.reshape(ny, h, nx, w).transpose(0, 2, 1, 3).reshape(ny * nx, h * w)


# -- statistics --------------------------------------------------------------------------

def _clip(x, backend):
    """Per tile (row of `x`): clipped mean, truncation-corrected variance, kept mask, count.

    NaN values never take part. See the module's notes (robust variance).
    """
    xp = backend.xp
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tiles
        centre = xp.nanmedian(x, axis=1)
        scale = MAD_TO_STD * xp.nanmedian(xp.abs(x - centre[:, None]), axis=1)
        # a MAD of 0 (coarsely quantised data): start from the plain standard deviation
        scale = xp.where(scale > 0, scale, xp.nanstd(x, axis=1))
        for _ in range(CLIP_ITERS):
            keep = xp.abs(x - centre[:, None]) <= CLIP_SIGMA * scale[:, None]
            n = keep.sum(axis=1)
            centre = xp.where(keep, x, 0.0).sum(axis=1) / n
            dev = xp.where(keep, x - centre[:, None], 0.0)
            var = (dev * dev).sum(axis=1) / (n - 1) / _TRUNCATED_VARIANCE
            scale = xp.sqrt(var)
    return centre, var, keep, n


def _kept_mean(x, keep, n, backend):
    with np.errstate(invalid="ignore", divide="ignore"):
        return backend.xp.where(keep, x, 0.0).sum(axis=1) / n


def _spread_error(values):
    """Standard error of the mean of the finite `values` (NaN for fewer than 2)."""
    values = values[np.isfinite(values)]
    return float(np.std(values, ddof=1) / math.sqrt(values.size)) if values.size > 1 else math.nan


def _pooled(values, weights):
    good = np.isfinite(values) & (weights > 0)
    return float(np.sum(values[good] * weights[good]) / np.sum(weights[good])) if good.any() \
        else math.nan


def _read_variance(b1, b2, backend):
    """Per tile: read variance of one frame (ADU²) from a bias pair, and the pixels used."""
    _, var, _, n = _clip(b1 - b2, backend)
    return var / 2.0, n


def _level(flat, bias_level, backend):
    """Median of a flat's tiles above the bias (ADU)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(backend.xp.nanmedian(flat - bias_level[:, None]))


def _pair_gain(f1, f2, bias_level, read_var, backend, levels=None):
    """(GainEstimate, photon variance, read variance) of the difference, both ADU², pooled."""
    s1, s2 = levels if levels is not None else (_level(f1, bias_level, backend),
                                               _level(f2, bias_level, backend))
    a = s1 / s2 if s2 > 0 else math.nan
    bl = bias_level[:, None]
    _, var, keep, n = _clip((f1 - bl) - a * (f2 - bl), backend)
    m1 = _kept_mean(f1, keep, n, backend) - bias_level
    m2 = _kept_mean(f2, keep, n, backend) - bias_level
    read = (1.0 + a * a) * read_var
    m1, m2, var, read, n = (np.asarray(backend.to_numpy(v), np.float64)
                            for v in (m1, m2, var, read, n))
    signal = m1 + a * a * m2
    photon = var - read
    with np.errstate(invalid="ignore", divide="ignore"):
        tile_gains = signal / photon
        value = _pooled(signal, n) / _pooled(photon, n)
    value = value if value > 0 else math.nan
    estimate = GainEstimate(value, _spread_error(tile_gains), _pooled((m1 + m2) / 2, n), a)
    return estimate, _pooled(photon, n), _pooled(read, n)


def _readnoise_adu(read_var, n):
    """(read noise in ADU, its standard error) from per-tile read variances."""
    read_var, n = np.asarray(read_var, np.float64), np.asarray(n, np.float64)
    with np.errstate(invalid="ignore"):
        return math.sqrt(_pooled(read_var, n)), _spread_error(np.sqrt(read_var))


def _with_gain(rn_adu, rn_err, gain):
    """Read noise and its error in e⁻ for a gain given as a number or a GainEstimate."""
    g, g_err = (gain.value, gain.uncertainty) if isinstance(gain, GainEstimate) else (gain, 0.0)
    g, g_err = float(g), float(g_err) if math.isfinite(g_err) else 0.0
    if not (math.isfinite(g) and g > 0):
        raise ValueError(f"gain must be a positive number of e-/ADU; got {g!r}")
    return g * rn_adu, math.hypot(g * rn_err, rn_adu * g_err)


def _combine(values, errors):
    """Inverse-variance mean of pair estimates and its standard error.

    The error is the larger of the formal one, 1/sqrt(Σw), and the one from the
    estimates' scatter about the mean (only with two or more).
    """
    v, e = np.asarray(values, np.float64), np.asarray(errors, np.float64)
    if v.size == 1:
        return float(v[0]), float(e[0])
    if np.all(np.isfinite(e) & (e > 0)):
        w = 1.0 / e ** 2
        mean = float(np.sum(w * v) / np.sum(w))
        formal = 1.0 / math.sqrt(np.sum(w))
        scatter = math.sqrt(np.sum(w * (v - mean) ** 2) / ((v.size - 1) * np.sum(w)))
        return mean, max(formal, scatter)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


# -- public functions --------------------------------------------------------------------

def gain_from_flats(flat1, flat2, bias1, bias2, *, region=None):
    """Gain (e⁻/ADU) of a CCD from two flats and two biases: the photon transfer method.

    ``gain = (S1 + S2) / (var(F1 - F2) - var(B1 - B2))``, computed in tiles
    with 4σ-clipped, truncation-corrected variances; a second flat at a
    slightly different level is scaled to the first about the bias (see the
    module's notes for the formulas and the statistics).

    Parameters
    ----------
    flat1, flat2 : array_like (NumPy or CuPy), Frame or CCDData
        Two raw flats (ADU) at similar levels, same filter, same shape. Masked
        pixels of a Frame or CCDData are left out.
    bias1, bias2 : array_like, Frame or CCDData
        Two raw biases of the same detector. `bias2` may be None: the bias
        level then comes from `bias1` alone and the read-noise term is
        neglected, which overestimates the gain by about
        ``readnoise² / S`` (in e⁻: 0.5 % for 10 e⁻ of read noise and a
        20 000 e⁻ flat).
    region : str or (slice, slice), optional
        IRAF section (``"[x1:x2,y1:y2]"``, 1-based; ``"[*,*]"`` is the whole
        frame) or ``(rows, cols)`` slices. Default: the central half of the
        frame in each axis (the whole frame below 128 pixels a side).

    Returns
    -------
    GainEstimate
        ``value`` (e⁻/ADU; NaN if the flats show no photon noise),
        ``uncertainty`` (standard error, from the spread of the region's
        tiles), ``level`` (mean flat level above bias, ADU), ``scale`` (the
        factor applied to `flat2`).

    Raises
    ------
    ValueError
        If an input is not 2-D, the shapes differ, or the region is too small.
    TypeError
        For non-numeric input, or NumPy and CuPy arrays mixed.

    See Also
    --------
    readnoise_from_biases, measure_detector

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.photon_transfer import gain_from_flats
    >>> rng = np.random.default_rng(0)
    >>> gain, shape = 2.0, (256, 256)
    >>> response = rng.normal(1.0, 0.02, shape)  # pixel response non-uniformity
    >>> def flat():
    ...     return 1000 + rng.poisson(20000 * response) / gain + rng.normal(0, 3, shape)
    >>> def bias():
    ...     return 1000 + rng.normal(0, 3, shape)
    >>> est = gain_from_flats(flat(), flat(), bias(), bias())
    >>> abs(est.value - gain) < 3 * est.uncertainty, round(est.level, -2)
    (True, 10000.0)
    """
    for name, image in (("flat1", flat1), ("flat2", flat2), ("bias1", bias1)):
        if image is None:
            raise TypeError(f"gain_from_flats: {name} is required")
    raws, backend, shape = _inputs("gain_from_flats", [
        ("flat1", flat1), ("flat2", flat2), ("bias1", bias1), ("bias2", bias2)])
    layout = _layout(region, shape)
    f1, f2, b1 = (_tiles(raws[k], layout, backend) for k in ("flat1", "flat2", "bias1"))
    if bias2 is None:
        bias_level = _clip(b1, backend)[0]
        read_var = backend.xp.zeros_like(bias_level)
    else:
        b2 = _tiles(raws["bias2"], layout, backend)
        bias_level = (_clip(b1, backend)[0] + _clip(b2, backend)[0]) / 2.0
        read_var = _read_variance(b1, b2, backend)[0]
    return _pair_gain(f1, f2, bias_level, read_var, backend)[0]


def readnoise_from_biases(bias1, bias2, gain=1.0, *, region=None):
    """Read noise of a CCD from two biases: ``gain * std(B1 - B2) / sqrt(2)``.

    The standard deviation is measured in tiles, 4σ-clipped and corrected for
    the truncation (see the module's notes), so that cosmic rays and defects
    do not inflate it while Gaussian read noise is measured without bias.

    Parameters
    ----------
    bias1, bias2 : array_like (NumPy or CuPy), Frame or CCDData
        Two raw biases (ADU) of the same detector, same shape.
    gain : float or GainEstimate, default 1
        e⁻/ADU. With the default the result is in ADU. A
        :class:`GainEstimate` adds its uncertainty to the result's.
    region : str or (slice, slice), optional
        As for :func:`gain_from_flats`.

    Returns
    -------
    ReadNoiseEstimate
        ``value`` (read noise of one frame, e⁻; ADU with ``gain=1``),
        ``uncertainty`` (its standard error), ``bias_level`` (ADU).

    Raises
    ------
    ValueError
        If an input is not 2-D, the shapes differ, the region is too small,
        or `gain` is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.photon_transfer import readnoise_from_biases
    >>> rng = np.random.default_rng(0)
    >>> columns = rng.normal(0, 5, 256)  # the bias's column pattern cancels
    >>> b1, b2 = (1000 + columns + rng.normal(0, 4.0, (256, 256)) for _ in range(2))
    >>> rn = readnoise_from_biases(b1, b2, gain=1.5)  # 4 ADU = 6 e-
    >>> abs(rn.value - 6.0) < 3 * rn.uncertainty, round(rn.bias_level)
    (True, 1000)
    """
    for name, image in (("bias1", bias1), ("bias2", bias2)):
        if image is None:
            raise TypeError(f"readnoise_from_biases: {name} is required")
    raws, backend, shape = _inputs("readnoise_from_biases", [("bias1", bias1),
                                                             ("bias2", bias2)])
    layout = _layout(region, shape)
    b1, b2 = (_tiles(raws[k], layout, backend) for k in ("bias1", "bias2"))
    read_var, n = _read_variance(b1, b2, backend)
    level = (_clip(b1, backend)[0] + _clip(b2, backend)[0]) / 2.0
    to_host = backend.to_numpy
    rn, err = _readnoise_adu(to_host(read_var), to_host(n))
    value, uncertainty = _with_gain(rn, err, gain)
    return ReadNoiseEstimate(value, uncertainty,
                             float(np.nanmean(np.asarray(to_host(level), np.float64))))


def _plural(n, word):
    return f"{n} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"


def measure_detector(flats, biases, *, max_level_ratio=1.1, saturation=None, region=None):
    """Gain and read noise of a detector from all of a night's flats and biases.

    Flats are paired by level, biases in the order given, each pair measured
    as :func:`gain_from_flats` and :func:`readnoise_from_biases` do, and the
    pairs' estimates combined.

    - **Biases** are paired disjointly in the order given: (0, 1), (2, 3), …
      The bias level (per tile, averaged over every bias) and the read
      variance (per tile, averaged over the pairs) serve every flat pair.
    - **Flats** are measured above that bias level (the median of the
      region). A flat is skipped as *saturated* when more than 0.1 % of its
      region reaches `saturation`, and as *too faint* when its level is not
      above the bias. The rest are sorted by level and consecutive ones
      paired, from the faintest, when the brighter is at most
      `max_level_ratio` times the fainter; the second is scaled to the first
      before differencing. A pair whose photon variance does not exceed the
      read variance of its difference (photon noise not dominant) is not
      used.
    - **Combination**: the inverse-variance weighted mean of the pairs'
      estimates; its uncertainty is the larger of the formal one and the one
      from the pairs' scatter (two or more pairs).

    Parameters
    ----------
    flats : sequence of array_like, Frame or CCDData
        Raw flats (ADU) of one detector, filter and binning; may be empty.
    biases : sequence of array_like, Frame or CCDData
        Raw biases of the same detector; may be empty.
    max_level_ratio : float, default 1.1
        Largest ratio of two paired flats' levels above bias (1.1: within 10 %).
    saturation : float, optional
        ADU at which the detector or its converter saturates. Default: the
        largest value of the data's integer type (65535 for uint16); for
        float data no saturation check is made unless it is given.
    region : str or (slice, slice), optional
        As for :func:`gain_from_flats`.

    Returns
    -------
    DetectorMeasurement
        ``gain``, ``gain_err`` (e⁻/ADU), ``readnoise``, ``readnoise_err`` (e⁻),
        ``readnoise_adu``, ``readnoise_adu_err``, ``n_flat_pairs``,
        ``n_bias_pairs``, ``gain_source``, ``readnoise_source``, ``source``,
        ``flat_pairs``, ``pair_gains``, ``bias_level``.

        Too few frames never raise: without a bias, or without a usable
        pair of flats, ``gain`` is None; with fewer than two biases the read
        noise is None; with bias pairs but no gain, ``readnoise`` (e⁻) is
        None and ``readnoise_adu`` holds the measurement. A single bias still
        gives a gain, with the read-noise term neglected (see
        :func:`gain_from_flats`). The ``*_source`` texts say which case
        applied.

    Raises
    ------
    ValueError
        If a frame is not 2-D, the frames' shapes differ, the region is too
        small, or `max_level_ratio` is below 1.
    TypeError
        For non-numeric input, or NumPy and CuPy arrays mixed.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.photon_transfer import measure_detector
    >>> rng = np.random.default_rng(1)
    >>> gain, readnoise, shape = 1.5, 6.0, (256, 256)
    >>> response = rng.normal(1.0, 0.02, shape)
    >>> def frame(electrons):
    ...     adu = 1000 + rng.poisson(electrons * response) / gain
    ...     return np.round(adu + rng.normal(0, readnoise / gain, shape)).astype(np.uint16)
    >>> flats = [frame(20000 * (1 - 0.05 * i)) for i in range(4)]  # twilight: 5 % apart
    >>> biases = [frame(0.0) for _ in range(4)]
    >>> m = measure_detector(flats, biases)
    >>> m.source
    'gain measured: 2 flat pairs; read noise measured: 2 bias pairs'
    >>> abs(m.gain - gain) < 0.05 * gain, abs(m.readnoise - readnoise) < 0.05 * readnoise
    (True, True)
    """
    if not (isinstance(max_level_ratio, (int, float)) and max_level_ratio >= 1):
        raise ValueError(f"measure_detector: max_level_ratio must be a number >= 1 "
                         f"(1.1: levels within 10 %); got {max_level_ratio!r}")
    flats = [] if flats is None else list(flats)
    biases = [] if biases is None else list(biases)
    raws, backend, shape = _inputs("measure_detector", [
        *((f"flats[{i}]", f) for i, f in enumerate(flats)),
        *((f"biases[{i}]", b) for i, b in enumerate(biases))])
    flat_raws = [raws[f"flats[{i}]"] for i in range(len(flats))]
    bias_raws = [raws[f"biases[{i}]"] for i in range(len(biases))]
    layout = _layout(region, shape) if shape is not None else None
    to_host = backend.to_numpy

    # biases: level per tile over all of them, read variance per tile over disjoint pairs
    bias_level = read_var = None
    pair_rn, previous = [], None
    for i, raw in enumerate(bias_raws):
        tiles = _tiles(raw, layout, backend)
        centre = _clip(tiles, backend)[0]
        bias_level = centre if bias_level is None else bias_level + centre
        if i % 2:
            rv, n = _read_variance(previous, tiles, backend)
            read_var = rv if read_var is None else read_var + rv
            pair_rn.append(_readnoise_adu(to_host(rv), to_host(n)))
            previous = None
        else:
            previous = tiles
    del previous
    n_bias_pairs = len(pair_rn)
    if bias_level is not None:
        bias_level = bias_level / len(bias_raws)
    if read_var is not None:
        read_var = read_var / n_bias_pairs
    rn_adu = rn_adu_err = None
    if pair_rn:
        rn_adu, rn_adu_err = _combine(*zip(*pair_rn))

    # flats: levels, pairs, gains
    gain = gain_err = None
    flat_pairs, pair_gains = [], []
    if bias_level is None:
        gain_source = "not measured: no bias frames"
    elif len(flat_raws) < 2:
        gain_source = f"not measured: {_plural(len(flat_raws), 'flat')}, 2 needed"
    else:
        no_read = backend.xp.zeros_like(bias_level) if read_var is None else read_var
        usable, saturated, faint = [], 0, 0
        for i, raw in enumerate(flat_raws):
            tiles = _tiles(raw, layout, backend)
            limit = saturation
            if limit is None and raw[0].dtype.kind in "iu":
                limit = np.iinfo(raw[0].dtype).max
            if limit is not None and int((tiles >= limit).sum()) > SATURATED_FRACTION * tiles.size:
                saturated += 1
                continue
            level = _level(tiles, bias_level, backend)
            if not level > 0:
                faint += 1
                continue
            usable.append((level, i))
        usable.sort()
        k, weak = 0, 0
        while k + 1 < len(usable):
            (lo, i), (hi, j) = usable[k], usable[k + 1]
            if hi > max_level_ratio * lo:
                k += 1
                continue
            k += 2
            estimate, photon, read = _pair_gain(
                _tiles(flat_raws[i], layout, backend), _tiles(flat_raws[j], layout, backend),
                bias_level, no_read, backend, levels=(lo, hi))
            if not (math.isfinite(estimate.value) and photon > read):
                weak += 1
                continue
            flat_pairs.append((i, j))
            pair_gains.append(estimate)
        if pair_gains:
            gain, gain_err = _combine([e.value for e in pair_gains],
                                      [e.uncertainty for e in pair_gains])
            gain_source = f"measured: {_plural(len(pair_gains), 'flat pair')}"
            if read_var is None:
                gain_source += " (1 bias: read noise neglected)"
        else:
            weak_text = f"pair{'' if weak == 1 else 's'} without photon noise above the read noise"
            skipped = [f"{n} {what}" for n, what in ((saturated, "saturated"),
                                                     (faint, "too faint"), (weak, weak_text))
                       if n]
            gain_source = (f"not measured: no usable pair of the {len(flat_raws)} flats "
                           f"(level ratio <= {max_level_ratio:g}"
                           + "".join(f"; {text}" for text in skipped) + ")")

    readnoise = readnoise_err = None
    if rn_adu is None:
        readnoise_source = f"not measured: {_plural(len(bias_raws), 'bias')}, 2 needed"
    elif gain is None:
        readnoise_source = (f"not measured in e-: no gain (readnoise_adu from "
                            f"{_plural(n_bias_pairs, 'bias pair')})")
    else:
        readnoise, readnoise_err = _with_gain(rn_adu, rn_adu_err, GainEstimate(
            gain, gain_err, math.nan, math.nan))
        readnoise_source = f"measured: {_plural(n_bias_pairs, 'bias pair')}"
    level = None
    if bias_level is not None:
        level = float(np.mean(np.asarray(to_host(bias_level), np.float64)))
    return DetectorMeasurement(
        gain, gain_err, readnoise, readnoise_err, rn_adu, rn_adu_err,
        len(pair_gains), n_bias_pairs, gain_source, readnoise_source,
        f"gain {gain_source}; read noise {readnoise_source}",
        tuple(flat_pairs), tuple(pair_gains), level)
