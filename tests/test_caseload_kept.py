"""Issue 19, item 8: `clients` after a change reuses the kept list's rows of the clients the
change did not touch, and reads only the others. Whatever the change, the list it shows is
the one a reading from scratch shows (every kept reading and the kept list thrown away), and
a forgotten client leaves nothing behind in what is kept.

The scratch reading runs on a copy of the history with its caches emptied, so the history
under test keeps its own kept list from one change to the next (patches on patches)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

HIGH = "5 5 5 5 5 5 5 5 5 5 5 4".split()
LOW = "1 1 1 1 1 2 1 1 1 1 1 1".split()
MID = "3 4 3 4 3 4 3 4 3 4 3 4".split()


def _scratch(cli, db: Path, tmp_path: Path, *options: str) -> str:
    """`clients -f json` on a copy of the history with nothing kept."""
    copy = tmp_path / "scratch.sqlite"
    for suffix in ("", "-wal", "-shm"):
        copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(db) as con:  # (a consistent copy, the log folded in)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as con:
        con.execute("DELETE FROM caseload_kept")
        con.execute("UPDATE caseload SET stamp = '', token = NULL")
    result = cli("clients", "--db", str(copy), "-f", "json", *options)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _scratch_one(db: Path, tmp_path: Path, form: str) -> list[dict]:
    """One instrument's view from scratch, by the reading of every series (not through
    ``views._one_instrument``, the path under test), as JSON data."""
    from unittest import mock

    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    copy = tmp_path / "scratch-one.sqlite"
    for suffix in ("", "-wal", "-shm"):
        copy.with_name(copy.name + suffix).unlink(missing_ok=True)
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(db, copy)
    store = history.open_store(copy)
    try:
        every = mock.patch.object(views, "_one_instrument", lambda s, i, t: s.kept_caseload())
        with every:
            rows = views.caseload(store, load_catalog(), reading.Settings(),
                                  views.CaseloadFilter(instrument=form))  # fmt: skip
    finally:
        store.close()
    return [r.as_dict() for r in rows]


def _save(cli, db: Path, client: str, session: int, answers, form: str = "wai-sr", *more: str):
    result = cli("score", form, *answers, "--client", client, "--session", str(session),
                 "--save", "--db", str(db), "-q", *more)  # fmt: skip
    assert result.exit_code in (0, 3), result.stderr


def _kept_text(db: Path) -> bytes:
    import zlib

    with sqlite3.connect(db) as con:
        row = con.execute("SELECT rows FROM caseload_kept").fetchone()
    return zlib.decompress(row[0]) if row else b""


def test_every_kind_of_change_gives_the_list_a_scratch_reading_gives(cli, tmp_path):
    db = tmp_path / "h.sqlite"
    for session in (1, 2, 3, 4):
        _save(cli, db, "X", session, HIGH)
        _save(cli, db, "Y", session, MID)
    _save(cli, db, "Z", 1, HIGH)
    _save(cli, db, "Z", 1, ["8", "8", "8", "8"], "srs")
    steps: list[tuple[str, list[str]]] = [
        ("a rupture saved for one client", ["score X 5 LOW"]),
        ("a new client", ["score N 1 LOW"]),
        (
            "other settings, then a filter, in between",
            ["clients --early-sessions 9", "clients --open"],
        ),
        ("a session replaced", ["score X 5 HIGH --replace"]),
        ("one session forgotten", ["forget Y --session 4"]),
        ("one form forgotten", ["forget Z --instrument srs"]),
        (
            "a client forgotten, saved again, read by a filtered list",
            ["forget Y", "score Y 1 MID", "clients --instrument wai-sr"],
        ),
        ("a batch for old and new clients", ["batch"]),
        (
            "a therapist's form for an old client, far from the client's",
            ["score X 7 HIGH wai-sr-t"],
        ),
    ]
    assert cli("clients", "--db", str(db), "-f", "json").exit_code == 0  # the list kept
    answers = {"LOW": LOW, "HIGH": HIGH, "MID": MID}
    for step, (name, actions) in enumerate(steps):
        for action in actions:
            verb, *args = action.split()
            if verb == "score":
                client, session, which, *more = args
                form = "wai-sr"
                if more and not more[0].startswith("--"):
                    form, *more = more
                given = answers[which][: 10 if form == "wai-sr-t" else 12]  # (10 items)
                _save(cli, db, client, int(session), given, form, *more)
            elif verb == "batch":
                src = tmp_path / "b.csv"
                head = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
                src.write_text(f"{head}\nX,7,{','.join(LOW)}\nB,1,{','.join(MID)}\n")
                saved = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db),
                            "-o", str(tmp_path / "o.csv"), "-q")  # fmt: skip
                assert saved.exit_code == 0, saved.stderr
            else:
                extra = ["--yes"] if verb == "forget" else ["-f", "json"]
                assert cli(verb, *args, *extra, "--db", str(db)).exit_code == 0, action
        if step % 2 == 0:  # one instrument's view first (a client with another form changed
            for form in ("wai-sr", "srs"):  # is read again whole), on even steps
                one = cli("clients", "--db", str(db), "-f", "json", "-i", form).stdout
                assert json.loads(one) == _scratch_one(db, tmp_path, form), (name, form)
        shown = cli("clients", "--db", str(db), "-f", "json")
        assert shown.exit_code == 0, (name, shown.stderr)
        assert shown.stdout == _scratch(cli, db, tmp_path), name
        again = cli("clients", "--db", str(db), "-f", "json").stdout  # the kept list, as is
        assert again == shown.stdout, name


def test_after_one_save_only_that_client_is_put_together_again(cli, tmp_path, monkeypatch):
    """The patch is taken, not a full reading: after one client's save, the kept readings
    of that client alone are asked for, and every other row is the kept line as it was."""
    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    db = tmp_path / "h.sqlite"
    for client in ("A", "B", "C"):
        for session in (1, 2, 3):
            _save(cli, db, client, session, HIGH if client != "B" else MID)
    assert cli("clients", "--db", str(db), "-f", "json").exit_code == 0
    before = {line.split(b"\t")[0][:6]: line for line in _kept_text(db).split(b"\n")}
    _save(cli, db, "B", 4, LOW)
    asked: list[set[str] | None] = []
    store = history.open_store(db)
    real = store.kept_caseload

    def kept_caseload(clients=None):  # type: ignore[no-untyped-def]
        asked.append(clients)
        return real(clients)

    monkeypatch.setattr(store, "kept_caseload", kept_caseload)
    try:
        rows = views.caseload(store, load_catalog(), reading.Settings())
    finally:
        store.close()
    assert asked == [{"B"}]
    assert {r.client_id for r in rows} == {"A", "B", "C"}
    after = {line.split(b"\t")[0][:6]: line for line in _kept_text(db).split(b"\n")}
    assert after[b'["A", '] == before[b'["A", '] and after[b'["C", '] == before[b'["C", ']
    assert after[b'["B", '] != before[b'["B", ']


def test_a_forget_leaves_nothing_of_the_client_in_what_is_kept(cli, tmp_path):
    db = tmp_path / "h.sqlite"
    _save(cli, db, "SECRET-7", 1, LOW)
    _save(cli, db, "K", 1, HIGH)
    assert cli("clients", "--db", str(db), "-f", "json").exit_code == 0
    assert b"SECRET-7" in _kept_text(db)
    assert cli("forget", "SECRET-7", "--yes", "--db", str(db)).exit_code == 0
    assert _kept_text(db) == b""
    with sqlite3.connect(db) as con:
        gone = con.execute("SELECT count(*) FROM caseload WHERE client_id = 'SECRET-7'")
        assert gone.fetchone() == (0,)
    assert "SECRET-7" not in cli("clients", "--db", str(db), "-f", "json").stdout


@pytest.mark.parametrize("damage", ["not zlib", "a row in another order"])
def test_a_damaged_kept_list_is_read_again_not_shown(cli, tmp_path, damage):
    """The kept list is a cache: one that cannot be read, or whose rows name readings in
    another order, is made again from the readings (the same list as from scratch)."""
    db = tmp_path / "h.sqlite"
    for session in (1, 2):
        _save(cli, db, "P", session, HIGH)
        _save(cli, db, "Q", session, LOW)
    first = cli("clients", "--db", str(db), "-f", "json").stdout
    _save(cli, db, "Q", 3, HIGH)  # the kept list is stale: the next reader patches it
    with sqlite3.connect(db) as con:
        if damage == "not zlib":
            con.execute("UPDATE caseload_kept SET rows = x'00ff'")
        else:
            import zlib

            lines = _kept_text(db).split(b"\n")
            reversed_text = zlib.compress(b"\n".join(lines[::-1]))
            con.execute("UPDATE caseload_kept SET rows = ?", (reversed_text,))
    shown = cli("clients", "--db", str(db), "-f", "json")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == _scratch(cli, db, tmp_path) != first
    assert [r["client_id"] for r in json.loads(shown.stdout)] == ["P", "Q"]


def test_many_series_not_most_are_read_by_their_clients_the_same(cli, tmp_path):
    """More than 500 series to read, but not most of the store's: they are found by their
    clients through the index (not one pass over every session); the rows are the same."""
    from alliance_cli.store import sqlite as history
    from alliance_cli.store.base import most_of

    src = tmp_path / "many.csv"
    head = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    rows = [f"M{n:04d},{s}," + ",".join(MID if (n + s) % 3 else HIGH)
            for n in range(1000) for s in (1, 2)]  # fmt: skip
    src.write_text(head + "\n" + "\n".join(rows) + "\n")
    db = tmp_path / "h.sqlite"
    saved = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o",
                str(tmp_path / "o.csv"), "-q")  # fmt: skip
    assert saved.exit_code == 0, saved.stderr
    store = history.open_store(db)
    try:
        assert_found_by_clients_alike(store)
    finally:
        store.close()
    assert most_of(800, lambda: 1000) and not most_of(400, lambda: 401)


def test_filters_choose_among_the_kept_lists_rows(cli, tmp_path, monkeypatch):
    """--counselor, --since and --open are answered from the kept list (they only choose
    among its rows), with what the whole list from scratch gives, filtered by hand; the
    instrument filter, which shows that instrument's numbers, reads its series."""
    from alliance_cli.core import reading
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    db = tmp_path / "h.sqlite"
    for n, (who, date) in enumerate([("Lee", "2026-10-01"), ("Rivera", "2026-11-20"),
                                     ("lee", "2026-11-25")]):  # fmt: skip
        for session in (1, 2, 3):
            _save(cli, db, f"F{n}", session, LOW if n == 1 and session == 3 else HIGH,
                  "wai-sr", "--counselor", who, "--date", date)  # fmt: skip
    _save(cli, db, "F0", 1, ["8", "8", "8", "8"], "srs")
    whole = json.loads(_scratch(cli, db, tmp_path))
    assert cli("clients", "--db", str(db), "-f", "json").exit_code == 0  # the list kept
    picks = {
        ("--counselor", "LEE"): lambda r: (r["counselor"] or "").lower() == "lee",
        ("--since", "2026-11-01"): lambda r: (r["last_date"] or "") >= "2026-11-01",
        ("--open",): lambda r: bool(r["concerns"]),
    }
    for options, keep in picks.items():
        shown = json.loads(cli("clients", "--db", str(db), "-f", "json", *options).stdout)
        assert shown == [r for r in whole if keep(r)], options
        assert shown and len(shown) < len(whole), options
    asked: list[object] = []
    store = history.open_store(db)
    monkeypatch.setattr(store, "kept_caseload", lambda *a: asked.append(a) or [])
    try:
        rows = views.caseload(store, load_catalog(), reading.Settings(),
                              views.CaseloadFilter(counselor="Rivera"))  # fmt: skip
    finally:
        store.close()
    assert [r.client_id for r in rows] == ["F1"] and asked == []  # the kept list alone
    by_srs = json.loads(cli("clients", "--db", str(db), "-f", "json", "-i", "srs").stdout)
    assert [(r["client_id"], r["instrument"]) for r in by_srs] == [("F0", "srs")]


