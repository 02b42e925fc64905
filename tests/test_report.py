"""Issue 13: the HTML reports, checked as files and in a real browser (headless Chromium)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from . import browser
from .conftest import ROOT

HOSTILE = 'C-<b>9</b><script>alert("x")</script>&amp;'


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The demo export saved to a history, plus an SRS client with a hostile id."""
    from typer.testing import CliRunner

    from alliance_cli.cli.app import app

    db = tmp_path_factory.mktemp("report") / "h.sqlite"
    runner = CliRunner()
    out = db.parent / "o.csv"
    runner.invoke(app, ["batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                        "--save", "--db", str(db), "-o", str(out), "-q"])  # fmt: skip
    for session, marks in enumerate(["9 9 9 9", "9 9 9 9", "9.5 9 9.2 9", "6 7 8 5", "9 9 9 9"]):
        result = runner.invoke(app, ["score", "srs", *marks.split(), "--client", HOSTILE,
                                     "--session", str(session + 1), "--save", "--db", str(db),
                                     "-q"])  # fmt: skip
        assert result.exit_code == 0, result.output
    return db


def _report(cli, store: Path, tmp_path: Path, *args: str) -> str:
    out = tmp_path / "r.html"
    result = cli("report", *args, "--db", str(store), "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"report: wrote {out}" in result.stderr
    return out.read_text(encoding="utf-8")


def test_a_client_report_is_one_self_contained_file(cli, store: Path, tmp_path: Path):
    page = _report(cli, store, tmp_path, "C-118")
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)\s*=", page)  # nothing fetched: no src, no link
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # and the page forbids it anyway
    for section in ("What the history says", "Open concerns", "Instruments", "@media print"):
        assert section in page
    assert "Total fell in session 5 (from a usual 67 to 38 % of the maximum, larger" in page
    assert "Scoring key: <strong>verified</strong>" in page and "a4b5b8033fb2" in page
    assert "Generated " in page and str(store) in page


def test_data_is_escaped_everywhere(cli, store: Path, tmp_path: Path):
    page = _report(cli, store, tmp_path, HOSTILE)
    assert "<script>" not in page and "<b>9" not in page
    assert (
        "C-&lt;b&gt;9&lt;/b&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;" in page
    )


def test_report_usage_errors(cli, store: Path, tmp_path: Path):
    both = cli("report", "C-118", "--caseload", "--db", str(store))
    assert both.exit_code == 2 and "not both" in both.stderr
    typo = cli("report", "C-1180", "--db", str(store), "-o", str(tmp_path / "x.html"))
    assert typo.exit_code == 2 and "did you mean" in typo.stderr
    assert not (tmp_path / "x.html").exists()  # nothing written for an error
    missing = cli("report", "C-118", "--db", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 5 and "no history here" in missing.stderr


def test_the_caseload_report_lists_concerns_first_with_the_filters(cli, store, tmp_path):
    page = _report(cli, store, tmp_path, "--caseload")
    rows = re.findall(r"<tr><td>(.*?)</td>", page)
    assert len(rows) == 37  # 36 demo clients and the SRS one
    assert rows[0] == "C-118"  # the most severe concern first, as in `clients`
    assert page.count('class="spark"') >= 37
    only = _report(cli, store, tmp_path, "--caseload", "--counselor", "rivera", "--open")
    assert "counselor rivera" in only and len(re.findall(r"<tr><td>", only)) < 37


@pytest.fixture(scope="module")
def pages(store: Path, tmp_path_factory):
    """The client report of C-118, of the hostile SRS client, and the caseload, rendered."""
    from typer.testing import CliRunner

    from alliance_cli.cli.app import app

    where = tmp_path_factory.mktemp("pages")
    made = {}
    for name, args in (("c118", ["C-118"]), ("srs", [HOSTILE]), ("caseload", ["--caseload"])):
        out = where / f"{name}.html"
        result = CliRunner().invoke(app, ["report", *args, "--db", str(store), "-o", str(out)])
        assert result.exit_code == 0, result.output
        made[name] = out
    return made


@pytest.mark.parametrize("name", ["c118", "srs", "caseload"])
def test_each_report_loads_in_chromium_with_no_errors_and_no_requests(pages, name):
    page, proc, profile = browser.open_page(pages[name])
    try:
        assert page.errors == [] and page.console == []
        own = pages[name].resolve().as_uri()
        assert [u for u in page.requests if u != own] == []  # nothing fetched
        assert page.js("document.scripts.length") == 0
        assert page.js("document.querySelectorAll('svg[role=img]').length") > 0
        alternatives = page.js(
            "[...document.querySelectorAll('svg[role=img]')].every(s => "
            "(s.getAttribute('aria-label') || s.querySelector('desc')?.textContent || '')"
            ".length > 10)"
        )
        assert alternatives  # every chart has a text alternative
        page.send("Emulation.setEmulatedMedia", media="print")
        assert page.js("document.body.offsetHeight") > 0  # the print stylesheet lays out
    finally:
        browser.close(proc, profile)


def test_the_charts_have_every_session_and_the_cutoff(pages):
    page, proc, profile = browser.open_page(pages["c118"])
    try:
        counts = page.js(
            "[...document.querySelectorAll('svg.chart')].map("
            "s => s.querySelectorAll('circle.point').length)"
        )
        assert counts == [7, 7, 7, 7]  # C-118 has 7 sessions; goal, task, bond, total
        assert page.js("document.querySelectorAll('svg.chart line.cutoff').length") == 0
        # one reading: C-118's one open concern is a drop on the total in session 5, so the
        # total's chart (the fourth) carries the one rupture marker, and no subscale does
        markers = page.js(
            "[...document.querySelectorAll('svg.chart')].map("
            "s => s.querySelectorAll('.rupture').length)"
        )
        assert markers == [0, 0, 0, 1]
    finally:
        browser.close(proc, profile)
    page, proc, profile = browser.open_page(pages["srs"])
    try:
        # the SRS total's cutoff (36 of 40) is drawn, and labelled in text, on the total only
        assert page.js("document.querySelectorAll('svg.chart line.cutoff').length") == 1
        assert "cutoff 36 (sum)" in page.js("document.body.innerText")
        assert page.js("document.querySelectorAll('svg.chart .repair').length") >= 1
    finally:
        browser.close(proc, profile)


def test_a_hostile_client_id_is_shown_as_text(pages):
    page, proc, profile = browser.open_page(pages["srs"])
    try:
        assert page.js("document.querySelector('h1').textContent") == (
            f"Therapeutic alliance: client {HOSTILE}"
        )
        assert page.js("document.querySelectorAll('b, script').length") == 0
        assert page.js("document.title") == f"Alliance report: {HOSTILE}"
    finally:
        browser.close(proc, profile)


def test_a_screenshot_can_be_taken(pages, tmp_path: Path):
    page, proc, profile = browser.open_page(pages["c118"])
    try:
        shot = tmp_path / "shot.png"
        page.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    finally:
        browser.close(proc, profile)
