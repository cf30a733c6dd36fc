"""The command line: ``gpucal info``, ``combine``, ``ccdmask``, ``mask`` and ``cosmics``."""

import subprocess
import sys
from pathlib import Path

import astropy
import numpy as np
import pytest
import scipy
from _helpers import sha256
from astropy.io import fits

import gpucal
from gpucal import MaskFlag
from gpucal.cli import main


def test_info_reports_versions_backends_and_gpu(capsys, monkeypatch):
    monkeypatch.delenv("GPUCAL_DEVICE", raising=False)
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name, version in [("gpucal", gpucal.__version__), ("NumPy", np.__version__),
                          ("SciPy", scipy.__version__), ("astropy", astropy.__version__)]:
        assert any(line.split()[:2] == [name, version] for line in out.splitlines()), name
    assert "numpy (CPU): available" in out
    status = gpucal.gpu_status()
    if status.available:
        assert "cupy (GPU): available" in out
        assert all(d.name in out for d in status.devices) and "GiB total" in out
    else:
        assert any(line.split()[:2] == ["GPU", "none:"] and line.endswith(status.reason)
                   for line in out.splitlines())
        assert f"cupy (GPU): unavailable: {status.reason}" in out
    assert f"auto → {gpucal.resolve_device('auto')} (GPUCAL_DEVICE not set)" in out


def test_info_shows_a_bad_environment_setting_instead_of_crashing(capsys, monkeypatch):
    monkeypatch.setenv("GPUCAL_DEVICE", "tpu")
    assert main(["info"]) == 0
    assert "GPUCAL_DEVICE='tpu' → error: the GPUCAL_DEVICE environment variable must be" \
        in capsys.readouterr().out


def test_version_and_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"gpucal {gpucal.__version__}"
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2 and "COMMAND" in capsys.readouterr().err


SCRIPT = Path(sys.executable).parent / "gpucal"  # the console script of an installed gpucal


