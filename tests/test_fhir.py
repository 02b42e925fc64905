"""Issue 12: FHIR in and out, and the forms other systems build from (REDCap, FHIR).

Every resource alliance writes is validated here again with fhir.resources (R4B models,
see alliance_cli/io/fhir.py for why), independently of the check alliance makes itself.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

pytest.importorskip("fhir.resources")

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

# WAI-SR answers in item order; by hand: goal (4 6 8 11) 4+5+3+4 = 16 -> mean 4.0;
# task (1 2 10 12) 5+4+4+3 = 16 -> 4.0; bond (3 5 7 9) 4+5+4+2 = 15 -> 3.75;
# total 47 / 12 = 3.916667
ANSWERS = [5, 4, 4, 4, 5, 5, 4, 3, 2, 4, 4, 3]


def _response(form: dict, answers, rid: str = "qr-1", **extra) -> dict:
    """A QuestionnaireResponse as an EHR form would write it from our Questionnaire:
    each answer the answerOption's coding (with its weight), nested in a group."""
    items = []
    asked = [i for i in form["item"] if not i.get("readOnly")]  # not the score items
    for item, value in zip(asked, answers, strict=True):
        option = next(o for o in item["answerOption"] if o["valueCoding"]["code"] == str(value))
        coding = {k: v for k, v in option["valueCoding"].items()}
        items.append({"linkId": item["linkId"], "answer": [{"valueCoding": coding}]})
    resource = {
        "resourceType": "QuestionnaireResponse", "id": rid, "status": "completed",
        "questionnaire": form["url"], "subject": {"reference": "Patient/C-9"},
        "authored": "2026-10-02T15:04:00+01:00",
        "extension": [{"url": "urn:alliance:session", "valueInteger": 3}],
        "item": [{"linkId": "wai", "text": "group", "item": items}],
    }  # fmt: skip
    resource.update(extra)
    QuestionnaireResponse.model_validate(resource)  # the test's own input is valid FHIR
    return resource


@pytest.fixture
def wai_questionnaire(cli) -> dict:
    result = cli("instruments", "export", "wai-sr", "--to", "fhir")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_questionnaire_is_valid_fhir_with_our_labels_and_licence(wai_questionnaire):
    q = Questionnaire.model_validate(wai_questionnaire)
    assert len(q.item) == 12 + 4 and q.item[0].text == "Clearer about how to change"
    assert [i.linkId for i in q.item[12:]] == ["score-goal", "score-task", "score-bond",
                                               "score-total"]  # fmt: skip
    assert "Permission is needed" in q.copyright and "not the published wording" in (q.description)
    weights = [o.extension[0].valueDecimal for o in q.item[0].answerOption]
    assert [float(w) for w in weights] == [1, 2, 3, 4, 5]


def test_a_response_round_trips_to_observations(cli, tmp_path: Path, wai_questionnaire):
    response = _response(wai_questionnaire, ANSWERS)
    result = cli("score", "wai-sr", "-", "-f", "fhir", input=json.dumps(response))
    assert result.exit_code == 0, result.stderr
    bundle = Bundle.model_validate(json.loads(result.stdout))
    found = {}
    for entry in bundle.entry:
        obs = Observation.model_validate(entry.resource.model_dump())
        assert obs.derivedFrom[0].reference == "QuestionnaireResponse/qr-1"
        assert obs.subject.identifier.value == "C-9"
        found[obs.code.coding[0].code] = float(obs.valueQuantity.value)
    assert found == {"goal": 4.0, "task": 4.0, "bond": 3.75, "total": 3.916667}
    scored = json.loads(
        cli("score", "wai-sr", "-", "-f", "json", input=json.dumps(response)).stdout
    )
    assert scored[0]["respondent"] == {
        "client_id": "C-9", "session": 3, "date": "2026-10-02", "rater": "client",
    }  # fmt: skip


