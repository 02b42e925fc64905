"""Issue 20, item 5: every input path gives a reason and a documented exit code, never a
traceback or exit 1: FHIR limits, duplicate keys, Bundle entries, UTF-16/32, BOMs on stdin,
Parquet columns, encodings, environment variables, argv and templates."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ITEMS = [{"linkId": str(i), "answer": [{"valueDecimal": 9}]} for i in range(1, 5)]
GOOD = {"resourceType": "QuestionnaireResponse", "status": "completed",
        "subject": {"reference": "Patient/p1"}, "item": ITEMS}  # fmt: skip


def _nested_groups(depth: int) -> dict:
    group: dict = {"linkId": "1", "answer": [{"valueDecimal": 9}]}
    for k in range(depth):
        group = {"linkId": f"g{k}", "item": [group]}
    return dict(GOOD, item=[group])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (json.dumps(_nested_groups(400)), "nested deeper than 100 levels"),
        (
            '{"resourceType": "QuestionnaireResponse", "item": '
            + "[" * 50_000
            + "]" * 50_000
            + "}",
            "JSON nested too deeply",
        ),
        (
            json.dumps(GOOD).replace('"valueDecimal": 9', '"valueDecimal": ' + "9" * 5000, 1),
            "not usable JSON",
        ),
        (
            json.dumps(GOOD).replace(
                '"status": "completed"', '"status": "completed", "status": "entered-in-error"'
            ),
            "key 'status' is given twice",
        ),
    ],
)
def test_hostile_fhir_is_a_rejection_with_a_reason(cli, tmp_path: Path, text: str, words: str):
    src = tmp_path / "r.json"
    src.write_text(text)
    result = cli("batch", str(src), "-i", "srs")
    assert result.exit_code == 3, result.stderr
    assert words in result.stderr and "internal error" not in result.stderr
    assert "1 row read, 0 scored, 1 rejected" in result.stderr


def test_one_empty_bundle_entry_rejects_only_itself(cli, tmp_path: Path):
    src = tmp_path / "b.json"
    src.write_text(json.dumps({"resourceType": "Bundle", "type": "collection",
                               "entry": [{}, {"resource": GOOD}]}))  # fmt: skip
    result = cli("batch", str(src), "-i", "srs")
    assert result.exit_code == 3
    assert "entry[0]: no resource in this Bundle entry" in result.stderr
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr
    assert result.stdout.splitlines()[1].startswith("p1,")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_utf16_and_utf32_ndjson_are_read_as_fhir(cli, tmp_path: Path, encoding: str):
    src = tmp_path / "r.ndjson"
    src.write_bytes((json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n").encode(encoding))
    result = cli("batch", str(src), "-i", "srs")
    assert result.exit_code == 0, result.stderr
    assert "layout: FHIR" in result.stderr and "2 rows read, 2 scored" in result.stderr


def test_a_csv_in_utf16_without_a_bom_scores_like_utf8(cli, tmp_path: Path):
    text = "client_id,srs_1,srs_2,srs_3,srs_4\nC-1,9,8,7,6\n"
    src = tmp_path / "x.csv"
    src.write_bytes(text.encode("utf-16-le"))
    plain = tmp_path / "y.csv"
    plain.write_text(text)
    assert (
        cli("batch", str(src), "-i", "srs").stdout == cli("batch", str(plain), "-i", "srs").stdout
    )


def test_a_bom_on_stdin_does_not_turn_json_into_answers(cli):
    result = cli("score", "srs", "-", "-f", "json", input='\ufeff{"answers": [9, 9, 9, 8]}\n')
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["scales"]["total"]["sum"] == 35
    lines = cli("score", "srs", "-", "-f", "json", input="\ufeff9 9 9 8\n")
    assert json.loads(lines.stdout)[0]["scales"]["total"]["sum"] == 35


@pytest.mark.parametrize(
    ("encoding", "code", "words"),
    [
        ("rot13", 2, "not a text encoding"),
        ("base64", 2, "not a text encoding"),
        ("no-such", 2, "not a text encoding"),
        ("utf-16", 5, "does not start with BOM"),
    ],
)
def test_encodings_that_cannot_read_the_file(cli, tmp_path, encoding, code, words):
    src = tmp_path / "x.csv"
    src.write_text("client_id,srs_1,srs_2,srs_3,srs_4\nC-1,9,8,7,6\n")
    result = cli("batch", str(src), "-i", "srs", "--encoding", encoding)
    assert result.exit_code == code and words in result.stderr, result.stderr


def test_a_kept_column_named_like_a_score_column_is_renamed(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("client_id,total_mean,srs_1,srs_2,srs_3,srs_4\nC-1,1,9,9,9,9\n")
    result = cli("batch", str(src), "-i", "srs")
    header = result.stdout.splitlines()[0].split(",")
    assert header.count("total_mean") == 1 and "input_total_mean" in header
    row = dict(zip(header, result.stdout.splitlines()[1].split(","), strict=True))
    assert row["total_mean"] == "9" and row["input_total_mean"] == "1"
    assert "'total_mean' is written as 'input_total_mean'" in result.stderr


@pytest.mark.parametrize(
    ("name", "value"), [("ALLIANCE_LOCK_WAIT", "bogus"), ("ALLIANCE_JOBS_MIN_BYTES", "bogus"),
                        ("ALLIANCE_LOCK_WAIT", "-1"), ("ALLIANCE_LOCK_WAIT", "nan")]
)  # fmt: skip
def test_bad_environment_values_are_usage_errors(cli, tmp_path, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    src = tmp_path / "x.csv"
    src.write_text("client_id,session,srs_1,srs_2,srs_3,srs_4\nC-1,1,9,8,7,6\n")
    result = cli("batch", str(src), "-i", "srs", "--save", "--db", str(tmp_path / "h.sqlite"),
                 "-j", "2")  # fmt: skip
    assert result.exit_code == 2 and f"{name}={value!r}" in result.stderr, result.stderr


def test_an_argument_that_is_not_utf8_is_a_usage_error(cli, tmp_path: Path):
    # Python keeps argv bytes that are not UTF-8 as lone surrogates ("\udcff")
    result = cli("score", "srs", "9", "9", "9", "9", "--client", "C-\udcff", "--session", "1",
                 "--save", "--db", str(tmp_path / "h.sqlite"))  # fmt: skip
    assert result.exit_code == 2 and "not valid UTF-8 text" in result.stderr
    assert not (tmp_path / "h.sqlite").exists()


@pytest.mark.parametrize("template", ["{item:>1000000000}", "{item:>100000000}", "q{item+10**9}",
                                      "{item+99999999999999}"])  # fmt: skip
def test_template_widths_are_bounded(cli, tmp_path: Path, template: str):
    src = tmp_path / "x.csv"
    src.write_text("client_id,srs_1,srs_2,srs_3,srs_4\nC-1,9,8,7,6\n")
    result = cli("batch", str(src), "-i", "srs", "--columns", template)
    assert result.exit_code == 2 and len(result.stderr) < 300, result.stderr[:300]


def test_a_recode_giving_one_code_two_values_is_refused(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("client_id,srs_1,srs_2,srs_3,srs_4\nC-1,9,8,7,6\n")
    result = cli("batch", str(src), "-i", "srs", "--recode", "0=1,0=5")
    assert result.exit_code == 2 and "code '0' is given twice" in result.stderr


class TestParquet:
    pa = pytest.importorskip("pyarrow")

    def _write(self, path: Path, extra: dict) -> None:
        import pyarrow.parquet as pq

        base = {"client_id": ["C-1", "C-2"], **{f"srs_{i}": [9, 8] for i in range(1, 5)}}
        pq.write_table(self.pa.table({**base, **extra}), path)

    @pytest.mark.parametrize(
        ("column", "shown"),
        [
            ({"tags": [[1, 2], []]}, "[1, 2]"),
            ({"meta": [{"a": 1}, {"a": 2}]}, '{"a": 1}'),
            ({"blob": [b"\xff\xfe", b"ok"]}, "\\xff\\xfe"),  # bytes that are not UTF-8, shown
            ({"total_mean": [1.5, 2.5]}, "1.5"),
        ],
    )
    def test_nested_binary_and_clashing_columns_are_kept_as_text(self, cli, tmp_path, column,
                                                                 shown):  # fmt: skip
        src = tmp_path / "x.parquet"
        self._write(src, column)
        result = cli("batch", str(src), "-i", "srs", "-f", "json")
        assert result.exit_code == 0, result.stderr
        rows = json.loads(result.stdout)
        assert len(rows) == 2 and rows[0]["scales"]["total"]["sum"] == 36
        kept = rows[0]["source"]["columns"]
        assert list(kept.values()) == ["C-1", shown]


# -- item 6: instrument checks, and a definition whose subscale ids change ------------------


def test_a_step_larger_than_the_range_fails_the_check(cli, tmp_path: Path):
    from .conftest import ROOT

    text = (ROOT / "instruments" / "srs.yaml").read_text(encoding="utf-8")
    mine = tmp_path / "bigstep.yaml"
    mine.write_text(text.replace("id: srs", "id: bigstep", 1).replace("step: 0.1", "step: 1e9"))
    result = cli("instruments", "check", str(mine))
    assert result.exit_code == 4
    assert "step 1e+09 is larger than the range 0-10" in result.stderr


def test_a_renamed_subscale_keeps_every_view_readable(cli, tmp_path: Path):
    from .conftest import ROOT

    db = str(tmp_path / "h.sqlite")
    answers = ["4"] * 12
    for session in ("1", "2", "3"):
        saved = cli("score", "wai-sr", *answers, "--client", "C-1", "--session", session,
                    "--save", "--db", db, "-q")  # fmt: skip
        assert saved.exit_code == 0, saved.stderr
    own = tmp_path / "d"
    own.mkdir()
    text = (ROOT / "instruments" / "wai-sr.yaml").read_text(encoding="utf-8")
    (own / "wai-sr.yaml").write_text(text.replace("{id: goal,", "{id: aims,"), encoding="utf-8")
    renamed = cli("--instruments-dir", str(own), "score", "wai-sr", *answers, "--client", "C-1",
                  "--session", "4", "--save", "--db", db, "-q")  # fmt: skip
    assert renamed.exit_code == 0, renamed.stderr
    table = cli("history", "C-1", "--db", db, "-f", "table")
    assert table.exit_code == 0, table.stderr
    assert "Goal (goal)" in table.stdout and "Goal (aims)" in table.stdout
    assert "Session 4 was scored with another definition" in table.stdout
    for args in (["history", "C-1", "-f", "json"], ["history", "C-1", "-f", "csv"],
                 ["clients"], ["report", "C-1", "-o", str(tmp_path / "r.html")]):  # fmt: skip
        result = cli(*args, "--db", db)
        assert result.exit_code == 0, (args, result.stderr)
    sessions = json.loads(cli("history", "C-1", "--db", db, "-f", "json").stdout)[0]["sessions"]
    assert [sorted(s["scales"]) for s in sessions] == [["bond", "goal", "task", "total"]] * 3 + [
        ["aims", "bond", "task", "total"]
    ]


# -- item 7: look-alike and control characters are shown written out ------------------------

LOOK_ALIKES = ["C-\u202e701", "C-8\u200b", "C-9\nfake"]


@pytest.fixture
def look_alike_store(cli, tmp_path: Path) -> str:
    src = tmp_path / "look.csv"
    rows = "".join(f'"{who}",1,9,9,9,9\n' for who in LOOK_ALIKES)
    src.write_text("client_id,session,srs_1,srs_2,srs_3,srs_4\n" + rows + "C-1,1,9,9,9,9\n")
    db = str(tmp_path / "h.sqlite")
    saved = cli("batch", str(src), "-i", "srs", "--save", "--db", db, "-o", os.devnull, "-q")
    assert saved.exit_code == 0, saved.stderr
    return db


def test_look_alike_ids_are_written_out_in_tables_messages_and_reports(cli, look_alike_store,
                                                                       tmp_path):  # fmt: skip
    db = look_alike_store
    table = cli("clients", "--db", db, "-f", "table").stdout
    for shown in ("C-\\u202e701", "C-8\\u200b", "C-9\\nfake"):
        assert shown in table
    assert (
        "\u202e" not in table
        and "\u200b" not in table
        and "fake" not in table.replace("C-9\\nfake", "")
    )
    history = cli("history", "C-\u202e701", "--db", db, "-f", "table").stdout
    assert "Client C-\\u202e701 " in history and "\u202e" not in history
    typo = cli("history", "C-8\u200b\u200b", "--db", db)
    assert (
        typo.exit_code == 2 and "\u200b" not in typo.stderr and len(typo.stderr.splitlines()) == 1
    )
    out = tmp_path / "r.html"
    assert cli("report", "C-\u202e701", "--db", db, "-o", str(out)).exit_code == 0
    page = out.read_text(encoding="utf-8")
    assert "\u202e" not in page and "C-\\u202e701" in page
    data = json.loads(cli("clients", "--db", db, "-f", "json").stdout)  # JSON keeps the data
    assert {r["client_id"] for r in data} == {*LOOK_ALIKES, "C-1"}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_require_plain_ids_rejects_them_at_input(cli, tmp_path: Path, monkeypatch, jobs):
    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")
    src = tmp_path / "look.csv"
    rows = "".join(f'"{who}",1,9,9,9,9\n' for who in LOOK_ALIKES)
    src.write_text("client_id,session,srs_1,srs_2,srs_3,srs_4\n" + rows + "C-1,1,9,9,9,9\n")
    result = cli("batch", str(src), "-i", "srs", "--require-plain-ids", "-j", jobs)
    assert result.exit_code == 3
    assert "4 rows read, 1 scored, 3 rejected" in result.stderr
    assert "holds \\u202e, which does not show plainly (--require-plain-ids)" in result.stderr
    assert [r.split(",")[0] for r in result.stdout.splitlines()[1:]] == ["C-1"]
    one = cli("score", "srs", "9", "9", "9", "9", "--client", "X\u200d", "--require-plain-ids")
    assert one.exit_code == 3 and "holds \\u200d" in one.stderr
