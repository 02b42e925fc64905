"""Export layouts: REDCap, Qualtrics and long format, recognised from the header and rows.

Each layout is read into the one shape the batch engine scores: a header and rows of
cells, one row per administration, with line numbers that point into the file as written.
What was recognised is said on stderr (``Adapter.notes``); ``--layout`` forces a choice.

The rules come from real exports (``../shared/real-formats/NOTES.md``):

- REDCap's records export: the first column is the record id, whatever its name; a session
  is ``redcap_repeat_instance`` when filled, else the number in the event name
  (``session_3_arm_1`` is 3; ``_arm_N`` is the arm, never the session); a row whose item
  cells are all blank is not an administration of this form; ``<form>_complete`` is 0
  Incomplete, 1 Unverified, 2 Complete, and status does not track the answers, so rows are
  left out on it only with ``--complete-only``.
- Qualtrics: three header rows (export name, question text, ``{"ImportId": ...}``); two in
  the legacy exporter (``V1..V10``, then the names); ``Status`` 1 and 2 are survey previews
  and tests, left out and counted; ``-99`` is a question seen but not answered (missing);
  ``Finished`` 0 is left out only with ``--complete-only``.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, NamedTuple

from alliance_cli.core import words
from alliance_cli.core.errors import UsageProblem
from alliance_cli.io.source import (
    RowRefused,
    Source,
    bounded_lines,
    line_cap,
    records_read_again,
)

LAYOUTS = ("auto", "csv", "redcap", "qualtrics", "long")

_REDCAP_IDS = ("record_id", "study_id", "participant_id", "record", "subject_id")
_QUALTRICS_META = {
    "responseid", "startdate", "enddate", "recordeddate", "distributionchannel", "ipaddress",
    "progress", "finished", "userlanguage", "responsetype",
}  # fmt: skip
_ARM = re.compile(r"_arm_\d+$")
_TRAILING_NUMBER = re.compile(r"(\d+)$")

# Qualtrics Status (response type): 0 IP Address (a real response), 4 Imported, 16 Offline;
# 1 Survey Preview, 2 Survey Test, 8 Spam, 9 Preview Spam, 12 Imported Spam, 17 Offline
# Preview are left out. A choice-text export writes the names.
_QUALTRICS_REAL = {"0", "4", "16", "ip address", "imported", "offline", ""}


@dataclass
class Adapter:
    """How to read one layout: rows added or left out, cells recoded, and what was seen."""

    name: str = "csv"
    notes: list[str] = field(default_factory=list)
    # why a row is left out (a key of Stats.excluded), or None to score it
    exclude: Callable[[list[str]], str | None] | None = None
    # cell text read as another (Qualtrics -99: seen, not answered)
    recode: dict[str, str] = field(default_factory=dict)


def recognise_header(header: Sequence[str]) -> str:
    """The layout a header says it is: 'redcap', 'qualtrics' or 'csv' (long is asked for)."""
    names = [h.strip().lower() for h in header]
    if names and names[0] in _REDCAP_IDS and "field_name" in names and "value" in names:
        return "redcap_eav"  # REDCap's EAV export: one row per record, event, field and value
    if any(n.startswith("redcap_") for n in names):
        return "redcap"
    if names and names[0] in _REDCAP_IDS and any(n.endswith("_complete") for n in names):
        return "redcap"
    # Qualtrics by its signature, several of its own columns (a CSV that merely keeps a
    # ResponseId column is a CSV), or the legacy V1, V2, V3 first columns
    compact = {n.replace(" ", "").replace("_", "") for n in names}
    if len(_QUALTRICS_META & compact) >= 3 or names[:3] == ["v1", "v2", "v3"]:
        return "qualtrics"
    return "csv"


def qualtrics_header_rows(
    header: Sequence[str], handle: IO[str], delimiter: str
) -> tuple[list[str], int, Iterable[str]]:
    """Read past the header rows that follow the first: two in current exports (question
    text, then ``{"ImportId": ...}``), one in legacy ones (whose first row is ``V1..V10``
    and the item tags, the second the names of V1..V10). Returns the header to use (legacy:
    V1..V10 renamed from the second row), the file lines the extra rows took, and the lines
    to read the data from (what was peeked, then the rest)."""
    lines: list[str] = []
    rest = bounded_lines(handle, line_cap(len(header)))  # (no line read whole past a record)

    def feed() -> Iterator[str]:
        for line in rest:
            lines.append(line)
            yield line

    reader = csv.reader(feed(), delimiter=delimiter)
    try:
        peeked = list(itertools.islice(reader, 2))
    except csv.Error:  # not header rows: the engine reads these lines again, and rejects
        peeked = []
    second = peeked[0] if peeked else []
    third = peeked[1] if len(peeked) > 1 else []
    names = list(header)
    legacy = [h.strip().lower() for h in header[:3]] == ["v1", "v2", "v3"]
    if any(cell.lstrip().startswith(('{"ImportId"', "{'ImportId'")) for cell in third):
        rows = 2
    elif legacy and second and second[0].strip().lower() == "responseid":
        rows = 1
        names = [
            second[i] if re.fullmatch(r"V\d+", h.strip()) and i < len(second) else h
            for i, h in enumerate(header)
        ]
    else:
        rows = 0
    if rows == 0:
        return names, 0, itertools.chain(lines, rest)
    # the file lines the header rows took (question text may hold line breaks)
    replay = csv.reader(iter(lines), delimiter=delimiter)
    for _ in itertools.islice(replay, rows):
        pass
    taken = replay.line_num
    return names, taken, itertools.chain(lines[taken:], rest)


def adapter_for(
    name: str,
    header: Sequence[str],
    items: Sequence[int],
    complete_only: bool,
    session_said: str | None = None,
) -> Adapter:
    """The adapter of a recognised layout, given the header and the item columns (and, for
    REDCap, what its session is read from)."""
    names = [h.strip().lower() for h in header]
    if name == "redcap":
        return _redcap(header, names, items, complete_only, session_said)
    if name == "qualtrics":
        return _qualtrics(names, complete_only)
    if complete_only:
        raise UsageProblem(
            "--complete-only reads a REDCap form's status or Qualtrics' Finished column; "
            "this file is neither (force one with --layout)"
        )
    return Adapter()


def redcap_ids(header: Sequence[str], id_names: dict[str, str | None]) -> dict[str, str | None]:
    """The id columns a REDCap export names: its first column is the record id, whatever
    its name (unless ``--id-column`` named another)."""
    named = dict(id_names)
    named["client_id"] = named.get("client_id") or header[0].strip()
    return named


def redcap_form_fields(header: Sequence[str], items: Sequence[int], ids: dict[str, int]) -> None:
    """Add the form's own date and counselor fields (``<form>_session_date``,
    ``<form>_counselor``, as ``instruments export --to redcap`` writes them) to ids, where
    no date or counselor column was found or named."""
    form = re.sub(r"_?\d+$", "", header[items[0]])
    lowered = [h.lower() for h in header]
    for role, field_name in (("date", "session_date"), ("counselor", "counselor")):
        wanted = f"{form}_{field_name}".lower()
        if role not in ids and wanted in lowered:
            ids[role] = lowered.index(wanted)


def skip_qualtrics_rows(source: Source) -> None:
    """Read a Qualtrics export's source past its extra header rows (counted in its lines)."""
    names, taken, lines = qualtrics_header_rows(source.header, source.handle, source.delimiter)
    source.skipped += taken
    source.lines = lines
    source.header = names


