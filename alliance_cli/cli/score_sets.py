"""Response sets for ``alliance score``: gathered from arguments, stdin or prompts, scored, shown.

This is the glue between the CLI and the pure core; it does the command's work so the
command body stays a few lines.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from alliance_cli.cli.common import error_line, say
from alliance_cli.core.contract import (
    rater_problem,
    respondent_dict,
    session_problem,
    stored_id_problem,
)
from alliance_cli.core.errors import RejectedInput, UsageProblem
from alliance_cli.core.scorer import InvalidPolicy, Scorer, validate_date
from alliance_cli.io.answers import (
    MAX_JSON_LINE,
    parse_answer_args,
    peek,
    read_json_sets,
    response_from_json,
)

if TYPE_CHECKING:
    from alliance_cli.io.catalog import LoadedInstrument


@dataclass
class ResponseSet:
    """One set of answers waiting to be scored, with where it came from."""

    where: str
    answers: Mapping[str, Any] | Sequence[Any] | None
    respondent: dict[str, Any]
    error: str | None = None
    ref: str | None = None  # the FHIR QuestionnaireResponse it came from, if one


@dataclass
class Outcome:
    """What scoring some response sets produced."""

    scores: list[dict[str, Any]] = field(default_factory=list)  # Score JSON
    wheres: list[str] = field(default_factory=list)  # where each score's set came from
    refs: list[str | None] = field(default_factory=list)  # each one's FHIR response, if any
    rejected: list[tuple[str, list[str]]] = field(default_factory=list)
    concerns: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # said at save

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
        client_id=_client(client),
        session=_session(session),
        date=validate_date(date, "--date"),
        rater=_rater(scorer, rater),
    )


def _client(client: str | None) -> str | None:
    """A client id every history can keep alike (``stored_id_problem``), or UsageProblem."""
    problem = None if client is None else stored_id_problem(client)
    if problem is not None:
        raise UsageProblem(f"client_id {problem}")
    return client


def _session(session: int | None) -> int | None:
    """A session number by the one rule (1 to 999999999), or UsageProblem."""
    problem = None if session is None else session_problem(str(session))
    if problem is not None:
        raise UsageProblem(problem)
    return session


def _rater(scorer: Scorer, rater: str | None) -> str:
    """The rater, lower case, who must be the form's respondent (default: it), or UsageProblem."""
    respondent = scorer.instrument.respondent
    if rater is None or not rater.strip():
        return respondent
    problem = rater_problem(rater, respondent)
    if problem is not None:
        raise UsageProblem(problem)
    return rater.strip().lower()


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
    stream: IO[str],
    scorer: Scorer,
    client: str | None,
    session: int | None,
    date: str | None,
    rater: str | None,
) -> Iterator[ResponseSet]:
    """Response sets, streamed, from JSON, a JSON list, NDJSON, or plain answer lines.

    Options fill what a set leaves out. Input that does not start with ``{`` or ``[`` is
    read as answers, one set per line (``4 4 5 3 ...`` or ``4,4,5,3,...``).
    """
    first, rest = peek(stream)
    if not first:
        raise UsageProblem("stdin is empty: expected answers, a JSON object or NDJSON")
    if first not in "[{":
        from alliance_cli.io.source import bounded_lines

        # a line is cut at 1 MiB (an answer line is a few dozen characters): a stream of NUL
        # bytes or with no line end never fills memory
        for number, line in enumerate(bounded_lines(rest, MAX_JSON_LINE), start=1):
            if len(line) > MAX_JSON_LINE:
                reason = f"a line over {MAX_JSON_LINE >> 20} MiB: not a line of answers"
                yield ResponseSet(f"stdin:{number}", None, respondent_dict(), reason)
                continue
            if not line.strip():
                continue
            try:
                one = set_from_args(line.split(), scorer, client, session, date, rater)
            except UsageProblem as exc:
                yield ResponseSet(f"stdin:{number}", None, respondent_dict(), str(exc))
                continue
            yield ResponseSet(f"stdin:{number}", one.answers, one.respondent)
        return
    given = (client, session, date, rater)
    for where, obj, error in read_json_sets(rest):
        if error is not None:
            yield ResponseSet(where, None, respondent_dict(), error)
            continue
        if isinstance(obj, dict) and "resourceType" in obj:
            yield from _fhir_sets(obj, where, scorer, given)
            continue
        try:
            answers, who = response_from_json(obj, scorer.instrument.id)
            who = _filled(who, scorer, given)
        except UsageProblem as exc:
            yield ResponseSet(where, None, respondent_dict(), str(exc))
            continue
        yield ResponseSet(where, answers, who)


