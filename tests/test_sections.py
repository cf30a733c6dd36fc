"""Image sections against ccdproc 2.5.1's slice_from_string, and where gpucal is stricter."""

import numpy as np
import pytest
from astropy.io import fits
from ccdproc.utils.slices import slice_from_string

from gpucal.sections import check_section, format_section, parse_section, section_from_header

SHAPE = (530, 560)  # (ny, nx): room for the 520-row sections below
IMAGE = np.arange(SHAPE[0] * SHAPE[1]).reshape(SHAPE)


def _ccdproc(text):
    return slice_from_string(text, fits_convention=True)


VALID = [
    "[4:13,1:520]",
    "[525:540,1:520]",
    "[*,1:10]",
    "[-*,5:7]",
    "[10:3, 2:8]",
    "[1:5,*]",
    "[*,*]",
    "[-*,-*]",
    "[5:5,3:3]",
    "[1:1,2:1]",
    "[3:1,1:2]",
    "[2:1,20:1]",
    "[*:2,1:4]",
    "[-*:2,1:3]",
    "[1:10:2,1:4]",
    "[10:1:2,1:4]",
    "[10:3:3,*:4]",
    "[001:010,1:2]",
    "  [ 1 : 45 ,  2:3 ] ",
    "[\t1:5,1:3\t]",
    "[71:80,:]",
    "[5:, :7]",
    "[:, 3:]",
    "[::2,1:3]",
]


@pytest.mark.parametrize("text", VALID)
def test_same_pixels_as_ccdproc(text):
    ours, theirs = parse_section(text), _ccdproc(text)
    np.testing.assert_array_equal(IMAGE[ours], IMAGE[theirs])
    assert IMAGE[ours].size > 0
    # the slices themselves are ccdproc's, so code that compares slices sees no difference
    assert ours == theirs


@pytest.mark.parametrize("text", VALID)
def test_format_section_round_trips(text):
    section = parse_section(text)
    formatted = format_section(*section)
    assert parse_section(formatted) == section
    assert _ccdproc(formatted) == section
    assert formatted == format_section(*parse_section(formatted))


def test_single_pixel_means_one_pixel():
    rows, cols = parse_section("[5,7]")
    assert (rows, cols) == parse_section("[5:5,7:7]") == (slice(6, 7), slice(4, 5))
    assert IMAGE[rows, cols].tolist() == [[IMAGE[6, 4]]]
    # deliberate difference: ccdproc reads '5' as ':5', pixels 1 to 5
    assert IMAGE[_ccdproc("[5,7]")].shape == (7, 5)
    assert parse_section("[ 3 , 2:4 ]") == (slice(1, 4), slice(2, 3))
    assert format_section(rows, cols) == "[5:5,7:7]"


MALFORMED = [
    ("[4:13,1:520", "enclosed in [ ]"),
    ("4:13,1:520]", "enclosed in [ ]"),
    ("4:13,1:520", "enclosed in [ ]"),
    ("(4:13,1:520)", "enclosed in [ ]"),
    ("", "empty"),
    ("   ", "empty"),
    ("[]", "has 2 axes, [x1:x2,y1:y2], not 1"),
    ("[1:10]", "not 1"),
    ("[1:10,1:5,1:2]", "not 3"),
    ("[,]", "in x, '' is not n, n1:n2"),
    ("[0:10,1:5]", "in x, pixel numbers start at 1"),
    ("[1:5,0:10]", "in y, pixel numbers start at 1"),
    ("[1:0,1:5]", "in x, pixel numbers start at 1"),
    ("[0,1:5]", "in x, pixel numbers start at 1"),
    ("[1:10:0,1:5]", "in x, the step must be at least 1"),
    ("[*:0,1:5]", "the step must be at least 1"),
    ("[1:10:-1,1:5]", "in x, '1:10:-1' is not"),
    ("[-3:5,1:5]", "'-3:5' is not"),
    ("[+3:5,1:5]", "'+3:5' is not"),
    ("[1:10,10:-1]", "in y, '10:-1' is not"),
    ("[1:2.5,1:5]", "'1:2.5' is not"),
    ("[a:b,1:5]", "'a:b' is not"),
    ("[1e2:200,1:5]", "'1e2:200' is not"),
    ("[0:,1:3]", "pixel numbers start at 1"),
    ("[:0,1:3]", "pixel numbers start at 1"),
    ("[1 0:20,1:3]", "'1 0:20' is not"),
    ("[- *,1:3]", "'- *' is not"),
    ("[1:2:3:4,1:3]", "'1:2:3:4' is not"),
    ("[[1:2],1:3]", "in x, '[1:2]' is not"),
]


