"""The QA report of ``gpucal reduce``: pages to look at before trusting a night.

:func:`write_report` reads OUT_DIR's results database and products (it recomputes nothing)
and writes ``OUT_DIR/report.html``: for one night, that night's page; for several, an index
of the nights, each night's page being ``OUT_DIR/report/<night>.html``. A night's page
holds the night's summary (raw frames in, products, skipped, failed and flagged frames with
their reasons), a picture of each master and mask, the trends of the night per filter (sky
level, ROBUSTSTD, NCOSMIC, e⁻/ADU and read noise with their sources, the time to each
calibration), a thumbnail of each science frame with its cosmic rays marked, linked to a
full-size view, and the tables ``gpucal list`` prints.

Pictures are PNG files in ``OUT_DIR/report/<night>/``, linked relatively, so OUT_DIR can
be moved or served as it is. They are drawn where matplotlib is installed (``pip install
"gpucal[report]"``): images as indexed PNGs with Pillow, matplotlib's own dependency, the
zscale colour bar and the flags' key beside them in the page; the trends with matplotlib on
the Agg canvas, never pyplot, so a notebook's backend is left alone. Without matplotlib the
pages hold every table and say how to get the pictures. A picture is drawn again only when
what it shows changed (its stamp, in the PNG). A picture that cannot be drawn becomes a note
on the page; the report never makes a reduction fail (:func:`gpucal.pipeline.execute.reduce`
catches what is left). Every string that comes from a header or a path is escaped, and the
pages run no script; every file is written atomically and only inside OUT_DIR.
"""

import contextlib
import fnmatch
import hashlib
import html
import importlib.util
import json
import posixpath
import re
import shlex
import sqlite3
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import numpy as np

from .._version import __version__
from ..backend import load_backend
from ..flags import MASK_DTYPE, MaskFlag, description
from ..io import atomic_file, read_fits
from ..masks import read_mask
from ..progress import ProgressBar
from .config import CALIBRATIONS
from .outdir import lock
from .results import ResultsDB, attention, damaged, listing
from .tasks import inside

__all__ = ["INSTALL_HINT", "REPORT_NAME", "Report", "write_report"]

REPORT_NAME = "report.html"
REPORT_DIR = "report"  # night pages (several nights) and every picture, under OUT_DIR
INSTALL_HINT = 'pip install "gpucal[report]"'
#: The columns of the science table (those some product has): what `gpucal list` shows.
SCIENCE_KEYS = ("FILTER", "exptime", "QUANT500", "ROBUSTSTD", "NCOSMIC", "NMASKED", "GAIN",
                "GAINSRC", "RDNOISE", "RDNSRC", "DELTA_MJD_BIAS", "DELTA_MJD_DARK",
                "DELTA_MJD_FLAT")
PRODUCT_KEYS = ("QUANT500", "ROBUSTSTD", "NMASKED")
PICTURE = 256  # pixels, at most, along a side of a master's or mask's picture (downsampled)
THUMBNAIL = 256  # pixels, at most, along a side of a science thumbnail
_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)
PICTURE_VERSION = 1  # drawn differently: pictures with an older stamp are drawn again
_META = "gpucal"  # the PNG text chunk of a picture's stamp and what the page says beside it

# Pictures are indexed colour: grey levels for the data, one colour per mask flag on top.
_FLAG_COLOURS = {MaskFlag.USER: "#9a6324", MaskFlag.NO_DATA: "#4363d8",
                 MaskFlag.STATIC: "#911eb4", MaskFlag.BAD_PIXEL: "#e6194b",
                 MaskFlag.HOT_PIXEL: "#f58231", MaskFlag.SATURATED: "#ffe119",
                 MaskFlag.COSMIC_RAY: "#00d5ff"}  # painted in this order: the last on top
_GREYS = 256 - len(_FLAG_COLOURS)
_FLAG_INDEX = {flag: _GREYS + i for i, flag in enumerate(_FLAG_COLOURS)}
_PALETTE = np.array([[round(255 * i / (_GREYS - 1))] * 3 for i in range(_GREYS)]
                    + [[int(c[j:j + 2], 16) for j in (1, 3, 5)] for c in _FLAG_COLOURS.values()],
                    dtype=np.uint8)
_SERIES = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
           "#17becf")  # one colour per filter in the trends (matplotlib's tab10)
# The colour index of the top flag of each combination of bits (0: none).
_OVERLAY = np.zeros(int(MaskFlag.all()) + 1, np.uint8)
for _flag, _at in _FLAG_INDEX.items():
    _OVERLAY[[b for b in range(len(_OVERLAY)) if b & _flag]] = _at
_MASTERS = CALIBRATIONS
_MASKS = ("ccdmask", "hot_pixels")


@dataclass
class Report:
    """What :func:`write_report` wrote.

    Attributes
    ----------
    path : Path
        ``OUT_DIR/report.html``, the page to open.
    pages : list of Path
        Every page written (the index and the night pages).
    pictures : int
        Pictures on the pages (drawn now, or unchanged since they were drawn).
    drawn : bool
        Whether matplotlib was there to draw them.
    notes : list of str
        Pictures that could not be drawn, and why (each is also on its page).
    seconds : float
    """

    path: Path
    pages: list = field(default_factory=list)
    pictures: int = 0
    drawn: bool = False
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def text(self):
        """One line for the run's summary or ``gpucal report``."""
        pictures = (f"{self.pictures} pictures" if self.drawn else
                    f"tables only, no pictures: {INSTALL_HINT} and run gpucal report "
                    f"{shlex.quote(str(self.path.parent))}")
        notes = f"; {len(self.notes)} pictures not drawn (see the page)" if self.notes else ""
        return f"report {self.path} ({pictures}{notes}; {self.seconds:.1f} s)"


