"""Running a night's plan: the executor seam, the driver that records results, and reduce().

:func:`execute` runs a :class:`~gpucal.pipeline.plan.Plan` in waves — bias, dark and flat
masters, then masks, then science frames — handing each wave's tasks to an
executor, which calls :func:`gpucal.pipeline.tasks.run_task` on them where it likes and
gives back their records. Only the driver writes the results database, one
transaction per product, after the product's file is complete. So a run killed
at any point leaves finished products recorded, at most temporary files (swept
by the next run) and nothing half-written under a product's name; the next run
redoes exactly what is not finished.

Executors overlap tasks' reading, compute and writing (:mod:`gpucal.pipeline.stages`): each
runs :attr:`~gpucal.pipeline.stages.Stages.threads` tasks at once per process, of which its
``stages.compute`` compute at a time, while others read ahead and write.

A product is reused, not redone, when its record says 'ok', its file still has
the recorded checksum, its inputs and parameters are the task's, and every
master or mask it was made from is still the one recorded (by checksum).
"""

import errno
import os
import sqlite3
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

from ..backend import load_backend
from ..device import resolve_device
from ..errors import DamagedDatabaseError, DiskFullError
from ..progress import ProgressBar
from .config import CALIBRATIONS, InstrumentConfig, load_config
from .detector import complete
from .outdir import lock, sweep
from . import report as qa_report  # the module; `report` is execute's and reduce's flag
from .plan import make_plan
from .scan import scan
from .stages import Stages
from .results import (DB_NAME, Record, ResultsDB, attention, damaged, file_checksum, file_times,
                      now)
from .tasks import dependencies, embedded_record, raw_inputs, run_task, task_record

__all__ = ["SerialExecutor", "Summary", "ThreadExecutor", "execute", "plan_reduction", "reduce"]


class _Overlapping:
    """What the in-process executors share: `stages`, and a map over their threads."""

    def map(self, function, tasks):
        """Yield ``function(task)`` for every task, as they finish; `stages.threads` at once.

        When a task raises (a full disk), the tasks not started are cancelled, those under
        way finish and their records are yielded (a product written is recorded), then the
        error is raised. If the driver stops early, tasks not started are cancelled and those
        running finish before it goes on.
        """
        pool = ThreadPoolExecutor(self.stages.threads, thread_name_prefix="gpucal-task")
        futures = [pool.submit(function, task) for task in tasks]
        error = None
        try:
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                if future.exception() is not None:
                    if error is None:
                        error = future.exception()
                        for other in futures:
                            other.cancel()
                    continue
                yield future.result()
            if error is not None:
                raise error
        finally:
            pool.shutdown(cancel_futures=True)


class SerialExecutor(_Overlapping):
    """One task computing at a time in this process, the next one's raw frames read ahead
    and products written and hashed meanwhile (``--executor serial``; the GPU's default).

    An executor has a ``name`` and ``map(function, tasks)``, which yields
    ``function(task)`` for every task, in any order. The functions are pure
    (:func:`gpucal.pipeline.tasks.run_task` with its arguments bound, its `stages` those of
    the executor's ``stages`` attribute where it has one), so an executor may run them in
    other processes or on other machines that see OUT_DIR.

    Parameters
    ----------
    stages : Stages, optional
        Default one task computing (:class:`gpucal.pipeline.stages.Stages`), so no two
        tasks ever share a GPU; one reading ahead and
        :func:`~gpucal.pipeline.stages.default_writers` writing.
    """

    name = "serial"

    def __init__(self, stages=None):
        self.stages = stages or Stages(compute=1)
        if self.stages.compute != 1:
            raise ValueError(f"a serial executor computes one task at a time; got {stages}")


