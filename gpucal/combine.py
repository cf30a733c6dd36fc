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
import os
import re
import warnings

import numpy as np

from . import io
from ._dtype import refuse_complex
from ._image import is_ccddata
from .backend import backend_for_device, get_backend, move
from ._operands import give_back
from .errors import FrameError, FrameTypeError, require_pixels
from .flags import MASK_DTYPE, MaskFlag
from .frame import Frame, ccddata_header
from .provenance import add_history
from .stats import stat_name, statistic

__all__ = ["Combiner", "combine", "parse_bytes"]

METHODS = ("average", "median", "sum")
SCALE_STATISTICS = ("mode", "median", "mean")
DEFAULT_DTYPE = np.dtype(np.float32)
DEFAULT_CPU_LIMIT = 16e9  # ccdproc's default mem_limit, capped by free memory
GPU_MEMORY_SHARE = 0.8  # of the device's free memory, at most

# -- the stack's sources --------------------------------------------------------------------


def _check_stack(array):
    """A stack array must be (frames, y, x) of real numbers, with at least one frame and pixels."""
    refuse_complex(array.dtype, "frames")
    if array.ndim != 3:
        raise FrameError(f"frames: a stack array must be 3-D (frames, y, x); got shape "
                         f"{array.shape}")
    if array.shape[0] == 0:
        raise ValueError("combine: no frames to combine")
    require_pixels(array.shape, "frames: the stack")


class _ArraySource:
    """A 3-D NumPy (masked or not) or CuPy array: bands are views."""

    def __init__(self, array):
        self.mask = None
        if isinstance(array, np.ma.MaskedArray):
            array, self.mask = array.data, _mask_of(array)
        _check_stack(array)
        self.array, self.backend = array, get_backend(array)
        self.n, self.shape = array.shape[0], tuple(array.shape[1:])
        self.unit, self.header, self.has_mask = None, None, self.mask is not None

    def band(self, start, stop, dtype):
        return (self.array[:, start:stop].astype(dtype, copy=False),
                None if self.mask is None else self.mask[:, start:stop])

    def frame(self, i, dtype):
        return (self.array[i].astype(dtype, copy=False),
                None if self.mask is None else self.mask[i])

    def close(self):
        pass


class _DaskSource:
    """A 3-D Dask array: bands stay lazy (workers compute them); frames are computed here."""

    def __init__(self, array):
        _check_stack(array)
        self.array, self.backend = array, backend_for_device("cpu")
        self.n, self.shape = array.shape[0], tuple(array.shape[1:])
        self.unit, self.header, self.has_mask = None, None, False

    def band(self, start, stop, dtype):
        return self.array[:, start:stop], None

    def frame(self, i, dtype):
        return np.asarray(self.array[i].compute(), dtype=dtype), None

    def close(self):
        pass


def _is_dask_array(x):
    return hasattr(x, "__dask_graph__") and hasattr(x, "chunks")


def _mask_of(masked):
    """The mask of a NumPy MaskedArray, or None where nothing is masked (no array made)."""
    mask = np.ma.getmask(masked)
    return None if mask is np.ma.nomask else mask


def _rejected(mask, backend):
    """A mask (bool, or flag bits: non-zero rejects) as bool on `backend`; a view if it is
    bool there already, so a band of it costs one byte a value at most."""
    mask = move(mask, backend)
    return mask if mask.dtype == bool else mask != 0


