"""A clinic's shared history on a real PostgreSQL server (issue 25).

The server is a throwaway cluster started by ``tests/with-postgres.sh`` (``make test`` and
``.ci/run`` use it), named by ALLIANCE_TEST_POSTGRES. Without one these tests skip, unless
ALLIANCE_REQUIRE_POSTGRES=1 (CI), when they fail. No mock stands in for the server: every
test gets a database of its own, and connects as the login roles it names.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import ROOT, run

SERVER = os.environ.get("ALLIANCE_TEST_POSTGRES", "")
REQUIRED = os.environ.get("ALLIANCE_REQUIRE_POSTGRES") == "1"
COUNSELORS = ("counselor_a", "counselor_b")
SUPERVISOR = "supervisor_s"
WAI = ["4", "4", "5", "3", "5", "4", "4", "3", "5", "4", "4", "4"]

if not SERVER:
    if REQUIRED:
        pytest.fail("ALLIANCE_REQUIRE_POSTGRES=1 but no ALLIANCE_TEST_POSTGRES server (run "
                    "the suite through tests/with-postgres.sh)", pytrace=False)  # fmt: skip
    pytest.skip("no PostgreSQL test server (make test starts one when the server binaries "
                "are installed: Debian's postgresql)", allow_module_level=True)  # fmt: skip
if REQUIRED:
    import psycopg
else:
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")


def as_role(url: str, role: str | None = None, dbname: str | None = None) -> str:
    """The server URL with another login role and/or database."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{role}@{host}" if role else parts.netloc
    path = f"/{dbname}" if dbname else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def admin_sql(sql: str, dbname: str | None = None) -> list[tuple[object, ...]]:
    """Run SQL as the cluster's superuser (setting up roles and databases)."""
    with psycopg.connect(as_role(SERVER, dbname=dbname), autocommit=True) as db:
        cursor = db.execute(sql)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(scope="module", autouse=True)
def _roles() -> None:
    """The clinic's group roles (from `alliance db setup`'s SQL) and three login roles."""
    admin_sql(
        "DO $$ BEGIN "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alliance_counselor') THEN "
        "CREATE ROLE alliance_counselor NOLOGIN; END IF; "
        "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'alliance_supervisor') THEN "
        "CREATE ROLE alliance_supervisor NOLOGIN; END IF; END $$"
    )
    for role, group in [(c, "alliance_counselor") for c in COUNSELORS] + [
        (SUPERVISOR, "alliance_supervisor")
    ]:
        admin_sql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN "
            f"CREATE ROLE {role} LOGIN IN ROLE {group}; END IF; END $$"
        )


@pytest.fixture
def database() -> Iterator[Callable[[str | None], str]]:
    """A fresh database set up by its owner (the superuser); gives its URL for a role."""
    name = f"alliance_{uuid.uuid4().hex[:12]}"
    admin_sql(f"CREATE DATABASE {name}")
    owner = as_role(SERVER, dbname=name)
    result = run("db", "setup", "--apply", "--db", owner, "-q")
    assert result.exit_code == 0, result.stderr
    try:
        yield lambda role=None: as_role(owner, role)
    finally:
        admin_sql(f"DROP DATABASE {name} WITH (FORCE)")


def cli(*args: str) -> tuple[int, str, str]:
    result = run(*args)
    return result.exit_code, result.stdout, result.stderr


def save_wai(db: str, client: str, session: int, answers: list[str] | None = None) -> int:
    code, _, err = cli("score", "wai-sr", *(answers or WAI), "--client", client,
                       "--session", str(session), "--save", "--db", db, "-q")  # fmt: skip
    assert code in (0, 3, 5), err
    return code


