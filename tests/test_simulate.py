"""The simulators behind tests, benchmarks and the demo: what they write is what they say."""

import os
import re

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.time import Time

from gpucal.pipeline.plan import make_plan
from gpucal.pipeline.scan import scan
from gpucal.simulate import CONVENTIONS, simulate_night


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


# What each program writes (an independent description: the simulator is the oracle for
# gpucal/pipeline/presets.py, so neither reads the other). creator: (card, pattern);
# imagetyp: kind -> value (None: no IMAGETYP card); egain: the card with the true e-/ADU
# (None: none written); exposure: cards; longitude: (card, parser of its value).
def _dms(text):
    sign = -1 if text.strip().startswith("-") else 1
    d, m, s = (abs(float(x)) for x in text.split())
    return sign * (d + m / 60 + s / 3600)


PROGRAMS = {
    "nina": dict(creator=("SWCREATE", r"^N\.I\.N\.A\. \d"), egain="EGAIN",
                 imagetyp={"bias": "BIAS", "dark": "DARK", "flat": "FLAT", "science": "LIGHT",
                           "darkflat": "DARKFLAT"},
                 exposure=("EXPOSURE", "EXPTIME"), longitude=("SITELONG", float), decimals=7),
    "sharpcap": dict(creator=("SWCREATE", r"^SharpCap v4"), egain="EGAINSAV", imagetyp=None,
                     exposure=("EXPTIME",), longitude=None, decimals=7),
    "asiair": dict(creator=("CREATOR", r"^ZWO ASIAIR"), egain=None,
                   imagetyp={"bias": "Bias", "dark": "Dark", "flat": "Flat", "science": "Light",
                             "darkflat": "Dark"},
                   exposure=("EXPOSURE", "EXPTIME"), longitude=("SITELONG", float), decimals=6),
    "maxim": dict(creator=("SWCREATE", r"^MaxIm DL Version"), egain="EGAIN",
                  imagetyp={"bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Frame",
                            "science": "Light Frame", "darkflat": "Dark Frame"},
                  exposure=("EXPTIME", "EXPOSURE"), longitude=("SITELONG", _dms), decimals=2),
    "acp": dict(creator=("SWCREATE", r"^MaxIm DL Version"), egain="EGAIN",
                imagetyp={"bias": "Bias Frame", "dark": "Dark Frame", "flat": "Flat Frame",
                          "science": "Light Frame", "darkflat": "Dark Frame"},
                exposure=("EXPTIME", "EXPOSURE"), longitude=("LONG-OBS", float), decimals=0),
}
SMALL = dict(shape=(24, 20), n_bias=2, n_dark=1, dark_exposures=(60.0,), n_flat=2,
             n_science=1, filters=("R",), cosmic_rate=5.0)


def _name_kind(path):
    name = os.path.basename(path)
    prefixes = (("darkflat", "darkflat"), ("bias", "bias"), ("dark", "dark"), ("flat", "flat"),
                ("sci", "science"))
    return next(kind for prefix, kind in prefixes if name.startswith(prefix))


def test_conventions_are_the_programs_and_gpucal():
    assert set(CONVENTIONS) == {"gpucal"} | set(PROGRAMS)


@pytest.mark.parametrize("convention", sorted(PROGRAMS))
def test_each_convention_writes_its_programs_headers(tmp_path, convention):
    program = PROGRAMS[convention]
    sim = simulate_night(tmp_path, seed=7, convention=convention, site_longitude=-71.25,
                         n_dark_flat=1, gain=1.25, readnoise=3.5, **SMALL)
    assert sim.convention == convention and (sim.gain, sim.readnoise) == (1.25, 3.5)
    assert len(sim.paths) == 2 + 1 + 2 + 1 + 1
    for path in sim.paths:
        kind = _name_kind(path)
        assert sim.kinds[path] == ("dark" if kind == "darkflat" else kind)
        header = fits.getheader(path)
        data = fits.getdata(path)
        assert data.dtype == np.uint16 and data.shape == (24, 20)  # no overscan columns
        card, pattern = program["creator"]
        assert re.search(pattern, header[card]), header.get(card)
        if program["imagetyp"] is None:
            assert "IMAGETYP" not in header
        else:
            assert header["IMAGETYP"] == program["imagetyp"][kind]
        for absent in ("BUNIT", "BIASSEC", "TRIMSEC", "DETECTOR"):
            assert absent not in header
        assert ("RDNOISE" in header) == (convention == "sharpcap")
        if convention == "sharpcap":
            assert header["RDNOISE"] == 3.5
        if program["egain"]:
            assert header[program["egain"]] == 1.25
        if "GAIN" in header:  # a CMOS program's sensor gain setting, never e-/ADU
            assert header["GAIN"] == 100 and isinstance(header["GAIN"], int)
            assert header["OFFSET"] == 50
        exptime = {"bias": 0.0, "dark": 60.0, "darkflat": 5.0, "flat": 5.0,
                   "science": 120.0}[kind]
        for exposure in program["exposure"]:
            assert header[exposure] == exptime
        date = header["DATE-OBS"]
        decimals = len(date.split(".")[1]) if "." in date else 0
        assert decimals == program["decimals"], date
        Time(date, scale="utc")  # astropy reads it
        if program["longitude"]:
            keyword, parse = program["longitude"]
            assert abs(parse(header[keyword]) - -71.25) < 1 / 3600
        else:
            assert not {"SITELONG", "LONG-OBS", "OBSGEO-L"} & set(header)
        assert ("FILTER" in header) == (kind in ("flat", "science") or convention == "nina")
        assert (header.get("OBJECT") or None) == ("M42" if kind == "science" else None)


