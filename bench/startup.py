"""Start-up and single-score wall time, side by side with the import floor, in one run.

    python bench/startup.py [--runs 15]

Prints the median wall time of each command over the runs, and the ratio to the floor
(``python -c "import typer, pydantic, yaml"``). Target (issue 3): ``alliance score`` at most
1.5 times the floor.
"""

from __future__ import annotations

import argparse
import os
import sys

from timing import FLOOR, alliance_command, median_seconds

ANSWERS = ["5", "4", "4", "3", "5", "4", "4", "3", "5", "4", "4", "3"]


def main() -> None:
    """Time each command and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    alliance = alliance_command()
    commands = {
        "floor: python -c 'import typer, pydantic, yaml'": FLOOR,
        "alliance --version": [*alliance, "--version"],
        "alliance instruments -f json": [*alliance, "instruments", "-f", "json"],
        "alliance score wai-sr 5 4 4 3 ... -f json": [
            *alliance, "score", "wai-sr", *ANSWERS, "-f", "json",
        ],
    }  # fmt: skip
    results = {name: median_seconds(cmd, args.runs) for name, cmd in commands.items()}
    floor = next(iter(results.values()))
    print(f"median of {args.runs} runs, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for name, seconds in results.items():
        print(f"{name:<48} {seconds * 1000:7.1f} ms   {seconds / floor:4.2f} x floor")


if __name__ == "__main__":
    main()