def test_batch_reads_a_bundle_and_ndjson_and_writes_observations(
    cli, tmp_path: Path, wai_questionnaire
):
    one = _response(wai_questionnaire, ANSWERS, "qr-1")
    two = _response(wai_questionnaire, [4] * 12, "qr-2")
    gone = _response(wai_questionnaire, [1] * 12, "qr-3", status="entered-in-error")
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps({
        "resourceType": "Bundle", "type": "collection",
        "entry": [{"resource": r} for r in (one, two, gone)],
    }, indent=2))  # fmt: skip
    result = cli("batch", str(bundle), "-i", "wai-sr")
    assert result.exit_code == 0, result.stderr
    assert "3 rows read, 2 scored, 0 rejected, 1 entered in error" in result.stderr
    assert "(3 QuestionnaireResponse resources; answers by linkId" in result.stderr
    single = tmp_path / "one.json"
    single.write_text(json.dumps(one))
    alone = cli("batch", str(single), "-i", "wai-sr")
    assert "(1 QuestionnaireResponse resource; answers by linkId" in alone.stderr, alone.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["response"] for r in rows] == [
        "QuestionnaireResponse/qr-1",
        "QuestionnaireResponse/qr-2",
    ]
    assert rows[0]["total_mean"] == "3.916667" and rows[1]["total_mean"] == "4"
    ndjson = tmp_path / "responses.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in (one, two)) + "\n")
    out = cli("batch", str(ndjson), "-i", "wai-sr", "-f", "fhir")
    assert out.exit_code == 0, out.stderr
    observations = [
        Observation.model_validate(json.loads(line)) for line in out.stdout.splitlines()
    ]
    assert len(observations) == 8  # four scales each
    assert {o.derivedFrom[0].reference for o in observations} == {
        "QuestionnaireResponse/qr-1", "QuestionnaireResponse/qr-2",
    }  # fmt: skip


def test_fhir_errors_name_the_resource_and_the_link_id(cli, tmp_path: Path, wai_questionnaire):
    bad_value = _response(wai_questionnaire, ANSWERS, "qr-7")
    bad_value["item"][0]["item"][2]["answer"] = [{"valueInteger": 9}]
    text_answer = _response(wai_questionnaire, ANSWERS, "qr-8")
    text_answer["item"][0]["item"][4]["answer"] = [{"valueCoding": {"code": "often"}}]
    invalid = _response(wai_questionnaire, ANSWERS, "qr-9")
    invalid["item"][0]["item"][0]["answer"] = [{"valueInteger": "four"}]
    other = _response(wai_questionnaire, ANSWERS, "qr-10",
                      questionnaire="urn:alliance:questionnaire:srs")  # fmt: skip
    path = tmp_path / "r.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in (bad_value, text_answer, invalid, other)))
    result = cli("batch", str(path), "-i", "wai-sr", "-q")
    assert result.exit_code == 3
    err = result.stderr
    assert f'{path}:1: QuestionnaireResponse/qr-7: linkId 3: item 3: "9" is outside 1–5' in err
    assert f"{path}:2: QuestionnaireResponse/qr-8: linkId 5: the coding 'often' carries no " in err
    assert (
        f"{path}:3: QuestionnaireResponse/qr-9: not a valid FHIR QuestionnaireResponse: item.0"
        in err
    )
    assert (
        f"{path}:4: QuestionnaireResponse/qr-10: answers questionnaire "
        "'urn:alliance:questionnaire:srs', not 'wai-sr'" in err
    )


def test_a_declined_answer_is_missing_never_zero(cli, wai_questionnaire):
    response = _response(wai_questionnaire, ANSWERS)
    response["item"][0]["item"][8]["answer"] = [{"valueCoding": {
        "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
        "code": "asked-declined"}}]  # fmt: skip
    scored = json.loads(
        cli("score", "wai-sr", "-", "-f", "json", input=json.dumps(response)).stdout
    )
    bond = scored[0]["scales"]["bond"]
    assert bond["answered"] == 3 and bond["sum"] == pytest.approx(13 * 4 / 3, abs=1e-6)  # prorated