def default_executor(device):
    """Threads on the CPU (one task computing per CPU); one task computing at a time on the
    GPU, with reading and writing around it.

    Two tasks computing at once on one GPU gave, under the CuPy stand-in, GPU nights whose
    ccdmask masks differ from the CPU's and, now and then, garbage masters: the stand-in keeps
    CUDA's threadIdx, blockIdx, blockDim and gridDim as static globals of each compiled
    kernel, so two threads launching one kernel at once overwrite each other's (made
    thread_local in a copy, 164 nights of three tasks at once on it had no failure, against 5
    of 253 without). Two tasks at once on a real GPU stay unmeasured, so the GPU computes one
    task at a time, and the overlap comes from host threads reading and writing around it
    (``--executor threads`` asks for more).
    """
    return ThreadExecutor() if device == "cpu" else SerialExecutor()


class ThreadExecutor(_Overlapping):
    """Runs up to `threads` tasks' compute at once in this process's threads (the CPU
    default), with reading ahead and writing around them.

    A science frame's steps are mostly one-threaded (L.A.Cosmic works window by
    window), and NumPy, SciPy, the compiled filters and FITS I/O release the GIL,
    so a 2-core machine calibrates two frames at once at about 1.6x the rate of
    one. Results come back as tasks finish; the driver still records them alone.

    Parameters
    ----------
    threads : int, optional
        Tasks computing at once; default the CPUs this process may use. Each holds its
        frames (a master task: its whole stack) in memory.
    """

    name = "threads"

    def __init__(self, threads=None):
        if threads is not None and int(threads) < 1:
            raise ValueError(f"threads must be at least 1; got {threads}")
        self.threads = int(threads) if threads else load_backend("numpy").threads
        self.stages = Stages(compute=self.threads)


@dataclass
class Summary:
    """What a run did: counts, failures, time per stage (what ``gpucal reduce`` prints)."""

    out_dir: Path
    device: str
    executor: str
    frames: int = 0  # raw frames found by the scan
    skipped: list = field(default_factory=list)  # Records of unusable raw files
    made: Counter = field(default_factory=Counter)  # kind -> products made this run
    reused: int = 0  # products already up to date (adopted ones included)
    adopted: int = 0  # product files without a row, recorded from the record they carry
    failed: list = field(default_factory=list)  # Records of products that failed
    attention: dict = field(default_factory=dict)  # science output -> its reasons (text)
    notes: list = field(default_factory=list)  # said once per run: assumptions, measurements
    remade: dict = field(default_factory=dict)  # output -> why its earlier product was stale
    stage_seconds: dict = field(default_factory=dict)
    seconds: float = 0.0
    report: object = None  # the QA report written (gpucal.pipeline.report.Report), if any

    @property
    def flagged(self):
        """Science frames made with a missing or fallback calibration or a skipped step."""
        return len(self.attention)

    @property
    def products(self):
        """Products made this run."""
        return sum(self.made.values())

    def text(self):
        """The closing summary, as lines of text."""
        made = ", ".join(f"{n} {kind}" for kind, n in sorted(self.made.items())) or "none"
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in self.stage_seconds.items())
        adopted = f" ({self.adopted} recorded from their own records)" if self.adopted else ""
        lines = [f"{self.frames} raw frames, {len(self.skipped)} skipped; "
                 f"products made: {made}; up to date already: {self.reused}{adopted}",
                 f"science frames flagged (missing or fallback calibration, skipped step): "
                 f"{self.flagged}; failed: {len(self.failed)}",
                 f"time {self.seconds:.1f} s on the {self.device.upper()} "
                 f"({self.executor} executor): {stages}",
                 f"products in {self.out_dir}; table: gpucal list {self.out_dir}"]
        if self.report is not None:
            lines.append(self.report.text())
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  remade {path}: {why}" for path, why in sorted(self.remade.items())]
        lines += [f"  flagged {path}: {why}" for path, why in sorted(self.attention.items())]
        lines += [f"  skipped {r.inputs[0]}: {r.reason}" for r in self.skipped]
        lines += [f"  FAILED {r.path}: {r.reason}" for r in self.failed]
        return lines


def _unusable(plan):
    """Records of the raw files the plan cannot use: unreadable, or of no known kind."""
    reasons = [(s.path, s.reason) for s in plan.skipped]
    reasons += [(f.path, f"IMAGETYP {f.imagetyp!r} is not one of the configured kinds")
                for f in plan.unclassified if f.kind == "unknown"]
    return [Record("raw" + Path(path).as_posix(), "raw", status="skipped", reason=reason,
                   inputs=(path,)) for path, reason in sorted(reasons)]


