"""What every command shares: the options spelled once, the output dispatcher, the error funnel."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, NamedTuple, TypeVar

import typer
from typer.core import TyperCommand

from alliance_cli.core.errors import AllianceError, ExitCode, QuitByUser, UsageProblem, visible

if TYPE_CHECKING:
    from alliance_cli.io.catalog import Catalog

F = TypeVar("F", bound=Callable[..., Any])


class Command(TyperCommand):
    """A command whose usage line names its arguments plainly (typer wraps them in braces)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """The usage line's pieces, without typer's braces around required arguments."""
        return [p.replace("{", "").replace("}", "") for p in super().collect_usage_pieces(ctx)]


class RunOptions(NamedTuple):
    """The options given before the command (``alliance --debug --instruments-dir D ...``).

    Kept in the click context's ``obj`` by the app callback; ``run_options()`` reads it.
    """

    debug: bool = False
    instrument_dirs: tuple[Path, ...] = ()
    norms: Path | None = None  # --norms FILE (or ALLIANCE_NORMS): local norms


def run_options() -> RunOptions:
    """This run's global options (defaults outside a command line, e.g. in tests of helpers)."""
    from alliance_cli.cli.clicklib import get_current_context

    ctx = get_current_context(silent=True)
    found = ctx.find_object(RunOptions) if ctx is not None else None
    return found or RunOptions(debug=bool(os.environ.get("ALLIANCE_DEBUG")))


class Format(StrEnum):
    """Output formats (a command that offers all four takes this enum)."""

    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"


class DetailFormat(StrEnum):
    """Formats of one described thing (``instruments show``, ``instruments check``)."""

    table = "table"
    json = "json"


class BatchFormat(StrEnum):
    """Formats of scored rows (``batch``)."""

    csv = "csv"
    ndjson = "ndjson"
    json = "json"
    fhir = "fhir"
    parquet = "parquet"


class ScoreFormat(StrEnum):
    """Formats of ``score``: the four, and FHIR Observations."""

    table = "table"
    json = "json"
    ndjson = "ndjson"
    csv = "csv"
    fhir = "fhir"


class SchemaFormat(StrEnum):
    """The JSON Schema is JSON."""

    json = "json"


class Invalid(StrEnum):
    """What to do with an out-of-range, off-step or unreadable answer."""

    reject = "reject"
    missing = "missing"


InvalidOpt = Annotated[
    Invalid,
    typer.Option(
        "--invalid",
        help="reject (default): a bad answer rejects the set or row; missing: score it as missing.",
    ),
]

PlainIdsOpt = Annotated[
    bool,
    typer.Option(
        "--require-plain-ids",
        help="Reject ids holding invisible, control or direction-changing characters.",
    ),
]
# Input options shared by batch, reliability and norms (one spelling, one help text).
InstrumentIdOpt = Annotated[
    str | None,
    typer.Option(
        "--instrument",
        "-i",
        help="Instrument id (without it, the ids whose items the header has are named).",
        autocompletion=lambda incomplete: complete_instruments(incomplete),
    ),
]
ColumnsOpt = Annotated[
    str | None, typer.Option("--columns", help="Item column template, e.g. 'wai_{item}'.")
]
MapOpt = Annotated[
    Path | None, typer.Option("--map", help="YAML file mapping item id to column name.")
]
IdColumnOpt = Annotated[str | None, typer.Option("--id-column", help="Client id column.")]
ItemColumnOpt = Annotated[
    str | None, typer.Option("--item-column", help="Long format: the item column.")
]
ValueColumnOpt = Annotated[
    str | None, typer.Option("--value-column", help="Long format: the answer column.")
]
QuestionnaireOpt = Annotated[
    Path | None,
    typer.Option(
        "--questionnaire",
        metavar="FILE",
        help="FHIR: the responses' Questionnaire (JSON): accepted by its url; answer weights.",
    ),
]
FhirRaterOpt = Annotated[
    str | None,
    typer.Option(
        "--rater",
        metavar="client|therapist",
        help="FHIR: the rater of responses whose source names none.",
    ),
]


def fhir_rater(value: str | None) -> str | None:
    """``--rater``: client or therapist (a usage error otherwise)."""
    if value is not None and value not in ("client", "therapist"):
        raise UsageProblem(f"--rater {value!r}: choose client or therapist")
    return value