def test_the_redcap_dictionary_has_redcaps_columns_and_batch_finds_its_variables(
    cli, tmp_path: Path
):
    result = cli("instruments", "export", "wai-sr", "--to", "redcap")
    assert result.exit_code == 0
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == [  # REDCap's data dictionary download, 18 columns
        "Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
        "Choices, Calculations, OR Slider Labels", "Field Note",
        "Text Validation Type OR Show Slider Number", "Text Validation Min",
        "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
        "Required Field?", "Custom Alignment", "Question Number (surveys only)",
        "Matrix Group Name", "Matrix Ranking?", "Field Annotation",
    ]  # fmt: skip
    assert rows[1][:4] == ["record_id", "wai_sr", "", "text"]
    radios = [r for r in rows if r[3] == "radio"]
    assert len(radios) == 12 and radios[0][5] == (
        "1, Seldom | 2, Sometimes | 3, Fairly often | 4, Very often | 5, Always"
    )
    # a records export of that form (repeating instrument), as REDCap writes it
    fields = [r[0] for r in rows[1:] if r[3] not in ("descriptive", "calc")]
    export = tmp_path / "records.csv"
    head = [fields[0], "redcap_repeat_instrument", "redcap_repeat_instance", *fields[1:],
            "wai_sr_complete"]  # fmt: skip
    export.write_text(",".join(head) + "\n9,wai_sr,2,2026-10-08,Rivera,"
                      + ",".join(map(str, ANSWERS)) + ",2\n")  # fmt: skip
    scored = cli("batch", str(export), "-i", "wai-sr", "-f", "json")
    assert scored.exit_code == 0, scored.stderr
    who = json.loads(scored.stdout)[0]["respondent"]
    assert who == {"client_id": "9", "session": 2, "date": "2026-10-08", "rater": "client"}
    assert json.loads(scored.stdout)[0]["scales"]["total"]["mean"] == 3.916667


def test_the_srs_exports_as_decimal_items(cli):
    result = cli("instruments", "export", "srs", "--to", "fhir")
    q = Questionnaire.model_validate(json.loads(result.stdout))
    assert {i.type for i in q.item} == {"decimal"}
    redcap = list(
        csv.reader(io.StringIO(cli("instruments", "export", "srs", "--to", "redcap").stdout))
    )
    lines = [r for r in redcap if r[3] == "text" and r[7].startswith("number")]
    assert len(lines) == 4 and lines[-1][7:10] == ["number_1dp", "0", "10"]
    assert redcap[-1][3] == "calc"  # the total, after the items


def test_fhir_without_the_extra_says_how_to_install_it(cli, monkeypatch, wai_questionnaire):
    import sys

    monkeypatch.setitem(sys.modules, "fhir.resources.R4B", None)
    response = json.dumps(_response(wai_questionnaire, ANSWERS))
    result = cli("score", "wai-sr", "-", "-f", "fhir", input=response)
    assert result.exit_code == 2
    assert "FHIR needs the optional fhir.resources package: pip install" in result.stderr


def _plain(answers, links=None, **extra) -> dict:
    """A response as real exports write it: plain integers, no questionnaire named."""
    links = links or range(1, len(answers) + 1)
    items = [{"linkId": str(k), "answer": [{"valueInteger": v}]}
             for k, v in zip(links, answers, strict=True)]  # fmt: skip
    resource = {"resourceType": "QuestionnaireResponse", "id": "r1", "status": "completed",
                "subject": {"reference": "Patient/C-1"}, "item": items}  # fmt: skip
    resource.update(extra)
    return resource


def test_a_response_is_scored_only_by_its_own_instrument(cli, tmp_path: Path):
    """Issue 23, item 4: a WAI-SR response naming no questionnaire, read as an SRS, was scored
    from linkIds 1-4 and lost 5-12 without a word; one naming a PHQ-9 was scored too."""
    path = tmp_path / "wai.json"
    path.write_text(json.dumps(_plain(ANSWERS)))
    result = cli("batch", str(path), "-i", "srs", "-q")
    assert result.exit_code == 3 and result.stdout.count("\n") == 1  # the header only
    assert "names no questionnaire, and answers linkId 5, 6, 7, 8, 9, …, which 'srs' does " in (
        result.stderr
    )
    phq = tmp_path / "phq.json"
    named = _plain([9, 9, 9, 9], questionnaire="http://example.org/Questionnaire/phq9")
    phq.write_text(json.dumps(named))
    other = cli("batch", str(phq), "-i", "srs", "-q")
    assert other.exit_code == 3
    assert "answers questionnaire 'http://example.org/Questionnaire/phq9', not 'srs'" in (
        other.stderr
    )
    wai = cli("batch", str(path), "-i", "wai-sr", "-q", "-f", "json")
    assert wai.exit_code == 0, wai.stderr


