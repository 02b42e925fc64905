"""Stream CSV rows through a Scorer, accounting for every row: scored or rejected with a reason.

No rich and no typer here: progress is a callback, output goes to file objects the caller
opens (atomically). Memory does not grow with the file.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from alliance_cli import columns as colmap
from alliance_cli.errors import DataFileError, UsageProblem
from alliance_cli.scoring import ScaleResult, Scorer, validate_date
from alliance_cli.tables import (
    find_id_columns,
    num,
    open_input,
    safe_text,
    scale_cells,
    score_cells_out,
    score_columns,
    sniff_delimiter,
)

_RISKY = frozenset("=+-@\t\r")
_MEMO_LIMIT = 200_000


@dataclass(frozen=True)
class Rejection:
    """A row that was not scored, and exactly why."""

    file: str
    line: int
    column: str
    value: str
    reason: str
    client: str = ""

    def __str__(self) -> str:
        col = f" {self.column}:" if self.column else ""
        return f"{self.file}:{self.line}:{col} {self.reason}"


REJECT_COLUMNS = ("file", "line", "client_id", "column", "value", "reason")


@dataclass
class Stats:
    """Row accounting: read = scored + rejected, always."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    seconds: float = 0.0
    rejections_shown: list[Rejection] = field(default_factory=list)


@dataclass
class Layout:
    """Where the items, ids and pass-through columns are in the header."""

    header: list[str]
    items: list[int]
    ids: dict[str, int]
    keep: list[int]
    delimiter: str


def plan_layout(
    header: list[str],
    scorer: Scorer,
    delimiter: str,
    template: str | None = None,
    map_file: Path | None = None,
    id_names: dict[str, str | None] | None = None,
    keep: Sequence[str] | None = None,
) -> Layout:
    """Decide which column is which before any row is scored; stop early when unclear."""
    stripped = [h.strip() for h in header]
    seen: dict[str, int] = {}
    for pos, name in enumerate(stripped):
        if name in seen:
            raise DataFileError(
                f"duplicate column {name!r} (columns {seen[name] + 1} and {pos + 1})"
            )
        seen[name] = pos
    items = scorer.item_ids
    if map_file is not None:
        positions = colmap.from_map(stripped, items, map_file)
    elif template is not None:
        positions = colmap.from_template(stripped, items, template)
    else:
        positions = colmap.detect(stripped, items)
    ids = find_id_columns(stripped, id_names or {})
    if keep is not None:
        missing = [k for k in keep if k not in stripped]
        if missing:
            raise UsageProblem(f"--keep names no column {', '.join(missing)}")
        kept = [stripped.index(k) for k in keep]
    else:
        taken = set(positions)
        kept = [i for i in range(len(stripped)) if i not in taken]
    return Layout(stripped, positions, ids, kept, delimiter)


