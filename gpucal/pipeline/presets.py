"""What small-observatory acquisition programs write in their FITS headers.

A :class:`Preset` per program (N.I.N.A., SharpCap, ZWO ASIAIR, Sequence Generator Pro,
Astro Photography Tool, ACP, MaxIm DL, and a generic one): how to recognise its files
(:func:`detect`), the IMAGETYP spellings it uses per kind, and which header cards hold
the values gpucal takes from headers (DESIGN.md, "Values from headers"): e⁻/ADU, read
noise, exposure, date and time, site longitude. Where a program writes a sensor gain
*setting* (ZWO/QHY CMOS cameras: an integer such as 100 or 139, not e⁻/ADU) the preset
names that card in ``gain_setting`` and leaves it out of ``gain``.

``keywords`` has the keys of the plan's default ``[keywords]`` table (date, mjd, exptime,
imagetyp, gain, readnoise, biassec, trimsec) plus ``gain_setting``, ``time``
(time-of-day cards used with a date-only DATE-OBS) and ``longitude`` (site longitude
cards, read with :func:`longitude_degrees`). Tuples list cards in the order tried; an
empty tuple means no card may be trusted for that value (e.g. ``gain=()`` for ASIAIR,
whose GAIN is a setting, ``readnoise=()`` and ``gain_setting=()`` where the program
writes none). Single cards (date, mjd, imagetyp, biassec, trimsec) keep gpucal's names
where a program writes no such card: reading an absent card is harmless.

Every convention cites where it was read; what could not be verified is said in the
preset's ``notes``. The sources, shortened below:

* [NINA] isbeorn/nina, NINA.Image/FileFormat/FITS/FITSHeader.cs (PopulateFromMetaData)
  and FITSHeaderCard.cs (DateTime cards 'yyyy-MM-ddTHH:mm:ss.fffffff'); image types in
  CaptureSequence.ImageTypes (LIGHT, FLAT, DARK, BIAS, DARKFLAT, SNAPSHOT/SNAP).
* [ASCOM] ITelescopeV3.SiteLongitude: "degrees, positive East, WGS84 ... Note that West
  is negative!" (ascom-standards.org, also solo.dc3.com/ar/RefDocs/HelpFiles/
  ASCOMPlatformHelp/html/P_ASCOM_DeviceInterface_ITelescopeV3_SiteLongitude.htm).
* [MAXIM] MaxIm DL help, FITS_File_Header_Definitions.htm
  (cdn.diffractionlimited.com/help/maximdl/; copied in actionprojecteu/azotea-client
  azofits.md): IMAGETYP 'Light Frame', 'Bias Frame', 'Dark Frame', 'Flat Frame',
  'Tricolor Image'; EGAIN e⁻/ADU; EXPTIME; DATE-OBS 'CCYY-MM-DDThh:mm:ss.sss' UTC, 10 ms
  resolution, TIME-OBS not written; SITELONG "same format as OBJCTDEC" ('DD MM SS').
* [PF] bcolyn/PhotonFinder tests/sample_headers.py and tests (real headers): N.I.N.A.
  1.10, SharpCap 3 and 4.1, MaxIm DL 5.24 + PinPoint/ACP (iTelescope T33, Siding
  Spring), SGP 3.1, APT 3.54, ZWO Seestar.
* [LCO] MaxIm DL 6.20 header, SITELONG '-119 40 52' at 34°20' N (Santa Barbara), in a
  photonranch-style S3 scanner (find_string "SWCREATE= 'MaxIm DL Version 6.20").
* [ITEL] DaveStrickland/AstroPhotography doc/fits_metadata.md: MaxIm DL 6.27 raw
  header, SITELONG '149 04 11' at Siding Spring (149° E), DATE-OBS '…T15:42:46.53'.
* [AZO] actionprojecteu/azotea-client FITS.md and azofits.md: SharpCap writes no
  IMAGETYP and no gain card (SharpCap 3), DATE-OBS with excess decimals.
* [ASIAIR] a test fixture built "from a real 2600MC Duo sub" (find_string
  "ZWO ASIAIR Plus"): CREATOR 'ZWO ASIAIR Plus', IMAGETYP 'Light', GAIN 100, OFFSET 50,
  SITELONG -74.0358 (New York: east positive); ASIAIR file names
  'Flat_520.0ms_Bin1_O_gain0_…' (frame types Light, Dark, Bias, Flat).
* [PCL] PixInsight's keyword reader (LONG-OBS/SITELONG parsed as sexagesimal with ' '
  or ':' separators, longitudes above 180 folded to negative).
* [FLWO] fitsbits mailing list, Nov. 2000: SITELONG '+110:52:39.0' / "LONGITUDE,
  DEGREES WEST OF ZERO" — a west-positive convention.

Examples
--------
>>> from astropy.io import fits
>>> from gpucal.pipeline.presets import detect, longitude_degrees
>>> preset = detect(fits.Header({"SWCREATE": "N.I.N.A. 3.1.2.9001 (x64)", "GAIN": 120}))
>>> preset.name, preset.keywords["gain"], preset.keywords["gain_setting"]
('nina', ('EGAIN',), ('GAIN',))
>>> round(longitude_degrees("-119 40 52"), 6)
-119.681111
"""