def test_answers_that_are_no_item_are_left_out_and_counted(cli, tmp_path: Path):
    """A consent coding, a date and a sex coding beside the items: before, the whole response
    was rejected ('a valueDate answer is not a score')."""
    resource = _plain(ANSWERS)
    resource["item"] += [
        {"linkId": "consent", "answer": [{"valueCoding": {"code": "yes"}}]},
        {"linkId": "visit-date", "answer": [{"valueDate": "2026-10-02"}]},
        {"linkId": "sex", "answer": [{"valueCoding": {
            "system": "http://hl7.org/fhir/administrative-gender", "code": "female"}}]},
    ]  # fmt: skip
    path = tmp_path / "r.json"
    path.write_text(json.dumps(resource))
    result = cli("batch", str(path), "-i", "wai-sr", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert (
        "3 answers to linkIds that are no item of 'wai-sr' left out (consent, sex, visit-date)"
        in (result.stderr)
    )


def test_the_rater_comes_from_source_never_from_author(cli, tmp_path: Path):
    """A clinician who typed in the client's form is its author, not its rater: before, the
    response was refused as a therapist's answers to a client form."""
    typed = _plain(ANSWERS, author={"reference": "Practitioner/p1"})
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(typed))
    result = cli("batch", str(path), "-i", "wai-sr", "-f", "json", "-q")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["respondent"]["rater"] == "client"
    sourced = tmp_path / "sourced.json"
    sourced.write_text(json.dumps(_plain(ANSWERS, source={"reference": "Practitioner/p1"})))
    by_therapist = cli("batch", str(sourced), "-i", "wai-sr", "-q")
    assert by_therapist.exit_code == 3 and "therapist" in by_therapist.stderr
    given = cli("batch", str(path), "-i", "wai-sr", "-q", "--rater", "therapist")
    assert given.exit_code == 3 and "therapist" in given.stderr
    bad = cli("batch", str(path), "-i", "wai-sr", "--rater", "nurse")
    assert bad.exit_code == 2 and "--rater 'nurse': choose client or therapist" in bad.stderr


def test_weights_reversed_already_are_not_reversed_twice(cli, tmp_path: Path):
    """SDC-style weights on a reverse-keyed item are the keyed value (min + max - code): the
    code is the raw answer. Before, such a response was reversed twice (issue 23). The
    WAI-S reverses items 4 and 10."""
    form = json.loads(cli("instruments", "export", "wai-s", "--to", "fhir").stdout)
    answers = [5, 4, 6, 2, 5, 6, 5, 4, 6, 1, 5, 6]
    plain = _response(form, answers)
    keyed = _response(form, answers, "qr-2")
    reverse = {"4", "10"}
    for item in keyed["item"][0]["item"]:
        coding = item["answer"][0]["valueCoding"]
        code = int(coding["code"])
        weight = 8 - code if item["linkId"] in reverse else code
        coding["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/itemWeight",
                                "valueDecimal": weight}]  # fmt: skip
    path = tmp_path / "two.ndjson"
    path.write_text(json.dumps(plain) + "\n" + json.dumps(keyed) + "\n")
    result = cli("batch", str(path), "-i", "wai-s", "-f", "json", "-q")
    assert result.exit_code == 0, result.stderr
    first, second = json.loads(result.stdout)
    assert first["scales"] == second["scales"]
    # by hand: goal is items 4 (2, reversed 6), 6 (6), 10 (1, reversed 7) and 11 (5); the
    # keyed weights reversed again would give 2 + 6 + 1 + 5 = 14
    assert first["scales"]["goal"]["sum"] == 24


SCORED = ["wai-sr", "wai-s", "wai", "srs", "haq-ii", "wai-sr-t", "wai-s-t", "wai-t", "haq-ii-t"]


