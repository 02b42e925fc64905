"""The local session history: an SQLite file of scored sessions, and the views built on it.

The file lives in the user data directory (platformdirs), or at ``--db`` / ``ALLIANCE_DB``.
It is created owner-only (0600), runs in WAL mode, and is migrated by ``PRAGMA
user_version``. Each write is one transaction. Deleted records are overwritten
(``secure_delete``): these are clinical data.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import HistoryError, RejectedInput
from alliance_cli.store.base import (
    COPY_ROWS,
    SESSION_COLUMNS,
    BatchBase,
    Conflict,
    FastRows,
    Record,
    StoreBase,
    answers_text,
    answers_values,
    lock_wait,
)

__all__ = ["Conflict", "FastRows", "Record", "Store", "answers_text", "answers_values"]

ENV_DB = "ALLIANCE_DB"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry: add one.
# What the caseload triggers do (migrations 6 to 8 compose them from these):
# the series a new row belongs to is stale (created if new) ...
_MARK_NEW = """
        INSERT INTO caseload (client_id, instrument, rater)
            VALUES (NEW.client_id, NEW.instrument, NEW.rater)
            ON CONFLICT DO UPDATE SET version = version + 1, stamp = '';"""
# ... the series an old row belonged to is stale, and gone with its last session ...
_MARK_OLD = """
        UPDATE caseload SET version = version + 1, stamp = ''
            WHERE client_id = OLD.client_id AND instrument = OLD.instrument
            AND rater = OLD.rater;
        DELETE FROM caseload
            WHERE client_id = OLD.client_id AND instrument = OLD.instrument
            AND rater = OLD.rater AND NOT EXISTS (SELECT 1 FROM sessions
                WHERE client_id = OLD.client_id AND instrument = OLD.instrument
                AND rater = OLD.rater);"""
# ... and the whole list kept for `clients` is stale: the counter moves (the list itself,
# `rows` here until migration 10, is kept in caseload_kept since, by the counter it was made at)
_DROP_LIST = """
        UPDATE caseload_snapshot SET version = version + 1, rows = NULL WHERE id = 1;"""
# ... (from migration 10, the list is kept in caseload_kept, stale when the counter moved;
# deleting a session drops it, with whatever it said of the client)
_DROP_KEPT_LIST = """
        DELETE FROM caseload_kept;"""


def _trigger(name: str, event: str, *body: str) -> str:
    """A CREATE TRIGGER statement on sessions (without its closing ';')."""
    return f"CREATE TRIGGER {name} AFTER {event} ON sessions BEGIN{''.join(body)}\n    END"


_V6_COLUMNS = (
    "client_id, session, date, rater, instrument, definition_sha256, score, total_pomp, "
    "total_mean, total_sum, counselor, scale_ids, scale_pomps"
)
_V8_COLUMNS = (
    "client_id, instrument, rater, session, date, definition, answers, total_pomp, "
    "total_mean, total_sum, scale_pomps, counselor"
)
# The per-row trigger a batch replaces with one statement per series (BatchRecorder).
INSERT_TRIGGER = _trigger("caseload_stale_on_insert", "INSERT", _MARK_NEW, _DROP_LIST)

MIGRATIONS: list[str] = [
    # 1: sessions with their answers and full Score JSON
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        client_id TEXT NOT NULL,
        session INTEGER NOT NULL,
        date TEXT,
        rater TEXT NOT NULL,
        instrument TEXT NOT NULL,
        instrument_version TEXT NOT NULL,
        definition_sha256 TEXT NOT NULL,
        answers TEXT NOT NULL,
        score TEXT NOT NULL,
        UNIQUE (client_id, instrument, rater, session)
    );
    """,
    # 2: when each record was written, and the total kept in columns (covered by the index,
    #    so the caseload view never reads the Score JSON)
    """
    ALTER TABLE sessions ADD COLUMN recorded_at TEXT;
    ALTER TABLE sessions ADD COLUMN total_pomp REAL;
    ALTER TABLE sessions ADD COLUMN total_mean REAL;
    ALTER TABLE sessions ADD COLUMN total_sum REAL;
    UPDATE sessions SET total_pomp = json_extract(score, '$.scales.total.pomp'),
        total_mean = json_extract(score, '$.scales.total.mean'),
        total_sum = json_extract(score, '$.scales.total.sum');
    CREATE INDEX sessions_by_client ON sessions
        (client_id, instrument, rater, session, date, total_pomp, total_mean, total_sum);
    """,
    # 3: the flags alliance said when the session was saved (its own and the history's), kept
    #    as they were, so a later session can change the reading but never what was said.
    #    Records saved before this migration keep the flags their Score carried.
    """
    ALTER TABLE sessions ADD COLUMN said_flags TEXT;
    UPDATE sessions SET said_flags = json_extract(score, '$.flags');
    """,
    # 4: who the counselor was, for the caseload's --counselor filter (unknown before)
    """
    ALTER TABLE sessions ADD COLUMN counselor TEXT;
    """,
    # 5: every subscale's POMP kept in columns (ids "goal,task,bond", values "75,62.5,n"),
    #    and the counselor in the index, so the caseload reads concerns on every scale from
    #    the index alone, never the Score JSON
    """
    ALTER TABLE sessions ADD COLUMN scale_ids TEXT;
    ALTER TABLE sessions ADD COLUMN scale_pomps TEXT;
    UPDATE sessions SET
        scale_ids = (SELECT group_concat(key, ',') FROM json_each(score, '$.scales')
                     WHERE key != 'total'),
        scale_pomps = (SELECT group_concat(ifnull(json_extract(value, '$.pomp'), 'n'), ',')
                       FROM json_each(score, '$.scales') WHERE key != 'total');
    DROP INDEX sessions_by_client;
    CREATE INDEX sessions_by_client ON sessions
        (client_id, instrument, rater, session, date, total_pomp, total_mean, total_sum,
         counselor, scale_ids, scale_pomps);
    """,
    # 6: the caseload's reading of each series, kept until one of its sessions changes.
    #    The triggers mark a series stale (stamp '', version + 1) on every change to its
    #    sessions, whatever writes it; `clients` reads again only the stale ones, and keeps
    #    a new reading only if the version is still the one it read. A series with no
    #    session left leaves no row behind (forget leaves no trace of the client).
    """
    CREATE TABLE caseload (
        client_id TEXT NOT NULL,
        instrument TEXT NOT NULL,
        rater TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 0,
        stamp TEXT NOT NULL DEFAULT '',
        sessions INTEGER,
        last_session INTEGER,
        last_date TEXT,
        last_total_pomp REAL,
        trend TEXT,
        open_flags TEXT,
        counselor TEXT,
        PRIMARY KEY (client_id, instrument, rater)
    ) WITHOUT ROWID;
    INSERT INTO caseload (client_id, instrument, rater)
        SELECT DISTINCT client_id, instrument, rater FROM sessions;
    """
    + _trigger("caseload_stale_on_insert", "INSERT", _MARK_NEW)
    + ";\n    "
    + _trigger("caseload_stale_on_delete", "DELETE", _MARK_OLD)
    + ";\n    "
    + _trigger("caseload_stale_on_update", f"UPDATE OF {_V6_COLUMNS}", _MARK_OLD, _MARK_NEW)
    + ";\n",
    # 7: the whole caseload as `clients` last showed it (no filters), dropped by any change
    #    to any session: a clinic lists its caseload far more often than it saves
    """
    CREATE TABLE caseload_snapshot (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        stamp TEXT,
        rows TEXT
    );
    INSERT INTO caseload_snapshot (id, version) VALUES (1, 0);
    """
    + _trigger("snapshot_stale_on_insert", "INSERT", _DROP_LIST)
    + ";\n    "
    + _trigger("snapshot_stale_on_delete", "DELETE", _DROP_LIST)
    + ";\n    "
    + _trigger("snapshot_stale_on_update", f"UPDATE OF {_V6_COLUMNS}", _DROP_LIST)
    + ";\n",
    # 8: compact sessions (issue 14). The definition is kept once per hash (with its JSON,
    #    from which every Score is rebuilt exactly); a session keeps its answers as values
    #    in item order ("5,4,,3"), the numbers the caseload reads, and only what a rebuild
    #    cannot give: the issues of answers read as missing, flags said beyond the Score's
    #    own. One index, the series key (UNIQUE). A rowid table, not WITHOUT ROWID: sessions
    #    saved before keep their whole Score (in extra), as they were, and rows that large
    #    pack badly without a rowid (a 1.7 GB store grew to 2.8 GB in a trial).
    """
    CREATE TABLE definitions (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL UNIQUE,
        instrument TEXT NOT NULL,
        version TEXT NOT NULL,
        scale_ids TEXT,
        data TEXT
    );
    INSERT INTO definitions (sha256, instrument, version, scale_ids)
        SELECT definition_sha256, max(instrument), max(instrument_version), max(scale_ids)
        FROM sessions GROUP BY definition_sha256;
    CREATE TABLE sessions_compact (
        client_id TEXT NOT NULL,
        instrument TEXT NOT NULL,
        rater TEXT NOT NULL,
        session INTEGER NOT NULL,
        date TEXT,
        definition INTEGER NOT NULL,
        answers TEXT NOT NULL,
        recorded_at TEXT,
        total_pomp REAL,
        total_mean REAL,
        total_sum REAL,
        scale_pomps TEXT,
        counselor TEXT,
        said_flags TEXT,
        extra TEXT,
        UNIQUE (client_id, instrument, rater, session)
    );
    INSERT INTO sessions_compact SELECT s.client_id, s.instrument, s.rater, s.session, s.date,
        (SELECT d.id FROM definitions d WHERE d.sha256 = s.definition_sha256),
        ifnull((SELECT group_concat(ifnull(value, ''), ',') FROM json_each(s.answers)), ''),
        s.recorded_at, s.total_pomp, s.total_mean, s.total_sum, s.scale_pomps, s.counselor,
        s.said_flags, s.score
        FROM sessions s ORDER BY s.client_id, s.instrument, s.rater, s.session;
    DROP TABLE sessions;
    ALTER TABLE sessions_compact RENAME TO sessions;
    """
    + INSERT_TRIGGER
    + ";\n    "
    + _trigger("caseload_stale_on_delete", "DELETE", _MARK_OLD, _DROP_LIST)
    + ";\n    "
    + _trigger(
        "caseload_stale_on_update", f"UPDATE OF {_V8_COLUMNS}", _MARK_OLD, _MARK_NEW, _DROP_LIST
    )
    + ";\n"
    """
    UPDATE caseload SET version = version + 1, stamp = '';
    UPDATE caseload_snapshot SET version = version + 1, rows = NULL WHERE id = 1;
    """,
    # 9: a batch too large to read while saving leaves the reading of its clients to the
    #    next reader (clients, history, report), which keeps what it says at each of the
    #    batch's sessions then: the sessions after rowid ``since`` with nothing said yet
    """
    CREATE TABLE said_pending (since INTEGER NOT NULL);
    """,
    # 10: the whole caseload kept apart from the counter the triggers move (so a save no
    #     longer drops it): `clients` after a change reuses each client's row whose series'
    #     kept readings are the ones it was made from (each reading's random token, set when
    #     it is kept), and reads only the others. The list is kept compressed (zlib, level
    #     1: 12.6 MB of JSON for 10,000 clients is 0.7 MB, written in a tenth of the time).
    #     Deleting any session drops the kept list, so a forgotten client leaves no trace.
    """
    ALTER TABLE caseload ADD COLUMN token INTEGER;
    UPDATE caseload SET token = (random() >> 2) & 4611686018427387903;
    CREATE TABLE caseload_kept (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        stamp TEXT NOT NULL,
        rows BLOB NOT NULL
    );
    UPDATE caseload_snapshot SET rows = NULL, stamp = NULL;
    DROP TRIGGER caseload_stale_on_delete;
    """
    + _trigger("caseload_stale_on_delete", "DELETE", _MARK_OLD, _DROP_LIST, _DROP_KEPT_LIST)
    + ";\n",
]
SCHEMA_VERSION = len(MIGRATIONS)
COMPACT = 8  # the schema that copies every session into the compact table


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration, one at a time (a trigger's body keeps its ';')."""
    pending = ""
    for part in script.split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def fast_insert(into: str, constants: tuple[str, int], now: str) -> str:
    """The statement storing ``FastRows``' rows (10 values each) as whole session rows: the
    instrument, definition and time written in as literals, bound once, not per row."""
    instrument, definition = constants
    return (
        f"{into} ({SESSION_COLUMNS}) VALUES (?, {_literal(instrument)}, ?, ?, ?, "
        f"{int(definition)}, ?, {_literal(now)}, ?, ?, ?, ?, ?, NULL, NULL)"
    )


def spool_statements(constants: tuple[str, int], now: str) -> tuple[str, str, str]:
    """What a ``--jobs`` worker writes its rows with (an SQLite file of its own, whatever
    the history): the table (``rows``, shaped like ``sessions``, no index), and the inserts
    of ``FastRows``' rows and of whole rows."""
    return (
        f"CREATE TABLE rows ({SESSION_COLUMNS})",
        fast_insert("INSERT INTO rows", constants, now),
        f"INSERT INTO rows ({SESSION_COLUMNS}) VALUES ({', '.join('?' * 15)})",
    )


def _literal(text: str) -> str:
    """A text as an SQL string literal (quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def default_path() -> Path:
    """The database path: ALLIANCE_DB, else the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("alliance", appauthor=False)) / "history.sqlite"


