"""What every history back end shares: the stored row of a Score, the Score rebuilt from a
stored row, the records and conflicts the views read, and the rows the batch fast path
stores. ``store.sqlite`` (one file, one counselor) and ``store.postgres`` (a clinic's
server) implement the rest of one interface, ``HistoryStore``."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import UsageProblem
from alliance_cli.core.memo import Remembered


def answers_text(answers: dict[str, Any] | list[Any]) -> str:
    """Answer values in item order as text: ``5,4,,3.5`` (blank: missing)."""
    values = answers.values() if isinstance(answers, dict) else answers
    return ",".join("" if v is None else number_text(v) for v in values)


def answers_values(text: str) -> list[float | None]:
    """The values ``answers_text`` wrote, in item order."""
    return [None if t == "" else float(t) for t in text.split(",")] if text else []


def _remembered(function: Callable[[str], Any]) -> Remembered[str, Any]:
    """A cell text's (or score text's) value, remembered for up to 100,000 texts."""
    return Remembered(function, 100_000)


# every session as stored, with its definition (``alliance db copy``; both back ends)
COPY_ROWS = (
    "SELECT d.sha256, d.instrument, d.version, d.scale_ids, d.data, s.client_id, "
    "s.instrument, s.rater, s.session, s.date, s.answers, s.recorded_at, s.total_pomp, "
    "s.total_mean, s.total_sum, s.scale_pomps, s.counselor, s.said_flags, s.extra "
    "FROM sessions s JOIN definitions d ON d.id = s.definition"
)
SESSION_COLUMNS = (
    "client_id, instrument, rater, session, date, definition, answers, recorded_at, "
    "total_pomp, total_mean, total_sum, scale_pomps, counselor, said_flags, extra"
)


def number_text(value: Any) -> str:
    """A number as the store writes it: ``4``, ``3.5``."""
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e15 else repr(number)


def _subscale_columns(scales: dict[str, Any]) -> tuple[str | None, str | None]:
    """The subscale ids and POMP values as the caseload index keeps them ('n': no value)."""
    ids = [sid for sid in scales if sid != TOTAL]
    if not ids:
        return None, None
    pomps = (scales[sid]["pomp"] for sid in ids)
    return ",".join(ids), ",".join("n" if p is None else repr(float(p)) for p in pomps)


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
    said_flags: list[dict[str, Any]] = field(default_factory=list)  # as said when saved
    answers: str = ""  # the answer values in item order ("5,4,,3")
    counselor: str | None = None


# Seconds to wait for another alliance's write before giving up (exit 5),
# on either back end;
# ALLIANCE_LOCK_WAIT changes it (tests use a short wait).
LOCK_WAIT = 30.0


def lock_wait() -> float:
    """Seconds to wait for another alliance's write: ALLIANCE_LOCK_WAIT, else 30."""
    from alliance_cli.io.environment import number

    return number("ALLIANCE_LOCK_WAIT", LOCK_WAIT, "the seconds to wait for the history")


def has_password(url: str) -> bool:
    """Whether a server URL carries a password (``user:secret@`` or ``password=``)."""
    parts = urlsplit(url)
    if parts.password is not None:
        return True
    return any(k.lower() == "password" for k, _ in parse_qsl(parts.query))


def shown(where: Path | str) -> str:
    """A history's location as messages say it: a server URL without any password; a
    file's path as it is."""
    if not isinstance(where, str) or not where.lower().startswith(("postgresql://", "postgres://")):
        return str(where)
    parts = urlsplit(where)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = "&".join(
        "password=…" if pair.split("=", 1)[0].lower() == "password" else pair
        for pair in parts.query.split("&")
        if pair
    )
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


