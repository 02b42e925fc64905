"""Before and after in one run: an earlier revision against this checkout, alternated.

    python bench/compare.py --before REV [--repeat 3]

Checks REV out into a temporary git worktree and runs each command below with that
revision's package first on PYTHONPATH ("before"), then with this checkout's ("after"),
in turn, --repeat times; prints the median wall time and the largest peak memory (max RSS,
from wait4) of each. The commands use bench/batch.py's generated files (run it first):
  batch          alliance batch wai_sr_1000000.csv -i wai-sr -o OUT -q     (every core)
  batch -j1      the same on one process
  batch --save   alliance batch wai_sr_1000000_unique.csv --save --db NEW -o /dev/null -q
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def measure(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS in MiB of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    """Alternate the two revisions over each command and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a git revision")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    exe = shutil.which("alliance", path=os.path.dirname(sys.executable))
    alliance = [exe] if exe else [sys.executable, "-m", "alliance_cli"]
    plain, unique = DATA / "wai_sr_1000000.csv", DATA / "wai_sr_1000000_unique.csv"
    for needed in (plain, unique):
        if not needed.exists():
            sys.exit(f"{needed}: missing; run bench/batch.py --rows 1000000 and --save first")
    scratch = Path(tempfile.mkdtemp(prefix="alliance-compare-"))
    tree, out, db = scratch / "before", scratch / "out.csv", scratch / "save.sqlite"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(tree), args.before],
                   check=True, cwd=HERE.parent)  # fmt: skip
    commands = {
        "batch": [*alliance, "batch", str(plain), "-i", "wai-sr", "-o", str(out), "-q"],
        "batch -j1": [*alliance, "batch", str(plain), "-i", "wai-sr", "-o", str(out), "-q",
                      "-j1"],
        "batch --save": [*alliance, "batch", str(unique), "-i", "wai-sr", "--save", "--db",
                         str(db), "-o", os.devnull, "-q"],
    }  # fmt: skip
    envs = {"before": dict(os.environ, PYTHONPATH=str(tree)), "after": dict(os.environ)}
    timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
    stored: dict[str, int] = {}  # sessions a save stored (rows/s counts these)
    try:
        for _ in range(args.repeat):
            for name, cmd in commands.items():
                for who, env in envs.items():
                    for leftover in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
                        leftover.unlink(missing_ok=True)
                    timings.setdefault((name, who), []).append(measure(cmd, env))
                    if "save" in name:
                        with sqlite3.connect(db) as con:
                            stored[who] = con.execute("SELECT count(*) FROM sessions").fetchone()[0]
                        con.close()
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=HERE.parent)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; before = {args.before}")
    for name in commands:
        for who in envs:
            runs = timings[(name, who)]
            seconds = statistics.median(r[0] for r in runs)
            rate = f"{stored[who] / seconds:9,.0f} rows/s" if "save" in name else " " * 16
            print(
                f"{name:<13} {who:<6} {seconds:6.2f} s {rate}  peak "
                f"{max(r[1] for r in runs):5.1f} MiB  (runs: "
                + ", ".join(f"{r[0]:.2f}" for r in runs)
                + ")"
            )


if __name__ == "__main__":
    main()
