"""The ``alliance`` command line: thin commands over the core, and the one error funnel.

Only typer and the standard library are imported at the top: the rest is imported inside
the commands that need it, so ``alliance --version`` stays fast.
"""

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from alliance_cli import __version__
from alliance_cli.cli.common import Command, RunOptions, error_line, in_utf8
from alliance_cli.core.errors import ExitCode

HELP = "Score therapeutic alliance questionnaires and follow the alliance over sessions."
# An example for each command, shown under its --help (one line each, run as written).
EXAMPLES = {
    "score": "alliance score wai-sr 4 4 5 3 5 4 4 3 5 4 4 4 --client C-102 --session 3",
    "batch": "alliance batch examples/clinic_wai_sr.csv -i wai-sr -o scored.csv --rejects bad.csv",
    "history": "alliance history C-107 --instrument wai-sr",
    "clients": "alliance clients --limit 20",
    "forget": "alliance forget C-107 --yes",
    "report": "alliance report C-107 -o C-107.html",
    "reliability": "alliance reliability examples/clinic_wai_sr.csv -i wai-sr",
    "norms": "alliance norms examples/clinic_wai_sr.csv -i wai-sr -o clinic-norms.yaml",
}
# Each command: (module, function). "instruments" is a group of its own.
COMMANDS = {
    "instruments": ("instruments", "instruments_app"),
    "score": ("score", "score_command"),
    "batch": ("batch", "batch_command"),
    "history": ("history", "history_command"),
    "clients": ("history", "clients_command"),
    "forget": ("history", "forget_command"),
    "report": ("report", "report_command"),
    "reliability": ("reliability", "reliability_command"),
    "norms": ("reliability", "norms_command"),
    "db": ("db", "db_app"),
}


def _example(name: str) -> str:
    return f"Example: {EXAMPLES[name]}"


def _version(value: bool) -> None:
    if value:
        sys.stdout.write(f"alliance {__version__}\n")
        raise typer.Exit(0)


def main_options(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    instruments_dir: Annotated[
        list[Path] | None,
        typer.Option(
            "--instruments-dir",
            help="Extra directory of instrument YAML files (repeatable; overrides bundled ids).",
        ),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks (never answers) on errors.")
    ] = False,
    norms: Annotated[
        Path | None,
        typer.Option(
            "--norms",
            help="Local norms (from alliance norms) for z-scores and reliable change "
            "(or ALLIANCE_NORMS).",
        ),
    ] = None,
) -> None:
    """Score therapeutic alliance questionnaires and follow the alliance over sessions."""
    ctx.obj = RunOptions(
        debug=debug or bool(os.environ.get("ALLIANCE_DEBUG")),
        instrument_dirs=tuple(instruments_dir or ()),
        norms=norms,
    )


def build(only: str | None = None) -> typer.Typer:
    """The typer app: every command, or (``only``) the one a command line runs.

    typer turns each registered command into click's form when the app runs, reading every
    signature: a third of ``alliance score``'s start-up for the nine commands it does not
    run. ``main`` builds only the one named (help, completion and an unknown name get all).
    """
    import importlib

    app = typer.Typer(
        name="alliance",
        help=HELP,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        pretty_exceptions_show_locals=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(main_options)
    for name, (module_name, attr) in COMMANDS.items():
        if only is not None and name != only:
            continue
        function = getattr(importlib.import_module(f"alliance_cli.cli.{module_name}"), attr)
        if name in ("instruments", "db"):
            app.add_typer(function, name=name)
        elif name == "score":
            # Unknown "options" reach score as answers, so a missing code such as -99 can be
            # typed; score_command refuses anything else that looks like an option.
            app.command("score", cls=Command, epilog=_example("score"),
                        context_settings={"ignore_unknown_options": True})(function)  # fmt: skip
        else:
            app.command(name, cls=Command, epilog=_example(name))(function)
    return app


def _named_command(argv: list[str]) -> str | None:
    """The command a command line runs, when it runs one (not help, not completion)."""
    if any(a.startswith("--") and "completion" in a for a in argv) or os.environ.get(
        "_ALLIANCE_COMPLETE"
    ):
        return None
    takes_value = {"--instruments-dir", "--norms"}
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in takes_value:
            skip = True
            continue
        if arg.startswith("-"):
            if arg in ("-h", "--help"):
                return None
            continue
        return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    """``app``: the whole app, built when first asked for (tests, the API of typer)."""
    if name == "app":
        globals()["app"] = built = build()
        return built
    raise AttributeError(name)


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM unwinds like Ctrl-C, so atomic writes remove their temporary files.
    raise KeyboardInterrupt


def _command_path(argv: list[str]) -> str:
    """The command a command line names (``alliance score``), for an error click raised
    without its context (an option missing its value)."""
    words = ["alliance"]
    group: Any = typer.main.get_command(build())
    for arg in argv:
        if arg.startswith("-"):
            continue
        commands = getattr(group, "commands", None)
        if not commands or arg not in commands:
            break
        words.append(arg)
        group = commands[arg]
    return " ".join(words)


def _utf8_streams() -> None:
    """Standard output and error in UTF-8 when they are a pipe or a file, whatever the
    locale's legacy encoding says (a Windows pipe's cp1252, a PYTHONIOENCODING=latin-1):
    JSON is UTF-8 (RFC 8259), CSV and the rest follow, and a concern's '≥' or a client's
    name in another script must not fail the run. A terminal keeps its encoding; what it
    cannot show is replaced there, never raised."""
    for stream in (sys.stdout, sys.stderr):
        if in_utf8(stream) or not hasattr(stream, "reconfigure"):
            continue
        try:
            if stream.isatty():
                stream.reconfigure(errors="replace")
            else:
                stream.reconfigure(encoding="utf-8")
        except (OSError, ValueError):  # closed, or already written to in another encoding
            continue


def main() -> None:
    """Console-script entry point: runs the app and makes typer's usage errors one line."""
    import signal

    # TERM and HUP (a closed terminal or SSH session) unwind like Ctrl-C, so safe writes
    # remove their temporary files and transactions roll back.
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _terminate)
    _utf8_streams()
    from alliance_cli.cli.clicklib import ClickException, NoArgsIsHelpError

    try:
        # --install-completion SHELL and --show-completion SHELL name the shell (typer's
        # form with the shell as a value), rather than guessing it from the parent process
        os.environ.setdefault("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
        code = build(_named_command(sys.argv[1:]))(prog_name="alliance", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ClickException as exc:  # click's usage errors: a bad option, a missing argument
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else _command_path(sys.argv[1:])
        error_line(f"{command}: {exc.format_message()} (see '{command} --help')")
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("interrupted\n")
        sys.exit(int(ExitCode.INTERRUPTED))
    sys.exit(code if isinstance(code, int) else 0)
