"""alliance instruments: list, show, check, export and the JSON Schema of instrument files."""

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from alliance_cli.cli.common import (
    Command,
    DetailFormatOpt,
    Format,
    FormatOpt,
    QuietOpt,
    SchemaFormat,
    SchemaFormatOpt,
    complete_instruments,
    emit_json,
    error_line,
    funnel,
    output,
    pick_format,
    run_catalog,
    say,
)
from alliance_cli.core.errors import ExitCode

if TYPE_CHECKING:
    from alliance_cli.io.catalog import Catalog

instruments_app = typer.Typer(
    help="List, show, check and describe instrument definitions.",
    epilog="Example: alliance instruments show wai-sr",
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)


# -- instruments ---------------------------------------------------------------------------
@instruments_app.callback(invoke_without_command=True)
def instruments_callback(
    ctx: typer.Context, quiet: QuietOpt = False, fmt: FormatOpt = None
) -> None:
    """List every instrument alliance knows (bundled and your own)."""
    if ctx.invoked_subcommand is None:
        instruments_list(fmt, quiet)


@instruments_app.command("list", cls=Command, epilog="Example: alliance instruments list -f csv")
@funnel
def instruments_list(fmt: FormatOpt = None, quiet: QuietOpt = False) -> int:
    """List every instrument alliance knows (as 'alliance instruments' alone does)."""
    catalog = run_catalog(strict=True, quiet=quiet)
    chosen = pick_format(fmt)
    rows = [_instrument_summary(catalog, key) for key in catalog.ids()]
    output(chosen, rows, lambda render: render.instrument_table(catalog))
    return 0


def _instrument_summary(catalog: "Catalog", key: str) -> dict[str, Any]:
    entry = catalog.entries[key]
    inst = entry.instrument
    return {
        "id": inst.id,
        "name": inst.name,
        "respondent": inst.respondent,
        "items": len(inst.items),
        "scale": f"{inst.scale.min:g}-{inst.scale.max:g}",
        "dimensions": inst.dimensions(),
        "verification": inst.verification.status,
        "bundled": entry.bundled,
        "path": str(entry.path),
    }


@instruments_app.command(
    "show", cls=Command, epilog="Example: alliance instruments show wai-sr -f json"
)
@funnel
def instruments_show(
    instrument: Annotated[
        str,
        typer.Argument(
            help="Instrument id, e.g. wai-sr.",
            metavar="INSTRUMENT",
            autocompletion=complete_instruments,
        ),
    ],
    quiet: QuietOpt = False,
    fmt: DetailFormatOpt = None,
) -> int:
    """Show one instrument: items, subscales, reverse keys, scale, norms, cutoffs, licence."""
    entry = run_catalog(quiet=quiet).get(instrument)
    chosen = pick_format(fmt)
    if chosen is Format.json:
        data = entry.instrument.to_data()
        data["_definition"] = {"path": str(entry.path), "sha256": entry.sha256}
        emit_json(data)
    else:
        from alliance_cli.render import terminal as render

        render.console().print(render.instrument_detail(entry))
    return 0


@instruments_app.command(
    "check", cls=Command, epilog="Example: alliance instruments check my-instruments/*.yaml"
)
@funnel
def instruments_check(
    files: Annotated[
        list[Path], typer.Argument(help="Instrument YAML files to validate.", metavar="FILE...")
    ],
    quiet: QuietOpt = False,
    fmt: DetailFormatOpt = None,
) -> int:
    """Validate instrument files; list every problem with file, YAML path and line."""
    from alliance_cli.io.catalog import check_files

    chosen = pick_format(fmt)
    results = check_files(files, run_catalog(quiet=quiet))
    if chosen is Format.json:
        emit_json([r.as_dict() for r in results])
    for result in results:
        for problem in result.problems:
            error_line(str(problem))
        for warning in result.warnings if not quiet else ():
            say(f"warning: {result.file}: {warning}")
        if chosen is Format.table and result.valid:
            sys.stdout.write(f"ok: {result.file}\n")
    bad = sum(not r.valid for r in results)
    if bad:
        sys.stderr.write(f"{bad} of {len(results)} file(s) invalid\n")
    return ExitCode.INSTRUMENT if bad else ExitCode.OK


@instruments_app.command(
    "export",
    cls=Command,
    epilog="Example: alliance instruments export wai-sr --to redcap -o wai_sr_dictionary.csv",
)
@funnel
def instruments_export(
    instrument: Annotated[
        str,
        typer.Argument(
            help="Instrument id, e.g. wai-sr.",
            metavar="INSTRUMENT",
            autocompletion=complete_instruments,
        ),
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to", help="redcap (a data dictionary, CSV) or fhir (an R4 Questionnaire, JSON)."
        ),
    ],
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="FILE", help="Write here (safely); - is stdout."),
    ] = "-",
    record_id: Annotated[
        bool,
        typer.Option(
            "--record-id/--no-record-id",
            help="REDCap: start with record_id (--no-record-id: to append to another form).",
        ),
    ] = True,
    quiet: QuietOpt = False,
) -> int:
    """Write the form for a REDCap project (data dictionary) or FHIR (Questionnaire).

    With our labels (never published wording) and the licence note.
    """
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.io.csvout import CsvWriter
    from alliance_cli.io.files import check_output, safe_writer

    if to not in ("redcap", "fhir"):
        raise UsageProblem(f"--to {to!r}: choose redcap or fhir")
    entry = run_catalog(quiet=quiet).get(instrument)
    check_output(output, "-o")
    if to == "redcap":
        from alliance_cli.io.forms import redcap_dictionary

        rows = redcap_dictionary(entry.instrument, entry.sha256, record_id=record_id)
        with safe_writer(output) as out:
            CsvWriter(out).writerows(rows)
    else:
        from alliance_cli.io import fhir

        resource = fhir.questionnaire(entry.instrument, entry.sha256)
        with safe_writer(output) as out:
            out.write(fhir.dumps(resource, indent=2) + "\n")
    if output != "-" and not quiet:
        say(f"wrote {output} ({to})")
    return 0


@instruments_app.command(
    "schema", epilog="Example: alliance instruments schema > instrument.schema.json"
)
@funnel
def instruments_schema(fmt: SchemaFormatOpt = SchemaFormat.json) -> int:
    """Print the JSON Schema of the instrument format (for editors and CI checks)."""
    from alliance_cli.core.definition import Instrument

    schema = Instrument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "alliance instrument definition"
    emit_json(schema)
    return 0
