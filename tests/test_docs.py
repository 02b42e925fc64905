"""Every command has help and is documented in the README (as sqlite-utils does)."""

from __future__ import annotations

import pytest

from .conftest import ROOT

COMMANDS = [
    ["score"], ["batch"], ["history"], ["clients"], ["forget"],
    ["instruments"], ["instruments", "show"], ["instruments", "check"], ["instruments", "schema"],
]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_command_has_help_and_readme_section(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.stdout
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"alliance {' '.join(command)}" in readme


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
