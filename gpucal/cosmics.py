"""Cosmic-ray detection and cleaning: L.A.Cosmic with astroscrappy's and ccdproc's interfaces.

:func:`detect_cosmics` is astroscrappy's function (signature, defaults,
results bit-identical to astroscrappy 1.3.0 on the CPU) on either backend,
for one frame or a batch; :func:`cosmicray_lacosmic` is ccdproc's wrapper on
Frames and CCDData. The algorithm's pieces are in :mod:`gpucal.lacosmic`; the
median filters are backend primitives (fused kernels on the GPU).
"""

import math
import warnings

import numpy as np
from astropy import units as u
from astropy.utils.exceptions import AstropyDeprecationWarning

from . import lacosmic
from ._dtype import refuse_complex
from ._operands import check_square, logged
from .backend import get_backend
from .flags import MaskFlag
from .frame import Frame
from .provenance import add_history
from .sources import as_frame, give_back, kind_of

__all__ = ["cosmicray_lacosmic", "detect_cosmics"]

CLEANTYPES = ("median", "medmask", "meanmask", "idw")
FSMODES = ("median", "convolve")
PSFMODELS = ("gauss", "gaussx", "gaussy", "moffat")
MIN_SIZE = 9  # the largest median window (separable 9) needs an interior


def _c_float(value, name):
    """A parameter as astroscrappy's C float sees it: rounded to float32."""
    try:
        return float(np.float32(value))
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number; got {value!r}") from None


def check_gain(gain, name="gain"):
    """The gain as astroscrappy's C float sees it; ValueError unless positive and finite.

    L.A.Cosmic works in electrons: a gain of 0 would make every pixel 0 (then 0/0 when
    the cleaned image goes back to ADU), a negative one a negative noise model.
    `name` names the value in the message (the CLI names the file and keyword).
    """
    value = _c_float(gain, name)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number of electrons per ADU; got {gain}")
    return value


def check_readnoise(readnoise, name="readnoise"):
    """The read noise as astroscrappy's C float sees it; ValueError unless it is finite, at
    least 0 and its square finite in float32.

    A read noise whose square overflows float32 (about 1.8e19 e⁻) would make the noise
    infinite everywhere: nothing could ever be detected, and the result would look like a
    frame without cosmic rays. `name` names the value in the message.
    """
    value = _c_float(readnoise, name)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a number of electrons, 0 or more; got {readnoise}")
    check_square(value, np.float32, name)
    return value


def _choice(value, name, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}; got {value!r}")
    return value


def _image_like(backend, value, name, shape):
    """An optional per-pixel input of `indat`'s shape (or one frame's): as (N, ny, nx)."""
    if value is None:
        return None
    if getattr(value, "ndim", 0) == 0:  # a number where an image belongs (ccdproc: TypeError)
        raise TypeError(f"{name} must be an array of the image's shape; got "
                        f"{type(value).__name__}")
    value = backend.asarray(value)
    refuse_complex(value.dtype, name)
    if value.shape not in (shape, shape[-2:]):
        raise ValueError(f"{name} has shape {value.shape}; expected {shape}"
                         + (f" or {shape[-2:]}" if len(shape) == 3 else ""))
    return backend.xp.broadcast_to(value, (shape[0] if len(shape) == 3 else 1,) + shape[-2:])


def _psf(fsmode, psfk, psfmodel, psffwhm, psfsize, psfbeta):
    """The convolution kernel of fsmode="convolve" as a NumPy float32 array, or None."""
    if fsmode != "convolve":
        return None
    if psfk is not None:
        psfk = np.asarray(psfk.get() if hasattr(psfk, "get") else psfk, np.float32)
        if psfk.ndim != 2 or psfk.shape[0] % 2 == 0 or psfk.shape[1] % 2 == 0:
            raise ValueError(f"psfk must be a 2-D kernel with odd sides; got shape {psfk.shape}")
        return psfk
    if int(psfsize) != psfsize or psfsize < 1 or psfsize % 2 == 0:
        raise ValueError(f"psfsize must be a positive odd integer; got {psfsize!r}")
    kernel = lacosmic.psf_kernel(psfmodel, psffwhm, int(psfsize), psfbeta)
    return np.ascontiguousarray(kernel[::-1, ::-1])  # astroscrappy flips its own kernels


