"""A few read-only queries sent through libpq itself, without psycopg: the warm ``clients``
on a clinic's server only checks that the kept caseload is current and fetches it, and
importing psycopg (its libpq binding, 250 exception classes, asyncio, importlib.metadata)
costs more than all of that (0.15-0.25 s of a 0.5 s target; docs/clinic-server.md).

The library is a libpq psycopg loads: the one bundled with psycopg-binary, else the
system's ``libpq.so.5``. Connection settings are libpq's own, as for psycopg: the URL,
PGSERVICE, ~/.pgpass, sslmode. Linux only, and only where psycopg is installed (a history
that cannot save must not seem to work). Every failure is a ``LinkError``: the caller then
does the same work through psycopg, which says what went wrong; but a connection the server
refused or never completed (``ConnectFailed``) is said at once, not tried twice.
"""

from __future__ import annotations

import ctypes
import glob
import importlib.util
import os
import struct
import sys
from collections.abc import Sequence
from typing import Any

CONNECTION_OK = 0
CONNECTION_BAD = 1
PGRES_POLLING_FAILED, PGRES_POLLING_READING, PGRES_POLLING_WRITING, PGRES_POLLING_OK = 0, 1, 2, 3
PGRES_COMMAND_OK = 1
PGRES_TUPLES_OK = 2
BINARY = 1  # results in binary: a bytea column arrives as its bytes, not as hex


class LinkError(Exception):
    """The query could not be run here (the caller uses psycopg instead)."""


class ConnectFailed(LinkError):
    """The server refused the connection, or could not be reached (libpq's message): psycopg
    would fail the same way, so the caller says so rather than try again."""


def _text(data: bytes) -> str:
    return data.decode("utf-8")


def _signed(data: bytes) -> int:
    return int.from_bytes(data, "big", signed=True)


def _float8(data: bytes) -> float:
    return float(struct.unpack(">d", data)[0])


# binary result formats by type OID (pg_type.dat); any other type is a LinkError
_DECODE: dict[int, Any] = {
    16: lambda data: data == b"\x01",  # bool
    17: bytes,  # bytea
    19: _text,  # name
    20: _signed,  # int8
    21: _signed,  # int2
    23: _signed,  # int4
    25: _text,  # text
    701: _float8,  # float8
    1043: _text,  # varchar
}


def library_path() -> str | None:
    """The libpq psycopg would use here (None: not Linux, no psycopg, or none found)."""
    try:
        if not sys.platform.startswith("linux") or importlib.util.find_spec("psycopg") is None:
            return None
        impl = os.environ.get("PSYCOPG_IMPL", "")
        binary = importlib.util.find_spec("psycopg_binary") if impl in ("", "binary") else None
    except (ImportError, ValueError):  # (a module half set up: leave it to psycopg)
        return None
    if binary is not None and binary.submodule_search_locations:
        package = next(iter(binary.submodule_search_locations))
        found = sorted(glob.glob(os.path.join(package + ".libs", "libpq-*.so*")))
        if found:
            return found[0]
        return None  # a psycopg-binary that links libpq otherwise: leave it to psycopg
    return None if impl == "binary" else "libpq.so.5"


_LIB: ctypes.CDLL | None = None


def _library() -> ctypes.CDLL:
    """libpq, loaded once, with the signatures of the functions used here."""
    global _LIB
    if _LIB is not None:
        return _LIB
    path = library_path()
    if path is None:
        raise LinkError("no libpq to use")
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise LinkError(str(exc)) from None
    ptr, text, num = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "PQconnectStart": (ptr, [text]),
        "PQconnectPoll": (num, [ptr]),
        "PQsocket": (num, [ptr]),
        "PQstatus": (num, [ptr]),
        "PQerrorMessage": (text, [ptr]),
        "PQfinish": (None, [ptr]),
        "PQexecParams": (ptr, [ptr, text, num, ptr, ctypes.POINTER(text), ptr, ptr, num]),
        "PQresultStatus": (num, [ptr]),
        "PQntuples": (num, [ptr]),
        "PQnfields": (num, [ptr]),
        "PQftype": (ctypes.c_uint, [ptr, num]),
        "PQgetisnull": (num, [ptr, num, num]),
        "PQgetvalue": (ptr, [ptr, num, num]),
        "PQgetlength": (num, [ptr, num, num]),
        "PQclear": (None, [ptr]),
    }
    for name, (restype, argtypes) in signatures.items():
        try:
            function = getattr(lib, name)
        except AttributeError:  # not a libpq this module knows
            raise LinkError(f"no {name} in {path}") from None
        function.restype, function.argtypes = restype, argtypes
    _LIB = lib
    return lib