# (client, session, date, rater) as the options gave them
Given = tuple[str | None, int | None, str | None, str | None]


def _filled(who: dict[str, Any], scorer: Scorer, given: Given) -> dict[str, Any]:
    """A set's respondent, what it leaves out filled from the options (or UsageProblem)."""
    client, session, date, rater = given
    return respondent_dict(
        client_id=_client(who["client_id"] or client),
        session=who["session"] if who["session"] is not None else _session(session),
        date=who["date"] or validate_date(date, "--date"),
        rater=_rater(scorer, who["rater"] or rater),
    )


def _fhir_sets(
    obj: dict[str, Any], where: str, scorer: Scorer, given: Given
) -> Iterator[ResponseSet]:
    """Response sets from a FHIR QuestionnaireResponse or Bundle (answers by linkId)."""
    from alliance_cli.io import fhir

    try:
        found = list(fhir.responses(obj, where))
    except UsageProblem as exc:  # its message names where
        yield ResponseSet("", None, respondent_dict(), str(exc))
        return
    for label, resource in found:
        try:
            answers, who, ref, _others = fhir.read_response(
                resource, label, scorer.instrument, beside=fhir.answer_keys(obj)
            )
            who = _filled(who, scorer, given)
        except UsageProblem as exc:
            yield ResponseSet("", None, respondent_dict(), str(exc))
            continue
        yield ResponseSet(label, answers, who, ref=ref)


def plain_ids_only(sets: Iterable[ResponseSet]) -> Iterator[ResponseSet]:
    """``--require-plain-ids``: a set whose client id, session or rater holds an invisible,
    control or direction-changing character is rejected, with the reason."""
    from alliance_cli.core.contract import plain_problem

    for one in sets:
        if one.error is None:
            for role in ("client_id", "session", "rater"):
                value = one.respondent.get(role)
                problem = plain_problem(str(value)) if value is not None else None
                if problem is not None:
                    where = f"{one.where}: " if one.where else ""
                    error = f"{where}{role} {problem} (--require-plain-ids)"
                    one = ResponseSet(one.where, None, one.respondent, error)
                    break
        yield one


def gather_sets(
    args: Sequence[str],
    scorer: Scorer,
    respondent: Given,
    interactive: bool,
) -> Iterable[ResponseSet]:
    """The response sets ``alliance score`` was given: stdin ('-'), arguments, or prompts.

    ``respondent`` is (client, session, date, rater) from the options; prompting happens with
    ``interactive`` or when stdin is a terminal. Stdin is read lazily, set by set.
    """
    if list(args) == ["-"]:
        return sets_from_stdin(sys.stdin, scorer, *respondent)
    if args:
        return [set_from_args(args, scorer, *respondent)]
    if interactive or sys.stdin.isatty():
        from alliance_cli.cli.prompts import prompt_answers

        return [set_from_args(prompt_answers(scorer), scorer, *respondent, by_position=True)]
    raise UsageProblem(
        "no answers given: pass them as arguments, '-' to read answers or JSON from stdin, "
        "or --interactive to be asked item by item"
    )


def chunks(sets: Iterable[ResponseSet], size: int = 1000) -> Iterator[list[ResponseSet]]:
    """Sets in chunks, so stdin of any length is scored, saved and written as it comes."""
    chunk: list[ResponseSet] = []
    for one in sets:
        chunk.append(one)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


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
            outcome.refs.append(rs.ref)
        except RejectedInput as exc:
            outcome.rejected.append((rs.where, [str(p) for p in exc.problems]))
        except UsageProblem as exc:
            if single:
                raise
            outcome.rejected.append((rs.where, [str(exc)]))
    return outcome


def session_number(
    session: str | None, client: str | None, rater: str | None, scorer: Scorer, db: Any
) -> int | None:
    """``--session``: a number, or 'next' (one after the client's last saved session)."""
    if session is None:
        return None
    text = session.strip().lower()
    if text != "next":
        problem = session_problem(text)
        if problem is not None:
            raise UsageProblem(f"--session: {problem}")
        return int(text)
    if not client:
        raise UsageProblem("--session next needs --client (whose next session?)")
    return max(_saved_sessions(client, rater, scorer, db), default=0) + 1


def refuse_recorded(client: str, session: int, rater: str | None, scorer: Scorer, db: Any) -> None:
    """Stop before any question when the session is already saved (exit 3, as a save would)."""
    if session in _saved_sessions(client, rater, scorer, db):
        raise RejectedInput(
            [],
            message=f"client {client} session {session} ({scorer.instrument.id}, "
            f"{_rater(scorer, rater)}) is already recorded (use --replace to overwrite it, or "
            "--session next)",
        )


