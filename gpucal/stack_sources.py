"""A stack of frames to combine, read band by band: whatever form :func:`gpucal.sources.stack_input`
says the frames came in (a 3-D array, a Dask array, images in memory, FITS files).

Each source has ``n`` frames of ``shape``, a ``backend``, the first frame's
``header``, the frames' ``unit``, ``has_mask``, and gives rows start:stop of
every frame (``band``) or one whole frame (``frame``) as (data, mask) on its
backend, masks boolean (True = rejected).
"""

import numpy as np

from . import io
from ._dtype import refuse_complex
from .backend import backend_for_device, move
from .errors import FrameError, FrameTypeError, require_pixels
from .sources import backend_of, is_ccddata, kind_of, parts, stack_input, unit_and_header

__all__ = ["ArraySource", "DaskSource", "FileSource", "MemorySource", "NoProgress", "open_stack"]


def _check_stack(array):
    """A stack array must be (frames, y, x) of real numbers, with at least one frame and pixels."""
    refuse_complex(array.dtype, "frames")
    if array.ndim != 3:
        raise FrameError(f"frames: a stack array must be 3-D (frames, y, x); got shape "
                         f"{array.shape}")
    if array.shape[0] == 0:
        raise ValueError("combine: no frames to combine")
    require_pixels(array.shape, "frames: the stack")


def _rejected(mask, backend):
    """A mask (bool, or flag bits: non-zero rejects) as bool on `backend`; a view if it is
    bool there already, so a band of it costs one byte a value at most."""
    mask = move(mask, backend)
    return mask if mask.dtype == bool else mask != 0


def _check_same(source, names, shapes, units):
    for name, shape, unit in zip(names, shapes, units):
        if shape != tuple(shapes[0]):
            raise FrameTypeError(f"{name}: shape {shape} differs from the first frame's "
                                 f"{tuple(shapes[0])}; all frames must have one shape")
        if unit != units[0]:
            raise FrameTypeError(f"{name}: unit {unit} differs from the first frame's "
                                 f"{units[0]}; convert the frames to one unit before combining")
    source.unit = units[0]


class ArraySource:
    """A 3-D NumPy (masked or not) or CuPy array: bands are views."""

    def __init__(self, array):
        self.mask = None
        if isinstance(array, np.ma.MaskedArray):
            mask = np.ma.getmask(array)
            array, self.mask = array.data, None if mask is np.ma.nomask else mask
        _check_stack(array)
        self.array, self.backend = array, backend_of(None, array)
        self.n, self.shape = array.shape[0], tuple(array.shape[1:])
        self.unit, self.header, self.has_mask = None, None, self.mask is not None
        self.kind, self.like = "masked" if self.has_mask else "array", None

    def band(self, start, stop, dtype):
        return (self.array[:, start:stop].astype(dtype, copy=False),
                None if self.mask is None else self.mask[:, start:stop])

    def frame(self, i, dtype):
        return (self.array[i].astype(dtype, copy=False),
                None if self.mask is None else self.mask[i])

    def close(self):
        pass


class DaskSource:
    """A 3-D Dask array: bands stay lazy (workers compute them); frames are computed here."""

    def __init__(self, array):
        _check_stack(array)
        self.array, self.backend = array, backend_for_device("cpu")
        self.n, self.shape = array.shape[0], tuple(array.shape[1:])
        self.unit, self.header, self.has_mask = None, None, False
        self.kind, self.like = "array", None

    def band(self, start, stop, dtype):
        return self.array[:, start:stop], None

    def frame(self, i, dtype):
        return np.asarray(self.array[i].compute(), dtype=dtype), None

    def close(self):
        pass


class MemorySource:
    """2-D arrays, Frames or CCDData: bands are lists of row views, one per frame.

    Arrays and Frames stay on their device; CCDData (host containers) go to
    `device`, unless arrays already fixed the backend. Masks are kept as given
    (a Frame's flag bits) and made boolean band by band.
    """

    def __init__(self, items, device):
        names = [f"frames[{i}]" for i in range(len(items))]
        self.items = [parts(item, name) for item, name in zip(items, names)]
        self.backend = backend_of(device, *(d for (d, _, _), item in zip(self.items, items)
                                            if not is_ccddata(item)))
        self.n = len(self.items)
        self.shape = tuple(self.items[0][0].shape)
        self.header = unit_and_header(items[0])[1]
        self.kind = kind_of(items[0])  # the result's type: the first frame's
        self.like = items[0] if self.kind == "ccddata" else None
        self.has_mask = any(m is not None for _, m, _ in self.items)
        _check_same(self, names, [tuple(d.shape) for d, _, _ in self.items],
                    [u for _, _, u in self.items])

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


class FileSource:
    """FITS files, read band by band: every pixel of every file is read once, straight
    into the band (see io.FitsStack: compressed files are decompressed once)."""

    def __init__(self, paths, device, hdu, unit, progress=None):
        self.files = io.FitsStack(paths, hdu, unit=unit)
        self.backend = backend_of(device)
        self.n = len(paths)
        self.shape = tuple(self.files.images[0].hdu.shape)
        self.header = self.files.images[0].header.copy()
        self.has_mask = any(im.mask_hdu is not None for im in self.files.images)
        self.row_alignment = self.files.row_alignment
        self.progress = progress or NoProgress()
        self.kind, self.like = "ccddata", None  # file names in: a CCDData out, as ccdproc
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


class NoProgress:
    def step(self):
        pass


def open_stack(frames, device=None, hdu=None, unit=None, progress=None):
    """The stack behind `frames`, whatever form they come in (see :func:`gpucal.combine`)."""
    form, value = stack_input(frames)
    if form == "dask":
        return DaskSource(value)
    if form == "array":
        return ArraySource(value)
    if form == "files":
        return FileSource(value, device, hdu, unit, progress)
    return MemorySource(value, device)
