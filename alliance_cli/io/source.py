"""One input, opened: where its rows are read from and how their lines map back to the file
(``Source``), and the one error for a file that is not text in its encoding. Below both the
CSV reader and the readers that rebuild rows (FHIR, long format), which use it alike."""

from __future__ import annotations

import collections
import csv
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Protocol

from alliance_cli.core.errors import DataFileError


def decode_error(name: str, exc: UnicodeError) -> DataFileError:
    """The one-line error for a file that is not text in its encoding."""
    if isinstance(exc, UnicodeDecodeError):
        where = f"{exc.encoding} text at byte {exc.start}"
    else:  # e.g. "UTF-16 stream does not start with BOM"
        where = f"text in the encoding asked for ({exc})"
    return DataFileError(
        f"{name}: not {where} (for exports from Excel or older systems try --encoding "
        "latin-1 or cp1252)"
    )


@dataclass
class Source:
    """One input file, opened, with its header read.

    ``lines`` is what the rows are read from (the handle, unless a layout peeked at rows);
    ``skipped`` counts the file lines before the data besides the header line (Excel's
    ``sep=`` line, Qualtrics' extra header rows), so reported line numbers are the file's;
    ``line_of`` maps a line of rows the layout rebuilt (long format) to the file's line.
    """

    name: str
    handle: IO[str]
    header: list[str]
    delimiter: str
    skipped: int = 0
    lines: Iterable[str] | None = None
    line_of: Callable[[int], int] | None = None
    layout: str = "csv"
    # rejections found while rebuilding rows (long format: an item given twice)
    early: list[tuple[int, str, str, str, str]] = field(default_factory=list)
    label_of: Callable[[int], str] | None = None  # FHIR: the resource a rebuilt row came from
    excluded: dict[str, int] = field(default_factory=dict)  # rows left out while rebuilding
    note: str = ""  # what was recognised, for stderr
    long_items: list[str] = field(default_factory=list)  # long format: the item names seen
    long_lines: list[int] = field(default_factory=list)  # and each rebuilt row's file line

    def rows_from(self) -> Iterable[str]:
        """The lines the rows are read from (none longer than any record can be)."""
        if self.lines is None:
            return bounded_lines(self.handle, line_cap(len(self.header)))
        return self.lines

    def file_line(self, line: int) -> int:
        """A line number as counted from the header (line 1) -> the file's line."""
        return self.line_of(line) if self.line_of is not None else line + self.skipped


class RowRefused(ValueError):
    """A row a layout cannot read (a REDCap event with no session): the column, value and
    reason its rejection names."""

    def __init__(self, column: str, value: str, reason: str) -> None:
        super().__init__(reason)
        self.column, self.value, self.reason = column, value, reason


def line_cap(width: int) -> int:
    """The longest line a record of ``width`` fields can hold, in characters: each field
    under the reader's limit (128 KiB), written with every character a doubled quote, plus
    its quotes and delimiter. A longer line cannot be read as a record."""
    return (width + 2) * (2 * csv.field_size_limit() + 3)


class Lines(Protocol):
    """What ``bounded_lines`` reads: anything with a text ``readline`` that takes a limit."""

    def readline(self, limit: int = -1, /) -> str:
        """One line, at most ``limit`` characters."""
        ...


def bounded_lines(handle: Lines, cap: int) -> Iterator[str]:
    """The handle's lines as iterating it gives them, but none longer than ``cap``: a longer
    one (a file of NUL bytes, /dev/zero, an export with no line ends) is given as its first
    ``cap`` characters and a line end, which the reader then rejects as one record, and the
    rest of it is read and dropped, so memory stays flat whatever the input."""
    readline = handle.readline
    while line := readline(cap):
        if len(line) < cap or line[-1] in "\n\r":
            yield line
            continue
        rest = line
        while rest and rest[-1] not in "\n\r":
            rest = readline(cap)
        yield line + "\n"


def kept_lines(lines: Iterable[str], kept: collections.deque[str], chars: int) -> Iterator[str]:
    """The lines, each also kept in ``kept`` while the ones after it hold under ``chars``
    characters: the lines of any record the reader is reading are there to read again."""
    total = 0
    for line in lines:
        kept.append(line)
        total += len(line)
        while total - len(kept[0]) >= chars + len(line):
            total -= len(kept.popleft())
        yield line


def swallowed_rows(row: list[str], width: int, delimiter: str) -> int:
    """How many lines inside the row's quoted fields look like whole rows of the file.

    A quote that is never closed swallows the rows after it into one field; a genuine
    multi-line note does not hold lines with a full row's worth of delimiters.
    """
    if width < 2:
        return 0
    return sum(
        1
        for cell in row
        if "\n" in cell or "\r" in cell
        for line in cell.splitlines()[1:]
        if line.count(delimiter) >= width - 1
    )


def records_read_again(
    lines: Iterable[str], width: int, delimiter: str, skipped: int = 0
) -> Iterator[tuple[list[str] | None, int, str]]:
    """The records of a CSV body (its header was line 1, ``skipped`` lines before the body),
    each as (row, its first file line, ""), blank lines left out. A record the reader
    refuses (a cell over its limit) or a quoted field that runs over whole rows (a quote
    never closed) is (None, its first line, why it is not read), and the lines after its
    first are read again with a new reader: one bad record never swallows the rest."""
    base = iter(lines)
    recent: collections.deque[str] = collections.deque()  # the lines a record may span
    keep_chars = 2 * (width + 2) * csv.field_size_limit()
    offset = 0  # the body's lines before the current reader's first
    end = 1  # the line the previous record ended on (the header is line 1)
    while True:
        reader = csv.reader(kept_lines(base, recent, keep_chars), delimiter=delimiter)
        try:
            for row in reader:
                start, end = end + 1 + skipped, offset + reader.line_num + 1
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                first = start - skipped
                runs = swallowed_rows(row, width, delimiter) if end > first else 0
                if not runs:
                    yield row, start, ""
                    continue
                yield (
                    None,
                    start,
                    (  # a quote that runs over whole rows: its first line only
                        f"a quoted field runs from line {start} to line {end + skipped}, over "
                        f"{runs} line(s) that look like rows (a quote never closed?); this row is "
                        f"not read{_read_again(first, end)}"
                    ),
                )
                break
            else:
                return
        except csv.Error as exc:
            first, end = end + 1, offset + reader.line_num + 1  # the record's line, and here
            limit = f"larger than {csv.field_size_limit() // 1024} KiB"
            where = f"on line {first + skipped}" if end == first else (
                f"from line {first + skipped} to {end + skipped}")  # fmt: skip
            what = f"a field grew {limit}" if "field limit" in str(exc) else f"CSV error ({exc})"
            yield (
                None,
                first + skipped,
                (
                    f"{what} {where} (a cell that large, or a quote never closed); this row is not "
                    f"read{_read_again(first, end)}"
                ),
            )
        again = end - first  # the lines after the refused record's first: read again
        base = itertools.chain(list(recent)[-again:] if again else [], base)
        recent.clear()
        offset, end = first - 1, first


def _read_again(first: int, now: int) -> str:
    return f", and the {now - first:,} line(s) after it are read again" if now > first else ""
