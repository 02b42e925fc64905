"""What every command shares: the options spelled once, the output dispatcher, the error funnel."""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from alliance_cli.core.errors import AllianceError, ExitCode

if TYPE_CHECKING:
    from alliance_cli.io.catalog import Catalog

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RunOptions:
    """The options given before the command (``alliance --debug --instruments-dir D ...``).

    Kept in the click context's ``obj`` by the app callback; ``run_options()`` reads it.
    """

    debug: bool = False
    instrument_dirs: tuple[Path, ...] = ()


def run_options() -> RunOptions:
    """This run's global options (defaults outside a command line, e.g. in tests of helpers)."""
    from alliance_cli.cli.clicklib import get_current_context

    ctx = get_current_context(silent=True)
    found = ctx.find_object(RunOptions) if ctx is not None else None
    return found or RunOptions(debug=bool(os.environ.get("ALLIANCE_DEBUG")))


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


def pick_format(fmt: Format | None, allowed: tuple[Format, ...]) -> Format:
    from alliance_cli.core.errors import UsageProblem

    if fmt is None:
        fmt = Format.table if sys.stdout.isatty() else Format.json
        if fmt not in allowed:
            fmt = allowed[0]
    if fmt not in allowed:
        names = ", ".join(f.value for f in allowed)
        raise UsageProblem(f"--format {fmt.value} is not available here (use {names})")
    return fmt


def error_line(line: str) -> None:
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
                error_line(line)
            if run_options().debug:
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
            if run_options().debug:
                traceback.print_exc()
            error_line(
                f"internal error: {type(exc).__name__} "
                "(a bug: rerun with --debug and report the traceback, which holds no answers)"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None
        raise typer.Exit(int(code or 0))

    return wrapper  # type: ignore[return-value]


def run_catalog(strict: bool = False) -> Catalog:
    """Load the catalog; print override notices and, when asked, problems as warnings."""
    from alliance_cli.io.catalog import load_catalog

    catalog = load_catalog(run_options().instrument_dirs)
    for notice in catalog.notices:
        sys.stderr.write(notice + "\n")
    if strict and catalog.problems:
        for problem in catalog.problems:
            sys.stderr.write(f"warning: {problem} (skipped)\n")
    return catalog


def say_verification(scorer: Any, quiet: bool) -> None:
    """Say once per run, on stderr, that a key is below verified (silenced by -q)."""
    from alliance_cli.core.scorer import verification_notice

    notice = verification_notice(scorer.instrument)
    if notice and not quiet:
        sys.stderr.write(notice + "\n")


def emit_json(data: Any) -> None:
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def output(
    fmt: Format,
    data: Any,
    table: Callable[[Any], Any],
    csv_writer: Callable[[Any, Any], None] | None = None,
) -> None:
    """Write data as JSON, CSV (flat rows unless a writer is given) or a rich table."""
    if fmt is Format.json:
        emit_json(data)
    elif fmt is Format.csv:
        from alliance_cli.io import csvout as tables

        (csv_writer or tables.write_rows_csv)(sys.stdout, data)
    else:
        from alliance_cli.render import terminal as render

        render.console().print(table(render))
