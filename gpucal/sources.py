"""One way in, one way out: what a user may pass to gpucal, and what comes back.

Images come as NumPy or CuPy arrays (masked or not), nested lists, Frames or
astropy CCDData; stacks also as 3-D or Dask arrays, lists of images, or file
names (a list, a NumPy array of them as ``ImageFileCollection.files_filtered``
returns, or one comma-separated string). Every step reads its inputs here and
gives its result back here, as the type that came in: CCDData in → CCDData out
(its meta and WCS the input's, plus what the step adds), Frame in → Frame out,
arrays in → arrays out (the data; a NumPy masked array gets the result's mask),
file names → CCDData (as ccdproc reads them).

User functions (ccdproc's ``scale``, ``median_func``, ``uncertainty_func`` ...)
get what ccdproc gives them, NumPy masked arrays, on either device
(:func:`to_user`), and their results go back to the device (:func:`from_user`):
a script's NumPy functions run unchanged when the data are on the GPU.

Where the device is chosen for what has none yet (CCDData, lists, files), that
is done once, here (:func:`backend_of`); arrays and Frames stay where they are.
"""

import copy
import os
import sys
import warnings

import numpy as np
from astropy.io import fits

from ._dtype import refuse_complex
from .backend import backend_for_device, get_backend
from .errors import FrameError, FrameTypeError, require_pixels
from .frame import Frame, ccddata_header

__all__ = ["as_frame", "backend_of", "file_names", "from_user", "give_back", "image_data",
           "is_ccddata", "is_dask_array", "kind_of", "parts", "stack_input", "to_user",
           "unit_and_header"]


def is_ccddata(item):
    """True for an astropy CCDData (without importing astropy.nddata)."""
    nddata = sys.modules.get("astropy.nddata")
    return nddata is not None and isinstance(item, nddata.CCDData)


def is_dask_array(x):
    """True for a Dask array (without importing Dask)."""
    return hasattr(x, "__dask_graph__") and hasattr(x, "chunks")


def _is_array(x):
    return hasattr(x, "__array__") or hasattr(x, "__cuda_array_interface__")


def kind_of(image):
    """What a result must be given back as: "ccddata", "frame", "masked" or "array".

    Raises
    ------
    TypeError
        For anything that is not an image.
    """
    if isinstance(image, Frame):
        return "frame"
    if is_ccddata(image):
        return "ccddata"
    if isinstance(image, np.ma.MaskedArray):
        return "masked"
    if isinstance(image, (list, tuple)) or _is_array(image):
        return "array"
    raise TypeError(f"expected a 2-D array, Frame or CCDData; got {type(image).__name__}")


def file_names(frames):
    """The file names `frames` holds, or None when it holds something else.

    One comma-separated string (ccdproc's form; blanks around names and empty
    names dropped), one path, or a list, tuple or NumPy array of names.
    """
    if isinstance(frames, (str, os.PathLike)):
        return [f.strip() for f in os.fspath(frames).split(",") if f.strip()]
    if isinstance(frames, np.ndarray) and frames.dtype.kind in "US":
        return [str(f) for f in frames.ravel()]
    if isinstance(frames, (list, tuple, np.ndarray)) and len(frames) and (
            getattr(frames, "dtype", np.dtype(object)).kind == "O") and all(
            isinstance(f, (str, os.PathLike)) for f in frames):
        return [os.fspath(f) for f in frames]
    return None


def stack_input(frames):
    """(form, value) of what a stack was given as: one of

    ("dask", 3-D Dask array), ("array", 3-D NumPy/CuPy array, masked or not),
    ("files", list of names), ("images", list of 2-D images).

    Raises
    ------
    FrameTypeError
        For something that is not a stack, or file names mixed with images.
    ValueError
        For no frames at all.
    """
    names = file_names(frames)
    if names is None and is_dask_array(frames):
        return "dask", frames
    if names is None and hasattr(frames, "ndim") and not isinstance(frames, (list, tuple)):
        return "array", frames
    if names is None:
        try:
            frames = list(frames)
        except TypeError:
            raise FrameTypeError(f"unrecognised input for list of images: "
                                 f"{type(frames).__name__} (give a list of frames, CCDData or "
                                 "file names, a comma-separated string of names, or a 3-D "
                                 "array)") from None
        names = file_names(frames)  # an iterator of names
    for i, f in enumerate(frames if names is None else []):
        if isinstance(f, (str, os.PathLike)):
            raise FrameTypeError("frames: give either file paths or in-memory frames, not a mix")
        try:
            kind_of(f)
        except TypeError:
            raise TypeError(f"frames[{i}]: expected an array, Frame, CCDData or file path; "
                            f"got {type(f).__name__}") from None
    if not (frames if names is None else names):
        raise ValueError("combine: no frames to combine")
    return ("images", frames) if names is None else ("files", names)


