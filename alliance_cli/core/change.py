"""Change helpers over a client's sessions: POMP conversions (the trend of a series is the
reading's, ``core.reading.series_trend``).

Every score is compared in POMP (percent of maximum possible, 0-100), so thresholds in item
means or sums and the client's own variability share one unit. The rules that turn a
history into concerns (drops, declines, cutoffs, gaps) are in ``core.reading``.
"""

from __future__ import annotations


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
