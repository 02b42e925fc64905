"""Start-up weight, the real entry points, and a built wheel that carries the instruments."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT, env_without_color

FULL = "5 4 4 3 5 4 4 3 5 4 4 3".split()
BAD = "5 4 4 3 5 4 9 3 5 4 4 3".split()


def test_cli_import_loads_neither_rich_nor_yaml():
    code = (
        "import sys, alliance_cli.cli.app; "
        "print(sorted(m for m in ('rich', 'yaml', 'pydantic') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_version_subprocess():
    out = subprocess.run(
        [sys.executable, "-m", "alliance_cli", "--version"],
        capture_output=True,
        text=True,
        env=env_without_color(),
    )
    assert out.returncode == 0
    assert out.stdout.startswith("alliance ")


def test_score_subprocess_exit_codes(tmp_path: Path):
    exe = Path(sys.executable).with_name("alliance")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "alliance_cli"]
    ok = subprocess.run(
        [*cmd, "score", "wai-sr", *FULL, "-f", "json"],
        capture_output=True, text=True, env=env_without_color(), cwd=tmp_path,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)[0]["scales"]["total"]["mean"] == 4.0
    bad = subprocess.run(
        [*cmd, "score", "wai-sr", *BAD],
        capture_output=True, text=True, env=env_without_color(), cwd=tmp_path,
    )  # fmt: skip
    assert bad.returncode == 3
    assert bad.stderr == 'error: item 7: "9" is outside 1–5\n'
    assert "Traceback" not in bad.stderr


@pytest.mark.slow
def test_wheel_ships_instruments_and_runs_outside_repo(tmp_path: Path):
    dist = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    wheel = next(dist.glob("alliance-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    bundled = sorted(p.name for p in (ROOT / "instruments").glob("*.yaml"))
    assert sorted(n.split("/")[-1] for n in names if n.startswith("alliance_cli/instruments/")) == (
        bundled
    )
    assert "alliance_cli/py.typed" in names  # issue 23: typed for mypy and pyright users
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    env = env_without_color()
    env["PYTHONPATH"] = str(target)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = "from alliance_cli.cli.app import main; main()"
    out = subprocess.run(
        [sys.executable, "-c", code, "instruments", "-f", "json"],
        capture_output=True, text=True, env=env, cwd=elsewhere,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert sorted(f"{r['id']}.yaml" for r in rows) == bundled
    assert all(r["path"].startswith(str(target)) for r in rows)


def test_usage_errors_are_one_line_from_the_entry_point(tmp_path: Path):
    out = subprocess.run(
        [sys.executable, "-m", "alliance_cli", "score", "wai-sr", "1", "--invalid", "abc"],
        capture_output=True, text=True, env=env_without_color(), cwd=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2
    assert out.stderr == (
        "error: alliance score: Invalid value for '--invalid': 'abc' is not one of 'reject', "
        "'missing'. (see 'alliance score --help')\n"
    )
