"""Start-up and single-score wall time against ``python -c "import typer"``, in one run.

    python bench/startup.py [--runs 15]

Each command and the floor run alternately (floor, command, floor, command, ...), so a
machine whose speed drifts moves both alike; the ratio is the median of the pairs' ratios.
Target (issue 22): ``alliance score wai-sr ... -f json`` at most 1.5 times
``python -c "import typer"``, with no ``importlib.metadata`` on its path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from timing import alliance_command, installed_env

ANSWERS = ["5", "4", "4", "3", "5", "4", "4", "3", "5", "4", "4", "3"]
FLOOR = [sys.executable, "-c", "import typer"]


def _once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, capture_output=True, env=env, check=False)
    return time.perf_counter() - start


def main() -> None:
    """Time each command against the floor, in pairs, and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    alliance = alliance_command()
    commands = {
        "alliance --version": [*alliance, "--version"],
        "alliance instruments -f json": [*alliance, "instruments", "-f", "json"],
        "alliance score wai-sr 5 4 4 3 ... -f json": [
            *alliance, "score", "wai-sr", *ANSWERS, "-f", "json",
        ],
    }  # fmt: skip
    env = installed_env()  # with its bytecode, as pip installs it
    print(f"pairs of {args.runs} runs, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    floors: list[float] = []
    for name, cmd in commands.items():
        _once(cmd, env), _once(FLOOR, env)  # warm both
        pairs = [(_once(FLOOR, env), _once(cmd, env)) for _ in range(args.runs)]
        floors += [f for f, _ in pairs]
        ratio = statistics.median(c / f for f, c in pairs)
        seconds = statistics.median(c for _, c in pairs)
        print(f"{name:<48} {seconds * 1000:7.1f} ms   {ratio:4.2f} x floor")
    print(f"{'floor: python -c import typer':<48} {statistics.median(floors) * 1000:7.1f} ms")
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv = ['alliance', 'score', 'wai-sr', "
         f"*{ANSWERS!r}, '-f', 'json']\nfrom alliance_cli.cli.app import main\ntry:\n    main()\n"
         "except SystemExit:\n    pass\nprint('importlib.metadata' in sys.modules, "
         "file=sys.stderr)"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    print(f"importlib.metadata loaded by score: {loaded.stderr.strip()}")


if __name__ == "__main__":
    main()
