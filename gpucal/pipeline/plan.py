"""Whole-night planning: scan FITS headers, classify, group, choose calibrations.

The layer ``gpucal reduce`` runs first, and ``--dry-run`` stops after. It is pure
and header-only: :func:`scan` reads the header of each file's first image HDU
(never pixels, never a write), :func:`make_plan` turns frames into tasks. The
tasks are frozen dataclasses of inputs and parameters that an executor (serial,
or Dask) runs in order: ``plan.masters`` (bias, then dark, then flat masters, so
each master's calibrations come before it), ``plan.masks``, ``plan.science``.

The behaviour follows filabres (nicocardiel/filabres): calibrations are grouped
per night by an instrument's *signature* keywords and split into time blocks
anchored at their first frame; each frame is calibrated with the master of its
signature closest in time, signed ``delta_mjd = mjd(calibration) - mjd(frame)``
in days, and ``IERR`` = 0 (found), 1 (no master of that signature: the closest of
the same shape and binning instead) or 2 (none at all).
"""

import copy
import fnmatch
import math
import os
import re
import tomllib
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from astropy.io import fits
from astropy.time import Time

from ..errors import FrameError
from ..io import pick_hdu

__all__ = ["Choice", "InstrumentConfig", "MaskTask", "MasterTask", "Plan", "RawFrame",
           "ScienceTask", "Skipped", "load_config", "make_plan", "scan"]

KINDS = ("bias", "dark", "flat", "science")
CALIBRATIONS = ("bias", "dark", "flat")
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")
_MJD0 = datetime(1858, 11, 17)
_BASE = ("INSTRUME", "DETECTOR", "NAXIS1", "NAXIS2", "XBINNING", "YBINNING", "READMODE")
_DEFAULTS = {
    "aliases": {"bias": ("bias", "zero", "bias frame"), "dark": ("dark", "dark frame"),
                "flat": ("flat", "flatfield", "skyflat", "domeflat", "flat field", "flat frame"),
                "science": ("light", "object", "science", "light frame")},
    "signature": {"bias": _BASE, "dark": _BASE, "flat": _BASE + ("FILTER",),
                  "science": _BASE + ("FILTER",)},
    "maxtimespan_hours": {"bias": 12.0, "dark": 12.0, "flat": 12.0},
    "night_offset_hours": 12.0,
    "fallback_keywords": ("XBINNING", "YBINNING"),
    "keywords": {"date": "DATE-OBS", "mjd": "MJD-OBS", "exptime": ("EXPTIME", "EXPOSURE"),
                 "imagetyp": "IMAGETYP", "gain": ("GAIN", "EGAIN"),
                 "readnoise": ("RDNOISE", "READNOIS", "RON"), "biassec": "BIASSEC",
                 "trimsec": "TRIMSEC"},
    "saturation": 65535.0,
    "combine": {"bias": {}, "dark": {}, "flat": {}},
    "ccdmask": {}, "hot_pixels": {}, "cosmics": {"enabled": True},
}


def _default(name):
    return field(default_factory=lambda: copy.deepcopy(_DEFAULTS[name]))


@dataclass(frozen=True)
class InstrumentConfig:
    """How to read an instrument's headers and group its frames (see :func:`load_config`).

    ``aliases``: kind -> lower-case IMAGETYP values; ``signature``: kind -> header
    keywords that must be equal for frames to share calibrations; ``maxtimespan_hours``:
    bias/dark/flat -> span of a master's time block; ``night_offset_hours``: a night
    starts at this UTC hour; ``fallback_keywords``: compared (with the shape) when no
    master has a frame's signature; ``keywords``: date, mjd, imagetyp, biassec (overscan
    section), trimsec (names) and exptime, gain (e/ADU), readnoise (e) (names tried in
    order); ``saturation``: raw value at or above which a pixel is flagged SATURATED
    (None: no test); ``combine`` (per kind), ``ccdmask``, ``hot_pixels``,
    ``cosmics``: parameters passed to those steps untouched; ``source``: the TOML file.
    """

    aliases: dict = _default("aliases")
    signature: dict = _default("signature")
    maxtimespan_hours: dict = _default("maxtimespan_hours")
    night_offset_hours: float = 12.0
    saturation: float | None = 65535.0
    fallback_keywords: tuple = _default("fallback_keywords")
    keywords: dict = _default("keywords")
    combine: dict = _default("combine")
    ccdmask: dict = _default("ccdmask")
    hot_pixels: dict = _default("hot_pixels")
    cosmics: dict = _default("cosmics")
    source: str | None = None


