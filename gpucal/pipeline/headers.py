"""Values the pipeline takes from FITS headers: the one place each is decided, and said.

Each resolver returns a :class:`Sourced` value: the number (or None) and where it came from,
for the product's header, the database and ``gpucal reduce --dry-run``. The documented order
for every value is the configuration (where the user set it), then the header's cards in the
order of the acquisition program's conventions (:mod:`.presets`) or gpucal's defaults; the
night pipeline then measures what is still missing (:mod:`.detector`). Nothing is guessed:
a card that cannot be what it claims (a GAIN of 139 beside no EGAIN is a sensor *setting*,
not e⁻/ADU) is passed over, and the reason is kept in the source text.
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from astropy.io import fits
from astropy.time import Time

from ..io import parse_unit

__all__ = ["Sourced", "card", "frame_unit", "header_number", "night_of", "night_offset",
           "observation_mjd", "resolve_gain", "resolve_readnoise", "site_longitude",
           "with_preset"]

_MJD0 = datetime(1858, 11, 17)
#: A GAIN card holding an integer above this (and no EGAIN beside it) is a CMOS sensor's
#: gain setting (ZWO, QHY: 0-600), not electrons per ADU (CCDs: 0.1-20).
GAIN_SETTING_ABOVE = 20
#: Values no detector has: a header card outside these is damaged, not a measurement.
PLAUSIBLE = {"gain": (1e-3, 1e3), "readnoise": (0.0, 1e4)}  # e-/ADU; electrons


@dataclass(frozen=True)
class Sourced:
    """A value and where it came from: ``source`` reads like ``'header EGAIN'``,
    ``'configuration'``, ``'measured: 3 flat pairs'`` or ``'none: ...'`` (value None)."""

    value: float | None
    source: str
    error: float | None = None

    def text(self, unit=""):
        """``'0.25 e-/ADU (header EGAIN)'``, or the source alone when there is no value."""
        if self.value is None:
            return self.source
        error = f" ± {self.error:.2g}" if self.error is not None else ""
        return f"{self.value:.4g}{error}{unit and ' ' + unit} ({self.source})"


def card(headers, key):
    """The value of the first header holding `key` (strings stripped); None if absent/undefined."""
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
    return next((v for v in (_real(card(headers, k)) for k in names)
                 if v is not None and v >= minimum), None)


def with_preset(config, preset):
    """(aliases, keywords) for a frame written by `preset`'s program (None: none known).

    The preset's IMAGETYP spellings are added to the configuration's; its cards replace
    gpucal's default cards, except those the configuration set (``config.explicit``).
    """
    from .presets import merge_keywords

    if preset is None:
        return config.aliases, config.keywords
    aliases = {kind: tuple(dict.fromkeys(names + tuple(preset.aliases.get(kind, ()))))
               for kind, names in config.aliases.items()}
    keywords = merge_keywords(config.keywords, preset)
    keywords.update({name: value for name, value in config.keywords.items()
                     if f"keywords.{name}" in config.explicit})
    return aliases, keywords


def frame_unit(headers):
    """(unit, source) of a raw frame's pixels: BUNIT, with raw counts' spellings as ADU.

    No BUNIT is ADU (what every acquisition program writes without saying); a BUNIT astropy
    does not know raises ValueError.
    """
    text = card(headers, "BUNIT")
    if text is None or not str(text).strip():
        return "adu", "assumed: no BUNIT"
    try:
        return parse_unit(text).to_string(), f"header BUNIT={text!r}"
    except ValueError:
        raise ValueError(f"BUNIT = {text!r} is not a unit astropy understands") from None


def _is_setting(key, value, headers, keywords):
    """Whether the card `key` holds a sensor's gain setting rather than e⁻/ADU."""
    if key in keywords["gain_setting"]:
        return True
    return (key == "GAIN" and card(headers, "EGAIN") is None
            and float(value).is_integer() and value > GAIN_SETTING_ABOVE)


def resolve_gain(headers, keywords, unit="adu"):
    """Electrons per ADU: the configuration's number, else the first card that holds one.

    Cards are tried in ``keywords["gain"]``'s order (EGAIN before GAIN by default). A card
    is passed over when it is the program's gain-setting card, or when it is GAIN holding an
    integer above 20 beside no EGAIN (a CMOS gain setting such as 139), or when it is not a
    positive finite number; the source then says so, and the value is None (the pipeline
    measures it). Data already in electrons have gain 1.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.pipeline.config import InstrumentConfig
    >>> keys = InstrumentConfig().keywords
    >>> resolve_gain([fits.Header({"GAIN": 139, "EGAIN": 0.25})], keys).text("e-/ADU")
    '0.25 e-/ADU (header EGAIN)'
    >>> resolve_gain([fits.Header({"GAIN": 139})], keys).source
    'none: header GAIN=139 is a sensor gain setting, not e-/ADU'
    """
    if unit == "electron":
        return Sourced(1.0, "data already in electrons (BUNIT)")
    names = keywords["gain"]
    if isinstance(names, float):
        return Sourced(names, "configuration")
    passed = []
    for key in names:
        value = card(headers, key)
        if value is None:
            continue
        number = _real(value)
        low, high = PLAUSIBLE["gain"]
        if number is None or not low <= number <= high:
            passed.append(f"header {key}={value!r} is not a plausible e-/ADU "
                          f"({low:g} to {high:g})")
        elif _is_setting(key, number, headers, keywords):
            passed.append(f"header {key}={value!r} is a sensor gain setting, not e-/ADU")
        else:
            return Sourced(number, f"header {key}")
    return Sourced(None, "none: " + ("; ".join(passed) or _no_card(names, "e-/ADU")))


