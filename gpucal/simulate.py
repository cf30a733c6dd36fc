"""Seeded synthetic frames with known defects, for tests, benchmarks and the demo."""

import os
import re
from typing import NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

__all__ = ["CONVENTIONS", "LAYOUTS", "SUFFIXES", "SimulatedNight", "cosmic_ray_frame",
           "defective_flat", "simulate_night"]


def defective_flat(shape=(1024, 1024), *, seed=0, level=20000.0, gain=1.5, vignetting=0.1,
                   dtype=np.float32, nan_pixels=0):
    """A flat field with injected defects, and where they are.

    The flat is Poisson-noisy (``level`` electrons, read out in ADU with
    `gain`) times a smooth vignetting gradient, with:

    * dead columns (response 0.3–0.6) over the whole height, and partial
      ones starting or ending mid-chip;
    * dead patches of a few pixels (response 0.2–0.7);
    * hot pixels (response ×1.5–3) and cold pixels (×0.2–0.5);
    * `nan_pixels` NaN pixels (not counted as defects: they are not data).

    Parameters
    ----------
    shape : (int, int)
    seed : int
    level : float
        Mean counts, electrons.
    gain : float
        Electrons per ADU.
    vignetting : float
        Fractional drop of the response from centre to corner.
    dtype : numpy dtype
    nan_pixels : int

    Returns
    -------
    flat : numpy.ndarray
        In ADU.
    defects : numpy.ndarray of bool
        True on every injected defective pixel.

    Examples
    --------
    >>> from gpucal.simulate import defective_flat
    >>> flat, defects = defective_flat((256, 256), seed=1)
    >>> flat.shape, 0 < int(defects.sum()) < 256 * 256 // 10
    ((256, 256), True)
    """
    rng = np.random.default_rng(seed)
    nl, nc = shape
    y, x = np.mgrid[0:nl, 0:nc]
    r2 = ((y - nl / 2) / (nl / 2)) ** 2 + ((x - nc / 2) / (nc / 2)) ** 2
    response = (1.0 - vignetting * r2 / 2).astype(np.float64)
    defects = np.zeros(shape, bool)
    scale = max(1, nl * nc // (1024 * 1024))

    for col in rng.choice(nc, size=4 * scale, replace=False):  # whole dead columns
        response[:, col] *= rng.uniform(0.3, 0.6)
        defects[:, col] = True
    for col in rng.choice(nc, size=6 * scale, replace=False):  # partial columns
        start = int(rng.integers(0, nl // 2))
        stop = min(nl, start + int(rng.integers(nl // 8, nl // 2)))
        response[start:stop, col] *= rng.uniform(0.3, 0.6)
        defects[start:stop, col] = True
    for _ in range(30 * scale):  # small dead patches
        h, w = rng.integers(2, 6, size=2)
        r, c = rng.integers(0, nl - h), rng.integers(0, nc - w)
        response[r:r + h, c:c + w] *= rng.uniform(0.2, 0.7)
        defects[r:r + h, c:c + w] = True
    n_single = 300 * scale
    pix = rng.choice(nl * nc, size=n_single, replace=False)
    factors = np.where(rng.random(n_single) < 0.5, rng.uniform(1.5, 3.0, n_single),
                       rng.uniform(0.2, 0.5, n_single))
    response.flat[pix] *= factors
    defects.flat[pix] = True

    electrons = rng.poisson(level * response).astype(np.float64)
    flat = (electrons / gain).astype(dtype)
    if nan_pixels:
        flat.flat[rng.choice(nl * nc, size=nan_pixels, replace=False)] = np.nan
    return flat, defects


def cosmic_ray_frame(shape=(1024, 1024), *, seed=0, sky=200.0, gain=1.0, readnoise=10.0,
                     n_stars=None, n_cosmics=None, fwhm=3.0, satlevel=None):
    """A science frame with stars and injected cosmic rays, and where the rays are.

    Gaussian stars (FWHM `fwhm`, peaks from near the noise to well above it)
    on a flat `sky`, Poisson noise in electrons plus Gaussian read noise,
    read out in ADU with `gain`. Cosmic rays are not blurred by the optics:
    single-pixel hits and short straight tracks of 2–6 pixels, 100–5000
    electrons per pixel, added after the noise as a detector would see them.

    Parameters
    ----------
    shape : (int, int)
    seed : int
    sky : float
        Sky level, electrons.
    gain : float
        Electrons per ADU.
    readnoise : float
        Electrons.
    n_stars, n_cosmics : int, optional
        Default: 120 stars and 500 rays per 1024² pixels.
    fwhm : float
        Stellar FWHM, pixels.
    satlevel : float, optional
        Clip the frame here (ADU), as a saturated detector does.

    Returns
    -------
    frame : numpy.ndarray, float32
        In ADU.
    cosmics : numpy.ndarray of bool
        True on every pixel a cosmic ray hit.

    Examples
    --------
    >>> from gpucal.simulate import cosmic_ray_frame
    >>> frame, cosmics = cosmic_ray_frame((256, 256), seed=1)
    >>> frame.shape, 0 < int(cosmics.sum()) < 1000
    ((256, 256), True)
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    area = ny * nx / (1024 * 1024)
    n_stars = int(round(120 * area)) if n_stars is None else n_stars
    n_cosmics = int(round(500 * area)) if n_cosmics is None else n_cosmics

    electrons = np.full(shape, float(sky)) + _stars(shape, rng, n_stars, fwhm)
    electrons = rng.poisson(electrons).astype(np.float64)
    electrons += rng.normal(0.0, readnoise, shape)
    cosmics = _add_cosmic_rays(electrons, rng, n_cosmics)

    frame = electrons / gain
    if satlevel is not None:
        frame = np.minimum(frame, satlevel)
    return frame.astype(np.float32), cosmics


def _stars(shape, rng, n_stars, fwhm, peaks=(1.5, 5.0)):
    """Electrons of `n_stars` Gaussian stars (peak 10**uniform(*peaks)) on an empty image."""
    ny, nx = shape
    electrons = np.zeros(shape)
    sigma = fwhm / 2.35482
    half = int(np.ceil(4 * sigma))
    dy, dx = np.mgrid[-half:half + 1, -half:half + 1]
    for _ in range(n_stars):  # one stamp per star: a loop over objects, not pixels
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        iy, ix = int(cy), int(cx)
        peak = 10 ** rng.uniform(*peaks)
        stamp = peak * np.exp(-((dy + iy - cy) ** 2 + (dx + ix - cx) ** 2) / (2 * sigma ** 2))
        y0, x0 = max(iy - half, 0), max(ix - half, 0)
        y1, x1 = min(iy + half + 1, ny), min(ix + half + 1, nx)
        electrons[y0:y1, x0:x1] += stamp[y0 - iy + half:y1 - iy + half,
                                         x0 - ix + half:x1 - ix + half]
    return electrons


def _add_cosmic_rays(electrons, rng, n_cosmics):
    """Add `n_cosmics` sharp hits and short tracks to `electrons`; returns where they fell."""
    ny, nx = electrons.shape
    lengths = np.where(rng.random(n_cosmics) < 0.5, 1, rng.integers(2, 7, n_cosmics))
    angles = rng.uniform(0, np.pi, n_cosmics)
    starts_y, starts_x = rng.uniform(0, ny, n_cosmics), rng.uniform(0, nx, n_cosmics)
    ray = np.repeat(np.arange(n_cosmics), lengths)
    step = np.arange(ray.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    ys = np.clip(np.round(starts_y[ray] + step * np.sin(angles[ray])), 0, ny - 1).astype(int)
    xs = np.clip(np.round(starts_x[ray] + step * np.cos(angles[ray])), 0, nx - 1).astype(int)
    np.add.at(electrons, (ys, xs), rng.uniform(100.0, 5000.0, ray.size))
    cosmics = np.zeros(electrons.shape, bool)
    cosmics[ys, xs] = True
    return cosmics


class SimulatedNight(NamedTuple):
    """What :func:`simulate_night` wrote, and the truth behind it (data-section shape).

    ``gain`` (e⁻/ADU of the written pixel values) and ``readnoise`` (e⁻) are the true
    values, whatever the headers say; ``kinds`` maps each path to 'bias', 'dark', 'flat'
    or 'science' (a dark flat is a dark), also where the headers carry no IMAGETYP.
    """

    paths: list
    bad_pixels: np.ndarray
    hot_pixels: np.ndarray
    cosmics: dict  # science file path -> bool mask of the pixels rays hit
    gain: float = None
    readnoise: float = None
    convention: str = "gpucal"
    kinds: dict = None  # path -> kind


CONVENTIONS = ("gpucal", "nina", "sharpcap", "asiair", "maxim", "acp")
LAYOUTS = ("night", "flat", "target", "camera")
SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz")

# What each program writes, as its documentation and real headers show it (the sources are
# cited in gpucal/pipeline/presets.py; this table is kept apart from it on purpose: the
# simulator is the test oracle for the reader). camera: INSTRUME (a ZWO CMOS camera for the
# CMOS programs, an SBIG CCD for MaxIm DL and ACP), pixel size (µm); creator: (card, text);
# imagetyp: kind -> IMAGETYP (None: the program writes none); decimals: of DATE-OBS seconds.
_PROGRAMS = {
    "nina": dict(camera=("ZWO ASI2600MM Pro", 3.76),
                 creator=("SWCREATE", "N.I.N.A. 3.1.2.9001 (x64)"),
                 imagetyp={"bias": "BIAS", "dark": "DARK", "darkflat": "DARKFLAT",
                           "flat": "FLAT", "science": "LIGHT"}, decimals=7),
    "sharpcap": dict(camera=("ZWO ASI183MM Pro", 2.4),
                     creator=("SWCREATE", "SharpCap v4.1.12946.0, 64 bit"),
                     imagetyp=None, decimals=7),
    "asiair": dict(camera=("ZWO ASI2600MM Pro", 3.76), creator=("CREATOR", "ZWO ASIAIR Plus"),
                   imagetyp={"bias": "Bias", "dark": "Dark", "darkflat": "Dark",
                             "flat": "Flat", "science": "Light"}, decimals=6),
    "maxim": dict(camera=("SBIG STXL-6303", 9.0),
                  creator=("SWCREATE", "MaxIm DL Version 6.27 211016 SIM01"),
                  imagetyp={"bias": "Bias Frame", "dark": "Dark Frame", "darkflat": "Dark Frame",
                            "flat": "Flat Frame", "science": "Light Frame"}, decimals=2),
}
_PROGRAMS["acp"] = dict(_PROGRAMS["maxim"], decimals=0)
_SHARPCAP_ADCBITS = 12  # the ASI183's ADC; SharpCap's EGAIN is per ADU at this depth


def _stamp(when, decimals):
    """ISO date and time to `decimals` decimals of the second."""
    return Time(when, precision=decimals).isot


def _dms(degrees):
    """MaxIm DL's 'ddd mm ss' (signed, whole seconds)."""
    total = int(round(abs(degrees) * 3600))
    d, rest = divmod(total, 3600)
    m, sec = divmod(rest, 60)
    return f"{'-' if degrees < 0 and total else ''}{d} {m:02d} {sec:02d}"


def _program_header(convention, kind, when, exptime, filt, site):
    """The header `convention`'s program writes for one frame (see :func:`simulate_night`)."""
    program = _PROGRAMS[convention]
    camera, pixel = program["camera"]
    date_obs = _stamp(when, program["decimals"])
    cards = []
    imagetyp = program["imagetyp"]
    if convention == "nina":  # isbeorn/nina FITSHeader.PopulateFromMetaData, in its order
        local = when + site["tz_hours"] * u.hour
        cards += [("IMAGETYP", imagetyp[kind], "Type of exposure"),
                  ("EXPOSURE", exptime, "[s] Exposure duration"),
                  ("EXPTIME", exptime, "[s] Exposure duration"),
                  ("DATE-LOC", _stamp(local, 7), "Time of observation (local)"),
                  ("DATE-OBS", date_obs, "Time of observation (UTC)"),
                  ("MJD-OBS", round(when.mjd, 8), "Modified Julian Date of observation"),
                  ("XBINNING", 1, "X axis binning factor"),
                  ("YBINNING", 1, "Y axis binning factor"),
                  ("GAIN", site["gain_setting"], "Sensor gain"),
                  ("OFFSET", site["offset_setting"], "Sensor gain offset"),
                  ("EGAIN", site["gain"], "[e-/ADU] Electrons per A/D unit"),
                  ("XPIXSZ", pixel, "[um] Pixel X axis size"),
                  ("YPIXSZ", pixel, "[um] Pixel Y axis size"),
                  ("INSTRUME", camera, "Imaging instrument name"),
                  ("SET-TEMP", -10.0, "[degC] CCD temperature setpoint"),
                  ("CCD-TEMP", -10.0, "[degC] CCD temperature")]
        if site["longitude"] is not None:
            cards.append(("SITELONG", site["longitude"], "[deg] Observation site longitude"))
        wheel = filt if filt is not None else site["wheel"]  # the wheel's filter, any frame
        if wheel is not None:
            cards += [("FWHEEL", "ZWO EFW", "Filter Wheel name"),
                      ("FILTER", wheel, "Active filter name")]
        if kind == "science":
            cards.append(("OBJECT", site["target"], "Name of the object of interest"))
        cards += [("ROWORDER", "TOP-DOWN", "FITS Image Orientation"),
                  ("EQUINOX", 2000.0, "Equinox of celestial coordinate system"),
                  program["creator"] + ("Software that created this file",)]
    elif convention == "sharpcap":  # SharpCap 4.1: no IMAGETYP, EGAIN at the ADC's depth
        end = when + exptime * u.s
        cards += [("GAIN", site["gain_setting"], ""), ("OFFSET", site["offset_setting"], ""),
                  ("EGAIN", site["gain"] * 2 ** (16 - _SHARPCAP_ADCBITS),
                   "Electrons per ADU at true ADC bit depth"),
                  ("ADCBITS", _SHARPCAP_ADCBITS, "Bit depth of camera sensor ADC in current mode"),
                  ("EGAINSAV", site["gain"], "Electrons per ADU at saved bit depth"),
                  ("ROWORDER", "TOP-DOWN", ""), ("EXPTIME", exptime, "seconds"),
                  ("XPIXSZ", pixel, "microns, includes binning if any"),
                  ("YPIXSZ", pixel, "microns, includes binning if any"),
                  ("XBINNING", 1, ""), ("YBINNING", 1, ""), ("CCD-TEMP", -10.0, "C"),
                  ("SET-TEMP", -10.0, ""),
                  program["creator"] + ("",),
                  ("DATE-OBS", date_obs, "System Clock:Est. Frame Start"),
                  ("DATE-END", _stamp(end, 7), "System Clock:Est. Frame End"),
                  ("DATE-AVG", _stamp(when + exptime / 2 * u.s, 7),
                   "System Clock:Est. Frame Mid Point"),
                  ("JD_UTC", (when + exptime / 2 * u.s).jd, "Julian Date at mid exposure"),
                  ("RDNOISE", site["readnoise"], "Read noise in electrons"),
                  ("INSTRUME", camera, "")]
        if filt is not None:
            cards.append(("FILTER", filt, ""))
        if kind == "science":
            cards.append(("OBJECT", site["target"], ""))
    elif convention == "asiair":  # CREATOR, 'Light'/'Dark'/..., GAIN and OFFSET settings
        cards += [program["creator"] + ("Capture software",),
                  ("XORGSUBF", 0, "Subframe X position in binned pixels"),
                  ("YORGSUBF", 0, "Subframe Y position in binned pixels"),
                  ("XBINNING", 1, "Camera X Bin"), ("YBINNING", 1, "Camera Y Bin"),
                  ("CCDXBIN", 1, "Camera X Bin"), ("CCDYBIN", 1, "Camera Y Bin"),
                  ("XPIXSZ", pixel, "pixel size in microns (with binning)"),
                  ("YPIXSZ", pixel, "pixel size in microns (with binning)"),
                  ("IMAGETYP", imagetyp[kind], "Type of image"),
                  ("EXPOSURE", exptime, "Exposure time in seconds"),
                  ("EXPTIME", exptime, "Exposure time in seconds"),
                  ("CCD-TEMP", -10.0, "sensor temperature in C"),
                  ("SET-TEMP", -10.0, "Cooler set temperature in C"),
                  ("DATE-OBS", date_obs, "Image created time"),
                  ("INSTRUME", camera, "Camera model"),
                  ("GAIN", site["gain_setting"], "Gain Value"),
                  ("OFFSET", site["offset_setting"], "Offset Value")]
        if site["longitude"] is not None:
            cards.append(("SITELONG", site["longitude"],
                          "longitude of the imaging site in degrees"))
        if filt is not None:
            cards.append(("FILTER", filt, "Filter used when taking image"))
        if kind == "science":
            cards.append(("OBJECT", site["target"],
                          "name or catalog number of object being imaged"))
    else:  # MaxIm DL (SBFITSEXT), and ACP driving it
        acp = convention == "acp"
        cards += [("DATE-OBS", date_obs, "[ISO 8601] UTC date/time of exposure start" if acp
                   else "YYYY-MM-DDThh:mm:ss observation start, UT"),
                  ("EXPTIME", exptime, "[sec] Duration of exposure" if acp
                   else "Exposure time in seconds"),
                  ("EXPOSURE", exptime, "[sec] Duration of exposure" if acp
                   else "Exposure time in seconds"),
                  ("SET-TEMP", -10.0, "CCD temperature setpoint in C"),
                  ("CCD-TEMP", -10.0, "CCD temperature at start of exposure in C"),
                  ("XPIXSZ", pixel, "Pixel Width in microns (after binning)"),
                  ("YPIXSZ", pixel, "Pixel Height in microns (after binning)"),
                  ("XBINNING", 1, "Binning factor in width"),
                  ("YBINNING", 1, "Binning factor in height"),
                  ("XORGSUBF", 0, "Subframe X position in binned pixels"),
                  ("YORGSUBF", 0, "Subframe Y position in binned pixels"),
                  ("READOUTM", "Normal", "Readout mode of image")]
        if filt is not None:
            cards.append(("FILTER", filt, "Filter used when taking image"))
        cards += [("IMAGETYP", imagetyp[kind], "Type of image"),
                  ("SBSTDVER", "SBFITSEXT Version 1.0", "Version of SBFITSEXT standard in effect"),
                  program["creator"] + ("Name of software",)]
        if site["longitude"] is not None:
            cards.append(("SITELONG", _dms(site["longitude"]),
                          "Longitude of the imaging location"))
        cards += [("JD", when.jd, "Julian Date at start of exposure"),
                  ("OBJECT", site["target"] if kind == "science" else "", ""),
                  ("INSTRUME", camera, "instrument or camera used"),
                  ("EGAIN", site["gain"], "Electronic gain in e-/ADU"),
                  ("ROWORDER", "TOP-DOWN", "Image write order, BOTTOM-UP or TOP-DOWN"),
                  ("PEDESTAL", 0, "Correction to add for zero-based ADU"),
                  ("SWOWNER", "gpucal simulator", "Licensed owner of software")]
        if acp:  # the DC-3 Dreams cards of an ACP-run observatory
            t = when.to_datetime()
            cards += [("DATE", t.strftime("%d/%m/%y"), "[old format] UTC date of exposure start"),
                      ("TIME-OBS", t.strftime("%H:%M:%S"),
                       "[old format] UTC time of exposure start"),
                      ("UT", t.strftime("%H:%M:%S"), "[old format] UTC time of exposure start"),
                      ("TIMESYS", "UTC", "Default time system")]
            if site["longitude"] is not None:
                cards.append(("LONG-OBS", site["longitude"], "[deg +E WGS84] Geodetic longitude"))
            cards.append(("OBSERVAT", "gpucal simulated observatory", "Observatory name"))
            if kind == "science" and filt in tuple("UBVRI"):
                cards.append(("CLRBAND", filt, "[J-C std] Std. color band of image or C=Color"))
    header = fits.Header(cards)
    if convention == "acp" and kind == "science":  # plate-solved by PinPoint, as ACP does
        solved = Time(when + (exptime + 30.0) * u.s, precision=0).isot
        header.add_history(f"File was processed by PinPoint 6.1.1 at {solved}")
    return header


def simulate_night(directory, *, seed=0, night="2026-11-20", shape=(512, 512), overscan=None,
                   gain=1.5, readnoise=6.0, n_bias=7, dark_exposures=(60.0, 300.0), n_dark=3,
                   filters=("V", "R"), n_flat=5, n_science=3, science_exposure=120.0,
                   cosmic_rate=300.0, convention="gpucal", layout="night", suffix=".fits",
                   science_filters=None, site_longitude=None, start="17:00", n_dark_flat=0,
                   target="M42", gain_setting=100, offset_setting=50):
    """Write a small observing night of raw uint16 FITS frames, as a camera and program would.

    One detector (bias level with column pattern, read noise, optional overscan
    strip, dark current with hot pixels, a vignetted response with dead
    columns and patches) observed: biases, darks at each of
    `dark_exposures`, twilight flats in each of `filters` and science frames
    (stars on sky, cosmic rays) in each of `science_filters`. Existing files
    are never overwritten (OSError).

    Headers follow `convention`:

    * ``"gpucal"`` (default): IMAGETYP (BIAS, DARK, FLAT, LIGHT), DATE-OBS,
      MJD-OBS, EXPTIME, FILTER, INSTRUME, DETECTOR, binning, GAIN (e⁻/ADU),
      RDNOISE, BUNIT, BIASSEC and TRIMSEC (and SITELONG, degrees east, when
      `site_longitude` is given).
    * ``"nina"``: SWCREATE 'N.I.N.A. …', IMAGETYP LIGHT/DARK/FLAT/BIAS/DARKFLAT,
      EXPOSURE and EXPTIME, DATE-OBS (UTC) and DATE-LOC (local) with 7
      decimals, MJD-OBS, GAIN and OFFSET (integer settings), EGAIN (e⁻/ADU),
      SITELONG (decimal degrees), FILTER on every frame (the wheel's filter).
    * ``"sharpcap"``: SWCREATE 'SharpCap v4.1…', no IMAGETYP, EXPTIME,
      DATE-OBS/-END/-AVG with 7 decimals, GAIN and OFFSET settings, EGAIN at a
      12-bit ADC's depth (16 × the true value), ADCBITS, EGAINSAV (the true
      e⁻/ADU) and RDNOISE (e⁻); no site card.
    * ``"asiair"``: CREATOR 'ZWO ASIAIR Plus', IMAGETYP Light/Dark/Flat/Bias,
      EXPOSURE and EXPTIME, DATE-OBS with 6 decimals, GAIN and OFFSET
      settings, no e⁻/ADU card, SITELONG (decimal degrees).
    * ``"maxim"``: SWCREATE 'MaxIm DL Version 6.27 …', IMAGETYP 'Light Frame'
      etc., EXPTIME and EXPOSURE, DATE-OBS to 10 ms, EGAIN (e⁻/ADU), SITELONG
      'ddd mm ss', an SBIG CCD.
    * ``"acp"``: MaxIm DL's header with ACP's (DC-3 Dreams) cards: DATE-OBS to
      the second, DATE 'dd/mm/yy', TIME-OBS and UT, LONG-OBS (decimal degrees
      east), OBSERVAT, CLRBAND and PinPoint's HISTORY on science frames.

    No program convention writes RDNOISE (except SharpCap's), BUNIT, BIASSEC or
    TRIMSEC; CMOS programs' GAIN is the sensor's gain setting. File names are
    ``bias_001``, ``dark060_001``, ``darkflat_001``, ``flatV_001``,
    ``sciV_001`` plus `suffix`.

    Parameters
    ----------
    directory : str or path
    seed : int
    night : str
        Evening date (UTC) the night starts on.
    shape : (int, int)
        Data section (rows, columns); `overscan` columns are added on the right.
    overscan : int, optional
        Default 32 for the "gpucal" convention, 0 for the programs' (their CMOS
        and CCD cameras save no overscan).
    gain, readnoise : float
        True e⁻/ADU of the written values; read noise in electrons.
    n_bias, n_dark, n_flat, n_science, n_dark_flat : int
        Frames per kind (darks per exposure, flats per filter, science frames
        per science filter); dark flats are darks of the flats' 5 s exposure.
    dark_exposures : sequence of float
    filters : sequence of str
        Filters of the flats (and of the science frames by default).
    science_filters : sequence of str, optional
        Filters of the science frames, e.g. ``("R", "Ha")`` with flats in
        ``("R",)`` for a filter with no flats.
    science_exposure : float
    cosmic_rate : float
        Cosmic-ray events per megapixel per minute of exposure. The default,
        300, is about 60 times what a ground-based CCD collects (some 2 per
        cm² per minute, 4.5 per megapixel of 15 µm pixels), so that every
        demo frame has rays to find; use about 5 for a realistic night.
    convention : {"gpucal", "nina", "sharpcap", "asiair", "maxim", "acp"}
    layout : {"night", "flat", "target", "camera"}
        Where files go: ``directory/night/``; `directory` itself;
        ``directory/<target>/`` (science) and ``directory/calibration/``; or
        ``directory/<INSTRUME>/<night>/``.
    suffix : {".fits", ".fit", ".fts", ".fits.gz", ".fits.fz"}
        ".fits.gz" is gzipped, ".fits.fz" a tile-compressed image extension
        after an empty primary HDU.
    site_longitude : float, optional
        Degrees east of Greenwich, written in the convention's site card; also
        sets NINA's local time (DATE-LOC), UTC + round(longitude / 15) hours.
    start : str
        UTC time ("HH:MM" or "HH:MM:SS") of the first frame on `night`; frames
        run to about 5 h later.
    target : str
        OBJECT of the science frames (where the program writes one) and their
        folder in the "target" layout.
    gain_setting, offset_setting : int
        The CMOS programs' GAIN and OFFSET cards.

    Returns
    -------
    SimulatedNight

    Raises
    ------
    ValueError
        An unknown convention, layout or suffix, or a `start` not "HH:MM[:SS]".

    Examples
    --------
    >>> from gpucal.simulate import simulate_night
    >>> sim = simulate_night("raw", shape=(64, 64), overscan=8, n_bias=2, n_dark=1,
    ...                      n_flat=1, n_science=1)
    >>> len(sim.paths), sim.paths[0]
    (8, 'raw/2026-11-20/bias_001.fits')
    >>> from astropy.io import fits
    >>> sim = simulate_night("nina", shape=(32, 32), n_bias=1, n_dark=1, n_flat=1,
    ...                      n_science=1, convention="nina", layout="target",
    ...                      site_longitude=-71.25, start="23:30")
    >>> header = fits.getheader(sim.paths[-1])
    >>> sim.paths[-1], header["IMAGETYP"], header["GAIN"], header["EGAIN"]
    ('nina/M42/sciR_001.fits', 'LIGHT', 100, 1.5)
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r} is not one of {', '.join(CONVENTIONS)}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if suffix not in SUFFIXES:
        raise ValueError(f"suffix {suffix!r} is not one of {', '.join(SUFFIXES)}")
    if not re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", str(start)):
        raise ValueError(f"start {start!r} is not a UTC time 'HH:MM' or 'HH:MM:SS'")
    if overscan is None:
        overscan = 32 if convention == "gpucal" else 0
    science_filters = tuple(filters if science_filters is None else science_filters)
    rng = np.random.default_rng(seed)
    ny, nx = shape
    root = os.fspath(directory)
    camera = "GPUCAL-SIM" if convention == "gpucal" else _PROGRAMS[convention]["camera"][0]
    folders = {"night": os.path.join(root, night), "flat": root,
               "camera": os.path.join(root, camera, night)}
    bias_level = 1000.0 + rng.normal(0.0, 2.0, nx + overscan)  # ADU, with column pattern
    dark_current = rng.gamma(2.0, 0.005, shape)  # e/s
    hot = rng.random(shape) < 0.001
    dark_current[hot] = rng.uniform(2.0, 30.0, int(hot.sum()))
    response, bad = _response(shape, rng)
    start = Time(f"{night}T{start}" + ":00" * (str(start).count(":") == 1), scale="utc")
    site = {"longitude": None if site_longitude is None else float(site_longitude),
            "tz_hours": 0 if site_longitude is None else round(float(site_longitude) / 15),
            "gain": gain, "readnoise": readnoise, "gain_setting": gain_setting,
            "offset_setting": offset_setting, "target": target,
            "wheel": filters[0] if len(filters) else None}
    written, cosmics, kinds = [], {}, {}

    def expose(name, kind, minutes, exptime, electrons, filt=None):
        """Read out `electrons` (data section) as a raw frame and write it."""
        raw = np.empty((ny, nx + overscan))
        raw[:, :nx] = rng.poisson(np.clip(electrons, 0, None)) / gain
        raw[:, nx:] = 0.0
        raw += bias_level + rng.normal(0.0, readnoise / gain, raw.shape)
        when = start + minutes * u.min
        if convention == "gpucal":
            imagetyp = {"bias": "BIAS", "dark": "DARK", "darkflat": "DARK", "flat": "FLAT",
                        "science": "LIGHT"}[kind]
            header = fits.Header([
                ("IMAGETYP", imagetyp), ("DATE-OBS", when.isot), ("MJD-OBS", round(when.mjd, 6)),
                ("EXPTIME", exptime), ("INSTRUME", "GPUCAL-SIM"), ("DETECTOR", "SIMCCD-1"),
                ("XBINNING", 1), ("YBINNING", 1), ("GAIN", gain, "electron/adu"),
                ("RDNOISE", readnoise, "electron"), ("BUNIT", "adu"),
                ("BIASSEC", f"[{nx + 1}:{nx + overscan},1:{ny}]"),
                ("TRIMSEC", f"[1:{nx},1:{ny}]")])
            if filt is not None:
                header["FILTER"] = filt
            if site["longitude"] is not None:
                header["SITELONG"] = (site["longitude"], "[deg] east")
        else:
            header = _program_header(convention, kind, when, exptime, filt, site)
        folder = folders.get(layout) or os.path.join(
            root, target if kind == "science" else "calibration")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, name + suffix)
        data = np.clip(np.round(raw), 0, 65535).astype(np.uint16)
        if suffix == ".fits.fz":
            fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, header)]).writeto(path)
        else:
            fits.PrimaryHDU(data, header).writeto(path)
        written.append(path)
        kinds[path] = "dark" if kind == "darkflat" else kind
        return path

    for i in range(n_bias):
        expose(f"bias_{i + 1:03d}", "bias", i, 0.0, np.zeros(shape))
    for k, t in enumerate(dark_exposures):
        for i in range(n_dark):
            expose(f"dark{int(t):03d}_{i + 1:03d}", "dark", 15 + 10 * k + i, t,
                   dark_current * t)
    for k, filt in enumerate(filters):
        level = 15000.0 * (1 + 0.5 * k)
        for i in range(n_flat):  # twilight: each flat a little fainter
            expose(f"flat{filt}_{i + 1:03d}", "flat", 90 + 15 * k + i, 5.0,
                   level * (1 - 0.05 * i) * response + dark_current * 5.0, filt)
    for i in range(n_dark_flat):  # darks of the flats' exposure
        expose(f"darkflat_{i + 1:03d}", "darkflat", 90 + 15 * len(filters) + i, 5.0,
               dark_current * 5.0)
    sky_field = _stars(shape, rng, max(1, ny * nx // 4000), 3.0, peaks=(2.0, 4.5))
    for k, filt in enumerate(science_filters):
        for i in range(n_science):
            sky = (1.0 + 0.6 * k) * science_exposure
            electrons = (sky + sky_field * science_exposure / 100.0) * response
            electrons = electrons + dark_current * science_exposure  # expose() draws the noise
            n_rays = int(ny * nx * science_exposure * cosmic_rate / 6e7)  # per Mpx per minute
            rays = _add_cosmic_rays(electrons, rng, n_rays)
            path = expose(f"sci{filt}_{i + 1:03d}", "science",
                          180 + 40 * (k * n_science + i), science_exposure, electrons, filt)
            cosmics[path] = rays
    return SimulatedNight(written, bad, hot, cosmics, float(gain), float(readnoise), convention,
                          kinds)


def _response(shape, rng):
    """(response, bad) of a vignetted detector with dead columns and patches."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    r2 = ((y - ny / 2) / (ny / 2)) ** 2 + ((x - nx / 2) / (nx / 2)) ** 2
    response = (1.0 - 0.05 * r2) * rng.normal(1.0, 0.01, shape)
    bad = np.zeros(shape, bool)
    for col in rng.choice(nx, size=2, replace=False):
        bad[:, col] = True
    bad[ny // 3:, rng.integers(0, nx)] = True  # a column dead from a third of the way up
    for _ in range(3):
        r, c = rng.integers(0, ny - 4), rng.integers(0, nx - 4)
        bad[r:r + 3, c:c + 4] = True
    response[bad] *= 0.5
    return response, bad
