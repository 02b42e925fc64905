"""``batch --jobs N``: one file split by byte ranges at line starts, scored by N processes.

The output is byte for byte what ``--jobs 1`` writes: the same rows in the same order, the
same rejections with the same line numbers, the same summary. Each worker scores its range
with the one engine (``score_stream``) into a temporary file; the parent writes the header
once, then the workers' outputs in order, and replays their rejections in order.

Quoted fields may hold line breaks, so a line start is not always a record start. A worker
counts the physical lines it read and the records they made: when every range has one record
per line, every range began at a record start (by induction from the first, which begins
after the header), so the split was exact. If any range held a record spanning lines, the
parallel results are thrown away and the file is scored with one process: correct first,
fast when it can be. Memory stays flat per worker: each streams its range.

Used for one regular, seekable file in an ASCII-compatible encoding (UTF-8, Latin-1,
cp1252), plain CSV or REDCap layout; anything else runs on one process. With ``--save`` the
workers build the rows to store (``store.sqlite.FastRows``) and never touch the history;
each range's rows go into a database file of their own (``_Spool``: binding the values,
most of a save's time, on every core). A --save splits the file into more ranges than
workers (up to ``SAVE_RANGES``), each worker taking every n-th. The parent, the one writer,
stores each range with one statement as soon as it and every range before it are done,
while the workers score later ones, so rows go in in file order and duplicates and
conflicts are told exactly as on one process; if a later range proves inexact, what was
stored is rolled back to a savepoint and one process scores the file (instruments whose
rows need their full Score to be stored save on one process).
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import io
import itertools
import os
import pickle
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from alliance_cli.batch.engine import (
    BatchOptions,
    Layout,
    Rejection,
    Stats,
    output_header,
    read_layout,
    score_stream,
)
from alliance_cli.batch.sinks import CsvSink, FhirSink, JsonSink, Sink
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.csvin import encoding_for, open_sources
from alliance_cli.io.source import Source, bounded_lines, line_cap

SCAN_BLOCK = 1 << 22  # bytes a worker reads at a time while counting lines
SAVE_RANGES = 8  # ranges (and workers) of a --save at most: SQLite attaches 10 databases
MIN_BYTES = 4 << 20  # below this a file is scored on one process: start-up would dominate
ASCII_SAFE = {"utf-8", "utf8", "utf-8-sig", "latin-1", "latin1", "iso-8859-1", "cp1252", "ascii"}


def default_jobs() -> int:
    """Every core this process may use."""
    from alliance_cli.io.environment import usable_cores

    return usable_cores()


def _worker_sink(fmt: str, handle: IO[str]) -> Sink:
    if fmt == "csv":
        return CsvSink(handle, header=False)  # the parent writes it once
    if fmt == "fhir":
        return FhirSink(handle)
    return JsonSink(handle, array=False)  # json arrays are put together by the parent


def plan_ranges(path: str, data_start: int, jobs: int) -> list[tuple[int, int]]:
    """(start, end) of up to ``jobs`` byte ranges of the data, each starting a line.

    Only the bytes around each cut are read (a block at a time: memory stays flat); each
    worker counts the lines before its range itself, in parallel (``_scan``).
    """
    size = os.path.getsize(path)
    cuts = [data_start]
    with open(path, "rb") as handle:
        for k in range(1, jobs):
            handle.seek(max(data_start + (size - data_start) * k // jobs, cuts[-1]))
            found = -1
            offset = handle.tell()
            while (piece := handle.read(1 << 16)) and found < 0:
                found = piece.find(b"\n")
                if found < 0:
                    offset += len(piece)
            if found < 0 or offset + found + 1 >= size:
                break
            cuts.append(offset + found + 1)
    cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _scan(
    path: str, start: int, end: int, known: tuple[int, int] = (0, 0)
) -> tuple[int, int, bool]:
    """(lines before start, lines from start to end, whether a bare carriage return is
    between them), a block at a time; ``known``: (an offset at or before start, the lines
    before it), so a worker's later range counts on from its earlier one. A bare CR ends a
    line for the reader but not for the split (a cut follows a newline): such a range is
    scored on one process instead."""
    block = SCAN_BLOCK
    at, before = known
    lines = carriage = pairs = 0
    with open(path, "rb") as handle:
        handle.seek(at)
        left = start - at
        while left > 0 and (chunk := handle.read(min(left, block))):
            before += chunk.count(b"\n")
            left -= len(chunk)
        left, previous = end - start, b""
        while left > 0 and (chunk := handle.read(min(left, block))):
            lines += chunk.count(b"\n")
            if b"\r" in chunk:
                carriage += chunk.count(b"\r")
                pairs += chunk.count(b"\r\n")
            pairs += previous == b"\r" and chunk[:1] == b"\n"  # a pair across two blocks
            previous = chunk[-1:]
            left -= len(chunk)
    return before, lines, carriage != pairs


def _data_start(path: str) -> int | None:
    """The byte where the data rows begin (after a BOM, a sep= line and the header), or
    None when the header holds a quoted line break (then one process)."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    at = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    line_end = head.find(b"\n", at)
    if head[at:].lower().startswith(b"sep=") and line_end >= 0:
        at = line_end + 1
        line_end = head.find(b"\n", at)
    if line_end < 0 or head[at:line_end].count(b'"') % 2:
        return None
    return line_end + 1


