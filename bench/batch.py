"""Batch scoring speed and memory, side by side with the csv-module floor, in one run.

    python bench/batch.py [--rows 1000000] [--rows 100000]

Generates WAI-SR exports (about 2% blank cells, a few bad cells) under bench/data/, then
times each command as a separate process (median of --repeat runs, the commands taken in
turn) and reads its peak memory (max RSS, the largest of the runs) from wait4:
  floor     the csv module reading the file and writing it back unchanged
  alliance  alliance batch FILE -i wai-sr -o OUT -q (every core: --jobs defaults to them)
  -j1       the same with --jobs 1 (one process)
  polars    the same scoring in polars (POLARS_SAME below: checks, missing-answer rule,
            every column; only if polars is installed)
  polars-4m read_csv, the four means only, write_csv: no range, id or missing-answer rule,
            a lower bound for any scoring in polars
  pandas    read_csv, item means per scale, to_csv (only if pandas is installed)
  vas12     alliance on a 12-item 0-10-by-0.1 form (101 points an item: the memo tables'
            worst case, nearly every block of cells distinct), its own file of the same rows
Targets: with --jobs 1, at most 2.5 x the floor's wall time (issue 4); on every core, at or
below polars' time for the same scoring and at most 1.2 x the floor on 1,000,000 rows
(issue 14); peak memory under 64 MiB per process, for any instrument (issue 8: vas12
reached 352 MiB at 700,000 rows before memo tables were capped by bytes).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

FLOOR = """
import csv, sys
f = open(sys.argv[1], newline="", encoding="utf-8")
o = open(sys.argv[2], "w", newline="", encoding="utf-8")
with f, o:
    w = csv.writer(o, lineterminator="\\n")
    for row in csv.reader(f):
        w.writerow(row)
"""

PANDAS = """
import sys
import pandas as pd
df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False)
items = {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]}
num = df[[f"wai_{i}" for i in range(1, 13)]].apply(pd.to_numeric, errors="coerce")
for scale, cols in items.items():
    df[f"{scale}_mean"] = num[[f"wai_{i}" for i in cols]].mean(axis=1)
df["total_mean"] = num.mean(axis=1)
df.to_csv(sys.argv[2], index=False)
"""

# The same scoring as alliance's, in polars' own best form (lazy, streamed): answers,
# sessions and dates checked (a bad one rejects the row), blank forms left out, the
# missing-answer rule, sums prorated, POMP, every column alliance writes. Its values equal
# alliance's, row for row and cell for cell (tests/test_bench_polars.py; it writes 11.0
# where alliance writes 11). Labels, missing codes and formula neutralising, which the
# bench file never needs, are left out.
POLARS_SAME = """
import sys
import polars as pl
SCALES = {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9],
          "total": list(range(1, 13))}
MAX_MISSING = {"goal": 1, "task": 1, "bond": 1, "total": 3}
lf = pl.scan_csv(sys.argv[1], infer_schema_length=0, empty_string_is_null=False)
cell = {i: pl.col(f"wai_{i}").str.strip_chars() for i in range(1, 13)}
lf = lf.with_columns(
    *[cell[i].alias(f"c{i}") for i in range(1, 13)],
    *[cell[i].cast(pl.Int64, strict=False).alias(f"n{i}") for i in range(1, 13)],
    pl.col("session").str.strip_chars().alias("_session"),
    pl.col("date").str.strip_chars().alias("_date"),
)
bad = (
    pl.any_horizontal([(pl.col(f"c{i}") != "") & (pl.col(f"n{i}").is_null()
                       | (pl.col(f"n{i}") < 1) | (pl.col(f"n{i}") > 5)) for i in range(1, 13)])
    | ((pl.col("_session") != "") & ~pl.col("_session").str.contains(r"^[1-9][0-9]{0,8}$"))
    | ((pl.col("_date") != "") & pl.col("_date").str.to_date("%Y-%m-%d", strict=False).is_null())
)
blank = pl.all_horizontal([pl.col(f"c{i}") == "" for i in range(1, 13)])
lf = lf.filter(~bad & ~blank).with_columns(*[
    e for s, its in SCALES.items() for e in (
        pl.sum_horizontal([pl.col(f"n{i}").is_not_null().cast(pl.Int64) for i in its])
        .alias(f"{s}_answered"),
        pl.sum_horizontal([pl.col(f"n{i}") for i in its]).cast(pl.Float64).alias(f"_{s}_total"),
    )
])
exprs = []
for s, its in SCALES.items():
    answered, total = pl.col(f"{s}_answered"), pl.col(f"_{s}_total")
    ok = (len(its) - answered) <= MAX_MISSING[s]
    mean = pl.when(ok).then(total / answered)
    summed = pl.when(ok).then(pl.when(answered == len(its)).then(total)
                              .otherwise(total / answered * len(its)))
    exprs += [mean.round(6).alias(f"{s}_mean"), summed.round(6).alias(f"{s}_sum"), answered,
              ((mean - 1) / 4 * 100).round(6).alias(f"{s}_pomp")]
