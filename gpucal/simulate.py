"""Seeded synthetic frames with known defects, for tests, benchmarks and the demo."""

import numpy as np

__all__ = ["cosmic_ray_frame", "defective_flat"]


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
