"""Response sets for ``alliance score``: gathered from arguments, stdin or prompts, scored, shown.

This is the glue between the CLI and the pure core; it does the command's work so the
command body stays a few lines.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alliance_cli.cli.common import say
from alliance_cli.core.contract import respondent_dict
from alliance_cli.core.errors import RejectedInput, UsageProblem
from alliance_cli.core.scorer import InvalidPolicy, Scorer, validate_date
from alliance_cli.io.answers import parse_answer_args, read_json_sets, response_from_json
from alliance_cli.io.csvout import RESPONDENT_COLUMNS, safe_text, score_columns, score_json_cells

if TYPE_CHECKING:
    from alliance_cli.io.catalog import LoadedInstrument


@dataclass
class ResponseSet:
    """One set of answers waiting to be scored, with where it came from."""

    where: str
    answers: Mapping[str, Any] | Sequence[Any] | None
    respondent: dict[str, Any]
    error: str | None = None


@dataclass
class Outcome:
    """What scoring some response sets produced."""

    scores: list[dict[str, Any]] = field(default_factory=list)  # Score JSON
    wheres: list[str] = field(default_factory=list)  # where each score's set came from
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    history_flags: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def rejection_lines(self) -> list[str]:
        """One line per rejected answer or set."""
        out = []
        for where, lines in self.rejected:
            out += [f"{where}: {line}" if where else line for line in lines]
        return out


def make_scorer(entry: LoadedInstrument, invalid: InvalidPolicy) -> Scorer:
    """Compile the instrument with the chosen policy for bad answers."""
    return Scorer(entry.instrument, entry.sha256, invalid)


def _respondent(
    scorer: Scorer, client: str | None, session: int | None, date: str | None, rater: str | None
) -> dict[str, Any]:
    return respondent_dict(
        client_id=client,
        session=session,
        date=validate_date(date),
        rater=rater or scorer.instrument.respondent,
    )


def set_from_args(
    args: Sequence[str],
    scorer: Scorer,
    client: str | None,
    session: int | None,
    date: str | None,
    rater: str | None,
    by_position: bool = False,
) -> ResponseSet:
    """A response set from command-line words (or prompted answers in item order)."""
    answers = list(args) if by_position else parse_answer_args(args)
    return ResponseSet("", answers, _respondent(scorer, client, session, date, rater))


def sets_from_stdin(
    text: str,
    scorer: Scorer,
    client: str | None,
    session: int | None,
    date: str | None,
    rater: str | None,
) -> list[ResponseSet]:
    """Response sets from a JSON object, a JSON list, or NDJSON; options fill gaps."""
    sets = []
    parsed = read_json_sets(text)
    if not parsed:
        raise UsageProblem("stdin is empty: expected a JSON object with an 'answers' key")
    for where, obj, error in parsed:
        if error is not None:
            sets.append(ResponseSet(where, None, respondent_dict(), error))
            continue
        try:
            answers, who = response_from_json(obj, scorer.instrument.id)
        except UsageProblem as exc:
            sets.append(ResponseSet(where, None, respondent_dict(), str(exc)))
            continue
        who = respondent_dict(
            client_id=who["client_id"] or client,
            session=who["session"] if who["session"] is not None else session,
            date=who["date"] or validate_date(date),
            rater=who["rater"] or rater or scorer.instrument.respondent,
        )
        sets.append(ResponseSet(where, answers, who))
    return sets


def gather_sets(
    args: Sequence[str],
    scorer: Scorer,
    respondent: tuple[str | None, int | None, str | None, str | None],
    interactive: bool,
) -> list[ResponseSet]:
    """The response sets ``alliance score`` was given: stdin ('-'), arguments, or prompts.

    ``respondent`` is (client, session, date, rater) from the options; prompting happens with
    ``interactive`` or when stdin is a terminal.
    """
    if list(args) == ["-"]:
        return sets_from_stdin(sys.stdin.read(), scorer, *respondent)
    if args:
        return [set_from_args(args, scorer, *respondent)]
    if interactive or sys.stdin.isatty():
        from alliance_cli.cli.prompts import prompt_answers

        return [set_from_args(prompt_answers(scorer), scorer, *respondent, by_position=True)]
    raise UsageProblem(
        "no answers given: pass them as arguments, '-' to read JSON from stdin, "
        "or --interactive to be asked item by item"
    )


def score_sets(scorer: Scorer, sets: Sequence[ResponseSet]) -> Outcome:
    """Score each set; a bad set is rejected with its reasons, the others still scored."""
    outcome = Outcome()
    single = len(sets) == 1 and not sets[0].where
    for rs in sets:
        if rs.error is not None:
            outcome.rejected.append((rs.where, [rs.error]))
            continue
        assert rs.answers is not None
        try:
            outcome.scores.append(scorer.score_dict(rs.answers, rs.respondent))
            outcome.wheres.append(rs.where)
        except RejectedInput as exc:
            outcome.rejected.append((rs.where, [str(p) for p in exc.problems]))
        except UsageProblem as exc:
            if single:
                raise
            outcome.rejected.append((rs.where, [str(exc)]))
    return outcome


def save_outcome(
    outcome: Outcome, db: Any, replace: bool, catalog: Any, quiet: bool = False
) -> None:
    """Record each score in the history and attach the flags the history now raises.

    Every set gets an outcome: saved (and shown), or rejected with its reason (a session
    already recorded, without --replace). One duplicate never stops the sets after it.
    """
    from alliance_cli.core.change import Settings
    from alliance_cli.store import sqlite as history
    from alliance_cli.store import views

    kept: list[dict[str, Any]] = []
    wheres: list[str] = []
    missing = [not d["respondent"]["client_id"] or d["respondent"]["session"] is None
               for d in outcome.scores]  # fmt: skip
    if len(outcome.scores) == 1 and missing[0] and not outcome.wheres[0]:
        # one set from the command line: a usage error, found before any store is opened
        raise UsageProblem("saving needs a client id and a session number (--client, --session)")
    if outcome.scores and all(missing):
        outcome.rejected += [
            (w, ["saving needs a client id and a session"]) for w in outcome.wheres
        ]
        outcome.scores, outcome.wheres = [], []
        return
    with history.open_store(db, on_wait=say) as store:
        for data, where in zip(outcome.scores, outcome.wheres, strict=True):
            try:
                store.record(data, replace=replace)
            except (RejectedInput, UsageProblem) as exc:
                outcome.rejected.append((where, [str(exc)]))
                continue
            who = data["respondent"]
            if not quiet:
                say(
                    f"saved session {who['session']} for client {who['client_id']} "
                    f"({data['instrument']['id']}, {who['rater']})"
                )
            raised = views.flags_for(store, data, catalog, Settings())
            outcome.history_flags[len(kept)] = [
                {k: v for k, v in f.items() if k != "session"} for f in raised
            ]
            kept.append(data)
            wheres.append(where)
    outcome.scores, outcome.wheres = kept, wheres


def csv_header(scorer: Scorer) -> list[str]:
    """Columns of ``score -f csv``."""
    return [*RESPONDENT_COLUMNS, *score_columns(scorer)]


def csv_row(scorer: Scorer, score: dict[str, Any]) -> list[str]:
    """One CSV row for a Score, the same cells batch writes for the same answers."""
    who = score["respondent"]
    ids = [who["client_id"] or "", "" if who["session"] is None else str(who["session"])]
    ids += [who["date"] or "", who["rater"] or ""]
    return [safe_text(c) for c in ids] + score_json_cells(scorer, score)


def show(outcome: Outcome, scorer: Scorer, fmt: str) -> None:
    """Write the scores to stdout in the chosen format; notes go to stderr."""
    results = []
    for i, score in enumerate(outcome.scores):
        data = dict(score, flags=score["flags"] + outcome.history_flags.get(i, []))
        results.append(data)
    if fmt == "json":
        if True:  # always a list, one Score per set given: the same shape however many there are
            sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    elif fmt == "ndjson":
        for data in results:
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(csv_header(scorer))
        for score in outcome.scores:
            writer.writerow(csv_row(scorer, score))
    else:
        from alliance_cli.core.score import Score
        from alliance_cli.render import terminal as render

        out = render.console()
        for data in results:
            view = render.score_view(Score.model_validate(data), (scorer.low, scorer.high))
            out.print(view)
        inst = scorer.instrument
        if results and inst.verification.status != "verified":
            out.print(render.caveat_panel(inst.verification, inst.licence))
