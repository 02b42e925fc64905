"""Settings read from the environment, checked: a bad value is a usage error naming the
variable (exit 2), never a traceback."""

from __future__ import annotations

import os

from alliance_cli.core.errors import UsageProblem


def usable_cores() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def number(name: str, default: float, what: str, lowest: float = 0.0) -> float:
    """``name``'s value as a number of at least ``lowest`` (``default`` when unset or empty)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= lowest or value == float("inf"):  # (NaN fails every comparison)
        raise UsageProblem(f"{name}={text!r}: give {what} (a number, {lowest:g} or more)")
    return value


def iso_date(name: str) -> str | None:
    """``name``'s value as an ISO date (YYYY-MM-DD), None when unset or empty."""
    from datetime import date

    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise UsageProblem(f"{name}={text!r}: give a date as YYYY-MM-DD") from None
