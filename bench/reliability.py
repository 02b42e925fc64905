"""Speed and memory of ``alliance reliability`` on the 36-item WAI (issue 24: 100,000 rows in at
most 2 s).

    python bench/reliability.py [--rows 100000] [--rows 10000] [--repeat 3]

Generates WAI exports under bench/data/ (cached by row count): each row has one latent level
per scale plus item noise, reverse-keyed items written reversed, about 1 % blank cells, so
every scale has a realistic alpha and some rows are not complete cases. Then times
``alliance reliability FILE -i wai -f json -q`` as a separate process (median of --repeat
runs), with and without ``--no-omega``, and reads its peak memory (max RSS) from wait4. It
also times the csv module reading the same file (the floor under any reader) and, when the
omega extra is installed, importing numpy and scipy.optimize alone (what omega costs before
any fitting), and prints the alpha of each scale, so a change in speed that changed the numbers
shows.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
from pathlib import Path

from timing import alliance_command, cached, measure

REVERSED = {1, 3, 7, 9, 10, 11, 12, 15, 20, 27, 29, 31, 33, 36}
SCALES = {
    "goal": [3, 6, 9, 10, 12, 14, 22, 25, 27, 30, 32, 34],
    "task": [2, 4, 7, 11, 13, 15, 16, 18, 24, 31, 33, 35],
    "bond": [1, 5, 8, 17, 19, 20, 21, 23, 26, 28, 29, 36],
}
FLOOR = "import csv, sys\nfor _ in csv.reader(open(sys.argv[1], newline='')): pass\n"


def generate(rows: int) -> Path:
    """A 36-item WAI export with latent scale levels, reversed items and blanks."""
    path, made = cached(f"wai36_{rows}.csv")
    if made:
        return path
    rng = random.Random(rows)
    scale_of = {item: scale for scale, items in SCALES.items() for item in items}
    with path.open("w", newline="") as out:
        out.write("client_id," + ",".join(f"wai_{i}" for i in range(1, 37)) + "\n")
        for row in range(rows):
            general = rng.gauss(0, 1)
            level = {s: 0.7 * general + 0.5 * rng.gauss(0, 1) for s in SCALES}
            cells = []
            for item in range(1, 37):
                if rng.random() < 0.01:
                    cells.append("")
                    continue
                value = round(5 + 1.1 * level[scale_of[item]] + rng.gauss(0, 0.9))
                value = min(7, max(1, value))
                cells.append(str(8 - value if item in REVERSED else value))
            out.write(f"C{row}," + ",".join(cells) + "\n")
    return path


def main() -> None:
    """Time reliability on each size and print one line per command."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    alliance = alliance_command()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for rows in args.rows or [100_000]:
        path = generate(rows)
        runs = {
            "floor": [sys.executable, "-c", FLOOR, str(path)],
            "reliability": [*alliance, "reliability", str(path), "-i", "wai", "-f", "json", "-q"],
            "--no-omega": [
                *alliance, "reliability", str(path), "-i", "wai", "-f", "json", "-q", "--no-omega"
            ],
        }  # fmt: skip
        if importlib.util.find_spec("scipy"):  # what the omega extra costs to load
            runs["import scipy.optimize"] = [sys.executable, "-c", "import scipy.optimize"]
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, float] = dict.fromkeys(runs, 0.0)
        out = b""
        for _ in range(args.repeat):
            for name, cmd in runs.items():
                seconds, peak, code, stdout = measure(cmd)
                if code != 0:
                    raise SystemExit(f"{name} exited {code}")
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
                out = stdout if name == "reliability" else out
        for name in runs:
            print(
                f"{rows:>9,} rows  {name:<24} {statistics.median(times[name]):6.2f} s"
                f"  {peaks[name]:6.0f} MiB"
            )
        alphas = {s["scale"]: s["alpha"] for s in json.loads(out)}
        print(f"{'':>15}alpha {alphas}")


if __name__ == "__main__":
    main()