def test_program_specific_cards(tmp_path):
    sims = {c: simulate_night(tmp_path / c, convention=c, site_longitude=150.5, **SMALL)
            for c in ("nina", "sharpcap", "acp")}
    nina = fits.getheader(sims["nina"].paths[0])
    utc, local = Time(nina["DATE-OBS"]), Time(nina["DATE-LOC"])
    assert round((local - utc).sec / 3600, 6) == 10  # round(150.5 / 15) hours east
    assert abs(nina["MJD-OBS"] - utc.mjd) < 1e-6
    sharpcap = fits.getheader(sims["sharpcap"].paths[-1])
    assert sharpcap["EGAIN"] == 1.5 * 2 ** (16 - sharpcap["ADCBITS"])  # at the ADC's depth
    assert abs((Time(sharpcap["DATE-END"]) - Time(sharpcap["DATE-OBS"])).sec - 120) < 1e-3
    acp = fits.getheader(sims["acp"].paths[-1])
    day, month, year = acp["DATE"].split("/")
    assert f"20{year}-{month}-{day}T{acp['TIME-OBS']}" == acp["DATE-OBS"] == \
        f"20{year}-{month}-{day}T{acp['UT']}"
    assert acp["SITELONG"] == "150 30 00" and acp["LONG-OBS"] == 150.5
    assert acp["CLRBAND"] == "R" and "PinPoint" in str(acp["HISTORY"])
    acp_bias = fits.getheader(sims["acp"].paths[0])
    assert "CLRBAND" not in acp_bias and "HISTORY" not in acp_bias


def test_nina_writes_the_wheels_filter_on_darks_too(tmp_path):
    sim = simulate_night(tmp_path, convention="nina", **{**SMALL, "filters": ("Ha", "L")})
    assert fits.getheader(sim.paths[0])["FILTER"] == "Ha"  # a bias


def test_default_overscan_is_the_conventions(tmp_path):
    kw = dict(SMALL, n_bias=1, n_flat=1)
    assert fits.getdata(simulate_night(tmp_path / "a", **kw).paths[0]).shape == (24, 52)
    assert fits.getdata(simulate_night(tmp_path / "b", convention="maxim", **kw)
                        .paths[0]).shape == (24, 20)
    nina = simulate_night(tmp_path / "c", convention="nina", overscan=4, **kw)
    assert fits.getdata(nina.paths[0]).shape == (24, 24)  # asked for: no BIASSEC says so
    assert "BIASSEC" not in fits.getheader(nina.paths[0])


@pytest.mark.parametrize("layout, expected", [
    ("night", ["2026-11-20/bias_001.fits", "2026-11-20/sciR_001.fits"]),
    ("flat", ["bias_001.fits", "sciR_001.fits"]),
    ("target", ["calibration/bias_001.fits", "NGC 7000/sciR_001.fits"]),
    ("camera", ["ZWO ASI2600MM Pro/2026-11-20/bias_001.fits",
                "ZWO ASI2600MM Pro/2026-11-20/sciR_001.fits"]),
])
def test_files_land_in_the_layout_asked(tmp_path, layout, expected):
    sim = simulate_night(tmp_path, convention="asiair", layout=layout, target="NGC 7000",
                         **SMALL)
    relative = [os.path.relpath(p, tmp_path) for p in sim.paths]
    assert [relative[0], relative[-1]] == expected
    assert all(os.path.isfile(p) for p in sim.paths)
    assert sorted(os.path.relpath(os.path.join(d, f), tmp_path)
                  for d, _, files in os.walk(tmp_path) for f in files) == sorted(relative)


