"""Whole-night planning: group the scanned frames, choose calibrations, make the tasks.

The layer ``gpucal reduce`` runs after the header scan (:mod:`.scan`), and ``--dry-run``
stops after. It is pure: :func:`make_plan` turns frames into tasks, frozen dataclasses of
inputs and parameters that an executor (serial, threads, Dask) runs in order:
``plan.masters`` (bias, then dark, then flat masters, so each master's calibrations come
before it), ``plan.masks``, ``plan.science``.

The behaviour follows filabres (nicocardiel/filabres): calibrations are grouped
per night by an instrument's *signature* keywords and split into time blocks
anchored at their first frame; each frame is calibrated with the master of its
signature closest in time, signed ``delta_mjd = mjd(calibration) - mjd(frame)``
in days, and ``IERR`` = 0 (found), 1 (no master of that signature: the closest of
the same shape and binning instead, where ``allow_fallback`` permits: by default for
bias and darks, never a flat of another filter) or 2 (none used).
"""

import copy
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, replace

from .config import CALIBRATIONS, InstrumentConfig
from .headers import Sourced
from .scan import FITS_SUFFIXES

__all__ = ["Choice", "MaskTask", "MasterTask", "Plan", "Readout", "ScienceTask",
           "calibration_missing", "make_plan"]


@dataclass(frozen=True)
class Readout:
    """How to read one raw frame's pixels: their unit, e⁻/ADU and read noise (e⁻), each
    :class:`~gpucal.pipeline.headers.Sourced` (from the scan, or measured before the run)."""

    unit: str
    gain: Sourced
    readnoise: Sourced
    exptime: float | None = None
    unit_source: str = ""

    @classmethod
    def of(cls, frame):
        return cls(frame.unit, frame.gain, frame.readnoise, frame.exptime, frame.unit_source)

    def record(self):
        """The JSON form kept in the database (and compared for up-to-date products)."""
        return {"unit": self.unit, "unit_source": self.unit_source,
                **{name: [v.value, v.error, v.source]
                   for name, v in (("gain", self.gain), ("readnoise", self.readnoise))}}


@dataclass(frozen=True)
class Choice:
    """The master chosen to calibrate a frame or a master (``output`` of a MasterTask).

    ``delta_mjd``: mjd(master) - mjd(target) in days (None where either is unknown);
    ``ierr``: 0 same signature, 1 fallback (same shape and binning); ``scale``: a dark
    whose exposure is not the target's (or the target's is unknown or varies), to be
    scaled by exposure time.
    """

    output: str
    delta_mjd: float | None
    ierr: int
    scale: bool = False


@dataclass(frozen=True)
class MasterTask:
    """Combine ``inputs`` into the master ``output``, each input first calibrated with
    ``calibrations`` ({'bias': Choice|None} for darks, + 'dark' for flats, {} for bias).

    ``exptime`` is the inputs' common exposure (None if they differ or lack one); ``mjd``
    their mean; ``flags`` IERR_<KIND> / DELTA_MJD_<KIND> of the calibrations; ``parameters``
    the configuration's ``combine.<kind>`` table.
    """

    kind: str
    night: str
    signature: tuple
    exptime: float | None
    inputs: tuple
    mjd: float | None
    shape: tuple
    output: str
    calibrations: dict
    flags: dict
    parameters: dict
    readout: tuple = ()  # a Readout per input


@dataclass(frozen=True)
class MaskTask:
    """Make the mask ``output`` from the master ``master``: kind 'ccdmask' (bad pixels
    of a flat) or 'hot_pixels' (of a dark), with the configuration's table of that name."""

    kind: str
    night: str
    master: str
    output: str
    parameters: dict


