"""Issue 14: batch --jobs N writes byte for byte what --jobs 1 writes.

Small files are split too here (ALLIANCE_JOBS_MIN_BYTES=1), so every boundary case is
exercised: rejections near range starts, blank and not-administered rows, quoted fields
with commas and line breaks (which make the split unsafe: detected, then one process),
bare carriage returns, a missing final newline, JSON and NDJSON outputs, REDCap's layout.
"""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

import pytest

HEADER = ["client_id", "session", "note"] + [f"wai_{i}" for i in range(1, 13)]


@pytest.fixture(autouse=True)
def _split_small_files(monkeypatch):
    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")


def _export(path: Path, rows: int = 2500, note=lambda n: "", newline: str = "\n") -> Path:
    rng = random.Random(rows)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator=newline)
        writer.writerow(HEADER)
        for n in range(rows):
            cells = [str(rng.randint(1, 5)) if rng.random() > 0.03 else "" for _ in range(12)]
            if n % 97 == 5:
                cells[rng.randrange(12)] = rng.choice(["9", "x", "3.5"])  # rejected
            if n % 151 == 7:
                cells = [""] * 12  # not administered
            writer.writerow([f"C{n % 300:03d}", str(n % 20 + 1), note(n), *cells])
            if n % 400 == 3:
                handle.write(newline)  # a blank line
    return path


def _run(cli, path: Path, jobs: int, fmt: str, tmp: Path, *extra: str):
    out, rejects = tmp / f"out-{jobs}-{fmt}", tmp / f"rej-{jobs}-{fmt}.csv"
    result = cli("batch", str(path), "-i", "wai-sr", "-f", fmt, "-o", str(out),
                 "--rejects", str(rejects), "--jobs", str(jobs), *extra)  # fmt: skip
    summary = re.sub(r"in \d+\.\d+ s", "in N s", result.stderr).replace(str(rejects), "REJ")
    return result.exit_code, out.read_bytes(), rejects.read_bytes(), summary


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "json"])
@pytest.mark.parametrize("jobs", [2, 3])
def test_jobs_write_what_one_process_writes(cli, tmp_path: Path, fmt, jobs):
    notes = lambda n: ["plain", "with, comma", "=SUM(A1)", 'quote "q"'][n % 4]  # noqa: E731
    path = _export(tmp_path / "in.csv", note=notes)
    one = _run(cli, path, 1, fmt, tmp_path)
    many = _run(cli, path, jobs, fmt, tmp_path)
    assert one[0] == 3 and many == one
    assert "not administered" in one[3]


@pytest.mark.parametrize(
    "note",
    [
        lambda n: "two\nlines" if n == 1800 else "",  # a quoted line break in a later range
        lambda n: "two\nlines" if n == 3 else "",  # in the first range
        lambda n: "a\r\nb" if n % 500 == 0 else "",  # CRLF inside quotes
    ],
)
def test_quoted_line_breaks_come_out_right(cli, tmp_path: Path, note):
    path = _export(tmp_path / "in.csv", note=note)
    assert _run(cli, path, 2, "csv", tmp_path) == _run(cli, path, 1, "csv", tmp_path)


def test_crlf_bare_cr_and_no_final_newline(cli, tmp_path: Path):
    crlf = _export(tmp_path / "crlf.csv", newline="\r\n")
    assert _run(cli, crlf, 2, "csv", tmp_path) == _run(cli, crlf, 1, "csv", tmp_path)
    bare = tmp_path / "bare.csv"
    bare.write_bytes(crlf.read_bytes().replace(b"\r\n", b"\r"))
    assert _run(cli, bare, 2, "csv", tmp_path) == _run(cli, bare, 1, "csv", tmp_path)
    cut = tmp_path / "cut.csv"
    cut.write_bytes(crlf.read_bytes().rstrip(b"\r\n"))
    assert _run(cli, cut, 2, "csv", tmp_path) == _run(cli, cut, 1, "csv", tmp_path)


def test_a_redcap_export_splits_the_same(cli, tmp_path: Path):
    path = tmp_path / "redcap.csv"
    rng = random.Random(9)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["record_id", "redcap_repeat_instrument", "redcap_repeat_instance",
                         *[f"wai_sr_{i}" for i in range(1, 13)], "wai_sr_complete"])  # fmt: skip
        for n in range(3000):
            writer.writerow([f"R{n // 10}", "wai_sr", str(n % 10 + 1),
                             *[str(rng.randint(1, 5)) for _ in range(12)], "2"])  # fmt: skip
    assert _run(cli, path, 2, "csv", tmp_path) == _run(cli, path, 1, "csv", tmp_path)