@pytest.mark.parametrize("instrument_id", SCORED)
def test_the_questionnaires_calculated_expressions_compute_alliances_scores(cli, instrument_id):
    """Issue 23, item 5: the exported Questionnaire's weights are the scored values (reverse
    keys applied: summing them gave 64 where alliance's total was 74) and each scale has an
    SDC calculatedExpression. A FHIRPath engine (fhirpathpy) evaluates them on random
    responses, some answers missing, and must give alliance's scores."""
    import random

    fhirpathpy = pytest.importorskip("fhirpathpy")
    from fhirpathpy.models import models

    from alliance_cli import api

    form = json.loads(cli("instruments", "export", instrument_id, "--to", "fhir").stdout)
    Questionnaire.model_validate(form)
    asked = [i for i in form["item"] if not i.get("readOnly")]
    scores = [i for i in form["item"] if i.get("readOnly")]
    inst = api.load_instrument(instrument_id)
    rng = random.Random(instrument_id)
    compiled = {
        item["linkId"]: fhirpathpy.compile(
            item["extension"][0]["valueExpression"]["expression"], models["r4"]
        )
        for item in scores
    }
    for case in range(6):
        answers: list[float | None] = []
        items = []
        for item in asked:
            if rng.random() < 0.08:
                answers.append(None)
                items.append({"linkId": item["linkId"]})
                continue
            if item["type"] == "choice":
                option = rng.choice(item["answerOption"])
                answers.append(float(option["valueCoding"]["code"]))
                answer = {"valueCoding": {k: v for k, v in option["valueCoding"].items()}}
            else:  # a 0-10 line: a decimal answer
                value = rng.randint(0, 100) / 10
                answers.append(value)
                answer = {"valueDecimal": value}
            items.append({"linkId": item["linkId"], "answer": [answer]})
        response = {"resourceType": "QuestionnaireResponse", "status": "completed",
                    "questionnaire": form["url"], "item": items}  # fmt: skip
        score = api.score(inst, answers, invalid="missing")
        for item in scores:
            got = compiled[item["linkId"]](response, {"resource": response})
            scale = score.scales[item["linkId"].removeprefix("score-")]
            want = scale.mean if inst.instrument.metric == "mean" else scale.sum
            if want is None:
                assert got == [], (instrument_id, case, item["linkId"])
            else:
                assert len(got) == 1 and abs(float(got[0]) - want) < 1e-6, (
                    instrument_id, case, item["linkId"], got, want,
                )  # fmt: skip
        # the chosen options' weights add up to the keyed total, as alliance's total
        choices = all(item["type"] == "choice" for item in asked)
        if choices and inst.instrument.metric == "sum" and all(a is not None for a in answers):
            weights = []
            for item, entry in zip(asked, items, strict=True):
                code = entry["answer"][0].get("valueCoding", {}).get("code")
                option = next(o for o in item.get("answerOption", [])
                              if o["valueCoding"]["code"] == code)  # fmt: skip
                weights.append(option["extension"][0]["valueDecimal"])
            assert abs(sum(weights) - score.scales["total"].sum) < 1e-9


def test_observations_keep_the_subject_flag_cutoffs_and_have_stable_ids(cli, tmp_path: Path):
    """Issue 23, item 5: Patient/example became a bare identifier and the identifier's system
    was dropped; the SRS cutoff appeared nowhere; re-posting made copies (no id); there was
    no transaction Bundle."""
    from fhir.resources.R4B.bundle import Bundle

    response = {"resourceType": "QuestionnaireResponse", "id": "s1", "status": "completed",
                "subject": {"reference": "Patient/example",
                            "identifier": {"system": "urn:clinic:mrn", "value": "MRN-7"}},
                "authored": "2026-10-02",
                "item": [{"linkId": str(i), "answer": [{"valueDecimal": 6}]}
                         for i in range(1, 5)]}  # fmt: skip
    path = tmp_path / "srs.json"
    path.write_text(json.dumps(response))
    first = cli("batch", str(path), "-i", "srs", "-f", "fhir", "-q")
    assert first.exit_code == 0, first.stderr
    observations = [json.loads(line) for line in first.stdout.splitlines()]
    total = next(o for o in observations if o["code"]["coding"][0]["code"] == "total")
    mrn = {"system": "urn:clinic:mrn", "value": "MRN-7"}
    assert total["subject"] == {"reference": "Patient/example", "identifier": mrn}
    assert total["interpretation"][0]["coding"][0]["code"] == "L"  # 24 <= 36: below the cutoff
    assert "at or below 36" in total["interpretation"][0]["text"]
    again = cli("batch", str(path), "-i", "srs", "-f", "fhir", "-q")
    assert [json.loads(line)["id"] for line in again.stdout.splitlines()] == [
        o["id"] for o in observations
    ]  # the same scores, the same ids
    assert len({o["id"] for o in observations}) == len(observations)
    bundled = cli("batch", str(path), "-i", "srs", "-f", "fhir", "--bundle", "transaction", "-q")
    assert bundled.exit_code == 0, bundled.stderr
    bundle = Bundle.model_validate(json.loads(bundled.stdout))
    assert bundle.type == "transaction" and len(bundle.entry) == len(observations)
    assert bundle.entry[0].request.method == "PUT"
    assert bundle.entry[0].request.url == f"Observation/{observations[0]['id']}"
    wrong = cli("batch", str(path), "-i", "srs", "--bundle", "transaction")
    assert wrong.exit_code == 2 and "--bundle transaction goes with -f fhir" in wrong.stderr


