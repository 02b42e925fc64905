"""Issue 10, inputs: odd instrument files, options and cells give one clear line, never exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import MINIMAL, ROOT, write

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (("max: 5", "max: 100000000"), "answer points; at most 10,001"),
        (("max: 5", "max: 5\n  step: 0.0000001"), "answer points; at most"),
        (("max: 5", "max: .inf"), "finite"),
        (("labels: {1: Never, 5: Always}", 'labels: {1: Never, 5: "4"}'), "is a number"),
        (("name: Minimal test instrument", "name: One\nname: Two"), "key 'name' is given twice"),
    ],
)
def test_bad_instrument_files_are_reported_not_crashed(cli, tmp_path: Path, change, words):
    path = write(tmp_path / "mini.yaml", MINIMAL.replace(*change))
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4, result.stderr
    assert words in result.stderr and "internal error" not in result.stderr


def test_check_reports_every_file_even_a_missing_one(cli, tmp_path: Path):
    good = write(tmp_path / "mini.yaml", MINIMAL)
    result = cli("instruments", "check", str(tmp_path / "gone.yaml"), str(good), "-f", "table")
    assert result.exit_code == 4
    assert "gone.yaml" in result.stderr and "1 of 2 file(s) invalid" in result.stderr
    assert f"ok: {good}" in result.stdout


def test_an_unknown_encoding_on_stdin_is_a_usage_error(cli):
    result = cli("batch", "-", "-i", "wai-sr", "--encoding", "bogus", input="a,b\n1,2\n")
    assert result.exit_code == 2 and "not a text encoding" in result.stderr


@pytest.mark.parametrize("template", ["{item[0]}", "{item.real.x}", "{item!z}", "wai_{item:q}"])
def test_odd_column_templates_are_usage_errors(cli, template):
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "--columns", template)
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


def test_a_map_alias_bomb_is_refused(cli, tmp_path: Path):
    bomb = tmp_path / "m.yaml"
    lines = ['a0: &a0 ["x"]'] + [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 12)
    ]
    bomb.write_text("\n".join(lines) + "\n")
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "--map", str(bomb))
    assert result.exit_code == 5 and "aliases expand" in result.stderr


@pytest.mark.parametrize("answer", ["1_0", "1e1", "inf", "nan", "0x5"])
def test_only_plain_decimals_are_answers(cli, answer):
    result = cli("score", "srs", answer, "5", "5", "5", "-f", "json")
    assert result.exit_code == 3 and "is not a number or an anchor" in result.stderr


def _export(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "x.csv"
    path.write_text("client_id,note," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + body)
    return path


def _row(client: str, note: str = "") -> str:
    return f"{client},{note}," + ",".join(["4"] * 12) + "\n"


@pytest.mark.parametrize("fastpath", [True, False])
def test_a_quote_never_closed_loses_no_row_silently(cli, tmp_path: Path, monkeypatch, fastpath):
    if not fastpath:
        monkeypatch.setenv("ALLIANCE_NO_FASTPATH", "1")
    body = "".join(_row(f"C-{i}") for i in range(10)) + _row("C-10", '"oops')
    body += "".join(_row(f"C-{i}") for i in range(11, 100))
    result = cli("batch", str(_export(tmp_path, body)), "-i", "wai-sr")
    assert result.exit_code == 3
    # issue 20: the record with the quote is rejected, and the 89 lines it swallowed are
    # read again as rows: rows read = scored + rejected
    assert "100 rows read, 99 scored, 1 rejected" in result.stderr
    assert (
        "x.csv:12: a quoted field runs from line 12 to line 101, over 89 line(s) that look "
        "like rows (a quote never closed?); this record is not scored, and the 89 line(s) "
        "after line 12 are read again as rows" in result.stderr
    )


def test_a_real_multi_line_note_is_kept(cli, tmp_path: Path):
    body = _row("C-1", '"first line\nsecond, line"') + _row("C-2")
    result = cli("batch", str(_export(tmp_path, body)), "-i", "wai-sr", "-q")
    assert result.exit_code == 0, result.stderr
    assert '"first line\nsecond, line"' in result.stdout


def test_a_cell_over_128_kib_rejects_its_row_not_the_batch(cli, tmp_path: Path):
    body = _row("C-1") + _row("C-2", "x" * 140_000) + _row("C-3")
    result = cli("batch", str(_export(tmp_path, body)), "-i", "wai-sr")
    assert result.exit_code == 3, result.stderr
    assert "3 rows read, 2 scored, 1 rejected" in result.stderr
    assert "larger than 128 KiB on line 3 (" in result.stderr


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ('{"answers": [' + "9" * 5000 + "]}", "not usable JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"answers": [4], "answers": [5]}', "key 'answers' is given twice"),
    ],
)
def test_hostile_json_on_stdin_is_a_rejected_set(cli, line, words):
    good = '{"client_id": "ok", "answers": ["4","4","4","4","4","4","4","4","4","4","4","4"]}'
    result = cli("score", "wai-sr", "-", "-f", "ndjson", input=f"{line}\n{good}\n")
    assert result.exit_code == 3, result.stderr
    assert words in result.stderr and "internal error" not in result.stderr
    assert len(result.stdout.splitlines()) == 1  # the good set after it is still scored


def test_an_answer_line_over_1_mib_is_one_rejected_set(cli):
    """Plain answer lines on stdin were read whole: a stream of NUL bytes was "12 items; got
    1 answers" after holding all of it in memory (an endless one, all memory). A line over
    1 MiB is cut there and said; the sets around it are scored."""
    lines = "4 " * 12 + "\n" + "\0" * (3 << 20) + "\n" + "5 " * 12 + "\n"
    result = cli("score", "wai-sr", "-", "-f", "ndjson", input=lines)
    assert result.exit_code == 3, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "stdin:2: a line over 1 MiB: not a line of answers" in result.stderr


def test_plain_answer_lines_on_stdin(cli):
    result = cli(
        "score",
        "wai-sr",
        "-",
        "-f",
        "ndjson",
        input="4 4 5 3 5 4 4 3 5 4 4 4\n4,4,4,4,4,4,4,4,4,4,4,4\n",
    )
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_ndjson_streams_in_flat_memory(tmp_path: Path):
    import subprocess
    import sys

    from .conftest import env_without_color

    src = tmp_path / "many.ndjson"
    line = '{"client_id": "c", "answers": ["4","4","5","3","5","4","4","3","5","4","4","4"]}\n'
    src.write_text(line * 60_000)
    # a fresh parent, so the peak of its one child is measured, not any earlier test's
    probe = (
        "import resource, subprocess, sys\n"
        f"with open({str(src)!r}) as stdin:\n"
        "    done = subprocess.run([sys.executable, '-m', 'alliance_cli', 'score', 'wai-sr',"
        " '-', '-f', 'ndjson', '-q'], stdin=stdin, stdout=subprocess.DEVNULL)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env_without_color(), check=True)  # fmt: skip
    code, peak_kib = map(int, out.stdout.split())
    assert code == 0
    assert peak_kib / 1024 < 80, peak_kib / 1024  # 5 MB of NDJSON, scored as it streams


def test_a_typed_missing_code_is_an_answer_not_an_option(cli):
    result = cli("score", "srs", "5", "5", "-99", "5", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert (
        '"problem": "missing (refused)"' in result.stdout.replace("\n", "").replace("  ", " ")
        or "refused" in result.stdout
    )
    bogus = cli("score", "srs", "5", "5", "5", "5", "--bogus")
    assert bogus.exit_code == 2 and "No such option: --bogus" in bogus.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_runaway_quote_past_128_kib_loses_no_row(cli, tmp_path: Path, jobs: str):
    """Issue 20: 10,000 rows, a quote opening on line 12 and never closed. Before, 2,873
    rows were in neither the output, the rejects nor the counts (nor, with --save, the
    history); now the record on line 12 is rejected and every line it swallowed is read
    again as a row."""
    body = "".join(_row(f"C-{i}") for i in range(10)) + _row("C-10", '"oops')
    body += "".join(_row(f"C-{i}") for i in range(11, 10_000))
    src = _export(tmp_path, body)
    db, out, rej = tmp_path / "h.sqlite", tmp_path / "o.csv", tmp_path / "r.csv"
    result = cli("batch", str(src), "-i", "wai-sr", "-j", jobs, "-o", str(out),
                 "--rejects", str(rej), "--save", "--db", str(db), "--id-column", "client_id",
                 "--session-column", "q1")  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "10,000 rows read, 9,999 scored, 1 rejected" in result.stderr
    assert len(out.read_text().splitlines()) == 1 + 9_999
    reasons = rej.read_text().splitlines()
    assert len(reasons) == 2 and f"{src},12," in reasons[1]
    assert "from line 12 to " in reasons[1] and "are read again as rows" in reasons[1]
    clients = cli("clients", "--db", str(db), "-f", "csv")
    assert len(clients.stdout.splitlines()) == 1 + 9_999


@pytest.mark.parametrize(("change", "jobs"), [("grow", 1), ("shrink", 1), ("shrink", 2)])
def test_a_file_that_changes_while_it_is_read_is_an_error(tmp_path: Path, change, jobs):
    """Issue 20: a file truncated during a -j2 run silently dropped its partial last line.
    Now any input that grows, shrinks or is replaced while read is an error (exit 5), and
    nothing is written."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.batch.run import run_files
    from alliance_cli.core.errors import DataFileError

    from .conftest import scorer_for

    src = _export(tmp_path, "".join(_row(f"C-{i}") for i in range(60_000)))
    out = tmp_path / "o.csv"
    changed = []

    def meddle(_rows: int, _done: int) -> None:
        if not changed:
            changed.append(1)
            with open(src, "r+b") as handle:
                if change == "grow":
                    handle.seek(0, 2)
                    handle.write(_row("C-late").encode())
                else:
                    handle.truncate(src.stat().st_size - 7)  # into the last line

    options = BatchOptions(jobs=jobs, id_names={"client_id": "client_id"})
    with pytest.raises(DataFileError, match="changed while it was read"):
        run_files([str(src)], scorer_for("wai-sr"), "csv", out, None, options, print, meddle)
    assert changed and not out.exists()


