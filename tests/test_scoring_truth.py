"""Issue 8: the corrected keys, honest levels, drafts never scored, no silent mix-ups.

Expected keys are typed from the published scoring facts (Horvath & Greenberg 1989; Tracey &
Kokotovic 1989 via the WAI item mapping; Luborsky et al. 1996; the official WAI-SRT form),
never read from the YAML files under test.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from .conftest import write

WAI_KEY = {
    "goal": [3, 6, 9, 10, 12, 14, 22, 25, 27, 30, 32, 34],
    "task": [2, 4, 7, 11, 13, 15, 16, 18, 24, 31, 33, 35],
    "bond": [1, 5, 8, 17, 19, 20, 21, 23, 26, 28, 29, 36],
}
WAI_REVERSE = [1, 3, 7, 9, 10, 11, 12, 15, 20, 27, 29, 31, 33, 34]
WAI_S_KEY = {"goal": [4, 6, 10, 11], "task": [1, 2, 8, 12], "bond": [3, 5, 7, 9]}
EXPECTED = {
    "wai": (WAI_KEY, WAI_REVERSE, "verified"),
    "wai-t": (WAI_KEY, WAI_REVERSE, "derived"),
    "wai-s": (WAI_S_KEY, [4, 10], "derived"),
    "wai-s-t": (WAI_S_KEY, [4, 10], "derived"),
    "haq-ii": ({}, [4, 8, 11, 16, 19], "unverified"),
    "haq-ii-t": ({}, [4, 8, 11, 16, 19], "unverified"),
    "wai-sr": (
        {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]},
        [],
        "verified",
    ),
    "wai-sr-t": ({"goal": [3, 6, 8], "task": [1, 4, 10], "bond": [2, 5, 7, 9]}, [], "derived"),
}


@pytest.mark.parametrize("instrument", sorted(EXPECTED))
def test_show_json_gives_the_published_key(cli, instrument):
    result = cli("instruments", "show", instrument, "-f", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    key, reverse, level = EXPECTED[instrument]
    got = {s["id"]: [int(i) for i in s["items"]] for s in data["subscales"]}
    assert got == key
    assert [int(i["id"]) for i in data["items"] if i["reverse"]] == reverse
    assert data["verification"]["status"] == level
    assert all(
        "INSTRUMENTS.md" not in s and "shared/" not in s for s in data["verification"]["sources"]
    )


def test_wai_s_items_are_the_wai_items_of_the_same_subscale(cli):
    # WAI-S items 1..12 are WAI items 2, 4, 8, 12, 21, 22, 23, 24, 26, 27, 32, 35.
    mapping = [2, 4, 8, 12, 21, 22, 23, 24, 26, 27, 32, 35]
    for short, long in (("wai-s", "wai"), ("wai-s-t", "wai-t")):
        s = json.loads(cli("instruments", "show", short, "-f", "json").stdout)
        w = json.loads(cli("instruments", "show", long, "-f", "json").stdout)
        wai_scale = {int(i): sub["id"] for sub in w["subscales"] for i in sub["items"]}
        wai_rev = {int(i["id"]) for i in w["items"] if i["reverse"]}
        for sub in s["subscales"]:
            assert {wai_scale[mapping[int(i) - 1]] for i in sub["items"]} == {sub["id"]}
        assert {int(i["id"]) for i in s["items"] if i["reverse"]} == {
            n for n, m in enumerate(mapping, start=1) if m in wai_rev
        }


def test_wai_sr_t_is_the_ten_item_therapist_form(cli):
    data = json.loads(cli("instruments", "show", "wai-sr-t", "-f", "json").stdout)
    assert len(data["items"]) == 10 and data["respondent"] == "therapist"
    assert "10-item" in data["name"] or "10 items" in data["name"]


@pytest.mark.parametrize("draft", ["star-p", "star-c"])
def test_a_draft_is_never_scored(cli, tmp_path: Path, draft):
    score = cli("score", draft, *["3"] * 12, "-f", "json")
    assert score.exit_code == 4 and score.stdout == ""
    (line,) = score.stderr.splitlines()
    assert line.startswith(f"error: {draft} is a draft") and "--instruments-dir" in line
    data = tmp_path / "star.csv"
    data.write_text("client,q1\n")  # never read: the refusal comes first
    batch = cli("batch", str(tmp_path / "missing.csv"), "-i", draft)
    assert batch.exit_code == 4 and "is a draft" in batch.stderr and batch.stdout == ""


def test_a_users_own_file_overrides_a_draft(cli, tmp_path: Path):
    """Issue 22: a draft carries no key, so a copy that only changes its status is refused;
    a user's own file with the key they hold overrides the draft and scores."""
    from alliance_cli.io.catalog import bundled_dir

    text = (bundled_dir() / "star-p.yaml").read_text(encoding="utf-8")
    lazy = text.replace("status: draft", "status: unverified")
    write(tmp_path / "star-p.yaml", lazy)
    refused = cli("--instruments-dir", str(tmp_path), "score", "star-p", *["3"] * 12)
    assert refused.exit_code == 4 and "no items: a form that is scored names" in refused.stderr
    own = lazy
    for size, items in (("size: 6", "items: [1, 2, 3, 5, 6, 9]"), ("size: 3", "items: [4, 7, 8]"),
                        ("size: 3", "items: [10, 11, 12]")):  # fmt: skip
        own = own.replace(size, items, 1)
    write(tmp_path / "star-p.yaml", own)
    result = cli("--instruments-dir", str(tmp_path), "score", "star-p", *["3"] * 12, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["scales"]["total"]["mean"] == 3.0


def test_instruments_list_shows_drafts(cli):
    rows = {r["id"]: r for r in json.loads(cli("instruments", "-f", "json").stdout)}
    assert rows["star-p"]["verification"] == "draft"
    assert "draft" in cli("instruments", "-f", "table").stdout


@pytest.mark.parametrize("fmt", ["json", "ndjson", "csv", "table"])
def test_below_verified_is_said_in_every_format(cli, fmt):
    result = cli("score", "wai-s", *["6"] * 12, "-f", fmt)
    assert result.exit_code == 0
    notices = [ln for ln in result.stderr.splitlines() if ln.startswith("note:")]
    assert len(notices) == 1 and "derived" in notices[0]
    quiet = cli("score", "wai-s", *["6"] * 12, "-f", fmt, "-q")
    assert "note:" not in quiet.stderr
    verified = cli("score", "wai-sr", *["4"] * 12, "-f", fmt)
    assert "note:" not in verified.stderr
    if fmt == "json":
        assert json.loads(result.stdout)[0]["instrument"]["verification"] == "derived"
    if fmt == "csv":
        (row,) = csv.DictReader(io.StringIO(result.stdout))
        assert row["verification"] == "derived"


def test_batch_says_the_level_once_and_in_a_column(cli, tmp_path: Path):
    path = tmp_path / "s.csv"
    path.write_text("id,q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12\na,6,6,6,2,6,6,6,6,6,1,6,6\n")
    result = cli("batch", str(path), "-i", "wai-s")
    assert result.exit_code == 0
    assert sum(ln.startswith("note:") for ln in result.stderr.splitlines()) == 1
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert row["verification"] == "derived"
    assert (row["goal_mean"], row["task_mean"]) == ("6.25", "6")  # 4 and 10 reversed
    ndjson = cli("batch", str(path), "-i", "wai-s", "-f", "ndjson", "-q")
    assert json.loads(ndjson.stdout)["instrument"]["verification"] == "derived"
    assert "note:" not in ndjson.stderr


def test_stdin_json_naming_another_instrument_is_rejected(cli):
    sets = [
        {"instrument": "wai-sr", "client_id": "a", "answers": ["4"] * 12},
        {"instrument": "WAI-S", "client_id": "b", "answers": ["4"] * 12},
    ]
    result = cli("score", "wai-s", "-", "-f", "ndjson", input=json.dumps(sets))
    assert result.exit_code == 3
    assert [json.loads(ln)["respondent"]["client_id"] for ln in result.stdout.splitlines()] == ["b"]
    assert "names instrument 'wai-sr' but is being scored as 'wai-s'" in result.stderr


def _export(tmp_path: Path, prefix: str, n: int) -> Path:
    path = tmp_path / f"{prefix or 'plain'}.csv"
    head = ",".join(f"{prefix}{i}" for i in range(1, n + 1))
    path.write_text(f"client_id,{head}\nc1," + ",".join(["4"] * n) + "\n")
    return path


@pytest.mark.parametrize(
    ("prefix", "n", "instrument", "other"),
    [("wai_sr_", 12, "wai-s", "wai-sr"), ("srs_", 4, "wai-sr", "srs"),
     ("WAI-S ", 12, "wai-sr", "wai-s"), ("wai_s_t_", 12, "wai-s", "wai-s-t")],
)  # fmt: skip
def test_columns_named_for_another_instrument_stop(cli, tmp_path, prefix, n, instrument, other):
    result = cli("batch", str(_export(tmp_path, prefix, n)), "-i", instrument)
    assert result.exit_code == 2 and result.stdout == ""
    assert f"named for instrument {other!r}" in result.stderr
    template = cli(
        "batch", str(_export(tmp_path, prefix, n)), "-i", instrument, "--columns",
        prefix + "{item}", "-q",
    )  # fmt: skip
    if n == 12 or instrument == "srs":
        assert template.exit_code == 0, template.stderr  # chosen on purpose


@pytest.mark.parametrize(
    ("prefix", "instrument"),
    [("wai_", "wai-sr"), ("q", "wai-s"), ("item", "wai-sr"), ("wai_sr_", "wai-sr"), ("", "srs")],
)
def test_generic_prefixes_are_evidence_of_nothing(cli, tmp_path, prefix, instrument):
    n = 4 if instrument == "srs" else 12
    result = cli("batch", str(_export(tmp_path, prefix, n)), "-i", instrument, "-q")
    assert result.exit_code == 0, result.stderr


def test_the_bundled_example_export_still_scores(cli):
    from .conftest import ROOT

    result = cli("batch", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr", "-q")
    assert result.exit_code == 3  # its two bad rows, by design
    assert len(result.stdout.splitlines()) == 199 - 2 + 1  # header + scored rows


def test_history_keeps_and_shows_the_level(cli, tmp_path: Path):
    db = str(tmp_path / "h.sqlite")
    for session in (1, 2):
        saved = cli(
            "score", "wai-s", *["6"] * 12, "--client", "C-1", "--session", str(session),
            "--save", "--db", db, "-f", "json", "-q",
        )  # fmt: skip
        assert saved.exit_code == 0, saved.stderr
    (view,) = json.loads(cli("history", "C-1", "--db", db, "-f", "json").stdout)
    assert view["verification"] == "derived"
    assert [s["verification"] for s in view["sessions"]] == ["derived", "derived"]
    assert all(s["definition_current"] for s in view["sessions"])
    rows = list(csv.DictReader(io.StringIO(cli("history", "C-1", "--db", db, "-f", "csv").stdout)))
    assert {r["verification"] for r in rows} == {"derived"}
    assert "derived key" in cli("history", "C-1", "--db", db, "-f", "table").stdout


def test_history_says_when_a_session_was_scored_with_an_earlier_definition(cli, tmp_path: Path):
    from alliance_cli.io.catalog import bundled_dir

    db = str(tmp_path / "h.sqlite")
    own = tmp_path / "own"
    own.mkdir()
    text = (bundled_dir() / "wai-s.yaml").read_text(encoding="utf-8")
    (own / "wai-s.yaml").write_text(text.replace("max_missing: 3", "max_missing: 2"))
    args = ("--client", "C-2", "--save", "--db", db, "-q")
    assert (
        cli(
            "--instruments-dir", str(own), "score", "wai-s", *["5"] * 12, "--session", "1", *args
        ).exit_code
        == 0
    )
    assert cli("score", "wai-s", *["5"] * 12, "--session", "2", *args).exit_code == 0
    (view,) = json.loads(cli("history", "C-2", "--db", db, "-f", "json").stdout)
    assert [s["definition_current"] for s in view["sessions"]] == [False, True]
    table = " ".join(cli("history", "C-2", "--db", db, "-f", "table").stdout.split())
    assert "Session 1 was scored with another definition" in table