def write_report(out_dir, *, night=None, progress=False, lock_output=True):
    """Write OUT_DIR's QA report from its results database and products.

    Parameters
    ----------
    out_dir : str or path-like
        The output directory of ``gpucal reduce`` (with ``gpucal.sqlite``).
    night : str, optional
        Only rewrite the pages of the nights matching this shell pattern (``'2026-11-*'``);
        ``OUT_DIR/report.html`` is always rewritten. Default: every night.
    progress : bool or file, default False
        A progress bar while drawing, on standard error (True) or the given stream.
    lock_output : bool, default True
        Hold OUT_DIR's lock while writing (a run must not sweep the report's temporary
        files away); False where the caller holds it.

    Returns
    -------
    Report

    Raises
    ------
    FileNotFoundError
        If OUT_DIR has no results database.
    ValueError
        If no night matches `night`.
    OutputBusyError
        If a gpucal run is writing OUT_DIR.
    DamagedDatabaseError
        If the database cannot be read.

    Examples
    --------
    ``gpucal reduce`` writes the report; this writes it again, drawing only what changed:

    >>> import gpucal.simulate
    >>> _ = gpucal.simulate.simulate_night("qa/raw", shape=(48, 48), filters=("V",),
    ...                                    n_science=1)
    >>> first = gpucal.reduce("qa/raw", "qa/out", device="cpu").report
    >>> again = write_report("qa/out")
    >>> again.path.name, again.pictures == first.pictures, "sciV_001" in again.path.read_text()
    ('report.html', True, True)
    """
    started = time.monotonic()
    out_dir = Path(out_dir)
    with ResultsDB(out_dir, create=False) as db:
        held = lock(out_dir) if lock_output else contextlib.nullcontext()
        with held:
            try:
                report = _write(db, out_dir, night, progress)
            except sqlite3.DatabaseError as exc:
                raise damaged(db.path, exc) from None
    report.seconds = time.monotonic() - started
    return report


# -- what a night is, from the database --------------------------------------------------------


@dataclass
class _Night:
    """The records of one night (name None: the raw files of no night, e.g. unreadable)."""

    name: str | None
    records: list

    def of(self, *kinds, status="ok"):
        return [r for r in self.records if r.kind in kinds and (status is None
                                                                  or r.status == status)]

    @property
    def frames(self):
        """The raw frames that went into its products (and those skipped)."""
        raws = {p for r in self.of(*_MASTERS, "science", status=None) for p in r.inputs}
        return len(raws) + len(self.skipped)

    @property
    def skipped(self):
        return [r for r in self.records if r.status == "skipped"]

    @property
    def failed(self):
        return [r for r in self.records if r.status == "failed"]

    @property
    def flagged(self):
        return [(r, why) for r in self.of("science") if (why := attention(r.flags))]


def _safe(name):
    """A night's name as a file name (nights are dates; anything else is replaced)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _glob_literal(name):
    """A SQLite GLOB pattern matching exactly `name`."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _stem(path):
    return posixpath.basename(path).rsplit(".fits", 1)[0]


@dataclass
class _Page:
    """A page to write: its path and folder (relative to OUT_DIR) and its nights."""

    path: str
    night: _Night | None  # None: the index
    unassigned: _Night | None  # raw files of no night shown here (the one page or the index)


def _write(db, out_dir, pattern, progress):
    records = db.records()
    by_night = defaultdict(list)
    for rec in records:
        by_night[rec.night].append(rec)
    unassigned = _Night(None, by_night.pop(None, []))
    nights = [_Night(name, by_night[name]) for name in sorted(by_night)]
    chosen = nights
    if pattern is not None:
        chosen = [n for n in nights if fnmatch.fnmatchcase(n.name, pattern)]
        if not chosen:
            raise ValueError(f"no night matches {pattern!r}; the nights in {out_dir}: "
                             f"{', '.join(n.name for n in nights) or 'none'}")
    if len(nights) <= 1:
        pages = [_Page(REPORT_NAME, nights[0] if nights else None, unassigned)]
    else:
        pages = [_Page(REPORT_NAME, None, unassigned)]
        pages += [_Page(f"{REPORT_DIR}/{_safe(n.name)}.html", n, None) for n in chosen]
    report = Report(out_dir / REPORT_NAME)
    painter = _Painter(out_dir)
    report.drawn = painter.available
    jobs = {id(n): _jobs(n) for n in chosen} if painter.available else {}
    bar = None
    if progress and jobs:
        bar = ProgressBar("report", stream=None if progress is True else progress)
        bar.start(sum(map(len, jobs.values())))
    shown = {}  # picture path -> (width, height), or the note why it is missing
    try:
        for night in chosen:
            shown.update(painter.run(jobs.get(id(night), ()), bar.step if bar else None))
            if painter.available:
                _sweep_pictures(out_dir, night, shown)
    finally:
        if bar:
            bar.finish()
    report.pictures = sum(isinstance(v, _Shown) for v in shown.values())
    report.notes = [f"{path}: {why}" for path, why in shown.items() if isinstance(why, str)]
    context = _Context(db, out_dir, painter, shown, nights)
    for page in pages:
        if page.night is None and len(pages) > 1:
            text = _index_page(context, page)
        elif page.night is None or page.night in chosen:
            text = _night_page(context, page)
        else:
            continue
        with atomic_file(_place(out_dir, page.path)) as f:
            f.write(text.encode())
        report.pages.append(out_dir / page.path)
    return report


