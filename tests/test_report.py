"""Issues 13 and 21: the HTML reports, checked as files and in a real browser (headless
Chromium, with axe-core for accessibility): built for triage, at 390 px, on paper."""

from __future__ import annotations

import hashlib
import html
import json
import random
import re
from pathlib import Path

import pytest

from . import browser
from .conftest import ROOT

HOSTILE = 'C-<b>9</b><script>alert("x")</script>&amp;'
BIDI = "C-\u202e1-evil"
WAI_T = ["2"] * 10  # the therapist's form: low (POMP 25)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """The demo export saved to a history; an SRS client with a hostile id; a client whose
    WAI-SR (high) and WAI-SR-T (low, none in sessions 4-6) differ; a bidi id."""
    from typer.testing import CliRunner

    from alliance_cli.cli.app import app

    db = tmp_path_factory.mktemp("report") / "h.sqlite"
    runner = CliRunner()
    out = db.parent / "o.csv"
    runner.invoke(app, ["batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                        "--save", "--db", str(db), "-o", str(out), "-q"])  # fmt: skip

    def save(*args: str) -> None:
        result = runner.invoke(app, ["score", *args, "--save", "--db", str(db), "-q"])
        assert result.exit_code == 0, result.output

    for session, marks in enumerate(["9 9 9 9", "9 9 9 9", "9.5 9 9.2 9", "6 7 8 5", "9 9 9 9"]):
        save("srs", *marks.split(), "--client", HOSTILE, "--session", str(session + 1))
    for session in range(1, 9):
        save("wai-sr", *["5", "4", "5", "5", "4", "5", "5", "5", "4", "5", "5", "5"],
             "--client", "P-1", "--session", str(session))  # fmt: skip
        if session not in (4, 5, 6):
            save("wai-sr-t", *WAI_T, "--client", "P-1", "--session", str(session))
    save("srs", "9", "9", "9", "9", "--client", BIDI, "--session", "1")
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
    for section in ("Before this session", "What the history says", "Instruments",
                    "@media print", "<main>"):  # fmt: skip
        assert section in page
    assert "Total fell in session 5 (from a usual 67 to 38 % of the maximum, larger" in page
    sha = hashlib.sha256((ROOT / "instruments" / "wai-sr.yaml").read_bytes()).hexdigest()
    assert "Scoring key: <strong>verified</strong>" in page and sha in page
    assert "Generated " in page
    # the history is named by its file name only: no home folder in a report
    assert "<code>h.sqlite</code>" in page and str(store.parent) not in page


def test_before_this_session_comes_first_with_the_question(cli, store: Path, tmp_path: Path):
    page = _report(cli, store, tmp_path, "C-118")
    before = page.index("Before this session")
    assert before < page.index("What the history says") < page.index("<svg")
    item = page[before:].split("</li>")[0]
    assert "Total fell in session 5" in item and "To ask:" in item
    assert "Ask how the last session felt" in item  # the reading's question, said
    assert "(wai-sr: Total, from session 5)" in item


def test_data_is_escaped_everywhere(cli, store: Path, tmp_path: Path):
    page = _report(cli, store, tmp_path, HOSTILE)
    assert "<script>" not in page and "<b>9" not in page
    assert (
        "C-&lt;b&gt;9&lt;/b&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;amp;" in page
    )
    bidi = _report(cli, store, tmp_path, BIDI)
    assert "\u202e" not in bidi and "C-\\u202e1-evil" in bidi


def test_report_usage_errors_and_the_default_file(cli, store: Path, tmp_path: Path, monkeypatch):
    both = cli("report", "C-118", "--caseload", "--db", str(store))
    assert both.exit_code == 2 and "give a CLIENT, or --caseload" in both.stderr
    typo = cli("report", "C-1180", "--db", str(store), "-o", str(tmp_path / "x.html"))
    assert typo.exit_code == 2 and "did you mean" in typo.stderr
    assert not (tmp_path / "x.html").exists()  # nothing written for an error
    missing = cli("report", "C-118", "--db", str(tmp_path / "none.sqlite"))
    assert missing.exit_code == 5 and "no history here" in missing.stderr
    # without -o: CLIENT.html in this folder (a safe name for any id), never HTML on stdout
    monkeypatch.chdir(tmp_path)
    plain = cli("report", "C-118", "--db", str(store))
    assert plain.exit_code == 0 and plain.stdout == ""
    assert "report: wrote C-118.html" in plain.stderr and (tmp_path / "C-118.html").is_file()
    odd = cli("report", HOSTILE, "--db", str(store))
    name = odd.stderr.split("report: wrote ")[1].strip()
    assert re.fullmatch(r"C-_b_9_b_script_alert_x_script_amp-[0-9a-f]{8}\.html", name), name
    assert (tmp_path / name).is_file()
    to_stdout = cli("report", "C-118", "--db", str(store), "-o", "-")
    assert to_stdout.stdout.startswith("<!DOCTYPE html>")


def test_the_caseload_is_built_for_triage(cli, store, tmp_path):
    page = _report(cli, store, tmp_path, "--caseload")
    rows = re.findall(r"<tr><th scope=row>(.*?)</th><td>(.*?)</td>", page)
    assert len(rows) == 39  # 36 demo clients, the SRS one, P-1 and the bidi one
    # the most severe first, then the most recently raised; the order of `clients`
    order = [r["client_id"] for r in json.loads(cli("clients", "--db", str(store), "-f",
                                                     "json", "--limit", "0").stdout)]  # fmt: skip
    from alliance_cli.core.errors import visible

    assert [html.unescape(r[0]) for r in rows] == [visible(o, one_line=True) for o in order]
    assert order[:2] == [HOSTILE, "C-118"]  # act: raised one session ago, then two
    assert {counselor.lower() for _, counselor in rows} >= {"rivera", "okafor"}  # shown
    assert page.count("<svg class=spark") == 39
    assert page.count("<line class=c") >= 1  # the SRS clients' sparklines carry the cutoff
    assert "Total fell in session 5 (wai-sr)" in page  # concerns in a few plain words
    only = _report(cli, store, tmp_path, "--caseload", "--counselor", "rivera", "--open")
    assert "counselor rivera" in only and len(re.findall(r"<th scope=row>", only)) < 39


def test_out_dir_links_the_caseload_and_every_client_both_ways(cli, store, tmp_path):
    where = tmp_path / "site"
    result = cli("report", "--caseload", "--out-dir", str(where), "--db", str(store))
    assert result.exit_code == 0, result.stderr
    assert "and 39 client pages" in result.stderr
    index = (where / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="clients/([^"]+)">', index)
    assert len(links) == 39 and len(set(links)) == 39
    for link in links:
        assert re.fullmatch(r"[A-Za-z0-9_-]+\.html", link)  # safe for any id
        page = (where / "clients" / link).read_text(encoding="utf-8")
        assert '<a href="../index.html">' in page
    bad = cli("report", "C-118", "--out-dir", str(where), "--db", str(store))
    assert bad.exit_code == 2
    # P-1 alone has the therapist's form: one client page
    one = cli("report", "--caseload", "-i", "wai-sr-t", "--out-dir", str(tmp_path / "one"),
              "--db", str(store))  # fmt: skip
    assert one.exit_code == 0 and one.stderr.rstrip().endswith("and 1 client page"), one.stderr


def test_client_and_therapist_share_one_chart_per_scale(cli, store, tmp_path):
    page = _report(cli, store, tmp_path, "P-1")
    assert "Working Alliance Inventory" in page and "(wai-sr and wai-sr-t)" in page
    charts = re.findall(r'<svg class="chart".*?</svg>', page)
    assert len(charts) == 4  # goal, task, bond, total: each with both forms
    assert all('class="l1"' in c for c in charts)  # the therapist's dashed line
    assert page.count('class="gap"') >= 1  # the gap the reading raised, shaded
    assert "no therapist form in sessions 4–6" in page
    total = charts[-1]
    assert total.count('class="l1"') == 2  # broken where the form is missing: two segments


def test_an_srs_is_drawn_in_its_own_metric_with_its_cutoff(cli, store, tmp_path):
    page = _report(cli, store, tmp_path, HOSTILE)
    charts = re.findall(r'<svg class="chart".*?</svg>', page)
    total = charts[-1]
    assert "sum score" in total and ">40</text>" in total  # 0-40, as the form is scored
    assert 'class="cut-label"' in total and ">36</text>" in total
    assert all('class="cutoff"' not in c for c in charts[:-1])  # the total only
    assert "dashed red: cutoff 36 (sum)" in page


def test_the_shaded_band_is_the_reading_s_next_session_in_the_chart_s_metric(store):
    """The band is what the next session is measured by (``reading.Reading.following``), drawn on
    the SRS's 0-40 sum; it was the latest session ± the threshold, which the rule never uses."""
    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import report, views
    from alliance_cli.store.backend import open_store

    catalog = load_catalog()
    with open_store(str(store), create=False) as opened:
        data = report.client_data(opened, HOSTILE, None, catalog, reading.Settings(), "now")
        (series,) = views.client_view(opened, HOSTILE, None, catalog, reading.Settings())
    total = data["groups"][0].charts[-1]
    low, high = series.following.bands["total"]
    assert total.unit == "sum" and total.band == pytest.approx((low * 0.4, high * 0.4))
    # sums 36, 36, 36.7, 26, 36: the drop of session 4 repaired at 5, the usual level is
    # sessions 1, 2, 3 and 5 (26 was inside the drop), not the latest session alone
    usual = (90 + 90 + 91.75 + 90) / 4  # POMP
    assert (low + high) / 2 == pytest.approx(usual)