@pytest.mark.parametrize("suffix", [".fit", ".fts", ".fits.gz", ".fits.fz"])
def test_suffixes_hold_the_same_frames(tmp_path, suffix):
    kw = dict(SMALL, n_bias=1, n_flat=1, seed=2)
    plain = simulate_night(tmp_path / "plain", convention="nina", **kw)
    other = simulate_night(tmp_path / "other", convention="nina", suffix=suffix, **kw)
    for a, b in zip(plain.paths, other.paths):
        assert b.endswith(suffix) and os.path.basename(b)[:-len(suffix)] in a
        assert np.array_equal(fits.getdata(a), fits.getdata(b))
        ext = 1 if suffix == ".fits.fz" else 0
        assert fits.getheader(b, ext)["IMAGETYP"] == fits.getheader(a)["IMAGETYP"]
    if suffix == ".fits.gz":
        with open(other.paths[0], "rb") as f:
            assert f.read(2) == b"\x1f\x8b"
    if suffix == ".fits.fz":
        with fits.open(other.paths[0]) as hdul:
            assert isinstance(hdul[1], fits.CompImageHDU) and hdul[0].data is None


def test_science_in_a_filter_without_flats(tmp_path):
    sim = simulate_night(tmp_path, filters=("R",), science_filters=("R", "Ha"), n_science=2,
                         **{k: v for k, v in SMALL.items() if k not in ("filters", "n_science")})
    flats = {fits.getheader(p)["FILTER"] for p in sim.paths if sim.kinds[p] == "flat"}
    science = [fits.getheader(p)["FILTER"] for p in sim.paths if sim.kinds[p] == "science"]
    assert flats == {"R"} and science == ["R", "R", "Ha", "Ha"]
    assert len(sim.cosmics) == 4


def test_start_time_and_frames_past_midnight(tmp_path):
    sim = simulate_night(tmp_path, convention="maxim", start="22:30", site_longitude=-105.0,
                         **{**SMALL, "n_science": 3})
    times = [Time(fits.getheader(p)["DATE-OBS"]) for p in sim.paths]
    assert times[0].isot == "2026-11-20T22:30:00.000"
    assert times == sorted(times) and times[-1].isot.startswith("2026-11-21T")  # UTC date turns
    assert fits.getheader(sim.paths[0])["SITELONG"] == "-105 00 00"
    seconds = simulate_night(tmp_path / "s", start="05:06:07", **SMALL)
    assert fits.getheader(seconds.paths[0])["DATE-OBS"] == "2026-11-20T05:06:07.000"


def test_gpucal_convention_takes_a_site_longitude(tmp_path):
    sim = simulate_night(tmp_path, site_longitude=-70.7, **SMALL)
    header = fits.getheader(sim.paths[0])
    assert header["SITELONG"] == -70.7 and header["GAIN"] == 1.5
    assert "SITELONG" not in fits.getheader(simulate_night(tmp_path / "b", **SMALL).paths[0])


def test_dark_flats_are_darks_of_the_flats_exposure(tmp_path):
    sim = simulate_night(tmp_path, n_dark_flat=2, **SMALL)
    dark_flats = [p for p in sim.paths if "darkflat" in p]
    assert len(dark_flats) == 2 and {sim.kinds[p] for p in dark_flats} == {"dark"}
    assert {fits.getheader(p)["EXPTIME"] for p in dark_flats} == {5.0}
    assert {fits.getheader(p)["IMAGETYP"] for p in dark_flats} == {"DARK"}


def test_a_maxim_night_is_plannable_with_the_default_aliases(tmp_path):
    simulate_night(tmp_path, convention="maxim", **SMALL)
    frames, skipped = scan(tmp_path)
    assert not skipped and sorted({f.kind for f in frames}) == ["bias", "dark", "flat",
                                                                 "science"]
    plan = make_plan(frames, skipped=skipped)
    assert len(plan.science) == 1


@pytest.mark.parametrize("kwargs", [dict(convention="voyager"), dict(layout="date"),
                                    dict(suffix=".fitz"), dict(start="5pm"),
                                    dict(start="17")])
def test_unknown_options_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError):
        simulate_night(tmp_path, **SMALL, **kwargs)
    assert not os.listdir(tmp_path)  # refused before anything is written


@pytest.mark.parametrize("suffix", [".fits", ".fits.fz"])
def test_existing_files_are_never_overwritten(tmp_path, suffix):
    simulate_night(tmp_path, suffix=suffix, **SMALL)
    with pytest.raises(OSError):
        simulate_night(tmp_path, suffix=suffix, **SMALL)