# -- the same results as SQLite -------------------------------------------------------------
def scenario(db: str) -> None:
    """Saves of every kind: a batch, single sessions, a rupture, a replace, a conflict, a
    forget."""
    code, _, err = cli("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                       "--save", "--db", db, "-o", os.devnull, "-q")  # fmt: skip
    assert code == 3, err  # the example's two bad rows
    for session, bond in enumerate(["5", "5", "5", "1", "2", "2"], 1):
        answers = [*WAI[:3], bond, *WAI[4:6], bond, *WAI[7:9], bond, bond, WAI[11]]
        save_wai(db, "R-1", session, answers)
    assert save_wai(db, "R-1", 2, ["1"] * 12) == 3  # a conflict: refused, both shown
    assert cli("score", "wai-sr", *["2"] * 12, "--client", "R-1", "--session", "6",
               "--save", "--replace", "--db", db, "-q")[0] == 0  # fmt: skip
    assert cli("score", "srs", "9", "9", "9", "9", "--client", "S-1", "--session", "1",
               "--save", "--db", db, "-q")[0] == 0  # fmt: skip
    assert cli("forget", "C-101", "--session", "2", "--yes", "--db", db, "-q")[0] == 0


def views(db: str) -> dict[str, str]:
    """Everything the history shows, as JSON (and the caseload report's HTML)."""
    out = {}
    code, clients, err = cli("clients", "-f", "json", "--db", db)
    assert code == 0, err
    out["clients"] = clients
    for line in clients.splitlines():
        if '"client_id"' in line:
            client = json.loads(line.strip().rstrip(","))["client_id"]
            code, text, err = cli("history", client, "-f", "json", "--db", db)
            assert code == 0, err
            out[f"history {client}"] = text
    code, text, err = cli("clients", "-f", "csv", "--counselor", "nobody", "--db", db)
    out["filtered"] = text
    for form in ("wai-sr", "srs"):  # one instrument's rows: the client's date and counselor
        code, text, err = cli("clients", "-f", "json", "-i", form, "--db", db)
        assert code == 0, err
        out[f"clients -i {form}"] = text
    return out


def test_the_same_saves_give_the_same_json_as_sqlite(database, tmp_path: Path) -> None:
    sqlite = str(tmp_path / "history.sqlite")
    scenario(sqlite)
    scenario(database(None))
    on_sqlite, on_server = views(sqlite), views(database(None))
    assert len(on_sqlite) > 30  # every client of the example, R-1 and S-1
    assert on_server.keys() == on_sqlite.keys()
    for key in on_sqlite:
        assert on_server[key] == on_sqlite[key], key
    # the rupture said at save time is kept on both
    assert "flags_at_save" in on_server["history R-1"]
    said = json.loads(on_server["history R-1"])[0]["sessions"][3]["flags_at_save"]
    assert said, "what was said at session 4 is kept"
    # a second read (from the kept caseload readings) gives the same again
    assert views(database(None)) == on_server


def test_reports_match_sqlite_but_for_the_source_name(database, tmp_path: Path) -> None:
    sqlite = str(tmp_path / "history.sqlite")
    scenario(sqlite)
    scenario(database(None))
    pages = {}
    for name, db in (("sqlite", sqlite), ("server", database(None))):
        out = tmp_path / f"{name}.html"
        code, _, err = cli("report", "R-1", "--db", db, "-o", str(out), "-q")
        assert code == 0, err
        # (made a second apart, the two pages would differ in their time of making alone)
        page = out.read_text(encoding="utf-8")
        pages[name] = re.sub(r"Generated [0-9T:+-]+ by", "Generated (time) by", page, count=1)
    dbname = urlsplit(database(None)).path.lstrip("/")
    assert "Generated (time) by" in pages["sqlite"]
    assert pages["server"].replace(dbname, "history.sqlite") == pages["sqlite"]


# -- per-counselor access, enforced by the server --------------------------------------------
def test_each_counselor_sees_only_their_own_clients(database, tmp_path: Path) -> None:
    a, b, s = database("counselor_a"), database("counselor_b"), database(SUPERVISOR)
    assert save_wai(a, "A-1", 1) == 0
    assert save_wai(a, "A-1", 2) == 0
    assert save_wai(b, "B-1", 1) == 0
    # the CLI: list, read, report, forget, save
    assert '"A-1"' in cli("clients", "-f", "json", "--db", a)[1]
    assert '"B-1"' not in cli("clients", "-f", "json", "--db", a)[1]
    code, _, err = cli("history", "B-1", "--db", a)
    assert code == 2 and "B-1" in err and "no sessions recorded" in err
    assert cli("report", "B-1", "--db", a, "-o", os.devnull)[0] == 2
    assert cli("forget", "B-1", "--yes", "--db", a)[0] == 2
    code, _, err = cli("score", "wai-sr", *WAI, "--client", "B-1", "--session", "2",
                       "--save", "--db", a)  # fmt: skip
    assert code == 5 and "is not assigned to you (another counselor's" in err
    # reliability from the history reads A's two answer sets, not B's third
    code, _, err = cli("reliability", "--from-history", "-i", "wai-sr", "--db", a, "-f", "json")
    assert code == 3 and "2 answer sets from the history" in err, err
    assert "3 answer sets" in cli("reliability", "--from-history", "-i", "wai-sr", "--db", s)[2]
    # the caseload report lists only A's clients
    page = tmp_path / "caseload.html"
    code, _, err = cli("report", "--caseload", "--db", a, "-o", str(page))
    assert code == 0, err
    assert "A-1" in page.read_text(encoding="utf-8")
    assert "B-1" not in page.read_text(encoding="utf-8")
    # plain SQL, as the counselor: nothing of B's can be read, counted or changed
    with psycopg.connect(a, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM alliance.sessions").fetchone()[0] == 2
        assert db.execute("SELECT DISTINCT client_id FROM alliance.sessions").fetchall() == [
            ("A-1",)
        ]
        assert db.execute("SELECT count(*) FROM alliance.caseload").fetchone()[0] == 1
        assert db.execute("SELECT client_id FROM alliance.assignments").fetchall() == [("A-1",)]
        gone = db.execute("DELETE FROM alliance.sessions WHERE client_id = 'B-1'").rowcount
        changed = db.execute(
            "UPDATE alliance.sessions SET answers = '' WHERE client_id = 'B-1'"
        ).rowcount
        assert gone == changed == 0
        assert db.execute("SELECT claim(ARRAY['B-1'])".replace("claim", "alliance.claim")
                          ).fetchall() == [("B-1",)]  # fmt: skip
        for sql in (
            "SELECT count(*) FROM alliance.clients",
            "INSERT INTO alliance.assignments VALUES ('B-1', 'counselor_a')",
            "INSERT INTO alliance.sessions (client_id, instrument, rater, session, "
            "definition, answers) SELECT 'B-1', 'wai-sr', 'client', 9, id, '' "
            "FROM alliance.definitions LIMIT 1",
            "UPDATE alliance.sessions SET client_id = 'B-1'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                db.execute(sql)
    # B's session is untouched; the supervisor sees the whole clinic
    with psycopg.connect(s, autocommit=True) as db:
        assert db.execute("SELECT count(*) FROM alliance.sessions").fetchone()[0] == 3
    both = cli("clients", "-f", "json", "--db", s)[1]
    assert '"A-1"' in both and '"B-1"' in both
    # B cannot see A's either, and a counselor cannot assign clients
    assert cli("history", "A-1", "--db", b)[0] == 2
    code, _, err = cli("db", "grant", "A-1", "counselor_b", "--db", b)
    assert code == 5 and "only a supervisor" in err


def test_a_supervisor_assigns_and_forgets_everywhere(database) -> None:
    a, b, s = database("counselor_a"), database("counselor_b"), database(SUPERVISOR)
    code, _, err = cli("clients", "--db", s)
    assert code == 0 and err.strip() == "no clients in the history yet"
    assert save_wai(b, "B-1", 1) == 0
    # a counselor with no client is told why, not that the clinic's history is empty
    code, out, err = cli("clients", "--db", a, "-f", "csv")
    assert code == 0 and out.startswith("client_id,") and len(out.splitlines()) == 1
    assert err.strip() == (
        "no clients assigned to you yet (you see a client once you save a session for them, "
        "or once a supervisor assigns them to you: alliance db grant)"
    )
    code, out, err = cli("clients", "--db", s, "-i", "srs")
    assert code == 0 and err.strip() == "no session in the history is on srs yet (it holds wai-sr)"
    code, out, err = cli("clients", "--db", s, "--counselor", "nobody")
    assert code == 0 and err.strip() == "no clients match"
    assert save_wai(a, "A-1", 1) == 0
    assert cli("db", "grant", "A-1", "counselor_b", "--db", s, "-q")[0] == 0
    assert cli("history", "A-1", "--db", b, "-f", "json")[0] == 0
    assert save_wai(b, "A-1", 2) == 0  # now B's client too
    assert cli("db", "revoke", "A-1", "counselor_b", "--db", s, "-q")[0] == 0
    assert cli("history", "A-1", "--db", b)[0] == 2
    code, _, err = cli("db", "grant", "A-1", "no_such_role", "--db", s)
    assert code == 5 and "no login role" in err
    # a counselor's forget removes what that counselor may see; B's client stays
    assert cli("forget", "A-1", "--yes", "--db", a, "-q")[0] == 0
    assert cli("history", "A-1", "--db", s)[0] == 2
    assert cli("history", "B-1", "--db", s, "-f", "json")[0] == 0
    # the supervisor's forget removes the client everywhere, assignments too
    assert cli("forget", "B-1", "--yes", "--db", s, "-q")[0] == 0
    assert admin_sql("SELECT count(*) FROM alliance.sessions", _db(s))[0][0] == 0
    assert admin_sql("SELECT count(*) FROM alliance.assignments", _db(s))[0][0] == 0
    assert admin_sql("SELECT count(*) FROM alliance.clients", _db(s))[0][0] == 0
    assert admin_sql("SELECT count(*) FROM alliance.caseload", _db(s))[0][0] == 0
    # a forgotten client is new again: the next counselor to save them has them
    assert save_wai(b, "A-1", 1) == 0


def test_a_client_given_before_any_session_is_said_to_have_none(database) -> None:
    """A supervisor may give a client before their first session (an intake), but a grant
    of an id with no session says so, with the recorded ids it may have meant (a typo
    would otherwise be a silent assignment of nobody)."""
    a, s = database("counselor_a"), database(SUPERVISOR)
    assert save_wai(a, "C-101", 1) == 0
    code, _, err = cli("db", "grant", "C-1O1", "counselor_b", "--db", s)
    assert code == 0
    assert err.strip() == (
        "client C-1O1 is now assigned to counselor_b; no session of theirs is recorded yet "
        "(did you mean 'C-101'?)"
    )
    code, _, err = cli("db", "grant", "C-101", "counselor_b", "--db", s)
    assert code == 0 and err.strip() == "client C-101 is now assigned to counselor_b"
    assert save_wai(database("counselor_b"), "C-1O1", 1) == 0  # given: theirs to save


def test_the_kept_list_is_patched_and_a_forget_clears_every_roles_list(database) -> None:
    """As on SQLite (tests/test_caseload_kept.py): after a save, `clients` reuses the rows
    of the clients it did not touch and shows what a reading from scratch shows; a
    counselor's forget leaves the client in no role's kept list (the supervisor's too)."""
    a, s = database("counselor_a"), database(SUPERVISOR)
    low = ["1"] * 12
    for session in (1, 2, 3):
        save_wai(a, "K-1", session)
        save_wai(a, "K-2", session)
    for role in (a, s):
        assert cli("clients", "--db", role, "-f", "json")[0] == 0  # each role's list kept
    save_wai(a, "K-1", 4, low)
    name = _db(a)

    def scratch(role: str) -> str:
        admin_sql("DELETE FROM alliance.caseload_snapshot; "
                  "UPDATE alliance.caseload SET stamp = '', token = NULL", name)  # fmt: skip
        return cli("clients", "--db", role, "-f", "json")[1]

    patched = {role: cli("clients", "--db", role, "-f", "json")[1] for role in (a, s)}
    tokens = admin_sql("SELECT client_id, token FROM alliance.caseload ORDER BY 1", name)
    assert dict(tokens)["K-2"] is not None  # K-2's reading kept as it was
    assert patched[a] == scratch(a) and patched[s] == scratch(s)
    assert '"K-1"' in patched[s]
    for role in (a, s):
        cli("clients", "--db", role, "-f", "json")
    kept = admin_sql("SELECT rows FROM alliance.caseload_snapshot", name)
    assert len(kept) == 2 and all(b"K-1" in zlib.decompress(row[0]) for row in kept)  # type: ignore[arg-type]
    assert cli("forget", "K-1", "--yes", "--db", a, "-q")[0] == 0
    assert admin_sql("SELECT count(*) FROM alliance.caseload_snapshot", name) == [(0,)]
    assert "K-1" not in cli("clients", "--db", s, "-f", "json")[1]


def test_many_series_not_most_are_read_by_their_clients_on_the_server(database, tmp_path):
    """As on SQLite: more than 500 series, not most, are found by their clients (= ANY)."""
    from alliance_cli.store import postgres

    from .test_caseload_kept import assert_found_by_clients_alike

    src = tmp_path / "many.csv"
    head = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    src.write_text(head + "\n" + "\n".join(f"M{n:04d},1,{','.join(WAI)}" for n in range(1000)))
    owner = database()
    code, _, err = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", owner, "-o",
                       str(tmp_path / "o.csv"), "-q")  # fmt: skip
    assert code == 0, err
    store = postgres.open_store(owner, create=False)
    try:
        assert_found_by_clients_alike(store)
    finally:
        store.close()


def _db(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


# -- concurrency ------------------------------------------------------------------------------
def _alliance(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alliance_cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def test_twenty_counselors_and_five_batches_at_once_lose_nothing(database, tmp_path) -> None:
    a, b = database("counselor_a"), database("counselor_b")
    files = []
    for k in range(5):
        path = tmp_path / f"batch{k}.csv"
        rows = [f"K{k}-{c},{s}," + ",".join(WAI) for c in range(40) for s in (1, 2, 3)]
        header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
        path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
        files.append(path)
    procs = [
        _alliance(
            "score",
            "wai-sr",
            *WAI,
            "--client",
            f"P-{n}",
            "--session",
            "1",
            "--save",
            "--db",
            a if n % 2 else b,
            "-q",
        )
        for n in range(20)
    ] + [
        _alliance(
            "batch",
            str(f),
            "-i",
            "wai-sr",
            "--save",
            "--db",
            a if k % 2 else b,
            "-o",
            os.devnull,
            "-q",
        )
        for k, f in enumerate(files)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    name = _db(a)
    assert admin_sql("SELECT count(*) FROM alliance.sessions", name)[0][0] == 20 + 5 * 120
    # every client is assigned to the counselor who saved them, once
    owners = admin_sql("SELECT client_id, count(*) FROM alliance.assignments GROUP BY 1", name)
    assert len(owners) == 20 + 5 * 40 and {n for _, n in owners} == {1}


def test_ten_first_connections_migrate_once(tmp_path) -> None:
    name = f"alliance_{uuid.uuid4().hex[:12]}"
    admin_sql(f"CREATE DATABASE {name}")
    try:
        url = as_role(SERVER, dbname=name)
        procs = [
            _alliance(
                "score",
                "srs",
                "9",
                "9",
                "9",
                "9",
                "--client",
                f"M-{n}",
                "--session",
                "1",
                "--save",
                "--db",
                url,
                "-q",
            )
            for n in range(10)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        from alliance_cli.store.postgres import SCHEMA_VERSION

        assert admin_sql("SELECT value FROM alliance.meta", name) == [(str(SCHEMA_VERSION),)]
        assert SCHEMA_VERSION == 2
        assert admin_sql("SELECT count(*) FROM alliance.sessions", name)[0][0] == 10
    finally:
        admin_sql(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_duplicate_session_conflicts_as_on_sqlite(database, tmp_path: Path) -> None:
    for db in (str(tmp_path / "h.sqlite"), database("counselor_a")):
        assert save_wai(db, "D-1", 1) == 0
        code, _, err = cli("score", "wai-sr", *WAI, "--client", "D-1", "--session", "1",
                             "--save", "--db", db, "-q")  # fmt: skip
        assert code == 0, err  # the same answers again: nothing to do
        code, _, err = cli("score", "wai-sr", *["1"] * 12, "--client", "D-1", "--session",
                           "1", "--save", "--db", db)  # fmt: skip
        assert code == 3 and "recorded with other answers" in err


def test_a_row_whose_id_holds_a_nul_byte_is_rejected_not_the_batch(database, tmp_path) -> None:
    """PostgreSQL's text cannot hold a NUL byte: one such client id failed the whole batch
    ("cannot use the history"), and "run it again" could not help. That row is rejected
    now, as on SQLite, and the rest saved."""
    src = tmp_path / "x.csv"
    rows = ["client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"N-{i},1," + ",".join(WAI) for i in range(5)] + ["N-\x005,1," + ",".join(WAI)]
    src.write_text("\n".join(rows) + "\n")
    server = database(None)
    code, _, err = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", server, "-o",
                       os.devnull)  # fmt: skip
    assert code == 3, err
    assert f"{src}:7: client_id: client_id holds a NUL byte" in err
    assert admin_sql("SELECT count(*) FROM alliance.sessions", _db(server))[0][0] == 5


# -- moving a history -------------------------------------------------------------------------
def test_copy_is_idempotent_and_keeps_what_was_said(database, tmp_path: Path) -> None:
    sqlite = str(tmp_path / "history.sqlite")
    scenario(sqlite)
    server = database(None)
    code, _, err = cli("db", "copy", sqlite, server)
    assert code == 0, err
    assert "holds 200 sessions" not in err  # (counts are said; checked below)
    count = admin_sql("SELECT count(*) FROM alliance.sessions", _db(server))[0][0]
    code, _, err = cli("db", "copy", sqlite, server)
    assert code == 0 and "copied 0 sessions" in err, err
    assert "were there already" in err
    assert admin_sql("SELECT count(*) FROM alliance.sessions", _db(server))[0][0] == count
    assert views(server) == views(sqlite)
    back = str(tmp_path / "back.sqlite")
    assert cli("db", "copy", server, back)[0] == 0
    assert views(back) == views(sqlite)


def test_copy_leaves_out_and_says_a_session_a_server_cannot_keep(database, tmp_path: Path) -> None:
    """A history saved before such ids were refused may hold a client id with a NUL byte,
    or one too long for the server's key index: copying it to a server failed whole
    ("cannot use the history"). Those sessions are now left out and said (exit 3); the rest
    is copied, and a second copy adds nothing."""
    import sqlite3

    sqlite = tmp_path / "old.sqlite"
    for client in ("K-1", "K-2", "K-3"):
        assert save_wai(str(sqlite), client, 1) == 0
    with sqlite3.connect(sqlite) as db:
        db.execute("UPDATE sessions SET client_id = 'K-' || char(0) || '3' WHERE client_id = 'K-3'")
        db.execute("UPDATE sessions SET client_id = ? WHERE client_id = 'K-2'", ("Z" * 3000,))
    db.close()
    server = database(None)
    for added, same in ((1, 0), (0, 1)):
        code, _, err = cli("db", "copy", str(sqlite), server)
        assert code == 3, err
        assert ("not copied: session 1 of client 'K-\\x003' (wai-sr, client): its client id "
                "holds a NUL byte: not text a history can keep") in err  # fmt: skip
        assert (f"not copied: session 1 of client '{'Z' * 64}…' (wai-sr, client): its client "
                "id is longer than 512 characters (3,000)") in err  # fmt: skip
        assert (f"copied {added} session{'' if added == 1 else 's'} ({same} "
                f"{'was' if same == 1 else 'were'} there already") in err  # fmt: skip
        assert ", 2 not copied); " in err
    assert admin_sql("SELECT count(*) FROM alliance.sessions", _db(server))[0][0] == 1


# -- passwords and messages -------------------------------------------------------------------
def test_a_password_in_the_url_is_refused_and_never_shown() -> None:
    code, out, err = cli("clients", "--db", "postgresql://lee:s3cret-pw@localhost/clinic")
    assert code == 2 and ".pgpass" in err
    assert "s3cret-pw" not in out + err
    code, out, err = cli("clients", "--db", "postgresql://lee@localhost/clinic?password=s3cret")
    assert code == 2 and "s3cret" not in out + err


def test_an_unreachable_server_is_one_line_exit_5() -> None:
    code, _, err = cli("clients", "--db", "postgresql://lee@/clinic?host=/nonexistent")
    assert code == 5
    assert err.startswith("error: postgresql://lee@/clinic?host=/nonexistent: cannot connect")
    assert len(err.strip().splitlines()) == 1


def test_setup_sql_run_by_hand_gives_the_same_history() -> None:
    code, sql, err = cli("db", "setup")
    assert code == 0 and "CREATE POLICY" in sql, err
    name = f"alliance_{uuid.uuid4().hex[:12]}"
    admin_sql(f"CREATE DATABASE {name}")
    try:
        admin_sql(sql, name)
        url = as_role(SERVER, "counselor_a", name)
        assert save_wai(url, "H-1", 1) == 0
        assert admin_sql("SELECT client_id, role FROM alliance.assignments", name) == [
            ("H-1", "counselor_a")
        ]
    finally:
        admin_sql(f"DROP DATABASE {name} WITH (FORCE)")


def test_a_counselor_cannot_set_up_a_history(tmp_path) -> None:
    name = f"alliance_{uuid.uuid4().hex[:12]}"
    admin_sql(f"CREATE DATABASE {name}")
    admin_sql(f"REVOKE CREATE ON DATABASE {name} FROM PUBLIC")
    try:
        code, _, err = cli("score", "srs", "9", "9", "9", "9", "--client", "X", "--session",
                           "1", "--save", "--db", as_role(SERVER, "counselor_a", name))  # fmt: skip
        assert code == 5 and "alliance db setup --apply" in err, err
        code, _, err = cli("clients", "--db", as_role(SERVER, "counselor_a", name))
        assert code == 5 and "no history here" in err
    finally:
        admin_sql(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_jobs_store_what_one_process_stores(database, tmp_path: Path, monkeypatch, jobs) -> None:
    """batch --save on a server, --jobs 2 (each worker writes COPY text the parent streams)
    or one process (its chunks written as COPY text a block at a time), stores what one
    process stores on SQLite: the same views, byte for byte; ids and counselors holding a
    tab or a backslash are stored as they are; a session already recorded with other
    answers sends its range down the row-by-row path, told as a conflict."""
    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")
    path = tmp_path / "export.csv"
    ids = ["J-1", "J\t2", "J\\3", "J;4", "J 5"]  # (no quotes: a quoted file is one process)
    lines = ["client_id,session,counselor," + ",".join(f"wai_{i}" for i in range(1, 13))]
    for n in range(600):
        client = ids[n % 5] + f"-{n % 40}"
        cells = [str((n * 7 + i) % 5 + 1) if (n + i) % 17 else "" for i in range(12)]
        counselor = "T" + "\\" * (n % 2) + str(n % 3)  # T0, T\1, T2, T\0, ...
        lines.append(f"{client},{n // 40 + 1},{counselor}," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    sqlite, server = str(tmp_path / "h.sqlite"), database(None)
    for db in (sqlite, server):
        # one session recorded before: the range holding it is stored row by row
        assert save_wai(db, "J-1-0", 1, list("114523145234")) == 0
        assert save_wai(db, "J-1-0", 2, list("554545545455")) == 0
        views(db)  # readings kept now: the batch must make them stale, every range's series
    runs = {}
    for db, n in ((sqlite, "1"), (server, jobs)):
        code, _, err = cli("batch", str(path), "-i", "wai-sr", "--save", "--db", db,
                           "--jobs", n, "-o", os.devnull)  # fmt: skip
        runs[db] = (code, [line for line in err.splitlines() if "history" in line])
    assert runs[sqlite][0] == runs[server][0] == 3  # the conflict
    assert len(runs[server][1]) == len(runs[sqlite][1])
    assert views(server) == views(sqlite)
    assert '"J\\\\3-2"' in views(server)["clients"]  # (JSON escapes the backslash)
    assert '"T\\\\1"' in views(server)["clients"]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_interrupted_batch_saves_nothing_on_the_server(database, tmp_path: Path, jobs) -> None:
    """SIGTERM while a batch is being stored (one process: its writer thread storing a chunk
    while the next is scored; or --jobs 2: the parent streaming a worker's rows) leaves
    nothing saved, says so, exits 130 without a traceback; the rerun stores every row, in
    the order of the file (ids follow the rows)."""
    db = database("counselor_a")
    src = tmp_path / "big.csv"
    rows = "".join(f"C-{i % 7000},{i // 7000 + 1}," + ",".join(["4"] * 12) + "\n"
                   for i in range(140_000))  # fmt: skip
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + rows)
    command = [sys.executable, "-m", "alliance_cli", "batch", str(src), "-i", "wai-sr",
               "--save", "--db", db, "--jobs", jobs, "-o", os.devnull]  # fmt: skip
    env = {**os.environ, "ALLIANCE_JOBS_MIN_BYTES": "1", "NO_COLOR": "1"}
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    name = urlsplit(db).path.lstrip("/")
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:  # until rows reach the server
        busy = admin_sql(
            f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND state = "
            "'active' AND (query LIKE 'COPY alliance_staging%' OR query LIKE 'INSERT INTO "
            "sessions%')"
        )[0][0]
        if busy:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"nothing from this batch was saved" in err and b"Traceback" not in err
    assert admin_sql("SELECT count(*) FROM alliance.sessions", dbname=name) == [(0,)]
    code, _, err_text = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", db,
                            "--jobs", jobs, "-o", os.devnull, "-q")  # fmt: skip
    assert code == 0, err_text
    stored = admin_sql("SELECT client_id, session FROM alliance.sessions ORDER BY id", name)
    assert stored == [(f"C-{i % 7000}", i // 7000 + 1) for i in range(140_000)]


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_refusal_in_a_later_chunk_saves_nothing_of_the_batch(database, tmp_path, jobs) -> None:
    """counselor_b's batch holds counselor_a's client in its third chunk: the refusal, met
    by the writer thread (one process) or the parent (--jobs 2) after earlier chunks were
    stored, stops the batch whole (exit 5, one line naming the client), nothing of it kept."""
    a, b = database("counselor_a"), database("counselor_b")
    assert save_wai(a, "X-1", 1) == 0
    src = tmp_path / "big.csv"
    clients = [f"B-{i}" if i != 45_000 else "X-1" for i in range(50_000)]
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n"
                   + "".join(f"{c},2," + ",".join(WAI) + "\n" for c in clients))  # fmt: skip
    env = {**os.environ, "ALLIANCE_JOBS_MIN_BYTES": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "alliance_cli", "batch", str(src), "-i", "wai-sr", "--save",
         "--db", b, "--jobs", jobs, "-o", os.devnull, "-q"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert done.returncode == 5, done.stderr
    assert "client X-1 is not assigned to you" in done.stderr and "Traceback" not in done.stderr
    name = _db(a)
    assert admin_sql("SELECT count(*) FROM alliance.sessions", name) == [(1,)]
    assert admin_sql("SELECT count(*) FROM alliance.assignments", name) == [(1,)]


# -- libpq's settings: .pgpass and PGSERVICE, with a role that must give a password ----------
PASSWORD_ROLE = os.environ.get("ALLIANCE_TEST_POSTGRES_PASSWORD_ROLE", "")


@pytest.fixture
def password_role(database, tmp_path: Path, monkeypatch) -> Iterator[tuple[str, str]]:
    """A counselor role the server asks a password of (tests/with-postgres.sh's pg_hba)."""
    if not PASSWORD_ROLE:
        if REQUIRED:
            pytest.fail("no password-checked role (run through tests/with-postgres.sh)")
        pytest.skip("the test server asks no role for a password (tests/with-postgres.sh does)")
    secret = f"pw-{uuid.uuid4().hex}"
    admin_sql(
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PASSWORD_ROLE}') "
        f"THEN CREATE ROLE {PASSWORD_ROLE} LOGIN IN ROLE alliance_counselor; END IF; END $$"
    )
    admin_sql(f"ALTER ROLE {PASSWORD_ROLE} PASSWORD '{secret}'")
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-such-pgpass"))
    yield database(PASSWORD_ROLE), secret


def test_pgpass_and_pgservice_give_the_password(password_role, tmp_path: Path, monkeypatch):
    url, secret = password_role
    # no password anywhere: exit 5, one line, and the server is named
    code, out, err = cli("clients", "--db", url)
    assert code == 5 and "password" in err and len(err.strip().splitlines()) == 1, err
    # ~/.pgpass (here PGPASSFILE, owner-only as libpq wants)
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"*:*:*:{PASSWORD_ROLE}:{secret}\n", encoding="utf-8")
    pgpass.chmod(0o600)
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert save_wai(url, "PW-1", 1) == 0
    code, out, err = cli("clients", "--db", url, "-f", "json")
    assert code == 0 and '"PW-1"' in out, err
    assert _clients_in_a_process("--db", url, "-f", "json") == ("0 False", out)  # libpq's own
    # a service file names the server, database and role: the URL names only the service
    parts = urlsplit(url)
    host = dict(p.split("=", 1) for p in parts.query.split("&"))["host"]
    services = tmp_path / "pg_service.conf"
    services.write_text(
        f"[clinic]\nhost={host}\ndbname={_db(url)}\nuser={PASSWORD_ROLE}\n", encoding="utf-8"
    )
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    code, out, err = cli("history", "PW-1", "--db", "postgresql://?service=clinic", "-f", "json")
    assert code == 0 and '"PW-1"' in out, err
    first, out = _clients_in_a_process("--db", "postgresql://?service=clinic", "-f", "json")
    assert first == "0 False" and '"PW-1"' in out
    # the password is never shown, and a password in the URL is refused
    code, out, err = cli("clients", "--db", url.replace("@", f":{secret}@", 1))
    assert code == 2 and secret not in out + err


def test_alliance_db_names_a_server_for_every_command(database, monkeypatch) -> None:
    """ALLIANCE_DB=postgresql://… is the history when no --db is given."""
    monkeypatch.setenv("ALLIANCE_DB", database("counselor_a"))
    code, _, err = cli("score", "srs", "9", "9", "9", "9", "--client", "E-1", "--session",
                       "next", "--save", "-q")  # fmt: skip
    assert code == 0, err
    assert '"E-1"' in cli("clients", "-f", "json")[1]
    assert cli("history", "E-1", "-f", "json")[0] == 0
    assert cli("forget", "E-1", "--yes", "-q")[0] == 0
    assert cli("history", "E-1")[0] == 2


def test_a_held_lock_is_waited_for_then_said(database, monkeypatch) -> None:
    """Another program holding the sessions (here an open ACCESS EXCLUSIVE lock) is waited
    for ALLIANCE_LOCK_WAIT seconds, as on SQLite, then exit 5 in one line."""
    url = database("counselor_a")
    assert save_wai(url, "L-1", 1) == 0
    monkeypatch.setenv("ALLIANCE_LOCK_WAIT", "1")
    with psycopg.connect(as_role(SERVER, dbname=_db(url))) as holder:
        holder.execute("LOCK TABLE alliance.sessions IN ACCESS EXCLUSIVE MODE")
        code, _, err = cli("score", "wai-sr", *WAI, "--client", "L-1", "--session", "2",
                           "--save", "--db", url)  # fmt: skip
        holder.rollback()
    assert code == 5 and "held the history too long (waited 1 s)" in err, err
    assert len(err.strip().splitlines()) == 1
    assert save_wai(url, "L-1", 2) == 0  # once it is let go, the save goes through


def test_assignments_are_listed_as_each_role_may_see_them(database) -> None:
    a, b, s = database("counselor_a"), database("counselor_b"), database(SUPERVISOR)
    assert save_wai(a, "A-1", 1) == 0
    assert save_wai(b, "B-1", 1) == 0
    everyone = json.loads(cli("db", "assignments", "--db", s, "-f", "json")[1])
    assert everyone == [
        {"client_id": "A-1", "role": "counselor_a"},
        {"client_id": "B-1", "role": "counselor_b"},
    ]
    own = json.loads(cli("db", "assignments", "--db", a, "-f", "json")[1])
    assert own == [{"client_id": "A-1", "role": "counselor_a"}]
    code, _, err = cli("db", "assignments", "--db", "history.sqlite")
    assert code == 2 and "PostgreSQL" in err


def test_a_client_a_supervisor_saved_is_given_not_taken(database) -> None:
    """A client first saved by a supervisor (an import) belongs to no counselor until
    assigned: a counselor's save is refused, then goes through once granted."""
    a, s = database("counselor_a"), database(SUPERVISOR)
    assert save_wai(s, "S-9", 1) == 0
    code, _, err = cli("score", "wai-sr", *WAI, "--client", "S-9", "--session", "2", "--save",
                       "--db", a)  # fmt: skip
    assert code == 5 and "saved by a supervisor" in err
    assert cli("history", "S-9", "--db", a)[0] == 2
    assert cli("db", "grant", "S-9", "counselor_a", "--db", s, "-q")[0] == 0
    assert save_wai(a, "S-9", 2) == 0


def test_a_batch_notes_sessions_dated_after_today_on_the_server(
    database, tmp_path: Path, monkeypatch
) -> None:
    """As on SQLite: batch --save names the sessions it saved dated after today (the server
    numbers its sessions by id, not rowid), and a counselor's caseload notes them."""
    monkeypatch.setenv("ALLIANCE_TODAY", "2026-12-04")
    export = tmp_path / "export.csv"
    rows = ["client_id,session,date," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"F-1,1,2026-11-01,{','.join(WAI)}", f"F-1,2,2027-11-02,{','.join(WAI)}"]
    export.write_text("\n".join(rows) + "\n", encoding="utf-8")
    db = database(COUNSELORS[0])
    code, _, err = cli("batch", str(export), "-i", "wai-sr", "--save", "--db", db, "-q",
                       "-o", os.devnull)  # fmt: skip
    assert code == 0, err
    assert "note: 1 saved session is dated after today (the latest: client F-1 session 2, " \
        "2027-11-02)" in err  # fmt: skip
    code, out, err = cli("clients", "-f", "json", "--db", db)
    (row,) = json.loads(out)
    assert row["days_since"] == -333 and row["concerns"][-1]["kind"] == "future_date"


# -- the kept caseload without psycopg --------------------------------------------------------
_SHOW = """
import contextlib, io, runpy, sys
sys.argv = ["alliance", *sys.argv[1:]]
out = io.StringIO()
try:
    with contextlib.redirect_stdout(out):
        runpy.run_module("alliance_cli", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print(code, "psycopg" in sys.modules)
print(out.getvalue(), end="")
"""


def _clients_in_a_process(*args: str, env: dict[str, str] | None = None) -> tuple[str, str]:
    """`clients ARGS` run by a new Python: (exit code and whether psycopg was imported, the
    output)."""
    done = subprocess.run(
        [sys.executable, "-c", _SHOW, "clients", *args], capture_output=True, text=True,
        env={**os.environ, "NO_COLOR": "1", **(env or {})}, check=False, cwd=ROOT,
    )  # fmt: skip
    first, _, out = done.stdout.partition("\n")
    return first, out


def test_a_current_kept_list_is_shown_without_psycopg_and_the_same(database) -> None:
    """The warm `clients` reads the kept list through libpq itself (store.libpq): the same
    bytes as the list made by psycopg's store, each role its own list; a list that is not
    current (after a save, or with a filter by instrument) is read through the store."""
    a, b = database("counselor_a"), database("counselor_b")
    for session in (1, 2, 3):
        save_wai(a, "Q-1", session)
        save_wai(b, "Q-2", session, ["1"] * 12)
    made = {role: _clients_in_a_process("--db", role, "-f", "json") for role in (a, b)}
    for role, other in ((a, '"Q-2"'), (b, '"Q-1"')):
        assert made[role][0] == "0 True"  # read and kept through the store
        assert _clients_in_a_process("--db", role, "-f", "json") == ("0 False", made[role][1])
        assert other not in made[role][1]
        table = _clients_in_a_process("--db", role)
        assert table[0] == "0 False" and other.strip('"') not in table[1]
    save_wai(a, "Q-1", 4, ["1"] * 12)
    first, out = _clients_in_a_process("--db", a, "-f", "json")
    assert first == "0 True" and '"drop"' in out
    assert _clients_in_a_process("--db", a, "-f", "json") == ("0 False", out)
    assert _clients_in_a_process("--db", a, "-i", "srs", "-f", "json")[0] == "0 True"


def test_with_no_libpq_to_use_the_store_shows_the_list(database, monkeypatch) -> None:
    """A libpq that cannot be loaded (or none found): `clients` opens the store, and shows
    the same list."""
    from alliance_cli.store import backend, libpq

    a = database("counselor_a")
    for session in (1, 2):
        save_wai(a, "N-1", session)
    code, out, err = cli("clients", "--db", a, "-f", "json")
    assert code == 0 and '"N-1"' in out, err
    assert backend.kept_on_server(a, lambda kept: kept.caseload_instruments()) == ["wai-sr"]
    monkeypatch.setattr(libpq, "_LIB", None)
    monkeypatch.setattr(libpq, "library_path", lambda: "/nonexistent/libpq.so.5")
    assert backend.kept_on_server(a, lambda kept: kept.caseload_instruments()) is None
    assert cli("clients", "--db", a, "-f", "json") == (0, out, err)


def test_libpq_decodes_each_type_it_reads_and_refuses_others(database) -> None:
    """store.libpq's results, type by type, against the server; anything it cannot read
    (another type, a failed statement, no connection) is a LinkError, never a wrong value."""
    from alliance_cli.store import libpq

    link = libpq.Link(database())
    try:
        row = link.rows(
            "SELECT true, false, '\\x00ff'::bytea, 9007199254740993::int8, -7::int4, "
            "3::int2, 0.1::float8, %s::text, 'ü'::varchar, NULL::text, current_user::name",
            ("tab\tand ü",),
        )
        assert row == [(True, False, b"\x00\xff", 9007199254740993, -7, 3, 0.1, "tab\tand ü",
                        "ü", None, urlsplit(SERVER).username)]  # fmt: skip
        assert link.rows("SELECT 1 WHERE false") == []
        assert link.rows("SET search_path TO alliance") == []
        for bad in ("SELECT 1.5::numeric", "SELECT * FROM no_such_table"):
            with pytest.raises(libpq.LinkError):
                link.rows(bad)
    finally:
        link.close()
    link.close()  # twice: nothing
    with pytest.raises(libpq.LinkError):
        libpq.Link(as_role(database(), "no_such_role"))
    assert libpq.numbered("a = %s AND b = %s") == "a = $1 AND b = $2"


def test_ctrl_c_while_a_server_never_answers_stops_at_once(tmp_path: Path) -> None:
    """A server that accepts the connection and then says nothing (a hung host): Ctrl-C
    stops `clients` at once, one line, exit 130 (libpq's own wait would hold it)."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True).start()
    try:
        proc = _alliance("clients", "--db", f"postgresql://lee@127.0.0.1:{port}/clinic"
                         "?sslmode=disable", env={"PGCONNECT_TIMEOUT": "0"})  # fmt: skip
        deadline = time.monotonic() + 20
        while not held and time.monotonic() < deadline:
            time.sleep(0.05)
        assert held, "alliance never connected"
        time.sleep(0.5)
        assert proc.poll() is None  # waiting for the server
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert proc.returncode == 130 and err.strip().splitlines() == ["interrupted"], err
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_a_newer_schema_is_said_not_shown_from_the_kept_list(database) -> None:
    """The kept list is read without the store only at this alliance's schema version: a
    history a newer alliance wrote is said (exit 5), never shown from what was kept."""
    a = database("counselor_a")
    save_wai(a, "V-1", 1)
    assert cli("clients", "--db", a, "-f", "json")[0] == 0  # the list kept
    assert _clients_in_a_process("--db", a, "-f", "json")[0] == "0 False"
    admin_sql("UPDATE alliance.meta SET value = '999' WHERE key = 'schema_version'", _db(a))
    code, out, err = cli("clients", "--db", a, "-f", "json")
    assert code == 5 and "newer alliance" in err and out == "", err


# -- the page's examples ----------------------------------------------------------------------
DOC = ROOT / "docs" / "clinic-server.md"
DOC_BASE = "/clinic?host=/tmp/pgdev"  # how the page names the server's database


def _doc_sessions() -> list[list[tuple[str, list[str]]]]:
    """Each shell block of docs/clinic-server.md (``$ `` lines and what they print; a block
    inside a list item is indented), in page order."""
    blocks: list[list[tuple[str, list[str]]]] = []
    inside, indent, current = False, 0, []
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            if inside and current:
                blocks.append(current)
            inside, indent, current = not inside, len(line) - len(line.lstrip()), []
        elif inside and line[indent:].startswith("$ "):
            current.append((line[indent + 2 :], []))
        elif inside and current:
            current[-1][1].append(line[indent:])
    return blocks


def test_the_clinic_server_page_s_examples_print_what_it_shows(tmp_path: Path) -> None:
    """docs/clinic-server.md's examples, run on the test server as a reader would (a
    100-column terminal; a failing command's status shown as ``exit N``, as the page does):
    set up a new database, the password refused, two counselors and a supervisor, then a
    file copied twice into another new database. The page's URLs name its dev cluster; the
    test's database and socket stand in for them, both ways."""
    from tests.test_readme import _ESCAPES, _env, _matches, _normal

    blocks = _doc_sessions()
    assert [len(b) for b in blocks] == [1, 1, 7, 2], "the page's examples moved: update this"
    setup, password, roles, copy = blocks
    host = dict(p.split("=", 1) for p in urlsplit(SERVER).query.split("&"))["host"]
    names = [f"alliance_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    for name in names:
        admin_sql(f"CREATE DATABASE {name}")
    env = _env(tmp_path)
    env.update(ALLIANCE_TODAY="2026-12-04", HOME=str(tmp_path))
    env.update(
        LEE=as_role(SERVER, COUNSELORS[0], names[0]),
        RIVERA=as_role(SERVER, COUNSELORS[1], names[0]),
        SUPERVISOR=as_role(SERVER, SUPERVISOR, names[0]),
        CLINIC=as_role(SERVER, None, names[1]),
    )
    history = str(tmp_path / "history.sqlite")  # the file the page copies
    saved = run("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                "--save", "--db", history, "-o", os.devnull, "-q")  # fmt: skip
    assert saved.exit_code == 3, saved.stderr  # (the export's two bad rows)
    problems = []
    try:
        for session, name in ((setup, names[0]), (password, names[0]), (roles, names[0]),
                              (copy, names[1])):  # fmt: skip
            here = f"/{name}?host={host}"
            for command, expected in session:
                line = f"stty cols 100 rows 50\n{command.replace(DOC_BASE, here)}\necho __status=$?"
                done = subprocess.run(
                    ["script", "-qec", line, "/dev/null"], cwd=tmp_path, env=env,
                    capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                )  # fmt: skip
                plain = _ESCAPES.sub("", done.stdout).replace("\r\n", "\n")
                text, _, tail = plain.rpartition("__status=")
                status = int(tail.split()[0])
                printed = [ln.rstrip().replace(here, DOC_BASE) for ln in text.splitlines()]
                printed += [f"exit {status}"] if status else []
                if not _matches(_normal(expected), _normal(printed)):
                    problems.append(f"$ {command}\n--- the page shows:\n" + "\n".join(expected)
                                    + "\n--- it prints:\n" + "\n".join(printed))  # fmt: skip
    finally:
        for name in names:
            admin_sql(f"DROP DATABASE {name} WITH (FORCE)")
    assert not problems, "\n\n".join(problems)
