"""Pydantic models of an instrument definition: everything a YAML file may say.

The models are pure data with validators. Loading files, YAML and line numbers live in
``catalog.py``; this module never reads a file.
"""

from __future__ import annotations

import itertools
import math
import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from alliance_cli.core.compiled import TOTAL, InstrumentViews, ScaleViews

MAX_SCALE_POINTS = 10_001  # 0-1000 in steps of 0.1; more would only exhaust memory
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)\Z")

Dimension = Literal["goal", "task", "bond", "general"]
Respondent = Literal["client", "therapist", "observer"]
MissingReason = Literal["not_applicable", "refused", "not_asked", "blank"]
Metric = Literal["mean", "sum"]
Comparison = Literal["<", "<="]
VerificationLevel = Literal["verified", "derived", "unverified", "draft"]


def _old_level(value: object) -> object:
    """Files written for alliance 0.1 said "single-source": the same as unverified now."""
    return "unverified" if value == "single-source" else value


def _as_text(value: object) -> object:
    """YAML reads ``id: 1`` as an int; item ids are text, so accept numbers as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


_TEXT_OR_NUMBER = WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "number"}]})
Text = Annotated[str, BeforeValidator(_as_text), _TEXT_OR_NUMBER]
ItemId = Annotated[
    str, BeforeValidator(_as_text), Field(min_length=1, max_length=40), _TEXT_OR_NUMBER
]


class CrossFieldProblems(ValueError):
    """Several problems found by one validator, each with its own location.

    Pydantic keeps the raised exception in the error's ``ctx``; ``catalog`` unpacks the
    list so each problem is reported at its own YAML path and line.
    """

    def __init__(self, problems: list[tuple[tuple[str | int | float, ...], str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))


def _raise_if(problems: list[tuple[tuple[str | int | float, ...], str]]) -> None:
    if problems:
        raise CrossFieldProblems(problems)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True, allow_inf_nan=False)


class Verification(_Model):
    """How sure we are of the scoring key, and on what sources that rests."""

    status: Annotated[VerificationLevel, BeforeValidator(_old_level)] = Field(
        description="verified: the official form prints the key or two or more independent "
        "sources agree; derived: follows from a verified parent key by a stated item mapping; "
        "unverified: a single source, or a key sources do not confirm; draft: no public key "
        "(never scored)"
    )
    sources: list[str] = Field(default_factory=list, description="Where the key was checked")
    note: str = Field(default="", description="What is and is not confirmed")


class Scale(_Model, ScaleViews):
    """The response scale every item shares."""

    min: float = Field(description="Lowest answer")
    max: float = Field(description="Highest answer")
    step: float = Field(default=1, gt=0, description="1 for Likert, 0.1 for visual-analogue")
    labels: dict[float, str] = Field(
        default_factory=dict,
        description="Anchor text by value; answers may be given as this text",
    )


class MissingCode(_Model):
    """A value that means "no answer", and why."""

    value: Text = Field(description="The code as it appears in the data")
    reason: MissingReason


class Item(_Model):
    """One question on the form."""

    id: ItemId = Field(description="As printed on the form, usually 1..n")
    label: str = Field(min_length=1, description="Short topic label in our own words")
    reverse: bool = Field(default=False, description="Scored as min + max - answer")
    paper_order: Literal["ascending", "descending"] = Field(
        default="ascending",
        description="The order the official paper form prints this item's choices in "
        "('descending': highest first); prompts show them so. Scoring never depends on it.",
    )
    text: str | None = Field(
        default=None, description="Official wording, only in files of users who hold it"
    )


class Subscale(_Model):
    """A group of items scored together."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="Used in column names")
    name: str
    dimension: Dimension = Field(description="Bordin's goal / task / bond, or general")
    items: list[ItemId] = Field(
        default_factory=list, description="The items scored together (none in a draft)"
    )
    size: int | None = Field(
        default=None, ge=1, description="A draft's subscale: how many items, without which"
    )
    max_missing: int = Field(default=0, ge=0, description="Missing items allowed (prorated)")


class Total(_Model):
    """Which items make up the total score and how many may be missing."""

    name: str = "Total"
    items: list[ItemId] | None = Field(default=None, description="Default: every item")
    max_missing: int = Field(default=0, ge=0)


class NormScale(_Model):
    """Reference values for one scale in one sample."""

    mean: float
    sd: float = Field(gt=0)
    reliability: float = Field(gt=0, lt=1, description="Cronbach's alpha or test-retest r")


