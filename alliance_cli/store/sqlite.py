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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alliance_cli.core import change
from alliance_cli.core.errors import AllianceError, HistoryError, RejectedInput, UsageProblem

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
            score["scales"]["total"]["pomp"],
            score["scales"]["total"]["mean"],
            score["scales"]["total"]["sum"],
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


# -- analysis over stored sessions ---------------------------------------------------------
def _series(records: Sequence[Record]) -> change.Series:
    series = change.Series()
    for rec in records:
        for sid, s in rec.score["scales"].items():
            series.names[sid] = s["name"]
            series.scales.setdefault(sid, []).append(change.Point(rec.session, rec.date, s["pomp"]))
    return series


def _factors(instrument: Any) -> Callable[[str], dict[str, float]]:
    def factors(scale: str) -> dict[str, float]:
        n = instrument.scale_item_count(scale)
        low, high = instrument.scale.min, instrument.scale.max
        return {m: change.pomp_factor(low, high, n, m) for m in ("mean", "sum")}

    return factors


def analyse(
    records: Sequence[Record],
    instruments: dict[str, Any],
    settings: change.Settings,
    counterparts: Sequence[Record] = (),
) -> tuple[list[change.ChangeFlag], dict[str, change.Reliability]]:
    """Every flag a client's sessions on one instrument and rater raise, and the thresholds."""
    if not records:
        return [], {}
    inst = instruments.get(records[0].instrument)
    series = _series(records)
    flags: list[change.ChangeFlag] = []
    reliabilities: dict[str, change.Reliability] = {}
    norm = inst.norms[0] if inst is not None and inst.norms else None
    factors = _factors(inst) if inst is not None else None
    for sid, points in series.scales.items():
        by_metric = factors(sid) if factors else {"mean": 1.0, "sum": 1.0}
        values = [p.pomp for p in points if p.pomp is not None]
        rel = change.reliability_for(norm, sid, by_metric, values)
        reliabilities[sid] = rel
        flags += change.analyse_scale(sid, series.names[sid], points, rel, settings)
    if inst is not None:
        for rec in records:
            total = rec.score["scales"]["total"]
            raw = {"mean": total["mean"], "sum": total["sum"]}
            flag = change.early_low(rec.session, total["pomp"], raw, inst, settings)
            if flag:
                flags.append(flag)
    other = {r.session: r for r in counterparts}
    for rec in records:
        twin = other.get(rec.session)
        if twin is None:
            continue
        mine = {k: (v["name"], v["pomp"]) for k, v in rec.score["scales"].items()}
        theirs = {k: (v["name"], v["pomp"]) for k, v in twin.score["scales"].items()}
        client, therapist = (mine, theirs) if rec.rater == "client" else (theirs, mine)
        flags += change.gaps(rec.session, client, therapist, settings)
    flags.sort(key=lambda f: (f.session, f.scale != "total", f.scale, f.code))
    return flags, reliabilities


def client_view(
    store: Store, client_id: str, instrument: str | None, catalog: Any, settings: change.Settings
) -> list[dict[str, Any]]:
    """Per instrument and rater: sessions, thresholds and flags for one client."""
    records = store.records(client_id, instrument)
    if not records:
        raise UsageProblem(f"no sessions recorded for client {client_id!r}")
    groups: dict[tuple[str, str], list[Record]] = {}
    for rec in records:
        groups.setdefault((rec.instrument, rec.rater), []).append(rec)
    instruments = _instruments(catalog, {k[0] for k in groups})
    out = []
    for (inst_id, rater), recs in groups.items():
        inst = instruments.get(inst_id)
        counterparts: list[Record] = []
        if inst is not None and inst.counterpart:
            counterparts = store.records(client_id, inst.counterpart)
        flags, rels = analyse(recs, instruments, settings, counterparts)
        current = _current_sha(catalog, inst_id)
        out.append(
            {
                "client_id": client_id,
                "instrument": inst_id,
                "rater": rater,
                "metric": recs[0].score["metric"],
                "sessions": [
                    {
                        "session": r.session,
                        "date": r.date,
                        "scales": {
                            k: {
                                "name": v["name"],
                                "mean": v["mean"],
                                "sum": v["sum"],
                                "pomp": v["pomp"],
                            }
                            for k, v in r.score["scales"].items()
                        },
                        "verification": r.score["instrument"].get("verification"),
                        "definition_sha256": r.sha256,
                        "definition_current": current is None or r.sha256 == current,
                    }
                    for r in recs
                ],
                "verification": recs[-1].score["instrument"].get("verification"),
                "reliable_change": {
                    k: {"threshold_pomp": v.threshold, "source": v.source} for k, v in rels.items()
                },
                "flags": [f.as_dict() for f in flags],
            }
        )
    return out