def test_a_lone_quote_line_before_a_row_is_rejected_and_the_row_read_again(cli, tmp_path):
    """Found by the fuzzer (issue 20): a record of one field holding a quote swallowed the
    next row and raised IndexError looking for its client id."""
    src = tmp_path / "q.csv"
    head = "session,client_id,date,note," + ",".join(f"q{i}" for i in range(1, 13))
    src.write_text(f'{head}\n"\n1,C-1,,x,' + ",".join(["4"] * 12) + "\n")
    result = cli("batch", str(src), "-i", "wai-sr")
    assert result.exit_code == 3, result.stderr
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr
    assert "q.csv:2: a quoted field runs from line 2 to line 3" in result.stderr


@pytest.mark.parametrize("source", ["file", "device"])
def test_a_file_of_nul_bytes_is_one_error_at_its_header(cli, tmp_path: Path, source: str):
    """A file of NUL bytes (a disk image, /dev/zero) was "internal error" (the reader's
    field limit, hit while reading the header); /dev/zero never ended, taking all memory."""
    if source == "device" and not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this system")
    path = Path("/dev/zero") if source == "device" else tmp_path / "zeros.csv"
    if source == "file":
        path.write_bytes(b"\0" * 300_000)
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 5, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}:1: the header holds NUL bytes: not a text export (a binary file?)"
    )


