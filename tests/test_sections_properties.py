"""Property tests of FITS sections (hypothesis): random sections against ccdproc and the pixels.

Apart from test_sections.py because the offline GPU hosts lack hypothesis: there these
skip and the rest of the suite runs.
"""

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from gpucal.sections import check_section, format_section, parse_section  # noqa: E402
from test_sections import IMAGE, _ccdproc  # noqa: E402


@st.composite
def _axis(draw, size, single=True):
    """Text for one axis of a section within `size` pixels, and its 1-based pixels."""
    space = st.sampled_from(["", " ", "  "])
    kind = draw(st.sampled_from(["range", "star", "single"] if single else ["range", "star"]))
    if kind == "single":
        n = draw(st.integers(1, size))
        return f"{draw(space)}{n}{draw(space)}", [n]
    step = draw(st.one_of(st.none(), st.integers(1, 4)))
    if kind == "star":
        reverse = draw(st.booleans())
        text = "-*" if reverse else "*"
        pixels = list(range(size, 0, -1) if reverse else range(1, size + 1))
    else:
        first, last = draw(st.integers(1, size)), draw(st.integers(1, size))
        text = f"{first}{draw(space)}:{draw(space)}{last}"
        pixels = list(range(first, last + 1) if first <= last else range(first, last - 1, -1))
    if step is not None:
        text += f"{draw(space)}:{draw(space)}{step}"
        pixels = pixels[::step]
    return f"{draw(space)}{text}{draw(space)}", pixels


def _section(axes_strategy):
    return st.tuples(axes_strategy, axes_strategy).map(
        lambda xy: (f" [{xy[0][0]},{xy[1][0]}] ", xy[0][1], xy[1][1]))


@given(_section(_axis(40, single=False)))
def test_same_pixels_as_ccdproc_property(case):
    text, _, _ = case
    ours = parse_section(text)
    np.testing.assert_array_equal(IMAGE[ours], IMAGE[_ccdproc(text)])
    assert ours == _ccdproc(text)


@given(_section(_axis(40)))
def test_selects_the_pixels_it_names(case):
    text, xs, ys = case
    rows, cols = parse_section(text)
    image = IMAGE[:40, :40]  # * and -* name all 40 pixels
    # FITS pixel (x, y) is image[y - 1, x - 1]
    expected = image[np.ix_(np.subtract(ys, 1), np.subtract(xs, 1))]
    np.testing.assert_array_equal(image[rows, cols], expected)
    assert parse_section(format_section(rows, cols)) == (rows, cols)


@given(_axis(30), _axis(30), st.integers(1, 30), st.integers(1, 30))
def test_check_section_iff_a_bound_is_outside(x, y, nx, ny):
    section = parse_section(f"[{x[0]},{y[0]}]")

    def outside(text, n):
        # * and -* fit any image; n1:n2[:step] fits if both bounds do, whatever the step
        return "*" not in text and max(map(int, text.replace(" ", "").split(":")[:2])) > n

    if outside(x[0], nx) or outside(y[0], ny):
        with pytest.raises(ValueError, match="reaches outside"):
            check_section(section, (ny, nx))
    else:
        check_section(section, (ny, nx))
