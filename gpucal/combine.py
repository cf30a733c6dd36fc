"""Combining a stack of frames: median, average or sum, with rejection, weights and scaling.

``combine`` is ccdproc.combine with the same parameters and results, run in
row bands within a memory budget on the CPU or the GPU; ``Combiner`` is
ccdproc's step-by-step class.  The per-pixel work is the backend's
``combine_stack`` (one fused kernel on the GPU); this module gathers the
frames, the scale factors and the weights, and assembles the result.

Where gpucal deliberately differs from ccdproc 2.5.1:

* **Weighted average**: rejected values' weights are left out of the
  normalisation (ccdproc keeps them, biasing the result: its issue #893).
* **NaN and inf** are rejected wherever they occur. ccdproc's default
  ``sigma_clip_func=np.ma.mean`` masks a pixel's whole stack when one value is
  NaN, and without clipping an inf propagates into the result.
* **Scaling before rejection**: ``clip_extrema`` and sigma clipping compare
  scaled values (IRAF imcombine's order); ccdproc clips the unscaled data, so
  frames at different levels are rejected wholesale.  ``minmax_clip``
  thresholds still apply to the raw values.
* **float32** by default (statistics in float64); ccdproc works in float64.
"""

import math
import warnings

import numpy as np

from . import combine_options as options
from .banding import band_budget, band_rows, combine_band, outputs, parse_bytes
from .combiner import Combiner
from .dask_combine import combine_bands
from .frame import ccddata_header
from .sources import give_back
from .stack_sources import DaskSource, FileSource, open_stack

__all__ = ["Combiner", "combine", "combine_frame", "parse_bytes"]