class _Blank:
    """A blank REDCap value: arithmetic on it stays blank; it equals "" (REDCap's blank)."""

    def __sub__(self, other: object) -> _Blank:
        return self

    __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __sub__

    def __ne__(self, other: object) -> bool:
        return other != ""

    def __eq__(self, other: object) -> bool:
        return other == ""

    __hash__ = object.__hash__


def _redcap_eval(equation: str, record: dict[str, object]) -> object:
    """A small evaluator of the REDCap calculation syntax the export uses: [variable],
    if(), sum() and mean() (both leave blanks out, as REDCap's special functions do),
    <>, >=, -, * and "" for blank. Not REDCap itself: the equations' meaning, checked."""
    import re

    def value(name: str) -> object:
        v = record[name]
        return _BLANK if v is None else v

    def present(args: tuple) -> list:
        return [a for a in args if not isinstance(a, _Blank) and a != ""]

    def mean(*args: object) -> object:
        got = present(args)
        return sum(got) / len(got) if got else ""

    def total(*args: object) -> object:
        return sum(present(args))

    def iff(condition: object, yes: object, no: object) -> object:
        return yes if condition else no

    code = re.sub(r"\[([a-z0-9_]+)\]", r'V("\1")', equation).replace("<>", "!=")
    code = re.sub(r"\bif\(", "IF(", code)
    code = re.sub(r"\bsum\(", "SUM(", code)
    code = re.sub(r"\bmean\(", "MEAN(", code)
    return eval(code, {"__builtins__": {}}, {"V": value, "IF": iff, "SUM": total, "MEAN": mean})


_BLANK = _Blank()


@pytest.mark.parametrize("instrument_id", SCORED)
def test_the_redcap_calc_fields_compute_alliances_scores(cli, instrument_id):
    """Issue 23, item 6: the dictionary had no calc fields (REDCap never computed the
    subscales) and recorded reverse keys nowhere. Each scale's equation, evaluated on random
    answers with some missing, gives alliance's score."""
    import random

    from alliance_cli import api

    rows = list(csv.reader(io.StringIO(
        cli("instruments", "export", instrument_id, "--to", "redcap").stdout)))  # fmt: skip
    head = rows[0]
    fields = [dict(zip(head, r, strict=True)) for r in rows[1:]]
    not_items = ("record_id", "_session_date", "_counselor")
    items = [f for f in fields if f["Field Type"] in ("radio", "text")
             and not f["Variable / Field Name"].endswith(not_items)]  # fmt: skip
    calcs = [f for f in fields if f["Field Type"] == "calc"]
    inst = api.load_instrument(instrument_id)
    assert len(items) == len(inst.instrument.items)
    assert len(calcs) == len(inst.instrument.subscales) + 1
    scale = inst.instrument.scale
    rng = random.Random(instrument_id)
    for case in range(20):
        answers = [None if rng.random() < 0.1 else
                   round(scale.min + scale.step * rng.randint(0, round((scale.max - scale.min)
                                                                      / scale.step)), 10)
                   for _ in items]  # fmt: skip
        record = {f["Variable / Field Name"]: a for f, a in zip(items, answers, strict=True)}
        score = api.score(inst, answers, invalid="missing")
        for calc in calcs:
            got = _redcap_eval(calc["Choices, Calculations, OR Slider Labels"], record)
            sid = calc["Variable / Field Name"].split("_")[-2]
            result = score.scales[sid]
            want = result.mean if inst.instrument.metric == "mean" else result.sum
            if want is None:
                assert got == "", (instrument_id, case, sid)
            else:
                # alliance rounds to 6 decimals
                assert abs(float(got) - want) < 1e-6, (instrument_id, case, sid, got, want)