def rebuild_long(
    source: Source,
    id_columns: dict[str, int],
    item_column: str | None,
    value_column: str | None,
    events: bool = False,
) -> str:
    """Make a long file's source read as one row per response set; what was seen. With
    ``events`` (REDCap's EAV export), sets are a record's (event, repeat instance), numbered
    as sessions in event order, then instance, as a REDCap records export's are."""
    rebuilt = pivot_long(
        source.name, source.header, source.rows_from(), source.delimiter, source.skipped,
        id_columns, item_column, value_column, events,
    )  # fmt: skip
    if source.name != "stdin":
        source.handle.close()
    source.handle = io.StringIO(rebuilt.text)
    source.header = next(csv.reader([source.handle.readline()]))
    source.delimiter, source.lines, source.skipped = ",", None, 0
    source.line_of = lambda line, at=rebuilt.line_of: at[line - 2]
    source.early = rebuilt.early
    source.long_items = rebuilt.items
    source.long_lines = rebuilt.line_of
    return rebuilt.note


def count_sessions(source: Source, item_names: Sequence[str]) -> None:
    """REDCap EAV rebuilt as rows: fill each row's session, counting a record's rows with
    any item answered in event order (as the file first lists each event), then instance,
    as a records export's are counted (``redcap_session``)."""
    names = [h.strip().lower() for h in source.header]
    if "session" not in names or "redcap_event_name" not in names:
        return
    at, event_at = names.index("session"), names.index("redcap_event_name")
    items = [p for p, name in enumerate(source.header) if name in set(item_names)]
    instance_at = (
        names.index("redcap_repeat_instance") if "redcap_repeat_instance" in names else None
    )
    rows = list(csv.reader(source.handle))
    order: dict[str, int] = {}
    for row in rows:
        order.setdefault(row[event_at], len(order))
    ranked: dict[str, list[tuple[int, int, int]]] = {}
    for n, row in enumerate(rows):
        if any(row[p].strip() for p in items):
            instance = row[instance_at] if instance_at is not None else ""
            ranked.setdefault(row[0], []).append((order[row[event_at]], _instance(instance), n))
    for places in ranked.values():
        for session, (_, _, n) in enumerate(sorted(places), start=1):
            rows[n][at] = str(session)
    text = io.StringIO()
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(text, guard=False)  # read back by the engine, never a file
    writer.writerow(source.header)
    writer.writerows(rows)
    source.handle = io.StringIO(text.getvalue())
    source.handle.readline()