def combine(img_list=None, output_file=None, method="average", weights=None, scale=None,
            mem_limit=None, clip_extrema=False, nlow=1, nhigh=1, minmax_clip=False,
            minmax_clip_min=None, minmax_clip_max=None, sigma_clip=False,
            sigma_clip_low_thresh=3, sigma_clip_high_thresh=3, sigma_clip_func="mean",
            sigma_clip_dev_func="std", dtype=None, combine_uncertainty_function=None,
            overwrite_output=False, *, maxiters=1, device=None, hdu=None, unit=None,
            progress=None, client=None):
    """Combine frames into one: median, average or sum, with ccdproc's rejections.

    The parameters, defaults and results are ccdproc.combine's (2.5.1), plus
    `maxiters`; see the module notes for where gpucal deliberately differs.
    A stack larger than `mem_limit` (or than the GPU's free memory) is
    processed in row bands, each file read once.

    Parameters
    ----------
    frames : 3-D array, sequence of 2-D arrays, Frames or CCDData, or of FITS paths
        A NumPy, CuPy or Dask (frames, y, x) array; a list of frames; or file names
        (a list, or one comma-separated string). Masks of Frames, CCDData and
        FITS MASK extensions reject values; NaN and inf are always rejected.
        Files compressed whole (``.fits.gz``, bzip2, xz, zip) are decompressed
        once, into anonymous temporary files in the system's temporary
        directory (``TMPDIR``, which needs room for them uncompressed), freed
        when combine returns or fails; tile-compressed files (``.fits.fz``) are
        read in place, each tile decompressed once.
    method : {"average", "median", "sum"}
    weights : array_like, optional
        (N,) per frame or (N, ny, nx) per pixel, for "average" and "sum". A
        pixel whose kept values all weigh 0 has no data (NaN, or 0 for "sum",
        and :attr:`MaskFlag.NO_DATA`), as if every value had been rejected.
    scale : array_like, callable or {"mode", "median", "mean"}, optional
        Array: N multipliers. Callable: called on each frame's data (a
        NumPy array, on either device), returns its multiplier. String: each
        frame is *divided* by that statistic of its finite unmasked pixels
        (``"mode"`` is the histogram mode of :func:`gpucal.stats.mode`) —
        flat normalisation. Statistics and callables need whole frames: FITS
        inputs are then read once more, a frame at a time, before the bands.
    mem_limit : int, float or str, optional
        Bytes (or e.g. ``"2GB"``) for the stack bands and their scratch; the
        outputs come on top (data, uncertainty, count of kept values and
        mask: 14 bytes a pixel in float32), and a few MB for reading files
        piece by piece. A `scale` statistic needs, before the bands, one
        whole frame and the statistic's scratch (float32 frames: 17 bytes a
        pixel for "mode", 9 for "median" and "mean"). Default: on the CPU
        min(16 GB, half of the free memory); on the GPU 80% of the device's
        free memory, which also caps any given limit.
    clip_extrema : bool, default False
        Reject the `nlow` lowest and `nhigh` highest values of each pixel
        (ranked before other rejections; NaN ranks highest).
    minmax_clip : bool, default False
        Reject raw values below `minmax_clip_min` or above `minmax_clip_max`
        (either may be None).
    sigma_clip : bool, default False
        Reject values outside centre ± thresh × deviation computed, as
        ccdproc does, over every finite value of the pixel (also those masked
        or rejected above).
    sigma_clip_low_thresh, sigma_clip_high_thresh : float, default 3
        None or 0 mean 3 (astropy's rule).
    sigma_clip_func : {"mean", "median"} or the matching NumPy function
    sigma_clip_dev_func : {"std", "mad_std"}, ``np.std`` or ``astropy.stats.mad_std``
    maxiters : int or None, default 1
        Sigma-clipping iterations: 1 is ccdproc's single pass; None iterates
        until nothing changes (astropy's sigma_clip).
    dtype : floating dtype, default float32
        Of the stack and the result; statistics are always float64.
    output_file : str or os.PathLike, optional
        Also write the result there (atomically).
    overwrite_output : bool, default False
    device : {"auto", "cpu", "gpu"}, optional
        Where file and CCDData inputs are loaded (default: ``GPUCAL_DEVICE``
        or "auto"). Arrays and Frames are combined where they are.
    hdu : int, str or (str, int), optional
        The image HDU in each file (default: the first image).
    unit : str or astropy.units.Unit, optional
        Overrides the files' BUNIT.
    progress : ProgressBar, optional
        Told about each file band read (the CLI shows a bar).
    client : distributed.Client, optional
        Combine on a Dask cluster: each row band is one task holding the whole
        stack for those rows (workers read their rows of FITS inputs themselves:
        they must see the files, and each task decompresses its own copy of
        files compressed whole). A 3-D Dask array is combined that way even
        without a client, on Dask's default scheduler. Bands are at most
        `mem_limit` (default 2 GB) and at least two per worker. The result is
        identical to the in-memory one and comes back to this process's memory.

    Returns
    -------
    Frame, CCDData or array
        The type the frames came in (:mod:`gpucal.sources`): CCDData for
        CCDData (meta and WCS the first one's) and for file names (as
        ccdproc; they need a unit), a Frame for Frames, the combined values
        for arrays (a NumPy masked array, masked
        where n is 0, for a masked array; a NumPy array for a Dask array), on
        the device that computed it. Values: NaN, or 0 for "sum", where
        every value was rejected. Uncertainty (ccdproc's): std/√n for
        "average", 1.4826·MAD/√n for "median", std·√n for "sum", with n the
        values kept. Mask: :attr:`MaskFlag.NO_DATA` where n is 0. Header:
        the first input's, with ``NCOMBINE`` and a HISTORY card.

    Raises
    ------
    ValueError
        No frames, an unknown method, weights or scale of the wrong shape, a
        statistic that cannot scale a frame, `mem_limit` below one row.
    FrameError
        Frames of different shapes or units, frames with no pixels, or files
        that cannot be read.
    TypeError
        Arrays on different devices, complex frames, weights or scale factors
        (their imaginary part would be lost), or an unsupported sigma_clip_func.

    See Also
    --------
    ccdproc.combine : the reference.
    Combiner : the same, step by step.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Frame, combine
    >>> stack = np.array([np.full((2, 3), v) for v in (10.0, 11.0, 12.0, 400.0)])
    >>> combine(stack, "median")          # an array in: an array out
    array([[11.5, 11.5, 11.5],
           [11.5, 11.5, 11.5]], dtype=float32)
    >>> combine([Frame(f) for f in stack], clip_extrema=True, nlow=0, nhigh=1).uncertainty[0, 0]
    np.float32(0.47140452)
    """
    if img_list is None:
        raise TypeError("combine needs img_list: the frames to combine")
    if isinstance(output_file, str) and output_file in options.METHODS and method == "average":
        method, output_file = output_file, None  # gpucal's earlier order: combine(x, "median")
    kwargs = dict(weights=weights, scale=scale, mem_limit=mem_limit,
                   clip_extrema=clip_extrema, nlow=nlow, nhigh=nhigh, minmax_clip=minmax_clip,
                   minmax_clip_min=minmax_clip_min, minmax_clip_max=minmax_clip_max,
                   sigma_clip=sigma_clip, sigma_clip_low_thresh=sigma_clip_low_thresh,
                   sigma_clip_high_thresh=sigma_clip_high_thresh,
                   sigma_clip_func=sigma_clip_func, sigma_clip_dev_func=sigma_clip_dev_func,
                   maxiters=maxiters, dtype=dtype, device=device, hdu=hdu, unit=unit)
    if combine_uncertainty_function is not None:  # the generic path: a Combiner in memory
        options.check_method(method)
        combiner = _combiner_for(img_list, **kwargs)
        frame, kind, like = combiner._combine_frame(method, None, None,
                                                    combine_uncertainty_function, None)
    else:
        frame, kind, like = combine_frame(img_list, method, progress=progress, client=client,
                                          **kwargs)
    result = give_back(frame, kind, like)  # before writing: it may refuse (no unit)
    if output_file is not None:
        _write_output(frame, like, output_file, overwrite_output)
    return result


