"""alliance score: one filled-in form (or a few, from stdin), scored and shown."""

import sys
from datetime import date as _date
from typing import Annotated

import typer

from alliance_cli.cli.common import (
    DbOpt,
    Invalid,
    InvalidOpt,
    PlainIdsOpt,
    QuietOpt,
    ReplaceOpt,
    SaveOpt,
    ScoreFormatOpt,
    complete_instruments,
    funnel,
    no_such_option,
    pick_format,
    run_catalog,
    say,
    say_verification,
)
from alliance_cli.core.errors import ExitCode, UsageProblem


@funnel
def score_command(
    instrument: Annotated[
        str,
        typer.Argument(
            help="Instrument id, e.g. wai-sr or srs.",
            metavar="INSTRUMENT",
            autocompletion=complete_instruments,
        ),
    ],
    answers: Annotated[
        list[str] | None,
        typer.Argument(
            help="Answers in item order (5 4 4 3 ... or '5,4,4,3'), ITEM=VALUE pairs, "
            "or - to read JSON / NDJSON from stdin. None on a terminal: prompt for each item.",
            show_default=False,
            metavar="[ANSWER]...",
        ),
    ] = None,
    client: Annotated[str | None, typer.Option("--client", help="Client id.")] = None,
    session: Annotated[
        str | None,
        typer.Option(
            "--session", help="Session number, or 'next' (one after the client's last saved)."
        ),
    ] = None,
    date: Annotated[str | None, typer.Option("--date", help="Session date, YYYY-MM-DD.")] = None,
    rater: Annotated[
        str | None, typer.Option("--rater", help="Who answered (default: the form's respondent).")
    ] = None,
    counselor: Annotated[
        str | None,
        typer.Option("--counselor", help="Who the counselor is, kept with a saved session."),
    ] = None,
    invalid: InvalidOpt = Invalid.reject,
    interactive: Annotated[
        bool, typer.Option("--interactive", "-I", help="Prompt item by item even when piped.")
    ] = False,
    save: SaveOpt = False,
    replace: ReplaceOpt = False,
    db: DbOpt = None,
    quiet: QuietOpt = False,
    fmt: ScoreFormatOpt = None,
    require_plain_ids: PlainIdsOpt = False,
) -> int:
    """Score one filled-in form and show goal, task, bond, total, norms, cutoffs and flags."""
    from alliance_cli.cli import score_sets

    for answer in answers or []:
        if answer.startswith("--") or (answer[:1] == "-" and answer[1:2].isalpha()):
            raise no_such_option(answer)
    chosen = "fhir" if fmt is not None and fmt.value == "fhir" else pick_format(fmt).value
    catalog = run_catalog(quiet=quiet)
    scorer = score_sets.make_scorer(catalog.get(instrument), invalid.value)
    say_verification(scorer, quiet)
    number = score_sets.session_number(session, client, rater, scorer, db)
    prompting = not answers and (interactive or sys.stdin.isatty())
    if prompting and date is None:
        date = _date.today().isoformat()
        say(f"date: today, {date} (--date sets another)")
    if prompting and save and client and number is not None and not replace:
        score_sets.refuse_recorded(client, number, rater, scorer, db)  # before any question
    who = (client, number, date, rater)
    if require_plain_ids and counselor is not None:
        from alliance_cli.core.contract import plain_problem

        problem = plain_problem(counselor)
        if problem is not None:
            raise UsageProblem(f"--counselor {problem} (--require-plain-ids)")
    sets = score_sets.gather_sets(answers or [], scorer, who, interactive)
    if require_plain_ids:
        sets = score_sets.plain_ids_only(sets)
    saving = score_sets.Saving(db, replace, catalog, quiet, counselor) if save else None
    rejected = score_sets.score_and_print(scorer, sets, chosen, saving)
    return ExitCode.REJECTED if rejected else ExitCode.OK