lf.select("client_id", "session", "date", *exprs, pl.lit("").alias("flags"),
          pl.lit("verified").alias("verification"),
          pl.lit("0" * 64).alias("definition_sha256")).sink_csv(sys.argv[2])
"""

POLARS = """
import sys
import polars as pl
df = pl.read_csv(sys.argv[1], infer_schema_length=0)
items = {"goal": [4, 6, 8, 11], "task": [1, 2, 10, 12], "bond": [3, 5, 7, 9]}
num = {i: pl.col(f"wai_{i}").cast(pl.Float64, strict=False) for i in range(1, 13)}
df = df.with_columns(
    *[pl.mean_horizontal([num[i] for i in cols]).alias(f"{s}_mean") for s, cols in items.items()],
    pl.mean_horizontal(list(num.values())).alias("total_mean"),
)
df.write_csv(sys.argv[2])
"""


def generate(rows: int) -> Path:
    """A WAI-SR export with blanks and a few bad cells (cached by row count)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"wai_sr_{rows}.csv"
    if path.exists():
        return path
    rng = random.Random(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["client_id", "session", "date", *[f"wai_{i}" for i in range(1, 13)]])
        for n in range(rows):
            cells = [str(rng.randint(1, 5)) if rng.random() > 0.02 else "" for _ in range(12)]
            if n % 50_000 == 7:
                cells[rng.randrange(12)] = rng.choice(["9", "x", "3.5"])
            w.writerow([f"C{n % 20000:05d}", str(n % 24 + 1), "2026-10-01", *cells])
    return path


_ITEMS = ", ".join(f"{{id: {i}, label: line {i}}}" for i in range(1, 13))
VAS12 = f"""id: vas12
name: Twelve visual-analogue lines (benchmark)
version: "1"
respondent: client
citation: alliance benchmark fixture
licence: none needed
verification: {{status: unverified, sources: [benchmark]}}
scale: {{min: 0, max: 10, step: 0.1}}
items: [{_ITEMS}]
subscales:
  - {{id: a, name: A, dimension: goal, items: [1, 2, 3, 4], max_missing: 1}}
  - {{id: b, name: B, dimension: task, items: [5, 6, 7, 8], max_missing: 1}}
  - {{id: c, name: C, dimension: bond, items: [9, 10, 11, 12], max_missing: 1}}
total: {{max_missing: 3}}
metric: sum
"""


def generate_vas(rows: int) -> tuple[Path, Path]:
    """A 12-item 0-10-by-0.1 export and its instrument directory (cached by row count)."""
    inst = DATA / "instruments"
    inst.mkdir(parents=True, exist_ok=True)
    (inst / "vas12.yaml").write_text(VAS12, encoding="utf-8")
    path = DATA / f"vas12_{rows}.csv"
    if not path.exists():
        rng = random.Random(rows + 12)
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["client_id", "session", *[f"v{i}" for i in range(1, 13)]])
            for n in range(rows):
                cells = [f"{rng.randint(0, 100) / 10:g}" for _ in range(12)]
                w.writerow([f"C{n % 20000:05d}", str(n % 24 + 1), *cells])
    return path, inst


