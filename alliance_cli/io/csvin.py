"""Reading CSV exports: opening, encodings, the header, the delimiter, and the id columns."""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from alliance_cli.core.errors import DataFileError, UsageProblem
from alliance_cli.io.source import Source, decode_error

# -- reading CSV exports -------------------------------------------------------------------
ID_VARIANTS: dict[str, tuple[str, ...]] = {
    "client_id": (
        "client_id", "clientid", "client", "client_no", "client_number", "participant_id",
        "participant", "patient_id", "patient", "record_id", "subject_id", "subject", "pid",
    ),
    "session": ("session", "session_number", "session_no", "sessionid", "session_id", "visit",
                "visit_number", "sess", "week"),
    "date": ("date", "session_date", "completed", "completed_date", "date_completed",
             "visit_date", "survey_date"),
    "rater": ("rater", "respondent", "informant", "rater_type"),
    "counselor": ("counselor", "counsellor", "therapist", "clinician", "provider",
                  "counselor_id", "counsellor_id", "therapist_id", "clinician_id"),
}  # fmt: skip


def _norm(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.strip().lower()).strip("_")


# byte-order marks, longest first (UTF-32 LE begins like UTF-16 LE)
_BOMS = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
)


def open_input(name: str, encoding: str) -> IO[str]:
    """Open an input file (or '-' for stdin) as text, newline handling left to csv.

    A byte-order mark decides the encoding (UTF-8, UTF-16 or UTF-32, as Excel's "Unicode
    text" writes): it is what the file says it is, whatever ``--encoding`` says.
    """
    import codecs
    import io
    import sys

    enc = encoding_for(encoding, b"")
    try:
        info = codecs.lookup(enc)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):  # rot13, base64, zlib…
        raise UsageProblem(
            f"--encoding {encoding!r} is not a text encoding Python knows (try utf-8, latin-1 "
            "or cp1252)"
        ) from None
    try:
        raw: io.BufferedReader = (
            sys.stdin.buffer if name == "-" else open(name, "rb")  # type: ignore[assignment]  # noqa: SIM115
        )
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    try:
        head = raw.peek(4)[:4] if hasattr(raw, "peek") else b""
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    kind = next((what for magic, what in _NOT_TEXT if head.startswith(magic)), None)
    if kind is not None:
        if name != "-":
            raw.close()
        raise DataFileError(f"{name}: {kind}")
    return io.TextIOWrapper(raw, encoding=encoding_for(encoding, head), newline="")


# files that are no text export, known by their first bytes, and what to do instead
_NOT_TEXT = (
    (b"PK\x03\x04", "a ZIP archive (an Excel workbook, or zipped exports), not CSV text: "
     "save the sheet as CSV UTF-8, or unzip it first"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls), not CSV text: save the sheet as "
     "CSV UTF-8"),
    (b"\x1f\x8b", "gzip-compressed, not CSV text: unzip it first (or zcat FILE | alliance "
     "batch - …)"),
    (b"%PDF", "a PDF, not CSV text: export the data itself as CSV"),
)  # fmt: skip


def encoding_for(encoding: str, head: bytes) -> str:
    """The decoding for a file whose first bytes are ``head``, asked for as ``encoding``: a
    byte-order mark decides; UTF-8 reads past a BOM (``utf-8-sig``) either way."""
    for bom, by_bom in _BOMS:
        if head.startswith(bom):
            return by_bom
    utf8 = encoding.lower().replace("_", "-") in ("utf-8", "utf8")
    if utf8 and len(head) >= 4 and b"\0" in head:  # UTF-16/32 without a BOM: where the NULs
        nul = tuple(b == 0 for b in head[:4])  # are (as RFC 4627 tells JSON's encoding)
        by_nuls = {
            (True, True, True, False): "utf-32-be",
            (False, True, True, True): "utf-32-le",
            (True, False, True, False): "utf-16-be",
            (False, True, False, True): "utf-16-le",
        }
        if nul in by_nuls:
            return by_nuls[nul]
    return "utf-8-sig" if utf8 else encoding


