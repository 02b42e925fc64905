"""Shared by the benchmark scripts: how to run alliance and how to time a command."""

from __future__ import annotations

import functools
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


@functools.cache
def _compiled() -> None:
    import compileall

    compileall.compile_dir(str(Path(__file__).resolve().parent.parent / "alliance_cli"), quiet=1)


def installed_env() -> dict[str, str]:
    """The environment to time alliance in, as an installed package runs: with its bytecode.

    pip compiles a package at install; an environment that sets PYTHONDONTWRITEBYTECODE
    (this machine's does) would compile every alliance module on every run, while typer and
    the other libraries keep the bytecode pip wrote for them. So: compile once, and run
    without that setting.
    """
    _compiled()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["NO_COLOR"] = "1"
    return env


def median_seconds(cmd: list[str], runs: int, check: bool = False) -> float:
    """Median wall time of a command over runs (as installed), after one warm-up run."""
    env = installed_env()
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
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=installed_env()
    )
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
