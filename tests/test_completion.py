"""Issue 22, item 4: completion of instrument ids, client ids and -f values, with a script
of its own for bash, zsh and fish, and --install-completion SHELL installing that shell's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import env_without_color

ALLIANCE = str(Path(sys.executable).parent / "alliance")


def _env(**extra: str) -> dict[str, str]:
    env = env_without_color()
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    return env | extra


def _complete(words: str, cword: int, **extra: str) -> list[str]:
    env = _env(_ALLIANCE_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(cword),
               **extra)  # fmt: skip
    done = subprocess.run([ALLIANCE], env=env, capture_output=True, text=True, timeout=60)
    return done.stdout.split()


def test_instrument_ids_client_ids_and_formats_complete(tmp_path: Path):
    assert _complete("alliance score wai-s", 2) == ["wai-s", "wai-s-t", "wai-sr", "wai-sr-t"]
    assert "srs" in _complete("alliance batch x.csv -i s", 4)
    assert _complete("alliance batch x.csv -f nd", 4) == ["ndjson"]
    db = tmp_path / "h.sqlite"
    for who in ("C-101", "C-102", "D-1"):
        subprocess.run([ALLIANCE, "score", "srs", "9", "9", "9", "9", "--client", who,
                        "--session", "1", "--save", "--db", str(db), "-q"], env=_env(),
                       check=True, capture_output=True)  # fmt: skip
    assert _complete("alliance history C-", 2, ALLIANCE_DB=str(db)) == ["C-101", "C-102"]
    assert _complete(f"alliance report --db {db} D", 4) == ["D-1"]


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("bash", "complete -o default -F _alliance_completion alliance"),
     ("zsh", "#compdef alliance"), ("fish", "complete --command alliance")],
)  # fmt: skip
def test_each_shell_gets_its_own_script(shell: str, marker: str):
    done = subprocess.run([ALLIANCE, "--show-completion", shell], env=_env(),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and marker in done.stdout


def test_the_bash_script_completes_in_bash():
    if shutil.which("bash") is None:
        pytest.skip("no bash")
    script = (
        "source <(alliance --show-completion bash); COMP_WORDS=(alliance score wai-sr); "
        'COMP_CWORD=2; _alliance_completion alliance; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "-c", script], env=_env(), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.stdout.split() == ["wai-sr", "wai-sr-t"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_the_zsh_and_fish_scripts_load_where_the_shell_is_present(shell: str):
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} on this machine (bash is tested everywhere)")
    script = subprocess.run([ALLIANCE, "--show-completion", shell], env=_env(),
                            capture_output=True, text=True, timeout=60).stdout  # fmt: skip
    check = ["zsh", "-n", "-c", script] if shell == "zsh" else ["fish", "-n", "-c", script]
    assert subprocess.run(check, capture_output=True, timeout=60).returncode == 0


def test_install_completion_installs_the_shell_it_names(tmp_path: Path):
    env = _env(HOME=str(tmp_path))
    done = subprocess.run([ALLIANCE, "--install-completion", "zsh"], env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / ".zfunc" / "_alliance").read_text().startswith("#compdef alliance")
    assert "compinit" in (tmp_path / ".zshrc").read_text()
    assert not (tmp_path / ".bashrc").exists()
    assert os.listdir(tmp_path)  # and nothing else was needed