def _write_output(frame, like, output_file, overwrite):
    """Write the result; say which meta values FITS could not hold (they stay in the CCDData)."""
    if like is not None:
        dropped = []
        ccddata_header(like, dropped)
        if dropped:
            warnings.warn(f"{output_file}: the first image's meta values under "
                          f"{', '.join(map(repr, dropped))} cannot be written to a FITS header "
                          "and were left out of the file (the returned CCDData keeps them)",
                          UserWarning, stacklevel=3)
    frame.write(output_file, overwrite=overwrite)


def _combiner_for(frames, *, weights, scale, mem_limit, clip_extrema, nlow, nhigh, minmax_clip,
                  minmax_clip_min, minmax_clip_max, sigma_clip, sigma_clip_low_thresh,
                  sigma_clip_high_thresh, sigma_clip_func, sigma_clip_dev_func, maxiters, dtype,
                  device, hdu, unit):
    """A Combiner holding the whole stack, with combine's options applied (its generic path)."""
    if hdu is not None or unit is not None:
        raise TypeError("combine_uncertainty_function works on frames in memory; read FITS "
                        "files with hdu= or unit= first")
    combiner = Combiner(frames, dtype=dtype, device=device)
    if weights is not None:
        combiner.weights = weights
    if scale is not None:
        combiner._scaling = options.scale_factors(scale, combiner._source, combiner.dtype)
    if clip_extrema:
        combiner.clip_extrema(nlow, nhigh)
    if minmax_clip:
        combiner.minmax_clipping(minmax_clip_min, minmax_clip_max)
    if sigma_clip:
        combiner.sigma_clipping(sigma_clip_low_thresh, sigma_clip_high_thresh,
                                sigma_clip_func, sigma_clip_dev_func, maxiters)
    return combiner


def combine_frame(frames, method="average", *, weights=None, scale=None, mem_limit=None,
                  clip_extrema=False, nlow=1, nhigh=1,
                  minmax_clip=False, minmax_clip_min=None, minmax_clip_max=None,
                  sigma_clip=False, sigma_clip_low_thresh=3, sigma_clip_high_thresh=3,
                  sigma_clip_func="mean", sigma_clip_dev_func="std", maxiters=1,
                  dtype=None, device=None, hdu=None, unit=None, progress=None, client=None):
    """:func:`combine`'s work, with the result as a Frame whatever the frames came in as.

    The options are :func:`combine`'s. An array in gives :func:`combine` an
    array out; this gives its Frame (mask, uncertainty, NCOMBINE) as well.

    Returns
    -------
    (Frame, kind, like)
        The result; what :func:`combine` gives it back as, and the CCDData it
        derives from or None (see :func:`gpucal.sources.give_back`).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.combine import combine_frame
    >>> frame, kind, _ = combine_frame(np.ones((3, 2, 2)), "median")
    >>> kind, frame.header["NCOMBINE"], frame.uncertainty[0, 0]
    ('array', 3, np.float32(0.0))
    """
    options.check_method(method)
    dtype = options.DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
    source = open_stack(frames, device, hdu, unit, progress)
    try:
        backend = source.backend
        rejection = dict(
            minmax=(minmax_clip_min, minmax_clip_max) if minmax_clip else None,
            extrema=options.extrema_ranks(source.n, nlow, nhigh) if clip_extrema else None,
            sigma=options.sigma_options(sigma_clip_low_thresh, sigma_clip_high_thresh,
                                        sigma_clip_func, sigma_clip_dev_func, maxiters)
            if sigma_clip else None)
        factors = options.scale_factors(scale, source, dtype)
        w = options.checked_weights(weights, source, backend)
        pixel_weights = w is not None and w.ndim > 1
        # the outputs, allocated once in their final dtype; bands write their rows in place
        value, uncertainty, nkept = results = outputs(backend, source.shape, dtype)
        work = dict(dtype=dtype, factors=factors, method=method, rejection=rejection)
        if client is not None or isinstance(source, DaskSource):
            for start, band in combine_bands(source, client, w, pixel_weights, mem_limit,
                                             device=device, hdu=hdu, unit=unit, **work):
                for whole, part in zip(results, band):
                    whole[start:start + part.shape[0]] = part
        else:
            reserve = backend.combine_reserve(source.n, dtype)
            rows = band_rows(source, dtype, pixel_weights, backend,
                             band_budget(backend, mem_limit, reserve))
            if progress is not None and isinstance(source, FileSource):
                progress.start(source.n * math.ceil(source.shape[0] / rows))
            for start in range(0, source.shape[0], rows):
                band = slice(start, min(start + rows, source.shape[0]))
                combine_band(source, band.start, band.stop,
                             w[:, band] if pixel_weights else w,
                             out=tuple(whole[band] for whole in results), **work)
    finally:
        source.close()
    history = dict(method=method, nframes=source.n,
                   scale=scale if isinstance(scale, str) else scale is not None,
                   weights=weights is not None, **options.history_of(rejection))
    frame = options.combined_frame(value, uncertainty, nkept, source, backend, dtype, history)
    return frame, source.kind, source.like


