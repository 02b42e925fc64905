"""The ``alliance`` command line: thin commands over the core, and the one error funnel.

Only typer and the standard library are imported at the top: the rest is imported inside
the commands that need it, so ``alliance --version`` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from alliance_cli import __version__
from alliance_cli.core.errors import AllianceError, ExitCode

if TYPE_CHECKING:
    from alliance_cli.io.catalog import Catalog

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="alliance",
    help="Score therapeutic alliance questionnaires and follow the alliance over sessions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
instruments_app = typer.Typer(
    help="List, show, check and describe instrument definitions.",
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(instruments_app, name="instruments")


class _State:
    debug: bool = False
    instrument_dirs: tuple[Path, ...] = ()


STATE = _State()


class Format(StrEnum):
    """Output formats."""

    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


class Invalid(StrEnum):
    """What to do with an out-of-range, off-step or unreadable answer."""

    reject = "reject"
    missing = "missing"


InvalidOpt = Annotated[
    Invalid,
    typer.Option(
        "--invalid",
        help="reject (default): a bad answer rejects the set or row; missing: score it as missing.",
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="History database (default: $ALLIANCE_DB or the user data dir)."),
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No notices or summary on stderr (errors still).")
]
FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="table (for people; default on a terminal), json, ndjson or csv.",
        show_default=False,
    ),
]


def _pick_format(fmt: Format | None, allowed: tuple[Format, ...]) -> Format:
    from alliance_cli.core.errors import UsageProblem

    if fmt is None:
        fmt = Format.table if sys.stdout.isatty() else Format.json
        if fmt not in allowed:
            fmt = allowed[0]
    if fmt not in allowed:
        names = ", ".join(f.value for f in allowed)
        raise UsageProblem(f"--format {fmt.value} is not available here (use {names})")
    return fmt


def _err(line: str) -> None:
    sys.stderr.write(f"error: {line}\n")


def funnel(fn: F) -> F:
    """Run a command body and map every outcome to one exit code and one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            code = fn(*args, **kwargs)
        except typer.Exit:
            raise
        except AllianceError as exc:
            for line in exc.lines():
                _err(line)
            if STATE.debug:
                traceback.print_exc()
            raise typer.Exit(int(exc.exit_code)) from None
        except (KeyboardInterrupt, typer.Abort):
            sys.stderr.write("interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            # The reader went away (`| head`): not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:
            if STATE.debug:
                traceback.print_exc()
            _err(
                f"internal error: {type(exc).__name__} "
                "(a bug: rerun with --debug and report the traceback, which holds no answers)"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None
        raise typer.Exit(int(code or 0))

    return wrapper  # type: ignore[return-value]


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"alliance {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    instruments_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--instruments-dir",
            help="Extra directory of instrument YAML files (repeatable; overrides bundled ids).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (never answers) on errors.")
    ] = False,
) -> None:
    """Score therapeutic alliance questionnaires and follow the alliance over sessions."""
    STATE.debug = debug or bool(os.environ.get("ALLIANCE_DEBUG"))
    STATE.instrument_dirs = tuple(instruments_dir or ())


def _catalog(strict: bool = False) -> Catalog:
    """Load the catalog; print override notices and, when asked, problems as warnings."""
    from alliance_cli.io.catalog import load_catalog

    catalog = load_catalog(STATE.instrument_dirs)
    for notice in catalog.notices:
        sys.stderr.write(notice + "\n")
    if strict and catalog.problems:
        for problem in catalog.problems:
            sys.stderr.write(f"warning: {problem} (skipped)\n")
    return catalog


def _verification_notice(scorer: Any, quiet: bool) -> None:
    """Say once per run, on stderr, that a key is below verified (silenced by -q)."""
    from alliance_cli.core.scorer import verification_notice

    notice = verification_notice(scorer.instrument)
    if notice and not quiet:
        sys.stderr.write(notice + "\n")


def _emit_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _show(
    fmt: Format,
    data: Any,
    table: Callable[[Any], Any],
    csv_writer: Callable[[Any, Any], None] | None = None,
) -> None:
    """Write data as JSON, CSV (flat rows unless a writer is given) or a rich table."""
    if fmt is Format.json:
        _emit_json(data)
    elif fmt is Format.csv:
        from alliance_cli.io import csvout as tables

        (csv_writer or tables.write_rows_csv)(sys.stdout, data)
    else:
        from alliance_cli.render import terminal as render

        render.console().print(table(render))


