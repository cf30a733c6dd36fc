"""The tasks of a night's reduction, each a pure function of (task, out_dir, config, device).

:func:`run_task` makes the product of one :mod:`gpucal.pipeline.plan` task — a master
calibration, a mask or a calibrated science frame — writes it under OUT_DIR
atomically and returns its :class:`~gpucal.pipeline.results.Record`. It reads only the
task's raw inputs and the masters the task names (products of earlier tasks in
OUT_DIR), never writes the database and never raises for a bad input: a
failure comes back as a record with status 'failed' and the reason. So any
executor (serial, Dask) can run tasks where it likes and the driver alone
records the results.

A task runs in three stages, gated per process by :class:`~gpucal.pipeline.stages.Stages` so
that an executor overlaps them across tasks: reading its raw frames into host memory (and
hashing them, for the record), computing its product on the device (every upload,
computation and download inside one compute turn), and writing the product from host memory
(hashed as written).

Every raw frame is first overscan-subtracted (BIASSEC, median per row), trimmed
(TRIMSEC) and gain-corrected to electrons (GAIN), where its header has those
keywords (names from the instrument configuration). Pixels at or above the
configuration's ``saturation`` in the raw frame are flagged SATURATED.
"""

import errno
import functools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from astropy import units as u
from astropy.io import fits

from ..backend import to_device
from ..badpixels import ccdmask
from ..calibrate import ccd_process
from ..cosmics import cosmicray_lacosmic
from ..errors import DiskFullError
from ..flags import MaskFlag
from ..flags import count as count_flagged
from ..frame import Frame
from ..io import os_error
from ..masks import hot_pixel_mask, read_mask, write_mask
from ..masters import make_master_bias, make_master_dark, make_master_flat
from .config import CALIBRATIONS
from .headers import header_number
from .plan import MasterTask, MaskTask, ScienceTask
from .results import Record, file_checksum, file_times
from .stages import Stages, timed_read
from ..robust import KEYS, add_robust_stats, robust_stats

__all__ = ["RECORD_CARD", "dependencies", "embedded_record", "inside", "run_task", "task_record"]

#: The header card where every product carries its own database record (JSON), so that a
#: damaged database can be rebuilt from the products and a product whose row was lost (a run
#: killed between the rename and the commit) is recognised instead of remade.
RECORD_CARD = "GPUCALRC"
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over the size limit
_MASTER = {"bias": make_master_bias, "dark": make_master_dark, "flat": make_master_flat}
_MASK = {"ccdmask": (MaskFlag.BAD_PIXEL, "bad pixels and columns of the master flat", "flat"),
         "hot_pixels": (MaskFlag.HOT_PIXEL, "hot pixels of the master dark", "dark")}


class _Raw:
    """A raw frame for calibration on `device` (given read on the host, or its path), with
    its unit, e⁻/ADU and read noise as planned."""

    def __init__(self, frame, readout, config, device):
        if not isinstance(frame, Frame):
            frame = Frame.read(frame, device="cpu", unit=readout.unit)
        self.frame = frame.to_device(device)
        self.readout = readout
        self.gain = readout.gain.value if readout.unit == "adu" else None  # e-: no gain step
        self.readnoise = readout.readnoise.value
        self.exptime = readout.exptime
        header, keys = self.frame.header, config.keywords
        self.sections = {step: header.get(keys[key]) for step, key in
                         (("oscan", "biassec"), ("trim", "trimsec"))}
        self.flags = {"NO_GAIN": readout.gain.value is None,
                      "NO_RDNOISE": self.readnoise is None}
        self.saturated = 0
        if config.saturation is not None:
            hot = self.frame.data >= self.frame.dtype.type(config.saturation)
            self.saturated = int(hot.sum())
            if self.saturated:
                self.frame.flag(hot, MaskFlag.SATURATED)

    def calibrate(self, *, error=False, gain=True, **calibrations):
        """The frame overscan-subtracted, trimmed, gain-corrected (unless `gain` is False),
        then `calibrations` applied."""
        steps = {k: v for k, v in self.sections.items() if isinstance(v, str) and v.strip()}
        if gain and self.gain is not None:
            steps["gain"] = self.gain * u.electron / u.adu
        if error:
            steps.update(error=True, readnoise=self.readnoise)  # in the data's unit
        out = ccd_process(self.frame, **steps, **calibrations)
        if self.exptime is not None:  # under the name the masters read
            out.header["EXPTIME"] = self.exptime
        return out


