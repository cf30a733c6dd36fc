"""The results database (gpucal.sqlite) and ``gpucal list``."""

import argparse
import re
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gpucal.cli import results as cli_results
from gpucal.pipeline.results import DB_NAME, SCHEMA_VERSION, Record, ResultsDB, file_checksum


def _records():
    """The same records each call: `created` fixed (the clock's second may tick between calls)."""
    return [replace(rec, created="2026-11-22T08:00:00+00:00") for rec in [
        Record("masters/bias_n1.fits", "bias", night="2026-11-20", mjd=61000.1, exptime=0.0,
               signature={"CCDBINX": 2, "FILTER": None}, inputs=["raw/b1.fits", "raw/b2.fits"],
               parameters={"method": "median"}, stats={"QUANT500": 300.5, "ROBUSTSTD": 3.0},
               checksum="0" * 64),
        Record("masters/flat_n1_R.fits", "flat", night="2026-11-20", mjd=61000.2,
               signature={"CCDBINX": 2, "FILTER": "R"},
               calibrations={"bias": {"path": "masters/bias_n1.fits", "delta_mjd": -0.1,
                                      "ierr": 0}},
               stats={"QUANT500": 1.0, "ROBUSTSTD": 0.02},
               flags={"IERR_BIAS": 0, "DELTA_MJD_BIAS": -0.1}),
        Record("science/s1.fits", "science", night="2026-11-21", mjd=61001.5, exptime=300,
               signature={"CCDBINX": 2, "FILTER": "R"},
               stats={"QUANT500": 80.0, "ROBUSTSTD": 7.5},
               flags={"IERR_BIAS": 1, "DELTA_MJD_BIAS": -1.4, "NCOSMIC": 12}),
        Record("science/s2.fits", "science", status="failed", reason="no flat",
               night="2026-11-21", flags={"IERR_FLAT": 1}),
    ]]


@pytest.fixture
def db(tmp_path):
    with ResultsDB(tmp_path) as db:
        for rec in _records():
            db.record(rec)
        yield db


def test_records_round_trip(db, tmp_path):
    assert (tmp_path / DB_NAME).is_file()
    assert db.records() == sorted(_records(), key=lambda r: r.path)
    rec = db.get("masters/flat_n1_R.fits")
    assert rec.calibrations["bias"] == {"path": "masters/bias_n1.fits", "delta_mjd": -0.1,
                                        "ierr": 0}
    assert rec.gpucal_version and rec.created.endswith("+00:00")
    assert db.get(tmp_path / "science" / "s1.fits").flags["NCOSMIC"] == 12  # absolute path
    assert db.get("nothing.fits") is None
    assert [r.path for r in db.records(kind="science", status="ok")] == ["science/s1.fits"]
    assert len(db.records(night="2026-11-2*")) == 4 and len(db.records(night="2026-11-20")) == 2
    assert Record.from_row(_records()[0].as_row()) == _records()[0]


def test_numpy_values_and_path_normalisation(tmp_path):
    rec = Record(Path("a.fits"), "dark", mjd=np.float32(1.5), inputs=(Path("raw/x.fits"),),
                 stats={"NPOINTS": np.int64(4), "QUANT500": np.float32(0.25)})
    with ResultsDB(tmp_path / "out") as db:
        db.record(rec)
        got = db.get("a.fits")
        with pytest.raises(ValueError, match="not inside"):
            db.record(Record(tmp_path / "elsewhere.fits", "bias"))
        with pytest.raises(ValueError, match="leaves"):
            db.get("../a.fits")
    assert got.mjd == 1.5 and got.inputs == ("raw/x.fits",)
    assert got.stats == {"NPOINTS": 4, "QUANT500": 0.25}
    with pytest.raises(ValueError, match="status"):
        Record("a.fits", "bias", status="done")


def test_record_replaces_the_row_of_the_same_path(db):
    db.record(Record("science/s2.fits", "science", night="2026-11-21", flags={"IERR_FLAT": 0}))
    assert len(db.records()) == 4
    assert db.get("science/s2.fits").status == "ok"
    assert db.get("science/s2.fits").reason is None


def test_done_checks_status_file_and_checksum(tmp_path):
    product = tmp_path / "masters" / "bias.fits"
    product.parent.mkdir()
    product.write_bytes(b"master bias")
    with ResultsDB(tmp_path) as db:
        assert not db.done("masters/bias.fits")  # not recorded
        db.record(Record("masters/bias.fits", "bias", checksum=file_checksum(product)))
        assert db.done("masters/bias.fits")
        assert db.done(product, checksum=file_checksum(product))
        assert not db.done("masters/bias.fits", checksum="f" * 64)
        product.write_bytes(b"changed")
        assert not db.done("masters/bias.fits")  # file changed
        product.unlink()
        assert not db.done("masters/bias.fits")  # file vanished
        product.write_bytes(b"no checksum recorded")
        db.record(Record("masters/bias.fits", "bias"))
        assert db.done("masters/bias.fits")
        db.record(Record("masters/bias.fits", "bias", status="failed", reason="boom"))
        assert not db.done("masters/bias.fits")


