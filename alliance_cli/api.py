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
from typing import TYPE_CHECKING, Any, NamedTuple

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
    sessions: str | Path | None = None,
    dictionary: str | Path | None = None,
) -> Iterator[dict[str, str]]:
    """Score rows (mappings of column to cell), streaming, into ``batch -f csv``'s columns.

    The first row's keys are the header. The rows are read as ``batch`` reads a file: the
    same layouts (REDCap, Qualtrics, long), guards (columns named for another instrument)
    and cell rules; a number is read as its text in a CSV export (``4.0`` as ``4``, ``-99.0``
    as ``-99``, NaN as blank). ``columns`` picks the item columns: a template such as
    ``"wai_{item}"`` or ``{item id: column}``; by default they are detected as ``batch``
    does. A row that cannot be scored goes to ``on_reject`` (with its 1-based row number as
    ``line``); with no ``on_reject`` it raises ``RejectedInput``. ``sessions`` and
    ``dictionary`` are ``batch``'s ``--sessions`` and ``--dictionary`` (REDCap).
    """
    from alliance_cli.core.errors import RejectedInput
    from alliance_cli.io import layouts

    how = _How(columns, _path(sessions), _path(dictionary))

    scorer = _scorer(instrument, invalid)
    header: list[str] | None = None
    batch: list[list[str]] = []
    done = 0
    layout: Any = None

    def reject(rejection: Rejection) -> None:
        if on_reject is None:
            raise RejectedInput([], message=f"row {rejection.line}: {rejection.reason}")
        on_reject(rejection)

    for row in rows:
        if header is None:
            header = [str(k) for k in row]
            if layouts.looks_long(header):
                chunk = 1 << 62  # a long file's answers may be anywhere: read them all first
        batch.append([_cell(row.get(k)) for k in header])
        if len(batch) >= chunk:
            layout, out = _score_chunk(scorer, header, batch, how, reject, done, layout)
            yield from out
            done += len(batch)
            batch = []
    if header is not None and batch:
        layout, out = _score_chunk(scorer, header, batch, how, reject, done, layout)
        yield from out


