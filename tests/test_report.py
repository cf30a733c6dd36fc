"""The QA report (report.html), looked at as a person would: in a browser, every picture
shown, nothing in the console, header values that cannot run or break the page."""

import os
import shutil
import struct
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from astropy.io import fits

import gpucal
from gpucal.cli import main
from gpucal.cli.results import list_products
from gpucal.pipeline import report as report_module
from gpucal.pipeline.report import INSTALL_HINT, REPORT_NAME, write_report
from gpucal.pipeline.results import ResultsDB
from gpucal.simulate import simulate_night

from _browser import chromium, look_at

NIGHT = "2026-11-20"
# 1 bias, 2 darks, 2 flats, 4 masks and 5 science frames (2 R, 3 V: one of another filter,
# one of a hostile name): 9 + 5 * 2 + 1 pictures with the trends
SMALL = dict(shape=(64, 64), overscan=8, n_bias=3, n_dark=2, n_flat=3, n_science=2)
# What a header may hold: markup, quotes, an ampersand, matplotlib's math delimiters.
HOSTILE = """<script>alert("filter")</script> $\\frac{a}{$ & 'q'"""
HOSTILE_NAME = """sci<img src=x onerror=alert(1)>"&'"""
HOSTILE_TYPE = "<b onmouseover=alert(2)>"
BROWSER = os.environ.get("GPUCAL_BROWSER", "")  # "require" (CI) or "skip" (the stand-in run)


def need_browser():
    if BROWSER == "skip":
        pytest.skip("GPUCAL_BROWSER=skip: the CuPy stand-in's run, whose pages are the first "
                    "run's")
    if chromium() is None:
        if BROWSER == "require":
            pytest.fail("GPUCAL_BROWSER=require, but there is no chromium on PATH "
                        "(apt-get install chromium)", pytrace=False)
        pytest.skip("no chromium on PATH: apt-get install chromium (.ci/run installs it)")


def need_matplotlib():
    pytest.importorskip("matplotlib", reason="pictures need matplotlib: pip install "
                                             "'gpucal[report]' (the test extra has it)")


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A small night with hostile header values and names, reduced by `gpucal reduce`:
    (raw, out, what gpucal reduce printed)."""
    root = tmp_path_factory.mktemp("report")
    raw = root / "raw"
    sim = simulate_night(raw, **SMALL)
    science = sorted(p for p in sim.paths if "sciV" in p)
    fits.setval(science[0], "FILTER", value=HOSTILE)  # no flat of it: flagged, not flattened
    shutil.copy(science[1], raw / NIGHT / f"{HOSTILE_NAME}.fits")
    bias = sorted(p for p in sim.paths if "bias" in p)[0]
    shutil.copy(bias, raw / NIGHT / "odd.fits")
    fits.setval(raw / NIGHT / "odd.fits", "IMAGETYP", value=HOSTILE_TYPE)  # skipped
    (raw / NIGHT / "junk<b>.fits").write_bytes(b"SIMPLE  = nonsense" + bytes(100))  # skipped
    return raw, root / "out"


@pytest.fixture(scope="module")
def reduced(night, tmp_path_factory):
    raw, out = night
    need_matplotlib()
    assert main(["reduce", str(raw), "-o", str(out), "--device", "cpu"]) == 0
    return out


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.scripts = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a" and "href" in attrs and not attrs["href"].startswith("#"):
            self.links.append(attrs["href"])
        elif tag == "script" or any(name.startswith("on") for name in attrs):
            self.scripts += 1


def links(page):
    """The page's pictures and links, as files, and how many scripts or handlers it has."""
    parser = _Links()
    parser.feed(page.read_text())
    files = lambda urls: [(page.parent / unquote(urlsplit(u).path)).resolve() for u in urls]
    return files(parser.images), files(parser.links), parser.scripts


def assert_every_link_is_a_file_inside(page, out):
    images, hrefs, scripts = links(page)
    assert scripts == 0
    for path in images + hrefs:
        assert path.is_file(), path
        assert path.is_relative_to(out.resolve()), path
    return images, hrefs


