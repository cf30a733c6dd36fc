"""FITS files ⇄ host arrays: the only module that reads or writes image files.

Reading returns native-endian NumPy arrays (FITS is big-endian; CuPy must
never see big-endian bytes), with scaled integers (BZERO/BSCALE, BLANK)
applied, and the conventions of astropy's ``CCDData``: the image in the
primary HDU or an extension, a ``MASK`` extension (non-zero = masked) and an
``UNCERT`` extension whose ``UTYPE`` card names the uncertainty kind.
Writing produces files that ``CCDData.read`` opens, atomically: a temporary
file in the target directory, renamed into place when complete.

Every failure names the file and the problem (:class:`~gpucal.FrameError`,
or ``FileNotFoundError``/``FileExistsError``).
"""

import bz2
import contextlib
import gzip
import hashlib
import lzma
import math
import os
import re
import tempfile
import uuid
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from . import flags
from ._dtype import float_dtype
from .backend import backend_for_device
from .errors import FrameError, require_pixels

MASK_EXTNAME = "MASK"
UNCERT_EXTNAME = "UNCERT"
_UNCERT_KEY = "UTYPE"  # astropy's key for the uncertainty class name
#: Names of files write_fits is writing (``.<name>.<12 hex digits>.tmp``, beside the
#: target); what a killed writer leaves behind and ``gpucal reduce`` sweeps.
TEMPORARY_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")

# Cards that describe the storage of one HDU, not the image: never carried over.
_STORAGE_KEYS = {"SIMPLE", "XTENSION", "BITPIX", "NAXIS", "EXTEND", "PCOUNT", "GCOUNT",
                 "BZERO", "BSCALE", "BLANK", "EXTNAME", "EXTVER", "EXTLEVEL",
                 "CHECKSUM", "DATASUM", "INHERIT", "BUNIT"}


class FitsImage(NamedTuple):
    """What :func:`read_fits` returns: host arrays plus header and unit."""

    data: np.ndarray
    mask: np.ndarray | None
    uncertainty: np.ndarray | None
    header: fits.Header
    unit: u.UnitBase | None


def _clean_header(header):
    """A copy of `header` without storage cards (those are the writer's business)."""
    out = header.copy(strip=True)
    for key in list(out.keys()):
        if key in _STORAGE_KEYS or (key.startswith("NAXIS") and key[5:].isdigit()):
            out.remove(key, remove_all=True)
    return out


def _describe(hdul):
    parts = []
    for i, h in enumerate(hdul):
        shape = "×".join(map(str, h.shape)) if h.is_image and h.shape else "no data"
        parts.append(f"{i} {h.name or '-'} ({type(h).__name__}, {shape})")
    return "; ".join(parts)


def _has_image(h):
    return h.is_image and len(h.shape) > 0


def pick_hdu(hdul, hdu, path):
    """The image HDU gpucal reads from an open FITS file (read_fits and plan.scan alike).

    `hdu` (index, EXTNAME or (EXTNAME, EXTVER)) if given, else the first image
    with data that is not a MASK or UNCERT extension; FrameError when there
    is no such HDU.
    """
    if hdu is None:
        for h in hdul:
            if _has_image(h) and h.name not in (MASK_EXTNAME, UNCERT_EXTNAME):
                return h
        raise FrameError(f"{path}: no image HDU in the file; it holds: {_describe(hdul)}")
    try:
        h = hdul[hdu]
    except (KeyError, IndexError):
        raise FrameError(f"{path}: no HDU {hdu!r}; the file holds: {_describe(hdul)}") from None
    if not _has_image(h):
        raise FrameError(f"{path}: HDU {hdu!r} is not an image with data "
                         f"({type(h).__name__}); the file holds: {_describe(hdul)}")
    return h


class _Image(NamedTuple):
    """An image HDU found in an open file, with what belongs to it."""

    hdu: fits.hdu.base.ExtensionHDU
    mask_hdu: fits.hdu.base.ExtensionHDU | None
    uncertainty_hdu: fits.hdu.base.ExtensionHDU | None
    header: fits.Header  # cleaned; an extension's completed by the primary's cards
    unit: u.UnitBase | None
    blank: float | None  # the scaled value that BLANK stands for, if any


