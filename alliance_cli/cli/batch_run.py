"""The people's side of ``alliance batch``: progress bar, rejection lines, the summary."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Any

from alliance_cli.batch import engine as batch
from alliance_cli.batch import run as runner
from alliance_cli.cli.common import say
from alliance_cli.core.scorer import Scorer
from alliance_cli.core.words import counted

SHOWN_REJECTIONS = 20
PROGRESS_AFTER = 0.5  # seconds before the progress bar appears


@dataclass(frozen=True)
class BatchRequest:
    """Everything ``alliance batch`` was asked to do, in one object."""

    files: list[str]
    scorer: Scorer
    fmt: str
    output: str | None  # - or None: stdout
    rejects: str | None
    options: batch.BatchOptions
    quiet: bool = False
    save: bool = False
    replace: bool = False
    db: str | None = None


def run_with_progress(request: BatchRequest) -> tuple[batch.Stats, bool]:
    """Run a batch with progress on a terminal, rejections reported, and a final summary."""
    files, scorer, fmt = request.files, request.scorer, request.fmt
    output, rejects, options, quiet = (
        request.output,
        request.rejects,
        request.options,
        request.quiet,
    )
    save, replace, db = request.save, request.replace, request.db
    shown: list[batch.Rejection] = []
    count = 0

    def on_reject(r: batch.Rejection) -> None:
        nonlocal count
        count += 1
        if rejects is None and len(shown) < SHOWN_REJECTIONS:
            shown.append(r)

    progress = None
    on_progress = None
    if not quiet and sys.stderr.isatty():
        progress, on_progress = _progress_bar(files)
    store: Any = None
    recorder: Any = None
    since = 0
    future: tuple[int, Any] = (0, None)  # saved sessions dated after today, the latest
    day = ""  # today, when saving
    open_concerns: list[Any] = []

    def open_recorder() -> Any:
        # The history is opened at the first scored row: a usage error found while reading
        # the header (no id column, unclear item columns) never creates or locks a store.
        nonlocal store, recorder, since
        if recorder is None:
            from alliance_cli.store import backend as history

            store = history.open_store(db, on_wait=say)
            since = store.max_rowid()
            store.define(scorer.instrument.to_data(), scorer.sha256)
            recorder = store.batch_recorder(replace)
            if progress is not None:
                recorder.on_stored = _storing_bar(progress)
        return recorder

    def on_score(data: dict[str, Any], counselor: str | None = None) -> None:
        open_recorder().add(data, counselor)

    def commit() -> None:  # before the output is put in place (see run_files)
        if recorder is not None:
            recorder.finish(keep=True)

    def fast_saver(ids: dict[str, int], to_iso: Any) -> Any:
        return open_recorder().fast_rows(scorer, ids, to_iso)

    if save:
        from alliance_cli.cli.history import today
        from alliance_cli.store.backend import note_history

        day = today()  # (ALLIANCE_TODAY checked before anything is saved)
        note_history(db)  # no output of this run may be the history it saves to
    args = (files, scorer, fmt, output, rejects, options, on_reject, on_progress)
    note = (lambda _text: None) if quiet else say
    try:
        try:
            stats, written = runner.run_files(
                *args, on_score=on_score if save else None, on_note=note,
                fast_saver=fast_saver if save else None, on_scored=commit if save else None,
            )  # fmt: skip
        finally:
            if progress is not None and progress.live.is_started:
                progress.stop()
        if recorder is not None and not recorder.finished:
            recorder.finish(keep=written)
        if recorder is not None and 0 < recorder.saved <= READ_AFTER_SAVE and store is not None:
            open_concerns = _read_after_save(store, since, quiet)
            # (a larger batch is not scanned again for dates: 0.1-0.2 s a million rows, on a
            # save that must keep its pace; the caseload notes each client's latest anyway)
            future = _dated_after_today(store, since, day)
        elif recorder is not None and recorder.saved > READ_AFTER_SAVE and store is not None:
            store.leave_said_pending(since)
            if not quiet:
                say(
                    f"history: over {READ_AFTER_SAVE:,} sessions: the reading of this batch's "
                    "clients is made by the next 'alliance clients' (or history, or report), "
                    "which keeps what it says at each of these sessions then, as said when "
                    "saved"
                )
    finally:
        if recorder is not None and not recorder.finished:
            say(
                "history: nothing from this batch was saved (a batch is saved whole or not "
                "at all); run it again"
            )
        if store is not None:
            store.close()
    for r in shown:
        say(f"rejected: {r}")
    if count > len(shown) and rejects is None:
        sys.stderr.write(
            f"rejected: … and {count - len(shown):,} more (use --rejects FILE to keep them all)\n"
        )
    if save and not quiet:
        from alliance_cli.store import backend

        where = backend.shown(store.path if store is not None else backend.location(db))
        saved = recorder.saved if recorder is not None else 0
        say(f"history: {counted(saved, 'session')} saved to {where}")
        if open_concerns:
            say(_concern_summary(open_concerns))
    if future[0]:
        client_id, session, dated = future[1]
        say(
            f"note: {future[0]:,} saved session{'s are' if future[0] > 1 else ' is'} dated "
            f"after today (the latest: client {client_id} session {session}, "
            f"{dated}); check the dates: the caseload notes a client's latest one until corrected"
        )
    if recorder is not None and recorder.same and not quiet:
        same = recorder.same
        say(
            f"history: {counted(same, 'session')} {'was' if same == 1 else 'were'} already "
            "recorded with the same answers (nothing to do)"
        )
    if recorder is not None and recorder.conflicts:
        for conflict in recorder.conflicts[:SHOWN_REJECTIONS]:
            say(f"conflict: {conflict}")
        more = len(recorder.conflicts) - SHOWN_REJECTIONS
        if more > 0:
            say(f"conflict: … and {more:,} more")
        n = len(recorder.conflicts)
        say(
            f"history: {counted(n, 'session')} {'is' if n == 1 else 'are'} recorded with other "
            f"answers and {'was' if n == 1 else 'were'} not saved (--replace overwrites "
            f"{'it' if n == 1 else 'them'} with this file's)"
        )
        stats.not_saved = len(recorder.conflicts)
    if stats.output_cut:
        say(
            "batch: the reader of stdout stopped early, so the output is incomplete; every "
            "row was still scored" + (" and saved" if save else "")
        )
    if not quiet:
        where = f" (reasons in {rejects})" if rejects is not None and stats.rejected else ""
        withheld = "; --strict: no output written" if not written else ""
        sys.stderr.write(
            f"batch: {counted(stats.read, 'row')} read, {stats.scored:,} scored, "
            f"{stats.rejected:,} rejected{where}{stats.left_out()} in {stats.seconds:.2f} s"
            f"{withheld}\n"
        )
    return stats, written


def _progress_bar(files: list[str]) -> tuple[Any, Any]:
    """A rich progress bar on stderr: rows, rows/s, and for files a bar with an ETA."""
    import time

    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from alliance_cli.render import terminal as render

    try:
        total = None if "-" in files else sum(os.path.getsize(f) for f in files) or None
    except OSError:  # a missing file is reported by the batch itself, as a file error
        total = None
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=render.console(stderr=True),
        transient=True,
    )
    task = progress.add_task("scoring", total=total, rows=0, rate="")
    start = time.perf_counter()
    after = float(os.environ.get("ALLIANCE_PROGRESS_AFTER") or PROGRESS_AFTER)

    def on_progress(rows: int, done: int) -> None:
        elapsed = time.perf_counter() - start
        if not progress.live.is_started:
            if elapsed < after:
                return  # a short batch never flickers a bar
            progress.start()
        rate = rows / max(elapsed, 1e-9)
        progress.update(task, completed=done, rows=rows, rate=f"{rate:,.0f} rows/s")

    return progress, on_progress


def _storing_bar(progress: Any) -> Any:
    """A second bar under the scoring one, for --save: the sessions stored so far."""
    import time

    task = progress.add_task("storing", total=None, rows=0, rate="")
    start = time.perf_counter()

    def on_stored(saved: int) -> None:
        rate = saved / max(time.perf_counter() - start, 1e-9)
        progress.update(task, rows=saved, rate=f"{rate:,.0f} rows/s")

    return on_stored


def _dated_after_today(store: Any, since: int, today: str) -> tuple[int, Any]:
    """The sessions this batch saved dated more than a day after ``today`` (typos, most
    likely): how many, and the latest-dated (client_id, session, date)."""
    from alliance_cli.core.reading import future_limit

    return store.dated_after(since, future_limit(today))  # type: ignore[no-any-return]


READ_AFTER_SAVE = 50_000  # sessions: a larger batch leaves its reading to the next `clients`


def _read_after_save(store: Any, since: int, quiet: bool) -> list[Any]:
    """The reading of every client the batch saved for: kept, and their open concerns."""
    from alliance_cli.cli.common import run_catalog
    from alliance_cli.core.reading import Settings
    from alliance_cli.store import views

    return views.after_batch(store, run_catalog(quiet=quiet), Settings(), since)


def _concern_summary(concerns: list[Any]) -> str:
    """``history: 3 open concerns for 2 clients of this batch (1 act, 2 watch) ...``."""
    counts = {s: sum(c.severity == s for c in concerns) for s in ("act", "watch", "note")}
    parts = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return (
        f"history: {counted(len(concerns), 'open concern')} for the "
        f"clients of this batch ({parts}); "
        "'alliance clients --open' lists them, most severe first"
    )