@dataclass(frozen=True)
class ScienceTask:
    """Calibrate the raw frame ``path`` into ``output`` with ``bias``, ``dark``, ``flat``
    (each a Choice or None) and the masks ``masks`` ((output, kind) of the MaskTasks of
    the chosen dark and flat).

    ``flags``: IERR_BIAS/DARK/FLAT (0, 1, 2) and DELTA_MJD_BIAS/DARK/FLAT; ``frame_flags``:
    the RawFrame's flags; ``parameters``: {'cosmics': the configuration's table}.
    """

    path: str
    night: str
    signature: tuple
    mjd: float | None
    exptime: float | None
    output: str
    bias: Choice | None
    dark: Choice | None
    flat: Choice | None
    masks: tuple
    flags: dict
    frame_flags: tuple
    parameters: dict
    readout: Readout | None = None


def calibration_missing(flags):
    """Whether a task's IERR flags say a calibration was missing or of another signature."""
    return any(flags.get(f"IERR_{kind.upper()}") for kind in CALIBRATIONS)


def _slug(values):
    parts = (re.sub(r"[^A-Za-z0-9.+-]+", "-", str(v)).strip("-.") for v in values if v is not None)
    return "_".join(p for p in parts if p)[:80] or "nosig"


def _blocks(frames, span_days):
    """Time blocks: the earliest unassigned frame anchors one; frames < span after it join."""
    dated = sorted((f for f in frames if f.mjd is not None), key=lambda f: (f.mjd, f.path))
    blocks, start = [], 0
    while start < len(dated):
        end = start + 1
        while end < len(dated) and dated[end].mjd - dated[start].mjd < span_days:
            end += 1
        blocks.append(dated[start:end])
        start = end
    undated = [f for f in frames if f.mjd is None]
    return blocks + [undated] * bool(undated)


def _matches(a, b, keys=None):
    """Equal values for the keywords both signatures have (restricted to `keys`)."""
    a, b = dict(a), dict(b)
    return all(a[k] == b[k] for k in a if k in b and (keys is None or k in keys))


def _delta(mjd, target_mjd):
    return None if mjd is None or target_mjd is None else mjd - target_mjd


def _choose(kind, target, masters, config):
    """(Choice or None, ierr) for calibrating `target` (a RawFrame or MasterTask)."""
    pool = [m for m in masters if m.kind == kind]
    found = [m for m in pool if _matches(m.signature, target.signature)]
    ierr = 0 if found else 1
    if not found:
        found = [m for m in pool if m.shape == target.shape and
                 _matches(m.signature, target.signature, config.fallback_keywords)]
    if not found:
        return None, 2
    scale = False
    if kind == "dark":  # equal exposure first; otherwise a dark scaled by exposure time
        equal = [m for m in found if target.exptime is not None and m.exptime == target.exptime]
        found, scale = equal or found, not equal

    def distance(m):  # closest in time; without times, the same night first
        d = _delta(m.mjd, target.mjd)
        return (d is None, 0.0 if d is None else abs(d), m.night != target.night, m.output)

    best = min(found, key=distance)
    return Choice(best.output, _delta(best.mjd, target.mjd), ierr, scale), ierr


def _choices(kinds, target, masters, config):
    chosen, flags = {}, {}
    for kind in kinds:
        choice, ierr = _choose(kind, target, masters, config)
        if ierr == 1 and not config.allow_fallback.get(kind, True):
            # e.g. a flat of another filter: wrong, not merely approximate
            choice, ierr = None, 2
            flags[f"{kind.upper()}_FALLBACK_REFUSED"] = True
        chosen[kind] = choice
        flags[f"IERR_{kind.upper()}"] = ierr
        flags[f"DELTA_MJD_{kind.upper()}"] = None if choice is None else choice.delta_mjd
    return chosen, flags


def _unique(name, taken):
    stem, n = name, 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name


def _stem(path):
    name = os.path.basename(path)
    suffix = max((s for s in FITS_SUFFIXES if name.lower().endswith(s)), key=len)
    return name[:-len(suffix)]


