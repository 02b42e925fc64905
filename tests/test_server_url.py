"""A postgresql:// history named without a server: what every install says (issue 25).

These need no server, and run in every environment (``make test-min`` has no psycopg)."""

from __future__ import annotations

import importlib.util

import pytest

from alliance_cli.store.base import has_password, shown
from tests.conftest import run


@pytest.mark.skipif(
    importlib.util.find_spec("psycopg") is not None, reason="the postgres extra is installed"
)
def test_a_server_url_without_the_extra_says_how_to_install_it() -> None:
    result = run("clients", "--db", "postgresql://lee@clinic-db/alliance")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: a postgresql:// history needs the postgres extra: pip install 'alliance[postgres]'"
    )


def test_a_password_is_refused_before_anything_is_imported_or_connected() -> None:
    result = run("history", "C-1", "--db", "postgresql://lee:hunter2@clinic-db/alliance")
    assert result.exit_code == 2 and "hunter2" not in result.stderr + result.stdout
    assert ".pgpass" in result.stderr


@pytest.mark.parametrize(
    ("url", "seen", "secret"),
    [
        ("postgresql://lee:pw@h/db", "postgresql://lee@h/db", True),
        (
            "postgresql://lee@h/db?sslmode=verify-full",
            "postgresql://lee@h/db?sslmode=verify-full",
            False,
        ),
        (
            "postgresql:///db?host=/tmp/x&password=pw",
            "postgresql:///db?host=/tmp/x&password=…",
            True,
        ),
        ("postgres://h/db?service=clinic", "postgres://h/db?service=clinic", False),
    ],
)
def test_messages_show_a_server_without_its_password(url: str, seen: str, secret: bool) -> None:
    assert shown(url) == seen
    assert has_password(url) is secret
