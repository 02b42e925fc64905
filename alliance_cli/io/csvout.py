"""Rows in and out: CSV columns for scores, cell formatting, atomic writes.

No rich, no typer: the CLI calls these, and so do the benchmarks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import IO, Any

from alliance_cli.core.scorer import ScaleResult, Scorer

RESPONDENT_COLUMNS = ("client_id", "session", "date", "rater")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def num(value: float | None) -> str:
    """A score for a CSV cell: shortest exact text of the 6-decimal rounding; blank for none."""
    if value is None:
        return ""
    value = round(float(value), 6)
    return str(int(value)) if value.is_integer() else repr(value)


def safe_text(cell: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (leading = + - @)."""
    if cell and cell.startswith(_FORMULA_START):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


def csv_join(cells: Sequence[str]) -> str:
    """Cells joined as one CSV line (without its end), quoted exactly as csv.writer does."""
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()[:-1]


def score_columns(scorer: Scorer) -> list[str]:
    """Score columns, in order, for this instrument."""
    cols: list[str] = []
    norm_scales = set(scorer.norm.scales) if scorer.norm else set()
    for plan in scorer.plans:
        sid = plan.id
        cols += [f"{sid}_mean", f"{sid}_sum", f"{sid}_answered", f"{sid}_pomp"]
        if sid in norm_scales:
            cols.append(f"{sid}_z")
        if sid in scorer.bands:
            cols.append(f"{sid}_band")
    return [*cols, "flags", "verification", "definition_sha256"]


def scale_cells_from_score(scorer: Scorer, scales: dict[str, Any]) -> list[str]:
    """Score cells matching ``score_columns`` from a Score's scales (flags and sha excluded)."""
    out: list[str] = []
    for plan in scorer.plans:
        s = scales[plan.id]
        out += [num(s["mean"]), num(s["sum"]), str(s["answered"]), num(s["pomp"])]
        if scorer.norm and plan.id in scorer.norm.scales:
            out.append(num(s["z"]))
        if plan.id in scorer.bands:
            out.append(safe_text(s["band"] or ""))
    return out


def scale_cells(scorer: Scorer, plan_id: str, res: ScaleResult | None) -> list[str]:
    """Cells for one scale: mean, sum, answered, POMP, and z / band where defined."""
    if res is None or res.mean is None:
        out = ["", "", str(res.answered if res else 0), ""]
    else:
        out = [num(res.mean), num(res.sum), str(res.answered), num(scorer.pomp(res.mean))]
    if scorer.norm is not None and plan_id in scorer.norm.scales:
        out.append(num(scorer.z(plan_id, res)) if res and res.mean is not None else "")
    if plan_id in scorer.bands:
        band = scorer.band(plan_id, res) if res and res.mean is not None else None
        out.append(safe_text(band or ""))
    return out


def score_json_cells(scorer: Scorer, score: dict[str, Any]) -> list[str]:
    """Score cells, flags and definition hash of a Score's JSON, matching ``score_columns``."""
    flags = ";".join(f"{f['code']}:{f['scale']}" for f in score["flags"])
    return [*scale_cells_from_score(scorer, score["scales"]), flags, *definition_cells(scorer)]


def definition_cells(scorer: Scorer) -> list[str]:
    """The last two cells of every score row: the key's verification level and the hash."""
    return [scorer.instrument.verification.status, scorer.sha256]


def score_cells_out(
    scorer: Scorer, results: Sequence[ScaleResult | None], flags: Sequence[str]
) -> list[str]:
    """Score cells matching ``score_columns`` for one scored row."""
    out: list[str] = []
    for plan, res in zip(scorer.plans, results, strict=True):
        out += scale_cells(scorer, plan.id, res)
    out.append(";".join(flags))
    out += definition_cells(scorer)
    return out


def write_history_csv(handle: IO[str], views: Sequence[dict[str, Any]]) -> None:
    """A client's history as CSV: one row per session and scale, with that session's flags."""
    import csv

    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(
        ["client_id", "instrument", "rater", "session", "date", "scale", "mean", "sum", "pomp",
         "flags", "verification", "definition_sha256"]
    )  # fmt: skip
    for view in views:
        for sess in view["sessions"]:
            codes = [
                f"{f['code']}:{f['scale']}"
                for f in view["flags"]
                if f["session"] == sess["session"]
            ]
            for sid, s in sess["scales"].items():
                writer.writerow(
                    [safe_text(view["client_id"]), view["instrument"], view["rater"],
                     sess["session"], sess["date"] or "", sid, num(s["mean"]), num(s["sum"]),
                     num(s["pomp"]), ";".join(c for c in codes if c.endswith(":" + sid)),
                     sess["verification"] or "", sess["definition_sha256"]]
                )  # fmt: skip


def write_rows_csv(handle: IO[str], rows: Sequence[dict[str, Any]]) -> None:
    """Flat dicts as CSV: lists joined with ';', text neutralised against formulas."""
    import csv

    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(list(rows[0]) if rows else [])
    for row in rows:
        writer.writerow(
            [
                ";".join(v) if isinstance(v, list) else safe_text(v) if isinstance(v, str) else v
                for v in row.values()
            ]
        )