def test_redcap_names_are_legal_labels_escaped_and_record_id_optional(cli, tmp_path: Path):
    """A custom id gave illegal REDCap names (9item_b-2), a | in an anchor split the
    choices, and every dictionary repeated record_id (two forms could not be combined)."""
    import re

    inst = tmp_path / "inst"
    inst.mkdir()
    definition = """\
id: 9item-b-2
name: Test
version: '1'
respondent: client
citation: test
licence: test
verification: {status: unverified, sources: []}
scale: {min: 1, max: 3, step: 1, labels: {1: 'No | never', 2: 'Some', 3: 'Yes'}}
items: [{id: 1, label: a}, {id: 2, label: b}]
subscales: []
"""
    (inst / "9item-b-2.yaml").write_text(definition, encoding="utf-8")
    out = cli("--instruments-dir", str(inst), "instruments", "export", "9item-b-2", "--to",
              "redcap", "--no-record-id")  # fmt: skip
    assert out.exit_code == 0, out.stderr
    rows = list(csv.reader(io.StringIO(out.stdout)))[1:]
    names = [r[0] for r in rows]
    assert "record_id" not in names
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", n) for n in names), names
    assert {r[1] for r in rows} == {"f_9item_b_2"}
    radio = next(r for r in rows if r[3] == "radio")
    assert radio[5] == "1, No / never | 2, Some | 3, Yes"


def test_a_malformed_questionnaire_is_a_clear_error_never_an_internal_one(cli, tmp_path: Path):
    """--questionnaire is read leniently, but shapes that are not FHIR's (a url that is a
    number, items that are not a list) are refused in words, not with a traceback."""
    form = tmp_path / "q.json"
    form.write_text(json.dumps({"resourceType": "Questionnaire", "url": 5, "id": 7, "item": "x"}))
    response = tmp_path / "r.json"
    response.write_text(json.dumps(_plain([4, 4, 4, 4], questionnaire="http://x/Q/1")))
    result = cli("batch", str(response), "-i", "srs", "--questionnaire", str(form))
    assert result.exit_code == 2 and "internal error" not in result.stderr
    assert "the Questionnaire has no url or id to match responses by" in result.stderr
    odd = [{"linkId": "1", "answerOption": "x", "answerValueSet": "#v"}, 4]
    nested = {"resourceType": "Questionnaire", "url": "http://x/Q/1", "contained": 3, "item": odd}
    form.write_text(json.dumps(nested))
    read = cli("batch", str(response), "-i", "srs", "--questionnaire", str(form), "-q")
    assert read.exit_code == 0, read.stderr  # the answers are plain numbers: no weight needed


def test_a_fhir_input_longer_than_its_limit_is_refused(cli, tmp_path: Path, monkeypatch):
    """A FHIR input is read whole (a Bundle is one JSON value): an endless stream starting
    with "{" took all memory. Past the limit (512 MiB; 1 MiB here) it is one error naming
    the input."""
    from alliance_cli.io import fhir_rows

    monkeypatch.setattr(fhir_rows, "MAX_FHIR_TEXT", 1 << 20)
    path = tmp_path / "bundle.json"
    path.write_text('{"resourceType": "Bundle", "entry": [' + " " * (2 << 20) + "]}")
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 5, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}: more than 1 MiB of FHIR text: a FHIR input is read whole; split the "
        "export into several files"
    )


def test_a_qualtrics_survey_file_is_named_not_called_a_bad_fhir_resource(cli, tmp_path: Path):
    """A .qsf (Qualtrics' survey definition, JSON) given as the export: its one record is
    rejected as what it is, with where the responses come from (exit 3, as any rejection)."""
    qsf = tmp_path / "survey.qsf"
    qsf.write_text(json.dumps({"SurveyEntry": {"SurveyID": "SV_1"}, "SurveyElements": []}))
    said = cli("batch", str(qsf), "-i", "srs", "-o", "-")
    assert said.exit_code == 3
    assert "a Qualtrics survey definition (QSF), not its responses: export the responses" in (
        said.stderr
    )
    assert "no resourceType" not in said.stderr