# -- instruments ---------------------------------------------------------------------------
@instruments_app.callback(invoke_without_command=True)
def instruments_callback(ctx: typer.Context, fmt: FormatOpt = None) -> None:
    """List every instrument alliance knows (bundled and your own)."""
    if ctx.invoked_subcommand is None:
        instruments_list(fmt)


@funnel
def instruments_list(fmt: Format | None) -> int:
    """The instrument list, as a table, JSON or CSV."""
    catalog = _catalog(strict=True)
    fmt = _pick_format(fmt, (Format.table, Format.json, Format.csv))
    rows = [_instrument_summary(catalog, key) for key in catalog.ids()]
    _show(fmt, rows, lambda render: render.instrument_table(catalog))
    return 0


def _instrument_summary(catalog: Catalog, key: str) -> dict[str, Any]:
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


@instruments_app.command("show")
@funnel
def instruments_show(
    instrument: Annotated[str, typer.Argument(help="Instrument id, e.g. wai-sr.")],
    fmt: FormatOpt = None,
) -> int:
    """Show one instrument: items, subscales, reverse keys, scale, norms, cutoffs, licence."""
    entry = _catalog().get(instrument)
    fmt = _pick_format(fmt, (Format.table, Format.json))
    if fmt is Format.json:
        data = entry.instrument.model_dump(mode="json")
        data["_definition"] = {"path": str(entry.path), "sha256": entry.sha256}
        _emit_json(data)
    else:
        from alliance_cli.render import terminal as render

        render.console().print(render.instrument_detail(entry))
    return 0


@instruments_app.command("check")
@funnel
def instruments_check(
    files: Annotated[list[Path], typer.Argument(help="Instrument YAML files to validate.")],
    fmt: FormatOpt = None,
) -> int:
    """Validate instrument files; list every problem with file, YAML path and line."""
    from alliance_cli.io.catalog import check_files

    fmt = _pick_format(fmt, (Format.table, Format.json))
    results = check_files(files, known=set(_catalog().sources))
    if fmt is Format.json:
        _emit_json([r.as_dict() for r in results])
    for result in results:
        for problem in result.problems:
            _err(str(problem))
        for warning in result.warnings:
            sys.stderr.write(f"warning: {result.file}: {warning}\n")
        if fmt is Format.table and result.valid:
            sys.stdout.write(f"ok: {result.file}\n")
    bad = sum(not r.valid for r in results)
    if bad:
        sys.stderr.write(f"{bad} of {len(results)} file(s) invalid\n")
    return ExitCode.INSTRUMENT if bad else ExitCode.OK


@instruments_app.command("schema")
@funnel
def instruments_schema(fmt: FormatOpt = None) -> int:
    """Print the JSON Schema of the instrument format (for editors and CI checks)."""
    from alliance_cli.core.definition import Instrument

    _pick_format(fmt, (Format.json, Format.table))
    schema = Instrument.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "alliance instrument definition"
    _emit_json(schema)
    return 0