def drop_unknown_items(source: Source, unknown: Sequence[str], instrument_id: str) -> int:
    """Long format: reject each response set that answers an item the form does not have
    (naming it), and drop those item names' columns; the rest are scored. Returns how
    many sets were rejected."""
    drop = {i for i, name in enumerate(source.header) if name in set(unknown)}
    if not drop:
        return 0
    lines = source.long_lines
    rows = list(csv.reader(source.handle))
    text = io.StringIO()
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(text, guard=False)  # read back by the engine, never a file
    writer.writerow([h for i, h in enumerate(source.header) if i not in drop])
    kept_lines: list[int] = []
    rejected = 0
    for row, line in zip(rows, lines, strict=True):
        bad = [source.header[i] for i in sorted(drop) if row[i].strip()]
        if bad:
            rejected += 1
            reason = (
                f"item {', '.join(bad)}: no item of {instrument_id!r}; this response set is "
                "not scored"
            )
            source.early.append((line, "item", bad[0], reason, row[0]))
            continue
        writer.writerow([cell for i, cell in enumerate(row) if i not in drop])
        kept_lines.append(line)
    source.handle = io.StringIO(text.getvalue())
    source.header = next(csv.reader([source.handle.readline()]))
    source.line_of = lambda line, at=kept_lines: at[line - 2]
    source.long_items = [n for n in source.long_items if n not in set(unknown)]
    return rejected


