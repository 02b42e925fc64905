"""The local session history: an SQLite file of scored sessions, and the views built on it.

The file lives in the user data directory (platformdirs), or at ``--db`` / ``ALLIANCE_DB``.
It is created owner-only (0600), runs in WAL mode, and is migrated by ``PRAGMA
user_version``. Each write is one transaction. Deleted records are overwritten
(``secure_delete``): these are clinical data.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import HistoryError, RejectedInput, UsageProblem

ENV_DB = "ALLIANCE_DB"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry: add one.
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
]
SCHEMA_VERSION = len(MIGRATIONS)


def default_path() -> Path:
    """The database path: ALLIANCE_DB, else the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("alliance", appauthor=False)) / "history.sqlite"


def open_store(path: Path | None = None) -> Store:
    """Open (creating and migrating as needed) the history database."""
    return Store(Path(path) if path else default_path())


@dataclass(frozen=True)
class Record:
    """One stored session."""

    client_id: str
    session: int
    date: str | None
    rater: str
    instrument: str
    version: str
    sha256: str
    score: dict[str, Any]


class Store:
    """The SQLite session store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                # Create the file owner-only before SQLite opens it.
                os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self.db = sqlite3.connect(path, isolation_level=None, timeout=10)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{path}: cannot open the history ({exc})") from None
        except OSError as exc:
            raise HistoryError(f"{path}: cannot create the history ({exc.strerror})") from None

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path}: written by a newer alliance (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade alliance"
            )
        for target in range(version, SCHEMA_VERSION):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[target].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {target + 1}")
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    # -- writing -------------------------------------------------------------------------
    @staticmethod
    def _row(score: dict[str, Any], now: str) -> tuple[Any, ...]:
        who = score["respondent"]
        if not who.get("client_id") or who.get("session") is None:
            raise UsageProblem(
                "saving needs a client id and a session number (--client, --session)"
            )
        inst = score["instrument"]
        return (
            str(who["client_id"]),
            int(who["session"]),
            who.get("date"),
            who.get("rater") or "client",
            inst["id"],
            inst["version"],
            inst["sha256"],
            json.dumps(score["answers"]),
            json.dumps(score, ensure_ascii=False),
            now,
            score["scales"][TOTAL]["pomp"],
            score["scales"][TOTAL]["mean"],
            score["scales"][TOTAL]["sum"],
        )

    _INSERT = (
        "INSERT {verb} INTO sessions (client_id, session, date, rater, instrument, "
        "instrument_version, definition_sha256, answers, score, recorded_at, total_pomp, "
        "total_mean, total_sum) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def record(self, score: dict[str, Any], replace: bool = False) -> None:
        """Store one scored session (one transaction); refuse a duplicate unless replace."""
        row = self._row(score, datetime.now(UTC).isoformat(timespec="seconds"))
        sql = self._INSERT.format(verb="OR REPLACE" if replace else "")
        try:
            with self._transaction():
                self.db.execute(sql, row)
        except sqlite3.IntegrityError:
            raise RejectedInput(
                [],
                message=f"client {row[0]} session {row[1]} ({row[4]}, {row[3]}) is already "
                "recorded (use --replace to overwrite it)",
            ) from None

    def record_many(
        self, scores: Iterable[dict[str, Any]], replace: bool = False, own_transaction: bool = True
    ) -> int:
        """Store scores in one transaction; returns how many were duplicates (not stored)."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        sql = self._INSERT.format(verb="OR REPLACE" if replace else "OR IGNORE")
        duplicates = 0
        with self._transaction() if own_transaction else contextlib.nullcontext():
            for score in scores:
                cursor = self.db.execute(sql, self._row(score, now))
                duplicates += cursor.rowcount == 0
        return duplicates

    def batch_recorder(
        self, replace: bool, chunk: int = 2000, all_or_nothing: bool = False
    ) -> BatchRecorder:
        """Collects scored rows and stores them in chunks, one transaction each (or, with
        all_or_nothing, in one transaction that ``finish`` commits or rolls back)."""
        return BatchRecorder(self, replace, chunk, all_or_nothing)

    def forget(self, client_id: str) -> int:
        """Delete every record of a client (one transaction); returns how many."""
        with self._transaction():
            cursor = self.db.execute("DELETE FROM sessions WHERE client_id = ?", (client_id,))
        return cursor.rowcount

    def _transaction(self) -> Any:
        store = self

        class _Tx:
            def __enter__(self) -> None:
                store.db.execute("BEGIN IMMEDIATE")

            def __exit__(self, kind: Any, *_: Any) -> None:
                store.db.execute("COMMIT" if kind is None else "ROLLBACK")

        return _Tx()

    # -- reading -------------------------------------------------------------------------
    def records(self, client_id: str, instrument: str | None = None) -> list[Record]:
        """A client's records, by instrument, rater and session."""
        sql = (
            "SELECT client_id, session, date, rater, instrument, instrument_version, "
            "definition_sha256, score FROM sessions WHERE client_id = ?"
        )
        args: list[Any] = [client_id]
        if instrument:
            sql += " AND instrument = ?"
            args.append(instrument)
        sql += " ORDER BY instrument, rater, session"
        return [
            Record(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]))
            for r in self.db.execute(sql, args)
        ]

    def caseload_rows(self) -> list[tuple[Any, ...]]:
        """Per client, instrument and rater: sessions and total POMP (comma-joined, 'n' for
        none; in no guaranteed order: the caller sorts by session), and the last date."""
        sql = (
            "SELECT client_id, instrument, rater, group_concat(session, ','), "
            "group_concat(ifnull(total_pomp, 'n'), ','), max(date) FROM sessions "
            "GROUP BY client_id, instrument, rater"
        )
        return self.db.execute(sql).fetchall()

    def raw_totals(self, client_id: str, instrument: str, rater: str) -> list[tuple[Any, ...]]:
        """(session, total POMP, total mean, total sum) of one series, in session order."""
        return self.db.execute(
            "SELECT session, total_pomp, total_mean, total_sum FROM sessions "
            "WHERE client_id = ? AND instrument = ? AND rater = ? ORDER BY session",
            (client_id, instrument, rater),
        ).fetchall()


class BatchRecorder:
    """Stores batch scores in chunks; counts what was saved and what was already there."""

    def __init__(self, store: Store, replace: bool, chunk: int, all_or_nothing: bool) -> None:
        self.store, self.replace, self.chunk = store, replace, chunk
        self.all_or_nothing = all_or_nothing
        self.pending: list[dict[str, Any]] = []
        self.saved = 0
        self.duplicates = 0
        if all_or_nothing:  # closing the store without finish() rolls this back
            store.db.execute("BEGIN IMMEDIATE")

    def add(self, score: dict[str, Any]) -> None:
        """Queue one score; write the chunk when it is full."""
        self.pending.append(score)
        if len(self.pending) >= self.chunk:
            self.flush()

    def flush(self) -> None:
        """Write what is queued, in one transaction."""
        if self.pending:
            dups = self.store.record_many(
                self.pending, self.replace, own_transaction=not self.all_or_nothing
            )
            self.duplicates += dups
            self.saved += len(self.pending) - dups
            self.pending.clear()

    def finish(self, keep: bool = True) -> None:
        """Write the last chunk; with all_or_nothing, commit (keep) or roll back."""
        self.flush()
        if self.all_or_nothing:
            self.store.db.execute("COMMIT" if keep else "ROLLBACK")
            if not keep:
                self.saved = self.duplicates = 0
