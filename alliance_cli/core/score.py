"""The Score: the public, versioned JSON contract of one scored response set (pydantic).

The scoring engine produces plain data (``Scorer.score_dict``); these models validate and
document it, and give ``alliance score``'s table its typed view.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from alliance_cli.core.contract import SCHEMA_VERSION


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)


class InstrumentRef(_Out):
    """Exactly which definition produced a score."""

    id: str
    name: str
    version: str
    sha256: str = Field(description="SHA-256 of the definition file's bytes")
    verification: str
    scoring_licence: str | None = Field(
        default=None,
        description="Present when the instrument's licence conditions automated scoring",
    )


class Respondent(_Out):
    """Who answered, and when, where known."""

    client_id: str | None = None
    session: int | None = None
    date: str | None = Field(default=None, description="ISO 8601 date")
    rater: str | None = None


class ScaleScore(_Out):
    """One subscale or the total."""

    name: str
    dimension: str
    mean: float | None
    sum: float | None = Field(description="Prorated when items are missing: mean x items")
    answered: int
    items: int
    prorated: bool
    pomp: float | None = Field(description="Percent of maximum possible, 0-100")
    z: float | None = None
    percentile: float | None = Field(default=None, description="Normal approximation")
    band: str | None = None
    missing_reason: str | None = None


class Flag(_Out):
    """Something a counselor should see, with the rule that raised it."""

    code: str
    scale: str
    rule: str
    message: str


class AnswerIssue(_Out):
    """A problem with one answer that did not stop scoring."""

    item: str
    value: str | None
    problem: str
    treated_as: str = "missing"


class Score(_Out):
    """The scored result of one response set. Its JSON is a public, versioned contract."""

    schema_version: int = SCHEMA_VERSION
    instrument: InstrumentRef
    respondent: Respondent
    metric: str
    scales: dict[str, ScaleScore]
    flags: list[Flag] = Field(default_factory=list)
    issues: list[AnswerIssue] = Field(default_factory=list)
    answers: dict[str, float | None] = Field(description="Raw answers before reverse keying")