@contextlib.contextmanager
def _no_truncation_warning():
    """Silence astropy's warning that a file "may have been truncated".

    The data gpucal reads are checked against the file's size (:func:`_check_claim`),
    which says clearly what is missing; a truncated HDU that is not read does not matter.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "File may have been truncated", AstropyUserWarning)
        yield


@contextlib.contextmanager
def open_fits(path, **kwargs):
    """``astropy.io.fits.open`` on a file handle gpucal opened itself.

    astropy leaves its own handle open when it finds a file is not FITS ("Empty or corrupt
    FITS file"); this handle is closed whatever happens. Plain, gzip- and tile-compressed
    files are read alike.
    """
    with open(path, "rb") as f, fits.open(f, **kwargs) as hdul:
        yield hdul


@contextlib.contextmanager
def _reading(path):
    """Turn what astropy or NumPy raise on a damaged file into a FrameError naming it."""
    try:
        with _no_truncation_warning():
            yield
    except (FrameError, MemoryError):
        raise
    except Exception as exc:
        raise FrameError(f"{path}: cannot read it as FITS ({type(exc).__name__}: {exc}); "
                         "the file is damaged, truncated or not FITS") from exc


def _size(nbytes):
    """A byte count for people: ``"5.76 kB"``, ``"160 GB"`` (decimal units)."""
    for unit, factor in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= factor:
            return f"{nbytes / factor:.3g} {unit}"
    return f"{nbytes} bytes"


def _check_claim(hdul, h, path, what="the header"):
    """Refuse an image HDU whose header claims more data than can be there, before reading.

    Nothing is allocated for a damaged header's claim (a 5 kB file claiming
    200000×200000 pixels would otherwise reach NumPy as a 149 GiB allocation):

    * a plain file must hold the data its header claims, |BITPIX|/8 × NAXIS1 ×
      NAXIS2 bytes from the data's offset (FITS's padding after them may be missing);
    * a tile-compressed image (``.fz``) or a gzip/bzip2/zip/lzma-compressed file
      holds its pixels in fewer bytes than they take once decoded, so its claim cannot
      be checked against the file's size: it must instead fit in the memory available
      now (a real image that large could not be read anyway).

    Raises
    ------
    FrameError
        Naming the file, the claimed size and what holds less.
    """
    info = hdul.fileinfo(hdul.index_of(h))
    claimed = h.size  # bytes of data as the header describes them (decoded, if tiled)
    pixels = f"{what} claims {'×'.join(map(str, h.shape))} pixels ({_size(claimed)})"
    compression = getattr(info["file"], "compression", None)
    if isinstance(h, fits.CompImageHDU) or compression:
        available = backend_for_device("cpu").available_memory()
        if claimed > available:
            kind = ("a tile-compressed image" if isinstance(h, fits.CompImageHDU)
                    else f"a {compression}-compressed file")
            raise FrameError(f"{path}: {pixels}, more than the {_size(available)} of memory "
                             f"available; the claims of {kind} cannot be checked against "
                             "the file's size: damaged, or too large to read on this machine")
        return
    size = getattr(info["file"], "size", None)  # what is open: maybe a decompressed copy
    size = os.path.getsize(path) if size is None else size
    if info["datLoc"] + claimed > size:
        after = "" if claimed > size else f", {_size(max(0, size - info['datLoc']))} after it"
        raise FrameError(f"{path}: {pixels} but the file holds only {_size(size)}{after}: "
                         "truncated or damaged")


def _check_file(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path}")
    if os.path.isdir(path):
        raise FrameError(f"{path}: is a directory, not a FITS file")


def _locate(hdul, hdu, path, unit):
    """Find the image (and its MASK/UNCERT) in an open file; nothing is read but headers."""
    h = pick_hdu(hdul, hdu, path)
    what = "the image" if hdu is None else f"HDU {hdu!r}"
    if len(h.shape) != 2:
        raise FrameError(f"{path}: {what} is {len(h.shape)}-D (shape {h.shape}); gpucal "
                         "works on 2-D frames: select one plane or extension with hdu=")
    require_pixels(h.shape, f"{path}: {what}")
    _check_claim(hdul, h, path)
    header = h.header.copy()
    if h is not hdul[0]:
        header.extend(_clean_header(hdul[0].header), unique=True)
    found = {}
    for name in (MASK_EXTNAME, UNCERT_EXTNAME):
        ext = hdul[name] if name in hdul and hdul[name] is not h else None
        if ext is not None:
            _check_shape(ext, h.shape, path, name)
            _check_claim(hdul, ext, path, f"the {name} extension's header")
        found[name] = ext
    # astropy turns BLANK into NaN when it scales to float, but not for
    # pseudo-unsigned integers (BZERO = 2**(n-1)): remember what to replace.
    blank = h.header.get("BLANK")
    if blank is not None:
        blank = blank * h.header.get("BSCALE", 1) + h.header.get("BZERO", 0)
    return _Image(h, found[MASK_EXTNAME], found[UNCERT_EXTNAME], _clean_header(header),
                  _unit(header, unit, path), blank)


def _pixels(image, rows=slice(None)):
    """Rows of the image as astropy scales them, with BLANK pixels as NaN.

    Reads only those rows (only their tiles of a tile-compressed image); the
    result is new memory of astropy's dtype (big-endian for unscaled data).
    """
    data = image.hdu.section[rows, :]
    if image.blank is not None and data.dtype.kind in "iu":
        out = data.astype(np.float64)
        out[data == image.blank] = np.nan
        return out
    return data


# A CCD's raw counts, however the acquisition program spells them, are ADU (astropy reads
# "DN" and "count" as other units, and the gain in electron/adu would not cancel them).
_ADU = {"adu", "adus", "dn", "dns", "count", "counts", "ct", "cts", "data number"}
_ELECTRON = {"electron", "electrons", "e-", "e"}


def parse_unit(text):
    """The astropy unit a BUNIT value names, raw counts' spellings (DN, count...) as ADU.

    Parameters
    ----------
    text : str

    Returns
    -------
    astropy.units.UnitBase or None
        None for an empty string.

    Raises
    ------
    ValueError
        If astropy does not understand the unit.

    Examples
    --------
    >>> from gpucal.io import parse_unit
    >>> parse_unit("DN"), parse_unit("Counts"), parse_unit("ELECTRONS/S")
    (Unit("adu"), Unit("adu"), Unit("electron / s"))
    """
    from astropy.nddata import CCDData

    text = str(text).strip()
    if not text:
        return None
    low = text.lower()
    if low in _ADU or low in _ELECTRON:
        return u.adu if low in _ADU else u.electron
    # the spellings CCDData.read accepts, so both read the same files
    return u.Unit(CCDData.known_invalid_fits_unit_strings.get(text, text))


def raw_unit(paths, hdu=None):
    """The unit to read raw files with: ADU where every file's BUNIT is absent or says ADU.

    Acquisition programs rarely write BUNIT; their pixels are ADU. Returns ``(unit, note)``:
    ``"adu"``, or None when some file names another unit (then each file's own BUNIT is
    used); `note` says how many files had no BUNIT and were read as ADU (None if none), for
    the command to say once.
    """
    without, units = 0, set()
    for path in paths:
        try:
            with _no_truncation_warning(), open_fits(path, lazy_load_hdus=True) as hdul:
                header = pick_hdu(hdul, hdu, path).header
                unit = parse_unit(header.get("BUNIT", hdul[0].header.get("BUNIT", "")))
        except Exception:  # not FITS, no image, no such unit...: reading says it clearly
            return None, None
        without += unit is None
        units.add(unit or u.adu)
    if not units <= {u.adu}:
        return None, None
    return "adu", (f"{without} of {len(paths)} files have no BUNIT: read as ADU (--unit to "
                   "say otherwise)" if without else None)


def _unit(header, unit, path):
    if unit is not None:
        return u.Unit(unit)
    try:
        return parse_unit(header.get("BUNIT", ""))
    except ValueError:
        raise FrameError(f"{path}: BUNIT = {header['BUNIT']!r} is not a unit astropy "
                         "understands; pass unit= to override it") from None


def _uncertainty_as_stddev(values, header, dtype, path):
    kind = header.get(_UNCERT_KEY, "StdDevUncertainty")
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "StdDevUncertainty":
            pass
        elif kind == "VarianceUncertainty":
            values = np.sqrt(values)
        elif kind == "InverseVariance":
            values = 1.0 / np.sqrt(values)
        else:
            raise FrameError(f"{path}: {UNCERT_EXTNAME} extension has {_UNCERT_KEY} = "
                             f"{kind!r}; gpucal reads StdDevUncertainty, "
                             "VarianceUncertainty and InverseVariance")
    return values.astype(dtype)


def _check_shape(arr, shape, path, what):
    if tuple(arr.shape) != tuple(shape):
        raise FrameError(f"{path}: the {what} extension has shape {tuple(arr.shape)} but "
                         f"the image has shape {tuple(shape)}")


def read_fits(path, hdu=None, *, unit=None, dtype=np.float32):
    """Read one image (and its MASK/UNCERT extensions) from a FITS file.

    Parameters
    ----------
    path : str or os.PathLike
        The FITS file (tile-compressed images included).
    hdu : int, str or (str, int), optional
        Which HDU holds the image: index, EXTNAME or (EXTNAME, EXTVER).
        Default: the first HDU with 2-D image data that is not MASK/UNCERT.
    unit : str or astropy.units.Unit, optional
        Overrides the header's BUNIT.
    dtype : floating dtype or None
        Dtype of data and uncertainty; None keeps the file's float type
        (integers become float64).

    Returns
    -------
    FitsImage
        Native-endian host arrays; the mask as gpucal flags (uint16) or None.
        The header of an extension is completed by the primary header's
        cards it lacks; storage cards (BITPIX, NAXISn, BZERO, ...) and BUNIT
        are removed (the unit is returned separately).

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    FrameError
        If the file is not FITS, is truncated (it holds less than its header
        claims), has no (such) image HDU, the image is not 2-D or has no
        pixels, MASK/UNCERT do not match the image's shape, or BUNIT is not
        a unit. A tile-compressed image or a compressed file whose header
        claims more bytes than the memory available is refused too: its
        claim cannot be checked against the file's size.
    """
    path = os.fspath(path)
    _check_file(path)
    with _reading(path), open_fits(path, memmap=False) as hdul:
        image = _locate(hdul, hdu, path, unit)
        data = _pixels(image)
        mask_ext, uncert_ext = ((h.data, h.header.copy()) if h is not None else None
                                for h in (image.mask_hdu, image.uncertainty_hdu))
    dtype = float_dtype(dtype, data.dtype)
    data = np.asarray(data, dtype=dtype.newbyteorder("="))
    mask = None if mask_ext is None else flags.decode(*mask_ext)
    uncertainty = None if uncert_ext is None else _uncertainty_as_stddev(*uncert_ext, dtype, path)
    return FitsImage(data, mask, uncertainty, image.header, image.unit)


#: Values that FitsStack reads from a file at a time: astropy's temporaries for them (raw
#: bytes, scaled values, BLANK as NaN: at most 20 bytes a value) stay near 10 MB however
#: large the band, which goes straight into the caller's buffer.
_PIECE_VALUES = 1 << 19
#: Bytes copied at a time when a compressed file is decompressed into its temporary copy.
_SPOOL_CHUNK = 1 << 20


@contextlib.contextmanager
def _zip_member(path):
    """The one file in a zip archive, as a stream (astropy reads zips of one file)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if len(names) != 1:
            raise FrameError(f"{path}: a zip archive of {len(names)} files; gpucal reads "
                             "zip archives that hold one FITS file")
        with archive.open(names[0]) as member:
            yield member