RecodeOpt = Annotated[
    str | None, typer.Option("--recode", help="Answer codes to scale values, e.g. '0-4:1-5'.")
]
EncodingOpt = Annotated[
    str, typer.Option("--encoding", help="Input encoding, e.g. latin-1 (a BOM decides).")
]
DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="History: a file, or a clinic's postgresql:// URL (default: $ALLIANCE_DB or the "
        "user data dir).",
    ),
]

SaveOpt = Annotated[
    bool, typer.Option("--save", help="Record what is scored in the local history.")
]
ReplaceOpt = Annotated[
    bool, typer.Option("--replace", help="With --save: overwrite sessions already recorded.")
]
QuietOpt = Annotated[
    bool, typer.Option("--quiet", "-q", help="No notices or summary on stderr (errors still).")
]

FormatOpt = Annotated[
    Format | None,
    typer.Option(
        "--format",
        "-f",
        help="table (for people; default on a terminal), json (default when piped), ndjson or csv.",
        show_default=False,
    ),
]
DetailFormatOpt = Annotated[
    DetailFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (default on a terminal) or json (default when piped).",
        show_default=False,
    ),
]
BatchFormatOpt = Annotated[
    BatchFormat,
    typer.Option(
        "--format",
        "-f",
        help="csv (default), ndjson (one Score a line), json, fhir (Observations, NDJSON), "
        "or parquet (the csv columns, typed).",
    ),
]
ScoreFormatOpt = Annotated[
    ScoreFormat | None,
    typer.Option(
        "--format",
        "-f",
        help="table (for people; default on a terminal), json (default when piped), ndjson, "
        "csv, or fhir (a Bundle of Observations).",
        show_default=False,
    ),
]
SchemaFormatOpt = Annotated[SchemaFormat, typer.Option("--format", "-f", help="json.")]


def pick_format(fmt: StrEnum | None) -> Format:
    """The chosen format; with none, a table on a terminal and JSON when piped."""
    if fmt is None:
        return Format.table if sys.stdout.isatty() else Format.json
    return Format(fmt.value)


def say(line: str) -> None:
    """Print one message line on stderr, control characters made visible (data is in it)."""
    sys.stderr.write(visible(line, one_line=True) + "\n")


def error_line(line: str) -> None:
    """Print one error line on stderr: ``error: ...``."""
    say(f"error: {line}")


# Arguments that name files: any bytes the file system allows. Every other text argument
# (ids, counselors, dates, templates) is data alliance prints and stores: it must be UTF-8.
_FILE_ARGUMENTS = {"files", "output", "rejects", "map_file", "db", "instruments_dir"}


def _check_text_arguments(kwargs: dict[str, Any]) -> None:
    """Refuse a text argument that is not valid UTF-8 (Python keeps such bytes as lone
    surrogates, which no output or store can hold)."""
    for name, value in kwargs.items():
        if name in _FILE_ARGUMENTS:
            continue
        for text in value if isinstance(value, list | tuple) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                    raise UsageProblem(
                        f"{shown!r} (given for {name.upper()}): not valid UTF-8 text (re-type "
                        "it, or set the terminal to UTF-8)"
                    ) from None


def complete_instruments(incomplete: str) -> list[str]:
    """Shell completion: the instrument ids (bundled and --instruments-dir / ALLIANCE_PATH)."""
    try:
        from alliance_cli.io.catalog import load_catalog

        context_dirs: tuple[Path, ...] = ()
        from alliance_cli.cli.clicklib import get_current_context

        context = get_current_context(silent=True)
        root = context.find_root() if context is not None else None
        if root is not None:
            context_dirs = tuple(root.params.get("instruments_dir") or ())
        ids = load_catalog(context_dirs).ids()
    except Exception:  # completion never fails loudly: no suggestions then
        return []
    return [i for i in ids if i.startswith(incomplete.lower())]


