"""Issue 19, item 8: many clients read again at once (the first `clients` after an import)
are read on every core. The list, and what is kept as said at each session of a large batch,
are those one process gives: the same rows in the same order."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from alliance_cli.store import reading_jobs


def _history(cli, tmp_path: Path, mini: Path) -> Path:
    """A history of 40 clients (WAI-SR, and a therapist's WAI-SR-T for some), saved by
    batches large enough to leave the reading to the next reader; and one client of a
    form whose definition changed its subscales between sessions (read with the store's
    help: by the parent)."""
    rng = random.Random(19)
    client_rows, therapist_rows = [], []
    for c in range(40):
        level = rng.choice([1.5, 3, 4.5])
        for s in range(1, 9):
            fall = 2 if (c % 5 == 0 and s >= 5) else 0  # some drops that stay
            answers = [min(5, max(1, round(rng.gauss(level - fall, 0.8)))) for _ in range(12)]
            client_rows.append([f"C{c:02d}", s, *answers])
            if c % 3 == 0:
                theirs = [min(5, max(1, round(rng.gauss(level, 0.8)))) for _ in range(10)]
                therapist_rows.append([f"C{c:02d}", s, *theirs])
    db = tmp_path / "history.sqlite"
    for form, rows, items in (("wai-sr", client_rows, 12), ("wai-sr-t", therapist_rows, 10)):
        path = tmp_path / f"{form}.csv"
        header = ["client_id", "session", *(f"item_{i}" for i in range(1, items + 1))]
        path.write_text("\n".join(",".join(map(str, r)) for r in [header, *rows]) + "\n")
        result = cli("batch", str(path), "-i", form, "--save", "--db", str(db), "-o",
                     str(tmp_path / f"{form}.out.csv"), "-q")  # fmt: skip
        assert result.exit_code in (0, 3), result.stderr
    from tests.conftest import MINIMAL

    for session, answers, text in (
        (1, "4 2 4", MINIMAL),
        (2, "4 2 5", MINIMAL),
        (3, "1 5 1", MINIMAL.replace("{id: pair, name: Pair, dimension: goal, items: [1, 2]}",
                                     "{id: other, name: Other, dimension: task, items: [2, 3]}")
                            .replace('version: "1"', 'version: "2"')),
    ):  # fmt: skip
        (mini / "mini.yaml").write_text(text, encoding="utf-8")
        result = cli("--instruments-dir", str(mini), "score", "mini", *answers.split(),
                     "--client", "M1", "--session", str(session), "--save", "--db", str(db),
                     "-q")  # fmt: skip
        assert result.exit_code in (0, 3), result.stderr
    return db


def _read(cli, db: Path, copy: Path, mini: Path) -> tuple[str, list[tuple]]:
    """`clients -f json` on a copy of the history, and what it kept as said per session."""
    shutil.copyfile(db, copy)
    result = cli("--instruments-dir", str(mini), "clients", "--db", str(copy), "-f", "json")
    assert result.exit_code == 0, result.stderr
    with sqlite3.connect(copy) as con:
        said = con.execute(
            "SELECT client_id, instrument, rater, session, said_flags FROM sessions "
            "ORDER BY 1, 2, 3, 4"
        ).fetchall()
    return result.stdout, said


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_many_clients_read_on_every_core_give_what_one_process_gives(
    cli, tmp_path, monkeypatch, mini_dir
):
    from alliance_cli.cli import batch_run
    from alliance_cli.store import views

    monkeypatch.setattr(batch_run, "READ_AFTER_SAVE", 10)  # leave the reading to the reader
    db = _history(cli, tmp_path, mini_dir)
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert con.execute("SELECT count(*) FROM sessions WHERE said_flags IS NULL").fetchone()[0]
    one, one_said = _read(cli, db, tmp_path / "one.sqlite", mini_dir)

    used = []
    real = reading_jobs.read_all

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        used.append(out is not None)
        return out

    monkeypatch.setattr(reading_jobs, "read_all", spy)
    monkeypatch.setattr(reading_jobs, "PARALLEL_CLIENTS", 2)
    monkeypatch.setattr(reading_jobs, "CHUNK", 3)  # many chunks, back in order
    monkeypatch.setattr("alliance_cli.io.environment.usable_cores", lambda: 2)
    by_parent = []
    needs_store = views._needs_store

    def spy_store(row):
        by_parent.append(row[0]) if needs_store(row) else None
        return needs_store(row)

    monkeypatch.setattr(views, "_needs_store", spy_store)
    many, many_said = _read(cli, db, tmp_path / "many.sqlite", mini_dir)
    assert used and all(used), "the clients were not read on many processes"
    assert "M1" in by_parent  # the changed definition's client, read by the parent
    assert many == one
    assert many_said == one_said
    rows = json.loads(many)
    assert len(rows) == 41 and any(r["client_id"] == "M1" for r in rows)
    assert any(r["concerns"] for r in rows) and any(not r["concerns"] for r in rows)
    assert all(s[4] is not None for s in many_said)  # every session's said kept


def test_few_clients_or_one_core_read_on_one_process(monkeypatch):
    monkeypatch.setattr("alliance_cli.io.environment.usable_cores", lambda: 8)
    assert reading_jobs.read_all(list(range(10)), str) is None  # too few
    monkeypatch.setattr(reading_jobs, "PARALLEL_CLIENTS", 2)
    assert reading_jobs.read_all(list(range(10)), str, jobs=1) is None  # one core
    assert reading_jobs.read_all(list(range(10)), str, jobs=2) == [str(i) for i in range(10)]