@pytest.mark.parametrize("command", [
    [sys.executable, "-m", "gpucal"],
    pytest.param([str(SCRIPT)], marks=pytest.mark.skipif(
        not SCRIPT.exists(), reason="gpucal is not installed in this environment")),
], ids=["module", "script"])
def test_runs_from_the_shell(command):
    proc = subprocess.run(command + ["info"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["gpucal", gpucal.__version__]


# -- gpucal combine -------------------------------------------------------------------------

@pytest.fixture
def flats(tmp_path):
    from gpucal import Frame

    rng = np.random.default_rng(0)
    paths = []
    for i in range(7):
        data = rng.normal(1000 * (1 + 0.1 * i), 10, (40, 30))
        data[rng.random(data.shape) < 0.01] = 60000
        paths.append(tmp_path / f"flat{i}.fits")
        Frame(data, unit="adu", header={"IMAGETYP": "flat"}).write(paths[-1])
    return paths


def test_combine_writes_what_the_api_computes(flats, tmp_path, capsys):
    out = tmp_path / "master.fits"
    args = [str(p) for p in flats] + ["-o", str(out), "--method", "median", "--scale", "mode",
                                      "--sigma-clip", "2.5", "3", "--sigma-func", "median",
                                      "--dev-func", "mad_std",
                                      "--maxiters", "0", "--minmax", "none", "50000",
                                      "--mem-limit", "20kB", "--device", "cpu"]
    assert main(["combine"] + args) == 0
    captured = capsys.readouterr()
    assert f"wrote {out}: median of 7 frames (40×30), 0 pixels with no data" in captured.out
    assert "reading 7 files [####" in captured.err
    expected = gpucal.combine(flats, "median", scale="mode", sigma_clip=True,
                              sigma_clip_low_thresh=2.5, sigma_clip_high_thresh=3,
                              sigma_clip_func="median", sigma_clip_dev_func="mad_std",
                              maxiters=None, minmax_clip=True,
                              minmax_clip_max=50000, device="cpu")  # as --device cpu
    expected = gpucal.Frame.from_ccddata(expected, dtype=None)  # file names in: a CCDData out
    written = gpucal.Frame.read(out, device="cpu")
    np.testing.assert_array_equal(written.data, expected.data)
    np.testing.assert_array_equal(written.uncertainty, expected.uncertainty)
    assert written.header["NCOMBINE"] == 7 and written.header["IMAGETYP"] == "flat"


def test_combine_refuses_to_overwrite_and_reports_bad_input(flats, tmp_path, capsys):
    out = tmp_path / "master.fits"
    assert main(["combine", *map(str, flats), "-o", str(out)]) == 0
    assert main(["combine", *map(str, flats), "-o", str(out)]) == 1
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["combine", *map(str, flats), "-o", str(out), "--overwrite",
                 "--clip-extrema", "1", "1", "--hdu", "0"]) == 0
    assert main(["combine", str(tmp_path / "nope.fits"), "-o", str(tmp_path / "x.fits")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["combine", *map(str, flats), "-o", str(tmp_path / "y.fits"),
                 "--mem-limit", "10"]) == 1
    assert "one row of this stack needs" in capsys.readouterr().err


@pytest.fixture
def damaged(tmp_path):
    """A 5 kB FITS file whose header claims 200000×200000 pixels."""
    path = tmp_path / "damaged.fits"
    fits.writeto(path, np.zeros((20, 20), np.float32))
    raw = bytearray(path.read_bytes())
    for key in ("NAXIS1", "NAXIS2"):
        at = raw.find(key.encode())
        raw[at:at + 80] = f"{key:<8}= {200_000:>20}".ljust(80).encode()
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("command", ["combine", "ccdmask", "cosmics"])
def test_a_damaged_header_is_one_line_not_a_huge_allocation(damaged, flats, tmp_path, capsys,
                                                            command):
    files = {"combine": [str(flats[0]), str(damaged)], "ccdmask": [str(damaged)],
             "cosmics": [str(damaged)]}[command]
    out = tmp_path / ("out" if command == "cosmics" else "out.fits")
    assert main([command, *files, "-o", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"gpucal {command}: error: {damaged}: the header claims 200000×200000 pixels "
                   "(160 GB) but the file holds only 5.76 kB: truncated or damaged")


# -- gpucal ccdmask, gpucal mask ------------------------------------------------------------

@pytest.fixture
def two_flats(tmp_path):
    from gpucal.simulate import defective_flat

    paths = []
    for seed, level in [(1, 20000.0), (2, 15000.0)]:
        flat, _ = defective_flat((120, 100), seed=seed, level=level)
        paths.append(tmp_path / f"flat{seed}.fits")
        fits.writeto(paths[-1], flat)
    return paths


def test_ccdmask_of_a_ratio_writes_what_the_api_computes(two_flats, tmp_path, capsys):
    from gpucal import ccdmask, read_mask

    out = tmp_path / "mask.fits"
    before = [sha256(p) for p in two_flats]
    args = ["ccdmask", *map(str, two_flats), "-o", str(out), "--findbadcolumns", "--ngood", "3",
            "--device", "cpu"]
    assert main(args) == 0
    a, b = (fits.getdata(p) for p in two_flats)
    want = ccdmask(b / a, findbadcolumns=True, ngood=3)
    np.testing.assert_array_equal(read_mask(out), np.where(want, MaskFlag.BAD_PIXEL, 0))
    assert f"{int(want.sum())} bad pixels" in capsys.readouterr().out
    assert "ngood=3" in str(fits.getheader(out)["HISTORY"])
    assert [sha256(p) for p in two_flats] == before
    assert main(args) == 1  # exists
    assert "--overwrite" in capsys.readouterr().err


def test_ccdmask_reports_bad_input(two_flats, tmp_path, capsys):
    small = tmp_path / "small.fits"
    fits.writeto(small, np.ones((10, 10), np.float32))
    assert main(["ccdmask", str(two_flats[0]), str(small), "-o", str(tmp_path / "m.fits")]) == 1
    assert "(10, 10)" in capsys.readouterr().err
    assert main(["ccdmask", str(tmp_path / "nope.fits"), "-o", str(tmp_path / "m.fits")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_mask_combine_keeps_flags(tmp_path, capsys):
    from gpucal import read_mask, write_mask

    bad, hot = np.zeros((4, 5), bool), np.zeros((4, 5), bool)
    bad[1, 1], hot[1, 1], hot[2, 3] = True, True, True
    write_mask(tmp_path / "bad.fits", bad)
    write_mask(tmp_path / "hot.fits", hot, flag=MaskFlag.HOT_PIXEL)
    fits.writeto(tmp_path / "tutorial.fits", (np.arange(20).reshape(4, 5) == 7).astype(np.uint8))
    out = tmp_path / "all.fits"
    assert main(["mask", "combine", str(tmp_path / "bad.fits"), str(tmp_path / "hot.fits"),
                 str(tmp_path / "tutorial.fits"), "-o", str(out)]) == 0
    flags = read_mask(out)
    assert flags[1, 1] == MaskFlag.BAD_PIXEL | MaskFlag.HOT_PIXEL
    assert flags[2, 3] == MaskFlag.HOT_PIXEL and flags[1, 2] == MaskFlag.USER
    assert "3 masked pixels (BAD_PIXEL 1, HOT_PIXEL 2, USER 1)" in capsys.readouterr().out
    write_mask(tmp_path / "other.fits", np.zeros((3, 3), bool))
    assert main(["mask", "combine", str(out), str(tmp_path / "other.fits"), "-o",
                 str(tmp_path / "x.fits")]) == 1
    assert "(3, 3)" in capsys.readouterr().err


@pytest.fixture
def raw_science(tmp_path):
    """Two raw science frames with GAIN and RDNOISE in their headers."""
    from gpucal.simulate import cosmic_ray_frame

    raw = tmp_path / "raw"
    raw.mkdir()
    paths = []
    for i in range(2):
        frame, _ = cosmic_ray_frame((96, 128), seed=i, gain=2.0, readnoise=5.0)
        header = fits.Header([("GAIN", 2.0), ("RDNOISE", 5.0), ("BUNIT", "adu")])
        paths.append(raw / f"sci{i}.fits")
        fits.writeto(paths[-1], frame, header)
    return paths


def test_cosmics_writes_cleaned_frames_with_their_masks(raw_science, tmp_path, capsys):
    from astropy.nddata import CCDData

    from gpucal import cosmicray_lacosmic

    out = tmp_path / "clean"
    before = [sha256(p) for p in raw_science]
    args = ["cosmics", *map(str, raw_science), "-o", str(out), "--gain", "GAIN",
            "--readnoise", "RDNOISE", "--sigclip", "5", "--device", "cpu"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for path in raw_science:
        want = cosmicray_lacosmic(CCDData(fits.getdata(path), unit="adu"), gain=2.0,
                                  readnoise=5.0, sigclip=5.0)
        got = CCDData.read(out / path.name)
        np.testing.assert_array_equal(got.mask, want.mask)
        np.testing.assert_allclose(got.data, want.data, rtol=1e-6)
        assert got.unit == "electron"
        assert f"{path.name}: {int(want.mask.sum())} cosmic-ray pixels" in printed
    assert [sha256(p) for p in raw_science] == before
    assert main(args) == 1  # outputs exist
    assert "--overwrite" in capsys.readouterr().err
    assert main(args[:4] + [str(raw_science[0].parent)]) == 1  # onto the raw frames
    assert "never overwritten" in capsys.readouterr().err
    assert [sha256(p) for p in raw_science] == before


def test_cosmics_reports_a_missing_keyword(raw_science, tmp_path, capsys):
    assert main(["cosmics", str(raw_science[0]), "-o", str(tmp_path / "o"), "--gain",
                 "EGAIN"]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"gpucal cosmics: error: {raw_science[0]}: --gain: keyword 'EGAIN' is not in the header")


@pytest.mark.parametrize("option, card, message", [
    ("--gain", 0, "GAIN must be a positive number of electrons per ADU; got 0.0"),
    ("--gain", -2.0, "GAIN must be a positive number of electrons per ADU; got -2.0"),
    ("--gain", "high", "GAIN = 'high' in the header is not a number"),
    ("--readnoise", -5.0, "RDNOISE must be a number of electrons, 0 or more; got -5.0"),
    ("--readnoise", 1e30, "RDNOISE = 1e+30 is too large: its square overflows float32, so the "
                          "noise would be infinite everywhere (an all-inf uncertainty, no cosmic "
                          "ray found)"),
])
def test_cosmics_names_the_file_keyword_and_value_it_cannot_use(raw_science, tmp_path, capsys,
                                                                option, card, message):
    """A header card that is no gain or read noise: one line, nothing written (it used to be
    a traceback, or silently 0 or 74% of the pixels flagged)."""
    keyword = "GAIN" if option == "--gain" else "RDNOISE"
    fits.setval(raw_science[1], keyword, value=card)
    out = tmp_path / "clean"
    args = ["cosmics", str(raw_science[1]), "-o", str(out), "--gain", "GAIN", "--readnoise",
            "RDNOISE", "--device", "cpu"]
    assert main(args) == 1
    err = capsys.readouterr().err.splitlines()[-1]
    assert err == f"gpucal cosmics: error: {raw_science[1]}: {option}: {message}"
    assert not (out / raw_science[1].name).exists()


@pytest.mark.parametrize("option, value, message", [
    ("--gain", "0", "--gain must be a positive number of electrons per ADU; got 0.0"),
    ("--readnoise", "-3", "--readnoise must be a number of electrons, 0 or more; got -3.0"),
    ("--readnoise", "nan", "--readnoise must be finite; got nan"),
    ("--readnoise", "1e30", "--readnoise = 1e+30 is too large: its square overflows float32"),
])
def test_cosmics_refuses_bad_numbers_before_reading(raw_science, tmp_path, capsys, option, value,
                                                    message):
    out = tmp_path / "clean"
    assert main(["cosmics", *map(str, raw_science), "-o", str(out), f"{option}={value}"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"gpucal cosmics: error: {message}")
    assert not out.exists()


@pytest.mark.parametrize("bunit, unit", [(None, "adu"), ("DN", "adu"), ("counts", "adu"),
                                         ("COUNT", "adu")])
def test_outputs_of_unitless_and_dn_raws_open_in_ccddata(tmp_path, capsys, bunit, unit):
    """Acquisition programs write no BUNIT, or DN/counts: ADU, said once, and every output
    carries BUNIT so that CCDData.read(path) opens it (ADU before the gain, electron after)."""
    from astropy.nddata import CCDData
    from gpucal.simulate import cosmic_ray_frame

    paths = []
    for i in range(3):
        data, _ = cosmic_ray_frame((48, 64), seed=i, gain=2.0, readnoise=5.0)
        paths.append(tmp_path / f"light{i}.fits")
        fits.writeto(paths[-1], data, fits.Header({"BUNIT": bunit} if bunit else {}))
    out = tmp_path / "stack.fits"
    assert main(["combine", *map(str, paths), "-o", str(out), "--device", "cpu"]) == 0
    said = capsys.readouterr().out
    assert ("3 of 3 files have no BUNIT: read as ADU" in said) == (bunit is None)
    assert CCDData.read(out).unit == unit
    assert main(["cosmics", *map(str, paths), "-o", str(tmp_path / "clean"), "--gain", "2",
                 "--readnoise", "5", "--device", "cpu"]) == 0
    assert capsys.readouterr().out.count("have no BUNIT") == (bunit is None)  # once a run
    for path in paths:
        assert CCDData.read(tmp_path / "clean" / path.name).unit == "electron"
