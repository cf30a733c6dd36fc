"""The night pipeline under faults a user (or an attacker) can cause: raw frames are never
written, nothing goes stale unnoticed, nothing is lost, and every fault ends in one line."""

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from astropy.io import fits

import gpucal
from gpucal.simulate import simulate_night
from gpucal.cli import main
from gpucal.errors import DamagedDatabaseError
from gpucal.pipeline.results import ResultsDB

from _helpers import sha256

SMALL = dict(shape=(64, 64), overscan=8, n_bias=3, n_dark=2, n_flat=3, n_science=2,
             filters=("V",), dark_exposures=(60.0,))
N_PRODUCTS = 7  # bias, dark, flat masters; hot-pixel and bad-pixel masks; 2 science


def _night(directory, **kwargs):
    sim = simulate_night(directory, **{**SMALL, **kwargs})
    return sim, {p: sha256(p) for p in sim.paths}


def _state(out):
    """(product files, database rows): equal sets when nothing is orphaned either way."""
    files = {os.path.relpath(os.path.join(d, f), out) for d, _, names in os.walk(out)
             for f in names if f.endswith(".fits")}
    with ResultsDB(out, create=False) as db:
        rows = {r.path for r in db.records(status="ok")}
    hidden = [f for d, _, names in os.walk(out) for f in names
              if f.startswith(".") and f != ".gpucal.lock"]
    return files, rows, hidden


def _pixels(out):
    found = {}
    for path in sorted(_state(out)[0]):
        with fits.open(out / path) as hdul:
            found[path] = [h.data.copy() for h in hdul if h.data is not None]
    return found


def assert_same_pixels(a, b):
    assert a.keys() == b.keys()
    for path in a:
        for x, y in zip(a[path], b[path], strict=True):
            np.testing.assert_array_equal(x, y, err_msg=path)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    sim, sums = _night(root / "raw")
    summary = gpucal.reduce(root / "raw", root / "out", device="cpu")
    assert summary.failed == [] and summary.products == N_PRODUCTS
    return sim, root / "raw", root / "out", sums


# -- raw frames are never written ------------------------------------------------------------

