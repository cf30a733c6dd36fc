"""Nights written the way small observatories' acquisition programs write them.

The simulator (gpucal.simulate, ``convention=``) writes each program's headers from its own
description of them; gpucal reads them through gpucal.pipeline.presets. Neither reads the
other, so these tests check the reader against an independent oracle: the right e-/ADU (or
one measured within 10 % of the truth), read noise measured within 10 %, BUNIT on every
product, nights from the time and the site's longitude whatever the folders, no flat of
another filter, and a summary that names what it could not do.
"""

import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

import gpucal
from gpucal.cli import main
from gpucal.pipeline.results import ResultsDB
from gpucal.simulate import simulate_night

SHAPE = (128, 128)
# (program, e-/ADU in its header?) -- the simulator's ground truth is gain=, readnoise=
PROGRAMS = {"nina": True, "asiair": False, "maxim": True, "acp": True, "sharpcap": True}


def _night(tmp_path, convention, **options):
    options = {"shape": SHAPE, "n_science": 2, "seed": 3, "gain": 0.8, "readnoise": 3.5,
               "cosmic_rate": 100.0, **options}
    sim = simulate_night(tmp_path / "raw", convention=convention, **options)
    return sim, tmp_path / "raw", tmp_path / "out"


@pytest.mark.parametrize("convention", sorted(PROGRAMS))
def test_a_program_night_comes_out_right(tmp_path, convention):
    """Presets chosen from the header; gain from EGAIN where written (never the GAIN
    setting), else measured; read noise measured; cosmic rays cleaned; units everywhere."""
    sim, raw, out = _night(tmp_path, convention, layout="camera", site_longitude=-105.5,
                           start="01:30")  # 18:30 local on the 19th: one local night
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.failed == [] and summary.skipped == []
    with ResultsDB(out, create=False) as db:
        records = db.records()
    assert {r.night for r in records} == {"2026-11-19"}  # from DATE-OBS, not the folders
    science = [r for r in records if r.kind == "science"]
    assert len(science) == 2 * len(sim.cosmics) // 2 == 4
    for r in science:
        gain, source = r.stats["GAIN"], r.stats["GAINSRC"]
        if PROGRAMS[convention]:  # SharpCap: EGAIN is per ADU of its 12-bit ADC; EGAINSAV not
            card = "EGAINSAV" if convention == "sharpcap" else "EGAIN"
            assert (gain, source) == (0.8, f"header {card}")
        else:
            assert source.startswith("measured: ") and "flat pairs" in source
            assert gain == pytest.approx(0.8, rel=0.10)
        if convention == "sharpcap":  # after its sensor analysis, SharpCap writes RDNOISE
            assert (r.stats["RDNOISE"], r.stats["RDNSRC"]) == (3.5, "header RDNOISE")
        else:
            assert r.stats["RDNSRC"].startswith("measured: ") and "bias pairs" in r.stats["RDNSRC"]
            assert r.stats["RDNOISE"] == pytest.approx(3.5, rel=0.10)
        assert r.stats["NCOSMIC"] > 0 and "NO_COSMICS" not in r.flags
        header = fits.getheader(out / r.path)
        assert header["GAINSRC"] == source and header["RDNSRC"] == r.stats["RDNSRC"]
        assert header["UNITSRC"] == "assumed: no BUNIT"
    for r in records:  # masters, masks and science: what a ccdproc user opens next
        ccd = CCDData.read(out / r.path)
        assert ccd.unit == ("electron" if r.kind in ("bias", "dark", "flat", "science")
                            else "")
    text = "\n".join(summary.text())
    assert "raw frames have no BUNIT: taken as ADU" in text
    assert ("have no IMAGETYP: their kind is taken from their file or folder names" in text) \
        == (convention == "sharpcap")