# -- score ---------------------------------------------------------------------------------
@app.command("score")
@funnel
def score_command(
    instrument: Annotated[str, typer.Argument(help="Instrument id, e.g. wai-sr or srs.")],
    answers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Answers in item order (5 4 4 3 ... or '5,4,4,3'), ITEM=VALUE pairs, "
            "or - to read JSON / NDJSON from stdin. None on a terminal: prompt for each item.",
            show_default=False,
        ),
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Client id.")] = None,
    session: Annotated[int | None, typer.Option("--session", help="Session number.")] = None,
    date: Annotated[str | None, typer.Option("--date", help="Session date, YYYY-MM-DD.")] = None,
    rater: Annotated[
        str | None, typer.Option("--rater", help="Who answered (default: the form's respondent).")
    ] = None,
    invalid: InvalidOpt = Invalid.reject,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-I", help="Prompt item by item even when piped.")
    ] = False,
    save: Annotated[
        bool, typer.Option("--save", help="Record the session in the local history.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="With --save: overwrite an existing record.")
    ] = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """Score one filled-in form and show goal, task, bond, total, norms, cutoffs and flags."""
    from alliance_cli.cli import score as responses

    fmt = _pick_format(fmt, (Format.table, Format.json, Format.ndjson, Format.csv))
    catalog = _catalog()
    scorer = responses.make_scorer(catalog.get(instrument), invalid.value)
    _verification_notice(scorer, quiet)
    who = (client, session, date, rater)
    sets = responses.gather_sets(answers or [], scorer, who, interactive)
    outcome = responses.score_sets(scorer, sets)
    if save:
        responses.save_outcome(outcome, db, replace, catalog)
    responses.show(outcome, scorer, fmt.value)
    for line in outcome.rejection_lines():
        _err(line)
    return ExitCode.REJECTED if outcome.rejected else ExitCode.OK


# -- batch ---------------------------------------------------------------------------------
@app.command("batch")
@funnel
def batch_command(
    files: Annotated[list[str], typer.Argument(help="CSV exports to score; - reads stdin.")],
    instrument: Annotated[str, typer.Option("--instrument", "-i", help="Instrument id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (atomically), not stdout.")
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write rejected rows, with reasons, as CSV.")
    ] = None,
    columns: Annotated[
        str | None, typer.Option("--columns", help="Item column template, e.g. 'wai_{item}'.")
    ] = None,
    map_file: Annotated[
        Path | None, typer.Option("--map", help="YAML file mapping item id to column name.")
    ] = None,
    id_column: Annotated[str | None, typer.Option("--id-column", help="Client id column.")] = None,
    session_column: Annotated[
        str | None, typer.Option("--session-column", help="Session number column.")
    ] = None,
    date_column: Annotated[str | None, typer.Option("--date-column", help="Date column.")] = None,
    rater_column: Annotated[
        str | None, typer.Option("--rater-column", help="Rater column.")
    ] = None,
    keep: Annotated[
        str | None,
        typer.Option("--keep", help="Comma-separated columns to pass through (default: all)."),
    ] = None,
    require_ids: Annotated[
        bool, typer.Option("--require-ids", help="Reject rows without client id and session.")
    ] = False,
    invalid: InvalidOpt = Invalid.reject,
    strict: Annotated[
        bool, typer.Option("--strict", help="Write no output at all if any row is rejected.")
    ] = False,
    delimiter: Annotated[
        str | None, typer.Option("--delimiter", help="Field delimiter (default: sniffed).")
    ] = None,
    encoding: Annotated[
        str, typer.Option("--encoding", help="Input encoding, e.g. latin-1.")
    ] = "utf-8",
    quiet: QuietOpt = False,
    save: Annotated[
        bool, typer.Option("--save", help="Record scored rows in the local history.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="With --save: overwrite existing records.")
    ] = False,
    db: DbOpt = None,
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="csv (default), ndjson or json.")
    ] = Format.csv,
) -> int:
    """Score CSV exports of any size, streaming; every row is scored or rejected with a reason."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.cli import batch as batchview
    from alliance_cli.cli import score as responses
    from alliance_cli.io.csvin import parse_delimiter

    _pick_format(fmt, (Format.csv, Format.ndjson, Format.json))
    catalog = _catalog()
    scorer = responses.make_scorer(catalog.get(instrument), invalid.value)
    _verification_notice(scorer, quiet)
    options = BatchOptions(
        template=columns,
        map_file=map_file,
        id_names={
            "client_id": id_column, "session": session_column,
            "date": date_column, "rater": rater_column,
        },
        keep=[k.strip() for k in keep.split(",")] if keep else None,
        known_ids=tuple(catalog.sources),
        item_count=catalog.item_count,
        require_ids=require_ids or save,
        strict=strict,
        delimiter=parse_delimiter(delimiter),
        encoding=encoding,
    )  # fmt: skip
    stats, _ = batchview.run(
        files, scorer, fmt.value, output, rejects, options, quiet, save, replace, db
    )
    return ExitCode.REJECTED if stats.rejected or stats.not_saved else ExitCode.OK


# -- history -------------------------------------------------------------------------------
def _settings(early_sessions: int, early_pomp: float, gap: float) -> Any:
    from alliance_cli.core.change import Settings

    return Settings(early_sessions=early_sessions, early_pomp=early_pomp, gap_pomp=gap)


EarlyOpt = Annotated[
    int, typer.Option("--early-sessions", help="Sessions that count as early treatment.")
]
EarlyPompOpt = Annotated[
    float,
    typer.Option(
        "--early-pomp", help="Low early total (POMP) when the instrument has no cutoff or bands."
    ),
]
GapOpt = Annotated[
    float, typer.Option("--gap", help="Client–therapist gap worth flagging, in POMP points.")
]


@app.command("history")
@funnel
def history_command(
    client: Annotated[str, typer.Argument(help="Client id.")],
    instrument: Annotated[
        str | None, typer.Option("--instrument", "-i", help="Only this instrument.")
    ] = None,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    db: DbOpt = None,
    fmt: FormatOpt = None,
) -> int:
    """One client's sessions over time: scores, a chart per scale, and flags in plain words."""
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    fmt = _pick_format(fmt, (Format.table, Format.json, Format.csv))
    settings = _settings(early_sessions, early_pomp, gap)
    with history.open_store(db) as store:
        views = views.client_view(store, client, instrument, _catalog(), settings)
    from alliance_cli.io.csvout import write_history_csv

    _show(fmt, views, lambda render: render.history_view(views), write_history_csv)
    return 0