def numbered(sql: str) -> str:
    """A query written with ``%s`` placeholders (psycopg's) with libpq's ``$1``, ``$2``…"""
    parts = sql.split("%s")
    return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))


class Link:
    """One connection to a server, for read-only queries with text parameters."""

    def __init__(self, url: str) -> None:
        self.lib = _library()
        self.conn = self.lib.PQconnectStart(url.encode("utf-8"))
        if not self.conn:
            raise LinkError("out of memory")
        try:
            self._connect()
        except BaseException:  # (Ctrl-C while waiting for the server, too)
            self.close()
            raise

    def _connect(self) -> None:
        """Finish connecting, waiting for the socket in Python (libpq's own wait would not
        let Ctrl-C through while an unreachable server is tried)."""
        import select

        lib = self.lib
        state = PGRES_POLLING_WRITING
        while lib.PQstatus(self.conn) != CONNECTION_BAD and state != PGRES_POLLING_OK:
            if state == PGRES_POLLING_FAILED:
                break
            sock = lib.PQsocket(self.conn)
            if sock < 0:
                break
            if state == PGRES_POLLING_READING:
                select.select([sock], [], [])
            else:
                select.select([], [sock], [])
            state = lib.PQconnectPoll(self.conn)
        if lib.PQstatus(self.conn) != CONNECTION_OK:
            message = (lib.PQerrorMessage(self.conn) or b"").decode("utf-8", "replace")
            raise ConnectFailed(message)

    def rows(self, sql: str, params: Sequence[str] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement (``%s`` placeholders), each value decoded by its type."""
        lib = self.lib
        values = (ctypes.c_char_p * len(params))(*(p.encode("utf-8") for p in params))
        result = lib.PQexecParams(
            self.conn, numbered(sql).encode("utf-8"), len(params), None, values, None, None,
            BINARY,
        )  # fmt: skip
        if not result:
            raise LinkError("no result")
        try:
            status = lib.PQresultStatus(result)
            if status == PGRES_COMMAND_OK:
                return []
            if status != PGRES_TUPLES_OK:
                raise LinkError(f"result status {status}")
            fields = lib.PQnfields(result)
            decode = []
            for col in range(fields):
                kind = lib.PQftype(result, col)
                if kind not in _DECODE:
                    raise LinkError(f"type {kind}")
                decode.append(_DECODE[kind])
            try:
                return self._decoded(result, fields, decode)
            except UnicodeDecodeError as exc:  # (the connection's encoding is set to UTF8)
                raise LinkError(str(exc)) from None
        finally:
            lib.PQclear(result)

    def _decoded(self, result: Any, fields: int, decode: list[Any]) -> list[tuple[Any, ...]]:
        """Every row of a result, each value decoded by its column's function."""
        lib = self.lib
        out = []
        for row in range(lib.PQntuples(result)):
            values: list[Any] = []
            for col in range(fields):
                if lib.PQgetisnull(result, row, col):
                    values.append(None)
                    continue
                length = lib.PQgetlength(result, row, col)
                values.append(
                    decode[col](ctypes.string_at(lib.PQgetvalue(result, row, col), length))
                )
            out.append(tuple(values))
        return out

    def close(self) -> None:
        """Close the connection (again: nothing)."""
        if self.conn:
            self.lib.PQfinish(self.conn)
            self.conn = None
