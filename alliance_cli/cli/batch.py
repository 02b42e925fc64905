"""alliance batch: score exports of any size, streaming; every row accounted for."""

from pathlib import Path
from typing import Annotated, Any

import typer

from alliance_cli.cli.common import (
    BatchFormat,
    BatchFormatOpt,
    ColumnsOpt,
    DbOpt,
    EncodingOpt,
    FhirRaterOpt,
    IdColumnOpt,
    InstrumentIdOpt,
    Invalid,
    InvalidOpt,
    ItemColumnOpt,
    MapOpt,
    PlainIdsOpt,
    QuestionnaireOpt,
    QuietOpt,
    RecodeOpt,
    ReplaceOpt,
    SaveOpt,
    ValueColumnOpt,
    fhir_rater,
    funnel,
    run_catalog,
    say_verification,
    which_instrument,
)
from alliance_cli.core.errors import ExitCode, UsageProblem


@funnel
def batch_command(
    files: Annotated[
        list[str], typer.Argument(help="CSV exports to score; - reads stdin.", metavar="FILE...")
    ],
    instrument: InstrumentIdOpt = None,
    output: Annotated[
        str | None,  # text, not Path: Path("") would silently become "."
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write here (safely: a regular file is replaced only when complete); - is stdout.",
        ),
    ] = None,
    rejects: Annotated[
        str | None,
        typer.Option(
            "--rejects",
            metavar="FILE",
            help="Write rejected rows, with reasons, as CSV (- is stdout).",
        ),
    ] = None,
    columns: ColumnsOpt = None,
    map_file: MapOpt = None,
    questionnaire: QuestionnaireOpt = None,
    rater: FhirRaterOpt = None,
    fhir_bundle: Annotated[
        str | None,
        typer.Option(
            "--bundle",
            metavar="transaction",
            help="With -f fhir: one transaction Bundle (PUT by id), not NDJSON.",
        ),
    ] = None,
    dictionary: Annotated[
        Path | None,
        typer.Option(
            "--dictionary",
            metavar="FILE",
            help="REDCap: the project's data dictionary (label exports, choice labels).",
        ),
    ] = None,
    sessions: Annotated[
        Path | None,
        typer.Option(
            "--sessions",
            metavar="FILE",
            help="REDCap: each event's session (REDCap's event table, or event,session rows).",
        ),
    ] = None,
    id_column: IdColumnOpt = None,
    session_column: Annotated[
        str | None, typer.Option("--session-column", help="Session number column.")
    ] = None,
    date_column: Annotated[str | None, typer.Option("--date-column", help="Date column.")] = None,
    rater_column: Annotated[
        str | None, typer.Option("--rater-column", help="Rater column.")
    ] = None,
    counselor_column: Annotated[
        str | None,
        typer.Option("--counselor-column", help="Counselor column (for clients --counselor)."),
    ] = None,
    keep: Annotated[
        str | None,
        typer.Option("--keep", help="Comma-separated columns to pass through (default: all)."),
    ] = None,
    require_ids: Annotated[
        bool, typer.Option("--require-ids", help="Reject rows without client id and session.")
    ] = False,
    require_plain_ids: PlainIdsOpt = False,
    invalid: InvalidOpt = Invalid.reject,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write no output at all if any row is rejected.")
    ] = False,
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="Field delimiter (default: sniffed).")
    ] = None,
    encoding: EncodingOpt = "utf-8",
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="auto (default: recognised and said on stderr), csv, redcap, qualtrics, long.",
        ),
    ] = "auto",
    long: Annotated[
        bool, typer.Option("--long", help="One row per answer: same as --layout long.")
    ] = False,
    item_column: ItemColumnOpt = None,
    value_column: ValueColumnOpt = None,
    complete_only: Annotated[
        bool,
        typer.Option(
            "--complete-only",
            help="Only forms marked Complete (REDCap status 2; Qualtrics Finished).",
        ),
    ] = False,
    date_format: Annotated[
        str | None,
        typer.Option("--date-format", help="Dates not ISO, e.g. DD.MM.YYYY or M/D/YYYY."),
    ] = None,
    recode: RecodeOpt = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            "-j",
            help="Processes for one large file (default and most: every core; 1: this process).",
            show_default=False,
        ),
    ] = None,
    quiet: QuietOpt = False,
    save: SaveOpt = False,
    replace: ReplaceOpt = False,
    db: DbOpt = None,
    fmt: BatchFormatOpt = BatchFormat.csv,
    suggest_map: Annotated[
        bool,
        typer.Option(
            "--suggest-map",
            help="Print a starter --map (YAML) guessed from the header, to check; score nothing.",
        ),
    ] = False,
) -> int:
    """Score CSV exports of any size, streaming; every row is scored or rejected with a reason."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.cli import batch_run, score_sets
    from alliance_cli.io import layouts
    from alliance_cli.io.csvin import parse_delimiter

    layouts.check_not_both(columns, map_file)
    if long:
        layout = "long"
    if layout not in layouts.LAYOUTS:
        raise UsageProblem(f"--layout {layout!r}: choose {', '.join(layouts.LAYOUTS)}")
    catalog = run_catalog(quiet=quiet)
    if instrument is None:
        raise UsageProblem(which_instrument(files, catalog, encoding, delimiter))
    if suggest_map:
        return _suggest_map(files, catalog.get(instrument), encoding, delimiter)
    scorer = score_sets.make_scorer(catalog.get(instrument), invalid.value)
    say_verification(scorer, quiet)
    options = BatchOptions(
        template=columns,
        map_file=map_file,
        id_names={
            "client_id": id_column, "session": session_column,
            "date": date_column, "rater": rater_column, "counselor": counselor_column,
        },
        keep=[k.strip() for k in keep.split(",")] if keep else None,
        known_ids=tuple(catalog.sources),
        item_count=catalog.item_count,
        require_ids=require_ids or save,
        strict=strict,
        delimiter=parse_delimiter(delimiter),
        encoding=encoding,
        layout=layout,
        complete_only=complete_only,
        date_format=date_format,
        recode=layouts.parse_recode(recode) or _map_recode(map_file),
        item_column=item_column,
        value_column=value_column,
        jobs=_jobs(jobs),
        plain_ids=require_plain_ids,
        questionnaire=questionnaire,
        fhir_rater=fhir_rater(rater),
        sessions=sessions,
        dictionary=dictionary,
        fhir_bundle=_bundle(fhir_bundle, fmt.value),
    )  # fmt: skip
    request = batch_run.BatchRequest(
        files=files, scorer=scorer, fmt=fmt.value,
        output=output, rejects=rejects,
        options=options, quiet=quiet, save=save, replace=replace, db=db,
    )  # fmt: skip
    stats, _ = batch_run.run_with_progress(request)
    return ExitCode.REJECTED if stats.rejected or stats.not_saved else ExitCode.OK


def _map_recode(map_file: Path | None) -> dict[str, str] | None:
    """A ``recode:`` entry in the --map file: the same forms as --recode."""
    if map_file is None:
        return None
    from alliance_cli.io.columns import map_recode

    return map_recode(map_file)


def _suggest_map(files: list[str], entry: Any, encoding: str, delimiter: str | None) -> int:
    """Print a starter --map from the first file's header."""
    import sys

    from alliance_cli.io.columns import suggest_map
    from alliance_cli.io.csvin import open_input, parse_delimiter, read_header

    name = files[0]
    handle = open_input(name, encoding)
    try:
        header, _, _ = read_header(handle, name, parse_delimiter(delimiter))
    finally:
        if name != "-":
            handle.close()
    items = [str(i.id) for i in entry.instrument.items]
    sys.stdout.write(suggest_map(header, items, name, entry.instrument.id))
    return 0


def _jobs(jobs: int | None) -> int:
    """--jobs: at least 1; by default every core this process may use."""
    if jobs is None:
        from alliance_cli.batch.parallel import default_jobs

        return default_jobs()
    if jobs < 1:
        raise UsageProblem(f"--jobs {jobs}: give 1 or more processes")
    return jobs


def _bundle(kind: str | None, fmt: str) -> str | None:
    """``--bundle``: transaction, and only with -f fhir (a usage error otherwise)."""
    if kind is None:
        return None
    if kind != "transaction":
        raise UsageProblem(f"--bundle {kind!r}: the one kind is transaction")
    if fmt != "fhir":
        raise UsageProblem("--bundle transaction goes with -f fhir")
    return kind
