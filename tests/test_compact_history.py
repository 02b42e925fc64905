"""Issue 14: the compact history gives back every stored session's full Score, exactly.

Every scorable bundled instrument: random answer sets (valid values, blanks, and bad cells
read as missing with --invalid missing, whose issues the rebuild must keep) are saved with
batch --save; the Score batch wrote for each row must equal the Score the history rebuilds
from the answers and the definition it keeps once.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from .conftest import scorable_ids


@pytest.mark.parametrize("instrument", scorable_ids())
def test_every_saved_score_comes_back_whole(cli, tmp_path: Path, instrument):
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history

    inst = load_catalog().get(instrument).instrument
    items = [str(i.id) for i in inst.items]
    low, high, step = inst.scale.min, inst.scale.max, inst.scale.step
    values = [round(low + k * step, 6) for k in range(round((high - low) / step) + 1)]
    rng = random.Random(instrument)
    path = tmp_path / "in.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["client_id", "session", "date", *items])
        for n in range(40):
            cells = [f"{rng.choice(values):g}" for _ in items]
            for k in rng.sample(range(len(items)), rng.randint(0, 2)):
                cells[k] = rng.choice(["", "", "999", "x"])  # missing, or bad: read as missing
            writer.writerow([f"K{n % 7}", str(n // 7 + 1), f"2026-10-{n % 28 + 1:02d}", *cells])
    db = tmp_path / "h.sqlite"
    saved = cli("batch", str(path), "-i", instrument, "--invalid", "missing", "--save",
                "--db", str(db), "-f", "ndjson", "-q")  # fmt: skip
    assert saved.exit_code == 0, saved.stderr
    written = [json.loads(line) for line in saved.stdout.splitlines()]
    assert written and any(s["issues"] for s in written)  # bad cells were in the mix
    store = history.open_store(db)
    try:
        for score in written:
            score.pop("source")
            who = score["respondent"]
            (record,) = [r for r in store.records(who["client_id"], instrument)
                         if r.session == who["session"]]  # fmt: skip
            assert record.score == score
        extra = store.db.execute("SELECT count(*) FROM sessions WHERE extra IS NOT NULL")
        assert extra.fetchone()[0] == sum(bool(s["issues"]) for s in written)
    finally:
        store.close()


def test_score_save_comes_back_whole_with_what_was_said(cli, tmp_path: Path):
    from alliance_cli.store import sqlite as history

    db = tmp_path / "h.sqlite"
    said = []
    for session, answers in enumerate(["5"] * 3 + ["1"], start=1):
        result = cli("score", "wai-sr", *[answers] * 12, "--client", "Z", "--session",
                     str(session), "--save", "--db", str(db), "-f", "json", "-q")  # fmt: skip
        said.append(json.loads(result.stdout)[0])
    store = history.open_store(db)
    try:
        records = store.records("Z")
        for record, shown in zip(records, said, strict=True):
            flags = shown.pop("flags")
            assert {k: v for k, v in record.score.items() if k != "flags"} == shown
            assert record.said_flags == flags  # the Score's own and the history's, as said
        assert any(f["code"].startswith("rupture") for f in records[3].said_flags)
    finally:
        store.close()
