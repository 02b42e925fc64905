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