def redcap_session(
    header: Sequence[str], sessions_file: Path | None = None
) -> tuple[str, Callable[[Sequence[int]], Callable[[list[str]], str]]] | None:
    """REDCap's session, when the export has no session column: (the rule, said in words;
    a maker that, given the item columns, returns the function reading a row's session),
    or None when there is nothing to read it from.

    With events, by default each record's administrations (rows with any item answered) are
    numbered 1, 2, … in the order of their events, as the file first lists each event, then
    of their repeat instance: ``dose_1_arm_1`` and ``visit_1_arm_1`` are two sessions, and
    a repeating form's instances are sessions of their own. Without events the repeat
    instance is the session. ``sessions_file`` (``--sessions``) gives the session of each
    event: REDCap's event table (each event's place in its arm), or ``event,session`` or
    ``event,instance,session`` rows. A row the rule cannot number is refused
    (``RowRefused``) with the reason.
    """
    names = [h.strip().lower() for h in header]
    if "session" in names:
        return None
    instance = names.index("redcap_repeat_instance") if "redcap_repeat_instance" in names else None
    event = names.index("redcap_event_name") if "redcap_event_name" in names else None
    if instance is None and event is None:
        return None
    table = read_sessions_table(sessions_file) if sessions_file is not None else None
    if event is None and table is None:  # no events: the repeat instance is the session

        def by_instance(_items: Sequence[int]) -> Callable[[list[str]], str]:
            assert instance is not None
            return lambda row: row[instance].strip()

        return "session from redcap_repeat_instance", by_instance

    def maker(items: Sequence[int]) -> Callable[[list[str]], str]:
        order: dict[str, int] = {}  # event -> the order the file first lists it in
        latest: dict[str, tuple[int, int, int]] = {}  # record -> (event order, instance, n)

        def session(row: list[str]) -> str:
            name = row[event].strip() if event is not None else ""
            at = order.setdefault(name, len(order))
            text = row[instance].strip() if instance is not None else ""
            number = int(text) if text.isdigit() else 1
            if not any(row[p].strip() for p in items):
                return ""  # not an administration: numbers none
            if table is not None:
                found = table.get((name, number))
                if found is None and number == 1:  # an event's session: its first instance
                    found = table.get((name, None))
                if found is None:
                    raise RowRefused(
                        "redcap_event_name", name,
                        f"event {name!r}{f' instance {number}' if text else ''} has no "
                        f"session in {sessions_file}",
                    )  # fmt: skip
                return str(found)
            record = row[0].strip()
            before = latest.get(record)
            if before is not None and (at, number) <= before[:2]:
                raise RowRefused(
                    "redcap_event_name", name,
                    f"record {record!r}: event {name!r} comes after a later event of this "
                    "record in the file, so its sessions cannot be numbered in event order; "
                    "give the sessions with --sessions FILE",
                )  # fmt: skip
            n = before[2] + 1 if before is not None else 1
            latest[record] = (at, number, n)
            return str(n)

        return session

    if table is not None:
        return f"sessions from {sessions_file}", maker
    rule = "each record's administrations counted in event order"
    if instance is not None:
        rule += ", then instance"
    return f"session: {rule}, in this file (--sessions FILE fixes them per event)", maker


def read_sessions_table(path: Path) -> dict[tuple[str, int | None], int]:
    """``--sessions FILE``: CSV rows ``event,session`` or ``event,instance,session`` (a
    header line is allowed), the session a REDCap event (and instance) is."""
    from alliance_cli.core.contract import session_problem
    from alliance_cli.core.errors import DataFileError
    from alliance_cli.io.files import read_side_file

    text = read_side_file(path, "--sessions")
    table: dict[tuple[str, int | None], int] = {}
    rows = list(csv.reader(io.StringIO(text)))
    head = [c.strip().lower() for c in rows[0]] if rows else []
    if "unique_event_name" in head:  # REDCap's event table: each event's place in its arm
        event_at = head.index("unique_event_name")
        arm_at = head.index("arm_num") if "arm_num" in head else None
        places: dict[str, int] = {}
        for row in rows[1:]:
            if len(row) > event_at and row[event_at].strip():
                arm = row[arm_at].strip() if arm_at is not None and len(row) > arm_at else ""
                places[arm] = places.get(arm, 0) + 1
                table[(row[event_at].strip(), None)] = places[arm]
        if not table:
            raise DataFileError(f"{path}: --sessions: an event table with no event")
        return table
    for number, row in enumerate(rows, start=1):
        cells = [c.strip() for c in row]
        if not any(cells):
            continue
        if number == 1 and not cells[-1].isdigit():
            continue  # a header
        if len(cells) not in (2, 3) or session_problem(cells[-1]) is not None:
            raise DataFileError(
                f"{path}:{number}: --sessions: expected event,session or "
                "event,instance,session (a whole session number from 1)"
            )
        instance = None
        if len(cells) == 3:
            if not cells[1].isdigit():
                raise DataFileError(
                    f"{path}:{number}: --sessions: instance {cells[1]!r} is not a number"
                )
            instance = int(cells[1])
        key = (cells[0], instance)
        if key in table and table[key] != int(cells[-1]):
            raise DataFileError(f"{path}:{number}: --sessions: event {cells[0]!r} given twice")
        table[key] = int(cells[-1])
    if not table:
        raise DataFileError(f"{path}: --sessions: no event in it")
    return table


def _redcap(
    header: Sequence[str],
    names: list[str],
    items: Sequence[int],
    complete_only: bool,
    session_said: str | None,
) -> Adapter:
    adapter = Adapter("redcap")  # its record id and session: redcap_ids, redcap_session
    said = [f"record id {header[0].strip()!r}"]
    # the form's status: the first <form>_complete column after its last item
    last = max(items)
    status = next((i for i in range(last + 1, len(names)) if names[i].endswith("_complete")), None)
    if status is not None:
        said.append(f"status {header[status].strip()!r}")
        if complete_only:

            def not_complete(row: list[str]) -> str | None:
                return None if row[status].strip() in ("2", "Complete") else "not complete"

            adapter.exclude = not_complete
    elif complete_only:
        raise UsageProblem("--complete-only: no <form>_complete column after the item columns")
    said += [session_said] if session_said else []
    adapter.notes.append("layout: REDCap records export (" + ", ".join(said) + ")")
    return adapter