def _place(out_dir, path):
    """OUT_DIR/path, checked to be inside OUT_DIR, its folder made."""
    where = inside(out_dir, path)
    where.parent.mkdir(parents=True, exist_ok=True)
    return where


def _pictures_dir(night):
    return f"{REPORT_DIR}/{_safe(night.name)}"


def _picture(night, rec, suffix=".png"):
    """Where the picture of a product goes, relative to OUT_DIR."""
    folder = posixpath.basename(posixpath.dirname(rec.path)) or rec.kind
    return f"{_pictures_dir(night)}/{folder}/{_stem(rec.path)}{suffix}"


def _trends_picture(night):
    return f"{_pictures_dir(night)}/trends.png"


def _jobs(night):
    """The pictures of a night: (kind, paths, arguments) for :meth:`_Painter.run`."""
    masks = defaultdict(list)  # master path -> the masks made from it
    for rec in night.of(*_MASKS):
        masks[rec.inputs[0] if rec.inputs else None].append(rec)
    jobs = [("master", (_picture(night, r),), (r, masks[r.path])) for r in night.of(*_MASTERS)]
    jobs += [("mask", (_picture(night, r),), (r,)) for r in night.of(*_MASKS)]
    science = _science(night)
    jobs += [("science", (_picture(night, r, ".thumb.png"), _picture(night, r)), (r,))
             for r in science]
    if science:
        jobs.append(("trends", (_trends_picture(night),), (science,)))
    return jobs


def _science(night):
    """The night's science records in time order."""
    return sorted(night.of("science"), key=lambda r: (r.mjd is None, r.mjd or 0.0, r.path))


def _sweep_pictures(out_dir, night, shown):
    """Remove the night's pictures of products no longer recorded (only PNGs, only ours)."""
    try:
        folder = inside(out_dir, _pictures_dir(night))
    except ValueError:  # a link out of OUT_DIR: nothing was drawn there, nothing is removed
        return
    if not folder.is_dir():
        return
    for path in (out_dir / _pictures_dir(night)).rglob("*.png"):
        if path.relative_to(out_dir).as_posix() not in shown:
            path.unlink()


# -- pictures ----------------------------------------------------------------------------------