class FastRows:
    """Score CSV rows with memoised per-scale cells; falls back to the Scorer for anything odd."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.tables = [
            {k: (v if v.__class__ is float else None) for k, v in t.items()} for t in scorer.tables
        ]
        integer = float(scorer.step).is_integer() and float(scorer.low).is_integer()
        self.total = sum if integer else math.fsum
        self.plans = [(p.id, p.positions, len(p.positions), p.max_missing) for p in scorer.plans]
        self.memo: list[dict[tuple[float, int], tuple[list[str], list[str]]]] = [
            {} for _ in self.plans
        ]

    def _cells(self, index: int, total: float, answered: int) -> tuple[list[str], list[str]]:
        sid, _, n, max_missing = self.plans[index]
        if n - answered > max_missing:
            res = ScaleResult(None, None, answered, False)
        else:
            mean = total / answered
            res = ScaleResult(mean, total if answered == n else mean * n, answered, answered < n)
        flags = [f"below_cutoff:{sid}" for _ in self.scorer._cutoff_hits(sid, res)]
        return scale_cells(self.scorer, sid, res), flags

    def cells(self, answers: Sequence[str]) -> tuple[list[str], list[str]] | None:
        """Score cells and flag codes for answers in item order; None when any cell is odd."""
        try:
            values = [t[c] for t, c in zip(self.tables, answers, strict=True)]
        except (KeyError, TypeError):
            return None
        out: list[str] = []
        flags: list[str] = []
        total = self.total
        for index, (_, positions, _, _) in enumerate(self.plans):
            picked = [values[p] for p in positions]
            if None in picked:
                picked = [v for v in picked if v is not None]
            key = (total(picked), len(picked))
            memo = self.memo[index]
            hit = memo.get(key)
            if hit is None:
                hit = self._cells(index, *key)
                if len(memo) < _MEMO_LIMIT:
                    memo[key] = hit
            out += hit[0]
            if hit[1]:
                flags += hit[1]
        return out, flags


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


def rows(source: Source) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) for each data row; the header is line 1."""
    reader = csv.reader(source.handle, delimiter=source.delimiter)
    line = 1
    try:
        for row in reader:
            start = line + 1
            line = reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # blank lines are not rows
            yield start, row
    except UnicodeDecodeError as exc:
        raise _decode_error(source.name, exc) from None
    except csv.Error as exc:
        raise DataFileError(f"{source.name}:{line + 1}: CSV error ({exc})") from None


class Sink:
    """Where scored rows go."""

    def begin(self, header: list[str]) -> None:
        """Called once before the first row."""

    def csv_row(self, cells: list[str]) -> None:
        """Write one CSV row (CSV sinks only)."""

    def result(self, data: dict[str, Any]) -> None:
        """Write one Score as JSON data (JSON sinks only)."""

    def end(self) -> None:
        """Called once after the last row."""

    wants_json = False


class CsvSink(Sink):
    """CSV output: pass-through columns then score columns."""

    def __init__(self, handle: IO[str]) -> None:
        self.writer = csv.writer(handle, lineterminator="\n")
        self.csv_row = self.writer.writerow  # type: ignore[method-assign]

    def begin(self, header: list[str]) -> None:
        """Write the header."""
        self.writer.writerow(header)


class JsonSink(Sink):
    """NDJSON (one Score per line) or a JSON array, streamed."""

    wants_json = True

    def __init__(self, handle: IO[str], array: bool) -> None:
        self.handle = handle
        self.array = array
        self.count = 0

    def begin(self, header: list[str]) -> None:
        """Open the array."""
        if self.array:
            self.handle.write("[")

    def result(self, data: dict[str, Any]) -> None:
        """Write one Score."""
        text = json.dumps(data, ensure_ascii=False)
        if self.array:
            self.handle.write(("\n  " if self.count == 0 else ",\n  ") + text)
        else:
            self.handle.write(text + "\n")
        self.count += 1

    def end(self) -> None:
        """Close the array."""
        if self.array:
            self.handle.write("\n]\n" if self.count else "]\n")