class _MemorySource:
    """2-D arrays, Frames or CCDData: bands are lists of row views, one per frame.

    Arrays and Frames stay on their device; CCDData (host containers) go to
    `device`, unless arrays already fixed the backend. Masks are kept as given
    (a Frame's flag bits) and made boolean band by band.
    """

    def __init__(self, items, device):
        resident, self.items = [], []
        for i, item in enumerate(items):
            if isinstance(item, Frame):
                data, mask, unit = item.data, item.mask, item.unit
                resident += [data]
            elif isinstance(item, np.ma.MaskedArray):
                data, mask, unit = item.data, _mask_of(item), None
                resident += [data]
            elif is_ccddata(item):
                data = np.asarray(item.data)
                mask = None if item.mask is None else np.asarray(item.mask)
                unit = item.unit
            elif hasattr(item, "shape") or isinstance(item, (list, tuple)):
                data = item if hasattr(item, "shape") else np.asarray(item)
                mask, unit = None, None
                resident += [data]
            else:
                raise TypeError(f"frames[{i}]: expected an array, Frame, CCDData or file "
                                f"path; got {type(item).__name__}")
            if getattr(data, "ndim", 2) != 2:
                raise FrameError(f"frames[{i}]: a frame is 2-D; got shape {data.shape}")
            require_pixels(data.shape, f"frames[{i}]")
            refuse_complex(data.dtype, f"frames[{i}]")
            self.items.append((data, mask, unit))
        self.backend = get_backend(*resident) if resident else backend_for_device(device)
        self.n = len(self.items)
        self.shape = tuple(self.items[0][0].shape)
        self.header = _first_header(items)
        self.like = items[0] if is_ccddata(items[0]) else None  # CCDData in: CCDData out
        self.has_mask = any(m is not None for _, m, _ in self.items)
        _check_same(self, [f"frames[{i}]" for i in range(self.n)],
                    [tuple(d.shape) for d, _, _ in self.items], [u for _, _, u in self.items])

    def band(self, start, stop, dtype):
        # lists of row views: the backend gathers them chunk by chunk, no band copy
        data = [move(d[start:stop], self.backend).astype(dtype, copy=False)
                for d, _, _ in self.items]
        mask = [None if m is None else _rejected(m[start:stop], self.backend)
                for _, m, _ in self.items] if self.has_mask else None
        return data, mask

    def frame(self, i, dtype):
        d, m, _ = self.items[i]
        return (move(d, self.backend).astype(dtype, copy=False),
                None if m is None else _rejected(m, self.backend))

    def close(self):
        pass


class _FileSource:
    """FITS files, read band by band: every pixel of every file is read once, straight
    into the band (see io.FitsStack: compressed files are decompressed once)."""

    def __init__(self, paths, device, hdu, unit, progress):
        self.files = io.FitsStack(paths, hdu, unit=unit)
        self.backend = backend_for_device(device)
        self.n = len(paths)
        self.shape = tuple(self.files.images[0].hdu.shape)
        self.header = self.files.images[0].header.copy()
        self.has_mask = any(im.mask_hdu is not None for im in self.files.images)
        self.row_alignment = self.files.row_alignment
        self.progress = progress
        try:
            _check_same(self, self.files.paths, [tuple(im.hdu.shape) for im in self.files.images],
                        [im.unit for im in self.files.images])
        except FrameError:
            self.close()
            raise

    def band(self, start, stop, dtype):
        data = np.empty((self.n, stop - start) + self.shape[1:], dtype)
        mask = np.zeros(data.shape, bool) if self.has_mask else None
        for i in range(self.n):
            self.files.rows(i, start, stop, data[i])
            if mask is not None:
                self.files.mask_rows(i, start, stop, mask[i])
            self.progress.step()
        return (self.backend.asarray(data),
                None if mask is None else self.backend.asarray(mask))

    def frame(self, i, dtype):
        ny = self.shape[0]  # an empty mask buffer costs nothing when the file has no MASK
        mask = self.files.mask_rows(i, 0, ny, np.empty(self.shape, bool))
        return (self.backend.asarray(self.files.rows(i, 0, ny, np.empty(self.shape, dtype))),
                None if mask is None else self.backend.asarray(mask))

    def close(self):
        self.files.close()


def _first_header(items):
    first = items[0]
    if isinstance(first, Frame):
        return first.header
    return ccddata_header(first) if is_ccddata(first) else None


def _check_same(source, names, shapes, units):
    for name, shape, unit in zip(names, shapes, units):
        if shape != tuple(shapes[0]):
            raise FrameTypeError(f"{name}: shape {shape} differs from the first frame's "
                             f"{tuple(shapes[0])}; all frames must have one shape")
        if unit != units[0]:
            raise FrameTypeError(f"{name}: unit {unit} differs from the first frame's {units[0]}; "
                             "convert the frames to one unit before combining")
    source.unit = units[0]