def _fail(path, key, problem):
    raise ValueError(f"{path}: {key!r} {problem}")


def _table(path, key, value, allowed=None):
    if not isinstance(value, dict):
        _fail(path, key, f"must be a table, not {type(value).__name__}")
    for sub in value if allowed is not None else ():
        if sub not in allowed:
            _fail(path, f"{key}.{sub}", f"is not a known key (known: {', '.join(allowed)})")
    return value


def _names(path, key, value):
    value = [value] if isinstance(value, str) else value
    if not (isinstance(value, list) and value and
            all(isinstance(v, str) and v.strip() for v in value)):
        _fail(path, key, f"must be a string or a list of strings, not {value!r}")
    return tuple(v.strip() for v in value)


def _number(path, key, value, minimum=-math.inf):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        _fail(path, key, f"must be a number, not {value!r}")
    if value < minimum:
        _fail(path, key, f"must be at least {minimum:g}")
    return float(value)


_TRIED_IN_ORDER = ("exptime", "gain", "readnoise")


def _keyword(path, key, value):
    names = tuple(v.upper() for v in _names(path, key, value))
    if key.split(".")[-1] in _TRIED_IN_ORDER:
        return names
    if not isinstance(value, str):
        _fail(path, key, f"must be a string, not {value!r}")
    return names[0]


# Tables of fixed keys: (allowed keys, converter of one entry).
_SECTIONS = {
    "aliases": (KINDS, lambda p, k, v: tuple(a.lower() for a in _names(p, k, v))),
    "signature": (KINDS, lambda p, k, v: tuple(s.upper() for s in _names(p, k, v))),
    "maxtimespan_hours": (CALIBRATIONS, lambda p, k, v: _number(p, k, v, minimum=0)),
    "keywords": (tuple(_DEFAULTS["keywords"]), _keyword),
    "combine": (CALIBRATIONS, _table),
}


def load_config(path=None):
    """The instrument configuration: a TOML file merged over the defaults.

    Parameters
    ----------
    path : str or os.PathLike, optional
        TOML with any of: ``night_offset_hours``, ``saturation`` (a number, or false),
        ``fallback_keywords``, and tables
        ``[aliases]``, ``[signature]`` (kind = list of names), ``[maxtimespan_hours]``,
        ``[keywords]``, ``[combine.bias|dark|flat]``, ``[ccdmask]``, ``[hot_pixels]``,
        ``[cosmics]``. An entry replaces its default; the step tables are merged.
        None gives the defaults.

    Returns
    -------
    InstrumentConfig

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        Invalid TOML, an unknown key, a value of the wrong type, or an IMAGETYP
        alias given for two kinds; the message names the key and the file.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gpucal.pipeline.plan import load_config
    >>> _ = Path("instrument.toml").write_text('''
    ... night_offset_hours = 10
    ... [aliases]
    ... science = ["light", "object", "target"]
    ... [signature]
    ... flat = ["INSTRUME", "NAXIS1", "NAXIS2", "FILTER"]
    ... [maxtimespan_hours]
    ... flat = 6
    ... [combine.flat]
    ... method = "median"
    ... [cosmics]
    ... sigclip = 5.0
    ... ''')
    >>> config = load_config("instrument.toml")
    >>> config.signature["flat"], config.maxtimespan_hours["flat"], config.night_offset_hours
    (('INSTRUME', 'NAXIS1', 'NAXIS2', 'FILTER'), 6.0, 10.0)
    >>> config.cosmics, config.combine["flat"]
    ({'enabled': True, 'sigclip': 5.0}, {'method': 'median'})
    """
    if path is None:
        return InstrumentConfig()
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    values = copy.deepcopy(_DEFAULTS)
    for key, value in data.items():
        if key in _SECTIONS:
            allowed, convert = _SECTIONS[key]
            for sub, entry in _table(path, key, value, allowed).items():
                values[key][sub] = convert(path, f"{key}.{sub}", entry)
        elif key in ("ccdmask", "hot_pixels", "cosmics"):
            values[key].update(_table(path, key, value))
        elif key == "night_offset_hours":
            values[key] = _number(path, key, value)
        elif key == "saturation":
            values[key] = None if value is False else _number(path, key, value, minimum=0)
        elif key == "fallback_keywords":
            values[key] = tuple(v.upper() for v in _names(path, key, value))
        else:
            _fail(path, key, f"is not a known key (known: {', '.join(_DEFAULTS)})")
    if not isinstance(values["cosmics"]["enabled"], bool):
        _fail(path, "cosmics.enabled", "must be true or false")
    seen = {}
    for kind, aliases in values["aliases"].items():
        for alias in aliases:
            if seen.setdefault(alias, kind) != kind:
                _fail(path, "aliases", f"gives {alias!r} for both {seen[alias]} and {kind}")
    return InstrumentConfig(**values, source=path)


