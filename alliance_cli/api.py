"""The library surface for scripts and notebooks: load an instrument, score answers, rows, frames.

    from alliance_cli import api

    wai = api.load_instrument("wai-sr")
    score = api.score(wai, [4, 4, 5, 3, 5, 4, 4, 3, 5, 4, 4, 4], client_id="C-102", session=3)
    score.scales["goal"].mean                      # 3.5

    for row in api.score_rows(wai, rows):          # rows: dicts, e.g. from csv.DictReader
        ...                                        # the columns `alliance batch -f csv` writes

    scored = api.score_frame(df, "wai-sr")         # pandas or polars, imported only when passed

Rows are scored by the same engine as ``alliance batch`` (the fast path included), so the API
and the command give the same cells for the same rows. Nothing here prints or exits; errors
are the ``AllianceError`` subclasses in ``alliance_cli.core.errors``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alliance_cli.batch.engine import Rejection
    from alliance_cli.core.score import Score
    from alliance_cli.core.scorer import InvalidPolicy, Scorer
    from alliance_cli.io.catalog import LoadedInstrument

__all__ = ["frame_columns", "load_instrument", "score", "score_frame", "score_rows"]


def load_instrument(
    instrument_id: str, instruments_dirs: Sequence[str | Path] = ()
) -> LoadedInstrument:
    """The instrument with this id: bundled, or from your own directories (which win)."""
    from alliance_cli.io.catalog import load_catalog

    return load_catalog([Path(d) for d in instruments_dirs]).get(instrument_id)


def _scorer(instrument: str | LoadedInstrument, invalid: InvalidPolicy) -> Scorer:
    from alliance_cli.core.scorer import Scorer

    entry = load_instrument(instrument) if isinstance(instrument, str) else instrument
    return Scorer(entry.instrument, entry.sha256, invalid)


def score(
    instrument: str | LoadedInstrument,
    answers: Mapping[str, Any] | Sequence[Any],
    *,
    client_id: str | None = None,
    session: int | None = None,
    date: str | None = None,
    rater: str | None = None,
    invalid: InvalidPolicy = "reject",
) -> Score:
    """Score one response set: answers in item order, or ``{item id: answer}``.

    Raises ``RejectedInput`` for an unusable answer (unless ``invalid="missing"``) and
    ``DraftInstrument`` for a draft definition.
    """
    from alliance_cli.core.contract import respondent_dict, session_problem
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.core.score import Score
    from alliance_cli.core.scorer import validate_date

    if session is not None:  # one rule for a session number, as the command line's
        problem = session_problem(str(session))  # (True reads "True": not a number)
        if problem is not None:
            raise UsageProblem(f"session: {problem}")
    scorer = _scorer(instrument, invalid)
    who = respondent_dict(
        client_id, session, validate_date(date), rater or scorer.instrument.respondent
    )
    return Score.model_validate(scorer.score_dict(answers, who))


def score_rows(
    instrument: str | LoadedInstrument,
    rows: Iterable[Mapping[str, Any]],
    *,
    columns: str | Mapping[str, str] | None = None,
    invalid: InvalidPolicy = "reject",
    on_reject: Callable[[Rejection], None] | None = None,
    chunk: int = 10_000,
) -> Iterator[dict[str, str]]:
    """Score rows (mappings of column to cell), streaming, into ``batch -f csv``'s columns.

    The first row's keys are the header. ``columns`` picks the item columns: a template such
    as ``"wai_{item}"`` or ``{item id: column}``; by default they are detected as ``batch``
    does. A row that cannot be scored goes to ``on_reject`` (with its 1-based row number as
    ``line``); with no ``on_reject`` it raises ``RejectedInput``.
    """
    from alliance_cli.core.errors import RejectedInput

    scorer = _scorer(instrument, invalid)
    header: list[str] | None = None
    batch: list[list[str]] = []
    done = 0

    def reject(rejection: Rejection) -> None:
        if on_reject is None:
            raise RejectedInput([], message=f"row {rejection.line}: {rejection.reason}")
        on_reject(rejection)

    for row in rows:
        if header is None:
            header = [str(k) for k in row]
        batch.append(["" if row.get(k) is None else str(row.get(k)) for k in header])
        if len(batch) >= chunk:
            yield from _score_chunk(scorer, header, batch, columns, reject, done)
            done += len(batch)
            batch = []
    if header is not None and batch:
        yield from _score_chunk(scorer, header, batch, columns, reject, done)


def _score_chunk(
    scorer: Scorer,
    header: list[str],
    rows: list[list[str]],
    columns: str | Mapping[str, str] | None,
    reject: Callable[[Rejection], None],
    offset: int,
) -> Iterator[dict[str, str]]:
    """One chunk of rows through the batch engine (CSV text in and out, as batch reads it)."""
    import dataclasses

    from alliance_cli.batch.engine import BatchOptions, plan_layout, score_stream
    from alliance_cli.batch.sinks import CsvSink
    from alliance_cli.io.source import Source

    text = io.StringIO()
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(text, guard=False)  # read back by the engine, never a file
    writer.writerow(header)
    writer.writerows(rows)
    text.seek(0)
    text.readline()  # the header, as read_header would have
    options = BatchOptions(
        template=columns if isinstance(columns, str) else None,
        item_columns=columns if isinstance(columns, Mapping) else None,
    )
    layout = plan_layout(
        header, scorer, ",", template=options.template, item_columns=options.item_columns
    )
    out = io.StringIO()

    def renumbered(rejection: Rejection) -> None:
        # line 2 of the chunk's text is its first row: report rows 1-based over all chunks
        row = offset + rejection.line - 1
        reject(dataclasses.replace(rejection, file="rows", line=row))

    score_stream([Source("rows", text, header, ",")], scorer, layout, CsvSink(out), renumbered)
    out.seek(0)
    yield from csv.DictReader(out)


def score_frame(
    frame: Any,
    instrument: str | LoadedInstrument,
    *,
    columns: str | Mapping[str, str] | None = None,
    invalid: InvalidPolicy = "reject",
    on_reject: Callable[[Rejection], None] | None = None,
) -> Any:
    """Score a pandas or polars DataFrame; returns one of the same kind with batch's columns.

    Cells are read as text, as from a CSV export (so 4 and "4" score alike); pass-through
    columns are kept. Neither library is a dependency: each is imported only when passed.
    """
    kind = type(frame).__module__.split(".")[0]
    if kind == "pandas":
        import pandas as pd

        records = frame.astype(object).where(frame.notna(), None).to_dict("records")
        scored = list(
            score_rows(instrument, records, columns=columns, invalid=invalid, on_reject=on_reject)
        )
        # an empty frame (or every row rejected) still has batch's columns: Dask's
        # map_partitions takes score_frame(ddf._meta, ...) as its meta
        names = frame_columns(instrument, [str(c) for c in frame.columns], columns=columns)
        return pd.DataFrame(scored, columns=names, dtype=object)
    if kind == "polars":
        import polars as pl

        scored = list(
            score_rows(
                instrument,
                frame.iter_rows(named=True),
                columns=columns,
                invalid=invalid,
                on_reject=on_reject,
            )
        )
        names = frame_columns(instrument, [str(c) for c in frame.columns], columns=columns)
        return pl.DataFrame(scored, schema={n: pl.Utf8 for n in names})
    raise TypeError(f"score_frame takes a pandas or polars DataFrame, not {type(frame).__name__}")


def frame_columns(
    instrument: str | LoadedInstrument,
    header: Sequence[str],
    *,
    columns: str | Mapping[str, str] | None = None,
) -> list[str]:
    """The columns ``score_rows`` and ``score_frame`` return for input with this header:
    the pass-through columns, then ``batch -f csv``'s score columns."""
    from alliance_cli.batch.engine import plan_layout
    from alliance_cli.io.csvout import score_columns

    scorer = _scorer(instrument, "reject")
    layout = plan_layout(
        list(header),
        scorer,
        ",",
        template=columns if isinstance(columns, str) else None,
        item_columns=columns if isinstance(columns, Mapping) else None,
    )
    return [layout.header[i] for i in layout.keep] + score_columns(scorer)