def _cell(value: Any) -> str:
    """A cell as a CSV export writes it: whole floats without ``.0``, NaN and None blank."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: pandas' and numpy's missing
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _score_chunk(
    scorer: Scorer,
    header: list[str],
    rows: list[list[str]],
    how: _How,
    reject: Callable[[Rejection], None],
    offset: int,
    layout: Any,
) -> tuple[Any, list[dict[str, str]]]:
    """One chunk of rows through the batch engine (CSV text in and out, as batch reads it);
    the layout is recognised from the first chunk and kept for the rest."""
    import dataclasses

    from alliance_cli.batch.engine import score_stream
    from alliance_cli.batch.sinks import CsvSink
    from alliance_cli.io.csvout import CsvWriter
    from alliance_cli.io.source import Source

    text = io.StringIO()
    writer = CsvWriter(text, guard=False)  # read back by the engine, never a file
    writer.writerow(header)
    writer.writerows(rows)
    text.seek(0)
    text.readline()  # the header, as read_header would have
    source = Source("rows", text, header, ",")
    if layout is None:
        layout = _layout(scorer, source, how)
    out = io.StringIO()

    def renumbered(rejection: Rejection) -> None:
        # line 2 of the chunk's text is its first row: report rows 1-based over all chunks
        row = offset + rejection.line - 1
        reject(dataclasses.replace(rejection, file="rows", line=row))

    score_stream([source], scorer, layout, CsvSink(out), renumbered)
    out.seek(0)
    return layout, list(csv.DictReader(out))


ROW = "__alliance_row__"  # score_frame's own column: which input row a scored row came from
FLOAT_ENDINGS = ("_mean", "_sum", "_pomp", "_z")  # score columns that are numbers


def score_frame(
    frame: Any,
    instrument: str | LoadedInstrument,
    *,
    columns: str | Mapping[str, str] | None = None,
    invalid: InvalidPolicy = "reject",
    on_reject: Callable[[Rejection], None] | None = None,
    sessions: str | Path | None = None,
    dictionary: str | Path | None = None,
) -> Any:
    """Score a pandas or polars DataFrame; returns one of the same kind with batch's columns.

    Cells are read as from a CSV export (so 4, 4.0 and "4" score alike, and -99.0 is the
    missing code -99). The result is typed: pass-through columns keep the frame's own values
    and types; means, sums, POMP and z are floats (float64), answered counts integers
    (pandas' Int64), the rest text (pandas' string), as ``batch -f parquet`` types them.
    Neither library is a dependency: each is imported only when passed.
    """
    kind = type(frame).__module__.split(".")[0]
    if kind not in ("pandas", "polars"):
        raise TypeError(
            f"score_frame takes a pandas or polars DataFrame, not {type(frame).__name__}"
        )
    names = [str(c) for c in frame.columns]
    if kind == "pandas":
        records: Iterable[Mapping[str, Any]] = (
            {**dict(zip(names, values, strict=True)), ROW: n}
            for n, values in enumerate(frame.itertuples(index=False, name=None))
        )
    else:
        records = ({**r, ROW: n} for n, r in enumerate(frame.iter_rows(named=True)))
    rows = score_rows(instrument, records, columns=columns, invalid=invalid,
                      on_reject=on_reject, sessions=sessions, dictionary=dictionary)  # fmt: skip
    scored = list(rows)
    # an empty frame (or every row rejected) still has batch's columns: Dask's
    # map_partitions takes score_frame(ddf._meta, ...) as its meta
    header = frame_columns(
        instrument, [*names, ROW], columns=columns, sessions=sessions, dictionary=dictionary
    )
    out_names = [n for n in header if n != ROW]
    at = [int(r[ROW]) for r in scored]
    from alliance_cli.io.csvout import score_columns

    scores = set(score_columns(_scorer(instrument, "reject")))
    if kind == "pandas":
        import pandas as pd

        data: dict[str, Any] = {}
        for name in out_names:
            if name in scores:
                data[name] = _pandas_typed(pd, name, [r[name] for r in scored])
            elif name in names:  # a pass-through column: the frame's own values and type
                data[name] = frame[name].iloc[at].reset_index(drop=True)
            else:
                data[name] = pd.Series([r.get(name, "") for r in scored], dtype="string")
        return pd.DataFrame(data, columns=out_names)
    import polars as pl

    series = []
    for name in out_names:
        if name in scores:
            cells = [r[name] for r in scored]
            if name.endswith(FLOAT_ENDINGS):
                series.append(pl.Series(name, [float(c) if c else None for c in cells], pl.Float64))
            elif name.endswith("_answered"):
                series.append(pl.Series(name, [int(c) for c in cells], pl.Int64))
            else:
                series.append(pl.Series(name, cells, pl.Utf8))
        elif name in names:
            series.append(frame[name].gather(at) if at else frame[name].clear())
        else:
            series.append(pl.Series(name, [r.get(name, "") for r in scored], pl.Utf8))
    return pl.DataFrame(series)


def _pandas_typed(pd: Any, name: str, cells: list[str]) -> Any:
    """A score column as pandas: float64 for numbers (NaN where blank), Int64 for counts,
    pandas' string type for text."""
    if name.endswith(FLOAT_ENDINGS):
        return pd.Series([float(c) if c else float("nan") for c in cells], dtype="float64")
    if name.endswith("_answered"):
        return pd.Series([int(c) for c in cells], dtype="Int64")
    return pd.Series(cells, dtype="string")  # (object would leave Dask's meta untyped)


def frame_columns(
    instrument: str | LoadedInstrument,
    header: Sequence[str],
    *,
    columns: str | Mapping[str, str] | None = None,
    sessions: str | Path | None = None,
    dictionary: str | Path | None = None,
) -> list[str]:
    """The columns ``score_rows`` and ``score_frame`` return for input with this header:
    the pass-through columns (and any a layout adds, such as REDCap's session), then
    ``batch -f csv``'s score columns."""
    from alliance_cli.batch.engine import output_header
    from alliance_cli.io.source import Source

    scorer = _scorer(instrument, "reject")
    empty = Source("rows", io.StringIO(""), list(header), ",")
    how = _How(columns, _path(sessions), _path(dictionary))
    return output_header(_layout(scorer, empty, how), scorer)


class _How(NamedTuple):
    """How rows are read: the item columns, and REDCap's sessions and dictionary files."""

    columns: str | Mapping[str, str] | None
    sessions: Path | None
    dictionary: Path | None


def _path(value: str | Path | None) -> Path | None:
    return None if value is None else Path(value)


def _layout(scorer: Scorer, source: Any, how: _How) -> Any:
    """The layout ``batch`` would recognise for this source (read from its first rows)."""
    from alliance_cli.batch.engine import BatchOptions, read_layout
    from alliance_cli.io.catalog import load_catalog

    bundled = load_catalog()
    columns = how.columns
    options = BatchOptions(
        template=columns if isinstance(columns, str) else None,
        item_columns=columns if isinstance(columns, Mapping) else None,
        known_ids=tuple(bundled.sources),
        item_count=bundled.item_count,
        sessions=how.sessions,
        dictionary=how.dictionary,
    )
    return read_layout([source], scorer, options)