# Whole-file compressions, by their first bytes. astropy reads them as one stream, so
# reaching a row decompresses the file from its start: once per band, if left to it.
# (LZW ``.Z`` files, which astropy reads with the optional uncompresspy, are left to it.)
_STREAMS = ((b"\x1f\x8b", gzip.open), (b"BZh", bz2.open), (b"\xfd7zXZ\x00", lzma.open),
            (b"PK\x03\x04", _zip_member))


def _decompressed(path):
    """An anonymous temporary file holding `path` decompressed, open for reading, or None
    if `path` is not compressed as a whole (plain or tile-compressed FITS are read in place).

    The copy is made once, a megabyte at a time, in the system's temporary directory
    (:func:`tempfile.gettempdir`: ``$TMPDIR``, else ``/tmp``). It has no name there (POSIX)
    and is freed when the returned file is closed or the process ends, however it ends.
    """
    with _reading(path), open(path, "rb") as f:
        magic = f.read(6)
    opener = next((o for m, o in _STREAMS if magic.startswith(m)), None)
    if opener is None:
        return None
    spool = tempfile.TemporaryFile(prefix="gpucal-", suffix=".fits")
    try:
        with contextlib.ExitStack() as opened:
            with _reading(path):  # a damaged input says so; a full disk says that
                stream = opened.enter_context(opener(path))
            while True:
                with _reading(path):
                    chunk = stream.read(_SPOOL_CHUNK)
                if not chunk:
                    break
                try:
                    spool.write(chunk)
                except OSError as exc:
                    raise OSError(exc.errno, f"cannot decompress {path} into "
                                  f"{tempfile.gettempdir()} ({exc.strerror}); set TMPDIR to "
                                  "a directory with room for the uncompressed file") from None
        spool.flush()
        copy = open(os.dup(spool.fileno()), "rb")  # astropy wants a read-only handle
    finally:
        spool.close()  # the copy lives on while `copy` is open
    copy.seek(0)
    return copy


