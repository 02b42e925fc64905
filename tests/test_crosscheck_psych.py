"""Batch means against R's psych::scoreItems (impute = "none"), an independent implementation.

The expected values in tests/fixtures/psych/ were made once by score_with_psych.R (see its
header for versions); the tests only read them, so they need no R.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "psych"
KEYS = {
    "wai-sr": {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]},
    "wai-s": {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]},
}
MAX_MISSING = {"goal": 1, "task": 1, "bond": 1, "total": 3}  # as the bundled files say


def _rows(path: Path) -> dict[str, dict[str, str]]:
    return {r["client_id"]: r for r in csv.DictReader(path.open(encoding="utf-8"))}


@pytest.mark.parametrize(("instrument", "stem"), [("wai-sr", "wai_sr"), ("wai-s", "wai_s")])
def test_scale_means_match_psych(cli, instrument, stem):
    answers = _rows(FIXTURES / f"{stem}_answers.csv")
    expected = _rows(FIXTURES / f"{stem}_expected_means.csv")
    result = cli("batch", str(FIXTURES / f"{stem}_answers.csv"), "-i", instrument, "-q")
    assert result.exit_code == 0, result.stderr
    ours = {r["client_id"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert set(ours) == set(expected) == set(answers)
    compared = nulls = 0
    for client, row in ours.items():
        items = {**KEYS[instrument], "total": list(range(1, 13))}
        for scale, numbers in items.items():
            missing = sum(answers[client][f"q{i}"] == "" for i in numbers)
            got, want = row[f"{scale}_mean"], expected[client][scale]
            if missing > MAX_MISSING[scale]:
                assert got == "", (client, scale)  # our rule: too many missing, no score
                nulls += 1
            else:
                assert math.isclose(float(got), float(want), abs_tol=1e-6), (client, scale)
                compared += 1
    assert compared > 400 and nulls > 5  # both branches really exercised