def parts(image, name, ndim=2):
    """(data, mask, unit) of an image as given, nothing moved or converted but lists.

    `data` is the NumPy or CuPy array (a CCDData's as NumPy), `mask` the
    Frame's flag bits, the CCDData's or MaskedArray's booleans, or None.
    `ndim` None takes any array, of any shape.

    Raises
    ------
    TypeError
        For something that is not an image, or non-numeric or complex data.
    FrameError
        For data that are not `ndim`-D, or have no pixels.
    """
    try:
        kind = kind_of(image)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    mask = unit = None
    if kind == "frame":
        data, mask, unit = image.data, image.mask, image.unit
    elif kind == "ccddata":
        data, mask, unit = np.asarray(image.data), image.mask, image.unit
    elif kind == "masked":
        data, mask = image.data, np.ma.getmask(image)
        mask = None if mask is np.ma.nomask else mask
    else:
        data = image if hasattr(image, "dtype") and hasattr(image, "shape") else np.asarray(image)
    refuse_complex(data.dtype, name)
    if data.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected numbers, got {data.dtype}")
    if ndim is not None:  # a frame; other uses (statistics) take any array
        if data.ndim != ndim:
            raise FrameError(f"{name} must be two-dimensional (a frame is 2-D); got shape "
                             f"{tuple(data.shape)}")
        require_pixels(data.shape, name)
    return data, mask, unit


def unit_and_header(image):
    """(unit, header) of a Frame or CCDData; (None, None) for an array."""
    if isinstance(image, Frame):
        return image.unit, image.header
    if is_ccddata(image):
        return image.unit, ccddata_header(image)
    return None, None


def backend_of(device, *resident):
    """The backend a step computes on: the one holding `resident` arrays, if any; else `device`'s.

    This is the one place where inputs without a device (CCDData, lists, files)
    are given one: `device` (None: ``GPUCAL_DEVICE``, else "auto").
    """
    resident = [a for a in resident if a is not None]
    return get_backend(*resident) if resident else backend_for_device(device)


def image_data(image, name, *, with_mask=False, ndim=2):
    """(data, backend) of an image given as a NumPy/CuPy array, Frame or CCDData.

    Float32 and float64 data keep their dtype (ccdproc computes in the input's
    dtype); other numbers become float64. Uncertainties are not looked at; the
    mask only `with_mask`: then (data, mask, backend), the mask boolean or None
    (a Frame's, a CCDData's or a NumPy MaskedArray's). A CCDData or a list is
    computed on the CPU, as a NumPy array is.

    Raises
    ------
    TypeError
        For anything else, or non-numeric or complex data.
    ValueError
        If the data are not `ndim`-D or have no pixels (FrameError; `ndim`
        None: any array), or the mask is not of their shape.
    """
    data, mask, _ = parts(image, name, ndim)
    backend = get_backend(data, mask if with_mask else None)
    data = backend.asarray(data)
    if data.dtype not in (np.float32, np.float64):
        data = data.astype(np.float64)
    if not with_mask:
        return data, backend
    if mask is not None:
        mask = backend.asarray(mask, bool) if mask.dtype == bool else backend.asarray(mask) != 0
        if mask.shape != data.shape:
            raise ValueError(f"{name}: mask shape {tuple(mask.shape)} does not match the "
                             f"data's {tuple(data.shape)}")
    return data, mask, backend


def to_user(data, mask, backend):
    """`data` as a user function gets it: a NumPy masked array, True in `mask` masked.

    On the CPU a view of `data` and `mask` (no copy); on the GPU a host copy.
    `mask` None masks nothing.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.backend import get_backend
    >>> from gpucal.sources import to_user
    >>> x = np.array([1.0, 2.0, 30.0])
    >>> float(np.ma.median(to_user(x, x > 10, get_backend(x))))
    1.5
    """
    host = backend.to_numpy
    return np.ma.MaskedArray(host(data), mask=False if mask is None else host(mask),
                             copy=False)


