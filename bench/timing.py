"""Shared by the benchmark scripts: how to run alliance and how to time a command."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

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
