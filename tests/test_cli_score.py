"""``alliance score``: arguments, stdin, prompts, formats, exit codes, golden output."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from .conftest import scorer_for

GOLDEN = Path(__file__).parent / "golden"


def _json_after_prompts(stdout: str) -> dict:
    """CliRunner echoes typed input to stdout; the score JSON follows it."""
    (score,) = json.loads(stdout[stdout.index('[\n  {\n    "schema_version"') :])
    return score


FULL = ["5", "4", "4", "3", "5", "4", "4", "3", "5", "4", "4", "3"]


def _golden(name: str, text: str, sha: str) -> None:
    """Compare with a golden file; UPDATE_GOLDEN=1 rewrites it (on purpose, never by default)."""
    text = text.replace(sha, "<definition-sha256>")
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8")


def test_json_has_the_hand_worked_scores(cli):
    # FULL on the WAI-SR key (Hatcher & Gillaspy, 2006), worked by hand:
    # goal 4 6 8 11 -> 3 4 3 4 = 14; task 1 2 10 12 -> 5 4 4 3 = 16; bond 3 5 7 9 -> 4 5 4 5 = 18
    result = cli("score", "wai-sr", *FULL, "--client", "c7", "--session", "3", "-f", "json")
    assert result.exit_code == 0, result.stderr
    (data,) = json.loads(result.stdout)
    got = {k: (v["mean"], v["sum"], v["pomp"]) for k, v in data["scales"].items()}
    assert got == {
        "goal": (3.5, 14, 62.5),
        "task": (4.0, 16, 75.0),
        "bond": (4.5, 18, 87.5),
        "total": (4.0, 48, 75.0),
    }
    assert data["respondent"] == {"client_id": "c7", "session": 3, "date": None, "rater": "client"}
    assert data["instrument"]["sha256"] == scorer_for("wai-sr").sha256


def test_golden_json_wai_sr_with_missing(cli):
    answers = list(FULL)
    answers[0] = ""
    answers[3] = "NA"
    result = cli(
        "score", "wai-sr", ",".join(answers), "--client", "A-17", "--session", "2",
        "--date", "2026-11-20", "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    _golden("score-wai-sr-missing.json", result.stdout, scorer_for("wai-sr").sha256)


def test_golden_json_srs_below_cutoff(cli):
    result = cli("score", "srs", "8.3", "9.1", "7.6", "8.8", "-f", "json")
    assert result.exit_code == 0
    _golden("score-srs-low.json", result.stdout, scorer_for("srs").sha256)


def test_golden_csv(cli):
    result = cli(
        "score", "wai-s", *"6 6 6 2 6 6 6 6 6 1 6 6".split(), "--client", "=cmd", "-f", "csv"
    )  # fmt: skip
    assert result.exit_code == 0
    assert "'=cmd" in result.stdout  # formula-looking text is neutralised
    _golden("score-wai-s.csv", result.stdout, scorer_for("wai-s").sha256)


def test_pairs_and_comma_list_equal_positional(cli):
    positional = json.loads(cli("score", "wai-sr", *FULL, "-f", "json").stdout)
    pairs = [f"{i}={v}" for i, v in enumerate(FULL, start=1)]
    assert json.loads(cli("score", "wai-sr", *pairs, "-f", "json").stdout) == positional
    assert json.loads(cli("score", "wai-sr", ",".join(FULL), "-f", "json").stdout) == positional


def test_rejected_answers_exit_3_with_one_line_each(cli):
    answers = list(FULL)
    answers[6] = "9"
    answers[9] = "often-ish"
    result = cli("score", "wai-sr", *answers, "-f", "json")
    assert result.exit_code == 3
    assert result.stdout == "[]\n"  # -f json is always a list: here of no scores
    assert result.stderr.splitlines() == [
        'error: item 7: "9" is outside 1–5',
        'error: item 10: "often-ish" is not a number or an anchor of this scale',
    ]


def test_invalid_missing_scores_and_reports(cli):
    answers = list(FULL)
    answers[6] = "9"
    result = cli("score", "wai-sr", *answers, "--invalid", "missing", "-f", "json")
    assert result.exit_code == 0
    (data,) = json.loads(result.stdout)
    assert data["issues"][0]["item"] == "7" and data["scales"]["bond"]["prorated"] is True


def test_unknown_instrument_suggests_nearest(cli):
    result = cli("score", "wai-rs", *FULL)
    assert result.exit_code == 2
    assert "did you mean 'wai-sr'?" in result.stderr
    assert "available: haq-ii" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["1", "2"], "wai-sr has 12 items; got 2 answers"),
        (["1=5", "4"], "either all as ITEM=VALUE pairs"),
        (["1=5", "1=4"], "item 1 is given twice"),
        (["13=5"], "no item 13 in wai-sr"),
    ],
)
def test_usage_problems_exit_2(cli, args, message):
    result = cli("score", "wai-sr", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_bad_date_is_a_usage_error(cli):
    result = cli("score", "wai-sr", *FULL, "--date", "20/11/2026")
    assert result.exit_code == 2
    assert "not an ISO date" in result.stderr


def test_no_answers_when_piped_is_explained(cli):
    result = cli("score", "wai-sr")
    assert result.exit_code == 2
    assert "no answers given" in result.stderr


def test_stdin_json_object(cli):
    payload = {"client_id": "c1", "session": 4, "date": "2026-11-01", "answers": {"1": 5}}
    payload["answers"].update({str(i): 4 for i in range(2, 13)})
    result = cli("score", "wai-sr", "-", "-f", "json", input=json.dumps(payload))
    assert result.exit_code == 0, result.stderr
    (data,) = json.loads(result.stdout)
    assert data["respondent"] == {
        "client_id": "c1", "session": 4, "date": "2026-11-01", "rater": "client"
    }  # fmt: skip
    assert data["scales"]["task"]["mean"] == 4.25  # (5 + 4 + 4 + 4) / 4


def test_stdin_ndjson_scores_good_lines_and_rejects_bad(cli):
    good = json.dumps({"client_id": "a", "answers": FULL})
    bad = json.dumps({"client_id": "b", "answers": [*FULL[:-1], "7"]})
    lines = "\n".join([good, bad, "{not json", good]) + "\n"
    result = cli("score", "wai-sr", "-", "-f", "ndjson", input=lines)
    assert result.exit_code == 3
    assert len(result.stdout.splitlines()) == 2
    assert result.stderr.splitlines() == [
        'error: stdin:2: item 12: "7" is outside 1–5',
        "error: stdin:3: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
    ]


def test_table_shows_scales_flags_and_caveats(cli):
    low = cli("score", "srs", "8.3", "9.1", "7.6", "8.8", "-f", "table")
    assert low.exit_code == 0
    assert "Worth raising" in low.stdout and "36" in low.stdout
    unverified = cli("score", "wai-s", *["6"] * 12, "-f", "table")
    assert "Before you rely on this" in unverified.stdout
    assert "derived" in unverified.stdout


def test_interactive_prompts_reask_and_go_back(cli):
    # item 1: "9" is refused and asked again, then 5; item 2: 4; item 3: "b" goes back to
    # item 2, which becomes "Very often"; then the rest; at the summary item 12 is changed.
    keys = ["9", "5", "4", "b", "Very often", *FULL[2:], "12", "2", ""]
    result = cli("score", "wai-sr", "--interactive", "-f", "json", input="\n".join(keys) + "\n")
    assert result.exit_code == 0, result.stderr
    assert '"9" is outside 1–5' in result.stderr
    assert "Summary:" in result.stderr
    data = _json_after_prompts(result.stdout)
    assert data["answers"]["1"] == 5 and data["answers"]["2"] == 4
    assert data["answers"]["12"] == 2


def test_interactive_blank_answer_is_missing_and_q_quits(cli):
    keys = ["", *FULL[1:], ""]
    result = cli("score", "wai-sr", "-I", "-f", "json", input="\n".join(keys) + "\n")
    assert _json_after_prompts(result.stdout)["answers"]["1"] is None
    quit_ = cli("score", "wai-sr", "-I", input="5\nq\n")
    assert quit_.exit_code == 6  # its own code: a choice, not an interruption or an error
    assert quit_.stderr.rstrip().endswith("stopped at your request: nothing was scored or saved")
    assert "error" not in quit_.stderr and quit_.stdout == ""


def test_interactive_shows_official_wording_from_a_user_file(cli, tmp_path):
    from .conftest import MINIMAL, write

    text = MINIMAL.replace(
        "{id: 1, label: First topic}", '{id: 1, label: First topic, text: "Wording one"}'
    )
    write(tmp_path / "d" / "mini.yaml", text)
    result = cli("--instruments-dir", str(tmp_path / "d"), "score", "mini", "-I", "-f", "json",
                 input="5\n4\n3\n\n")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "item 1 · Wording one" in result.stderr and "item 2 · Second topic" in result.stderr


def test_stdin_json_list_and_a_string_line_are_located(cli):
    answers = "5 4 4 3 5 4 4 3 5 4 4 3".split()
    listed = cli("score", "wai-sr", "-", "-f", "ndjson",
                 input=json.dumps([{"answers": answers}, {"answers": ["9"]}]))  # fmt: skip
    assert listed.exit_code == 3 and len(listed.stdout.splitlines()) == 1
    assert listed.stderr == "error: stdin[1]: wai-sr has 12 items; got 1 answer\n"
    text = cli("score", "wai-sr", "-", input=json.dumps({"answers": answers}) + '\n"text"\n')
    assert "error: stdin:2: expected a JSON object, got str" in text.stderr