@dataclass(frozen=True)
class RawFrame:
    """One raw file as its header describes it (:func:`scan`)."""

    path: str
    kind: str  # 'bias', 'dark', 'flat', 'science' or 'unknown'
    night: str
    mjd: float | None
    exptime: float | None
    shape: tuple  # (ny, nx)
    signature: tuple  # ((keyword, value), ...) in the configuration's order
    flags: tuple = ()  # 'NO_DATE', 'NO_EXPTIME'
    imagetyp: str | None = None  # the header's value (None: no such card)


@dataclass(frozen=True)
class Skipped:
    """A file :func:`scan` could not use, and why."""

    path: str
    reason: str


def _value(headers, key):
    for header in headers:
        if key in header:
            value = header[key]
            if isinstance(value, fits.card.Undefined):
                return None
            return value.strip() if isinstance(value, str) else value
    return None


def _real(value):
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def header_number(headers, names, minimum=0.0):
    """The first of the keywords `names` holding a finite number ≥ `minimum`, or None.

    `headers` are searched in order for each name (an extension's header, then the primary's).

    Examples
    --------
    >>> from astropy.io import fits
    >>> header_number([fits.Header({"EXPOSURE": 30})], ("EXPTIME", "EXPOSURE"))
    30.0
    """
    return next((v for v in (_real(_value(headers, k)) for k in names)
                 if v is not None and v >= minimum), None)


def _mjd(headers, config):
    mjd = _real(_value(headers, config.keywords["mjd"]))
    if mjd is not None and mjd > 0:  # filabres: a non-positive MJD-OBS is a header error
        return mjd
    date = _value(headers, config.keywords["date"])
    try:
        return float(Time(date, scale="utc").mjd) if isinstance(date, str) else None
    except (ValueError, TypeError):
        return None


def _night(mjd, offset_hours):
    try:
        return (_MJD0 + timedelta(days=mjd - offset_hours / 24)).strftime("%Y-%m-%d")
    except OverflowError:
        return "unknown"


def _read(path, subdir, config):
    """A RawFrame, or Skipped: nothing here raises for a bad file."""
    # Warnings are recorded, not raised: astropy reports truncated data only as one.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with fits.open(path, lazy_load_hdus=True) as hdul:
                # The HDU gpucal.io reads by default; its header completed by the primary's.
                try:
                    image = pick_hdu(hdul, None, path)
                except FrameError as exc:
                    return Skipped(path, str(exc))
                headers = (image.header,) if image is hdul[0] else (image.header, hdul[0].header)
                shape = tuple(image.shape)
                if len(shape) != 2:
                    return Skipped(path, f"the image is {len(shape)}-D (shape {shape}), not 2-D")
                imagetyp = _value(headers, config.keywords["imagetyp"])
                kind = next((k for k, names in config.aliases.items() if imagetyp is not None
                             and str(imagetyp).strip().lower() in names), "unknown")
                mjd = _mjd(headers, config)
                exptime = header_number(headers, config.keywords["exptime"])
                keys = config.signature.get(kind, config.signature["science"])
                signature = tuple((k, _value(headers, k)) for k in keys)
        except Exception as exc:  # whatever astropy raises for a damaged file
            return Skipped(path, f"not readable as FITS ({type(exc).__name__}: {exc})")
    truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
    if truncated:
        return Skipped(path, truncated[0])
    flags = ("NO_DATE",) * (mjd is None) + \
        ("NO_EXPTIME",) * (exptime is None and kind in ("dark", "science"))
    night = subdir or (_night(mjd, config.night_offset_hours) if mjd is not None else "unknown")
    return RawFrame(path, kind, night, mjd, exptime, shape, signature, flags,
                    None if imagetyp is None else str(imagetyp))