def test_what_was_said_at_save_is_the_sentences_once(cli, store, tmp_path):
    """The "said when saved" column reads as sentences: the Score's own cutoff flag, said
    again by the reading's concern, is not shown as its code beside it ("below_cutoff on
    total, Total was at or below 36 …"), sentences are not joined by ".,", and a sentence
    said again word for word at the next session is counted, not written out again."""
    page = _report(cli, store, tmp_path, HOSTILE)
    table = page[page.index("said when saved") :]
    said = [html.unescape(c) for c in re.findall(r'<td class="flag">(.*?)</td>', table)][1::2]
    early = "A weak alliance early in treatment predicts dropout."
    assert said[0] == f"Total was at or below 36 in session 1 (36). {early}"
    assert all("below_cutoff" not in c and ".," not in c for c in said), said
    assert said[1] == "1 as before"  # the same sentence again at session 2: counted, not repeated


def test_the_flags_now_cells_name_the_scales_as_the_sentences_do(cli, store, tmp_path):
    """C-107 fell on every scale at session 4 and recovered at 5: the sentence says "All
    scales fell", and the "flags now" cells said "drop (act) on Goal, Task, Bond, Total"."""
    page = _report(cli, store, tmp_path, "C-107")
    table = page[page.index("said when saved") :]
    cells = [html.unescape(c) for c in re.findall(r'<td class="flag">(.*?)</td>', table)]
    now = [c for c in cells[0::2] if c]
    assert now == ["drop (act) on all scales", "drop over on all scales"], now
    assert "All scales fell in session 4" in cells[7]