def detect_cosmics(indat, inmask=None, inbkg=None, invar=None, sigclip=4.5, sigfrac=0.3,
                   objlim=5.0, gain=1.0, readnoise=6.5, satlevel=65536.0, niter=4, sepmed=True,
                   cleantype="meanmask", fsmode="median", psfmodel="gauss", psffwhm=2.5,
                   psfsize=7, psfk=None, psfbeta=4.765, verbose=False):
    """Detect and clean cosmic rays with L.A.Cosmic (van Dokkum 2001), astroscrappy's way.

    astroscrappy's ``detect_cosmics``: the same parameters, defaults, order
    and results. Each iteration flags pixels whose Laplacian-to-noise ratio
    exceeds `sigclip` and that stand out from the fine structure of the image
    by `objlim`, grows them onto neighbours above ``sigfrac · sigclip``, and
    cleans the flagged pixels from their 5×5 neighbourhood before the next
    iteration. Runs on the device of `indat`; a 3-D `indat` is a batch of
    frames, detected together (on the GPU in one upload, every kernel launched
    over the whole batch).

    Parameters
    ----------
    indat : array (NumPy or CuPy), shape (ny, nx) or (n, ny, nx)
        Image(s) in counts (ADU), including the sky (the noise model needs
        it). Frames must be at least 9 × 9 pixels.
    inmask : bool array, optional
        Bad pixels (True): never flagged, never used to clean. astroscrappy
        grows this mask by one pixel. Shape of `indat`, or (ny, nx) for a batch.
    inbkg : float array, optional
        A background (ADU) subtracted while detecting and restored in the
        cleaned image; its Poisson noise is not median-filtered.
    invar : float array, optional
        The variance (ADU²) instead of the noise model from `gain` and
        `readnoise`.
    sigclip : float, default 4.5
        Laplacian-to-noise limit for cosmic rays.
    sigfrac : float, default 0.3
        Neighbours of cosmic rays are flagged above ``sigfrac · sigclip``.
    objlim : float, default 5.0
        Minimum contrast between the Laplacian and the fine-structure image;
        raise it if star cores are flagged.
    gain : float, default 1.0
        Electrons per ADU; detection works in electrons.
    readnoise : float, default 6.5
        Read noise in electrons.
    satlevel : float, default 65536.0
        Saturation in electrons: saturated stars (and two pixels around them)
        are masked.
    niter : int, default 4
        Iterations; they stop early when one finds nothing.
    sepmed : bool, default True
        Separable medians (7, 5 and 9 wide, faster) instead of full ones (5, 3, 7).
    cleantype : {"meanmask", "medmask", "idw", "median"}, default "meanmask"
        How flagged pixels are replaced from their 5×5 box: masked mean,
        masked median, masked inverse-distance weighting, or the unmasked
        median (see Notes).
    fsmode : {"median", "convolve"}, default "median"
        The fine-structure image from medians, or from a noise-weighted
        convolution with a PSF kernel.
    psfmodel : {"gauss", "gaussx", "gaussy", "moffat"}, default "gauss"
        The kernel of ``fsmode="convolve"`` when `psfk` is not given.
    psffwhm : float, default 2.5
        Its FWHM in pixels.
    psfsize : int, default 7
        Its size (odd).
    psfk : 2-D float array, optional
        A kernel (odd sides) to use instead of the model; not flipped.
    psfbeta : float, default 4.765
        Moffat β.
    verbose : bool, default False
        Print the number of cosmic-ray pixels of each iteration.

    Returns
    -------
    crmask : bool array
        True for cosmic-ray pixels; shape of `indat`, on its device.
    cleanarr : float32 array
        `indat` with cosmic rays replaced, in ADU.

    Raises
    ------
    TypeError
        For non-numeric or complex input or mixed NumPy/CuPy arrays.
    ValueError
        For frames smaller than 9 × 9, shapes that do not match, unknown
        modes, an even `psfsize` or kernel, `niter` < 0, a gain that is not
        positive, or a read noise that is negative, not finite, or so large
        that its square overflows float32 (about 1.8e19 electrons: the noise
        would be infinite everywhere and nothing could be found, so this is
        refused rather than returned as a frame without cosmic rays).

    Notes
    -----
    Bit-identical to astroscrappy 1.3.0 (masks and cleaned images) on the
    CPU, except where astroscrappy fails:

    * ``cleantype="median"`` replaces each flagged pixel by the median of
      its 5×5 box (all 25 values, from the image before this iteration's
      cleaning). astroscrappy's version reads uninitialised memory and
      returns garbage.
    * Non-finite pixels of `indat`, `inbkg` or `invar` are treated as masked
      (astroscrappy lets NaN spread through its medians): they are never
      flagged, stand in as the image's background level while detecting, and
      keep their input value in `cleanarr`.
    * `invar` of any float dtype works (astroscrappy needs float32).
    * A frame with every pixel masked gives an empty mask.

    On the GPU the same operations run in float32; masks may differ from
    the CPU's in a few pixels where a value sits within rounding of a
    threshold.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import detect_cosmics
    >>> rng = np.random.default_rng(0)
    >>> image = rng.normal(100.0, 10.0, (64, 64)).astype(np.float32)
    >>> image[20, 30] = 3000.0                      # a cosmic-ray hit
    >>> crmask, clean = detect_cosmics(image, readnoise=10.0)
    >>> np.argwhere(crmask).tolist()   # the hit, and a noisy neighbour grown onto it
    [[19, 31], [20, 30]]
    >>> bool(abs(clean[20, 30] - 100.0) < 30.0)
    True
    """
    backend = get_backend(indat, inmask, inbkg, invar)  # psfk is small: any device
    indat = backend.asarray(indat)
    refuse_complex(indat.dtype, "indat")
    if indat.dtype.kind not in "biuf":
        raise TypeError(f"indat: expected numbers, got {indat.dtype}")
    if indat.ndim not in (2, 3):
        raise ValueError(f"indat must be one image (ny, nx) or a batch (n, ny, nx); "
                         f"got shape {indat.shape}")
    if min(indat.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"L.A.Cosmic needs frames of at least {MIN_SIZE}×{MIN_SIZE} pixels; "
                         f"got {indat.shape[-2:]}")
    _choice(cleantype, "cleantype", CLEANTYPES)
    _choice(fsmode, "fsmode", FSMODES)
    _choice(psfmodel, "psfmodel", PSFMODELS)
    if int(niter) != niter or niter < 0:
        raise ValueError(f"niter must be a non-negative integer; got {niter!r}")
    shape = indat.shape
    inmask = _image_like(backend, inmask, "inmask", shape)
    inbkg = _image_like(backend, inbkg, "inbkg", shape)
    invar = _image_like(backend, invar, "invar", shape)
    sigclip, sigfrac, objlim = (_c_float(v, n) for v, n in
                                ((sigclip, "sigclip"), (sigfrac, "sigfrac"), (objlim, "objlim")))
    gain, readnoise = check_gain(gain), check_readnoise(readnoise)
    satlevel = _c_float(satlevel, "satlevel")
    psfk = _psf(fsmode, psfk, psfmodel, _c_float(psffwhm, "psffwhm"), psfsize,
                _c_float(psfbeta, "psfbeta"))

    frames = indat if indat.ndim == 3 else indat[None]
    crmask, clean = _lacosmic(backend, frames, inmask, inbkg, invar, sigclip=sigclip,
                              sigfrac=sigfrac, objlim=objlim, gain=gain, readnoise=readnoise,
                              satlevel=satlevel, niter=int(niter), sepmed=bool(sepmed),
                              cleantype=cleantype, psfk=psfk, verbose=verbose)
    if indat.ndim == 2:
        crmask, clean = crmask[0], clean[0]
    return crmask, clean