def test_a_gain_setting_is_never_taken_for_electrons_per_adu(tmp_path):
    """NINA: GAIN=139 beside EGAIN=0.25 once gave a sky x550 'in electrons'."""
    sim, raw, out = _night(tmp_path, "nina", gain=0.25, gain_setting=139, n_science=1,
                           filters=("L",))
    gpucal.reduce(raw, out, device="cpu")
    with ResultsDB(out, create=False) as db:
        (r,) = db.records(kind="science")
    assert fits.getheader(sim.paths[-1])["GAIN"] == 139
    assert (r.stats["GAIN"], r.stats["GAINSRC"]) == (0.25, "header EGAIN")
    bias = next(p for p in sim.paths if "bias" in os.path.basename(p))
    sky_adu = np.median(fits.getdata(sim.paths[-1]).astype(float) - fits.getdata(bias))
    assert r.stats["QUANT500"] == pytest.approx(0.25 * sky_adu, rel=0.1)  # not 139 x


def test_a_filter_without_flats_is_not_flat_fielded_and_is_named(tmp_path, capsys):
    sim, raw, out = _night(tmp_path, "gpucal", filters=("R",), science_filters=("R", "Ha"))
    assert main(["reduce", str(raw), "-o", str(out), "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    with ResultsDB(out, create=False) as db:
        records = {os.path.basename(r.path): r for r in db.records(kind="science")}
    for name, r in records.items():
        header = fits.getheader(out / r.path)
        if name.startswith("sciHa"):
            assert r.flags["NO_FLAT"] and r.flags["FLAT_FALLBACK_REFUSED"]
            assert "CALFLAT" not in header and "NO_FLAT" in header["QCFLAGS"]
            assert f"flagged {r.path}: not flat-fielded (no flat)" in text
        else:
            assert "NO_FLAT" not in r.flags and header["CALFLAT"].endswith(".fits")
            assert r.path not in text
    config = tmp_path / "allow.toml"
    config.write_text("[allow_fallback]\nflat = true\n")
    gpucal.reduce(raw, tmp_path / "allowed", device="cpu", config=config)
    with ResultsDB(tmp_path / "allowed", create=False) as db:
        ha = [r for r in db.records(kind="science") if "sciHa" in r.path]
    assert all(r.flags["IERR_FLAT"] == 1 and "NO_FLAT" not in r.flags for r in ha)


@pytest.mark.parametrize("longitude, start, nights", [
    (None, "17:00", {"2026-11-20"}),            # noon UT to noon UT
    (-105.5, "17:00", {"2026-11-19", "2026-11-20"}),  # 10:00 local: the morning is the night before
    (150.0, "03:00", {"2026-11-20"}),           # 13:00 local in Australia, same UT date
])
def test_nights_run_noon_to_noon_at_the_site(tmp_path, longitude, start, nights):
    sim, raw, out = _night(tmp_path, "nina", site_longitude=longitude, start=start,
                           layout="target", n_science=1)
    plan, _ = gpucal.pipeline.execute.plan_reduction(raw)
    assert {f.night for f in plan.frames} == nights
    offsets = {f.night_source for f in plan.frames}
    assert offsets == ({"noon UT (no site longitude)"} if longitude is None else
                       {f"local noon at longitude {longitude:+.2f} (header SITELONG)"})


def test_configuration_gives_numbers_and_wins_over_headers(tmp_path):
    sim, raw, out = _night(tmp_path, "maxim", n_science=1, filters=("V",))
    config = tmp_path / "inst.toml"
    config.write_text("site_longitude = 10.0\n[keywords]\ngain = 1.25\nreadnoise = 9.0\n")
    plan, _ = gpucal.pipeline.execute.plan_reduction(raw, config=config)
    task = plan.science[0]
    assert (task.readout.gain.value, task.readout.gain.source) == (1.25, "configuration")
    assert (task.readout.readnoise.value, task.readout.readnoise.source) == (9.0, "configuration")
    assert {f.night_source for f in plan.frames} == {
        "local noon at longitude +10.00 (configuration site_longitude)"}
    bad = tmp_path / "bad.toml"
    bad.write_text("[cosmics]\nreadnoise = 9.0\n")
    with pytest.raises(ValueError, match=r"cosmics.readnoise.*set \[keywords\] readnoise"):
        gpucal.pipeline.config.load_config(bad)


@pytest.mark.parametrize("suffix", [".fits.fz", ".fits.gz", ".fit", ".fts"])
def test_compressed_and_other_suffixes_are_reduced(tmp_path, suffix):
    sim, raw, out = _night(tmp_path, "gpucal", suffix=suffix, n_science=1, filters=("V",),
                           n_bias=3, n_dark=2, n_flat=3)
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.failed == [] and summary.made["science"] == 1 and summary.frames == len(sim.paths)


def test_dry_run_says_where_each_value_comes_from(tmp_path, capsys):
    sim, raw, out = _night(tmp_path, "asiair", n_science=1, filters=("V",))
    assert main(["reduce", str(raw), "-o", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "conventions asiair" in text
    assert "unit: adu (assumed: no BUNIT)" in text
    assert "gain: none: the program writes no e-/ADU card -> measured from the night's flat" in text
    assert "read noise: none: the program writes no read-noise card -> measured" in text


@pytest.mark.gpu
def test_a_program_night_on_the_gpu_measures_what_the_cpu_measures(tmp_path):
    """The measurement reads the frames onto the device; the values must not depend on it."""
    sim, raw, _ = _night(tmp_path, "asiair", n_science=1, filters=("V",))
    records = {}
    for device in ("cpu", "gpu"):
        summary = gpucal.reduce(raw, tmp_path / device, device=device)
        assert summary.failed == []
        with ResultsDB(tmp_path / device, create=False) as db:
            records[device] = {r.path: r for r in db.records(kind="science")}
    assert records["cpu"].keys() == records["gpu"].keys()
    for path, cpu in records["cpu"].items():
        gpu = records["gpu"][path]
        assert gpu.stats["GAINSRC"] == cpu.stats["GAINSRC"]
        assert gpu.stats["GAIN"] == pytest.approx(cpu.stats["GAIN"], rel=1e-6)
        assert gpu.stats["RDNOISE"] == pytest.approx(cpu.stats["RDNOISE"], rel=1e-6)
        assert gpu.stats["NCOSMIC"] == cpu.stats["NCOSMIC"]


@pytest.mark.parametrize("card, value, why", [
    ("RDNOISE", 1e30, "header RDNOISE=1e+30 is not a plausible read noise (0 to 10000 e-)"),
    ("RDNOISE", -3.0, "header RDNOISE=-3.0 is not a plausible read noise"),
    ("GAIN", 0.0, "header GAIN=0.0 is not a plausible e-/ADU"),
    ("GAIN", -1.5, "header GAIN=-1.5 is not a plausible e-/ADU"),
    ("GAIN", "high", "header GAIN='high' is not a plausible e-/ADU"),
])
def test_an_implausible_card_is_passed_over_and_the_value_measured(tmp_path, card, value, why):
    """RDNOISE=1e30 once gave an all-inf UNCERT and NCOSMIC=0 without a flag."""
    sim, raw, out = _night(tmp_path, "gpucal", n_science=1, filters=("V",))
    for path in sim.paths:
        with fits.open(path, mode="update") as hdul:
            hdul[0].header[card] = value
    gpucal.reduce(raw, out, device="cpu")
    with ResultsDB(out, create=False) as db:
        (r,) = db.records(kind="science")
    name = "RDNOISE" if card == "RDNOISE" else "GAIN"
    source = r.stats["RDNSRC" if card == "RDNOISE" else "GAINSRC"]
    assert source.startswith("measured: ")
    assert r.stats[name] == pytest.approx(3.5 if card == "RDNOISE" else 0.8, rel=0.1)
    plan, _ = gpucal.pipeline.execute.plan_reduction(raw)
    assert why in getattr(plan.frames[0], "readnoise" if card == "RDNOISE" else "gain").source
    assert np.isfinite(fits.getdata(out / r.path, "UNCERT")).all() and r.stats["NCOSMIC"] > 0
