"""Moving a history: every session of one history into another (SQLite to PostgreSQL, or
back), as stored, with what was said at save time. Idempotent: a session already there
with the same answers is counted, never added twice; one there with other answers is a
conflict, told and left as it was."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alliance_cli.store.base import Conflict, HistoryStore


@dataclass
class Copied:
    """What a copy did, and the counts it ends with."""

    read: int = 0  # sessions read from the source
    added: int = 0
    same: int = 0  # already in the destination with the same answers
    conflicts: list[Conflict] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # sessions the destination cannot keep
    source_count: int = 0  # sessions the source holds (that this role sees)
    destination_count: int = 0  # sessions the destination holds afterwards

    @property
    def complete(self) -> bool:
        """Whether every session read is accounted for: now in the destination (added, or
        already there), or named as one it cannot keep."""
        return self.added + self.same + len(self.refused) == self.read == self.source_count


def copy_history(
    source: HistoryStore,
    destination: HistoryStore,
    on_progress: Callable[[int], None] | None = None,
) -> Copied:
    """Copy every session of ``source`` into ``destination`` in one transaction there."""
    done = Copied()
    ids: dict[str, int] = {}
    recorder: Any = destination.batch_recorder(replace=False)
    store: Any = destination
    try:
        for row in source.copy_rows():
            sha, instrument, version, scale_ids, data, *cols = row
            if sha not in ids:
                if data:
                    destination.define(json.loads(data), sha)
                scales = str(scale_ids).split(",") if scale_ids else []
                ids[sha] = store._definition(sha, instrument, version, scales)[0]
            client, inst, rater, session, date, answers, *rest = cols
            done.read += 1
            problem = None if destination.keeps_any_id else _unkept(client, cols)
            if problem is not None:
                shown = client if len(client) <= 64 else client[:64] + "…"
                done.refused.append(f"session {session} of client {shown!r} ({inst}, {rater}): "
                                    f"{problem}")  # fmt: skip
                continue
            recorder.add_row((client, inst, rater, session, date, ids[sha], answers, *rest))
            if on_progress is not None and not done.read % 10000:
                on_progress(done.read)
        recorder.finish(keep=True)
    except BaseException:
        if not recorder.finished:
            recorder.finish(keep=False)
        raise
    done.added, done.same, done.conflicts = recorder.saved, recorder.same, recorder.conflicts
    done.source_count = source.count_sessions()
    done.destination_count = destination.count_sessions()
    return done


def _unkept(client: str, cols: list[Any]) -> str | None:
    """Why a server's history cannot keep a stored session (saved before alliance refused
    such ids), or None: its client id (a NUL byte, or too long for the key index), or a NUL
    byte in another of its texts."""
    from alliance_cli.core.contract import stored_id_problem, stored_text_problem

    problem = stored_id_problem(client)
    if problem is not None:
        return f"its client id {problem}"
    texts = (stored_text_problem(v) for v in cols if isinstance(v, str))
    problem = next((p for p in texts if p is not None), None)
    return None if problem is None else f"one of its texts {problem}"
