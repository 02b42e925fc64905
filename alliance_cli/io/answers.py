"""Answers as people and programs give them: command-line words, JSON and NDJSON on stdin."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from alliance_cli.core.contract import respondent_dict, session_problem
from alliance_cli.core.errors import UsageProblem
from alliance_cli.core.scorer import validate_date


def response_from_json(
    obj: Any, instrument_id: str | None = None
) -> tuple[Mapping[str, Any] | list[Any], dict[str, Any]]:
    """Split one JSON response set into answers and respondent, or raise UsageProblem.

    A set that names an ``instrument`` other than ``instrument_id`` (the one being scored)
    is refused: answers to one form scored on another's key give plausible wrong numbers.
    """
    if not isinstance(obj, dict):
        raise UsageProblem(f"expected a JSON object, got {type(obj).__name__}")
    allowed = {"client_id", "session", "date", "rater", "answers", "instrument"}
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise UsageProblem(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    named = obj.get("instrument")
    if (
        named is not None
        and instrument_id is not None
        and (not isinstance(named, str) or named.strip().lower() != instrument_id)
    ):
        raise UsageProblem(
            f"the set names instrument {named!r} but is being scored as {instrument_id!r} "
            f"(score it with that instrument, or remove the 'instrument' key)"
        )
    answers = obj.get("answers")
    if not isinstance(answers, dict | list):
        raise UsageProblem("'answers' must be an object of item: value, or a list in item order")
    session = obj.get("session")
    if session is not None:
        problem = session_problem(str(session).strip())
        if problem is not None or isinstance(session, bool | float):
            raise UsageProblem(problem or f"session {session!r} is not a whole number")
        session = int(str(session).strip())
    client = obj.get("client_id")
    who = respondent_dict(
        client_id=None if client is None else str(client),
        session=session,
        date=validate_date(None if obj.get("date") is None else str(obj["date"])),
        rater=None if obj.get("rater") is None else str(obj["rater"]),
    )
    return answers, who


# -- answers from the command line and from JSON ---------------------------------------------
def parse_answer_args(args: Sequence[str]) -> dict[str, str] | list[str]:
    """Answers as given on the command line: values in item order, one comma list, or pairs.

    ``5 4 4 3``, ``"5,4,4,3"`` and ``1=5 2=4`` are all accepted; pairs and bare values
    cannot be mixed.
    """
    pairs = [a for a in args if "=" in a]
    if pairs and len(pairs) != len(args):
        raise UsageProblem("give answers either all as ITEM=VALUE pairs or all as plain values")
    if pairs:
        out: dict[str, str] = {}
        for arg in pairs:
            item, _, value = arg.partition("=")
            item = item.strip()
            if item in out:
                raise UsageProblem(f"item {item} is given twice")
            out[item] = value
        return out
    if len(args) == 1 and "," in args[0]:
        return [v.strip() for v in args[0].split(",")]
    return list(args)


MAX_JSON_DOCUMENT = 64 * 1024 * 1024  # one JSON value (object or list); NDJSON has no limit
MAX_JSON_LINE = 1024 * 1024  # one NDJSON line


class _Duplicate(ValueError):
    """A JSON object that gives one key twice."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


def parse_json(text: str) -> tuple[Any, str | None]:
    """One JSON value, or (None, why not): malformed, a key twice, too deep, a huge number."""
    import json

    try:
        return json.loads(text, object_pairs_hook=_no_duplicates), None
    except _Duplicate as exc:
        return None, f"key {exc.args[0]!r} is given twice"
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON ({exc.msg} at column {exc.colno})"
    except RecursionError:
        return None, "JSON nested too deeply"
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        return None, f"not usable JSON ({str(exc).split(';')[0]})"


class TextSource(Protocol):
    """What read_json_sets reads from: a text stream (stdin, or stdin with a peeked char)."""

    def readline(self, limit: int = -1, /) -> str:
        """One line, at most limit characters."""
        ...

    def read(self, size: int = -1, /) -> str:
        """The rest, or at most size characters."""
        ...


class _Prefixed:
    """A text stream with its first characters already read put back in front."""

    def __init__(self, head: str, stream: TextSource) -> None:
        self.head, self.stream = head, stream

    def readline(self, limit: int = -1, /) -> str:
        """The next line (the put-back text first)."""
        head, self.head = self.head, ""
        if limit >= 0:
            return head + self.stream.readline(max(limit - len(head), 0))
        return head + self.stream.readline()

    def read(self, size: int = -1, /) -> str:
        """The rest, or up to size characters (the put-back text first)."""
        head, self.head = self.head, ""
        return head + self.stream.read(size if size < 0 else max(size - len(head), 0))


def peek(stream: TextSource) -> tuple[str, TextSource]:
    """The first character that is not white space or a byte-order mark ("" at the end),
    and the stream with it still to read: what decides between JSON and plain answer lines."""
    first = stream.read(1)
    while first.isspace() or first == "\ufeff":  # a byte-order mark is not the first answer
        first = stream.read(1)
    return first, _Prefixed(first, stream)


def read_json_sets(stream: TextSource) -> Iterator[tuple[str, Any, str | None]]:
    """Response sets, streamed, from one JSON value (object or list) or NDJSON.

    Each is (where, parsed value, error): ``where`` is ``stdin:LINE`` for NDJSON and
    ``stdin[INDEX]`` for a list's items; error is set (value None) for a line that is not
    usable JSON. NDJSON is read a line at a time, so memory does not grow with the input;
    a single JSON value may be up to 64 MiB.
    """
    first = stream.readline(MAX_JSON_LINE + 1)
    number = 1
    while first and not first.strip():
        first = stream.readline(MAX_JSON_LINE + 1)
        number += 1
    if not first:
        return
    value, error = parse_json(first) if len(first) <= MAX_JSON_LINE else (None, "too long")
    if error is not None and first.lstrip()[:1] in "[{":
        # not one line of NDJSON: one JSON value spread over lines (pretty-printed)
        rest = stream.read(MAX_JSON_DOCUMENT + 1 - len(first))
        whole = first + rest
        if len(whole) > MAX_JSON_DOCUMENT:
            yield (
                "stdin",
                None,
                f"a JSON document over {MAX_JSON_DOCUMENT // 2**20} MiB (use NDJSON)",
            )
            return
        value, error = parse_json(whole)
        if error is None:
            if isinstance(value, list):
                for i, obj in enumerate(value):
                    yield f"stdin[{i}]", obj, None
            else:
                yield "stdin:1", value, None
            return
        # not one value either: report it line by line, as NDJSON
        lines = iter(whole.splitlines(keepends=True))
        yield from _ndjson(lines, number)
        return
    if error is None and isinstance(value, list):  # a JSON list on one line
        for i, obj in enumerate(value):
            yield f"stdin[{i}]", obj, None
    else:
        yield from _ndjson(iter([first]), number)
    yield from _ndjson(iter(lambda: stream.readline(MAX_JSON_LINE + 1), ""), number + 1)


def _ndjson(lines: Iterator[str], start: int) -> Iterator[tuple[str, Any, str | None]]:
    for number, line in enumerate(lines, start=start):
        if not line.strip():
            continue
        where = f"stdin:{number}"
        if len(line) > MAX_JSON_LINE:
            yield where, None, f"a line over {MAX_JSON_LINE // 1024} KiB"
            continue
        value, error = parse_json(line)
        yield where, value, error