@dataclasses.dataclass
class _Result:
    stats: Stats
    rejections: list[Rejection]
    exact: bool  # one record per line: the range began and ended at record starts


def _score_ranges(
    path: str,
    scorer: Scorer,
    fmt: str,
    options: BatchOptions,
    ranges: list[tuple[int, int]],
    worker: int,
    count: int,
    scratch: str,
    saver: Any,
    progress: Any = None,
) -> None:
    """In a worker: score its share of the ranges (every ``count``-th, from ``worker``),
    each into its own files; a range's result file appears (by rename) when it is done.
    ``progress`` (shared with the parent): this worker's rows and bytes done so far."""
    known = (0, 0)  # (an offset, the lines before it), carried from range to range
    for k in range(worker, len(ranges), count):
        out = Path(scratch) / f"{k}.out"
        result = Path(scratch) / f"{k}.result"
        tell = None
        if progress is not None:
            rows_before, bytes_before = progress[2 * worker], progress[2 * worker + 1]

            def tell(rows: int, done: int, r0: int = rows_before, b0: int = bytes_before,
                     start: int = ranges[k][0]) -> None:  # fmt: skip
                progress[2 * worker] = r0 + rows
                progress[2 * worker + 1] = b0 + max(0, done - start)

        known = _score_range(path, scorer, fmt, options, ranges[k], out, result, saver, known, tell)
        if progress is not None:  # the whole range, whatever the stream last said
            progress[2 * worker + 1] = bytes_before + ranges[k][1] - ranges[k][0]
        gc.collect()  # the range's memo tables hold their owners' methods: cycles to free


def _wait(result: Path, worker: Any, tick: Callable[[], None] | None = None) -> bool:
    """Wait for a range's result file; False if its worker ended without writing it.
    ``tick`` is called about ten times a second meanwhile (the progress bar)."""
    last = 0.0
    while not result.exists():
        if not worker.is_alive() and not result.exists():
            return False
        if tick is not None and time.monotonic() - last > 0.1:
            tick()
            last = time.monotonic()
        time.sleep(0.005)
    return True