def sniff_delimiter(header_line: str) -> str:
    """Comma, semicolon or tab: whichever the header line uses most (comma on a tie)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def parse_delimiter(text: str | None) -> str | None:
    """``--delimiter``: one character, or 'tab' / '\\t'; None means sniff the header."""
    if text is None:
        return None
    delimiter = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise UsageProblem(f"--delimiter {text!r} must be one character (or 'tab')")
    return delimiter


def find_id_columns(header: Sequence[str], named: dict[str, str | None]) -> dict[str, int]:
    """Positions of client id, session, date and rater columns (named ones must exist)."""
    normalised = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for role, variants in ID_VARIANTS.items():
        wanted = named.get(role)
        if wanted:
            if wanted not in header:
                raise UsageProblem(
                    f"no column {wanted!r} for {role} (columns: {', '.join(header)})"
                )
            found[role] = list(header).index(wanted)
            continue
        for variant in variants:
            if variant in normalised:
                found[role] = normalised.index(variant)
                break
    return found


HEADER_CAP = 4 << 20  # a header line longer than this (no line end) is not an export's


def read_header(handle: IO[str], name: str, delimiter: str | None) -> tuple[list[str], str, int]:
    """Read the header line; sniff the delimiter; refuse empty files.

    Excel's ``sep=;`` first line names the delimiter and is not the header: returns how
    many such lines came before it (0 or 1).
    """
    try:
        first = handle.readline(HEADER_CAP)
        before = 0
        excel = re.fullmatch(r"sep=(.)\r?\n?", first)
        if excel:
            delimiter = delimiter or excel.group(1)
            first, before = handle.readline(HEADER_CAP), 1
    except UnicodeError as exc:
        raise decode_error(name, exc) from None
    line = before + 1
    if "\0" in first:
        raise DataFileError(
            f"{name}:{line}: the header holds NUL bytes: not a text export (a binary file?)"
        )
    if len(first) >= HEADER_CAP and first[-1] not in "\n\r":
        raise DataFileError(
            f"{name}:{line}: no line end in the first {HEADER_CAP // (1 << 20)} MiB: not a "
            "CSV export (expected a header row)"
        )
    if not first.strip():
        raise DataFileError(f"{name}: empty file (expected a header row)")
    delim = delimiter or sniff_delimiter(first)
    try:
        header = next(csv.reader([first], delimiter=delim))
    except csv.Error as exc:  # (a header cell over the reader's 128 KiB)
        raise DataFileError(f"{name}:{line}: the header cannot be read as CSV ({exc})") from None
    return header, delim, before


def _starts_with_brace(handle: IO[str], name: str) -> bool:
    """Whether the text starts with '{' (after white space), without consuming it."""
    buffer = getattr(handle, "buffer", None)
    if buffer is None or not hasattr(buffer, "peek"):
        return False
    try:
        head = buffer.peek(64)[:64]
    except OSError:
        return False
    encoding = getattr(handle, "encoding", "") or "utf-8"
    try:  # the first characters as the file's encoding gives them (UTF-16 and 32 too)
        text = str(head.decode(encoding.removesuffix("-sig"), errors="ignore"))
    except LookupError:
        return False
    return text.lstrip("\ufeff \t\r\n")[:1] == "{"


def open_sources(
    names: Sequence[str],
    encoding: str,
    delimiter: str | None,
    instrument: object = None,
    questionnaire: Path | None = None,
    rater: str | None = None,
) -> list[Source]:
    """Open every input and check they share one header.

    An input that starts with ``{`` is FHIR (QuestionnaireResponses: one, a Bundle, or
    NDJSON), rebuilt as rows when ``instrument`` is given, with the answer weights and url
    of ``questionnaire`` (``--questionnaire``) and ``rater`` for responses that name none.
    """
    sources: list[Source] = []
    key: Any = None
    for name in names:
        from alliance_cli.io.parquet import is_parquet

        if is_parquet(name):
            from alliance_cli.io.parquet import open_parquet

            header, empty, lines = open_parquet(name)
            source = Source(name, empty, header, ",", lines=lines, layout="parquet")
            source.line_of = lambda line: line - 1  # the row: 1 is the first
            source.note = f"layout: Parquet in {name} (numbers in errors are rows, 1 the first)"
            if sources and [h.strip() for h in header] != [h.strip() for h in sources[0].header]:
                raise DataFileError(f"{name}: columns differ from {sources[0].name}")
            sources.append(source)
            continue
        handle = open_input(name, encoding)
        shown = "stdin" if name == "-" else name
        if instrument is not None and _starts_with_brace(handle, shown):
            from alliance_cli.io.fhir_rows import fhir_source

            if questionnaire is not None and key is None:
                key = load_questionnaire(questionnaire)
            source = fhir_source(shown, handle, instrument, key, rater)
            if sources and sources[0].layout != "fhir":
                raise DataFileError(f"{shown}: FHIR, while {sources[0].name} is CSV")
            sources.append(source)
            continue
        if sources and sources[0].layout == "fhir":
            raise DataFileError(f"{shown}: CSV, while {sources[0].name} is FHIR")
        header, delim, before = read_header(handle, shown, delimiter)
        if sources and [h.strip() for h in header] != [h.strip() for h in sources[0].header]:
            raise DataFileError(
                f"{shown}: columns differ from {sources[0].name}; "
                "files scored together need the same header"
            )
        sources.append(Source(shown, handle, header, delim, skipped=before))
    return sources


def load_questionnaire(path: Path) -> Any:
    """The one Questionnaire in a file (alone, or in a Bundle with its ValueSets), read
    leniently: only its url, linkIds and answer weights are used, so a published form with
    a schema slip elsewhere (LHC-Forms' numeric optionPrefix) is still read."""
    from alliance_cli.io.answers import parse_json
    from alliance_cli.io.fhir import answer_keys
    from alliance_cli.io.files import read_side_file

    text = read_side_file(path, "--questionnaire")
    doc, why = parse_json(text)
    if why is not None:
        raise DataFileError(f"{path}: --questionnaire: {why}")
    keys = answer_keys(doc)
    if len(keys) != 1:
        found = "no Questionnaire" if not keys else f"{len(keys)} Questionnaires"
        raise UsageProblem(f"{path}: --questionnaire needs one Questionnaire; it holds {found}")
    if not keys[0].url and not keys[0].id:
        raise UsageProblem(f"{path}: the Questionnaire has no url or id to match responses by")
    return keys[0]