def _qualtrics(names: list[str], complete_only: bool) -> Adapter:
    adapter = Adapter("qualtrics", recode={"-99": ""})
    status = names.index("status") if "status" in names else None
    finished = names.index("finished") if "finished" in names else None
    if complete_only and finished is None:
        raise UsageProblem("--complete-only: this Qualtrics export has no Finished column")

    def exclude(row: list[str]) -> str | None:
        if status is not None and row[status].strip().lower() not in _QUALTRICS_REAL:
            return "survey preview, test or spam"
        if complete_only and finished is not None and row[finished].strip() not in ("1", "True"):
            return "not finished"
        return None

    if status is not None or complete_only:
        adapter.exclude = exclude
    adapter.notes.append(
        "layout: Qualtrics export (previews and tests left out; -99, seen but not answered, "
        "read as missing)"
    )
    return adapter


def parse_date_format(text: str | None) -> Callable[[str], str] | None:
    """``--date-format``: a strptime format (``%d.%m.%Y``) or its plain spelling
    (``DD.MM.YYYY``, ``M/D/YYYY``); returns a cell -> ISO date function (raises ValueError)."""
    if not text:
        return None
    fmt = text
    if "%" not in fmt:
        tokens = {"YYYY": "%Y", "YY": "%y", "MM": "%m", "M": "%m", "DD": "%d", "D": "%d"}
        fmt = re.sub(r"YYYY|YY|MM|M|DD|D", lambda m: tokens[m.group(0)], text)
    from datetime import date, datetime

    whole = (
        ("%Y" in fmt or "%y" in fmt) and any(m in fmt for m in ("%m", "%b", "%B")) and ("%d" in fmt)
    )  # a format without a day, a month and a year dates nothing
    try:
        datetime.strptime(datetime(2026, 9, 3).strftime(fmt), fmt)
    except (ValueError, re.error):  # (re.error: a directive given twice, as YYYYYYYY)
        whole = False
    if not whole:
        raise UsageProblem(
            f"--date-format {text!r} is not a date format with a day, a month and a year "
            "(e.g. DD.MM.YYYY, M/D/YYYY or %d.%m.%Y)"
        )

    def to_iso(cell: str) -> str:
        text = cell.strip()
        try:
            return datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            if len(text) == 10 and text[4] == "-" and text[7] == "-":
                return date.fromisoformat(text).isoformat()  # ISO is never ambiguous
            raise

    return to_iso


def parse_recode(text: str | None, what: str = "--recode") -> dict[str, str]:
    """``--recode '0-4:1-5'`` (a range onto a range of the same length, step 1) or
    ``'a=1,b=2'``: cell text -> the value scored."""
    if not text:
        return {}
    ranges = re.fullmatch(r"\s*(-?\d+)\s*-\s*(-?\d+)\s*:\s*(-?\d+)\s*-\s*(-?\d+)\s*", text)
    if ranges:
        a, b, c, d = (int(g) for g in ranges.groups())
        if b - a != d - c or b < a:
            raise UsageProblem(
                f"{what} {text!r}: the two ranges must have the same length, low to high "
                "(e.g. 0-4:1-5)"
            )
        return {str(a + i): str(c + i) for i in range(b - a + 1)}
    pairs = [p for p in text.split(",") if p.strip()]
    found: dict[str, str] = {}
    for pair in pairs:
        code, sep, value = pair.partition("=")
        if not sep or not code.strip():
            raise UsageProblem(
                f"{what} {text!r}: expected 'LOW-HIGH:LOW-HIGH' (e.g. 0-4:1-5) or "
                "'code=value,...' (e.g. 'A=1,B=2')"
            )
        code = code.strip()
        if code in found and found[code] != value.strip():
            raise UsageProblem(
                f"{what} {text!r}: code {code!r} is given twice ({found[code]!r} and "
                f"{value.strip()!r}); give each code one value"
            )
        found[code] = value.strip()
    return found