def _score_range(
    path: str,
    scorer: Scorer,
    fmt: str,
    options: BatchOptions,
    span: tuple[int, int],
    out_path: Path,
    result_path: Path,
    saver: Any = None,
    known: tuple[int, int] = (0, 0),
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """In a worker: score one byte range into out_path; what happened into result_path;
    with a saver, the rows to store into a spool beside them (never the database: only the
    parent writes it, and a forked connection is not used). Returns (the range's end, the
    lines before it), for the worker's next range."""
    start, end = span
    lines_before, count, bare = _scan(path, start, end, known)
    if bare:  # the reader would count lines otherwise than the split: one process
        _publish(result_path, _Result(Stats(), [], False))
        return end, lines_before + count
    sources = open_sources([path], options.encoding, options.delimiter)
    (source,) = sources
    layout: Layout = read_layout(sources, scorer, options)
    raw = open(path, "rb")  # noqa: SIM115 - closed below, with its text wrapper
    raw.seek(start)
    with open(path, "rb") as first:  # decoded as the whole file is (its BOM decides)
        encoding = encoding_for(options.encoding, first.read(4))
    text = io.TextIOWrapper(raw, encoding=encoding, newline="")
    unterminated = end == os.path.getsize(path) and not _ends_with_newline(path)
    wanted = count + (1 if unterminated else 0)
    chunk = Source(
        source.name, text, source.header, source.delimiter,
        skipped=lines_before - 1,
        lines=itertools.islice(bounded_lines(text, line_cap(len(source.header))), wanted),
    )  # fmt: skip
    source.handle.close()
    rejections: list[Rejection] = []
    spool: _Spool | _CopySpool | None = None
    if saver is not None:  # this range's rows go to a database of its own
        kind = _CopySpool if saver.recorder.spools_copy_text else _Spool
        spool = kind(out_path.with_suffix(".rows"), saver.recorder)
        saver = copy.copy(saver)  # (its memo tables shared with the worker's other ranges)
        saver.recorder = spool
    try:
        with open(out_path, "w", encoding="utf-8", newline="", buffering=1 << 20) as out:
            stats = score_stream(
                [chunk], scorer, layout, _worker_sink(fmt, out), rejections.append,
                require_ids=options.require_ids,
                on_score=spool.add_score if spool is not None else None,
                fast_saver=(lambda ids, to_iso: saver) if spool is not None else None,
                on_progress=on_progress,
            )  # fmt: skip
    finally:
        text.close()
        if spool is not None:
            spool.close()
    exact = stats.records == stats.lines
    _publish(result_path, _Result(stats, rejections, exact))
    return end, lines_before + count


def _publish(result_path: Path, result: _Result) -> None:
    """Write a range's result whole, then rename it into place: the parent, waiting for
    the name, never reads half of it."""
    partial = result_path.with_suffix(".partial")
    with open(partial, "wb") as handle:
        pickle.dump(result, handle)
    os.replace(partial, result_path)


class _Spool:
    """A worker's stored rows, in a database file of its own for the parent to store.

    Rows go in as the batch's recorder would store them (``FastRows``' rows with the
    batch's constants written in, whole rows bound in full), in file order, into a table
    shaped like ``sessions`` with no index and no journal: binding values, most of a
    save's time, happens here, on every core. The parent stores each file with one
    statement (``BatchRecorder.add_spooled``).
    """

    def __init__(self, path: Path, recorder: Any) -> None:
        import sqlite3

        create, self.fast_sql, self.whole_sql = recorder.spool_statements()
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute(create)
        self.db.execute("BEGIN")
        self.rows: list[tuple[object, ...]] = []
        self.fast = True  # the kind of the rows held: FastRows' or whole
        self.store = recorder.store  # for _row: its definition is known, no query
        self.now = recorder.now

    def _switch(self, fast: bool) -> None:
        if self.rows and (fast != self.fast or len(self.rows) >= 10000):
            self._write()
        self.fast = fast

    def _write(self) -> None:
        self.db.executemany(self.fast_sql if self.fast else self.whole_sql, self.rows)
        self.rows = []

    def add_fast(self, row: tuple[object, ...]) -> None:
        """Keep one stored row from FastRows (the recorder's ``add_fast`` shape)."""
        self._switch(True)
        self.rows.append(row)

    def add_fast_rows(self, rows: list[tuple[object, ...]]) -> None:
        """Keep the stored rows of a block scored column by column."""
        self._switch(True)
        self.rows.extend(rows)

    def add_row(self, row: tuple[object, ...]) -> None:
        """Keep one whole stored row (``Store._row``'s shape)."""
        self._switch(False)
        self.rows.append(row)

    def add_score(self, data: dict[str, object], counselor: str | None = None) -> None:
        """Keep the stored row of a Score (a row the fast path left to the full one)."""
        self.add_row(self.store._row(data, self.now, counselor))

    def close(self) -> None:
        """Write what is left, and close the file."""
        if self.rows:
            self._write()
        self.db.execute("COMMIT")
        self.db.close()


class _CopySpool:
    """A worker's stored rows as PostgreSQL COPY text, for a server's history: the parent
    streams the file to the server without reading it (``BatchRecorder.add_spooled``), so
    formatting each row happens here, on every core."""

    def __init__(self, path: Path, recorder: Any) -> None:
        # the recorder's own formatters: only its back end knows the columns it copies
        self._fast, self._whole = recorder.copy_spool_lines()
        self.path = path
        self.handle = open(path, "w", encoding="utf-8", newline="", buffering=1 << 20)  # noqa: SIM115
        self.clients: set[str] = set()  # listed beside the rows: the parent claims them
        self.store = recorder.store  # for _row: its definition is known, no query
        self.now = recorder.now

    def add_fast(self, row: tuple[Any, ...]) -> None:
        """Keep one stored row from FastRows."""
        self.clients.add(row[0])
        self.handle.write(self._fast((row,)))

    def add_fast_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """Keep the stored rows of a block scored column by column."""
        self.clients.update(r[0] for r in rows)
        self.handle.write(self._fast(rows))

    def add_row(self, row: tuple[Any, ...]) -> None:
        """Keep one whole stored row (``Store._row``'s shape)."""
        self.clients.add(row[0])
        self.handle.write(self._whole(row))

    def add_score(self, data: dict[str, Any], counselor: str | None = None) -> None:
        """Keep the stored row of a Score (a row the fast path left to the full one)."""
        self.add_row(self.store._row(data, self.now, counselor))

    def close(self) -> None:
        """Write what is left, close the file, and list its clients beside it."""
        import json

        self.handle.close()
        with open(f"{self.path}.clients", "w", encoding="utf-8") as handle:
            json.dump(sorted(self.clients), handle, ensure_ascii=False)


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as handle:
        handle.seek(max(0, os.path.getsize(path) - 1))
        return handle.read(1) == b"\n"


def usable(inputs: Sequence[str], fmt: str, options: BatchOptions, saving: bool) -> bool:
    """Whether this batch can run on several processes (see the module's docstring)."""
    del saving  # a --save runs on several processes too: the parent is the one writer
    if len(inputs) != 1 or inputs[0] == "-" or fmt == "parquet":
        return False
    if options.layout not in ("auto", "csv", "redcap") or options.complete_only:
        return False

    path = inputs[0]
    try:
        from alliance_cli.io.environment import number

        # tests: small
        smallest = number("ALLIANCE_JOBS_MIN_BYTES", MIN_BYTES, "the smallest file to split")
        if not Path(path).is_file() or os.path.getsize(path) < smallest:
            return False
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        return False
    if encoding_for(options.encoding, head) not in ASCII_SAFE:
        return False  # UTF-16/32 (a BOM says so) or another wide encoding: lines are not bytes
    return not head.startswith((b"PAR1", b"{"))  # Parquet and FHIR are read whole


def run(
    path: str,
    scorer: Scorer,
    fmt: str,
    layout: Layout,
    options: BatchOptions,
    jobs: int,
    out: IO[str],
    reject: Callable[[Rejection], None],
    saver: Any = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Stats | None:
    """Score path on ``jobs`` processes into out; None when it must run on one instead
    (nothing written then). ``saver``: a ``store.sqlite.FastRows`` when the rows are also
    saved: the workers build the stored rows, the parent (the one writer) stores them in
    order, so duplicates and conflicts are told as on one process."""
    import multiprocessing

    start = _data_start(path)
    if start is None:
        return None
    if saver is not None:
        # each range's rows are a database the parent attaches: at most SAVE_RANGES; more
        # ranges than workers, so the parent stores the first while later ones are scored
        jobs = min(jobs, SAVE_RANGES)
        ranges = plan_ranges(path, start, min(SAVE_RANGES, jobs * 4))
    else:
        ranges = plan_ranges(path, start, jobs)
    if len(ranges) < 2:
        return None
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")
    count = min(jobs, len(ranges), default_jobs())  # never more processes than cores
    from alliance_cli.io.files import scratch as scratch_folder

    # every worker's rows and bytes done, shared: one bar on a terminal for all of them
    progress = context.Array("q", 2 * count, lock=False) if on_progress is not None else None

    def tick() -> None:
        if on_progress is not None and progress is not None:
            on_progress(sum(progress[0::2]), start + sum(progress[1::2]))

    with scratch_folder("jobs") as scratch:
        outs = [Path(scratch) / f"{k}.out" for k in range(len(ranges))]
        results = [Path(scratch) / f"{k}.result" for k in range(len(ranges))]
        workers = [
            context.Process(
                target=_score_ranges,
                args=(path, scorer, fmt, options, ranges, w, count, scratch, saver, progress),
                daemon=True,
            )
            for w in range(count)
        ]
        for w in workers:
            w.start()
        done: list[_Result] = []
        try:
            if saver is not None:
                saver.recorder.mark()
            for k, result in enumerate(results):  # in file order, as each range is done
                if not _wait(result, workers[k % count], tick):
                    break
                with open(result, "rb") as handle:
                    done.append(pickle.load(handle))
                if not done[-1].exact:
                    break  # a quoted line break somewhere: one process, to be exact
                if saver is not None:  # its rows, through the one writer
                    saver.recorder.add_spooled(str(outs[k].with_suffix(".rows")))
            tick()  # the last word: every worker's rows
            if len(done) < len(results) or not done[-1].exact:
                for w in workers:
                    w.kill()
            for w in workers:
                w.join()
        except BaseException:
            for w in workers:
                w.kill()
            raise
        if len(done) < len(results) or not all(r.exact for r in done):
            if saver is not None:
                saver.recorder.undo()
            return None  # the one-process run scores it (and reports any failure)
        _write(out, fmt, scorer, layout, outs)
    stats = Stats()
    for r in done:
        stats.read += r.stats.read
        stats.scored += r.stats.scored
        stats.rejected += r.stats.rejected
        stats.not_administered += r.stats.not_administered
        stats.fast += r.stats.fast
        stats.by_block += r.stats.by_block
        for why, n in r.stats.excluded.items():
            stats.excluded[why] = stats.excluded.get(why, 0) + n
        for rejection in r.rejections:
            reject(rejection)
    stats.seconds = time.perf_counter() - started
    return stats


def _write(out: IO[str], fmt: str, scorer: Scorer, layout: Layout, outs: list[Path]) -> None:
    """The header (CSV) or the array (JSON), then each worker's output in order."""
    from alliance_cli.io.csvout import CsvWriter

    if fmt == "csv":
        CsvWriter(out).writerow(output_header(layout, scorer))
    if fmt == "json":
        out.write("[")
        count = 0
        for part in outs:
            with open(part, encoding="utf-8", newline="") as handle:
                for line in handle:
                    out.write(("\n  " if count == 0 else ",\n  ") + line.rstrip("\n"))
                    count += 1
        out.write("\n]\n" if count else "]\n")
        return
    out.flush()
    target = getattr(out, "buffer", None)
    for part in outs:
        if target is not None:
            target.flush()
            with open(part, "rb") as handle:
                _copy(handle, target)
        else:  # standard output behind its broken-pipe guard: text, a block at a time
            with open(part, encoding="utf-8", newline="") as handle:
                while block := handle.read(1 << 20):
                    out.write(block)
    if target is not None:
        target.flush()


def _copy(source: IO[bytes], target: IO[bytes]) -> None:
    """Append a worker's output to the target: in the kernel (``sendfile``) where it can,
    else through a buffer."""
    size = os.fstat(source.fileno()).st_size
    sent = 0
    try:
        out = target.fileno()
        while sent < size:
            done = os.sendfile(out, source.fileno(), sent, size - sent)
            if done == 0:
                break
            sent += done
    except (OSError, AttributeError, io.UnsupportedOperation):
        pass  # not a file the kernel copies to: copied the usual way from where it stopped
    if sent < size:
        source.seek(sent)
        shutil.copyfileobj(source, target, 1 << 20)