def complete_clients(incomplete: str) -> list[str]:
    """Shell completion: the client ids of the history (--db, ALLIANCE_DB or the default)."""
    try:
        from alliance_cli.cli.clicklib import get_current_context
        from alliance_cli.store import backend as history

        context = get_current_context(silent=True)
        db = context.params.get("db") if context is not None else None
        if not db:  # the words typed so far (bash: COMP_WORDS; zsh, fish: the whole line)
            words = (os.environ.get("COMP_WORDS") or os.environ.get("_TYPER_COMPLETE_ARGS")
                     or "").split()  # fmt: skip
            if "--db" in words[:-1]:
                db = words[words.index("--db") + 1]
        where = history.location(db)
        return [c for c in history.client_ids(where) if c.startswith(incomplete)][:200]
    except Exception:  # completion never fails loudly: no suggestions then
        return []


def _say_cache_notes(quiet: bool) -> None:
    """Say why an instrument cache was not trusted (once, at the end of the command)."""
    catalog = sys.modules.get("alliance_cli.io.catalog")
    if catalog is not None and not quiet:
        for note in catalog.CACHE_NOTES:
            say(note)


def no_such_option(word: str) -> UsageProblem:
    """The usage error for an unknown option, said as click says its own: the command, the
    option, the closest ones, and where the help is."""
    import difflib

    from alliance_cli.cli.clicklib import get_current_context

    context = get_current_context(silent=True)
    path = context.command_path if context is not None else "alliance"
    names = (
        [o for p in context.command.params for o in getattr(p, "opts", []) if o.startswith("--")]
        if context is not None
        else []
    )
    close = difflib.get_close_matches(word.split("=")[0], names, n=3, cutoff=0.6)
    hint = f" (Possible options: {', '.join(close)})" if close else ""
    return UsageProblem(f"{path}: No such option: {word}{hint} (see '{path} --help')")