def _lacosmic(backend, indat, inmask, inbkg, invar, *, sigclip, sigfrac, objlim, gain,
              readnoise, satlevel, niter, sepmed, cleantype, psfk, verbose):
    """The algorithm on (N, ny, nx) frames; parameters already validated and float32-rounded."""
    xp = backend.xp
    f32 = np.float32

    def median(image, full, separable):
        return backend.median_filter(image, separable if sepmed else full, sepmed)

    # NEP 50: Python-float parameters keep float32 arrays float32, as in astroscrappy.
    clean = (indat * gain).astype(f32)
    bkg = None if inbkg is None else (inbkg * gain).astype(f32)
    gain2, rn2 = float(f32(gain) * f32(gain)), float(f32(readnoise) * f32(readnoise))
    if invar is not None:
        var = (invar * gain2).astype(f32)
        clean_var = var if bkg is None else var - bkg
    else:
        clean_var = clean + rn2 if bkg is None else (clean - bkg) + rn2

    mask = xp.zeros(clean.shape, bool) if inmask is None else inmask != 0
    nonfinite = ~xp.isfinite(clean) | ~xp.isfinite(clean_var)
    if bkg is not None:
        nonfinite |= ~xp.isfinite(bkg)
    has_nonfinite = bool(nonfinite.any())
    if has_nonfinite:  # kept out of every statistic; replaced below
        mask = mask | nonfinite
        clean = xp.where(nonfinite, f32(0), clean)
        clean_var = xp.where(nonfinite, f32(0), clean_var)
        if bkg is not None:
            bkg = xp.where(nonfinite, f32(0), bkg)

    # Saturated stars (astroscrappy's update_mask): in electrons, before the background goes.
    # The median is needed only at the pixels at the saturation level.
    hot = clean >= satlevel
    saturated = hot & lacosmic.where_needed(
        xp, hot, lacosmic.radius(sepmed, 5, 7),
        lambda image: median(image, 5, 7) > satlevel / 10.0, clean, grow=False)
    mask = lacosmic.dilate5(saturated, 2) | lacosmic.dilate3(mask)
    if bkg is not None:
        clean -= bkg
    good = ~mask
    level, var_level = (xp.stack([xp.asarray(lacosmic.lower_median(xp, a[i][good[i]]), f32)
                                  for i in range(len(a))]) for a in (clean, clean_var))
    if has_nonfinite:  # stand-ins at the background level: no false Laplacian edges
        clean = xp.where(nonfinite, level[:, None, None], clean)
        clean_var = xp.where(nonfinite, var_level[:, None, None], clean_var)

    crmask = xp.zeros(clean.shape, bool)
    # Frames still iterating: astroscrappy stops at an iteration that finds nothing (a stopped
    # frame no longer changes, so detecting on it again finds nothing again).
    active = xp.ones(len(clean), bool)
    sigcliplow = float(f32(sigfrac) * f32(sigclip))
    if verbose:
        print(f"Starting {niter} L.A.Cosmic iterations")
    reach = lacosmic.reach(sepmed, psfk)

    def detect(*images):
        return _detect(backend, median, *images, sigclip, sigcliplow, objlim, psfk, sepmed)

    cleaned = None  # the first iteration looks at whole frames
    for it in range(niter):
        # Later ones only near the pixels cleaned: elsewhere nothing is found again.
        cosmics = lacosmic.where_needed(xp, cleaned, reach, detect, clean, clean_var, bkg, good)
        found = backend.to_numpy(cosmics.sum(axis=(1, 2)))
        crmask |= cosmics
        if verbose:
            print(f"Iteration {it + 1}: {int(found.sum())} cosmic pixels")
        active &= backend.asarray(found > 0)
        if not found.any():
            break
        target = crmask & active[:, None, None]
        bad = crmask | mask
        lacosmic.clean_pixels(xp, clean, target, bad, level, cleantype)
        lacosmic.clean_pixels(xp, clean_var, target, bad, var_level, cleantype)
        cleaned = target

    if bkg is not None:
        clean += bkg
    clean /= gain
    if has_nonfinite:
        clean = xp.where(nonfinite, indat.astype(f32), clean)
    return crmask, clean


