"""Seeded synthetic frames with known defects, for tests, benchmarks and the demo."""

import os
from typing import NamedTuple

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time

__all__ = ["SimulatedNight", "cosmic_ray_frame", "defective_flat", "simulate_night"]


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
    """What :func:`simulate_night` wrote, and the truth behind it (data-section shape)."""

    paths: list
    bad_pixels: np.ndarray
    hot_pixels: np.ndarray
    cosmics: dict  # science file path -> bool mask of the pixels rays hit


def simulate_night(directory, *, seed=0, night="2026-11-20", shape=(512, 512), overscan=32,
                   gain=1.5, readnoise=6.0, n_bias=7, dark_exposures=(60.0, 300.0), n_dark=3,
                   filters=("V", "R"), n_flat=5, n_science=3, science_exposure=120.0,
                   cosmic_rate=300.0):
    """Write a small observing night of raw uint16 FITS frames, as a CCD camera would.

    One detector (bias level with column pattern, read noise, an overscan
    strip, dark current with hot pixels, a vignetted response with dead
    columns and patches) observed: biases, darks at each of
    `dark_exposures`, twilight flats and science frames (stars on sky,
    cosmic rays) in each filter. Headers carry IMAGETYP, DATE-OBS, MJD-OBS,
    EXPTIME, FILTER, INSTRUME, DETECTOR, binning, GAIN, RDNOISE, BUNIT,
    BIASSEC and TRIMSEC. Files go to ``directory/night/``; existing files
    are never overwritten (OSError).

    Parameters
    ----------
    directory : str or path
    seed : int
    night : str
        Evening date (UTC) the night starts on; frames are taken from 17:00 UTC.
    shape : (int, int)
        Data section (rows, columns); `overscan` columns are added on the right.
    gain, readnoise : float
        Electrons per ADU; read noise in electrons.
    n_bias, n_dark, n_flat, n_science : int
        Frames per kind (darks per exposure, flats and science per filter).
    dark_exposures : sequence of float
    filters : sequence of str
    science_exposure : float
    cosmic_rate : float
        Cosmic-ray events per megapixel per minute of exposure. The default,
        300, is about 60 times what a ground-based CCD collects (some 2 per
        cm² per minute, 4.5 per megapixel of 15 µm pixels), so that every
        demo frame has rays to find; use about 5 for a realistic night.

    Returns
    -------
    SimulatedNight

    Examples
    --------
    >>> from gpucal.simulate import simulate_night
    >>> sim = simulate_night("raw", shape=(64, 64), overscan=8, n_bias=2, n_dark=1,
    ...                      n_flat=1, n_science=1)
    >>> len(sim.paths), sim.paths[0]
    (8, 'raw/2026-11-20/bias_001.fits')
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    folder = os.path.join(os.fspath(directory), night)
    os.makedirs(folder, exist_ok=True)
    bias_level = 1000.0 + rng.normal(0.0, 2.0, nx + overscan)  # ADU, with column pattern
    dark_current = rng.gamma(2.0, 0.005, shape)  # e/s
    hot = rng.random(shape) < 0.001
    dark_current[hot] = rng.uniform(2.0, 30.0, int(hot.sum()))
    response, bad = _response(shape, rng)
    start = Time(f"{night}T17:00:00", scale="utc")
    written, cosmics = [], {}

    def expose(name, imagetyp, minutes, exptime, electrons, filt=None):
        """Read out `electrons` (data section) as a raw frame and write it."""
        raw = np.empty((ny, nx + overscan))
        raw[:, :nx] = rng.poisson(np.clip(electrons, 0, None)) / gain
        raw[:, nx:] = 0.0
        raw += bias_level + rng.normal(0.0, readnoise / gain, raw.shape)
        when = start + minutes * u.min
        header = fits.Header([
            ("IMAGETYP", imagetyp), ("DATE-OBS", when.isot), ("MJD-OBS", round(when.mjd, 6)),
            ("EXPTIME", exptime), ("INSTRUME", "GPUCAL-SIM"), ("DETECTOR", "SIMCCD-1"),
            ("XBINNING", 1), ("YBINNING", 1), ("GAIN", gain, "electron/adu"),
            ("RDNOISE", readnoise, "electron"), ("BUNIT", "adu"),
            ("BIASSEC", f"[{nx + 1}:{nx + overscan},1:{ny}]"), ("TRIMSEC", f"[1:{nx},1:{ny}]")])
        if filt is not None:
            header["FILTER"] = filt
        path = os.path.join(folder, name)
        data = np.clip(np.round(raw), 0, 65535).astype(np.uint16)
        fits.PrimaryHDU(data, header).writeto(path)
        written.append(path)
        return path

    for i in range(n_bias):
        expose(f"bias_{i + 1:03d}.fits", "BIAS", i, 0.0, np.zeros(shape))
    for k, t in enumerate(dark_exposures):
        for i in range(n_dark):
            expose(f"dark{int(t):03d}_{i + 1:03d}.fits", "DARK", 15 + 10 * k + i, t,
                   dark_current * t)
    for k, filt in enumerate(filters):
        level = 15000.0 * (1 + 0.5 * k)
        for i in range(n_flat):  # twilight: each flat a little fainter
            expose(f"flat{filt}_{i + 1:03d}.fits", "FLAT", 90 + 15 * k + i, 5.0,
                   level * (1 - 0.05 * i) * response + dark_current * 5.0, filt)
    sky_field = _stars(shape, rng, max(1, ny * nx // 4000), 3.0, peaks=(2.0, 4.5))
    for k, filt in enumerate(filters):
        for i in range(n_science):
            sky = (1.0 + 0.6 * k) * science_exposure
            electrons = (sky + sky_field * science_exposure / 100.0) * response
            electrons = electrons + dark_current * science_exposure  # expose() draws the noise
            n_rays = int(ny * nx * science_exposure * cosmic_rate / 6e7)  # per Mpx per minute
            rays = _add_cosmic_rays(electrons, rng, n_rays)
            path = expose(f"sci{filt}_{i + 1:03d}.fits", "LIGHT",
                          180 + 40 * (k * n_science + i), science_exposure, electrons, filt)
            cosmics[path] = rays
    return SimulatedNight(written, bad, hot, cosmics)


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