def test_plan_ranges_start_every_range_at_a_line(tmp_path: Path):
    from alliance_cli.batch.parallel import plan_ranges

    path = _export(tmp_path / "in.csv", rows=500)
    data = path.read_bytes()
    start = data.index(b"\n") + 1
    ranges = plan_ranges(str(path), start, 4)
    assert len(ranges) == 4 and ranges[0][0] == start and ranges[-1][1] == len(data)
    for (s, e), (s2, _) in zip(ranges, [*ranges[1:], (len(data), 0)], strict=True):
        assert e == s2 and data[s - 1 : s] == b"\n"


@pytest.mark.parametrize("block", [1, 2, 3, 1 << 22])
def test_each_worker_counts_its_lines_and_finds_a_bare_carriage_return(
    tmp_path: Path, monkeypatch, block
):
    """Blocks of a few bytes, so a CRLF pair falls across two blocks."""
    from alliance_cli.batch import parallel

    monkeypatch.setattr(parallel, "SCAN_BLOCK", block)
    path = tmp_path / "in.csv"
    path.write_bytes(b"h\r\na,1\r\nb,2\r\nc,3\nd,4\re,5\n")
    data = path.read_bytes()
    cut = data.index(b"c,3")
    assert parallel._scan(str(path), 3, cut) == (1, 2, False)  # CRLF only
    assert parallel._scan(str(path), cut, len(data)) == (3, 2, True)  # "d,4\r": bare
    assert parallel._scan(str(path), 0, len(data)) == (0, 5, True)
    third = data.index(b"b,2")  # counting on from an earlier range's end
    assert parallel._scan(str(path), cut, len(data), (third, 2)) == (3, 2, True)


def test_jobs_must_be_at_least_one(cli, tmp_path: Path):
    path = _export(tmp_path / "in.csv", rows=10)
    result = cli("batch", str(path), "-i", "wai-sr", "--jobs", "0")
    assert result.exit_code == 2 and "--jobs 0: give 1 or more processes" in result.stderr


@pytest.mark.parametrize(("note", "split"), [
    (lambda n: "", True),
    (lambda n: "two\nlines" if n == 1800 else "", False),  # detected: one process
])  # fmt: skip
def test_the_split_runs_on_several_processes_unless_a_record_spans_lines(tmp_path, note, split):
    import io

    from alliance_cli.batch import parallel
    from alliance_cli.batch.engine import BatchOptions, read_layout
    from alliance_cli.io.csvin import open_sources

    from .conftest import scorer_for

    path = _export(tmp_path / "in.csv", note=note)
    scorer = scorer_for("wai-sr")
    options = BatchOptions(jobs=2)
    assert parallel.usable([str(path)], "csv", options, saving=False)
    assert parallel.usable([str(path)], "csv", options, saving=True)  # the parent writes
    sources = open_sources([str(path)], "utf-8", None)
    layout = read_layout(sources, scorer, options)
    out = io.StringIO()
    stats = parallel.run(str(path), scorer, "csv", layout, options, 2, out, lambda r: None)
    assert (stats is not None) == split
    if split:
        assert stats.read == 2500 and out.getvalue().startswith("client_id,session,note,")
    else:
        assert out.getvalue() == ""  # nothing written: the one-process run writes it all


@pytest.mark.parametrize("spanning", [None, 2900])
def test_a_save_on_several_processes_stores_what_one_process_stores(cli, tmp_path: Path, spanning):
    """Rows are stored while the workers still score; a quoted line break found late (in
    the last range) takes every one of them back, and one process stores the file."""
    import sqlite3

    path = tmp_path / "in.csv"
    rng = random.Random(4)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["client_id", "session", "rater", "note", *HEADER[3:]])
        for n in range(3000):
            cells = [str(rng.randint(1, 5)) for _ in range(12)]
            if n % 50 == 7:
                cells[3] = "Always"  # an anchor: the full path scores and saves it
            if n % 97 == 5:
                cells[0] = "9"  # rejected
            # clients repeat sessions: the same answers again, or a conflict
            client, session = f"S{n % 700}", str(n % 4 + 1)
            note = "two\nlines" if n == spanning else ""
            writer.writerow([client, session, "Client" if n % 9 == 0 else "", note, *cells])

    def run(jobs: int):
        db = tmp_path / f"h{jobs}.sqlite"
        result = cli("batch", str(path), "-i", "wai-sr", "--save", "--db", str(db),
                     "-o", str(tmp_path / f"o{jobs}.csv"), "--jobs", str(jobs))  # fmt: skip
        said = re.sub(r"in \d+\.\d+ s", "in N s", result.stderr).replace(str(db), "DB")
        with sqlite3.connect(db) as con:
            rows = con.execute("SELECT client_id, instrument, rater, session, date, answers, "
                               "total_pomp, total_mean, total_sum, scale_pomps, said_flags, "
                               "extra FROM sessions ORDER BY 1, 2, 3, 4").fetchall()  # fmt: skip
        return result.exit_code, said, rows, (tmp_path / f"o{jobs}.csv").read_bytes()

    one, two = run(1), run(2)
    assert one[0] == 3 and "conflict: client" in one[1] and len(one[2]) == 700
    assert "history: 700 sessions saved to DB" in one[1]
    assert two == one  # exit code, every line said (conflicts too), stored rows, output


