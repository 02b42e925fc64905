"""A clinic's shared history on PostgreSQL: the same history as the SQLite file, on one
server, where the server decides what each counselor may see.

Everything lives in the schema ``alliance``. Row-level security, not this client, limits a
login role to its own clients: a counselor (a member of ``alliance_counselor``) sees and
changes only the clients assigned to it (``assignments``); a supervisor (a member of
``alliance_supervisor``) sees the whole clinic. A client is assigned to a counselor when
that counselor first saves a session for them (``claim``), or when a supervisor assigns
them (``alliance db grant``). Roles are the *login* role (``session_user``), so a security
definer function (which runs as the schema's owner) still knows who called it.

Migrations are versioned (``meta.schema_version``) and run in one transaction under an
advisory lock: many counselors starting at once migrate once. A batch is copied into a
temporary table (COPY) and moved into ``sessions`` with one statement per chunk, which
row-level security checks (COPY itself is not allowed into a table with policies).
Connection settings are libpq's: the URL, PGSERVICE, ~/.pgpass, sslmode.
"""

from __future__ import annotations

import contextlib
import functools
import json
import queue
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import HistoryError, RejectedInput
from alliance_cli.core.memo import Remembered
from alliance_cli.store.base import (
    CASELOAD_INSTRUMENTS,
    COPY_ROWS,
    SAID_PENDING,
    SESSION_COLUMNS,
    BatchBase,
    Conflict,
    StoreBase,
    lock_wait,
    pending_since,
    shown,
)

SCHEMA = "alliance"
COUNSELOR, SUPERVISOR = "alliance_counselor", "alliance_supervisor"
MIGRATION_LOCK = 0x616C6C69  # "alli": the advisory lock migrations take
_SUPERVISES = f"pg_has_role(session_user, '{SUPERVISOR}', 'MEMBER')"
# (in a policy the role test is a subquery: evaluated once a statement, not once a row)
_OWN_CLIENT = (
    f"((SELECT {_SUPERVISES}) OR client_id IN "
    "(SELECT a.client_id FROM alliance.assignments a WHERE a.role = session_user))"
)
_SAME_SERIES = "c.client_id = t.client_id AND c.instrument = t.instrument AND c.rater = t.rater"
# a series whose last session went leaves no kept reading behind (the triggers below)
_DROP_EMPTIED = (
    "    DELETE FROM caseload c USING "
    "(SELECT DISTINCT client_id, instrument, rater FROM old_rows) t\n"
    f"        WHERE {_SAME_SERIES}\n"
    "        AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.client_id = t.client_id\n"
    "            AND s.instrument = t.instrument AND s.rater = t.rater);\n"
)
# the columns whose change makes a series' kept reading stale (not what was said)
_READ_COLUMNS = (
    "client_id, instrument, rater, session, date, definition, answers, total_pomp, "
    "total_mean, total_sum, scale_pomps, counselor"
)
# a security definer function runs as the owner: its search path names pg_temp last, so a
# session's own temporary tables can never stand in for the clinic's
_DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = alliance, pg_catalog, pg_temp"

