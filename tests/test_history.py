"""The session store and the history, caseload and forget commands."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alliance_cli.store import sqlite as history

from .conftest import write

V_SHAPE = {  # client C-7: steady, a drop in session 5, back in session 6
    1: "5 4 5 4 5 4 5 4 5 4 5 4",
    2: "5 5 4 4 5 5 4 4 5 5 4 4",
    3: "5 4 5 4 5 5 5 4 5 4 5 4",
    4: "5 5 4 4 5 4 5 4 5 5 4 4",
    5: "2 2 2 2 2 2 2 2 2 2 2 2",
    6: "5 5 5 4 5 4 5 4 5 5 4 4",
}


def _save(cli, db: Path, client: str, session: int, answers: str, inst="wai-sr", *extra):
    result = cli(
        "score", inst, *answers.split(), "--client", client, "--session", str(session),
        "--date", f"2026-09-{session:02d}", "--save", "--db", str(db), "-f", "json", *extra,
    )  # fmt: skip
    return result


def test_store_is_owner_only_wal_and_current(tmp_path: Path):
    db = tmp_path / "sub" / "h.sqlite"
    store = history.open_store(db)
    try:
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version() == history.SCHEMA_VERSION
    finally:
        store.close()


def test_old_schema_is_migrated(tmp_path: Path):
    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(history.MIGRATIONS[0])
    score = {"schema_version": 1, "scales": {"goal": {"pomp": 62.5}, "bond": {"pomp": None},
                                             "total": {"pomp": 75.0}},
             "answers": {"1": 4.0, "2": None, "3": 3.5},
             "flags": [{"code": "below_cutoff", "scale": "total"}]}  # fmt: skip
    con.execute(
        "INSERT INTO sessions (client_id, session, date, rater, instrument, instrument_version, "
        "definition_sha256, answers, score) VALUES ('c1', 1, NULL, 'client', 'wai-sr', '2006', "
        "'x', ?, ?)",
        (json.dumps(score["answers"]), json.dumps(score)),
    )
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    store = history.open_store(db)
    try:
        assert store.schema_version() == history.SCHEMA_VERSION == 10
        assert store.db.execute("SELECT total_pomp FROM sessions").fetchone()[0] == 75.0
        # 5 and 8: the subscales in the caseload's columns, their ids kept once per definition
        pomps, answers, definition = store.db.execute(
            "SELECT scale_pomps, answers, definition FROM sessions"
        ).fetchone()
        assert (pomps, answers) == ("62.5,n", "4.0,,3.5")
        ids, sha = store.db.execute(
            "SELECT scale_ids, sha256 FROM definitions WHERE id = ?", (definition,)
        ).fetchone()
        assert (ids, sha) == ("goal,bond", "x")
        (record,) = store.records("c1")
        assert record.score == score  # saved before 8: its Score kept whole, as it was
        assert record.said_flags == [{"code": "below_cutoff", "scale": "total"}]  # as carried
        assert record.sha256 == "x" and record.version == "2006"
    finally:
        store.close()


def test_newer_schema_is_refused(cli, tmp_path: Path):
    db = tmp_path / "new.sqlite"
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.close()
    result = cli("clients", "--db", str(db))
    assert result.exit_code == 5 and "newer alliance" in result.stderr


def test_killed_mid_write_leaves_a_clean_database(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    history.open_store(db).close()
    code = f"""
