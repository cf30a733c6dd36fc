"""combine within mem_limit from files of every kind, and compressed files decompressed once.

The peak resident memory (RSS) of a combination is measured in a fresh interpreter on
real 2048² files, above its own baseline after imports (Linux: ``/proc/self/status``).
"""

import bz2
import gzip
import json
import lzma
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

import gpucal
from gpucal import Frame, FrameError, combine
from gpucal import io as gio
from gpucal.combine import combine_frame

NFRAMES, SIZE = 4, 2048
LIMIT = 96_000_000  # bands of several hundred rows: the limit, not band_bytes, sizes them
OUTPUT = SIZE * SIZE * (4 + 4 + 4 + 2)  # data, uncertainty, kept-count, mask of the result
#: Beyond the limit and the output: astropy's temporaries for the piece of a file being read
#: (io._PIECE_VALUES values: about 3 MB for these files, at most 10 MB), the comparison that
#: makes the result's mask (1 byte a pixel: 4 MB), and the freed temporaries that the C
#: allocator keeps resident (glibc: up to 20 MB measured on a 2-core Xeon host, none with
#: MALLOC_MMAP_THRESHOLD_=131072).
ALLOWANCE = 24_000_000
TILE_ROWS = 16  # of the .fz files: bands must start at multiples of it


def _flat_like(rng, shape, n):
    """Integer-valued frames (they compress quickly and losslessly) with a few outliers."""
    data = np.round(rng.normal(1000, 10, (n,) + shape))
    data[rng.random(data.shape) < 0.001] += 5000
    return data


def _write(path, hdus):
    """Write HDUs to `path`, gzip-, bzip2- or xz-compressed by its suffix."""
    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}.get(Path(path).suffix)
    if opener is None:
        fits.HDUList(hdus).writeto(path)
        return
    kwargs = {"compresslevel": 1} if opener is not lzma.open else {}
    with opener(path, "wb", **kwargs) as f:
        fits.HDUList(hdus).writeto(f)


def _scaled_int16(values, bzero=1000.0, bscale=0.5):
    """A primary HDU storing `values` as int16 with BZERO/BSCALE (exact for these values)."""
    hdu = fits.PrimaryHDU(values.astype(np.float32), fits.Header({"BUNIT": "adu"}))
    hdu.scale("int16", bzero=bzero, bscale=bscale)
    return hdu


def write_stack(directory, kind, n, shape, seed=0):
    """`n` frames of `kind` in `directory`: their paths.

    plain: float32 with MASK and UNCERT extensions; int16: scaled integers; gz, bz2, xz:
    scaled integers with a MASK, compressed whole; fz: tile-compressed integers (tiles of
    TILE_ROWS rows) and a tile-compressed MASK, as fpack writes them.
    """
    rng = np.random.default_rng(seed)
    data = _flat_like(rng, shape, n)
    masks = rng.random(data.shape) < 0.01
    suffix = {"plain": ".fits", "int16": ".fits", "fz": ".fits.fz"}.get(kind, f".fits.{kind}")
    paths = []
    for i in range(n):
        path = Path(directory) / f"{kind}{i}{suffix}"
        if kind == "plain":
            Frame(data[i], mask=masks[i], uncertainty=np.full(shape, 3.0), unit="adu").write(path)
        elif kind == "fz":
            tiles = (TILE_ROWS, shape[1])
            _write(path, [fits.PrimaryHDU(),
                          fits.CompImageHDU(data[i].astype(np.int16), fits.Header({"BUNIT": "adu"}),
                                            tile_shape=tiles),
                          fits.CompImageHDU(masks[i].astype(np.int16), name="MASK",
                                            tile_shape=tiles)])
        else:
            hdus = [_scaled_int16(data[i])]
            if kind != "int16":
                hdus.append(fits.ImageHDU(masks[i].astype(np.uint8), name="MASK"))
            _write(path, hdus)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def stacks(tmp_path_factory):
    """NFRAMES frames of SIZE² of each kind that the RSS tests read."""
    directory = tmp_path_factory.mktemp("stacks")
    return {kind: write_stack(directory, kind, NFRAMES, (SIZE, SIZE))
            for kind in ("plain", "int16", "gz", "fz")}


# -- peak resident memory -----------------------------------------------------------------