def _current_sha(catalog: Any, instrument_id: str) -> str | None:
    """The hash of the definition file alliance would score with now (None if none loads)."""
    try:
        return str(catalog.get(instrument_id).sha256)
    except AllianceError:
        return None


def _instruments(catalog: Any, ids: Iterable[str]) -> dict[str, Any]:
    found = {}
    for key in ids:
        try:
            found[key] = catalog.get(key).instrument
        except AllianceError:  # no longer defined, or now broken: scores stay readable
            continue
    return found


def flags_for(
    store: Store, score: dict[str, Any], catalog: Any, settings: change.Settings
) -> list[dict[str, Any]]:
    """The flags the history raises for the session just recorded."""
    who = score["respondent"]
    views = client_view(store, str(who["client_id"]), score["instrument"]["id"], catalog, settings)
    return [
        f
        for view in views
        if view["rater"] == who.get("rater")
        for f in view["flags"]
        if f["session"] == who["session"]
    ]


def _floats(text: str) -> list[float | None]:
    return [None if t == "n" else float(t) for t in text.split(",")]


def caseload(store: Store, catalog: Any, settings: change.Settings) -> list[dict[str, Any]]:
    """One row per client (their client-rated series first), most in need of attention first."""
    rows = store.caseload_rows()
    instruments = _instruments(catalog, {r[1] for r in rows})
    by_client: dict[str, dict[str, Any]] = {}
    for client_id, inst_id, rater, sessions_text, pomps, last_date in rows:
        sessions = [int(s) for s in sessions_text.split(",")]
        totals = _floats(pomps)
        if sessions != sorted(sessions):
            order = sorted(range(len(sessions)), key=sessions.__getitem__)
            sessions, totals = [sessions[i] for i in order], [totals[i] for i in order]
        valid = [t for t in totals if t is not None]
        inst = instruments.get(inst_id)
        norm = inst.norms[0] if inst is not None and inst.norms else None
        by_metric = _factors(inst)("total") if inst is not None else {"mean": 1.0, "sum": 1.0}
        rel = change.reliability_for(norm, "total", by_metric, valid)
        # Concerns belong to the latest session only if it has a total.
        open_flags = (
            sorted(change.latest_concerns(valid, rel.threshold, settings))
            if totals[-1] is not None
            else []
        )
        last = sessions[-1]
        series = (store, client_id, inst_id, rater)
        if inst is not None and _early_risk_open(sessions, totals, series, inst, settings):
            open_flags.append("early_low_alliance")
        row = {
            "client_id": client_id,
            "instrument": inst_id,
            "rater": rater,
            "sessions": len(sessions),
            "last_session": last,
            "last_date": last_date,
            "last_total_pomp": totals[-1],
            "trend": change.trend(valid[-6:], rel.threshold),
            "open_flags": open_flags,
        }
        current = by_client.get(client_id)
        if current is None or (current["rater"] != "client" and rater == "client"):
            by_client[client_id] = row
    return sorted(
        by_client.values(),
        key=lambda r: (
            -len(r["open_flags"]),
            {"down": 0, "steady": 1, "up": 2}[r["trend"]],
            r["last_total_pomp"] if r["last_total_pomp"] is not None else 101,
            r["client_id"],
        ),
    )


def _early_risk_open(
    sessions: list[int],
    pomps: list[float | None],
    series: tuple[Store, str, str, str],
    inst: Any,
    settings: change.Settings,
) -> bool:
    """Early risk stays open while a low early alliance has not improved past the same rule."""
    if sessions[0] > settings.early_sessions:
        return False
    means: list[Any]
    sums: list[Any]
    if not inst.cutoffs and not inst.bands:  # the POMP setting decides: raw totals not needed
        early = [p for s, p in zip(sessions, pomps, strict=True) if s <= settings.early_sessions]
        if all(p is None or p >= settings.early_pomp for p in early):
            return False  # the common case, decided without building flags
        means = sums = [None] * len(sessions)
    else:  # cutoffs are stated in means or sums: read them for this series only
        store, client_id, inst_id, rater = series
        raw = store.raw_totals(client_id, inst_id, rater)
        sessions, pomps = [r[0] for r in raw], [r[1] for r in raw]
        means, sums = [r[2] for r in raw], [r[3] for r in raw]
    flagged = any(
        change.early_low(s, p, {"mean": m, "sum": t}, inst, settings)
        for s, p, m, t in zip(sessions, pomps, means, sums, strict=True)
        if s <= settings.early_sessions
    )
    if not flagged:
        return False
    still = change.Settings(
        early_sessions=max(sessions[-1], settings.early_sessions), early_pomp=settings.early_pomp
    )
    raw = {"mean": means[-1], "sum": sums[-1]}
    return change.early_low(sessions[-1], pomps[-1], raw, inst, still) is not None
