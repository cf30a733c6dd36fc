"""The header scan: every FITS file under RAW_DIR described from its header alone.

:func:`scan` opens each file's first image HDU header (never pixels, never a write) and
turns it into a :class:`RawFrame`: kind, night, time, exposure, signature and the detector
values (unit, e⁻/ADU, read noise) with their sources, read through :mod:`.headers` with the
conventions of the program that wrote the file (:mod:`.presets`). Files it cannot use
become :class:`Skipped` with the reason; nothing here raises for a bad file.
"""

import fnmatch
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path


from ..errors import FrameError
from ..io import open_fits, pick_hdu
from . import headers as hdr
from .config import InstrumentConfig

__all__ = ["FITS_SUFFIXES", "RawFrame", "Skipped", "scan"]

FITS_SUFFIXES = tuple(base + packed for packed in ("", ".gz", ".fz")
                      for base in (".fits", ".fit", ".fts"))
_NO_VALUE = hdr.Sourced(None, "none: not scanned")


@dataclass(frozen=True)
class RawFrame:
    """One raw file as its header describes it (:func:`scan`).

    ``detector``: the signature keywords of a bias, which identify the detector and its
    readout (the frames whose gain and read noise are the same); ``gain`` (e⁻/ADU) and
    ``readnoise`` (e⁻): :class:`~gpucal.pipeline.headers.Sourced`, None where the header
    and configuration give none; ``unit``: of the raw pixels; ``preset``: the acquisition
    program recognised from the header (None: none); ``night_source``: how the night
    was told from the time.
    """

    path: str
    kind: str  # 'bias', 'dark', 'flat', 'science' or 'unknown'
    night: str
    mjd: float | None
    exptime: float | None
    shape: tuple  # (ny, nx)
    signature: tuple  # ((keyword, value), ...) in the configuration's order
    flags: tuple = ()  # 'NO_DATE', 'NO_EXPTIME'
    imagetyp: str | None = None  # the header's value (None: no such card)
    detector: tuple = ()
    gain: hdr.Sourced = _NO_VALUE
    readnoise: hdr.Sourced = _NO_VALUE
    unit: str = "adu"
    unit_source: str = "assumed: no BUNIT"
    preset: str | None = None
    night_source: str = ""
    kind_source: str = "IMAGETYP"  # or "path" for a file without an IMAGETYP card


@dataclass(frozen=True)
class Skipped:
    """A file :func:`scan` could not use, and why."""

    path: str
    reason: str


def _preset(header, config):
    from .presets import PRESETS, detect

    if config.preset == "none":
        return None
    if config.preset != "auto":
        return next(p for p in PRESETS if p.name == config.preset)
    return detect(header)


# Words of file and folder names that say a frame's kind, for files without IMAGETYP (SharpCap
# writes none): "Darks/", "flat_001", "Bias", "lights/". Dark flats are darks.
_PATH_WORDS = (("dark", ("darkflat", "flatdark")), ("bias", ("bias", "zero", "offset")),
               ("dark", ("dark",)), ("flat", ("flat",)),
               ("science", ("light", "sci", "object", "target")))


def _kind_from_path(relative):
    """The kind the nearest file or folder name says (the file's own name first), or None."""
    for part in reversed(Path(relative).parts):
        for word in re.findall(r"[a-z]+", part.lower()):
            kind = next((k for k, stems in _PATH_WORDS if word.startswith(stems)), None)
            if kind:
                return kind
    return None


def _describe(path, relative, headers, shape, config):
    preset = _preset(headers[-1], config)
    aliases, keywords = hdr.with_preset(config, preset)
    imagetyp = hdr.card(headers, keywords["imagetyp"])
    kind = next((k for k, names in aliases.items() if imagetyp is not None
                 and str(imagetyp).strip().lower() in names), "unknown")
    by_path = imagetyp is None and _kind_from_path(relative)
    kind = by_path or kind
    mjd = hdr.observation_mjd(headers, keywords)
    exptime = hdr.header_number(headers, keywords["exptime"])
    setting = tuple(k for k in keywords["gain_setting"] if hdr.card(headers, k) is not None)

    def signature_of(keys):  # a CMOS gain setting changes e-/ADU: part of every signature
        return tuple((k, hdr.card(headers, k)) for k in dict.fromkeys(keys + setting))

    unit, unit_source = hdr.frame_unit(headers)
    flags = ("NO_DATE",) * (mjd is None) + \
        ("NO_EXPTIME",) * (exptime is None and kind in ("dark", "science"))
    night, night_source = "unknown", "no date"
    if mjd is not None:
        offset, night_source = hdr.night_offset(config, headers, keywords)
        night = hdr.night_of(mjd, offset)
    return RawFrame(path, kind, night, mjd, exptime, shape,
                    signature_of(config.signature.get(kind, config.signature["science"])),
                    flags, None if imagetyp is None else str(imagetyp),
                    detector=signature_of(config.signature["bias"]),
                    gain=hdr.resolve_gain(headers, keywords, unit),
                    readnoise=hdr.resolve_readnoise(headers, keywords),
                    unit=unit, unit_source=unit_source,
                    preset=None if preset is None else preset.name, night_source=night_source,
                    kind_source="path" if by_path else "IMAGETYP")


