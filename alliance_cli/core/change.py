"""Change helpers over a client's sessions: POMP conversions and the trend of a series.

Every score is compared in POMP (percent of maximum possible, 0-100), so thresholds in item
means or sums and the client's own variability share one unit. The rules that turn a
history into concerns (drops, declines, cutoffs, gaps) are in ``core.reading``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

TREND_FLOOR_POMP = 5.0  # with no threshold, a trend must move at least half of this


def pomp_factor(low: float, high: float, items: int, metric: str) -> float:
    """POMP points per unit of a score in the given metric."""
    span = (high - low) * (items if metric == "sum" else 1)
    return 100.0 / span


def pomp_of(value: float, metric: str, low: float, high: float, items: int) -> float:
    """A scale value (a mean or a sum of ``items`` answers on low..high) in POMP."""
    floor = low * (items if metric == "sum" else 1)
    return (value - floor) * pomp_factor(low, high, items, metric)


def value_of(pomp: float, metric: str, low: float, high: float, items: int) -> float:
    """The scale value (mean or sum) a POMP stands for: ``pomp_of`` undone."""
    floor = low * (items if metric == "sum" else 1)
    return floor + pomp / pomp_factor(low, high, items, metric)


def trend(values: Sequence[float], threshold: float | None) -> str:
    """'up', 'down' or 'steady': least-squares slope over the sessions, times their span."""
    if len(values) < 2:
        return "steady"
    n = len(values)
    xs = range(n)
    mx, my = (n - 1) / 2, math.fsum(values) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, values, strict=True)) / sxx
    change = slope * (n - 1)
    limit = threshold if threshold is not None else TREND_FLOOR_POMP
    if change > limit / 2:
        return "up"
    if change < -limit / 2:
        return "down"
    return "steady"
