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

from alliance_cli.store import sqlite as history

from .conftest import write

V_SHAPE = {  # client C-7: steady, a drop in session 4, back in session 5
    1: "5 4 5 4 5 4 5 4 5 4 5 4",
    2: "5 5 4 4 5 5 4 4 5 5 4 4",
    3: "5 4 5 4 5 5 5 4 5 4 5 4",
    4: "2 2 2 2 2 2 2 2 2 2 2 2",
    5: "5 5 5 4 5 4 5 4 5 5 4 4",
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
        assert store.schema_version() == 8
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


def test_score_save_history_shows_rupture_and_repair(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session, answers in V_SHAPE.items():
        result = _save(cli, db, "C-7", session, answers)
        assert result.exit_code == 0, result.stderr
    # The session just saved reports the flags the history raises against it.
    assert {f["code"] for f in json.loads(result.stdout)[0]["flags"]} >= {"repair"}
    view = json.loads(cli("history", "C-7", "--db", str(db), "-f", "json").stdout)
    flags = {(f["code"], f["scale"], f["session"]) for f in view[0]["flags"]}
    assert ("rupture_2sd", "total", 4) in flags and ("repair", "total", 5) in flags
    assert not any(s != 4 and c.startswith("rupture") for c, _, s in flags)
    table = cli("history", "C-7", "--db", str(db), "--details", "-f", "table")
    assert "Possible rupture in session 4" in table.stdout and "recovered" in table.stdout
    plain = " ".join(
        cli("history", "C-7", "--db", str(db), "-f", "table").stdout.replace("│", " ").split()
    )
    assert "Sharp drop on all scales" in plain and "Recovered in session 5" in plain
    csv_out = cli("history", "C-7", "--db", str(db), "-f", "csv").stdout.splitlines()
    assert csv_out[0].startswith("client_id,instrument,rater,session,date,scale")
    assert len(csv_out) == 1 + 5 * 4


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
    db = tmp_path / "h.sqlite"
    assert _save(cli, db, "C-9", 1, "5 5 5 5 5 5 5 5 5 5 5 5").exit_code == 0
    therapist = cli(
        # the 10-item therapist form: goal is items 3, 6 and 8
        "score", "wai-sr-t", *"5 5 2 5 5 2 5 2 5 5".split(), "--client", "C-9",
        "--session", "1", "--save", "--db", str(db), "-f", "json",
    )  # fmt: skip
    assert therapist.exit_code == 0, therapist.stderr
    gap_flags = [f for f in json.loads(therapist.stdout)[0]["flags"] if f["code"] == "rater_gap"]
    assert {f["scale"] for f in gap_flags} == {"goal", "total"}


def test_clients_puts_those_needing_attention_first(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session, answers in V_SHAPE.items():
        _save(cli, db, "steady", session, "4 4 4 4 4 4 4 4 4 4 4 4")
        if session <= 4:
            _save(cli, db, "dropping", session, answers)
    _save(cli, db, "early", 1, "2 2 1 2 2 2 1 2 2 2 2 1")
    rows = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    order = [r["client_id"] for r in rows]
    assert order[-1] == "steady"
    by_id = {r["client_id"]: r for r in rows}
    assert "rupture_2sd" in by_id["dropping"]["open_flags"]
    assert by_id["early"]["open_flags"] == ["early_low_alliance"]
    assert by_id["steady"]["open_flags"] == [] and by_id["steady"]["trend"] == "steady"
    assert "Caseload" in cli("clients", "--db", str(db), "-f", "table").stdout


def test_forget_asks_or_needs_yes(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "C-1", 1, V_SHAPE[1])
    refused = cli("forget", "C-1", "--db", str(db))
    assert refused.exit_code == 2 and "--yes" in refused.stderr
    done = cli("forget", "C-1", "--yes", "--db", str(db))
    assert done.exit_code == 0 and "deleted 1 records" in done.stderr
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


def test_caseload_early_risk_from_an_instrument_cutoff(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session, marks in ((1, "8 8 8 8"), (2, "8.5 8 8.2 8")):  # totals 32, 32.7: <= 36
        result = _save(cli, db, "S-1", session, marks, "srs")
        assert result.exit_code == 0, result.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["open_flags"] == ["early_low_alliance", "below_cutoff"]  # both stay open
    _save(cli, db, "S-1", 3, "9.5 9.5 9.6 9.4", "srs")  # 38: recovered above the cutoff
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert "early_low_alliance" not in row["open_flags"]
    view = json.loads(cli("history", "S-1", "--db", str(db), "-f", "json").stdout)[0]
    early = [f for f in view["flags"] if f["code"] == "early_low_alliance"]
    assert [f["session"] for f in early] == [1, 2] and "sum <= 36" in early[0]["rule"]


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
