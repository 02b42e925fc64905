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
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from alliance_cli.core.errors import UsageProblem
from alliance_cli.io.forms import scale_rules, value_text

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
    keyed = {str(item.id): item.reverse for item in instrument.items}
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
                    # the scored weight: reverse keys applied, so weights add up to the score
                    "extension": [
                        {
                            "url": WEIGHT_URLS[0],
                            "valueDecimal": _number(
                                scale.min + scale.max - value if item.reverse else value
                            ),
                        }
                    ],
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
    if status == "active":  # a draft has no key, so no score to compute
        items += _score_items(instrument, keyed, whole)
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


CALCULATED = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"


def _number(value: float) -> float | int:
    """A whole number as an int (``7``, not ``7.0``), for JSON a person reads."""
    return int(value) if float(value).is_integer() else value


def _score_items(instrument: Any, keyed: dict[str, bool], whole: bool) -> list[dict[str, Any]]:
    """One read-only item per scale (the subscales, then the total) whose SDC
    ``calculatedExpression`` computes alliance's score from the answers: the answer's raw
    value (its code, or the decimal), reversed where keyed, the scale's missing-answer rule
    (at most ``max_missing`` unanswered, the mean of those answered) and its metric (a sum is
    that mean times the scale's items, as alliance prorates it). Plain FHIRPath (combine,
    count, avg, iif): any SDC engine computes it, none needs ``weight()``."""
    scale = instrument.scale
    top = scale.min + scale.max
    out = []
    for sid, name, links, max_missing in scale_rules(instrument):
        values = []
        for link in links:
            value = f"%resource.repeat(item).where(linkId='{link}').answer.value"
            value += ".code.toDecimal()" if whole else ".toDecimal()"  # (a number either way)
            values.append(f"({value_text(top)} - {value})" if keyed[link] else value)
        answered = values[0] + "".join(f".combine({v})" for v in values[1:])
        need = len(links) - max_missing
        score = f"({answered}).avg()" + (f" * {len(links)}" if instrument.metric == "sum" else "")
        out.append(
            {
                "linkId": f"score-{sid}",
                "text": f"{name} ({instrument.metric} of items {', '.join(links)}; "
                f"at most {max_missing} unanswered)",
                "type": "decimal",
                "readOnly": True,
                "required": False,
                "extension": [
                    {
                        "url": CALCULATED,
                        "valueExpression": {
                            "language": "text/fhirpath",
                            "expression": f"iif(({answered}).count() >= {need}, {score}, {{}})",
                        },
                    }
                ],
            }
        )
    return out


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


