"""gpucal.pipeline.plan: header scan, classification, grouping, calibration choice (no pixels)."""

import dataclasses
import os
import pickle
import random

import numpy as np
import pytest
from astropy.io import fits
from astropy.time import Time

from gpucal.pipeline.config import InstrumentConfig, load_config
from gpucal.pipeline.plan import Choice, MasterTask, Plan, ScienceTask, make_plan
from gpucal.pipeline.scan import RawFrame, scan

from _helpers import sha256

CAMERA = {"INSTRUME": "SBIG ST-8", "DETECTOR": "KAF-1603", "XBINNING": 1, "YBINNING": 1,
          "READMODE": "normal"}


def write(path, imagetyp, date="2024-03-01T20:00:00", exptime=0.0, shape=(8, 10), **cards):
    """A tiny raw frame with a realistic header; None leaves a card out."""
    header = fits.Header({**CAMERA, "IMAGETYP": imagetyp, "DATE-OBS": date,
                          "EXPTIME": exptime, **cards})
    for key in [k for k, v in {**CAMERA, "IMAGETYP": imagetyp, "DATE-OBS": date,
                               "EXPTIME": exptime, **cards}.items() if v is None]:
        del header[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.writeto(path, np.zeros(shape, np.uint16), header)
    return path


def hours(h):
    """DATE-OBS `h` hours after 2024-03-01 18:00 UTC."""
    return Time(60370.75 + h / 24, format="mjd", scale="utc").isot


def frame(name, kind, mjd, exptime=0.0, night="2024-03-01", filt="R", binning=1, nx=10,
          instrument="CAM"):
    """A RawFrame as scan would make it (for make_plan tests without files)."""
    base = (("INSTRUME", instrument), ("DETECTOR", None), ("NAXIS1", nx), ("NAXIS2", 8),
            ("XBINNING", binning), ("YBINNING", binning), ("READMODE", None))
    signature = base + ((("FILTER", filt),) if kind in ("flat", "science") else ())
    flags = ("NO_DATE",) * (mjd is None)
    return RawFrame(f"/raw/{night}/{name}.fits", kind, night, mjd, exptime, (8, nx),
                    signature, flags, kind)


# -- scan ---------------------------------------------------------------------------------

def test_classification_aliases_and_case(tmp_path):
    names = {"a": "BIAS", "b": " Zero ", "c": "Bias Frame", "d": "dark", "e": "DARK FRAME",
             "f": "SkyFlat", "g": "Flat Field", "h": "domeflat", "i": "Light Frame",
             "j": "OBJECT", "k": "science", "l": "arc", "m": None}
    for name, imagetyp in names.items():
        write(tmp_path / f"{name}.fits", imagetyp, exptime=10.0)
    frames, skipped = scan(tmp_path)
    kinds = {os.path.basename(f.path)[0]: f.kind for f in frames}
    assert kinds == dict(a="bias", b="bias", c="bias", d="dark", e="dark", f="flat",
                         g="flat", h="flat", i="science", j="science", k="science",
                         l="unknown", m="unknown")
    assert skipped == ()
    assert frames[11].imagetyp == "arc" and frames[12].imagetyp is None


def test_signature_values_missing_keyword_is_none(tmp_path):
    write(tmp_path / "s.fits", "light", exptime=30.0, FILTER="V", READMODE=None)
    write(tmp_path / "b.fits", "bias", shape=(6, 12))
    (b, s), _ = scan(tmp_path)
    assert s.signature == (("INSTRUME", "SBIG ST-8"), ("DETECTOR", "KAF-1603"), ("NAXIS1", 10),
                           ("NAXIS2", 8), ("XBINNING", 1), ("YBINNING", 1), ("READMODE", None),
                           ("FILTER", "V"))
    assert [k for k, _ in b.signature] == ["INSTRUME", "DETECTOR", "NAXIS1", "NAXIS2",
                                           "XBINNING", "YBINNING", "READMODE"]
    assert b.shape == (6, 12) and dict(b.signature)["NAXIS1"] == 12
    assert s.exptime == 30.0 and s.flags == ()


def test_night_from_date_never_from_folders_noon_to_noon_ut(tmp_path):
    """Folders by target or camera are common: a night is told from DATE-OBS alone."""
    write(tmp_path / "run-A" / "deep" / "x.fits", "bias", date="2024-03-05T03:00:00")
    write(tmp_path / "evening.fits", "bias", date="2024-03-01T23:00:00")
    write(tmp_path / "morning.fits", "bias", date="2024-03-02T05:00:00")
    write(tmp_path / "noon.fits", "bias", date="2024-03-02T12:30:00")
    write(tmp_path / "nodate.fits", "bias", date=None)
    nights = {os.path.basename(f.path): f.night for f in scan(tmp_path)[0]}
    assert nights == {"x.fits": "2024-03-04", "evening.fits": "2024-03-01",
                      "morning.fits": "2024-03-01", "noon.fits": "2024-03-02",
                      "nodate.fits": "unknown"}
    config = dataclasses.replace(InstrumentConfig(), night_offset_hours=6.0)
    nights = {os.path.basename(f.path): f.night for f in scan(tmp_path, config=config)[0]}
    assert nights["morning.fits"] == "2024-03-01" and nights["evening.fits"] == "2024-03-01"


def test_mjd_obs_preferred_flags_and_exposure_fallback(tmp_path):
    write(tmp_path / "a.fits", "light", date="2024-03-01T20:00:00", **{"MJD-OBS": 60371.75})
    write(tmp_path / "b.fits", "light", date="2024-03-01T20:00:00", exptime=None, EXPOSURE=12.5)
    write(tmp_path / "c.fits", "light", date="not a date", exptime=None)
    write(tmp_path / "d.fits", "dark", date="2024-03-01T20:00:00", **{"MJD-OBS": -1.0})
    a, b, c, d = scan(tmp_path)[0]
    assert a.mjd == 60371.75 and a.night == "2024-03-02"
    assert b.mjd == pytest.approx(Time("2024-03-01T20:00:00").mjd) and b.exptime == 12.5
    assert c.mjd is None and c.flags == ("NO_DATE", "NO_EXPTIME") and c.night == "unknown"
    assert d.mjd == pytest.approx(Time("2024-03-01T20:00:00").mjd)  # bad MJD-OBS: DATE-OBS


def test_extension_image_inherits_primary_cards(tmp_path):
    primary = fits.PrimaryHDU(header=fits.Header({"IMAGETYP": "flat", "FILTER": "B",
                                                  "DATE-OBS": "2024-03-01T20:00:00"}))
    image = fits.CompImageHDU(np.zeros((8, 10), np.float32))
    fits.HDUList([primary, image]).writeto(tmp_path / "mef.fits")
    (f,), _ = scan(tmp_path)
    assert f.kind == "flat" and f.shape == (8, 10) and dict(f.signature)["FILTER"] == "B"


def test_bad_files_are_skipped_with_reason(tmp_path):
    good = write(tmp_path / "good.fits", "bias")
    (tmp_path / "random.fits").write_bytes(bytes(random.Random(0).randrange(256)
                                                 for _ in range(5000)))
    data = good.read_bytes()
    (tmp_path / "truncated.fits").write_bytes(data[:2880 + 40])
    (tmp_path / "cut_header.fit").write_bytes(data[:1000])
    (tmp_path / "empty.fts").write_bytes(b"")
    table = fits.BinTableHDU.from_columns([fits.Column(name="x", format="E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "table.fits")
    fits.writeto(tmp_path / "cube.fits", np.zeros((2, 8, 10), np.float32))
    (tmp_path / "notes.txt").write_text("not FITS, not scanned")
    frames, skipped = scan(tmp_path)
    assert [os.path.basename(f.path) for f in frames] == ["good.fits"]
    reasons = {os.path.basename(s.path): s.reason for s in skipped}
    assert set(reasons) == {"random.fits", "truncated.fits", "cut_header.fit", "empty.fts",
                            "table.fits", "cube.fits"}
    assert "truncated" in reasons["truncated.fits"]
    assert "no image HDU" in reasons["table.fits"]
    assert "3-D" in reasons["cube.fits"]
    assert "not readable as FITS" in reasons["random.fits"]


def test_gzip_and_suffixes_found(tmp_path):
    write(tmp_path / "a.fits.gz", "bias")
    write(tmp_path / "b.FIT", "bias")
    write(tmp_path / "c.fts", "bias")
    assert [os.path.basename(f.path) for f in scan(tmp_path)[0]] == ["a.fits.gz", "b.FIT",
                                                                      "c.fts"]


def test_nights_glob(tmp_path):
    for night in ("2024-03-01", "2024-03-02", "2024-04-01"):
        write(tmp_path / "target" / f"b{night}.fits", "bias", date=f"{night}T21:00:00")
    (tmp_path / "junk.fits").write_bytes(b"junk")
    write(tmp_path / "loose.fits", "bias", date="2024-03-07T22:00:00")
    frames, skipped = scan(tmp_path, nights="2024-03-*")
    assert [f.night for f in frames] == ["2024-03-07", "2024-03-01", "2024-03-02"]
    assert [os.path.basename(s.path) for s in skipped] == ["junk.fits"]  # of no night


def test_missing_and_empty_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan(tmp_path / "nope")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        scan(write(tmp_path / "a.fits", "bias"))
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no FITS files .* in .*empty"):
        scan(tmp_path / "empty")


def test_raw_files_unchanged_and_plan_of_a_night(tmp_path):
    raw = tmp_path / "raw"
    for i in range(3):
        write(raw / "2024-03-01" / f"bias{i}.fits", "zero", date=hours(i / 10))
        write(raw / "2024-03-01" / f"dark{i}.fits", "dark", date=hours(0.5 + i / 10),
              exptime=60.0)
        write(raw / "2024-03-01" / f"flat{i}.fits", "skyflat", date=hours(1 + i / 10),
              exptime=2.0 + i, FILTER="R")
        write(raw / "2024-03-01" / f"obj{i}.fits", "light", date=hours(3 + i), exptime=60.0,
              FILTER="R")
    before = {p: sha256(p) for p in raw.rglob("*.fits")}
    frames, skipped = scan(raw)
    plan = make_plan(frames, skipped=skipped)
    assert {p: sha256(p) for p in raw.rglob("*.fits")} == before
    assert [(m.kind, len(m.inputs)) for m in plan.masters] == [("bias", 3), ("dark", 3),
                                                               ("flat", 3)]
    bias, dark, flat = plan.masters
    assert dark.calibrations["bias"].output == bias.output and dark.flags["IERR_BIAS"] == 0
    assert flat.calibrations["dark"].scale and flat.exptime is None  # flats of 2, 3, 4 s
    assert [(m.kind, m.master) for m in plan.masks] == [("hot_pixels", dark.output),
                                                        ("ccdmask", flat.output)]
    task = plan.science[0]
    assert (task.bias.output, task.dark.output, task.flat.output) == (bias.output, dark.output,
                                                                       flat.output)
    assert not task.dark.scale and task.masks == tuple((m.output, m.kind) for m in plan.masks)
    assert task.output == "2024-03-01/science/obj0.fits"
    assert task.flags == {"IERR_BIAS": 0, "DELTA_MJD_BIAS": pytest.approx(-2.9 / 24),
                          "IERR_DARK": 0, "DELTA_MJD_DARK": pytest.approx(-2.4 / 24),
                          "IERR_FLAT": 0, "DELTA_MJD_FLAT": pytest.approx(-1.9 / 24)}
    pickle.loads(pickle.dumps(plan))  # tasks can be shipped to workers


# -- make_plan ----------------------------------------------------------------------------

def test_time_blocks_anchored_at_first_frame():
    t0 = 60370.0
    frames = [frame(f"b{h}", "bias", t0 + h / 24) for h in (13, 0, 11, 5)]
    plan = make_plan(frames)
    blocks = [[os.path.basename(p) for p in m.inputs] for m in plan.masters]
    assert blocks == [["b0.fits", "b5.fits", "b11.fits"], ["b13.fits"]]
    assert plan.masters[0].mjd == pytest.approx(t0 + 16 / 3 / 24)
    assert [m.output for m in plan.masters] == ["2024-03-01/masters/bias_CAM_10_8_1_1_1.fits",
                                                "2024-03-01/masters/bias_CAM_10_8_1_1_2.fits"]
    undated = make_plan(frames + [frame("u1", "bias", None), frame("u2", "bias", None)])
    assert undated.masters[-1].inputs == ("/raw/2024-03-01/u1.fits", "/raw/2024-03-01/u2.fits")
    assert undated.masters[-1].mjd is None
    assert [f.path for f in undated.unclassified] == list(undated.masters[-1].inputs)


def test_darks_split_by_exposure():
    frames = [frame(f"d{i}", "dark", 60370.0 + i / 100, exptime=e)
              for i, e in enumerate([30.0, 60.0, 30.0, 60.0, 120.0])]
    plan = make_plan(frames)
    assert [(m.exptime, len(m.inputs)) for m in plan.masters] == [(30.0, 2), (60.0, 2),
                                                                  (120.0, 1)]
    assert len({m.output for m in plan.masters}) == 3
    assert "_30s_" in plan.masters[0].output and len(plan.masks) == 3
    assert all(m.calibrations == {"bias": None} and m.flags["IERR_BIAS"] == 2
               for m in plan.masters)


def test_closest_in_time_across_nights():
    frames = [frame("b1", "bias", 60370.9, night="2024-03-01"),
              frame("b2", "bias", 60372.1, night="2024-03-03"),
              frame("s", "science", 60371.8, night="2024-03-02")]
    task = make_plan(frames).science[0]
    assert task.bias.output.startswith("2024-03-03/masters/")
    assert task.bias.delta_mjd == pytest.approx(0.3) and task.bias.ierr == 0


def test_dark_prefers_equal_exposure_else_scaled():
    frames = [frame("d30", "dark", 60371.0, exptime=30.0),
              frame("d60", "dark", 60370.5, exptime=60.0),
              frame("s60", "science", 60371.0, exptime=60.0),
              frame("s45", "science", 60370.6, exptime=45.0)]
    plan = make_plan(frames)
    s45, s60 = plan.science
    assert "_60s_" in s60.dark.output and not s60.dark.scale  # equal, though farther in time
    assert s60.dark.delta_mjd == pytest.approx(-0.5)
    assert "_60s_" in s45.dark.output and s45.dark.scale  # closest in time, scaled
    assert s45.masks == ((f"2024-03-01/masks/{os.path.basename(s45.dark.output)[:-5]}"
                          "_hot_pixels.fits", "hot_pixels"),)


def test_fallback_ierr1_and_missing_ierr2():
    frames = [frame("b", "bias", 60370.0, instrument="OTHER"),
              frame("f", "flat", 60370.0, filt="V"),
              frame("f2", "flat", 60370.1, filt="B", binning=2),
              frame("s", "science", 60370.2, filt="R")]
    refused = make_plan(frames).science[0]  # by default, never a flat of another filter
    assert refused.flat is None and refused.flags["IERR_FLAT"] == 2
    assert refused.flags["NO_FLAT"] and refused.flags["FLAT_FALLBACK_REFUSED"]
    assert "allow_fallback.flat = false" in make_plan(frames).describe()
    config = InstrumentConfig(allow_fallback={"bias": True, "dark": True, "flat": True})
    plan = make_plan(frames, config)
    task = plan.science[0]
    assert task.bias.ierr == 1 and task.flags["IERR_BIAS"] == 1  # same shape and binning
    assert task.flat.ierr == 1 and "_V_" in task.flat.output  # binning 2 is no fallback
    assert task.dark is None and task.flags["IERR_DARK"] == 2
    assert task.flags["DELTA_MJD_DARK"] is None
    assert task.flags["DELTA_MJD_FLAT"] == pytest.approx(-0.2)
    wide = make_plan([frame("b", "bias", 60370.0), frame("s", "science", 60370.1, nx=20)])
    assert wide.science[0].bias is None and wide.science[0].flags["IERR_BIAS"] == 2


def test_no_date_science_is_planned_and_listed():
    frames = [frame("b1", "bias", 60370.0, night="2024-03-01"),
              frame("b2", "bias", 60371.0, night="2024-03-02"),
              frame("s", "science", None, night="2024-03-02"),
              dataclasses.replace(frame("arc", "science", 60371.0), kind="unknown",
                                  imagetyp="ARC")]
    plan = make_plan(frames)
    (task,) = plan.science
    assert task.bias.output.startswith("2024-03-02/") and task.bias.delta_mjd is None
    assert task.frame_flags == ("NO_DATE",)
    assert {f.path.rsplit("/", 1)[1] for f in plan.unclassified} == {"s.fits", "arc.fits"}


def test_science_outputs_unique():
    frames = [dataclasses.replace(frame("s", "science", 60370.0), path="/raw/a/s.fits"),
              dataclasses.replace(frame("s", "science", 60370.0), path="/raw/b/s.fit")]
    assert [t.output for t in make_plan(frames).science] == ["2024-03-01/science/s.fits",
                                                             "2024-03-01/science/s_2.fits"]


def test_deterministic_under_shuffling():
    frames = ([frame(f"b{i}", "bias", 60370 + i / 3, night=f"n{i // 3}") for i in range(9)]
              + [frame(f"d{i}", "dark", 60370 + i / 4, exptime=10.0 * (i % 2 + 1))
                 for i in range(8)]
              + [frame(f"f{i}", "flat", 60370 + i / 5, filt="RV"[i % 2]) for i in range(6)]
              + [frame(f"s{i}", "science", 60370 + i / 7, exptime=10.0, filt="RVB"[i % 3])
                 for i in range(7)])
    reference = make_plan(frames)
    shuffled = frames[:]
    random.Random(1).shuffle(shuffled)
    again = make_plan(shuffled)
    assert again == reference and again.describe() == reference.describe()
    assert all(isinstance(t, MasterTask) for t in again.masters)
    assert all(isinstance(t, ScienceTask) for t in again.science)


def test_describe_content():
    frames = [frame("b1", "bias", 60370.0), frame("b2", "bias", 60370.01),
              frame("d1", "dark", 60370.1, exptime=30.0),
              frame("s1", "science", 60370.2, exptime=60.0),
              dataclasses.replace(frame("x", "science", 60370.0), kind="unknown",
                                  imagetyp="arc")]
    from gpucal.pipeline.scan import Skipped
    text = make_plan(frames, skipped=[Skipped("/raw/bad.fits", "truncated")]).describe()
    assert "night 2024-03-01" in text
    assert "bias group INSTRUME=CAM" in text and ": 2 frames, 1 master(s)" in text
    assert "2024-03-01/masters/bias_CAM_10_8_1_1_1.fits <- 2 inputs, MJD 60370.00500" in text
    assert "dark group" in text and "EXPTIME=30" in text
    assert "science s1.fits -> 2024-03-01/science/s1.fits" in text
    assert "delta_mjd -0.1950 d, IERR=0)" in text
    assert "scaled by exposure" in text and "flat: none (IERR=2)" in text
    assert "unclassified /raw/2024-03-01/x.fits: kind unknown, IMAGETYP='arc'" in text
    assert "skipped /raw/bad.fits: truncated" in text
    assert text.splitlines()[-2:] == ["masters: 2 (1 bias, 1 dark, 0 flat); masks: 1",
                                      "science: 1 (1 with IERR > 0); unclassified: 1; "
                                      "skipped: 1"]


def test_plan_dataclasses_are_frozen():
    plan = make_plan([frame("b", "bias", 60370.0)])
    assert isinstance(plan, Plan)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.masters[0].output = "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Choice("m.fits", 0.1, 0).ierr = 2


# -- configuration ------------------------------------------------------------------------

def test_config_defaults():
    config = load_config()
    assert config == InstrumentConfig()
    assert "flat field" in config.aliases["flat"] and "zero" in config.aliases["bias"]
    assert config.signature["science"][-1] == "FILTER" and "FILTER" not in config.signature["dark"]
    assert config.maxtimespan_hours == {"bias": 12.0, "dark": 12.0, "flat": 12.0}
    assert config.night_offset_hours is None and config.site_longitude is None  # noon UT
    assert config.preset == "auto" and config.allow_fallback == {"bias": True, "dark": True,
                                                                 "flat": False}
    assert config.keywords == {"date": "DATE-OBS", "mjd": "MJD-OBS",
                               "time": ("TIME-OBS", "UT", "UTSTART", "UT-START", "TIME_OBS"),
                               "exptime": ("EXPTIME", "EXPOSURE"), "imagetyp": "IMAGETYP",
                               "gain": ("EGAIN", "GAIN"), "gain_setting": (),
                               "readnoise": ("RDNOISE", "READNOIS", "RON", "READNOISE"),
                               "longitude": ("SITELONG", "LONG-OBS", "OBSGEO-L"),
                               "biassec": "BIASSEC", "trimsec": "TRIMSEC"}
    assert config.saturation == 65535.0
    assert config.combine == {"bias": {}, "dark": {}, "flat": {}}
    assert (config.ccdmask, config.hot_pixels, config.cosmics) == ({}, {}, {"enabled": True})


TOML = """
night_offset_hours = 14
fallback_keywords = ["CCDBINX"]
saturation = 60000

[aliases]
science = ["light", "target"]

[signature]
bias = ["CCDNAME", "NAXIS1", "NAXIS2"]

[maxtimespan_hours]
dark = 2.5

[keywords]
exptime = "EXPOSURE"
date = "date-obs"
gain = ["CCDGAIN", "GAIN"]
trimsec = "DATASEC"

[combine.dark]
method = "median"
sigma_clip = false

[hot_pixels]
threshold = 5.0

[cosmics]
enabled = false
"""


def test_config_override(tmp_path):
    (tmp_path / "inst.toml").write_text(TOML)
    config = load_config(tmp_path / "inst.toml")
    assert config.source == str(tmp_path / "inst.toml")
    assert config.night_offset_hours == 14.0 and config.fallback_keywords == ("CCDBINX",)
    assert config.aliases["science"] == ("light", "target") and "zero" in config.aliases["bias"]
    assert config.signature["bias"] == ("CCDNAME", "NAXIS1", "NAXIS2")
    assert config.signature["flat"] == InstrumentConfig().signature["flat"]
    assert config.maxtimespan_hours == {"bias": 12.0, "dark": 2.5, "flat": 12.0}
    assert config.keywords["exptime"] == ("EXPOSURE",) and config.keywords["date"] == "DATE-OBS"
    assert config.keywords["gain"] == ("CCDGAIN", "GAIN") and config.keywords["trimsec"] == "DATASEC"
    assert config.saturation == 60000.0
    assert config.combine["dark"] == {"method": "median", "sigma_clip": False}
    assert config.hot_pixels == {"threshold": 5.0} and config.cosmics == {"enabled": False}


def test_config_drives_scan(tmp_path):
    (tmp_path / "inst.toml").write_text(TOML)
    config = load_config(tmp_path / "inst.toml")
    write(tmp_path / "raw" / "t.fits", "Target", exptime=None, EXPOSURE=5.0, CCDNAME="X")
    write(tmp_path / "raw" / "b.fits", "zero", CCDNAME="X")
    b, t = scan(tmp_path / "raw", config=config)[0]
    assert t.kind == "science" and t.exptime == 5.0
    assert b.signature == (("CCDNAME", "X"), ("NAXIS1", 10), ("NAXIS2", 8))


@pytest.mark.parametrize("text, key", [
    ("nigth_offset_hours = 12", "'nigth_offset_hours' is not a known key"),
    ("[signature]\nsky = ['FILTER']", "'signature.sky' is not a known key"),
    ("[maxtimespan_hours]\nbias = 'long'", "'maxtimespan_hours.bias' must be a number"),
    ("[maxtimespan_hours]\nflat = -1", "'maxtimespan_hours.flat' must be at least 0"),
    ("[signature]\nflat = [1, 2]", "'signature.flat' must be a string or a list of strings"),
    ("ccdmask = 3", "'ccdmask' must be a table"),
    ("[keywords]\ndate = ['A', 'B']", "'keywords.date' must be a string"),
    ("[keywords]\nbiassec = ['A', 'B']", "'keywords.biassec' must be a string"),
    ("[keywords]\nfilter = 'FILT'", "'keywords.filter' is not a known key"),
    ("saturation = -5", "'saturation' must be at least 0"),
    ("[cosmics]\nenabled = 'yes'", "'cosmics.enabled' must be true or false"),
    ("[aliases]\ndark = ['zero']", "'aliases' gives 'zero' for both bias and dark"),
    ("night_offset_hours = ", "not valid TOML"),
])
def test_config_errors_name_key_and_file(tmp_path, text, key):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError) as info:
        load_config(path)
    assert str(path) in str(info.value) and key in str(info.value)


def test_config_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_config(tmp_path / "none.toml")


@pytest.mark.parametrize("relative, kind", [
    ("2024-03-01/Darks/Capture_0001.fits", "dark"), ("Flats/L/frame_01.fit", "flat"),
    ("bias/00001.fits", "bias"), ("M42/Lights/M42_30s_0001.fits", "science"),
    ("calibration/darkflat_001.fits", "dark"), ("M42/21_30_15/Capture_00001.fits", None),
    ("flats/DarkFlat_0001.fits", "dark"),  # the file's own name before its folder's
])
def test_a_frame_without_imagetyp_takes_the_kind_its_path_names(tmp_path, relative, kind):
    path = tmp_path / relative
    write(path, None)  # no IMAGETYP card, as SharpCap writes
    (frame,), _ = scan(tmp_path)
    assert frame.kind == (kind or "unknown") and frame.imagetyp is None
    assert frame.kind_source == ("path" if kind else "IMAGETYP")
