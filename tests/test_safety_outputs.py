"""Issue 20: no output of a run may be a file the run reads (by device and inode), and
descriptor paths (process substitution, /dev/stdout) are written to, not replaced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, env_without_color

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """The demo export copied, with a hard link beside it."""
    src = tmp_path / "in.csv"
    shutil.copy(EXPORT, src)
    os.link(src, tmp_path / "inhard.csv")
    return src


@pytest.mark.parametrize("option", ["-o", "--rejects"])
def test_a_hard_link_to_the_input_is_refused(cli, copy: Path, option: str):
    before = copy.read_bytes()
    result = cli("batch", str(copy), "-i", "wai-sr", "-q", option, str(copy.parent / "inhard.csv"))
    assert result.exit_code == 2
    assert "is the input" in result.stderr and "never overwritten" in result.stderr
    assert copy.read_bytes() == before


def test_a_hard_link_to_the_map_file_is_refused(cli, copy: Path, tmp_path: Path):
    mapping = tmp_path / "map.yaml"
    mapping.write_text("".join(f"{i}: wai_{i}\n" for i in range(1, 13)))
    os.link(mapping, tmp_path / "maphard.yaml")
    before = mapping.read_bytes()
    result = cli("batch", str(copy), "-i", "wai-sr", "-q", "--map", str(mapping),
                 "-o", str(tmp_path / "maphard.yaml"))  # fmt: skip
    assert result.exit_code == 2 and "the --map file" in result.stderr
    assert mapping.read_bytes() == before


@pytest.fixture
def store(cli, copy: Path, tmp_path: Path) -> Path:
    db = tmp_path / "h.sqlite"
    saved = cli("batch", str(copy), "-i", "wai-sr", "-q", "--save", "--db", str(db),
                "-o", str(tmp_path / "o.csv"))  # fmt: skip
    assert saved.exit_code == 3  # the demo's two bad rows
    return db


@pytest.mark.parametrize("how", ["same", "symlink", "hardlink", "wal"])
def test_no_report_replaces_the_history(cli, store: Path, tmp_path: Path, how: str):
    target = {"same": store, "wal": Path(f"{store}-wal")}.get(how, tmp_path / "other.sqlite")
    if how == "symlink":
        target.symlink_to(store)
    elif how == "hardlink":
        os.link(store, target)
    before = store.read_bytes()
    result = cli("report", "C-107", "--db", str(store), "-o", str(target))
    assert result.exit_code == 2 and "the history" in result.stderr, result.stderr
    assert store.read_bytes() == before
    assert cli("history", "C-107", "--db", str(store)).exit_code == 0


def test_batch_save_never_writes_its_output_over_the_history(cli, copy, store: Path):
    before = store.read_bytes()
    result = cli("batch", str(copy), "-i", "wai-sr", "-q", "--save", "--db", str(store),
                 "-o", str(store))  # fmt: skip
    assert result.exit_code == 2 and "the history" in result.stderr
    assert store.read_bytes() == before  # refused before anything was saved


def test_an_export_never_replaces_the_instrument_it_exports(cli, tmp_path: Path):
    own = tmp_path / "d"
    own.mkdir()
    text = (ROOT / "instruments" / "srs.yaml").read_text(encoding="utf-8")
    (own / "mine.yaml").write_text(text.replace("id: srs", "id: mine", 1), encoding="utf-8")
    before = (own / "mine.yaml").read_bytes()
    for to in ("fhir", "redcap"):
        result = cli("--instruments-dir", str(own), "instruments", "export", "mine",
                     "--to", to, "-o", str(own / "mine.yaml"))  # fmt: skip
        assert result.exit_code == 2 and "instrument definition" in result.stderr
    assert (own / "mine.yaml").read_bytes() == before


def test_a_file_read_by_one_command_may_be_written_by_the_next(cli, copy: Path, tmp_path):
    # the list of files read is per command: in one process, a later run may write it
    assert cli("batch", str(copy), "-i", "wai-sr", "-q", "-o", str(tmp_path / "a.csv")).exit_code
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-q", "-o", str(copy))
    assert result.exit_code == 3 and copy.read_text().startswith("record_id,")


@pytest.mark.skipif(not Path("/bin/bash").exists(), reason="needs bash for >(…)")
def test_process_substitution_and_dev_stdout_are_outputs(tmp_path: Path):
    cmd = f"{sys.executable} -m alliance_cli batch {EXPORT} -i wai-sr -q"
    script = (
        f"{cmd} -o >(gzip > {tmp_path}/x.gz); echo rc=$?; sleep 1;"
        f"{cmd} -o /dev/stdout | wc -l;"
        f"{cmd} -o /dev/stdout > {tmp_path}/fd.csv; echo rc=$?"
    )
    done = subprocess.run(["/bin/bash", "-c", script], capture_output=True, text=True,
                          env=env_without_color(), timeout=120)  # fmt: skip
    lines = done.stdout.split()
    assert lines == ["rc=3", "198", "rc=3"], done.stderr
    unzipped = subprocess.run(["gzip", "-dc", str(tmp_path / "x.gz")], capture_output=True)
    assert unzipped.stdout.count(b"\n") == 198
    assert (tmp_path / "fd.csv").read_text().count("\n") == 198


# -- one CSV writer: \r and \n quoted, formulas guarded, in every CSV alliance writes ---------


def _rows(text: str) -> list[list[str]]:
    """Rows as a strict reader sees them (universal newlines off, as a spreadsheet reads)."""
    import csv
    import io

    return list(csv.reader(io.StringIO(text, newline="")))


def test_a_bare_cr_in_a_cell_is_quoted_in_batch_output_and_rejects(cli, tmp_path: Path):
    head = "client_id,session,note," + ",".join(f"wai_{i}" for i in range(1, 13))
    answers = ",".join(["4"] * 12)
    bad = ",".join(["4"] * 11 + ["9"])
    data = f'{head}\n"C-1\r=2+5",1,"x\r@cmd",{answers}\n"C-2\r=1+1",1,"y",{bad}\n'
    src = tmp_path / "cr.csv"
    src.write_bytes(data.encode())
    out, rej = tmp_path / "o.csv", tmp_path / "r.csv"
    for jobs in ("1", "2"):
        result = cli("batch", str(src), "-i", "wai-sr", "-q", "--id-column", "client_id",
                     "-o", str(out), "--rejects", str(rej), "-j", jobs)  # fmt: skip
        assert result.exit_code == 3, result.stderr
        rows = _rows(out.read_bytes().decode())
        assert len(rows) == 2 and len(rows[1]) == len(rows[0])
        assert rows[1][:3] == ["C-1\r=2+5", "1", "x\r@cmd"]  # one cell each, whole
        rejected = _rows(rej.read_bytes().decode())
        assert len(rejected) == 2 and len(rejected[1]) == len(rejected[0])


def test_a_bare_cr_in_an_id_is_quoted_by_score_history_and_clients(cli, tmp_path: Path):
    db = str(tmp_path / "h.sqlite")
    who = "X\r=1+1"  # (and one that starts with a CR is guarded: see safe_text's test)
    scored = cli("score", "srs", "9", "9", "9", "9", "--client", who, "--session", "1",
                 "--save", "--db", db, "-f", "csv")  # fmt: skip
    assert scored.exit_code == 0, scored.stderr
    for result in (scored, cli("history", who, "--db", db, "-f", "csv"),
                   cli("clients", "--db", db, "-f", "csv")):  # fmt: skip
        rows = _rows(result.stdout)
        assert len(rows) >= 2 and {len(r) for r in rows} == {len(rows[0])}, result.stdout
        assert all(r[0] == "X\r=1+1" for r in rows[1:])  # one cell: no row split at the CR


def test_header_cells_that_start_a_formula_are_guarded(cli, tmp_path: Path):
    head = '=HYPERLINK("http://x"),@cmd,client_id,' + ",".join(f"wai_{i}" for i in range(1, 13))
    src = tmp_path / "h.csv"
    src.write_text(head + "\na,b,C-1," + ",".join(["4"] * 12) + "\n")
    result = cli("batch", str(src), "-i", "wai-sr", "-q", "--id-column", "client_id")
    header = _rows(result.stdout)[0]
    assert header[:2] == ['\'=HYPERLINK("http://x")', "'@cmd"], result.stderr


def test_a_redcap_dictionary_guards_labels_that_start_a_formula(cli, tmp_path: Path):
    import yaml

    own = tmp_path / "d"
    own.mkdir()
    data = yaml.safe_load((ROOT / "instruments" / "srs.yaml").read_text(encoding="utf-8"))
    data["id"] = "mine"
    data["items"][0]["label"] = "=1+1 relationship"
    data["items"][1]["label"] = "@SUM goals"
    (own / "mine.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")
    result = cli("--instruments-dir", str(own), "instruments", "export", "mine", "--to", "redcap")
    assert result.exit_code == 0, result.stderr
    cells = [c for row in _rows(result.stdout) for c in row]
    assert not [c for c in cells if c[:1] in ("=", "@", "+")]
    assert "'=1+1 relationship" in cells and "'@SUM goals" in cells


def test_csv_writer_is_used_only_by_the_one_writer():
    package = ROOT / "alliance_cli"
    users = sorted(
        str(p.relative_to(package))
        for p in package.rglob("*.py")
        if "csv.writer(" in p.read_text(encoding="utf-8")
    )
    assert users == ["io/csvout.py"]
