"""The README's and the docs' examples run and print what they show (a doctest for the shell).

Every fenced block whose lines start with ``$ `` is a session: each command runs in a shell on
a 100-column pseudo-terminal (``script``), in a scratch directory that holds the repository's
``examples/``, with its own history database and no colour; its output (stdout and stderr, as
a terminal shows them, escape codes removed) must equal the lines under it. A line ``...``
stands for any lines; timings (``in 0.01 s``) are compared as ``in N s``. Blocks run in README
order and share the scratch directory, as a reader following along would.

``UPDATE_README=1`` writes what the commands print into the README instead (on purpose, and
read the diff before committing it).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

README = ROOT / "README.md"
# The pages whose examples run, each chain in a scratch directory of its own, in this order
# (a reader following along: the docs' pages were the README's sections, in its order).
CHAINS = {
    "readme": [README],
    "docs": [ROOT / "docs" / f"{name}.md" for name in ("instruments", "scoring", "batch",
                                                        "history", "performance",
                                                        "reliability")],
}  # fmt: skip
_TIMING = re.compile(r"in \d+(\.\d+)? s\b")
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _sessions(chain: str) -> list[tuple[Path, int, list[tuple[str, list[str]]]]]:
    """(page, line, [(command, expected lines)]) for each shell block of a chain's pages
    (plain ``` blocks; ```console blocks in other pages are shown, not run)."""
    return [block for page in CHAINS[chain] for block in _page_sessions(page)]


def _page_sessions(page: Path) -> list[tuple[Path, int, list[tuple[str, list[str]]]]]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, inside, start, current = [], False, 0, []
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if inside and current:
                blocks.append((page, start, current))
            inside, start, current = not inside, number, []
        elif inside and line.startswith("$ "):
            current.append((line[2:], []))
        elif inside and current:
            current[-1][1].append(line)
    return blocks


def _normal(lines: list[str]) -> list[str]:
    return [_TIMING.sub("in N s", ln.rstrip()) for ln in lines]


def _matches(expected: list[str], got: list[str]) -> bool:
    """Compare with '...' matching any run of lines."""
    if not expected:
        return not got
    if expected[0] == "...":
        return any(_matches(expected[1:], got[i:]) for i in range(len(got) + 1))
    return bool(got) and expected[0] == got[0] and _matches(expected[1:], got[1:])


_SCRATCH: dict[str, Path] = {}


def _scratch(chain: str, factory: pytest.TempPathFactory) -> Path:
    """A directory like the repository's root for one chain's commands, made once."""
    if chain not in _SCRATCH:
        path = factory.mktemp(chain)
        (path / "examples").symlink_to(ROOT / "examples")
        _SCRATCH[chain] = path
    return _SCRATCH[chain]


def _env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLIANCE_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
        ALLIANCE_DB="history.sqlite",  # relative: the scratch directory, shown as it is
        ALLIANCE_CACHE_DIR=str(scratch / "cache"),
        ALLIANCE_PROGRESS_AFTER="600",  # a page shows results: a bar only on a slow moment
        ALLIANCE_TODAY="2026-12-03",  # the pages' days since a session count to this date
        COLUMNS="100",
        NO_COLOR="1",
        TERM="xterm",
    )
    return env


@pytest.mark.slow
@pytest.mark.parametrize(
    ("chain", "block"),
    [(chain, block) for chain in CHAINS for block in _sessions(chain)],
    ids=lambda v: f"{v[0].relative_to(ROOT)}:{v[1]}" if isinstance(v, tuple) else v,
)
def test_readme_example(tmp_path_factory, chain: str, block):
    """Run one block; with UPDATE_README=1, write what it printed into its page instead."""
    page, _, session = block
    scratch = _scratch(chain, tmp_path_factory)
    if any("fhir" in command for command, _ in session):  # an optional extra's example
        pytest.importorskip("fhir.resources")
    old_text, new_text, problems = [], [], []
    status = 0
    for command, expected in session:
        # Under script(1), on a 100-column terminal, as the README's reader sees it; $? is
        # the previous command's status, as in one shell.
        line = f"stty cols 100 rows 50; (exit {status})\n{command}\ns=$?; echo; echo __status=$s"
        done = subprocess.run(
            ["script", "-qec", line, "/dev/null"], cwd=scratch, env=_env(scratch),
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        plain = _ESCAPES.sub("", done.stdout).replace("\r\n", "\n")  # bold, italic: as read
        text, _, tail = plain.rpartition("__status=")
        status = int(tail.split()[0])
        printed = [ln.rstrip() for ln in text.splitlines()][:-1]  # the echo's empty line
        got, want = _normal(printed), _normal(expected)
        old_text += [f"$ {command}", *expected]
        if _matches(want, got):
            new_text += [f"$ {command}", *expected]
        else:
            new_text += [f"$ {command}", *printed]
            problems.append(
                f"$ {command}\n--- README shows:\n" + "\n".join(want) + "\n--- it prints:\n"
                + "\n".join(got)
            )  # fmt: skip
    if problems and os.environ.get("UPDATE_README"):
        text = page.read_text(encoding="utf-8")
        page.write_text(text.replace("\n".join(old_text), "\n".join(new_text), 1), "utf-8")
        return
    assert not problems, "\n\n".join(problems)
