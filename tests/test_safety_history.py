"""Issue 10, the history: concurrency, locks, read-only and full stores, interrupts, pipes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from .conftest import ROOT, env_without_color

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"

ALLIANCE = [sys.executable, "-m", "alliance_cli"]
ANSWERS = "4 4 4 4 4 4 4 4 4 4 4 4".split()


def _run(*args: str, env_extra: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    env = env_without_color() | (env_extra or {})
    return subprocess.run([*ALLIANCE, *args], env=env, capture_output=True, text=True, **kw)


def _count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    finally:
        conn.close()


def test_twenty_first_uses_at_once_lose_no_save(tmp_path: Path):
    db = tmp_path / "new.sqlite"

    def save(i: int) -> subprocess.CompletedProcess:
        return _run("score", "wai-sr", *ANSWERS, "--client", f"C-{i}", "--session", "1",
                    "--save", "--db", str(db), "-f", "json", "-q")  # fmt: skip

    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(save, range(20)))
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results]
    assert _count(db) == 20
    # issue 20: a new store is put in place whole, so no process sees it half made and says
    # it is "upgrading the history's format"; no temporary store is left beside it
    assert not [r.stderr for r in results if "upgrading" in r.stderr]
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("new.sqlite")) == []
    with ThreadPoolExecutor(10) as pool:
        reads = list(pool.map(lambda _: _run("clients", "--db", str(db), "-f", "json"), range(10)))
    assert all(r.returncode == 0 for r in reads), [r.stderr for r in reads]


def _saved(db: Path) -> None:
    done = _run("score", "wai-sr", *ANSWERS, "--client", "C-1", "--session", "1", "--save",
                "--db", str(db), "-q")  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_held_lock_is_waited_for_visibly_then_exit_5(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    _saved(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        done = _run("score", "wai-sr", *ANSWERS, "--client", "C-2", "--session", "1", "--save",
                    "--db", str(db), env_extra={"ALLIANCE_LOCK_WAIT": "1"})  # fmt: skip
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert done.returncode == 5, done.stderr
    assert "waiting for another alliance" in done.stderr
    assert f"error: {db}: another program held the history" in done.stderr
    assert "internal error" not in done.stderr


def test_a_read_only_history_is_read_but_not_written(cli, tmp_path: Path, monkeypatch):
    db = tmp_path / "h.sqlite"
    _saved(db)
    real_connect = sqlite3.connect

    def read_only(path, *args, **kwargs):
        return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kwargs)

    monkeypatch.setattr("alliance_cli.store.sqlite.sqlite3.connect", read_only)
    assert cli("history", "C-1", "--db", str(db), "-f", "json").exit_code == 0
    listed = cli("clients", "--db", str(db), "-f", "json")  # its kept reading cannot be kept
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["client_id"] == "C-1"
    saved = cli("score", "wai-sr", *ANSWERS, "--client", "C-1", "--session", "2", "--save",
                "--db", str(db), "-q")  # fmt: skip
    assert saved.exit_code == 5
    assert saved.stderr.startswith(f"error: {db}: the history is read-only")


def test_a_full_disk_is_exit_5_naming_the_history(cli, tmp_path: Path, monkeypatch):
    from alliance_cli.store.sqlite import Store

    db = tmp_path / "h.sqlite"
    _saved(db)
    real_init = Store.__init__

    def tiny(self, path, on_wait=None, writing=True):
        real_init(self, path, on_wait, writing)
        pages = self.db.execute("PRAGMA page_count").fetchone()[0]
        self.db.execute(f"PRAGMA max_page_count = {pages}")  # no room for one more page

    monkeypatch.setattr(Store, "__init__", tiny)
    src = tmp_path / "many.csv"
    rows = "".join(f"C-{i},1," + ",".join(["4"] * 12) + "\n" for i in range(2, 3000))
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + rows)
    result = cli(
        "batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(tmp_path / "o.csv")
    )
    assert result.exit_code == 5, result.stderr
    assert f"error: {db}: the disk is full; nothing was saved" in result.stderr
    assert _count(db) == 1  # the batch is saved whole or not at all


def test_read_only_commands_never_create_a_store(cli, tmp_path: Path):
    typo = tmp_path / "histroy.sqlite"
    for command in (["clients"], ["history", "C-1"], ["forget", "C-1", "--yes"]):
        result = cli(*command, "--db", str(typo))
        assert result.exit_code == 5
        assert result.stderr.startswith(f"error: {typo}: no history here")
        assert not typo.exists()


def test_a_pipe_closed_early_still_saves_every_row(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    src = tmp_path / "big.csv"
    rows = "".join(f"C-{i},1," + ",".join(["4"] * 12) + "\n" for i in range(20_000))
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + rows)
    proc = subprocess.Popen(
        [*ALLIANCE, "batch", str(src), "-i", "wai-sr", "--save", "--db", str(db)],
        env=env_without_color(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert b"output is incomplete; every row was still scored and saved" in err
    assert _count(db) == 20_000


def test_an_interrupted_batch_saves_nothing_and_says_so(tmp_path: Path):
    db = tmp_path / "h.sqlite"
    src = tmp_path / "big.csv"  # large enough to be scored on every core, and still going
    rows = "".join(f"C-{i},1," + ",".join(["4"] * 12) + "\n" for i in range(600_000))
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n" + rows)
    out = tmp_path / "out.csv"
    proc = subprocess.Popen(
        [*ALLIANCE, "batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(out)],
        env=env_without_color(), stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.time() + 30
    while time.time() < deadline and not db.exists():
        time.sleep(0.02)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"nothing from this batch was saved" in err
    assert _count(db) == 0 and not out.exists()
    again = _run("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", str(out), "-q")
    assert again.returncode == 0, again.stderr  # the rerun is not refused as duplicates
    assert _count(db) == 600_000


def test_an_interruption_just_after_the_commit_is_not_said_to_have_saved_nothing(
    tmp_path: Path, monkeypatch
):
    from alliance_cli.store import sqlite as history

    store = history.open_store(tmp_path / "h.sqlite")
    try:
        recorder = store.batch_recorder(replace=False)
        commit = store.commit

        def commit_then_stop() -> None:
            commit()
            raise KeyboardInterrupt  # as SIGTERM's handler does, before finish returns

        monkeypatch.setattr(store, "commit", commit_then_stop)
        with pytest.raises(KeyboardInterrupt):
            recorder.finish(keep=True)
        assert recorder.finished  # committed: `batch` does not say "nothing was saved"
        other = store.batch_recorder(replace=False)
        monkeypatch.setattr(store, "commit", lambda: (_ for _ in ()).throw(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            other.finish(keep=True)
        assert not other.finished  # stopped before the commit: nothing saved, and said
    finally:
        store.close()


def test_a_changed_subscale_id_leaves_old_records_readable(cli, tmp_path: Path):
    from alliance_cli.io.catalog import bundled_dir

    own = tmp_path / "own"
    own.mkdir()
    db = str(tmp_path / "h.sqlite")
    text = (bundled_dir() / "wai-sr.yaml").read_text(encoding="utf-8")
    (own / "wai-sr.yaml").write_text(text)
    for session in (1, 2):
        cli("--instruments-dir", str(own), "score", "wai-sr", *ANSWERS, "--client", "C-1",
            "--session", str(session), "--save", "--db", db, "-q")  # fmt: skip
    (own / "wai-sr.yaml").write_text(
        text.replace("{id: bond, name: Bond", "{id: rapport, name: Bond")
    )
    shown = cli("--instruments-dir", str(own), "history", "C-1", "--db", db, "-f", "table")
    assert shown.exit_code == 0, shown.stderr
    saved = cli("--instruments-dir", str(own), "score", "wai-sr", *ANSWERS, "--client", "C-1",
                "--session", "3", "--save", "--db", db, "-f", "json")  # fmt: skip
    assert saved.exit_code == 0, saved.stderr
    assert "saved session 3 for client C-1" in saved.stderr


def test_forget_leaves_no_copy_in_the_write_ahead_log(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    for i in range(3):
        cli("score", "wai-sr", *ANSWERS, "--client", "SECRET-ID-7", "--session", str(i + 1),
            "--save", "--db", str(db), "-q")  # fmt: skip
    reader = sqlite3.connect(db)  # another connection open, as a second window would be
    try:
        reader.execute("SELECT count(*) FROM sessions").fetchone()
        assert cli("forget", "SECRET-ID-7", "--yes", "--db", str(db)).exit_code == 0
    finally:
        reader.close()
    wal = Path(f"{db}-wal")
    leftover = wal.read_bytes() if wal.exists() else b""
    assert b"SECRET-ID-7" not in leftover
    assert b"SECRET-ID-7" not in db.read_bytes()


def test_ndjson_save_gives_every_set_an_outcome(cli, tmp_path: Path):
    db = str(tmp_path / "h.sqlite")
    other = [5 if a != 5 else 4 for a in ANSWERS]
    sets = [{"client_id": "A", "session": 1, "answers": ANSWERS},
            {"client_id": "A", "session": 1, "answers": other},
            {"client_id": "A", "session": 1, "answers": ANSWERS},
            {"client_id": "B", "session": 1, "answers": ANSWERS}]  # fmt: skip
    lines = "\n".join(json.dumps(s) for s in sets) + "\n"
    result = cli("score", "wai-sr", "-", "--save", "--db", db, "-f", "ndjson", input=lines)
    assert result.exit_code == 3
    shown = [json.loads(line)["respondent"]["client_id"] for line in result.stdout.splitlines()]
    assert shown == ["A", "A", "B"]  # the repeat with the same answers is no error
    assert "stdin:2: client A session 1" in result.stderr
    assert "is recorded with other answers" in result.stderr
    assert "already recorded with the same answers (nothing to do)" in result.stderr


@pytest.mark.parametrize("cell", ["²", "①", "12345678901234567890", "0", "-1"])
def test_an_odd_session_cell_rejects_the_row_not_the_batch(cli, tmp_path: Path, cell):
    src = tmp_path / "s.csv"
    good = "C-1,1," + ",".join(["4"] * 12)
    bad = f"C-2,{cell}," + ",".join(["4"] * 12)
    src.write_text(
        "client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + f"\n{good}\n{bad}\n"
    )
    result = cli(
        "batch",
        str(src),
        "-i",
        "wai-sr",
        "--save",
        "--db",
        str(tmp_path / "h"),
        "-o",
        str(tmp_path / "o.csv"),
    )
    assert result.exit_code == 3, result.stderr
    assert "rows read, 1 scored, 1 rejected" in result.stderr.replace("2 rows", "rows")
    assert "is not a session number" in result.stderr


@pytest.mark.parametrize("strict", [False, True])
def test_a_batch_commits_its_history_before_its_output_is_put_in_place(tmp_path: Path, strict):
    """An interruption between the two then leaves no output and nothing saved, or the
    history saved and a rerun that finds it (never an output with nothing saved)."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.batch.run import run_files

    from .conftest import scorer_for

    src = tmp_path / "in.csv"
    src.write_text("client_id,session," + ",".join(f"q{i}" for i in range(1, 13)) + "\n"
                   + "C-1,1," + ",".join(["4"] * 12) + "\n"
                   + "C-2,1," + ",".join(["9"] * 12) + "\n", encoding="utf-8")  # fmt: skip
    out, rejects = tmp_path / "out.csv", tmp_path / "rejects.csv"
    seen: list[tuple[bool, bool]] = []
    stats, written = run_files(
        [str(src)], scorer_for("wai-sr"), "csv", out, rejects, BatchOptions(strict=strict),
        lambda r: None, on_scored=lambda: seen.append((out.exists(), rejects.exists())),
    )  # fmt: skip
    assert (stats.scored, stats.rejected) == (1, 1)
    if strict:  # output withheld: nothing to commit
        assert seen == [] and not written and not out.exists()
    else:
        assert seen == [(False, False)] and written and out.exists() and rejects.exists()


