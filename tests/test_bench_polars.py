"""Issue 14 compares `batch` with polars doing *the same scoring*: the benchmark's polars
script (bench/batch.py, POLARS_SAME) must give alliance's values, row for row.

A small WAI-SR export with blank cells, bad answers, a bad session, a bad date and a blank
form is scored both ways; every row alliance keeps, polars keeps, with every value equal
(polars writes 11.0 where alliance writes 11, and its own placeholder for the hash).
"""

from __future__ import annotations

import csv
import importlib.util
import random
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import bench_module

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("polars") is None, reason="polars (a test extra) not installed"
)


def test_the_benchmarks_polars_script_scores_as_alliance_does(cli, tmp_path: Path):
    rng = random.Random(14)
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["client_id", "session", "date", *[f"wai_{i}" for i in range(1, 13)]])
        for n in range(3000):
            cells = [str(rng.randint(1, 5)) if rng.random() > 0.15 else "" for _ in range(12)]
            session, date = str(n % 24 + 1), "2026-10-01"
            if n % 97 == 3:
                cells[rng.randrange(12)] = rng.choice(["9", "x", "3.5", "0"])  # rejected
            if n % 211 == 5:
                session = "abc"  # rejected
            if n % 223 == 7:
                date = "2026-13-01"  # rejected
            if n % 301 == 9:
                cells = [""] * 12  # not administered
            writer.writerow([f"C{n % 500:03d}", session, date, *cells])
    ours = tmp_path / "alliance.csv"
    result = cli("batch", str(src), "-i", "wai-sr", "-o", str(ours), "-q")
    assert result.exit_code == 3  # the rejected rows
    theirs = tmp_path / "polars.csv"
    script = bench_module("batch").POLARS_SAME
    subprocess.run([sys.executable, "-c", script, str(src), str(theirs)], check=True)

    with ours.open(newline="") as a, theirs.open(newline="") as b:
        mine, other = list(csv.reader(a)), list(csv.reader(b))
    assert mine[0] == other[0]  # the same columns, in the same order
    assert len(mine) == len(other) > 2000  # the same rows kept (and rejected, and left out)
    for row_a, row_b in zip(mine[1:], other[1:], strict=True):
        for name, x, y in zip(mine[0][:-1], row_a[:-1], row_b[:-1], strict=True):
            same = x == y or (x != "" and y != "" and float(x) == float(y))
            assert same, (name, row_a, row_b)