def _saved_sessions(client: str, rater: str | None, scorer: Scorer, db: Any) -> list[int]:
    """The session numbers already saved for this client, form and rater (none: no store)."""
    from alliance_cli.store import backend as history

    if not history.exists(history.location(db)):
        return []
    with history.open_store(db, create=False, on_wait=say) as store:
        rows = store.raw_totals(client, scorer.instrument.id, _rater(scorer, rater))
    return [row[0] for row in rows]


def save_outcome(
    outcome: Outcome,
    db: Any,
    replace: bool,
    catalog: Any,
    quiet: bool = False,
    counselor: str | None = None,
    scorer: Scorer | None = None,
) -> None:
    """Record each score in the history and attach the flags the history now raises.

    Every set gets an outcome: saved (and shown), or rejected with its reason (a session
    already recorded, without --replace). One duplicate never stops the sets after it.
    """
    from alliance_cli.core.reading import Settings
    from alliance_cli.store import backend as history
    from alliance_cli.store import views

    kept: list[dict[str, Any]] = []
    wheres: list[str] = []
    refs: list[str | None] = []
    missing = [not d["respondent"]["client_id"] or d["respondent"]["session"] is None
               for d in outcome.scores]  # fmt: skip
    if len(outcome.scores) == 1 and missing[0] and not outcome.wheres[0]:
        # one set from the command line: a usage error, found before any store is opened
        raise UsageProblem("saving needs a client id and a session number (--client, --session)")
    if outcome.scores and all(missing):
        outcome.rejected += [
            (w, ["saving needs a client id and a session"]) for w in outcome.wheres
        ]
        outcome.scores, outcome.wheres, outcome.refs = [], [], []
        return
    all_refs = outcome.refs or [None] * len(outcome.scores)
    from alliance_cli.cli.history import today

    day = today()  # (ALLIANCE_TODAY checked before anything is saved)
    with history.open_store(db, on_wait=say) as store:
        if scorer is not None:  # the definition kept once: each Score is rebuilt from it
            store.define(scorer.instrument.to_data(), scorer.sha256)
        for data, where, ref in zip(outcome.scores, outcome.wheres, all_refs, strict=True):
            try:
                saved = store.record(data, replace=replace, counselor=counselor)
            except (RejectedInput, UsageProblem) as exc:
                outcome.rejected.append((where, [str(exc)]))
                continue
            who = data["respondent"]
            what = f"session {who['session']} for client {who['client_id']}"
            what += f" ({data['instrument']['id']}, {who['rater']})"
            if not quiet:
                say(
                    f"saved {what}"
                    if saved
                    else f"{what} is already recorded with the same answers (nothing to do)"
                )
            _warn_date_order(store, data, day)
            said = views.said_at_save(store, data, catalog, Settings())
            outcome.concerns[len(kept)] = said
            if saved:  # what was said, kept as said: later sessions change the reading only
                store.keep_said_flags(data, said)
            kept.append(data)
            wheres.append(where)
            refs.append(ref)
    outcome.scores, outcome.wheres, outcome.refs = kept, wheres, refs


def _warn_date_order(store: Any, data: dict[str, Any], day: str) -> None:
    """Say when a saved session is dated after ``day`` (today; more than a day ahead: time
    zones), or before an earlier session (or after a later one)."""
    from alliance_cli.core.reading import days_between, future_limit

    who = data["respondent"]
    if not who["date"]:
        dated = [
            rec
            for rec in store.records(who["client_id"], data["instrument"]["id"])
            if rec.rater == who["rater"] and rec.date and rec.session < who["session"]
        ]
        if dated:
            say(
                f"note: session {who['session']} has no date, where session "
                f"{dated[-1].session} has one ({dated[-1].date}); give --date (with --replace "
                "to correct it): days since the last session count from a dated one"
            )
        return
    ahead = days_between(day, who["date"])
    if ahead is not None and who["date"] > future_limit(day):
        say(
            f"note: session {who['session']} is dated {who['date']}, {ahead:,} days after today; "
            "saved as given: check the date (the caseload notes it until corrected)"
        )
    for rec in store.records(who["client_id"], data["instrument"]["id"]):
        if rec.rater != who["rater"] or not rec.date or rec.session == who["session"]:
            continue
        earlier = rec.session < who["session"]
        if (earlier and rec.date > who["date"]) or (not earlier and rec.date < who["date"]):
            say(
                f"note: session {who['session']} is dated {who['date']}, "
                f"{'before' if earlier else 'after'} session {rec.session} ({rec.date}); "
                "check the date or the session number"
            )
            return