# -- issue 20, item 8: store errors name the cause; a failed first save leaves nothing -------


def test_a_store_path_that_is_a_device_or_a_fifo_says_so(cli, tmp_path: Path):
    """--db /dev/null (or a FIFO) said "the disk reported an error … a failing disk"."""
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for where in (Path("/dev/null"), fifo):
        for args in (["clients"], ["score", "srs", "9", "9", "9", "9", "--client", "X",
                                   "--session", "1", "--save", "-q"]):  # fmt: skip
            result = cli(*args, "--db", str(where))
            assert result.exit_code == 5, result.stderr
            assert result.stderr == (
                f"error: {where}: not a regular file (a device, a FIFO or a socket); a history "
                "is an SQLite file: give its path\n"
            )
    assert fifo.exists() and not fifo.is_file()  # (left as it was)


def test_a_store_path_that_is_a_directory_says_so(cli, tmp_path: Path):
    for args in (["clients"], ["score", "srs", "9", "9", "9", "9", "--client", "C", "--session",
                               "1", "--save", "-q"]):  # fmt: skip
        result = cli(*args, "--db", str(tmp_path))
        assert result.exit_code == 5, result.stderr
        assert result.stderr == f"error: {tmp_path}: is a directory; give the history's file name\n"


def test_a_store_that_is_not_a_database_says_so(cli, tmp_path: Path):
    db = tmp_path / "notes.txt"
    db.write_text("my notes\n")
    for args in (["clients"], ["score", "srs", "9", "9", "9", "9", "--client", "C", "--session",
                               "1", "--save", "-q"]):  # fmt: skip
        result = cli(*args, "--db", str(db))
        assert result.exit_code == 5 and "not an alliance history" in result.stderr
    assert db.read_text() == "my notes\n"  # never touched