def provenance(header, readout):
    """Cards saying which unit, e⁻/ADU and read noise a product was made with, and whence."""
    # Sources are free text: no comment beside them, so that a long one is not cut.
    header["UNITSRC"] = readout.unit_source or f"raw {readout.unit}"
    for name, value, unit in (("GAIN", readout.gain, "e-/ADU"),
                              ("RDN", readout.readnoise, "e-")):
        if value.value is not None:
            header[f"{name}USED"] = (value.value, f"{unit} used, source {name}SRC")
            if value.error is not None:
                header[f"{name}ERR"] = (value.error, f"{unit}, uncertainty of {name}USED")
        header[f"{name}SRC"] = value.source


@functools.lru_cache(maxsize=8)
def _cached(path, stamp, device, what):
    """A master Frame or mask bits, read once per process while the file is unchanged."""
    if what == "mask":
        return to_device(read_mask(path), device)
    return Frame.read(path, device=device)


def _product(path, device, what="frame"):
    """A product of an earlier task (a master or a mask), from the per-process cache.

    A night's science frames share a few masters: each process (the driver, or a Dask
    worker) reads each master once, and on the GPU keeps it in device memory. Steps never
    modify their inputs, so sharing the Frame is safe; a rewritten file has a new stamp.
    """
    st = os.stat(path)
    return _cached(os.fspath(path), (st.st_mtime_ns, st.st_size, st.st_ino), device, what)


def _load(out_dir, choice, device):
    """The master of a Choice, or None when the task chose none or it was not made."""
    if choice is None:
        return None
    path = out_dir / choice.output
    return _product(path, device) if path.is_file() else None


def _dark_terms(dark, choice, exptime, flags):
    """ccd_process's dark arguments: scaled by exposure where the plan says so and it can be."""
    if dark is None:
        return {}
    terms = {"dark_frame": dark}
    if choice.scale:
        dark_exposure = header_number([dark.header], ("EXPTIME",))
        if exptime is None or not dark_exposure:
            flags["DARK_UNSCALED"] = True  # the frame's or the dark's exposure is unknown
        else:
            terms.update(dark_scale=True, dark_exposure=dark_exposure, data_exposure=exptime)
    return terms


def _choices(task):
    """{kind: Choice or None}: the masters a MasterTask or ScienceTask chose."""
    if isinstance(task, MasterTask):
        return task.calibrations
    return {kind: getattr(task, kind) for kind in CALIBRATIONS}


def _calibrations(task, out_dir, device, flags):
    """{kind: master Frame or None} for a task's chosen calibrations; a chosen master that
    is missing (its task failed) counts as none: IERR 2 and a <KIND>_MISSING flag."""
    choices = _choices(task)
    masters = {}
    for kind, choice in choices.items():
        masters[kind] = _load(out_dir, choice, device)
        if choice is not None and masters[kind] is None:
            flags[f"IERR_{kind.upper()}"] = 2
            flags[f"{kind.upper()}_MISSING"] = True
    return choices, masters


def _calibration_record(choices, masters):
    return {kind: {"path": c.output, "delta_mjd": c.delta_mjd, "ierr": c.ierr, "scale": c.scale}
            for kind, c in choices.items() if c is not None and masters[kind] is not None}


def _header_flags(header, flags, calibrations):
    for kind, used in calibrations.items():
        header[f"CAL{kind.upper()}"] = used["path"]  # master used (too long for a comment)
    for key, value in flags.items():
        if key.startswith(("IERR_", "DELTA_MJD_")) and value is not None:
            header[f"HIERARCH {key}"] = value  # long names: HIERARCH, without a warning
    notes = sorted(k for k, v in flags.items() if v is True)
    if notes:
        text = ",".join(notes)  # the comment only where the card has room (no warning)
        header["QCFLAGS"] = (text, "gpucal quality flags") if len(text) <= 42 else text