def _notes(plan):
    """What the run assumed, said once: raw units, how nights were told."""
    notes = []
    assumed = sum(f.unit_source.startswith("assumed") for f in plan.frames)
    if assumed:
        notes.append(f"{assumed} of {len(plan.frames)} raw frames have no BUNIT: taken as ADU")
    by_path = sum(f.kind_source == "path" for f in plan.frames)
    if by_path:
        notes.append(f"{by_path} raw frames have no IMAGETYP: their kind is taken from their "
                     "file or folder names")
    for source, n in Counter(f.night_source for f in plan.frames if f.mjd is not None).items():
        if source.startswith("noon UT"):
            notes.append(f"nights of {n} frames run from noon UT to noon UT: no site longitude "
                         "in their headers or the configuration (site_longitude)")
    return notes


def _stale(db, task):
    """Why the product of `task` must be made ('' when the recorded one is up to date).

    Up to date: recorded 'ok', its file still has the recorded checksum, the same inputs and
    parameters, every raw input unchanged (the same size and mtime; where either differs,
    the same content: a touched file is re-hashed, not remade), and every master or mask it
    was made from still the one recorded (by checksum).
    """
    rec = db.get(task.output)
    if rec is None:
        return "new"
    if rec.status != "ok":
        return f"it {rec.status} before"
    if rec.work() != task_record(task).work():
        return "its inputs or parameters changed"
    if not db.done(task.output):
        return "its file is missing or changed on disk"
    stamps = dict(rec.stamps)
    for path in raw_inputs(task):
        why = _raw_changed(path, stamps.get(path))
        if why:
            return why
        stamps[path] = [*file_times(path), stamps[path][2]]
    if stamps != rec.stamps:  # touched but unchanged: remember the new times
        db.record(replace(rec, stamps=stamps))
    used = {c["path"]: c.get("checksum") for c in rec.calibrations.values()}
    if set(used) != dependencies(task):
        return "a master or mask it needs was missing when it was made"
    for path, checksum in used.items():
        current = db.get(path)
        if current is None or current.status != "ok" or current.checksum != checksum:
            return f"its calibration {path} changed"
    return ""


def _raw_changed(path, stamp):
    """Why the raw file at `path` is not what `stamp` ([size, mtime_ns, checksum]) recorded."""
    name = os.path.basename(path)
    if stamp is None:
        return f"no record of what its raw frame {name} was"
    try:
        if file_times(path) == stamp[:2]:
            return ""
        return "" if file_checksum(path) == stamp[2] else f"its raw frame {name} changed"
    except OSError:
        return f"its raw frame {name} is gone or unreadable"


def _with_checksums(db, rec):
    """The record with the checksum of each master or mask it was made from."""
    calibrations = {kind: dict(c, checksum=db.get(c["path"]).checksum)
                    for kind, c in rec.calibrations.items()}
    return replace(rec, calibrations=calibrations)


def _adopt(db, task, out_dir, made):
    """Record the product of `task` from the record it carries, without making it again.

    For a product file without a row (its run was killed between the rename and the
    commit, or the database was rebuilt): only when its record is of this very task, its
    raw inputs are unchanged and none of its masters or masks was made anew in this run.
    """
    path = out_dir / task.output
    rec = embedded_record(path) if path.is_file() else None
    if rec is None or rec.status != "ok" or rec.work() != task_record(task).work():
        return False
    if dependencies(task) & made or {c["path"] for c in rec.calibrations.values()} != \
            dependencies(task) or any(_raw_changed(p, s) for p, s in rec.stamps.items()):
        return False
    if not all((c := db.get(dep)) is not None and c.status == "ok"
               for dep in dependencies(task)):
        return False
    db.record(_with_checksums(db, replace(rec, checksum=file_checksum(path), created=now())))
    return True


def _record(db, rec):
    """db.record, a full disk said as one (SQLite says 'database or disk is full')."""
    try:
        db.record(rec)
    except sqlite3.OperationalError as exc:
        if "full" in str(exc):
            raise DiskFullError(errno.ENOSPC, f"{exc} recording {rec.path}") from None
        raise