@pytest.mark.parametrize("where, expected", [
    ("ROBUSTSTD > 5", ["science/s1.fits"]),
    ("robuststd<=3", ["masters/bias_n1.fits", "masters/flat_n1_R.fits"]),
    ("IERR_BIAS != 0 and night == '2026-11-21'", ["science/s1.fits"]),
    ("kind == 'flat' or QUANT500 < 100", ["masters/flat_n1_R.fits", "science/s1.fits"]),
    ("DELTA_MJD_BIAS < -1", ["science/s1.fits"]),
    ('FILTER == "R" and not (kind == "flat")', ["science/s1.fits"]),
    ("not (QUANT500 >= 1e2 or status == 'failed')",
     ["masters/flat_n1_R.fits", "science/s1.fits"]),
    ("(kind == 'bias' or kind == 'flat') and (CCDBINX == 2)",
     ["masters/bias_n1.fits", "masters/flat_n1_R.fits"]),
    ("exptime == 300 and mjd > 61001", ["science/s1.fits"]),
    ("QUANT500 < QUANT975 or NOPE == 1 or NOPE != 1", []),  # unknown keys: false
    ("not NOPE == 1", ["masters/bias_n1.fits", "masters/flat_n1_R.fits", "science/s1.fits",
                       "science/s2.fits"]),
    ("FILTER != 'R'", []),  # the bias's FILTER is null: missing
    ("kind > 3 or kind == 3", []),  # a string against a number
])
def test_query_filters(db, where, expected):
    assert [r.path for r in db.query(where=where)] == expected


def test_query_with_kind_night_and_status(db):
    assert [r.path for r in db.query("science", "QUANT500 < 100")] == ["science/s1.fits"]
    assert [r.path for r in db.query(where="kind == 'science'", status="failed",
                                     night="2026-11-21")] == ["science/s2.fits"]


@pytest.mark.parametrize("where, position, message", [
    ("ROBUSTSTD >", 11, "expected a key, number or string, found the end"),
    ("ROBUSTSTD = 5", 10, "unexpected character '='"),
    ("(kind == 'flat'", 15, "expected ')'"),
    ("kind == 'flat' QUANT500 < 1", 15, "expected 'and', 'or' or the end, found 'QUANT500'"),
    ("kind == 'flat", 8, "unterminated string"),
    ("kind and 1", 5, "expected a comparison"),
    ("and kind == 1", 0, "expected a key"),
    ("__import__('os')", 10, "expected a comparison"),
    ("kind == 'x' or __import__('os').system('touch pwned')", 31, "unexpected character '.'"),
    ("kind == 'x' or os.system == 1", 17, "unexpected character '.'"),
    ("ROBUSTSTD > 5; import os", 13, "unexpected character ';'"),
])
def test_filter_syntax_errors_point_at_the_position(db, where, position, message, tmp_path,
                                                     monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=f"at position {position}\n") as err:
        db.query(where=where)
    assert message in str(err.value)
    assert str(err.value).splitlines()[-1] == "  " + " " * position + "^"
    assert not (tmp_path / "pwned").exists()