def _open(frames, device, hdu=None, unit=None, progress=None):
    """The stack behind `frames`, whatever form they come in (see `combine`)."""
    if isinstance(frames, (str, os.PathLike)):
        frames = [f.strip() for f in str(frames).split(",")]  # ccdproc's comma-separated list
    if _is_dask_array(frames):
        return _DaskSource(frames)
    if hasattr(frames, "ndim") and getattr(frames, "dtype", None) is not None and (
            frames.dtype.kind in "US" or frames.dtype.kind == "O" and frames.ndim == 1 and all(
                isinstance(f, (str, os.PathLike)) for f in frames)):
        frames = [str(f) for f in frames]  # file names in an array (ImageFileCollection's)
    elif hasattr(frames, "ndim"):  # one array: a stack
        return _ArraySource(frames)
    try:
        frames = list(frames)
    except TypeError:
        raise FrameTypeError(f"unrecognised input for list of images: {type(frames).__name__} "
                             "(give a list of frames, CCDData or file names, a comma-separated "
                             "string of names, or a 3-D array)") from None
    if not frames:
        raise ValueError("combine: no frames to combine")
    paths = [isinstance(f, (str, os.PathLike)) for f in frames]
    if all(paths):
        return _FileSource(frames, device, hdu, unit, progress or _NoProgress())
    if any(paths):
        raise TypeError("frames: give either file paths or in-memory frames, not a mix")
    return _MemorySource(frames, device)


class _NoProgress:
    def step(self):
        pass


# -- parameters -----------------------------------------------------------------------------


def parse_bytes(value):
    """Bytes from a number or a string like ``"2GB"``, ``"512 MiB"`` or ``"1.5e9"``.

    Examples
    --------
    >>> parse_bytes("2GB"), parse_bytes("512MiB"), parse_bytes(1e6)
    (2000000000, 536870912, 1000000)
    """
    if isinstance(value, (int, float)):
        size = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+-]+)\s*([kKMGT]i?B|B)?\s*", str(value))
        if not match:
            raise ValueError(f"not a memory size: {value!r} (examples: 2GB, 512MiB, 1e9)")
        units = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
                 "KiB": 2**10, "kiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}
        size = float(match.group(1)) * units[match.group(2) or "B"]
    if not size > 0:
        raise ValueError(f"a memory size must be positive; got {value!r}")
    return int(size)


def _budget(backend, mem_limit, reserve=0):
    """Bytes a band (and its scratch) may use: mem_limit, within what the device has free
    besides `reserve` (the GPU kernel's local memory)."""
    free = backend.available_memory()
    if backend.device == "gpu":
        free = max(0, GPU_MEMORY_SHARE * free - reserve)
    elif mem_limit is None:
        return int(min(DEFAULT_CPU_LIMIT, 0.5 * free))
    return int(free if mem_limit is None else min(parse_bytes(mem_limit), free))


