"""FHIR QuestionnaireResponses as batch rows: one row per response, items by linkId."""

from __future__ import annotations

import csv
import io
from typing import IO, Any

from alliance_cli.core.errors import DataFileError, UsageProblem
from alliance_cli.core.words import counted
from alliance_cli.io import fhir
from alliance_cli.io.source import Source, decode_error

ID_COLUMNS = ["client_id", "session", "date", "rater", "response", "subject", "subject_system"]
MAX_FHIR_TEXT = 512 << 20  # characters of one FHIR input (a file is read whole)
KEY_KINDS = ("Questionnaire", "ValueSet")  # resources that give answer weights, not answers


class _Unreadable:
    """A document (or NDJSON line) that is not usable JSON, and why."""

    def __init__(self, why: str) -> None:
        self.why = why


def fhir_source(
    name: str,
    handle: IO[str],
    instrument: Any,
    given: fhir.AnswerKey | None = None,
    rater: str | None = None,
) -> Source:
    """Read a FHIR file (one resource, a Bundle, or NDJSON) into a Source of rows.

    A response that cannot be read (not valid FHIR, another questionnaire's, an item's
    answer that is not a score, none of this form's linkIds) is a rejection naming the
    resource and the linkId; one marked ``entered-in-error`` is left out and counted.
    Questionnaires in the file (alone, or in a Bundle) give answer weights; answers to
    linkIds that are no item of the form are left out and counted in the note.
    """
    fhir.models()  # the extra is needed: say so before reading
    try:
        text = handle.read(MAX_FHIR_TEXT + 1)
    except UnicodeError as exc:
        raise decode_error(name, exc) from None
    finally:
        if name != "stdin":
            handle.close()
    if len(text) > MAX_FHIR_TEXT:  # (read whole: an endless stream must not fill memory)
        raise DataFileError(
            f"{name}: more than {MAX_FHIR_TEXT >> 20:,} MiB of FHIR text: a FHIR input is "
            "read whole; split the export into several files"
        )
    from alliance_cli.io.answers import parse_json

    documents: list[tuple[int, Any]]
    whole, why = parse_json(text)
    if why is None:
        documents = [(1, whole)]
    elif why.startswith("not valid JSON"):  # perhaps NDJSON: one resource per line
        documents = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            doc, why = parse_json(line)
            documents.append((number, doc if why is None else _Unreadable(why)))
    else:  # a key given twice, too deep, a number too long: the whole file is one document
        documents = [(1, _Unreadable(why))]
    beside = [
        key
        for _, doc in documents
        if not isinstance(doc, _Unreadable)
        for key in fhir.answer_keys(doc)
    ]
    items = [str(item.id) for item in instrument.items]
    out = io.StringIO()
    from alliance_cli.io.csvout import CsvWriter

    writer = CsvWriter(out, guard=False)  # read back by the engine, never a file
    writer.writerow(ID_COLUMNS + [f"linkId {i}" for i in items])
    lines: list[int] = []
    labels: list[str] = []
    early: list[tuple[int, str, str, str, str]] = []
    excluded: dict[str, int] = {}
    count = 0
    ignored: dict[str, int] = {}  # answers to linkIds that are no item of the form
    for number, doc in documents:
        if isinstance(doc, _Unreadable):
            early.append((number, "", "", doc.why, ""))
            continue
        if fhir.is_fhir(doc) and doc.get("resourceType") in KEY_KINDS:
            continue  # a Questionnaire (or ValueSet) beside the responses: weights, read above
        try:
            found = list(fhir.responses(doc, "")) if fhir.is_fhir(doc) else None
        except UsageProblem as exc:
            early.append((number, "", "", str(exc).lstrip(), ""))
            continue
        if found is None:
            why = "not a FHIR resource (no resourceType)"
            if isinstance(doc, dict) and "SurveyEntry" in doc:  # a .qsf file
                why = (
                    "a Qualtrics survey definition (QSF), not its responses: export the "
                    "responses as CSV (Data & Analysis, Export Data)"
                )
            early.append((number, "", "", why, ""))
            continue
        for label, resource in found:
            count += 1
            label = label.strip()
            if resource is not None and resource.get("status") == "entered-in-error":
                excluded["entered in error"] = excluded.get("entered in error", 0) + 1
                continue
            try:
                answers, who, ref, others = fhir.read_response(
                    resource, label, instrument, given, beside, rater
                )
            except UsageProblem as exc:
                early.append((number, "", "", str(exc), ""))
                continue
            for link in others:
                ignored[link] = ignored.get(link, 0) + 1
            cells = [
                who["client_id"] or "",
                "" if who["session"] is None else str(who["session"]),
                who["date"] or "",
                who["rater"] or "",
                ref or "",
                who.get("subject_reference") or "",
                who.get("subject_system") or "",
            ]
            cells += ["" if answers.get(i) is None else str(answers[i]) for i in items]
            writer.writerow(cells)
            lines.append(number)
            labels.append(label)
    if count == 0 and beside and not early:
        raise UsageProblem(
            f"{name}: holds a Questionnaire and no QuestionnaireResponse: give it with "
            f"--questionnaire {name}, and the responses as the input"
        )
    handle_out = io.StringIO(out.getvalue())
    header = next(csv.reader([handle_out.readline()]))
    source = Source(name, handle_out, header, ",", layout="fhir")
    source.line_of = lambda line: lines[line - 2]
    source.label_of = lambda line: labels[line - 2]
    source.early = early
    source.excluded = excluded
    weights = f"; weights from {given.url or 'the Questionnaire given'}" if given else ""
    source.note = (
        f"layout: FHIR in {name} ({counted(count, 'QuestionnaireResponse resource')}; answers by "
        f"linkId{weights}; validated with fhir.resources)"
    )
    if ignored:
        links = sorted(ignored, key=fhir.link_order)
        n = sum(ignored.values())
        source.note += (
            f"; {counted(n, 'answer')} to linkIds that are no item of "
            f"{instrument.id!r} left out ({', '.join(links[:6])}{', …' if len(links) > 6 else ''})"
        )
    return source