def scan(raw_dir, nights=None, config=None):
    """Find the FITS files under `raw_dir` and describe each from its header.

    Parameters
    ----------
    raw_dir : str or os.PathLike
        Searched recursively for ``*.fits``, ``*.fit``, ``*.fts``, ``*.fits.gz`` (any
        case). A file in a subdirectory belongs to the night named after its
        first-level subdirectory; a file directly in `raw_dir` to the UTC date of its
        time minus ``night_offset_hours`` ('unknown' without a time).
    nights : str, optional
        fnmatch glob on the night name (e.g. ``"2024-03-*"``).
    config : InstrumentConfig, optional
        Default :func:`load_config()`.

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
    >>> from gpucal.pipeline.plan import scan
    >>> os.makedirs("scan_example/2024-03-01")
    >>> for name, imagetyp in [("b1", "Bias Frame"), ("s1", "LIGHT")]:
    ...     header = fits.Header({"IMAGETYP": imagetyp, "DATE-OBS": "2024-03-01T22:10:00",
    ...                           "EXPTIME": 30.0, "FILTER": "R"})
    ...     fits.writeto(f"scan_example/2024-03-01/{name}.fits",
    ...                  np.zeros((8, 10), np.float32), header)
    >>> frames, skipped = scan("scan_example")
    >>> [(f.kind, f.night, f.shape) for f in frames]
    [('bias', '2024-03-01', (8, 10)), ('science', '2024-03-01', (8, 10))]
    >>> dict(frames[1].signature)["FILTER"], frames[1].exptime, round(frames[1].mjd, 4)
    ('R', 30.0, 60370.9236)
    """
    config = config or InstrumentConfig()
    root = Path(raw_dir).absolute()
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
        parts = Path(path).relative_to(root).parts
        subdir = parts[0] if len(parts) > 1 else None
        if nights and subdir and not fnmatch.fnmatchcase(subdir, nights):
            continue  # not even opened
        item = _read(path, subdir, config)
        if isinstance(item, Skipped):
            skipped.append(item)
        elif not nights or fnmatch.fnmatchcase(item.night, nights):
            frames.append(item)
    return tuple(frames), tuple(skipped)


@dataclass(frozen=True)
class Choice:
    """The master chosen to calibrate a frame or a master (``output`` of a MasterTask).

    ``delta_mjd``: mjd(master) - mjd(target) in days (None where either is unknown);
    ``ierr``: 0 same signature, 1 fallback (same shape and binning); ``scale``: a dark
    whose exposure is not the target's (or the target's is unknown or varies), to be
    scaled by exposure time.
    """

    output: str
    delta_mjd: float | None
    ierr: int
    scale: bool = False


@dataclass(frozen=True)
class MasterTask:
    """Combine ``inputs`` into the master ``output``, each input first calibrated with
    ``calibrations`` ({'bias': Choice|None} for darks, + 'dark' for flats, {} for bias).

    ``exptime`` is the inputs' common exposure (None if they differ or lack one); ``mjd``
    their mean; ``flags`` IERR_<KIND> / DELTA_MJD_<KIND> of the calibrations; ``parameters``
    the configuration's ``combine.<kind>`` table.
    """

    kind: str
    night: str
    signature: tuple
    exptime: float | None
    inputs: tuple
    mjd: float | None
    shape: tuple
    output: str
    calibrations: dict
    flags: dict
    parameters: dict


@dataclass(frozen=True)
class MaskTask:
    """Make the mask ``output`` from the master ``master``: kind 'ccdmask' (bad pixels
    of a flat) or 'hot_pixels' (of a dark), with the configuration's table of that name."""

    kind: str
    night: str
    master: str
    output: str
    parameters: dict