def _read(path, relative, config):
    """A RawFrame, or Skipped: nothing here raises for a bad file."""
    # Warnings are recorded, not raised: astropy reports truncated data only as one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with open_fits(path, lazy_load_hdus=True) as hdul:
                # The HDU gpucal.io reads by default; its header completed by the primary's.
                try:
                    image = pick_hdu(hdul, None, path)
                except FrameError as exc:
                    return Skipped(path, str(exc))
                headers = (image.header,) if image is hdul[0] else (image.header, hdul[0].header)
                shape = tuple(image.shape)
                if len(shape) != 2:
                    return Skipped(path, f"the image is {len(shape)}-D (shape {shape}), not 2-D")
                frame = _describe(path, relative, headers, shape, config)
        except ValueError as exc:  # a header value gpucal cannot use (e.g. BUNIT)
            return Skipped(path, str(exc))
        except Exception as exc:  # whatever astropy raises for a damaged file
            return Skipped(path, f"not readable as FITS ({type(exc).__name__}: {exc})")
    truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
    if truncated:
        return Skipped(path, truncated[0])
    return frame


def scan(raw_dir, nights=None, config=None):
    """Find the FITS files under `raw_dir` and describe each from its header.

    Parameters
    ----------
    raw_dir : str or os.PathLike
        Searched recursively, folders of any depth and layout (by night, target, camera),
        for ``*.fits``, ``*.fit``, ``*.fts``, each also ``.gz`` or ``.fz`` (any case).
        A frame's kind comes from IMAGETYP (the configuration's and the program's
        spellings); a file with no IMAGETYP card (SharpCap writes none) takes the kind its
        own name or nearest folder says (bias/zero/offset, dark, flat, light/sci/object).
        A frame's night is told from its time (DATE-OBS, MJD-OBS), never from a folder's
        name: the evening's date of the noon-to-noon night at the site's longitude
        (``site_longitude``, else the header's SITELONG/LONG-OBS/OBSGEO-L), else of the
        UT noon-to-noon night ('unknown' without a time).
    nights : str, optional
        fnmatch glob on the night name (e.g. ``"2024-03-*"``).
    config : InstrumentConfig, optional
        Default :func:`~gpucal.pipeline.config.load_config()`.

    Returns
    -------
    frames : tuple of RawFrame
        In path order; paths are absolute.
    skipped : tuple of Skipped
        Unreadable, truncated or non-image files, with the reason.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If `raw_dir` does not exist or is a file.
    ValueError
        If it holds no FITS file.

    Examples
    --------
    >>> import os
    >>> import numpy as np
    >>> from astropy.io import fits
    >>> from gpucal.pipeline.scan import scan
    >>> os.makedirs("scan_example/M31")
    >>> for name, imagetyp in [("b1", "Bias Frame"), ("s1", "LIGHT")]:
    ...     header = fits.Header({"IMAGETYP": imagetyp, "DATE-OBS": "2024-03-01T22:10:00",
    ...                           "EXPTIME": 30.0, "FILTER": "R", "EGAIN": 1.3})
    ...     fits.writeto(f"scan_example/M31/{name}.fits", np.zeros((8, 10), np.float32), header)
    >>> frames, skipped = scan("scan_example")
    >>> [(f.kind, f.night, f.shape) for f in frames]
    [('bias', '2024-03-01', (8, 10)), ('science', '2024-03-01', (8, 10))]
    >>> dict(frames[1].signature)["FILTER"], frames[1].exptime, round(frames[1].mjd, 4)
    ('R', 30.0, 60370.9236)
    >>> frames[1].gain.text("e-/ADU"), frames[1].readnoise.source, frames[1].unit_source
    ('1.3 e-/ADU (header EGAIN)', 'none: no RDNOISE/READNOIS/RON/READNOISE card', 'assumed: no BUNIT')
    """
    config = config or InstrumentConfig()
    root = Path(os.path.abspath(raw_dir))  # 'raw/../raw' normalised; symlinks kept
    if not root.exists():
        raise FileNotFoundError(f"raw directory {os.fspath(raw_dir)!r} does not exist")
    if not root.is_dir():
        raise NotADirectoryError(f"raw directory {os.fspath(raw_dir)!r} is not a directory")
    paths = sorted(str(p) for p in root.rglob("*")
                   if p.name.lower().endswith(FITS_SUFFIXES) and p.is_file())
    if not paths:
        raise ValueError(f"no FITS files ({', '.join('*' + s for s in FITS_SUFFIXES)}) "
                         f"in {os.fspath(raw_dir)!r} or below")
    frames, skipped = [], []
    for path in paths:
        item = _read(path, Path(path).relative_to(root), config)
        if isinstance(item, Skipped):
            skipped.append(item)
        elif not nights or fnmatch.fnmatchcase(item.night, nights):
            frames.append(item)
    return tuple(frames), tuple(skipped)