def funnel(fn: F) -> F:
    """Run a command body and map every outcome to one exit code and one-line errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from alliance_cli.io.files import forget_reads

        forget_reads()  # a new run: no file is read yet (several commands in one process)
        catalog = sys.modules.get("alliance_cli.io.catalog")
        if catalog is not None:
            catalog.CACHE_NOTES.clear()
        try:
            _check_text_arguments(kwargs)
            code = fn(*args, **kwargs)
        except typer.Exit:
            raise
        except QuitByUser as exc:  # a choice, said calmly: not an error line
            say(str(exc))
            raise typer.Exit(int(exc.exit_code)) from None
        except AllianceError as exc:
            for line in exc.lines():
                error_line(line)
            if run_options().debug:
                import traceback

                traceback.print_exc()
            raise typer.Exit(int(exc.exit_code)) from None
        except (KeyboardInterrupt, typer.Abort):
            sys.stderr.write("interrupted\n")
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except BrokenPipeError:
            # The reader went away (`| head`): not an error of ours.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except Exception as exc:
            if run_options().debug:
                import traceback

                traceback.print_exc()
            error_line(
                f"internal error: {type(exc).__name__} "
                "(a bug: rerun with --debug and report the traceback, which holds no answers)"
            )
            raise typer.Exit(int(ExitCode.INTERNAL)) from None
        finally:
            _say_cache_notes(bool(kwargs.get("quiet")))
        raise typer.Exit(int(code or 0))

    return wrapper  # type: ignore[return-value]


def run_catalog(strict: bool = False, quiet: bool = False) -> Catalog:
    """Load the catalog; print override notices (unless quiet) and, when asked, problems."""
    from alliance_cli.io.catalog import load_catalog

    options = run_options()
    catalog = load_catalog(options.instrument_dirs)
    norms = options.norms or (Path(os.environ["ALLIANCE_NORMS"]) if os.environ.get(
        "ALLIANCE_NORMS") else None)  # fmt: skip
    if norms is not None:
        from alliance_cli.io.norms import read_local_norms

        instrument, norm = read_local_norms(norms)
        catalog.local_norms[instrument] = norm
        if not quiet:  # said by every output that uses them (z-scores, reliable change)
            say(f"local norms from {norms} (n = {norm.n}): {instrument} z-scores and "
                "reliable change")  # fmt: skip
    for notice in catalog.notices if not quiet else ():
        say(notice)
    if strict and catalog.problems:
        for problem in catalog.problems:
            say(f"warning: {problem} (skipped)")
    return catalog


def say_undefined(catalog: Catalog, instruments: Iterable[str], quiet: bool) -> None:
    """Say once per instrument of the history shown that has no definition here: its
    sessions are shown as stored, but the reading leaves out what needs the definition."""
    from alliance_cli.core.errors import InstrumentInvalid

    if quiet:
        return
    for inst_id in sorted(set(instruments)):
        try:
            catalog.get(inst_id)
        except InstrumentInvalid:
            say(f"note: instrument '{inst_id}' has a definition that does not load here "
                "('alliance instruments check' says why): its sessions are shown as stored, "
                "and the reading leaves out its cutoffs, bands, norms and item pairs")  # fmt: skip
        except AllianceError:
            say(f"note: instrument '{inst_id}' is not defined here (not bundled; not in "
                "--instruments-dir or ALLIANCE_INSTRUMENTS_PATH): its sessions are shown as "
                "stored, and the reading leaves out its cutoffs, bands, norms and item "
                "pairs")  # fmt: skip


def say_verification(scorer: Any, quiet: bool) -> None:
    """Say once per run, on stderr, that a key is below verified (silenced by -q)."""
    from alliance_cli.core.scorer import verification_notice

    notice = verification_notice(scorer.instrument)
    if notice and not quiet:
        say(notice)
    condition = getattr(scorer.instrument, "scoring_licence", None)
    if condition and not quiet:  # a licence that conditions automated scoring, said once
        say(f"licence: {' '.join(condition.split())}")


def step_elapsed(start: float) -> Any:
    """A bar's elapsed time, counted from ``start`` until the step ends: rich's own stops
    when the count is complete, and a step may go on after it (the first ``clients``
    after a large import reads every client, then keeps what was said at a million
    sessions: its clock stood still for seconds, as if it had hung)."""
    import time
    from datetime import timedelta

    from rich.progress import ProgressColumn
    from rich.text import Text

    class _Elapsed(ProgressColumn):
        def render(self, task: Any) -> Text:
            seconds = int(time.perf_counter() - start)
            return Text(str(timedelta(seconds=seconds)), style="progress.elapsed")

    return _Elapsed()


@contextlib.contextmanager
def progress_of(what: str, quiet: bool = False) -> Iterator[Callable[[int, int], None] | None]:
    """A bar on a terminal's stderr for a step that may take over a second: what it is
    doing, done of total, elapsed; shown only once the step has taken a second
    (``ALLIANCE_PROGRESS_AFTER`` seconds), never on a pipe or with -q (then None)."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from alliance_cli.render import terminal as render

    after = float(os.environ.get("ALLIANCE_PROGRESS_AFTER") or 1.0)
    start = time.perf_counter()
    progress = Progress(
        TextColumn(what, markup=False), BarColumn(), MofNCompleteColumn(),
        step_elapsed(start), console=render.console(stderr=True), transient=True,
    )  # fmt: skip
    task = progress.add_task(what, total=None)

    def update(done: int, total: int) -> None:
        if not progress.live.is_started:
            if time.perf_counter() - start < after:
                return
            progress.start()
        progress.update(task, completed=done, total=total)

    try:
        yield update
    finally:
        if progress.live.is_started:
            progress.stop()


