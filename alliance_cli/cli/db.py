"""alliance db: set up a clinic's PostgreSQL history, assign clients, and move a history."""

import sys
from typing import Annotated

import typer

from alliance_cli.cli.common import (
    Command,
    DbOpt,
    FormatOpt,
    QuietOpt,
    funnel,
    output,
    pick_format,
    say,
)
from alliance_cli.core.words import counted

db_app = typer.Typer(
    help="A clinic's shared history on PostgreSQL: setup, client assignments, copying.",
    epilog="Example: alliance db setup --db postgresql://owner@clinic-db/alliance --apply",
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    no_args_is_help=True,
)

RoleArg = Annotated[str, typer.Argument(help="A counselor's login role.", metavar="ROLE")]
ClientArg = Annotated[str, typer.Argument(help="Client id.", metavar="CLIENT")]


def _server(db: str | None, what: str) -> str:
    """The server URL a db command works on (--db, else ALLIANCE_DB)."""
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.store import backend

    where = backend.location(db)
    if not isinstance(where, str):
        raise UsageProblem(
            f"{what} works on a clinic's PostgreSQL history: give --db postgresql://… "
            f"(or ALLIANCE_DB); {where} is an SQLite file"
        )
    return where


@db_app.command(
    "setup",
    cls=Command,
    epilog="Example: alliance db setup --db postgresql://owner@clinic-db/alliance --apply",
)
@funnel
def setup_command(
    apply: Annotated[
        bool, typer.Option("--apply", help="Run the SQL on --db (as the database's owner).")
    ] = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
) -> int:
    """Print the SQL that creates the clinic's history: schema, group roles, policies."""
    from alliance_cli.store import backend, postgres

    if not apply:
        sys.stdout.write(
            "-- alliance: a clinic's shared history (run once, as the database's owner, by a\n"
            "-- role that may create roles; `alliance db setup --apply` runs the same)\n"
            f"SELECT pg_advisory_lock({postgres.MIGRATION_LOCK});\n"
            "BEGIN;\n"
        )
        for script in postgres.migration_scripts(0):
            sys.stdout.write(script.rstrip() + "\n")
        sys.stdout.write(f"COMMIT;\nSELECT pg_advisory_unlock({postgres.MIGRATION_LOCK});\n")
        return 0
    where = _server(db, "db setup --apply")
    with backend.open_store(db, create=True, on_wait=say) as store:
        version = store.schema_version()
    if not quiet:
        say(f"the history at {backend.shown(where)} is set up (schema {version})")
        say(
            f"next: CREATE ROLE <name> LOGIN IN ROLE {postgres.COUNSELOR} (or "
            f"{postgres.SUPERVISOR}) for each counselor; see docs/clinic-server.md"
        )
    return 0


def _assign(client: str, role: str, db: str | None, grant: bool, quiet: bool) -> int:
    from alliance_cli.store import backend, postgres, views

    _server(db, "db grant" if grant else "db revoke")
    with backend.open_store(db, create=False, on_wait=say) as store:
        assert isinstance(store, postgres.Store)
        changed = store.grant(client, role) if grant else store.revoke(client, role)
        unseen = views.not_seen_yet(store, client) if grant else ""
    if not quiet:
        if grant:
            say(f"client {client} is {'now' if changed else 'already'} assigned to {role}{unseen}")
        else:
            say(f"client {client} is {'no longer' if changed else 'not'} assigned to {role}")
    return 0


@db_app.command(
    "grant",
    cls=Command,
    epilog="Example: alliance db grant C-205 lee --db postgresql://kim@clinic-db/alliance",
)
@funnel
def grant_command(
    client: ClientArg, role: RoleArg, db: DbOpt = None, quiet: QuietOpt = False
) -> int:
    """Assign a client to a counselor (a supervisor's command)."""
    return _assign(client, role, db, True, quiet)


@db_app.command(
    "revoke",
    cls=Command,
    epilog="Example: alliance db revoke C-205 lee --db postgresql://kim@clinic-db/alliance",
)
@funnel
def revoke_command(
    client: ClientArg, role: RoleArg, db: DbOpt = None, quiet: QuietOpt = False
) -> int:
    """Take a client from a counselor (a supervisor's command)."""
    return _assign(client, role, db, False, quiet)


@db_app.command("assignments", cls=Command, epilog="Example: alliance db assignments -f csv")
@funnel
def assignments_command(db: DbOpt = None, quiet: QuietOpt = False, fmt: FormatOpt = None) -> int:
    """List which counselor has which client (a counselor sees their own)."""
    from alliance_cli.store import backend, postgres

    fmt = pick_format(fmt)
    _server(db, "db assignments")
    with backend.open_store(db, create=False, on_wait=say) as store:
        assert isinstance(store, postgres.Store)
        rows = [{"client_id": c, "role": r} for c, r in store.assignments()]
    if not rows and not quiet:
        say("no client is assigned yet")
    output(fmt, rows, lambda render: render.assignments_table(rows))
    return 0


@db_app.command(
    "copy",
    cls=Command,
    epilog="Example: alliance db copy history.sqlite postgresql://lee@clinic-db/alliance",
)
@funnel
def copy_command(
    source: Annotated[str, typer.Argument(help="The history to copy from.", metavar="SRC")],
    destination: Annotated[str, typer.Argument(help="The history to copy into.", metavar="DST")],
    quiet: QuietOpt = False,
) -> int:
    """Copy every session of one history into another (SQLite and PostgreSQL, either way)."""
    from alliance_cli.core.errors import ExitCode, UsageProblem
    from alliance_cli.store import backend
    from alliance_cli.store.copy import copy_history

    if backend.location(source) == backend.location(destination):
        raise UsageProblem(f"{backend.shown(source)}: the source and the destination are one")
    with (
        backend.open_store(source, create=False, on_wait=say) as src,
        backend.open_store(destination, create=True, on_wait=say) as dst,
    ):
        done = copy_history(src, dst)
    for conflict in done.conflicts[:20]:
        say(f"conflict: {conflict}")
    for refusal in done.refused[:20]:
        say(f"not copied: {refusal}")
    if not quiet:
        say(
            f"copied {counted(done.added, 'session')} ({done.same:,} "
            f"{'was' if done.same == 1 else 'were'} there already with the same "
            f"answers, {len(done.conflicts):,} with other answers"
            + (f", {len(done.refused):,} not copied" if done.refused else "")
            + f"); {backend.shown(source)} "
            f"holds {counted(done.source_count, 'session')}, {backend.shown(destination)} "
            f"{done.destination_count:,}"
        )
    if done.conflicts or done.refused:
        return int(ExitCode.REJECTED)
    if not done.complete:
        say("error: the counts differ: not every session read is in the destination")
        return int(ExitCode.FILE)
    return 0
