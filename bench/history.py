"""History views on a large store: ``alliance history`` and ``alliance clients``, timed.

    python bench/history.py [--clients 10000] [--sessions 20] [--runs 5] [--long 20000]
    python bench/history.py --db postgresql://USER@HOST/DB [--save-rows 1000000]

With --db (a clinic's PostgreSQL server; the role must be allowed to create databases):
``batch --save`` of --save-rows WAI-SR rows (bench/batch.py's answers; every row a new
session: one new client each, and 50,000 clients x 20 sessions) into a new database
alliance_bench_save, in rows per second (target: 100,000); then the SQLite
store above copied once (``alliance db copy``) into alliance_bench_clients and ``clients``
timed on it (target: 0.5 s). Both databases are the bench's own: dropped and made again.

Builds bench/data/history-<clients>x<sessions>x3-v8.sqlite once (real Score JSON from the
scoring engine): every client has three series of random answers, a WAI-SR, an SRS (both
client-rated) and a WAI-SR-T (the therapist's); then one client with 50 WAI-SR sessions.
Prints the median wall time of each command as a separate process. Target (issues 5, 11
and 19): under 0.5 s, also right after one ``score --save`` (a new client each run, saved
untimed, forgotten at the end) and, not met, cold (every series stale, as after an
import). Then one client with --long WAI-SR sessions in a store of its own
(bench/data/history-long-<N>-v8.sqlite): ``history`` (table and JSON) and ``report`` must
stay linear, 20,000 sessions under 2 s (issue 20). With --db, ``clients`` on the server is
timed warm and right after one save too.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import FLOOR, alliance_command, installed_env, median_seconds

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def build(path: Path, clients: int, sessions: int) -> None:
    """Fill a store with scored sessions (one transaction per few thousand)."""
    from alliance_cli.core.scorer import Scorer
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history

    catalog = load_catalog()
    scorers = {}
    for inst_id in ("wai-sr", "srs", "wai-sr-t"):
        entry = catalog.get(inst_id)
        scorers[inst_id] = Scorer(entry.instrument, entry.sha256)
    rng = random.Random(5)
    store = history.open_store(path)
    for scorer in scorers.values():
        store.define(scorer.instrument.to_data(), scorer.sha256)
    recorder = store.batch_recorder(replace=False, chunk=5000)

    def add(client: str, session: int, level: float, inst_id: str = "wai-sr") -> None:
        scorer = scorers[inst_id]
        if inst_id == "srs":  # 0-10 cm marks on four lines
            cells = [f"{min(10.0, max(0.0, rng.gauss(level * 2, 1))):.1f}" for _ in range(4)]
        else:
            n = 12 if inst_id == "wai-sr" else 10
            cells = [str(min(5, max(1, round(rng.gauss(level, 0.7))))) for _ in range(n)]
        results, _, noted = scorer.score_cells(cells)
        rater = "therapist" if inst_id.endswith("-t") else "client"
        who = {"client_id": client, "session": session, "date": None, "rater": rater}
        raws = [float(c) for c in cells]
        recorder.add(scorer.result_dict(results, noted, raws, who), f"T{sum(map(ord, client)) % 7}")

    for c in range(clients):
        level = rng.uniform(2.5, 4.6)
        for inst_id in ("wai-sr", "srs", "wai-sr-t"):
            for s in range(1, sessions + 1):
                add(f"C{c:05d}", s, level, inst_id)
    for s in range(1, 51):
        add("LONG", s, 4.0 if s != 30 else 2.0)
    recorder.finish()  # one transaction for the whole build: commit it
    store.close()


def build_long(path: Path, sessions: int) -> None:
    """One client, LONG, with ``sessions`` WAI-SR sessions of noisy answers around 4."""
    from alliance_cli.core.scorer import Scorer
    from alliance_cli.io.catalog import load_catalog
    from alliance_cli.store import sqlite as history

    entry = load_catalog().get("wai-sr")
    scorer = Scorer(entry.instrument, entry.sha256)
    rng = random.Random(3)
    store = history.open_store(path)
    store.define(scorer.instrument.to_data(), scorer.sha256)
    recorder = store.batch_recorder(replace=False, chunk=5000)
    for s in range(1, sessions + 1):
        cells = [str(min(5, max(1, round(rng.gauss(4, 0.7))))) for _ in range(12)]
        results, _, noted = scorer.score_cells(cells)
        who = {"client_id": "LONG", "session": s, "date": None, "rater": "client"}
        recorder.add(scorer.result_dict(results, noted, [float(c) for c in cells], who), None)
    recorder.finish()
    store.close()


def on_server(url: str, path: Path, rows: int, runs: int) -> None:
    """The PostgreSQL figures (see the module's docstring)."""
    installed = installed_env()
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from batch import DATA as BATCH_DATA
    from batch import generate

    def database(name: str, fresh: bool) -> str:
        parts = urlsplit(url)
        with psycopg.connect(url, autocommit=True) as db:
            exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if fresh or exists.fetchone() is None:
                db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                db.execute(f"CREATE DATABASE {name}")
        return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))

    alliance = alliance_command()
    source = generate(rows)
    files = {}
    for kind, client_of in (
        ("a new client each", lambda n: (f"U{n:07d}", 1)),
        ("50,000 clients x 20 sessions", lambda n: (f"C{n % 50_000:05d}", n // 50_000 + 1)),
    ):
        name = "unique" if kind.startswith("a new") else "clinic"
        made = BATCH_DATA / f"wai_sr_{rows}_{name}.csv"  # every row a new session: all saved
        if not made.exists():
            import csv

            with source.open(newline="") as src, made.open("w", newline="") as out:
                reader, writer = csv.reader(src), csv.writer(out, lineterminator="\n")
                writer.writerow(next(reader))
                for n, row in enumerate(reader):
                    writer.writerow([*map(str, client_of(n)), *row[2:]])
        files[kind] = made
    for kind, made in files.items():
        times = []
        for _ in range(max(1, runs // 5)):
            target = database("alliance_bench_save", fresh=True)
            start = time.perf_counter()
            done = subprocess.run(
                [*alliance, "batch", str(made), "-i", "wai-sr", "--save", "--db", target,
                 "-o", os.devnull, "-q"], capture_output=True, text=True, env=installed,
            )  # fmt: skip
            times.append(time.perf_counter() - start)
            if done.returncode not in (0, 3):
                sys.exit(done.stderr)
        with psycopg.connect(target) as db:
            stored = db.execute("SELECT count(*) FROM alliance.sessions").fetchone()[0]
        seconds = statistics.median(times)
        label = f"batch --save {rows:,} rows ({kind}) on PostgreSQL"
        print(f"{label:<62} {seconds:8.1f} s {stored / seconds:9,.0f} rows/s ({stored:,} stored)")
        lite = DATA / "save-reference.sqlite"  # the same save into a file, in the same spell
        for leftover in (lite, Path(f"{lite}-wal"), Path(f"{lite}-shm")):
            leftover.unlink(missing_ok=True)
        start = time.perf_counter()
        subprocess.run([*alliance, "batch", str(made), "-i", "wai-sr", "--save", "--db",
                        str(lite), "-o", os.devnull, "-q"],
                       capture_output=True, env=installed)  # fmt: skip
        seconds = time.perf_counter() - start
        label = "... the same into an SQLite file (for reference)"
        print(f"{label:<62} {seconds:8.1f} s {stored / seconds:9,.0f} rows/s")
        lite.unlink(missing_ok=True)
    target = database("alliance_bench_clients", fresh=False)
    with psycopg.connect(target) as db:
        there = db.execute("SELECT to_regclass('alliance.sessions') IS NOT NULL").fetchone()[0]
        count = db.execute("SELECT count(*) FROM alliance.sessions").fetchone()[0] if there else 0
    with sqlite3.connect(path) as lite:
        wanted = lite.execute("SELECT count(*) FROM sessions").fetchone()[0]
    lite.close()
    if count != wanted:
        target = database("alliance_bench_clients", fresh=True)
        started = time.perf_counter()
        copy = [*alliance, "db", "copy", str(path), target, "-q"]
        subprocess.run(copy, check=True, env=installed)
        print(
            f"copied {wanted:,} sessions into the server in {time.perf_counter() - started:.1f} s"
        )
    clients = [*alliance, "clients", "--db", target, "-f", "json"]
    subprocess.run(clients, capture_output=True, check=True, env=installed)  # reading kept
    print(f"{'alliance clients (' + path.stem.split('-')[1] + ') -f json on PostgreSQL':<62} "
          f"{median_seconds(clients, runs, check=True) * 1000:8.1f} ms")  # fmt: skip
    print(f"{'... the same, right after one score --save':<62} "
          f"{after_a_save(target, clients, runs) * 1000:8.1f} ms")  # fmt: skip
    lite = [*alliance, "clients", "--db", str(path), "-f", "json"]
    subprocess.run(lite, capture_output=True, check=True, env=installed)
    print(f"{'... the same from the SQLite file (for reference)':<62} "
          f"{median_seconds(lite, runs, check=True) * 1000:8.1f} ms")  # fmt: skip


def after_a_save(db: str, clients: list[str], runs: int) -> float:
    """The median time of ``clients`` right after one ``score --save`` (a new client each
    run, forgotten at the end): what a counselor sees after saving a session."""
    installed = installed_env()
    alliance = alliance_command()
    made = []
    times = []
    for run in range(runs):
        client = f"BENCH-SAVE-{os.getpid()}-{run}"
        save = [*alliance, "score", "wai-sr", *"4 4 4 4 3 3 3 3 5 5 5 5".split(), "--client",
                client, "--session", "1", "--save", "--db", db, "-q"]  # fmt: skip
        subprocess.run(save, capture_output=True, check=True, env=installed)
        made.append(client)
        start = time.perf_counter()
        subprocess.run(clients, capture_output=True, check=True, env=installed)
        times.append(time.perf_counter() - start)
    for client in made:
        forget = [*alliance, "forget", client, "--yes", "--db", db, "-q"]
        subprocess.run(forget, capture_output=True, check=True, env=installed)
    subprocess.run(clients, capture_output=True, check=True, env=installed)  # kept again
    return statistics.median(times)


def main() -> None:
    """Build the store if needed and time the commands."""
    installed = installed_env()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--long", type=int, default=20_000, help="sessions of one client")
    parser.add_argument("--db", help="a postgresql:// server: time it instead (see above)")
    parser.add_argument("--save-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    path = DATA / f"history-{args.clients}x{args.sessions}x3-v8.sqlite"
    if not path.exists():
        started = time.perf_counter()
        build(path, args.clients, args.sessions)
        print(f"built {path.name} in {time.perf_counter() - started:.1f} s")
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT count(*) FROM sessions").fetchone()[0]
    db.close()
    size = path.stat().st_size
    print(f"{stored:,} sessions in {size / 2**20:.1f} MiB: {size / stored:.0f} bytes per session")
    if args.db:
        on_server(args.db, path, args.save_rows, args.runs)
        return
    alliance = alliance_command()
    commands = {
        "floor: python -c 'import typer, pydantic, yaml'": FLOOR,
        "alliance history LONG (50 sessions) -f table": [
            *alliance, "history", "LONG", "--db", str(path), "-f", "table",
        ],
        "alliance history LONG -f json": [
            *alliance, "history", "LONG", "--db", str(path), "-f", "json",
        ],
        f"alliance clients ({args.clients:,} x {args.sessions} x 3 series) -f json": [
            *alliance, "clients", "--db", str(path), "-f", "json",
        ],
        f"alliance clients ({args.clients:,} x {args.sessions} x 3 series) -f table": [
            *alliance, "clients", "--db", str(path), "-f", "table",
        ],
        "alliance report LONG -o FILE (one client's HTML)": [
            *alliance, "report", "LONG", "--db", str(path), "-o", str(DATA / "LONG.html"), "-q",
        ],
        f"alliance report --caseload -o FILE ({args.clients:,} clients)": [
            *alliance, "report", "--caseload", "--db", str(path),
            "-o", str(DATA / "caseload.html"), "-q",
        ],
    }  # fmt: skip
    print(f"median of {args.runs} runs, python {sys.version.split()[0]}, {os.cpu_count()} cores")
    for name, cmd in commands.items():
        print(f"{name:<62} {median_seconds(cmd, args.runs, check=True) * 1000:8.1f} ms")
    for page in ("caseload.html", "LONG.html"):  # issue 21: the caseload under 3 MB
        print(f"{'size of ' + page:<62} {(DATA / page).stat().st_size / 1e6:8.2f} MB")
    # The caseload keeps the whole list, and each series' reading until one of its sessions
    # changes: the figures above are that steady state. Right after one score --save: the
    # list is patched (that client read again, every other row reused). Cold: every series
    # stale, no list (as after an import that touched them all). Median of --runs.
    clients = commands[f"alliance clients ({args.clients:,} x {args.sessions} x 3 series) -f json"]
    print(f"{'... the same, right after one score --save':<62} "
          f"{after_a_save(str(path), clients, args.runs) * 1000:8.1f} ms")  # fmt: skip
    for name, sql in (
        ("... the same, cold: every series stale (after a full import)",
         "DELETE FROM caseload_kept; UPDATE caseload SET stamp = ''"),
    ):  # fmt: skip
        times = []
        for _ in range(args.runs):
            with sqlite3.connect(path) as db:
                db.executescript(sql)
            db.close()
            start = time.perf_counter()
            subprocess.run(clients, capture_output=True, check=True, env=installed)
            times.append(time.perf_counter() - start)
        print(f"{name:<62} {statistics.median(times) * 1000:8.1f} ms")
    long_path = DATA / f"history-long-{args.long}-v8.sqlite"
    if not long_path.exists():
        build_long(long_path, args.long)
    for name, cmd in {
        f"alliance history LONG ({args.long:,} sessions) -f table": [
            *alliance, "history", "LONG", "--db", str(long_path), "-f", "table"],
        f"alliance history LONG ({args.long:,} sessions) -f json": [
            *alliance, "history", "LONG", "--db", str(long_path), "-f", "json"],
        f"alliance report LONG ({args.long:,} sessions) -o FILE": [
            *alliance, "report", "LONG", "--db", str(long_path), "-o",
            str(DATA / "LONG-long.html"), "-q"],
    }.items():  # fmt: skip
        print(f"{name:<62} {median_seconds(cmd, args.runs, check=True) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
