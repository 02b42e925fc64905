"""Issue 12: real exports in (REDCap, Qualtrics, long format, Excel's quirks), re-imports.

The example exports in examples/exports/ are ours, written in the layouts those systems
write (checked against the third-party samples in ../shared/real-formats, never copied).
Expected scores are worked by hand from the WAI-SR key (goal 4 6 8 11, task 1 2 10 12,
bond 3 5 7 9; means) and the SRS (four 0-10 marks, total a sum).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .conftest import ROOT

EXPORTS = ROOT / "examples" / "exports"
ITEMS12 = [f"wai_{i}" for i in range(1, 13)]


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


# -- REDCap ------------------------------------------------------------------------------
def test_a_redcap_export_scores_with_no_options(cli):
    result = cli("batch", str(EXPORTS / "redcap_wai_sr.csv"), "-i", "wai-sr")
    assert result.exit_code == 0, result.stderr
    assert "layout: REDCap records export (record id 'record_id'" in result.stderr
    assert "session: each record's administrations counted in event order, then instance" in (
        result.stderr
    )
    # 4 records' baseline rows have no WAI-SR answers: not administered, not rejected
    assert "14 rows read, 10 scored, 0 rejected, 4 not administered" in result.stderr
    rows = _rows(result.stdout)
    first = rows[0]
    # R-001 instance 1 answers 5 3 3 5 5 5 3 4 4 5 5 5:
    # goal (4 6 8 11) 5+5+4+5 = 19, task (1 2 10 12) 5+3+5+5 = 18, bond (3 5 7 9) 3+5+3+4 = 15
    assert (first["record_id"], first["session"]) == ("R-001", "1")
    assert (first["goal_sum"], first["goal_mean"]) == ("19", "4.75")
    assert (first["task_sum"], first["bond_sum"]) == ("18", "15")
    assert first["total_mean"] == "4.333333"  # 52 / 12


def test_redcap_complete_only_leaves_out_forms_not_marked_complete(cli):
    result = cli("batch", str(EXPORTS / "redcap_wai_sr.csv"), "-i", "wai-sr", "--complete-only")
    assert result.exit_code == 0
    assert "9 scored, 0 rejected, 4 not administered, 1 not complete" in result.stderr
    assert ("R-002", "3") not in {(r["record_id"], r["session"]) for r in _rows(result.stdout)}


def _events_export(tmp_path: Path) -> Path:
    """A longitudinal REDCap export as redcapr's sample project lays it out (events dose_1,
    visit_1, ... in arm 1; first_dose in arm 2), with a repeating form in one event."""
    header = ["study_id", "redcap_event_name", "redcap_repeat_instrument",
              "redcap_repeat_instance", *ITEMS12, "wai_sr_complete"]  # fmt: skip
    rows = [
        ["100", "enrollment_arm_1", "", "", *[""] * 12, "0"],
        ["100", "dose_1_arm_1", "", "", *["4"] * 12, "2"],
        ["100", "visit_1_arm_1", "", "", *["3"] * 12, "2"],
        ["100", "visit_1_arm_1", "wai_sr", "2", *["2"] * 12, "2"],
        ["304", "enrollment_arm_2", "", "", *[""] * 12, "0"],
        ["304", "first_dose_arm_2", "", "", *["5"] * 12, "2"],
    ]
    path = tmp_path / "events.csv"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n")
    return path


def _sessions(result) -> list[tuple[str, int]]:
    return [(s["respondent"]["client_id"], s["respondent"]["session"])
            for s in json.loads(result.stdout)]  # fmt: skip


def test_redcap_sessions_follow_event_order_then_instance(cli, tmp_path: Path):
    """Issue 23, item 2: the number in the event name made dose_1_arm_1 and visit_1_arm_1
    both session 1, gave first_dose_arm_2 none, and a repeating form duplicate sessions."""
    result = cli("batch", str(_events_export(tmp_path)), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert _sessions(result) == [("100", 1), ("100", 2), ("100", 3), ("304", 1)]
    assert "counted in event order, then instance, in this file (--sessions FILE" in (result.stderr)


def test_redcap_sessions_from_the_projects_event_table(cli, tmp_path: Path):
    """--sessions with REDCap's own event table (redcapr's sample, read from ../shared):
    each event's place in its arm, the same in every export of the project."""
    table = ROOT.parent / "shared" / "real-formats" / "redcap" / "redcapr-longitudinal-event.csv"
    if not table.is_file():
        pytest.skip(f"the real-format sample {table} is not here (../shared is absent)")
    export = _events_export(tmp_path)
    result = cli("batch", str(export), "-i", "wai-sr", "-f", "json", "--sessions", str(table))
    assert result.exit_code == 3  # visit_1's second instance: the table numbers events only
    # arm 1: enrollment 1, dose_1 2, visit_1 3; arm 2: enrollment 1, deadline 2, first_dose 3
    assert _sessions(result) == [("100", 2), ("100", 3), ("304", 3)]
    assert "event 'visit_1_arm_1' instance 2 has no session in" in result.stderr


