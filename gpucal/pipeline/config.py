"""The instrument configuration: defaults, a TOML file over them, and what the user set.

Every value the pipeline takes from a header has one documented order of sources
(:mod:`gpucal.pipeline.headers`): the configuration first, where the user set it; then
the header cards, read with the conventions of the acquisition program that wrote them
(:mod:`gpucal.pipeline.presets`), else gpucal's defaults; then a measurement from the
night's own frames (:mod:`gpucal.pipeline.detector`). ``InstrumentConfig.explicit`` says
which entries the user set, so that a preset never overrides them.
"""

import copy
import math
import os
import tomllib
from dataclasses import dataclass, field

__all__ = ["CALIBRATIONS", "KINDS", "InstrumentConfig", "load_config"]

KINDS = ("bias", "dark", "flat", "science")
CALIBRATIONS = ("bias", "dark", "flat")
_BASE = ("INSTRUME", "DETECTOR", "NAXIS1", "NAXIS2", "XBINNING", "YBINNING", "READMODE")
_DEFAULTS = {
    "aliases": {"bias": ("bias", "zero", "bias frame"), "dark": ("dark", "dark frame"),
                "flat": ("flat", "flatfield", "skyflat", "domeflat", "flat field", "flat frame"),
                "science": ("light", "object", "science", "light frame")},
    "signature": {"bias": _BASE, "dark": _BASE, "flat": _BASE + ("FILTER",),
                  "science": _BASE + ("FILTER",)},
    "maxtimespan_hours": {"bias": 12.0, "dark": 12.0, "flat": 12.0},
    "night_offset_hours": None,
    "site_longitude": None,
    "preset": "auto",
    "fallback_keywords": ("XBINNING", "YBINNING"),
    "allow_fallback": {"bias": True, "dark": True, "flat": False},
    # Cards tried in order. gain: e-/ADU (EGAIN first: GAIN is often a sensor setting);
    # readnoise: electrons; time: the time of day beside a date-only DATE-OBS; longitude:
    # the site's, for local noon-to-noon nights.
    "keywords": {"date": "DATE-OBS", "mjd": "MJD-OBS",
                 "time": ("TIME-OBS", "UT", "UTSTART", "UT-START", "TIME_OBS"),
                 "exptime": ("EXPTIME", "EXPOSURE"), "imagetyp": "IMAGETYP",
                 "gain": ("EGAIN", "GAIN"), "gain_setting": (),
                 "readnoise": ("RDNOISE", "READNOIS", "RON", "READNOISE"),
                 "longitude": ("SITELONG", "LONG-OBS", "OBSGEO-L"),
                 "biassec": "BIASSEC", "trimsec": "TRIMSEC"},
    "saturation": 65535.0,
    "compress": "none",
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
    starts at this UTC hour (None: local noon from ``site_longitude`` or the header's
    longitude card, else 12 UT); ``site_longitude``: degrees east; ``preset``: the
    acquisition program's conventions ("auto": recognised from each header, "none", or a
    name from :data:`gpucal.pipeline.presets.PRESETS`); ``fallback_keywords``: compared
    (with the shape) when no master has a frame's signature; ``allow_fallback``: kind ->
    whether such a master of another signature (a flat of another filter) may be applied;
    ``keywords``: date, mjd, imagetyp, biassec, trimsec (names) and time, exptime,
    gain_setting, longitude (names tried in order), gain (e-/ADU) and readnoise (e-): names
    tried in order, or a number, the value itself; ``saturation``: raw value at or above
    which a pixel is flagged SATURATED (None: no test); ``compress``: "none", "mask" or
    "mask+uncert", lossless tile compression of the products' extensions; ``combine`` (per kind),
    ``ccdmask``, ``hot_pixels``, ``cosmics``: parameters passed to those steps untouched;
    ``source``: the TOML file; ``explicit``: the entries it set ("keywords.gain", ...).
    """

    aliases: dict = _default("aliases")
    signature: dict = _default("signature")
    maxtimespan_hours: dict = _default("maxtimespan_hours")
    night_offset_hours: float | None = None
    site_longitude: float | None = None
    preset: str = "auto"
    saturation: float | None = 65535.0
    compress: str = "none"
    fallback_keywords: tuple = _default("fallback_keywords")
    allow_fallback: dict = _default("allow_fallback")
    keywords: dict = _default("keywords")
    combine: dict = _default("combine")
    ccdmask: dict = _default("ccdmask")
    hot_pixels: dict = _default("hot_pixels")
    cosmics: dict = _default("cosmics")
    source: str | None = None
    explicit: frozenset = frozenset()


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


_TRIED_IN_ORDER = ("time", "exptime", "gain", "gain_setting", "readnoise", "longitude")


def _keyword(path, key, value):
    name = key.split(".")[-1]
    if name in ("gain", "readnoise") and isinstance(value, (int, float)) \
            and not isinstance(value, bool):
        value = _number(path, key, value, minimum=0)
        if name == "gain" and value == 0:
            _fail(path, key, "must be positive (electrons per ADU)")
        return value  # the value itself, not a card's name
    names = tuple(v.upper() for v in _names(path, key, value))
    if name in _TRIED_IN_ORDER:
        return names
    if not isinstance(value, str):
        _fail(path, key, f"must be a string, not {value!r}")
    return names[0]


def _flag(path, key, value):
    if not isinstance(value, bool):
        _fail(path, key, "must be true or false")
    return value


# Tables of fixed keys: (allowed keys, converter of one entry).
_SECTIONS = {
    "aliases": (KINDS, lambda p, k, v: tuple(a.lower() for a in _names(p, k, v))),
    "signature": (KINDS, lambda p, k, v: tuple(s.upper() for s in _names(p, k, v))),
    "maxtimespan_hours": (CALIBRATIONS, lambda p, k, v: _number(p, k, v, minimum=0)),
    "allow_fallback": (CALIBRATIONS, _flag),
    "keywords": (tuple(_DEFAULTS["keywords"]), _keyword),
    "combine": (CALIBRATIONS, _table),
}
# Values the pipeline resolves itself (with their source) and must not be given twice.
_RESOLVED = {"gain": "[keywords] gain", "readnoise": "[keywords] readnoise"}


def load_config(path=None):
    """The instrument configuration: a TOML file merged over the defaults.

    Parameters
    ----------
    path : str or os.PathLike, optional
        TOML with any of: ``night_offset_hours``, ``site_longitude`` (degrees east),
        ``preset`` ("auto", "none" or a preset's name), ``saturation`` (a number, or
        false), ``compress`` ("none", "mask", "mask+uncert"), ``fallback_keywords``, and tables ``[aliases]``, ``[signature]`` (kind =
        list of names), ``[maxtimespan_hours]``, ``[allow_fallback]`` (kind = true/false),
        ``[keywords]`` (``gain`` and ``readnoise`` may be numbers: the values themselves),
        ``[combine.bias|dark|flat]``, ``[ccdmask]``, ``[hot_pixels]``, ``[cosmics]``. An
        entry replaces its default; the step tables are merged. None gives the defaults.

    Returns
    -------
    InstrumentConfig

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        Invalid TOML, an unknown key, a value of the wrong type, an IMAGETYP alias given
        for two kinds, an unknown preset, or gain/read noise in ``[cosmics]`` (they belong
        in ``[keywords]``); the message names the key and the file.

    Examples
    --------
    >>> from pathlib import Path
    >>> from gpucal.pipeline.config import load_config
    >>> _ = Path("instrument.toml").write_text('''
    ... site_longitude = -105.5
    ... [aliases]
    ... science = ["light", "object", "target"]
    ... [signature]
    ... flat = ["INSTRUME", "NAXIS1", "NAXIS2", "FILTER"]
    ... [maxtimespan_hours]
    ... flat = 6
    ... [keywords]
    ... readnoise = 9.0
    ... [combine.flat]
    ... method = "median"
    ... [cosmics]
    ... sigclip = 5.0
    ... ''')
    >>> config = load_config("instrument.toml")
    >>> config.signature["flat"], config.maxtimespan_hours["flat"], config.site_longitude
    (('INSTRUME', 'NAXIS1', 'NAXIS2', 'FILTER'), 6.0, -105.5)
    >>> config.keywords["readnoise"], sorted(config.explicit)[-1]
    (9.0, 'site_longitude')
    >>> config.cosmics, config.combine["flat"]
    ({'enabled': True, 'sigclip': 5.0}, {'method': 'median'})
    """
    if path is None:
        return InstrumentConfig()
    from .presets import PRESETS

    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: not valid TOML: {exc}") from None
    values, explicit = copy.deepcopy(_DEFAULTS), set()
    for key, value in data.items():
        if key in _SECTIONS:
            allowed, convert = _SECTIONS[key]
            for sub, entry in _table(path, key, value, allowed).items():
                values[key][sub] = convert(path, f"{key}.{sub}", entry)
                explicit.add(f"{key}.{sub}")
            continue
        explicit.add(key)
        if key in ("ccdmask", "hot_pixels", "cosmics"):
            values[key].update(_table(path, key, value))
        elif key == "night_offset_hours":
            values[key] = _number(path, key, value)
        elif key == "site_longitude":
            values[key] = _number(path, key, value, minimum=-360)
            if values[key] > 360:
                _fail(path, key, "must be degrees east, from -360 to 360")
        elif key == "preset":
            names = ("auto", "none") + tuple(p.name for p in PRESETS)
            if value not in names:
                _fail(path, key, f"must be one of {', '.join(map(repr, names))}, not {value!r}")
            values[key] = value
        elif key == "compress":
            from ..io import COMPRESS

            if value not in COMPRESS:
                _fail(path, key, f"must be one of {', '.join(map(repr, COMPRESS))}, "
                                 f"not {value!r}")
            values[key] = value
        elif key == "saturation":
            values[key] = None if value is False else _number(path, key, value, minimum=0)
        elif key == "fallback_keywords":
            values[key] = tuple(v.upper() for v in _names(path, key, value))
        else:
            _fail(path, key, f"is not a known key (known: {', '.join(_DEFAULTS)})")
    if not isinstance(values["cosmics"]["enabled"], bool):
        _fail(path, "cosmics.enabled", "must be true or false")
    for name, where in _RESOLVED.items():
        if name in values["cosmics"]:
            _fail(path, f"cosmics.{name}", f"is not a cosmic-ray parameter: gpucal takes it "
                                           f"from the header or measures it; set {where} "
                                           f"(a number, or the card's name) to override")
    seen = {}
    for kind, aliases in values["aliases"].items():
        for alias in aliases:
            if seen.setdefault(alias, kind) != kind:
                _fail(path, "aliases", f"gives {alias!r} for both {seen[alias]} and {kind}")
    return InstrumentConfig(**values, source=path, explicit=frozenset(explicit))