def _masters(frames, config, taken):
    """MasterTasks: bias, then dark, then flat, so a master's calibrations exist before it."""
    masters, numbers = [], Counter()
    for kind in CALIBRATIONS:
        groups = defaultdict(list)
        for f in (f for f in frames if f.kind == kind):
            groups[f.night, f.signature, f.shape, f.exptime if kind == "dark" else None].append(f)
        for key in sorted(groups, key=lambda g: (g[0], repr(g[1:3]), g[3] is None, g[3] or 0)):
            night, signature, shape, exptime = key
            values = [v for _, v in signature] + ([] if exptime is None else [f"{exptime:g}s"])
            prefix = f"{night}/masters/{kind}_{_slug(values)}"
            for block in _blocks(groups[key], config.maxtimespan_hours[kind] / 24):
                numbers[prefix] += 1
                mjds = [f.mjd for f in block if f.mjd is not None]
                exptimes = {f.exptime for f in block}
                task = MasterTask(kind, night, signature,
                                  exptimes.pop() if len(exptimes) == 1 else None,
                                  tuple(f.path for f in block),
                                  sum(mjds) / len(mjds) if mjds else None, shape,
                                  _unique(f"{prefix}_{numbers[prefix]}", taken) + ".fits",
                                  {}, {}, copy.deepcopy(config.combine[kind]),
                                  tuple(Readout.of(f) for f in block))
                needs = CALIBRATIONS[:CALIBRATIONS.index(kind)]
                calibrations, flags = _choices(needs, task, masters, config)
                masters.append(replace(task, calibrations=calibrations, flags=flags))
    return masters


def make_plan(frames, config=None, skipped=()):
    """Plan a reduction: masters per (night, signature) time block, masks, science tasks.

    Pure and deterministic: the same frames in any order give the same plan.

    Parameters
    ----------
    frames : iterable of RawFrame
        From :func:`scan`.
    config : InstrumentConfig, optional
        Default :func:`load_config()`.
    skipped : iterable of Skipped, optional
        Carried into the plan, for the record.

    Returns
    -------
    Plan

    Notes
    -----
    Bias, darks (per EXPTIME) and flats are grouped by (night, signature, shape); a
    group's frames, by MJD then path, form time blocks: the first unassigned frame
    anchors one, and the frames less than ``maxtimespan_hours`` after it join (frames
    without a time form one block). One master per block.
    A calibration is the master of the target's signature (its keywords that the
    master's kind also has) closest in MJD, on any night; darks of the target's EXPTIME
    first, else the closest, scaled. Without a master of that signature: the closest of
    the same shape and ``fallback_keywords`` (IERR 1); without that: None (IERR 2).

    Examples
    --------
    >>> from gpucal.pipeline.plan import make_plan
    >>> from gpucal.pipeline.scan import RawFrame
    >>> sig = (("INSTRUME", "CAM"), ("NAXIS1", 10), ("NAXIS2", 8))
    >>> frames = [RawFrame(f"/raw/b{i}.fits", "bias", "2024-03-01", 60370.8 + i / 100, 0.0,
    ...                    (8, 10), sig) for i in range(3)]
    >>> frames.append(RawFrame("/raw/s1.fits", "science", "2024-03-01", 60370.9, 30.0,
    ...                        (8, 10), sig + (("FILTER", "R"),)))
    >>> plan = make_plan(frames)
    >>> [(m.output, len(m.inputs)) for m in plan.masters]
    [('2024-03-01/masters/bias_CAM_10_8_1.fits', 3)]
    >>> task = plan.science[0]
    >>> task.output, task.bias.output, round(task.bias.delta_mjd, 2), task.flags["IERR_FLAT"]
    ('2024-03-01/science/s1.fits', '2024-03-01/masters/bias_CAM_10_8_1.fits', -0.09, 2)
    """
    config = config or InstrumentConfig()
    frames = sorted(frames, key=lambda f: f.path)
    taken = set()
    masters = _masters(frames, config, taken)
    masks = []
    for m in masters:
        step = {"flat": "ccdmask", "dark": "hot_pixels"}.get(m.kind)
        if step:
            stem = m.output.rsplit("/", 1)[1][:-len(".fits")]
            masks.append(MaskTask(step, m.night, m.output, f"{m.night}/masks/{stem}_{step}.fits",
                                  copy.deepcopy(getattr(config, step))))
    mask_of = {t.master: t.output for t in masks}
    science = []
    for f in (f for f in frames if f.kind == "science"):
        chosen, flags = _choices(CALIBRATIONS, f, masters, config)
        flags.update({f"NO_{kind.upper()}": True for kind in CALIBRATIONS if chosen[kind] is None})
        output = _unique(f"{f.night}/science/{_stem(f.path)}", taken) + ".fits"
        science.append(ScienceTask(
            f.path, f.night, f.signature, f.mjd, f.exptime, output, chosen["bias"],
            chosen["dark"], chosen["flat"],
            tuple((mask_of[c.output], step) for c, step in
                  ((chosen["dark"], "hot_pixels"), (chosen["flat"], "ccdmask")) if c), flags,
            f.flags, {"cosmics": copy.deepcopy(config.cosmics)}, Readout.of(f)))
    unclassified = tuple(f for f in frames if f.kind == "unknown" or "NO_DATE" in f.flags)
    return Plan(tuple(masters), tuple(masks), tuple(science), tuple(skipped), unclassified,
                config, tuple(frames))