@dataclass(frozen=True)
class ScienceTask:
    """Calibrate the raw frame ``path`` into ``output`` with ``bias``, ``dark``, ``flat``
    (each a Choice or None) and the masks ``masks`` ((output, kind) of the MaskTasks of
    the chosen dark and flat).

    ``flags``: IERR_BIAS/DARK/FLAT (0, 1, 2) and DELTA_MJD_BIAS/DARK/FLAT; ``frame_flags``:
    the RawFrame's flags; ``parameters``: {'cosmics': the configuration's table}.
    """

    path: str
    night: str
    signature: tuple
    mjd: float | None
    exptime: float | None
    output: str
    bias: Choice | None
    dark: Choice | None
    flat: Choice | None
    masks: tuple
    flags: dict
    frame_flags: tuple
    parameters: dict


def calibration_missing(flags):
    """Whether a task's IERR flags say a calibration was missing or of another signature."""
    return any(flags.get(f"IERR_{kind.upper()}") for kind in CALIBRATIONS)


def _slug(values):
    parts = (re.sub(r"[^A-Za-z0-9.+-]+", "-", str(v)).strip("-.") for v in values if v is not None)
    return "_".join(p for p in parts if p)[:80] or "nosig"


def _blocks(frames, span_days):
    """Time blocks: the earliest unassigned frame anchors one; frames < span after it join."""
    dated = sorted((f for f in frames if f.mjd is not None), key=lambda f: (f.mjd, f.path))
    blocks, start = [], 0
    while start < len(dated):
        end = start + 1
        while end < len(dated) and dated[end].mjd - dated[start].mjd < span_days:
            end += 1
        blocks.append(dated[start:end])
        start = end
    undated = [f for f in frames if f.mjd is None]
    return blocks + [undated] * bool(undated)


def _matches(a, b, keys=None):
    """Equal values for the keywords both signatures have (restricted to `keys`)."""
    a, b = dict(a), dict(b)
    return all(a[k] == b[k] for k in a if k in b and (keys is None or k in keys))


def _delta(mjd, target_mjd):
    return None if mjd is None or target_mjd is None else mjd - target_mjd


def _choose(kind, target, masters, config):
    """(Choice or None, ierr) for calibrating `target` (a RawFrame or MasterTask)."""
    pool = [m for m in masters if m.kind == kind]
    found = [m for m in pool if _matches(m.signature, target.signature)]
    ierr = 0 if found else 1
    if not found:
        found = [m for m in pool if m.shape == target.shape and
                 _matches(m.signature, target.signature, config.fallback_keywords)]
    if not found:
        return None, 2
    scale = False
    if kind == "dark":  # equal exposure first; otherwise a dark scaled by exposure time
        equal = [m for m in found if target.exptime is not None and m.exptime == target.exptime]
        found, scale = equal or found, not equal

    def distance(m):  # closest in time; without times, the same night first
        d = _delta(m.mjd, target.mjd)
        return (d is None, 0.0 if d is None else abs(d), m.night != target.night, m.output)

    best = min(found, key=distance)
    return Choice(best.output, _delta(best.mjd, target.mjd), ierr, scale), ierr


def _choices(kinds, target, masters, config):
    chosen, flags = {}, {}
    for kind in kinds:
        choice, ierr = _choose(kind, target, masters, config)
        chosen[kind] = choice
        flags[f"IERR_{kind.upper()}"] = ierr
        flags[f"DELTA_MJD_{kind.upper()}"] = None if choice is None else choice.delta_mjd
    return chosen, flags


def _unique(name, taken):
    stem, n = name, 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name


def _stem(path):
    name = os.path.basename(path)
    suffix = next(s for s in FITS_SUFFIXES[::-1] if name.lower().endswith(s))
    return name[:-len(suffix)]