import math
import re
from dataclasses import dataclass

__all__ = ["PRESETS", "Preset", "detect", "header_longitude", "longitude_degrees",
           "merge_keywords"]


@dataclass(frozen=True)
class Preset:
    """One acquisition program's header conventions.

    ``name``: short key ("nina", "sharpcap", …); ``title``: for messages; ``detect``:
    ((KEYWORD, regex), …), any match (case-insensitive ``re.search`` on the card's
    value; every HISTORY/COMMENT line is tried) selects the preset; ``aliases``: kind
    (bias, dark, flat, science) -> lower-case IMAGETYP values this program writes, to be
    added to the defaults; ``keywords``: header cards per value (see the module
    docstring); ``notes``: one line, what is special and where it was learned.
    """

    name: str
    title: str
    detect: tuple
    aliases: dict
    keywords: dict
    notes: str


def _keywords(**kw):
    """A full keywords table: the plan's keys, then gain_setting, time, longitude."""
    table = {"date": "DATE-OBS", "mjd": "MJD-OBS", "exptime": ("EXPTIME",),
             "imagetyp": "IMAGETYP", "gain": (), "readnoise": (), "biassec": "BIASSEC",
             "trimsec": "TRIMSEC",
             "gain_setting": (), "time": (), "longitude": ()}
    unknown = set(kw) - set(table)
    if unknown:
        raise TypeError(f"unknown keyword entries {sorted(unknown)}")
    table.update(kw)
    return table


# The dark flat is a dark: a dark of the flats' exposure, matched to flats by exposure time
# like any dark (NINA writes DARKFLAT [NINA]; other spellings seen in file managers).
_DARK_FLAT = ("darkflat", "dark flat", "flatdark", "flat dark")
_MAXIM_ALIASES = {"bias": ("bias frame",), "dark": ("dark frame",) + _DARK_FLAT,
                  "flat": ("flat frame",), "science": ("light frame", "tricolor image")}