def _run_wave(db, executor, function, tasks, force, summary, bar, made):
    todo = []
    for task in tasks:
        why = "--force" if force else _stale(db, task)
        if why == "new" and _adopt(db, task, Path(db.out_dir), made):
            summary.adopted += 1
            why = ""
        if why:
            todo.append(task)
            if why not in ("new", "--force"):
                summary.remade[task.output] = why
    summary.reused += len(tasks) - len(todo)
    if bar:
        bar.step(len(tasks) - len(todo))
    for rec in executor.map(function, todo):
        if rec.status == "ok":
            rec = _with_checksums(db, rec)
            summary.made[rec.kind] += 1
            made.add(rec.path)
        else:
            summary.failed.append(rec)
        _record(db, rec)
        if bar:
            bar.step()


def _open(out_dir, rebuild):
    """The results database; with `rebuild`, a damaged one is kept aside and a new one made."""
    try:
        return ResultsDB(out_dir)
    except DamagedDatabaseError:
        if not rebuild:
            raise
    path = Path(out_dir) / DB_NAME
    aside = path.with_name(f"{DB_NAME}.damaged-{time.strftime('%Y%m%dT%H%M%S')}")
    path.rename(aside)
    return ResultsDB(out_dir)


def execute(plan, out_dir, *, executor=None, device=None, force=False, progress=False,
            rebuild_db=False, report=False):
    """Run a plan: make its masters, masks and science frames in OUT_DIR and record them.

    Parameters
    ----------
    plan : Plan
        From :func:`gpucal.pipeline.plan.make_plan`.
    out_dir : str or path-like
        Created if missing; holds the products and the results database
        (``gpucal.sqlite``). One run at a time: a second one raises OutputBusyError.
    executor : object with ``name`` and ``map(function, tasks)``, optional
        Default :func:`default_executor`: :class:`ThreadExecutor` with a task computing per
        CPU on the CPU, :class:`SerialExecutor` (one computing) on the GPU. Its ``stages``
        (:class:`~gpucal.pipeline.stages.Stages`), where it has them, gate the tasks.
    device : {"auto", "cpu", "gpu"}, optional
        Default ``GPUCAL_DEVICE``, else auto.
    force : bool, default False
        Redo every product, even those up to date.
    progress : bool or file, default False
        A progress bar per stage on standard error (True) or on the given stream.
    rebuild_db : bool, default False
        See :func:`reduce`.
    report : bool, default False
        See :func:`reduce`.

    Returns
    -------
    Summary

    Raises
    ------
    OutputBusyError
        If another run is writing `out_dir`.
    DamagedDatabaseError
        If the results database is damaged (and `rebuild_db` is False).
    DiskFullError
        If the disk fills: the run stops; every product made before is complete and recorded.
    """
    device = resolve_device(device)
    executor = executor or default_executor(device)
    out_dir = Path(out_dir)
    summary = Summary(out_dir, device, executor.name)
    started = time.monotonic()
    function = partial(run_task, out_dir=out_dir, config=plan.config, device=device,
                       stages=getattr(executor, "stages", None))
    with lock(out_dir), _open(out_dir, rebuild_db) as db:
        try:
            plan = _execute(plan, db, executor, function, force, progress, summary, device)
        except sqlite3.DatabaseError as exc:  # damage found past the first page
            if "full" in str(exc):
                raise DiskFullError(errno.ENOSPC, str(exc)) from None
            raise damaged(db.path, exc) from None
        if report:
            _report(out_dir, summary, progress)
    summary.seconds = time.monotonic() - started
    return summary


def _report(out_dir, summary, progress):
    """Write the QA report under the run's lock; what goes wrong is a note, never a failure."""
    started = time.monotonic()
    try:
        summary.report = qa_report.write_report(out_dir, progress=progress, lock_output=False)
    except Exception as exc:  # noqa: BLE001: the night is reduced whatever the report does
        summary.notes.append(f"the report was not written: {type(exc).__name__}: {exc}")
    summary.stage_seconds["report"] = time.monotonic() - started


