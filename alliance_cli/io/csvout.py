"""CSV out: the score-column layout, cell formatting, formula neutralising, history rows.

No rich, no typer: the CLI calls these, and so do the benchmarks.
"""

from __future__ import annotations

import functools
import io as _io
from collections.abc import Iterable, Sequence
from typing import IO, Any

from alliance_cli.core.scorer import DIGITS, ScaleResult, Scorer

_JOIN: CsvWriter | None = None  # csv_join's writer, made once
RESPONDENT_COLUMNS = ("client_id", "session", "date", "rater")
# A spreadsheet runs a cell starting with one of these as a formula (the one rule for it).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def num(value: float | None) -> str:
    """A score for a CSV cell: shortest exact text of the 6-decimal rounding; blank for none."""
    if value is None:
        return ""
    value = round(float(value), DIGITS)
    return str(int(value)) if value.is_integer() else repr(value)


def safe_text(cell: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (leading = + - @, tab, CR)."""
    if cell and cell.startswith(FORMULA_START):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def safe_cells(row: Sequence[str], columns: Sequence[int]) -> list[str]:
    """The chosen cells of a row, each neutralised against formulas."""
    return [safe_text(row[i]) for i in columns]


class CsvWriter:
    """The one CSV writer of every file alliance writes (``csv.writer`` is used nowhere else).

    Lines end in ``\n``. A cell holding ``\r`` or ``\n`` is quoted (``csv.writer`` with a
    ``\n`` line end leaves a bare ``\r`` unquoted, and every reader then splits the row
    there). With ``guard`` (every output), a text cell a spreadsheet would run as a formula
    is neutralised (``safe_text``), in headers and data alike; ``guard=False`` is for the
    CSV text alliance writes only to read back itself (a rebuilt long-format or FHIR file).
    """

    def __init__(self, handle: IO[str], guard: bool = True) -> None:
        import csv
        import io

        self.handle = handle
        self.guard = guard
        self._plain = csv.writer(handle, lineterminator="\n")
        self._buffer = io.StringIO()
        self._careful = csv.writer(self._buffer, lineterminator="\r\n")  # quotes \r and \n

    def _cells(self, cells: Iterable[Any]) -> list[Any]:
        if not self.guard:
            return list(cells)
        return [safe_text(c) if isinstance(c, str) else c for c in cells]

    def line(self, cells: Iterable[Any]) -> str:
        """Cells as one CSV line, without its end."""
        self._buffer.seek(0)
        self._buffer.truncate()
        self._careful.writerow(self._cells(cells))
        return self._buffer.getvalue()[:-2]

    def writerow(self, cells: Iterable[Any]) -> None:
        """Write one row."""
        row = self._cells(cells)
        if any(isinstance(c, str) and "\r" in c for c in row):
            self.handle.write(self.line(row) + "\n")
        else:
            self._plain.writerow(row)

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write rows."""
        for row in rows:
            self.writerow(row)


def csv_join(cells: Sequence[str]) -> str:
    """Cells joined as one CSV line (without its end), quoted as ``CsvWriter`` does (score
    cells: numbers and codes, never guarded)."""
    global _JOIN
    if _JOIN is None:
        _JOIN = CsvWriter(_io.StringIO(), guard=False)
    return _JOIN.line(cells)


# -- the score-column layout: the one place that names and formats score cells ----------------
@functools.lru_cache(maxsize=32)
def scale_layout(scorer: Scorer) -> tuple[tuple[str, bool, bool], ...]:
    """Per scale, in output order: (scale id, has a z column, has a band column)."""
    normed = set(scorer.norm.scales) if scorer.norm else set()
    return tuple((p.id, p.id in normed, p.id in scorer.bands) for p in scorer.plans)


def score_columns(scorer: Scorer) -> list[str]:
    """Score columns, in order, for this instrument."""
    cols: list[str] = []
    for sid, has_z, has_band in scale_layout(scorer):
        cols += [f"{sid}_mean", f"{sid}_sum", f"{sid}_answered", f"{sid}_pomp"]
        cols += [f"{sid}_z"] * has_z + [f"{sid}_band"] * has_band
    return [*cols, "flags", "verification", "definition_sha256"]


def _scale_cells(
    has_z: bool,
    has_band: bool,
    values: tuple[float | None, float | None, int, float | None, float | None, str | None],
) -> list[str]:
    """The cells of one scale from (mean, sum, answered, pomp, z, band)."""
    mean, total, answered, pomp, z, band = values
    out = [num(mean), num(total), str(answered), num(pomp)]
    if has_z:
        out.append(num(z))
    if has_band:
        out.append(safe_text(band or ""))
    return out


def scale_cells(scorer: Scorer, scale_id: str, res: ScaleResult | None) -> list[str]:
    """Cells for one scale result: mean, sum, answered, POMP, and z / band where defined."""
    _, has_z, has_band = next(s for s in scale_layout(scorer) if s[0] == scale_id)
    if res is None or res.mean is None:
        return _scale_cells(
            has_z, has_band, (None, None, res.answered if res else 0, None, None, None)
        )
    values = (
        res.mean,
        res.sum,
        res.answered,
        scorer.pomp(res.mean),
        scorer.z(scale_id, res) if has_z else None,
        scorer.band(scale_id, res) if has_band else None,
    )
    return _scale_cells(has_z, has_band, values)


def scale_cells_from_score(scorer: Scorer, scales: dict[str, Any]) -> list[str]:
    """Score cells matching ``score_columns`` from a Score's scales (flags and sha excluded)."""
    out: list[str] = []
    for sid, has_z, has_band in scale_layout(scorer):
        s = scales[sid]
        values = (s["mean"], s["sum"], s["answered"], s["pomp"], s["z"], s["band"])
        out += _scale_cells(has_z, has_band, values)
    return out


def definition_cells(scorer: Scorer) -> list[str]:
    """The last two cells of every score row: the key's verification level and the hash."""
    return [scorer.instrument.verification.status, scorer.sha256]


def score_json_cells(scorer: Scorer, score: dict[str, Any]) -> list[str]:
    """Score cells, flags and definition cells of a Score's JSON, matching ``score_columns``."""
    flags = ";".join(f"{f['code']}:{f['scale']}" for f in score["flags"])
    return [*scale_cells_from_score(scorer, score["scales"]), flags, *definition_cells(scorer)]


def score_cells_out(
    scorer: Scorer, results: Sequence[ScaleResult | None], flags: Sequence[str]
) -> list[str]:
    """Score cells matching ``score_columns`` for one scored row."""
    out: list[str] = []
    for plan, res in zip(scorer.plans, results, strict=True):
        out += scale_cells(scorer, plan.id, res)
    return [*out, ";".join(flags), *definition_cells(scorer)]


def with_concern_flags(
    score: dict[str, Any], concerns: Sequence[dict[str, Any]] | None
) -> dict[str, Any]:
    """A Score's JSON with the concerns said at its session added to its flags, as a CSV
    cell names them: ``drop:bond`` while open, ``drop_over:bond`` when this session ended it."""
    said = [
        {"code": c["kind"] + ("" if c["resolved"] is None else "_over"), "scale": sid}
        for c in concerns or []
        for sid in c["scales"]
    ]
    return dict(score, flags=score["flags"] + said) if said else score


def write_rows_csv(
    handle: IO[str], rows: Sequence[dict[str, Any]], header: Sequence[str] = ()
) -> None:
    """Flat dicts as CSV: lists joined with ';' (concerns by their sentences), text
    neutralised against formulas; ``header`` is written when there is no row."""
    writer = CsvWriter(handle)
    writer.writerow(list(rows[0]) if rows else list(header))
    for row in rows:
        writer.writerow([_cell(v) for v in row.values()])


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return safe_text(";".join(v["sentence"] if isinstance(v, dict) else str(v) for v in value))
    return safe_text(value) if isinstance(value, str) else value
