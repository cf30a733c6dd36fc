"""The simulators behind tests, benchmarks and the demo: what they write is what they say."""

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from gpucal.plan import make_plan, scan
from gpucal.simulate import simulate_night


def test_simulated_night_is_a_plannable_raw_night(tmp_path):
    sim = simulate_night(tmp_path, shape=(96, 80), overscan=8, n_bias=3, n_dark=2, n_flat=3,
                         n_science=2)
    assert len(sim.paths) == 3 + 2 * 2 + 2 * 3 + 2 * 2
    header = fits.getheader(sim.paths[-1])
    assert header["IMAGETYP"] == "LIGHT" and header["FILTER"] == "R"
    assert header["BIASSEC"] == "[81:88,1:96]" and header["TRIMSEC"] == "[1:80,1:96]"
    raw = CCDData.read(sim.paths[0])  # readable by astropy, uint16 as a camera writes
    assert raw.shape == (96, 88) and str(raw.unit) == "adu"
    assert fits.getdata(sim.paths[0]).dtype.kind == "u"
    assert abs(np.median(raw.data) - 1000) < 10  # the bias level

    frames, skipped = scan(tmp_path)
    plan = make_plan(frames, skipped=skipped)
    kinds = sorted(m.kind for m in plan.masters)
    assert kinds == ["bias", "dark", "dark", "flat", "flat"] and not skipped
    assert len(plan.science) == 4 and not plan.unclassified
    assert all(t.flags[f"IERR_{k}"] == 0 for t in plan.science for k in ("BIAS", "DARK", "FLAT"))
    assert {t.night for t in plan.science} == {"2026-11-20"}


def test_simulated_truth_matches_the_frames(tmp_path):
    sim = simulate_night(tmp_path, seed=3, shape=(128, 128), overscan=8, n_bias=1, n_dark=1,
                         n_flat=2, n_science=1, filters=("V",))
    flat = fits.getdata(sim.paths[-3]).astype(float)[:, :128] - 1000
    assert np.median(flat[sim.bad_pixels]) < 0.6 * np.median(flat[~sim.bad_pixels])
    dark = fits.getdata(sim.paths[1]).astype(float)[:, :128] - 1000  # 60 s
    assert np.median(dark[sim.hot_pixels]) > np.median(dark[~sim.hot_pixels]) + 20
    (path, rays), = sim.cosmics.items()
    science = fits.getdata(path).astype(float)[:, :128]
    assert rays.any() and np.median(science[rays]) > np.median(science) + 50
