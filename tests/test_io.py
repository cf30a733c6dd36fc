"""FITS reading and writing: CCDData interoperability, real files, bad input."""

import gzip
import os
from pathlib import Path

import ccdproc
import numpy as np
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, StdDevUncertainty, VarianceUncertainty

from _helpers import sha256
from gpucal import Frame, FrameError, GPUUnavailableError, MaskFlag, gpu_available, to_device
from gpucal import flags
from gpucal import io as gio

SAAO = Path(ccdproc.__file__).parent / "tests" / "data" / "a8280271.fits"


def host(x):
    return to_device(x, "cpu")


def _random_ccd(shape=(20, 30), seed=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return CCDData(rng.normal(1000, 30, shape).astype(dtype), unit="adu",
                   mask=rng.random(shape) > 0.8,
                   uncertainty=StdDevUncertainty(rng.uniform(5, 9, shape).astype(dtype)),
                   meta=fits.Header({"OBJECT": "NGC 6822", "EXPTIME": 120.0,
                                     "DATE-OBS": "2026-11-21T22:14:03"}))


# -- CCDData interoperability ----------------------------------------------------------------

def test_reads_what_ccddata_writes(tmp_path, backend):
    ccd = _random_ccd()
    ccd.write(tmp_path / "ccd.fits")
    f = Frame.read(tmp_path / "ccd.fits", device=backend.device)
    assert f.device == backend.device
    np.testing.assert_array_equal(host(f.data), ccd.data)
    np.testing.assert_array_equal(host(f.bool_mask), ccd.mask)
    np.testing.assert_array_equal(host(f.uncertainty), ccd.uncertainty.array)
    assert f.unit == u.adu and f.header["OBJECT"] == "NGC 6822"
    assert "BUNIT" not in f.header and "BITPIX" not in f.header


def test_float64_stays_exact_with_dtype_none(tmp_path):
    ccd = _random_ccd(dtype=np.float64)
    ccd.write(tmp_path / "ccd.fits")
    f = Frame.read(tmp_path / "ccd.fits", device="cpu", dtype=None)
    assert f.dtype == np.float64
    np.testing.assert_array_equal(f.data, ccd.data)
    g = Frame.read(tmp_path / "ccd.fits", device="cpu")
    assert g.dtype == np.float32
    np.testing.assert_array_equal(g.data, ccd.data.astype(np.float32))


def test_variance_uncertainty_is_read_as_standard_deviation(tmp_path):
    ccd = _random_ccd()
    ccd.uncertainty = VarianceUncertainty(ccd.uncertainty.array.astype(np.float64) ** 2)
    ccd.write(tmp_path / "var.fits")
    f = Frame.read(tmp_path / "var.fits", device="cpu")
    np.testing.assert_allclose(f.uncertainty, np.sqrt(ccd.uncertainty.array), rtol=1e-7)


def test_ccddata_reads_what_gpucal_writes(tmp_path, backend):
    rng = np.random.default_rng(5)
    mask = np.zeros((16, 12), np.uint16)
    mask[3, :] = MaskFlag.BAD_PIXEL
    mask[5, 5] = MaskFlag.COSMIC_RAY | MaskFlag.SATURATED
    f = Frame(backend.asarray(rng.normal(size=(16, 12))), mask=backend.asarray(mask),
              uncertainty=backend.asarray(rng.random((16, 12))),
              header={"OBJECT": "flat", "FILTER": "R"}, unit="electron")
    f.write(tmp_path / "g.fits")
    ccd = CCDData.read(tmp_path / "g.fits")
    np.testing.assert_array_equal(ccd.data, host(f.data))
    assert ccd.data.dtype.newbyteorder("=") == np.float32  # CCDData keeps FITS byte order
    assert ccd.mask.dtype == bool
    np.testing.assert_array_equal(ccd.mask, mask != 0)
    assert isinstance(ccd.uncertainty, StdDevUncertainty)
    np.testing.assert_array_equal(ccd.uncertainty.array, host(f.uncertainty))
    assert ccd.unit == u.electron and ccd.header["FILTER"] == "R"


def test_mask_bits_are_named_in_the_file(tmp_path):
    Frame(np.zeros((2, 2)), mask=np.full((2, 2), MaskFlag.HOT_PIXEL)).write(tmp_path / "m.fits")
    with fits.open(tmp_path / "m.fits") as hdul:
        hdr = hdul["MASK"].header
        assert hdul["MASK"].data.dtype == np.uint8  # every flag fits in a byte (#23)
    names = {hdr[f"MASKB{int(f).bit_length() - 1}"] for f in MaskFlag}
    assert names == {f.name for f in MaskFlag}


def test_mask_bits_are_decoded_by_name(tmp_path):
    """A file whose bits are numbered differently, or named by another tool."""
    values = np.array([[1, 2], [4, 3]], np.int16)
    hdr = fits.Header([("MASKB0", "COSMIC_RAY"), ("MASKB1", "SOMETHING_ELSE")])
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2), np.float32)),
                  fits.ImageHDU(values, hdr, name="MASK")]).writeto(tmp_path / "x.fits")
    mask = Frame.read(tmp_path / "x.fits", device="cpu").mask
    CR, USER = int(MaskFlag.COSMIC_RAY), int(MaskFlag.USER)
    np.testing.assert_array_equal(mask, [[CR, USER], [USER, CR | USER]])


