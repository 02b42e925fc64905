"""Shared fixtures: a CLI runner that keeps stdout and stderr apart, and instrument files."""

from __future__ import annotations

import functools
import importlib.util
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from alliance_cli.cli.app import app
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.catalog import load_catalog

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's instruments path, history or colours."""
    monkeypatch.delenv("ALLIANCE_INSTRUMENTS_PATH", raising=False)
    monkeypatch.setenv("ALLIANCE_DB", str(tmp_path / "history.sqlite"))
    monkeypatch.setenv("ALLIANCE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "120")


class Result:
    """What a CLI run produced."""

    def __init__(self, exit_code: int, stdout: str, stderr: str) -> None:
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr


def run(*args: str, input: str | None = None) -> Result:
    """Invoke the CLI in-process; stdout and stderr separately."""
    runner = CliRunner()
    result = runner.invoke(app, list(args), input=input, env={"NO_COLOR": "1"})
    return Result(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    """The in-process CLI runner."""
    return run


def scorable_ids() -> list[str]:
    """Bundled instruments that produce numbers (every one but the drafts)."""
    catalog = load_catalog()
    return [k for k in catalog.ids() if catalog.get(k).instrument.verification.status != "draft"]


@functools.lru_cache(maxsize=64)
def scorer_for(instrument_id: str, invalid: str = "reject") -> Scorer:
    """A Scorer for a bundled instrument (cached: scorers hold no state between calls)."""
    entry = load_catalog().get(instrument_id)
    return Scorer(entry.instrument, entry.sha256, invalid)  # type: ignore[arg-type]


def norm(scale: str, metric: str, mean: float, sd: float, reliability: float) -> dict:
    """A one-scale norm sample for a test instrument."""
    return {
        "sample": "test sample",
        "n": 100,
        "citation": "test",
        "metric": metric,
        "scales": {scale: {"mean": mean, "sd": sd, "reliability": reliability}},
    }


def bands(scale: str, metric: str, *levels: tuple[str, float]) -> dict:
    """A band set for a test instrument: (label, min) pairs, lowest first."""
    return {
        "scale": scale,
        "metric": metric,
        "source": "test",
        "levels": [{"label": label, "min": low} for label, low in levels],
    }


def definition_with(instrument_id: str, **fields: object) -> dict:
    """A bundled instrument's definition as data, with some fields replaced."""
    return {**load_catalog().get(instrument_id).instrument.to_data(), **fields}


def bench_module(name: str) -> Any:
    """A script of bench/ loaded as a module (the benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, text: str) -> Path:
    """Write dedented text to path and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


MINIMAL = """
id: mini
name: Minimal test instrument
version: "1"
respondent: client
citation: Test fixture written for alliance's own tests.
licence: Test fixture; no licence needed.
verification: {status: unverified, sources: []}
scale:
  min: 1
  max: 5
  labels: {1: Never, 5: Always}
items:
  - {id: 1, label: First topic}
  - {id: 2, label: Second topic, reverse: true}
  - {id: 3, label: Third topic}
subscales:
  - {id: pair, name: Pair, dimension: goal, items: [1, 2]}
cutoffs:
  - {scale: total, metric: mean, threshold: 2, comparison: "<", label: Low, message: Low.,
     source: test}
"""


@pytest.fixture
def mini_dir(tmp_path: Path) -> Path:
    """A directory holding one small valid instrument, ``mini``."""
    write(tmp_path / "inst" / "mini.yaml", MINIMAL)
    return tmp_path / "inst"


def env_without_color() -> dict[str, str]:
    """Environment for subprocess tests."""
    env = dict(os.environ)
    env["NO_COLOR"] = "1"
    env.pop("ALLIANCE_INSTRUMENTS_PATH", None)
    env["ALLIANCE_NO_CACHE"] = "1"
    return env