class HistoryStore(Protocol):
    """The one interface the views, the caseload reading and the commands use, whatever
    holds the history: an SQLite file (``store.sqlite``) or a clinic's PostgreSQL server
    (``store.postgres``)."""

    path: Any  # where the history is, as said in messages (a server's URL has no password)
    writing: bool
    log_busy: bool
    keeps_any_id: bool  # False: a client id ``contract.stored_id_problem`` names is not kept

    @property
    def source_name(self) -> str:
        """The history's name for a report (a file name, or a server's database)."""

    def sees_everything(self) -> bool:
        """Whether this login sees the whole history (False: a counselor on a server, who
        sees only the clients assigned to them)."""

    def close(self) -> None:
        """Close the connection."""

    def __enter__(self) -> HistoryStore: ...

    def __exit__(self, *_: object) -> None: ...

    def schema_version(self) -> int:
        """The schema version of the open history."""

    def in_transaction(self) -> bool:
        """Whether a transaction is open."""

    def rollback(self) -> None:
        """Undo the open transaction, if there is one."""

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """A read transaction: what is read inside it is read at one moment."""

    def define(self, data: dict[str, Any], sha256: str) -> None:
        """Make a definition's JSON known before its scores are saved."""

    def record(
        self, score: dict[str, Any], replace: bool = False, counselor: str | None = None
    ) -> bool:
        """Store one scored session (False: recorded already with these answers)."""

    def batch_recorder(self, replace: bool, chunk: int = 2000) -> Any:
        """Collects a batch's scored rows and stores them in one transaction."""

    def forget(
        self, client_id: str, session: int | None = None, instrument: str | None = None
    ) -> int:
        """Delete a client's records (all, one session, one instrument's); how many."""

    def keep_said_flags(self, score: dict[str, Any], concerns: list[dict[str, Any]]) -> None:
        """Keep with a saved session the concerns said when it was saved."""

    def keep_batch_said(self, said: list[tuple[str, int]]) -> None:
        """Keep what was said at each session a batch added, where nothing is kept yet."""

    def dated_after(self, since: int, day: str) -> tuple[int, tuple[Any, ...] | None]:
        """How many sessions saved after ``since`` are dated after ``day``, and the
        latest-dated: (client_id, session, date)."""

    def leave_said_pending(self, since: int) -> None:
        """Leave the reading of a batch saved after row ``since`` to the next reader."""

    def said_pending(self) -> int | None:
        """The earliest row after which a batch's sessions wait for their reading."""

    def said_kept(self, since: int) -> None:
        """What was said at every session after ``since`` is kept: nothing waits."""

    def max_rowid(self) -> int:
        """The largest session row number (0 for none)."""

    def unsaid_since(self, since: int) -> list[tuple[Any, ...]]:
        """(row, client_id, instrument, rater, session) of sessions after ``since`` with
        nothing said kept yet."""

    def client_ids(self) -> list[str]:
        """Every client id this history shows."""

    def records(
        self, client_id: str, instrument: str | None = None, light: bool = False
    ) -> list[Record]:
        """A client's records, by instrument, rater and session."""

    def answers_of(
        self, instrument: str, session: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every stored answer set of an instrument: (client id, answers by item id)."""

    def snapshot(self) -> tuple[int, str | None, bytes | None, bool]:
        """(version, stamp, rows, fresh) of the kept caseload, the rows as UTF-8 bytes (read
        as they are kept, never decoded to text: see ``views.Concerns``); rows None when none
        is kept, fresh when no session changed since it was made."""

    def keep_snapshot(self, version: int, stamp: str, rows: bytes) -> None:
        """Keep the caseload as computed at ``version``, unless a session changed since."""

    def caseload_instruments(self) -> list[str]:
        """The instruments of every series the caseload keeps a reading for."""

    def series_last_seen(self) -> list[tuple[Any, ...]]:
        """Per kept series: (client_id, instrument, rater, last_date, last_session,
        counselor)."""

    def kept_caseload(
        self, clients: set[str] | None = None, instrument: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The caseload's kept reading of every series (or of these clients' series, or of
        one instrument's)."""

    def caseload_made_from(self, stamps: Sequence[str]) -> list[tuple[str, str, bool]]:
        """Per client: what a row made from its kept readings now would be made from
        (``views.made_from``), and whether all of them are current (stamps in ``stamps``)."""

    def keep_caseload(self, readings: list[tuple[Any, ...]], gone: list[tuple[Any, ...]]) -> None:
        """Keep new readings of series, and drop the series with no session left."""

    def caseload_rows(self, only: set[tuple[str, str, str]] | None = None) -> list[tuple[Any, ...]]:
        """Per client, instrument and rater: what the caseload reading reads."""

    def series_keys(self, client_id: str) -> list[tuple[str, str, str]]:
        """(client_id, instrument, rater) of each series of one client."""

    def total_series(self) -> list[tuple[Any, ...]]:
        """Per series: sessions and total POMP, comma-joined (report sparklines)."""

    def subscale_rows(self, client_id: str, instrument: str, rater: str) -> list[tuple[Any, ...]]:
        """(subscale ids, subscale POMPs) of one series' sessions, in session order."""

    def raw_totals(self, client_id: str, instrument: str, rater: str) -> list[tuple[Any, ...]]:
        """(session, total POMP, total mean, total sum) of one series, in session order."""

    def copy_rows(self) -> Iterator[tuple[Any, ...]]:
        """Every session as stored, with its definition (``COPY_ROWS``' columns)."""

    def count_sessions(self) -> int:
        """How many sessions this history holds (that this role may see)."""


SAID_PENDING = "SELECT min(since) FROM said_pending"  # (``StoreBase.said_pending``)


def pending_since(rows: Sequence[Sequence[Any]]) -> int | None:
    """``said_pending``'s answer from ``SAID_PENDING``'s rows."""
    return None if not rows or rows[0][0] is None else int(rows[0][0])


CASELOAD_INSTRUMENTS = "SELECT DISTINCT instrument FROM caseload"


class StoreBase:
    """The parts of a store that do not depend on the database: a Score's stored row, and a
    Score rebuilt from one (``_definition`` and ``_definition_data`` are the back end's)."""

    db: Any  # the back end's connection
    keeps_any_id = True  # an SQLite file keeps any text (a server's history: False)

    def sees_everything(self) -> bool:
        """Whether this login sees the whole history (an SQLite file: always)."""
        return True

    def _init_memos(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}  # definition JSON by hash (define)
        self._row_definitions: dict[str, tuple[int, bool]] = {}  # within one write
        self._scorers: dict[int, Any] = {}  # rebuilt Scorers by definition id
        # Scores (full, or light) by answers, by definition id
        self._scored: dict[tuple[int, bool], dict[str, dict[str, Any]]] = {}

    def _definition(
        self, sha: str, instrument_id: str, version: str, scale_ids: Sequence[str]
    ) -> tuple[int, bool]:
        raise NotImplementedError

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query, written with ``?`` placeholders (the SQL both back ends
        share: each runs it its own way)."""
        raise NotImplementedError

    # the back end's database errors, said by ``_error``; and those its callers handle
    # themselves (a session already recorded), passed on as they are
    _error_types: tuple[type[Exception], ...] = ()
    _passed_types: tuple[type[Exception], ...] = ()
    # told of each session not stored because it is already recorded: (the row it would
    # have written, the stored answers); a batch recorder sorts same from conflicting
    on_duplicate: Callable[[tuple[Any, ...], str], None] | None = None

    def _error(self, exc: Exception) -> Exception:
        raise NotImplementedError

    def in_transaction(self) -> bool:
        """Whether a transaction is open."""
        raise NotImplementedError

    def begin(self) -> None:
        """Start a write transaction."""
        raise NotImplementedError

    def commit(self) -> None:
        """Commit the open transaction (the failure said, naming the history)."""
        try:
            self.db.execute("COMMIT")
        except self._error_types as exc:
            self.rollback()
            raise self._error(exc) from None

    def rollback(self) -> None:
        """Undo the open transaction, if there is one."""
        self._row_definitions.clear()  # a definition written in it is gone too
        if self.in_transaction():
            with contextlib.suppress(*self._error_types):  # (it may have ended already)
                self.db.execute("ROLLBACK")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction: committed, or rolled back on any failure."""
        self.begin()
        try:
            yield
        except self._passed_types:
            self.rollback()
            raise
        except self._error_types as exc:
            self.rollback()
            raise self._error(exc) from None
        except BaseException:
            self.rollback()
            raise
        self.commit()

    @staticmethod
    def _forget_sql(
        client_id: str, session: int | None, instrument: str | None
    ) -> tuple[str, list[object]]:
        """The DELETE of ``forget`` (``?`` placeholders) and its arguments: a client's
        sessions, or one session's, or one instrument's."""
        sql = "DELETE FROM sessions WHERE client_id = ?"
        args: list[object] = [client_id]
        if session is not None:
            sql, args = sql + " AND session = ?", [*args, session]
        if instrument is not None:
            sql, args = sql + " AND instrument = ?", [*args, instrument]
        return sql, args

    def _one_at_a_time(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> int:
        """Store rows one statement each (inside the open transaction), telling each one
        already recorded to ``on_duplicate``; returns how many were."""
        duplicates = 0
        for row in rows:
            if self.db.execute(sql, row).rowcount == 0:
                duplicates += 1
                if self.on_duplicate is not None:
                    self.on_duplicate(row, self._stored_answers(row))
        return duplicates

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """One statement (``?`` placeholders) in a transaction of its own."""
        raise NotImplementedError

    def keep_said_flags(self, score: dict[str, Any], concerns: list[dict[str, Any]]) -> None:
        """Keep with a saved session the concerns the reading said when it was saved (the
        Score's own flags are rebuilt with it: nothing to keep when there is no concern)."""
        who, inst = score["respondent"], score["instrument"]
        if not concerns:
            return
        self._write(
            "UPDATE sessions SET said_flags = ? WHERE client_id = ? AND instrument = ? "
            "AND rater = ? AND session = ?",
            (json.dumps(concerns, ensure_ascii=False), str(who["client_id"]), inst["id"],
             who.get("rater") or "client", int(who["session"])),
        )  # fmt: skip

    _ROW = "rowid"  # the column that numbers sessions in the order they were saved

    def dated_after(self, since: int, day: str) -> tuple[int, tuple[Any, ...] | None]:
        """How many sessions saved after row ``since`` are dated after ``day`` (most likely
        typos), and the latest-dated of them: (client_id, session, date)."""
        rows = self._rows(
            f"SELECT count(*) OVER (), client_id, session, date FROM sessions "
            f"WHERE {self._ROW} > ? AND date > ? ORDER BY date DESC, client_id, session LIMIT 1",
            (since, day),
        )
        return (int(rows[0][0]), tuple(rows[0][1:])) if rows else (0, None)

    def leave_said_pending(self, since: int) -> None:
        """A batch saved after row ``since`` was not read while saving: the next reader
        (on a server: this role's) reads it and keeps what it says at each session."""
        self._write("INSERT INTO said_pending (since) VALUES (?)", (since,))

    def said_pending(self) -> int | None:
        """The earliest row after which a batch's sessions wait for their reading."""
        return pending_since(self._rows(SAID_PENDING))

    def said_kept(self, since: int) -> None:
        """What was said at every session after ``since`` is kept: nothing waits."""
        self._write("DELETE FROM said_pending WHERE since >= ?", (since,))

    def _definition_data(self, definition: int) -> str:
        """A definition's JSON, by its id."""
        return str(self._rows("SELECT data FROM definitions WHERE id = ?", (definition,))[0][0])

    def _stored_answers(self, row: tuple[Any, ...]) -> str:
        """The answers stored for the session a row would write ('' for none)."""
        found = self._rows(
            "SELECT answers FROM sessions WHERE client_id = ? AND instrument = ? AND rater = ? "
            "AND session = ?",
            (row[0], row[1], row[2], row[3]),
        )
        return str(found[0][0]) if found else ""

    def count_sessions(self) -> int:
        """How many sessions the history holds."""
        return int(self._rows("SELECT count(*) FROM sessions")[0][0])

    def client_ids(self) -> list[str]:
        """Every client id in the store (for suggesting a close one after a typo)."""
        return [r[0] for r in self._rows("SELECT DISTINCT client_id FROM sessions")]

    def records(
        self, client_id: str, instrument: str | None = None, light: bool = False
    ) -> list[Record]:
        """A client's records, by instrument, rater and session, each with its full Score
        (rebuilt from the answers and the definition kept once, or as kept); with ``light``,
        only what the views read of it (``Scorer.view_dict``)."""
        sql = (
            "SELECT s.client_id, s.session, s.date, s.rater, s.instrument, d.version, "
            "d.sha256, s.answers, s.extra, s.said_flags, s.definition, NULL, s.counselor "
            "FROM sessions s JOIN definitions d ON d.id = s.definition WHERE s.client_id = ?"
        )
        args: list[Any] = [client_id]
        if instrument:
            sql += " AND s.instrument = ?"
            args.append(instrument)
        sql += " ORDER BY s.instrument, s.rater, s.session"
        out = []
        # a concern open over many sessions is kept as the same text at each: read once
        # (the lists are shared between records, and never changed)
        parsed: dict[str | None, list[dict[str, Any]]] = {None: []}
        for r in self._rows(sql, args):  # (text in byte order on both back ends)
            score = self._score(r[:12], light)
            kept = parsed.get(r[9])
            if kept is None:
                kept = parsed[r[9]] = json.loads(r[9])
            # kept: the concerns said at save time; before 0.3, every flag said (with codes)
            said = kept if any("code" in f for f in kept) else score["flags"] + kept
            out.append(Record(r[0], r[1], r[2], r[3], r[4], r[5], r[6], score, said, r[7], r[12]))
        return out

    def answers_of(
        self, instrument: str, session: int | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every stored answer set of an instrument (one session number only, when given):
        (client id, raw values by item id), each read in the item order of the definition it
        was saved with (``alliance reliability --from-history``)."""
        sql = (
            "SELECT s.answers, s.definition, s.extra, s.client_id FROM sessions s "
            "WHERE s.instrument = ?" + (" AND s.session = ?" if session is not None else "")
        )
        args: list[Any] = [instrument] + ([session] if session is not None else [])
        orders: dict[int, list[str]] = {}
        out = []
        for answers, definition, extra, client in self._rows(sql, args):
            kept = json.loads(extra) if extra else {}
            if "schema_version" in kept:  # saved whole (older stores): its answers as kept
                out.append((client, dict(kept.get("answers") or {})))
                continue
            if definition not in orders:
                data = json.loads(self._definition_data(definition))
                orders[definition] = [str(i["id"]) for i in data["items"]]
            values = answers_values(answers)
            out.append((client, dict(zip(orders[definition], values, strict=False))))
        return out

    def caseload_instruments(self) -> list[str]:
        """The instruments of every series the caseload keeps a reading for."""
        return [r[0] for r in self._rows(CASELOAD_INSTRUMENTS)]

    def series_last_seen(self) -> list[tuple[Any, ...]]:
        """Per kept series: (client_id, instrument, rater, last_date, last_session,
        counselor)."""
        return self._rows(
            "SELECT client_id, instrument, rater, last_date, last_session, counselor FROM caseload"
        )

    def kept_caseload(
        self, clients: set[str] | None = None, instrument: str | None = None
    ) -> list[tuple[Any, ...]]:
        """The caseload's kept reading of every series (or of these clients' series, or of
        one instrument's): (client_id, instrument, rater, version, stamp, sessions,
        last_session, last_date, last_total_pomp, trend, open_flags (JSON), counselor,
        token); a stale one has the stamp ''."""
        sql = (
            "SELECT client_id, instrument, rater, version, stamp, sessions, last_session, "
            "last_date, last_total_pomp, trend, open_flags, counselor, token FROM caseload"
        )
        if instrument is not None:
            return self._rows(f"{sql} WHERE instrument = ?", (instrument,))
        if clients is None:
            return self._rows(sql)
        found: list[tuple[Any, ...]] = []
        wanted = sorted(clients)
        for start in range(0, len(wanted), 500):  # (bound parameters: a few hundred a query)
            part = wanted[start : start + 500]
            found += self._rows(f"{sql} WHERE client_id IN ({', '.join('?' * len(part))})", part)
        return found

    # each back end's query of the caseload index (up to FROM sessions, ``?`` placeholders),
    # and its WHERE for "these clients" with the one argument that names them
    _CASELOAD_SQL = ""
    _BY_CLIENTS = ""

    def _clients_argument(self, clients: list[str]) -> Any:
        """The argument of ``_BY_CLIENTS`` naming these clients."""
        raise NotImplementedError

    def caseload_rows(self, only: set[tuple[str, str, str]] | None = None) -> list[tuple[Any, ...]]:
        """Per client, instrument and rater: sessions and total POMP (comma-joined, 'n' for
        none; the caller sorts by session), the last date, a counselor (the series'
        recorded one, if any), the subscale ids (the least and the greatest definition's:
        they differ only if the definition changed them) and the subscale POMPs (per session
        ',', sessions ';', in the session order of the first list). ``only``: just these
        series: most of them by one pass over every session, a few hundred or more by their
        clients through the index (1,000 of 10,000 clients: 0.14 s where the pass took
        1.24 s), fewer one by one."""
        sql, group = self._CASELOAD_SQL, "GROUP BY client_id, instrument, rater"
        if only is None or most_of(len(only), self._series_count):
            rows = self._rows(sql + group)
            rows = rows if only is None else [r for r in rows if tuple(r[:3]) in only]
        elif len(only) > 500:
            named = self._clients_argument(sorted({key[0] for key in only}))
            rows = [r for r in self._rows(sql + self._BY_CLIENTS + group, (named,))
                    if tuple(r[:3]) in only]  # fmt: skip
        else:
            where = "WHERE client_id = ? AND instrument = ? AND rater = ? "
            rows = [r for key in sorted(only) for r in self._rows(sql + where + group, key)]
        ids = dict(self._rows("SELECT id, coalesce(scale_ids, '') FROM definitions"))
        return [(*r[:7], ids.get(r[7], ""), ids.get(r[8], ""), *r[9:]) for r in rows]

    def _series_count(self) -> int:
        """How many series of the caseload this store (this role) sees."""
        return int(self._rows("SELECT count(*) FROM caseload")[0][0])

    _MADE_FROM = ""  # each back end's query for caseload_made_from (``?`` placeholders)

    def caseload_made_from(self, stamps: Sequence[str]) -> list[tuple[str, str, bool]]:
        """Per client: (client_id, what a row made from its kept readings now would be made
        from, whether all of them are current). ``views.made_from``'s string, put together
        by the database (the tokens in the order of (instrument, rater), comma-joined); the
        stamps, which are long, are compared there too."""
        marks = ", ".join("?" * len(stamps)) or "NULL"
        return [
            (r[0], r[1], bool(r[2]))
            for r in self._rows(self._MADE_FROM.format(marks=marks), list(stamps))
        ]

    def series_keys(self, client_id: str) -> list[tuple[str, str, str]]:
        """(client_id, instrument, rater) of each series of one client."""
        return [
            (r[0], r[1], r[2])
            for r in self._rows(
                "SELECT DISTINCT client_id, instrument, rater FROM sessions WHERE client_id = ?",
                (client_id,),
            )
        ]

    def subscale_rows(self, client_id: str, instrument: str, rater: str) -> list[tuple[Any, ...]]:
        """(subscale ids, subscale POMPs) of one series' sessions, in session order."""
        columns = (
            "(SELECT coalesce(scale_ids, '') FROM definitions d WHERE d.id = definition), "
            "coalesce(scale_pomps, '')"
        )
        return self._series_columns(columns, client_id, instrument, rater)

    def raw_totals(self, client_id: str, instrument: str, rater: str) -> list[tuple[Any, ...]]:
        """(session, total POMP, total mean, total sum) of one series, in session order."""
        columns = "session, total_pomp, total_mean, total_sum"
        return self._series_columns(columns, client_id, instrument, rater)

    def _series_columns(
        self, columns: str, client_id: str, instrument: str, rater: str
    ) -> list[tuple[Any, ...]]:
        """Columns of one series' sessions, in session order."""
        return self._rows(
            f"SELECT {columns} FROM sessions WHERE client_id = ? AND instrument = ? "
            "AND rater = ? ORDER BY session",
            (client_id, instrument, rater),
        )

    def define(self, data: dict[str, Any], sha256: str) -> None:
        """Make a definition's JSON known before its scores are saved: it is kept once, and
        every Score saved with it is rebuilt from it and the answers."""
        self._data[sha256] = data

    def _row(
        self, score: dict[str, Any], now: str, counselor: str | None = None
    ) -> tuple[Any, ...]:
        who = score["respondent"]
        if not who.get("client_id") or who.get("session") is None:
            raise UsageProblem(
                "saving needs a client id and a session number (--client, --session)"
            )
        inst = score["instrument"]
        definition, rebuildable = self._definition(
            inst["sha256"], inst["id"], inst["version"], score["scales"]
        )
        if rebuildable:
            issues = score.get("issues") or []
            extra = json.dumps({"issues": issues}, ensure_ascii=False) if issues else None
        else:  # no definition JSON to rebuild it from: the whole Score, as it is
            extra = json.dumps(score, ensure_ascii=False)
        scales = score["scales"]
        return (
            str(who["client_id"]),
            score["instrument"]["id"],
            who.get("rater") or "client",
            int(who["session"]),
            who.get("date"),
            definition,
            answers_text(score["answers"]),
            now,
            scales[TOTAL]["pomp"],
            scales[TOTAL]["mean"],
            scales[TOTAL]["sum"],
            _subscale_columns(scales)[1],
            counselor.strip() if counselor and counselor.strip() else None,
            None,  # said flags: the Score's own until keep_said_flags says more
            extra,
        )

    def _score(self, r: tuple[Any, ...], light: bool = False) -> dict[str, Any]:
        """The full Score of a stored session: as kept, or rebuilt exactly."""
        client_id, session, date, rater, _, _, sha, answers, extra, _, definition, data = r
        kept = json.loads(extra) if extra else {}
        if "schema_version" in kept:  # saved whole: before schema 8, or with no definition
            return dict(kept)
        scorer = self._scorers.get(definition)
        if scorer is None:
            from alliance_cli.core.compiled import CompiledInstrument
            from alliance_cli.core.scorer import Scorer

            if data is None:  # (records reads each definition once, here, not per row)
                data = self._definition_data(definition)
            scorer = Scorer(CompiledInstrument.from_data(json.loads(data)), sha)
            self._scorers[definition] = scorer
        who = {"client_id": client_id, "session": session, "date": date, "rater": rater}
        memo = self._scored.setdefault((definition, light), {})
        base = memo.get(answers)
        if base is None:  # answers met before are not scored again (a long series repeats)
            # as the texts they were written as: a scorer reads those from its tables
            cells = [t or None for t in answers.split(",")] if answers else []
            base = scorer.view_dict(cells) if light else scorer.score_dict(cells)
            if len(memo) < 100_000:
                memo[answers] = base
        score: dict[str, Any] = dict(base, respondent=who)
        if kept.get("issues"):
            score["issues"] = kept["issues"]
        return score


@dataclass(frozen=True)
class Conflict:
    """A session already recorded with other answers than the ones being saved."""

    client_id: str
    session: int
    instrument: str
    rater: str
    stored: str  # the answers as kept (answers_text), in item order
    new: str

    def __str__(self) -> str:
        def answers(text: str) -> str:
            return " ".join("." if v is None else f"{v:g}" for v in answers_values(text))

        old, new = answers_values(self.stored), answers_values(self.new)
        changed = [
            str(n) for n, pair in enumerate(itertools.zip_longest(old, new), 1)
            if pair[0] != pair[1]
        ]  # fmt: skip
        return (
            f"client {self.client_id} session {self.session} ({self.instrument}, {self.rater}) "
            f"is recorded with other answers (item {', '.join(changed) or '?'}): stored "
            f"{answers(self.stored)}; this file {answers(self.new)}"
        )


class BatchBase:
    """What a batch recorder does on any back end: queue a batch's rows (whole, or
    ``FastRows``' shorter ones) and write them in chunks, counting what was saved, what was
    recorded already with the same answers, and what conflicts. A back end writes a queue
    (``_store_queue``, or its own ``flush``: the server's hands chunks to a writer thread)
    and commits or rolls back the whole batch (``finish``)."""

    def __init__(self, store: Any, replace: bool, chunk: int) -> None:
        self.store, self.replace, self.chunk = store, replace, chunk
        self.pending: list[tuple[Any, ...]] = []
        self.pending_fast: list[tuple[Any, ...]] = []  # FastRows' rows (see add_fast)
        self.fast_constants: tuple[str, int] = ("", 0)  # their instrument and definition
        self.marked = (0, 0, 0, 0, 0)  # the counts (and last_rowid) at ``mark``
        self.now = datetime.now(UTC).isoformat(timespec="seconds")
        self.saved = 0
        self.on_stored: Callable[[int], None] | None = None  # hears of self.saved as it grows
        self.duplicates = 0  # already recorded: same answers (a re-import) or conflicting
        self.same = 0  # already recorded with these very answers: nothing to do
        self.conflicts: list[Conflict] = []  # already recorded with other answers
        self.done = False
        self.committing = False  # set just before the commit (see finished)
        self.last_rowid = 0
        store.on_duplicate = self._duplicate

    spools_copy_text = False  # a --jobs worker writes an SQLite file (True: COPY text)

    def _store_queue(self, queue: list[tuple[Any, ...]]) -> int:
        raise NotImplementedError

    def mark(self) -> None:
        """Remember this point of the batch (stored rows and counts); ``undo`` returns to
        it (``--jobs`` stores ranges as they are done, and takes them back if the file must
        then be scored on one process). A savepoint: the same SQL on both back ends."""
        self.flush()
        self.store.db.execute("SAVEPOINT jobs")
        self.marked = (self.saved, self.duplicates, self.same, len(self.conflicts), self.last_rowid)

    def undo(self) -> None:
        """Take back everything stored, marked and counted since ``mark``."""
        self.pending.clear()
        self.pending_fast.clear()
        self.store.db.execute("ROLLBACK TO jobs")
        self.store.db.execute("RELEASE jobs")
        self.saved, self.duplicates, self.same, kept, self.last_rowid = self.marked
        del self.conflicts[kept:]

    def finish(self, keep: bool = True) -> None:
        """Write the last chunk, then commit (keep) or roll back the whole batch."""
        raise NotImplementedError

    def _duplicate(self, row: tuple[Any, ...], stored: str) -> None:
        if stored == row[6]:  # the answers, as _row writes them
            self.same += 1
        else:
            self.conflicts.append(Conflict(row[0], row[3], row[1], row[2], stored, row[6]))

    def add(self, score: dict[str, Any], counselor: str | None = None) -> None:
        """Queue one score (and who the counselor was); write the chunk when it is full."""
        self.add_row(self.store._row(score, self.now, counselor))

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Queue one stored row (built by ``_row``)."""
        if self.pending_fast:
            self.flush()  # rows are stored in the order they came: duplicates are told so
        self.pending.append(row)
        if len(self.pending) >= self.chunk:
            self.flush()

    def add_fast(self, row: tuple[Any, ...]) -> None:
        """Queue one row from ``FastRows``: (client_id, rater, session, date, answers,
        total_pomp, total_mean, total_sum, scale_pomps, counselor); the instrument, its
        definition and the time are the batch's, bound once per chunk, not per row."""
        if self.pending:
            self.flush()
        self.pending_fast.append(row)
        if len(self.pending_fast) >= self.chunk:
            self.flush()

    def add_fast_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Queue many rows from ``FastRows`` at once (a ``--jobs`` worker's chunk)."""
        if self.pending:
            self.flush()
        self.pending_fast.extend(rows)
        if len(self.pending_fast) >= self.chunk:
            self.flush()

    def fast_rows(self, scorer: Any, ids: dict[str, int], to_iso: Any) -> FastRows | None:
        """A builder of stored rows from the fast path's output, or None when this
        instrument's rows must be saved from their full Score (bands, z, issues)."""
        return FastRows.build(self, scorer, ids, to_iso)

    def flush(self) -> None:
        """Write what is queued (inside the batch's transaction)."""
        for queue in (self.pending, self.pending_fast):
            if not queue:
                continue
            dups = self._store_queue(queue)
            self.duplicates += dups
            self.saved += len(queue) - dups
            queue.clear()
            if self.on_stored is not None:
                self.on_stored(self.saved)

    @property
    def finished(self) -> bool:
        """Whether the batch was committed or rolled back. Also true when an interruption
        (Ctrl-C, SIGTERM) came after the commit, before finish returned: the history then
        holds the batch, and must not be said to hold nothing."""
        return self.done or (self.committing and not self.store.in_transaction())


class FastRows:
    """Stored rows straight from the batch fast path: the row's cells and its score text.

    What the Score would give, read from the score cells the fast path wrote (the same
    numbers, formatted by the one formatter): the totals and subscale POMPs; the answers in
    the canonical text ``_row`` writes. Only for instruments with no band or z column (the
    score text then splits on commas) and the reject policy (no issues to keep); anything
    else is saved from its full Score.
    """

    def __init__(self) -> None:
        self.recorder: BatchBase
        self.scorer: Any
        self.to_iso: Any = None
        self.definition = 0
        self.inst_id = self.respondent = ""
        self.items: Callable[[Sequence[str]], Any] = itemgetter(0, 0)  # item cells (see bind)
        self.plain: frozenset[str] = frozenset()  # cell texts that are their canonical text
        self.canon: list[dict[str, str]] = []  # per item: any other cell text -> canonical
        self.item_columns: list[int] = []
        # remembered per cell text (see bind): dates, raters, counselors, and per score
        # text the stored numbers (a few thousand distinct texts for a typical form)
        self.memo_dates = self.memo_raters = self.memo_counselors = _remembered(str)
        self.memo_derived = _remembered(self._derive)
        self.answers: str | None = None  # of the row ``ready`` looked at last
        self.client = self.session = 0
        self.date = self.rater = self.counselor = -1  # columns, -1 when absent
        self.totals: Callable[[list[str]], tuple[str, str, str]] = itemgetter(0, 0, 0)
        self.subscales: Callable[[list[str]], Any] | None = None

    @classmethod
    def build(
        cls, recorder: BatchBase, scorer: Any, ids: dict[str, int], to_iso: Any
    ) -> FastRows | None:
        """The builder, or None when this instrument cannot use it."""
        from alliance_cli.io.csvout import scale_layout, score_columns

        layout = scale_layout(scorer)
        if scorer.invalid != "reject" or any(z or band for _, z, band in layout):
            return None
        if "client_id" not in ids or "session" not in ids:
            return None
        self = cls()
        self.recorder, self.scorer, self.to_iso = recorder, scorer, to_iso
        names = score_columns(scorer)[:-2]  # the fast path's text ends with the flags
        at = {n: i for i, n in enumerate(names)}
        subscales = [at[f"{sid}_pomp"] for sid, _, _ in layout if sid != TOTAL]
        if subscales:
            self.subscales = itemgetter(*subscales, *subscales[:1])  # always a tuple
        self.totals = itemgetter(at["total_pomp"], at["total_mean"], at["total_sum"])
        self.client, self.session = ids["client_id"], ids["session"]
        self.date, self.rater, self.counselor = (
            ids.get(k, -1) for k in ("date", "rater", "counselor")
        )
        inst = scorer.instrument
        # known before any row, so rows (also in forked workers) never ask the database
        self.definition, rebuildable = recorder.store._definition(
            scorer.sha256, inst.id, inst.version, [sid for sid, _, _ in layout]
        )
        if not rebuildable:
            return None
        self.inst_id, self.respondent = inst.id, inst.respondent
        self.canon = [{} for _ in inst.items]
        # a cell whose text is already what the Score's answers hold ("4", or blank) is
        # kept as it is; any other text ("04", " 4", "4.0") is parsed once and remembered
        self.plain = frozenset(
            {""}
            | {
                text
                for text, raw in scorer.raw_table.items()
                if text == number_text(raw) and text not in scorer.missing_codes
            }
        )
        recorder.fast_constants = (inst.id, self.definition)
        return self

    def bind(self, items: list[int]) -> None:
        """The item columns of the rows to come (their order is the instrument's)."""
        self.items = itemgetter(*items, *items[:1])  # always a tuple, even of one item
        self.item_columns = list(items)
        self.memo_dates = _remembered(self._iso)
        self.memo_raters = _remembered(lambda c: c.strip().lower() or self.respondent)
        self.memo_counselors = _remembered(lambda c: c.strip() or None)
        self.memo_derived = _remembered(self._derive)

    def _iso(self, cell: str) -> str | None:
        date = cell.strip()
        return self.to_iso(date) if date else None

    def rows_of(
        self, cols: list[tuple[str, ...]], scores: list[str]
    ) -> tuple[list[Any], list[int]]:
        """(the stored rows, []) of a block the fast path scored column by column (``cols``:
        its cells by column; ``scores``: each row's score text), or ([], the positions of
        the rows to store one at a time): a blank client id or session, an answer not in
        its canonical text (``ready`` and the full path decide those)."""
        clients = list(map(str.strip, cols[self.client]))
        sessions = list(map(str.strip, cols[self.session]))
        for column in (clients, sessions):
            if "" in column:
                return [], [i for i, cell in enumerate(column) if not cell]
        answers = [cols[c] for c in self.item_columns]
        for cells in answers:
            if not self.plain.issuperset(cells):
                return [], [i for i, cell in enumerate(cells) if cell not in self.plain]
        derived = list(map(self.memo_derived.__getitem__, scores))
        none = repeat(None)
        rows = list(
            zip(
                clients,
                map(self.memo_raters.__getitem__, cols[self.rater])
                if self.rater >= 0
                else repeat(self.respondent),
                map(int, sessions),
                map(self.memo_dates.__getitem__, cols[self.date]) if self.date >= 0 else none,
                map(",".join, zip(*answers, strict=True)),
                *(map(itemgetter(k), derived) for k in range(4)),
                map(self.memo_counselors.__getitem__, cols[self.counselor])
                if self.counselor >= 0
                else none,
                strict=False,  # (repeat() ends with the others)
            )
        )
        return rows, []

    def ready(self, row: list[str]) -> bool:
        """Whether this row can be stored from its cells (kept for ``__call__``); False when
        its Score holds issues to keep (an answer given as a missing code, "-99")."""
        cells = self.items(row)[:-1]
        answers = ",".join(cells) if self.plain.issuperset(cells) else self._answers(cells)
        self.answers = answers
        return answers is not None

    def __call__(self, row: list[str], got: str) -> None:
        """Queue the stored row of the row ``ready`` last said yes to (``got``: its score
        cells as text)."""
        self.recorder.add_fast(
            (
                row[self.client].strip(),
                self.memo_raters[row[self.rater]] if self.rater >= 0 else self.respondent,
                int(row[self.session]),
                self.memo_dates[row[self.date]] if self.date >= 0 else None,
                self.answers,
                *self.memo_derived[got],
                self.memo_counselors[row[self.counselor]] if self.counselor >= 0 else None,
            )
        )

    def _answers(self, cells: Sequence[str]) -> str | None:
        """The answers text of cells some of which are not canonical ("04", " 4"); None
        when one is a missing code (its Score notes it: saved from the Score)."""
        out = []
        for i, text in enumerate(cells):
            known = self.canon[i].get(text)
            if known is None:
                parsed, reason, _ = self.scorer.parse(i, text)
                if reason not in (None, "blank"):
                    return None
                known = self.canon[i][text] = "" if parsed is None else number_text(parsed)
            out.append(known)
        return ",".join(out)

    def _derive(self, got: str) -> tuple[Any, ...]:
        """(total POMP, mean, sum, subscale POMPs as ``_subscale_columns`` keeps them) of
        one score text."""
        cells = got.split(",")
        numbers: list[Any] = [float(c) if c else None for c in self.totals(cells)]
        if self.subscales is None:
            numbers.append(None)
        else:
            pomps = self.subscales(cells)[:-1]
            numbers.append(",".join(repr(float(c)) if c else "n" for c in pomps))
        return tuple(numbers)


def most_of(wanted: int, count: Callable[[], int]) -> bool:
    """Whether ``wanted`` series are most of the store's (``count()``, asked only when
    ``wanted`` is more than a few hundred): then one pass over every session is faster than
    finding theirs by the index."""
    return wanted > 500 and wanted * 3 > count() * 2