def test_flag_count(backend):
    CR, BAD = int(MaskFlag.COSMIC_RAY), int(MaskFlag.BAD_PIXEL)
    mask = backend.asarray(np.array([[CR, BAD], [CR | BAD, 0]], np.uint16))
    assert flags.count(mask, MaskFlag.COSMIC_RAY) == 2
    assert flags.count(mask, MaskFlag.COSMIC_RAY | MaskFlag.BAD_PIXEL) == 3


def test_unnamed_integer_mask_is_user_flag(tmp_path):
    dq = np.array([[0, 1], [512, 0]], np.int16)  # another tool's data-quality array
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2), np.float32)),
                  fits.ImageHDU(dq, name="MASK")]).writeto(tmp_path / "dq.fits")
    mask = Frame.read(tmp_path / "dq.fits", device="cpu").mask
    np.testing.assert_array_equal(mask, np.where(dq != 0, int(MaskFlag.USER), 0))


# -- real and unusual files -----------------------------------------------------------------

def test_ccdproc_saao_frame_uint16_bzero(backend):
    """ccdproc's shipped SAAO 1.0 m frame: BITPIX 16 with BZERO 32768, no BUNIT."""
    before = sha256(SAAO)
    f = Frame.read(SAAO, device=backend.device)
    ccd = CCDData.read(SAAO, unit="adu")
    assert f.shape == (520, 536) and f.dtype == np.float32
    assert host(f.data).dtype.isnative
    np.testing.assert_array_equal(host(f.data), ccd.data.astype(np.float32))
    with fits.open(SAAO, do_not_scale_image_data=True) as hdul:  # stored: value - 32768
        np.testing.assert_array_equal(host(f.data), hdul[0].data.astype(np.float32) + 32768)
    assert f.unit is None  # no BUNIT in this file
    assert Frame.read(SAAO, device="cpu", unit="adu").unit == u.adu
    assert f.header["BIASSEC"] == "[   4:  13,   1: 520]" and f.header["GAIN"] == 1.9
    assert "BZERO" not in f.header and "BSCALE" not in f.header
    assert f.mask is None and f.uncertainty is None
    assert sha256(SAAO) == before, "reading modified the input file"


def test_saao_frame_round_trips_through_gpucal_and_ccddata(tmp_path):
    f = Frame.read(SAAO, device="cpu", unit="adu")
    f.write(tmp_path / "copy.fits")
    ccd = CCDData.read(tmp_path / "copy.fits")
    np.testing.assert_array_equal(ccd.data, f.data)
    assert ccd.unit == u.adu and ccd.header["TRIMSEC"] == f.header["TRIMSEC"]


def test_scaled_integers_and_blank(tmp_path):
    raw = np.array([[1, 2], [-32768, 4]], np.int16)
    hdu = fits.PrimaryHDU(raw)
    hdu.header.update(BSCALE=2.0, BZERO=10.0, BLANK=-32768)
    hdu.writeto(tmp_path / "scaled.fits")
    np.testing.assert_array_equal(Frame.read(tmp_path / "scaled.fits", device="cpu").data,
                                  [[12, 14], [np.nan, 18]])


