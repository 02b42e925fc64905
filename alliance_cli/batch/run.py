"""Running a batch: outputs opened safely, every row streamed through the engine (on several
processes when ``batch.parallel`` can split the file exactly), the rejects written, and the
outputs put in place only when every row is accounted for.

The top of the batch part: it imports the engine and the parallel runner, which import
neither it nor each other's callers (no circle).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from alliance_cli.batch.engine import (
    REJECT_COLUMNS,
    BatchOptions,
    Rejection,
    Stats,
    check_id_columns,
    read_layout,
    renamed_columns,
    score_stream,
)
from alliance_cli.batch.sinks import CsvSink, FhirSink, JsonSink, Sink
from alliance_cli.core.errors import DataFileError, UsageProblem
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.csvin import open_sources
from alliance_cli.io.csvout import CsvWriter
from alliance_cli.io.environment import collector_paused


class _Discard(Exception):
    """Raised inside an atomic write to leave the target untouched (--strict)."""


def run_files(
    inputs: Sequence[str],
    scorer: Scorer,
    fmt: str,
    output: Path | str | None,
    rejects: Path | str | None,
    options: BatchOptions,
    on_reject_line: Callable[[Rejection], None],
    on_progress: Callable[[int, int], None] | None = None,
    on_score: Callable[[dict[str, Any], str | None], None] | None = None,
    on_note: Callable[[str], None] = lambda _note: None,
    fast_saver: Callable[[dict[str, int], Callable[[str], str]], Any] | None = None,
    on_scored: Callable[[], None] | None = None,
) -> tuple[Stats, bool]:
    """Open inputs, plan columns, stream rows to output (safely) and rejects to a CSV.

    ``on_scored`` is called once every row is accounted for and the output is to be kept,
    before any output file is put in place (``batch --save`` commits the history there: an
    interruption before it leaves no output and nothing saved, after it the history holds
    the batch and a rerun finds every session already recorded).

    Everything that can be checked is checked before the first row is read or written:
    the outputs are writable and distinct, no output is an input, the ids --save needs
    exist. Returns the row accounting and whether output was written (``--strict``
    withholds it when any row is rejected). ``output`` None or ``-`` is stdout.
    """
    import tempfile

    from alliance_cli.io.files import STDOUT, safe_writer

    note_option_files(options)
    if fmt == "parquet":
        return _run_parquet(
            inputs, scorer, output, rejects, options, on_reject_line, on_progress, on_score,
            on_note,
        )  # fmt: skip
    from alliance_cli.io.layouts import check_not_both

    check_not_both(options.template, options.map_file)
    target = output if output is not None and str(output) != STDOUT else None
    check_outputs([("-o", target if target is not None else STDOUT), ("--rejects", rejects)],
                  inputs)  # fmt: skip
    from alliance_cli.io.files import check_unchanged, stamps

    before = stamps(inputs)
    for note in _read_twice(inputs, before):
        on_note(note)
    sources = _open(inputs, scorer, options)
    try:
        layout = read_layout(sources, scorer, options, on_note)
        for note in renamed_columns(layout, scorer):
            on_note(note)
        if options.require_ids:
            check_id_columns(layout)
        strict = options.strict
        rejected_any = False

        def body(out: IO[str], reject_out: IO[str] | None) -> Stats:
            nonlocal rejected_any
            writer = CsvWriter(reject_out) if reject_out else None
            if writer:
                writer.writerow(REJECT_COLUMNS)

            def reject(r: Rejection) -> None:
                nonlocal rejected_any
                rejected_any = True
                if writer:
                    writer.writerow(r.row())
                on_reject_line(r)

            sink: Sink = (
                CsvSink(out)
                if fmt == "csv"
                else FhirSink(out, options.fhir_bundle)
                if fmt == "fhir"
                else JsonSink(out, array=fmt == "json")
            )
            with collector_paused():  # (forked --jobs workers inherit the pause)
                stats = score_into(sink, out, reject)
            check_unchanged(before)  # raised inside the safe write: no output, nothing saved
            if stats.read == 0:  # raised inside the safe write: no output file is left
                names = ", ".join(s.name for s in sources)
                raise DataFileError(f"{names}: a header but no data rows; nothing to score")
            if on_scored is not None and not (strict and rejected_any):
                on_scored()  # inside the writers: before any output is put in place
            return stats

        def score_into(sink: Sink, out: IO[str], reject: Callable[[Rejection], None]) -> Stats:
            """Every row scored into the sink: on several processes when it can be."""
            if options.jobs > 1 and not options.fhir_bundle:  # (one Bundle: one process)
                from alliance_cli.batch import parallel

                as_read = sources[0].lines is None and sources[0].line_of is None
                if as_read and parallel.usable(inputs, fmt, options, on_score is not None):
                    # (a layout that rebuilt its rows, long format or FHIR, is read here whole:
                    # a worker reads the file's own lines)
                    # saving: only when fast-path rows can be stored without their Score
                    saver = fast_saver(layout.ids, layout.to_iso) if fast_saver else None
                    if on_score is None or saver:
                        stats = parallel.run(
                            inputs[0], scorer, fmt, layout, options, options.jobs, out,
                            reject, saver=saver, on_progress=on_progress,
                        )  # fmt: skip
                        if stats is not None:
                            return stats
            return score_stream(
                sources, scorer, layout, sink, reject,
                require_ids=options.require_ids,
                on_progress=on_progress, on_score=on_score, fast_saver=fast_saver,
            )  # fmt: skip

        def with_rejects(out: IO[str]) -> Stats:
            if rejects is None:
                return body(out, None)
            with safe_writer(rejects) as reject_out:
                return body(out, reject_out)

        if target is not None:
            try:
                with safe_writer(target) as out:
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
                with safe_writer(STDOUT) as out:
                    while chunk := spool.read(1 << 20):
                        out.write(chunk)
            return stats, True
        with safe_writer(STDOUT) as out:
            stats = with_rejects(out)
            out.flush()
            stats.output_cut = bool(getattr(out, "broken", False))
            return stats, True
    finally:
        for source in sources:
            if source.name != "stdin":
                source.handle.close()


def _run_parquet(
    inputs: Sequence[str],
    scorer: Scorer,
    output: Path | str | None,
    rejects: Path | str | None,
    options: BatchOptions,
    on_reject_line: Callable[[Rejection], None],
    on_progress: Callable[[int, int], None] | None,
    on_score: Callable[[dict[str, Any], str | None], None] | None,
    on_note: Callable[[str], None],
) -> tuple[Stats, bool]:
    """``-f parquet``: the CSV output spooled to a temporary file, then written as typed
    Parquet (safely, like every output); nothing is written if the run is withheld."""
    import sys

    from alliance_cli.io import parquet
    from alliance_cli.io.csvout import score_columns
    from alliance_cli.io.files import STDOUT, safe_writer

    parquet.pyarrow()  # says how to install it before anything is read
    target = STDOUT if output is None else output
    if str(target) == STDOUT and sys.stdout.isatty():
        raise UsageProblem("-f parquet writes binary data: give -o FILE.parquet")
    check_outputs([("-o", target), ("--rejects", rejects)], list(inputs))
    from alliance_cli.io.files import scratch as scratch_folder

    with scratch_folder("parquet") as scratch:
        spool = Path(scratch) / "scored.csv"
        stats, written = run_files(
            inputs, scorer, "csv", spool, rejects, options, on_reject_line, on_progress,
            on_score, on_note,
        )  # fmt: skip
        if written:
            with safe_writer(target) as out:
                raw = getattr(out, "buffer", None) or sys.stdout.buffer
                parquet.csv_to_parquet(spool, raw, score_columns(scorer))
                raw.flush()
    return stats, written


def note_option_files(options: BatchOptions) -> None:
    """Note every file an option names beside the inputs (``--map``, ``--questionnaire``,
    ``--sessions``, ``--dictionary``) as read: no output of the run may replace it."""
    from alliance_cli.io.files import note_read

    named = {
        "--map": options.map_file,
        "--questionnaire": options.questionnaire,
        "--sessions": options.sessions,
        "--dictionary": options.dictionary,
    }
    for option, path in named.items():
        if path:
            note_read(path, f"the {option} file")


def check_outputs(outputs: Sequence[tuple[str, Path | str | None]], inputs: Sequence[str]) -> None:
    """Before anything is read: no two outputs are one file, none is a file the run reads
    (the inputs and whatever was noted), and each can be written."""
    from alliance_cli.io.files import check_distinct, check_output

    check_distinct(outputs, inputs)
    for what, path in outputs:
        if path is not None:
            check_output(path, what)


def _read_twice(inputs: Sequence[str], known: dict[str, tuple[int, int, int, int]]) -> list[str]:
    """A note for each file given more than once (by name, link or path: one device and
    inode), whose rows would each be read, scored and counted again."""
    names: dict[tuple[int, int], list[str]] = {}
    for name in inputs:
        if name in known:
            names.setdefault(known[name][:2], []).append(name)
    notes = []
    for given in names.values():
        if len(given) < 2:
            continue
        times = "twice" if len(given) == 2 else f"{len(given)} times"
        spelled = list(dict.fromkeys(given))
        what = (
            f"{spelled[0]} is given {times}"
            if len(spelled) == 1
            else f"{', '.join(spelled[:-1])} and {spelled[-1]} are one file"
        )
        notes.append(f"note: {what}: its rows are read, scored and counted {times}")
    return notes


def _open(inputs: Sequence[str], scorer: Scorer, options: BatchOptions) -> list[Any]:
    """The inputs opened as batch reads them (FHIR with its Questionnaire and rater)."""
    return open_sources(
        inputs, options.encoding, options.delimiter, scorer.instrument,
        options.questionnaire, options.fhir_rater,
    )  # fmt: skip


class _Collected(Sink):
    """Each row's answers in item order (``alliance reliability`` reads them): cell texts
    the answer tables know, or keyed values, None where missing; how many rows each client
    gave, and (with a session number to keep) how many rows of other sessions were left out."""

    wants_keyed = True

    def __init__(self, session: int | None) -> None:
        self.rows: list[Sequence[str | float | None]] = []
        self.per_client: collections.Counter[str] = collections.Counter()
        self.session = None if session is None else str(session)
        self.other_sessions = 0

    def keyed(self, values: Sequence[str | float | None], client: str, session: str) -> None:
        """Keep one row (unless it is of another session than the one asked for)."""
        if self.session is not None and session.lstrip("0") != self.session:
            self.other_sessions += 1
            return
        self.rows.append(values)
        if client:
            self.per_client[client] += 1


@dataclasses.dataclass(frozen=True)
class Collected:
    """What ``collect_answers`` read: the rows kept, the batch's counts, the rows each client
    gave (empty when the layout names no client), rows of other sessions left out."""

    rows: list[Sequence[str | float | None]]
    stats: Stats
    per_client: collections.Counter[str]
    other_sessions: int


def collect_answers(
    inputs: Sequence[str],
    scorer: Scorer,
    options: BatchOptions,
    on_reject: Callable[[Rejection], None],
    on_note: Callable[[str], None] = lambda _note: None,
    on_progress: Callable[[int, int], None] | None = None,
    session: int | None = None,
) -> Collected:
    """Every row's answers in item order (a cell text the Scorer's answer tables know, or a
    keyed value, None where missing), read exactly as ``batch`` reads it (layouts, maps,
    recodes, FHIR, Parquet, the same rejects); only one session number's rows when given
    (a usage error when the layout has no session column)."""
    sources = _open(inputs, scorer, options)
    try:
        layout = read_layout(sources, scorer, options, on_note)
        if session is not None and "session" not in layout.ids:
            raise UsageProblem(
                f"--session {session}: {sources[0].name} has no session column "
                "(name it with --columns or --map)"
            )
        sink = _Collected(session)
        stats = score_stream(sources, scorer, layout, sink, on_reject, on_progress=on_progress)
    finally:
        for source in sources:
            if source.name != "stdin":
                source.handle.close()
    return Collected(sink.rows, stats, sink.per_client, sink.other_sessions)
