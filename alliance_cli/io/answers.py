"""Answers as people and programs give them: command-line words, JSON and NDJSON on stdin."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from alliance_cli.core.contract import respondent_dict
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
        try:
            session = int(str(session).strip())
        except ValueError:
            raise UsageProblem(f"session {session!r} is not a whole number") from None
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


def read_json_sets(text: str) -> list[tuple[str, Any, str | None]]:
    """Response sets from one JSON value (object or list) or NDJSON.

    Each entry is (where, parsed value, error): ``where`` is ``stdin:LINE`` for NDJSON and
    ``stdin[INDEX]`` for the items of a list; error is set (value None) for a line not JSON.
    """
    import json

    stripped = text.strip()
    if not stripped:
        return []
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(whole, list):
            return [(f"stdin[{i}]", obj, None) for i, obj in enumerate(whole)]
        return [("stdin:1", whole, None)]
    sets: list[tuple[str, Any, str | None]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            sets.append((f"stdin:{number}", json.loads(line), None))
        except json.JSONDecodeError as exc:
            error = f"not valid JSON ({exc.msg} at column {exc.colno})"
            sets.append((f"stdin:{number}", None, error))
    return sets