def _execute(plan, db, executor, function, force, progress, summary, device):
    """execute()'s work in an open, locked database; the completed plan."""
    out_dir, made = Path(db.out_dir), set()
    sweep(out_dir)
    for rec in _unusable(plan):
        db.record(rec)
        summary.skipped.append(rec)
    measured = time.monotonic()
    plan, notes = complete(plan, device)
    summary.notes = _notes(plan) + [f"measured {n}" for n in notes]
    summary.stage_seconds["detector"] = time.monotonic() - measured
    stages = [("masters", [[m for m in plan.masters if m.kind == kind]
                           for kind in CALIBRATIONS]),
              ("masks", [plan.masks]), ("science", [plan.science])]
    for stage, waves in stages:
        stage_started = time.monotonic()
        bar = None
        if progress and any(waves):
            bar = ProgressBar(stage, stream=None if progress is True else progress)
            bar.start(sum(map(len, waves)))
        for tasks in waves:
            _run_wave(db, executor, function, tasks, force, summary, bar, made)
        if bar:
            bar.finish()
        summary.stage_seconds[stage] = time.monotonic() - stage_started
    for task in plan.science:  # made now or before: every one that needs a look
        rec = db.get(task.output)
        why = attention(rec.flags) if rec is not None and rec.status == "ok" else ""
        if why:
            summary.attention[task.output] = why
    sweep(out_dir)  # what tasks lost with a worker left behind
    return plan


def plan_reduction(raw_dir, out_dir=None, *, config=None, nights=None):
    """Scan RAW_DIR and plan its reduction: :func:`gpucal.pipeline.plan.scan` + ``make_plan``.

    Parameters
    ----------
    raw_dir : str or path-like
    out_dir : str or path-like, optional
        Checked not to lie inside `raw_dir` (products would be scanned as raw frames).
    config : InstrumentConfig, str or path-like, optional
        A configuration, or a TOML file for :func:`gpucal.pipeline.plan.load_config`.
    nights : str, optional
        fnmatch glob on night names.

    Returns
    -------
    (Plan, int)
        The plan and the number of raw frames found.
    """
    if not isinstance(config, InstrumentConfig):
        config = load_config(config)
    if out_dir is not None:  # resolved: a symlink cannot hide one inside the other
        raw, out = Path(raw_dir).resolve(), Path(out_dir).resolve()
        if out == raw:
            raise ValueError(f"the output directory {out_dir} is the raw directory; raw "
                             "frames are never written: choose another output directory")
        if raw in out.parents:
            raise ValueError(f"the output directory {out_dir} is inside the raw directory "
                             f"{raw_dir}; its products would be read as raw frames")
        if out in raw.parents:
            raise ValueError(f"the raw directory {raw_dir} is inside the output directory "
                             f"{out_dir}; products could overwrite raw frames: choose an "
                             "output directory outside it")
    frames, skipped = scan(raw_dir, nights=nights, config=config)
    return make_plan(frames, config, skipped), len(frames)


def _executor(executor, client, workers, device):
    """(executor object or None for execute()'s default, whether reduce() must close it)
    for reduce's arguments (`device` resolved)."""
    if executor == "auto" and workers is None and client is None:
        return None, False
    if executor == "auto":
        executor = "dask" if client is not None else "threads"
    if executor in ("serial", "threads") and client is not None:
        raise ValueError("client is for executor='dask'")
    if executor == "serial":
        if workers is not None:
            raise ValueError("workers is for executor='threads' or 'dask'")
        return SerialExecutor(), False
    if executor == "threads":
        return ThreadExecutor(workers), False
    if executor == "dask":
        from .dask_executor import DaskExecutor

        return DaskExecutor(client, workers=workers, device=device), True
    if isinstance(executor, str):
        raise ValueError(f"executor must be 'auto', 'serial', 'threads', 'dask' or an "
                         f"executor object; got {executor!r}")
    return executor, False