# -- in a browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pages(store: Path, tmp_path_factory):
    """The client reports of C-118, P-1, the hostile SRS client, and the caseload."""
    from typer.testing import CliRunner

    from alliance_cli.cli.app import app

    where = tmp_path_factory.mktemp("pages")
    made = {}
    for name, args in (("c118", ["C-118"]), ("p1", ["P-1"]), ("srs", [HOSTILE]),
                       ("caseload", ["--caseload"])):  # fmt: skip
        out = where / f"{name}.html"
        result = CliRunner().invoke(app, ["report", *args, "--db", str(store), "-o", str(out)])
        assert result.exit_code == 0, result.output
        made[name] = out
    return made


@pytest.mark.parametrize("name", ["c118", "p1", "srs", "caseload"])
def test_each_report_loads_with_no_errors_requests_or_accessibility_violations(pages, name):
    with browser.opened(pages[name]) as page:
        assert page.errors == [] and page.console == []
        own = pages[name].resolve().as_uri()
        assert [u for u in page.requests if u != own] == []  # nothing fetched
        assert page.js("document.scripts.length") == 0
        assert page.js("document.querySelectorAll('main').length") == 1
        assert browser.axe_violations(page) == []
        page.send("Emulation.setEmulatedMedia", media="print")
        assert page.js("document.body.offsetHeight") > 0  # the print stylesheet lays out


def test_charts_are_named_once_and_described(pages):
    with browser.opened(pages["p1"]) as page:
        named = page.js(
            "[...document.querySelectorAll('svg.chart')].map(s => [s.getAttribute("
            "'aria-labelledby'), s.getAttribute('aria-describedby')].map(i => "
            "document.getElementById(i.split(' ')[0]).textContent))"
        )
        names = [n for n, _ in named]
        assert len(set(names)) == len(names) == 4  # each chart its own name
        assert names[0] == "wai-sr (client): Goal over sessions"
        assert all("session" in d and d not in n for n, d in named)  # values not in the name