def run(
    sources: Sequence[Source],
    scorer: Scorer,
    layout: Layout,
    sink: Sink,
    on_reject: Callable[[Rejection], None],
    require_ids: bool = False,
    on_progress: Callable[[int], None] | None = None,
    on_score: Callable[[dict[str, Any]], None] | None = None,
) -> Stats:
    """Score every row of every source into sink; report each rejected row to on_reject."""
    stats = Stats()
    started = time.perf_counter()
    width = len(layout.header)
    get_items = itemgetter(*layout.items) if len(layout.items) > 1 else None
    first_item = layout.items[0]
    keep = layout.keep
    ids = layout.ids
    client_col = ids.get("client_id")
    header_names = layout.header
    fast = FastRows(scorer)
    item_columns = dict(zip(scorer.item_ids, (header_names[p] for p in layout.items), strict=True))
    sha = scorer.sha256
    wants_json = sink.wants_json or on_score is not None
    sink.begin([header_names[i] for i in keep] + score_columns(scorer))
    required = [r for r in ("client_id", "session") if require_ids]
    for role in required:
        if role not in ids:
            raise UsageProblem(
                f"no {role} column found; name it with --{role.split('_')[0]}-column"
            )
    for source in sources:
        for line, row in rows(source):
            stats.read += 1
            if on_progress is not None and stats.read % 8192 == 0:
                on_progress(stats.read)
            client = row[client_col] if client_col is not None and client_col < len(row) else ""
            if len(row) != width:
                reason = f"row has {len(row)} fields; the header has {width}"
                on_reject(Rejection(source.name, line, "", "", reason, client))
                stats.rejected += 1
                continue
            answers = get_items(row) if get_items is not None else (row[first_item],)
            problem = _id_problem(row, ids, required, wants_json)
            if problem is not None:
                on_reject(Rejection(source.name, line, *problem, client))
                stats.rejected += 1
                continue
            if wants_json:
                where = (source.name, line, client)
                data = _score_json(scorer, answers, row, ids, where, item_columns, on_reject)
                if data is None:
                    stats.rejected += 1
                    continue
                if sink.wants_json:
                    sink.result(data)
                else:
                    sink.csv_row(_passthrough(row, keep) + _cells_from_json(scorer, data))
                if on_score is not None:
                    on_score(data)
                stats.scored += 1
                continue
            got = fast.cells(answers)
            if got is None:
                results, problems, _ = scorer.score_cells(answers)
                if problems:
                    first = problems[0]
                    column = item_columns[first.item]
                    reason = "; ".join(f"item {p.item}: {p.problem}" for p in problems)
                    on_reject(Rejection(source.name, line, column, first.value, reason, client))
                    stats.rejected += 1
                    continue
                cells = score_cells_out(scorer, results, scorer.flag_codes(results))
            else:
                cells, flags = got
                cells = [*cells, ";".join(flags), sha]
            sink.csv_row(_passthrough(row, keep) + cells)
            stats.scored += 1
    sink.end()
    stats.seconds = time.perf_counter() - started
    return stats


def _passthrough(row: list[str], keep: list[int]) -> list[str]:
    return [safe_text(c) if c and c[0] in _RISKY else c for c in (row[i] for i in keep)]


def _id_problem(
    row: list[str], ids: dict[str, int], required: list[str], strict_types: bool
) -> tuple[str, str, str] | None:
    for role in required:
        if not row[ids[role]].strip():
            return role, "", f"{role} is blank (ids are required)"
    if strict_types and "session" in ids:
        value = row[ids["session"]].strip()
        if value and not value.isdigit():
            return "session", value, f'session "{value}" is not a whole number'
    if strict_types and "date" in ids:
        value = row[ids["date"]].strip()
        try:
            validate_date(value)
        except UsageProblem:
            return "date", value, f'date "{value}" is not an ISO date (YYYY-MM-DD)'
    return None


def _score_json(
    scorer: Scorer,
    answers: Sequence[str],
    row: list[str],
    ids: dict[str, int],
    where: tuple[str, int, str],
    item_columns: dict[str, str],
    on_reject: Callable[[Rejection], None],
) -> dict[str, Any] | None:
    results, problems, noted = scorer.score_cells(answers)
    if problems:
        file, line, client = where
        reason = "; ".join(f"item {p.item}: {p.problem}" for p in problems)
        first = problems[0]
        on_reject(Rejection(file, line, item_columns[first.item], first.value, reason, client))
        return None
    raws = [scorer.parse(i, c)[0] for i, c in enumerate(answers)]

    def cell(role: str) -> str | None:
        return row[ids[role]].strip() or None if role in ids else None

    session = cell("session")
    who = {
        "client_id": cell("client_id"),
        "session": int(session) if session else None,
        "date": validate_date(cell("date")),
        "rater": cell("rater") or scorer.instrument.respondent,
    }
    return scorer.result_dict(results, noted, raws, who)


