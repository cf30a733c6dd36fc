"""Master calibrations: bias, dark and flat, each frame calibrated and then combined.

Built on :func:`gpucal.combine` (the combination and its rejection options are
its own, passed through) and :func:`gpucal.calibrate.ccd_process` (the
calibration of each input). Every master's header records IMAGETYP, NCOMBINE,
the exposure time where it matters, HISTORY and the robust statistics of
:func:`gpucal.robust.robust_stats`.
"""

from ._operands import exposure_seconds
from .calibrate import ccd_process
from .combine import combine_frame
from .frame import Frame
from .provenance import add_history
from .robust import add_robust_stats, robust_stats
from .sources import give_back, stack_input
from .stats import statistic

__all__ = ["make_master_bias", "make_master_dark", "make_master_flat"]

#: Combination defaults for masters: average with a 5σ median/MAD clip, the
#: recommendation of the ccdproc reduction guide (robust to cosmic rays, less noisy
#: than a median). Any ``combine`` keyword overrides them.
MASTER_COMBINE = dict(method="average", sigma_clip=True, sigma_clip_low_thresh=5,
                      sigma_clip_high_thresh=5, sigma_clip_func="median",
                      sigma_clip_dev_func="mad_std")


def _frames(frames, device, unit):
    """The frames to calibrate before combining, as a list of images; files are read."""
    form, frames = stack_input(frames)
    if form == "files":
        return [Frame.read(f, device=device, unit=unit) for f in frames]
    return list(frames)


def _finish(combined, imagetyp, output_file, overwrite):
    """The master with IMAGETYP and its statistics, written if asked, as a CCDData when the
    frames were CCDData, else a Frame (a master is its header as much as its data)."""
    master, kind, like = combined
    master.header["IMAGETYP"] = (imagetyp, "gpucal master calibration")
    add_robust_stats(master.header, robust_stats(master))
    if output_file is not None:
        master.write(output_file, overwrite=overwrite)
    return give_back(master, kind, like) if kind == "ccddata" else master


def _combine(frames, combine_kwargs, **fixed):
    kwargs = {**MASTER_COMBINE, **combine_kwargs, **fixed}
    return combine_frame(frames, **kwargs)


def make_master_bias(frames, *, output_file=None, overwrite=False, device=None, unit=None,
                     **combine_kwargs):
    """Combine bias frames into a master bias.

    Parameters
    ----------
    frames : sequence of Frames, CCDData, 2-D arrays or FITS paths, or a 3-D array
        Paths are combined band by band, within ``mem_limit``.
    output_file : str or os.PathLike, optional
        Also write the master there (atomically).
    overwrite : bool, default False
    device : {"auto", "cpu", "gpu"}, optional
        Where files are read to.
    unit : str or astropy Unit, optional
        Overrides the files' BUNIT.
    **combine_kwargs
        Any :func:`gpucal.combine` option; the defaults are
        :data:`MASTER_COMBINE` (average, 5σ clip about the median with MAD).

    Returns
    -------
    Frame (CCDData when the frames are CCDData)
        IMAGETYP ``'MASTER BIAS'``, NCOMBINE and the robust statistics in the header.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.masters import make_master_bias
    >>> rng = np.random.default_rng(0)
    >>> master = make_master_bias(rng.normal(300, 5, (9, 32, 32)))
    >>> master.header["IMAGETYP"], master.header["NCOMBINE"]
    ('MASTER BIAS', 9)
    >>> abs(master.header["QUANT500"] - 300) < 1
    True
    """
    return _finish(_combine(frames, combine_kwargs, device=device, unit=unit), "MASTER BIAS",
                   output_file, overwrite)