def test_the_charts_mark_what_the_reading_says(pages):
    with browser.opened(pages["c118"]) as page:
        counts = page.js(
            "[...document.querySelectorAll('svg.chart')].map("
            "s => s.querySelectorAll('circle.point').length)"
        )
        assert counts == [7, 7, 7, 7]  # C-118 has 7 sessions; goal, task, bond, total
        assert page.js("document.querySelectorAll('svg.chart line.cutoff').length") == 0
        # one reading: C-118's one open concern is a drop on the total in session 5, so the
        # total's chart (the fourth) carries the one drop marker, and no subscale does
        markers = page.js(
            "[...document.querySelectorAll('svg.chart')].map("
            "s => s.querySelectorAll('.rupture').length)"
        )
        assert markers == [0, 0, 0, 1]
        # every chart has a y-axis label, and its session numbers do not overlap
        overlaps = page.js(
            "[...document.querySelectorAll('svg.chart')].map(s => { const t = [...s."
            "querySelectorAll('text')].filter(e => /^\\d+$/.test(e.textContent) && "
            "+e.getAttribute('y') > 145).map(e => e.getBoundingClientRect()); let n = 0; "
            "for (let i = 1; i < t.length; i++) if (t[i].left < t[i-1].right) n++; return n; })"
        )
        assert overlaps == [0, 0, 0, 0]
        assert page.js(
            "[...document.querySelectorAll('svg.chart')].every(s => [...s.querySelectorAll"
            "('text')].some(t => t.textContent.includes('POMP')))"
        )


def test_forty_sessions_are_each_labelled_without_overlap(cli, tmp_path: Path):
    db = str(tmp_path / "h.sqlite")
    rng = random.Random(4)
    rows = ["client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))]
    for s in range(1, 41):
        rows.append(f"L-1,{s}," + ",".join(str(rng.choice([3, 4, 4, 5])) for _ in range(12)))
    src = tmp_path / "l.csv"
    src.write_text("\n".join(rows) + "\n")
    assert cli("batch", str(src), "-i", "wai-sr", "--save", "--db", db, "-q").exit_code == 0
    out = tmp_path / "l.html"
    assert cli("report", "L-1", "--db", db, "-o", str(out)).exit_code == 0
    with browser.opened(out) as page:
        labels = page.js(
            "(() => { const s = document.querySelector('svg.chart'); const t = [...s."
            "querySelectorAll('text')].filter(e => /^\\d+$/.test(e.textContent) && "
            "+e.getAttribute('y') > 145); const r = t.map(e => e.getBoundingClientRect()); "
            "let n = 0; for (let i = 1; i < r.length; i++) if (r[i].left < r[i-1].right) n++; "
            "return [t.map(e => +e.textContent), n]; })()"
        )
        assert labels == [list(range(1, 41)), 0]


@pytest.mark.parametrize("name", ["c118", "p1", "caseload"])
def test_nothing_is_wider_than_a_phone(pages, name):
    with browser.opened(pages[name]) as page:
        browser.set_width(page, 390)
        assert page.js("document.documentElement.scrollWidth") <= 390
        wide = page.js(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll') && "
            "e.getBoundingClientRect().right > 391).map(e => e.tagName)"
        )
        assert wide == []


def test_ids_never_wrap_and_every_printed_page_names_the_client(pages):
    with browser.opened(pages["caseload"]) as page:
        heights = page.js(
            "[...document.querySelectorAll('th[scope=row]')].map(e => e.getClientRects().length)"
        )
        assert heights and set(heights) == {1}
    with browser.opened(pages["c118"]) as page:
        page.send("Emulation.setEmulatedMedia", media="print")
        head = page.js("getComputedStyle(document.querySelector('.print-head')).position")
        assert head == "fixed"  # repeated on every printed page
        assert "client C-118" in page.js("document.querySelector('.print-head').textContent")


def test_at_least_twenty_clients_print_on_an_a4_page(cli, tmp_path: Path):
    rng = random.Random(8)
    rows = ["client_id,session,date,counselor,srs_1,srs_2,srs_3,srs_4"]
    for c in range(200):
        level = rng.uniform(5, 9.8)
        for s in range(1, 7):
            marks = ",".join(f"{min(10, max(0, rng.gauss(level, 1))):.1f}" for _ in range(4))
            rows.append(f"K-{c:05d},{s},2026-0{1 + s}-0{1 + c % 9},T{c % 7},{marks}")
    src = tmp_path / "k.csv"
    src.write_text("\n".join(rows) + "\n")
    db = str(tmp_path / "h.sqlite")
    saved = cli(
        "batch", str(src), "-i", "srs", "--save", "--db", db, "-q", "-o", str(tmp_path / "o")
    )
    assert saved.exit_code in (0, 3), saved.stderr
    out = tmp_path / "caseload.html"
    assert cli("report", "--caseload", "--db", db, "-o", str(out)).exit_code == 0
    with browser.opened(out) as page:
        assert browser.pdf_pages(page) <= 10  # 200 clients


def test_a_screenshot_can_be_taken(pages, tmp_path: Path):
    with browser.opened(pages["c118"]) as page:
        shot = tmp_path / "shot.png"
        page.screenshot(shot)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
