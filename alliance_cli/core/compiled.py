"""The compiled instrument: frozen, typed records that a Scorer runs on.

The two classes with behaviour (``CompiledInstrument``, ``CompiledScale``) are frozen
dataclasses; the plain records inside them are typed ``NamedTuple``s, which cost a tenth of
a dataclass to define (this module is imported on every ``alliance score``).

Built from the validated pydantic model's JSON data (``CompiledInstrument.from_data``) or read
back from the compiled cache, so ``score`` and ``batch`` on a cache hit load neither YAML nor
pydantic. ``from_data`` checks the shape of everything it reads: a malformed cache entry
raises ``ValueError`` and is rebuilt from the YAML, never trusted.

The derived views (``ScaleViews``, ``InstrumentViews``) are shared with the pydantic models
in ``definition.py``, so validation and scoring compute ranges and item lists one way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

TOTAL = "total"
DIMENSION_ORDER = ("goal", "task", "bond", "general")  # the order dimensions are shown in
_EPS = 1e-9

Metric = Literal["mean", "sum"]


class ScaleViews:
    """Derived views of a response scale (min, max, step)."""

    if TYPE_CHECKING:  # fields of the classes that use these views (no pydantic fields here)
        min: float
        max: float
        step: float

    def on_scale(self, value: float) -> bool:
        """True when value lies inside the range and on a step."""
        if value < self.min - _EPS or value > self.max + _EPS:
            return False
        steps = (value - self.min) / self.step
        return abs(steps - round(steps)) < 1e-6

    def point_count(self) -> int:
        """How many answers the scale allows."""
        return round((self.max - self.min) / self.step) + 1

    def points(self) -> list[float]:
        """Every allowed answer, lowest first."""
        return [round(self.min + i * self.step, 10) for i in range(self.point_count())]


class InstrumentViews:
    """Derived views of an instrument definition."""

    if TYPE_CHECKING:
        items: Sequence[Any]
        subscales: Sequence[Any]
        total: Any
        scale: Any

    def item_ids(self) -> list[str]:
        """Item ids in form order."""
        return [str(item.id) for item in self.items]

    def total_items(self) -> list[str]:
        """Items in the total score."""
        return list(self.total.items) if self.total.items is not None else self.item_ids()

    def scale_ids(self) -> list[str]:
        """Subscale ids followed by 'total'."""
        return [str(s.id) for s in self.subscales] + [TOTAL]

    def scale_item_count(self, scale_id: str) -> int:
        """How many items a subscale (or the total) has (KeyError for an unknown scale)."""
        if scale_id == TOTAL:
            return len(self.total_items())
        for sub in self.subscales:
            if sub.id == scale_id:
                return len(sub.items)
        raise KeyError(scale_id)

    def metric_range(self, scale_id: str, metric: str) -> tuple[float, float]:
        """Lowest and highest possible score of a scale in a metric."""
        low, high = float(self.scale.min), float(self.scale.max)
        if metric == "mean":
            return low, high
        n = self.scale_item_count(scale_id)
        return low * n, high * n

    def dimensions(self) -> list[str]:
        """Bordin dimensions covered by the subscales, in goal / task / bond order."""
        have = {s.dimension for s in self.subscales}
        return [d for d in DIMENSION_ORDER if d in have]


# -- reading JSON data with its shape checked ------------------------------------------------
def _map(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object")
    return cast(Mapping[str, Any], data)


def _list(data: object, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise ValueError(f"{where}: expected a list")
    return data


def _str(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise ValueError(f"{where}: expected text")
    return data


def _opt_str(data: object, where: str) -> str | None:
    return None if data is None else _str(data, where)


def _num(data: object, where: str) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
        raise ValueError(f"{where}: expected a finite number")
    return float(data)


def _int(data: object, where: str) -> int:
    if isinstance(data, bool) or not isinstance(data, int):
        raise ValueError(f"{where}: expected a whole number")
    return data


def _metric(data: object, where: str) -> Metric:
    if data == "mean":
        return "mean"
    if data == "sum":
        return "sum"
    raise ValueError(f"{where}: expected 'mean' or 'sum'")


class Verification(NamedTuple):
    """How sure we are of the scoring key."""

    status: str
    sources: tuple[str, ...]
    note: str

    @classmethod
    def from_data(cls, data: object) -> Verification:
        """Read and check JSON data."""
        d = _map(data, "verification")
        if d.get("status") not in ("verified", "derived", "unverified", "draft"):
            raise ValueError("verification.status: unknown level")
        sources = tuple(_str(s, "verification.sources") for s in _list(d["sources"], "sources"))
        return cls(str(d["status"]), sources, _str(d.get("note", ""), "verification.note"))


@dataclass(frozen=True)
class CompiledScale(ScaleViews):
    """The response scale every item shares."""

    min: float
    max: float
    step: float
    labels: Mapping[float, str]

    @classmethod
    def from_data(cls, data: object) -> CompiledScale:
        """Read and check JSON data (anchor keys arrive as text)."""
        d = _map(data, "scale")
        low, high, step = _num(d["min"], "min"), _num(d["max"], "max"), _num(d["step"], "step")
        if not high > low or not step > 0:
            raise ValueError("scale: max must be above min and step above 0")
        labels = {
            _num(float(k), "scale.labels"): _str(v, "scale.labels")
            for k, v in _map(d.get("labels", {}), "scale.labels").items()
        }
        return cls(low, high, step, labels)


class MissingCode(NamedTuple):
    """A value that means "no answer", and why."""

    value: str
    reason: str


class Item(NamedTuple):
    """One question on the form."""

    id: str
    label: str
    reverse: bool
    text: str | None
    paper_order: str = "ascending"  # "descending": the paper form prints choices high to low


class Subscale(NamedTuple):
    """A group of items scored together."""

    id: str
    name: str
    dimension: str
    items: tuple[str, ...]
    max_missing: int


class Total(NamedTuple):
    """Which items make up the total and how many may be missing."""

    name: str
    items: tuple[str, ...] | None
    max_missing: int


class NormScale(NamedTuple):
    """Reference values for one scale in one sample."""

    mean: float
    sd: float
    reliability: float


class Norm(NamedTuple):
    """A reference sample."""

    sample: str
    n: int
    citation: str
    metric: Metric
    scales: Mapping[str, NormScale]


class BandLevel(NamedTuple):
    """One labelled level of a band set."""

    label: str
    min: float


class BandSet(NamedTuple):
    """Labelled ranges for one scale."""

    scale: str
    metric: Metric
    source: str
    levels: tuple[BandLevel, ...]


class Cutoff(NamedTuple):
    """A threshold below which a score is worth raising."""

    scale: str
    metric: Metric
    threshold: float
    comparison: str
    label: str
    message: str
    source: str


def _items(data: object) -> tuple[Item, ...]:
    out = []
    for i, raw in enumerate(_list(data, "items")):
        d = _map(raw, f"items[{i}]")
        reverse = d.get("reverse", False)
        if not isinstance(reverse, bool):
            raise ValueError(f"items[{i}].reverse: expected true or false")
        order = d.get("paper_order", "ascending")
        if order not in ("ascending", "descending"):
            raise ValueError(f"items[{i}].paper_order: expected ascending or descending")
        out.append(
            Item(
                _str(d["id"], f"items[{i}].id"),
                _str(d["label"], f"items[{i}].label"),
                reverse,
                _opt_str(d.get("text"), f"items[{i}].text"),
                order,
            )
        )
    if not out:
        raise ValueError("items: none")
    return tuple(out)


def _ids(data: object, where: str) -> tuple[str, ...]:
    return tuple(_str(x, where) for x in _list(data, where))


def _subscales(data: object) -> tuple[Subscale, ...]:
    out = []
    for i, raw in enumerate(_list(data, "subscales")):
        d = _map(raw, f"subscales[{i}]")
        out.append(
            Subscale(
                _str(d["id"], "subscale id"),
                _str(d["name"], "subscale name"),
                _str(d["dimension"], "subscale dimension"),
                _ids(d.get("items") or [], f"subscales[{i}].items"),
                _int(d["max_missing"], "max_missing"),
            )
        )
    return tuple(out)


def _norms(data: object) -> tuple[Norm, ...]:
    out = []
    for raw in _list(data, "norms"):
        d = _map(raw, "norm")
        scales = {
            _str(k, "norm scale"): NormScale(
                _num(_map(v, "norm scale")["mean"], "mean"),
                _num(_map(v, "norm scale")["sd"], "sd"),
                _num(_map(v, "norm scale")["reliability"], "reliability"),
            )
            for k, v in _map(d["scales"], "norm scales").items()
        }
        out.append(
            Norm(
                _str(d["sample"], "sample"),
                _int(d["n"], "n"),
                _str(d["citation"], "citation"),
                _metric(d["metric"], "metric"),
                scales,
            )
        )
    return tuple(out)


def _bands(data: object) -> tuple[BandSet, ...]:
    out = []
    for raw in _list(data, "bands"):
        d = _map(raw, "band")
        levels = tuple(
            BandLevel(_str(_map(lv, "level")["label"], "label"), _num(lv["min"], "level min"))
            for lv in _list(d["levels"], "levels")
        )
        out.append(
            BandSet(
                _str(d["scale"], "band scale"),
                _metric(d["metric"], "band metric"),
                _str(d["source"], "band source"),
                levels,
            )
        )
    return tuple(out)


def _cutoffs(data: object) -> tuple[Cutoff, ...]:
    out = []
    for raw in _list(data, "cutoffs"):
        d = _map(raw, "cutoff")
        comparison = d["comparison"]
        if comparison not in ("<", "<="):
            raise ValueError("cutoff comparison: expected '<' or '<='")
        out.append(
            Cutoff(
                _str(d["scale"], "cutoff scale"),
                _metric(d["metric"], "cutoff metric"),
                _num(d["threshold"], "threshold"),
                str(comparison),
                _str(d["label"], "cutoff label"),
                _str(d["message"], "cutoff message"),
                _str(d["source"], "cutoff source"),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class CompiledInstrument(InstrumentViews):
    """A validated instrument definition in the typed, frozen form the Scorer runs on."""

    id: str
    name: str
    short_name: str | None
    version: str
    respondent: str
    description: str
    citation: str
    licence: str
    verification: Verification
    counterpart: str | None
    scale: CompiledScale
    missing_codes: tuple[MissingCode, ...]
    items: tuple[Item, ...]
    subscales: tuple[Subscale, ...]
    total: Total
    metric: Metric
    norms: tuple[Norm, ...]
    bands: tuple[BandSet, ...]
    cutoffs: tuple[Cutoff, ...]
    data: Mapping[str, Any]  # the validated definition as JSON data, as the model dumped it
    scoring_licence: str | None = None  # what a licence that conditions automated scoring asks

    @classmethod
    def from_data(cls, data: object) -> CompiledInstrument:
        """Build from the validated model's JSON data; ValueError or KeyError if malformed."""
        d = _map(data, "instrument")
        total = _map(d["total"], "total")
        total_items = total.get("items")
        missing = tuple(
            MissingCode(_str(_map(m, "missing code")["value"], "value"), _str(m["reason"], "r"))
            for m in _list(d.get("missing_codes", []), "missing_codes")
        )
        inst = cls(
            id=_str(d["id"], "id"),
            name=_str(d["name"], "name"),
            short_name=_opt_str(d.get("short_name"), "short_name"),
            version=_str(d["version"], "version"),
            respondent=_str(d["respondent"], "respondent"),
            description=_str(d.get("description", ""), "description"),
            citation=_str(d["citation"], "citation"),
            licence=_str(d["licence"], "licence"),
            scoring_licence=_opt_str(d.get("scoring_licence"), "scoring_licence"),
            verification=Verification.from_data(d["verification"]),
            counterpart=_opt_str(d.get("counterpart"), "counterpart"),
            scale=CompiledScale.from_data(d["scale"]),
            missing_codes=missing,
            items=_items(d["items"]),
            subscales=_subscales(d.get("subscales", [])),
            total=Total(
                _str(total.get("name", "Total"), "total.name"),
                None if total_items is None else _ids(total_items, "total.items"),
                _int(total["max_missing"], "total.max_missing"),
            ),
            metric=_metric(d["metric"], "metric"),
            norms=_norms(d.get("norms", [])),
            bands=_bands(d.get("bands", [])),
            cutoffs=_cutoffs(d.get("cutoffs", [])),
            data=d,
        )
        inst._check_references()
        return inst

    def _check_references(self) -> None:
        """Every item a scale names exists (a tampered entry must not index past the end)."""
        known = set(self.item_ids())
        if len(known) != len(self.items):
            raise ValueError("items: an id twice")
        draft = self.verification.status == "draft"
        for sub in self.subscales:  # (a draft's subscales name no items: it carries no key)
            if not set(sub.items) <= known or (not sub.items and not draft):
                raise ValueError(f"subscale {sub.id}: unknown items")
        if self.total.items is not None and not set(self.total.items) <= known:
            raise ValueError("total: unknown items")

    def to_data(self) -> dict[str, Any]:
        """The validated definition as JSON data (what ``instruments show -f json`` prints)."""
        return dict(self.data)
