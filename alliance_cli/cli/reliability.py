"""alliance reliability: how reliable each scale is in a clinic's own data (alpha, Feldt's
interval, the mean inter-item correlation, item statistics), read as batch reads a file."""

import collections
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from alliance_cli.cli.common import (
    ColumnsOpt,
    DbOpt,
    EncodingOpt,
    FhirRaterOpt,
    FormatOpt,
    IdColumnOpt,
    InstrumentIdOpt,
    ItemColumnOpt,
    MapOpt,
    QuestionnaireOpt,
    QuietOpt,
    RecodeOpt,
    ValueColumnOpt,
    fhir_rater,
    funnel,
    output,
    pick_format,
    progress_of,
    run_catalog,
    say,
    which_instrument,
)
from alliance_cli.core.errors import RejectedInput
from alliance_cli.core.words import counted

FilesArg = Annotated[
    list[str] | None,
    typer.Argument(help="Exports to read (as batch reads them).", metavar="[FILE...]"),
]
LayoutNameOpt = Annotated[
    str, typer.Option("--layout", help="auto, csv, redcap, qualtrics or long.")
]
FromHistoryOpt = Annotated[
    bool, typer.Option("--from-history", help="Read the answers saved in the history instead.")
]
HistorySessionOpt = Annotated[
    int | None,
    typer.Option(
        "--session",
        help="Only this session number (1: each client's first, one row per client).",
        min=1,
    ),
]

OmegaOpt = Annotated[
    bool,
    typer.Option(
        "--omega/--no-omega",
        help="McDonald's omega (needs the omega extra: numpy and scipy).",
    ),
]


@funnel
def reliability_command(
    instrument: InstrumentIdOpt = None,
    files: FilesArg = None,
    columns: ColumnsOpt = None,
    map_file: MapOpt = None,
    questionnaire: QuestionnaireOpt = None,
    rater: FhirRaterOpt = None,
    layout: LayoutNameOpt = "auto",
    id_column: IdColumnOpt = None,
    item_column: ItemColumnOpt = None,
    value_column: ValueColumnOpt = None,
    recode: RecodeOpt = None,
    encoding: EncodingOpt = "utf-8",
    from_history: FromHistoryOpt = False,
    session: HistorySessionOpt = None,
    db: DbOpt = None,
    omega: OmegaOpt = True,
    quiet: QuietOpt = False,
    fmt: FormatOpt = None,
) -> int:
    """Reliability of each scale in your data: alpha (Feldt's 95 % interval), omega, items."""
    answers, scorer, source, rejected = _read(
        "reliability", files=files, instrument=instrument, columns=columns, map_file=map_file,
        questionnaire=questionnaire, rater=rater, layout=layout, id_column=id_column,
        item_column=item_column, value_column=value_column, recode=recode, encoding=encoding,
        from_history=from_history, session=session, db=db, quiet=quiet,
    )  # fmt: skip
    code = _report(answers, scorer, source, fmt, quiet, omega)
    return 3 if rejected else code  # rows rejected: exit 3, as batch