def emit_json(data: Any, records_in: tuple[str, ...] = (), one_a_line: bool = False) -> None:
    """Print JSON data on stdout, indented, UTF-8 as it is.

    A list of flat records (values that are scalars or lists of scalars, like the caseload's
    rows) is written one record a line: as readable, and the C encoder writes it (the
    indenting one is pure Python, and took most of ``clients -f json``'s time). So is the
    list under each key in ``records_in`` (a history's sessions: 20,000 of them took 0.6 s
    to indent, 0.13 s a line each). ``one_a_line``: a list's records are written one a line
    even when they nest (the caseload's rows with their concerns: 10,000 clients took 2.5 s
    to indent).
    """
    import json

    # records of one command share one shape: the first says whether all are flat
    if isinstance(data, list) and data and (one_a_line or (_flat(data[0]) and _flat(data[-1]))):
        encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one a record
        emit_json_records([encode(r).encode() for r in data])
        return
    if records_in:
        sys.stdout.write(_indented(data, records_in, "") + "\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def in_utf8(stream: Any) -> bool:
    """Whether a text stream writes UTF-8 ('utf-8', 'UTF8', 'utf_8' alike)."""
    encoding = getattr(stream, "encoding", None) or ""
    return encoding.lower().replace("-", "").replace("_", "") == "utf8"


def emit_json_records(lines: list[bytes]) -> None:
    """Print a JSON list of records encoded already (``json.JSONEncoder(ensure_ascii=
    False)``, in UTF-8), one a line: as they are to a UTF-8 standard output (as text to any
    other)."""
    body = b"[\n  " + b",\n  ".join(lines) + b"\n]\n" if lines else b"[]\n"
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None or not in_utf8(sys.stdout):
        sys.stdout.write(body.decode())
        return
    sys.stdout.flush()
    buffer.write(body)


def _indented(value: Any, records_in: tuple[str, ...], pad: str) -> str:
    """``json.dumps(value, indent=2)``, but the lists under ``records_in`` one item a line."""
    import json

    inner = pad + "  "
    if isinstance(value, list) and value:
        items = (inner + _indented(v, records_in, inner) for v in value)
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    if isinstance(value, dict) and value:
        parts = []
        encode = json.JSONEncoder(ensure_ascii=False).encode  # one encoder, not one a record
        for key, item in value.items():
            if key in records_in and isinstance(item, list) and item:
                lines = ",\n".join(inner + "  " + encode(v) for v in item)
                text = "[\n" + lines + "\n" + inner + "]"
            else:
                text = json.dumps(item, indent=2, ensure_ascii=False).replace("\n", "\n" + inner)
            parts.append(f"{inner}{json.dumps(str(key), ensure_ascii=False)}: {text}")
        return "{\n" + ",\n".join(parts) + "\n" + pad + "}"
    return json.dumps(value, ensure_ascii=False)


def _flat(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    for value in record.values():
        if isinstance(value, dict):
            return False
        if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
            return False
    return True


def output(
    fmt: Format,
    records: Any,
    table: Callable[[Any], Any],
    csv_writer: Callable[[IO[str]], None] | None = None,
    records_in: tuple[str, ...] = (),
    one_a_line: bool = False,
) -> None:
    """Write JSON data (a list of records, or one object) as JSON, NDJSON, CSV or a table.

    ``-f json`` prints the data as it is, so a command always has one shape; ``ndjson`` one
    record a line; ``csv`` flat rows unless the command gives its own writer.
    """
    many = records if isinstance(records, list) else [records]
    if fmt is Format.json:
        emit_json(records, records_in, one_a_line)
    elif fmt is Format.ndjson:
        import json

        for record in many:
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    elif fmt is Format.csv:
        from alliance_cli.io import csvout

        if csv_writer is not None:
            csv_writer(sys.stdout)
        else:
            csvout.write_rows_csv(sys.stdout, many)
    else:
        from alliance_cli.render import terminal as render

        render.console().print(table(render))


def which_instrument(
    files: Sequence[str] | None, catalog: Any, encoding: str = "utf-8", delimiter: str | None = None
) -> str:
    """The error of a command without ``-i`` (batch, reliability, norms): the instruments
    whose item columns the first file's header has (read from a file, never from stdin),
    else the ids to choose from; never one picked for the user."""
    from alliance_cli.core.errors import AllianceError
    from alliance_cli.io.columns import instruments_fitting_file

    usable = {
        inst_id: [str(i.id) for i in entry.instrument.items]
        for inst_id, entry in catalog.entries.items()
        if entry.instrument.verification.status != "draft"
    }
    ask = "which instrument are the rows? add -i ID"
    fitting: list[str] = []
    first = files[0] if files else "-"
    if first != "-":
        with contextlib.suppress(AllianceError):  # (its own error is said, read with -i)
            fitting = instruments_fitting_file(first, usable, encoding, delimiter)
    if len(fitting) == 1:
        return f"{ask}: the item columns of {first} fit {fitting[0]} (-i {fitting[0]})"
    if fitting:
        return (
            f"{ask}: the item columns of {first} fit {', '.join(fitting[:-1])} and "
            f"{fitting[-1]}: the form the clinic used (alliance instruments show ID tells them "
            "apart)"
        )
    return f"{ask} ({', '.join(sorted(usable))}; alliance instruments lists them)"