def test_a_header_with_no_line_end_is_refused(cli, tmp_path: Path):
    path = tmp_path / "one-line.csv"
    path.write_text("a," * (3 << 20))  # 6 MiB, no line end
    result = cli("batch", str(path), "-i", "wai-sr", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 5, result.stderr
    assert result.stderr.strip() == (
        f"error: {path}:1: no line end in the first 4 MiB: not a CSV export (expected a header row)"
    )


def test_a_line_longer_than_any_record_is_given_cut_and_its_rest_dropped():
    from io import StringIO

    from alliance_cli.io.source import bounded_lines, line_cap

    text = "a,b\n" + "x" * 50 + "\n" + "\0" * 25 + "\r\n" + "c,d\n" + "y" * 30
    assert list(bounded_lines(StringIO(text, newline=""), 10)) == [
        "a,b\n", "x" * 10 + "\n", "\0" * 10 + "\n", "c,d\n", "y" * 10 + "\n",
    ]  # fmt: skip
    assert line_cap(16) > 16 * 2 * (128 << 10)  # more than any record of 16 fields


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_line_of_100_mb_is_one_rejected_row_in_flat_memory(tmp_path: Path, jobs: str):
    """A data line with no end in sight (NUL bytes, an export cut into one line) is one
    rejected row, and the rows after it are read; the reader keeps at most a few MB of it
    (before, the whole line twice over: 230 MB here; an endless stream, all memory)."""
    import subprocess
    import sys

    from .conftest import env_without_color

    src = _export(tmp_path, _row("C-1") + "\0" * 100_000_000 + "\n" + _row("C-3"))
    probe = (
        "import resource, subprocess, sys\n"
        "done = subprocess.run([sys.executable, '-m', 'alliance_cli', 'batch', "
        f"{str(src)!r}, '-i', 'wai-sr', '-j', {jobs!r}, '-o', {str(tmp_path / 'o.csv')!r}], "
        "stderr=subprocess.PIPE, text=True)\n"
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(done.stderr)\n"
    )
    env = {**env_without_color(), "ALLIANCE_JOBS_MIN_BYTES": "1"}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         env=env, check=True)  # fmt: skip
    first, _, stderr = out.stdout.partition("\n")
    code, peak_kib = map(int, first.split())
    assert code == 3, stderr
    assert "3 rows read, 2 scored, 1 rejected" in stderr
    assert "x.csv:3: a field grew larger than 128 KiB on line 3" in stderr
    assert peak_kib / 1024 < 100, peak_kib / 1024