def reduce(raw_dir, out_dir, *, config=None, device=None, nights=None, force=False,
           progress=False, executor="auto", client=None, workers=None, rebuild_db=False,
           report=True):
    """Reduce every night under RAW_DIR into OUT_DIR: masters, masks, calibrated science.

    Scans the FITS headers (:func:`gpucal.pipeline.plan.scan`), plans the reduction
    (:func:`gpucal.pipeline.plan.make_plan`) and runs it (:func:`execute`). Each
    science frame is overscan-subtracted, trimmed, gain-corrected, bias-, dark-
    and flat-corrected with the closest masters of its signature, masked
    (hot pixels, bad pixels, saturation), cleaned of cosmic rays (L.A.Cosmic)
    and written with MASK, UNCERT, the robust statistics, ``CALBIAS``...,
    ``IERR_*``, ``DELTA_MJD_*`` and ``QCFLAGS`` in its header. The results
    database ``OUT_DIR/gpucal.sqlite`` gets one row per product (``gpucal list``).

    Parameters
    ----------
    raw_dir, out_dir : str or path-like
    config : InstrumentConfig, str or path-like, optional
        The instrument configuration or its TOML file; default
        :func:`gpucal.pipeline.plan.load_config()`.
    device : {"auto", "cpu", "gpu"}, optional
    nights : str, optional
        fnmatch glob on night names, e.g. ``"2026-11-*"``.
    force : bool, default False
        Redo products that are up to date.
    progress : bool or file, default False
    executor : {"auto", "serial", "threads", "dask"} or executor object, default "auto"
        "serial": one task computing at a time; "threads": `workers` tasks at a time in this
        process (:class:`ThreadExecutor`, default one per CPU); "auto": "dask" with
        a `client`, "threads" on the CPU or with `workers`, else "serial"; "dask": a
        :class:`gpucal.pipeline.dask_executor.DaskExecutor` on `client`, or on a new
        LocalCluster of `workers` processes (closed at the end); an object: see
        :func:`execute`. The products and records are the same with every executor.
    client : distributed.Client, optional
    workers : int, optional
    rebuild_db : bool, default False
        If OUT_DIR's database is damaged, keep it aside (``gpucal.sqlite.damaged-<time>``)
        and rebuild it from the records the products carry in their headers; products
        whose inputs and parameters are unchanged are recorded without being remade.
    report : bool, default True
        Write the QA report ``OUT_DIR/report.html`` at the end
        (:func:`gpucal.pipeline.report.write_report`; pictures where matplotlib is
        installed). A report that cannot be written is a note in the summary, never an error.

    Returns
    -------
    Summary
        ``stage_seconds`` includes the scan.

    Raises
    ------
    FileNotFoundError, NotADirectoryError, ValueError
        A missing raw directory, one without FITS files, an OUT_DIR inside it, a bad
        configuration.
    OutputBusyError
        Another run is writing OUT_DIR.
    ImportError
        ``executor="dask"`` without dask.distributed installed.

    Examples
    --------
    >>> from gpucal import reduce
    >>> from gpucal.simulate import simulate_night
    >>> _ = simulate_night("night/raw", shape=(64, 64), overscan=8, n_bias=3, n_dark=2,
    ...                    n_flat=3, n_science=1)
    >>> summary = reduce("night/raw", "night/out", device="cpu")
    >>> sorted(summary.made.items()), summary.failed
    ([('bias', 1), ('ccdmask', 2), ('dark', 2), ('flat', 2), ('hot_pixels', 2), ('science', 2)], [])
    >>> reduce("night/raw", "night/out", device="cpu").reused
    11
    """
    started = time.monotonic()
    plan, frames = plan_reduction(raw_dir, out_dir, config=config, nights=nights)
    scanned = time.monotonic() - started
    device = resolve_device(device)
    executor, owned = _executor(executor, client, workers, device)
    try:
        summary = execute(plan, out_dir, executor=executor, device=device, force=force,
                          progress=progress, rebuild_db=rebuild_db, report=report)
    finally:
        if owned:
            executor.close()
    summary.frames = frames
    summary.stage_seconds = {"scan": scanned, **summary.stage_seconds}
    summary.seconds += scanned
    return summary