def check_not_both(template: str | None, map_file: object) -> None:
    """``--columns`` and ``--map`` each choose every item column: one or the other."""
    if template is not None and map_file is not None:
        raise UsageProblem("--columns and --map both choose the item columns; give one")


_LONG_ITEM = ("item", "items", "item_id", "itemid", "question", "field_name", "variable")
_LONG_VALUE = ("value", "values", "score", "scores", "response", "resp", "answer", "rating")


def looks_long(header: Sequence[str]) -> bool:
    """Whether a header has an item column and a value column (one row per answer)."""
    names = {h.strip().lower() for h in header}
    return bool(names & set(_LONG_ITEM)) and bool(names & set(_LONG_VALUE))


@dataclass
class LongResult:
    """A long file rebuilt as one row per response set."""

    text: str  # CSV: the id columns, then one column per item name seen
    line_of: list[int]  # the file line where each rebuilt row's first answer is
    early: list[tuple[int, str, str, str, str]]  # (line, column, value, reason, client)
    note: str
    items: list[str] = field(default_factory=list)  # the item names seen, as first written


def pivot_long(
    source_name: str,
    header: Sequence[str],
    lines: Iterable[str],
    delimiter: str,
    skipped: int,
    id_columns: dict[str, int],
    item_column: str | None,
    value_column: str | None,
    events: bool = False,
) -> LongResult:
    """One row per (client, session, rater) from rows of (…, item, value).

    Answers of one response set may be anywhere in the file; the first row of each set gives
    its place in the output and its line in errors. Item names that differ only in case
    (``WAI_1``, ``wai_1``) are one item. An item given twice with different values, or two
    different dates, reject that response set, naming both lines; given twice alike, an
    item counts once. Other columns (person-level: age, site) are kept when they hold one
    value in every row of a set.
    """
    names = [h.strip() for h in header]
    lowered = [n.lower() for n in names]
    item_at = _long_column(names, lowered, item_column, _LONG_ITEM, "item", "--item-column")
    value_at = _long_column(names, lowered, value_column, _LONG_VALUE, "value", "--value-column")
    if "client_id" not in id_columns:
        raise UsageProblem(
            "long format: no client id column to group the answers by (name it with --id-column)"
        )
    key_roles = [r for r in ("client_id", "session", "rater") if r in id_columns]
    extra_roles = [r for r in ("date", "counselor") if r in id_columns]
    used = {id_columns[r] for r in key_roles + extra_roles} | {item_at, value_at}
    counted: list[int] = []  # EAV: the event and instance columns a session is counted from
    if events and "session" not in id_columns:
        counted = [lowered.index(n) for n in ("redcap_event_name", "redcap_repeat_instance")
                   if n in lowered]  # fmt: skip
        used |= set(counted) | {lowered.index(n) for n in ("redcap_repeat_instrument",)
                                if n in lowered}  # fmt: skip
    person = [i for i in range(len(names)) if i not in used]  # kept when one value per set
    width = len(names)
    groups: dict[tuple[str, ...], _Group] = {}
    order: list[tuple[str, ...]] = []
    spelling: dict[str, str] = {}  # an item name, lower-cased -> as first written
    early: list[tuple[int, str, str, str, str]] = []
    varied: dict[str, int] = {}  # person-level columns that vary within a set: sets
    count = 0
    # a cell over the reader's limit (or a quote never closed) rejects its record, and the
    # lines it swallowed are read again, as the wide reader does (``score_stream``)
    for row, start, refused in records_read_again(lines, width, delimiter, skipped):
        count += 1
        if row is None:
            early.append((start, "", "", refused, ""))
            continue
        if len(row) != width:
            early.append((start, "", "", f"row has {len(row)} fields; the header has {width}", ""))
            continue
        key = tuple(row[id_columns[r]].strip() for r in key_roles)
        key += tuple(row[c].strip() for c in counted)
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group(start)
            order.append(key)
        for role in extra_roles:
            cell = row[id_columns[role]].strip()
            had = group.extra.get(role)
            if not had:
                group.extra[role] = cell
                group.extra_line[role] = start
            elif role == "date" and cell and cell != had and not group.dates:
                group.dates = (
                    f"two dates for this response set (line {group.extra_line[role]}: "
                    f"{had!r}, line {start}: {cell!r})"
                )
        for i in person:
            cell = row[i].strip()
            if names[i] not in group.person:
                group.person[names[i]] = cell
            elif group.person[names[i]] != cell and names[i] not in group.varied:
                group.varied.add(names[i])
        written, value = row[item_at].strip(), row[value_at]
        name = spelling.setdefault(written.lower(), written)
        cells = group.cells
        if name in cells and cells[name][0].strip() != value.strip():
            group.twice.append(
                f"item {written} is given twice for this response set with different values "
                f"(line {cells[name][1]}: {cells[name][0].strip()!r}, line {start}: "
                f"{value.strip()!r})"
            )
        else:
            cells.setdefault(name, (value, start))
    out_roles: list[str] = [*key_roles, *extra_roles]
    if counted:  # the event (and instance) kept; the session counted once items are known
        out_roles = [*key_roles, *[names[c] for c in counted], "session", *extra_roles]
    item_names = list(spelling.values())
    kept = [names[i] for i in person]
    taken = {n.lower() for n in out_roles + item_names}
    kept_as = [n if n.lower() not in taken else f"input_{n}" for n in kept]
    import io

    text = io.StringIO()
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(text, guard=False)  # read back by the engine, never a file
    writer.writerow(out_roles + kept_as + item_names)  # the rebuilt rows name ids plainly
    line_of: list[int] = []
    for key in order:
        group = groups[key]
        if group.twice or group.dates:
            column = names[item_at] if group.twice else names[id_columns["date"]]
            reason = "; ".join([*group.twice, *([group.dates] if group.dates else [])])
            early.append((group.line, column, "", reason, key[0]))
            continue
        for name in group.varied:
            varied[name] = varied.get(name, 0) + 1
        ids = [*key, *([""] if counted else []), *(group.extra.get(r, "") for r in extra_roles)]
        people = ["" if n in group.varied else group.person.get(n, "") for n in kept]
        answers = [_one_line(group.cells[n][0]) if n in group.cells else "" for n in item_names]
        writer.writerow([_one_line(c) for c in ids + people] + answers)
        line_of.append(group.line)
    note = (
        f"layout: long format in {source_name} (items in {names[item_at]!r}, values in "
        f"{names[value_at]!r}; {words.counted(count, 'answer row')}, "
        f"{words.counted(len(order), 'response set')}"
        + (f"; kept per set: {', '.join(kept)}" if kept else "")
        + ")"
    )
    if varied:
        note += "; " + ", ".join(
            f"{name!r} differs within {words.counted(n, 'set')} (left blank there)"
            for name, n in varied.items()
        )
    return LongResult(text.getvalue(), line_of, early, note, item_names)


