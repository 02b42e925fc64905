"""FHIR R4: the form as a Questionnaire, answers from QuestionnaireResponses, scores back out
as Observations. Everything read and written is checked with ``fhir.resources`` (an
optional extra, imported only here and only when FHIR is used).

``fhir.resources`` ships no R4 package since 7.0 (its default is R5); its R4B models are
used, since R4B changed nothing in the Questionnaire, QuestionnaireResponse, Observation
and Bundle structures alliance reads or writes (R4B is a technical correction of R4).

Rules for reading (``../shared/real-formats/NOTES.md`` section 3): answers are matched by
``linkId``, walking ``item[].item[]`` and ``item[].answer[].item[]``; a value is
``valueInteger``, ``valueDecimal``, a numeric ``valueString``, or a ``valueCoding`` whose
weight (``itemWeight``, formerly ``ordinalValue``) or numeric code gives it; a
data-absent coding is missing, never 0. An embedded total is never trusted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from alliance_cli.core.errors import UsageProblem
from alliance_cli.io.forms import value_text

CANONICAL = "urn:alliance:questionnaire:"  # + instrument id: our Questionnaire's url
SESSION_EXT = "urn:alliance:session"  # extension on a QuestionnaireResponse: session number
WEIGHT_URLS = (
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
)
ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
UCUM = "http://unitsofmeasure.org"
EXTRA = "pip install 'alliance[fhir]' (or: pip install 'fhir.resources>=8,<9')"


def models() -> Any:
    """The fhir.resources R4B modules, or a usage error saying how to install them."""
    try:
        from fhir.resources.R4B import bundle, observation, questionnaire, questionnaireresponse
    except ImportError:
        raise UsageProblem(f"FHIR needs the optional fhir.resources package: {EXTRA}") from None
    return {
        "Bundle": bundle.Bundle,
        "Observation": observation.Observation,
        "Questionnaire": questionnaire.Questionnaire,
        "QuestionnaireResponse": questionnaireresponse.QuestionnaireResponse,
    }


def check(resource: dict[str, Any], where: str) -> None:
    """Validate one resource with fhir.resources; a problem names where and the field."""
    from pydantic import ValidationError

    kind = resource.get("resourceType")
    model = models().get(kind)
    if model is None:
        raise UsageProblem(f"{where}: resourceType {kind!r} is not one alliance reads")
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or "(resource)"
        message = str(first.get("msg", "invalid")).splitlines()[0]
        raise UsageProblem(f"{where}: not a valid FHIR {kind}: {field}: {message}") from None


# -- the form out --------------------------------------------------------------------------
def questionnaire(instrument: Any, sha256: str) -> dict[str, Any]:
    """Our instrument as a FHIR Questionnaire: our labels (never published wording), the
    scale as weighted answer options (or a decimal item for a visual-analogue scale), the
    citation, verification level and licence note."""
    scale = instrument.scale
    whole = float(scale.step).is_integer() and float(scale.min).is_integer()
    status = "draft" if instrument.verification.status == "draft" else "active"
    items: list[dict[str, Any]] = []
    for item in instrument.items:
        one: dict[str, Any] = {"linkId": str(item.id), "text": item.label, "required": False}
        if whole:
            one["type"] = "choice"
            one["answerOption"] = [
                {
                    "valueCoding": {
                        "system": f"{CANONICAL}{instrument.id}:answers",
                        "code": value_text(value),
                        "display": scale.labels.get(value, value_text(value)),
                    },
                    "extension": [{"url": WEIGHT_URLS[0], "valueDecimal": value}],
                }
                for value in scale.points()
            ]
        else:
            one["type"] = "decimal"
            one["extension"] = [
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/minValue",
                    "valueDecimal": scale.min,
                },
                {
                    "url": "http://hl7.org/fhir/StructureDefinition/maxValue",
                    "valueDecimal": scale.max,
                },
            ]
        items.append(one)
    resource = {
        "resourceType": "Questionnaire",
        "id": instrument.id,
        "url": f"{CANONICAL}{instrument.id}",
        "version": str(instrument.version),
        "name": "".join(ch for ch in instrument.short_name or instrument.id if ch.isalnum()),
        "title": instrument.name,
        "status": status,
        "subjectType": ["Patient"],
        "description": (
            f"Scoring structure for {instrument.name}, as alliance scores it (key "
            f"{instrument.verification.status}; definition SHA-256 {sha256}). Item texts are "
            f"short labels in alliance's own words, not the published wording. Source: "
            f"{' '.join(instrument.citation.split())}"
        ),
        "copyright": " ".join(instrument.licence.split()),
        "item": items,
    }
    check(resource, f"Questionnaire/{instrument.id}")
    return resource


# -- answers in ----------------------------------------------------------------------------
def is_fhir(obj: Any) -> bool:
    """Whether a parsed JSON value is a FHIR resource (a ``resourceType``)."""
    return isinstance(obj, dict) and "resourceType" in obj


MAX_DEPTH = 100  # JSON levels in one resource (a real form nests its groups a few deep)


def too_deep(obj: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether a parsed JSON value nests deeper than ``limit`` (counted without recursion)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def responses(obj: Any, where: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """QuestionnaireResponses in a resource: itself, or a Bundle's entries, each with its
    label (``where QuestionnaireResponse/ID`` or ``where entry[N]``). A Bundle entry with
    no resource comes as None, so that it alone is rejected (``read_response`` says so)."""
    if too_deep(obj):
        raise UsageProblem(
            f"{where + ': ' if where.strip() else ''}nested deeper than {MAX_DEPTH} levels; "
            "not read"
        )
    kind = obj.get("resourceType")
    if kind == "Bundle":
        check(obj, f"{where} Bundle".strip())
        for n, entry in enumerate(obj.get("entry") or []):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            label = f"{where} entry[{n}]"
            if not isinstance(resource, dict):
                yield label, None
                continue
            if resource.get("resourceType") == "QuestionnaireResponse":
                yield _label(resource, label), resource
        return
    if kind != "QuestionnaireResponse":
        raise UsageProblem(
            f"{where + ': ' if where.strip() else ''}a FHIR {kind}; alliance reads "
            "QuestionnaireResponse resources (alone, in a Bundle, or one per NDJSON line)"
        )
    yield _label(obj, where), obj


def _label(resource: dict[str, Any], where: str) -> str:
    rid = resource.get("id")
    return f"{where} QuestionnaireResponse/{rid}" if rid else f"{where} QuestionnaireResponse"


def read_response(
    resource: dict[str, Any] | None, label: str, instrument: Any
) -> tuple[dict[str, Any], dict[str, Any], str | None]:
    """(answers by item id, respondent, the response's reference) from one
    QuestionnaireResponse, validated first. Errors name the resource and the linkId."""
    if resource is None:
        raise UsageProblem(f"{label.strip()}: no resource in this Bundle entry")
    check(resource, label)
    named = resource.get("questionnaire")
    ours = f"{CANONICAL}{instrument.id}"
    if isinstance(named, str) and named.startswith(CANONICAL) and named.split("|")[0] != ours:
        raise UsageProblem(
            f"{label}: answers {named!r}, but this is scoring {instrument.id!r} (score it with "
            "that instrument)"
        )
    items = {str(item.id) for item in instrument.items}
    answers: dict[str, Any] = {}
    for link, value in _walk(resource.get("item") or [], label):
        if link not in items:
            continue  # other questions of the form (demographics, notes): not ours
        if link in answers:
            raise UsageProblem(f"{label}: linkId {link}: answered twice")
        answers[link] = value
    if not answers:
        raise UsageProblem(
            f"{label}: no answer with a linkId of {instrument.id!r} (its linkIds are "
            f"{', '.join(sorted(items, key=_order))})"
        )
    who = {
        "client_id": _subject(resource.get("subject")),
        "session": _session(resource, label),
        "date": (resource.get("authored") or "")[:10] or None,
        "rater": _rater(resource.get("author") or resource.get("source")),
    }
    rid = resource.get("id")
    return answers, who, f"QuestionnaireResponse/{rid}" if rid else None


def _order(link: str) -> tuple[int, str]:
    return (int(link), "") if link.isdigit() else (1 << 30, link)


def _walk(items: list[Any], label: str) -> Iterator[tuple[str, Any]]:
    for item in items:
        link = str(item.get("linkId", ""))
        for answer in item.get("answer") or []:
            yield link, _value(answer, f"{label}: linkId {link}")
            yield from _walk(answer.get("item") or [], label)
        yield from _walk(item.get("item") or [], label)


def _value(answer: Mapping[str, Any], where: str) -> Any:
    for key in ("valueInteger", "valueDecimal"):
        if key in answer:
            return answer[key]
    if "valueString" in answer:
        return str(answer["valueString"])
    if "valueCoding" in answer:
        coding = answer["valueCoding"]
        if coding.get("system") == ABSENT:
            return None  # asked, declined: missing, never 0
        for ext in [*(coding.get("extension") or []), *(answer.get("extension") or [])]:
            if ext.get("url") in WEIGHT_URLS and "valueDecimal" in ext:
                return ext["valueDecimal"]
        code = str(coding.get("code", ""))
        try:
            float(code)
        except ValueError:
            raise UsageProblem(
                f"{where}: the coding {code!r} carries no weight (itemWeight) and is not a "
                "number; alliance cannot tell its value"
            ) from None
        return code
    kinds = [k for k in answer if k.startswith("value")]
    raise UsageProblem(f"{where}: a {kinds[0] if kinds else 'missing'} answer is not a score")


def _subject(subject: Any) -> str | None:
    if not isinstance(subject, dict):
        return None
    ident = subject.get("identifier")
    if isinstance(ident, dict) and ident.get("value"):
        return str(ident["value"])
    ref = subject.get("reference")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def _session(resource: dict[str, Any], label: str) -> int | None:
    for ext in resource.get("extension") or []:
        if ext.get("url") == SESSION_EXT:
            value = ext.get("valueInteger", ext.get("valuePositiveInt"))
            if not isinstance(value, int) or value < 1:
                raise UsageProblem(f"{label}: extension {SESSION_EXT}: not a session number")
            return value
    return None


def _rater(author: Any) -> str | None:
    ref = author.get("reference", "") if isinstance(author, dict) else ""
    if ref.startswith(("Practitioner/", "PractitionerRole/")):
        return "therapist"
    if ref.startswith(("Patient/", "RelatedPerson/")):
        return "client"
    return None


# -- scores out ----------------------------------------------------------------------------
def observations(score: dict[str, Any], derived_from: str | None = None) -> list[dict[str, Any]]:
    """One Observation per scale of a Score: the instrument's metric as a ``{score}``
    quantity, POMP as a component, the response it came from in ``derivedFrom``."""
    inst, who = score["instrument"], score["respondent"]
    metric = score["metric"]
    out: list[dict[str, Any]] = []
    for sid, scale in score["scales"].items():
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {"system": f"{CANONICAL}{inst['id']}", "code": sid, "display": scale["name"]}
                ],
                "text": f"{inst['id']} {scale['name']} ({metric})",
            },
        }
        if who.get("client_id"):
            obs["subject"] = {"identifier": {"value": str(who["client_id"])}}
        if who.get("date"):
            obs["effectiveDateTime"] = who["date"]
        value = scale.get(metric)
        if value is None:
            obs["dataAbsentReason"] = {
                "coding": [{"system": ABSENT, "code": "not-performed"}],
                "text": scale.get("missing_reason") or "too many items missing",
            }
        else:
            obs["valueQuantity"] = {
                "value": value,
                "unit": "{score}",
                "system": UCUM,
                "code": "{score}",
            }
            if scale.get("pomp") is not None:
                obs["component"] = [
                    {
                        "code": {"text": "POMP (percent of maximum possible)"},
                        "valueQuantity": {
                            "value": scale["pomp"],
                            "unit": "%",
                            "system": UCUM,
                            "code": "%",
                        },
                    }
                ]
        if derived_from:
            obs["derivedFrom"] = [{"reference": derived_from}]
        obs["note"] = [
            {
                "text": f"Scored by alliance; key {inst['verification']}; definition SHA-256 "
                f"{inst['sha256']}"
            }
        ]
        check(obs, f"Observation ({inst['id']} {sid})")
        out.append(obs)
    return out


def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A collection Bundle of resources, validated."""
    result = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    check(result, "Bundle")
    return result


def dumps(resource: dict[str, Any], indent: int | None = None) -> str:
    """JSON text of a resource (UTF-8 as it is)."""
    return json.dumps(resource, ensure_ascii=False, indent=indent)
