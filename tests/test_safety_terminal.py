"""Issue 10, terminals: data is shown literally, never as markup, never as escape sequences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

HOSTILE = {
    "close": "[/]",
    "tag": "[x]C-2",
    "link": "[link=https://example.org]C-3[/link]",
    "osc52": "C-4\x1b]52;c;ZXZpbA==\x07",
    "title": "C-5\x1b]0;owned\x07",
    "clear": "C-6\x1b[2J",
}
ANSWERS = "4 4 4 4 4 4 4 4 4 4 4 4".split()


def _save(cli, db: Path, client: str, session: int = 1):
    return cli(
        "score", "wai-sr", *ANSWERS, "--client", client, "--session", str(session),
        "--save", "--db", str(db), "-f", "json", "-q",
    )  # fmt: skip


def _shown(text: str) -> str:
    return text.replace("\x1b", "\\x1b").replace("\x07", "\\x07")


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_history_and_clients_show_ids_literally(cli, tmp_path: Path, name):
    client = HOSTILE[name]
    db = tmp_path / "h.sqlite"
    assert _save(cli, db, client).exit_code == 0
    history = cli("history", client, "--db", str(db), "-f", "table")
    clients = cli("clients", "--db", str(db), "-f", "table")
    for result in (history, clients):
        assert result.exit_code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert _shown(client) in result.stdout.replace("\n", "")  # literal, cut nowhere
    if name == "tag":
        assert "[x]C-2" in clients.stdout  # not "C-2", the wrong client


def test_score_table_caption_and_rejection_lines_are_literal(cli, tmp_path: Path):
    client = HOSTILE["osc52"]
    table = cli("score", "wai-sr", *ANSWERS, "--client", client, "-f", "table")
    assert "\x1b" not in table.stdout and "C-4\\x1b]52" in table.stdout
    src = tmp_path / "x.csv"
    src.write_text(
        f"client,{','.join(f'q{i}' for i in range(1, 13))}\n{client}[/],9,"
        + ",".join(["4"] * 11)
        + "\n"
    )
    batch = cli("batch", str(src), "-i", "wai-sr")
    assert batch.exit_code == 3
    assert "\x1b" not in batch.stderr and "\x07" not in batch.stderr
    error = cli("score", "wai-sr\x1b[2J")
    assert "\x1b" not in error.stderr and "\\x1b[2J" in error.stderr


def test_a_users_labels_are_literal_in_show_and_prompts(cli, tmp_path: Path):
    from .conftest import MINIMAL, write

    text = MINIMAL.replace("{id: 1, label: First topic}", '{id: 1, label: "[bold]Loud[/] \\e[2J"}')
    write(tmp_path / "d" / "mini.yaml", text)
    show = cli(
        "--instruments-dir", str(tmp_path / "d"), "instruments", "show", "mini", "-f", "table"
    )
    assert "[bold]Loud[/]" in show.stdout and "\x1b" not in show.stdout
    prompted = cli("--instruments-dir", str(tmp_path / "d"), "score", "mini", "-I", "-f", "json",
                   input="5\n4\n3\n\n")  # fmt: skip
    assert "[bold]Loud[/] \\x1b[2J" in prompted.stderr and "\x1b" not in prompted.stderr


def test_prompts_write_nothing_to_stdout(cli):
    keys = "\n".join([*ANSWERS, ""]) + "\n"
    result = cli("score", "wai-sr", "-I", "-f", "csv", input=keys)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("client_id,session,date,rater,goal_mean")
    ndjson = cli("score", "wai-sr", "-I", "-f", "ndjson", input=keys)
    assert json.loads(ndjson.stdout)["scales"]["total"]["mean"] == 4


@pytest.mark.parametrize("encoding", ["latin-1", "cp1252", "ascii"])
def test_a_legacy_encoding_on_a_pipe_gets_utf8_not_a_failure(tmp_path: Path, encoding: str):
    """A pipe whose locale encoding is a legacy one (a Windows pipe's cp1252, or
    PYTHONIOENCODING) cannot hold a client's name in another script, or the '≥' of every
    concern's evidence: alliance writes UTF-8 there (JSON's own encoding) instead of
    failing with an internal error."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONIOENCODING": encoding, "NO_COLOR": "1"}
    db = str(tmp_path / "h.sqlite")
    run = [sys.executable, "-m", "alliance_cli"]
    for session, answer in ((1, "9"), (2, "2")):
        saved = subprocess.run(
            [*run, "score", "srs", *[answer] * 4, "--client", "客户-Zoë", "--session",
             str(session), "--save", "--db", db, "-f", "json"],
            capture_output=True, env=env,
        )  # fmt: skip
        assert saved.returncode == 0, saved.stderr
        assert json.loads(saved.stdout.decode("utf-8"))[0]["respondent"]["client_id"] == "客户-Zoë"
    listed = subprocess.run([*run, "clients", "--db", db, "-f", "json"], capture_output=True,
                            env=env)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    utf8 = subprocess.run([*run, "clients", "--db", db, "-f", "json"], capture_output=True,
                          env={**env, "PYTHONIOENCODING": "utf-8"})  # fmt: skip
    assert listed.stdout == utf8.stdout  # the same bytes as on a UTF-8 pipe
    (row,) = json.loads(listed.stdout.decode("utf-8"))
    assert row["client_id"] == "客户-Zoë" and row["concerns"]