# Each entry moves the schema from version i to i + 1. Never edit a shipped entry: add one.
MIGRATIONS: list[str] = [
    # 1: the history (as SQLite's schema 9), who may see which client, and the policies
    f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{COUNSELOR}') THEN
        CREATE ROLE {COUNSELOR} NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{SUPERVISOR}') THEN
        CREATE ROLE {SUPERVISOR} NOLOGIN;
    END IF;
END $$;
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE definitions (
    id bigserial PRIMARY KEY,
    sha256 text NOT NULL UNIQUE,
    instrument text NOT NULL,
    version text NOT NULL,
    scale_ids text,
    data text
);
-- every client ever saved, and the login role that first saved them
CREATE TABLE clients (
    client_id text COLLATE "C" PRIMARY KEY,
    first_role name NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
-- which counselor may see which client
CREATE TABLE assignments (
    client_id text COLLATE "C" NOT NULL,
    role name NOT NULL,
    PRIMARY KEY (client_id, role)
);
CREATE INDEX assignments_by_role ON assignments (role, client_id);
-- text compares byte by byte (COLLATE "C"), as in SQLite: the same order everywhere, and
-- the keys' index is cheaper to build than under a language's collation. No foreign key to
-- definitions (as in SQLite): a per-row check that would cost a batch a third of its time.
CREATE TABLE sessions (
    id bigserial NOT NULL,  -- in order of saving; a BRIN index, not a B-tree (see below)
    client_id text COLLATE "C" NOT NULL,
    instrument text COLLATE "C" NOT NULL,
    rater text COLLATE "C" NOT NULL,
    session integer NOT NULL,
    date text,
    definition bigint NOT NULL,
    answers text NOT NULL,
    recorded_at text,
    total_pomp double precision,
    total_mean double precision,
    total_sum double precision,
    scale_pomps text,
    counselor text,
    said_flags text,
    extra text,
    saved_by name NOT NULL DEFAULT session_user,
    UNIQUE (client_id, instrument, rater, session)
);
-- rows after an id (what a batch added) are found by a block range index: nearly free to
-- keep up, where a second B-tree cost a batch a tenth of its time
CREATE INDEX sessions_by_id ON sessions USING brin (id);
CREATE TABLE caseload (
    client_id text COLLATE "C" NOT NULL,
    instrument text COLLATE "C" NOT NULL,
    rater text COLLATE "C" NOT NULL,
    version bigint NOT NULL DEFAULT 0,
    stamp text NOT NULL DEFAULT '',
    sessions integer,
    last_session integer,
    last_date text,
    last_total_pomp double precision,
    trend text,
    open_flags text,
    counselor text,
    changed_xact xid8,
    PRIMARY KEY (client_id, instrument, rater)
);
-- each login role's whole caseload as `clients` last showed it, with the fingerprint of
-- the role's kept series it was computed from (no counter every writer would wait on)
CREATE TABLE caseload_snapshot (
    role name PRIMARY KEY DEFAULT session_user,
    fingerprint text NOT NULL,
    stamp text NOT NULL,
    rows text NOT NULL
);
CREATE TABLE said_pending (
    role name NOT NULL DEFAULT session_user,
    since bigint NOT NULL
);

-- a series' kept reading is stale when one of its sessions changes (whoever changes it);
-- statement triggers with transition tables: a batch's chunk marks its series once. A
-- series is marked once a transaction (changed_xact): a batch's later chunks touching the
-- same series write nothing more, and the version still moves for every transaction.
CREATE FUNCTION mark_new() RETURNS trigger {_DEFINER} AS $f$
DECLARE
    me xid8 := pg_current_xact_id();
    missing bigint;
    stale bigint;
BEGIN
    -- most chunks of a batch touch series this transaction has marked already: one join
    -- says so, and nothing is written
    SELECT count(*) FILTER (WHERE c.client_id IS NULL),
           count(*) FILTER (WHERE c.client_id IS NOT NULL AND c.changed_xact IS DISTINCT FROM me)
        INTO missing, stale
        FROM (SELECT DISTINCT client_id, instrument, rater FROM new_rows) t
        LEFT JOIN caseload c ON {_SAME_SERIES};
    IF stale > 0 THEN
        PERFORM 1 FROM caseload c
            JOIN (SELECT DISTINCT client_id, instrument, rater FROM new_rows) t ON {_SAME_SERIES}
            WHERE c.changed_xact IS DISTINCT FROM me
            ORDER BY c.client_id, c.instrument, c.rater FOR UPDATE OF c;
        UPDATE caseload c SET version = c.version + 1, stamp = '', changed_xact = me
            FROM (SELECT DISTINCT client_id, instrument, rater FROM new_rows) t
            WHERE {_SAME_SERIES} AND c.changed_xact IS DISTINCT FROM me;
    END IF;
    IF missing > 0 THEN
        INSERT INTO caseload AS c (client_id, instrument, rater, changed_xact)
            SELECT t.client_id, t.instrument, t.rater, me
            FROM (SELECT DISTINCT client_id, instrument, rater FROM new_rows) t
            WHERE NOT EXISTS (SELECT 1 FROM caseload k WHERE k.client_id = t.client_id
                AND k.instrument = t.instrument AND k.rater = t.rater)
            ORDER BY 1, 2, 3
            ON CONFLICT (client_id, instrument, rater) DO UPDATE
            SET version = c.version + 1, stamp = '', changed_xact = me
            WHERE c.changed_xact IS DISTINCT FROM me;
    END IF;
    RETURN NULL;
END $f$;
CREATE FUNCTION mark_old() RETURNS trigger {_DEFINER} AS $f$
BEGIN
    WITH gone AS (SELECT DISTINCT client_id, instrument, rater FROM old_rows)
    UPDATE caseload c SET version = c.version + 1, stamp = '',
        changed_xact = pg_current_xact_id() FROM gone t WHERE {_SAME_SERIES};
{_DROP_EMPTIED}    RETURN NULL;
END $f$;
-- an update marks only the series whose read columns changed (keeping what was said at a
-- session changes no reading)
CREATE FUNCTION mark_changed() RETURNS trigger {_DEFINER} AS $f$
BEGIN
    WITH changed AS (
        (SELECT {_READ_COLUMNS} FROM new_rows EXCEPT SELECT {_READ_COLUMNS} FROM old_rows)
        UNION ALL
        (SELECT {_READ_COLUMNS} FROM old_rows EXCEPT SELECT {_READ_COLUMNS} FROM new_rows)
    )
    INSERT INTO caseload AS c (client_id, instrument, rater, changed_xact)
        SELECT DISTINCT client_id, instrument, rater, pg_current_xact_id() FROM changed
        ORDER BY 1, 2, 3
        ON CONFLICT (client_id, instrument, rater)
        DO UPDATE SET version = c.version + 1, stamp = '', changed_xact = pg_current_xact_id();
{_DROP_EMPTIED}    RETURN NULL;
END $f$;
CREATE TRIGGER caseload_on_insert AFTER INSERT ON sessions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_new();
CREATE TRIGGER caseload_on_delete AFTER DELETE ON sessions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION mark_old();
CREATE TRIGGER caseload_on_update AFTER UPDATE ON sessions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mark_changed();

-- a counselor's first save of a client assigns the client to them; returns the clients
-- this login role may not write (another counselor's)
CREATE FUNCTION claim(ids text[]) RETURNS SETOF text {_DEFINER} AS $f$
BEGIN
    WITH new AS (
        INSERT INTO clients (client_id, first_role)
            SELECT DISTINCT i, session_user FROM unnest(ids) AS i
            WHERE NOT EXISTS (SELECT 1 FROM clients c WHERE c.client_id = i) ORDER BY 1
            ON CONFLICT DO NOTHING RETURNING client_id
    )
    INSERT INTO assignments (client_id, role)
        SELECT client_id, session_user FROM new WHERE NOT {_SUPERVISES}
        ON CONFLICT DO NOTHING;
    IF {_SUPERVISES} THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT DISTINCT i FROM unnest(ids) AS i WHERE NOT EXISTS (
        SELECT 1 FROM assignments a WHERE a.client_id = i AND a.role = session_user);
END $f$;
-- after a forget: a client with no session left is gone, with every assignment
CREATE FUNCTION release(client text) RETURNS void {_DEFINER} AS $f$
BEGIN
    IF NOT ({_SUPERVISES} OR EXISTS (SELECT 1 FROM assignments a
            WHERE a.client_id = client AND a.role = session_user)) THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM sessions s WHERE s.client_id = client) THEN
        DELETE FROM assignments WHERE client_id = client;
        DELETE FROM clients WHERE client_id = client;
    END IF;
END $f$;

-- what each login role may see: the server decides
ALTER TABLE sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_clients ON sessions USING {_OWN_CLIENT};
ALTER TABLE caseload ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_clients ON caseload USING {_OWN_CLIENT};
ALTER TABLE assignments ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_assignments ON assignments FOR SELECT
    USING (role = session_user OR {_SUPERVISES});
CREATE POLICY supervisor_assigns ON assignments FOR ALL TO {SUPERVISOR}
    USING (true) WITH CHECK (true);
ALTER TABLE clients ENABLE ROW LEVEL SECURITY;
CREATE POLICY supervisor_sees ON clients FOR ALL TO {SUPERVISOR} USING (true) WITH CHECK (true);
ALTER TABLE caseload_snapshot ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_snapshot ON caseload_snapshot USING (role = session_user)
    WITH CHECK (role = session_user);
ALTER TABLE said_pending ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_pending ON said_pending USING (role = session_user)
    WITH CHECK (role = session_user);

REVOKE ALL ON ALL TABLES IN SCHEMA alliance FROM PUBLIC;
REVOKE ALL ON FUNCTION claim(text[]), release(text), mark_new(), mark_old(), mark_changed()
    FROM PUBLIC;
GRANT USAGE ON SCHEMA alliance TO {COUNSELOR}, {SUPERVISOR};
GRANT SELECT ON meta TO {COUNSELOR}, {SUPERVISOR};
GRANT SELECT, INSERT, UPDATE ON definitions TO {COUNSELOR}, {SUPERVISOR};
GRANT SELECT, INSERT, UPDATE, DELETE ON sessions, caseload, said_pending, caseload_snapshot
    TO {COUNSELOR}, {SUPERVISOR};
GRANT SELECT ON assignments TO {COUNSELOR};
GRANT SELECT, INSERT, UPDATE, DELETE ON assignments, clients TO {SUPERVISOR};
GRANT USAGE ON ALL SEQUENCES IN SCHEMA alliance TO {COUNSELOR}, {SUPERVISOR};
GRANT EXECUTE ON FUNCTION claim(text[]), release(text) TO {COUNSELOR}, {SUPERVISOR};
""",
    # 2: (as SQLite's 10) each kept reading's random token, set when it is kept: `clients`
    #    after a change reuses each client's row whose series' readings are the ones it was
    #    made from. Deleting any session drops every role's kept list, so a forgotten client
    #    leaves no trace in the lists of other roles either (the function runs as the owner).
    f"""
ALTER TABLE caseload ADD COLUMN token bigint;
UPDATE caseload SET token = floor(random() * 4611686018427387904)::bigint;
-- the kept list compressed by the client (zlib, as in SQLite): 0.7 MB to fetch, not 13 MB
DELETE FROM caseload_snapshot;
ALTER TABLE caseload_snapshot ALTER COLUMN rows TYPE bytea USING NULL;
ALTER TABLE caseload_snapshot ALTER COLUMN rows SET STORAGE EXTERNAL;
CREATE OR REPLACE FUNCTION mark_old() RETURNS trigger {_DEFINER} AS $f$
BEGIN
    WITH gone AS (SELECT DISTINCT client_id, instrument, rater FROM old_rows)
    UPDATE caseload c SET version = c.version + 1, stamp = '',
        changed_xact = pg_current_xact_id() FROM gone t WHERE {_SAME_SERIES};
{_DROP_EMPTIED}    DELETE FROM caseload_snapshot;
    RETURN NULL;
END $f$;
""",
]
SCHEMA_VERSION = len(MIGRATIONS)


def open_store(
    url: str, create: bool = True, on_wait: Callable[[str], None] | None = None
) -> Store:
    """Connect to a clinic's history (migrating it when this role owns it)."""
    return Store(url, on_wait, writing=create)


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        from alliance_cli.core.errors import UsageProblem

        raise UsageProblem(
            "a postgresql:// history needs the postgres extra: pip install 'alliance[postgres]'"
        ) from None
    return psycopg


# what a --jobs worker writes of each row: the batch's instrument, definition and time,
# and what was said (nothing yet), are the statement's (``move_staged``)
SPOOL_COLUMNS = (
    "client_id, rater, session, date, answers, total_pomp, total_mean, total_sum, "
    "scale_pomps, counselor, extra"
)
_Line = Callable[[tuple[Any, ...]], str]  # a stored row as one line of COPY text
_INSERT = (
    f"INSERT INTO sessions AS s ({SESSION_COLUMNS}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
)
_KEY = "ON CONFLICT (client_id, instrument, rater, session) "
# a replaced session is a new row (as SQLite's REPLACE): a new id, nothing said kept yet
_REPLACE = _KEY + (
    "DO UPDATE SET id = nextval('alliance.sessions_id_seq'), date = EXCLUDED.date, "
    "definition = EXCLUDED.definition, answers = EXCLUDED.answers, "
    "recorded_at = EXCLUDED.recorded_at, total_pomp = EXCLUDED.total_pomp, "
    "total_mean = EXCLUDED.total_mean, total_sum = EXCLUDED.total_sum, "
    "scale_pomps = EXCLUDED.scale_pomps, counselor = EXCLUDED.counselor, "
    "said_flags = EXCLUDED.said_flags, extra = EXCLUDED.extra, saved_by = session_user"
)
_IGNORE = _KEY + "DO NOTHING"
_STAGING = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS alliance_staging (client_id text, "
    "instrument text, rater text, session integer, date text, definition bigint, "
    "answers text, recorded_at text, total_pomp double precision, total_mean double "
    "precision, total_sum double precision, scale_pomps text, counselor text, "
    "said_flags text, extra text)"
)


# the kept caseload of this role (``Store.snapshot``, ``KeptReader.snapshot``): the
# fingerprint of its series, then the kept list with whether it was made at that fingerprint
FINGERPRINT = (
    "SELECT count(*) || ':' || coalesce(sum(version), 0) || ':' || coalesce(sum(hashtext("
    "client_id || chr(31) || instrument || chr(31) || rater)::bigint), 0) FROM caseload"
)
SNAPSHOT = (
    "SELECT stamp, rows, fingerprint = %s "
    "FROM caseload_snapshot WHERE role = session_user"  # (the owner sees all)
)
FRESH = "SELECT fingerprint = %s FROM caseload_snapshot WHERE role = session_user"
SCHEMA = "SELECT value FROM alliance.meta WHERE key = 'schema_version'"


def session_settings() -> tuple[str, str]:
    """What every connection sets first: the schema, and how long a lock another
    counselor's save (or a migration) holds is waited for: as long as on SQLite (at least
    1 ms: a lock_timeout of 0 would mean no limit)."""
    return ("SET search_path TO alliance", f"SET lock_timeout = {max(1, int(lock_wait() * 1000))}")


def kept_snapshot(row: Sequence[Any] | None) -> tuple[int, str | None, bytes | None, bool]:
    """``snapshot``'s answer from the kept list's row (stamp, compressed rows, fresh)."""
    if row is None or row[1] is None:
        return (0, None, None, False)
    try:
        rows = zlib.decompress(row[1])
    except zlib.error:  # not what keep_snapshot wrote: no list kept
        return (0, None, None, False)
    return (0, row[0], rows, bool(row[2]))


class KeptReader:
    """Just enough of the store to show the caseload as kept (``views.kept_caseload``),
    through libpq itself (``store.libpq``: no psycopg to import); a ``LinkError`` from any
    of it, and the caller opens the whole ``Store``."""

    def __init__(self, url: str) -> None:
        from alliance_cli.store import libpq

        self.link = libpq.Link(url)
        try:
            version = self.link.rows(SCHEMA)
            if not version or version[0][0] != str(SCHEMA_VERSION):  # to migrate: the Store
                raise libpq.LinkError("schema")
            for setting in (*session_settings(), "SET client_encoding TO 'UTF8'"):
                self.link.rows(setting)
        except BaseException:
            self.link.close()
            raise

    def __enter__(self) -> KeptReader:
        return self

    def __exit__(self, *_: object) -> None:
        self.link.close()

    def said_pending(self) -> int | None:
        """The earliest row after which a batch's sessions wait for their reading."""
        return pending_since(self.link.rows(SAID_PENDING))

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A read transaction (repeatable read), as ``Store.reading``."""
        self.link.rows("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self.link.rows("ROLLBACK")

    def snapshot(self) -> tuple[int, str | None, bytes | None, bool]:
        """As ``Store.snapshot``, but a list that is not fresh is not fetched (rows None):
        the whole store then reads what it must, and fetches it."""
        fingerprint = str(self.link.rows(FINGERPRINT)[0][0])
        found = self.link.rows(FRESH, (fingerprint,))
        if not found or not found[0][0]:
            return (0, None, None, False)
        found = self.link.rows(SNAPSHOT, (fingerprint,))
        return kept_snapshot(found[0] if found else None)

    def caseload_instruments(self) -> list[str]:
        """The instruments of every series the caseload keeps a reading for."""
        return [r[0] for r in self.link.rows(CASELOAD_INSTRUMENTS)]


class Store(StoreBase):
    """The PostgreSQL session store (``HistoryStore``)."""

    _ROW = "id"  # (SQLite's rowid)
    # its text cannot hold a NUL byte, nor its key index a client id over 2,704 bytes: db copy
    # leaves out a session stored elsewhere with such an id (contract.stored_id_problem)
    keeps_any_id = False

    def __init__(
        self, url: str, on_wait: Callable[[str], None] | None = None, writing: bool = True
    ) -> None:
        self.path = shown(url)
        self.writing = writing
        self.on_wait = on_wait
        self.log_busy = False
        self._init_memos()
        self.pg = _psycopg()
        self._error_types = (self.pg.Error,)
        try:
            self.db = self.pg.connect(url, autocommit=True)
        except self.pg.Error as exc:
            raise connect_error(self.path, str(exc)) from None
        try:
            for setting in session_settings():
                self.db.execute(setting)
            self._migrate()
        except self.pg.Error as exc:
            self._close_quietly()
            raise self._error(exc) from None
        except BaseException:
            self._close_quietly()
            raise
        self._staged = False
        self._fingerprint = ""
        self.batch: BatchRecorder | None = None  # the open batch (see close)

    # -- the connection --------------------------------------------------------------------
    def _close_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()

    def _error(self, exc: Exception) -> HistoryError:
        """The history error for a server failure, naming the server and the cause."""
        errors = self.pg.errors
        text = _first_line(exc)
        if isinstance(exc, errors.InsufficientPrivilege):
            return HistoryError(
                f"{self.path}: permission denied ({text}); a counselor's login role must be "
                f"a member of {COUNSELOR} or {SUPERVISOR} (docs/clinic-server.md)"
            )
        if isinstance(exc, errors.LockNotAvailable):
            return HistoryError(
                f"{self.path}: another program held the history too long (waited "
                f"{lock_wait():g} s); try again when it has finished"
            )
        if isinstance(exc, errors.ReadOnlySqlTransaction):
            return HistoryError(f"{self.path}: the server is read-only here (cannot save)")
        if isinstance(exc, errors.DiskFull):
            return HistoryError(f"{self.path}: the server's disk is full; nothing was saved")
        if isinstance(exc, self.pg.OperationalError):
            return HistoryError(f"{self.path}: the connection failed ({text}); nothing was saved")
        return HistoryError(f"{self.path}: cannot use the history ({text})")

    def _version(self) -> int:
        found = self.db.execute("SELECT to_regclass('alliance.meta') IS NOT NULL").fetchone()
        if not found[0]:
            return 0
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        """Bring the schema up to date: one transaction under an advisory lock, so many
        counselors starting at once migrate once (the others wait, then find it done)."""
        version = self._version()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path}: written by a newer alliance (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); upgrade alliance"
            )
        if version == 0 and not self.writing:
            raise HistoryError(
                f"{self.path}: no history here (nothing has been saved, or its owner has not "
                "run `alliance db setup --apply`)"
            )
        # the lock is the session's, taken before the transaction begins: a transaction
        # begun before another's migration committed would see the old catalog
        self.db.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            self.db.execute("BEGIN")
            version = self._version()
            if version < SCHEMA_VERSION:
                for script in migration_scripts(version):
                    self.db.execute(script)
            self.db.execute("COMMIT")
        except self.pg.errors.InsufficientPrivilege:
            self.rollback()
            raise HistoryError(
                f"{self.path}: the history's schema needs setting up or upgrading (schema "
                f"{version} of {SCHEMA_VERSION}), and this login role may not: its owner runs "
                "`alliance db setup --apply` (docs/clinic-server.md)"
            ) from None
        except BaseException:
            self.rollback()
            raise
        finally:
            with contextlib.suppress(Exception):
                self.db.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def close(self) -> None:
        """Close the connection (a batch left unfinished stops storing first: the server
        rolls its transaction back)."""
        if self.batch is not None:
            self.batch.abandon()
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def source_name(self) -> str:
        """The server's database name (no host, user or password in a report)."""
        return str(self.db.info.dbname)

    def schema_version(self) -> int:
        """The schema version of the open history."""
        return self._version()

    def in_transaction(self) -> bool:
        """Whether a transaction is open (or failed and not yet rolled back)."""
        status = self.db.info.transaction_status
        return bool(status in (self.pg.pq.TransactionStatus.INTRANS,
                               self.pg.pq.TransactionStatus.INERROR))  # fmt: skip

    def begin(self) -> None:
        """Start a transaction."""
        try:
            self.db.execute("BEGIN")
        except self.pg.Error as exc:
            raise self._error(exc) from None

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """A read transaction (repeatable read): what is read inside it is read at one
        moment."""
        self.db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self.rollback()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one query written with ``?`` placeholders (psycopg's are ``%s``)."""
        return self._all(sql.replace("?", "%s"), args)

    def _write(self, sql: str, args: Sequence[Any] = ()) -> None:
        """One statement (``?`` placeholders) in a transaction of its own."""
        with self._transaction():
            self.db.execute(sql.replace("?", "%s"), args)

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return list(self.db.execute(sql, args).fetchall())
        except self.pg.Error as exc:
            self.rollback()
            raise self._error(exc) from None

    # -- writing ---------------------------------------------------------------------------
    def _definition(
        self, sha: str, instrument_id: str, version: str, scale_ids: Sequence[str]
    ) -> tuple[int, bool]:
        """(definitions id, whether its JSON is kept), written the first time it is met."""
        known = self._row_definitions.get(sha)
        if known is not None:
            return known
        query = "SELECT id, data IS NOT NULL FROM definitions WHERE sha256 = %s"
        row = self.db.execute(query, (sha,)).fetchone()
        data = self._data.get(sha)
        text = None if data is None else json.dumps(data, ensure_ascii=False)
        if row is None:
            ids = ",".join(sid for sid in scale_ids if sid != TOTAL) or None
            self.db.execute(
                "INSERT INTO definitions (sha256, instrument, version, scale_ids, data) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sha256) DO NOTHING",
                (sha, instrument_id, version, ids, text),
            )
            row = self.db.execute(query, (sha,)).fetchone()
        elif not row[1] and text is not None:
            self.db.execute("UPDATE definitions SET data = %s WHERE id = %s", (text, row[0]))
            row = (row[0], True)
        known = self._row_definitions[sha] = (int(row[0]), bool(row[1]))
        return known

    def _claim(self, clients: Sequence[str]) -> None:
        """Assign new clients to this counselor; refuse another counselor's (exit 5)."""
        refused = [r[0] for r in self.db.execute("SELECT claim(%s)", (list(set(clients)),))]
        if refused:
            self._refuse(refused)

    def _refuse(self, refused: list[str]) -> None:
        """Stop a save that holds another counselor's clients (nothing is saved)."""
        if refused:
            refused.sort()
            more = f" (and {len(refused) - 1:,} more)" if len(refused) > 1 else ""
            raise HistoryError(
                f"{self.path}: client {refused[0]}{more} is not assigned to you (another "
                "counselor's, or saved by a supervisor); nothing was saved (a supervisor can "
                "assign them to you: alliance db grant)"
            )

    def record(
        self, score: dict[str, Any], replace: bool = False, counselor: str | None = None
    ) -> bool:
        """Store one scored session (one transaction); as ``sqlite.Store.record``."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with self._transaction():
            row = self._row(score, now, counselor)
            self._claim([row[0]])
            stored = self.db.execute(_INSERT + (_REPLACE if replace else _IGNORE), row)
            if stored.rowcount == 0:
                answers = self._stored_answers(row)
                if answers == row[6]:
                    return False
                conflict = Conflict(row[0], row[3], row[1], row[2], answers, row[6])
                raise RejectedInput([], message=f"{conflict} (use --replace to overwrite it)")
        return True

    def stage_text(self, text: str, columns: str = SESSION_COLUMNS) -> None:
        """Copy rows given as COPY text (of ``columns``) into the temporary table, emptied
        first: ``move_staged`` then moves them into ``sessions``."""
        self._stage()
        with self.db.cursor().copy(f"COPY alliance_staging ({columns}) FROM STDIN") as copy:
            copy.write(text)

    def _stage(self) -> None:
        """An empty temporary table for the next chunk (made once per connection)."""
        if not self._staged:
            self.db.execute(_STAGING)
            self._staged = True
        self.db.execute("TRUNCATE alliance_staging")

    def stage_file(self, path: str) -> int:
        """Copy a file of COPY text rows (a ``--jobs`` worker's: ``SPOOL_COLUMNS``, the
        batch's constants left out) into the temporary table as it is, unread by Python;
        returns how many rows it held."""
        self._stage()
        cursor = self.db.cursor()
        with (
            open(path, "rb") as handle,
            cursor.copy(f"COPY alliance_staging ({SPOOL_COLUMNS}) FROM STDIN") as copy,
        ):
            while block := handle.read(1 << 20):
                copy.write(block)
        return int(cursor.rowcount)  # the server's count of the rows copied ("COPY n")

    def move_staged(
        self,
        count: int,
        replace: bool,
        claimed: bool = False,
        constants: tuple[str, int, str] | None = None,
    ) -> int:
        """Move the ``count`` staged rows into ``sessions`` by one INSERT; returns the
        duplicates. If any session is recorded already (or twice in the chunk), that is
        undone and the rows are stored one at a time, each duplicate told apart.
        ``claimed``: their clients are claimed already; ``constants``: the instrument,
        definition and time of rows staged without them (``stage_file``, ``stage_text``)."""
        if not claimed:
            self._claim_staged()
        columns = SESSION_COLUMNS
        args: tuple[Any, ...] = ()
        if constants is not None:
            columns = SESSION_COLUMNS.replace("instrument,", "%s::text,", 1)
            columns = columns.replace("definition,", "%s::bigint,", 1)
            columns = columns.replace("recorded_at,", "%s::text,", 1)
            args = constants
        # (a temporary table is read in the order it was written: never in parallel)
        move = f"INSERT INTO sessions ({SESSION_COLUMNS}) SELECT {columns} FROM alliance_staging"
        self.db.execute("SAVEPOINT chunk")
        try:
            moved = self.db.execute(move, args).rowcount
        except (self.pg.errors.UniqueViolation, self.pg.errors.CardinalityViolation):
            moved = -1
        if moved == count:
            self.db.execute("RELEASE chunk")
            return 0
        self.db.execute("ROLLBACK TO chunk")
        self.db.execute("RELEASE chunk")
        # in the order they came: emptied, then filled by one COPY, the table's rows lie in
        # it in that order (a sequence column cost a third of the copy)
        rows = self._all(f"SELECT {columns} FROM alliance_staging ORDER BY ctid", args)
        return self._one_at_a_time(_INSERT + (_REPLACE if replace else _IGNORE), rows)

    def _claim_staged(self) -> None:
        """``_claim`` of the staged rows' clients, gathered by the server."""
        refused = [
            r[0]
            for r in self.db.execute(
                "SELECT claim((SELECT array_agg(DISTINCT client_id) FROM alliance_staging))"
            )
        ]
        if refused:
            self._refuse(refused)

    def batch_recorder(self, replace: bool, chunk: int = 2000) -> BatchRecorder:
        """Collects a batch's scored rows and stores them in one transaction."""
        self.batch = BatchRecorder(self, replace, max(chunk, 20000))
        return self.batch

    def forget(
        self, client_id: str, session: int | None = None, instrument: str | None = None
    ) -> int:
        """Delete a client's records this role may see (all, one session, or one
        instrument's); a client with no session left is gone with their assignments."""
        sql, args = self._forget_sql(client_id, session, instrument)
        with self._transaction():
            deleted = int(self.db.execute(sql.replace("?", "%s"), args).rowcount)
            self.db.execute("SELECT release(%s)", (client_id,))
        return deleted

    def keep_batch_said(self, said: list[tuple[str, int]]) -> None:
        """Keep what was said at each session a batch added, where nothing is kept yet."""
        with self._transaction():
            self.db.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS alliance_said (said text, id bigint)"
            )
            self.db.execute("TRUNCATE alliance_said")
            with self.db.cursor().copy("COPY alliance_said (said, id) FROM STDIN") as copy:
                for row in said:
                    copy.write_row(row)
            self.db.execute(
                "UPDATE sessions s SET said_flags = k.said FROM alliance_said k "
                "WHERE s.id = k.id AND s.said_flags IS NULL"
            )

    def max_rowid(self) -> int:
        """The largest session row number this role sees (0 for none)."""
        return int(self._all("SELECT coalesce(max(id), 0) FROM sessions")[0][0])

    def unsaid_since(self, since: int) -> list[tuple[Any, ...]]:
        """(id, client_id, instrument, rater, session) of each session after ``since`` with
        nothing said kept yet."""
        return self._all(
            "SELECT id, client_id, instrument, rater, session FROM sessions "
            "WHERE id > %s AND said_flags IS NULL ORDER BY id",
            (since,),
        )

    # -- the clinic's assignments (a supervisor's) -------------------------------------------
    def sees_everything(self) -> bool:
        """Whether this login role sees the whole clinic: a supervisor or the schema's
        owner (a counselor sees only the clients assigned to them)."""
        found = self.db.execute(f"SELECT {_SUPERVISES} OR pg_has_role(session_user, "
                                "(SELECT nspowner FROM pg_namespace WHERE nspname = "
                                "'alliance'), 'MEMBER')").fetchone()  # fmt: skip
        return bool(found[0])

    def _supervisor_only(self) -> None:
        """Refuse a counselor's change of assignments before the server has to."""
        if not self.sees_everything():
            raise HistoryError(
                f"{self.path}: only a supervisor (a member of {SUPERVISOR}) may assign "
                "clients; nothing was changed"
            )

    def grant(self, client_id: str, role: str) -> bool:
        """Assign a client to a counselor's login role (False: it was already)."""
        self._supervisor_only()
        with self._transaction():
            found = self.db.execute(
                "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,)
            ).fetchone()
            if found is None or not found[0]:
                raise HistoryError(f"{self.path}: no login role {role!r} on this server")
            self.db.execute(
                "INSERT INTO clients (client_id, first_role) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (client_id, role),
            )
            added = self.db.execute(
                "INSERT INTO assignments (client_id, role) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (client_id, role),
            ).rowcount
        return bool(added)

    def revoke(self, client_id: str, role: str) -> bool:
        """Take a client from a counselor's login role (False: it was not assigned)."""
        self._supervisor_only()
        with self._transaction():
            gone = self.db.execute(
                "DELETE FROM assignments WHERE client_id = %s AND role = %s", (client_id, role)
            ).rowcount
        return bool(gone)

    def assignments(self) -> list[tuple[str, str]]:
        """(client_id, role) of every assignment this role may see."""
        return [
            (str(r[0]), str(r[1]))
            for r in self._all(
                'SELECT client_id, role FROM assignments ORDER BY client_id COLLATE "C", role'
            )
        ]

    def copy_rows(self) -> Iterator[tuple[Any, ...]]:
        """Every session this role may see, as stored, with its definition: (sha256,
        instrument, version, scale_ids, data, *the session's columns but the definition)."""
        with self.db.transaction(), self.db.cursor(name="alliance_copy") as cursor:
            cursor.itersize = 5000
            cursor.execute(COPY_ROWS + " ORDER BY s.id")
            yield from cursor

    # -- reading ---------------------------------------------------------------------------
    def snapshot(self) -> tuple[int, str | None, bytes | None, bool]:
        """(0, stamp, rows as UTF-8 bytes, fresh) of this role's kept caseload: rows None
        when none is kept; fresh when none of its series changed since (the fingerprint of
        its kept series is the same)."""
        self._fingerprint = str(self._all(FINGERPRINT)[0][0])
        try:  # the rows in binary: compressed, 0.7 MB for 10,000 clients
            row = self.db.cursor(binary=True).execute(SNAPSHOT, (self._fingerprint,)).fetchone()
        except self.pg.Error as exc:
            self.rollback()
            raise self._error(exc) from None
        return kept_snapshot(row)

    def keep_snapshot(self, version: int, stamp: str, rows: bytes) -> None:
        """Keep this role's caseload as read at ``snapshot``, unless one of its series
        changed since (a forgotten client's row must not come back). A cache: a failure
        keeps what was there."""
        try:
            with self.db.transaction():
                self.db.execute(
                    "INSERT INTO caseload_snapshot (fingerprint, stamp, rows) "
                    f"SELECT %s, %s, %s WHERE ({FINGERPRINT}) = %s "
                    "ON CONFLICT (role) DO UPDATE SET "
                    "fingerprint = EXCLUDED.fingerprint, stamp = EXCLUDED.stamp, "
                    "rows = EXCLUDED.rows",
                    (self._fingerprint, stamp, zlib.compress(rows, 1), self._fingerprint),
                )
        except self.pg.Error:
            self.rollback()

    _MADE_FROM = (
        "SELECT client_id, string_agg(token::text, ',' ORDER BY instrument, rater), "
        "bool_and(stamp IN ({marks})) FROM caseload GROUP BY client_id"
    )

    def keep_caseload(self, readings: list[tuple[Any, ...]], gone: list[tuple[Any, ...]]) -> None:
        """Keep new readings and drop series with no session left, each only if its series
        has not changed since it was read. A cache: a failure keeps what was there."""
        key = "client_id = %s AND instrument = %s AND rater = %s AND version = %s"
        try:
            with self.db.transaction(), self.db.cursor() as cursor:
                cursor.executemany(
                    "UPDATE caseload SET stamp = %s, sessions = %s, last_session = %s, "
                    "last_date = %s, last_total_pomp = %s, trend = %s, open_flags = %s, "
                    f"counselor = %s, token = %s WHERE {key}",
                    readings,
                )
                cursor.executemany(f"DELETE FROM caseload WHERE {key}", gone)
        except self.pg.Error:
            self.rollback()

    _ORDER = " ORDER BY session"
    _CASELOAD_SQL = (  # as SQLite's, each list in session order
        "SELECT client_id, instrument, rater, "
        f"string_agg(session::text, ','{_ORDER}), "
        f"string_agg(coalesce(total_pomp::text, 'n'), ','{_ORDER}), max(date), "
        "max(counselor), min(definition), max(definition), "
        f"string_agg(coalesce(scale_pomps, ''), ';'{_ORDER}), "
        f"string_agg(coalesce(date, ''), ','{_ORDER}), "
        f"string_agg(coalesce(counselor, ''), chr(31){_ORDER}), "
        f"string_agg(answers, ';'{_ORDER}) FROM sessions "
    )
    _BY_CLIENTS = "WHERE client_id = ANY(?) "

    def _clients_argument(self, clients: list[str]) -> Any:
        """These clients as a text array (``= ANY``)."""
        return clients

    def total_series(self) -> list[tuple[Any, ...]]:
        """Per series: sessions and total POMP, comma-joined (report sparklines)."""
        return self._all(
            "SELECT client_id, instrument, rater, string_agg(session::text, ',' ORDER BY "
            "session), string_agg(coalesce(total_pomp::text, 'n'), ',' ORDER BY session) "
            "FROM sessions GROUP BY client_id, instrument, rater"
        )


class BatchRecorder(BatchBase):
    """A batch's rows stored in one transaction on the server: chunks copied in and moved
    by one statement each; the whole batch is saved, or nothing."""

    def __init__(self, store: Store, replace: bool, chunk: int) -> None:
        super().__init__(store, replace, chunk)
        self.store: Store = store
        self.claimed: set[str] = set()  # clients this batch has claimed (see _claim_listed)
        self.writer: _Writer | None = None  # stores the chunks while the next is scored
        self._fast_block: Callable[[Sequence[tuple[Any, ...]]], str] | None = None
        store.begin()  # closing the store without finish() rolls this back
        self.last_rowid = int(store.db.execute("SELECT coalesce(max(id), 0) FROM sessions")
                              .fetchone()[0])  # fmt: skip

    def flush(self) -> None:
        """Hand what is queued to the writer thread, which stores the chunks in order
        while the batch scores the next ones. Python's part (each row as a line of COPY
        text, as a ``--jobs`` worker writes it) is done here; the thread's is the server's
        (copy, claim, move), waited for without holding the interpreter."""
        if self._fast_block is None:
            self._fast_block = self.copy_spool_lines()[0]
        for pending in (self.pending, self.pending_fast):
            if not pending:
                continue
            count, clients = len(pending), {row[0] for row in pending}
            if pending is self.pending_fast:  # the batch's constants are the statement's
                instrument, definition = self.fast_constants
                text, columns = self._fast_block(pending), SPOOL_COLUMNS
                constants: tuple[str, int, str] | None = (instrument, definition, self.now)
            else:
                text, columns, constants = "".join(map(copy_line, pending)), SESSION_COLUMNS, None
            pending.clear()
            if self.writer is None:
                self.writer = _Writer()
            step = functools.partial(self._store_chunk, text, count, clients, columns, constants)
            self._check(functools.partial(self.writer.submit, step))

    def _store_chunk(
        self,
        text: str,
        count: int,
        clients: set[str],
        columns: str,
        constants: tuple[str, int, str] | None,
    ) -> None:
        """(In the writer thread.) Store one chunk of COPY text and count it."""
        self._claim_new(clients)
        self.store.stage_text(text, columns)
        self._counted(count, self.store.move_staged(count, self.replace, True, constants))

    def _counted(self, count: int, dups: int) -> None:
        """Count a stored chunk of ``count`` rows, ``dups`` of them recorded already."""
        self.duplicates += dups
        self.saved += count - dups
        if self.on_stored is not None:
            self.on_stored(self.saved)

    def settle(self) -> None:
        """Wait until every chunk handed over is stored; raise what storing one raised
        (the batch's transaction is rolled back then)."""
        if self.writer is not None:
            self._check(self.writer.finish)
            self.writer = None

    def _check(self, step: Callable[[], Any]) -> None:
        """Run a step of the writing; on a failure (or an interruption), stop the writer
        thread, roll the batch back and raise the history's error."""
        try:
            step()
        except BaseException as exc:
            self.abandon()  # the thread stops before the rollback
            self.store.rollback()
            if isinstance(exc, self.store.pg.Error):
                raise self.store._error(exc) from None
            raise

    def abandon(self) -> None:
        """Stop the writer thread (the step under way ends first), storing nothing more."""
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.abandon()

    def mark(self) -> None:
        """As ``BatchBase.mark``, once the chunks handed over are stored."""
        self.flush()
        self.settle()
        super().mark()

    def undo(self) -> None:
        """As ``BatchBase.undo``, once the chunks handed over are stored."""
        self.settle()
        super().undo()

    spools_copy_text = True  # a --jobs worker writes COPY text lines (``copy_line``)

    @staticmethod
    def copy_spool_lines() -> tuple[
        Callable[[Sequence[tuple[Any, ...]]], str], Callable[[tuple[Any, ...]], str]
    ]:
        """How a ``--jobs`` worker writes FastRows rows (a block at once) and a whole row:
        one line of COPY text each, ``SPOOL_COLUMNS`` (the batch's instrument, definition
        and time, and what was said, are the parent's statement's)."""

        def whole(row: tuple[Any, ...]) -> str:
            return copy_line(row[0:1] + row[2:5] + row[6:7] + row[8:13] + row[14:15])

        return fast_block_writer(), whole

    def _claim_listed(self, path: str) -> bool:
        """Claim the clients a worker listed beside its rows (JSON), but those this batch
        claimed already; False when there is no list (the server gathers them then)."""
        try:
            with open(path, encoding="utf-8") as handle:
                listed = json.load(handle)
        except (OSError, ValueError):
            return False
        self._claim_new(listed)
        return True

    def _claim_new(self, clients: Iterable[str]) -> None:
        """Claim these clients, but those this batch claimed already."""
        new = [c for c in clients if c not in self.claimed]
        if new:
            self.store._claim(new)
            self.claimed.update(new)

    def add_spooled(self, path: str) -> None:
        """Store, in their order, the rows a ``--jobs`` worker wrote as COPY text: the file
        is streamed to the server unread, and moved as one chunk."""
        self.flush()
        self.settle()

        def store() -> None:
            claimed = self._claim_listed(f"{path}.clients")
            count = self.store.stage_file(path)
            if count:
                instrument, definition = self.fast_constants
                constants = (instrument, definition, self.now)
                dups = self.store.move_staged(count, self.replace, claimed, constants)
                self._counted(count, dups)

        self._check(store)

    def finish(self, keep: bool = True) -> None:
        """Write the last chunk, then commit (keep) or roll back the whole batch."""
        if keep:
            self.flush()
            self.settle()
            self.committing = True
            try:
                self.store.commit()
            except BaseException:
                self.committing = not self.store.in_transaction()
                raise
        else:
            self.pending.clear()
            self.pending_fast.clear()
            self.abandon()
            self.store.rollback()
            self.saved = self.duplicates = self.same = 0
            self.conflicts.clear()
        self.done = True


class _Writer:
    """One thread that runs a batch's storing steps in the order they were handed over,
    at most one waiting: the batch scores the next chunk while the server stores this one.
    The first step that fails stops the rest; ``finish`` raises its error."""

    def __init__(self) -> None:
        self.steps: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.skip = False
        self.thread = threading.Thread(target=self._run, name="alliance-store", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (step := self.steps.get()) is not None:
            if self.error is None and not self.skip:
                try:
                    step()
                except BaseException as exc:  # raised in the batch's thread by finish
                    self.error = exc

    def submit(self, step: Callable[[], None]) -> None:
        """Hand over one step (waits while one is already waiting); raise an earlier
        step's error instead."""
        if self.error is not None:
            raise self.error
        self.steps.put(step)

    def finish(self) -> None:
        """Wait for every step handed over; raise the first failure's error."""
        self.steps.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error

    def abandon(self) -> None:
        """Skip the steps not begun, and wait for the one under way (its statement ends
        on the server) so that the connection is free for the rollback."""
        self.skip = True
        if self.thread.is_alive():
            self.steps.put(None)  # waits only while a step runs: the others are skipped
            self.thread.join()


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: Any) -> str:
    """One value as PostgreSQL's COPY text writes it (``\\N`` for none)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES) if _needs_escape(value) else value
    return repr(value) if isinstance(value, float) else str(value)


def _no_float_zero(key: Any) -> bool:
    """Whether a look-up key may be kept: not a tuple holding a float zero (0.0 and -0.0
    are equal keys, but not the same COPY text)."""
    return not (isinstance(key, tuple) and 0.0 in key)


def _tail_text(values: tuple[Any, ...]) -> str:
    return "\t".join(map(copy_field, values))


def fast_block_writer() -> Callable[[Sequence[tuple[Any, ...]]], str]:
    """A writer of FastRows rows as COPY text lines (``SPOOL_COLUMNS``), column by column:
    the same text as ``copy_line`` of each row's fields, with look-ups for the values a
    batch repeats (rater, date, counselor; a score's four numbers) instead of a call per
    field."""
    # values as COPY text, remembered: a block's look-ups are C-level
    cells = Remembered(copy_field, 100_000)
    tails = Remembered(_tail_text, 100_000, keeps=_no_float_zero)

    def block(rows: Sequence[tuple[Any, ...]]) -> str:
        if not rows:
            return ""
        clients, raters, sessions, dates, answers, *scores, counselors = zip(*rows, strict=True)
        ids: Iterable[str] = clients
        if _needs_escape("".join(clients)):  # (an id is text: a non-empty, stripped cell)
            ids = map(copy_field, clients)
        lines = map(
            "\t".join,
            zip(
                ids,
                map(cells.__getitem__, raters),
                map(str, sessions),
                map(cells.__getitem__, dates),
                answers,  # canonical numbers (FastRows.plain): nothing to escape
                map(tails.__getitem__, zip(*scores, strict=True)),
                map(cells.__getitem__, counselors),
                strict=True,
            ),
        )
        return "\t\\N\n".join(lines) + "\t\\N\n"

    return block


def _needs_escape(text: str) -> bool:
    return "\\" in text or "\t" in text or "\n" in text or "\r" in text


def copy_line(row: Sequence[Any]) -> str:
    """A stored row (``SESSION_COLUMNS``) as one line of COPY text."""
    return "\t".join(map(copy_field, row)) + "\n"


def migration_scripts(start: int = 0) -> list[str]:
    """The SQL that brings a history from schema ``start`` to this alliance's: the schema
    (when new), each migration, and the version recorded (``alliance db setup`` prints it)."""
    scripts = []
    if start == 0:
        scripts.append("CREATE SCHEMA IF NOT EXISTS alliance;\nSET LOCAL search_path TO alliance;")
    else:
        scripts.append("SET LOCAL search_path TO alliance;")
    for version in range(start, SCHEMA_VERSION):
        scripts.append(MIGRATIONS[version].strip())
        scripts.append(
            "INSERT INTO meta (key, value) VALUES ('schema_version', "
            f"'{version + 1}') ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;"
        )
    return scripts


def connect_error(where: str, message: str) -> HistoryError:
    """The error for a connection the server refused or never answered: libpq's first line
    (without psycopg's "connection failed: "), and where a password would go."""
    text = message.strip().splitlines()[0] if message.strip() else "no reason given"
    for prefix in ("connection failed: ", "connection is bad: "):
        text = text.removeprefix(prefix)
    hint = "; give the password in ~/.pgpass (or PGPASSFILE)" if "password" in text else ""
    return HistoryError(f"{where}: cannot connect ({text}){hint}")


def _first_line(exc: BaseException) -> str:
    """A server error's first line (libpq's messages never hold the password)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