def _read(
    what: str,
    *,
    files: list[str] | None,
    instrument: str | None,
    columns: str | None,
    map_file: Path | None,
    questionnaire: Path | None,
    rater: str | None,
    layout: str,
    id_column: str | None,
    item_column: str | None,
    value_column: str | None,
    recode: str | None,
    encoding: str,
    from_history: bool,
    session: int | None,
    db: str | None,
    quiet: bool,
    output: str | None = None,
) -> tuple[list[Any], Any, str, int]:
    """(answers in item order, the Scorer, where they came from, rows rejected): files read
    as batch reads them, or the answers saved in the history (one session number, when
    given). An ``output`` (norms' ``-o``) is checked first, as batch checks its own: it
    may be no file the run reads."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.batch.run import check_outputs, collect_answers, note_option_files
    from alliance_cli.cli import score_sets
    from alliance_cli.core.errors import UsageProblem
    from alliance_cli.io import layouts

    if bool(files) == from_history:
        raise UsageProblem("give FILE..., or --from-history (not both)")
    catalog = run_catalog(quiet=quiet)
    if instrument is None:
        raise UsageProblem(which_instrument(files, catalog, encoding))
    scorer = score_sets.make_scorer(catalog.get(instrument), "reject")
    if from_history:
        from alliance_cli.core.reliability import keyed_rows
        from alliance_cli.store import backend as history

        if output is not None:
            history.note_history(db)  # the history is read: never the output
            check_outputs([("-o", output)], [])
        with history.open_store(db, create=False, on_wait=say) as store:
            kept = store.answers_of(scorer.instrument.id, session)
        stored = keyed_rows(scorer, [answers for _client, answers in kept])
        where = f"session {session} of " if session is not None else ""
        if not quiet:
            say(f"{what}: {len(stored):,} answer sets from {where}the history "
                f"({scorer.instrument.id}); each scale on its complete cases")  # fmt: skip
        per_client = collections.Counter(client for client, _answers in kept)
        sets = counted(len(stored), "answer set")
        sample = f"{sets}{_clients(per_client)} from {where}the history"
        _say_repeated(what, per_client, len(stored), quiet)
        return stored, scorer, sample, 0
    assert files is not None
    options = BatchOptions(
        template=columns, map_file=map_file, layout=layout, encoding=encoding,
        recode=layouts.parse_recode(recode) or None,
        known_ids=tuple(catalog.sources), item_count=catalog.item_count,
        questionnaire=questionnaire, fhir_rater=fhir_rater(rater),
        id_names={"client_id": id_column}, item_column=item_column, value_column=value_column,
    )  # fmt: skip
    if output is not None:
        note_option_files(options)
        check_outputs([("-o", output)], files)
    rejected: list[Any] = []
    try:
        size = sum(os.path.getsize(f) for f in files if f != "-") or 0
    except OSError:  # a missing file is told by the reading itself
        size = 0
    with progress_of(f"{what}: reading", quiet) as bar:
        got = collect_answers(
            files, scorer, options, rejected.append, (lambda _n: None) if quiet else say,
            (lambda _rows, done: bar(done, size)) if bar is not None and size else None,
            session=session,
        )  # fmt: skip
    stats = got.stats
    for r in rejected[:5]:
        say(f"rejected: {r}")
    others = f", {got.other_sessions:,} of other sessions left out" if session is not None else ""
    if not quiet:
        say(
            f"{what}: {counted(stats.read, 'row')} read, {stats.scored:,} scored, "
            f"{stats.rejected:,} rejected{stats.left_out()}{others}; each scale on its complete "
            "cases (rows with every item of the scale answered)"
        )
    _say_repeated(what, got.per_client, len(got.rows), quiet)
    where = f" of session {session}" if session is not None else ""
    sample = f"{counted(len(got.rows), 'row')}{where}{_clients(got.per_client)}"
    sample += f" of {', '.join(files)}"
    return got.rows, scorer, sample, stats.rejected


def _clients(per_client: collections.Counter[str]) -> str:
    """ " (N clients)" for a sample's description, or "" when the rows name no client."""
    return f" ({counted(len(per_client), 'client')})" if per_client else ""


def _say_repeated(what: str, per_client: collections.Counter[str], rows: int, quiet: bool) -> None:
    """Say, once, that some client gave more than one row: such rows are not independent."""
    most = max(per_client.values(), default=0)
    if quiet or most < 2:
        return
    say(
        f"note: {what}: the {rows:,} rows come from {counted(len(per_client), 'client')} (up to "
        f"{most} each): one client's sessions are not independent, so Feldt's interval is too "
        "narrow and an SD mixes change within clients with differences between them; "
        "--session 1 reads each client's first session"
    )