def _tile_rows(hdu):
    """Rows of one tile of a tile-compressed image (1 for other images)."""
    return int(hdu.tile_shape[0]) if isinstance(hdu, fits.CompImageHDU) else 1


def _pieces(hdu, start, stop):
    """Row spans covering ``start:stop`` of `hdu`, each of at most about _PIECE_VALUES
    values and made of whole tiles (spans start at multiples of the tile height)."""
    tile = _tile_rows(hdu)
    step = max(1, _PIECE_VALUES // (tile * hdu.shape[1])) * tile
    bounds = [start, *range((start // step + 1) * step, stop, step), stop]
    return zip(bounds[:-1], bounds[1:])


class FitsStack:
    """Same-size images in FITS files, read in row bands; each file is opened once.

    ``combine`` reads a stack larger than its memory budget band by band, so
    every pixel of every file is read once (ccdproc re-reads whole files for
    every tile), straight into the caller's buffers, a few MB at a time.
    Files compressed as a whole (gzip, bzip2, xz, zip of one file) are
    decompressed once, when opened, into anonymous temporary files (see
    :attr:`decompressions`), since astropy would decompress them from the start
    for every band; tile-compressed images (``.fits.fz``) are read in place,
    each tile decompressed once when bands start at multiples of
    :attr:`row_alignment`. Use as a context manager, or call :meth:`close`.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
    hdu : int, str or (str, int), optional
        As for :func:`read_fits`, the same in every file.
    unit : str or astropy.units.Unit, optional
        Overrides every file's BUNIT.

    Attributes
    ----------
    decompressions : int
        How many files were decompressed into temporary files.
    row_alignment : int
        Bands that start at multiples of it decompress every tile of every
        tile-compressed image (and MASK) once: the least common multiple of the
        tile heights (1 without tile compression).

    Raises
    ------
    FileNotFoundError, FrameError
        As :func:`read_fits`, when the files are opened (before any band is read).
    """

    def __init__(self, paths, hdu=None, *, unit=None):
        self.paths = [os.fspath(p) for p in paths]
        self._files, self._handles, self._copies, self.images = [], [], [], []
        try:
            for path in self.paths:
                _check_file(path)
                copy = _decompressed(path)
                if copy is not None:
                    self._copies.append(copy)
                with _reading(path):
                    self._handles.append(open(path, "rb") if copy is None else copy)
                    self._files.append(fits.open(self._handles[-1], memmap=False))
                    self.images.append(_locate(self._files[-1], hdu, path, unit))
        except BaseException:
            self.close()
            raise
        self.decompressions = len(self._copies)
        self.row_alignment = math.lcm(*(_tile_rows(h) for im in self.images
                                        for h in (im.hdu, im.mask_hdu) if h is not None))

    def rows(self, i, start, stop, out):
        """Read rows ``start:stop`` of image `i` into `out` and return it.

        `out` is a (stop - start, nx) array of a floating dtype; values are
        converted to it (native byte order) as :func:`read_fits` converts them.
        """
        image = self.images[i]
        with _reading(self.paths[i]):
            for a, b in _pieces(image.hdu, start, stop):
                out[a - start:b - start] = _pixels(image, slice(a, b))
        return out

    def mask_rows(self, i, start, stop, out):
        """Read rows of image `i`'s MASK extension into the bool array `out` (True where
        non-zero) and return it; None, with `out` untouched, if the image has no MASK."""
        ext = self.images[i].mask_hdu
        if ext is None:
            return None
        with _reading(self.paths[i]):
            for a, b in _pieces(ext, start, stop):
                out[a - start:b - start] = ext.section[a:b, :] != 0
        return out

    def close(self):
        """Close the files and free the temporary copies of compressed ones."""
        for f in self._files + self._handles + self._copies:  # closing twice does nothing
            f.close()
        self._files, self._handles, self._copies = [], [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


COMPRESS = ("none", "mask", "mask+uncert")


class _Hashing:
    """A write-only stream that hashes what passes through it: a product's checksum without
    reading the file back. Deliberately no fileno() or seek(): astropy then writes every
    byte, in order, through write() (with a real file it may hand arrays to the OS)."""

    mode = "wb"

    def __init__(self, f):
        self._f, self.digest = f, hashlib.sha256()

    def write(self, data):
        self.digest.update(data)
        return self._f.write(data)

    def flush(self):
        self._f.flush()

    def tell(self):
        return self._f.tell()


#: Bytes of an image byte-swapped (to FITS's big-endian order) at a time, into one of two
#: reused buffers: one is hashed while the next is filled and written.
_BLOCK = 1 << 22
_BLOCK_SIZE = 2880  # FITS pads headers and data to multiples of it
#: Pixel types whose FITS data are their own bytes, big-endian (no BZERO to apply).
_PLAIN_TYPES = {np.dtype(t).newbyteorder(o) for t in (np.uint8, np.int16, np.int32, np.int64,
                                                      np.float32, np.float64) for o in "<>="}


def _plain(hdu):
    """Whether gpucal writes `hdu`'s bytes itself: an uncompressed image of a plain type."""
    return not isinstance(hdu, fits.CompImageHDU) and (hdu.data is None or (
        hdu.data.dtype in _PLAIN_TYPES and hdu.data.flags.c_contiguous))


def _pieces_of(hdul):
    """The bytes of an HDU list of plain images, in file order: each header (astropy's
    cards, padded), then its data big-endian in blocks of at most _BLOCK bytes, padded.

    Native arrays are byte-swapped once, block by block, into two alternating buffers: a
    buffer comes back only after the consumer is done with the block before it (astropy
    would swap each array in place and back, two full passes over it and a write that
    cannot overlap anything).
    """
    hdul.verify("exception")  # what writeto checks, refusing what it would refuse
    hdul.update_extend()
    buffers = [np.empty(_BLOCK, np.uint8) for _ in range(2)]
    turn = 0
    for hdu in hdul:
        yield hdu.header.tostring().encode("ascii")
        if hdu.data is None:
            continue
        flat = hdu.data.reshape(-1)
        big = flat.dtype.newbyteorder(">")
        step = _BLOCK // flat.itemsize
        for start in range(0, flat.size, step):
            part = flat[start:start + step]
            if flat.dtype.itemsize > 1 and flat.dtype.byteorder != ">":
                out = buffers[turn][:part.nbytes].view(big)
                np.copyto(out, part)  # one pass: swap into the buffer
                turn ^= 1
                part = out
            yield part.view(np.uint8)
        if flat.nbytes % _BLOCK_SIZE:
            yield bytes(_BLOCK_SIZE - flat.nbytes % _BLOCK_SIZE)


def _write_plain(f, hdul):
    """Write plain image HDUs to `f`; their SHA-256 (hex), hashed in a second thread while
    the next block is swapped and written (hashlib, NumPy and writes release the GIL)."""
    digest = hashlib.sha256()
    with ThreadPoolExecutor(1, thread_name_prefix="gpucal-hash") as hasher:
        pending = []  # hashes of the last two blocks: their buffers are in use till done
        for piece in _pieces_of(hdul):
            pending.append(hasher.submit(digest.update, piece))
            f.write(piece)
            if len(pending) == 2:
                pending.pop(0).result()  # the buffer the next block will fill is free
        for done in pending:
            done.result()
    return digest.hexdigest()


def write_fits(path, data, header, *, mask=None, uncertainty=None, unit=None,
               overwrite=False, compress="none"):
    """Write an image with optional MASK and UNCERT extensions, atomically; its SHA-256.

    The primary HDU holds `data` and `header` (with BUNIT from `unit`); MASK
    holds the flag bits with the bits named in its header, as 8-bit integers
    while every flag fits (16-bit beyond); UNCERT holds the standard deviation
    with ``UTYPE = 'StdDevUncertainty'``. ``CCDData.read`` opens the result
    with a boolean mask.

    `compress` tiles MASK ("mask") and UNCERT too ("mask+uncert") losslessly
    (RICE_1 for the mask bits, GZIP_2 without quantisation for the float
    uncertainty), which ``CCDData.read`` still opens. The data stay
    uncompressed: ``CCDData.read`` cannot open a tile-compressed primary image.

    The file is written under a temporary name in the target directory and
    renamed over `path` only when complete, so a crash never leaves a partial
    file under the final name. The checksum is computed from the bytes as
    they are written.

    Returns
    -------
    str
        SHA-256 of the file, hex (:func:`gpucal.pipeline.results.file_checksum`).

    Raises
    ------
    FileExistsError
        If `path` exists and `overwrite` is False.
    ValueError
        For an unknown `compress`.
    """
    if compress not in COMPRESS:
        raise ValueError(f"compress must be one of {', '.join(map(repr, COMPRESS))}; "
                         f"got {compress!r}")
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    hdr = _clean_header(header)
    if unit is not None:  # '' for dimensionless: CCDData.read needs a BUNIT
        hdr["BUNIT"] = u.Unit(unit).to_string()
    hdus = [fits.PrimaryHDU(data, hdr)]
    if mask is not None:
        mhdr = fits.Header(flags.header_cards())
        small = not mask.size or int(mask.max()) < 256  # 7 flags fit in a byte
        bits = mask.astype(np.uint8 if small else np.int16)
        hdus.append(fits.CompImageHDU(bits, mhdr, name=MASK_EXTNAME, compression_type="RICE_1")
                    if compress != "none" else fits.ImageHDU(bits, mhdr, name=MASK_EXTNAME))
    if uncertainty is not None:
        uhdr = fits.Header([(_UNCERT_KEY, "StdDevUncertainty", "uncertainty kind (astropy)")])
        hdus.append(fits.CompImageHDU(uncertainty, uhdr, name=UNCERT_EXTNAME,
                                      compression_type="GZIP_2", quantize_level=0.0)
                    if compress == "mask+uncert" else
                    fits.ImageHDU(uncertainty, uhdr, name=UNCERT_EXTNAME))

    try:
        with atomic_file(path) as f:
            if compress == "none" and all(_plain(h) for h in hdus):
                return _write_plain(f, fits.HDUList(hdus))
            hashing = _Hashing(f)
            fits.HDUList(hdus).writeto(hashing)
        return hashing.digest.hexdigest()
    except BaseException as exc:
        cause = os_error(exc)
        if cause is not None and cause is not exc:  # astropy hides it behind its own error
            raise OSError(cause.errno, cause.strerror, path) from None
        raise


@contextlib.contextmanager
def atomic_file(path):
    """A new binary file that appears at `path`, complete, only when the block ends.

    It is written under a temporary name beside `path` (:data:`TEMPORARY_NAME`, which
    ``gpucal reduce`` sweeps), synced and renamed over `path`; if the block raises, the
    temporary file is removed and `path` is untouched. Every file gpucal writes (FITS
    products, the report's pages and pictures) goes through here.

    Examples
    --------
    >>> with atomic_file("note.txt") as f:
    ...     _ = f.write(b"complete or absent")
    >>> from pathlib import Path
    >>> Path("note.txt").read_bytes()
    b'complete or absent'
    """
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex[:12]}.tmp")  # TEMPORARY_NAME
    try:
        # O_EXCL: never write into someone else's file; astropy wants mode "wb".
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def os_error(exc):
    """The OSError behind `exc` (itself, or one it was raised while handling), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
