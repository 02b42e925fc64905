"""The shape of an instrument without pydantic: derived views shared by the validated
models (``instrument.py``) and the plain form read back from the compiled cache.

``score`` and ``batch`` run on the plain form, so a cache hit loads neither YAML nor
pydantic. The plain form is the validated model's ``model_dump(mode="json")``, rebuilt
into light objects with the same attribute names.
"""

from __future__ import annotations

from typing import Any

TOTAL = "total"
_EPS = 1e-9


class ScaleViews:
    """Derived views of a response scale (min, max, step, labels)."""

    # No annotations here: pydantic models inherit these methods, not fields.

    def on_scale(self, value: float) -> bool:
        """True when value lies inside the range and on a step."""
        if value < self.min - _EPS or value > self.max + _EPS:
            return False
        steps = (value - self.min) / self.step
        return abs(steps - round(steps)) < 1e-6

    def points(self) -> list[float]:
        """Every allowed answer, lowest first."""
        n = round((self.max - self.min) / self.step)
        return [round(self.min + i * self.step, 10) for i in range(n + 1)]


class InstrumentViews:
    """Derived views of an instrument definition."""

    def item_ids(self) -> list[str]:
        """Item ids in form order."""
        return [item.id for item in self.items]

    def total_items(self) -> list[str]:
        """Items in the total score."""
        return list(self.total.items) if self.total.items is not None else self.item_ids()

    def scale_ids(self) -> list[str]:
        """Subscale ids followed by 'total'."""
        return [s.id for s in self.subscales] + [TOTAL]

    def scale_item_count(self, scale_id: str) -> int:
        """How many items a subscale (or the total) has."""
        if scale_id == TOTAL:
            return len(self.total_items())
        return next(len(s.items) for s in self.subscales if s.id == scale_id)

    def metric_range(self, scale_id: str, metric: str) -> tuple[float, float]:
        """Lowest and highest possible score of a scale in a metric."""
        if metric == "mean":
            return self.scale.min, self.scale.max
        n = self.scale_item_count(scale_id)
        return self.scale.min * n, self.scale.max * n

    def dimensions(self) -> list[str]:
        """Bordin dimensions covered by the subscales, in goal / task / bond order."""
        have = {s.dimension for s in self.subscales}
        return [d for d in ("goal", "task", "bond", "general") if d in have]


class Node:
    """Attribute access over one mapping of the plain form."""

    def __init__(self, data: dict[str, Any]) -> None:
        for key, value in data.items():
            setattr(self, key, _wrap(value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({vars(self)!r})"


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Node(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class PlainScale(Node, ScaleViews):
    """A response scale in plain form."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: v for k, v in data.items() if k != "labels"})
        self.labels = {float(k): v for k, v in data.get("labels", {}).items()}


class PlainInstrument(Node, InstrumentViews):
    """A validated instrument in plain form (what the compiled cache holds)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: v for k, v in data.items() if k not in ("scale", "norms")})
        self.scale = PlainScale(data["scale"])
        self.norms = [_Norm(n) for n in data.get("norms", [])]
        self._data = data

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        """The validated definition as JSON data (the same as the pydantic model's dump)."""
        return self._data


class _Norm(Node):
    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__({k: v for k, v in data.items() if k != "scales"})
        self.scales = {k: Node(v) for k, v in data["scales"].items()}