def test_blank_in_pseudo_unsigned_image_is_nan(tmp_path):
    """astropy leaves BLANK in uint16 (BZERO = 32768) images as a number: gpucal does not."""
    hdu = fits.PrimaryHDU(np.array([[1, 2], [0, 65535]], np.uint16))
    hdu.header["BLANK"] = -32768  # stored -32768 + 32768 = 0
    hdu.writeto(tmp_path / "u16.fits")
    np.testing.assert_array_equal(Frame.read(tmp_path / "u16.fits", device="cpu").data,
                                  [[1, 2], [np.nan, 65535]])


@pytest.mark.parametrize("dtype", [">f8", ">i4", ">f4"])
def test_big_endian_data_become_native(tmp_path, dtype, backend):
    data = (np.arange(12).reshape(3, 4) * 1000 - 3000).astype(dtype)
    fits.PrimaryHDU(data).writeto(tmp_path / "be.fits")
    f = Frame.read(tmp_path / "be.fits", device=backend.device)
    out = host(f.data)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, data.astype(np.float32))


def _mef(path):
    prim = fits.PrimaryHDU(header=fits.Header({"TELESCOP": "INT", "EXPTIME": 60.0,
                                               "OBJECT": "primary"}))
    sci1 = fits.ImageHDU(np.full((4, 5), 1, np.float32), fits.Header({"OBJECT": "chip1"}),
                         name="SCI", ver=1)
    table = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=[1.0])], name="CAT")
    sci2 = fits.ImageHDU(np.full((4, 5), 2, np.float32), fits.Header({"OBJECT": "chip2"}),
                         name="SCI", ver=2)
    fits.HDUList([prim, sci1, table, sci2]).writeto(path)
    return path


@pytest.mark.parametrize("hdu, value", [(None, 1), (1, 1), ("SCI", 1), (("SCI", 2), 2), (3, 2)])
def test_multi_extension_selection(tmp_path, hdu, value):
    f = Frame.read(_mef(tmp_path / "mef.fits"), hdu=hdu, device="cpu")
    np.testing.assert_array_equal(f.data, value)
    assert f.header["OBJECT"] == f"chip{value}"  # the extension's own cards win
    assert f.header["EXPTIME"] == 60.0  # the primary's cards fill in
    assert "EXTNAME" not in f.header


@pytest.mark.parametrize("hdu, message", [
    (7, "no HDU 7"), ("DQ", "no HDU 'DQ'"), ("CAT", "is not an image"), (0, "is not an image")])
def test_bad_hdu_choice_lists_what_the_file_holds(tmp_path, hdu, message):
    path = _mef(tmp_path / "mef.fits")
    with pytest.raises(FrameError, match=message) as err:
        Frame.read(path, hdu=hdu, device="cpu")
    assert str(path) in str(err.value) and "1 SCI (ImageHDU, 4×5)" in str(err.value)


@pytest.mark.parametrize("ctype, data", [
    ("RICE_1", np.arange(64 * 48, dtype=np.int16).reshape(64, 48) - 1000),
    ("GZIP_2", np.random.default_rng(2).normal(size=(64, 48)).astype(np.float32)),
])
def test_tile_compressed_image(tmp_path, ctype, data):
    kwargs = {"quantize_level": 0.0} if data.dtype.kind == "f" else {}
    comp = fits.CompImageHDU(data, fits.Header({"BUNIT": "adu", "FILTER": "V"}),
                             compression_type=ctype, **kwargs)
    fits.HDUList([fits.PrimaryHDU(), comp]).writeto(tmp_path / "c.fits")
    f = Frame.read(tmp_path / "c.fits", device="cpu")
    np.testing.assert_array_equal(f.data, data.astype(np.float32))
    assert f.unit == u.adu and f.header["FILTER"] == "V"


@pytest.mark.parametrize("bunit, unit", [("ADU", u.adu), ("electron", u.electron),
                                         ("electron/s", u.electron / u.s), ("  adu  ", u.adu)])
def test_bunit(tmp_path, bunit, unit):
    fits.PrimaryHDU(np.zeros((2, 2)), fits.Header({"BUNIT": bunit})).writeto(tmp_path / "b.fits")
    assert Frame.read(tmp_path / "b.fits", device="cpu").unit == unit


def test_unreadable_bunit_says_which_file_and_value(tmp_path):
    path = tmp_path / "b.fits"
    fits.PrimaryHDU(np.zeros((2, 2)), fits.Header({"BUNIT": "furlongs"})).writeto(path)
    with pytest.raises(FrameError, match=r"b\.fits: BUNIT = 'furlongs' is not a unit"):
        Frame.read(path, device="cpu")
    assert Frame.read(path, device="cpu", unit="adu").unit == u.adu