def inside(out_dir, output):
    """Where OUT_DIR/output really is (symbolic links resolved), made sure to be in OUT_DIR.

    Raises
    ------
    ValueError
        If a symbolic link on the way leads outside `out_dir`.
    """
    out_dir = Path(out_dir)
    target = out_dir / output
    where = target.parent.resolve() / target.name  # before any folder is made
    if not where.is_relative_to(out_dir.resolve()):
        raise ValueError(f"{output} would be written outside {out_dir} (at {where}, through "
                         "a symbolic link); nothing was written")
    return where


def _write(out_dir, output, save, raws=()):
    """`save(path)` the product at OUT_DIR/output (its folders made); its checksum (what
    `save` returns: computed as the bytes were written, never by reading the file again).

    Raw frames are never written: the product must land inside OUT_DIR (no symlinked folder
    leading elsewhere) and must not be one of the task's raw inputs.
    """
    target, where = out_dir / output, inside(out_dir, output)
    if where.exists() and any(os.path.samefile(where, raw) for raw in raws):
        raise ValueError(f"{output} is the raw frame {where}; raw frames are never written")
    target.parent.mkdir(parents=True, exist_ok=True)
    return save(target)  # the checksum, hashed as written


def _master(task, raw_frames, out_dir, config, device):
    flags = dict(task.flags)
    choices, masters = _calibrations(task, out_dir, device, flags)
    frames, saturated = [], 0
    for readout in task.readout:
        raw = _Raw(raw_frames.pop(0), readout, config, device)  # each raw frame freed as used
        if raw.flags["NO_GAIN"]:
            flags["NO_GAIN"] = True
        saturated += raw.saturated
        terms = {} if masters.get("bias") is None else {"master_bias": masters["bias"]}
        if task.kind == "flat":
            terms.update(_dark_terms(masters["dark"], choices["dark"], raw.exptime, flags))
        frames.append(raw.calibrate(**terms))
    master = _MASTER[task.kind](frames, **task.parameters)
    calibrations = _calibration_record(choices, masters)
    _header_flags(master.header, flags, calibrations)
    provenance(master.header, task.readout[0])
    stats = ({k: master.header[k] for k in KEYS} | {"NSATURATED": saturated}
             | _readout_stats(task.readout[0]))
    return master, calibrations, stats, flags


def _mask(task, raw_frames, out_dir, config, device):
    flag, what, _ = _MASK[task.kind]
    if not (out_dir / task.master).is_file():
        raise FileNotFoundError(f"its master {task.master} was not made")
    master = _product(out_dir / task.master, device)  # the science frames read it again
    mask = (ccdmask if task.kind == "ccdmask" else hot_pixel_mask)(master, **task.parameters)
    return mask, flag, what, {"NMASKED": int(mask.sum()), "NPOINTS": int(mask.size)}


