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

from alliance_cli.errors import DataFileError
from alliance_cli.scoring import ScaleResult, Scorer

RESPONDENT_COLUMNS = ("client_id", "session", "date", "rater")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def num(value: float | None) -> str:
    """A score for a CSV cell: shortest exact text of the 6-decimal rounding; blank for none."""
    if value is None:
        return ""
    value = round(value, 6)
    return str(int(value)) if value.is_integer() else repr(value)


def safe_text(cell: str) -> str:
    """Neutralise text a spreadsheet would run as a formula (leading = + - @)."""
    if cell and cell.startswith(_FORMULA_START):
        try:
            float(cell)
        except ValueError:
            return "'" + cell
    return cell


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
    return [*cols, "flags", "definition_sha256"]


def scale_cells_from_score(scorer: Scorer, scales: dict[str, Any]) -> list[str]:
    """Score cells matching ``score_columns`` from a Score's scales (flags and sha excluded)."""
    out: list[str] = []
    for plan in scorer.plans:
        s = scales[plan.id]
        out += [num(s.mean), num(s.sum), str(s.answered), num(s.pomp)]
        if scorer.norm and plan.id in scorer.norm.scales:
            out.append(num(s.z))
        if plan.id in scorer.bands:
            out.append(s.band or "")
    return out


def score_cells_out(
    scorer: Scorer, results: Sequence[ScaleResult | None], flags: Sequence[str]
) -> list[str]:
    """Score cells matching ``score_columns`` for one scored row."""
    out: list[str] = []
    norm_scales = scorer.norm.scales if scorer.norm else {}
    low, span = scorer.low, scorer.high - scorer.low
    for plan, res in zip(scorer.plans, results, strict=True):
        if res is None or res.mean is None:
            out += ["", "", str(res.answered if res else 0), ""]
        else:
            out += [
                num(res.mean),
                num(res.sum),
                str(res.answered),
                num((res.mean - low) / span * 100),
            ]
        if plan.id in norm_scales:
            z = scorer.z(plan.id, res) if res and res.mean is not None else None
            out.append(num(z))
        if plan.id in scorer.bands:
            out.append((scorer.band(plan.id, res) or "") if res and res.mean is not None else "")
    out.append(";".join(flags))
    out.append(scorer.sha256)
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
        with os.fdopen(fd, "w", encoding=encoding, newline="") as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def flag_codes(result: dict[str, Any]) -> list[str]:
    """Flag codes of a result dict as 'code:scale'."""
    return [f"{f['code']}:{f['scale']}" for f in result.get("flags", [])]


# -- answers from the command line and from JSON ---------------------------------------------
def parse_answer_args(args: Sequence[str]) -> dict[str, str] | list[str]:
    """Answers as given on the command line: values in item order, one comma list, or pairs.

    ``5 4 4 3``, ``"5,4,4,3"`` and ``1=5 2=4`` are all accepted; pairs and bare values
    cannot be mixed.
    """
    from alliance_cli.errors import UsageProblem

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


def read_json_sets(text: str, source: str = "stdin") -> list[tuple[int, Any]]:
    """Response sets from one JSON value (object or list) or NDJSON, with their line numbers.

    Each entry is (line, parsed object) or (line, error message) when a line is not JSON.
    """
    import json

    stripped = text.strip()
    if not stripped:
        return []
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        whole = None
    else:
        if isinstance(whole, list):
            return [(1, obj) for obj in whole]
        return [(1, whole)]
    sets: list[tuple[int, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sets.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            sets.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
    return sets