def _masters(frames, config, taken):
    """MasterTasks: bias, then dark, then flat, so a master's calibrations exist before it."""
    masters, numbers = [], Counter()
    for kind in CALIBRATIONS:
        groups = defaultdict(list)
        for f in (f for f in frames if f.kind == kind):
            groups[f.night, f.signature, f.shape, f.exptime if kind == "dark" else None].append(f)
        for key in sorted(groups, key=lambda g: (g[0], repr(g[1:3]), g[3] is None, g[3] or 0)):
            night, signature, shape, exptime = key
            values = [v for _, v in signature] + ([] if exptime is None else [f"{exptime:g}s"])
            prefix = f"{night}/masters/{kind}_{_slug(values)}"
            for block in _blocks(groups[key], config.maxtimespan_hours[kind] / 24):
                numbers[prefix] += 1
                mjds = [f.mjd for f in block if f.mjd is not None]
                exptimes = {f.exptime for f in block}
                task = MasterTask(kind, night, signature,
                                  exptimes.pop() if len(exptimes) == 1 else None,
                                  tuple(f.path for f in block),
                                  sum(mjds) / len(mjds) if mjds else None, shape,
                                  _unique(f"{prefix}_{numbers[prefix]}", taken) + ".fits",
                                  {}, {}, copy.deepcopy(config.combine[kind]))
                needs = CALIBRATIONS[:CALIBRATIONS.index(kind)]
                calibrations, flags = _choices(needs, task, masters, config)
                masters.append(replace(task, calibrations=calibrations, flags=flags))
    return masters


def make_plan(frames, config=None, skipped=()):
    """Plan a reduction: masters per (night, signature) time block, masks, science tasks.

    Pure and deterministic: the same frames in any order give the same plan.

    Parameters
    ----------
    frames : iterable of RawFrame
        From :func:`scan`.
    config : InstrumentConfig, optional
        Default :func:`load_config()`.
    skipped : iterable of Skipped, optional
        Carried into the plan, for the record.

    Returns
    -------
    Plan

    Notes
    -----
    Bias, darks (per EXPTIME) and flats are grouped by (night, signature, shape); a
    group's frames, by MJD then path, form time blocks: the first unassigned frame
    anchors one, and the frames less than ``maxtimespan_hours`` after it join (frames
    without a time form one block). One master per block.
    A calibration is the master of the target's signature (its keywords that the
    master's kind also has) closest in MJD, on any night; darks of the target's EXPTIME
    first, else the closest, scaled. Without a master of that signature: the closest of
    the same shape and ``fallback_keywords`` (IERR 1); without that: None (IERR 2).

    Examples
    --------
    >>> from gpucal.pipeline.plan import RawFrame, make_plan
    >>> sig = (("INSTRUME", "CAM"), ("NAXIS1", 10), ("NAXIS2", 8))
    >>> frames = [RawFrame(f"/raw/b{i}.fits", "bias", "2024-03-01", 60370.8 + i / 100, 0.0,
    ...                    (8, 10), sig) for i in range(3)]
    >>> frames.append(RawFrame("/raw/s1.fits", "science", "2024-03-01", 60370.9, 30.0,
    ...                        (8, 10), sig + (("FILTER", "R"),)))
    >>> plan = make_plan(frames)
    >>> [(m.output, len(m.inputs)) for m in plan.masters]
    [('2024-03-01/masters/bias_CAM_10_8_1.fits', 3)]
    >>> task = plan.science[0]
    >>> task.output, task.bias.output, round(task.bias.delta_mjd, 2), task.flags["IERR_FLAT"]
    ('2024-03-01/science/s1.fits', '2024-03-01/masters/bias_CAM_10_8_1.fits', -0.09, 2)
    """
    config = config or InstrumentConfig()
    frames = sorted(frames, key=lambda f: f.path)
    taken = set()
    masters = _masters(frames, config, taken)
    masks = []
    for m in masters:
        step = {"flat": "ccdmask", "dark": "hot_pixels"}.get(m.kind)
        if step:
            stem = m.output.rsplit("/", 1)[1][:-len(".fits")]
            masks.append(MaskTask(step, m.night, m.output, f"{m.night}/masks/{stem}_{step}.fits",
                                  copy.deepcopy(getattr(config, step))))
    mask_of = {t.master: t.output for t in masks}
    science = []
    for f in (f for f in frames if f.kind == "science"):
        chosen, flags = _choices(CALIBRATIONS, f, masters, config)
        output = _unique(f"{f.night}/science/{_stem(f.path)}", taken) + ".fits"
        science.append(ScienceTask(
            f.path, f.night, f.signature, f.mjd, f.exptime, output, chosen["bias"],
            chosen["dark"], chosen["flat"],
            tuple((mask_of[c.output], step) for c, step in
                  ((chosen["dark"], "hot_pixels"), (chosen["flat"], "ccdmask")) if c), flags,
            f.flags, {"cosmics": copy.deepcopy(config.cosmics)}))
    unclassified = tuple(f for f in frames if f.kind == "unknown" or "NO_DATE" in f.flags)
    return Plan(tuple(masters), tuple(masks), tuple(science), tuple(skipped), unclassified,
                config)