def test_redcap_sessions_from_a_small_table_and_an_event_it_lacks(cli, tmp_path: Path):
    table = tmp_path / "sessions.csv"
    table.write_text("event,instance,session\ndose_1_arm_1,1,1\nvisit_1_arm_1,1,2\n"
                     "visit_1_arm_1,2,3\n")  # fmt: skip
    result = cli("batch", str(_events_export(tmp_path)), "-i", "wai-sr", "-f", "json",
                 "--sessions", str(table))  # fmt: skip
    assert result.exit_code == 3
    assert _sessions(result) == [("100", 1), ("100", 2), ("100", 3)]
    assert f"event 'first_dose_arm_2' has no session in {table}" in result.stderr


def test_a_monthly_reimport_is_a_no_op_and_a_changed_session_a_conflict(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    src = EXPORTS / "redcap_wai_sr.csv"
    args = ["-i", "wai-sr", "--save", "--db", str(db), "-o", str(tmp_path / "o.csv")]
    assert cli("batch", str(src), *args).exit_code == 0
    again = cli("batch", str(src), *args)
    assert again.exit_code == 0  # cumulative exports repeat every earlier session
    assert "10 sessions were already recorded with the same answers" in again.stderr
    changed = tmp_path / "changed.csv"
    text = src.read_text().replace(
        "R-002,intake_arm_1,wai_sr,2,,,,2026-09-17,Okafor,3,",
        "R-002,intake_arm_1,wai_sr,2,,,,2026-09-17,Okafor,1,",
    )
    assert text != src.read_text()
    changed.write_text(text)
    conflict = cli("batch", str(changed), *args)
    assert conflict.exit_code == 3
    assert (
        "conflict: client R-002 session 2 (wai-sr, client) is recorded with other answers "
        "(item 1): stored 3 3 3 3 4 3 3 4 3 3 3 3; this file 1 3 3 3 4 3 3 4 3 3 3 3"
    ) in conflict.stderr
    replaced = cli("batch", str(changed), *args, "--replace", "-q")
    assert replaced.exit_code == 0
    (view,) = json.loads(cli("history", "R-002", "--db", str(db), "-f", "json").stdout)
    two = next(s for s in view["sessions"] if s["session"] == 2)
    assert two["scales"]["task"]["sum"] == 10  # items 1 2 10 12 now 1+3+3+3


# -- Qualtrics ----------------------------------------------------------------------------
def test_a_qualtrics_export_skips_its_header_rows_and_previews(cli):
    result = cli("batch", str(EXPORTS / "qualtrics_srs.csv"), "-i", "srs")
    assert result.exit_code == 0, result.stderr
    assert "layout: Qualtrics export" in result.stderr
    assert "6 rows read, 5 scored, 0 rejected, 1 survey preview, test or spam" in result.stderr
    rows = _rows(result.stdout)
    assert [r["client_id"] for r in rows] == ["C-201", "C-201", "C-202", "C-202", "C-203"]
    assert rows[0]["total_sum"] == "36.2"  # 9.1 + 8.7 + 9.4 + 9.0
    # -99 is "seen, not answered": missing, so the total (no missing allowed) is blank
    assert rows[2]["goals_answered"] == "0" and rows[2]["total_sum"] == ""
    finished = cli("batch", str(EXPORTS / "qualtrics_srs.csv"), "-i", "srs", "--complete-only")
    assert "4 scored, 0 rejected, 1 survey preview, test or spam, 1 not finished" in (
        finished.stderr
    )


def test_qualtrics_line_numbers_count_the_header_rows(cli, tmp_path: Path):
    bad = tmp_path / "q.csv"
    text = (EXPORTS / "qualtrics_srs.csv").read_text()
    bad.write_text(text.replace("9.6,9.8,9.5,9.9", "9.6,11,9.5,9.9"))
    line = next(n for n, t in enumerate(bad.read_text().splitlines(), 1) if ",11,9.5," in t)
    result = cli("batch", str(bad), "-i", "srs", "-q")
    assert result.exit_code == 3
    assert f'rejected: {bad}:{line}: Q1_2: item 2: "11" is outside 0–10' in result.stderr


def test_a_legacy_qualtrics_export_has_one_extra_header_row(cli, tmp_path: Path):
    path = tmp_path / "legacy.csv"
    items = [f"Q1_{i}" for i in range(1, 5)]
    path.write_text(
        "\ufeffV1,V2,V3,V4,V5,V6,V7,V8,V9,V10," + ",".join(items) + ",client_id,\n"
        "ResponseID,ResponseSet,Name,ExternalDataReference,EmailAddress,IPAddress,Status,"
        "StartDate,EndDate,Finished,line 1,line 2,line 3,line 4,client_id,\n"
        "R_1,Default Response Set,Anonymous,,,,0,2026-10-01 10:00:00,2026-10-01 10:05:00,1,"
        "9,9,9,9,K-1,\n"
    )
    result = cli("batch", str(path), "-i", "srs", "--keep", "client_id")
    assert result.exit_code == 0, result.stderr
    (row,) = _rows(result.stdout)
    assert (row["client_id"], row["total_sum"]) == ("K-1", "36")


# -- long format ----------------------------------------------------------------------------
def test_a_long_file_is_recognised_and_rebuilt_one_row_per_response_set(cli):
    result = cli("batch", str(EXPORTS / "long_wai_sr.csv"), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "layout: long format" in result.stderr and "71 answer rows, 6 response sets" in (
        result.stderr
    )
    scores = json.loads(result.stdout)
    # in the order each response set first appears (the file is item-major)
    assert [(s["respondent"]["client_id"], s["respondent"]["session"]) for s in scores] == [
        ("C-301", 1), ("C-301", 2), ("C-302", 1), ("C-302", 2), ("C-303", 1), ("C-303", 2),
    ]  # fmt: skip
    # recompute one set by hand from the file's own rows
    answers: dict[tuple[str, str], dict[str, float]] = {}
    for row in csv.DictReader((EXPORTS / "long_wai_sr.csv").open()):
        key = (row["client_id"], row["session"])
        answers.setdefault(key, {})[row["item"].removeprefix("wai_")] = float(row["value"])
    for score in scores:
        who = score["respondent"]
        given = answers[(who["client_id"], str(who["session"]))]
        goal = [given[i] for i in ("4", "6", "8", "11") if i in given]
        assert score["scales"]["goal"]["sum"] == sum(goal)
    c303 = scores[5]
    assert c303["scales"]["bond"]["answered"] == 3  # item 7's row is missing: a missing item
    assert c303["source"]["line"] == 7  # its first answer: item 1, the sixth set


def test_a_long_item_given_twice_differently_is_rejected_naming_both_lines(cli, tmp_path: Path):
    path = tmp_path / "long.csv"
    lines = ["id,session,item,value", *[f"A,1,wai_{i},4" for i in range(1, 13)], "A,1,wai_3,5"]
    lines += [f"B,1,wai_{i},3" for i in range(1, 13)] + ["B,1,wai_3,3"]  # twice alike: fine
    path.write_text("\n".join(lines) + "\n")
    result = cli("batch", str(path), "-i", "wai-sr", "--long", "--id-column", "id")
    assert result.exit_code == 3
    assert (
        f"rejected: {path}:2: item: item wai_3 is given twice for this response set with "
        "different values (line 4: '4', line 14: '5')"
    ) in result.stderr
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr


def test_long_columns_can_be_named(cli, tmp_path: Path):
    path = tmp_path / "long.csv"
    path.write_text("who,q,answer_code\n" + "".join(f"P1,{i},2\n" for i in range(1, 13)))
    result = cli(
        "batch", str(path), "-i", "wai-sr", "--long", "--id-column", "who",
        "--item-column", "q", "--value-column", "answer_code",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert _rows(result.stdout)[0]["total_mean"] == "2"
    missing = cli("batch", str(path), "-i", "wai-sr", "--long", "--id-column", "who")
    assert missing.exit_code == 2 and "long format: no item column found" in missing.stderr


# -- bytes and spreadsheets -------------------------------------------------------------------
WIDE = "client_id;session;" + ";".join(ITEMS12) + "\nA;1;" + ";".join(["4"] * 11 + ["9"]) + "\n"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_a_byte_order_mark_decides_the_encoding(cli, tmp_path: Path, encoding):
    path = tmp_path / "excel.csv"
    data = ("sep=;\n" + WIDE).encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data
    path.write_bytes(data)
    result = cli("batch", str(path), "-i", "wai-sr", "-q")
    # the sep= line names the delimiter and is line 1: the bad cell is on line 3
    assert f'rejected: {path}:3: wai_12: item 12: "9" is outside 1–5' in result.stderr
    assert result.exit_code == 3


# -- dates, recodes and column names ----------------------------------------------------------
@pytest.mark.parametrize(
    ("fmt", "cell"),
    [("DD.MM.YYYY", "03.09.2026"), ("M/D/YYYY", "9/3/2026"), ("%d %b %Y", "03 Sep 2026")],
)
def test_date_format_reads_local_dates(cli, tmp_path: Path, fmt, cell):
    path = tmp_path / "d.csv"
    path.write_text("client_id,session,date," + ",".join(ITEMS12) + f"\nA,1,{cell},"
                    + ",".join(["4"] * 12) + "\n")  # fmt: skip
    plain = cli("batch", str(path), "-i", "wai-sr", "-q")
    assert plain.exit_code == 3 and "give --date-format" in plain.stderr
    result = cli("batch", str(path), "-i", "wai-sr", "--date-format", fmt, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["respondent"]["date"] == "2026-09-03"


def test_iso_dates_are_read_beside_a_date_format(cli, tmp_path: Path):
    path = tmp_path / "d.csv"
    answers = ",".join(["4"] * 12)
    path.write_text(f"client_id,session,date,{','.join(ITEMS12)}\nA,1,03.09.2026,{answers}\n"
                    f"A,2,2026-09-10,{answers}\nA,3,10/09/2026,{answers}\n")  # fmt: skip
    result = cli("batch", str(path), "-i", "wai-sr", "--date-format", "DD.MM.YYYY", "-f", "json")
    assert result.exit_code == 3  # 10/09/2026 is neither: that row is rejected, named
    assert [s["respondent"]["date"] for s in json.loads(result.stdout)] == [
        "2026-09-03", "2026-09-10",
    ]  # fmt: skip
    assert f'{path}:4: date: date "10/09/2026" does not match --date-format' in result.stderr


@pytest.mark.parametrize("fmt", ["%Q", "XX", "MM/YYYY", "DD.MM.YYYYYYYY"])
def test_a_bad_date_format_is_a_usage_error(cli, tmp_path: Path, fmt: str):
    """XX (no directive) was taken, and then matched no date; a directive given twice
    (YYYYYYYY) was an internal error; a format needs a day, a month and a year."""
    path = tmp_path / "d.csv"
    path.write_text("client_id," + ",".join(ITEMS12) + "\nA," + ",".join(["4"] * 12) + "\n")
    result = cli("batch", str(path), "-i", "wai-sr", "--date-format", fmt)
    assert result.exit_code == 2, result.stderr
    assert f"--date-format {fmt!r} is not a date format with a day, a month and a year" in (
        result.stderr
    )


def test_recode_moves_codes_onto_the_scale(cli, tmp_path: Path):
    path = tmp_path / "codes.csv"
    path.write_text("client_id," + ",".join(ITEMS12) + "\nA," + ",".join(["0", "4"] * 6) + "\n")
    plain = cli("batch", str(path), "-i", "wai-sr", "-q")
    assert plain.exit_code == 3  # 0 is outside 1-5
    result = cli("batch", str(path), "-i", "wai-sr", "--recode", "0-4:1-5")
    assert result.exit_code == 0, result.stderr
    assert _rows(result.stdout)[0]["total_mean"] == "3"  # six 1s and six 5s
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "items:\n" + "".join(f"  '{i}': wai_{i}\n" for i in range(1, 13)) + "recode: 0-4:1-5\n"
    )
    mapped = cli("batch", str(path), "-i", "wai-sr", "--map", str(mapping))
    assert mapped.exit_code == 0 and _rows(mapped.stdout)[0]["total_mean"] == "3"
    bad = cli("batch", str(path), "-i", "wai-sr", "--recode", "0-4:1-6")
    assert bad.exit_code == 2 and "same length" in bad.stderr


def test_column_templates_and_their_help(cli, tmp_path: Path):
    path = tmp_path / "q.csv"
    header = ["client_id", "Q1", "Q2", "Q3", "Q4"] + [f"Q{i}" for i in range(5, 17)]
    path.write_text(",".join(header) + "\nA," + ",".join(["9"] * 4 + ["4"] * 12) + "\n")
    shifted = cli("batch", str(path), "-i", "wai-sr", "--columns", "Q{item+4}")
    assert shifted.exit_code == 0, shifted.stderr
    assert _rows(shifted.stdout)[0]["total_mean"] == "4"
    lower = cli("batch", str(path), "-i", "wai-sr", "--columns", "q{item+4}")
    assert lower.exit_code == 0  # names match in any case
    auto = cli("batch", str(path), "-i", "wai-sr")
    assert auto.exit_code == 2 and "--columns 'Q{item}'" in auto.stderr  # as the header spells it
    both = cli("batch", str(path), "-i", "wai-sr", "--columns", "Q{item}", "--map", "m.yaml")
    assert both.exit_code == 2 and "--columns and --map both choose" in both.stderr
    odd = cli("batch", str(path), "-i", "wai-sr", "--columns", "Q{item:zz}")
    assert odd.exit_code == 2 and "is not a format for item" in odd.stderr


def test_an_excel_utf16_export_with_a_sep_line_scores_with_no_options(cli):
    result = cli("batch", str(EXPORTS / "excel_wai_sr_utf16.csv"), "-i", "wai-sr")
    assert result.exit_code == 0, result.stderr
    rows = _rows(result.stdout)
    same = _rows(cli("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr").stdout)
    assert rows == same[: len(rows)] and len(rows) == 8  # the first eight rows of the clinic file


def _long(path: Path, rows: list[str], head: str = "client_id,session,item,value") -> Path:
    path.write_text(head + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_long_item_names_differing_only_in_case_are_one_item(cli, tmp_path: Path):
    """Issue 23, item 8: WAI_1 and wai_1 in one file made client B 'not administered'."""
    rows = [f"A,1,wai_{i},4" for i in range(1, 13)] + [f"B,1,WAI_{i},5" for i in range(1, 13)]
    result = cli("batch", str(_long(tmp_path / "x.csv", rows)), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert [s["scales"]["total"]["mean"] for s in json.loads(result.stdout)] == [4, 5]


def test_an_unknown_long_item_rejects_only_its_own_set(cli, tmp_path: Path):
    """One stray wai_13 row stopped the whole run; now only client B's set is rejected."""
    rows = [f"{c},1,wai_{i},4" for c in "AB" for i in range(1, 13)] + ["B,1,wai_13,4"]
    result = cli("batch", str(_long(tmp_path / "x.csv", rows)), "-i", "wai-sr")
    assert result.exit_code == 3
    assert "x.csv:14: item: item wai_13: no item of 'wai-sr'; this response set is not" in (
        result.stderr
    )
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr


def test_conflicting_long_dates_reject_the_set_and_person_columns_are_kept(cli, tmp_path: Path):
    rows = [f"A,1,2026-01-0{1 if i < 6 else 2},34,x,wai_{i},4" for i in range(1, 13)]
    rows += [f"B,1,2026-01-01,51,{'y' if i < 3 else 'z'},wai_{i},5" for i in range(1, 13)]
    src = _long(tmp_path / "x.csv", rows, "client_id,session,date,age,site,item,value")
    result = cli("batch", str(src), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 3
    assert "x.csv:2: date: two dates for this response set (line 2: '2026-01-01', line 7: " in (
        result.stderr
    )
    assert "kept per set: age, site" in result.stderr
    assert "'site' differs within 1 set (left blank there)" in result.stderr
    (only,) = json.loads(result.stdout)
    assert only["respondent"]["client_id"] == "B"
    assert only["source"]["columns"]["age"] == "51" and only["source"]["columns"]["site"] == ""


def test_a_qualtrics_response_is_dated_when_it_was_recorded(cli):
    """Issue 23, item 5: Qualtrics-sourced Observations had no effectiveDateTime."""
    result = cli("batch", str(EXPORTS / "qualtrics_srs.csv"), "-i", "srs", "-f", "json", "-q")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)[0]
    assert first["respondent"]["date"] == "2026-10-01"  # its RecordedDate, as an ISO date
    pytest.importorskip("fhir.resources")  # (the Observation part: FHIR is an optional extra)
    fhir = cli("batch", str(EXPORTS / "qualtrics_srs.csv"), "-i", "srs", "-f", "fhir", "-q")
    assert json.loads(fhir.stdout.splitlines()[0])["effectiveDateTime"] == "2026-10-01"


def test_a_qualtrics_export_coded_from_zero_is_never_scored_one_step_low(cli, tmp_path: Path):
    """Issue 23, item 1: read without --recode, an export whose codes start at 0 had its rows
    with a 0 rejected and the others scored one step low per item, without a word."""
    head = ["StartDate", "Status", "Finished", "RecordedDate", "ResponseId",
            *[f"Q1_{i}" for i in range(1, 13)]]  # fmt: skip
    text = ["Start Date", "Response Type", "Finished", "Recorded Date", "Response ID",
            *[f"Statement {i}" for i in range(1, 13)]]  # fmt: skip
    keys = ["startDate", "status", "finished", "recordedDate", "_recordId",
            *[f"QID1_{i}" for i in range(1, 13)]]  # fmt: skip
    ids = [f'{{""ImportId"":""{k}""}}' for k in keys]
    when = ["2026-10-01 10:00:00", "0", "1", "2026-10-01 10:05:00"]
    rows = [[*when, "R_1", *["3"] * 12], [*when, "R_2", *["4"] * 11, "0"]]
    path = tmp_path / "zero.csv"
    path.write_text("\n".join([",".join(head), ",".join(text), ",".join(f'"{c}"' for c in ids),
                               *(",".join(r) for r in rows)]) + "\n")  # fmt: skip
    refused = cli("batch", str(path), "-i", "wai-sr", "--columns", "Q1_{item}")
    assert refused.exit_code == 5 and refused.stdout == ""
    assert f"{path}:5: Q1_12: answer code 0, one below this scale's 1–5" in refused.stderr
    assert "--recode '0-4:1-5'" in refused.stderr
    recoded = cli("batch", str(path), "-i", "wai-sr", "--columns", "Q1_{item}", "--recode",
                  "0-4:1-5", "-f", "json", "-q")  # fmt: skip
    assert recoded.exit_code == 0, recoded.stderr
    # by hand, 0-4 read as 1-5: R_1 twelve 4s = 4; R_2 eleven 5s and a 1 = 56 / 12
    assert [s["scales"]["total"]["mean"] for s in json.loads(recoded.stdout)] == [4, 4.666667]


def test_a_redcap_eav_export_is_read_with_sessions_from_its_events(cli, tmp_path: Path):
    """Issue 23, item 2: REDCap's EAV export (record, event, field_name, value) was detected
    as a records export and stopped. It is long format: sets are a record's events (then
    instances), numbered as sessions in event order; its other fields are no items."""
    rows = ["record,redcap_event_name,field_name,value"]
    for record, events in (("R1", ["intake_arm_1", "week_2_arm_1"]), ("R2", ["week_2_arm_1"])):
        rows.append(f"{record},intake_arm_1,age,34")
        for n, event in enumerate(events):
            rows += [f"{record},{event},wai_sr_{i},{4 + n}" for i in range(1, 13)]
    path = tmp_path / "eav.csv"
    path.write_text("\n".join(rows) + "\n")
    result = cli("batch", str(path), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "layout: REDCap EAV export (record id 'record'" in result.stderr
    scored = [(s["respondent"]["client_id"], s["respondent"]["session"],
               s["scales"]["total"]["mean"]) for s in json.loads(result.stdout)]  # fmt: skip
    assert scored == [("R1", 1, 4), ("R1", 2, 5), ("R2", 1, 4)]


def test_a_redcap_label_export_is_read_through_its_dictionary(cli, tmp_path: Path):
    """Issue 23, item 2: a label export (columns named by field labels, cells by choice
    labels, 'Event Name' for the event) scored with --dictionary FILE: labels to variables,
    choice labels to codes, sessions counted from the events."""
    made = cli("instruments", "export", "wai-sr", "--to", "redcap")
    rows = list(csv.reader(io.StringIO(made.stdout)))
    words = {"1": "Not at all", "2": "A little", "3": "Somewhat", "4": "Quite", "5": "Fully"}
    own = " | ".join(f"{code}, {label}" for code, label in words.items())
    for row in rows[1:]:
        if row[3] == "radio":
            row[5] = own  # the project's own choice labels, not alliance's anchors
    dictionary = tmp_path / "dictionary.csv"
    with dictionary.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    items = [r for r in rows[1:] if r[3] == "radio"]
    header = ["Record ID", "Event Name", *[r[4] for r in items], "Complete?"]
    export = tmp_path / "labels.csv"
    with export.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerow(["R1", "Session 1 (Arm 1: Arm 1)", *["Quite"] * 12, "Complete"])
        writer.writerow(["R1", "Session 2 (Arm 1: Arm 1)", *["Fully"] * 12, "Complete"])
    result = cli("batch", str(export), "-i", "wai-sr", "--dictionary", str(dictionary),
                 "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    scored = [(s["respondent"]["session"], s["scales"]["total"]["mean"])
              for s in json.loads(result.stdout)]  # fmt: skip
    assert scored == [(1, 4), (2, 5)]
    without = cli("batch", str(export), "-i", "wai-sr")
    assert without.exit_code != 0  # labels as columns: no item columns to find


def test_files_beside_the_inputs_are_never_outputs_and_never_read_whole(cli, tmp_path: Path):
    """--sessions, --dictionary and --questionnaire name files a run reads: no output may
    replace them, and one that never ends (a device) is refused, not held in memory."""
    table = tmp_path / "sessions.csv"
    table.write_text("event,session\nintake_arm_1,1\n")
    export = str(EXPORTS / "redcap_wai_sr.csv")
    same = cli("batch", export, "-i", "wai-sr", "--sessions", str(table), "-o", str(table))
    assert same.exit_code == 2 and "which this run reads; it is never overwritten" in same.stderr
    assert table.read_text() == "event,session\nintake_arm_1,1\n"
    endless = cli("batch", export, "-i", "wai-sr", "--dictionary", "/dev/zero", "-o", "-")
    assert endless.exit_code == 5 and "/dev/zero: --dictionary: larger than 64 MiB" in (
        endless.stderr
    )


def test_a_dictionary_keeps_calc_and_checkbox_fields_out_of_the_items(cli, tmp_path: Path):
    """Issue 23, item 2: with --dictionary, a field's type decides: a calc field numbered
    like the items (q5 beside an SRS's q1-q4) is no item, where alone it made the run stop
    as 'columns beyond this instrument's 4 items'."""
    head = ('"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
            '"Choices, Calculations, OR Slider Labels"')  # fmt: skip
    fields = [f"q{i},srs,,text,Line {i}," for i in range(1, 5)] + ["q5,srs,,calc,Sum,sum([q1])"]
    dictionary = tmp_path / "dictionary.csv"
    dictionary.write_text(head + "\n" + "\n".join(fields) + "\n")
    export = tmp_path / "records.csv"
    export.write_text("record_id,q1,q2,q3,q4,q5,srs_complete\nr1,8,8,8,8,8,2\n")
    alone = cli("batch", str(export), "-i", "srs")
    assert alone.exit_code == 2 and "beyond this instrument's 4 items" in alone.stderr
    read = cli("batch", str(export), "-i", "srs", "--dictionary", str(dictionary), "-f", "json")
    assert read.exit_code == 0, read.stderr
    assert json.loads(read.stdout)[0]["scales"]["total"]["sum"] == 32


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--questionnaire", "q.json", "--questionnaire is for FHIR"),
        ("--rater", "client", "--rater is for FHIR (a CSV names its rater with --rater-column)"),
        ("--sessions", "sessions.csv", "--sessions is for REDCap exports"),
    ],
)
def test_an_option_for_another_kind_of_input_is_refused_not_ignored(
    cli, tmp_path: Path, option, value, said
):
    """Found trying it as a user: --questionnaire on a CSV export was read by nothing and
    said nothing; so were --rater and --sessions on a plain CSV."""
    (tmp_path / "q.json").write_text("{}")
    (tmp_path / "sessions.csv").write_text("event,session\nintake_arm_1,1\n")
    argument = value if option == "--rater" else str(tmp_path / value)
    result = cli("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                 option, argument)  # fmt: skip
    assert result.exit_code == 2 and said in result.stderr and result.stdout == ""


def test_a_long_file_short_of_the_form_s_items_says_rows_not_columns(cli, tmp_path: Path):
    """In long format the items are rows: a form's items that no row names are said so (not
    "have no column ... --columns or --map", which a long file cannot use); exit 2."""
    some = tmp_path / "some.csv"
    some.write_text("client_id,session,item,value\nA,1,1,4\nA,1,2,5\n")
    short = cli("batch", str(some), "-i", "wai-sr", "--long", "-o", "-")
    assert short.exit_code == 2
    assert short.stderr.strip().endswith(
        "items 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 are in no row of the item column (the item "
        "names it has: 1, 2): is it another questionnaire?"
    ), short.stderr
    other = tmp_path / "other.csv"
    other.write_text("client_id,session,item,value\nA,1,age,44\n")
    none = cli("batch", str(other), "-i", "wai-sr", "--long", "-o", "-")
    assert none.exit_code == 2 and "no row of the item column names an item of this form" in (
        none.stderr
    )
    assert "--columns" not in short.stderr + none.stderr


def test_a_redcap_data_dictionary_given_as_the_export_is_named_as_one(cli, tmp_path: Path):
    """The dictionary (alliance's own from `instruments export --to redcap`, or REDCap's
    download) given where the records export goes: said for what it is, exit 2, instead of
    "no item columns found" over its 18 column names."""
    dictionary = tmp_path / "wai_sr_dictionary.csv"
    made = cli("instruments", "export", "wai-sr", "--to", "redcap", "-o", str(dictionary))
    assert made.exit_code == 0, made.stderr
    said = cli("batch", str(dictionary), "-i", "wai-sr", "-o", "-")
    assert said.exit_code == 2
    assert said.stderr.strip() == (
        f"error: {dictionary}: this is a REDCap data dictionary (the project's fields), not "
        "its answers: score the records export (Data Exports), and give a dictionary with "
        "--dictionary FILE only to read a label export"
    )
    api = tmp_path / "metadata.csv"  # the API's metadata export names the same columns so
    api.write_text("field_name,form_name,section_header,field_type,field_label\nwai_sr_1,"
                   "wai_sr,,radio,Goal item\n")  # fmt: skip
    assert "this is a REDCap data dictionary" in cli("reliability", str(api), "-i", "wai-sr").stderr
