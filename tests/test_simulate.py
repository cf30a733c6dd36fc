"""The simulators behind tests, benchmarks and the demo: what they write is what they say."""

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from gpucal.pipeline.plan import make_plan, scan
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


def test_science_noise_is_what_the_headers_say(tmp_path):
    """Shot noise of the sky plus read noise, drawn once (GAIN and RDNOISE from the header)."""
    sim = simulate_night(tmp_path, seed=4, shape=(256, 256), overscan=8, n_bias=1, n_dark=1,
                         n_flat=1, n_science=1, filters=("V",), cosmic_rate=0.0)
    (path, rays), = sim.cosmics.items()
    assert not rays.any()  # no rays asked for
    header, data = fits.getheader(path), fits.getdata(path).astype(float)[:, :256]
    sky_e = (np.median(data) - 1000) * header["GAIN"]
    expected = np.sqrt(sky_e + header["RDNOISE"] ** 2) / header["GAIN"]  # ADU
    step = np.diff(data, axis=1)  # neighbours: the response and stars barely change
    measured = 1.4826 * np.median(np.abs(step - np.median(step))) / np.sqrt(2)
    assert abs(measured / expected - 1) < 0.1


def test_cosmic_rate_is_per_megapixel_and_minute(tmp_path):
    sim = simulate_night(tmp_path, seed=5, shape=(500, 400), overscan=8, n_bias=1, n_dark=1,
                         n_flat=1, n_science=1, filters=("V",), science_exposure=90.0,
                         cosmic_rate=100.0)
    (rays,) = sim.cosmics.values()
    from scipy.ndimage import label
    n_tracks = label(rays, np.ones((3, 3)))[1]  # 0.2 Mpx × 1.5 min × 100 = 30 rays
    assert 25 <= n_tracks <= 30  # a few cross or touch