def csv_header(scorer: Scorer) -> list[str]:
    """Columns of ``score -f csv``."""
    # (io.csvout is imported where CSV is written: -f json never needs it)
    from alliance_cli.io.csvout import RESPONDENT_COLUMNS, score_columns

    return [*RESPONDENT_COLUMNS, *score_columns(scorer)]


def csv_row(scorer: Scorer, score: dict[str, Any]) -> list[str]:
    """One CSV row for a Score, the same cells batch writes for the same answers."""
    who = score["respondent"]
    ids = [who["client_id"] or "", "" if who["session"] is None else str(who["session"])]
    ids += [who["date"] or "", who["rater"] or ""]
    from alliance_cli.io.csvout import safe_text, score_json_cells

    return [safe_text(c) for c in ids] + score_json_cells(scorer, score)


@dataclass(frozen=True)
class Saving:
    """Where and how scored sets are recorded (``score --save``)."""

    db: Any
    replace: bool
    catalog: Any
    quiet: bool = False
    counselor: str | None = None


def score_and_print(
    scorer: Scorer, sets: Iterable[ResponseSet], fmt: str, saving: Saving | None
) -> bool:
    """Score, save (when asked) and print every set in chunks; True if any was rejected."""
    printer: Printer | None = None
    rejected = False
    for chunk in chunks(sets):
        outcome = score_sets(scorer, chunk)
        if saving is not None:
            save_outcome(
                outcome, saving.db, saving.replace, saving.catalog, saving.quiet, saving.counselor,
                scorer,
            )  # fmt: skip
        printer = printer or Printer(scorer, fmt)
        printer.add(outcome)
        for line in outcome.rejection_lines():
            error_line(line)
        rejected = rejected or bool(outcome.rejected)
        for score in outcome.scores:  # scored, but no scale has a value: not a usable score
            if all(s["mean"] is None for s in score["scales"].values()):
                who = score["respondent"].get("client_id") or "the answers"
                error_line(f"{who}: no scale could be scored (too many answers missing)")
                rejected = True
    (printer or Printer(scorer, fmt)).end()
    return rejected


class Printer:
    """Writes scores as they come: JSON (one array, streamed), NDJSON, CSV, or tables."""

    def __init__(self, scorer: Scorer, fmt: str) -> None:
        self.scorer, self.fmt = scorer, fmt
        self.count = 0
        self.writer: Any = None
        if fmt == "csv":
            from alliance_cli.io.csvout import CsvWriter

            self.writer = CsvWriter(sys.stdout)
        if self.writer is not None:
            self.writer.writerow(csv_header(scorer))
        elif fmt == "json":
            sys.stdout.write("[")
        self.observations: list[dict[str, Any]] = []
        if fmt == "fhir":
            from alliance_cli.io import fhir

            fhir.models()  # says how to install the extra before anything is scored

    def add(self, outcome: Outcome) -> None:
        """Write one chunk's scores (with what the reading said of each saved one)."""
        for i, score in enumerate(outcome.scores):
            said = outcome.concerns.get(i)
            data = score if said is None else dict(score, concerns=said)
            if self.fmt == "fhir":
                from alliance_cli.io import fhir

                ref = outcome.refs[i] if i < len(outcome.refs) else None
                self.observations += fhir.observations(data, ref)
            elif self.fmt == "json":
                text = json.dumps(data, indent=2, ensure_ascii=False).replace("\n", "\n  ")
                sys.stdout.write(("\n  " if self.count == 0 else ",\n  ") + text)
            elif self.fmt == "ndjson":
                sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            elif self.writer is not None:
                from alliance_cli.io.csvout import with_concern_flags

                self.writer.writerow(csv_row(self.scorer, with_concern_flags(score, said)))
            else:
                self._table(score, said)
            self.count += 1

    def _table(self, data: dict[str, Any], said: list[dict[str, Any]] | None) -> None:
        from alliance_cli.core.score import Score
        from alliance_cli.render import terminal as render

        score = Score.model_validate(data)
        view = render.score_view(score, (self.scorer.low, self.scorer.high), concerns=said)
        render.console().print(view)

    def end(self) -> None:
        """Close the JSON array; under tables, the caveat panel for a key below verified."""
        if self.fmt == "json":
            sys.stdout.write("\n]\n" if self.count else "]\n")
        elif self.fmt == "fhir":  # one Bundle of every scale's Observation
            from alliance_cli.io import fhir

            sys.stdout.write(fhir.dumps(fhir.bundle(self.observations), indent=2) + "\n")
        elif self.fmt == "table" and self.count:
            from alliance_cli.render import terminal as render

            inst = self.scorer.instrument
            if inst.verification.status != "verified":
                render.console().print(render.caveat_panel(inst.verification, inst.licence))