@dataclass
class _Group:
    """One response set of a long file, as its rows are read."""

    line: int  # where its first answer is
    cells: dict[str, tuple[str, int]] = field(default_factory=dict)  # item -> (value, line)
    extra: dict[str, str] = field(default_factory=dict)  # date, counselor
    extra_line: dict[str, int] = field(default_factory=dict)  # where each was first given
    person: dict[str, str] = field(default_factory=dict)  # other columns: the first value
    varied: set[str] = field(default_factory=set)  # other columns that differ within the set
    twice: list[str] = field(default_factory=list)  # items given twice, differently
    dates: str = ""  # the first two dates that differ within the set


def _instance(text: str) -> int:
    return int(text) if text.isdigit() else 1


def _one_line(cell: str) -> str:
    return cell.replace("\r", " ").replace("\n", " ")


def _long_column(
    names: list[str],
    lowered: list[str],
    given: str | None,
    variants: Sequence[str],
    role: str,
    option: str,
) -> int:
    if given:
        if given not in names:
            raise UsageProblem(f"{option}: no column {given!r} (columns: {', '.join(names)})")
        return names.index(given)
    for variant in variants:
        if variant in lowered:
            return lowered.index(variant)
    raise UsageProblem(
        f"long format: no {role} column found (looked for {', '.join(variants[:4])}, …; "
        f"name it with {option})"
    )


# REDCap's label export names its own columns by label too
_REDCAP_LABELS = {
    "event name": "redcap_event_name",
    "repeat instrument": "redcap_repeat_instrument",
    "repeat instance": "redcap_repeat_instance",
    "data access group": "redcap_data_access_group",
    "survey identifier": "redcap_survey_identifier",
}