def assert_found_by_clients_alike(store) -> None:  # type: ignore[no-untyped-def]
    """Over 500 of a store's 1,000 series, not most: the rows found by their clients equal
    the full pass's (shared with the server's test)."""
    from alliance_cli.store.base import most_of

    every = store.caseload_rows()
    wanted = {tuple(r[:3]) for r in every[::2]} | {tuple(r[:3]) for r in every[1:201]}
    assert len(wanted) > 500 and not most_of(len(wanted), lambda: len(every))
    found = store.caseload_rows(only=wanted)
    assert sorted(found) == sorted(r for r in every if tuple(r[:3]) in wanted)


def test_local_norms_are_part_of_what_a_kept_reading_depends_on(cli, tmp_path, monkeypatch):
    """A clinic's own norms (--norms, ALLIANCE_NORMS) change the reliable-change threshold,
    not the definition's hash: `clients` with them must not show the readings kept without
    them (nor the other way round)."""
    from .conftest import ROOT

    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    export = str(ROOT / "examples" / "clinic_wai_sr.csv")
    norms = tmp_path / "norms.yaml"
    assert cli("norms", export, "-i", "wai-sr", "-o", str(norms), "-q").exit_code == 3
    db = tmp_path / "h.sqlite"
    saved = cli("batch", export, "-i", "wai-sr", "--save", "--db", str(db), "-q", "-o",
                str(tmp_path / "out.csv"))  # fmt: skip
    assert saved.exit_code == 3, saved.stderr
    plain = cli("clients", "--db", str(db), "-f", "json")
    assert plain.exit_code == 0
    monkeypatch.setenv("ALLIANCE_NORMS", str(norms))
    with_norms = cli("clients", "--db", str(db), "-f", "json", "-q")
    assert with_norms.stdout == _scratch(cli, db, tmp_path, "-q")
    assert with_norms.stdout != plain.stdout  # (the norms do change this caseload)
    monkeypatch.delenv("ALLIANCE_NORMS")
    again = cli("clients", "--db", str(db), "-f", "json")
    assert again.stdout == plain.stdout == _scratch(cli, db, tmp_path)


