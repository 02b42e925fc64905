"""alliance reliability: how reliable each scale is in a clinic's own data (alpha, Feldt's
interval, the mean inter-item correlation, item statistics), read as batch reads a file."""

from pathlib import Path
from typing import Annotated, Any

import typer

from alliance_cli.cli.common import (
    FormatOpt,
    QuietOpt,
    complete_instruments,
    funnel,
    output,
    pick_format,
    run_catalog,
    say,
)
from alliance_cli.core.errors import DataFileError


@funnel
def reliability_command(
    files: Annotated[
        list[str], typer.Argument(help="Exports to read (as batch reads them).", metavar="FILE...")
    ],
    instrument: Annotated[
        str,
        typer.Option(
            "--instrument", "-i", help="Instrument id.", autocompletion=complete_instruments
        ),
    ],
    columns: Annotated[
        str | None, typer.Option("--columns", help="Item column template, e.g. 'wai_{item}'.")
    ] = None,
    map_file: Annotated[
        Path | None, typer.Option("--map", help="YAML file mapping item id to column name.")
    ] = None,
    layout: Annotated[
        str, typer.Option("--layout", help="auto, csv, redcap, qualtrics or long.")
    ] = "auto",
    recode: Annotated[
        str | None, typer.Option("--recode", help="Answer codes to scale values, e.g. '0-4:1-5'.")
    ] = None,
    encoding: Annotated[str, typer.Option("--encoding", help="Text encoding.")] = "utf-8",
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """Reliability of each scale in your data: alpha with Feldt's 95 % interval, the mean
    inter-item correlation, and per item the corrected item-total r and alpha if deleted."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.batch.run import collect_answers
    from alliance_cli.cli import score_sets
    from alliance_cli.core.reliability import form_reliability
    from alliance_cli.io import layouts

    catalog = run_catalog(quiet=quiet)
    scorer = score_sets.make_scorer(catalog.get(instrument), "reject")
    options = BatchOptions(
        template=columns, map_file=map_file, layout=layout, encoding=encoding,
        recode=layouts.parse_recode(recode) or None,
        known_ids=tuple(catalog.sources), item_count=catalog.item_count,
    )  # fmt: skip
    rejected: list[Any] = []
    answers, stats = collect_answers(
        files, scorer, options, rejected.append, (lambda _n: None) if quiet else say
    )
    for r in rejected[:5]:
        say(f"rejected: {r}")
    try:
        scales = form_reliability(scorer, answers)
    except ValueError as exc:
        raise DataFileError(f"{', '.join(files)}: {exc}") from None
    if not quiet:
        say(
            f"reliability: {stats.read:,} rows read, {stats.scored:,} scored, "
            f"{stats.rejected:,} rejected; each scale on its complete cases (rows with every "
            "item of the scale answered)"
        )
    for scale in scales:
        for warning in scale.against():
            say(f"warning: {scale.scale}: {warning}")
    records = [_record(s) for s in scales]
    output(pick_format(fmt), records, lambda render: render.reliability_view(records),
           lambda handle: _csv(handle, records))  # fmt: skip
    return 0


def _record(scale: Any) -> dict[str, Any]:
    def r6(x: float) -> float:
        return round(x, 6)

    return {
        "scale": scale.scale,
        "n": scale.n,
        "items": scale.items,
        "missing": "complete cases: rows with every item of the scale answered",
        "alpha": r6(scale.alpha),
        "alpha_ci95": [r6(scale.ci_low), r6(scale.ci_high)],
        "ci_method": "Feldt",
        "std_alpha": r6(scale.std_alpha),
        "average_r": r6(scale.average_r),
        "item_stats": [
            {
                "item": s.item,
                "mean": r6(s.mean),
                "sd": r6(s.sd),
                "r_drop": r6(s.r_drop),
                "alpha_if_deleted": r6(s.alpha_if_deleted),
            }
            for s in scale.item_stats
        ],
        "warnings": scale.against(),
    }


def _csv(handle: Any, records: list[dict[str, Any]]) -> None:
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(handle)
    writer.writerow(
        ["scale", "item", "n", "alpha", "alpha_ci_low", "alpha_ci_high", "std_alpha",
         "average_r", "mean", "sd", "r_drop", "alpha_if_deleted"]
    )  # fmt: skip
    for r in records:
        low, high = r["alpha_ci95"]
        writer.writerow([r["scale"], "", r["n"], r["alpha"], low, high, r["std_alpha"],
                         r["average_r"], "", "", "", ""])  # fmt: skip
        for s in r["item_stats"]:
            writer.writerow([r["scale"], s["item"], r["n"], "", "", "", "", "", s["mean"],
                             s["sd"], s["r_drop"], s["alpha_if_deleted"]])  # fmt: skip
