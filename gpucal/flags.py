"""Named mask bits: why a pixel is masked, not just that it is.

A gpucal mask is an unsigned 16-bit array of :class:`MaskFlag` bits.  What
CCDData users see is its boolean view (non-zero = masked).  In FITS, the MASK
extension stores the bits as 16-bit integers and names each bit in its header
(``MASKB0 = 'BAD_PIXEL'`` ...), so other software can read them and gpucal
can read its own files back even if bits are renumbered later.
"""

import enum

import numpy as np

MASK_DTYPE = np.dtype(np.uint16)
_HEADER_PREFIX = "MASKB"


class MaskFlag(enum.IntFlag, boundary=enum.STRICT):
    """Reasons for masking a pixel; combine them with ``|``.

    Examples
    --------
    >>> from gpucal import MaskFlag
    >>> flags = MaskFlag.BAD_PIXEL | MaskFlag.COSMIC_RAY
    >>> MaskFlag.COSMIC_RAY in flags
    True
    >>> int(flags)
    17
    """

    BAD_PIXEL = 1  # defect found by ccdmask in flats
    HOT_PIXEL = 2  # dark current above threshold
    STATIC = 4  # low pixel in a drizzlepac-style static mask
    SATURATED = 8
    COSMIC_RAY = 16
    NO_DATA = 32  # every input was rejected when combining
    USER = 64  # given from outside gpucal, e.g. a boolean CCDData mask

    @classmethod
    def all(cls):
        """Every defined bit."""
        return cls(sum(cls))


_DESCRIPTIONS = {
    MaskFlag.BAD_PIXEL: "bad pixel (ccdmask)",
    MaskFlag.HOT_PIXEL: "hot pixel (dark current)",
    MaskFlag.STATIC: "low pixel (static mask)",
    MaskFlag.SATURATED: "saturated",
    MaskFlag.COSMIC_RAY: "cosmic ray",
    MaskFlag.NO_DATA: "no data (all inputs rejected)",
    MaskFlag.USER: "masked by the user or other software",
}


def as_bits(values, flag=MaskFlag.USER):
    """A mask (NumPy or CuPy) as uint16 MaskFlag bits: booleans become `flag`.

    Raises
    ------
    TypeError
        For a mask that is neither boolean nor integer.
    ValueError
        For integers that are not MaskFlag bits.
    """
    if values.dtype.kind == "b":
        return values.astype(MASK_DTYPE) * MASK_DTYPE.type(MaskFlag(flag))
    if values.dtype.kind not in "iu":
        raise TypeError(f"expected booleans or MaskFlag integers, got {values.dtype}")
    # the flags are the low bits, so "only known bits" is 0 <= value <= all()
    if bool(((values < 0) | (values > int(MaskFlag.all()))).any()):
        raise ValueError(f"holds bits that are not gpucal MaskFlags "
                         f"({', '.join(f.name for f in MaskFlag)}); pass a boolean mask, "
                         "or map your values to MaskFlags")
    return values.astype(MASK_DTYPE, copy=False)


def count(mask, flag):
    """How many pixels of a mask (NumPy or CuPy MaskFlag bits) have a bit of `flag` set.

    The flag goes in as a NumPy scalar: CuPy takes no IntFlag operand.
    """
    return int(((mask & MASK_DTYPE.type(flag)) != 0).sum())


def description(flag):
    """What a pixel with this one bit set is, in words.

    Examples
    --------
    >>> description(MaskFlag.COSMIC_RAY)
    'cosmic ray'
    """
    return _DESCRIPTIONS[MaskFlag(flag)]


def header_cards():
    """FITS cards ``(keyword, name, comment)`` naming every mask bit."""
    return [(f"{_HEADER_PREFIX}{flag.bit_length() - 1}", flag.name, description(flag))
            for flag in MaskFlag]


def decode(values, header):
    """Turn a MASK extension's integers into gpucal flags (host arrays).

    Parameters
    ----------
    values : numpy.ndarray
        The extension's data, any integer or boolean dtype.
    header : astropy.io.fits.Header
        The extension's header; its ``MASKBn`` cards name the bits.

    Returns
    -------
    numpy.ndarray of uint16
        Bits named in the header are mapped to the flag of the same name;
        bits without a known name, and every non-zero pixel of a mask whose
        header names no bits (a boolean CCDData mask, another tool's DQ
        array), become :attr:`MaskFlag.USER`.
    """
    named = {int(k[len(_HEADER_PREFIX):]): v for k, v in header.items()
             if k.startswith(_HEADER_PREFIX) and k[len(_HEADER_PREFIX):].isdigit()}
    values = np.asarray(values)
    if not named:
        return np.where(values != 0, MASK_DTYPE.type(MaskFlag.USER), MASK_DTYPE.type(0))
    if values.size and values.dtype.kind in "biu":
        low, high = int(values.min()), int(values.max())
        if low >= 0 and high < 1 << 16:  # decode each value once, then look them up
            index = values.view(np.uint8) if values.dtype.kind == "b" else values
            return _decode_bits(np.arange(high + 1), named)[index]
    return _decode_bits(values, named)


def _decode_bits(values, named):
    """decode() of integer `values`, bit by bit: {bit: name} from the header."""
    values = values.astype(np.int64)
    out = np.zeros(values.shape, MASK_DTYPE)
    known = 0
    for bit, name in named.items():
        flag = MaskFlag.__members__.get(str(name).strip(), MaskFlag.USER)
        out[(values >> bit) & 1 == 1] |= MASK_DTYPE.type(flag)
        known |= 1 << bit
    out[(values & ~known) != 0] |= MASK_DTYPE.type(MaskFlag.USER)
    return out