def note_history(path: Path | None) -> Path:
    """The store's path (``None``: the default), remembered with its journal files as read
    by this run, so no output of the run may replace it."""
    from alliance_cli.io.files import note_read

    where = Path(path) if path else default_path()
    note_read(where, "the history")
    for suffix in ("-wal", "-shm", "-journal"):
        note_read(f"{where}{suffix}", "the history's journal")
    return where


def client_ids(path: Path) -> list[str]:
    """The client ids of a history, read-only and without migrating it (shell completion)."""
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=0.2)
    try:
        rows = db.execute("SELECT DISTINCT client_id FROM sessions ORDER BY client_id")
        return [str(r[0]) for r in rows]
    finally:
        db.close()


def open_store(
    path: Path | None = None,
    create: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Store:
    """Open (creating and migrating as needed) the history database.

    Read-only commands pass ``create=False``: a path that does not exist is an error that
    says where alliance looked, never a new empty store. ``on_wait`` is told, once, when
    another process holds the write lock and alliance waits for it.
    """
    where = Path(path) if path else default_path()
    note_history(where)
    lock_wait()  # a bad ALLIANCE_LOCK_WAIT is said at once, not when a wait begins
    if not create and not where.exists():
        raise HistoryError(
            f"{where}: no history here (nothing has been saved with --save, or the path is "
            "mistyped; --db or ALLIANCE_DB choose another)"
        )
    return Store(where, on_wait, writing=create)


class Store(StoreBase):
    """The SQLite session store."""

    db: sqlite3.Connection
    _error_types = (sqlite3.DatabaseError,)
    _passed_types = (sqlite3.IntegrityError,)  # a session already recorded: record() says

    def __init__(
        self, path: Path, on_wait: Callable[[str], None] | None = None, writing: bool = True
    ) -> None:
        self.path = path
        self.writing = writing  # False: a read command (errors say so)
        self.on_wait = on_wait
        self._waited = False
        self.log_busy = False  # forget could not empty the write-ahead log (a reader holds it)
        self._init_memos()
        if path.is_dir():
            raise HistoryError(f"{path}: is a directory; give the history's file name")
        if path.exists() and not path.is_file():  # (SQLite would say "disk I/O error")
            raise HistoryError(
                f"{path}: not a regular file (a device, a FIFO or a socket); a history is an "
                "SQLite file: give its path"
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                self._create()
            self.db = sqlite3.connect(path, isolation_level=None, timeout=0.5)
            self._set_wal()
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            error = self._error(exc)
            self._close_quietly()
            raise error from None
        except OSError as exc:
            self._close_quietly()
            raise HistoryError(f"{path}: {self._os_cause(exc)}") from None
        except BaseException:
            self._close_quietly()
            raise

    def _os_cause(self, exc: OSError) -> str:
        """What an OSError on the history means, in words."""
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "the disk is full; nothing was saved"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission denied (this user may not read or write it, or its folder)"
        if exc.errno == errno.EROFS:
            return "the file system is read-only (cannot save)"
        return f"cannot create the history ({exc.strerror or exc})"

    def _create(self) -> bool:
        """Make a new history whole, then put it in place: built under a temporary name
        (owner-only), migrated, and linked to its path only when complete. A full disk
        leaves nothing behind, and processes starting at once never see a half-made store
        (the first link wins; the others use it). True when this process's store is the one."""
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=".alliance-new-", suffix=".sqlite", dir=self.path.parent)
        os.close(fd)
        os.chmod(tmp, 0o600)
        made = False
        try:
            self.db = sqlite3.connect(tmp, isolation_level=None, timeout=0.5)
            try:
                self._set_wal()
                self._apply_migrations()
            finally:
                self.db.close()  # (the last connection: the log is folded in and removed)
            try:
                os.link(tmp, self.path)
                made = True
            except FileExistsError:
                pass  # another process put its store there first: that one is used
        finally:
            for leftover in (tmp, f"{tmp}-wal", f"{tmp}-shm"):
                with contextlib.suppress(OSError):
                    os.unlink(leftover)
        return made

    def _close_quietly(self) -> None:
        """Close what was opened, after a failure. (A new history is put in place only once
        complete, so a failure leaves no empty or half-made file: see ``_create``.)"""
        with contextlib.suppress(AttributeError, sqlite3.Error):
            self.db.close()

    def _error(self, exc: Exception) -> HistoryError:
        """The history error for an SQLite failure, naming the file and the cause."""
        text = str(exc)
        if "readonly" in text or "read-only" in text:
            return HistoryError(f"{self.path}: the history is read-only here (cannot save)")
        if "locked" in text or "busy" in text:
            return HistoryError(
                f"{self.path}: another program held the history too long "
                f"(waited {lock_wait():g} s); "
                "try again when it has finished"
            )
        if "full" in text or self._disk_full():
            if not self.writing:
                return HistoryError(
                    f"{self.path}: the disk is full, and SQLite needs a little free space "
                    "even to read the history; free some and try again"
                )
            return HistoryError(f"{self.path}: the disk is full; nothing was saved")
        if "not a database" in text or "malformed" in text:
            return HistoryError(
                f"{self.path}: not an alliance history (not an SQLite database, or a damaged "
                "one); check --db or ALLIANCE_DB"
            )
        if "unable to open" in text:
            if self.path.is_dir():
                return HistoryError(f"{self.path}: is a directory; give the history's file name")
            folder = self.path.parent
            if not os.access(self.path if self.path.exists() else folder, os.R_OK | os.W_OK):
                return HistoryError(
                    f"{self.path}: permission denied (this user may not read or write it, or "
                    "its folder)"
                )
        if "disk I/O error" in text:
            return HistoryError(
                f"{self.path}: the disk reported an error reading or writing the history "
                "(a failing disk, a network folder that went away, or the file changed by "
                "another program); nothing was saved"
            )
        return HistoryError(f"{self.path}: cannot use the history ({text})")

    def _disk_full(self) -> bool:
        """Whether the history's file system has no space left for this user."""
        try:
            info = os.statvfs(self.path.parent)
        except OSError:
            return False
        return info.f_bavail * info.f_frsize < 64 * 1024

    def _locked(self, run: Callable[[], Any]) -> Any:
        """Run a statement that takes a lock: say once that we wait, then retry until
        ALLIANCE_LOCK_WAIT (30 s) has passed.

        SQLite's own busy wait (0.5 s a try, from ``timeout``) covers the usual case; the
        retries with a short pause cover the ones it answers at once, such as two new
        connections both switching a fresh store to WAL, or a read lock that must be let go.
        """
        import random
        import time

        deadline: float | None = None
        while True:
            try:
                return run()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                now = time.monotonic()
                if deadline is None:
                    deadline = now + lock_wait()
                    if self.on_wait is not None and not self._waited:
                        self.on_wait(f"waiting for another alliance to finish with {self.path} …")
                    self._waited = True
                if now >= deadline:
                    raise
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")  # never hold a lock while waiting for one
                time.sleep(0.02 + random.random() * 0.08)

    def _set_wal(self) -> None:
        mode = self._locked(lambda: self.db.execute("PRAGMA journal_mode").fetchone()[0])
        if mode != "wal":
            self._locked(lambda: self.db.execute("PRAGMA journal_mode=WAL").fetchone())

    def _migrate(self) -> None:
        """Bring the schema up to date, one migration per transaction.

        The version is read again inside ``BEGIN IMMEDIATE``: with many processes opening a
        new history at once, only the first applies a migration, the others see it done. An
        up-to-date history takes no lock at all (so a read-only file can still be read).
        """
        start = self._locked(self.schema_version)
        if start == SCHEMA_VERSION:
            return
        if 0 < start < COMPACT and self.on_wait is not None and self._holds_sessions():
            self.on_wait(f"{self.path}: upgrading the history's format (once; a large one "
                         "takes a while) …")  # fmt: skip
        self._apply_migrations()
        if 0 < start < COMPACT:
            # the sessions were copied into the compact table: give the old pages back
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("VACUUM")

    def _holds_sessions(self) -> bool:
        """Whether the (older) history holds any session: only then is an upgrade worth a
        word (a new store, half made by another process starting at once, holds none)."""
        try:
            return bool(self.db.execute("SELECT EXISTS (SELECT 1 FROM sessions)").fetchone()[0])
        except sqlite3.Error:
            return False

    def _apply_migrations(self) -> None:
        for _ in range(SCHEMA_VERSION + 1):
            self._locked(lambda: self.db.execute("BEGIN IMMEDIATE"))
            try:
                version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise HistoryError(
                        f"{self.path}: written by a newer alliance (schema {version}, this one "
                        f"knows {SCHEMA_VERSION}); upgrade alliance"
                    )
                if version == SCHEMA_VERSION:
                    self.db.execute("COMMIT")
                    return
                for statement in _statements(MIGRATIONS[version]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {version + 1}")
                self.db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):  # (SQLite may have rolled back)
                    self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    @property
    def source_name(self) -> str:
        """The file name alone (no home folder in a report)."""
        return self.path.name

    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        return self.db.in_transaction

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # -- writing -------------------------------------------------------------------------
    def _definition(
        self, sha: str, instrument_id: str, version: str, scale_ids: Iterable[str]
    ) -> tuple[int, bool]:
        """(definitions id, whether its JSON is kept) for a definition, written the first
        time it is met (remembered until a rollback may have undone that)."""
        known = self._row_definitions.get(sha)
        if known is not None:
            return known
        row = self.db.execute(
            "SELECT id, data IS NOT NULL FROM definitions WHERE sha256 = ?", (sha,)
        ).fetchone()
        data = self._data.get(sha)
        if row is None:
            ids = ",".join(sid for sid in scale_ids if sid != TOTAL) or None
            text = None if data is None else json.dumps(data, ensure_ascii=False)
            self.db.execute(
                "INSERT OR IGNORE INTO definitions (sha256, instrument, version, scale_ids, "
                "data) VALUES (?, ?, ?, ?, ?)",
                (sha, instrument_id, version, ids, text),
            )
            row = self.db.execute(
                "SELECT id, data IS NOT NULL FROM definitions WHERE sha256 = ?", (sha,)
            ).fetchone()
        elif not row[1] and data is not None:
            self.db.execute(
                "UPDATE definitions SET data = ? WHERE id = ?",
                (json.dumps(data, ensure_ascii=False), row[0]),
            )
            row = (row[0], True)
        known = self._row_definitions[sha] = (int(row[0]), bool(row[1]))
        return known

    _INSERT = (
        "INSERT {verb} INTO sessions (client_id, instrument, rater, session, date, definition, "
        "answers, recorded_at, total_pomp, total_mean, total_sum, scale_pomps, counselor, "
        "said_flags, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query."""
        return self.db.execute(sql, args).fetchall()

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """One statement in a transaction of its own."""
        with self._transaction():
            self.db.execute(sql, args)

    def record(
        self, score: dict[str, Any], replace: bool = False, counselor: str | None = None
    ) -> bool:
        """Store one scored session (one transaction). The same session again with the same
        answers is nothing to do (False); with other answers it is refused, both shown,
        unless replace."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        sql = self._INSERT.format(verb="OR REPLACE" if replace else "")
        try:
            with self._transaction():  # the definition row, if new, in the same transaction
                row = self._row(score, now, counselor)
                self.db.execute(sql, row)
        except sqlite3.IntegrityError:
            stored = self._stored_answers(row)
            if stored == row[6]:
                return False
            conflict = Conflict(row[0], row[3], row[1], row[2], stored, row[6])
            raise RejectedInput([], message=f"{conflict} (use --replace to overwrite it)") from None
        return True

    def insert_rows(
        self, rows: list[tuple[Any, ...]], replace: bool = False, own_transaction: bool = True
    ) -> int:
        """Store rows built by ``_row`` or ``FastRows``; returns how many were duplicates
        (not stored)."""
        sql = self._INSERT.format(verb="OR REPLACE" if replace else "OR IGNORE")
        duplicates = 0
        with self._transaction() if own_transaction else contextlib.nullcontext():
            # the common case, no session already recorded: one statement for the chunk;
            # else undone, and the chunk written row by row to tell each duplicate apart
            if self.all_or_none(lambda: self.db.executemany(sql, rows).rowcount, len(rows)):
                return 0
            duplicates = self._one_at_a_time(sql, rows)
        return duplicates

    def insert_fast(
        self, rows: list[tuple[Any, ...]], constants: tuple[str, int], now: str, replace: bool
    ) -> int:
        """Store ``FastRows`` rows (inside the open transaction); returns how many were
        duplicates (not stored).

        The instrument, definition and time are written into the statement as literals, so
        each row binds 10 values, not 15. If any session is already recorded, the chunk is
        undone and stored by ``insert_rows``, which tells each duplicate apart.
        """
        instrument, definition = constants
        verb = "OR REPLACE" if replace else "OR IGNORE"
        sql = fast_insert(f"INSERT {verb} INTO sessions", constants, now)
        if self.all_or_none(lambda: self.db.executemany(sql, rows).rowcount, len(rows)):
            return 0
        full = [
            (c, instrument, rater, n, date, definition, answers, now, *numbers, None, None)
            for c, rater, n, date, answers, *numbers in rows
        ]
        return self.insert_rows(full, replace, own_transaction=False)

    def all_or_none(self, insert: Callable[[], int], count: int) -> bool:
        """Run an insert of ``count`` rows in a savepoint: kept if it stored every one,
        else undone (a session already recorded: the caller then tells each apart)."""
        self.db.execute("SAVEPOINT chunk")
        if insert() == count:
            self.db.execute("RELEASE chunk")
            return True
        self.db.execute("ROLLBACK TO chunk")
        self.db.execute("RELEASE chunk")
        return False

    def batch_recorder(self, replace: bool, chunk: int = 2000) -> BatchRecorder:
        """Collects a batch's scored rows and stores them in one transaction."""
        return BatchRecorder(self, replace, chunk)

    def forget(
        self, client_id: str, session: int | None = None, instrument: str | None = None
    ) -> int:
        """Delete a client's records: all, one session, or one instrument's (one transaction).

        Returns how many were deleted.

        ``secure_delete`` overwrites the freed pages; the checkpoint then copies the change
        into the database file and truncates the write-ahead log, so no copy of the deleted
        records stays in the -wal file (when another connection holds it open, the
        checkpoint waits for it, up to the lock wait).
        """
        sql, args = self._forget_sql(client_id, session, instrument)
        with self._transaction():
            cursor = self.db.execute(sql, args)
        busy = self._locked(lambda: self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
        self.log_busy = bool(busy and busy[0])
        return cursor.rowcount

    def begin(self) -> None:
        """Start a write transaction, waiting (visibly) for another writer to finish."""
        try:
            self._locked(lambda: self.db.execute("BEGIN IMMEDIATE"))
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from None

    # -- reading -------------------------------------------------------------------------
    def keep_batch_said(self, said: list[tuple[str, int]]) -> None:
        """Keep what was said at each session a batch added ((concerns JSON, rowid) each),
        only where nothing is kept yet: what was said is never rewritten."""
        with self._transaction():
            self.db.executemany(
                "UPDATE sessions SET said_flags = ? WHERE rowid = ? AND said_flags IS NULL", said
            )

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A read transaction: what is read inside it is read at one moment."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            self.rollback()

    def unsaid_since(self, since: int) -> list[tuple[Any, ...]]:
        """(rowid, client_id, instrument, rater, session) of each session after rowid
        ``since`` with nothing said kept yet."""
        with self.reading():
            return self.db.execute(
                "SELECT rowid, client_id, instrument, rater, session FROM sessions "
                "WHERE rowid > ? AND said_flags IS NULL",
                (since,),
            ).fetchall()

    def max_rowid(self) -> int:
        """The largest session rowid (0 for none): what a batch adds comes after it."""
        return int(self.db.execute("SELECT ifnull(max(rowid), 0) FROM sessions").fetchone()[0])

    def copy_rows(self) -> Iterator[tuple[Any, ...]]:
        """Every session, as stored, with its definition (``alliance db copy``)."""
        yield from self.db.execute(COPY_ROWS + " ORDER BY s.rowid")

    @contextlib.contextmanager
    def _cache_write(self) -> Iterator[None]:
        """A transaction writing what the caseload keeps: a cache, so never worth a wait or
        an error (a locked or read-only store keeps what it had: the failure is dropped), and
        its commit need not wait for the disk (in WAL mode the file stays whole; a power cut
        may lose only the cache's last write). Sessions keep the connection's setting."""
        try:
            before = int(self.db.execute("PRAGMA synchronous").fetchone()[0])
            self.db.execute("PRAGMA synchronous=NORMAL")
            try:
                self.db.execute("BEGIN IMMEDIATE")
                yield
                self.db.execute("COMMIT")
            finally:
                if self.db.in_transaction:  # (a failed write: rolled back before the setting)
                    self.rollback()
                self.db.execute(f"PRAGMA synchronous={before}")
        except sqlite3.Error:
            self.rollback()

    def snapshot(self) -> tuple[int, str | None, bytes | None, bool]:
        """(version, stamp, rows as UTF-8 bytes, fresh) of the kept caseload: rows None
        when none is kept; fresh when no session changed since it was made."""
        row = self.db.execute(
            "SELECT s.version, k.version, k.stamp, k.rows "
            "FROM caseload_snapshot s LEFT JOIN caseload_kept k ON k.id = 1 WHERE s.id = 1"
        ).fetchone()
        if not row:
            return (0, None, None, False)
        try:
            rows = None if row[3] is None else zlib.decompress(row[3])
        except (zlib.error, TypeError):  # not what keep_snapshot wrote: no list kept
            return (int(row[0]), None, None, False)
        return (int(row[0]), row[2], rows, row[1] == row[0])

    def keep_snapshot(self, version: int, stamp: str, rows: bytes) -> None:
        """Keep the caseload as computed at ``version``, unless a session changed since
        (a forgotten client's row must not come back). A cache: a locked or read-only store
        keeps what it had."""
        packed = zlib.compress(rows, 1)
        with self._cache_write():
            self.db.execute(
                "INSERT OR REPLACE INTO caseload_kept (id, version, stamp, rows) "
                "SELECT 1, ?, ?, ? WHERE (SELECT version FROM caseload_snapshot "
                "WHERE id = 1) = ?",
                (version, stamp, packed, version),
            )

    # the table is scanned in its key's order, and group_concat keeps the order it is given
    # (done, though not promised by SQLite's documentation): another order would only make
    # that client's row be put together again
    _MADE_FROM = (
        "SELECT client_id, group_concat(token), min(stamp IN ({marks})) FROM caseload "
        "GROUP BY client_id"
    )

    def keep_caseload(self, readings: list[tuple[Any, ...]], gone: list[tuple[Any, ...]]) -> None:
        """Keep new readings, (stamp, sessions, last_session, last_date, last_total_pomp,
        trend, open_flags, counselor, token, client_id, instrument, rater, version) each,
        and drop the series with no session left ((client_id, instrument, rater, version)
        each).

        Each only if its series has not changed since it was read (same version). A cache,
        so never worth a wait or an error: a locked or read-only store keeps what it had.
        """
        key = "client_id = ? AND instrument = ? AND rater = ? AND version = ?"
        with self._cache_write():
            self.db.executemany(
                "UPDATE caseload SET stamp = ?, sessions = ?, last_session = ?, "
                "last_date = ?, last_total_pomp = ?, trend = ?, open_flags = ?, "
                f"counselor = ?, token = ? WHERE {key}",
                readings,
            )
            self.db.executemany(f"DELETE FROM caseload WHERE {key}", gone)

    # the caseload index's columns (group_concat's lists in no promised order: the caller
    # sorts them by session)
    _CASELOAD_SQL = (
        "SELECT client_id, instrument, rater, group_concat(session, ','), "
        "group_concat(ifnull(total_pomp, 'n'), ','), max(date), max(counselor), "
        "min(definition), max(definition), "
        "group_concat(ifnull(scale_pomps, ''), ';'), group_concat(ifnull(date, ''), ','), "
        "group_concat(ifnull(counselor, ''), char(31)), group_concat(answers, ';') "
        "FROM sessions "
    )
    _BY_CLIENTS = "WHERE client_id IN (SELECT value FROM json_each(?)) "

    def _clients_argument(self, clients: list[str]) -> Any:
        """These clients as a JSON array (``json_each``)."""
        return json.dumps(clients)

    def total_series(self) -> list[tuple[Any, ...]]:
        """Per client, instrument and rater: sessions and total POMP, comma-joined ('n' for
        none; in no guaranteed order), read from the index alone (report sparklines)."""
        return self.db.execute(
            "SELECT client_id, instrument, rater, group_concat(session, ','), "
            "group_concat(ifnull(total_pomp, 'n'), ',') FROM sessions "
            "GROUP BY client_id, instrument, rater"
        ).fetchall()


class BatchRecorder(BatchBase):
    """Stores a batch's scores in one transaction: the whole batch is saved, or nothing.

    Rows are written in chunks as they are scored (memory stays flat), inside one
    transaction that ``finish`` commits. An interrupted run, a crash or ``--strict`` with a
    rejected row rolls back: a rerun then starts from a clean slate, never from a
    half-saved export.
    """

    def __init__(self, store: Store, replace: bool, chunk: int) -> None:
        super().__init__(store, replace, chunk)
        self.store: Store = store
        self.spooled: list[str] = []  # the --jobs workers' databases attached
        store.begin()  # closing the store without finish() rolls this back
        # Inside this transaction only (DDL is transactional in SQLite): no per-row trigger;
        # finish() marks each touched series stale once and puts the trigger back, before
        # the commit. A rollback, a crash or a kill leaves the trigger as it was.
        store.db.execute("DROP TRIGGER IF EXISTS caseload_stale_on_insert")
        # rows this batch stores get rowids above this one (a rowid table without
        # AUTOINCREMENT: a new row takes max + 1; a replaced row is a new row)
        found = store.db.execute("SELECT ifnull(max(rowid), 0) FROM sessions").fetchone()
        self.last_rowid = int(found[0])  # the series of rows above it are not marked yet

    def spool_statements(self) -> tuple[str, str, str]:
        """What a ``--jobs`` worker writes its rows with, for ``add_spooled``."""
        return spool_statements(self.fast_constants, self.now)

    def add_spooled(self, path: str) -> None:
        """Store, in their order, the rows a ``--jobs`` worker wrote to its own database
        file (a ``sessions``-shaped table, no index): one statement, in SQLite, not a
        value bound per row in Python. If any session is already recorded, the rows are
        undone and stored one at a time, so each duplicate is told as on one process."""
        self.flush()
        db = self.store.db
        name = f"spool{len(self.spooled)}"
        try:
            db.execute(f"ATTACH DATABASE ? AS {name}", (path,))  # detached after the commit
            self.spooled.append(name)
            (count,) = db.execute(f"SELECT count(*) FROM {name}.rows").fetchone()
            verb = "OR REPLACE" if self.replace else "OR IGNORE"
            sql = (
                f"INSERT {verb} INTO sessions ({SESSION_COLUMNS}) "
                f"SELECT {SESSION_COLUMNS} FROM {name}.rows ORDER BY rowid"
            )
            if self.store.all_or_none(lambda: db.execute(sql).rowcount, count):
                self.saved += count
                if self.on_stored is not None:
                    self.on_stored(self.saved)
            else:
                # a chunk at a time, each read whole before it is stored: a savepoint
                # rolled back while a read is open would abort that read
                page = f"SELECT rowid, {SESSION_COLUMNS} FROM {name}.rows WHERE rowid > ? "
                after = 0
                while rows := db.execute(
                    page + "ORDER BY rowid LIMIT ?", (after, self.chunk)
                ).fetchall():
                    after = rows[-1][0]
                    for row in rows:
                        self.add_row(tuple(row[1:]))
                self.flush()
            self._mark_series()  # now, while the workers still score later ranges
        except sqlite3.DatabaseError as exc:
            self.store.rollback()
            raise self.store._error(exc) from None

    def _store_queue(self, queue: list[tuple[Any, ...]]) -> int:
        """Write one queue (whole rows, or FastRows' rows); returns the duplicates."""
        try:
            if queue is self.pending:
                return self.store.insert_rows(queue, self.replace, own_transaction=False)
            return self.store.insert_fast(queue, self.fast_constants, self.now, self.replace)
        except sqlite3.DatabaseError as exc:
            self.store.rollback()
            raise self.store._error(exc) from None

    def _mark_series(self) -> None:
        """Mark stale the series of the rows stored since the last marking: found by rowid
        in the table, not kept in memory (a million new series would be hundreds of MB); a
        series met twice is marked twice, which costs less than grouping. Inside the batch's
        transaction, like the rows."""
        db = self.store.db
        db.execute(
            "INSERT INTO caseload (client_id, instrument, rater) "
            "SELECT client_id, instrument, rater FROM sessions WHERE rowid > ? "
            "ON CONFLICT DO UPDATE SET version = version + 1, stamp = ''",
            (self.last_rowid,),
        )
        self.last_rowid = int(
            db.execute("SELECT ifnull(max(rowid), 0) FROM sessions").fetchone()[0]
        )

    def finish(self, keep: bool = True) -> None:
        """Write the last chunk, then commit (keep) or roll back the whole batch."""
        self.flush()
        if keep:
            try:
                self._mark_series()
                self.store.db.execute(_DROP_LIST)
                self.store.db.execute(INSERT_TRIGGER)
            except sqlite3.DatabaseError as exc:
                self.store.rollback()
                raise self.store._error(exc) from None
            self.committing = True
            try:
                self.store.commit()
            except BaseException:
                self.committing = not self.store.db.in_transaction  # committed, then stopped
                raise
        else:
            self.store.rollback()
            self.saved = self.duplicates = self.same = 0
            self.conflicts.clear()
        self.done = True
        for name in self.spooled:  # (a database cannot be detached inside a transaction)
            with contextlib.suppress(sqlite3.Error):
                self.store.db.execute(f"DETACH DATABASE {name}")