def _choice_text(kind, choice, flags=None):
    if choice is None:
        refused = (flags or {}).get(f"{kind.upper()}_FALLBACK_REFUSED")
        return f"{kind}: none (IERR=2" + (f"; one of another signature is not applied: "
                                          f"allow_fallback.{kind} = false)" if refused else ")")
    delta = "unknown" if choice.delta_mjd is None else f"{choice.delta_mjd:+.4f} d"
    return (f"{kind}: {choice.output} (delta_mjd {delta}, IERR={choice.ierr}"
            f"{', scaled by exposure' if choice.scale else ''})")


_MEASURED_LATER = " -> measured from the night's {} pairs before the run"


def _sources_text(frames):
    """Lines saying, per detector, where its frames' values come from (and how many)."""
    lines = []
    groups = defaultdict(list)
    for f in frames:
        groups[f.detector, f.preset].append(f)
    for (detector, preset), members in groups.items():
        keys = " ".join(f"{k}={v}" for k, v in detector if v is not None) or "(no keywords)"
        lines.append(f"  detector {keys}: {len(members)} frames, "
                     f"conventions {preset or 'gpucal defaults (no known program)'}")
        for what, text in (
                ("unit", lambda f: f"{f.unit} ({f.unit_source})"),
                ("gain", lambda f: f.gain.text("e-/ADU") + (_MEASURED_LATER.format("flat")
                                                            if f.gain.value is None else "")),
                ("read noise", lambda f: f.readnoise.text("e-") + (
                    _MEASURED_LATER.format("bias") if f.readnoise.value is None else "")),
                ("night", lambda f: f.night_source)):
            for value, n in Counter(map(text, members)).most_common():
                if not value:
                    continue
                lines.append(f"    {what}: {value}" + (f" [{n} frames]" if n < len(members) else ""))
    return lines