def test_the_not_seen_days_are_said_from_the_kept_readings(cli, tmp_path, monkeypatch):
    """--not-seen-days changes only today's note, added when the list is shown: the kept
    readings and the kept list stay as they were (a caseload of 10,000 clients was read
    again from scratch for it, twice: with the option and then without it), and the list is
    the one a reading from scratch gives with the same option."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-01")
    db = tmp_path / "h.sqlite"
    for n, date in enumerate(["2026-10-01", "2026-11-20", "2026-11-28"]):
        for session in (1, 2):
            _save(cli, db, f"N{n}", session, HIGH, "wai-sr", "--date", date)
    assert cli("clients", "--db", str(db), "-f", "json").exit_code == 0  # the list kept

    def kept() -> tuple[object, ...]:
        with sqlite3.connect(db) as con:
            tokens = con.execute("SELECT token, stamp FROM caseload ORDER BY 1").fetchall()
        return (tokens, _kept_text(db))

    before = kept()
    shown = cli("clients", "--db", str(db), "-f", "json", "--not-seen-days", "5").stdout
    notes = {r["client_id"]: [c["kind"] for c in r["concerns"]] for r in json.loads(shown)}
    assert notes == {"N0": ["not_seen"], "N1": ["not_seen"], "N2": []}
    assert kept() == before
    assert shown == _scratch(cli, db, tmp_path, "--not-seen-days", "5")
    default = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert [c["kind"] for r in default for c in r["concerns"]] == ["not_seen"]  # N0's alone
    assert kept() == before


def test_a_client_not_seen_comes_before_those_with_nothing_open(cli, tmp_path, monkeypatch):
    """Today's not-seen note is added when the list is shown, after the kept order: a
    client with only that note still ranks above every client with nothing open (the most
    recently seen first among them, as among other notes), fresh, kept and with a filter."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-01")
    db = tmp_path / "h.sqlite"
    seen = {"L": ("2026-11-27", LOW), "R": ("2026-11-28", HIGH),
            "A": ("2026-10-20", HIGH), "B": ("2026-10-01", HIGH)}  # fmt: skip
    for client, (date, answers) in seen.items():
        _save(cli, db, client, 1, answers, "wai-sr", "--date", date)
    expected = ["L", "A", "B", "R"]  # low early; not seen 42 and 61 days; nothing open
    for _ in range(2):  # read and kept, then from the kept list
        rows = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
        assert [r["client_id"] for r in rows] == expected
        assert [r["severity"] for r in rows] == ["watch", "note", "note", None]
    table = cli("clients", "--db", str(db), "-f", "table").stdout
    assert [table.index(f" {c} ") for c in expected] == sorted(
        table.index(f" {c} ") for c in expected
    )
    since = json.loads(
        cli("clients", "--db", str(db), "-f", "json", "--since", "2026-09-01").stdout
    )
    assert [r["client_id"] for r in since] == expected


