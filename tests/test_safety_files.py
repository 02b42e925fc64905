"""Issue 10, files: nothing the tool writes damages what was there.

Device nodes are made with mknod in a temporary directory; the real /dev/null is never used
(only /dev/full, read-only by nature, stands in for a full disk).
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT, env_without_color

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


def _batch(cli, *args: str):
    return cli("batch", str(EXPORT), "-i", "wai-sr", "-q", *args)


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_a_device_is_written_to_not_replaced(cli, tmp_path: Path):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a null device of our own
    result = _batch(cli, "-o", str(null))
    assert result.exit_code == 3, result.stderr  # the example's two bad rows
    assert stat.S_ISCHR(null.stat().st_mode)  # still a device
    assert not list(tmp_path.glob(".alliance-*"))


def test_a_fifo_is_written_to_not_replaced(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    cmd = [sys.executable, "-m", "alliance_cli", "batch", str(EXPORT), "-i", "wai-sr", "-q"]
    done = subprocess.run([*cmd, "-o", str(fifo)], env=env_without_color(), timeout=60)
    reader.join(timeout=30)
    assert done.returncode == 3
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert got and got[0].startswith(b"record_id,session")


def test_a_symlink_is_followed(cli, tmp_path: Path):
    real = tmp_path / "real.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    _batch(cli, "-o", str(link))
    assert link.is_symlink() and link.resolve() == real
    assert real.read_text().startswith("record_id,")


def test_a_hard_link_stays_linked(cli, tmp_path: Path):
    one = tmp_path / "one.csv"
    one.write_text("old\n")
    two = tmp_path / "two.csv"
    os.link(one, two)
    _batch(cli, "-o", str(one))
    assert os.path.samefile(one, two) and two.read_text().startswith("record_id,")


def test_an_existing_file_keeps_its_mode_and_a_new_one_gets_the_umask(cli, tmp_path: Path):
    old = tmp_path / "old.csv"
    old.write_text("x\n")
    old.chmod(0o644)
    _batch(cli, "-o", str(old))
    assert stat.S_IMODE(old.stat().st_mode) == 0o644
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.csv"
        _batch(cli, "-o", str(new))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644


def test_dash_is_stdout_and_two_stdouts_are_refused(cli, tmp_path: Path):
    result = _batch(cli, "-o", "-")
    assert result.stdout.startswith("record_id,")
    both = _batch(cli, "-o", "-", "--rejects", "-")
    assert both.exit_code == 2 and "both standard output" in both.stderr and both.stdout == ""
    implicit = _batch(cli, "--rejects", "-")  # -o absent is stdout too
    assert implicit.exit_code == 2


def test_one_file_for_two_outputs_is_refused(cli, tmp_path: Path):
    same = tmp_path / "same.csv"
    result = _batch(cli, "-o", str(same), "--rejects", str(same))
    assert result.exit_code == 2 and not same.exists()
    mapping = tmp_path / "m.yaml"
    mapping.write_text("".join(f"{i}: wai_{i}\n" for i in range(1, 13)))
    clobber = _batch(cli, "--map", str(mapping), "-o", str(mapping))
    assert clobber.exit_code == 2 and "which this run reads" in clobber.stderr
    assert mapping.read_text().startswith("1: wai_1")


@pytest.mark.parametrize(
    ("target", "code", "words"),
    [("", 2, "the path is empty"), ("DIR", 5, "is a directory"),
     ("NOPE/x.csv", 5, "does not exist"), ("LONG", 5, "too long")],
)  # fmt: skip
def test_unwritable_outputs_fail_before_reading(cli, tmp_path: Path, target, code, words):
    path = {"DIR": str(tmp_path), "NOPE/x.csv": str(tmp_path / "nope" / "x.csv")}.get(
        target, target
    )
    if target == "LONG":
        path = str(tmp_path / ("x" * 260 + ".csv"))
    result = _batch(cli, "-o", path)
    assert result.exit_code == code, result.stderr
    (line,) = result.stderr.splitlines()
    assert words in line and "internal error" not in line


def test_a_name_near_the_limit_still_has_room_for_the_temporary_file(cli, tmp_path: Path):
    target = tmp_path / ("x" * 250 + ".csv")  # 254 bytes: the old temp prefix went over 255
    result = _batch(cli, "-o", str(target))
    assert result.exit_code == 3 and target.read_text().startswith("record_id,")


def test_a_full_disk_is_exit_5_with_the_path(cli):
    result = _batch(cli, "-o", "/dev/full")
    assert result.exit_code == 5
    assert result.stderr.startswith("error: /dev/full: cannot write")


def test_save_without_a_client_column_says_which_option_and_writes_nothing(cli, tmp_path: Path):
    src = tmp_path / "noids.csv"
    src.write_text("q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12\n" + ",".join(["4"] * 12) + "\n")
    result = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(tmp_path / "h"))
    assert result.exit_code == 2
    assert "--id-column" in result.stderr and "--client-column" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_hangup_leaves_no_temporary_file(tmp_path: Path, sig):
    big = tmp_path / "big.csv"
    row = "C-1,1," + ",".join(["4"] * 12) + "\n"
    big.write_text(
        "client,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + row * 400_000
    )
    out = tmp_path / "out.csv"
    out.write_text("previous\n")
    cmd = [sys.executable, "-m", "alliance_cli", "batch", str(big), "-i", "wai-sr", "-o", str(out)]
    proc = subprocess.Popen(cmd, env=env_without_color(), stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline and not list(tmp_path.glob(".alliance-*.part")):
        time.sleep(0.01)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert out.read_text() == "previous\n"
    assert not list(tmp_path.glob(".alliance-*"))
