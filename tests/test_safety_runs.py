"""Issue 20: --jobs only where it is exact, capped at the cores, and scratch folders that
a killed run left behind are removed by the next run."""

from __future__ import annotations

import os
import random
from pathlib import Path


def test_long_format_over_the_parallel_size_is_read_whole(cli, tmp_path: Path, monkeypatch):
    """A valid long file at the default --jobs gave 0 scored and every row rejected ("row
    has 5 fields; the header has 15"): the workers read the file's lines, not the rebuilt
    rows. A rebuilt layout is now read on one process, at any size."""
    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")  # every file is "large" here
    rng = random.Random(2)
    lines = ["client_id,session,date,item,value"]
    for c in range(300):
        lines += [f"C-{c:04d},1,2026-01-05,{i},{rng.randint(1, 5)}" for i in range(1, 13)]
    src = tmp_path / "long.csv"
    src.write_text("\n".join(lines) + "\n")
    one = cli("batch", str(src), "-i", "wai-sr", "-j", "1", "-q")
    two = cli("batch", str(src), "-i", "wai-sr", "-j", "2", "-q")
    assert one.exit_code == two.exit_code == 0, two.stderr
    assert two.stdout == one.stdout and len(two.stdout.splitlines()) == 301


def _dead_pid() -> int:
    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_a_killed_runs_scratch_folder_is_removed_by_the_next(tmp_path: Path):
    from alliance_cli.io.files import SCRATCH_PREFIX, sweep_scratch

    dead = tmp_path / f"{SCRATCH_PREFIX}jobs-{_dead_pid()}-abc123"
    alive = tmp_path / f"{SCRATCH_PREFIX}jobs-{os.getpid()}-def456"
    other = tmp_path / "alliance-something-else"
    for folder in (dead, alive, other):
        folder.mkdir()
        (folder / "0.out").write_text("scored rows\n")
    assert sweep_scratch(str(tmp_path)) == 1
    assert not dead.exists() and alive.exists() and other.exists()


def test_a_parallel_run_names_its_scratch_folder_caps_its_workers_and_leaves_nothing(
    cli, tmp_path, monkeypatch
):
    import multiprocessing
    import tempfile

    from alliance_cli.batch import parallel
    from alliance_cli.io import files

    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    folders: list[str] = []
    real_scratch = files.scratch

    def named(kind: str):
        with real_scratch(kind) as path:
            folders.append(path)
            assert os.listdir(tmp_path / "tmp") == [Path(path).name]
            yield path

    monkeypatch.setattr(files, "scratch", __import__("contextlib").contextmanager(named))
    started: list[int] = []
    real_context = multiprocessing.get_context

    class Counting:
        def __init__(self, kind: str) -> None:
            self.real = real_context(kind)

        def Process(self, *args, **kwargs):
            started.append(1)
            return self.real.Process(*args, **kwargs)

    monkeypatch.setattr(multiprocessing, "get_context", Counting)
    monkeypatch.setattr(parallel, "default_jobs", lambda: 2)  # a two-core machine
    src = tmp_path / "x.csv"
    body = "".join(f"C-{i},1," + ",".join(["4"] * 12) + "\n" for i in range(3000))
    head = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    src.write_text(head + "\n" + body)
    result = cli("batch", str(src), "-i", "wai-sr", "-j", "24", "-q")
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3001
    assert len(started) == 2  # 24 asked for, 2 cores: 2 workers
    assert [Path(f).name.startswith(f"alliance-scratch-jobs-{os.getpid()}-") for f in folders] == [
        True
    ]
    assert os.listdir(tmp_path / "tmp") == []


def test_parallel_workers_report_progress_to_one_bar(tmp_path: Path, monkeypatch):
    """Issue 22: the default batch path (--jobs) showed no progress; the workers now share
    their rows and bytes with the parent, which feeds the one progress bar."""
    from alliance_cli.batch.engine import BatchOptions
    from alliance_cli.batch.run import run_files

    from .conftest import scorer_for

    monkeypatch.setenv("ALLIANCE_JOBS_MIN_BYTES", "1")
    src = tmp_path / "x.csv"
    body = "".join(f"C-{i},1," + ",".join(["4"] * 12) + "\n" for i in range(20_000))
    src.write_text("client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13)) + "\n" + body)
    seen: list[tuple[int, int]] = []
    options = BatchOptions(jobs=2)
    stats, _ = run_files([str(src)], scorer_for("wai-sr"), "csv", tmp_path / "o.csv", None,
                         options, print, lambda rows, done: seen.append((rows, done)))  # fmt: skip
    assert stats.scored == 20_000
    assert seen and seen[-1] == (20_000, src.stat().st_size)
    assert [r for r, _ in seen] == sorted(r for r, _ in seen)  # never backwards
