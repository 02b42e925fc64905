"""Issue 11 (part): one rater and session rule in score and batch; every format carries the
flags the history raised; correcting mistakes (forget one session, close ids)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

HIGH = "5 5 5 5 5 5 5 5 5 5 5 4".split()
LOW = "1 1 1 1 1 2 1 1 1 1 1 1".split()


def _kinds(row: dict) -> set[tuple[str, str]]:
    """(kind, series) of a caseload row's open concerns."""
    return {(c["kind"], c["series"]) for c in row["concerns"]}


def _save(cli, db: Path, client: str, session: int, answers, *extra: str):
    return cli("score", "wai-sr", *answers, "--client", client, "--session", str(session),
               "--save", "--db", str(db), "-q", *extra)  # fmt: skip


def test_score_csv_carries_the_flags_the_history_raised(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        assert _save(cli, db, "V", session, HIGH).exit_code == 0
    dropped = _save(cli, db, "V", 5, LOW, "-f", "csv")
    (row,) = csv.DictReader(io.StringIO(dropped.stdout))
    assert "drop:total" in row["flags"].split(";")
    back = _save(cli, db, "V", 6, HIGH, "-f", "csv")
    (row,) = csv.DictReader(io.StringIO(back.stdout))
    assert "drop_over:total" in row["flags"].split(";")


@pytest.mark.parametrize("rater", ["Client", " CLIENT "])
def test_a_rater_is_one_series_whatever_its_case(cli, tmp_path: Path, rater):
    db = tmp_path / "h.sqlite"
    assert _save(cli, db, "R", 1, HIGH).exit_code == 0
    again = _save(cli, db, "R", 1, LOW, "--rater", rater)
    assert again.exit_code == 3 and "is recorded with other answers" in again.stderr  # one series


def test_a_rater_must_fill_in_the_form(cli, tmp_path: Path):
    wrong = cli("score", "wai-sr", *HIGH, "--rater", "therapist")
    assert wrong.exit_code == 2 and "its respondent is client" in wrong.stderr
    odd = cli("score", "wai-sr", *HIGH, "--rater", "mum")
    assert odd.exit_code == 2 and "is not one of client, therapist, observer" in odd.stderr
    line = json.dumps({"rater": "therapist", "answers": HIGH})
    stdin = cli("score", "wai-sr", "-", "-f", "ndjson", input=line + "\n")
    assert stdin.exit_code == 3 and "does not fill in this form" in stdin.stderr
    src = tmp_path / "r.csv"
    header = "client_id,session,rater," + ",".join(f"q{i}" for i in range(1, 13))
    src.write_text(f"{header}\nA,1,Client,{','.join(HIGH)}\nB,1,therapist,{','.join(HIGH)}\n")
    batch = cli("batch", str(src), "-i", "wai-sr")
    assert batch.exit_code == 3 and "1 scored, 1 rejected" in batch.stderr
    assert 'rater "therapist" does not fill in this form' in batch.stderr


@pytest.mark.parametrize("session", ["0", "-1"])
def test_sessions_start_at_one_in_score_too(cli, session):
    result = cli("score", "wai-sr", *HIGH, "--session", session)
    assert result.exit_code == 2 and "is not a session number" in result.stderr
    stdin = cli(
        "score", "wai-sr", "-", input=json.dumps({"session": int(session), "answers": HIGH})
    )
    assert stdin.exit_code == 3 and "is not a session number" in stdin.stderr


def test_forget_one_session_or_one_instrument(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3):
        _save(cli, db, "T", session, HIGH)
    cli("score", "srs", "8", "8", "8", "8", "--client", "T", "--session", "2", "--save",
        "--db", str(db), "-q")  # fmt: skip
    one = cli("forget", "T", "--session", "2", "--instrument", "wai-sr", "--yes", "--db", str(db))
    assert one.exit_code == 0 and "deleted 1 record of client T (session 2) on wai-sr" in one.stderr
    left = json.loads(cli("history", "T", "--db", str(db), "-f", "json").stdout)
    sessions = {v["instrument"]: [s["session"] for s in v["sessions"]] for v in left}
    assert sessions == {"wai-sr": [1, 3], "srs": [2]}
    none = cli("forget", "T", "--session", "9", "--yes", "--db", str(db))
    assert none.exit_code == 2 and "client 'T' has no record in session 9" in none.stderr


def test_history_suggests_close_ids_and_names_other_instruments(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "C-107", 1, HIGH)
    case = cli("history", "c-107", "--db", str(db))
    assert case.exit_code == 2 and "did you mean 'C-107'?" in case.stderr
    typo = cli("history", "C-170", "--db", str(db))
    assert "did you mean 'C-107'?" in typo.stderr
    other = cli("history", "C-107", "-i", "srs", "--db", str(db))
    assert other.exit_code == 2 and "their sessions are on wai-sr" in other.stderr
    for near in ("C-137", "C-117", "C-119"):  # one letter from C-1O7 as well
        _save(cli, db, near, 1, HIGH)
    look_alike = cli("history", "C-1O7", "--db", str(db))  # a letter O typed for a zero
    assert look_alike.exit_code == 2
    assert "(did you mean 'C-107'?)" in look_alike.stderr, look_alike.stderr
    typo = cli("history", "C-170", "--db", str(db))
    assert "'C-107'" in typo.stderr and "'C-117'" in typo.stderr  # no look-alike: the closest


def test_an_existing_session_is_refused_before_any_question(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "Q", 1, HIGH)
    result = cli("score", "wai-sr", "-I", "--client", "Q", "--session", "1", "--save",
                 "--db", str(db), input="")  # fmt: skip
    assert result.exit_code == 3 and "already recorded" in result.stderr
    assert "[1/12]" not in result.stderr  # no question was asked


def test_session_next_and_today_and_pasted_answers(cli, tmp_path: Path):
    import datetime

    db = tmp_path / "h.sqlite"
    _save(cli, db, "N", 1, HIGH)
    _save(cli, db, "N", 2, HIGH)
    pasted = "4 4 5 3 5 4 4 3 5 4 4 4\n\n"
    result = cli("score", "wai-sr", "-I", "--client", "N", "--session", "next", "--save",
                 "--db", str(db), "-f", "json", input=pasted)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (data,) = json.loads(result.stdout)
    assert data["respondent"]["session"] == 3
    assert data["respondent"]["date"] == datetime.date.today().isoformat()
    assert "saved session 3 for client N" in result.stderr
    assert "4 · Very often" in result.stderr  # the summary shows values with anchors
    assert data["answers"]["3"] == 5


def test_a_pasted_bad_value_is_asked_again(cli):
    keys = "4 4 9 3 5 4 4 3 5 4 4 4\n5\n\n"
    result = cli("score", "wai-sr", "-I", "-f", "json", input=keys)
    assert result.exit_code == 0, result.stderr
    assert 'item 3: "9" is outside 1–5' in result.stderr
    assert json.loads(result.stdout)[0]["answers"]["3"] == 5


def test_a_session_dated_before_an_earlier_one_is_pointed_out(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "D", 1, HIGH, "--date", "2026-10-10")
    later = _save(cli, db, "D", 2, HIGH, "--date", "2026-10-01")
    later = cli("score", "wai-sr", *HIGH, "--client", "D", "--session", "3", "--date", "2026-09-01",
                "--save", "--db", str(db))  # fmt: skip
    assert later.exit_code == 0
    assert "note: session 3 is dated 2026-09-01, before session 1 (2026-10-10)" in later.stderr


@pytest.mark.parametrize("width", ["60", "80", "120"])
def test_tables_keep_ids_and_flags_whole_at_any_width(cli, tmp_path: Path, monkeypatch, width):
    monkeypatch.setenv("COLUMNS", width)
    db = tmp_path / "h.sqlite"
    long_id = "CLINIC-NORTH-0001-ABCDEFGH"
    for session in (1, 2, 3, 4):
        _save(cli, db, long_id, session, HIGH)
    _save(cli, db, long_id, 5, LOW)
    clients = cli("clients", "--db", str(db), "-f", "table")
    history = cli("history", long_id, "--db", str(db), "-f", "table")
    for result in (clients, history):
        assert result.exit_code == 0, result.stderr
        assert long_id in result.stdout  # never cut, never folded
        assert max(len(line) for line in result.stdout.splitlines()) <= int(width)
    assert "drop" in history.stdout  # the flag column stays readable
    said = history.stdout[history.stdout.index("What the history says") :]
    body = [line[2:] for line in said.splitlines()[1:] if line.startswith("│ ")]
    assert body
    for inner in body:  # a wrapped line keeps its indent, never back to the panel's edge
        if inner.strip("│ ") and not inner.startswith(("act ", "watch ", "note ")):
            assert inner.startswith(" " * 4), inner


def test_a_bar_below_its_cutoff_is_red_whatever_its_share():
    from alliance_cli.render.terminal import bar

    assert bar(0.845, below_cutoff=True).style == "red"  # an SRS total of 33.8: below 36
    assert bar(0.845).style == "green"  # the same share with no cutoff crossed


def test_the_caseload_keeps_a_concern_when_another_instrument_is_added(cli, tmp_path: Path):
    # The reported case: an open WAI-SR rupture vanished once one SRS was saved.
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        _save(cli, db, "K", session, HIGH)
    _save(cli, db, "K", 5, LOW)
    before = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert ("drop", "wai-sr") in _kinds(before[0])
    cli("score", "srs", "9.5", "9.5", "9.5", "9.5", "--client", "K", "--session", "6", "--save",
        "--db", str(db), "-q")  # fmt: skip
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert ("drop", "wai-sr") in _kinds(row)
    assert row["instrument"] == "wai-sr"  # undated: the longer client-rated series leads


def test_what_the_tool_said_stays_said(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        _save(cli, db, "S", session, HIGH)
    said = _save(cli, db, "S", 5, LOW, "-f", "json")
    (first,) = [c for c in json.loads(said.stdout)[0]["concerns"] if c["kind"] == "drop"]
    assert first["status"] == "open"
    for session in (6, 7, 8):  # later sessions: the drop is repaired at 6
        _save(cli, db, "S", session, HIGH)
    (view,) = json.loads(cli("history", "S", "--db", str(db), "-f", "json").stdout)
    five = next(s for s in view["sessions"] if s["session"] == 5)
    kept = [f for f in five["flags_at_save"] if f.get("kind") == "drop"]
    assert kept == [first]  # kept as said: open, whatever came after
    (now,) = [c for c in view["concerns"] if c["kind"] == "drop"]
    assert now["resolved"] == 6  # the reading today


def test_a_total_below_the_cutoff_is_open_until_a_session_is_above_it(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"

    def srs(session: int, marks: str):
        return cli("score", "srs", *marks.split(), "--client", "L", "--session", str(session),
                   "--save", "--db", str(db), "-q")  # fmt: skip

    def open_kinds() -> set[tuple[str, str]]:
        (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
        return {(c["kind"], c["severity"]) for c in row["concerns"]}

    srs(1, "9.5 9.5 9.5 9.5")
    assert open_kinds() == set()
    srs(2, "8 8 8 8")  # 32: below 36
    assert ("low", "act") in open_kinds()
    (view,) = json.loads(cli("history", "L", "--db", str(db), "-f", "json").stdout)
    assert ("low", 2) in {(c["kind"], c["began"]) for c in view["concerns"]}
    srs(3, "9 9 9 9.1")  # 36.1: above it again, so the concern closes
    assert open_kinds() == set()
    srs(4, "9 9 9 9")  # exactly 36: at the cutoff is watch, not act
    assert open_kinds() == {("low", "watch")}


def test_clients_filters_by_counselor_instrument_date_and_open(cli, tmp_path: Path):
    from .conftest import ROOT

    db = tmp_path / "h.sqlite"
    saved = cli("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr", "--save",
                "--db", str(db), "-o", str(tmp_path / "o.csv"), "-q")  # fmt: skip
    assert saved.exit_code == 3  # its two bad rows
    everyone = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    rivera = json.loads(
        cli("clients", "--db", str(db), "--counselor", "rivera", "-f", "json").stdout
    )
    assert 0 < len(rivera) < len(everyone)  # the export's counselor column, detected
    assert {r["counselor"] for r in rivera} == {"Rivera"}
    opened = json.loads(cli("clients", "--db", str(db), "--open", "-f", "json").stdout)
    assert opened and all(r["concerns"] for r in opened)
    late = json.loads(cli("clients", "--db", str(db), "--since", "2026-10-10", "-f", "json").stdout)
    assert late and all(r["last_date"] >= "2026-10-10" for r in late)
    assert len(late) < len(everyone)
    other = json.loads(cli("clients", "--db", str(db), "-i", "srs", "-f", "json").stdout)
    assert other == []
    one = cli("score", "srs", "9.5", "9.5", "9.5", "9.5", "--client", "Z", "--session", "1",
              "--counselor", "Ibsen", "--save", "--db", str(db), "-q")  # fmt: skip
    assert one.exit_code == 0
    (row,) = json.loads(
        cli("clients", "--db", str(db), "--counselor", "IBSEN", "-f", "json").stdout
    )
    assert row["client_id"] == "Z"


def test_a_rupture_stays_open_until_a_later_session_repairs_it(cli, tmp_path: Path):
    # The reported case: 100 -> 25 POMP and staying at 25 raised nothing in clients.
    db = tmp_path / "h.sqlite"
    top = ["5"] * 12
    low = "2 2 2 2 2 2 2 2 2 2 2 2".split()  # 25 POMP

    def flags() -> set[tuple[str, str]]:
        (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
        return _kinds(row)

    for session in (1, 2, 3, 4):
        _save(cli, db, "U", session, top)
    _save(cli, db, "U", 5, low)
    assert ("drop", "wai-sr") in flags()  # opens
    for session in (6, 7, 8):
        _save(cli, db, "U", session, low)
        assert ("drop", "wai-sr") in flags(), session  # stays open
    _save(cli, db, "U", 9, top)
    assert ("drop", "wai-sr") not in flags()  # repaired: closes


def test_the_history_says_what_happened_in_plain_sentences(cli, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        _save(cli, db, "P", session, HIGH)
    _save(cli, db, "P", 5, LOW)
    _save(cli, db, "P", 6, HIGH)
    plain = " ".join(cli("history", "P", "--db", str(db), "-f", "table").stdout.split())
    assert "All scales fell in session 5 (from a usual" in plain
    assert "and recovered in session 6" in plain
    assert plain.count("fell in session 5") == 1  # one concern, not one per scale and rule
    assert "Stiles" not in plain and "rupture_2sd" not in plain  # rules wait for --details
    detailed = " ".join(
        cli("history", "P", "--db", str(db), "--details", "-f", "table").stdout.split()
    )
    assert "rupture_2sd: Total:" in detailed and "; source: Stiles et al., 2004" in detailed


def test_a_concern_on_one_subscale_is_open_in_the_caseload(cli, tmp_path: Path):
    # The reported case: C-118's Task rupture and slow decline left `clients` silent.
    db = tmp_path / "h.sqlite"
    steady = ["5"] * 12
    task_low = ["5"] * 12
    for item in (1, 2, 10, 12):  # the Task items alone fall to 1: the total moves little
        task_low[item - 1] = "1"

    def flags() -> list[tuple[str, list[str]]]:
        (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
        return [(c["kind"], c["scales"]) for c in row["concerns"]]

    for session in (1, 2, 3, 4):
        _save(cli, db, "T", session, steady)
    assert flags() == []
    _save(cli, db, "T", 5, task_low)
    opened = flags()
    assert ("drop", ["task", "total"]) in opened  # opens, naming its scales
    assert not any("goal" in sc or "bond" in sc for _, sc in opened)
    _save(cli, db, "T", 6, task_low)
    assert ("drop", ["task", "total"]) in flags()  # stays
    _save(cli, db, "T", 7, steady)
    assert not any("task" in sc for _, sc in flags())  # repaired: closes
    cli("score", "srs", "9", "9", "9", "9", "--client", "T", "--session", "8", "--save",
        "--db", str(db), "-q")  # fmt: skip
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    # with two series each concern names its series
    assert ("low", "srs") in _kinds(row)  # 36: at the SRS cutoff
    table = " ".join(cli("clients", "--db", str(db), "-f", "table").stdout.split())
    assert "watch: Total at or below the cutoff, from session 8 (srs)" in table


def test_a_series_whose_subscales_changed_is_read_per_session(tmp_path: Path):
    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store.views import caseload

    store = history.open_store(tmp_path / "h.sqlite")
    try:
        for session, task in enumerate([100.0, 100.0, 100.0, 0.0], start=1):
            scales = {"task": {"pomp": task}, "total": {"pomp": 90.0, "mean": 4.6, "sum": 55.2}}
            if session < 3:  # an older definition had one more subscale
                scales = {"goal": {"pomp": 90.0}, **scales}
            sha = "old" if session < 3 else "new"  # a definition fixes its subscales
            score = {
                "respondent": {"client_id": "D", "session": session, "rater": "client"},
                "instrument": {"id": "wai-sr", "version": "x", "sha256": sha},
                "answers": {}, "scales": scales, "flags": [],
            }  # fmt: skip
            store.record(score)
        (row,) = caseload(store, load_catalog(), reading.Settings())
        assert ("drop", ["task"]) in [(c["kind"], c["scales"]) for c in row.concerns]
    finally:
        store.close()


def test_the_caseload_keeps_a_reading_only_while_its_series_is_unchanged(cli, tmp_path: Path):
    import sqlite3

    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store.views import caseload

    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        _save(cli, db, "W", session, HIGH if session < 4 else LOW)
    first = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    with sqlite3.connect(db) as con:
        ((stamp, version),) = con.execute("SELECT stamp, version FROM caseload").fetchall()
    assert stamp  # kept
    assert json.loads(cli("clients", "--db", str(db), "-f", "json").stdout) == first
    # other settings are another reading: not the kept one
    later = cli("clients", "--db", str(db), "--early-sessions", "9", "-f", "json").stdout
    assert ("early_low", "wai-sr") in _kinds(json.loads(later)[0])
    # a reading made before a change to the series is never kept over it
    store = history.open_store(db)
    try:
        store.db.execute("BEGIN")
        rows = store.caseload_rows()
        store.rollback()
        _save(cli, db, "W", 5, HIGH)  # lands between the read and the keep
        store.keep_caseload([("x", 1, 1, None, 0.0, "up", "", None, "W", "wai-sr", "client",
                              version)], [])  # fmt: skip
        ((stamp_now,),) = store.db.execute("SELECT stamp FROM caseload").fetchall()
        assert stamp_now == ""  # still stale: the next clients reads it again
        assert rows and caseload(store, load_catalog(), reading.Settings())[0].last_session == 5
    finally:
        store.close()
    assert cli("forget", "W", "--yes", "--db", str(db)).exit_code == 0
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT count(*) FROM caseload").fetchone()[0] == 0


def test_the_whole_caseload_is_kept_until_any_session_changes(cli, tmp_path: Path):
    """The list is kept; a save makes it stale (the counter moves) but keeps it, for the
    next `clients` to reuse the rows of the clients the save did not touch; deleting any
    session drops it, so a forgotten client leaves no trace in it."""
    import sqlite3

    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4, 5):
        _save(cli, db, "X", session, HIGH if session < 5 else LOW)
    _save(cli, db, "Y", 1, HIGH)

    def snapshot():
        with sqlite3.connect(db) as con:
            ((version,),) = con.execute("SELECT version FROM caseload_snapshot").fetchall()
            kept = con.execute("SELECT version, rows FROM caseload_kept").fetchall()
        return version, kept[0] if kept else (None, None)

    first = cli("clients", "--db", str(db), "-f", "json").stdout
    version, (kept_version, rows) = snapshot()
    assert rows is not None and kept_version == version  # kept, and fresh
    assert cli("clients", "--db", str(db), "-f", "json").stdout == first  # read from it
    filtered = cli("clients", "--db", str(db), "--open", "-f", "json").stdout
    assert [r["client_id"] for r in json.loads(filtered)] == ["X"]  # filters: computed
    _save(cli, db, "Y", 2, LOW)  # any session: the kept list is stale, not dropped
    assert snapshot() == (version + 1, (version, rows))
    assert cli("clients", "--db", str(db), "-f", "json").stdout != first
    assert snapshot()[1][0] == version + 1  # made again
    assert cli("forget", "X", "--yes", "--db", str(db)).exit_code == 0
    assert snapshot()[1] == (None, None)  # dropped: nothing of X is left in it
    (only,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert only["client_id"] == "Y"


def test_the_kept_caseload_writes_what_a_fresh_reading_writes(cli, tmp_path: Path):
    """The whole caseload is kept with each client's concerns as JSON text, written out as
    it is: the kept list's output is byte for byte the fresh reading's, every line is what
    the JSON encoder writes for its record (UTF-8 as it is, not escaped), and today's
    not-seen note is added to the kept text (it is the only concern of a client with none,
    and then gives the row its severity). CSV and NDJSON, which decode it, agree too."""
    import sqlite3

    db = tmp_path / "h.sqlite"
    for session, date in enumerate(["2026-01-05", "2026-01-12", "2026-01-19"], 1):
        _save(cli, db, "Zoë-1", session, HIGH, "--date", date)  # nothing open, long unseen
    for session, answers in enumerate([HIGH, HIGH, HIGH, HIGH, LOW], 1):
        _save(cli, db, "客户-2", session, answers, "--date", f"2026-02-0{session}")
    _save(cli, db, "Tab\there", 1, LOW, "--counselor", 'Ríos "R"')  # undated: no days
    outputs = {}
    for fmt in ("json", "csv", "ndjson"):
        with sqlite3.connect(db) as con:
            con.execute("UPDATE caseload_snapshot SET rows = NULL")  # read afresh, then kept
        con.close()
        fresh = cli("clients", "--db", str(db), "-f", fmt).stdout
        kept = cli("clients", "--db", str(db), "-f", fmt).stdout
        assert kept == fresh, fmt
        outputs[fmt] = fresh
    lines = outputs["json"].splitlines()
    assert lines[0] == "[" and lines[-1] == "]" and len(lines) == 5
    encode = json.JSONEncoder(ensure_ascii=False).encode
    records = []
    for line in lines[1:-1]:
        text = line.strip().removesuffix(",")
        records.append(json.loads(text))
        assert text == encode(records[-1])
    assert "Zoë-1" in outputs["json"] and "客户-2" in outputs["json"]
    by_id = {r["client_id"]: r for r in records}
    assert [c["kind"] for c in by_id["Zoë-1"]["concerns"]] == ["not_seen"]
    assert by_id["Zoë-1"]["severity"] == by_id["Zoë-1"]["concerns"][0]["severity"]
    assert by_id["客户-2"]["concerns"][-1]["kind"] == "not_seen"
    assert len(by_id["客户-2"]["concerns"]) >= 2 and by_id["客户-2"]["days_since"] > 28
    assert by_id["Tab\there"]["days_since"] is None
    assert by_id["Tab\there"]["counselor"] == 'Ríos "R"'
    assert [json.loads(line) for line in outputs["ndjson"].splitlines()] == records


def test_alliance_today_sets_the_date_days_count_to(cli, tmp_path: Path, monkeypatch):
    """Days since the latest session count to ALLIANCE_TODAY when set (reproducible pages and
    reports); a value that is not a date is a usage error naming the variable."""
    db = tmp_path / "h.sqlite"
    _save(cli, db, "D", 1, HIGH, "--date", "2026-11-01")
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-01")
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["days_since"] == 30
    assert [c["kind"] for c in row["concerns"]] == ["not_seen"]
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-11-02")
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["days_since"] == 1 and not row["concerns"]
    monkeypatch.setenv("ALLIANCE_TODAY", "tomorrow")
    bad = cli("clients", "--db", str(db))
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: ALLIANCE_TODAY='tomorrow': give a date as YYYY-MM-DD"


def test_a_session_dated_after_today_is_noted_at_save_and_in_the_caseload(
    cli, tmp_path: Path, monkeypatch
):
    """A latest session dated more than a day after today is most likely a typo: the save
    says so, and the caseload notes it (days_since negative) until the date is corrected."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    db = tmp_path / "h.sqlite"
    saved = cli("score", "wai-sr", *HIGH, "--client", "F", "--session", "1", "--date",
                "2027-01-10", "--save", "--db", str(db), "-q")  # fmt: skip
    assert saved.exit_code == 0
    assert "note: session 1 is dated 2027-01-10, 37 days after today" in saved.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["days_since"] == -37
    (note,) = row["concerns"]
    assert note["kind"] == "future_date" and note["severity"] == "note"
    assert note["sentence"] == (
        "The latest session is dated 2027-01-10, 37 days after today: check its date."
    )
    monkeypatch.setenv("ALLIANCE_TODAY", "2027-01-09")  # one day ahead: time zones
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["days_since"] == -1 and not row["concerns"]
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    assert cli("forget", "F", "--session", "1", "--yes", "--db", str(db), "-q").exit_code == 0
    again = cli("score", "wai-sr", *HIGH, "--client", "F", "--session", "1", "--date",
                "2026-12-03", "--save", "--db", str(db), "-q")  # fmt: skip
    assert again.exit_code == 0 and "after today" not in again.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["days_since"] == 1 and not row["concerns"]


def test_a_batch_says_how_many_sessions_it_saved_dated_after_today(
    cli, tmp_path: Path, monkeypatch
):
    """batch --save names the latest-dated of the sessions it saved after today (not one
    saved before it), once; a day ahead is not noted (time zones)."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    db = tmp_path / "h.sqlite"
    _save(cli, db, "OLD", 1, HIGH, "--date", "2027-05-01")  # before the batch: not counted
    export = tmp_path / "export.csv"
    rows = ["client_id,session,date," + ",".join(f"wai_{i}" for i in range(1, 13))]
    for client, session, day in (("A", 1, "2026-11-01"), ("A", 2, "2027-11-02"),
                                 ("B", 1, "2027-03-01"), ("C", 1, "2026-12-05")):  # fmt: skip
        rows.append(f"{client},{session},{day}," + ",".join(HIGH))
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = cli("batch", str(export), "-i", "wai-sr", "--save", "--db", str(db), "-q",
                 "-o", str(tmp_path / "out.csv"))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "after today" in line]
    assert notes == [
        "note: 2 saved sessions are dated after today (the latest: client A session 2, "
        "2027-11-02); check the dates: the caseload notes a client's latest one until corrected"
    ]
    rows_out = {r["client_id"]: r for r in json.loads(cli("clients", "--db", str(db),
                                                          "-f", "json").stdout)}  # fmt: skip
    assert [c["kind"] for c in rows_out["A"]["concerns"]] == ["future_date"]
    assert not rows_out["C"]["concerns"]  # one day ahead


def test_the_counselor_is_the_one_of_the_last_session_by_number_dated_or_not(
    cli, tmp_path: Path, monkeypatch
):
    """Within a series the session number orders sessions: an undated session 2 by Lee comes
    after a dated session 1 by Rivera, so the client is Lee's (the date used to win). The
    save says the session has no date where an earlier one has, and the not-seen note says
    it counts from the last dated session."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    db = tmp_path / "h.sqlite"
    _save(cli, db, "K", 1, HIGH, "--date", "2026-11-01", "--counselor", "Rivera")
    second = cli("score", "wai-sr", *HIGH, "--client", "K", "--session", "2", "--counselor",
                 "Lee", "--save", "--db", str(db), "-q")  # fmt: skip
    assert second.exit_code == 0
    assert "note: session 2 has no date, where session 1 has one (2026-11-01)" in second.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["counselor"] == "Lee"
    assert json.loads(cli("clients", "--counselor", "lee", "--db", str(db), "-f", "json").stdout)
    assert not json.loads(
        cli("clients", "--counselor", "Rivera", "--db", str(db), "-f", "json").stdout
    )
    (note,) = [c for c in row["concerns"] if c["kind"] == "not_seen"]
    assert note["sentence"] == "Not seen for 33 days (last dated session 2026-11-01)."
    # a second form, dated later, by Okafor: the latest session over both is that one
    srs = cli("score", "srs", "9", "9", "9", "9", "--client", "K", "--session", "1", "--date",
              "2026-11-20", "--counselor", "Okafor", "--save", "--db", str(db), "-q")  # fmt: skip
    assert srs.exit_code == 0
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["counselor"] == "Okafor" and row["days_since"] == 14


def test_a_stored_instrument_not_defined_here_is_said_once_by_every_view(
    cli, tmp_path: Path, mini_dir: Path
):
    """A history saved with a user's instrument, read without its folder (or with a broken
    definition): the sessions are shown, and a note says the reading leaves out what needs
    the definition (its cutoff here), once per command; none with the folder, none with -q."""
    db = tmp_path / "h.sqlite"
    for session, answers in ((1, "4 2 4"), (2, "4 2 4"), (3, "1 5 1")):
        saved = cli("--instruments-dir", str(mini_dir), "score", "mini", *answers.split(),
                    "--client", "M", "--session", str(session), "--save", "--db", str(db),
                    "-q")  # fmt: skip
        assert saved.exit_code == 0, saved.stderr
    note = "note: instrument 'mini' is not defined here"
    commands = (
        ("clients", "--db", str(db), "-f", "json"),
        ("history", "M", "--db", str(db), "-f", "json"),
        ("report", "M", "--db", str(db), "-o", str(tmp_path / "m.html")),
        ("report", "--caseload", "--db", str(db), "-o", str(tmp_path / "c.html")),
    )
    for args in commands:
        without = cli(*args)
        assert without.exit_code == 0, without.stderr
        assert without.stderr.count(note) == 1, args
        with_dir = cli("--instruments-dir", str(mini_dir), *args)
        assert with_dir.exit_code == 0 and "not defined here" not in with_dir.stderr
        assert note not in cli(*args, "-q").stderr
    with_dir = json.loads(cli("--instruments-dir", str(mini_dir), "clients", "--db", str(db),
                              "-f", "json").stdout)  # fmt: skip
    without = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    kinds = [{c["kind"] for c in rows[0]["concerns"]} for rows in (with_dir, without)]
    assert kinds[0] - kinds[1] == {"low"}  # the cutoff needs the definition
    (mini_dir / "mini.yaml").write_text("id: mini\nname: broken\n", encoding="utf-8")
    broken = cli("--instruments-dir", str(mini_dir), "clients", "--db", str(db), "-f", "json")
    assert broken.exit_code == 0
    assert "note: instrument 'mini' has a definition that does not load here" in broken.stderr


def test_a_bad_alliance_today_stops_a_save_before_anything_is_saved(
    cli, tmp_path: Path, monkeypatch
):
    """The date checks of a save use today's date: a bad ALLIANCE_TODAY is the usage error
    it is everywhere (exit 2, naming the variable), said before the history is touched,
    never after a save that then looks failed."""
    monkeypatch.setenv("ALLIANCE_TODAY", "garbage")
    db = tmp_path / "h.sqlite"
    export = tmp_path / "export.csv"
    export.write_text("client_id,session,date," + ",".join(f"wai_{i}" for i in range(1, 13))
                      + "\nA,1,2026-11-01," + ",".join(HIGH) + "\n", encoding="utf-8")  # fmt: skip
    for args in (
        ("score", "wai-sr", *HIGH, "--client", "A", "--session", "1", "--date", "2026-11-01",
         "--save", "--db", str(db)),
        ("batch", str(export), "-i", "wai-sr", "--save", "--db", str(db), "-o",
         str(tmp_path / "out.csv")),
    ):  # fmt: skip
        result = cli(*args)
        assert result.exit_code == 2
        assert "error: ALLIANCE_TODAY='garbage': give a date as YYYY-MM-DD" in result.stderr
        assert not db.exists()


def test_since_says_how_many_clients_it_cannot_place(cli, tmp_path: Path, monkeypatch):
    """clients --since shows clients with a session on or after the date; a client whose
    sessions have no date cannot be placed, and is left out with a note that counts them
    (among those the other filters would show)."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    db = tmp_path / "h.sqlite"
    _save(cli, db, "U1", 1, HIGH)
    _save(cli, db, "U2", 1, HIGH, "--counselor", "Lee")
    _save(cli, db, "D1", 1, HIGH, "--date", "2026-12-01", "--counselor", "Lee")
    result = cli("clients", "--since", "2026-11-01", "--db", str(db), "-f", "json")
    assert [r["client_id"] for r in json.loads(result.stdout)] == ["D1"]
    assert "note: 2 clients with no dated session are left out by --since" in result.stderr
    lee = cli("clients", "--since", "2026-11-01", "--counselor", "lee", "--db", str(db), "-f",
              "json")  # fmt: skip
    assert "note: 1 client with no dated session is left out by --since" in lee.stderr
    plain = cli("clients", "--db", str(db), "-f", "json")
    assert len(json.loads(plain.stdout)) == 3 and "left out" not in plain.stderr
    assert "left out" not in cli("clients", "--since", "2026-11-01", "--db", str(db), "-q").stderr


def test_a_date_years_ahead_says_its_days_with_separators(cli, tmp_path: Path, monkeypatch):
    """ "dated 9999-12-31, 2912105 days after today": long counts of days read grouped."""
    import datetime

    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    days = (datetime.date(9999, 12, 31) - datetime.date(2026, 12, 4)).days
    db = tmp_path / "h.sqlite"
    saved = cli("score", "wai-sr", *HIGH, "--client", "F", "--session", "1", "--date",
                "9999-12-31", "--save", "--db", str(db), "-q")  # fmt: skip
    assert f"9999-12-31, {days:,} days after today" in saved.stderr
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert row["concerns"][0]["sentence"] == (
        f"The latest session is dated 9999-12-31, {days:,} days after today: check its date."
    )


def test_answers_pasted_short_of_the_form_are_counted_not_called_a_bad_value(cli):
    """Pasting 3 answers of the SRS's 4 says so (not '"9 8 7" is not a number'); commas keep
    an empty place as no answer, and an anchor of several words is still one answer."""
    short = cli("score", "srs", "-I", "-f", "json", input="9 8 7\nq\n")
    assert short.exit_code == 6
    assert "3 answers pasted, and the form has 4 items: paste all 4" in short.stderr
    assert "is not a number" not in short.stderr
    gap = cli("score", "srs", "-I", "-f", "json", input="9,8,7,\n\n")
    assert gap.exit_code == 0, gap.stderr
    (data,) = json.loads(gap.stdout)
    assert data["answers"] == {"1": 9.0, "2": 8.0, "3": 7.0, "4": None}
    typo = cli("score", "wai-sr", "-I", "-f", "json", input="Fairly oftn\nq\n")
    assert '"Fairly oftn" is not a number or an anchor' in typo.stderr  # a typo, not a paste
    worded = cli("score", "wai-sr", "-I", "-f", "json", input="Fairly often\n" + "4\n" * 11 + "\n")
    assert worded.exit_code == 0, worded.stderr
    assert json.loads(worded.stdout)[0]["answers"]["1"] == 3.0


def test_clients_of_a_form_the_history_does_not_hold(cli, tmp_path: Path):
    """`clients -i` / `report --caseload -i` with an id no instrument has (a typo) is refused
    with the forms the history holds (exit 2); a form of the catalog with no client yet is
    an empty list that says so (exit 0, the CSV's header kept)."""
    db = tmp_path / "h.sqlite"
    _save(cli, db, "F-1", 1, HIGH)
    typo = cli("clients", "-i", "wai-rs", "--db", str(db))
    assert typo.exit_code == 2
    assert typo.stderr.strip() == (
        "error: -i wai-rs: no session in the history is on wai-rs (did you mean 'wai-sr'? it "
        "holds wai-sr)"
    )
    report = cli(
        "report", "--caseload", "-i", "wai-rs", "--db", str(db), "-o", str(tmp_path / "r.html")
    )
    assert report.exit_code == 2 and "did you mean 'wai-sr'?" in report.stderr
    none = cli("clients", "-i", "srs", "--db", str(db), "-f", "csv")
    assert none.exit_code == 0
    assert none.stdout.startswith("client_id,") and len(none.stdout.splitlines()) == 1
    assert none.stderr.strip() == "no session in the history is on srs yet (it holds wai-sr)"
    page = tmp_path / "srs.html"
    empty = cli("report", "--caseload", "-i", "srs", "--db", str(db), "-o", str(page))
    assert empty.exit_code == 0 and page.exists()
    assert "no session in the history is on srs yet (it holds wai-sr)" in empty.stderr