def test_reduce_writes_a_page_of_the_night(reduced):
    out = reduced
    page = out / REPORT_NAME
    text = page.read_text()
    images, hrefs = assert_every_link_is_a_file_inside(page, out)
    with ResultsDB(out, create=False) as db:
        records = db.records()
    ok = [r for r in records if r.status == "ok"]
    science = [r for r in ok if r.kind == "science"]
    # every master and mask a picture, every science frame a thumbnail and a full-size view
    assert len(images) == len(ok) - len(science) + len(science) + 1  # + the trends
    for rec in ok:
        assert (out / rec.path).resolve() in hrefs, rec.path  # each product is linked
    full = [p for p in hrefs if p.suffix == ".png"]
    assert len(full) == len(science) and all(p.stat().st_size > 0 for p in full)
    # the summary, with every reason
    assert "raw frames in" in text and "2 skipped" in text and "0 failed" in text
    assert "junk&lt;b&gt;.fits" in text and "not FITS" in text or "junk&lt;b&gt;" in text
    assert "IMAGETYP" in text and "&lt;b onmouseover=alert(2)&gt;" in text
    assert "1 flagged" in text and "not flat-fielded (no flat)" in text
    # the table gpucal list prints, as it prints it
    keys = [k for k in report_module.SCIENCE_KEYS]
    table = list_products(out, kind="science", night=NIGHT, keys=keys, sort="mjd")
    assert "\n".join(table).replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;").replace('"', "&quot;").replace("'", "&#x27;") in text
    assert f"$ gpucal list {out} --night {NIGHT} --kind science --sort mjd -k FILTER" in text


def test_header_values_and_names_are_text_never_markup(reduced):
    text = (reduced / REPORT_NAME).read_text()
    for hostile in (HOSTILE, HOSTILE_NAME, HOSTILE_TYPE):
        assert hostile not in text
    assert "&lt;script&gt;alert(&quot;filter&quot;)&lt;/script&gt; $\\frac{a}{$ &amp; " \
           "&#x27;q&#x27;" in text
    assert "sci&lt;img src=x onerror=alert(1)&gt;&quot;&amp;&#x27;" in text
    assert "script-src" not in text and "default-src &#x27;none&#x27;" in text  # no scripts
    assert links(reduced / REPORT_NAME)[2] == 0


def test_the_page_looks_right_in_a_browser(reduced, tmp_path):
    need_browser()
    look = look_at((reduced / REPORT_NAME).as_uri())
    (tmp_path / "screenshot.png").write_bytes(look.screenshot)  # to look at when it fails
    assert look.title == f"gpucal report: night {NIGHT}"
    assert len(look.images) == len(links(reduced / REPORT_NAME)[0]) > 10
    assert look.broken == [] and look.errors == [] and look.dialogs == []
    assert look.screenshot[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", look.screenshot[16:24]) == (1400, 2000)


def test_the_browser_check_sees_what_a_person_would_miss(tmp_path):
    """The check itself: a missing picture, a console error, an exception and a dialog are
    all seen (so a clean page is clean, not unlooked-at)."""
    need_browser()
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><title>broken</title><img src="missing.png">'
                    '<script>console.error("said"); alert("hi"); undefined_name();</script>')
    look = look_at(page.as_uri())
    assert [Path(urlsplit(url).path).name for url in look.broken] == ["missing.png"]
    assert any("said" in e for e in look.errors) and any("undefined_name" in e
                                                         for e in look.errors)
    assert any("missing.png" in e for e in look.errors) and look.dialogs == ["hi"]


def test_several_nights_have_an_index_and_report_rewrites_one(tmp_path, capsys):
    need_matplotlib()
    raw, out = tmp_path / "raw", tmp_path / "out"
    for night in ("2026-11-20", "2026-11-21"):
        simulate_night(raw / night, night=night, **SMALL)
    assert main(["reduce", str(raw), "-o", str(out), "--device", "cpu"]) == 0
    index = out / REPORT_NAME
    pages = [out / "report" / f"{night}.html" for night in ("2026-11-20", "2026-11-21")]
    images, hrefs = assert_every_link_is_a_file_inside(index, out)
    assert images == [] and [p.resolve() for p in pages] == [h for h in hrefs
                                                            if h.suffix == ".html"]
    for page in pages:
        images, hrefs = assert_every_link_is_a_file_inside(page, out)
        assert len(images) == 5 + 4 + 2 * 2 + 1 and index.resolve() in hrefs
    assert "gpucal report: 2 nights" in index.read_text()
    before = {p: p.stat().st_mtime_ns for p in pages}
    capsys.readouterr()
    assert main(["report", str(out), "--night", "2026-11-21"]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"wrote report {index} (") and "report [" in printed.err
    assert pages[0].stat().st_mtime_ns == before[pages[0]]  # the other night: not rewritten
    assert pages[1].stat().st_mtime_ns != before[pages[1]]
    if BROWSER != "skip" and chromium():
        for page in (index, pages[1]):
            look = look_at(page.as_uri())
            assert look.broken == [] and look.errors == [] and look.dialogs == []


