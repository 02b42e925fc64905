"""Shared by the benchmark scripts: how to run alliance and how to time a command."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOOR = [sys.executable, "-c", "import typer, pydantic, yaml"]


def alliance_command() -> list[str]:
    """The installed entry point beside this Python, else ``python -m alliance_cli``."""
    exe = shutil.which("alliance", path=os.path.dirname(sys.executable))
    return [exe] if exe else [sys.executable, "-m", "alliance_cli"]


def median_seconds(cmd: list[str], runs: int, check: bool = False) -> float:
    """Median wall time of a command over runs, after one warm-up run."""
    env = dict(os.environ, NO_COLOR="1")
    subprocess.run(cmd, capture_output=True, env=env, check=check)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, env=env, check=check)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(cmd: list[str]) -> tuple[float, float, int, bytes]:
    """Wall seconds, peak RSS in MiB (from wait4), exit code and stdout of one process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    return seconds, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), stdout


def cached(name: str) -> tuple[Path, bool]:
    """A generated data file under bench/data (made once): its path, and whether it exists."""
    data = Path(__file__).resolve().parent / "data"
    data.mkdir(exist_ok=True)
    path = data / name
    return path, path.exists()
