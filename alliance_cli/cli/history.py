"""alliance history, clients and forget: the stored sessions, read and deleted."""

import math
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from alliance_cli.cli.common import (
    DbOpt,
    Format,
    FormatOpt,
    QuietOpt,
    complete_clients,
    emit_json_records,
    funnel,
    output,
    pick_format,
    progress_of,
    run_catalog,
    say,
    say_undefined,
)
from alliance_cli.core.errors import visible
from alliance_cli.core.words import counted


# -- history -------------------------------------------------------------------------------
def _settings(early_sessions: int, early_pomp: float, gap: float, not_seen: int = 28) -> Any:
    from alliance_cli.core.reading import Settings

    return Settings(
        early_sessions=early_sessions, early_pomp=early_pomp, gap_pomp=gap, not_seen_days=not_seen
    )


def today() -> str:
    """Today's date (ISO), or ALLIANCE_TODAY's: days since a session, and the not-seen
    note, count from it (a set date makes a caseload or a report reproducible)."""
    from datetime import date

    from alliance_cli.io.environment import iso_date

    return iso_date("ALLIANCE_TODAY") or date.today().isoformat()


InstrumentOpt = Annotated[
    str | None, typer.Option("--instrument", "-i", help="Only this instrument's sessions.")
]
EarlyOpt = Annotated[
    int,
    typer.Option("--early-sessions", min=0, help="Sessions that count as early treatment."),
]


def _finite(value: float) -> float:
    """A POMP option's value: a number (a NaN would compare false with everything, and so
    turn its rule off without a word)."""
    if not math.isfinite(value):
        raise typer.BadParameter(f"{value} is not a number of POMP points (0 to 100)")
    return value


EarlyPompOpt = Annotated[
    float,
    typer.Option(
        "--early-pomp",
        min=0,
        max=100,
        callback=_finite,
        help="Low early total (POMP) when the instrument has no cutoff or bands.",
    ),
]

GapOpt = Annotated[
    float,
    typer.Option(
        "--gap",
        min=0,
        max=100,
        callback=_finite,
        help="Smallest client–therapist gap worth raising, in POMP points (alliance's "
        "default); a gap must also be beyond the error of the comparison.",
    ),
]
NotSeenOpt = Annotated[
    int,
    typer.Option(
        "--not-seen-days", min=1, help="A note for clients not seen for longer than this."
    ),
]
CounselorOpt = Annotated[
    str | None, typer.Option("--counselor", help="Only this counselor's clients.")
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only clients seen on or after this date.")
]
OpenOpt = Annotated[bool, typer.Option("--open", help="Only clients with open concerns.")]


def caseload_filter(
    counselor: str | None, instrument: str | None, since: str | None, only_open: bool
) -> Any:
    """The caseload filters of ``clients`` and ``report --caseload``, checked."""
    from alliance_cli.core.scorer import validate_date
    from alliance_cli.store.views import CaseloadFilter

    return CaseloadFilter(
        counselor=counselor.strip() if counselor else None,
        instrument=instrument.strip().lower() if instrument else None,
        since=validate_date(since, "--since"),
        only_open=only_open,
    )


