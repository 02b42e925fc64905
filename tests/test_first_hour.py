"""Issue 22: a command line without rough edges, each edge found by a new user, tested."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


def test_a_score_with_no_scale_scored_is_exit_3(cli):
    result = cli("score", "wai-sr", "-", "-f", "json", input='{"answers": {"1": 4}}\n')
    assert result.exit_code == 3
    assert "no scale could be scored (too many answers missing)" in result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["score", "wai-sr", *["4"] * 12, "--sesion", "3"],
         "error: alliance score: No such option: --sesion (Possible options: --session) "
         "(see 'alliance score --help')"),
        (["batch", str(EXPORT), "-i", "wai-sr", "--reject", "x"],
         "error: alliance batch: No such option: --reject (Possible options: --recode, "
         "--rejects, --strict) (see 'alliance batch --help')"),
        (["score", "wai-sr", "4", "--client"],
         "error: alliance score: Option '--client' requires an argument. "
         "(see 'alliance score --help')"),
    ],
)  # fmt: skip
def test_usage_errors_share_one_format_and_point_to_the_command(args, said):
    import subprocess
    import sys

    from .conftest import env_without_color

    done = subprocess.run([sys.executable, "-m", "alliance_cli", *args], capture_output=True,
                          text=True, env=env_without_color())  # fmt: skip
    assert done.returncode == 2 and done.stderr.strip() == said


@pytest.mark.parametrize(
    ("date", "words"),
    [("2026-13-01", "has month 13: a month is 1 to 12"),
     ("2026-02-30", "has day 30: February 2026 has 28 days"),
     ("1.2.2026", "is not an ISO date (YYYY-MM-DD)")],
)  # fmt: skip
def test_a_bad_date_says_what_is_wrong(cli, date, words):
    result = cli("score", "srs", "9", "9", "9", "9", "--date", date)
    assert result.exit_code == 2 and f"error: --date: date '{date}' {words}" in result.stderr
    since = cli("clients", "--since", date, "--db", "nowhere.sqlite")  # (checked first)
    assert since.exit_code == 2 and f"error: --since: date '{date}' {words}" in since.stderr


def test_session_is_read_one_way_everywhere(cli, tmp_path: Path):
    db = str(tmp_path / "h.sqlite")
    assert cli("score", "srs", "9", "9", "9", "9", "--client", "C", "--session", "1", "--save",
               "--db", db, "-q").exit_code == 0  # fmt: skip
    said = []
    for args in (["score", "srs", "9", "9", "9", "9", "--session", "x1"],
                 ["forget", "C", "--session", "x1", "--yes", "--db", db]):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 2
        said.append(result.stderr.splitlines()[-1] + "\n")  # (after the SRS licence note)
    assert (
        said[0]
        == said[1]
        == (
            'error: --session: session "x1" is not a session number (a whole number from 1 to '
            "999999999)\n"
        )
    )


def test_dev_null_is_an_output_and_a_rejects_target(cli):
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-o", os.devnull, "--rejects", os.devnull)
    assert result.exit_code == 3, result.stderr  # the two rejected demo rows, not a refusal


def test_table_output_piped_has_no_trailing_spaces(cli):
    out = cli("score", "srs", "9", "9", "9", "9", "-f", "table").stdout
    assert out.strip() and not [line for line in out.splitlines() if line.endswith(" ")]


def test_a_csv_that_keeps_a_response_id_is_a_csv(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("ResponseId,client_id,srs_1,srs_2,srs_3,srs_4\nR_1,C-1,9,9,9,9\n")
    result = cli("batch", str(src), "-i", "srs")
    assert result.exit_code == 0 and "Qualtrics" not in result.stderr


def test_help_lists_each_command_in_one_sentence(cli):
    out = cli("instruments", "--help").stdout
    assert "or a\n" not in out and "a REDCap data dictionary or a" not in out


def test_items_printed_highest_first_are_said_at_the_prompt_and_in_show(cli):
    """Issue 22, item 7: the WAI-SR paper form prints items 2, 5, 6, 8, 10 and 11 Always
    first (the WAI-SRT 2, 5, 6, 8, 10); scoring is by label, so only the display changes."""
    shown = " ".join(cli("instruments", "show", "wai-sr-t", "-f", "table").stdout.split())
    assert "Paper form: items 2, 5, 6, 8, 10 print their choices highest first" in shown
    shown = " ".join(cli("instruments", "show", "wai-sr", "-f", "table").stdout.split())
    assert "Paper form: items 2, 5, 6, 8, 10, 11 print" in shown
    answers = "".join(f"{a}\n" for a in "4 5 4 4 4 4 4 4 4 4 4 4".split()) + "\n"
    result = cli("score", "wai-sr", "-I", "-f", "json", input=answers)
    assert result.exit_code == 0, result.stderr
    said = result.stderr.split("[")
    on_paper = [part for part in said if "highest first: 5 Always  4 Very often" in part]
    assert len(on_paper) == 6  # once before each of the six items
    import json

    assert json.loads(result.stdout)[0]["answers"]["2"] == 5.0  # the label, not the place


def _questions(tmp_path: Path) -> Path:
    src = tmp_path / "questions.csv"
    heads = ["1. I feel that my counselor and I agree", "2. Something else"]
    heads += [f"{i}. topic {i}" for i in range(3, 13)]
    src.write_text("client_id," + ",".join(heads) + "\nC-1," + ",".join("4" * 12) + "\n")
    return src


def test_question_text_headers_by_a_glob_template(cli, tmp_path: Path):
    src = _questions(tmp_path)
    result = cli("batch", str(src), "-i", "wai-sr", "--columns", "{item}. *")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("C-1,4,16,4,75")
    two = cli("batch", str(src), "-i", "wai-sr", "--columns", "1*")
    assert two.exit_code == 2  # no {item}


def test_suggest_map_writes_a_starter_map_that_scores_once_checked(cli, tmp_path: Path):
    src = _questions(tmp_path)
    suggested = cli("batch", str(src), "-i", "wai-sr", "--suggest-map")
    assert suggested.exit_code == 0 and suggested.stdout.startswith("# A starter --map")
    assert '"1": "1. I feel that my counselor and I agree"' in suggested.stdout
    mapping = tmp_path / "map.yaml"
    mapping.write_text(suggested.stdout.replace('"12": "12. topic 12"', '"12": null'))
    refused = cli("batch", str(src), "-i", "wai-sr", "--map", str(mapping))
    assert refused.exit_code == 2 and "no column given for item 12" in refused.stderr
    mapping.write_text(suggested.stdout)
    scored = cli("batch", str(src), "-i", "wai-sr", "--map", str(mapping))
    assert scored.exit_code == 0 and scored.stdout.splitlines()[1].startswith("C-1,4,16")


def test_every_key_source_is_named():
    """Issue 22, item 8: a source is named (a publication, a vendor's document, a repository
    and a path), never 'an independent implementation' or 'a third source' no reader finds."""
    import re

    import yaml

    vague = re.compile(r"^(an?|one|two|three|some|several) ", re.IGNORECASE)
    for path in (ROOT / "instruments").glob("*.yaml"):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for source in data["verification"].get("sources", []):
            assert not vague.match(source), (path.name, source)


def _caseload(cli, db: Path, clients: int = 300) -> None:
    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    rows = [f"C-{c},{s}," + ",".join(["4"] * 12) for c in range(clients) for s in (1, 2)]
    src = db.parent / "caseload.csv"
    src.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    saved = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-", "-q")
    assert saved.exit_code == 0, saved.stderr


def _on_a_terminal(arguments: str) -> Any:
    """alliance ARGUMENTS run under script(1), as on a terminal, bars shown at once."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("alliance")
    env = dict(os.environ, ALLIANCE_PROGRESS_AFTER="0", TERM="xterm")
    command = ["script", "-qec", f"{exe} {arguments}", "/dev/null"]
    return subprocess.run(command, capture_output=True, env=env, check=False,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def _stale(db: Path) -> None:
    """Every series stale and no list kept, as after an import that touched them all."""
    import sqlite3

    with sqlite3.connect(db) as con:
        con.executescript("UPDATE caseload SET stamp = ''; DELETE FROM caseload_kept")
    con.close()


def test_a_long_reading_reports_its_progress(cli, tmp_path: Path):
    """Issue 22, item 3: any command that may take over a second says what it is doing (the
    first clients after a large import read 10,000 clients for 6 s in silence)."""
    from alliance_cli.core.reading import Settings
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    db = tmp_path / "h.sqlite"
    _caseload(cli, db)
    _stale(db)
    seen: list[tuple[int, int]] = []
    with history.open_store(db, create=False) as store:
        rows = views.caseload(
            store, load_catalog(), Settings(), on_progress=lambda d, t: seen.append((d, t))
        )
    assert len(rows) == 300
    assert seen[0] == (0, 300) and seen[-1] == (300, 300) and (256, 300) in seen


@pytest.mark.skipif(not __import__("shutil").which("script"), reason="needs script(1)")
def test_the_progress_is_shown_on_a_terminal_and_never_on_a_pipe(cli, tmp_path: Path):
    import subprocess
    import sys

    db = tmp_path / "h.sqlite"
    _caseload(cli, db)
    _stale(db)
    typed = _on_a_terminal(f"clients --db {db} -f json > {tmp_path / 'out.json'}")
    assert typed.returncode == 0
    assert b"reading the caseload" in typed.stdout
    _stale(db)
    exe = Path(sys.executable).with_name("alliance")
    env = dict(os.environ, ALLIANCE_PROGRESS_AFTER="0")
    piped = subprocess.run([str(exe), "clients", "--db", str(db), "-f", "json"],
                           capture_output=True, env=env, check=False)  # fmt: skip
    assert piped.returncode == 0 and piped.stderr == b""


@pytest.mark.skipif(not __import__("shutil").which("script"), reason="needs script(1)")
def test_batch_save_shows_a_bar_for_storing_under_the_one_for_scoring(tmp_path: Path):
    """Issue 22, item 3: one bar for all --jobs workers, and one for --save's storing."""

    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    src = tmp_path / "x.csv"
    src.write_text(header + "\n" + "".join(f"C-{c},1," + ",".join(["4"] * 12) + "\n"
                                           for c in range(3000)), encoding="utf-8")  # fmt: skip
    shown = _on_a_terminal(
        f"batch {src} -i wai-sr --save --db {tmp_path / 'h.sqlite'} -o /dev/null"
    )
    assert shown.returncode == 0
    assert b"scoring" in shown.stdout and b"storing" in shown.stdout


def test_a_bar_s_clock_runs_until_its_step_ends():
    """The first clients after a large import read every client, then kept what was said at
    each session: the bar's clock (rich's, which stops when the count is complete) stood at
    0:00:14 for seconds, as if hung. It counts from the step's start until the step ends."""
    import time

    from alliance_cli.cli.common import step_elapsed

    column = step_elapsed(time.perf_counter() - 75)
    assert str(column.render(None)) == "0:01:15"


def test_a_batch_without_an_instrument_names_the_forms_its_columns_fit(cli, tmp_path: Path):
    """`batch FILE` without -i: the forms whose items the header has (every one, none
    beyond, not another form's named columns), else the ids to choose from; exit 2."""
    plain = cli("batch", str(EXPORT), "-o", os.devnull)  # wai_1..wai_12: three 12-item forms
    assert plain.exit_code == 2
    assert plain.stderr.strip() == (
        f"error: which instrument are the rows? add -i ID: the item columns of {EXPORT} fit "
        "wai-s, wai-s-t and wai-sr: the form the clinic used (alliance instruments show ID "
        "tells them apart)"
    )
    redcap = ROOT / "examples" / "exports" / "redcap_wai_sr.csv"  # wai_sr_1..12: only one
    named = cli("batch", str(redcap), "-o", os.devnull)
    assert named.exit_code == 2 and named.stderr.strip().endswith("fit wai-sr (-i wai-sr)")
    srs = tmp_path / "srs.csv"
    srs.write_text("client_id,q1,q2,q3,q4\nA,9,9,9,9\n")
    assert "fit srs (-i srs)" in cli("batch", str(srs)).stderr
    piped = cli("batch", "-", input="client_id,wai_1\nA,4\n")  # stdin is never read for it
    assert piped.exit_code == 2 and "(haq-ii, haq-ii-t, srs, wai," in piped.stderr
    assert "star-p" not in piped.stderr  # a draft never scores: never offered
    for command in ("reliability", "norms"):  # they read exports as batch does
        said = cli(command, str(redcap))
        assert said.exit_code == 2 and said.stderr.strip().endswith("fit wai-sr (-i wai-sr)")


def test_a_workbook_an_archive_or_a_pdf_is_said_for_what_it_is(cli, tmp_path: Path):
    """An .xlsx (a ZIP), an old .xls, a gzipped export or a PDF given as the export: named
    by its first bytes, with what to do instead (exit 5), never "not utf-8 text at byte 12
    (try --encoding latin-1)" or a PDF's first line taken for a header."""
    import gzip
    import zipfile

    book = tmp_path / "export.xlsx"
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
    packed = tmp_path / "export.csv.gz"
    packed.write_bytes(gzip.compress(EXPORT.read_bytes()))
    old = tmp_path / "export.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 64)
    pdf = tmp_path / "export.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    for path, said in [
        (book, "a ZIP archive (an Excel workbook, or zipped exports), not CSV text: save the "
               "sheet as CSV UTF-8"),
        (packed, "gzip-compressed, not CSV text: unzip it first"),
        (old, "an old Excel workbook (.xls), not CSV text"),
        (pdf, "a PDF, not CSV text"),
    ]:  # fmt: skip
        result = cli("batch", str(path), "-i", "wai-sr", "-o", os.devnull)
        assert result.exit_code == 5, result.stderr
        assert result.stderr.strip().startswith(f"error: {path}: {said}"), result.stderr
    piped = cli("batch", "-", "-i", "wai-sr", "-o", os.devnull, input=EXPORT.read_text())
    assert piped.exit_code == 3  # (a CSV on stdin still reads: its two bad rows)