# -- bad input ------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file: .*nope.fits"):
        Frame.read(tmp_path / "nope.fits", device="cpu")


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(FrameError, match="is a directory"):
        Frame.read(tmp_path, device="cpu")


@pytest.mark.parametrize("content", [b"", b"hello, this is not FITS\n" * 200, b"SIMPLE  = "])
def test_not_fits(tmp_path, content):
    path = tmp_path / "junk.fits"
    path.write_bytes(content)
    with pytest.raises(FrameError, match=r"junk\.fits: cannot read it as FITS"):
        Frame.read(path, device="cpu")


def test_truncated_file(tmp_path):
    path = tmp_path / "t.fits"
    fits.PrimaryHDU(np.ones((200, 300), np.float32)).writeto(path)
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(FrameError, match=r"t\.fits: the header claims 200×300 pixels \(240 kB\) "
                                         r"but the file holds only 100 kB: truncated or damaged"):
        Frame.read(path, device="cpu")  # astropy only warns: no warning escapes either


def _claiming(path, **cards):
    """Overwrite integer header cards of a FITS file in place (a damaged header)."""
    raw = bytearray(path.read_bytes())
    for key, value in cards.items():
        at = raw.find(f"{key:<8}=".encode())
        assert at >= 0 and at % 80 == 0, key
        raw[at:at + 80] = f"{key:<8}= {value:>20}".ljust(80).encode()
    path.write_bytes(bytes(raw))
    return path


def test_header_claiming_more_pixels_than_the_file_holds(tmp_path):
    """A 5 kB file whose header claims 200000×200000 pixels: refused before any allocation
    (it used to reach NumPy as a 149 GiB MemoryError), by every reader."""
    path = tmp_path / "h.fits"
    fits.PrimaryHDU(np.zeros((20, 20), np.float32)).writeto(path)
    _claiming(path, NAXIS1=200_000, NAXIS2=200_000)
    message = (r"h\.fits: the header claims 200000×200000 pixels \(160 GB\) but the file holds "
               r"only 5\.76 kB: truncated or damaged")
    with pytest.raises(FrameError, match=message):
        gio.read_fits(path)
    with pytest.raises(FrameError, match=message):
        Frame.read(path, device="cpu")
    with pytest.raises(FrameError, match=message):
        gio.FitsStack([path, path])


def test_truncated_mask_extension_is_named(tmp_path):
    path = tmp_path / "m.fits"
    fits.HDUList([fits.PrimaryHDU(np.zeros((100, 100), np.float32)),
                  fits.ImageHDU(np.zeros((100, 100), np.int16), name="MASK")]).writeto(path)
    path.write_bytes(path.read_bytes()[:50_000])  # the image whole, its mask cut
    with pytest.raises(FrameError, match=r"m\.fits: the MASK extension's header claims 100×100 "
                                         r"pixels \(20 kB\) but the file holds only 50 kB, "
                                         r"[0-9.]+ kB after it: truncated or damaged"):
        Frame.read(path, device="cpu")


def _gzipped(path):
    gz = path.with_name(path.name + ".gz")
    gz.write_bytes(gzip.compress(path.read_bytes()))
    return gz


@pytest.mark.parametrize("storage", ["without padding", "gzip-compressed"])
def test_whole_files_pass_the_claim_check(tmp_path, storage):
    """The check is on the data a header claims, not FITS's padding after them; a gzip
    file's claim is checked against memory, not against its (compressed) size."""
    path = tmp_path / "p.fits"
    data = np.arange(30, dtype=np.float32).reshape(5, 6)
    fits.PrimaryHDU(data).writeto(path)
    if storage == "without padding":
        path.write_bytes(path.read_bytes()[:2880 + data.nbytes])
    else:
        path = _gzipped(path)
    np.testing.assert_array_equal(gio.read_fits(path).data, data)


@pytest.mark.parametrize("kind", ["tile-compressed image", "gzip-compressed file"])
def test_compressed_claims_are_bounded_by_memory(tmp_path, kind):
    """A compressed file's claim cannot be checked against its size: against memory instead."""
    path = tmp_path / "c.fits"
    if kind.startswith("tile"):
        fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.zeros((20, 20), np.float32))]
                     ).writeto(path)
        path = _claiming(path, ZNAXIS1=1_000_000, ZNAXIS2=1_000_000)
    else:
        fits.PrimaryHDU(np.zeros((20, 20), np.float32)).writeto(path)
        path = _gzipped(_claiming(path, NAXIS1=1_000_000, NAXIS2=1_000_000))
    with pytest.raises(FrameError, match=rf"{path.name}: the header claims 1000000×1000000 "
                                         rf"pixels \(4 TB\), more than the .* of memory "
                                         rf"available; the claims of a {kind} cannot be checked"):
        Frame.read(path, device="cpu")


