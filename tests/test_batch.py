"""``alliance batch``: row accounting, column mapping, robustness, atomic output."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance_cli.core.errors import DataFileError

from .conftest import env_without_color, scorer_for, write

ITEMS = [f"wai_{i}" for i in range(1, 13)]
HEADER = ["client_id", "session", "date", *ITEMS]
KEY = {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]}


def _csv(rows: list[list[str]], header=HEADER, delimiter=",", newline="\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_scores_match_an_independent_computation(cli, tmp_path: Path):
    import random

    rng = random.Random(7)
    rows = []
    for n in range(300):
        answers = [str(rng.randint(1, 5)) if rng.random() > 0.1 else "" for _ in range(12)]
        rows.append([f"c{n}", "1", "2026-01-01", *answers])
    path = tmp_path / "in.csv"
    path.write_text(_csv(rows), encoding="utf-8")
    result = cli("batch", str(path), "-i", "wai-sr", "-q")
    out = _read(result.stdout)
    assert len(out) + result.stderr.count("rejected") == 300
    by_client = {r["client_id"]: r for r in out}
    for row in rows:
        values = {i + 1: row[3 + i] for i in range(12)}
        for scale, items in KEY.items():
            answered = [int(values[i]) for i in items if values[i]]
            got = by_client[row[0]][f"{scale}_mean"]
            if len(items) - len(answered) > 1:
                assert got == ""
            else:
                assert math.isclose(float(got), sum(answered) / len(answered), abs_tol=5e-7)


@given(
    data=st.lists(
        st.lists(
            st.sampled_from(["1", "2", "3", "4", "5", "", " 4 ", "Always", "x", "9", "3.5", '"q"']),
            min_size=12,
            max_size=12,
        ),
        max_size=25,
    ),
    ragged=st.sets(st.integers(0, 24), max_size=3),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n"]),
    bom=st.booleans(),
    quote_all=st.booleans(),
)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_row_is_scored_or_rejected(
    tmp_path_factory, data, ragged, delimiter, newline, bom, quote_all
):
    from alliance_cli.batch import engine as batch
    from alliance_cli.batch import run

    rows = [[f"c{i}", str(i), "2026-01-01", *answers] for i, answers in enumerate(data)]
    for i in ragged:
        if i < len(rows):
            rows[i] = rows[i][:-1]
    buf = io.StringIO()
    quoting = csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL
    w = csv.writer(buf, delimiter=delimiter, lineterminator=newline, quoting=quoting)
    w.writerow(HEADER)
    w.writerows(rows)
    path = tmp_path_factory.mktemp("h") / "in.csv"
    path.write_bytes(("\ufeff" if bom else "").encode() + buf.getvalue().encode("utf-8"))
    out = tmp_path_factory.mktemp("o") / "out.csv"
    rejected: list[batch.Rejection] = []
    if not rows:
        with pytest.raises(DataFileError, match="no data rows"):
            run.run_files(
                [str(path)], scorer_for("wai-sr"), "csv", out, None, batch.BatchOptions(), print
            )
        assert not out.exists()
        return
    stats, _written = run.run_files(
        [str(path)], scorer_for("wai-sr"), "csv", out, None, batch.BatchOptions(), rejected.append
    )
    scored = _read(out.read_text(encoding="utf-8"))
    assert stats.read == len(rows) == stats.scored + stats.rejected
    assert len(scored) == stats.scored and len(rejected) == stats.rejected
    seen = sorted([r["client_id"] for r in scored] + [rows[r.line - 2][0] for r in rejected])
    assert seen == sorted(r[0] for r in rows)  # each input row in exactly one place


@pytest.mark.parametrize(
    ("header", "extra"),
    [
        ([str(i) for i in range(1, 13)], []),
        ([f"item{i}" for i in range(1, 13)], []),
        ([f"Q{i:02d}" for i in range(1, 13)], []),
        ([f"wai_sr_{i}" for i in range(1, 13)], []),
    ],
)
def test_item_columns_are_found(cli, tmp_path: Path, header, extra):
    path = write(
        tmp_path / "in.csv", _csv([["c1", *"5 4 4 3 5 4 4 3 5 4 4 3".split()]], ["client", *header])
    )
    result = cli("batch", str(path), "-i", "wai-sr", "-q")
    assert result.exit_code == 0, result.stderr
    assert _read(result.stdout)[0]["total_mean"] == "4"


def test_template_and_map(cli, tmp_path: Path):
    header = ["id", *[f"alliance q{i} (wai)" for i in range(1, 13)]]
    path = write(tmp_path / "in.csv", _csv([["c1", *"5 4 4 3 5 4 4 3 5 4 4 3".split()]], header))
    assert (
        cli(
            "batch", str(path), "-i", "wai-sr", "--columns", "alliance q{item} (wai)", "-q"
        ).exit_code
        == 0
    )
    mapping = write(
        tmp_path / "map.yaml", "\n".join(f'{i}: "alliance q{i} (wai)"' for i in range(1, 13))
    )
    result = cli("batch", str(path), "-i", "wai-sr", "--map", str(mapping), "-q")
    assert result.exit_code == 0 and _read(result.stdout)[0]["goal_mean"] == "3.5"


def test_incomplete_mapping_stops_before_scoring(cli, tmp_path: Path):
    header = ["client", *[f"wai_{i}" for i in range(1, 11)], "other"]
    path = write(tmp_path / "in.csv", _csv([["c1", *["4"] * 11]], header))
    result = cli("batch", str(path), "-i", "wai-sr")
    assert result.exit_code == 2
    assert "items 11, 12 have no column" in result.stderr and "wai_1" in result.stderr
    assert result.stdout == ""


def test_ambiguous_mapping_stops(cli, tmp_path: Path):
    header = [*[f"pre_{i}" for i in range(1, 13)], *[f"post_{i}" for i in range(1, 13)]]
    path = write(tmp_path / "in.csv", _csv([["4"] * 24], header))
    result = cli("batch", str(path), "-i", "wai-sr")
    assert result.exit_code == 2 and "ambiguous" in result.stderr
    assert "'pre_<item>' and 'post_<item>' both fit" in result.stderr
    header += [f"mid_{i}" for i in range(1, 13)]
    three = cli(
        "batch", str(write(tmp_path / "in3.csv", _csv([["4"] * 36], header))), "-i", "wai-sr"
    )
    assert "'pre_<item>', 'post_<item>' and 'mid_<item>' all fit" in three.stderr, three.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty file"),
        (",".join(HEADER) + "\n", "a header but no data rows"),
        (
            ",".join(f"wai_{i}" for i in [*range(1, 13), 1]) + "\n" + "4," * 12 + "4\n",
            "duplicate column 'wai_1' (columns 1 and 13)",
        ),
        ("x,y\n1,2\n", "no item columns found"),
    ],
)
def test_unusable_files(cli, tmp_path: Path, content, message):
    path = tmp_path / "in.csv"
    path.write_text(content, encoding="utf-8")
    result = cli("batch", str(path), "-i", "wai-sr")
    assert result.exit_code in (2, 5)
    assert message in result.stderr and "Traceback" not in result.stderr


def test_latin1_needs_encoding(cli, tmp_path: Path):
    path = tmp_path / "in.csv"
    path.write_bytes(_csv([["Jos\xe9", "1", "", *["4"] * 12]]).encode("latin-1"))
    bad = cli("batch", str(path), "-i", "wai-sr")
    assert bad.exit_code == 5 and "--encoding latin-1" in bad.stderr
    good = cli("batch", str(path), "-i", "wai-sr", "--encoding", "latin-1", "-q")
    assert good.exit_code == 0 and _read(good.stdout)[0]["client_id"] == "José"


def test_rejects_file_and_exit_3(cli, tmp_path: Path):
    rows = [["c1", "1", "", *["4"] * 12], ["c2", "1", "", "4", "4", "7", *["4"] * 9]]
    path = write(tmp_path / "in.csv", _csv(rows))
    rejects = tmp_path / "rejects.csv"
    result = cli(
        "batch", str(path), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"), "--rejects", str(rejects)
    )
    assert result.exit_code == 3
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr
    (rej,) = _read(rejects.read_text(encoding="utf-8"))
    assert (rej["line"], rej["client_id"], rej["column"], rej["value"]) == ("3", "c2", "wai_3", "7")
    assert rej["reason"] == 'item 3: "7" is outside 1–5'


def test_strict_writes_nothing(cli, tmp_path: Path):
    rows = [["c1", "1", "", *["4"] * 12], ["c2", "1", "", *["x"] * 12]]
    path = write(tmp_path / "in.csv", _csv(rows))
    out = tmp_path / "o.csv"
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(out), "--strict")
    assert result.exit_code == 3 and not out.exists()
    assert cli("batch", str(path), "-i", "wai-sr", "--strict", "-q").stdout == ""


def test_invalid_missing_scores_bad_cells_as_missing(cli, tmp_path: Path):
    rows = [["c2", "1", "", "4", "4", "7", *["4"] * 9]]
    path = write(tmp_path / "in.csv", _csv(rows))
    result = cli("batch", str(path), "-i", "wai-sr", "--invalid", "missing", "-q")
    assert result.exit_code == 0 and _read(result.stdout)[0]["bond_answered"] == "3"


def test_input_is_never_overwritten(cli, tmp_path: Path):
    path = write(tmp_path / "in.csv", _csv([["c1", "1", "", *["4"] * 12]]))
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(path))
    assert result.exit_code == 2 and "never overwritten" in result.stderr


def test_several_files_one_stream_and_mismatch(cli, tmp_path: Path):
    a = write(tmp_path / "a.csv", _csv([["c1", "1", "", *["4"] * 12]]))
    b = write(tmp_path / "b.csv", _csv([["c2", "1", "", *["5"] * 12]]))
    result = cli("batch", str(a), str(b), "-i", "wai-sr", "-q")
    assert [r["client_id"] for r in _read(result.stdout)] == ["c1", "c2"]
    c = write(tmp_path / "c.csv", _csv([["c3", *["5"] * 12]], ["client", *ITEMS]))
    bad = cli("batch", str(a), str(c), "-i", "wai-sr")
    assert bad.exit_code == 5 and "columns differ" in bad.stderr


SAME_SESSION = ["--client", "c1", "--session", "2", "--date", "2026-03-01"]
FULL_ANSWERS = "5 4 4 3 5 4 4 3 5 4 4 3".split()


def _score_command(cli, fmt: str) -> str:
    return cli("score", "wai-sr", *FULL_ANSWERS, *SAME_SESSION, "-f", fmt).stdout


def test_ndjson_equals_score_command(cli, tmp_path: Path):
    path = write(tmp_path / "in.csv", _csv([["c1", "2", "2026-03-01", *FULL_ANSWERS]]))
    line = json.loads(cli("batch", str(path), "-i", "wai-sr", "-f", "ndjson", "-q").stdout)
    # batch adds where the row came from and its other columns, so results join back
    source = line.pop("source")
    assert source["file"] == str(path) and source["line"] == 2
    assert source["columns"] == {"client_id": "c1", "session": "2", "date": "2026-03-01"}
    assert [line] == json.loads(_score_command(cli, "json"))


def test_stdin_and_csv_matches_score_csv(cli):
    rows = _csv([["c1", "2", "2026-03-01", *FULL_ANSWERS]])
    b = _read(cli("batch", "-", "-i", "wai-sr", "-q", input=rows).stdout)[0]
    s = _read(_score_command(cli, "csv"))[0]
    assert {k: v for k, v in b.items() if k in s} == {k: v for k, v in s.items() if k in b}


def test_killed_run_leaves_no_partial_output(tmp_path: Path):
    # The input arrives on a pipe that stays open, so the run is mid-way (rows scored,
    # output partly written to its temporary file) when the signal comes.
    out = tmp_path / "out.csv"
    out.write_text("previous good file\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "alliance_cli", "batch", "-", "-i", "wai-sr", "-o", str(out), "-q"],
        env=env_without_color(), cwd=tmp_path, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(_csv([[f"c{n}", "1", "", *["4"] * 12] for n in range(20_000)]).encode())
    proc.stdin.flush()
    deadline = time.monotonic() + 20
    while not any(p.endswith(".part") for p in os.listdir(tmp_path)):
        assert time.monotonic() < deadline, "no temporary output appeared"
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130
    assert out.read_text(encoding="utf-8") == "previous good file\n"
    assert [p for p in os.listdir(tmp_path) if p.endswith(".part")] == []


def test_line_numbers_count_line_breaks_inside_quoted_fields(cli, tmp_path: Path):
    header = ["client_id", "note", *ITEMS]
    rows = [
        ["c1", "two\nlines", *["4"] * 12],
        ["c2", "crlf\r\ninside", *["4"] * 12],
        ["c3", "", "4", "x", *["4"] * 10],
    ]
    path = tmp_path / "in.csv"
    path.write_text(_csv(rows, header, newline="\r\n"), encoding="utf-8", newline="")
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 3
    # header 1; c1 on lines 2-3; c2 on lines 4-5; c3 on line 6
    assert f"{path}:6: wai_2: item 2:" in result.stderr


def test_json_array_ndjson_keep_and_tab_delimiter(cli, tmp_path: Path):
    rows = [["c1", "1", "2026-01-01", *["4"] * 12], ["c2", "2", "2026-01-02", *["5"] * 12]]
    path = tmp_path / "in.tsv"
    path.write_text(_csv(rows, delimiter="\t"), encoding="utf-8")
    array = json.loads(cli("batch", str(path), "-i", "wai-sr", "-f", "json", "-q").stdout)
    assert [s["respondent"]["client_id"] for s in array] == ["c1", "c2"]
    lines = cli("batch", str(path), "-i", "wai-sr", "-f", "ndjson", "-q").stdout.splitlines()
    assert [json.loads(line)["scales"]["total"]["mean"] for line in lines] == [4.0, 5.0]
    kept = cli(
        "batch", str(path), "-i", "wai-sr", "--keep", "client_id", "--delimiter", "tab", "-q"
    )
    header = kept.stdout.splitlines()[0].split(",")
    assert header[0] == "client_id" and header[1] == "goal_mean"


def test_require_ids_rejects_rows_without_them(cli, tmp_path: Path):
    rows = [["c1", "1", "", *["4"] * 12], ["", "2", "", *["4"] * 12], ["c3", "", "", *["4"] * 12]]
    path = write(tmp_path / "in.csv", _csv(rows))
    result = cli("batch", str(path), "-i", "wai-sr", "--require-ids")
    assert result.exit_code == 3
    assert "client_id is blank (ids are required)" in result.stderr
    assert "session is blank (ids are required)" in result.stderr
    assert [r["client_id"] for r in _read(result.stdout)] == ["c1"]


def test_bad_delimiter_is_a_usage_error(cli, tmp_path: Path):
    path = write(tmp_path / "in.csv", _csv([["c1", "1", "", *["4"] * 12]]))
    result = cli("batch", str(path), "-i", "wai-sr", "--delimiter", "ab")
    assert result.exit_code == 2
    assert "--delimiter 'ab' must be one character" in result.stderr


def test_a_longer_form_is_not_read_as_a_shorter_one(cli, tmp_path: Path):
    path = write(tmp_path / "in.csv", _csv([["c1", "1", "", *["4"] * 12]]))
    result = cli("batch", str(path), "-i", "srs")
    assert result.exit_code == 2
    assert "item columns beyond this instrument's 4 items (wai_5, wai_6, wai_7, …)" in result.stderr
    named = cli("batch", str(path), "-i", "srs", "--columns", "wai_{item}", "-q")
    assert named.exit_code == 0


def test_column_options_naming_missing_columns_are_usage_errors(cli, tmp_path: Path):
    path = write(tmp_path / "in.csv", _csv([["c1", "1", "", *["4"] * 12]]))
    template = cli("batch", str(path), "-i", "wai-sr", "--columns", "x{item}")
    assert template.exit_code == 2
    assert template.stderr == (  # naming the file whose header it is
        f"error: {path}: no column for item 1 (expected 'x1'), 2 (expected 'x2'), 3 "
        "(expected 'x3') and 9 more\n"
    )
    assert cli("batch", str(path), "-i", "wai-sr", "--id-column", "nope").exit_code == 2
    bad_map = write(tmp_path / "map.yaml", "1: wai_1\n2: [\n")
    mapped = cli("batch", str(path), "-i", "wai-sr", "--map", str(bad_map))
    assert mapped.exit_code == 5 and len(mapped.stderr.splitlines()) == 1
    assert f"{bad_map}:" in mapped.stderr and "not valid YAML" in mapped.stderr


def test_a_file_given_twice_is_noted(cli, tmp_path: Path):
    """The same export given twice (a glob and a name, or a hard link) had its rows scored
    and counted twice without a word."""
    from .conftest import ROOT

    src = tmp_path / "x.csv"
    src.write_text((ROOT / "examples" / "clinic_wai_sr.csv").read_text(encoding="utf-8"))
    os.link(src, tmp_path / "link.csv")
    twice = cli("batch", str(src), str(src), "-i", "wai-sr", "-o", os.devnull)
    assert f"note: {src} is given twice: its rows are read, scored and counted twice" in (
        twice.stderr
    )
    assert "398 rows read" in twice.stderr  # (counted twice: the note says so)
    linked = cli("batch", str(src), str(tmp_path / "link.csv"), "-i", "wai-sr", "-o", os.devnull)
    assert f"note: {src} and {tmp_path / 'link.csv'} are one file: its rows are read" in (
        linked.stderr
    )
    once = cli("batch", str(src), "-i", "wai-sr", "-o", os.devnull)
    assert "note:" not in once.stderr


def test_the_rejections_not_shown_are_counted_grouped(cli, tmp_path: Path):
    """Past the first rejections on the terminal, "… and 1001 more" is "… and 1,001 more"."""
    rows = [[f"B-{n}", "1", "", *["9"] * 12] for n in range(1021)]
    src = write(tmp_path / "bad.csv", _csv(rows))
    result = cli("batch", str(src), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 3
    shown = result.stderr.count("rejected: ") - 1  # (the last says how many more)
    assert f"rejected: … and {1021 - shown:,} more (use --rejects FILE" in result.stderr
    assert 1021 - shown >= 1000
