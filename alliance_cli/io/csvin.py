"""Reading CSV exports: opening, encodings, the header, the delimiter, and the id columns."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from alliance_cli.core.errors import DataFileError, UsageProblem

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


def open_input(name: str, encoding: str) -> IO[str]:
    """Open an input file (or '-' for stdin) as text, newline handling left to csv."""
    import codecs
    import io
    import sys

    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    try:
        codecs.lookup(enc)
    except LookupError:
        raise UsageProblem(
            f"--encoding {encoding!r} is not an encoding Python knows (try utf-8, latin-1 "
            "or cp1252)"
        ) from None
    if name == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=enc, newline="")
    try:
        return open(name, encoding=enc, newline="")
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None


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


def read_header(handle: IO[str], name: str, delimiter: str | None) -> tuple[list[str], str]:
    """Read the header line; sniff the delimiter; refuse empty files."""
    try:
        first = handle.readline()
    except UnicodeDecodeError as exc:
        raise _decode_error(name, exc) from None
    if not first.strip():
        raise DataFileError(f"{name}: empty file (expected a header row)")
    delim = delimiter or sniff_delimiter(first)
    header = next(csv.reader([first], delimiter=delim))
    return header, delim


def _decode_error(name: str, exc: UnicodeDecodeError) -> DataFileError:
    return DataFileError(
        f"{name}: not {exc.encoding} text at byte {exc.start} "
        "(for exports from Excel or older systems try --encoding latin-1 or cp1252)"
    )


@dataclass
class Source:
    """One input file, opened, with its header read."""

    name: str
    handle: IO[str]
    header: list[str]
    delimiter: str


def open_sources(names: Sequence[str], encoding: str, delimiter: str | None) -> list[Source]:
    """Open every input and check they share one header."""
    sources: list[Source] = []
    for name in names:
        handle = open_input(name, encoding)
        shown = "stdin" if name == "-" else name
        header, delim = read_header(handle, shown, delimiter)
        if sources and [h.strip() for h in header] != [h.strip() for h in sources[0].header]:
            raise DataFileError(
                f"{shown}: columns differ from {sources[0].name}; "
                "files scored together need the same header"
            )
        sources.append(Source(shown, handle, header, delim))
    return sources