def _no_card(names, what):
    return f"no {'/'.join(names)} card" if names else f"the program writes no {what} card"


def resolve_readnoise(headers, keywords):
    """Read noise in electrons: the configuration's number, else the first card holding one
    (``keywords["readnoise"]``); None (with the reason) when neither gives it."""
    names = keywords["readnoise"]
    if isinstance(names, float):
        return Sourced(names, "configuration")
    passed = []
    low, high = PLAUSIBLE["readnoise"]
    for key in names:
        value = card(headers, key)
        if value is None:
            continue
        number = _real(value)
        if number is not None and low <= number <= high:
            return Sourced(number, f"header {key}")
        passed.append(f"header {key}={value!r} is not a plausible read noise "
                      f"({low:g} to {high:g} e-)")
    return Sourced(None, "none: " + ("; ".join(passed) or _no_card(names, "read-noise")))


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OLD_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")  # FITS before 2000: DD/MM/YY, 19YY


def _time_of_day(headers, keywords):
    for key in keywords["time"]:
        value = card(headers, key)
        if isinstance(value, str) and re.match(r"^\d{1,2}:\d{2}(:\d{2}(\.\d*)?)?$", value):
            return value if value.count(":") == 2 else value + ":00"
    return None


def observation_mjd(headers, keywords):
    """MJD (UTC) of the exposure: MJD-OBS, else DATE-OBS, with TIME-OBS/UT/UTSTART's time
    when DATE-OBS holds only a date (a date alone is taken as 0h UT); None without a date.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.pipeline.config import InstrumentConfig
    >>> keys = InstrumentConfig().keywords
    >>> observation_mjd([fits.Header({"DATE-OBS": "2024-03-01", "UT": "22:10:00"})], keys)
    60370.92361111111
    """
    mjd = _real(card(headers, keywords["mjd"]))
    if mjd is not None and mjd > 0:  # filabres: a non-positive MJD-OBS is a header error
        return mjd
    date = card(headers, keywords["date"])
    if not isinstance(date, str):
        return None
    old = _OLD_DATE.match(date)
    if old:
        date = f"19{old[3]}-{old[2]}-{old[1]}"
    if _DATE_ONLY.match(date):
        time_of_day = _time_of_day(headers, keywords)
        if time_of_day is not None:
            date = f"{date}T{time_of_day}"
    try:
        return float(Time(date.rstrip("Z"), scale="utc").mjd)
    except (ValueError, TypeError):
        return None


def site_longitude(headers, keywords):
    """The site's longitude in degrees east from the header's cards (Sourced; None if none)."""
    from .presets import longitude_degrees

    for key in keywords["longitude"]:
        value = card(headers, key)
        if value is None:
            continue
        try:
            degrees = longitude_degrees(value)
        except ValueError:
            continue  # not a longitude: the next card, else none
        if degrees is not None:
            return Sourced(degrees, f"header {key}")
    return Sourced(None, "none")


def night_offset(config, headers=None, keywords=None):
    """(hours, source): a night starts this many hours after 0h UT.

    ``night_offset_hours`` if configured; else local noon at the configured
    ``site_longitude``, else at the header's longitude card; else noon UT.
    """
    if config.night_offset_hours is not None:
        return config.night_offset_hours, "configuration night_offset_hours"
    longitude = Sourced(config.site_longitude, "configuration site_longitude")
    if longitude.value is None and headers is not None:
        longitude = site_longitude(headers, keywords)
    if longitude.value is None:
        return 12.0, "noon UT (no site longitude)"
    east = (longitude.value + 180.0) % 360.0 - 180.0
    return 12.0 - east / 15.0, f"local noon at longitude {east:+.2f} ({longitude.source})"


def night_of(mjd, offset_hours):
    """The night (its evening's date, YYYY-MM-DD) of an exposure at `mjd`.

    Examples
    --------
    >>> night_of(60370.2, 12.0), night_of(60370.2, 12.0 + 105.5 / 15)
    ('2024-02-29', '2024-02-29')
    """
    try:
        return (_MJD0 + timedelta(days=mjd - offset_hours / 24)).strftime("%Y-%m-%d")
    except OverflowError:
        return "unknown"