def _detect(backend, median, clean, clean_var, bkg, good, sigclip, sigcliplow, objlim, psfk,
            sepmed):
    """One iteration's cosmic-ray pixels in (M, h, w) images: whole frames or windows."""
    xp = backend.xp
    s = lacosmic.laplacian_plus(xp, clean)
    m5 = median(clean_var, 5, 7)
    if bkg is not None:
        m5 += bkg
    m5[m5 < 0.00001] = 0.00001
    noise = xp.sqrt(m5)
    del m5
    s /= 2.0 * noise
    # sp = s − median(s) is compared with sigclip at the candidates and with sigcliplow up
    # to two growths (pixels) from them. s ≥ 0, so sp ≤ s: the candidates lie where
    # s > sigclip, and the median is needed only within 2 pixels of those (0 elsewhere).
    sp = s - lacosmic.where_needed(xp, s > sigclip, max(lacosmic.radius(sepmed, 5, 7), 2),
                                   lambda image: median(image, 5, 7), s)
    del s
    cosmics = (sp > sigclip) & good
    # The fine structure is needed only at these candidates.
    f = lacosmic.where_needed(xp, cosmics, lacosmic.fine_reach(sepmed, psfk),
                              lambda c, n: _fine_structure(xp, median, c, n, psfk),
                              clean, noise, grow=False)
    f[f < 0.01] = 0.01
    del noise
    cosmics &= (sp / f) > objlim
    del f
    cosmics = lacosmic.dilate3(cosmics) & good & (sp > sigclip)
    return lacosmic.dilate3(cosmics) & good & (sp > sigcliplow)


