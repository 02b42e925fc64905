"""Batch scores against R's psych::scoreItems (impute = "none"), an independent implementation.

The expected values in tests/fixtures/psych/ were made by score_with_psych.R (see its header
for versions); the tests only read them, so they need no R. The keys here and in the R
script are typed from the published scoring facts, not read from our YAML files, so these
tests also check the bundled keys (reverse items included).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "psych"
_WAI_S = {"goal": [4, 6, 10, 11], "task": [1, 2, 8, 12], "bond": [3, 5, 7, 9]}
_WAI = {
    "goal": [3, 6, 9, 10, 12, 14, 22, 25, 27, 30, 32, 34],
    "task": [2, 4, 7, 11, 13, 15, 16, 18, 24, 31, 33, 35],
    "bond": [1, 5, 8, 17, 19, 20, 21, 23, 26, 28, 29, 36],
}
# instrument: (fixture stem, scales -> items, scale -> missing items allowed, items)
CASES = {
    "wai-sr": (
        "wai_sr",
        {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]},
        {"goal": 1, "task": 1, "bond": 1, "total": 3},
        12,
    ),
    "wai-s": ("wai_s", _WAI_S, {"goal": 1, "task": 1, "bond": 1, "total": 3}, 12),
    "wai": ("wai", _WAI, {"goal": 2, "task": 2, "bond": 2, "total": 6}, 36),
    "haq-ii": ("haq_ii", {}, {"total": 3}, 19),
    # therapist forms (issue 22): keys typed from the scoring facts in score_with_psych.R
    "wai-t": ("wai_t", _WAI, {"goal": 2, "task": 2, "bond": 2, "total": 6}, 36),
    "wai-s-t": ("wai_s_t", _WAI_S, {"goal": 1, "task": 1, "bond": 1, "total": 3}, 12),
    "wai-sr-t": (
        "wai_sr_t",
        {"goal": [3, 6, 8], "task": [1, 4, 10], "bond": [2, 5, 7, 9]},
        {"goal": 0, "task": 0, "bond": 1, "total": 2},
        10,
    ),
    "haq-ii-t": ("haq_ii_t", {}, {"total": 3}, 19),
}


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {r["client_id"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}


def _batch(cli, instrument: str, answers: Path) -> dict[str, dict[str, str]]:
    result = cli("batch", str(answers), "-i", instrument, "-q")
    assert result.exit_code == 0, result.stderr
    return {r["client_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}


@pytest.mark.parametrize("instrument", sorted(CASES))
def test_scale_means_match_psych(cli, instrument):
    stem, keys, max_missing, n_items = CASES[instrument]
    answers_path = FIXTURES / f"{stem}_answers.csv"
    answers = _rows(answers_path)
    expected = _rows(FIXTURES / f"{stem}_expected_means.csv")
    ours = _batch(cli, instrument, answers_path)
    assert set(ours) == set(expected) == set(answers)
    compared = nulls = 0
    for client, row in ours.items():
        for scale, numbers in {**keys, "total": list(range(1, n_items + 1))}.items():
            missing = sum(answers[client][f"q{i}"] == "" for i in numbers)
            got, want = row[f"{scale}_mean"], expected[client][scale]
            if missing > max_missing[scale]:
                assert got == "", (client, scale)  # our rule: too many missing, no score
                nulls += 1
            else:
                assert math.isclose(float(got), float(want), abs_tol=1e-6), (client, scale)
                compared += 1
    assert compared > 100 and nulls > 0  # both branches really exercised


def test_srs_sums_match_psych(cli):
    answers_path = FIXTURES / "srs_answers.csv"
    answers = _rows(answers_path)
    expected = _rows(FIXTURES / "srs_expected_sums.csv")
    ours = _batch(cli, "srs", answers_path)
    scales = {"relationship": [1], "goals": [2], "approach": [3], "overall": [4]}
    compared = nulls = 0
    for client, row in ours.items():
        for scale, numbers in {**scales, "total": [1, 2, 3, 4]}.items():
            if any(answers[client][f"q{i}"] == "" for i in numbers):
                assert row[f"{scale}_sum"] == "", (client, scale)  # SRS allows none missing
                nulls += 1
                continue
            got, want = float(row[f"{scale}_sum"]), float(expected[client][scale])
            assert math.isclose(got, want, abs_tol=1e-6), (client, scale)
            compared += 1
    assert compared > 500 and nulls > 0