class Norm(_Model):
    """A reference sample: z-scores, percentiles and reliable change come from it."""

    sample: str
    n: int = Field(gt=0)
    citation: str
    metric: Metric = Field(default="mean", description="Whether the values are item means or sums")
    scales: dict[str, NormScale] = Field(min_length=1, description="By subscale id or 'total'")


class BandLevel(_Model):
    """One labelled level: values at or above min (and below the next level)."""

    label: str
    min: float


class BandSet(_Model):
    """Labelled ranges for one scale."""

    scale: str
    metric: Metric = "mean"
    source: str
    levels: list[BandLevel] = Field(min_length=2)


class Cutoff(_Model):
    """A threshold below which a score is worth raising with the client."""

    scale: str
    metric: Metric = "mean"
    threshold: float
    comparison: Comparison = Field(description="'<' or '<=' the threshold raises the flag")
    label: str = Field(description="Short name of the flag")
    message: str = Field(description="One sentence a counselor reads")
    source: str


class Instrument(_Model, InstrumentViews):
    """A whole questionnaire definition."""

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="kebab-case; the file stem")
    name: str
    short_name: str | None = None
    version: Text
    respondent: Respondent
    description: str = ""
    citation: str
    licence: str = Field(description="Shown to users; say plainly what use needs permission")
    scoring_licence: str | None = Field(
        default=None,
        description="Set when the licence conditions automated scoring: what it requires, said "
        "once per run by score and batch and carried in the Score's JSON",
    )
    verification: Verification
    counterpart: str | None = Field(default=None, description="Id of the other rater's form")
    counterpart_items: dict[ItemId, ItemId] = Field(
        default_factory=dict,
        description="This form's item -> the counterpart's item on the same topic; client and "
        "therapist are then compared item by item (needed where the two keys differ)",
    )
    scale: Scale
    missing_codes: list[MissingCode] = Field(default_factory=list)
    items: list[Item] = Field(min_length=1)
    subscales: list[Subscale] = Field(default_factory=list)
    total: Total = Field(default_factory=Total)
    metric: Metric = Field(default="mean", description="The headline score")
    norms: list[Norm] = Field(default_factory=list)
    bands: list[BandSet] = Field(default_factory=list)
    cutoffs: list[Cutoff] = Field(default_factory=list)

    @field_validator("counterpart")
    @classmethod
    def _counterpart_kebab(cls, value: str | None) -> str | None:
        if value is not None and value != value.strip().lower():
            raise ValueError("counterpart must be an instrument id (lower-case kebab-case)")
        return value

    # -- cross-field rules ---------------------------------------------------------------
    @model_validator(mode="after")
    def _check(self) -> Instrument:
        problems: list[tuple[tuple[str | int | float, ...], str]] = []
        add = problems.append
        scale = self.scale
        if scale.max <= scale.min:
            add((("scale", "max"), f"max {scale.max:g} must be above min {scale.min:g}"))
        else:
            steps = (scale.max - scale.min) / scale.step
            if steps + 1 > MAX_SCALE_POINTS:
                add(
                    (
                        ("scale", "step"),
                        f"{steps + 1:.0f} answer points; at most {MAX_SCALE_POINTS:,} are allowed",
                    )
                )
            elif round(steps) < 1:
                add(
                    (
                        ("scale", "step"),
                        f"step {scale.step:g} is larger than the range {scale.min:g}-"
                        f"{scale.max:g}: a scale needs at least 2 answer points",
                    )
                )
            elif abs(steps - round(steps)) > 1e-6:
                add((("scale", "step"), f"step {scale.step:g} does not divide the range"))
            for value in scale.labels:
                if not scale.on_scale(value):
                    add(
                        (
                            ("scale", "labels", value),
                            f"anchor {value:g} is not a point of the scale",
                        )
                    )
        texts = [t.strip().lower() for t in scale.labels.values()]
        for value, text in scale.labels.items():
            if texts.count(text.strip().lower()) > 1:
                add((("scale", "labels", value), f"anchor text {text!r} is used twice"))
            if _DECIMAL_TEXT.match(text.strip()):
                add(
                    (
                        ("scale", "labels", value),
                        f"anchor text {text!r} is a number: an answer {text.strip()!r} would "
                        "score as the anchor, not as the number; use words",
                    )
                )

        ids = self.item_ids()
        known = set(ids)
        for i, item in enumerate(self.items):
            if ids.index(item.id) != i:
                add((("items", i, "id"), f"item {item.id!r} is defined twice"))
            if item.reverse and scale.max <= scale.min:
                add((("items", i, "reverse"), "a reverse key needs a scale of more than one point"))

        for i, code in enumerate(self.missing_codes):
            text = code.value.strip().lower()
            if text == "":
                add((("missing_codes", i, "value"), "blank cells are always missing; drop this"))
            elif text in texts:
                add((("missing_codes", i, "value"), f"{code.value!r} is also an anchor label"))
            else:
                try:
                    number = float(text)
                except ValueError:
                    number = None
                if number is not None and scale.max > scale.min and scale.on_scale(number):
                    add((("missing_codes", i, "value"), f"{code.value!r} is a valid answer"))

        if self.verification.status == "draft":
            for i, item in enumerate(self.items):
                if item.reverse:
                    add((("items", i, "reverse"), "a draft marks no reverse items (no key)"))
        seen_scales: set[str] = set()
        for i, sub in enumerate(self.subscales):
            if sub.id == TOTAL:
                add((("subscales", i, "id"), "'total' is reserved for the total score"))
            if sub.id in seen_scales:
                add((("subscales", i, "id"), f"subscale {sub.id!r} is defined twice"))
            seen_scales.add(sub.id)
            if self.verification.status == "draft":
                # a draft carries no key: sizes only, so no copy scores by changing one word
                if sub.items:
                    add((("subscales", i, "items"), "a draft lists no items (give size: N)"))
                if sub.size is None:
                    add((("subscales", i, "size"), "a draft's subscale gives its size"))
                continue
            if not sub.items:
                add(
                    (
                        ("subscales", i, "items"),
                        "no items: a form that is scored names each subscale's items (a draft's "
                        "size: is not a key)",
                    )
                )
                continue
            for j, item_id in enumerate(sub.items):
                if item_id not in known:
                    add((("subscales", i, "items", j), f"item {item_id!r} does not exist"))
                if sub.items.index(item_id) != j:
                    add((("subscales", i, "items", j), f"item {item_id!r} appears twice"))
            if sub.max_missing >= len(sub.items):
                add(
                    (
                        ("subscales", i, "max_missing"),
                        f"{sub.max_missing} missing would leave no item of {len(sub.items)}",
                    )
                )

        total_items = self.total_items()
        if self.total.items is not None:
            for j, item_id in enumerate(self.total.items):
                if item_id not in known:
                    add((("total", "items", j), f"item {item_id!r} does not exist"))
            if len(set(self.total.items)) != len(self.total.items):
                add((("total", "items"), "an item appears twice"))
        if self.total.max_missing >= len(total_items):
            add((("total", "max_missing"), "would allow a total with no item answered"))

        scales = {*seen_scales, TOTAL}
        ranges_ok = scale.max > scale.min
        for i, norm in enumerate(self.norms):
            for name, values in norm.scales.items():
                if name not in scales:
                    add(
                        (("norms", i, "scales", name), f"no scale {name!r} (have {sorted(scales)})")
                    )
                elif ranges_ok:
                    low, high = self.metric_range(name, norm.metric)
                    if not low <= values.mean <= high:
                        add(
                            (
                                ("norms", i, "scales", name, "mean"),
                                f"mean {values.mean:g} is outside {low:g}-{high:g}",
                            )
                        )
        for i, band in enumerate(self.bands):
            for j, (a, b) in enumerate(itertools.pairwise(band.levels), start=1):
                if b.min <= a.min:
                    add(
                        (
                            ("bands", i, "levels", j),
                            f"min {b.min:g} is not above the previous level's {a.min:g}",
                        )
                    )
            if band.scale not in scales:
                add((("bands", i, "scale"), f"no scale {band.scale!r}"))
            elif ranges_ok:
                low, high = self.metric_range(band.scale, band.metric)
                for j, level in enumerate(band.levels):
                    if not low <= level.min <= high:
                        add(
                            (
                                ("bands", i, "levels", j, "min"),
                                f"{level.min:g} is outside the score range {low:g}-{high:g}",
                            )
                        )
        for i, cut in enumerate(self.cutoffs):
            if cut.scale not in scales:
                add((("cutoffs", i, "scale"), f"no scale {cut.scale!r}"))
            elif ranges_ok:
                low, high = self.metric_range(cut.scale, cut.metric)
                if not low < cut.threshold <= high or math.isnan(cut.threshold):
                    add(
                        (
                            ("cutoffs", i, "threshold"),
                            f"{cut.threshold:g} is outside the score range {low:g}-{high:g}",
                        )
                    )
        for mine in self.counterpart_items:
            if mine not in known:
                add((("counterpart_items", mine), f"item {mine!r} does not exist"))
        if self.counterpart_items and not self.counterpart:
            add((("counterpart_items",), "topic pairs need a counterpart form"))
        if self.counterpart == self.id:
            add((("counterpart",), "an instrument cannot be its own counterpart"))
        _raise_if(problems)
        return self
