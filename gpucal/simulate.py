"""Seeded synthetic frames with known defects, for tests, benchmarks and the demo."""

import numpy as np

__all__ = ["defective_flat"]


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
