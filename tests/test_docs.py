"""Every command has help with an example; the README says how to start (its examples are
run by test_readme.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT

COMMANDS = [
    ["score"], ["batch"], ["history"], ["clients"], ["forget"], ["reliability"], ["norms"],
    ["instruments"], ["instruments", "show"], ["instruments", "check"], ["instruments", "schema"],
    ["db", "setup"], ["db", "grant"], ["db", "revoke"], ["db", "assignments"], ["db", "copy"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_help_shows_usage_and_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    usage = next(line for line in result.stdout.splitlines() if "Usage:" in line)
    assert "{" not in usage  # arguments are named, not braced
    assert "Example: alliance " in result.stdout
    if command != ["instruments"]:  # the group's own help lists its commands instead
        assert "--quiet" in result.stdout or command == ["instruments", "schema"]


def test_readme_says_how_to_run_alliance_after_setup():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/alliance" in readme and "--install-completion" in readme


def test_readme_quick_start_has_exactly_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("##", 1)[0]
    block = quick.split("```", 2)[1].strip().splitlines()
    assert block == ["make demo", "make test"]


def test_readme_lists_every_exit_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    from alliance_cli.core.errors import ExitCode

    for code in ExitCode:
        assert f"| {int(code)} |" in readme


def test_the_demo_succeeds_and_stops_at_a_failing_step(tmp_path):
    """Issue 22: examples/demo.sh ended with `exit 0`, so `make demo` passed whatever failed."""
    import shutil
    import subprocess
    import sys

    from .conftest import env_without_color

    where = tmp_path / "repo"
    shutil.copytree(ROOT / "examples", where / "examples")
    bin_dir = str(Path(sys.executable).parent)
    env = env_without_color()
    env.pop("ALLIANCE_TODAY", None)
    good = subprocess.run(["sh", "examples/demo.sh", bin_dir], cwd=where, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert good.returncode == 0, good.stderr[-2000:]
    assert "open " in good.stdout and (where / "examples/.demo-report-C-107.html").is_file()
    # the caseload counts days to the export's end, not to the day the demo runs
    assert "(as of 2026-11-05: ALLIANCE_TODAY)" in good.stdout
    assert "Not seen for 36 days" in good.stdout  # C-112, last seen 2026-09-30
    script = (where / "examples/demo.sh").read_text().replace("history C-107", "history C-9999")
    (where / "examples/demo.sh").write_text(script)
    bad = subprocess.run(["sh", "examples/demo.sh", bin_dir], cwd=where, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert bad.returncode == 2 and "open " not in bad.stdout


def test_the_readme_is_short_and_its_links_lead_somewhere():
    """Issue 22: a README a counselor reads in five minutes; depth is in docs/."""
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) < 250
    for heading in ("## Quick start", "## After a session", "## A clinic export",
                    "## In a pipeline", "## Exit codes"):  # fmt: skip
        assert heading in readme
    for page in ROOT.glob("docs/*.md"):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#]+)\)", text):
            if not target.startswith("http"):
                assert (page.parent / target).exists(), f"{page.name}: {target}"
    for target in re.findall(r"\]\(([^)#]+)\)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