@pytest.mark.parametrize("where", ["raw inside out", "same", "symlink to raw", "out inside raw"])
def test_overlapping_raw_and_output_directories_are_refused(tmp_path, capsys, where):
    out = tmp_path / "out"
    raw = {"raw inside out": out / "2026-11-20", "same": out, "symlink to raw": out,
           "out inside raw": tmp_path / "raw"}[where]
    sim, sums = _night(raw)
    if where == "symlink to raw":
        out = tmp_path / "link"
        out.symlink_to(raw)
    elif where == "out inside raw":
        out = raw / "products"
    assert main(["reduce", str(raw), "-o", str(out), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpucal reduce: error: the ") and "\n" not in err
    assert {p: sha256(p) for p in sim.paths} == sums


def test_a_product_is_never_written_through_a_symlink_out_of_the_output(night, tmp_path):
    _, raw, _, sums = night
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "2026-11-20").symlink_to(elsewhere)  # a folder leading out of OUT_DIR
    summary = gpucal.reduce(raw, out, device="cpu")
    masters = [r for r in summary.failed if r.kind in ("bias", "dark", "flat")]
    assert masters and all("would be written outside" in r.reason for r in masters)
    assert len(summary.failed) == N_PRODUCTS and list(elsewhere.iterdir()) == []


# -- nothing stale ----------------------------------------------------------------------------

def test_a_replaced_raw_frame_remakes_what_depends_on_it_and_says_why(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "out"
    _night(raw)
    gpucal.reduce(raw, out, device="cpu")
    science = sorted((raw / "2026-11-20").glob("sciV_*.fits"))[0]
    os.utime(science)  # touched, not changed: re-hashed, not remade
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.products == 0 and summary.remade == {}
    with fits.open(science) as hdul:  # the same name, other pixels (a re-taken frame)
        data = hdul[0].data.copy()
        header = hdul[0].header
    data[10, 10] += 50
    science.unlink()
    fits.writeto(science, data, header)
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.made == {"science": 1}
    (path, why), = summary.remade.items()
    assert path.endswith(science.name) and why == f"its raw frame {science.name} changed"
    assert f"  remade {path}: its raw frame {science.name} changed" in summary.text()
    flat = sorted((raw / "2026-11-20").glob("flat*.fits"))[0]
    with fits.open(flat, mode="update") as hdul:  # a raw flat changed: its master, the
        hdul[0].data[5, 5] += 100                 # masks and every science frame follow
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.made == {"flat": 1, "ccdmask": 1, "science": 2}
    assert any("changed" in why for why in summary.remade.values())


# -- nothing lost ------------------------------------------------------------------------------

def test_one_odd_header_value_never_stops_the_night(tmp_path):
    sim, _ = _night(tmp_path / "raw")
    with fits.open(sim.paths[-1], mode="update") as hdul:
        hdul[0].header["ODDCARD"] = complex(1.5, -2.0)
        hdul[0].header["FILTER"] = complex(0, 1)  # a signature value JSON cannot hold
    summary = gpucal.reduce(tmp_path / "raw", tmp_path / "out", device="cpu")
    assert summary.failed == []
    with ResultsDB(tmp_path / "out", create=False) as db:
        odd = [r for r in db.records() if r.inputs and r.inputs[0] == sim.paths[-1]]
    assert odd and odd[0].signature["FILTER"] == "1j"
    files, rows, hidden = _state(tmp_path / "out")
    assert files == rows and hidden == []


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty page"])
def test_a_damaged_database_says_how_to_rebuild_and_rebuild_db_does_it(night, tmp_path,
                                                                       capsys, damage):
    _, raw, out, _ = night
    shutil.copytree(out, tmp_path / "out")
    out = tmp_path / "out"
    db = out / "gpucal.sqlite"
    content = db.read_bytes()
    before = {p: os.stat(out / p).st_mtime_ns for p in _state(out)[0]}
    db.write_bytes({"truncated": content[:3000], "garbage": b"not a database " * 100,
                    "empty page": content[:100] + bytes(4000) + content[4100:]}[damage])
    for argv in (["reduce", str(raw), "-o", str(out)], ["list", str(out)]):
        assert main(argv + (["--device", "cpu"] if argv[0] == "reduce" else [])) == 1
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "is not a readable gpucal results database" in err
        assert f"gpucal reduce RAW_DIR -o {out} --rebuild-db" in err
    with pytest.raises(DamagedDatabaseError):
        gpucal.reduce(raw, out, device="cpu")
    summary = gpucal.reduce(raw, out, device="cpu", rebuild_db=True)
    assert summary.failed == [] and summary.products == 0 and summary.adopted == N_PRODUCTS
    assert {p: os.stat(out / p).st_mtime_ns for p in before} == before  # nothing remade
    assert len(list(out.glob("gpucal.sqlite.damaged-*"))) == 1
    files, rows, hidden = _state(out)
    assert files == rows and hidden == []
    assert gpucal.reduce(raw, out, device="cpu").reused == N_PRODUCTS


def test_a_product_whose_row_was_lost_is_recorded_not_remade(night, tmp_path):
    """A run killed between a product's rename and its commit leaves a file without a row."""
    _, raw, out, _ = night
    shutil.copytree(out, tmp_path / "out")
    out = tmp_path / "out"
    with sqlite3.connect(out / "gpucal.sqlite") as con:
        con.execute("DELETE FROM products WHERE kind = 'science'")
    summary = gpucal.reduce(raw, out, device="cpu")
    assert summary.products == 0 and summary.adopted == 2


# -- every fault a user can cause: one line, non-zero exit ---------------------------------------

def _cli(args, tmp_path, preamble=""):
    script = textwrap.dedent(preamble) + f"import sys\nfrom gpucal.cli import main\n" \
                                         f"sys.exit(main({args!r}))\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_a_full_disk_stops_the_night_in_one_line_and_keeps_what_was_written(night, tmp_path):
    """RLIMIT_FSIZE makes writes past 40 kB fail (EFBIG), as a full disk does (ENOSPC)."""
    _, raw, full, _ = night
    limit = """
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
    """
    out = tmp_path / "out"
    proc = _cli(["reduce", str(raw), "-o", str(out), "--device", "cpu"], tmp_path, limit)
    assert proc.returncode == 1
    err = [line for line in proc.stderr.splitlines() if "[" not in line]  # not progress bars
    assert len(err) == 1 and err[0].startswith("gpucal reduce: error: File too large")
    files, rows, hidden = _state(out)
    assert files == rows and hidden == []  # what was written is complete and recorded
    with ResultsDB(out, create=False) as db:
        assert all(sha256(out / r.path) == r.checksum for r in db.records(status="ok"))
    summary = gpucal.reduce(raw, out, device="cpu")  # space again: the rest is made
    assert summary.failed == [] and summary.products + summary.reused == N_PRODUCTS
    assert_same_pixels(_pixels(out), _pixels(full))


@pytest.mark.parametrize("case", ["name too long", "output is a file", "no raw directory"])
def test_path_faults_are_one_line(night, tmp_path, case):
    _, raw, _, _ = night
    (tmp_path / "afile").write_text("x")
    out = {"name too long": str(tmp_path / ("a" * 300)), "output is a file":
           str(tmp_path / "afile" / "out"), "no raw directory": str(tmp_path / "out")}[case]
    proc = _cli(["reduce", str(raw if case != "no raw directory" else tmp_path / "nope"),
                 "-o", out, "--device", "cpu"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("gpucal reduce: error: ")


def test_an_unwritable_output_directory_is_one_line(night, tmp_path, monkeypatch, capsys):
    """As root nothing is unwritable, so the refusal is injected where the OS would make it."""
    _, raw, _, _ = night
    real_mkdir = os.mkdir

    def refuse(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path / "out")):
            raise PermissionError(13, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    assert main(["reduce", str(raw), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"gpucal reduce: error: Permission denied: {tmp_path / 'out'}; check the " \
                  "permissions"


def test_dot_dot_in_the_raw_directory_and_an_unreadable_file_do_not_refuse_the_run(tmp_path):
    sim, sums = _night(tmp_path / "raw")
    (tmp_path / "raw" / "2026-11-20" / "junk.fits").write_bytes(b"SIMPLE  =   T" * 3)
    (tmp_path / "raw" / "2026-11-20" / "gone.fits").symlink_to(tmp_path / "nowhere.fits")
    (tmp_path / "elsewhere").mkdir()
    summary = gpucal.reduce(tmp_path / "elsewhere" / ".." / "raw", tmp_path / "out",
                            device="cpu")
    assert summary.failed == [] and summary.products == N_PRODUCTS
    assert [os.path.basename(r.inputs[0]) for r in summary.skipped] == ["junk.fits"]
    assert {p: sha256(p) for p in sim.paths} == sums