def test_newer_schema_and_foreign_files_are_refused(tmp_path):
    ResultsDB(tmp_path).close()
    con = sqlite3.connect(tmp_path / DB_NAME)
    assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(ValueError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade gpucal"):
        ResultsDB(tmp_path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ValueError, match="not a readable gpucal results database.*--rebuild-db"):
        ResultsDB(junk)
    with pytest.raises(FileNotFoundError, match="run gpucal reduce first"):
        ResultsDB(tmp_path / "missing", create=False)
    assert not (tmp_path / "missing").exists()


def test_a_record_survives_a_killed_writer(tmp_path):
    code = ("import os, signal\nfrom gpucal.pipeline.results import Record, ResultsDB\n"
            f"db = ResultsDB({str(tmp_path)!r})\n"
            "db.record(Record('bias.fits', 'bias', stats={'QUANT500': 1.5}))\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode != 0
    with ResultsDB(tmp_path) as db:
        assert db.get("bias.fits").stats == {"QUANT500": 1.5}


def test_readers_see_committed_rows_while_a_writer_is_in_a_transaction(db, tmp_path):
    writer = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("DELETE FROM products")
    with ResultsDB(tmp_path, timeout=1) as reader:
        assert len(reader.records()) == 4
    writer.execute("COMMIT")
    writer.close()
    assert db.records() == []


def _list(argv, capsys):
    parser = argparse.ArgumentParser(prog="gpucal")
    cli_results.add_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["list", *argv])
    assert args.func(args) == 0
    return capsys.readouterr().out.splitlines()


def test_list_prints_an_aligned_table(db, tmp_path, capsys):
    lines = _list([str(tmp_path)], capsys)
    assert lines[0].split() == ["path", "kind", "night", "status"]
    assert [line.split() for line in lines[1:]] == [
        ["masters/bias_n1.fits", "bias", "2026-11-20", "ok"],
        ["masters/flat_n1_R.fits", "flat", "2026-11-20", "ok"],
        ["science/s1.fits", "science", "2026-11-21", "ok"],
        ["science/s2.fits", "science", "2026-11-21", "failed"]]
    starts = {tuple(m.start() for m in re.finditer(r"\S+", line)) for line in lines}
    assert len(starts) == 1  # columns aligned


def test_list_keys_sort_and_filters(db, tmp_path, capsys):
    lines = _list([str(tmp_path), "-k", "ROBUSTSTD", "-k", "ierr_bias", "-k", "FILTER",
                   "--sort", "ROBUSTSTD"], capsys)
    assert lines[0].split() == ["path", "kind", "night", "status", "ROBUSTSTD", "ierr_bias",
                                "FILTER"]
    assert [line.split()[0] for line in lines[1:]] == [
        "masters/flat_n1_R.fits", "masters/bias_n1.fits", "science/s1.fits", "science/s2.fits"]
    assert lines[1].split()[4:] == ["0.02", "0", "R"] and lines[4].split()[4:] == ["-"] * 3
    width = len(lines[0].split("ROBUSTSTD")[0]) + len("ROBUSTSTD")
    assert all(line[:width].endswith(value) for line, value in
               zip(lines[1:], ["0.02", "3", "7.5", "-"]))  # numbers right-aligned
    lines = _list([str(tmp_path), "--kind", "science", "--filter", "NCOSMIC > 10",
                   "-k", "NCOSMIC"], capsys)
    assert [line.split() for line in lines[1:]] == [
        ["science/s1.fits", "science", "2026-11-21", "ok", "12"]]
    assert _list([str(tmp_path), "--night", "2026-11-20", "-k", "mjd"], capsys)[1].split()[-1] \
        == "61000.1"
    assert _list([str(tmp_path), "--filter", "kind == 'dark'"], capsys) == ["no products match"]


def test_list_all_keys(db, tmp_path, capsys):
    lines = _list([str(tmp_path), "-k", "all"], capsys)
    assert lines[0].split()[:3] == ["columns:", "path", "kind"]
    assert lines[1].split() == ["stats:", "QUANT500", "ROBUSTSTD"]
    assert lines[2].split() == ["flags:", "DELTA_MJD_BIAS", "IERR_BIAS", "IERR_FLAT", "NCOSMIC"]
    assert lines[3].split() == ["signature:", "CCDBINX", "FILTER"]


def test_list_errors(db, tmp_path, capsys):
    with pytest.raises(FileNotFoundError,
                       match="no gpucal results database in .*empty .run gpucal reduce first"):
        _list([str(tmp_path / "empty")], capsys)
    with pytest.raises(ValueError, match="position 10"):
        _list([str(tmp_path), "--filter", "ROBUSTSTD = 5"], capsys)


@pytest.mark.parametrize("argv, message", [
    (["--kind", "sciense"], r"--kind 'sciense' is not a kind of product; known: bias, ccdmask, "
                            r"dark, flat, hot_pixels, raw, science"),
    (["-k", "ROBUSTSTD", "-k", "RDNOISE"], r"-k: no product has the key\(s\) 'RDNOISE'; "
                                           r"known keys: .*quant500, reason, robuststd"),
    (["--filter", "NCOSMIC > 1 or FWHM < 3"], r"--filter: no product has the key\(s\) 'FWHM'"),
])
def test_list_refuses_unknown_kinds_and_keys_naming_the_known_ones(db, tmp_path, capsys,
                                                                   argv, message):
    """A typo must not give an empty table that looks like an answer."""
    with pytest.raises(ValueError, match=message):
        _list([str(tmp_path), *argv], capsys)


def test_list_into_a_closed_pipe_exits_quietly(db, tmp_path):
    """`gpucal list OUT | head -1`: no BrokenPipeError traceback, exit status 0."""
    import subprocess
    import sys

    for i in range(3000):  # more than a pipe's buffer
        db.record(Record(f"science/x{i:05d}.fits", "science"))
    script = f"import sys; from gpucal.cli import main; sys.exit(main(['list', {str(tmp_path)!r}]))"
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its lines
    with proc.stderr:
        assert proc.wait(timeout=60) == 0 and b"path" in first
        assert proc.stderr.read() == b""
