"""The plain side of the Score contract: its schema version and the respondent shape.

Kept apart from ``score.py`` (the pydantic models) so the scorer can build Score data without
importing pydantic: a warm ``alliance score`` loads neither pydantic nor YAML.
"""

from __future__ import annotations

from typing import Any

SCHEMA_VERSION = 1  # of the Score JSON; alliance_cli.core.score documents it


def respondent_dict(
    client_id: str | None = None,
    session: int | None = None,
    date: str | None = None,
    rater: str | None = None,
) -> dict[str, Any]:
    """The respondent part of a Score, as plain data."""
    return {"client_id": client_id, "session": session, "date": date, "rater": rater}


RATERS = ("client", "therapist", "observer")  # who can fill in a form (its respondent)


def plain_problem(value: str) -> str | None:
    """Why an id is not plain (an invisible, control or direction-changing character, or
    space at either end), or None: what ``--require-plain-ids`` refuses."""
    from alliance_cli.core.errors import invisible_in, visible

    char = invisible_in(value)
    if char is not None:
        shown = visible(value, one_line=True)
        return f"'{shown}' holds {visible(char, one_line=True)}, which does not show plainly"
    if value != value.strip():
        return f"{value!r} has space at an end"
    return None


MAX_ID_CHARS = 512  # a client id's length: a server's key index holds at most 2,704 bytes


def stored_text_problem(value: str) -> str | None:
    """Why a text (a counselor, any stored cell) cannot be kept in every history alike, or
    None: a NUL byte (no text on PostgreSQL can hold one)."""
    return "holds a NUL byte: not text a history can keep" if "\0" in value else None


def stored_id_problem(value: str) -> str | None:
    """Why a client id cannot be kept in every history alike, or None: a NUL byte
    (``stored_text_problem``) or more than ``MAX_ID_CHARS`` characters (its key index)."""
    problem = stored_text_problem(value)
    if problem is not None:
        return problem
    if len(value) > MAX_ID_CHARS:
        return f"is longer than {MAX_ID_CHARS} characters ({len(value):,})"
    return None


def session_problem(value: str) -> str | None:
    """Why a session (as text, stripped, not blank) is not a session number, or None."""
    if value.isascii() and value.isdigit() and len(value) <= 9 and int(value) >= 1:
        return None
    return f'session "{value}" is not a session number (a whole number from 1 to 999999999)'


def rater_problem(rater: str, respondent: str) -> str | None:
    """Why a rater (as given) cannot have filled in a form for this respondent, or None.

    Raters are compared in lower case, so "Client" and "client" are one series.
    """
    kind = rater.strip().lower()
    if kind not in RATERS:
        return f'rater "{rater.strip()}" is not one of {", ".join(RATERS)}'
    if kind != respondent:
        return f'rater "{kind}" does not fill in this form (its respondent is {respondent})'
    return None