def test_permission_causes_are_named():
    import errno

    from alliance_cli.store.sqlite import Store

    store = Store.__new__(Store)  # only the wording, without a file (root reads anything)
    for code, words in ((errno.EACCES, "permission denied"), (errno.ENOSPC, "the disk is full"),
                        (errno.EROFS, "read-only")):  # fmt: skip
        assert words in store._os_cause(OSError(code, os.strerror(code)))


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 1 MiB tmpfs (needs mount rights: root in CI; skipped elsewhere)."""
    where = tmp_path / "disk"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                             capture_output=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=False)


def test_a_full_disk_is_named_and_a_failed_first_save_leaves_nothing(small_disk: Path):
    db = small_disk / "h.sqlite"
    (small_disk / "fill").write_bytes(b"\0" * (1024 * 1024 - 8 * 1024))
    first = _run("score", "wai-sr", *ANSWERS, "--client", "C-1", "--session", "1", "--save",
                 "--db", str(db), "-q")  # fmt: skip
    assert first.returncode == 5, first.stderr
    assert first.stderr == f"error: {db}: the disk is full; nothing was saved\n"
    assert sorted(p.name for p in small_disk.iterdir()) == ["fill"]  # no empty store left
    (small_disk / "fill").unlink()
    _saved(db)
    (small_disk / "fill").write_bytes(b"\0" * (1024 * 1024 - db.stat().st_size - 4096))
    batch = _run("batch", str(EXPORT), "-i", "wai-sr", "--save", "--db", str(db), "-o",
                 os.devnull, "-q")  # fmt: skip
    assert batch.returncode == 5 and "the disk is full; nothing was saved" in batch.stderr
    assert "rollback" not in batch.stderr
    read = _run("clients", "--db", str(db))
    assert read.returncode == 5 and "needs a little free space even to read" in read.stderr
    (small_disk / "fill").unlink()
    assert _count(db) == 1  # the earlier save is intact