class AnswerKey:
    """A Questionnaire's answer weights, by linkId and coding: from ``answerOption`` (the
    option's ``itemWeight``/``ordinalValue``, or its coding's) and from the concepts of the
    ValueSets an item names with ``answerValueSet`` (contained, ``#id``, or given alongside
    by url). Codings are matched on (system, code), or on the code alone when the response's
    coding has no system (SDC's examples)."""

    def __init__(self, questionnaire: Mapping[str, Any], value_sets: Mapping[str, Any]) -> None:
        url, rid = questionnaire.get("url"), questionnaire.get("id")
        self.url: str | None = url if isinstance(url, str) and url else None
        self.id: str | None = rid if isinstance(rid, str) and rid else None
        self.weights: dict[str, dict[tuple[str | None, str], float]] = {}
        held = questionnaire.get("contained")
        contained = {
            f"#{r.get('id')}": r
            for r in (held if isinstance(held, list) else [])
            if isinstance(r, dict) and r.get("resourceType") == "ValueSet"
        }
        sets = {**value_sets, **contained}
        items = questionnaire.get("item")
        stack = list(items) if isinstance(items, list) else []
        while stack:
            item = stack.pop()
            if not isinstance(item, dict):
                continue
            nested = item.get("item")
            stack.extend(nested if isinstance(nested, list) else [])
            table: dict[tuple[str | None, str], float] = {}
            options = item.get("answerOption")
            for option in options if isinstance(options, list) else []:
                coding = option.get("valueCoding") if isinstance(option, dict) else None
                if isinstance(coding, dict) and "code" in coding:
                    weight = _weight(option)
                    weight = _weight(coding) if weight is None else weight
                    if weight is not None:
                        table[(coding.get("system"), str(coding["code"]))] = weight
            named = sets.get(str(item.get("answerValueSet", "")).split("|")[0])
            compose = named.get("compose") if isinstance(named, dict) else None
            includes = compose.get("include") if isinstance(compose, dict) else None
            for include in includes if isinstance(includes, list) else []:
                concepts = include.get("concept") if isinstance(include, dict) else None
                for concept in concepts if isinstance(concepts, list) else []:
                    if not isinstance(concept, dict):
                        continue
                    weight = _weight(concept)
                    if weight is not None and "code" in concept:
                        table[(include.get("system"), str(concept["code"]))] = weight
            for (_, code), weight in list(table.items()):
                table.setdefault((None, code), weight)
            if table:
                self.weights[str(item.get("linkId", ""))] = table

    def names(self, reference: str) -> bool:
        """Whether a response's ``questionnaire`` (a canonical, perhaps ``|version``, or a
        relative ``Questionnaire/id``) names this Questionnaire."""
        base = reference.split("|")[0]
        if self.url and (base == self.url or self.url.endswith("/" + base)):
            return True
        return bool(self.id) and base in (f"Questionnaire/{self.id}", f"#{self.id}")

    def weight(self, link: str, coding: Mapping[str, Any]) -> float | None:
        """The weight of a coding answered to ``link``, or None when the key has none."""
        table = self.weights.get(link) or {}
        code = str(coding.get("code", ""))
        found = table.get((coding.get("system"), code))
        return found if found is not None else table.get((None, code))