import json, sys, time
from alliance_cli.store import sqlite as history
store = history.open_store({str(db)!r})
store.db.execute("BEGIN IMMEDIATE")
for n in range(100000):
    store.db.execute(
        "INSERT INTO sessions (client_id, session, rater, instrument, definition, answers) "
        "VALUES (?, 1, 'client', 'wai-sr', 1, '4,4')",
        (f"c{{n}}",),
    )
    if n == 5000:
        print("writing", flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = history.open_store(db)
    try:
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    finally:
        store.close()


def test_score_save_history_shows_rupture_and_repair(cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-09-30")  # (seen lately: no not-seen note)
    db = tmp_path / "h.sqlite"
    for session, answers in V_SHAPE.items():
        result = _save(cli, db, "C-7", session, answers)
        assert result.exit_code == 0, result.stderr
    # The session just saved says what the reading says there: the drop, now resolved.
    (said,) = json.loads(result.stdout)[0]["concerns"]
    assert (said["kind"], said["began"], said["resolved"]) == ("drop", 5, 6)
    view = json.loads(cli("history", "C-7", "--db", str(db), "-f", "json").stdout)
    (drop,) = view[0]["concerns"]
    assert drop["scales"] == ["goal", "task", "bond", "total"] and drop["severity"] == "act"
    assert {e["rule"] for e in drop["evidence"]} >= {"reliable_drop", "rupture_2sd"}
    plain = " ".join(
        cli("history", "C-7", "--db", str(db), "-f", "table").stdout.replace("│", " ").split()
    )
    assert "All scales fell in session 5" in plain and "recovered in session 6" in plain
    csv_out = cli("history", "C-7", "--db", str(db), "-f", "csv").stdout.splitlines()
    assert csv_out[0].startswith("client_id,instrument,rater,session,date,scale")
    assert len(csv_out) == 1 + 6 * 4
    assert "drop:act" in csv_out[1 + 4 * 4 + 3] and "drop:resolved" in csv_out[1 + 5 * 4 + 3]


def test_duplicate_session_is_refused_unless_replace(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    assert _save(cli, db, "C-1", 1, V_SHAPE[1]).exit_code == 0
    again = _save(cli, db, "C-1", 1, V_SHAPE[2])
    assert again.exit_code == 3 and "is recorded with other answers" in again.stderr
    same = _save(cli, db, "C-1", 1, V_SHAPE[1])  # the same answers again: nothing to do
    assert same.exit_code == 0 and "already recorded with the same answers" in same.stderr
    assert _save(cli, db, "C-1", 1, V_SHAPE[2], "wai-sr", "--replace").exit_code == 0


def test_save_needs_client_and_session(cli, tmp_path: Path):
    result = cli("score", "wai-sr", *V_SHAPE[1].split(), "--save", "--db", str(tmp_path / "h"))
    assert result.exit_code == 2 and "client id and a session" in result.stderr


def test_client_therapist_gap_from_counterpart_forms(cli, tmp_path: Path):
    # the 10-item therapist form: goal is items 3, 6 and 8; the same answers at every session
    # (no noise: the default threshold alone), compared from the fourth session of each form
    db = tmp_path / "h.sqlite"
    client, therapist = "5 5 5 5 5 5 5 5 5 5 5 5", "5 5 2 5 5 2 5 2 5 5"
    for session in range(1, 5):
        assert _save(cli, db, "C-9", session, client).exit_code == 0
        saved = _save(cli, db, "C-9", session, therapist, "wai-sr-t")
        assert saved.exit_code == 0, saved.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    (gap,) = [c for c in row["concerns"] if c["kind"] == "gap"]
    assert gap["scales"] == ["goal", "total"] and gap["series"] == "wai-sr"
    assert gap["began"] == 4
    assert "alliance's default" in gap["evidence"][0]["source"]
    # the therapist's save opened the gap: its box says so, and so does what it keeps (the
    # gap is the client series' concern, and was said at neither form's save before)
    (score,) = json.loads(saved.stdout)
    assert [c["kind"] for c in score["concerns"]] == ["gap"]
    assert _said(cli, db, "C-9", "wai-sr-t") == [[], [], [], ["gap"]]
    assert _said(cli, db, "C-9", "wai-sr") == [[], [], [], []]  # (saved before the therapist's)
    # a batch of therapist forms keeps the same
    batched = tmp_path / "b.sqlite"
    for session in range(1, 5):
        assert _save(cli, batched, "C-9", session, client).exit_code == 0
    export = tmp_path / "t.csv"
    rows = "".join(f"C-9,{s},{therapist.replace(' ', ',')}\n" for s in range(1, 5))
    export.write_text("client_id,session," + ",".join(f"wai_{i}" for i in range(1, 11))
                      + "\n" + rows, encoding="utf-8")  # fmt: skip
    result = cli("batch", str(export), "-i", "wai-sr-t", "--save", "--db", str(batched), "-o",
                 "-", "-q")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert _said(cli, batched, "C-9", "wai-sr-t") == [[], [], [], ["gap"]]


def _said(cli, db: Path, client: str, instrument: str) -> list[list[str]]:
    """The kinds of concern kept at each session's save, of one form."""
    out = cli("history", client, "-i", instrument, "--db", str(db), "-f", "json")
    assert out.exit_code == 0, out.stderr
    (view,) = json.loads(out.stdout)
    return [[c["kind"] for c in s["flags_at_save"]] for s in view["sessions"]]


def test_the_same_topic_on_both_forms_is_no_gap(cli, tmp_path: Path):
    # WAI-SR item 8 (Goal) and WAI-SRT item 10 (Task) ask about the same topic: equal low
    # answers to it on both forms raise no gap, where subscale by subscale raised two.
    db = tmp_path / "h.sqlite"
    client = ["5"] * 12
    client[8 - 1] = "1"
    therapist = ["5"] * 10
    therapist[10 - 1] = "1"
    for session in range(1, 5):  # (compared from the fourth session of each form)
        assert _save(cli, db, "C-10", session, " ".join(client)).exit_code == 0
        saved = _save(cli, db, "C-10", session, " ".join(therapist), "wai-sr-t")
        assert saved.exit_code == 0, saved.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert [c for c in row["concerns"] if c["kind"] == "gap"] == []


def test_clients_puts_those_needing_attention_first(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session, answers in V_SHAPE.items():
        _save(cli, db, "steady", session, "4 4 4 4 4 4 4 4 4 4 4 4")
        if session <= 5:
            _save(cli, db, "dropping", session, answers)
    _save(cli, db, "early", 1, "2 2 1 2 2 2 1 2 2 2 2 1")
    rows = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    order = [r["client_id"] for r in rows]
    assert order[-1] == "steady"
    by_id = {r["client_id"]: r for r in rows}
    kinds = {k: [c["kind"] for c in r["concerns"] if c["kind"] != "not_seen"]
             for k, r in by_id.items()}  # fmt: skip
    assert kinds["dropping"] == ["drop"] and kinds["early"] == ["early_low"]
    assert kinds["steady"] == [] and by_id["steady"]["trend"] == "steady"
    assert order.index("dropping") < order.index("early")  # act before watch
    assert "Caseload" in cli("clients", "--db", str(db), "-f", "table").stdout


def test_forget_asks_or_needs_yes(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "C-1", 1, V_SHAPE[1])
    refused = cli("forget", "C-1", "--db", str(db))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    done = cli("forget", "C-1", "--yes", "--db", str(db))
    assert done.exit_code == 0 and "deleted 1 record of client C-1" in done.stderr
    gone = cli("history", "C-1", "--db", str(db))
    assert gone.exit_code == 2 and "no sessions recorded" in gone.stderr


def test_batch_save_records_scored_rows_only(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    rows = ["client_id,session,date," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"c{n},{s},2026-09-0{s}," + ",".join(["4"] * 12) for n in range(3) for s in (1, 2)]
    rows.append("c9,1,2026-09-01," + ",".join(["9"] * 12))
    path = write(tmp_path / "in.csv", "\n".join(rows) + "\n")
    first = cli(
        "batch", str(path), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(tmp_path / "o")
    )
    assert first.exit_code == 3 and "6 sessions saved" in first.stderr
    store = history.open_store(db)
    assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 6
    store.close()
    again = cli(
        "batch", str(path), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(tmp_path / "o")
    )
    assert "6 sessions were already recorded" in again.stderr


def test_caseload_early_risk_from_an_instrument_cutoff(cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-09-30")  # (seen lately: no not-seen note)
    db = tmp_path / "h.sqlite"
    for session, marks in ((1, "8 8 8 8"), (2, "8.5 8 8.2 8")):  # totals 32, 32.7: <= 36
        result = _save(cli, db, "S-1", session, marks, "srs")
        assert result.exit_code == 0, result.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    (low,) = [c for c in row["concerns"] if c["kind"] != "not_seen"]  # one episode, said once
    assert (low["kind"], low["began"], low["severity"]) == ("low", 1, "act")
    assert "at or below 36" in low["sentence"] and "early in treatment" in low["sentence"]
    assert low["sentence"].count("36") == 1
    _save(cli, db, "S-1", 3, "9.5 9.5 9.6 9.4", "srs")  # 38: recovered above the cutoff
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert [c for c in row["concerns"] if c["kind"] != "not_seen"] == []
    view = json.loads(cli("history", "S-1", "--db", str(db), "-f", "json").stdout)[0]
    assert [(c["kind"], c["began"], c["resolved"]) for c in view["concerns"]] == [("low", 1, 3)]


def test_batch_strict_save_stores_nothing_when_a_row_is_rejected(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    rows = ["client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"c{n},1," + ",".join(["4"] * 12) for n in range(5)]
    rows.append("bad,1," + ",".join(["9"] * 12))
    path = write(tmp_path / "in.csv", "\n".join(rows) + "\n")
    out = tmp_path / "o.csv"
    args = ("batch", str(path), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(out))
    result = cli(*args, "--strict")
    assert result.exit_code == 3 and not out.exists()
    with history.open_store(db) as store:
        assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
    assert cli(*args).exit_code == 3  # without --strict the five good rows are kept
    with history.open_store(db) as store:
        assert store.db.execute("SELECT count(*) FROM sessions").fetchone()[0] == 5


def test_history_and_the_client_report_say_the_not_seen_note_as_clients_does(
    cli, tmp_path: Path, monkeypatch
):
    """One reading in every view: the note ``clients`` shows for a client not seen for 28
    days is said by ``history`` (table and JSON, once: with the first series) and by the
    client's report, as of the same today, and ``--not-seen-days`` moves it in each."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-11-01")
    db = tmp_path / "h.sqlite"
    for session in (1, 2):
        assert _save(cli, db, "C-3", session, V_SHAPE[1]).exit_code == 0
        assert _save(cli, db, "C-3", session, "8 8 8 8", "srs").exit_code == 0
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    (note,) = [c for c in row["concerns"] if c["kind"] == "not_seen"]
    view = json.loads(cli("history", "C-3", "--db", str(db), "-f", "json").stdout)
    said = [c for series in view for c in series["concerns"] if c["kind"] == "not_seen"]
    assert said == [note] and note in view[0]["concerns"]  # once, the same words
    assert "Not seen for 60 days" in note["sentence"]
    table = cli("history", "C-3", "--db", str(db), "-f", "table").stdout
    assert table.count("Not seen for 60 days") == 1
    page = tmp_path / "C-3.html"
    assert cli("report", "C-3", "--db", str(db), "-o", str(page), "-q").exit_code == 0
    assert "Not seen for 60 days" in page.read_text(encoding="utf-8")
    for command in (("history", "C-3", "-f", "json"), ("clients", "-f", "json")):
        later = cli(*command, "--db", str(db), "--not-seen-days", "90").stdout
        assert "not_seen" not in later
    assert cli("report", "C-3", "--db", str(db), "-o", str(page), "-q",
               "--not-seen-days", "90").exit_code == 0  # fmt: skip
    assert "Not seen for" not in page.read_text(encoding="utf-8")


def test_db_copy_names_files_as_given(cli, tmp_path: Path, monkeypatch):
    """`db copy` between two files says each by its path (a file is not a server URL: it
    was said as "://history.sqlite"), and refuses a copy onto itself naming the file."""
    monkeypatch.chdir(tmp_path)
    for session in (1, 2):
        result = cli("score", "srs", "8", "9", "7", "9", "--client", "C-1", "--session",
                     str(session), "--save", "--db", "history.sqlite", "-q")  # fmt: skip
        assert result.exit_code == 0, result.stderr
    result = cli("db", "copy", "history.sqlite", "copy.sqlite")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "copied 2 sessions (0 were there already with the same answers, 0 with other "
        "answers); history.sqlite holds 2 sessions, copy.sqlite 2"
    )
    result = cli("db", "copy", "history.sqlite", "./history.sqlite")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: history.sqlite: the source and the destination")


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--limit", "-1", "-1 is not in the range x>=0"),
        ("--early-sessions", "-1", "-1 is not in the range x>=0"),
        ("--early-pomp", "500", "500.0 is not in the range 0<=x<=100"),
        ("--early-pomp", "nan", "nan is not a number of POMP points (0 to 100)"),
        ("--gap", "-1", "-1.0 is not in the range 0<=x<=100"),
        ("--gap", "nan", "nan is not a number of POMP points (0 to 100)"),
    ],
)
def test_clients_refuses_a_setting_out_of_its_range(cli, tmp_path: Path, option, value, words):
    """--limit -1 showed every row (as 0 does), a negative --early-sessions or an --early-pomp
    of 500 were taken as given, and a NaN turned its rule off without a word (it compares
    false with everything)."""
    result = cli("clients", option, value, "--db", str(tmp_path / "h.sqlite"))
    assert result.exit_code == 2
    assert f"Invalid value for '{option}': {words}" in result.stderr


def test_the_clients_left_out_of_the_table_are_counted_in_words(cli, tmp_path: Path):
    """The table left out "… and 49996 more clients": counts are grouped, and one is one."""
    db = tmp_path / "h.sqlite"
    export = tmp_path / "many.csv"
    lines = [f"M-{n:04d},1," + ",".join(["4"] * 12) for n in range(1002)]
    export.write_text("client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
                      + "\n" + "\n".join(lines) + "\n", encoding="utf-8")  # fmt: skip
    saved = cli("batch", str(export), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-", "-q")
    assert saved.exit_code == 0, saved.stderr
    shown = cli("clients", "--db", str(db), "-f", "table", "--limit", "1")
    assert "… and 1,001 more clients (" in shown.stderr, shown.stderr
    shown = cli("clients", "--db", str(db), "-f", "table", "--limit", "1001")
    assert "… and 1 more client (" in shown.stderr, shown.stderr


def test_a_batch_says_one_session_as_one(cli, tmp_path: Path):
    """ "1 sessions were already recorded", "1 sessions are recorded with other answers and
    were not saved", "1 rows read": a count of one agrees with its noun and verb."""
    db = tmp_path / "h.sqlite"
    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    same = write(tmp_path / "a.csv", f"{header}\nR-1,1," + ",".join(["3"] * 12) + "\n")
    other = write(tmp_path / "b.csv", f"{header}\nR-1,1," + ",".join(["3"] * 11 + ["1"]) + "\n")
    assert (
        cli("batch", str(same), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-").exit_code == 0
    )
    again = cli("batch", str(same), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-")
    assert "history: 1 session was already recorded with the same answers" in again.stderr
    assert "batch: 1 row read, 1 scored, 0 rejected" in again.stderr
    clash = cli("batch", str(other), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-")
    assert clash.exit_code == 3
    assert (
        "history: 1 session is recorded with other answers and was not saved (--replace "
        "overwrites it with this file's)"
    ) in clash.stderr


def test_a_resolved_concern_is_not_coloured_as_one_to_act_on():
    """Seen in `make demo`: a rupture repaired at the next session was listed in bold red
    'act' among the open ones, and coloured the box's border; a counselor scanning colours
    would act on what is already repaired. It keeps its word, greyed; the border is the
    first open concern's."""
    from alliance_cli.render.terminal import SEVERITY_STYLE, concerns_panel

    def concern(severity: str, resolved: int | None) -> dict:
        return {"severity": severity, "resolved": resolved, "sentence": "s", "question": "q"}

    panel = concerns_panel([concern("act", 5), concern("note", None)], "t")
    heads = panel.renderable.columns[0]._cells  # (the grid's first column: each row's word)
    words = [(h.plain, str(h.style)) for h in heads if h]
    assert words == [("act", "dim"), ("note", SEVERITY_STYLE["note"])]
    assert panel.border_style == SEVERITY_STYLE["note"]
    assert concerns_panel([concern("act", 5)], "t").border_style == ""
    assert concerns_panel([concern("act", None)], "t").border_style == "red"