def test_one_instrument_s_rows_are_the_client_s_latest_date_and_counselor(
    cli, tmp_path, monkeypatch
):
    """`clients -i srs` said "Not seen for 90 days" of a client seen five days before on
    the WAI-SR, and named the SRS's counselor: a row of one instrument has the numbers of
    that form, and the client's latest date and counselor over every form, as the whole
    list has them (the days, the not-seen note, --since and --counselor follow), fresh and
    kept; after that later session is forgotten, the SRS's are back (the kept date of a
    series read again is not trusted)."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-11-30")
    db = tmp_path / "h.sqlite"
    _save(cli, db, "Q", 1, ["9.5"] * 4, "srs", "--date", "2026-09-01", "--counselor", "Rivera")
    _save(cli, db, "Q", 1, HIGH, "wai-sr", "--date", "2026-11-25", "--counselor", "Lee")

    def srs_rows(*more: str) -> list[dict]:
        shown = cli("clients", "--db", str(db), "-f", "json", "-i", "srs", *more)
        assert shown.exit_code == 0, shown.stderr
        return json.loads(shown.stdout)

    for _ in range(2):  # read, then kept
        (row,) = srs_rows()
        assert (row["instrument"], row["sessions"], row["last_total_pomp"]) == ("srs", 1, 95.0)
        assert (row["last_date"], row["days_since"], row["counselor"]) == ("2026-11-25", 5, "Lee")
        assert row["concerns"] == []
        (whole,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
        assert (whole["last_date"], whole["counselor"]) == ("2026-11-25", "Lee")
    assert len(srs_rows("--since", "2026-11-01")) == 1
    assert len(srs_rows("--counselor", "Lee")) == 1 and srs_rows("--counselor", "Rivera") == []
    gone = cli("forget", "Q", "--session", "1", "--instrument", "wai-sr", "--yes", "--db", str(db))
    assert gone.exit_code == 0, gone.stderr
    (row,) = srs_rows()
    assert (row["last_date"], row["days_since"], row["counselor"]) == ("2026-09-01", 90, "Rivera")
    assert [c["kind"] for c in row["concerns"]] == ["not_seen"]