class Field(NamedTuple):
    """One field of a REDCap data dictionary."""

    name: str
    form: str
    kind: str  # radio, dropdown, text, calc, checkbox, descriptive, ...
    label: str
    choices: dict[str, str]  # code -> label (radio, dropdown, checkbox)


@dataclass
class Dictionary:
    """A REDCap data dictionary (``--dictionary``): each field's name, form, type, label and
    choices (code -> label)."""

    fields: list[Field]

    def relabel(self, header: Sequence[str]) -> tuple[list[str], list[str]]:
        """A label export's header as variable names: (the header, notes). A name that is
        a variable stays; a label that one field has becomes its variable; a label several
        fields share stays as it is, and a note says so."""
        names = {f.name for f in self.fields}
        by_label: dict[str, list[str]] = {}
        for f in self.fields:
            by_label.setdefault(" ".join(f.label.split()).lower(), []).append(f.name)
        out, notes = [], []
        for cell in header:
            text = " ".join(cell.split())
            key = text.lower()
            if text in names:
                out.append(text)
            elif key in _REDCAP_LABELS:
                out.append(_REDCAP_LABELS[key])
            elif len(by_label.get(key, [])) == 1:
                out.append(by_label[key][0])
            else:
                if len(by_label.get(key, [])) > 1:
                    notes.append(
                        f"--dictionary: the label {text!r} is {len(by_label[key])} fields' "
                        f"({', '.join(by_label[key][:3])}): its column is kept as it is"
                    )
                out.append(cell)
        return out, notes

    def not_items(self) -> frozenset[str]:
        """Fields whose type makes them never items: checkboxes, calculations, descriptive
        text, notes, files, SQL fields (whatever their names look like)."""
        kinds = ("checkbox", "calc", "descriptive", "notes", "file", "sql")
        return frozenset(f.name for f in self.fields if f.kind in kinds)

    def recode(self, header: Sequence[str], items: Sequence[int]) -> dict[str, str]:
        """Choice labels of the item fields -> their codes (a label export's cells)."""
        choices = {f.name: f.choices for f in self.fields}
        mapping: dict[str, str] = {}
        for p in items:
            for code, label in choices.get(header[p], {}).items():
                text = " ".join(label.split())
                if mapping.get(text, code) != code:
                    raise UsageProblem(
                        f"--dictionary: the choice {text!r} has codes {mapping[text]} and "
                        f"{code} in the item fields; give --recode"
                    )
                mapping[text] = code
        return mapping


_DICTIONARY_HEADS = (
    ("variable / field name", "form name", "field type"),  # the download from REDCap's pages
    ("field_name", "form_name", "field_type"),  # the API's metadata export
)


def is_dictionary(header: Sequence[str]) -> bool:
    """Whether a header is a REDCap data dictionary's (the UI download or the API's
    metadata): the project's fields, not its answers."""
    names = {h.strip().lower().lstrip("\ufeff") for h in header}
    return any(all(n in names for n in head) for head in _DICTIONARY_HEADS)


def read_dictionary(path: Path) -> Dictionary:
    """``--dictionary FILE``: REDCap's data dictionary download (CSV, a BOM allowed)."""
    from alliance_cli.core.errors import DataFileError
    from alliance_cli.io.files import read_side_file

    text = read_side_file(path, "--dictionary")
    rows = list(csv.reader(io.StringIO(text)))
    head = [h.strip().lower() for h in rows[0]] if rows else []
    wanted = ("variable / field name", "form name", "field type", "field label",
              "choices, calculations, or slider labels")  # fmt: skip
    if not all(w in head for w in wanted):
        raise DataFileError(
            f"{path}: --dictionary: not a REDCap data dictionary (its columns are "
            "'Variable / Field Name', 'Form Name', 'Field Type', 'Field Label', …)"
        )
    at = [head.index(w) for w in wanted]
    fields = []
    for row in rows[1:]:
        if len(row) <= max(at) or not row[at[0]].strip():
            continue
        name, form, kind, label, choices = (row[i].strip() for i in at)
        coded: dict[str, str] = {}
        if kind in ("radio", "dropdown", "checkbox"):
            for part in choices.split("|"):
                code, _, text = part.partition(",")
                if code.strip() and text.strip():
                    coded[code.strip()] = text.strip()
        fields.append(Field(name, form, kind, label, coded))
    return Dictionary(fields)