def measure(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, peak RSS in MiB and exit code of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def save(sizes: list[int], repeat: int) -> None:
    """batch --save of every row into a new history: rows per second, bytes per session."""
    import sqlite3

    exe = shutil.which("alliance", path=os.path.dirname(sys.executable))
    alliance = [exe] if exe else [sys.executable, "-m", "alliance_cli"]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for rows in sizes:
        source = generate(rows)
        unique = DATA / f"wai_sr_{rows}_unique.csv"  # one session per row: every row saved
        if not unique.exists():
            with source.open(newline="") as src, unique.open("w", newline="") as out:
                reader, writer = csv.reader(src), csv.writer(out, lineterminator="\n")
                writer.writerow(next(reader))
                for n, row in enumerate(reader):
                    writer.writerow([f"U{n:07d}", "1", *row[2:]])
        timings = []
        for _ in range(repeat):
            db = DATA / "save.sqlite"
            for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                leftover.unlink(missing_ok=True)
            seconds, peak, code = measure(
                [
                    *alliance,
                    "batch",
                    str(unique),
                    "-i",
                    "wai-sr",
                    "--save",
                    "--db",
                    str(db),
                    "-o",
                    os.devnull,
                    "-q",
                ]
            )
            with sqlite3.connect(db) as con:
                stored = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
            con.close()
            timings.append((seconds, peak, code, stored, db.stat().st_size))
        seconds, peak, code, stored, size = sorted(timings)[len(timings) // 2]
        print(
            f"{rows:>9,} rows: batch --save {seconds:6.2f} s, {stored / seconds:9,.0f} rows/s, "
            f"{size / stored:5.0f} bytes per session, peak {peak:.1f} MiB, exit {code}"
        )


def main() -> None:
    """Run every command on every size and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command (median)")
    parser.add_argument(
        "--save", action="store_true", help="only time batch --save into a new history"
    )
    args = parser.parse_args()
    if args.save:
        save(args.rows or [100_000], args.repeat)
        return
    sizes = args.rows or [100_000, 1_000_000]
    exe = shutil.which("alliance", path=os.path.dirname(sys.executable))
    alliance = [exe] if exe else [sys.executable, "-m", "alliance_cli"]
    # find_spec, not import: a child's peak RSS (wait4) includes the parent's memory at fork.
    have_pandas = importlib.util.find_spec("pandas") is not None
    have_polars = importlib.util.find_spec("polars") is not None
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    print(f"{'rows':>9}  {'command':<9} {'seconds':>8} {'x floor':>8} {'peak MiB':>9}  exit")
    for rows in sizes:
        path = generate(rows)
        out = DATA / "out.csv"
        runs = {
            "floor": [sys.executable, "-c", FLOOR, str(path), str(out)],
            "alliance": [*alliance, "batch", str(path), "-i", "wai-sr", "-o", str(out), "-q"],
            "-j1": [*alliance, "batch", str(path), "-i", "wai-sr", "-o", str(out), "-q", "-j1"],
        }
        if have_polars:
            runs["polars"] = [sys.executable, "-c", POLARS_SAME, str(path), str(out)]
            runs["polars-4m"] = [sys.executable, "-c", POLARS, str(path), str(out)]
        if have_pandas:
            runs["pandas"] = [sys.executable, "-c", PANDAS, str(path), str(out)]
        vas, inst = generate_vas(rows)
        runs["vas12"] = [
            *alliance, "--instruments-dir", str(inst), "batch", str(vas), "-i", "vas12",
            "-o", str(out), "-q",
        ]  # fmt: skip
        floor = None
        # round-robin, not each command's runs in a row: a shared machine's load changes
        # from minute to minute, and every command should see the same spread of it
        timings: dict[str, list[tuple[float, float, int]]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                timings[name].append(measure(cmd))
        for name in runs:
            runs_of = sorted(timings[name])
            seconds, _, code = runs_of[len(runs_of) // 2]
            peak = max(r[1] for r in runs_of)
            floor = floor or seconds
            print(
                f"{rows:>9,}  {name:<9} {seconds:8.2f} {seconds / floor:8.2f} {peak:9.1f}  {code}"
            )
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