def _fine_structure(xp, median, clean, noise, psfk):
    """L.A.Cosmic's fine-structure image over the noise (before its floor of 0.01)."""
    if psfk is not None:
        inv_var = 1.0 / noise / noise
        f = lacosmic.convolve(xp, clean / noise / noise, psfk)
        f = f / lacosmic.convolve(xp, inv_var, psfk)
        del inv_var
    else:
        f = median(clean, 3, 5)
    return (f - median(f, 7, 9)) / noise


def _check_units(unit, gain, readnoise):
    """ccdproc's unit checks; returns the gain (made dimensionless where ccdproc does)."""
    if unit is None:
        return gain
    if unit.is_equivalent(u.electron) and gain.value != 1.0:
        warnings.warn("Image unit is electron but gain value is not 1.0. Data maybe end up "
                      "being gain corrected twice.", stacklevel=3)
        return gain
    if readnoise.unit == u.electron and unit == u.electron and gain.value == 1.0:
        gain = gain.value * u.one
    if not (gain.unit * unit).is_equivalent(readnoise.unit):
        raise ValueError(f"Inconsistent units for gain ({gain.unit})  ccd ({unit}) and "
                         f"readnoise ({readnoise.unit}).")
    return gain


@logged
def cosmicray_lacosmic(ccd, sigclip=4.5, sigfrac=0.3, objlim=5.0, gain=1.0, readnoise=6.5,
                       satlevel=65535.0, pssl=None, niter=4, sepmed=True, cleantype="meanmask",
                       fsmode="median", psfmodel="gauss", psffwhm=2.5, psfsize=7, psfk=None,
                       psfbeta=4.765, verbose=False, gain_apply=True, inbkg=None, invar=None):
    """Find and clean cosmic rays in a frame: ccdproc's ``cosmicray_lacosmic``.

    :func:`detect_cosmics` with ccdproc's parameters (note ``satlevel=65535``)
    and its handling of gain, read noise and units: the frame's mask is
    passed as `inmask`, the cleaned data are multiplied by the gain unless
    ``gain_apply=False``, and the cosmic-ray pixels are OR-ed into the mask.

    Parameters
    ----------
    ccd : Frame, CCDData or array (NumPy or CuPy)
        An array may be one frame (ny, nx) or a batch (n, ny, nx).
    gain : float or Quantity, default 1.0
        A number is in electron / adu.
    readnoise : float or Quantity, default 6.5
        A number is in electrons.
    pssl : float, optional
        A sky level subtracted earlier (deprecated in ccdproc: giving it warns
        with ccdproc's AstropyDeprecationWarning; use `inbkg`): added back for
        the detection, subtracted again from the result. Not with `inbkg` or
        `invar`.
    gain_apply : bool, default True
        Return the cleaned data multiplied by the gain (its unit times the
        gain's unit) rather than in the input's unit.
    sigclip, sigfrac, objlim, satlevel, niter, sepmed, cleantype, fsmode, psfmodel, psffwhm, \
psfsize, psfk, psfbeta, verbose, inbkg, invar
        As for :func:`detect_cosmics`.

    Returns
    -------
    Frame or CCDData
        For a Frame or CCDData: a copy with the cleaned data, the cosmic-ray
        pixels flagged (:attr:`MaskFlag.COSMIC_RAY`; a CCDData's boolean mask
        OR-ed) and a HISTORY card.
    (cleanarr, crmask)
        For an array, in ccdproc's order (reversed from astroscrappy's).

    Raises
    ------
    ValueError
        For gain, read noise and data units that do not fit together
        (ccdproc's check), `pssl` with `inbkg`/`invar`, or a gain or read
        noise :func:`detect_cosmics` refuses.

    Notes
    -----
    Data and mask are ccdproc 2.5.1's (a CCDData's data are float64 when
    the gain is applied, as in ccdproc; a Frame keeps its dtype).
    Where ccdproc 2.5.1 is inconsistent gpucal does what its development
    version does: the unit becomes unit × gain unit only when the gain is
    applied (2.5.1 changes it to electrons even with ``gain_apply=False``),
    and the uncertainty is multiplied by the gain with the data (2.5.1
    leaves it in the old unit).

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Frame, MaskFlag, cosmicray_lacosmic
    >>> rng = np.random.default_rng(0)
    >>> frame = Frame(rng.normal(100.0, 10.0, (64, 64)), unit="adu")
    >>> frame.data[20, 30] = 3000.0
    >>> out = cosmicray_lacosmic(frame, gain=1.0, readnoise=10.0)
    >>> out.unit, MaskFlag(int(out.mask[20, 30]))
    (Unit("electron"), <MaskFlag.COSMIC_RAY: 16>)
    """
    if pssl is not None:
        warnings.warn('"pssl" was deprecated in ccdproc 2.3.0 and will be removed in ccdproc '
                      "3.0: use inbkg instead to have the background removed during "
                      "detection", AstropyDeprecationWarning, stacklevel=2)
    pssl = 0.0 if pssl is None else pssl
    try:
        kind = kind_of(ccd)
    except TypeError:
        raise TypeError(f"ccd: expected a Frame, CCDData or array; got {type(ccd).__name__}") \
            from None
    gain = gain if isinstance(gain, u.Quantity) else gain * u.electron / u.adu
    readnoise = readnoise if isinstance(readnoise, u.Quantity) else readnoise * u.electron
    if pssl != 0 and (inbkg is not None or invar is not None):
        raise ValueError("Cannot set both pssl and inbkg")
    params = dict(sigclip=sigclip, sigfrac=sigfrac, objlim=objlim, gain=gain.value,
                  readnoise=readnoise.value, satlevel=satlevel, niter=niter, sepmed=sepmed,
                  cleantype=cleantype, fsmode=fsmode, psfmodel=psfmodel, psffwhm=psffwhm,
                  psfsize=psfsize, psfk=psfk, psfbeta=psfbeta, verbose=verbose, inbkg=inbkg,
                  invar=invar)
    apply = gain_apply and gain.value != 1.0

    def cleaned(data, inmask):
        crmask, clean = detect_cosmics(data + pssl, inmask, **params)
        clean = clean - pssl
        return crmask, clean * gain.value if apply else clean

    if kind in ("array", "masked"):  # ccdproc's tuple
        crmask, clean = cleaned(ccd, None)
        return clean, crmask

    frame, _ = as_frame(ccd, "ccd")
    gain = _check_units(frame.unit, gain, readnoise)
    crmask, clean = cleaned(frame.data, None if frame.mask is None else frame.mask != 0)
    sigma = frame.uncertainty
    if kind == "frame":  # a Frame keeps its dtype; CCDData gets ccdproc's (float64 × gain)
        clean = clean.astype(frame.dtype, copy=False)
    out = Frame(clean, frame.mask, None if sigma is None else sigma * gain.value if apply
                else sigma, frame.header, frame.unit, dtype=None)
    out.flag(crmask, MaskFlag.COSMIC_RAY)
    if gain_apply and frame.unit is not None:
        out.unit = frame.unit * gain.unit
    add_history(out.header, "cosmicray_lacosmic", get_backend(clean), sigclip=sigclip,
                sigfrac=sigfrac, objlim=objlim, gain=gain.value, readnoise=readnoise.value,
                satlevel=satlevel, niter=niter, sepmed=sepmed, cleantype=cleantype,
                fsmode=fsmode, ncosmic=int(crmask.sum()))
    return give_back(out, kind, ccd)