def _band_rows(source, dtype, pixel_weights, backend, budget):
    """How many rows of the stack a band may hold within `budget` bytes.

    Per value a band holds the data, the mask, per-pixel weights, and the
    backend's scratch, which the CPU caps at one chunk per thread; the
    backend may prefer smaller bands than the budget allows (``band_bytes``).
    Its results go straight into the outputs (nothing per band). Bands of
    tile-compressed files are whole tiles high where the budget allows it
    (``row_alignment``), so that no tile is decompressed twice.
    """
    ny, nx = source.shape
    stored = dtype.itemsize + source.has_mask + 8 * pixel_weights
    scratch = backend.combine_scratch(source.n)
    row_values = source.n * nx
    rows = budget // (row_values * (stored + scratch))
    cap = backend.threads * backend.chunk_values  # scratch is no larger than this
    capped = (budget - cap * scratch) // (row_values * stored)
    if capped * row_values >= cap:
        rows = max(rows, capped)
    if rows < 1:
        need = row_values * (stored + scratch)
        raise ValueError(f"mem_limit allows {budget} bytes but one row of this stack needs "
                         f"{need}: raise mem_limit")
    if backend.band_bytes:
        rows = min(rows, max(1, backend.band_bytes // (row_values * stored)))
    align = getattr(source, "row_alignment", 1)
    if rows >= align:
        rows -= rows % align
    return int(min(rows, ny))


def _scale_factors(scale, source, dtype):
    """Per-frame multipliers (float64, host) from `scale` (see `combine`)."""
    if scale is None:
        return None
    if isinstance(scale, str):
        if scale not in SCALE_STATISTICS:
            raise ValueError(f"scale must be one of {', '.join(map(repr, SCALE_STATISTICS))}, "
                             f"an array or a callable; got {scale!r}")
        values = [statistic(scale, *source.frame(i, dtype)) for i in range(source.n)]
        for i, v in enumerate(values):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"frames[{i}]: its {scale} is {v}; scale={scale!r} divides "
                                 "each frame by it, which needs a positive number")
        return np.array([1.0 / v for v in values])
    if callable(scale):
        values = [scale(source.frame(i, dtype)[0]) for i in range(source.n)]
        for value in values:  # float() would drop a NumPy complex's imaginary part
            refuse_complex(getattr(value, "dtype", type(value)), "scale")
        factors = [float(v) for v in values]
    else:
        factors = np.asarray(get_backend(scale).to_numpy(scale))
        refuse_complex(factors.dtype, "scale")
        if factors.shape != (source.n,):
            raise ValueError(f"scale: expected {source.n} factors, one per frame; got shape "
                             f"{factors.shape}")
    factors = np.asarray(factors, dtype=np.float64)
    if not np.isfinite(factors).all():
        raise ValueError(f"scale: every factor must be finite; got {factors}")
    return factors


def _weights(weights, source, backend):
    """Weights as float64 on the backend: (N,) per frame or (N, ny, nx) per pixel."""
    if weights is None:
        return None
    w = move(weights, backend) if hasattr(weights, "shape") else backend.asarray(weights)
    refuse_complex(w.dtype, "weights")
    if w.dtype.kind != "f":  # floating weights are taken to float64 chunk by chunk, not copied
        w = w.astype(np.float64)
    if w.shape not in ((source.n,), (source.n,) + tuple(source.shape)):
        raise ValueError(f"weights: expected shape ({source.n},) or "
                         f"{(source.n,) + tuple(source.shape)}; got {w.shape}")
    if not bool(backend.xp.isfinite(w).all()):
        raise ValueError("weights: every weight must be finite")
    return w


def _extrema(n, nlow, nhigh):
    """Validated (nlow, nhigh) for clip_extrema; None counts as 0 (ccdproc)."""
    nlow, nhigh = int(nlow or 0), int(nhigh or 0)
    if not (0 <= nlow <= n and 0 <= nhigh <= n):
        raise ValueError(f"clip_extrema: nlow={nlow} and nhigh={nhigh} must be between 0 and "
                         f"the number of frames ({n})")
    return nlow, nhigh


def _sigma(low_thresh, high_thresh, func, dev_func, maxiters):
    """Keyword arguments of the sigma-clipping primitives; thresholds of None or 0 mean 3."""
    if maxiters is not None and int(maxiters) < 0:
        raise ValueError(f"maxiters must be positive (or None: until nothing changes); "
                         f"got {maxiters}")
    return dict(sigma_lower=float(low_thresh or 3.0), sigma_upper=float(high_thresh or 3.0),
                maxiters=int(maxiters) if maxiters else None,
                cenfunc=stat_name(func, "cenfunc"), stdfunc=stat_name(dev_func, "stdfunc"))


def _outputs(backend, shape, dtype):
    """Empty (value, uncertainty, nkept) arrays of `shape`: `dtype`, `dtype` and int32."""
    xp = backend.xp
    return xp.empty(shape, dtype), xp.empty(shape, dtype), xp.empty(shape, np.int32)


def _result(value, uncertainty, nkept, source, backend, dtype, history):
    xp = backend.xp
    no_data = xp.where(nkept == 0, MASK_DTYPE.type(MaskFlag.NO_DATA), MASK_DTYPE.type(0))
    frame = Frame(value.astype(dtype, copy=False), no_data,
                  uncertainty.astype(dtype, copy=False), source.header, source.unit, dtype=None)
    frame.header["NCOMBINE"] = (source.n, "number of frames combined")
    add_history(frame.header, "combine", backend, **history)
    return frame


# -- combine --------------------------------------------------------------------------------


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
        Array: N multipliers. Callable: called on each frame's data, returns
        its multiplier. String: each frame is *divided* by that statistic of
        its finite unmasked pixels (``"mode"`` is the histogram mode of
        :func:`gpucal.stats.mode`) — flat normalisation. Statistics and
        callables need whole frames: FITS inputs are then read once more, a
        frame at a time, before the bands.
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
    Frame
        On the device that computed it. Data: the combined values (NaN, or 0
        for "sum", where every value was rejected). Uncertainty (ccdproc's):
        std/√n for "average", 1.4826·MAD/√n for "median", std·√n for "sum",
        with n the values kept. Mask: :attr:`MaskFlag.NO_DATA` where n is 0.
        Header: the first input's, with ``NCOMBINE`` and a HISTORY card.

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
    >>> from gpucal import combine
    >>> stack = np.array([np.full((2, 3), v) for v in (10.0, 11.0, 12.0, 400.0)])
    >>> combine(stack, "median").data
    array([[11.5, 11.5, 11.5],
           [11.5, 11.5, 11.5]], dtype=float32)
    >>> combine(stack, clip_extrema=True, nlow=0, nhigh=1).data[0, 0]
    np.float32(11.0)
    """
    if img_list is None:
        raise TypeError("combine needs img_list: the frames to combine")
    if isinstance(output_file, str) and output_file in METHODS and method == "average":
        method, output_file = output_file, None  # gpucal's earlier order: combine(x, "median")
    options = dict(weights=weights, scale=scale, mem_limit=mem_limit,
                   clip_extrema=clip_extrema, nlow=nlow, nhigh=nhigh, minmax_clip=minmax_clip,
                   minmax_clip_min=minmax_clip_min, minmax_clip_max=minmax_clip_max,
                   sigma_clip=sigma_clip, sigma_clip_low_thresh=sigma_clip_low_thresh,
                   sigma_clip_high_thresh=sigma_clip_high_thresh,
                   sigma_clip_func=sigma_clip_func, sigma_clip_dev_func=sigma_clip_dev_func,
                   maxiters=maxiters, dtype=dtype, device=device, hdu=hdu, unit=unit)
    if combine_uncertainty_function is not None:  # the generic path: a Combiner in memory
        if method not in METHODS:
            raise ValueError(f"unrecognised combine method {method!r}: method must be one of "
                             f"{', '.join(map(repr, METHODS))}")
        combiner = _combiner_for(img_list, **options)
        frame, like = combiner._combine_frame(method, None, None, combine_uncertainty_function,
                                              None)
    else:
        frame, like = combine_frame(img_list, method, progress=progress, client=client,
                                    **options)
    if output_file is not None:
        _write_output(frame, like, output_file, overwrite_output)
    return give_back(frame, "frame" if like is None else "ccddata", like)


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
        combiner._scaling = _scale_factors(scale, combiner._source, combiner.dtype)
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
    """:func:`combine`'s work: (the result as a Frame, the first input if it was a CCDData)."""
    if method not in METHODS:
        raise ValueError(f"unrecognised combine method {method!r}: method must be one of "
                         f"{', '.join(map(repr, METHODS))}")
    dtype = DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
    source = _open(frames, device, hdu, unit, progress)
    try:
        backend = source.backend
        rejection = dict(
            minmax=(minmax_clip_min, minmax_clip_max) if minmax_clip else None,
            extrema=_extrema(source.n, nlow, nhigh) if clip_extrema else None,
            sigma=_sigma(sigma_clip_low_thresh, sigma_clip_high_thresh, sigma_clip_func,
                         sigma_clip_dev_func, maxiters) if sigma_clip else None)
        factors = _scale_factors(scale, source, dtype)
        w = _weights(weights, source, backend)
        pixel_weights = w is not None and w.ndim > 1
        # the outputs, allocated once in their final dtype; bands write their rows in place
        value, uncertainty, nkept = outputs = _outputs(backend, source.shape, dtype)
        work = dict(dtype=dtype, factors=factors, method=method, rejection=rejection)
        if client is not None or isinstance(source, _DaskSource):
            from .dask_combine import combine_bands

            for start, band in combine_bands(source, client, w, pixel_weights, mem_limit,
                                             device=device, hdu=hdu, unit=unit, **work):
                for whole, part in zip(outputs, band):
                    whole[start:start + part.shape[0]] = part
        else:
            reserve = backend.combine_reserve(source.n, dtype)
            rows = _band_rows(source, dtype, pixel_weights, backend,
                              _budget(backend, mem_limit, reserve))
            if progress is not None and isinstance(source, _FileSource):
                progress.start(source.n * math.ceil(source.shape[0] / rows))
            for start in range(0, source.shape[0], rows):
                band = slice(start, min(start + rows, source.shape[0]))
                combine_band(source, band.start, band.stop,
                             w[:, band] if pixel_weights else w,
                             out=tuple(whole[band] for whole in outputs), **work)
    finally:
        source.close()
    history = dict(method=method, nframes=source.n,
                   scale=scale if isinstance(scale, str) else scale is not None,
                   weights=weights is not None, **_history_of(rejection))
    return _result(value, uncertainty, nkept, source, backend, dtype, history), getattr(
        source, "like", None)


def combine_band(source, start, stop, weights, *, dtype, factors, method, rejection,
                 out=None):
    """(value, uncertainty, nkept) of rows start:stop of a stack source, on its backend.

    `weights` are per frame (N,), or per pixel already cut to the band. The
    results are written into `out`, C-contiguous arrays of the band's shape
    (``combine`` passes the rows of its outputs, so a band's results take no
    memory of their own), or into new ones of `dtype`, `dtype` and int32.
    """
    if out is None:
        out = _outputs(source.backend, (stop - start,) + tuple(source.shape[1:]), dtype)
    data, mask = source.band(start, stop, dtype)
    return source.backend.combine_stack(data, mask, scale=factors, method=method,
                                        weights=weights, out=out, **rejection)


def _history_of(rejection):
    out = {}
    if rejection["minmax"] is not None:
        out["minmax"] = rejection["minmax"]
    if rejection["extrema"] is not None:
        out["clip_extrema"] = rejection["extrema"]
    if rejection["sigma"] is not None:
        s = rejection["sigma"]
        out["sigma_clip"] = (s["sigma_lower"], s["sigma_upper"], s["cenfunc"], s["stdfunc"])
        out["maxiters"] = s["maxiters"] or "converge"
    return out


# -- Combiner -------------------------------------------------------------------------------


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
        data. Clipping (extrema and sigma) uses scaled values (see the
        module notes).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Combiner
    >>> c = Combiner(np.array([np.full((2, 2), v) for v in (1.0, 2.0, 3.0, 50.0)]))
    >>> c.minmax_clipping(max_clip=10)
    >>> c.average_combine().data[0, 0]
    np.float32(2.0)
    """

    def __init__(self, ccd_iter, dtype=None, device=None):
        if ccd_iter is None:
            raise TypeError("Combiner needs frames: a 3-D array or a list of frames")
        self.dtype = DEFAULT_DTYPE if dtype is None else np.dtype(dtype)
        self._source = _open(ccd_iter if getattr(ccd_iter, "ndim", 0) == 3 else list(ccd_iter),
                             device)
        self.backend = self._source.backend
        data, mask = (self.backend.stacked(a) for a in
                      self._source.band(0, self._source.shape[0], self.dtype))
        xp = self.backend.xp
        self.data = xp.ascontiguousarray(data)
        self.mask = ~xp.isfinite(self.data) if mask is None else mask | ~xp.isfinite(self.data)
        self._weights = None
        self._scaling = None
        self._like = getattr(self._source, "like", None)

    @property
    def data_arr(self):
        """The stack as a NumPy masked array (True = rejected): ccdproc's ``data_arr``.

        On the CPU a view: changing its values or its mask changes :attr:`data`
        and :attr:`mask`. On the GPU a host copy (read it, do not write it).
        """
        if self.backend.device == "cpu":
            return np.ma.MaskedArray(self.data, mask=self.mask, copy=False)
        return np.ma.MaskedArray(self.backend.to_numpy(self.data),
                                 mask=self.backend.to_numpy(self.mask))

    @property
    def weights(self):
        return self._weights

    @weights.setter
    def weights(self, value):
        if value is not None and getattr(value, "ndim", 1 if isinstance(value, (list, tuple))
                                         else 0) == 0:
            raise TypeError(f"weights must be an array, (N,) or (N, ny, nx); got "
                            f"{type(value).__name__}")
        self._weights = _weights(value, self._source, self.backend)

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
        self._scaling = _scale_factors(value, _ArraySource(self.data), self.dtype)

    def _scaled(self, factors=None):
        factors = self._scaling if factors is None else factors
        if factors is None:
            return self.data
        return self.data * self.backend.asarray(factors)[:, None, None]

    def minmax_clipping(self, min_clip=None, max_clip=None):
        """Reject raw values below `min_clip` or above `max_clip` (None: no bound)."""
        xp = self.backend.xp  # thresholds compared exactly, not rounded to float32
        if min_clip is not None:
            self.mask |= self.data < xp.float64(min_clip)
        if max_clip is not None:
            self.mask |= self.data > xp.float64(max_clip)

    def clip_extrema(self, nlow=0, nhigh=0):
        """Reject each pixel's `nlow` lowest and `nhigh` highest values.

        Ranks ignore earlier rejections (a rejected value still uses up a
        rank) and count NaN as highest, as in ccdproc.
        """
        nlow, nhigh = _extrema(len(self.data), nlow, nhigh)
        self.mask |= self.backend.stack_clip_extrema(self._scaled(), nlow, nhigh)

    def sigma_clipping(self, low_thresh=3, high_thresh=3, func="mean", dev_func="std",
                       maxiters=1):
        """Reject values outside func ± thresh × dev_func of each pixel.

        As in ccdproc, the statistics use every finite value, including ones
        rejected before; `maxiters` > 1 iterates as astropy's sigma_clip does.
        """
        sigma = _sigma(low_thresh, high_thresh, func, dev_func, maxiters)
        x = self._scaled()
        xp = self.backend.xp
        lo, hi = self.backend.stack_sigma_bounds(x, xp.isfinite(x), **sigma)
        self.mask |= ~((x >= lo) & (x <= hi))

    def _combine_frame(self, method, scale_to, func, uncertainty_func, sum_func):
        """(Frame, CCDData the inputs began with or None): the fast path, and the generic
        one for user functions."""
        factors = None if scale_to is None else _scale_factors(
            scale_to, _ArraySource(self.data), self.dtype)
        x = self._scaled(factors)
        value, uncertainty, nkept = self.backend.stack_reduce(
            x, ~self.mask, method, None if method == "median" else self._weights)
        if any(f is not None for f in (func, uncertainty_func, sum_func)):
            value, uncertainty = self._generic(method, x, nkept, value, uncertainty, func,
                                               uncertainty_func, sum_func)
        history = dict(method=method, nframes=len(self.data), combiner=True,
                       user_functions=", ".join(getattr(f, "__name__", "callable") for f in
                                                (func, uncertainty_func, sum_func)
                                                if f is not None) or None)
        return _result(value, uncertainty, nkept, self._source, self.backend, self.dtype,
                       history), self._like

    def _generic(self, method, x, nkept, value, uncertainty, func, uncertainty_func, sum_func):
        """ccdproc's combination with user functions, called on the whole stack.

        The functions get what ccdproc 2.5.1 gives them: a combination function
        a NumPy masked array of the (scaled) stack; an uncertainty function the
        same when a combination function was given too, else the stack with
        rejected values as NaN. On the GPU CuPy has no masked arrays: every
        function gets the CuPy stack with rejected values as NaN (use NaN-aware
        functions, e.g. ``cupy.nanmedian``; ``np.*`` functions dispatch to CuPy).
        The uncertainty is divided by √n (and multiplied by n for "sum"), n the
        values kept.
        """
        xp = self.backend.xp
        with_nan = xp.where(self.mask, xp.nan, x)
        wrapped = (np.ma.MaskedArray(x, mask=self.mask) if self.backend.device == "cpu"
                   else with_nan)

        def plain(v):
            return xp.asarray(np.ma.getdata(v) if isinstance(v, np.ma.MaskedArray) else v,
                              dtype=np.float64)

        w = self._weights
        if w is not None and w.ndim == 1:
            w = w[:, None, None]
        if w is not None and method != "median" and sum_func is not None:
            total = plain(sum_func((wrapped if func is not None else with_nan) * w, axis=0))
            value = total if method == "sum" else total / plain(sum_func(
                xp.broadcast_to(w, x.shape), axis=0))
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
        frame, like = self._combine_frame(method, scale_to, func, uncertainty_func, sum_func)
        return give_back(frame, "frame" if like is None else "ccddata", like)

    def median_combine(self, median_func=None, scale_to=None, uncertainty_func=None):
        """Median of the kept values; uncertainty 1.4826·MAD/√n.

        `median_func` and `uncertainty_func` (called as ``f(stack, axis=0)``)
        replace the statistics, as in ccdproc; they run on the generic path
        (see :meth:`_generic` for what they are given). The result is a
        CCDData when the frames were CCDData, else a Frame.
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