@app.command("clients")
@funnel
def clients_command(
    limit: Annotated[
        int, typer.Option("--limit", help="Rows in the table (0: all); json and csv list all.")
    ] = 50,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    db: DbOpt = None,
    fmt: FormatOpt = None,
) -> int:
    """The caseload at a glance: clients needing attention first."""
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    fmt = _pick_format(fmt, (Format.table, Format.json, Format.csv))
    with history.open_store(db) as store:
        rows = views.caseload(store, _catalog(), _settings(early_sessions, early_pomp, gap))
    shown = rows if limit <= 0 or fmt is not Format.table else rows[:limit]
    _show(fmt, rows, lambda render: render.caseload_table(shown))
    if len(shown) < len(rows):
        hidden = rows[len(shown) :]
        flagged = sum(bool(r["open_flags"]) for r in hidden)
        sys.stderr.write(
            f"… and {len(hidden)} more clients ({flagged} with open flags); "
            "--limit 0 shows all, -f csv lists them\n"
        )
    return 0


@app.command("forget")
@funnel
def forget_command(
    client: Annotated[str, typer.Argument(help="Client id whose records are deleted.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOpt = None,
    fmt: FormatOpt = None,
) -> int:
    """Delete every record of one client from the history (asks first)."""
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.store import sqlite as history

    fmt = _pick_format(fmt, (Format.table, Format.json, Format.csv))
    with history.open_store(db) as store:
        count = len(store.records(client))
        if count == 0:
            raise UsageProblem(f"no sessions recorded for client {client!r}")
        if not yes:
            if not sys.stdin.isatty():
                raise UsageProblem("refusing to delete without confirmation: add --yes")
            if not typer.confirm(f"Delete all {count} records of client {client}?", err=True):
                sys.stderr.write("nothing deleted\n")
                return 0
        deleted = store.forget(client)
    if fmt is not Format.table:
        result = {"client_id": client, "deleted": deleted}
        _show(fmt, result if fmt is Format.json else [result], lambda render: None)
    sys.stderr.write(f"deleted {deleted} records of client {client}\n")
    return 0


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM unwinds like Ctrl-C, so atomic writes remove their temporary files.
    raise KeyboardInterrupt


def main() -> None:
    """Console-script entry point: runs the app and makes typer's usage errors one line."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = app(prog_name="alliance", standalone_mode=False)
    except typer.TyperException as exc:  # click's usage errors: a bad option, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            exc.show()  # type: ignore[attr-defined]
        else:
            context = getattr(exc, "ctx", None)
            command = context.command_path if context is not None else "alliance"
            message = exc.format_message()  # type: ignore[attr-defined]
            _err(f"{command}: {message} (see '{command} --help')")
        sys.exit(getattr(exc, "exit_code", int(ExitCode.USAGE)))
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    sys.exit(code if isinstance(code, int) else 0)
