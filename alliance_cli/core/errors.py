"""Errors alliance raises on purpose, each with the exit code the CLI returns for it.

    AllianceError                      (1, a bug if it ever escapes un-subclassed)
    ├── UsageProblem                   2  a bad argument the parser could not catch
    │   └── UnknownInstrument          2  an instrument id nobody defined
    ├── RejectedInput                  3  answers or rows that cannot be scored
    ├── InstrumentInvalid              4  an instrument file with one or more problems
    ├── DraftInstrument                4  a draft definition: no public key, never scored
    ├── QuitByUser                     6  q at a prompt: a choice, not an error
    └── DataFileError                  5  a file that cannot be read or written
        └── HistoryError               5  the session store cannot be opened or written

Nothing here imports pydantic or rich: the CLI imports this module on every call.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NamedTuple

# C0 and C1 control characters (ESC, BEL, CR, ...) as text: data shown to people never
# moves a cursor, sets a title, writes the clipboard (OSC 52) or clears a screen.
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x20), *range(0x7F, 0xA0)] if c != 0x0A}


# Characters that show nothing, or change how the text around them shows: bidirectional
# controls (U+202E turns "C-\u202e701" into what looks like "C-107"), zero-width spaces and
# joiners, invisible separators, variation selectors, tags, non-ASCII spaces that look like
# a plain space, lone surrogates. Written out as \uXXXX wherever data is shown to people.
_INVISIBLE = re.compile(
    "[\u00a0\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2000-\u200f"
    "\u2028-\u202f\u205f-\u206f\u3000\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufffb"
    "\U000e0000-\U000e0fff\ud800-\udfff]"
)


def _written_out(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: str, one_line: bool = False) -> str:
    """Text with every control character but the line feed written out (``\\x1b``), and
    every invisible or direction-changing character too (``\\u202e``); with ``one_line``,
    the line feed as well (``\\n``: an id never adds a line)."""
    text = text.translate(_CONTROL)
    if one_line and "\n" in text:
        text = text.replace("\n", "\\n")
    return _INVISIBLE.sub(_written_out, text) if _INVISIBLE.search(text) else text


def invisible_in(text: str) -> str | None:
    """The first character of ``text`` that ``visible(text, one_line=True)`` writes out."""
    for char in text:
        if char == "\n" or ord(char) in _CONTROL or _INVISIBLE.match(char):
            return char
    return None


class ExitCode(IntEnum):
    """Process exit codes, as documented in the README."""

    OK = 0
    INTERNAL = 1
    USAGE = 2
    REJECTED = 3
    INSTRUMENT = 4
    FILE = 5
    QUIT = 6  # the user typed q at a prompt: nothing was scored or saved
    INTERRUPTED = 130


class AllianceError(Exception):
    """Base of every error alliance raises on purpose."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def lines(self) -> list[str]:
        """The one-line messages to print for this error (usually one)."""
        return [str(self)]


class UsageProblem(AllianceError):
    """An argument or option that does not make sense."""

    exit_code = ExitCode.USAGE


class UnknownInstrument(UsageProblem):
    """An instrument id that no catalog directory defines."""

    def __init__(self, wanted: str, available: list[str], nearest: str | None) -> None:
        self.wanted = wanted
        self.available = available
        self.nearest = nearest
        hint = f"did you mean {nearest!r}? " if nearest else ""
        super().__init__(
            f"unknown instrument {wanted!r} ({hint}available: {', '.join(available) or 'none'})"
        )


class Problem(NamedTuple):
    """One thing wrong with an instrument file: where and what."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class InstrumentInvalid(AllianceError):
    """An instrument definition with one or more problems."""

    exit_code = ExitCode.INSTRUMENT

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(str(problems[0]) if problems else "invalid instrument")

    def lines(self) -> list[str]:
        """One line per problem."""
        return [str(p) for p in self.problems]


class DraftInstrument(AllianceError):
    """A draft instrument (no public scoring key): alliance refuses to score it."""

    exit_code = ExitCode.INSTRUMENT

    def __init__(self, instrument_id: str) -> None:
        self.instrument_id = instrument_id
        super().__init__(
            f"{instrument_id} is a draft: no public source gives its scoring key, so alliance "
            f"will not score it (write your own {instrument_id}.yaml with the key and pass "
            "--instruments-dir DIR: a file with the same id overrides the bundled one)"
        )


class AnswerProblem(NamedTuple):
    """One answer that cannot be used: which item, what was given, what is wrong."""

    item: str
    value: str
    problem: str

    def __str__(self) -> str:
        return f"item {self.item}: {self.problem}"


class RejectedInput(AllianceError):
    """A response set (or some rows) that could not be scored."""

    exit_code = ExitCode.REJECTED

    def __init__(self, problems: list[AnswerProblem], where: str = "", message: str = "") -> None:
        self.problems = problems
        self.where = where
        first = message or (str(problems[0]) if problems else "answers rejected")
        super().__init__(f"{where}: {first}" if where else first)

    def lines(self) -> list[str]:
        """One line per rejected answer (or the one message)."""
        if not self.problems:
            return [str(self)]
        prefix = f"{self.where}: " if self.where else ""
        return [f"{prefix}{p}" for p in self.problems]


class QuitByUser(AllianceError):
    """The person at the prompt chose to stop (q): nothing is scored or saved."""

    exit_code = ExitCode.QUIT

    def __init__(self) -> None:
        super().__init__("stopped at your request: nothing was scored or saved")


class DataFileError(AllianceError):
    """A file that cannot be read, parsed or written."""

    exit_code = ExitCode.FILE


class HistoryError(DataFileError):
    """The session history store cannot be used."""