@pytest.mark.parametrize("shape", [(0, 0), (0, 5), (4, 0)])
def test_image_without_pixels(tmp_path, shape):
    fits.PrimaryHDU(np.zeros(shape, np.float32)).writeto(tmp_path / "e.fits")
    with pytest.raises(FrameError, match=rf"e\.fits: the image has no pixels \(shape "
                                         rf"\({shape[0]}, {shape[1]}\)\)"):
        Frame.read(tmp_path / "e.fits", device="cpu")


def test_no_image_hdu(tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column("x", "E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), table]).writeto(tmp_path / "cat.fits")
    with pytest.raises(FrameError, match=r"cat\.fits: no image HDU.*0 PRIMARY \(PrimaryHDU, no data\)"):
        Frame.read(tmp_path / "cat.fits", device="cpu")


def test_cube_is_rejected(tmp_path):
    fits.PrimaryHDU(np.zeros((3, 4, 5), np.float32)).writeto(tmp_path / "cube.fits")
    with pytest.raises(FrameError, match=r"cube\.fits: the image is 3-D \(shape \(3, 4, 5\)\)"):
        Frame.read(tmp_path / "cube.fits", device="cpu")


@pytest.mark.parametrize("ext", ["MASK", "UNCERT"])
def test_extension_of_wrong_shape(tmp_path, ext):
    fits.HDUList([fits.PrimaryHDU(np.zeros((4, 5), np.float32)),
                  fits.ImageHDU(np.zeros((5, 4), np.int16), name=ext)]).writeto(tmp_path / "w.fits")
    with pytest.raises(FrameError, match=rf"w\.fits: the {ext} extension has shape \(5, 4\) "
                                         r"but the image has shape \(4, 5\)"):
        Frame.read(tmp_path / "w.fits", device="cpu")


def test_unknown_uncertainty_kind(tmp_path):
    uhdr = fits.Header({"UTYPE": "MysteryUncertainty"})
    fits.HDUList([fits.PrimaryHDU(np.zeros((2, 2), np.float32)),
                  fits.ImageHDU(np.ones((2, 2), np.float32), uhdr, name="UNCERT")]
                 ).writeto(tmp_path / "u.fits")
    with pytest.raises(FrameError, match="UTYPE = 'MysteryUncertainty'"):
        Frame.read(tmp_path / "u.fits", device="cpu")


@pytest.mark.skipif(gpu_available(), reason="this machine has a GPU")
def test_gpu_request_fails_before_reading(tmp_path):
    with pytest.raises(GPUUnavailableError):
        Frame.read(tmp_path / "does-not-matter.fits", device="gpu")


# -- writing --------------------------------------------------------------------------------

def test_write_refuses_to_overwrite_unless_asked(tmp_path):
    path = tmp_path / "out.fits"
    Frame(np.ones((2, 2))).write(path)
    before = sha256(path)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        Frame(np.zeros((2, 2))).write(path)
    assert sha256(path) == before
    Frame(np.zeros((2, 2))).write(path, overwrite=True)
    np.testing.assert_array_equal(Frame.read(path, device="cpu").data, 0)


@pytest.mark.parametrize("compress", ["none", "mask"])  # gpucal's own writer; astropy's
def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch, compress):
    path = tmp_path / "out.fits"
    Frame(np.ones((2, 2))).write(path)
    before = sha256(path)

    def write_half_then_die(fileobj, *args, **kwargs):
        fileobj.write(b"SIMPLE  =                    T" + b" " * 50)
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", lambda self, f, **kw: write_half_then_die(f))
    monkeypatch.setattr(gio, "_write_plain", write_half_then_die)
    with pytest.raises(OSError, match="disk full"):
        Frame(np.zeros((2, 2)), mask=np.ones((2, 2), bool)).write(path, overwrite=True,
                                                                  compress=compress)
    with pytest.raises(OSError, match="disk full"):
        Frame(np.zeros((2, 2))).write(tmp_path / "new.fits", compress=compress)
    assert sha256(path) == before, "the old file was damaged"
    assert sorted(os.listdir(tmp_path)) == ["out.fits"], "a partial or temporary file was left"


def test_written_header_has_unit_and_no_stale_storage_cards(tmp_path):
    f = Frame.read(SAAO, device="cpu", unit="adu")  # its header came with BZERO/BSCALE
    f.write(tmp_path / "o.fits")
    with fits.open(tmp_path / "o.fits") as hdul:
        hdr = hdul[0].header
        assert hdr["BITPIX"] == -32 and hdr["BUNIT"] == "adu"
        assert "BZERO" not in hdr and "BSCALE" not in hdr
        np.testing.assert_array_equal(hdul[0].data, f.data)


def test_read_fits_returns_host_arrays():
    img = gio.read_fits(SAAO)
    assert isinstance(img.data, np.ndarray) and img.mask is None and img.unit is None


@pytest.mark.parametrize("compress", ["none", "mask", "mask+uncert"])
def test_written_products_are_hashed_as_written_compact_and_open_in_ccddata(tmp_path, compress):
    """The checksum write_fits returns is the file's (no second read); the MASK is 8-bit while
    every flag fits; compressed extensions are lossless and CCDData.read opens them."""
    from astropy.nddata import CCDData

    from gpucal.pipeline.results import file_checksum

    rng = np.random.default_rng(7)
    frame = Frame(rng.normal(100, 5, (40, 50)), uncertainty=rng.uniform(1, 2, (40, 50)),
                  unit="electron")
    frame.flag(frame.data > 108, MaskFlag.COSMIC_RAY)
    path = tmp_path / "p.fits"
    checksum = frame.write(path, compress=compress)
    assert checksum == file_checksum(path)
    with fits.open(path) as hdul:
        assert hdul["MASK"].data.dtype == np.uint8
        assert isinstance(hdul["MASK"], fits.CompImageHDU) == (compress != "none")
        assert isinstance(hdul["UNCERT"], fits.CompImageHDU) == (compress == "mask+uncert")
    back = Frame.read(path, device="cpu")
    np.testing.assert_array_equal(back.mask, frame.mask)
    np.testing.assert_array_equal(back.uncertainty, frame.uncertainty)
    ccd = CCDData.read(path)
    np.testing.assert_array_equal(ccd.mask, frame.mask != 0)
    np.testing.assert_array_equal(ccd.uncertainty.array, frame.uncertainty)
    with pytest.raises(ValueError, match="compress must be one of"):
        frame.write(tmp_path / "q.fits", compress="data")


@pytest.mark.parametrize("dtype, flag", [(np.float32, 64), (np.float64, 1 << 9), (np.uint8, 1)])
def test_gpucal_writes_the_bytes_astropy_writes_and_their_sha256(tmp_path, monkeypatch, dtype,
                                                                 flag):
    """Its own encoder (one byte swap into reused buffers, hashed in a second thread) gives
    the file astropy's writeto gives, in blocks small enough here that buffers are reused."""
    monkeypatch.setattr(gio, "_BLOCK", 4096)
    rng = np.random.default_rng(1)
    data = (rng.normal(100, 10, (61, 97)) if dtype != np.uint8 else
            rng.integers(0, 2, (61, 97))).astype(dtype)
    mask = np.where(rng.random(data.shape) < 0.1, flag, 0).astype(np.uint16)
    header = fits.Header([("OBJECT", "x" * 60), ("HIERARCH IERR_BIAS", 1)])
    header["HISTORY"] = "made here"
    uncertainty = np.abs(data.astype(np.float32)) + 1 if dtype != np.uint8 else None
    checksum = gio.write_fits(tmp_path / "gpucal.fits", data, header, mask=mask,
                              uncertainty=uncertainty, unit="adu")
    monkeypatch.setattr(gio, "_plain", lambda hdu: False)  # astropy's writeto, as before
    gio.write_fits(tmp_path / "astropy.fits", data, header, mask=mask, uncertainty=uncertainty,
                   unit="adu")
    written = (tmp_path / "gpucal.fits").read_bytes()
    assert written == (tmp_path / "astropy.fits").read_bytes()
    assert checksum == sha256(tmp_path / "gpucal.fits") and len(written) % 2880 == 0
    np.testing.assert_array_equal(gio.read_fits(tmp_path / "gpucal.fits", dtype=None).data, data)
