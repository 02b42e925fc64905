"""Many clients read at once on every core: the first ``clients`` after an import that
touched most of the history reads every client again, tens of microseconds a session.

The clients are read in order in chunks by forked worker processes (they inherit what to
read: nothing is sent but each chunk's bounds), and the results come back in order: the
same rows, in the same order, as one process gives. Fewer clients than
``PARALLEL_CLIENTS``, one usable core, or a system other than Linux (the workers are
forked, which only Linux does safely by default): one process.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

PARALLEL_CLIENTS = 2000  # fewer clients than this are read on one process (start-up)
CHUNK = 250  # clients a task: progress is told as each chunk comes back

T = TypeVar("T")
R = TypeVar("R")
_SHARED: tuple[Callable[[Any], Any], Sequence[Any]] | None = None  # (read_one, items)


def read_all(
    items: Sequence[T],
    read_one: Callable[[T], R],
    on_progress: Callable[[int, int], None] | None = None,
    jobs: int | None = None,
) -> list[R] | None:
    """``read_one`` of each item, in order, on up to ``jobs`` processes (every usable
    core); None when one process should read them (too few, one core, not Linux)."""
    from alliance_cli.io.environment import usable_cores

    jobs = usable_cores() if jobs is None else jobs
    if len(items) < PARALLEL_CLIENTS or jobs < 2 or not sys.platform.startswith("linux"):
        return None
    import multiprocessing

    global _SHARED
    bounds = [(start, min(start + CHUNK, len(items))) for start in range(0, len(items), CHUNK)]
    out: list[R] = []
    _SHARED = (read_one, items)  # what the forked workers read
    try:
        context = multiprocessing.get_context("fork")
        with context.Pool(min(jobs, len(bounds)), initializer=_quiet_worker) as pool:
            for part in pool.imap(_read_chunk, bounds):  # in order
                out.extend(part)
                if on_progress is not None:
                    on_progress(len(out), len(items))
    finally:
        _SHARED = None
    return out


def _quiet_worker() -> None:
    """(In a worker.) Ctrl-C is the parent's to handle: it stops the workers, which then
    end quietly (not by the command's own handler, inherited by the fork)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _read_chunk(bounds: tuple[int, int]) -> list[Any]:
    """(In a worker.) The results of one chunk of the items."""
    assert _SHARED is not None
    read_one, items = _SHARED
    start, end = bounds
    return [read_one(item) for item in items[start:end]]
