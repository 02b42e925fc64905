"""alliance report: one client's history, or the caseload, as a self-contained HTML page."""

from pathlib import Path
from typing import Annotated, Any

import typer

from alliance_cli.cli.common import (
    DbOpt,
    QuietOpt,
    complete_clients,
    funnel,
    progress_of,
    run_catalog,
    say,
    say_undefined,
)
from alliance_cli.cli.history import (
    CounselorOpt,
    EarlyOpt,
    EarlyPompOpt,
    GapOpt,
    InstrumentOpt,
    NotSeenOpt,
    OpenOpt,
    SinceOpt,
    _settings,
    caseload_filter,
    held_instrument,
    today,
)


@funnel
def report_command(
    client: Annotated[
        str | None,
        typer.Argument(
            help="Client id (or --caseload for every client).",
            metavar="[CLIENT]",
            autocompletion=complete_clients,
        ),
    ] = None,
    caseload: Annotated[
        bool, typer.Option("--caseload", help="The caseload: every client, concerns first.")
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the HTML here (safely: replaced only when complete); - is stdout. "
            "Default: CLIENT.html (or caseload.html) in this folder.",
        ),
    ] = None,
    out_dir: Annotated[
        str | None,
        typer.Option(
            "--out-dir",
            metavar="DIR",
            help="With --caseload: DIR/index.html and a page per client, linked both ways.",
        ),
    ] = None,
    instrument: InstrumentOpt = None,
    counselor: CounselorOpt = None,
    since: SinceOpt = None,
    only_open: OpenOpt = False,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    not_seen: NotSeenOpt = 28,
    db: DbOpt = None,
    quiet: QuietOpt = False,
) -> int:
    """Write an HTML report to share, print or file: charts, sessions, open concerns."""
    from datetime import UTC, datetime

    from alliance_cli.core.errors import DataFileError, UsageProblem
    from alliance_cli.core.words import counted
    from alliance_cli.io.environment import collector_paused
    from alliance_cli.io.files import check_output, safe_writer
    from alliance_cli.render import html
    from alliance_cli.store import backend as history
    from alliance_cli.store import report

    if caseload == (client is not None):
        raise UsageProblem("give a CLIENT, or --caseload for every client")
    if client is not None and (counselor or since or only_open):
        raise UsageProblem("--counselor, --since and --open choose clients for --caseload")
    if out_dir is not None and (not caseload or output is not None):
        raise UsageProblem("--out-dir writes the caseload and its client pages; give it with "
                           "--caseload and without -o")  # fmt: skip
    history.note_history(db)
    if output is None and out_dir is None:
        output = report.page_name(client) if client is not None else "caseload.html"
    if output is not None:
        check_output(output, "-o")
    else:
        assert out_dir is not None
        where = Path(out_dir)
        if where.exists() and not where.is_dir():
            raise DataFileError(f"--out-dir {out_dir}: is not a folder")
        check_output(where / "index.html" if where.is_dir() else where, "--out-dir")
    settings = _settings(early_sessions, early_pomp, gap, not_seen)
    day = today()
    generated = datetime.now(UTC).astimezone().isoformat(timespec="seconds")
    catalog = run_catalog(quiet=quiet)
    written: list[str] = []
    with collector_paused(), history.open_store(db, create=False, on_wait=say) as store:
        if client is not None:
            assert output is not None
            with progress_of("reading the history", quiet) as on_progress:
                data = report.client_data(
                    store, client, instrument, catalog, settings, generated,
                    on_progress=on_progress, today=day,
                )  # fmt: skip
            say_undefined(catalog, {k[1] for k in store.series_keys(client)}, quiet)
            page = html.client_report(**data)
            with safe_writer(output) as out:
                out.write(page)
            written.append(output)
        else:
            filters = caseload_filter(counselor, instrument, since, only_open)
            none_on = held_instrument(
                filters.instrument, store.caseload_instruments(), catalog.sources
            )
            if none_on and not quiet:  # (the report is written all the same: it says so)
                say(none_on)
            described = "".join(
                f"; {name} {value}"
                for name, value in (("counselor", counselor), ("instrument", instrument),
                                    ("since", since), ("only", "open" if only_open else None))
                if value
            )  # fmt: skip
            with progress_of("reading the caseload", quiet) as on_progress:
                data = report.caseload_data(
                    store, catalog, settings, filters, described, generated, day,
                    linked=out_dir is not None, on_progress=on_progress,
                )  # fmt: skip
            say_undefined(catalog, store.caseload_instruments(), quiet)
            page = html.caseload_report(**data)
            if out_dir is None:
                assert output is not None
                with safe_writer(output) as out:
                    out.write(page)
                written.append(output)
            else:
                written += _write_pages(
                    Path(out_dir), page, data["pages"], store, instrument, catalog, settings,
                    generated, day,
                )  # fmt: skip
    if not quiet:
        if output == "-":
            pass
        elif out_dir is not None:
            pages = len(written) - 1
            say(f"report: wrote {written[0]} and {counted(pages, 'client page')}")
        else:
            say(f"report: wrote {written[0]}")
    return 0


def _write_pages(
    where: Path,
    index: str,
    pages: dict[str, str],
    store: Any,
    instrument: str | None,
    catalog: Any,
    settings: Any,
    generated: str,
    day: str,
) -> list[str]:
    """DIR/index.html and DIR/clients/<page> for every client, each written safely."""
    from alliance_cli.io.files import check_output, safe_writer
    from alliance_cli.render import html
    from alliance_cli.store import report

    try:
        (where / "clients").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from alliance_cli.core.errors import DataFileError

        raise DataFileError(f"{where}: cannot make the folder ({exc.strerror or exc})") from None
    written = []
    for client_id, name in pages.items():
        target = where / "clients" / name
        check_output(target, "--out-dir")
        data = report.client_data(
            store, client_id, instrument, catalog, settings, generated, "../index.html",
            today=day,
        )  # fmt: skip
        page = html.client_report(**data)
        with safe_writer(target) as out:
            out.write(page)
        written.append(str(target))
    index_path = where / "index.html"
    with safe_writer(index_path) as out:
        out.write(index)
    return [str(index_path), *written]