def _choice_text(kind, choice):
    if choice is None:
        return f"{kind}: none (IERR=2)"
    delta = "unknown" if choice.delta_mjd is None else f"{choice.delta_mjd:+.4f} d"
    return (f"{kind}: {choice.output} (delta_mjd {delta}, IERR={choice.ierr}"
            f"{', scaled by exposure' if choice.scale else ''})")


@dataclass(frozen=True)
class Plan:
    """What :func:`make_plan` returns; the executor runs ``masters``, ``masks``, ``science``
    in that order. ``unclassified``: frames of unknown kind or without a date."""

    masters: tuple
    masks: tuple
    science: tuple
    skipped: tuple
    unclassified: tuple
    config: InstrumentConfig

    def describe(self):
        """The plan as text (what ``gpucal reduce --dry-run`` prints).

        Per night: the calibration groups with their masters (input counts), then each
        science frame with the calibrations chosen, delta_mjd and IERR; then the
        unclassified and skipped files and a count summary.

        Examples
        --------
        >>> from gpucal.pipeline.plan import RawFrame, make_plan
        >>> frame = RawFrame("/raw/s1.fits", "science", "2024-03-01", 60370.9, 30.0, (8, 10),
        ...                  (("FILTER", "R"),))
        >>> print(make_plan([frame]).describe())
        night 2024-03-01
          science s1.fits -> 2024-03-01/science/s1.fits
            bias: none (IERR=2)
            dark: none (IERR=2)
            flat: none (IERR=2)
        masters: 0 (0 bias, 0 dark, 0 flat); masks: 0
        science: 1 (1 with IERR > 0); unclassified: 0; skipped: 0
        """
        lines = []
        nights = sorted({t.night for t in self.masters + self.science})
        for night in nights:
            lines.append(f"night {night}")
            groups = defaultdict(list)
            for m in (m for m in self.masters if m.night == night):
                groups[m.kind, m.signature, m.exptime if m.kind == "dark" else None].append(m)
            for (kind, signature, exptime), members in groups.items():
                keys = " ".join(f"{k}={v}" for k, v in signature)
                exposure = f" EXPTIME={exptime:g}" if exptime is not None else ""
                count = sum(len(m.inputs) for m in members)
                lines.append(f"  {kind} group {keys}{exposure}: {count} frames, "
                             f"{len(members)} master(s)")
                for m in members:
                    mjd = "unknown" if m.mjd is None else f"{m.mjd:.5f}"
                    lines.append(f"    {m.output} <- {len(m.inputs)} inputs, MJD {mjd}")
                    lines.extend(f"      {_choice_text(k, c)}" for k, c in m.calibrations.items())
            for t in (t for t in self.science if t.night == night):
                notes = f" [{', '.join(t.frame_flags)}]" if t.frame_flags else ""
                lines.append(f"  science {os.path.basename(t.path)} -> {t.output}{notes}")
                lines.extend(f"    {_choice_text(k, getattr(t, k))}" for k in CALIBRATIONS)
        for f in self.unclassified:
            lines.append(f"unclassified {f.path}: kind {f.kind}, IMAGETYP={f.imagetyp!r}, "
                         f"night {f.night}{', ' + ', '.join(f.flags) if f.flags else ''}")
        lines.extend(f"skipped {s.path}: {s.reason}" for s in self.skipped)
        kinds = Counter(m.kind for m in self.masters)
        failing = sum(calibration_missing(t.flags) for t in self.science)
        lines.append(f"masters: {len(self.masters)} ("
                     + ", ".join(f"{kinds[k]} {k}" for k in CALIBRATIONS)
                     + f"); masks: {len(self.masks)}")
        lines.append(f"science: {len(self.science)} ({failing} with IERR > 0); "
                     f"unclassified: {len(self.unclassified)}; skipped: {len(self.skipped)}")
        return "\n".join(lines)