def test_report_command_errors(tmp_path, reduced, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 1
    assert "no gpucal results database" in capsys.readouterr().err
    assert main(["report", str(reduced), "--night", "1999-*"]) == 1
    assert f"no night matches '1999-*'; the nights in {reduced}: {NIGHT}" in \
        capsys.readouterr().err


def test_without_matplotlib_the_page_has_every_table_and_says_how(reduced, tmp_path,
                                                                  monkeypatch):
    out = tmp_path / "out"
    shutil.copytree(reduced, out, ignore=shutil.ignore_patterns("report*"))
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed
    report = write_report(out)
    text = report.path.read_text()
    assert not report.drawn and report.pictures == 0 and not (out / "report").exists()
    assert INSTALL_HINT in report.text() and INSTALL_HINT.replace('"', "&quot;") in text
    assert "<img" not in text and "Summary" in text and "$ gpucal list" in text
    assert "no picture: matplotlib is not installed" in text
    assert_every_link_is_a_file_inside(report.path, out)


def test_a_picture_that_cannot_be_drawn_is_a_note_and_the_rest_is_drawn(reduced, tmp_path,
                                                                        monkeypatch):
    need_matplotlib()
    out = tmp_path / "out"
    shutil.copytree(reduced, out, ignore=shutil.ignore_patterns("report*"))

    def boom(self, places, rec, masks):
        raise RuntimeError("no ink")

    monkeypatch.setattr(report_module._Painter, "_master", boom)
    report = write_report(out)
    text = report.path.read_text()
    assert len(report.notes) == 5 and all("not drawn: RuntimeError: no ink" in n
                                          for n in report.notes)
    assert "Pictures not drawn" in text and text.count("not drawn: RuntimeError: no ink") == 10
    assert report.pictures == 4 + 2 * 5 + 1  # the masks, the science frames, the trends
    assert_every_link_is_a_file_inside(report.path, out)


def test_a_report_that_fails_never_fails_the_night(night, tmp_path, monkeypatch, capsys):
    raw, _ = night

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report_module, "write_report", broken)
    summary = gpucal.reduce(raw, tmp_path / "out", device="cpu")
    assert summary.failed == [] and summary.report is None and summary.products == 14
    assert "the report was not written: OSError: [Errno 28] No space left on device" in \
        summary.notes
    assert main(["reduce", str(raw), "-o", str(tmp_path / "cli"), "--device", "cpu"]) == 0
    assert "  the report was not written: OSError" in capsys.readouterr().out
    monkeypatch.undo()
    assert gpucal.reduce(raw, tmp_path / "none", device="cpu", report=False).report is None
    assert main(["reduce", str(raw), "-o", str(tmp_path / "none"), "--device", "cpu",
                 "--no-report"]) == 0
    assert not (tmp_path / "none" / REPORT_NAME).exists()


def test_pictures_are_redrawn_only_when_what_they_show_changed(reduced, tmp_path):
    need_matplotlib()
    out = tmp_path / "out"
    shutil.copytree(reduced, out)
    pictures = sorted((out / "report").rglob("*.png"))
    before = {p: p.stat().st_mtime_ns for p in pictures}
    first = write_report(out)
    assert {p: p.stat().st_mtime_ns for p in pictures} == before and first.pictures == 20
    stale = pictures[0]
    shutil.copy(pictures[1], stale)  # another picture's stamp: drawn again
    (out / "report" / NIGHT / "masters" / "gone.png").write_bytes(b"")  # no product: removed
    write_report(out)
    assert stale.read_bytes() != pictures[1].read_bytes()
    assert not (out / "report" / NIGHT / "masters" / "gone.png").exists()
    assert [p for p in out.rglob(".*") if p.name != ".gpucal.lock"] == []  # no temporary files


def test_pictures_are_never_written_through_a_link_out_of_the_output(reduced, tmp_path):
    need_matplotlib()
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    shutil.copytree(reduced, out, ignore=shutil.ignore_patterns("report*"))
    elsewhere.mkdir()
    (out / "report").symlink_to(elsewhere)
    report = write_report(out)
    assert list(elsewhere.iterdir()) == [] and report.pictures == 0
    assert report.notes and all("would be written outside" in n for n in report.notes)
    assert_every_link_is_a_file_inside(report.path, out)


def test_pictures_show_the_flags_of_the_product(reduced):
    """The full-size view of a science frame: its cosmic rays in their colour, pixel for pixel
    (row 0 at the bottom, as FITS)."""
    PIL = pytest.importorskip("PIL.Image")
    with ResultsDB(reduced, create=False) as db:
        rec = db.query("science", "FILTER == 'R'")[0]
    mask = gpucal.io.read_fits(reduced / rec.path).mask
    shown = np.asarray(PIL.open(reduced / "report" / NIGHT / "science"
                                / (Path(rec.path).stem + ".png")))[::-1]
    cosmic = report_module._FLAG_INDEX[gpucal.MaskFlag.COSMIC_RAY]
    np.testing.assert_array_equal(shown == cosmic, (mask & gpucal.MaskFlag.COSMIC_RAY) != 0)
    assert (shown == cosmic).sum() == rec.stats["NCOSMIC"] > 0