def make_master_dark(frames, *, bias=None, output_file=None, overwrite=False, device=None,
                     unit=None, **combine_kwargs):
    """Combine dark frames of one exposure time into a master dark, bias subtracted.

    Parameters
    ----------
    frames : sequence of Frames, CCDData or FITS paths
        With EXPTIME (or EXPOSURE) in their headers, all equal: darks of
        other exposures make other masters (hot pixels do not scale).
    bias : Frame, CCDData or 2-D array, optional
        Subtracted from each frame before combining.
    output_file, overwrite, device, unit, **combine_kwargs
        As for :func:`make_master_bias`.

    Returns
    -------
    Frame (CCDData when the frames are CCDData)
        IMAGETYP ``'MASTER DARK'`` and EXPTIME (seconds) in the header.

    Raises
    ------
    MissingKeywordError
        A frame without an exposure time.
    ValueError
        Frames of different exposure times.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal import Frame
    >>> from gpucal.masters import make_master_dark
    >>> rng = np.random.default_rng(1)
    >>> darks = [Frame(rng.normal(310, 5, (16, 16)), header={"EXPTIME": 300.0})
    ...          for _ in range(5)]
    >>> master = make_master_dark(darks, bias=np.full((16, 16), 300.0))
    >>> master.header["EXPTIME"], abs(master.header["QUANT500"] - 10) < 3
    (300.0, True)
    """
    frames = _frames(frames, device, unit)
    exposures = sorted({exposure_seconds(getattr(f, "header", None), what="dark")
                        for f in frames})
    if len(exposures) > 1:
        raise ValueError(f"darks of different exposure times {exposures} s: make one master "
                         "per exposure time")
    if bias is not None:
        frames = ccd_process(frames, master_bias=bias)
    combined = _combine(frames, combine_kwargs)
    combined[0].header["EXPTIME"] = (exposures[0], "[s] exposure time of the darks")
    return _finish(combined, "MASTER DARK", output_file, overwrite)


def make_master_flat(frames, *, bias=None, dark=None, normalize="mode", output_file=None,
                     overwrite=False, device=None, unit=None, **combine_kwargs):
    """Combine flat frames into a master flat normalised to 1.

    Each frame is bias- and dark-subtracted (the dark scaled by the ratio of
    exposure times, read from EXPTIME/EXPOSURE), divided by its own
    `normalize` statistic, and combined; the result is normalised again.

    Parameters
    ----------
    frames : sequence of Frames, CCDData or FITS paths
    bias, dark : Frame, CCDData or 2-D array, optional
        A dark needs exposure times in its header and the flats'.
    normalize : {"mode", "median", "mean"}, default "mode"
        Statistic of the finite, unmasked pixels (the mode is the histogram
        mode of :func:`gpucal.stats.mode`).
    output_file, overwrite, device, unit, **combine_kwargs
        As for :func:`make_master_bias`.

    Returns
    -------
    Frame (CCDData when the frames are CCDData)
        IMAGETYP ``'MASTER FLAT'``, NORMVAL (the combined flat's statistic
        before the final normalisation).

    Raises
    ------
    ValueError
        A frame whose statistic is not positive.

    Examples
    --------
    >>> import numpy as np
    >>> from gpucal.masters import make_master_flat
    >>> rng = np.random.default_rng(2)
    >>> pattern = np.linspace(0.9, 1.1, 32)[None, :] * np.ones((32, 1))
    >>> flats = [level * pattern + rng.normal(0, 1, (32, 32)) for level in (9e3, 1e4, 11e3)]
    >>> master = make_master_flat(flats, normalize="median")
    >>> round(float(np.median(master.data)), 6)
    1.0
    """
    if normalize not in ("mode", "median", "mean"):
        raise ValueError(f"normalize must be 'mode', 'median' or 'mean'; got {normalize!r}")
    if bias is not None or dark is not None:
        frames = ccd_process(_frames(frames, device, unit), master_bias=bias, dark_frame=dark,
                             dark_scale=dark is not None)
    combined = _combine(frames, combine_kwargs, scale=normalize, device=device, unit=unit)
    master = combined[0]
    norm = statistic(normalize, master.data, master.bool_mask)
    if not norm > 0:
        raise ValueError(f"the combined flat's {normalize} is {norm}; cannot normalise it")
    master.data = master.data / master.dtype.type(norm)
    master.uncertainty = master.uncertainty / master.dtype.type(norm)
    master.header["NORMVAL"] = (norm, f"{normalize} of the combined flat, divided out")
    add_history(master.header, "make_master_flat", master.backend, normalize=normalize)
    return _finish(combined, "MASTER FLAT", output_file, overwrite)