PRESETS = (
    Preset(
        name="nina", title="N.I.N.A.",
        # [NINA] FITSHeader.cs: SWCREATE 'N.I.N.A. <version> (<arch>)'.
        detect=(("SWCREATE", r"^\s*N\.I\.N\.A\."),),
        # [NINA] CaptureSequence.ImageTypes; FITSHeader.cs writes SNAPSHOT as LIGHT.
        aliases={"bias": ("bias",), "dark": ("dark",) + _DARK_FLAT, "flat": ("flat",),
                 "science": ("light", "snapshot", "snap")},
        # [NINA] EXPOSURE and EXPTIME (same value), DATE-OBS (UTC) and DATE-LOC (local),
        # MJD-OBS, GAIN (setting, int), OFFSET (setting, int), EGAIN (camera's
        # ElectronsPerADU), SITELONG (decimal degrees, written only within ±180).
        keywords=_keywords(exptime=("EXPTIME", "EXPOSURE"), gain=("EGAIN",),
                           gain_setting=("GAIN",), longitude=("SITELONG",)),
        notes="GAIN/OFFSET are the sensor settings, EGAIN the e-/ADU the camera driver reports "
              "(absent if it reports none); no read-noise card; DATE-OBS UTC with 7 decimals "
              "(3 in 1.x), DATE-LOC local; SITELONG decimal degrees east-positive (the ASCOM "
              "convention; NINA's tests use 11.3 for Austria, 114.18 for Hong Kong); FILTER is "
              "written on every frame while a wheel is connected, darks and biases included "
              "[isbeorn/nina NINA.Image/FileFormat/FITS/FITSHeader.cs, FITSHeaderCard.cs]"),
    Preset(
        name="sharpcap", title="SharpCap",
        # [PF] SWCREATE 'SharpCap' (3.x), 'SharpCap v4.1.12946.0, 64 bit' (4.1).
        detect=(("SWCREATE", r"^\s*SharpCap"),),
        # [AZO], [PF]: no IMAGETYP at all; nothing to add.
        aliases={},
        # [PF] SharpCap 4.1: EXPTIME; GAIN (setting, 300), OFFSET; EGAIN 'Electrons per ADU
        # at true ADC bit depth' with ADCBITS 12, EGAINSAV 'Electrons per ADU at saved bit
        # depth' (= EGAIN / 2**(16 - ADCBITS)); RDNOISE 'Read noise in electrons';
        # DATE-OBS 'System Clock:Est. Frame Start' with 7 decimals, DATE-END, DATE-AVG,
        # JD_UTC (mid exposure).
        keywords=_keywords(exptime=("EXPTIME",), gain=("EGAINSAV",), readnoise=("RDNOISE",),
                           gain_setting=("GAIN",)),
        notes="no IMAGETYP (frame kind must come from elsewhere); EGAIN is e-/ADU at the ADC's "
              "bit depth (ADCBITS), EGAINSAV the e-/ADU of the saved 16-bit data: use EGAINSAV, "
              "or EGAIN/2**(16-ADCBITS); RDNOISE (electrons) only after a sensor analysis; "
              "SharpCap 3 wrote no gain cards at all; no site-longitude card seen (unverified) "
              "[bcolyn/PhotonFinder tests; actionprojecteu/azotea-client FITS.md, azofits.md]"),
    Preset(
        name="asiair", title="ZWO ASIAIR",
        # [ASIAIR] CREATOR 'ZWO ASIAIR Plus'; the same family writes 'ZWO Seestar S50' [PF].
        detect=(("CREATOR", r"^\s*ZWO\s+ASIAIR"),),
        aliases={"bias": ("bias",), "dark": ("dark",), "flat": ("flat",),
                 "science": ("light",)},
        # [ASIAIR] EXPTIME, GAIN (setting), OFFSET, SITELONG decimal east-positive; the
        # Seestar [PF] writes EXPOSURE and EXPTIME and DATE-OBS with 6 decimals.
        keywords=_keywords(exptime=("EXPTIME", "EXPOSURE"), gain=(), gain_setting=("GAIN",),
                           longitude=("SITELONG",)),
        notes="IMAGETYP 'Light'/'Dark'/'Flat'/'Bias'; GAIN (e.g. 100) and OFFSET are settings and "
              "no e-/ADU card was seen (unverified: measure it, or configure it); SITELONG "
              "decimal degrees east-positive (-74.0358 for New York); DATE-OBS precision "
              "unverified (the sibling Seestar writes 6 decimals) [ASIAIR fixture 'from a real "
              "2600MC Duo sub'; bcolyn/PhotonFinder Seestar header]"),
    Preset(
        name="sgp", title="Sequence Generator Pro",
        # [PF] CREATOR 'Sequence Generator Pro v3.1.0.479'.
        detect=(("CREATOR", r"^\s*Sequence\s+Generator"),),
        aliases={"bias": ("bias",), "dark": ("dark",), "flat": ("flat",),
                 "science": ("light",)},
        # [PF] EXPOSURE only; GAIN 120 (setting), EGAIN 3.99, OFFSET 30;
        # SITELONG '3 43 0.000' at Ghent (3°43' E); DATE-OBS UTC and DATE-LOC, 7 decimals.
        keywords=_keywords(exptime=("EXPOSURE", "EXPTIME"), gain=("EGAIN",),
                           gain_setting=("GAIN",), longitude=("SITELONG",)),
        notes="EXPOSURE, not EXPTIME; GAIN/OFFSET settings, EGAIN e-/ADU; SITELONG a 'd m s.sss' "
              "string east-positive; IMAGETYP 'LIGHT' seen, the other kinds' spellings "
              "unverified [bcolyn/PhotonFinder tests/sample_headers.py]"),
    Preset(
        name="apt", title="Astro Photography Tool",
        # [PF] SWCREATE 'Astro Photography Tool - APT v.3.54.1'.
        detect=(("SWCREATE", r"^\s*Astro\s+Photography\s+Tool"),),
        aliases=_MAXIM_ALIASES,
        # [PF] EXPTIME, EGAIN, GAIN 'The gain set (if supported)', SITELONG '+03 41 00.000'
        # at Ghent, DATE-OBS without decimals, SBSTDVER (follows SBFITSEXT like MaxIm).
        keywords=_keywords(exptime=("EXPTIME",), gain=("EGAIN",), gain_setting=("GAIN",),
                           longitude=("SITELONG",)),
        notes="IMAGETYP 'Light Frame' (SBFITSEXT/MaxIm spellings assumed for the other kinds, "
              "unverified); GAIN is the setting, EGAIN e-/ADU; SITELONG a signed '+dd mm ss.sss' "
              "string east-positive [bcolyn/PhotonFinder tests/sample_headers.py]"),
    Preset(
        name="acp", title="ACP (MaxIm DL)",
        # ACP drives MaxIm DL, so SWCREATE is MaxIm's; the DC-3 Dreams additions [PF]: the
        # [old format] DATE 'dd/mm/yy' with TIME-OBS and UT, CLRBAND, and PinPoint's HISTORY.
        detect=(("CLRBAND", r"\S"), ("HISTORY", r"\bPinPoint\b"),
                ("DATE", r"^\s*\d\d/\d\d/\d\d\s*$")),
        aliases=_MAXIM_ALIASES,
        # [PF] DATE-OBS '[ISO 8601] UTC date/time of exposure start', EXPTIME and EXPOSURE
        # '[sec] Duration of exposure', TIME-OBS and UT '[old format] UTC time of exposure
        # start', LONG-OBS '[deg +E WGS84] Geodetic longitude' (149.06 at Siding Spring),
        # besides MaxIm's SITELONG '149 03 52'.
        keywords=_keywords(exptime=("EXPTIME", "EXPOSURE"), gain=("EGAIN",),
                           time=("TIME-OBS", "UT"), longitude=("LONG-OBS", "SITELONG")),
        notes="MaxIm DL's header plus DC-3 Dreams cards: LONG-OBS/LAT-OBS decimal degrees "
              "east-positive (WGS84), DATE 'dd/mm/yy' + TIME-OBS/UT '[old format]', OBSERVAT, "
              "CLRBAND; which of ACP or PinPoint adds them, and whether calibration frames "
              "carry them, could not be verified (no ACP documentation found) "
              "[bcolyn/PhotonFinder tests/sample_headers.py, iTelescope T33 header]"),
    Preset(
        name="maxim", title="MaxIm DL",
        # [MAXIM] SWCREATE "MaxIm DL Version x.xx"; [LCO], [ITEL] 'MaxIm DL Version 6.27 ...'.
        detect=(("SWCREATE", r"^\s*MaxIm\s*DL"),),
        aliases=_MAXIM_ALIASES,
        # [MAXIM] EXPTIME, EGAIN, DATE-OBS with time (TIME-OBS not written), SITELONG
        # 'DD MM SS'; [LCO], [ITEL] also EXPOSURE; no RDNOISE, GAIN or BIASSEC of its own.
        keywords=_keywords(exptime=("EXPTIME", "EXPOSURE"), gain=("EGAIN",),
                           longitude=("SITELONG",)),
        notes="IMAGETYP 'Light Frame'/'Bias Frame'/'Dark Frame'/'Flat Frame'; EGAIN only when the "
              "camera driver reports e-/ADU (absent in the 6.20 and 6.27 headers seen); no "
              "gain-setting card documented; SITELONG a signed 'ddd mm ss' string, east-positive "
              "('-119 40 52' at Santa Barbara, '149 04 11' at Siding Spring); DATE-OBS to 10 ms; "
              "PEDESTAL to add to the pixels when non-zero [MaxIm DL help "
              "FITS_File_Header_Definitions.htm; DaveStrickland/AstroPhotography "
              "doc/fits_metadata.md]"),
    Preset(
        name="generic", title="unknown program",
        detect=(),  # never detected: what a caller falls back to
        aliases={},
        # The plan's defaults, plus the standard and common place cards: OBSGEO-L is the FITS
        # standard's geodetic longitude (degrees, east-positive).
        keywords=_keywords(exptime=("EXPTIME", "EXPOSURE"),
                           gain=("GAIN", "EGAIN"), readnoise=("RDNOISE", "READNOIS", "RON"),
                           time=("TIME-OBS", "UT", "UTSTART"),
                           longitude=("SITELONG", "LONG-OBS", "OBSGEO-L")),
        notes="gpucal's defaults; a GAIN here may be e-/ADU (observatory software, CCD drivers) "
              "or a CMOS gain setting (ZWO/QHY drivers): the header alone cannot tell, so a "
              "GAIN far from 0.1-10 deserves a warning; date-only DATE-OBS with TIME-OBS/UT/"
              "UTSTART is the pre-2000 and ING convention; some software writes longitudes "
              "west-positive (FLWO 'DEGREES WEST', Meade LX200 0..360 westward)"),
)


