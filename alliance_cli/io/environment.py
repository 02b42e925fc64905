"""Settings read from the environment, checked: a bad value is a usage error naming the
variable (exit 2), never a traceback."""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

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


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for a command that makes many objects (a
    batch, a long history, a caseload read cold); reference counting still frees them.

    A batch makes millions of short-lived, acyclic objects (each row's list, each stored
    row's tuple) beside large, long-lived memo tables; the collector's passes over them
    took a quarter of a ``--save`` run (``bench/batch.py --save``). The only cycles are the
    memo tables that hold their owner's methods, one set per stream: collected when the
    pause ends, and by a ``--jobs`` worker after each of its ranges, so memory stays flat
    (the bench reports peak RSS). A history view of 20,000 sessions holds ~100,000 live
    dicts the collector walked again and again: a sixth of ``history -f json``'s time.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
