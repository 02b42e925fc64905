"""alliance report: one client's history, or the caseload, as a self-contained HTML page."""

from __future__ import annotations

from typing import Annotated

import typer

from alliance_cli.cli.common import DbOpt, QuietOpt, funnel, run_catalog, say
from alliance_cli.cli.history import (
    CounselorOpt,
    EarlyOpt,
    EarlyPompOpt,
    GapOpt,
    InstrumentOpt,
    OpenOpt,
    SinceOpt,
    _settings,
    caseload_filter,
    today,
)


@funnel
def report_command(
    client: Annotated[
        str | None,
        typer.Argument(help="Client id (or --caseload for every client).", metavar="[CLIENT]"),
    ] = None,
    caseload: Annotated[
        bool, typer.Option("--caseload", help="The caseload: every client, concerns first.")
    ] = False,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the HTML here (safely: replaced only when complete); - is stdout.",
        ),
    ] = "-",
    instrument: InstrumentOpt = None,
    counselor: CounselorOpt = None,
    since: SinceOpt = None,
    only_open: OpenOpt = False,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    db: DbOpt = None,
    quiet: QuietOpt = False,
) -> int:
    """Write an HTML report to share, print or file: charts, sessions, open concerns."""
    from datetime import UTC, datetime

    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.io.files import check_output, safe_writer
    from alliance_cli.render import html
    from alliance_cli.store import report
    from alliance_cli.store import sqlite as history

    if caseload == (client is not None):
        raise UsageProblem("give a CLIENT, or --caseload for every client (not both)")
    if client is not None and (counselor or since or only_open):
        raise UsageProblem("--counselor, --since and --open choose clients for --caseload")
    history.note_history(db)
    check_output(output, "-o")
    settings = _settings(early_sessions, early_pomp, gap)
    generated = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    catalog = run_catalog(quiet=quiet)
    with history.open_store(db, create=False, on_wait=say) as store:
        if client is not None:
            page = html.client_report(
                **report.client_data(store, client, instrument, catalog, settings, generated)
            )
        else:
            filters = caseload_filter(counselor, instrument, since, only_open)
            described = "".join(
                f"; {name} {value}"
                for name, value in (("counselor", counselor), ("instrument", instrument),
                                    ("since", since), ("only", "open" if only_open else None))
                if value
            )  # fmt: skip
            page = html.caseload_report(
                **report.caseload_data(
                    store, catalog, settings, filters, described, generated, today()
                )
            )
    with safe_writer(output) as out:
        out.write(page)
    if output != "-" and not quiet:
        say(f"report: wrote {output}")
    return 0