def _values(headers, keyword):
    """The string values of `keyword` in `headers` (all lines of HISTORY and COMMENT)."""
    for header in headers:
        if keyword not in header:
            continue
        if keyword in ("HISTORY", "COMMENT") and not isinstance(header[keyword], str):
            yield from (str(line) for line in header[keyword])
        else:
            value = header[keyword]
            if isinstance(value, str) or (value is not None and not isinstance(value, bool)):
                yield str(value)


def detect(header):
    """The first preset whose detection rules match `header`, or None.

    Parameters
    ----------
    header : astropy.io.fits.Header, dict, or sequence of them
        A sequence is searched in order (an extension's header, then the primary's).

    Returns
    -------
    Preset or None
        None when no program is recognised (the "generic" preset is never detected).

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.pipeline.presets import detect
    >>> detect(fits.Header({"SWCREATE": "MaxIm DL Version 6.27 211016 1NURE"})).title
    'MaxIm DL'
    >>> detect(fits.Header({"INSTRUME": "SBIG STXL-6303"})) is None
    True
    """
    headers = list(header) if isinstance(header, (list, tuple)) else [header]
    for preset in PRESETS:
        for keyword, pattern in preset.detect:
            if any(re.search(pattern, value, re.IGNORECASE)
                   for value in _values(headers, keyword)):
                return preset
    return None