@pytest.mark.parametrize("text, reason", MALFORMED)
def test_malformed_sections_name_keyword_and_value(text, reason):
    with pytest.raises(ValueError) as excinfo:
        parse_section(text, keyword="BIASSEC")
    message = str(excinfo.value)
    assert message.startswith(f"BIASSEC = {text!r} is not a FITS section: ")
    assert reason in message
    with pytest.raises(ValueError) as excinfo:
        parse_section(text)
    assert str(excinfo.value).startswith(f"{text!r} is not a FITS section: ")


@pytest.mark.parametrize("value", [None, 5, b"[1:2,1:2]", (slice(0, 2), slice(0, 2))])
def test_non_strings_are_type_errors(value):
    with pytest.raises(TypeError, match=f"^TRIMSEC = .* expected a str, got {type(value).__name__}"):
        parse_section(value, keyword="TRIMSEC")


def test_numpy_strings_are_strings():
    assert parse_section(np.str_("[1:2,3:4]")) == (slice(2, 4), slice(0, 2))


@pytest.mark.parametrize("text", ["[1:520,1:100]", "[520:1,100:1]", "[*,-*]", "[520,100]",
                                  "[1:519:2,*]"])
def test_check_section_accepts_sections_inside(text):
    assert check_section(parse_section(text), (100, 520)) is None


@pytest.mark.parametrize("text, axis", [
    ("[1:600,1:10]", "x goes to 600"),
    ("[600:1,1:10]", "x goes to 600"),
    ("[521,1:10]", "x goes to 521"),
    ("[1:10,1:101]", "y goes to 101"),
    ("[*,101:1]", "y goes to 101"),
    ("[1:521:2,*]", "x goes to 521"),  # the bound as written, though the step skips pixel 521
])
def test_check_section_rejects_sections_outside(text, axis):
    with pytest.raises(ValueError) as excinfo:
        check_section(parse_section(text), (100, 520), keyword="TRIMSEC")
    message = str(excinfo.value)
    assert message.startswith(f"TRIMSEC = {format_section(*parse_section(text))!r} reaches "
                              "outside an image of shape (100, 520): ")
    assert message.endswith(axis)
    with pytest.raises(ValueError, match=r"^'\[.*\]' reaches outside an image of shape \(100, 520\)"):
        check_section(parse_section(text), np.zeros((100, 520)).shape)


def test_section_from_header():
    header = fits.Header({"BIASSEC": "[525:540,1:520]", "TRIMSEC": "[1:512, 1:520]",
                          "DATASEC": "[1:512,1:520", "NAXIS1": 540})
    rows, cols = section_from_header(header, "BIASSEC")
    np.testing.assert_array_equal(IMAGE[rows, cols], IMAGE[:520, 524:540])
    assert section_from_header(header, "trimsec") == (slice(0, 520), slice(0, 512))
    assert section_from_header({"BIASSEC": "[*,1:2]"}, "BIASSEC") == (slice(0, 2), slice(None))
    with pytest.raises(ValueError, match=r"^DATASEC = '\[1:512,1:520' is not a FITS section"):
        section_from_header(header, "DATASEC")
    with pytest.raises(TypeError, match="^NAXIS1 = 540 is not a FITS section"):
        section_from_header(header, "NAXIS1")
    with pytest.raises(KeyError, match="the header has no CCDSEC"):
        section_from_header(header, "CCDSEC")