def zscale(data, bits=None):
    """IRAF's zscale display limits (astropy's ZScaleInterval) of the unmasked finite pixels.

    Examples
    --------
    >>> lo, hi = zscale(np.arange(10000.0).reshape(100, 100))
    >>> bool(0 <= lo < hi <= 9999)
    True
    """
    from astropy.visualization import ZScaleInterval

    step = max(1, int(np.sqrt(data.size / 250_000)))  # a sample is plenty for the limits
    sample = data[::step, ::step]
    good = np.isfinite(sample)
    if bits is not None:
        good &= bits[::step, ::step] == 0
    values = sample[good] if good.any() else sample[np.isfinite(sample)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = (float(v) for v in ZScaleInterval().get_limits(values))
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def picture(data, bits, lo=0.0, hi=1.0, size=None):
    """Palette indices of an image: greys for `data`, each flagged pixel in its flag's colour.

    Data between `lo` and `hi` (zscale) take the grey levels; a pixel with mask `bits` takes
    the colour of its top flag (the last of :data:`_FLAG_COLOURS`'s order), a non-finite one
    that of :attr:`MaskFlag.NO_DATA`. With `size`, the picture is averaged over square
    blocks to at most `size` pixels a side, a block taking the colour of the top flag in
    it, so that a single flagged pixel stays visible.

    Parameters
    ----------
    data : 2-D array or None
        None: a white background (a mask's picture).
    bits : 2-D uint16 array of MaskFlag bits
    lo, hi : float
    size : int, optional

    Examples
    --------
    >>> data, bits = np.zeros((10, 10)), np.zeros((10, 10), np.uint16)
    >>> bits[3, 7] = MaskFlag.COSMIC_RAY
    >>> index = picture(data, bits, -1.0, 1.0, size=5)
    >>> index.shape, _PALETTE[index[1, 3]].tolist(), _PALETTE[index[0, 0]].tolist()
    ((5, 5), [0, 213, 255], [128, 128, 128])
    """
    overlay = _OVERLAY[bits]
    if data is not None:
        finite = np.isfinite(data)
        if not finite.all():
            overlay = np.maximum(overlay, np.where(finite, 0, _FLAG_INDEX[MaskFlag.NO_DATA])
                                 .astype(np.uint8))
            data = np.where(finite, data, lo)
    block = 1 if size is None else max(1, -(-max(bits.shape) // size))
    if block > 1:
        pad = ((0, -bits.shape[0] % block), (0, -bits.shape[1] % block))
        if pad[0][1] or pad[1][1]:
            overlay = np.pad(overlay, pad)
            data = None if data is None else np.pad(data, pad, mode="edge")
        ny, nx = overlay.shape[0] // block, overlay.shape[1] // block
        overlay = overlay.reshape(ny, block, nx, block).max(axis=(1, 3))
        if data is not None:
            data = data.reshape(ny, block, nx, block).mean(axis=(1, 3), dtype=np.float32)
    if data is None:
        return np.where(overlay != 0, overlay, np.uint8(_GREYS - 1))
    grey = np.asarray(data, np.float32) - np.float32(lo)
    grey *= np.float32((_GREYS - 1) / (hi - lo))
    np.clip(grey, 0, _GREYS - 1, out=grey)
    return np.where(overlay != 0, overlay, grey.astype(np.uint8))


def _counts(bits):
    """{flag name: pixels} for the flags present in `bits`."""
    values = np.bincount(bits.ravel(), minlength=len(_OVERLAY))
    counts = {flag.name: int(values[[b for b in range(len(values)) if b & flag]].sum())
              for flag in _FLAG_COLOURS}
    return {name: n for name, n in counts.items() if n}


@dataclass
class _Shown:
    """A picture on disk, and what the page says beside it."""

    width: int
    height: int
    shape: tuple = ()  # of the product, (rows, columns)
    limits: tuple | None = None  # zscale limits of the grey levels: the colour bar
    unit: str = ""
    counts: dict = field(default_factory=dict)  # flag name -> pixels of the product

    def meta(self, stamp):
        return json.dumps({"stamp": stamp, "shape": list(self.shape), "limits": self.limits,
                           "unit": self.unit, "counts": self.counts})


def _stamp(*parts):
    """What a picture was drawn from: the same stamp, the same picture (it is not redrawn)."""
    text = json.dumps([PICTURE_VERSION, __version__, parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _found(place, stamp):
    """The picture already at `place` if it was drawn from `stamp`, else None."""
    from PIL import Image

    try:
        with Image.open(place) as image:
            meta = json.loads(image.info.get(_META, "{}"))  # written before the pixels
            size = image.size
    except (OSError, ValueError, SyntaxError):  # missing, damaged, not ours
        return None
    if meta.get("stamp") != stamp:
        return None
    limits = meta.get("limits")
    return _Shown(*size, tuple(meta.get("shape", ())), None if limits is None else
                  tuple(limits), meta.get("unit", ""), meta.get("counts", {}))


def _png(index, place, stamp, shown=None):
    """Write palette indices as an indexed PNG (row 0 at the bottom: FITS order), `stamp` and
    what the page says beside it in a text chunk; the :class:`_Shown`."""
    from PIL import Image, PngImagePlugin

    image = Image.fromarray(np.ascontiguousarray(index[::-1]))
    image.putpalette(_PALETTE.tobytes())
    shown = shown or _Shown(0, 0)
    shown.width, shown.height = image.size
    info = PngImagePlugin.PngInfo()
    info.add_text(_META, shown.meta(stamp))
    with atomic_file(place) as f:
        image.save(f, format="PNG", compress_level=1, pnginfo=info)
    return shown


class _Painter:
    """Draws the report's pictures where matplotlib is installed (the ``report`` extra).

    Masters, masks and science frames are indexed PNGs written with Pillow (matplotlib's
    own dependency): greys for the data, a colour for each mask flag. The page puts the
    zscale colour bar and the flags' key beside them. The trends of a night are a
    matplotlib figure on the Agg canvas (never pyplot: a notebook's backend is left alone).
    Jobs run in a pool of threads (reading, zscale, downsampling and PNG encoding release
    the GIL); a figure is drawn in the calling thread (matplotlib is not thread-safe). A
    picture whose stamp (the checksums of what it shows) is unchanged is not drawn again.
    """

    def __init__(self, out_dir, threads=None):
        self.out_dir = out_dir
        self.threads = threads or min(4, load_backend("numpy").threads)
        self.available = all(map(_importable, ("matplotlib", "PIL")))

    def run(self, jobs, step=None):
        """Draw `jobs`' pictures: {path: _Shown, or why it is missing}."""
        shown = {}
        with ThreadPoolExecutor(self.threads) as pool:
            futures = {pool.submit(self._prepare, job): job for job in jobs}
            for future in as_completed(futures):
                kind, paths, _ = futures[future]
                try:
                    result = future.result()
                    shown.update(zip(paths, result() if callable(result) else result))
                except Exception as exc:  # noqa: BLE001: a picture never stops the report
                    shown.update((p, f"not drawn: {type(exc).__name__}: {exc}") for p in paths)
                if step:
                    step()
        return shown

    def _prepare(self, job):
        """The job's pictures ([_Shown]), or a function drawing its figure here."""
        kind, paths, args = job
        places = [_place(self.out_dir, p) for p in paths]
        return getattr(self, f"_{kind}")(places, *args)

    def _read(self, rec):
        image = read_fits(self.out_dir / rec.path, dtype=None)
        bits = image.mask if image.mask is not None else np.zeros(image.data.shape, MASK_DTYPE)
        return image, bits

    def _master(self, places, rec, masks):
        stamp = _stamp(rec.checksum, sorted(m.checksum for m in masks))
        found = _found(places[0], stamp)
        if found:
            return [found]
        image, bits = self._read(rec)
        for mask in masks:  # the bad or hot pixels found in it
            bits = bits | read_mask(self.out_dir / mask.path)
        lo, hi = zscale(image.data, bits)
        unit = image.unit.to_string() if image.unit is not None else ""
        shown = _Shown(0, 0, bits.shape, (lo, hi), unit, _counts(bits))
        return [_png(picture(image.data, bits, lo, hi, PICTURE), places[0], stamp, shown)]

    def _mask(self, places, rec):
        stamp = _stamp(rec.checksum)
        found = _found(places[0], stamp)
        if found:
            return [found]
        bits = read_mask(self.out_dir / rec.path)
        shown = _Shown(0, 0, bits.shape, counts=_counts(bits))
        return [_png(picture(None, bits, size=PICTURE), places[0], stamp, shown)]

    def _science(self, places, rec):
        stamp = _stamp(rec.checksum)
        found = [_found(place, stamp) for place in places]
        if all(found):
            return found
        image, bits = self._read(rec)
        lo, hi = zscale(image.data, bits)
        shown = [_Shown(0, 0, bits.shape, (lo, hi)) for _ in places]
        return [_png(picture(image.data, bits, lo, hi, THUMBNAIL), places[0], stamp, shown[0]),
                _png(picture(image.data, bits, lo, hi), places[1], stamp, shown[1])]

    def _trends(self, places, science):
        keys = ("QUANT500", "ROBUSTSTD", "NCOSMIC", "GAIN", "GAINSRC", "RDNOISE", "RDNSRC",
                "FILTER", *(f"DELTA_MJD_{k.upper()}" for k in CALIBRATIONS))
        stamp = _stamp([[r.path, r.mjd, r.flags.get("NO_GAIN")] + [r.get(k) for k in keys]
                        for r in science])
        found = _found(places[0], stamp)
        return [found] if found else lambda: self._draw_trends(places[0], science, stamp)

    @staticmethod
    def _draw_trends(place, science, stamp):
        import matplotlib.dates as mdates
        from matplotlib.figure import Figure

        fig = Figure(figsize=(11.0, 6.4), dpi=100)
        axes = fig.subplots(2, 3, sharex=True).ravel()
        fig.subplots_adjust(left=0.06, right=0.985, top=0.95, bottom=0.08, wspace=0.22,
                            hspace=0.2)
        dated = all(_number(r.mjd) for r in science)
        order = {r.path: i for i, r in enumerate(science)}
        x_of = (lambda r: _MJD0 + timedelta(days=r.mjd)) if dated else \
            (lambda r: order[r.path])
        units = " or ".join(sorted({"adu" if r.flags.get("NO_GAIN") else "electron"
                                     for r in science}))
        panels = [("QUANT500", f"sky level: median ({units})"),
                  ("ROBUSTSTD", f"ROBUSTSTD ({units})"),
                  ("NCOSMIC", "NCOSMIC (cosmic-ray pixels)"),
                  ("GAIN", "e⁻/ADU (GAIN) and its source"),
                  ("RDNOISE", "read noise, e⁻ (RDNOISE) and its source")]
        by_filter = defaultdict(list)
        for rec in science:
            by_filter[_filter(rec)].append(rec)
        colour = {name: _SERIES[i % len(_SERIES)] for i, name in enumerate(by_filter)}
        for ax, (key, label) in zip(axes, panels):
            source = {"GAIN": "GAINSRC", "RDNOISE": "RDNSRC"}.get(key)
            for name, recs in by_filter.items():
                points = [(x_of(r), r.get(key)) for r in recs if _number(r.get(key))]
                sources = "; ".join(sorted({str(r.get(source)) for r in recs})) if source \
                    else ""
                legend = _text(f"{name}: {sources}" if source else name)
                if points:
                    ax.plot(*zip(*points), "o-", color=colour[name], ms=4, lw=1, label=legend)
                elif source:
                    ax.plot([], [], "o", color=colour[name], label=_text(f"{name}: none"))
            ax.set_title(label, fontsize=8)
            if key in ("QUANT500", "GAIN", "RDNOISE"):  # the filters; and the sources
                ax.legend(fontsize=6, loc="best")
        ax = axes[5]
        for kind, marker in zip(CALIBRATIONS, "os^"):  # colour: the filter; marker: the kind
            key = f"DELTA_MJD_{kind.upper()}"
            for name, recs in by_filter.items():
                points = [(x_of(r), 24 * r.flags[key]) for r in recs
                          if _number(r.flags.get(key))]
                if points:
                    ax.plot(*zip(*points), marker, color=colour[name], ms=4, ls="none")
            ax.plot([], [], marker, color="0.3", ms=4, ls="none", label=kind)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_title("Δt to each calibration, h (master − frame)", fontsize=8)
        ax.legend(fontsize=6, ncols=3, loc="best")
        for ax in axes:
            ax.tick_params(labelsize=7)
            if dated:
                ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
        for ax in axes[3:]:
            ax.set_xlabel("UTC" if dated else "science frame, in time order", fontsize=7)
        with atomic_file(place) as f:
            fig.savefig(f, format="png", metadata={_META: _Shown(0, 0).meta(stamp)})
        return [_Shown(*fig.canvas.get_width_height())]


def _importable(name):
    """Whether `name` can be imported (found without importing it: matplotlib is slow)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a None in sys.modules: made unimportable
        return False


def _text(value):
    """A label for matplotlib: plain text, whatever a header holds ($ would start math)."""
    return str(value).replace("$", r"\$")


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and \
        np.isfinite(value)


def _filter(rec):
    value = rec.get("FILTER")
    return "no filter" if value in (None, "") else str(value)


def _title(rec):
    """A product's kind and what tells it from its neighbours (filter, exposure)."""
    bits = [rec.kind.replace("_", " ")]
    if rec.kind in ("flat", "science") or rec.get("FILTER"):
        bits.append(_filter(rec))
    if rec.kind == "dark" and _number(rec.exptime):
        bits.append(f"{rec.exptime:g} s")
    return f"{' '.join(bits)}: {_stem(rec.path)}"


# -- pages -------------------------------------------------------------------------------------


@dataclass
class _Context:
    db: ResultsDB
    out_dir: Path
    painter: _Painter
    shown: dict
    nights: list


def _e(value):
    return html.escape(str(value), quote=True)


def _link(page, target):
    """The relative URL of OUT_DIR/target from OUT_DIR/page, escaped for an attribute."""
    relative = posixpath.relpath(target, posixpath.dirname(page) or ".")
    return _e(quote(relative))


def _anchor(page, target, text):
    """A link to OUT_DIR/target from OUT_DIR/page (just the text where target is None)."""
    return f'<a href="{_link(page, target)}">{_e(text)}</a>' if target else _e(text)


def _fmt(value):
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _table(header, rows, numeric=()):
    """An HTML table of cells already escaped (`header` None: no header row)."""
    head = "" if header is None else \
        "<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>"
    body = "".join("<tr>" + "".join(
        f'<td class="num">{cell}</td>' if j in numeric else f"<td>{cell}</td>"
        for j, cell in enumerate(row)) + "</tr>\n" for row in rows)
    return f"<table>{head}\n<tbody>\n{body}</tbody></table>"


def _list_block(context, night, kind=None, keys=(), sort=None):
    """The table `gpucal list` prints, with its command line."""
    known = context.db.keys()
    keys = [k for k in keys if k.lower() in known]
    lines = listing(context.db, kind=kind, night=_glob_literal(night), keys=keys, sort=sort)
    command = ["gpucal", "list", str(context.out_dir), "--night", night]
    command += ["--kind", kind] if kind else []
    command += ["--sort", sort] if sort else []
    command += [word for k in keys for word in ("-k", k)]
    return (f'<p class="cmd">$ {_e(shlex.join(command))}</p>\n'
            f'<pre class="list">{_e(chr(10).join(lines))}</pre>')


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1em;color:#1d1d1f;
 max-width:1500px;font-size:14px;line-height:1.4}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid
 #ccc}h3{font-size:1em;margin:.8em 0 .3em}
nav a{margin-right:1em}.meta{color:#555;font-size:.9em}
table{border-collapse:collapse;margin:.3em 0}th,td{padding:2px 10px;text-align:left;
 border-bottom:1px solid #e3e3e3;vertical-align:top}th{background:#f2f2f2}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #d0d0d0;border-radius:4px;
 padding:6px;background:#fff}.card img{display:block;max-width:100%;height:auto}
.card .cap{font-size:.85em;margin-top:4px;overflow-wrap:anywhere}.wide img{max-width:100%;
 height:auto}
.thumbs .card{width:256px}.pictures .card{width:318px}
.thumbs img,.pic img{width:256px;image-rendering:pixelated}  /* never fewer pixels than drawn */
.pic{display:flex;align-items:stretch;gap:6px}.pic img{border:1px solid #aaa}
.bar{position:relative;flex:none;width:56px;font-size:11px;margin:6px 0 30px}
.bar .ramp{position:absolute;left:0;top:0;bottom:0;width:12px;border:1px solid #777;
 background:linear-gradient(to top,#000,#fff)}
.bar span{position:absolute;left:17px;transform:translateY(50%);white-space:nowrap}
.bar span::before{content:"";position:absolute;left:-5px;top:50%;width:4px;border-top:1px solid
 #555}
.bar .unit{position:absolute;left:0;top:100%;margin-top:3px;font-size:10px;line-height:1.15;
 color:#555;overflow-wrap:anywhere}
.legend{font-size:.85em;margin-top:4px}
.sw{display:inline-block;width:.9em;height:.9em;vertical-align:middle;margin-right:.35em;
 border:1px solid #888}
pre{overflow-x:auto;background:#f6f6f6;padding:8px;font-size:12px;margin:.2em 0}
.cmd{font-family:ui-monospace,monospace;font-size:12px;margin:.6em 0 0;color:#333}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:4px 10px;margin:.4em 0}
.bad{color:#b00020}.ok{color:#1b7f3b}.missing{color:#777;font-style:italic;padding:1em}
.key .sw{margin-left:.9em}
"""
# No script runs on these pages: header values are escaped, and the policy forbids scripts.
_POLICY = "default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'"


def _document(title, body):
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{_e(_POLICY)}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<title>{_e(title)}</title>\n<style>{_CSS}</style></head>\n<body>\n{body}\n'
            f'</body></html>\n')


def _header(context, title, page):
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<h1>{_e(title)}</h1>\n<p class=\"meta\">{_e(context.out_dir)} · results "
            f'database <a href="{_link(page, "gpucal.sqlite")}">gpucal.sqlite</a> · written '
            f"{made} by gpucal {_e(__version__)}</p>\n")


def _no_pictures():
    return (f'<p class="note">No pictures: matplotlib is not installed. '
            f"<code>{_e(INSTALL_HINT)}</code>, then <code>gpucal report OUT_DIR</code> draws "
            "them (nothing is recomputed).</p>\n")


def _reason_list(title, items, page):
    """A list of (path or name, link target or None, reason)."""
    if not items:
        return ""
    rows = "".join(f"<li>{_anchor(page, target, name)}: {_e(reason)}</li>\n"
                   for name, target, reason in items)
    return f"<h3>{_e(title)} ({len(items)})</h3>\n<ul>\n{rows}</ul>\n"


def _problems(skipped, failed, page):
    """The skipped raw files and failed products, each with its reason."""
    return (_reason_list("Skipped raw files", [(r.inputs[0] if r.inputs else r.path, None,
                                                r.reason or "") for r in skipped], page)
            + _reason_list("Failed products", [(r.path, None, r.reason or "") for r in failed],
                           page))


def _summary(night, unassigned, page):
    kinds = Counter(r.kind for r in night.records if r.status == "ok") if night else Counter()
    made = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items())) or "none"
    skipped = (night.skipped if night else []) + (unassigned.skipped if unassigned else [])
    failed = (night.failed if night else []) + (unassigned.failed if unassigned else [])
    flagged = night.flagged if night else []
    frames = (night.frames if night else 0) + (len(unassigned.skipped) if unassigned else 0)

    def state(n, word):
        return f'<span class="{"bad" if n else "ok"}">{n} {word}</span>'

    rows = [("raw frames in", str(frames)), ("products", _e(made)),
            ("skipped raw files", state(len(skipped), "skipped")),
            ("failed products", state(len(failed), "failed")),
            ("science frames flagged", state(len(flagged), "flagged")
             + " (a missing or fallback calibration, or a skipped step)")]
    body = _table(None, rows)
    body += _problems(skipped, failed, page)
    body += _reason_list("Flagged science frames",
                         [(r.path, r.path, why) for r, why in flagged], page)
    return body


def _picture_html(context, page, path, alt, link=None):
    """An <img> of a drawn picture (linked to `link`), or why it is missing."""
    shown = context.shown.get(path)
    if not context.painter.available:
        return '<div class="missing">no picture: matplotlib is not installed</div>'
    if not isinstance(shown, _Shown):
        return f'<div class="missing note">{_e(alt)}: picture {_e(shown or "not drawn")}</div>'
    img = (f'<img src="{_link(page, path)}" width="{shown.width}" height="{shown.height}" '
           f'alt="{_e(alt)}" loading="lazy">')
    return f'<a href="{_link(page, link)}">{img}</a>' if link else img


def ticks(lo, hi, most=6):
    """Round values between `lo` and `hi` for a colour bar's labels (1, 2 or 5 × 10ⁿ apart).

    Examples
    --------
    >>> ticks(-15.2, 12.9)
    [-15.0, -10.0, -5.0, 0.0, 5.0, 10.0]
    >>> ticks(0.93, 1.06)
    [0.94, 0.96, 0.98, 1.0, 1.02, 1.04, 1.06]
    """
    span = hi - lo
    if not span > 0:
        return [lo]
    for step in sorted(m * 10.0 ** e for e in range(int(np.floor(np.log10(span))) - 1,
                                                   int(np.floor(np.log10(span))) + 2)
                       for m in (1, 2, 5)):
        first, last = int(np.ceil(lo / step - 1e-9)), int(np.floor(hi / step + 1e-9))
        if last - first + 1 <= most + 1:
            return [float(f"{k * step:.12g}") for k in range(first, last + 1)]
    return [lo, hi]


def _colour_bar(shown):
    """The zscale colour bar of a picture's grey levels, as HTML beside it."""
    lo, hi = shown.limits
    labels = "".join(f'<span style="bottom:{100 * (t - lo) / (hi - lo):.2f}%">{_e(f"{t:g}")}'
                     "</span>" for t in ticks(lo, hi))
    unit = f"{_e(shown.unit)}<br>zscale" if shown.unit else "zscale"
    return (f'<div class="bar" title="zscale: {_e(f"{lo:.6g}")} to {_e(f"{hi:.6g}")} '
            f'{_e(shown.unit)}"><div class="ramp"></div>{labels}<div class="unit">{unit}'
            "</div></div>")


def _legend(shown):
    """The flags in a picture, their colours and pixel counts."""
    total = int(np.prod(shown.shape)) if shown.shape else 0
    items = []
    for name, n in shown.counts.items():
        flag = MaskFlag[name]
        share = f" ({100 * n / total:.2g} %)" if total else ""
        items.append(f'<span class="sw" style="background:{_FLAG_COLOURS[flag]}"></span>'
                     f"{_e(description(flag))}: {n}{share}")
    return f'<div class="legend">{"<br>".join(items)}</div>' if items else ""


def _product_card(context, page, night, rec):
    """A master or a mask: its picture with colour bar and flags, what it is, its numbers."""
    path = _picture(night, rec)
    stats = [f"{k} {_fmt(rec.get(k))}" for k in ("QUANT500", "ROBUSTSTD", "NMASKED")
             if rec.get(k) is not None]
    if rec.kind in _MASTERS:
        stats.insert(0, f"{len(rec.inputs)} frames combined")
    shown = context.shown.get(path)
    if rec.status != "ok":
        picture = f'<div class="missing bad">{_e(rec.status)}: {_e(rec.reason or "")}</div>'
    elif isinstance(shown, _Shown):
        bar = _colour_bar(shown) if shown.limits else ""
        picture = (f'<div class="pic">{_picture_html(context, page, path, _title(rec))}{bar}'
                   f"</div>{_legend(shown)}")
        if shown.shape:
            stats.insert(0, f"{shown.shape[1]} × {shown.shape[0]} px")
    else:
        picture = _picture_html(context, page, path, _title(rec))
    return (f'<div class="card">{picture}<div class="cap"><a href="{_link(page, rec.path)}">'
            f"{_e(_title(rec))}</a><br>{_e(' · '.join(stats))}</div></div>\n")


def _key():
    spans = "".join(f'<span class="sw" style="background:{c}"></span>{_e(description(f))}'
                    for f, c in reversed(_FLAG_COLOURS.items()))
    return f'<p class="key">Marked:{spans}</p>\n'


def _science_cards(context, page, night):
    science = [r for r in night.records if r.kind == "science"]
    by_filter = defaultdict(list)
    for rec in sorted(science, key=lambda r: (r.mjd is None, r.mjd or 0.0, r.path)):
        by_filter[_filter(rec)].append(rec)
    out = []
    for name in sorted(by_filter):
        cards = []
        for rec in by_filter[name]:
            if rec.status == "ok":
                picture = _picture_html(context, page, _picture(night, rec, ".thumb.png"),
                                        _title(rec), link=_picture(night, rec))
            else:
                picture = f'<div class="missing bad">{_e(rec.status)}: {_e(rec.reason)}</div>'
            when = (_MJD0 + timedelta(days=rec.mjd)).strftime("%H:%M:%S UTC") \
                if _number(rec.mjd) else "no time"
            why = attention(rec.flags) if rec.status == "ok" else ""
            cards.append(
                f'<div class="card">{picture}<div class="cap"><a href="'
                f'{_link(page, rec.path)}">{_e(_stem(rec.path))}</a> · {_e(when)} · '
                f"{_e(_fmt(rec.exptime))} s · NCOSMIC {_e(_fmt(rec.get('NCOSMIC')))}"
                + (f'<br><span class="bad">{_e(why)}</span>' if why else "") + "</div></div>")
        out.append(f"<h3>{_e(name)} ({len(cards)})</h3>\n<div class=\"cards thumbs\">\n"
                   + "\n".join(cards) + "\n</div>\n")
    return "".join(out)


def _night_page(context, page):
    night, unassigned = page.night, page.unassigned
    name = night.name if night else "no night"
    title = f"gpucal report: night {name}"
    body = [_header(context, title, page.path)]
    if page.path != REPORT_NAME:
        body.append(f'<p><a href="{_link(page.path, REPORT_NAME)}">← all nights</a></p>\n')
    body.append('<nav><a href="#summary">summary</a><a href="#masters">masters</a>'
                '<a href="#masks">masks</a><a href="#trends">trends</a>'
                '<a href="#science">science frames</a><a href="#products">products</a></nav>\n')
    if not context.painter.available:
        body.append(_no_pictures())
    notes = [(p, why) for p, why in context.shown.items()
             if isinstance(why, str) and night and p.startswith(_pictures_dir(night) + "/")]
    if notes:
        body.append("<div class=\"note\"><b>Pictures not drawn</b><ul>" + "".join(
            f"<li>{_e(p)}: {_e(why)}</li>" for p, why in notes) + "</ul></div>\n")
    body.append('<h2 id="summary">Summary</h2>\n' + _summary(night, unassigned, page.path))
    if night is None:
        return _document(title, "".join(body))
    for anchor, heading, kinds in (("masters", "Masters", _MASTERS), ("masks", "Masks", _MASKS)):
        recs = [r for r in night.records if r.kind in kinds and r.status != "skipped"]
        cards = "".join(_product_card(context, page.path, night, r) for r in recs)
        body.append(f'<h2 id="{anchor}">{heading} ({len(recs)})</h2>\n'
                    + (f'<div class="cards pictures">\n{cards}</div>\n' if recs else
                       "<p>none</p>\n"))
    science = _science(night)
    body.append('<h2 id="trends">Trends across the night, per filter</h2>\n')
    if science:
        body.append('<div class="wide">' + _picture_html(
            context, page.path, _trends_picture(night), "trends of the science frames")
            + "</div>\n")
    body.append(_list_block(context, night.name, "science", SCIENCE_KEYS, "mjd")
                if night.of("science", status=None) else "<p>no science frames</p>\n")
    body.append(f'<h2 id="science">Science frames ({len(night.of("science", status=None))})'
                "</h2>\n<p>Each thumbnail links to the full-size picture; the name, to the "
                "FITS product.</p>\n" + _key() + _science_cards(context, page.path, night))
    body.append('<h2 id="products">Products</h2>\n'
                + _list_block(context, night.name, keys=PRODUCT_KEYS))
    return _document(title, "".join(body))


def _index_page(context, page):
    title = f"gpucal report: {len(context.nights)} nights"
    body = [_header(context, title, page.path)]
    if not context.painter.available:
        body.append(_no_pictures())
    rows = []
    for night in context.nights:
        link = f"{REPORT_DIR}/{_safe(night.name)}.html"
        rows.append((f'<a href="{_link(page.path, link)}">{_e(night.name)}</a>',
                     night.frames, len(night.of(*_MASTERS, *_MASKS, "science")),
                     len(night.skipped), len(night.failed), len(night.flagged)))
    body.append("<h2>Nights</h2>\n" + _table(
        ["night", "raw frames in", "products", "skipped", "failed", "flagged"], rows,
        numeric=(1, 2, 3, 4, 5)))
    unassigned = page.unassigned
    if unassigned.records:  # unreadable files, unknown kinds: no night could be told
        body.append("<h2>Raw files of no night</h2>\n"
                    + _problems(unassigned.skipped, unassigned.failed, page.path))
    return _document(title, "".join(body))
