"""Which history a command uses: an SQLite file (the default, one counselor) or a clinic's
PostgreSQL server (``--db postgresql://…`` or ``ALLIANCE_DB=postgresql://…``).

Both back ends implement ``store.base.HistoryStore``; this module only decides which one,
and keeps a server's password out of every message. The PostgreSQL module (and psycopg)
is imported only when a server is named.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from alliance_cli.core.errors import UsageProblem
from alliance_cli.store.base import HistoryStore, has_password, shown

ENV_DB = "ALLIANCE_DB"
SERVER_SCHEMES = ("postgresql://", "postgres://")
Location = Path | str  # a file, or a server's URL
_T = TypeVar("_T")


def is_server(db: object) -> bool:
    """Whether ``db`` names a PostgreSQL server (a ``postgresql://`` URL)."""
    return isinstance(db, str) and db.lower().startswith(SERVER_SCHEMES)


def default_path() -> Location:
    """The history: ALLIANCE_DB (a file or a server URL), else the user data directory."""
    env = os.environ.get(ENV_DB)
    if env:
        return env if is_server(env) else Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("alliance", appauthor=False)) / "history.sqlite"


def location(db: str | Path | None) -> Location:
    """Where the history is: ``--db`` (a file or a server URL), else the default."""
    if db is None or db == "":
        return default_path()
    if is_server(db):
        return str(db)
    return Path(db)


def refuse_password(db: str | Path | None) -> None:
    """A password written in ``--db`` would show in ``ps`` and the shell's history: refuse
    it (exit 2), and point to ``~/.pgpass``."""
    if is_server(db) and has_password(str(db)):
        raise UsageProblem(
            f"{shown(str(db))}: a password written in the URL would show in `ps` and the "
            "shell's history; leave it out and put it in ~/.pgpass (or PGPASSFILE, or use "
            "PGSERVICE)"
        )


def note_history(db: str | Path | None) -> Location:
    """The history's location, remembered as read by this run when it is a file (no output
    of the run may replace it)."""
    where = location(db)
    if isinstance(where, Path):
        from alliance_cli.store import sqlite

        sqlite.note_history(where)
    return where


def exists(where: Location) -> bool:
    """Whether a history may be there (a server always may: opening it says)."""
    return isinstance(where, str) or where.exists()


def open_store(
    db: str | Path | None = None,
    create: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> HistoryStore:
    """Open the history ``--db`` names (else ALLIANCE_DB, else the default file): a
    PostgreSQL server for a ``postgresql://`` URL, an SQLite file for anything else."""
    refuse_password(db)
    where = location(db)
    if isinstance(where, str):
        from alliance_cli.store import postgres

        return postgres.open_store(where, create=create, on_wait=on_wait)
    from alliance_cli.store import sqlite

    return sqlite.open_store(where, create=create, on_wait=on_wait)


def kept_on_server(db: str | Path | None, show: Callable[[Any], _T | None]) -> _T | None:
    """``show(reader)`` on a clinic server's ``postgres.KeptReader`` (the kept caseload,
    read through libpq without importing psycopg: ``store.libpq``); None for a file, or
    when that reader cannot be used or ``show`` finds the kept list not current (the
    caller then opens the whole store, which says what is wrong, if anything is). A server
    that refuses the connection is a ``HistoryError``, as from the store."""
    where = location(db)
    if not isinstance(where, str) or has_password(where):
        return None
    from alliance_cli.store import libpq, postgres

    try:
        with postgres.KeptReader(where) as reader:
            return show(reader)
    except libpq.ConnectFailed as exc:  # psycopg would fail the same way (and wait as long)
        raise postgres.connect_error(shown(where), str(exc)) from None
    except Exception:  # a shortcut only: the store does the work, or says why it cannot
        return None


def client_ids(where: Location) -> list[str]:
    """The client ids of a history file, read-only (shell completion; none for a server,
    which completion never connects to)."""
    if isinstance(where, str) or not where.is_file():
        return []
    from alliance_cli.store import sqlite

    return sqlite.client_ids(where)


__all__ = ["has_password", "shown"]