def _cells_from_json(scorer: Scorer, data: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for plan in scorer.plans:
        s = data["scales"][plan.id]
        out += [num(s["mean"]), num(s["sum"]), str(s["answered"]), num(s["pomp"])]
        if scorer.norm is not None and plan.id in scorer.norm.scales:
            out.append(num(s["z"]))
        if plan.id in scorer.bands:
            out.append(s["band"] or "")
    flags = ";".join(f"{f['code']}:{f['scale']}" for f in data["flags"])
    return [*out, flags, scorer.sha256]


def write_rejections(handle: IO[str], rejections: Iterable[Rejection]) -> None:
    """Rejections as CSV, one per rejected row."""
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(REJECT_COLUMNS)
    for r in rejections:
        writer.writerow(
            [r.file, r.line, safe_text(r.client), r.column, safe_text(r.value), r.reason]
        )


class _Discard(Exception):
    """Raised inside an atomic write to leave the target untouched (--strict)."""


def run_files(
    inputs: Sequence[str],
    scorer: Scorer,
    fmt: str,
    output: Path | None,
    rejects: Path | None,
    options: dict[str, Any],
    on_reject_line: Callable[[Rejection], None],
    on_progress: Callable[[int], None] | None = None,
    on_score: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Stats, bool]:
    """Open inputs, plan columns, stream rows to output (atomically) and rejects to a CSV.

    Returns the row accounting and whether output was written (``--strict`` withholds it
    when any row is rejected).
    """
    import io
    import sys
    import tempfile

    from alliance_cli.tables import atomic_writer

    for name in inputs:
        for target, what in ((output, "output"), (rejects, "--rejects")):
            if target is not None and name != "-" and Path(name).resolve() == target.resolve():
                raise UsageProblem(
                    f"{what} {target} is also an input; the input is never overwritten"
                )
    sources = open_sources(inputs, options.get("encoding", "utf-8"), options.get("delimiter"))
    try:
        layout = plan_layout(
            sources[0].header,
            scorer,
            sources[0].delimiter,
            template=options.get("template"),
            map_file=options.get("map_file"),
            id_names=options.get("id_names"),
            keep=options.get("keep"),
        )
        strict = bool(options.get("strict"))
        rejected_any = False

        def body(out: IO[str], reject_out: IO[str] | None) -> Stats:
            nonlocal rejected_any
            writer = csv.writer(reject_out, lineterminator="\n") if reject_out else None
            if writer:
                writer.writerow(REJECT_COLUMNS)

            def reject(r: Rejection) -> None:
                nonlocal rejected_any
                rejected_any = True
                if writer:
                    writer.writerow(
                        [
                            r.file,
                            r.line,
                            safe_text(r.client),
                            r.column,
                            safe_text(r.value),
                            r.reason,
                        ]
                    )
                on_reject_line(r)

            sink: Sink = CsvSink(out) if fmt == "csv" else JsonSink(out, array=fmt == "json")
            return run(
                sources, scorer, layout, sink, reject,
                require_ids=bool(options.get("require_ids")),
                on_progress=on_progress, on_score=on_score,
            )  # fmt: skip

        def with_rejects(out: IO[str]) -> Stats:
            if rejects is None:
                return body(out, None)
            with atomic_writer(rejects) as reject_out:
                return body(out, reject_out)

        if output is not None:
            try:
                with atomic_writer(output) as out:
                    stats = with_rejects(out)
                    if strict and rejected_any:
                        raise _Discard
            except _Discard:
                return stats, False
            return stats, True
        if strict:
            with tempfile.TemporaryFile("w+", encoding="utf-8", newline="") as spool:
                stats = with_rejects(spool)
                if rejected_any:
                    return stats, False
                spool.seek(0)
                while chunk := spool.read(1 << 20):
                    sys.stdout.write(chunk)
            return stats, True
        out = sys.stdout
        if isinstance(out, io.TextIOWrapper):
            out.reconfigure(newline="")
        return with_rejects(out), True
    finally:
        for source in sources:
            if source.name != "stdin":
                source.handle.close()