@funnel
def norms_command(
    instrument: InstrumentIdOpt = None,
    files: FilesArg = None,
    output_file: Annotated[
        str, typer.Option("--output", "-o", metavar="FILE", help="Write the norms here (YAML).")
    ] = "-",
    columns: ColumnsOpt = None,
    map_file: MapOpt = None,
    questionnaire: QuestionnaireOpt = None,
    rater: FhirRaterOpt = None,
    layout: LayoutNameOpt = "auto",
    id_column: IdColumnOpt = None,
    item_column: ItemColumnOpt = None,
    value_column: ValueColumnOpt = None,
    recode: RecodeOpt = None,
    encoding: EncodingOpt = "utf-8",
    from_history: FromHistoryOpt = False,
    session: HistorySessionOpt = None,
    db: DbOpt = None,
    quiet: QuietOpt = False,
) -> int:
    """Write local norms from your data (mean, SD, alpha, n per scale) for --norms FILE."""
    from datetime import date

    from alliance_cli.core.reliability import form_reliability
    from alliance_cli.io.files import safe_writer
    from alliance_cli.io.norms import norms_document

    answers, scorer, source, rejected = _read(
        "norms", files=files, instrument=instrument, columns=columns, map_file=map_file,
        questionnaire=questionnaire, rater=rater, layout=layout, id_column=id_column,
        item_column=item_column, value_column=value_column, recode=recode, encoding=encoding,
        from_history=from_history, session=session, db=db, quiet=quiet, output=output_file,
    )  # fmt: skip
    problems: list[str] = []
    scales = form_reliability(scorer, answers, problems, omega=False)  # (norms keep no omega)
    if problems or not scales:
        raise RejectedInput(
            [], message=f"{source}: {'; '.join(problems) or 'no scale'}: no norms written"
        )
    inst = scorer.instrument
    few = [f"{s.scale} ({s.n})" for s in scales if s.n < NORMS_MIN_CASES]
    if few:
        raise RejectedInput(
            [],
            message=f"{source}: local norms need {NORMS_MIN_CASES} complete cases per scale; "
            f"fewer for {', '.join(few)}: no norms written",
        )
    values = {}
    for scale in scales:  # (one-line scales have no alpha, so no local norms)
        mean, sd = scale.score_mean_sd(inst.metric)
        values[scale.scale] = {"mean": round(mean, 6), "sd": round(sd, 6),
                               "reliability": round(scale.alpha, 6), "n": scale.n}  # fmt: skip
    text = norms_document(inst.id, scorer.sha256, inst.metric, source,
                          date.today().isoformat(), values)  # fmt: skip
    with safe_writer(output_file) as out:
        out.write(text)
    if output_file != "-" and not quiet:
        say(f"norms: wrote {output_file} ({inst.id}, level local, {source})")
    return 3 if rejected else 0  # rows rejected: exit 3, as batch


NORMS_MIN_CASES = 30  # complete cases a scale needs before its norms are written


def _report(
    answers: list[Any], scorer: Any, source: str, fmt: Any, quiet: bool, omega: bool
) -> int:
    """Compute, warn and print each scale's reliability."""
    from alliance_cli.core.reliability import form_reliability

    problems: list[str] = []
    scales = form_reliability(scorer, answers, problems, omega)
    for problem in problems:  # a scale that cannot be computed: said, never a NaN
        say(f"note: {problem}; this scale is left out")
    for scale in scales if not quiet else ():  # (also in the output's "warnings")
        for warning in scale.against():
            say(f"warning: {scale.scale}: {warning}")
    if not scales:
        raise RejectedInput([], message=f"{source}: no scale could be computed")
    if omega and scales and scales[0].omega is None and not quiet:
        say("note: omega needs the optional factor model: pip install 'alliance[omega]'")
    records = [_record(s) for s in scales]
    output(pick_format(fmt), records, lambda render: render.reliability_view(records),
           lambda handle: _csv(handle, records))  # fmt: skip
    return 3 if problems else 0


def _record(scale: Any) -> dict[str, Any]:
    from alliance_cli.core.reliability import OMEGA_ESTIMATOR

    def r6(x: float) -> float:
        return round(x, 6)

    return {
        "scale": scale.scale,
        "n": scale.n,
        "items": scale.items,
        "missing": "complete cases: rows with every item of the scale answered",
        "alpha": r6(scale.alpha),
        "alpha_ci95": [r6(scale.ci_low), r6(scale.ci_high)],
        "ci_method": "Feldt",
        "omega_total": None if scale.omega is None else r6(scale.omega),
        "omega_estimator": OMEGA_ESTIMATOR if scale.omega is not None else None,
        "std_alpha": r6(scale.std_alpha),
        "average_r": r6(scale.average_r),
        "item_stats": [
            {
                "item": s.item,
                "mean": r6(s.mean),
                "sd": r6(s.sd),
                "r_drop": r6(s.r_drop),
                "alpha_if_deleted": r6(s.alpha_if_deleted),
            }
            for s in scale.item_stats
        ],
        "warnings": scale.against(),
    }


def _csv(handle: Any, records: list[dict[str, Any]]) -> None:
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(handle)
    writer.writerow(
        ["scale", "item", "n", "alpha", "alpha_ci_low", "alpha_ci_high", "std_alpha",
         "average_r", "mean", "sd", "r_drop", "alpha_if_deleted", "omega_total"]
    )  # fmt: skip
    for r in records:
        low, high = r["alpha_ci95"]
        omega = "" if r["omega_total"] is None else r["omega_total"]
        writer.writerow([r["scale"], "", r["n"], r["alpha"], low, high, r["std_alpha"],
                         r["average_r"], "", "", "", "", omega])  # fmt: skip
        for s in r["item_stats"]:
            writer.writerow([r["scale"], s["item"], r["n"], "", "", "", "", "", s["mean"],
                             s["sd"], s["r_drop"], s["alpha_if_deleted"], ""])  # fmt: skip