_MEASURE = r"""
import json, sys
import astropy.io.fits, astropy.nddata, astropy.units  # what gpucal imports when it reads
import numpy as np
import gpucal

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

how, limit, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
if how == "cli":  # the command, which also reads the headers first and writes the result
    import gpucal.cli
frames = [gpucal.Frame.read(p, device="cpu") for p in paths] if how == "in-memory" else paths
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # the peak (VmHWM) starts again from what is resident now
baseline = status("VmRSS:")
output = None
if how == "cli":
    assert gpucal.cli.main(["combine", *paths, "-o", paths[0] + ".out.fits", "--sigma-clip",
                            "3", "3", "--mem-limit", limit, "--device", "cpu", "--overwrite"]) == 0
else:
    from gpucal.combine import combine_frame  # the Frame combine holds (files give a CCDData)

    result = combine_frame(frames, "average", sigma_clip=True, mem_limit=limit, device="cpu")[0]
    # data, uncertainty and mask, and the count of kept values combine held besides
    output = sum(a.nbytes for a in (result.data, result.uncertainty, result.mask))
    output += result.data.size * np.dtype(np.int32).itemsize
print(json.dumps({"peak": status("VmHWM:") - baseline, "gpucal": gpucal.__file__,
                  "output": output}))
"""


def _peak_rss(paths, how="files"):
    """Peak RSS above the baseline of combining `paths` in a fresh interpreter: from the
    files, from Frames read before the baseline ("in-memory"), or with the command ("cli")."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(Path(gpucal.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", _MEASURE, how, str(LIMIT), *map(str, paths)],
                          capture_output=True, text=True, env=env, check=True)
    report = json.loads(done.stdout.splitlines()[-1])  # the command prints before it
    assert Path(report["gpucal"]).parent == Path(gpucal.__file__).parent  # this tree
    assert report["output"] in (None, OUTPUT)
    return report["peak"]


linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"),
                                reason="measures peak RSS through Linux's /proc/self")


@linux_only
@pytest.mark.parametrize("kind", ["plain", "int16", "gz", "fz", "in-memory", "cli"])
def test_peak_memory_stays_within_the_limit_plus_the_output(stacks, kind):
    """8 × 2048² frames once peaked 160-265 MB against 138-202 MB for limit plus output."""
    how = kind if kind in ("in-memory", "cli") else "files"
    peak = _peak_rss(stacks[{"in-memory": "plain", "cli": "gz"}.get(kind, kind)], how)
    assert peak <= LIMIT + OUTPUT + ALLOWANCE, (
        f"{kind}: peak {peak / 1e6:.1f} MB > limit {LIMIT / 1e6:.0f} MB + output "
        f"{OUTPUT / 1e6:.1f} MB + allowance {ALLOWANCE / 1e6:.0f} MB")


@pytest.mark.parametrize("kind", ["plain", "int16", "gz", "fz"])
def test_banded_files_give_the_in_memory_result(stacks, kind):
    paths = stacks[kind]
    banded = combine_frame(paths, "average", sigma_clip=True, mem_limit=LIMIT // 4,
                           device="cpu")[0]
    whole = combine([Frame.read(p, device="cpu") for p in paths], "average", sigma_clip=True,
                    device="cpu")
    for got, want in ((banded.data, whole.data), (banded.uncertainty, whole.uncertainty),
                      (banded.mask, whole.mask)):
        np.testing.assert_array_equal(got, want)


# -- compressed files are decompressed once ---------------------------------------------------


def _small(tmp_path, kind, n=3, shape=(200, 64)):
    return write_stack(tmp_path, kind, n, shape, seed=4)


def _many_bands(paths, device="cpu", **kwargs):
    """combine's Frame with a limit of a few rows a band (by the CPU backend's sizing)."""
    return combine_frame(paths, "median", mem_limit=3 * 64 * 80 * 20, device=device,
                         **kwargs)[0]


def test_a_gzip_file_is_decompressed_once(tmp_path, monkeypatch):
    paths = _small(tmp_path, "gz")
    sizes = [len(gzip.decompress(p.read_bytes())) for p in paths]
    inflated = []  # bytes gzip hands out, whoever reads: gpucal, or astropy seeking in a band
    original = gzip._GzipReader.read
    monkeypatch.setattr(gzip._GzipReader, "read",
                        lambda self, size=-1: inflated.append(len(data := original(self, size)))
                        or data)
    got = _many_bands(paths, scale="median")  # the scale pass reads each frame once more
    assert sum(inflated) == sum(sizes)
    monkeypatch.undo()
    whole = combine([Frame.read(p, device="cpu") for p in paths], "median", scale="median",
                    device="cpu")
    np.testing.assert_array_equal(got.data, whole.data)
    np.testing.assert_array_equal(got.mask, whole.mask)


def test_a_tile_compressed_file_decompresses_each_tile_once(tmp_path, monkeypatch):
    from astropy.io.fits.hdu.compressed import _tiled_compression

    paths = _small(tmp_path, "fz")
    with gio.FitsStack(paths) as files:
        assert files.row_alignment == TILE_ROWS
    tiles = []
    original = _tiled_compression._decompress_tile
    monkeypatch.setattr(_tiled_compression, "_decompress_tile",
                        lambda *a, **k: tiles.append(1) or original(*a, **k))
    got = _many_bands(paths)
    # 200 rows are 13 tiles of 16 rows, in the image and in its MASK
    assert len(tiles) == len(paths) * 2 * 13
    monkeypatch.undo()
    whole = combine([Frame.read(p, device="cpu") for p in paths], "median", device="cpu")
    np.testing.assert_array_equal(got.data, whole.data)
    np.testing.assert_array_equal(got.mask, whole.mask)


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_every_whole_file_compression_is_decompressed_once(tmp_path, kind, backend):
    paths = _small(tmp_path, kind)
    with gio.FitsStack(paths) as files:
        assert files.decompressions == len(paths)
    with gio.FitsStack(_small(tmp_path, "int16")) as files:
        assert files.decompressions == 0
    device = backend.device
    whole = combine([Frame.read(p, device=device) for p in paths], "median", device=device)
    got = _many_bands(paths, device)
    for a, b in ((got.data, whole.data), (got.mask, whole.mask)):
        np.testing.assert_array_equal(gpucal.to_device(a, "cpu"), gpucal.to_device(b, "cpu"))


def _open_descriptors():
    return len(os.listdir("/proc/self/fd"))


@linux_only
def test_temporary_copies_are_freed_even_on_errors(tmp_path, monkeypatch):
    import tempfile

    spool = tmp_path / "tmp"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    paths = _small(tmp_path, "gz")
    before = _open_descriptors()
    _many_bands(paths)
    assert _open_descriptors() == before and not any(spool.iterdir())

    damaged = tmp_path / "damaged.fits.gz"
    damaged.write_bytes(paths[1].read_bytes()[:5000])
    with pytest.raises(FrameError, match="damaged.fits.gz: cannot read it as FITS"):
        _many_bands([paths[0], damaged, paths[2]])  # while decompressing it
    text = tmp_path / "text.fits.gz"
    text.write_bytes(gzip.compress(b"not FITS\n" * 1000))
    with pytest.raises(FrameError, match="text.fits.gz: cannot read it as FITS"):
        _many_bands([paths[0], text])  # once decompressed
    (tmp_path / "other").mkdir()
    other = write_stack(tmp_path / "other", "gz", 1, (100, 64))
    with pytest.raises(FrameError, match="differs from the first frame's"):
        _many_bands([paths[0], *other])
    assert _open_descriptors() == before and not any(spool.iterdir())


# -- results written in place ------------------------------------------------------------------


@pytest.mark.parametrize("dtypes", [(np.float32, np.float32, np.int32),
                                    (np.float64, np.float64, np.int64)],
                         ids=["result dtypes", "float64"])
def test_combine_stack_writes_its_results_into_out(backend, dtypes):
    """combine passes the rows of its outputs: every chunk lands there, cast to their dtype."""
    rng = np.random.default_rng(6)
    x = rng.normal(100, 5, (7, 33, 20)).astype(np.float32)
    x[rng.random(x.shape) < 0.02] = np.nan
    mask = rng.random(x.shape) < 0.05
    x, mask = (gpucal.to_device(a, backend.device) for a in (x, mask))
    options = dict(sigma=dict(sigma_lower=2.5, sigma_upper=3.0, maxiters=None,
                              cenfunc="median", stdfunc="mad_std"), method="median")
    want = backend.combine_stack(x, mask, **options)
    out = tuple(backend.xp.full(x.shape[1:], -1, dtype) for dtype in dtypes)
    assert all(r is o for r, o in zip(backend.combine_stack(x, mask, out=out, **options), out))
    for got, expected, dtype in zip(out, want, dtypes):
        np.testing.assert_array_equal(gpucal.to_device(got, "cpu"),
                                      gpucal.to_device(expected, "cpu").astype(dtype))
    with pytest.raises(ValueError, match="C-contiguous"):
        backend.combine_stack(x, mask, out=tuple(backend.xp.empty((20, 33), d).T
                                                 for d in dtypes), **options)