def _long(tmp_path: Path, cells: dict[tuple[int, int], str]) -> Path:
    """A long-format file: three clients' twelve WAI-SR items, some cells replaced."""
    rows = ["client_id,session,item,value"]
    for c in range(1, 4):
        rows += [f"C-{c},1,wai_{i},{cells.get((c, i), '4')}" for i in range(1, 13)]
    path = tmp_path / "long.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("cell", "words"),
    [
        ('"oops', "a quoted field runs from line 16 to line 37, over 21 line(s) that look "
                  "like rows (a quote never closed?); this row is not read, and the 21 "
                  "line(s) after it are read again"),
        ("x" * 140_000, "a field grew larger than 128 KiB on line 16 (a cell that large, or "
                        "a quote never closed); this row is not read"),
    ],
)  # fmt: skip
def test_a_broken_line_of_a_long_file_is_one_rejected_row(cli, tmp_path: Path, cell, words):
    """A long-format file was read whole by one CSV reader: a cell over 128 KiB was an
    "internal error", and a quote never closed swallowed every later line (client C-3's
    answers were nowhere, not even counted). Now that line is rejected and the lines after
    it read again, as in a wide export."""
    src = _long(tmp_path, {(2, 3): cell})
    result = cli("batch", str(src), "-i", "wai-sr", "--layout", "long", "-o", "-")
    assert result.exit_code == 3, result.stderr
    assert f"rejected: {src}:16: {words}" in result.stderr
    assert "4 rows read, 3 scored, 1 rejected" in result.stderr
    assert [line.split(",")[0] for line in result.stdout.splitlines()[1:]] == ["C-1", "C-2", "C-3"]


def test_a_qualtrics_export_with_a_line_over_128_kib_rejects_that_row(cli, tmp_path: Path):
    """A Qualtrics export's first rows are read ahead (its extra header rows, the answer
    codes' start): a cell over 128 KiB there was an "internal error"."""
    header = "StartDate,Status,Finished,ResponseId," + ",".join(f"Q{i}" for i in range(1, 13))
    row = "2020-01-01,0,1,R_1," + ",".join(["4"] * 12)
    src = tmp_path / "qualtrics.csv"
    src.write_text(f"{header}\n{'x' * 200_000}\n{row}\n")
    result = cli("batch", str(src), "-i", "wai-sr", "-o", "-")
    assert result.exit_code == 3, result.stderr
    assert f"rejected: {src}:2: a field grew larger than 128 KiB on line 2" in result.stderr
    assert "2 rows read, 1 scored, 1 rejected" in result.stderr


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this system")
@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["instruments", "check", "/dev/zero"], 4, "error: /dev/zero: file is larger than 1024 "
                                                    "KiB; refused"),
        (["batch", str(EXPORT), "-i", "wai-sr", "--map", "/dev/zero", "-o", "/dev/null"], 5,
         "error: /dev/zero: not valid YAML for a --map file (file is larger than 1024 KiB; "
         "refused)"),
    ],
)  # fmt: skip
def test_a_device_named_as_a_yaml_file_is_refused_at_its_size_limit(cli, args, code, words):
    """The size limit of instrument, --map and norms files was checked on the file's size,
    which a device reports as 0: /dev/zero was read until the system killed alliance (24 GB
    here). At most one byte past the limit is read now."""
    result = cli(*args)
    assert result.exit_code == code, result.stderr
    assert words in result.stderr