@funnel
def history_command(
    client: Annotated[
        str, typer.Argument(help="Client id.", metavar="CLIENT", autocompletion=complete_clients)
    ],
    instrument: InstrumentOpt = None,
    details: Annotated[
        bool, typer.Option("--details", help="Each concern's rules, figures and sources.")
    ] = False,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    not_seen: NotSeenOpt = 28,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """One client's sessions over time: scores, a chart per scale, and concerns in plain words."""
    from alliance_cli.io.environment import collector_paused
    from alliance_cli.store import backend as history
    from alliance_cli.store import views
    from alliance_cli.store.views import write_history_csv

    fmt = pick_format(fmt)
    settings = _settings(early_sessions, early_pomp, gap, not_seen)
    with collector_paused():  # a long history: many objects, no cycles
        with (
            history.open_store(db, create=False, on_wait=say) as store,
            progress_of("reading the history", quiet) as on_progress,
        ):
            catalog = run_catalog(quiet=quiet)
            series = views.client_view(
                store, client, instrument, catalog, settings, today(), on_progress=on_progress
            )
        say_undefined(catalog, (s.instrument for s in series), quiet)
        output(
            fmt,
            [s.as_dict() for s in series],
            lambda render: render.history_view(series, details),
            lambda handle: write_history_csv(handle, series),
            records_in=("sessions",),  # one session a line
        )
    return 0


def held_instrument(wanted: str | None, instruments: Sequence[str], known: Any) -> str:
    """What to say of ``-i`` naming a form no session of the history is on: an id no
    instrument has either is refused (a typo, most likely: exit 2, with the forms the
    history holds); a form of the catalog has no client yet ("" when it has some)."""
    if wanted is None or wanted in instruments or not instruments:
        return ""
    holds = f"it holds {', '.join(sorted(instruments))}"
    if wanted in known:
        return f"no session in the history is on {wanted} yet ({holds})"
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.io.catalog import nearest

    close = nearest(wanted, list(instruments))
    hint = f"did you mean {close!r}? " if close else ""
    raise UsageProblem(f"-i {wanted}: no session in the history is on {wanted} ({hint}{holds})")


def _nobody_yet(db: str | None) -> str:
    """What an empty caseload says: a counselor on a clinic's server sees only their own."""
    from alliance_cli.store import backend as history

    with history.open_store(db, create=False) as store:
        if store.sees_everything():
            return "no clients in the history yet"
    return (
        "no clients assigned to you yet (you see a client once you save a session for them, "
        "or once a supervisor assigns them to you: alliance db grant)"
    )


@funnel
def clients_command(
    limit: Annotated[
        int,
        typer.Option("--limit", min=0, help="Rows in the table (0: all); json and csv list all."),
    ] = 50,
    counselor: CounselorOpt = None,
    instrument: InstrumentOpt = None,
    since: SinceOpt = None,
    only_open: OpenOpt = False,
    early_sessions: EarlyOpt = 3,
    early_pomp: EarlyPompOpt = 50.0,
    gap: GapOpt = 15.0,
    not_seen: NotSeenOpt = 28,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """The caseload at a glance: clients needing attention first."""
    from alliance_cli.store import backend as history
    from alliance_cli.store import views

    fmt = pick_format(fmt)
    filters = caseload_filter(counselor, instrument, since, only_open)
    settings = _settings(early_sessions, early_pomp, gap, not_seen)
    seen: dict[str, Any] = {}
    day = today()
    catalog = run_catalog(quiet=quiet)
    rows = history.kept_on_server(  # a server's current kept list, without psycopg
        db, lambda kept: views.kept_caseload(kept, catalog, settings, filters, day, seen)
    )
    if rows is None:
        from alliance_cli.io.environment import collector_paused

        with (
            collector_paused(),  # read cold: many objects, no cycles (forked workers too)
            history.open_store(db, create=False, on_wait=say) as store,
            progress_of("reading the caseload", quiet) as on_progress,
        ):
            rows = views.caseload(
                store, catalog, settings, filters, day, on_progress=on_progress, seen=seen
            )
    say_undefined(catalog, seen.get("instruments", ()), quiet)
    if seen.get("undated") and not quiet:
        n = seen["undated"]
        who = f"{n:,} clients with no dated session are" if n > 1 else (
            "1 client with no dated session is")  # fmt: skip
        say(f"note: {who} left out by --since (their sessions have no date)")
    none_on = (
        ""
        if rows
        else held_instrument(filters.instrument, seen.get("instruments", ()), catalog.sources)
    )
    if not rows and not quiet:
        say(none_on or ("no clients match" if not filters.keeps_all() else _nobody_yet(db)))
    shown = rows if limit <= 0 or fmt is not Format.table else rows[:limit]
    if fmt is Format.csv:
        from alliance_cli.io.csvout import write_rows_csv

        header = [*views.CASELOAD_COLUMNS, "severity"]
        write_rows_csv(sys.stdout, [r.as_dict() for r in rows], header)
    elif fmt is Format.json:  # each row's kept concerns written as they were kept
        emit_json_records([r.json_utf8() for r in rows])
    elif fmt is Format.table:  # (only the rows shown have their concerns decoded)
        if rows:  # a long caseload is printed a block at a time, as it is drawn
            from alliance_cli.render import terminal as render

            for table in render.caseload_tables(shown):
                render.console().print(table)
    else:
        output(fmt, [r.as_dict() for r in rows], lambda render: render.caseload_table(shown))
    if len(shown) < len(rows) and not quiet:
        hidden = rows[len(shown) :]
        flagged = sum(bool(r.concerns) for r in hidden)
        sys.stderr.write(
            f"… and {counted(len(hidden), 'more client')} "
            f"({flagged:,} with open concerns); "
            "--limit 0 shows all, -f csv lists them\n"
        )
    return 0


@funnel
def forget_command(
    client: Annotated[
        str,
        typer.Argument(
            help="Client id whose records are deleted.",
            metavar="CLIENT",
            autocompletion=complete_clients,
        ),
    ],
    session_text: Annotated[
        str | None,
        typer.Option(
            "--session", help="Only this session (e.g. a typo to correct).", metavar="SESSION"
        ),
    ] = None,
    instrument: InstrumentOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """Delete a client's records from the history: all, one session, or one instrument's."""
    from alliance_cli.core.contract import session_problem
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.store import backend as history
    from alliance_cli.store.views import unknown_client

    fmt = pick_format(fmt)
    inst = instrument.strip().lower() if instrument else None
    session = None
    if session_text is not None:  # one reading of --session for every command
        problem = session_problem(session_text.strip())
        if problem is not None:
            raise UsageProblem(f"--session: {problem}")
        session = int(session_text.strip())
    with history.open_store(db, create=False, on_wait=say) as store:
        records = [
            r for r in store.records(client, inst) if session is None or r.session == session
        ]
        if not records:
            if not store.records(client):
                raise unknown_client(store, client)
            which = " ".join(
                part
                for part in (
                    f"in session {session}" if session else "",
                    f"on {inst}" if inst else "",
                )
                if part
            )
            raise UsageProblem(f"client {client!r} has no record {which}".rstrip())
        what = f"{counted(len(records), 'record')} of client {client}"
        what += f" (session {session})" if session is not None else ""
        what += f" on {inst}" if inst else ""
        if not yes:
            if not sys.stdin.isatty():
                raise UsageProblem("refusing to delete without confirmation: add --yes")
            if not typer.confirm(visible(f"Delete {what}?"), err=True):
                say("nothing deleted")
                return 0
        deleted = store.forget(client, session, inst)
        if store.log_busy:
            say(
                f"note: another program has {store.path} open; the deleted records leave its "
                "write-ahead log (-wal) when that program closes it"
            )
    if fmt is not Format.table:
        result = {"client_id": client, "session": session, "instrument": inst, "deleted": deleted}
        output(fmt, result, lambda render: None)
    if not quiet:
        say(f"deleted {what}")
    return 0