@dataclass(frozen=True)
class Plan:
    """What :func:`make_plan` returns; the executor runs ``masters``, ``masks``, ``science``
    in that order. ``unclassified``: frames of unknown kind or without a date; ``frames``:
    every RawFrame planned (their flats and biases measure what headers lack)."""

    masters: tuple
    masks: tuple
    science: tuple
    skipped: tuple
    unclassified: tuple
    config: InstrumentConfig
    frames: tuple = ()

    def describe(self):
        """The plan as text (what ``gpucal reduce --dry-run`` prints).

        Per night: the calibration groups with their masters (input counts), then each
        science frame with the calibrations chosen, delta_mjd and IERR; then the
        unclassified and skipped files and a count summary.

        Examples
        --------
        >>> from gpucal.pipeline.headers import Sourced
        >>> from gpucal.pipeline.plan import make_plan
        >>> from gpucal.pipeline.scan import RawFrame
        >>> frame = RawFrame("/raw/s1.fits", "science", "2024-03-01", 60370.9, 30.0, (8, 10),
        ...                  (("FILTER", "R"),), detector=(("INSTRUME", "ASI294MM"),),
        ...                  gain=Sourced(0.25, "header EGAIN"),
        ...                  readnoise=Sourced(None, "none: no RDNOISE card"), preset="nina",
        ...                  night_source="noon UT (no site longitude)")
        >>> print(make_plan([frame]).describe())
        night 2024-03-01
          detector INSTRUME=ASI294MM: 1 frames, conventions nina
            unit: adu (assumed: no BUNIT)
            gain: 0.25 e-/ADU (header EGAIN)
            read noise: none: no RDNOISE card -> measured from the night's bias pairs before the run
            night: noon UT (no site longitude)
          science s1.fits -> 2024-03-01/science/s1.fits
            bias: none (IERR=2)
            dark: none (IERR=2)
            flat: none (IERR=2)
        masters: 0 (0 bias, 0 dark, 0 flat); masks: 0
        science: 1 (1 with IERR > 0); unclassified: 0; skipped: 0
        """
        lines = []
        nights = sorted({t.night for t in self.masters + self.science})
        for night in nights:
            lines.append(f"night {night}")
            lines.extend(_sources_text([f for f in self.frames if f.night == night]))
            groups = defaultdict(list)
            for m in (m for m in self.masters if m.night == night):
                groups[m.kind, m.signature, m.exptime if m.kind == "dark" else None].append(m)
            for (kind, signature, exptime), members in groups.items():
                keys = " ".join(f"{k}={v}" for k, v in signature)
                exposure = f" EXPTIME={exptime:g}" if exptime is not None else ""
                count = sum(len(m.inputs) for m in members)
                lines.append(f"  {kind} group {keys}{exposure}: {count} frames, "
                             f"{len(members)} master(s)")
                for m in members:
                    mjd = "unknown" if m.mjd is None else f"{m.mjd:.5f}"
                    lines.append(f"    {m.output} <- {len(m.inputs)} inputs, MJD {mjd}")
                    lines.extend(f"      {_choice_text(k, c)}" for k, c in m.calibrations.items())
            for t in (t for t in self.science if t.night == night):
                notes = f" [{', '.join(t.frame_flags)}]" if t.frame_flags else ""
                lines.append(f"  science {os.path.basename(t.path)} -> {t.output}{notes}")
                lines.extend(f"    {_choice_text(k, getattr(t, k), t.flags)}"
                             for k in CALIBRATIONS)
        for f in self.unclassified:
            lines.append(f"unclassified {f.path}: kind {f.kind}, IMAGETYP={f.imagetyp!r}, "
                         f"night {f.night}{', ' + ', '.join(f.flags) if f.flags else ''}")
        lines.extend(f"skipped {s.path}: {s.reason}" for s in self.skipped)
        kinds = Counter(m.kind for m in self.masters)
        failing = sum(calibration_missing(t.flags) for t in self.science)
        lines.append(f"masters: {len(self.masters)} ("
                     + ", ".join(f"{kinds[k]} {k}" for k in CALIBRATIONS)
                     + f"); masks: {len(self.masks)}")
        lines.append(f"science: {len(self.science)} ({failing} with IERR > 0); "
                     f"unclassified: {len(self.unclassified)}; skipped: {len(self.skipped)}")
        return "\n".join(lines)
