"""Rows in and out: CSV columns for scores, cell formatting, atomic writes.

No rich, no typer: the CLI calls these, and so do the benchmarks.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from alliance_cli.core.errors import DataFileError, UsageProblem
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


@contextlib.contextmanager
def atomic_writer(target: Path, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Write to a temporary file beside target and rename it into place on success.

    An interrupted or failed run leaves the previous file (or nothing) at target.
    """
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise DataFileError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="", buffering=1 << 20) as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


# -- answers from the command line and from JSON ---------------------------------------------
def parse_answer_args(args: Sequence[str]) -> dict[str, str] | list[str]:
    """Answers as given on the command line: values in item order, one comma list, or pairs.

    ``5 4 4 3``, ``"5,4,4,3"`` and ``1=5 2=4`` are all accepted; pairs and bare values
    cannot be mixed.
    """
    pairs = [a for a in args if "=" in a]
    if pairs and len(pairs) != len(args):
        raise UsageProblem("give answers either all as ITEM=VALUE pairs or all as plain values")
    if pairs:
        out: dict[str, str] = {}
        for arg in pairs:
            item, _, value = arg.partition("=")
            item = item.strip()
            if item in out:
                raise UsageProblem(f"item {item} is given twice")
            out[item] = value
        return out
    if len(args) == 1 and "," in args[0]:
        return [v.strip() for v in args[0].split(",")]
    return list(args)


def read_json_sets(text: str) -> list[tuple[str, Any, str | None]]:
    """Response sets from one JSON value (object or list) or NDJSON.

    Each entry is (where, parsed value, error): ``where`` is ``stdin:LINE`` for NDJSON and
    ``stdin[INDEX]`` for the items of a list; error is set (value None) for a line not JSON.
    """
    import json

    stripped = text.strip()
    if not stripped:
        return []
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(whole, list):
            return [(f"stdin[{i}]", obj, None) for i, obj in enumerate(whole)]
        return [("stdin:1", whole, None)]
    sets: list[tuple[str, Any, str | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sets.append((f"stdin:{number}", json.loads(line), None))
        except json.JSONDecodeError as exc:
            error = f"not valid JSON ({exc.msg} at column {exc.colno})"
            sets.append((f"stdin:{number}", None, error))
    return sets


# -- reading CSV exports -------------------------------------------------------------------
ID_VARIANTS: dict[str, tuple[str, ...]] = {
    "client_id": (
        "client_id", "clientid", "client", "client_no", "client_number", "participant_id",
        "participant", "patient_id", "patient", "record_id", "subject_id", "subject", "pid",
    ),
    "session": ("session", "session_number", "session_no", "sessionid", "session_id", "visit",
                "visit_number", "sess", "week"),
    "date": ("date", "session_date", "completed", "completed_date", "date_completed",
             "visit_date", "survey_date"),
    "rater": ("rater", "respondent", "informant", "form", "rater_type"),
}  # fmt: skip


def _norm(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name.strip().lower()).strip("_")


def open_input(name: str, encoding: str) -> IO[str]:
    """Open an input file (or '-' for stdin) as text, newline handling left to csv."""
    import io
    import sys

    enc = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
    if name == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding=enc, newline="")
    try:
        return open(name, encoding=enc, newline="")
    except LookupError:
        raise DataFileError(f"unknown encoding {encoding!r}") from None
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None


def sniff_delimiter(header_line: str) -> str:
    """Comma, semicolon or tab: whichever the header line uses most (comma on a tie)."""
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def parse_delimiter(text: str | None) -> str | None:
    """``--delimiter``: one character, or 'tab' / '\\t'; None means sniff the header."""
    if text is None:
        return None
    delimiter = {"tab": "\t", "\\t": "\t"}.get(text.lower(), text)
    if len(delimiter) != 1 or delimiter in '\r\n"':
        raise UsageProblem(f"--delimiter {text!r} must be one character (or 'tab')")
    return delimiter


def find_id_columns(header: Sequence[str], named: dict[str, str | None]) -> dict[str, int]:
    """Positions of client id, session, date and rater columns (named ones must exist)."""
    normalised = [_norm(h) for h in header]
    found: dict[str, int] = {}
    for role, variants in ID_VARIANTS.items():
        wanted = named.get(role)
        if wanted:
            if wanted not in header:
                raise UsageProblem(
                    f"no column {wanted!r} for {role} (columns: {', '.join(header)})"
                )
            found[role] = list(header).index(wanted)
            continue
        for variant in variants:
            if variant in normalised:
                found[role] = normalised.index(variant)
                break
    return found


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