def merge_keywords(base, preset):
    """`base` (the configuration's keywords table) with `preset`'s entries over it.

    Every entry of the preset replaces `base`'s, empty tuples included (no card may be
    trusted); an entry of None would leave `base`'s as it is (no preset has one today).

    Examples
    --------
    >>> from gpucal.pipeline.presets import PRESETS, merge_keywords
    >>> asiair = next(p for p in PRESETS if p.name == "asiair")
    >>> table = merge_keywords({"gain": ("GAIN", "EGAIN"), "gain_setting": ()}, asiair)
    >>> table["gain"], table["gain_setting"]
    ((), ('GAIN',))
    """
    merged = dict(base)
    for key, value in preset.keywords.items():
        if value is not None or key not in merged:
            merged[key] = value
    return merged


_HEMISPHERE = re.compile(r"[NSEW]", re.IGNORECASE)
_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")


def longitude_degrees(value, *, west_positive=False):
    """Site longitude in degrees east-positive, in (-180, 180], from a header value.

    Accepted: numbers (decimal degrees: NINA, ASIAIR, ACP's LONG-OBS, OBSGEO-L); numeric
    strings ('1.49064444444E+002'); sexagesimal strings with spaces, colons or degree
    marks ('149 03 52' and '-119 40 52' MaxIm DL, '+03 41 00.000' APT, '3 43 0.000' SGP,
    '+110:52:39.0', '-68:10:48:00' where a fourth field holds hundredths of seconds as
    PRISM writes); an E or W letter before or after ('74 00 21 W'). A sign applies to the
    whole angle ('-0 30 00' is half a degree west).

    Every program in :data:`PRESETS` writes east-positive longitudes (the ASCOM
    convention, "Note that West is negative!"). Some older or professional software
    writes west-positive ones (FLWO's SITELONG "DEGREES WEST OF ZERO"; the Meade LX200
    protocol's 0..360 westward): pass ``west_positive=True`` for those. An explicit E/W
    letter always wins. Values above 180 are folded to negative (0..360 east, as
    PixInsight reads them).

    Parameters
    ----------
    value : float, int or str
    west_positive : bool
        The value counts degrees west of Greenwich.

    Returns
    -------
    float or None
        None for None or an empty string.

    Raises
    ------
    ValueError
        A string that is not a longitude, minutes or seconds of 60 or more, a latitude
        hemisphere (N/S), a sign that contradicts its E/W letter, or |value| > 360.

    Examples
    --------
    >>> from gpucal.pipeline.presets import longitude_degrees
    >>> round(longitude_degrees("149 03 52"), 6), longitude_degrees(-74.0358)
    (149.064444, -74.0358)
    >>> longitude_degrees("+110:52:39.0", west_positive=True)
    -110.8775
    >>> round(longitude_degrees(260.6), 6)  # 0..360 east
    -99.4
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"not a longitude: {value!r}")
    if isinstance(value, (int, float)):
        degrees = float(value)
    else:
        degrees = _parse_angle(str(value), west_positive)
        west_positive = False  # applied (or overridden by a letter) in _parse_angle
    if not math.isfinite(degrees) or abs(degrees) > 360:
        raise ValueError(f"not a longitude: {value!r}")
    if west_positive:
        degrees = -degrees
    if degrees > 180:
        degrees -= 360
    elif degrees <= -180:
        degrees += 360
    return degrees


def _parse_angle(text, west_positive):
    """Signed degrees east from a decimal or sexagesimal string (see longitude_degrees)."""
    s = text.strip()
    try:
        degrees = float(s)
    except ValueError:
        pass
    else:
        return -degrees if west_positive else degrees
    letters = {c.upper() for c in _HEMISPHERE.findall(s)}
    if letters & {"N", "S"} or len(letters) > 1:
        raise ValueError(f"not a longitude: {text!r}")
    body = _HEMISPHERE.sub(" ", s).strip()
    sign = -1.0 if body.startswith("-") else 1.0
    body = body.lstrip("+-").strip()
    if re.search(r"[^\d\s:.°'\"]", body):
        raise ValueError(f"not a longitude: {text!r}")
    fields = _NUMBER.findall(body)
    if not 1 <= len(fields) <= 4:
        raise ValueError(f"not a longitude: {text!r}")
    if len(fields) == 4:  # d:m:s:hundredths (PRISM)
        fields = fields[:2] + [f"{fields[2]}.{fields[3]}"]
    parts = [float(f) for f in fields] + [0.0] * (3 - len(fields))
    if parts[1] >= 60 or parts[2] >= 60:
        raise ValueError(f"not a longitude: {text!r}")
    degrees = sign * (parts[0] + parts[1] / 60 + parts[2] / 3600)
    if letters == {"W"}:
        if sign < 0:
            raise ValueError(f"a negative west longitude is ambiguous: {text!r}")
        return -degrees
    if letters == {"E"}:
        if sign < 0:
            raise ValueError(f"a negative east longitude is ambiguous: {text!r}")
        return degrees
    return -degrees if west_positive else degrees


def header_longitude(header, preset=None):
    """The site longitude (degrees east) from the first of `preset`'s longitude cards.

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
    preset : Preset, optional
        Default: :func:`detect`'s, else the generic one.

    Returns
    -------
    (float, str) or None
        The longitude and the card it came from; None if no card holds one.

    Examples
    --------
    >>> from astropy.io import fits
    >>> from gpucal.pipeline.presets import header_longitude
    >>> degrees, card = header_longitude(fits.Header({"SWCREATE": "MaxIm DL Version 6.20",
    ...                                               "SITELONG": "-119 40 52"}))
    >>> round(degrees, 6), card
    (-119.681111, 'SITELONG')
    """
    preset = preset or detect(header) or PRESETS[-1]
    for keyword in preset.keywords["longitude"]:
        value = header.get(keyword)
        try:
            degrees = longitude_degrees(value)
        except ValueError:
            continue
        if degrees is not None:
            return degrees, keyword
    return None