def _weight(element: Any) -> float | None:
    for ext in (element.get("extension") or []) if isinstance(element, dict) else []:
        if isinstance(ext, dict) and ext.get("url") in WEIGHT_URLS:
            value = ext.get("valueDecimal", ext.get("valueInteger"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
    return None


def answer_keys(obj: Any) -> list[AnswerKey]:
    """The Questionnaires in a parsed document (one, or a Bundle's), as answer keys; the
    ValueSets beside them resolve ``answerValueSet`` by url."""
    entries = obj.get("entry") if isinstance(obj, dict) else None
    resources = (
        [e.get("resource") for e in entries if isinstance(e, dict)]
        if isinstance(obj, dict)
        and obj.get("resourceType") == "Bundle"
        and isinstance(entries, list)
        else [obj]
    )
    sets = {
        str(r.get("url")): r
        for r in resources
        if isinstance(r, dict) and r.get("resourceType") == "ValueSet" and r.get("url")
    }
    return [
        AnswerKey(r, sets)
        for r in resources
        if isinstance(r, dict) and r.get("resourceType") == "Questionnaire"
    ]


ITEM_LIKE = re.compile(r"\d+\Z")  # a linkId numbered as a form's items are


def read_response(
    resource: dict[str, Any] | None,
    label: str,
    instrument: Any,
    given: AnswerKey | None = None,
    beside: Sequence[AnswerKey] = (),
    rater: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any], str | None, list[str]]:
    """(answers by item id, respondent, the response's reference, the linkIds answered
    that are no item of the form) from one QuestionnaireResponse, validated first. Errors
    name the resource and the linkId.

    A response is this instrument's when its ``questionnaire`` names our Questionnaire or
    the one given (``--questionnaire``), or, naming none, when every numbered linkId it
    answers is one of the form's items. Weights come from the answer itself, then from the
    given Questionnaire, then from one the response contains or the file carries."""
    if resource is None:
        raise UsageProblem(f"{label.strip()}: no resource in this Bundle entry")
    check(resource, label)
    named = resource.get("questionnaire")
    ours = f"{CANONICAL}{instrument.id}"
    items = {str(item.id): item for item in instrument.items}
    found = _walk(resource.get("item") or [])
    held = resource.get("contained")
    contained = [
        AnswerKey(r, {})
        for r in (held if isinstance(held, list) else [])
        if isinstance(r, dict) and r.get("resourceType") == "Questionnaire"
    ]
    key = given
    if isinstance(named, str) and named.strip():
        if named.split("|")[0] != ours and not (given is not None and given.names(named)):
            also = f" or {given.url!r}" if given is not None and given.url else ""
            raise UsageProblem(
                f"{label}: answers questionnaire {named!r}, not {instrument.id!r} ({ours!r}"
                f"{also}): score it with its own instrument, or give its Questionnaire with "
                "--questionnaire FILE"
            )
        if key is None:
            key = next((k for k in [*contained, *beside] if k.names(named)), None)
    else:
        strangers = sorted(
            {link for link, answer in found if ITEM_LIKE.match(link) and link not in items
             and _scored_kind(answer)},
            key=link_order,
        )  # fmt: skip
        if strangers:
            raise UsageProblem(
                f"{label}: names no questionnaire, and answers linkId "
                f"{', '.join(strangers[:5])}{', …' if len(strangers) > 5 else ''}, which "
                f"{instrument.id!r} does not have: another form's response? Score it with "
                "its own instrument (or name the questionnaire in the response)"
            )
        if key is None and len(contained) == 1:
            key = contained[0]
    scale = instrument.scale
    answers: dict[str, Any] = {}
    others: list[str] = []
    for link, answer in found:
        if link not in items:
            others.append(link)  # other questions of the form (consent, notes): not ours
            continue
        if link in answers:
            raise UsageProblem(f"{label}: linkId {link}: answered twice")
        value = _value(answer, f"{label}: linkId {link}", link, key)
        if items[link].reverse and isinstance(value, _Keyed):
            value = value.raw(scale.min, scale.max)
        answers[link] = value.weight if isinstance(value, _Keyed) else value
    if not answers:
        raise UsageProblem(
            f"{label}: no answer with a linkId of {instrument.id!r} (its linkIds are "
            f"{', '.join(sorted(items, key=link_order))})"
        )
    named = resource.get("subject")
    subject: dict[str, Any] = named if isinstance(named, dict) else {}
    held = subject.get("identifier")
    ident: dict[str, Any] = held if isinstance(held, dict) else {}
    who = {
        "client_id": _subject(resource.get("subject")),
        "subject_reference": str(subject["reference"]) if subject.get("reference") else None,
        "subject_system": str(ident["system"]) if ident.get("system") else None,
        "session": _session(resource, label),
        "date": (resource.get("authored") or "")[:10] or None,
        "rater": _rater(resource.get("source")) or rater,  # never author: who typed it in
    }
    rid = resource.get("id")
    return answers, who, f"QuestionnaireResponse/{rid}" if rid else None, others


def link_order(link: str) -> tuple[int, str]:
    """Numbered linkIds first, by number; then the others, by name."""
    return (int(link), "") if link.isdigit() else (1 << 30, link)


def _walk(items: list[Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every (linkId, answer) of a response, walking ``item[].item[]`` and
    ``item[].answer[].item[]``, in document order."""
    out: list[tuple[str, Mapping[str, Any]]] = []

    def walk(level: list[Any]) -> None:
        for item in level:
            if not isinstance(item, dict):
                continue
            link = str(item.get("linkId", ""))
            for answer in item.get("answer") or []:
                if isinstance(answer, dict):
                    out.append((link, answer))
                    walk(answer.get("item") or [])
            walk(item.get("item") or [])

    walk(items)
    return out


def _scored_kind(answer: Mapping[str, Any]) -> bool:
    """Whether an answer is of a kind a score is given as (a number or a coding)."""
    return any(k in answer for k in ("valueInteger", "valueDecimal", "valueCoding"))


class _Keyed:
    """A coding's weight with its numeric code: a reverse-keyed item's weight that equals
    min + max - code was reversed already (SDC's calculated weights), so the code is the
    raw answer, and it is never reversed twice."""

    def __init__(self, weight: float, code: str) -> None:
        self.weight, self.code = weight, code

    def raw(self, low: float, high: float) -> float | str:
        """The raw answer on a min..max scale for a reverse-keyed item."""
        try:
            number = float(self.code)
        except ValueError:
            return self.weight
        if number != self.weight and abs(low + high - number - self.weight) < 1e-9:
            return self.code
        return self.weight


def _value(answer: Mapping[str, Any], where: str, link: str, key: AnswerKey | None) -> Any:
    for kind in ("valueInteger", "valueDecimal"):
        if kind in answer:
            return answer[kind]
    if "valueString" in answer:
        return str(answer["valueString"])
    if "valueCoding" in answer:
        coding = answer["valueCoding"]
        if coding.get("system") == ABSENT:
            return None  # asked, declined: missing, never 0
        code = str(coding.get("code", ""))
        weight = _weight(coding)
        if weight is None:
            weight = _weight(answer)
        if weight is None and key is not None:
            weight = key.weight(link, coding)
        if weight is not None:
            return _Keyed(weight, code)
        try:
            float(code)
        except ValueError:
            hint = (
                "the Questionnaire used gives this option no weight (its options may come "
                "from an external value set): give one that does, with --questionnaire FILE"
                if key is not None
                else "give the Questionnaire with --questionnaire FILE"
            )
            raise UsageProblem(
                f"{where}: the coding {code!r} carries no weight (itemWeight) and is not a "
                f"number; alliance cannot tell its value: {hint}"
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


def _rater(source: Any) -> str | None:
    ref = source.get("reference", "") if isinstance(source, dict) else ""
    if ref.startswith(("Practitioner/", "PractitionerRole/")):
        return "therapist"
    if ref.startswith(("Patient/", "RelatedPerson/")):
        return "client"
    return None


# -- scores out ----------------------------------------------------------------------------
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def observations(
    score: dict[str, Any],
    derived_from: str | None = None,
    subject: str | None = None,
    subject_system: str | None = None,
) -> list[dict[str, Any]]:
    """One Observation per scale of a Score: the instrument's metric as a ``{score}``
    quantity, POMP as a component, a cutoff flag as ``interpretation`` (L, low), the
    response it came from in ``derivedFrom``, the subject as the response named it
    (its reference, and the identifier with its system). Each has a deterministic ``id``
    (from the instrument, the client, the rater, the session or response, and the scale),
    so posting the same scores again updates them rather than adding copies."""
    inst, who = score["instrument"], score["respondent"]
    metric = score["metric"]
    flagged = {f.get("scale") for f in score.get("flags") or [] if f.get("code") == "below_cutoff"}
    messages = {f.get("scale"): f.get("message") for f in score.get("flags") or []}
    out: list[dict[str, Any]] = []
    for sid, scale in score["scales"].items():
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "id": observation_id(score, sid, derived_from),
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
        if who.get("client_id") or subject:
            reference: dict[str, Any] = {}
            if subject:
                reference["reference"] = subject
            if who.get("client_id"):
                identifier = {"value": str(who["client_id"])}
                reference["identifier"] = (
                    {"system": subject_system, **identifier} if subject_system else identifier
                )
            obs["subject"] = reference
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
        if sid in flagged:
            obs["interpretation"] = [
                {
                    "coding": [{"system": INTERPRETATION, "code": "L", "display": "Low"}],
                    "text": " ".join(str(messages.get(sid) or "below the cutoff").split()),
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


def observation_id(score: dict[str, Any], scale: str, derived_from: str | None) -> str:
    """A stable id for one scale's Observation: the same scores give the same id."""
    import hashlib

    who = score["respondent"]
    key = "|".join(
        str(x) for x in (score["instrument"]["id"], who.get("client_id"), who.get("rater"),
                         who.get("session"), who.get("date"), derived_from or "", scale)
    )  # fmt: skip
    return "alliance-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


def bundle(resources: list[dict[str, Any]], kind: str = "collection") -> dict[str, Any]:
    """A Bundle of resources, validated: a collection, or a transaction whose entries PUT
    each resource by its id (posting it twice updates it)."""
    if kind == "transaction":
        entries = [
            {
                "fullUrl": f"{r['resourceType']}/{r['id']}",
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ]
    else:
        entries = [{"resource": r} for r in resources]
    result = {"resourceType": "Bundle", "type": kind, "entry": entries}
    check(result, "Bundle")
    return result


def dumps(resource: dict[str, Any], indent: int | None = None) -> str:
    """JSON text of a resource (UTF-8 as it is)."""
    return json.dumps(resource, ensure_ascii=False, indent=indent)
