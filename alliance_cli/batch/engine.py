"""Stream CSV rows through a Scorer, accounting for every row: scored or rejected with a reason.

No rich and no typer here: progress is a callback, output goes to file objects the caller
opens (atomically). Memory does not grow with the file.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import io
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any

from alliance_cli.batch.fastpath import Columns, FastRows
from alliance_cli.batch.sinks import CsvSink, Sink
from alliance_cli.core.contract import (
    plain_problem,
    rater_problem,
    session_problem,
    stored_id_problem,
    stored_text_problem,
)
from alliance_cli.core.errors import DataFileError, UsageProblem
from alliance_cli.core.scorer import Scorer, date_problem, validate_date
from alliance_cli.io import columns as colmap
from alliance_cli.io.csvin import find_id_columns
from alliance_cli.io.csvout import (
    FORMULA_START,
    num,
    safe_cells,
    safe_text,
    score_cells_out,
    score_columns,
    score_json_cells,
)
from alliance_cli.io.source import (
    RowRefused,
    Source,
    decode_error,
    kept_lines,
    swallowed_rows,
)

_RISKY = frozenset("".join(FORMULA_START))  # the first characters safe_text neutralises
# Pass-through text the fast path cannot write as-is: quoting needed, or a formula start.
_NEEDS_CARE = re.compile('["\\r\\n]|,[' + re.escape("".join(FORMULA_START)) + "]")
BLOCK_LINES = 2048  # lines a block of the column-by-column fast path holds
FIELD_LIMIT = csv.field_size_limit()  # 128 KiB: a larger cell rejects its record
NO_FASTPATH = "ALLIANCE_NO_FASTPATH"  # set to 1: every row through the full parser (tests)


@dataclass(frozen=True)
class Rejection:
    """A row that was not scored, and exactly why."""

    file: str
    line: int
    column: str
    value: str
    reason: str
    client: str = ""
    resource: str = ""  # the FHIR resource the row came from, e.g. QuestionnaireResponse/7

    def __str__(self) -> str:
        col = f" {self.column}:" if self.column else ""
        res = f" {self.resource}:" if self.resource else ""
        return f"{self.file}:{self.line}:{res}{col} {self.reason}"

    def row(self) -> list[Any]:
        """The rejection as a ``--rejects`` CSV row (text neutralised against formulas)."""
        return [
            self.file,
            self.line,
            safe_text(self.client),
            self.column,
            safe_text(self.value),
            self.reason,
        ]


REJECT_COLUMNS = ("file", "line", "client_id", "column", "value", "reason")


@dataclass(frozen=True)
class BatchOptions:
    """How to read the inputs and which rows to accept (``alliance batch``'s options)."""

    template: str | None = None
    map_file: Path | None = None
    item_columns: Mapping[str, str] | None = None  # {item id: column}, from the Python API
    id_names: dict[str, str | None] = field(default_factory=dict)
    keep: list[str] | None = None
    # every instrument id, and how many items one has: to catch another form's columns
    known_ids: tuple[str, ...] = ()
    item_count: Callable[[str], int | None] = field(default=lambda _id: None)
    require_ids: bool = False
    strict: bool = False
    delimiter: str | None = None
    encoding: str = "utf-8"
    layout: str = "auto"  # auto, csv, redcap, qualtrics or long (io.layouts)
    complete_only: bool = False  # REDCap: status Complete; Qualtrics: Finished
    date_format: str | None = None  # --date-format; else ISO dates (and datetimes)
    recode: Mapping[str, str] | None = None  # cell text -> value scored (--recode)
    item_column: str | None = None  # long format: the item and value columns
    value_column: str | None = None
    jobs: int = 1  # processes for one large file (batch.parallel); 1: this process only
    plain_ids: bool = False  # --require-plain-ids
    questionnaire: Path | None = None  # FHIR: --questionnaire FILE (its url, its weights)
    sessions: Path | None = None  # REDCap: --sessions FILE (event -> session)
    fhir_bundle: str | None = None  # -f fhir --bundle transaction: one Bundle, not NDJSON
    dictionary: Path | None = None  # REDCap: --dictionary FILE (labels, choices, field types)
    fhir_rater: str | None = None  # FHIR: --rater, when a response's source names none


@dataclass
class Stats:
    """Row accounting: read = scored + rejected + not administered + excluded, always."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    not_administered: int = 0  # no answer to any item of this form: not an administration
    excluded: dict[str, int] = field(default_factory=dict)  # left out by the layout, by why
    seconds: float = 0.0
    not_saved: int = 0  # scored, but already in the history (batch --save without --replace)
    fast: int = 0  # rows scored on the fast path (the rest went through the full parser)
    by_block: int = 0  # of those, rows scored in blocks, column by column
    output_cut: bool = False  # stdout's reader went away: the output is incomplete
    lines: int = 0  # physical lines read after the header (records < lines: a field held one)
    records: int = 0  # CSV records read, blank lines too

    def left_out(self) -> str:
        """The rows neither scored nor rejected, as a summary line's tail: ", 4 not
        administered, 2 <why>" ("" when there are none)."""
        counts = [("not administered", self.not_administered), *self.excluded.items()]
        return "".join(f", {count:,} {why}" for why, count in counts if count)


def _iso_date(cell: str) -> str:
    """An ISO date, or the date of an ISO date and time (REDCap's ``2026-09-03 14:05``)."""
    from datetime import datetime

    text = cell.strip()
    try:
        return validate_date(text) or ""
    except UsageProblem:
        if len(text) > 10 and text[10] in " T":
            try:
                return datetime.fromisoformat(text).date().isoformat()
            except ValueError:
                pass
        raise


@dataclass
class Layout:
    """Where the items, ids and pass-through columns are in the header, and how rows of
    the export's layout are read (a column it adds, rows it leaves out, cells recoded)."""

    header: list[str]
    items: list[int]
    ids: dict[str, int]
    keep: list[int]
    delimiter: str
    added: Callable[[list[str]], str] | None = None  # the value of a last column it adds
    exclude: Callable[[list[str]], str | None] | None = None
    recode: Mapping[str, str] | None = None
    to_iso: Callable[[str], str] = _iso_date
    plain_ids: bool = False  # --require-plain-ids: ids with invisible characters are rejected
    notes: list[str] = dataclasses.field(default_factory=list)  # said once, before any row


def plan_layout(
    header: list[str],
    scorer: Scorer,
    delimiter: str,
    template: str | None = None,
    map_file: Path | None = None,
    item_columns: Mapping[str, str] | None = None,
    id_names: dict[str, str | None] | None = None,
    keep: Sequence[str] | None = None,
    known_ids: Sequence[str] = (),
    item_count: Callable[[str], int | None] = lambda _id: None,
    beyond: list[str] | None = None,
    never: frozenset[str] = frozenset(),
) -> Layout:
    """Decide which column is which before any row is scored; stop early when unclear.
    With ``beyond`` (long format), columns of the item family past the form's items are
    listed there instead of stopping."""
    stripped, repeated = _disambiguated([h.strip() for h in header])
    items = scorer.item_ids
    if item_columns is not None:
        positions = colmap.from_mapping(stripped, items, item_columns, "columns")
    elif map_file is not None:
        positions = colmap.from_map(stripped, items, map_file)
    elif template is not None:
        positions = colmap.from_template(stripped, items, template)
    else:
        scoring = scorer.instrument.id
        try:
            positions = colmap.detect(
                stripped, items, [*known_ids, scoring] if known_ids else None, beyond, never
            )
        except UsageProblem:
            # srs_1..srs_4 scored as wai-sr: say whose columns they are, not only what is missing
            for pos in range(len(stripped)):
                _foreign(stripped, pos, scoring, known_ids, item_count)
            raise
        _foreign(stripped, positions[0], scoring, known_ids, item_count)
    ids = find_id_columns(stripped, id_names or {})
    if keep is not None:
        missing = [k for k in keep if k not in stripped]
        if missing:
            raise UsageProblem(f"--keep names no column {', '.join(missing)}")
        kept = [stripped.index(k) for k in keep]
    else:
        taken = set(positions)
        kept = [i for i in range(len(stripped)) if i not in taken]
    used = set(positions) | set(ids.values())
    notes = []
    for name, places in repeated.items():
        if used & set(places):  # which one is the item (or the id)? never guessed
            where = " and ".join(str(p + 1) for p in places)
            raise DataFileError(f"duplicate column {name!r} (columns {where})")
        later = [repr(stripped[p]) for p in places[1:]]
        numbers = [str(p + 1) for p in places]
        where = f"{', '.join(numbers[:-1])} and {numbers[-1]}"
        both = "both" if len(places) == 2 else "all"
        notes.append(
            f"columns {where} are {both} named {name!r}: not scored (no item or id), passed "
            f"through, the first as {name!r}, then as {', '.join(later)}"
        )
    return Layout(stripped, positions, ids, kept, delimiter, notes=notes)


def _disambiguated(header: list[str]) -> tuple[list[str], dict[str, list[int]]]:
    """The header with each repeated name after its first made unique (``other.1``,
    ``other.2``, as pandas does; a blank name becomes ``column_<position>``), and the
    positions of every repeated name."""
    places: dict[str, list[int]] = {}
    for pos, name in enumerate(header):
        places.setdefault(name, []).append(pos)
    repeated = {name: at for name, at in places.items() if len(at) > 1}
    out, taken = list(header), set(header)
    for name, at in repeated.items():
        for k, pos in enumerate(at[1:], start=1):
            new = f"{name}.{k}" if name else f"column_{pos + 1}"
            while new in taken:
                new += "_"
            out[pos] = new
            taken.add(new)
    return out, repeated


def _foreign(
    header: list[str],
    pos: int,
    scoring: str,
    known: Sequence[str],
    item_count: Callable[[str], int | None],
) -> None:
    """Stop when the item columns are named for another instrument than the one scored."""
    other = colmap.foreign_instrument(header, pos, scoring, known, item_count)
    if other is not None:
        raise UsageProblem(
            f"the item columns ({header[pos]}, …) are named for instrument {other!r}, but "
            f"this is scoring {scoring!r}: use -i {other}, or choose the columns on purpose "
            "with --columns or --map"
        )


def score_stream(
    sources: Sequence[Source],
    scorer: Scorer,
    layout: Layout,
    sink: Sink,
    on_reject: Callable[[Rejection], None],
    require_ids: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    on_score: Callable[[dict[str, Any], str | None], None] | None = None,
    fast_saver: Callable[[dict[str, int], Callable[[str], str]], Any] | None = None,
) -> Stats:
    """Score every row of every source into sink; report each rejected row to on_reject.

    ``on_score`` receives each row's Score (to save it); ``fast_saver(ids, to_iso)``, when
    given, returns a function that saves a fast-path row from its cells and score text
    (or None: then every row is saved from its Score, on the full path).
    """
    stats = Stats()
    started = time.perf_counter()
    width = len(layout.header)
    get_items = itemgetter(*layout.items) if len(layout.items) > 1 else None
    first_item = layout.items[0]
    keep = layout.keep
    ids = layout.ids
    client_col = ids.get("client_id")
    session_col = ids.get("session")
    header_names = layout.header
    to_iso = layout.to_iso
    checks = _id_checks(ids, scorer.instrument.respondent, to_iso, layout.plain_ids)
    # a row read on its own also has its client id and counselor checked for what no
    # history could keep (a NUL byte, a client id over 512 characters): a block holding one
    # sends its rows here (Columns.score), so the block path needs no check of its own
    row_checks = _keepable_ids(checks, ids)
    fast_rows = FastRows(scorer, layout.items)
    fast = fast_rows.compile(row_checks)
    item_columns = dict(zip(scorer.item_ids, (header_names[p] for p in layout.items), strict=True))
    sha = scorer.sha256
    added = layout.added
    wants_json = sink.wants_json or on_score is not None
    required = [r for r in ("client_id", "session") if require_ids]
    if required:
        check_id_columns(layout)  # before anything is written
    sink.begin(output_header(layout, scorer))

    def on_reject_here(r: Rejection) -> None:  # lines as the file counts them
        resource = current.label_of(r.line) if current.label_of is not None else ""
        on_reject(dataclasses.replace(r, line=current.file_line(r.line), resource=resource))

    def general(row: list[str], end_line: int, name: str) -> bool:
        """Score one row the careful way; True when scored, False when rejected.

        The row's first line is worked out only for a rejection (it costs a scan of the row).
        """
        client = row[client_col] if client_col is not None and client_col < len(row) else ""
        if len(row) != width:
            fields = width - (added is not None)  # a column the layout adds is not the file's
            reason = f"row has {len(row)} fields; the header has {fields}"
            on_reject_here(Rejection(name, _first_line(end_line, row), "", "", reason, client))
            return False
        problem = _id_problem(
            row, ids, required, scorer.instrument.respondent, to_iso, layout.plain_ids
        )
        if problem is not None:
            on_reject_here(Rejection(name, _first_line(end_line, row), *problem, client))
            return False
        answers = get_items(row) if get_items is not None else (row[first_item],)
        if sink.wants_keyed:  # the answers only, keyed (alliance reliability, norms)
            keyed, problems = scorer.keyed_answers(answers)
            if not problems:
                sink.keyed(keyed, _cell(row, client_col), _cell(row, session_col))
                return True
        elif wants_json:
            where = (name, end_line, client)
            data = _score_json(
                scorer, answers, row, ids, where, item_columns, on_reject_here, to_iso
            )
            if data is None:
                return False
            if sink.wants_json:
                # where the row came from, and its other columns: results join back
                line = current.file_line(_first_line(end_line, row))
                kept = {header_names[i]: row[i] for i in keep}
                sink.result({**data, "source": {"file": name, "line": line, "columns": kept}})
            else:
                sink.csv_row(safe_cells(row, keep) + score_json_cells(scorer, data))
            if on_score is not None:
                col = ids.get("counselor")
                on_score(data, (row[col].strip() or None) if col is not None else None)
            return True
        else:
            results, problems, _ = scorer.score_cells(answers)
        if problems:
            first = problems[0]
            reason = "; ".join(f"item {p.item}: {p.problem}" for p in problems)
            column = item_columns[first.item]
            on_reject_here(
                Rejection(name, _first_line(end_line, row), column, first.value, reason, client)
            )
            return False
        cells = score_cells_out(scorer, results, scorer.flag_codes(results))
        sink.csv_row(safe_cells(row, keep) + cells)
        return True

    # The common case (CSV out, no id checks, every answer a plain scale value) stays in
    # this loop; anything else goes through general().
    fast_ok = (
        not sink.wants_json
        and (on_score is None or fast_saver is not None)
        and (not required or on_score is not None)  # saving checks its ids below
        and isinstance(sink, CsvSink)
        and not os.environ.get(NO_FASTPATH)
    )
    saver: Any = None  # made at the first row to save (a usage error creates no store)

    def make_saver() -> Any:
        """The saver of fast-path rows, made at the first row to save; False when this
        instrument's rows are saved from their full Score."""
        nonlocal saver
        if saver is None:
            saver = (fast_saver(ids, to_iso) if fast_saver is not None else None) or False
            if saver:
                saver.bind(layout.items)
        return saver

    def on_full_path(row: list[str]) -> bool:
        """Whether a row the fast path scored must still be saved (or rejected, for a blank
        id) on the full path: no saver for this instrument, an id missing, or issues its
        Score keeps (a missing code)."""
        return (
            not make_saver()
            or client_col is None
            or session_col is None
            or not (row[client_col].strip() and row[session_col].strip())
            or not saver.ready(row)
        )

    one_column = width == 1
    # answers only (reliability): a row on one line whose cells the answer tables all know
    # and whose id cells pass their checks is kept as it is; the rest go through general()
    keyed_fast = sink.wants_keyed and not os.environ.get(NO_FASTPATH)
    client_of = _cell_of(client_col)  # (what a keyed sink is told of each row: whose, when)
    session_of = _cell_of(session_col)
    known_cells = frozenset(scorer.answer_tables[0]).issuperset
    cells_of: Callable[[list[str]], Sequence[str]] = get_items or (lambda row: (row[first_item],))
    id_checks = sorted(row_checks.items())
    slow_scored = 0
    csv_sink = sink if isinstance(sink, CsvSink) else CsvSink(io.StringIO())  # fast_ok: real
    write_text = csv_sink.handle.write
    scored = rejected = 0
    lead = "," if keep else ""
    n_sep = len(keep) - 1
    needs_care = _NEEDS_CARE.search
    kept_cells: Callable[[list[str]], tuple[str, ...]]
    if len(keep) > 1:
        kept_cells = itemgetter(*keep)
    else:
        kept_cells = (lambda row: (row[keep[0]],)) if keep else (lambda row: ())
    sha_tail = f",{scorer.instrument.verification.status},{sha}\n"
    pending: list[str] = []  # fast-path lines, written in blocks; flushed before any other write
    add_line = pending.append

    def flush() -> None:
        if pending:
            write_text("".join(pending))
            pending.clear()

    done = 0  # bytes of the sources already finished, for the progress bar
    items = layout.items
    exclude, recode = layout.exclude, layout.recode or None
    excluded = stats.excluded
    not_administered = 0
    blank = physical = 0  # blank lines, and every line read: records spanning lines show
    columns = None  # blocks of plain rows scored column by column (fastpath.Columns)
    if (
        fast_ok
        and (on_score is None or (client_col is not None and session_col is not None))
        and recode is None
        and exclude is None
        and added is None
        and width > 1
        and fast_rows.integer
    ):
        status = scorer.instrument.verification.status
        columns = Columns(
            fast_rows, width, items, keep, layout.delimiter, checks, f"{status},{sha}",
            client_col,
        )  # fmt: skip
    block_lines = block_rows = 0  # what the blocks took (before the reader's current row)

    def in_blocks(lines: Iterable[str]) -> Iterator[str]:
        """The lines for the row-by-row reader: those ``columns`` did not take. Lazy: the
        reader asks for a line only after handling its last row, so the blocks taken so
        far are exactly those before the reader's current row, and output stays in order."""
        source_lines = iter(lines)
        while block := list(itertools.islice(source_lines, BLOCK_LINES)):
            yield from take(block)
            if columns is not None and columns.quoted:  # a record may span lines from here
                yield from source_lines
                return

    def take(block: list[str]) -> Iterator[str]:
        """Score a block column by column; yield the lines of its odd rows to the reader,
        in place, and score the runs between them as blocks again."""
        nonlocal block_lines, block_rows
        assert columns is not None
        if on_score is not None and columns.saver is None:  # the first block to save
            if not make_saver():  # this instrument's rows are saved from their Score
                yield from block
                return
            columns.saver = saver
        got = columns.score(block)
        if isinstance(got, tuple):
            text, stored = got
            flush()
            write_text(text)
            if columns.saver is not None:
                columns.saver.recorder.add_fast_rows(stored)
            block_lines += len(block)
            block_rows += len(block)
            if on_progress is not None:
                on_progress(scored + block_rows + rejected, done + _position(current))
            return
        if columns.quoted or not got or len(got) > len(block) // 8:
            yield from block  # many odd rows: row by row costs less than splitting
            return
        start = 0
        for odd in [*got, len(block)]:
            if odd > start:
                yield from take(block[start:odd])
            if odd < len(block):
                yield block[odd]
            start = odd + 1

    for source in sources:
        current = source
        for line, column, value, reason, client in source.early:  # found by the layout
            on_reject(Rejection(source.name, line, column, value, reason, client))
            rejected += 1
        excluded.update({why: excluded.get(why, 0) + n for why, n in source.excluded.items()})
        lines_in = source.rows_from()
        if columns is not None and source.delimiter == layout.delimiter:
            lines_in = in_blocks(lines_in)
        block_lines = 0
        base = iter(lines_in)
        kept: collections.deque[str] = collections.deque()  # the latest lines, to read again
        keep_chars = 2 * (width + 2) * FIELD_LIMIT  # more than any record the reader allows
        reader = csv.reader(kept_lines(base, kept, keep_chars), delimiter=source.delimiter)
        delimiter = source.delimiter
        at = 0  # the reader's line count at the end of the record last read
        while True:  # a CSV error rejects one record; reading goes on after it
            again = 0  # after a runaway quote: the lines it swallowed, to be read again
            try:
                for row in reader:
                    prev, at = at, reader.line_num
                    if added is not None and len(row) == width - 1:
                        try:
                            row.append(added(row))
                        except RowRefused as refused:  # a row its layout cannot number
                            client = row[client_col] if client_col is not None else ""
                            line = _first_line(reader.line_num + block_lines, row)
                            said = (refused.column, refused.value, refused.reason)
                            on_reject_here(Rejection(source.name, line, *said, client))
                            rejected += 1
                            continue
                    if len(row) == width:
                        if recode is not None:
                            for p in items:
                                row[p] = recode.get(row[p].strip(), row[p])
                        if not row[first_item].strip() and not any(row[p].strip() for p in items):
                            if width > 1 or row[0]:  # (one column: a blank line is no row)
                                not_administered += 1
                            continue
                        if exclude is not None:
                            why = exclude(row)
                            if why is not None:
                                excluded[why] = excluded.get(why, 0) + 1
                                continue
                    if keyed_fast and len(row) == width and at - prev == 1:
                        cells = cells_of(row)
                        if known_cells(cells) and (
                            not id_checks or all(ok(row[c]) for c, ok in id_checks)
                        ):
                            sink.keyed(cells, client_of(row), session_of(row))
                            scored += 1
                            if on_progress is not None and not scored & 8191:
                                on_progress(scored + rejected, done + _position(source))
                            continue
                    if len(row) == width and fast_ok and (not one_column or row[0].strip()):
                        got = fast(row)
                        if got is not None and on_score is not None and on_full_path(row):
                            got = None  # the full path saves it, or rejects it
                        if got is not None:
                            text = ",".join(kept_cells(row))
                            if text.count(",") != n_sep or needs_care(text) or text[:1] in _RISKY:
                                if swallowed_rows(row, width, delimiter):
                                    got = None  # a runaway quote: the careful path rejects it
                                else:
                                    text = csv_sink.line(safe_cells(row, keep))
                            if got is not None:
                                add_line(f"{text}{lead}{got}{sha_tail}")
                                if saver:
                                    saver(row, got)
                                scored += 1
                                if not scored & 4095:
                                    flush()
                                    if on_progress is not None:
                                        on_progress(scored + rejected, done + _position(source))
                                continue
                    flush()
                    if not row or (len(row) == 1 and not row[0].strip()):
                        blank += 1
                        continue  # blank lines are not rows
                    swallowed = swallowed_rows(row, width, delimiter) if at - prev > 1 else 0
                    if swallowed:  # a quote that runs over whole rows: reject its first line
                        start = prev + block_lines + 2
                        again = at - prev - 1
                        reason = (
                            f"a quoted field runs from line {start} to line "
                            f"{at + block_lines + 1}, over {swallowed} line(s) that look like "
                            "rows (a quote never closed?); this record is not scored, and the "
                            f"{again:,} line(s) after line {start} are read again as rows"
                        )
                        client = (
                            row[client_col]
                            if client_col is not None and client_col < len(row)
                            else ""
                        )
                        client = (client.splitlines() or [""])[0][:64]  # its first line only
                        on_reject_here(Rejection(source.name, start, "", "", reason, client))
                        rejected += 1
                        break
                    if general(row, reader.line_num + block_lines, source.name):
                        scored += 1
                        slow_scored += 1
                    else:
                        rejected += 1
                    if on_progress is not None and not (scored + rejected) & 8191:
                        on_progress(scored + rejected, done + _position(source))
                if not again:
                    break
            except UnicodeError as exc:
                raise decode_error(source.name, exc) from None
            except csv.Error as exc:
                flush()
                line = reader.line_num + block_lines + 1
                if "field limit" in str(exc):  # the record from the line after the last one
                    start = at + block_lines + 2
                    again = reader.line_num - at - 1
                    where = f"on line {line}" if again == 0 else f"from line {start} to {line}"
                    reason = (
                        f"a field grew larger than {FIELD_LIMIT // 1024} KiB {where} (a cell "
                        "that large, or a quote never closed); this record is not scored"
                    ) + (f", and the {again:,} line(s) after line {start} are read again as "
                         "rows" if again else "")  # fmt: skip
                    on_reject_here(Rejection(source.name, start, "", "", reason))
                else:
                    reason = f"CSV error ({exc}); this record is not scored"
                    on_reject_here(Rejection(source.name, line, "", "", reason))
                    at = reader.line_num
                rejected += 1
            if again:  # read the swallowed lines again, then the rest, with a new reader
                lines = list(kept)[-again:] if again else []
                lost = again - len(lines)  # (kept holds more than any record: never, in fact)
                for k in range(lost):
                    reason = "swallowed by a quote never closed, and too far back to read again"
                    on_reject_here(Rejection(source.name, start + 1 + k, "", "", reason))
                rejected += lost
                block_lines += reader.line_num - again
                kept.clear()
                reader = csv.reader(
                    kept_lines(itertools.chain(lines, base), kept, keep_chars), delimiter=delimiter
                )
                at = 0
        done += _position(source)
        physical += reader.line_num + block_lines
    scored += block_rows
    stats.by_block = block_rows
    flush()
    sink.end()
    stats.not_administered = not_administered
    stats.read = scored + rejected + not_administered + sum(excluded.values())
    stats.scored, stats.rejected = scored, rejected
    stats.fast = scored - slow_scored
    stats.lines, stats.records = physical, stats.read + blank
    stats.seconds = time.perf_counter() - started
    return stats


def output_header(layout: Layout, scorer: Scorer) -> list[str]:
    """The output's header: the kept input columns, then the score columns. A kept column
    named like a score column (``total_mean``) is written as ``input_total_mean``, so that
    no reader takes the input's value for the score."""
    scores = score_columns(scorer)
    taken = set(scores)
    kept: list[str] = []
    for i in layout.keep:
        name = layout.header[i]
        while name.strip() in taken:
            name = "input_" + name.strip()
        taken.add(name.strip())
        kept.append(name)
    return kept + scores


def renamed_columns(layout: Layout, scorer: Scorer) -> list[str]:
    """Notes for the kept columns ``output_header`` renames (none, usually)."""
    header = output_header(layout, scorer)
    return [
        f"batch: the input column {layout.header[i]!r} is written as {header[k]!r} (a score "
        "column has its name)"
        for k, i in enumerate(layout.keep)
        if header[k] != layout.header[i]
    ]


def _first_line(line_num: int, row: list[str]) -> int:
    """The file line a record starts on, from where it ends and the line breaks inside it.

    ``line_num`` counts lines after the header (line 1); a quoted field may hold breaks, and
    "\r\n" is one break, as the reader counts it.
    """
    breaks = sum(f.count("\n") + f.count("\r") - f.count("\r\n") for f in row)
    return line_num + 1 - breaks


def _position(source: Source) -> int:
    """Bytes read so far from a file (0 for stdin): enough for a progress bar."""
    try:
        return source.handle.buffer.tell() if source.name != "stdin" else 0  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return 0


def _cell(row: list[str], column: int | None) -> str:
    """A row's cell in ``column``, stripped ("" for no such column)."""
    return row[column].strip() if column is not None and column < len(row) else ""


def _cell_of(column: int | None) -> Callable[[list[str]], str]:
    """``_cell`` of one column, bound (the answers-only fast path calls it per row)."""
    if column is None:
        return lambda _row: ""
    return lambda row: row[column].strip()


def _id_problem(
    row: list[str],
    ids: dict[str, int],
    required: list[str],
    respondent: str,
    to_iso: Callable[[str], str] = _iso_date,
    plain: bool = False,
) -> tuple[str, str, str] | None:
    """The first problem with a row's ids, or None. One rule for every output format."""
    for role in required:
        if not row[ids[role]].strip():
            return role, "", f"{role} is blank (ids are required)"
    if "client_id" in ids:
        problem = stored_id_problem(row[ids["client_id"]])
        if problem is not None:
            return "client_id", row[ids["client_id"]][:64], f"client_id {problem}"
    if "counselor" in ids:  # (other ids: checked below)
        problem = stored_text_problem(row[ids["counselor"]])
        if problem is not None:
            return "counselor", row[ids["counselor"]], f"counselor {problem}"
    if plain:
        for role in PLAIN_ROLES:
            if role in ids:
                problem = plain_problem(row[ids[role]])
                if problem is not None:
                    return role, row[ids[role]], f"{role} {problem} (--require-plain-ids)"
    if "session" in ids:
        value = row[ids["session"]].strip()
        problem = session_problem(value) if value else None
        if problem is not None:
            return "session", value, problem
    if "date" in ids:
        value = row[ids["date"]].strip()
        if value:
            try:
                to_iso(value)
            except (UsageProblem, ValueError):
                if to_iso is _iso_date:
                    return (
                        "date",
                        value,
                        (
                            f'date "{value}" {date_problem(value)}; for another spelling '
                            "give --date-format, e.g. DD.MM.YYYY"
                        ),
                    )
                return "date", value, f'date "{value}" does not match --date-format'
    if "rater" in ids:
        value = row[ids["rater"]].strip()
        problem = rater_problem(value, respondent) if value else None
        if problem is not None:
            return "rater", value, problem
    return None


PLAIN_ROLES = ("client_id", "counselor", "session", "rater")  # what --require-plain-ids checks


def _keepable_ids(
    checks: dict[int, Callable[[str], bool]], ids: dict[str, int]
) -> dict[int, Callable[[str], bool]]:
    """``checks``, and the client id and counselor cells refused when no history could keep
    them alike (``contract.stored_id_problem``, as ``_id_problem`` says it; a counselor:
    a NUL byte only)."""
    out = dict(checks)
    if "client_id" in ids:
        other = out.get(ids["client_id"], lambda _cell: True)
        out[ids["client_id"]] = lambda cell, other=other: (  # type: ignore[misc]
            stored_id_problem(cell) is None and other(cell)
        )
    if "counselor" in ids:
        other = out.get(ids["counselor"], lambda _cell: True)
        out[ids["counselor"]] = lambda cell, other=other: (  # type: ignore[misc]
            stored_text_problem(cell) is None and other(cell)
        )
    return out


def _id_checks(
    ids: dict[str, int],
    respondent: str,
    to_iso: Callable[[str], str] = _iso_date,
    plain: bool = False,
) -> dict[int, Callable[[str], bool]]:
    """Yes/no checks on the session, date and rater cells, by column, for the fast path
    (and on every id cell, with ``plain``: no invisible or look-alike characters)."""

    def session_ok(cell: str) -> bool:
        value = cell.strip()
        return not value or session_problem(value) is None

    def date_ok(cell: str) -> bool:
        if not cell.strip():
            return True
        try:
            to_iso(cell)
        except (UsageProblem, ValueError):
            return False
        return True

    def rater_ok(cell: str) -> bool:
        value = cell.strip()
        return not value or rater_problem(value, respondent) is None

    checks: dict[int, Callable[[str], bool]] = {}
    if "rater" in ids:
        checks[ids["rater"]] = rater_ok
    if "session" in ids:
        checks[ids["session"]] = session_ok
    if "date" in ids:
        checks[ids["date"]] = date_ok
    if plain:
        for role in PLAIN_ROLES:
            if role in ids:
                other = checks.get(ids[role], lambda _cell: True)
                checks[ids[role]] = lambda cell, other=other: (  # type: ignore[misc]
                    plain_problem(cell) is None and other(cell)
                )
    return checks


def _score_json(
    scorer: Scorer,
    answers: Sequence[str],
    row: list[str],
    ids: dict[str, int],
    where: tuple[str, int, str],
    item_columns: dict[str, str],
    on_reject: Callable[[Rejection], None],
    to_iso: Callable[[str], str] = _iso_date,
) -> dict[str, Any] | None:
    """Score a row into Score JSON, or report its rejection; where = (file, end line, client)."""
    results, problems, noted = scorer.score_cells(answers)
    if problems:
        file, end_line, client = where
        reason = "; ".join(f"item {p.item}: {p.problem}" for p in problems)
        first = problems[0]
        line = _first_line(end_line, row)
        on_reject(Rejection(file, line, item_columns[first.item], first.value, reason, client))
        return None
    raws = [scorer.parse(i, c)[0] for i, c in enumerate(answers)]

    def cell(role: str) -> str | None:
        return row[ids[role]].strip() or None if role in ids else None

    session = cell("session")
    date = cell("date")
    who = {
        "client_id": cell("client_id"),
        "session": int(session) if session else None,
        "date": to_iso(date) if date else None,
        "rater": (cell("rater") or scorer.instrument.respondent).lower(),
    }
    return scorer.result_dict(results, noted, raws, who)


def read_layout(
    sources: list[Source],
    scorer: Scorer,
    options: BatchOptions,
    on_note: Callable[[str], None] = lambda _note: None,
) -> Layout:
    """Recognise the export's layout (or take the one forced), make its sources read as
    one row per administration, and plan the columns. Says what it recognised; a problem
    with the columns names the file whose header it is."""
    try:
        layout = _read_layout(sources, scorer, options, on_note)
    except UsageProblem as exc:
        raise _naming_the_file(exc, sources, options) from None
    return dataclasses.replace(layout, plain_ids=options.plain_ids) if options.plain_ids else layout


def _naming_the_file(
    exc: UsageProblem, sources: list[Source], options: BatchOptions
) -> UsageProblem:
    """The error, its message led by the file the header is the first's of, unless it is
    an option's own problem (``--columns '…'``: a width over 64) or names an input or an
    option's file already."""
    files = [s.name for s in sources] + [
        str(f)
        for f in (options.dictionary, options.sessions, options.questionnaire, options.map_file)
        if f
    ]
    text = str(exc)
    if type(exc) is not UsageProblem or text.startswith("-"):
        return exc
    if any(name and name in text for name in files):
        return exc
    return UsageProblem(f"{sources[0].name}: {text}")


def _read_layout(
    sources: list[Source],
    scorer: Scorer,
    options: BatchOptions,
    on_note: Callable[[str], None],
) -> Layout:
    from alliance_cli.io import layouts

    first = sources[0]
    if first.layout == "parquet":
        for source in sources:
            on_note(source.note)
    if first.layout == "fhir":  # rebuilt from QuestionnaireResponses when opened
        layout = plan_layout(
            first.header, scorer, ",", template=options.template, map_file=options.map_file,
            item_columns=options.item_columns, keep=options.keep,
        )  # fmt: skip
        for source in sources:
            on_note(source.note)
        return layout
    if layouts.is_dictionary(first.header):
        raise UsageProblem(
            "this is a REDCap data dictionary (the project's fields), not its answers: score "
            "the records export (Data Exports), and give a dictionary with --dictionary FILE "
            "only to read a label export"
        )
    _only_for(options.questionnaire, "--questionnaire", "FHIR", first.name)
    _only_for(options.fhir_rater, "--rater", "FHIR (a CSV names its rater with --rater-column)",
              first.name)  # fmt: skip
    dictionary = layouts.read_dictionary(options.dictionary) if options.dictionary else None
    if dictionary is not None:  # a label export: its columns named by the variables
        for source in sources:
            source.header, notes = dictionary.relabel(source.header)
        for note in notes:
            on_note(note)
    kind = options.layout if options.layout != "auto" else layouts.recognise_header(first.header)
    if options.layout == "auto" and kind == "csv" and layouts.looks_long(first.header):
        try:  # item and value columns: long, unless item columns are there too
            plan_layout(
                [h.strip() for h in first.header], scorer, first.delimiter,
                template=options.template, map_file=options.map_file,
                item_columns=options.item_columns, id_names=dict(options.id_names),
            )  # fmt: skip
        except UsageProblem:
            kind = "long"
    id_names = dict(options.id_names)
    if kind == "qualtrics":
        for source in sources:
            layouts.skip_qualtrics_rows(source)
        names = [h.strip() for h in first.header]
        if (
            not id_names.get("date")
            and "RecordedDate" in names
            and "date" not in {n.lower() for n in names}
        ):  # when the response was recorded: the session's date (an Observation's effective)
            id_names["date"] = "RecordedDate"
    events = kind == "redcap_eav"
    if events:  # REDCap's EAV export: long format, the record id first, sessions from events
        _only_for(options.sessions, "--sessions", "REDCap records exports (an EAV export's "
                  "sessions are counted from its events)", first.name)  # fmt: skip
        kind = "long"
        id_names = layouts.redcap_ids(first.header, id_names)
        record = id_names["client_id"]
        on_note(f"layout: REDCap EAV export (record id {record!r}; sessions counted in event "
                "order, then instance)")  # fmt: skip
    if kind == "long":
        long_ids = find_id_columns([h.strip() for h in first.header], id_names)
        for source in sources:
            on_note(layouts.rebuild_long(source, long_ids, options.item_column,
                                         options.value_column, events))  # fmt: skip
        first = sources[0]
        id_names = {role: None for role in id_names}  # the rebuilt rows name them plainly
        beyond: list[str] = []
        plan_layout(  # (only to learn which numbered names are past the form's items)
            first.header, scorer, ",", template=options.template, map_file=options.map_file,
            item_columns=options.item_columns, id_names=id_names, known_ids=options.known_ids,
            item_count=options.item_count, beyond=beyond,
        )  # fmt: skip
        for source in sources:  # the form's numbered names past its items: sets rejected
            unknown = [n for n in source.long_items if n in set(beyond)]
            layouts.drop_unknown_items(source, unknown, scorer.instrument.id)
        first = sources[0]
    header = list(first.header)
    session = None
    if kind == "redcap":
        id_names = layouts.redcap_ids(header, id_names)
        session = (
            None if id_names.get("session") else layouts.redcap_session(header, options.sessions)
        )
        if session is None:
            what = "REDCap exports whose sessions come from their events"
            _only_for(options.sessions, "--sessions", what, first.name)
        else:
            header.append("session")  # a column the rows get as they are read
    else:
        _only_for(options.sessions, "--sessions", "REDCap exports", first.name)
    layout = plan_layout(
        header, scorer, first.delimiter,
        template=options.template, map_file=options.map_file,
        item_columns=options.item_columns, id_names=id_names, keep=options.keep,
        known_ids=options.known_ids, item_count=options.item_count,
        never=dictionary.not_items() if dictionary is not None else frozenset(),
    )  # fmt: skip
    for note in layout.notes:
        on_note(note)
    if events:  # the EAV sets' sessions, now that the item columns are known
        for source in sources:
            layouts.count_sessions(source, [layout.header[p] for p in layout.items])
    if kind == "redcap":  # named or found columns stay: the form's fields fill the gaps
        layouts.redcap_form_fields(layout.header, layout.items, layout.ids)
        layout.added = session[1](layout.items) if session is not None else None
    adapter = layouts.adapter_for(
        kind if kind != "long" else "csv", header, layout.items, options.complete_only,
        session[0] if session is not None else None,
    )  # fmt: skip
    for note in adapter.notes:
        on_note(note)
    layout.exclude = adapter.exclude
    labels = dictionary.recode(layout.header, layout.items) if dictionary is not None else {}
    recode = {**adapter.recode, **labels, **(options.recode or {})}
    layout.recode = recode or None
    to_iso = layouts.parse_date_format(options.date_format)
    if to_iso is not None:
        layout.to_iso = to_iso
    if kind == "qualtrics" and not options.recode:
        for source in sources:
            _no_shifted_codes(source, layout, scorer)
    return layout


def _only_for(value: object, option: str, kind: str, name: str) -> None:
    """Refuse an option given for an input it does not apply to (never ignored quietly)."""
    if value:
        raise UsageProblem(f"{option} is for {kind}; {name} is not read that way")


SHIFT_SCAN_ROWS = 200_000  # rows of a Qualtrics export looked at before any is scored


def _no_shifted_codes(source: Source, layout: Layout, scorer: Scorer) -> None:
    """Stop before scoring a Qualtrics export whose answer codes seem to start one step
    below the scale (0 on a 1-5 form: Qualtrics numbers choices from 0 when a survey was
    built that way): its other rows would all score one step low, without a word. The
    first rows (up to ``SHIFT_SCAN_ROWS``) are read ahead and kept for the scoring."""
    below = round(scorer.low - scorer.step, 10)
    code = str(int(below)) if float(below).is_integer() else repr(below)
    lines = source.rows_from()
    ahead = list(itertools.islice(iter(lines), SHIFT_SCAN_ROWS))
    source.lines = itertools.chain(ahead, lines)
    reader = csv.reader(ahead, delimiter=source.delimiter)
    width = len(layout.header) - (layout.added is not None)
    try:  # the first item cell holding the code below the scale (the reader stops there)
        p = next(
            (p for row in reader if len(row) == width for p in layout.items
             if row[p].strip() == code),
            None,
        )  # fmt: skip
    except csv.Error:  # a record the reader refuses: rejected when it is read, later
        return
    if p is None:
        return
    line = source.skipped + reader.line_num + 1
    raise DataFileError(
        f"{source.name}:{line}: {layout.header[p]}: answer code {code}, one below "
        f"this scale's {num(scorer.low)}–{num(scorer.high)}: this export's codes "
        f"seem to start at {code}, so every row would score one step low; give "
        f"--recode '{code}-{num(scorer.high - scorer.step)}:{num(scorer.low)}-"
        f"{num(scorer.high)}' if so (nothing was scored)"
    )


def check_id_columns(layout: Layout) -> None:
    """With --save or --require-ids, the client id and session columns must exist."""
    for role, option in (("client_id", "--id-column"), ("session", "--session-column")):
        if role not in layout.ids:
            raise UsageProblem(
                f"no {role.replace('_', ' ')} column found (saving needs one); "
                f"name it with {option}"
            )