def from_user(value, backend, dtype=np.float64):
    """A user function's result (a number, an array, a masked array's data) on `backend`.

    Raises
    ------
    TypeError
        For complex results (the imaginary part would be lost).
    """
    value = np.ma.getdata(value) if isinstance(value, np.ma.MaskedArray) else value
    source = get_backend(value)
    value = source.asarray(value)
    refuse_complex(value.dtype, "a user function's result")
    return backend.asarray(source.to_numpy(value) if source is not backend else value, dtype)


def as_frame(image, name):
    """(Frame, kind) for a Frame, CCDData or 2-D array; `kind` (see :func:`kind_of`) says
    what to give back.

    CCDData and arrays keep their floating dtype (integers become float64),
    as ccdproc computes in the input's precision. Nothing is copied that
    need not be: the steps never modify their inputs.
    """
    try:
        kind = kind_of(image)
    except TypeError:
        raise TypeError(f"{name}: expected a Frame, CCDData or 2-D array; "
                        f"got {type(image).__name__}") from None
    if kind == "frame":
        return image, kind
    try:
        if kind == "ccddata":
            return Frame.from_ccddata(image, dtype=None), kind
        data, mask, _ = parts(image, name, ndim=None)
        return Frame(data, mask, dtype=None), kind
    except (FrameError, TypeError) as exc:  # Frame's messages name "data": say which operand
        message = str(exc)
        raise type(exc)(message if message.startswith(name) else f"{name}: {message}") from None


def give_back(frame, kind, like=None):
    """The result as the kind of object the caller passed (see :func:`kind_of`).

    "frame": the Frame; "array": its data; "masked": a NumPy masked array of
    its data and boolean mask; "ccddata": a CCDData (on the host, as astropy's
    are; file names give one too, which needs a unit: FrameError without). With `like` (the CCDData
    the result derives from) the CCDData's meta is a copy of `like`'s, of the
    same type (a dict stays a dict, its keys as they were, values FITS cannot
    hold kept), with what the step wrote into the Frame's header added
    (NCOMBINE, HISTORY, a shifted CRPIX ...), and its WCS is `like`'s
    (reference pixel shifted as the header's): ccdproc's results.
    """
    if kind == "array":
        return frame.data
    if kind == "masked":
        mask = frame.bool_mask
        return np.ma.MaskedArray(frame.backend.to_numpy(frame.data),
                                 mask=False if mask is None else frame.backend.to_numpy(mask))
    if kind != "ccddata":
        return frame
    if frame.unit is None:  # only file names get here without one
        raise FrameError("file names give a CCDData, as in ccdproc, and a CCDData needs a unit: "
                         "these files have no BUNIT; pass unit= (e.g. 'adu')")
    ccd = frame.to_ccddata()
    if like is not None:
        ccd.meta = _result_meta(like, frame.header)
        if like.wcs is not None:
            wcs = like.wcs.deepcopy()
            for i in (0, 1):
                key = f"CRPIX{i + 1}"
                if key in frame.header and i < len(wcs.wcs.crpix):
                    wcs.wcs.crpix[i] = frame.header[key]
            ccd.wcs = wcs
    return ccd


def _result_meta(like, header):
    """`like.meta` (copied, same type) plus the cards of `header` that are new or changed."""
    base = ccddata_header(like)
    wcs_keys = set() if like.wcs is None else set(like.wcs.to_header(relax=True))
    meta = like.meta
    is_header = isinstance(meta, fits.Header)
    meta = meta.copy() if is_header else copy.deepcopy(meta)
    names = {} if is_header else {str(k).upper(): k for k in meta}
    for card in header.cards:
        key = card.keyword
        if key in ("HISTORY", "COMMENT", "") or key in wcs_keys:
            continue
        if key in base and base[key] == card.value:
            continue
        if is_header:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", fits.verify.VerifyWarning)
                meta[key] = (card.value, card.comment)
        else:
            meta[names.get(key, key)] = card.value
    new = [str(h) for h in header.get("HISTORY", [])][len(base.get("HISTORY", [])):]
    if new and is_header:
        for line in new:
            meta.add_history(line)
    elif new:  # a dict holds one value per key: the lines in one string FITS can write
        old = meta.get("HISTORY")
        meta["HISTORY"] = "; ".join(([str(old)] if old else []) + new)
    return meta
