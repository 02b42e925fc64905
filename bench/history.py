"""History views on a large store: ``alliance history`` and ``alliance clients``, timed.

    python bench/history.py [--clients 10000] [--sessions 20] [--runs 5]

Builds bench/data/history-<clients>x<sessions>.sqlite once (real Score JSON from the
scoring engine, random WAI-SR answers), adds one client with 50 sessions, then prints the
median wall time of each command as a separate process. Target (issue 5): under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

from timing import FLOOR, alliance_command, median_seconds

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def build(path: Path, clients: int, sessions: int) -> None:
    """Fill a store with scored sessions (one transaction per few thousand)."""
    from alliance_cli.core.scorer import Scorer
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history

    entry = load_catalog().get("wai-sr")
    scorer = Scorer(entry.instrument, entry.sha256)
    rng = random.Random(5)
    store = history.open_store(path)
    recorder = store.batch_recorder(replace=False, chunk=5000)

    def add(client: str, session: int, level: float) -> None:
        cells = [str(min(5, max(1, round(rng.gauss(level, 0.7))))) for _ in range(12)]
        results, _, noted = scorer.score_cells(cells)
        who = {"client_id": client, "session": session, "date": None, "rater": "client"}
        raws = [float(c) for c in cells]
        recorder.add(scorer.result_dict(results, noted, raws, who), f"T{sum(map(ord, client)) % 7}")

    for c in range(clients):
        level = rng.uniform(2.5, 4.6)
        for s in range(1, sessions + 1):
            add(f"C{c:05d}", s, level)
    for s in range(1, 51):
        add("LONG", s, 4.0 if s != 30 else 2.0)
    recorder.finish()  # one transaction for the whole build: commit it
    store.close()


def main() -> None:
    """Build the store if needed and time the commands."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    path = DATA / f"history-{args.clients}x{args.sessions}.sqlite"
    if not path.exists():
        started = time.perf_counter()
        build(path, args.clients, args.sessions)
        print(f"built {path.name} in {time.perf_counter() - started:.1f} s")
    alliance = alliance_command()
    commands = {
        "floor: python -c 'import typer, pydantic, yaml'": FLOOR,
        "alliance history LONG (50 sessions) -f table": [
            *alliance, "history", "LONG", "--db", str(path), "-f", "table",
        ],
        "alliance history LONG -f json": [
            *alliance, "history", "LONG", "--db", str(path), "-f", "json",
        ],
        f"alliance clients ({args.clients:,} x {args.sessions}) -f json": [
            *alliance, "clients", "--db", str(path), "-f", "json",
        ],
        f"alliance clients ({args.clients:,} x {args.sessions}) -f table": [
            *alliance, "clients", "--db", str(path), "-f", "table",
        ],
    }  # fmt: skip
    print(f"median of {args.runs} runs, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for name, cmd in commands.items():
        print(f"{name:<52} {median_seconds(cmd, args.runs, check=True) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