@pytest.mark.parametrize("fastpath", [True, False])
def test_an_id_holding_a_nul_byte_rejects_its_row(cli, tmp_path: Path, monkeypatch, fastpath):
    """A client id (or counselor) with a NUL byte was saved to an SQLite history, and made a
    PostgreSQL history refuse the whole batch (its text cannot hold one): one row's fault.
    Now that row is rejected, whatever the output, and the others are scored and saved."""
    if not fastpath:
        monkeypatch.setenv("ALLIANCE_NO_FASTPATH", "1")
    rows = ["client_id,session,counselor," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"C-{i},1,Lee," + ",".join(["4"] * 12) for i in range(1, 300)]
    rows[100] = "C-\x00100,1,Lee," + ",".join(["4"] * 12)
    rows[200] = "C-200,1,L\0ee," + ",".join(["4"] * 12)
    src = tmp_path / "x.csv"
    src.write_text("\n".join(rows) + "\n")
    db = tmp_path / "h.sqlite"
    result = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-")
    assert result.exit_code == 3, result.stderr
    assert "299 rows read, 297 scored, 2 rejected" in result.stderr
    assert f"{src}:101: client_id: client_id holds a NUL byte" in result.stderr
    assert f"{src}:201: counselor: counselor holds a NUL byte" in result.stderr
    assert "\0" not in result.stdout
    listed = cli("clients", "--db", str(db), "-f", "csv").stdout
    assert len(listed.splitlines()) == 1 + 297 and "\0" not in listed


def test_a_json_set_whose_client_id_holds_a_nul_byte_is_rejected(cli):
    sets = '{"client_id": "J\\u0000X", "session": 1, "answers": [4,4,4,4,4,4,4,4,4,4,4,4]}\n'
    sets += '{"client_id": "J", "session": 1, "answers": [4,4,4,4,4,4,4,4,4,4,4,4]}\n'
    result = cli("score", "wai-sr", "-", "-f", "csv", input=sets)
    assert result.exit_code == 3, result.stderr
    assert "stdin:1: client_id holds a NUL byte: not text a history can keep" in result.stderr
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize("fastpath", [True, False])
def test_a_client_id_too_long_for_a_server_rejects_its_row(cli, tmp_path, monkeypatch, fastpath):
    """A client id of thousands of characters failed a whole PostgreSQL batch (its key
    index holds 2,704 bytes). Over 512 characters, that row is rejected on every back end
    and output; score refuses it as --client."""
    if not fastpath:
        monkeypatch.setenv("ALLIANCE_NO_FASTPATH", "1")
    rows = ["client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))]
    rows += [f"C-{i},1," + ",".join(["4"] * 12) for i in range(1, 50)]
    rows[20] = "L" * 513 + ",1," + ",".join(["4"] * 12)
    rows[30] = "M" * 512 + ",1," + ",".join(["4"] * 12)  # (at the limit: kept)
    src = tmp_path / "x.csv"
    src.write_text("\n".join(rows) + "\n")
    result = cli("batch", str(src), "-i", "wai-sr", "-o", "-")
    assert result.exit_code == 3, result.stderr
    assert f"{src}:21: client_id: client_id is longer than 512 characters (513)" in result.stderr
    assert "49 rows read, 48 scored, 1 rejected" in result.stderr
    long = cli("score", "srs", "9", "9", "9", "9", "--client", "L" * 513, "--session", "1")
    assert long.exit_code == 2
    assert "client_id is longer than 512 characters (513)" in long.stderr
