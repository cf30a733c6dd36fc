"""Acquisition programs' header conventions: who wrote a header, and what its cards mean."""

import math

import pytest
from astropy.io import fits

from gpucal.pipeline.presets import (PRESETS, detect, header_longitude, longitude_degrees,
                                     merge_keywords)

try:  # the configuration's defaults, wherever the pipeline keeps them
    from gpucal.pipeline.config import _DEFAULTS, KINDS
except ImportError:  # pragma: no cover
    from gpucal.pipeline.plan import _DEFAULTS, KINDS

BY_NAME = {p.name: p for p in PRESETS}

# Headers as each program writes them (cards, spellings and formats from the sources cited in
# gpucal/pipeline/presets.py; the values are made up).
HEADERS = {
    "nina": [("IMAGETYP", "LIGHT"), ("EXPOSURE", 180.0), ("EXPTIME", 180.0),
             ("DATE-LOC", "2024-10-03T23:41:07.1234567"),
             ("DATE-OBS", "2024-10-03T21:41:07.1234567"), ("MJD-OBS", 60586.903555),
             ("XBINNING", 1), ("YBINNING", 1), ("GAIN", 100), ("OFFSET", 50),
             ("EGAIN", 0.77), ("INSTRUME", "ZWO ASI2600MM Pro"), ("FILTER", "Ha"),
             ("SITELAT", 48.2), ("SITELONG", 16.37), ("ROWORDER", "TOP-DOWN"),
             ("SWCREATE", "N.I.N.A. 3.1.2.9001 (x64)")],
    "sharpcap": [("GAIN", 139), ("OFFSET", 20), ("EGAIN", 1.92), ("ADCBITS", 12),
                 ("EGAINSAV", 0.12), ("EXPTIME", 60), ("XBINNING", 1), ("YBINNING", 1),
                 ("SWCREATE", "SharpCap v4.1.13000.0, 64 bit"),
                 ("DATE-OBS", "2024-02-11T20:15:09.7654321"), ("RDNOISE", 1.6),
                 ("INSTRUME", "ZWO ASI183MM Pro")],
    "asiair": [("CREATOR", "ZWO ASIAIR Plus"), ("XBINNING", 1), ("YBINNING", 1),
               ("IMAGETYP", "Light"), ("EXPOSURE", 300.0), ("EXPTIME", 300.0),
               ("DATE-OBS", "2024-08-01T02:10:44.120345"), ("FILTER", "L"),
               ("INSTRUME", "ZWO ASI2600MM Pro"), ("GAIN", 100), ("OFFSET", 50),
               ("SITELAT", 40.7), ("SITELONG", -74.0)],
    "sgp": [("DATE-LOC", "2022-04-01T23:10:00.5000000"),
            ("DATE-OBS", "2022-04-01T21:10:00.5000000"), ("IMAGETYP", "LIGHT"),
            ("CREATOR", "Sequence Generator Pro v4.2.0.1001"), ("SITELONG", "4 21 0.000"),
            ("EXPOSURE", 120), ("GAIN", 120), ("EGAIN", 1.0), ("OFFSET", 30)],
    "apt": [("DATE-OBS", "2019-03-04T21:04:46"), ("EXPTIME", 240.0), ("EGAIN", 1.0),
            ("SWCREATE", "Astro Photography Tool - APT v.4.10"), ("IMAGETYP", "Light Frame"),
            ("SITELONG", "+04 21 00.000"), ("GAIN", 120)],
    "acp": [("DATE-OBS", "2023-05-06T14:03:03"), ("EXPTIME", 300.0), ("EXPOSURE", 300.0),
            ("IMAGETYP", "Light Frame"), ("SITELONG", "149 03 52"),
            ("SWCREATE", "MaxIm DL Version 6.30 230101 ABCDE"),
            ("DATE", "06/05/23"), ("TIME-OBS", "14:03:03"), ("UT", "14:03:03"),
            ("LAT-OBS", -31.27), ("LONG-OBS", 149.064), ("CLRBAND", "R")],
    "maxim": [("DATE-OBS", "2021-12-29T15:42:46.53"), ("EXPTIME", 300.0),
              ("EXPOSURE", 300.0), ("XBINNING", 2), ("YBINNING", 2), ("FILTER", "R"),
              ("IMAGETYP", "Flat Frame"), ("SWCREATE", "MaxIm DL Version 6.27 211016 1NURE"),
              ("SITELAT", "34 20 35"), ("SITELONG", "-119 40 52"), ("EGAIN", 1.4),
              ("INSTRUME", "SBIG STXL-6303"), ("PEDESTAL", 0)],
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_each_program_is_recognised_from_its_header(name):
    header = fits.Header(HEADERS[name])
    preset = detect(header)
    assert preset is BY_NAME[name]
    # the header round-trips through a FITS file and still says who wrote it
    assert detect(fits.Header.fromstring(header.tostring())) is preset


def test_acp_is_recognised_before_the_maxim_dl_it_drives():
    """ACP's frames carry MaxIm's SWCREATE; ACP's own cards decide."""
    header = fits.Header([("SWCREATE", "MaxIm DL Version 5.24"), ("IMAGETYP", "Bias Frame")])
    assert detect(header).name == "maxim"
    header.add_history("File was processed by PinPoint 5.1.8 at 2018-07-04T14:08:45")
    assert detect(header).name == "acp"
    calibration = fits.Header([("SWCREATE", "MaxIm DL Version 5.24"), ("DATE", "04/07/18")])
    assert detect(calibration).name == "acp"


@pytest.mark.parametrize("cards", [
    [],
    [("INSTRUME", "SBIG STXL-6303"), ("IMAGETYP", "Light Frame"), ("EXPTIME", 30.0)],
    [("SWCREATE", "Voyager 2.3.5"), ("IMAGETYP", "LIGHT")],
    [("CREATOR", "ZWO Seestar S50"), ("PRODUCER", "ZWO")],
    [("SWCREATE", "gpucal"), ("DATE", "2024-01-01T00:00:00")],  # ISO DATE, not ACP's
])
def test_a_header_of_no_known_program_matches_none(cards):
    assert detect(fits.Header(cards)) is None


def test_detection_is_case_insensitive_and_searches_several_headers():
    assert detect(fits.Header({"SWCREATE": "sharpcap"})).name == "sharpcap"
    extension, primary = fits.Header({"EXPTIME": 1.0}), fits.Header({"CREATOR": "ZWO ASIAIR"})
    assert detect([extension, primary]).name == "asiair"
    assert detect({"SWCREATE": "N.I.N.A. 2.3"}).name == "nina"  # any mapping
    assert detect({"HISTORY": "File was processed by PinPoint 6.0"}).name == "acp"
    assert detect({"HISTORY": ["calibrated", "File was processed by PinPoint"]}).name == "acp"


def test_presets_are_complete_and_consistent():
    names = [p.name for p in PRESETS]
    assert len(set(names)) == len(names) and names[-1] == "generic"
    assert not BY_NAME["generic"].detect
    keys = set(_DEFAULTS["keywords"]) | {"gain_setting", "time", "longitude"}
    default_kind = {a: k for k, aliases in _DEFAULTS["aliases"].items() for a in aliases}
    for preset in PRESETS:
        assert set(preset.keywords) == keys, preset.name
        for key in ("exptime", "gain", "gain_setting", "readnoise", "time", "longitude"):
            assert isinstance(preset.keywords[key], tuple), (preset.name, key)
        for key in ("date", "mjd", "imagetyp", "biassec", "trimsec"):
            assert isinstance(preset.keywords[key], str), (preset.name, key)
        assert preset.keywords["gain_setting"] in ((), ("GAIN",))
        assert preset.keywords["exptime"], preset.name
        assert preset.notes and "\n" not in preset.notes
        seen = dict(default_kind)
        for kind, aliases in preset.aliases.items():
            assert kind in KINDS
            for alias in aliases:
                assert alias == alias.lower().strip()
                assert seen.setdefault(alias, kind) == kind, (preset.name, alias)
        for keyword, pattern in preset.detect:
            assert keyword == keyword.upper() and pattern


@pytest.mark.parametrize("name", ["nina", "sharpcap", "asiair", "sgp", "apt"])
def test_a_cmos_gain_setting_is_never_read_as_electrons_per_adu(name):
    keywords = BY_NAME[name].keywords
    assert keywords["gain_setting"] == ("GAIN",)
    assert "GAIN" not in keywords["gain"]


def test_the_dark_flat_is_a_dark():
    assert "darkflat" in BY_NAME["nina"].aliases["dark"]
    assert "dark flat" in BY_NAME["maxim"].aliases["dark"]


def test_merge_keeps_the_configuration_where_a_program_has_no_card():
    before = dict(_DEFAULTS["keywords"])
    merged = merge_keywords(_DEFAULTS["keywords"], BY_NAME["nina"])
    assert merged["gain"] == ("EGAIN",) and merged["gain_setting"] == ("GAIN",)
    assert merged["biassec"] == "BIASSEC" and merged["readnoise"] == ()
    assert merged["exptime"] == ("EXPTIME", "EXPOSURE") and merged["mjd"] == "MJD-OBS"
    assert merged["date"] == "DATE-OBS" and merged["time"] == ()
    assert merge_keywords(_DEFAULTS["keywords"], BY_NAME["asiair"])["gain"] == ()
    assert merge_keywords(merged, BY_NAME["maxim"])["gain_setting"] == ()
    assert _DEFAULTS["keywords"] == before  # not modified


@pytest.mark.parametrize("value, degrees", [
    (16.37, 16.37),                              # NINA, ASIAIR: decimal degrees
    (-74, -74.0),
    ("1.49064444444E+002", 149.064444444),        # a number in a string card
    ("149 03 52", 149 + 3 / 60 + 52 / 3600),     # MaxIm DL 'DD MM SS', east
    ("-119 40 52", -(119 + 40 / 60 + 52 / 3600)),  # MaxIm DL, west of Greenwich
    ("+03 41 00.000", 3 + 41 / 60),              # APT
    ("3 43 0.000", 3 + 43 / 60),                 # SGP
    ("-0 30 00", -0.5),                          # the sign is the whole angle's
    ("-68:10:48:00", -(68 + 10 / 60 + 48 / 3600)),  # PRISM: hundredths after a colon
    ("74 00 36 W", -(74 + 0.01)),
    ("W 74 00 36", -(74 + 0.01)),
    ("149 03 52 E", 149 + 3 / 60 + 52 / 3600),
    ("149°03'52\"", 149 + 3 / 60 + 52 / 3600),
    ("12:30", 12.5),
    (260.6, 260.6 - 360),                         # 0..360 east
    ("359 30 00", -0.5),
    (180.0, 180.0),
    (-180.0, 180.0),
])
def test_longitude_formats(value, degrees):
    assert math.isclose(longitude_degrees(value), degrees, abs_tol=1e-9)


def test_west_positive_longitudes_are_negated_unless_a_letter_says():
    assert math.isclose(longitude_degrees("+110:52:39.0", west_positive=True),
                        -(110 + 52 / 60 + 39 / 3600))
    assert math.isclose(longitude_degrees(215.03, west_positive=True), 144.97)  # 0..360 W
    assert math.isclose(longitude_degrees("110 52 39 E", west_positive=True),
                        110 + 52 / 60 + 39 / 3600)


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_longitude(value):
    assert longitude_degrees(value) is None


@pytest.mark.parametrize("value", ["abc", "12 75 00", "12 30 61", "51 30 N", "-74 00 W",
                                   "1 2 3 4 5", 400.0, float("nan"), True, "12 E W"])
def test_not_a_longitude(value):
    with pytest.raises(ValueError):
        longitude_degrees(value)


def test_longitude_from_a_header_follows_the_programs_cards():
    acp = fits.Header(HEADERS["acp"])
    assert header_longitude(acp) == (149.064, "LONG-OBS")  # the decimal card first
    maxim = header_longitude(fits.Header(HEADERS["maxim"]))
    assert maxim[1] == "SITELONG" and math.isclose(maxim[0], -119.68111111, abs_tol=1e-6)
    generic = fits.Header({"OBSGEO-L": -17.88, "SITELONG": "garbage"})
    assert header_longitude(generic) == (-17.88, "OBSGEO-L")
    assert header_longitude(fits.Header(HEADERS["sharpcap"])) is None  # no card written


@pytest.mark.parametrize("convention", ["nina", "sharpcap", "asiair", "maxim", "acp"])
def test_presets_read_the_simulated_programs(tmp_path, convention):
    """The simulator (an independent description of the same programs) is the oracle."""
    from gpucal.simulate import simulate_night

    sim = simulate_night(tmp_path, convention=convention, shape=(16, 16), n_bias=1, n_dark=1,
                         dark_exposures=(30.0,), n_flat=1, n_science=1, filters=("V",),
                         n_dark_flat=1, site_longitude=-70.73, gain=0.8, readnoise=2.5)
    for path in sim.paths:
        header = fits.getheader(path)
        preset = detect(header)
        assert preset is BY_NAME[convention], path
        keywords = preset.keywords
        kinds = {a: k for k, aliases in _DEFAULTS["aliases"].items() for a in aliases}
        kinds.update({a: k for k, aliases in preset.aliases.items() for a in aliases})
        imagetyp = header.get(keywords["imagetyp"])
        assert (kinds.get(imagetyp.strip().lower()) if imagetyp else None) == \
            (None if convention == "sharpcap" else sim.kinds[path])
        gains = [header[k] for k in keywords["gain"] if k in header]
        assert gains[:1] == ([] if convention == "asiair" else [0.8])
        for card in keywords["gain_setting"]:
            assert header[card] == 100
        readnoise = [header[k] for k in keywords["readnoise"] if k in header]
        assert readnoise[:1] == ([2.5] if convention == "sharpcap" else [])
        assert any(k in header for k in keywords["exptime"])
        longitude = header_longitude(header, preset)
        if convention == "sharpcap":
            assert longitude is None
        else:
            assert abs(longitude[0] - -70.73) < 1 / 3600