def _science(task, raw_frames, out_dir, config, device):
    flags = dict(task.flags, **{f: True for f in task.frame_flags})
    choices, masters = _calibrations(task, out_dir, device, flags)
    raw = _Raw(raw_frames.pop(), task.readout, config, device)
    flags.update((k, True) for k, v in raw.flags.items() if v)
    terms = {"master_bias": masters["bias"], "master_flat": masters["flat"],
             **_dark_terms(masters["dark"], choices["dark"], task.exptime, flags)}
    frame = raw.calibrate(error=raw.readnoise is not None,
                          **{k: v for k, v in terms.items() if v is not None})
    masks = {}
    for name, kind in task.masks:
        path = out_dir / name
        if not path.is_file():  # its task failed
            flags["MASK_MISSING"] = True
            continue
        bits = _product(path, device, "mask")
        if bits.shape != frame.shape:
            raise ValueError(f"mask {name} is {bits.shape}, the calibrated frame {frame.shape}")
        frame.mask = bits.copy() if frame.mask is None else frame.mask | bits  # bits: shared
        masks[kind] = {"path": name}
    cosmics = dict(task.parameters["cosmics"])
    ncosmic = None
    if cosmics.pop("enabled", True):
        if raw.readnoise is None:
            flags["NO_COSMICS"] = True  # L.A.Cosmic needs the read noise
        else:  # the data and read noise are in electrons (both in ADU with NO_GAIN): gain 1
            frame = cosmicray_lacosmic(frame, gain=1.0, readnoise=raw.readnoise,
                                       gain_apply=False, **cosmics)
            ncosmic = count_flagged(frame.mask, MaskFlag.COSMIC_RAY)
            frame.header["NCOSMIC"] = (ncosmic, "pixels flagged as cosmic rays")
    stats = robust_stats(frame)
    add_robust_stats(frame.header, stats)
    calibrations = _calibration_record(choices, masters)
    _header_flags(frame.header, flags, calibrations)
    provenance(frame.header, task.readout)
    calibrations.update(masks)
    stats.update(_readout_stats(task.readout))
    stats.update(NSATURATED=raw.saturated, NCOSMIC=ncosmic,
                 NMASKED=int((frame.mask != 0).sum()) if frame.mask is not None else 0)
    return frame, calibrations, stats, flags


def dependencies(task):
    """The OUT_DIR paths of the products `task` reads: chosen masters, masks, a mask's master.

    A product is up to date only while these are what it was made from (the record's
    ``calibrations`` list them, each with the checksum the driver saw).
    """
    if isinstance(task, MaskTask):
        return {task.master}
    masks = (name for name, _ in task.masks) if isinstance(task, ScienceTask) else ()
    return {c.output for c in _choices(task).values() if c is not None} | set(masks)


def _readout_stats(readout):
    """The values a product was made with, as the database's statistics (gpucal list -k)."""
    return {"BUNIT_RAW": readout.unit, "GAIN": readout.gain.value,
            "GAIN_ERR": readout.gain.error, "GAINSRC": readout.gain.source,
            "RDNOISE": readout.readnoise.value, "RDNOISE_ERR": readout.readnoise.error,
            "RDNSRC": readout.readnoise.source}


def _parameters(task):
    if isinstance(task, MaskTask):
        return task.parameters
    if isinstance(task, MasterTask):
        return {"combine": task.parameters, "readout": [r.record() for r in task.readout]}
    return {**task.parameters, "readout": task.readout.record()}


def raw_inputs(task):
    """The raw files a task reads: a master's frames, a science frame; none for a mask."""
    if isinstance(task, MaskTask):
        return ()
    return task.inputs if isinstance(task, MasterTask) else (task.path,)


def _readouts(task):
    """The planned readout of each raw input of a task (none for a mask)."""
    if isinstance(task, MaskTask):
        return ()
    return task.readout if isinstance(task, MasterTask) else (task.readout,)


def _read(task):
    """The reading stage: {raw input: [size, mtime_ns, SHA-256]} and the raw frames, on the
    host; the files are hashed in a second thread while they are read (hashlib and astropy's
    reading release the GIL). Sizes and times come first: a change of a file while it is
    read shows next time."""
    raws = raw_inputs(task)
    times = {path: file_times(path) for path in raws}
    with ThreadPoolExecutor(1, thread_name_prefix="gpucal-stamp") as hasher:
        sums = [hasher.submit(file_checksum, path) for path in raws]
        frames = [Frame.read(path, device="cpu", unit=readout.unit)
                  for path, readout in zip(raws, _readouts(task))]
        stamps = {path: [*times[path], checksum.result()] for path, checksum in zip(raws, sums)}
    return stamps, frames


def _raw_bytes(task):
    """The size of a task's raw files, what its reading holds of the read-ahead budget (a
    file that cannot be read counts nothing: reading it says why)."""
    total = 0
    for path in raw_inputs(task):
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return total