def test_a_utf8_bom_decides_in_every_range(cli, tmp_path: Path):
    path = _export(tmp_path / "in.csv", note=lambda n: "Zoë" if n % 2 else "Ångström")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    one = _run(cli, path, 1, "csv", tmp_path, "--encoding", "latin-1")
    assert "Zoë".encode() in one[1]  # read as UTF-8: the BOM says so, whatever --encoding says
    assert _run(cli, path, 2, "csv", tmp_path, "--encoding", "latin-1") == one


def test_a_save_on_several_processes_into_a_history_that_has_it_already(cli, tmp_path: Path):
    """Re-importing on several processes: ranges larger than the writer's chunk, so a range
    whose rows are already recorded is stored one chunk at a time (a rolled-back chunk
    once aborted the read of the next: exit 5, 'abort due to ROLLBACK')."""
    import sqlite3

    path = tmp_path / "in.csv"
    rng = random.Random(9)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["client_id", "session", *HEADER[3:]])
        for n in range(20_000):  # 8 ranges of 2,500 rows: more than a 2,000-row chunk
            writer.writerow([f"R{n}", "1", *[str(rng.randint(1, 5)) for _ in range(12)]])
    changed = tmp_path / "changed.csv"
    changed.write_text(re.sub(r"\nR7,1,(\d),", lambda m: f"\nR7,1,{int(m[1]) % 5 + 1},",
                              path.read_text(), count=1))  # fmt: skip

    def run(jobs: int, source: Path, db: Path):
        result = cli("batch", str(source), "-i", "wai-sr", "--save", "--db", str(db),
                     "-o", str(tmp_path / f"o{jobs}.csv"), "--jobs", str(jobs))  # fmt: skip
        said = re.sub(r"in \d+\.\d+ s", "in N s", result.stderr).replace(str(db), "DB")
        with sqlite3.connect(db) as con:
            (count,) = con.execute("SELECT count(*) FROM sessions").fetchone()
        return result.exit_code, said, count

    for jobs in (1, 2):
        db = tmp_path / f"h{jobs}.sqlite"
        assert run(jobs, path, db)[0] == 0
    again = [run(jobs, path, tmp_path / f"h{jobs}.sqlite") for jobs in (1, 2)]
    assert again[0] == again[1] and again[0][0] == 0 and again[0][2] == 20_000
    assert "20,000 sessions were already recorded" in again[0][1]
    conflict = [run(jobs, changed, tmp_path / f"h{jobs}.sqlite") for jobs in (1, 2)]
    assert conflict[0] == conflict[1] and conflict[0][0] == 3 and "R7" in conflict[0][1]


def test_the_server_spool_writes_each_row_as_copy_line_writes_it() -> None:
    """The column-wise COPY writer (a block of FastRows rows at once, with look-ups) gives
    the very text of each row's fields written one by one, for escapes, none, repeats, and
    float zeros of both signs (equal as keys, not as text)."""
    from alliance_cli.store.postgres import copy_field, fast_block_writer

    rows = [
        ("C1", "client", 1, "2026-01-05", "4,4,5", 75.0, 4.0, 12.0, "75.0,n", None),
        ("C\t2\\x", "client", 2, None, "1,1,1", 0.0, 1.0, 3.0, "0.0,0.0", "Lee\nRivera"),
        ("C3", "therapist", 10, "2026-01-05", "1,1,1", -0.0, 1.0, 3.0, "0.0,0.0", "Lee"),
        ("C1", "client", 3, "2026-01-05", "4,4,5", 75.0, 4.0, 12.0, "75.0,n", None),
        ("C4", "client", 4, "2026-01-06", "", None, None, None, None, "Ng\r"),
    ]

    def one_by_one(row: tuple[object, ...]) -> str:
        return "\t".join(map(copy_field, (*row, None))) + "\n"

    block = fast_block_writer()
    want = "".join(map(one_by_one, rows))
    assert block(rows) == want
    assert block(rows[::-1]) == "".join(map(one_by_one, rows[::-1]))  # remembered, same
    assert "\t-0.0\t" in want and "C\\t2\\\\x" in want
    assert block(rows[:1]) + block(rows[1:2]) == "".join(map(one_by_one, rows[:2]))
    assert block([]) == ""
