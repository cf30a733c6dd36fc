"""What headers lack, measured: e⁻/ADU from a night's flat pairs, read noise from bias pairs.

Run by the driver between planning and the first wave (:func:`complete`): for each night
and detector (the bias signature: instrument, size, binning, readout, gain setting) whose
frames have no e⁻/ADU or read noise from the configuration or the header, the night's own
flats and biases of that detector are read (overscan-subtracted and trimmed, in ADU) and
measured with the photon transfer method (:func:`gpucal.photon_transfer.measure_detector`).
Every task then carries the values it will use, each with its source, so products made with
a measured value are remade when the measurement changes.
"""

import math
from collections import defaultdict
from dataclasses import replace
from datetime import date

from ..photon_transfer import measure_detector
from .headers import Sourced
from .plan import Readout
from .tasks import _Raw

__all__ = ["complete"]

#: Frames read per group at most (flats per filter, biases): enough pairs for a few percent.
MAX_FRAMES = 16
_SATURATED_FRACTION = 1e-3  # a flat with more raw pixels at saturation is not measured


def _arrays(frames, config, device, flats=False):
    """Overscan-subtracted, trimmed ADU arrays of `frames` (flats near saturation left out)."""
    out = []
    for f in sorted(frames, key=lambda f: (f.mjd is None, f.mjd or 0.0, f.path))[:MAX_FRAMES]:
        raw = _Raw(f.path, Readout(f.unit, Sourced(None, ""), Sourced(None, "")), config, device)
        if flats and raw.saturated > _SATURATED_FRACTION * raw.frame.data.size:
            continue
        out.append(raw.calibrate(gain=False).data)
    return out


def _measure(frames, config, device):
    """{"gain": Sourced, "readnoise_adu": Sourced} of one detector's frames on one night."""
    biases = _arrays([f for f in frames if f.kind == "bias"], config, device)
    by_filter = defaultdict(list)
    for f in (f for f in frames if f.kind == "flat"):
        by_filter[f.signature].append(f)
    noise = measure_detector([], biases)  # the read noise needs the biases alone
    gains, pairs = [], 0
    for group in by_filter.values():  # pairs of one filter: the same illumination pattern
        m = measure_detector(_arrays(group, config, device, flats=True), biases)
        if m.gain is not None:
            gains.append((m.gain, m.gain_err))
            pairs += m.n_flat_pairs
    gain = Sourced(None, f"none: no pair of unsaturated flats at similar level and a bias "
                         f"({sum(map(len, by_filter.values()))} flats, {len(biases)} biases)")
    if gains:
        weights = [1 / e ** 2 if e else 0.0 for _, e in gains]
        if sum(weights) == 0:
            weights = [1.0] * len(gains)
        value = sum(w * g for w, (g, _) in zip(weights, gains)) / sum(weights)
        error = (1 / sum(weights)) ** 0.5 if all(weights) and any(e for _, e in gains) else None
        gain = Sourced(value, f"measured: {pairs} flat pair{'s' * (pairs != 1)}", error)
    n = noise.n_bias_pairs
    rn_adu = Sourced(None, f"none: fewer than 2 biases ({len(biases)})") \
        if noise.readnoise_adu is None else \
        Sourced(noise.readnoise_adu, f"measured: {n} bias pair{'s' * (n != 1)}",
                noise.readnoise_adu_err)
    return {"gain": gain, "readnoise_adu": rn_adu}


def _final(readout, measured):
    """The Readout a frame is reduced with: its own values, else the measured ones."""
    if readout.unit != "adu":
        return readout  # electrons already: gain 1, read noise from header/configuration
    gain = readout.gain
    if gain.value is None and measured and measured["gain"].value is not None:
        gain = replace(measured["gain"])
    noise = readout.readnoise
    rn_adu = measured["readnoise_adu"] if measured else None
    if noise.value is None and rn_adu is not None and rn_adu.value is not None:
        if gain.value is not None:
            error = None if rn_adu.error is None else rn_adu.error * gain.value
            noise = Sourced(rn_adu.value * gain.value, rn_adu.source, error)
        else:  # the data stay in ADU, and so does their read noise
            noise = Sourced(rn_adu.value, rn_adu.source + " (ADU: no e-/ADU known)",
                            rn_adu.error)
    elif noise.value is not None and gain.value is None:  # e- beside data in ADU: unusable
        noise = Sourced(None, f"none: {noise.source} gives electrons, and no e-/ADU is "
                              "known to put the data in electrons")
    return replace(readout, gain=gain, readnoise=noise)


def _day(night):
    try:
        return date.fromisoformat(night).toordinal()
    except ValueError:  # 'unknown'
        return math.inf


def _borrow(measured):
    """A night that cannot measure a value takes the nearest night's, of the same detector
    (calibrations taken on the night before serve the next; so does their measurement)."""
    for (night, detector), values in measured.items():
        for name, value in values.items():
            if value.value is not None:
                continue
            lenders = [(abs(_day(n) - _day(night)), n, v[name])
                       for (n, d), v in measured.items()
                       if d == detector and n != night and v[name].value is not None
                       and "on night" not in v[name].source]
            if lenders:
                _, lender, found = min(lenders, key=lambda t: (t[0], t[1]))
                values[name] = replace(found, source=f"{found.source} on night {lender}")


def complete(plan, device):
    """The plan with every task's Readout completed by measurement where headers lack values.

    Parameters
    ----------
    plan : Plan
    device : {"cpu", "gpu"}

    Returns
    -------
    plan : Plan
    notes : list of str
        One line per night and detector measured, with the values and their sources.
    """
    lacking = defaultdict(list)
    for f in plan.frames:
        lacking[f.night, f.detector].append(f)
    measured, notes = {}, []
    for key, frames in sorted(lacking.items(), key=lambda kv: repr(kv[0])):
        if all(f.unit != "adu" or (f.gain.value is not None and f.readnoise.value is not None)
               for f in frames):
            continue
        try:
            values = _measure(frames, plan.config, device)
        except ValueError as exc:  # frames too small to measure, or of mixed shapes
            none = Sourced(None, f"none: not measurable ({exc})")
            values = {"gain": none, "readnoise_adu": none}
        measured[key] = values
    _borrow(measured)
    for (night, detector), values in measured.items():
        keys = " ".join(f"{k}={v}" for k, v in detector if v is not None)
        notes.append(f"{night} {keys}: gain {values['gain'].text('e-/ADU')}; "
                     f"read noise {values['readnoise_adu'].text('ADU')}")
    if not measured:
        return plan, notes
    by_path = {f.path: measured.get((f.night, f.detector)) for f in plan.frames}
    masters = tuple(replace(m, readout=tuple(_final(r, by_path.get(p))
                                             for p, r in zip(m.inputs, m.readout)))
                    for m in plan.masters)
    science = tuple(replace(t, readout=_final(t.readout, by_path.get(t.path)))
                    for t in plan.science)
    return replace(plan, masters=masters, science=science), notes