def task_record(task, **fields):
    """The Record of `task` with `fields` (status, stats...) filled in."""
    if isinstance(task, MaskTask):
        base = dict(kind=task.kind, night=task.night, inputs=(task.master,))
    else:
        base = dict(kind="science" if isinstance(task, ScienceTask) else task.kind,
                    night=task.night, signature=dict(task.signature), mjd=task.mjd,
                    exptime=task.exptime, inputs=raw_inputs(task))
    return Record(task.output, parameters=_parameters(task), **base, **fields)


def run_task(task, out_dir, config, device="cpu", stages=None):
    """Make the product of one plan task under `out_dir`; its Record (status 'failed' with
    the reason if it could not be made).

    Parameters
    ----------
    task : MasterTask, MaskTask or ScienceTask
    out_dir : str or path-like
        Where products go (the task's ``output`` is relative to it) and masters are read.
    config : InstrumentConfig
        Header keywords (gain, read noise, sections, exposure) and the saturation level.
    device : {"cpu", "gpu"}
    stages : Stages, optional
        This process's gates on reading, compute and writing (default: one task computing
        at a time); called from several threads, tasks overlap within them.

    Returns
    -------
    Record

    Raises
    ------
    DiskFullError
        When the product cannot be written for want of space: every other task would fail
        alike, so the night stops.
    """
    out_dir = Path(out_dir)
    stages = stages or _default_stages()
    try:
        with stages.reading(_raw_bytes(task)):
            with timed_read():
                stamps, raw_frames = _read(task)
            with stages.computing():
                record, save = _compute(task, raw_frames, stamps, out_dir, config, device)
        with stages.writing():
            checksum = _write(out_dir, task.output, save, raw_inputs(task))
        return replace(record, checksum=checksum)
    except Exception as exc:  # a task never takes the night down: the reason is recorded
        cause = os_error(exc)
        if cause is not None and cause.errno in _FULL:  # but a full disk does: all would fail
            raise DiskFullError(cause.errno, cause.strerror, cause.filename) from None
        reason = f"{type(exc).__name__}: {exc}"
        return task_record(task, status="failed", reason=reason.replace(os.linesep, " "))


@functools.lru_cache(maxsize=1)
def _default_stages():
    """One task computing at a time: the same gates for every call of this process."""
    return Stages(compute=1)


def _compute(task, raw_frames, stamps, out_dir, config, device):
    """The compute stage: the task's Record (without checksum) and ``save(path)``, which
    writes its product, already on the host, and returns the file's SHA-256."""
    if isinstance(task, MaskTask):
        mask, flag, what, stats = _mask(task, raw_frames, out_dir, config, device)
        mask = to_device(mask, "cpu")
        header = fits.Header()
        header["MASKTYPE"] = (task.kind, what)
        header["MASTER"] = task.master  # the master the mask was made from
        record = task_record(task, stats=stats,
                             calibrations={_MASK[task.kind][2]: {"path": task.master}})
        header[RECORD_CARD] = _carried(record)
        compress = "none" if config.compress == "none" else "mask"
        return record, lambda target: write_mask(target, mask, flag=flag, header=header,
                                                 overwrite=True, compress=compress)
    make = _master if isinstance(task, MasterTask) else _science
    product, calibrations, stats, flags = make(task, raw_frames, out_dir, config, device)
    product = product.to_device("cpu")
    record = task_record(task, calibrations=calibrations, stats=stats, flags=flags,
                         stamps=stamps)
    product.header[RECORD_CARD] = _carried(record)
    return record, lambda target: product.write(target, overwrite=True,
                                                compress=config.compress)


def _carried(record):
    """The record as the product carries it: without its creation time, so that the same
    task makes the same bytes on every run and executor."""
    return replace(record, created="").to_json()


def embedded_record(path):
    """The Record a product carries in its header (:data:`RECORD_CARD`), or None."""
    try:
        text = fits.getval(path, RECORD_CARD)
    except (OSError, KeyError, ValueError):
        return None
    try:
        return Record.from_json(text)
    except (ValueError, TypeError):
        return None
