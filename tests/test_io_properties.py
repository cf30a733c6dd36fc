"""Property tests of FITS masks (hypothesis): flags round-trip and decode value by value.

Apart from test_io.py because the offline GPU hosts lack hypothesis: there these skip
and the rest of the suite runs.
"""

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from astropy.io import fits  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

from gpucal import Frame, MaskFlag, flags  # noqa: E402


@given(hnp.arrays(np.uint16, st.tuples(st.integers(1, 9), st.integers(1, 9)),
                  elements=st.sampled_from([0, *map(int, MaskFlag), int(MaskFlag.all())])))
def test_flags_survive_a_round_trip(tmp_path_factory, bits):
    path = tmp_path_factory.mktemp("rt") / "f.fits"
    Frame(np.zeros(bits.shape), mask=bits).write(path)
    np.testing.assert_array_equal(Frame.read(path, device="cpu").mask, bits)


@given(hnp.arrays(st.sampled_from([np.int32, np.dtype(">i4"), np.int64]),
                  st.tuples(st.integers(1, 6), st.integers(1, 6)),
                  elements=st.integers(-3, 127) | st.sampled_from([2**15 - 1, 2**16, 2**20])))
def test_mask_decoding_value_by_value(values):
    """Each value decoded on its own (small masks are decoded through a lookup table)."""
    named = {0: "HOT_PIXEL", 3: "BAD_PIXEL", 5: "NOT_A_FLAG"}
    header = fits.Header([(f"MASKB{bit}", name) for bit, name in named.items()])

    def one(v):
        out = 0 if v & ~0b101001 == 0 else int(MaskFlag.USER)
        for bit, name in named.items():
            if v >> bit & 1:
                out |= int(MaskFlag.__members__.get(name, MaskFlag.USER))
        return out

    expected = np.vectorize(one, otypes=[np.uint16])(values.astype(np.int64))
    np.testing.assert_array_equal(flags.decode(values, header), expected)
    np.testing.assert_array_equal(flags.decode(values > 0, header),
                                  np.where(values > 0, int(MaskFlag.HOT_PIXEL), 0))
