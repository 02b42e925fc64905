"""Pure change analysis over a client's sessions: reliable change, ruptures and repairs,
slow declines, early low alliance, and client–therapist gaps.

Every score is compared in POMP (percent of maximum possible, 0–100), so thresholds from
norms in item means or sums, and the client's own variability, share one unit. Every flag
names the rule that raised it, with its published source:

    smallest reliable change = 1.96 · √2 · SD · √(1 − r)          (Jacobson & Truax, 1991)
    rupture (k = 1 or 2)     = score ≤ mean(other sessions) − k · SD(other sessions)
                               (Strauss et al., 2006: k = 1; Stiles et al., 2004: k = 2),
                               and (our addition) at least k · SD below the previous
                               session, so a slow decline is reported as a decline
                               rather than as a rupture at its lowest point
    repair                   = a later session back within 1 SD of the pre-rupture mean
                               (the V-shape; Gumz et al., 2012)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.scorer import below_cutoff

Z_RELIABLE = 1.96
SD_FLOOR_POMP = 5.0  # a near-constant series does not turn a small wobble into a rupture
MIN_OTHER_SESSIONS = 3


@dataclass(frozen=True)
class Settings:
    """Thresholds; every one is a command-line option."""

    early_sessions: int = 3
    early_pomp: float = 50.0  # used only when the instrument has no cutoff and no bands
    gap_pomp: float = 15.0
    rupture_rules: tuple[float, ...] = (1.0, 2.0)


class Point(NamedTuple):
    """One scored session of one scale, in POMP."""

    session: int
    date: str | None
    pomp: float | None


@dataclass(frozen=True)
class ChangeFlag:
    """A flag raised by the history, with the rule that raised it."""

    code: str
    scale: str
    session: int
    rule: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        """The flag in the shape of a Score flag, plus its session."""
        return {
            "code": self.code,
            "scale": self.scale,
            "session": self.session,
            "rule": self.rule,
            "message": self.message,
        }


@dataclass(frozen=True)
class Reliability:
    """How large a change must be to be more than measurement noise, in POMP."""

    threshold: float | None
    source: str


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


def reliable_change_threshold(sd: float, reliability: float) -> float:
    """Smallest reliable change (Jacobson & Truax): 1.96 · √2 · SD · √(1 − r)."""
    return Z_RELIABLE * math.sqrt(2) * sd * math.sqrt(1 - reliability)


def reliability_for(
    norm: Any | None, scale: str, factor_by_metric: dict[str, float], values: Sequence[float]
) -> Reliability:
    """The reliable-change threshold from norms, or else from the client's own variability."""
    if norm is not None and scale in norm.scales:
        ref = norm.scales[scale]
        threshold = reliable_change_threshold(ref.sd, ref.reliability)
        return Reliability(
            threshold * factor_by_metric[norm.metric],
            f"Jacobson & Truax, SD {ref.sd:g} and r {ref.reliability:g} from {norm.sample}",
        )
    diffs = [b - a for a, b in itertools.pairwise(values)]
    if len(diffs) >= 3:
        s_diff = max(mean_sd(diffs)[1], SD_FLOOR_POMP)
        return Reliability(
            Z_RELIABLE * s_diff,
            "no norms: 1.96 × the SD of this client's own session-to-session changes",
        )
    return Reliability(None, "no norms and fewer than 4 sessions: reliable change not assessed")


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample SD (fast: the statistics module is exact but slow on many series)."""
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    return mean, math.sqrt(math.fsum([(v - mean) ** 2 for v in values]) / (n - 1))


def rupture_depth(score: float, others: Sequence[float]) -> tuple[float, float, float] | None:
    """(how many SDs below, mean of others, SD used) or None when there is too little history."""
    if len(others) < MIN_OTHER_SESSIONS:
        return None
    mean, sd = mean_sd(others)
    sd = max(sd, SD_FLOOR_POMP)
    return (mean - score) / sd, mean, sd


def _fmt(x: float) -> str:
    return f"{x:.1f}"


@dataclass
class Series:
    """One client's sessions on one instrument by one rater, per scale, in POMP."""

    scales: dict[str, list[Point]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)


def rupture_test(
    values: Sequence[float], i: int, rules: Sequence[float]
) -> tuple[list[float], float, float, float, float] | None:
    """Session i against the others: (rules fired, SDs below the others' mean, that mean,
    the SD used, SDs below the previous session); None with too little history."""
    depth = rupture_depth(values[i], [*values[:i], *values[i + 1 :]])
    if depth is None:
        return None
    sds, mean, sd = depth
    sudden = (values[i - 1] - values[i]) / sd if i else 0.0
    return [k for k in rules if sds >= k and sudden >= k], sds, mean, sd, sudden


def is_slow_decline(values: Sequence[float], threshold: float | None) -> bool:
    """First-to-latest drop beyond the threshold with no single step beyond it."""
    return (
        threshold is not None
        and len(values) >= 3
        and values[0] - values[-1] > threshold
        and all(abs(b - a) <= threshold for a, b in itertools.pairwise(values))
    )


def latest_concerns(
    values: Sequence[float], threshold: float | None, settings: Settings
) -> list[str]:
    """Codes of the concerns the latest value raises: ``analyse_scale``'s rules, applied to
    the last session only and without building messages (the caseload runs it per client)."""
    codes = []
    if threshold is not None and len(values) >= 2 and values[-2] - values[-1] > threshold:
        codes.append("reliable_drop")
    test = rupture_test(values, len(values) - 1, settings.rupture_rules) if values else None
    if test is not None and test[0]:
        codes.append(f"rupture_{max(test[0]):g}sd")
    if is_slow_decline(values, threshold):
        codes.append("slow_decline")
    return codes


def analyse_scale(
    scale: str,
    name: str,
    points: Sequence[Point],
    reliability: Reliability,
    settings: Settings,
) -> list[ChangeFlag]:
    """Reliable change, ruptures, repairs and declines on one scale."""
    flags: list[ChangeFlag] = []
    scored = [p for p in points if p.pomp is not None]
    values: list[float] = [p.pomp for p in scored]  # type: ignore[misc]
    threshold = reliability.threshold
    for (prev, cur), (a, b) in zip(
        itertools.pairwise(scored), itertools.pairwise(values), strict=True
    ):
        diff = b - a
        if threshold is not None and abs(diff) > threshold:
            up = diff > 0
            flags.append(
                ChangeFlag(
                    "reliable_gain" if up else "reliable_drop",
                    scale,
                    cur.session,
                    f"|change| {_fmt(abs(diff))} > {_fmt(threshold)} POMP ({reliability.source})",
                    f"{name} {'rose' if up else 'fell'} by {_fmt(abs(diff))} points since "
                    f"session {prev.session}: more than measurement noise.",
                )
            )
    ruptures: dict[int, tuple[float, float]] = {}
    for i, cur in enumerate(scored):
        test = rupture_test(values, i, settings.rupture_rules)
        if test is None or not test[0]:
            continue
        fired, sds, mean, sd, sudden = test
        k = max(fired)
        source = "Stiles et al., 2004" if k >= 2 else "Strauss et al., 2006"
        rules = " and ".join(f"{r:g} SD" for r in sorted(fired))
        flags.append(
            ChangeFlag(
                f"rupture_{k:g}sd",
                scale,
                cur.session,
                f"{_fmt(mean - values[i])} points below the mean of the other sessions "
                f"({_fmt(sds)} SD; rules fired: {rules}; {source}; SD {_fmt(sd)}, "
                f"floor {SD_FLOOR_POMP:g}; "
                f"{_fmt(sudden)} SD below session {scored[i - 1].session})",
                f"Possible rupture in session {cur.session}: {name} dropped to "
                f"{_fmt(values[i])} from a usual {_fmt(mean)}. Worth talking about.",
            )
        )
        ruptures[i] = (mean_sd(values[:i])[0], sd)  # i > 0: a rupture needs a previous session
    for i, (level, sd) in ruptures.items():
        for later, value in zip(scored[i + 1 :], values[i + 1 :], strict=True):
            if value >= level - sd:
                flags.append(
                    ChangeFlag(
                        "repair",
                        scale,
                        later.session,
                        f"back within 1 SD ({_fmt(sd)}) of the pre-rupture mean {_fmt(level)} "
                        "(Gumz et al., 2012)",
                        f"{name} recovered in session {later.session} after the drop in "
                        f"session {scored[i].session}.",
                    )
                )
                break
    if is_slow_decline(values, threshold):
        assert threshold is not None
        first, last = scored[0], scored[-1]
        flags.append(
            ChangeFlag(
                "slow_decline",
                scale,
                last.session,
                f"first-to-latest drop {_fmt(values[0] - values[-1])} > {_fmt(threshold)} "
                f"POMP with no single reliable step ({reliability.source})",
                f"{name} has slipped gradually from {_fmt(values[0])} (session "
                f"{first.session}) to {_fmt(values[-1])}: no step from one session to the next "
                "is beyond measurement noise, but the whole slide is.",
            )
        )
    return flags


def early_low(
    session: int,
    total_pomp: float | None,
    total_raw: dict[str, float | None],
    instrument: Any,
    settings: Settings,
) -> ChangeFlag | None:
    """A low total within the first sessions, worded as a retention risk."""
    if session > settings.early_sessions or total_pomp is None:
        return None
    rule = None
    for cut in instrument.cutoffs:
        if cut.scale != TOTAL:
            continue
        value = total_raw.get(cut.metric)
        if value is None:
            continue
        if below_cutoff(value, cut.comparison, cut.threshold):
            rule = f"total {cut.metric} {cut.comparison} {cut.threshold:g} ({cut.source})"
        break
    else:
        bands = [b for b in instrument.bands if b.scale == TOTAL]
        if bands:
            band = bands[0]
            value = total_raw.get(band.metric)
            if value is not None and value < band.levels[1].min:
                rule = f"total in the lowest band '{band.levels[0].label}' ({band.source})"
        elif total_pomp < settings.early_pomp:
            rule = (
                f"total POMP {_fmt(total_pomp)} < {settings.early_pomp:g} "
                "(alliance's default setting: the instrument has no cutoff or bands)"
            )
    if rule is None:
        return None
    return ChangeFlag(
        "early_low_alliance",
        TOTAL,
        session,
        f"session {session} of the first {settings.early_sessions}; {rule}",
        f"Low alliance early in treatment (session {session}). In substance-use treatment a "
        "weak early alliance predicts dropout: a retention risk worth acting on now.",
    )


def gaps(
    session: int,
    client_scales: dict[str, tuple[str, float | None]],
    therapist_scales: dict[str, tuple[str, float | None]],
    settings: Settings,
) -> list[ChangeFlag]:
    """Client–therapist gaps per shared subscale, in POMP points."""
    flags = []
    for sid, (name, c) in client_scales.items():
        other = therapist_scales.get(sid)
        if other is None or c is None or other[1] is None:
            continue
        t = other[1]
        if abs(c - t) >= settings.gap_pomp:
            higher = "the therapist" if t > c else "the client"
            flags.append(
                ChangeFlag(
                    "rater_gap",
                    sid,
                    session,
                    f"|client − therapist| {_fmt(abs(c - t))} ≥ {settings.gap_pomp:g} POMP",
                    f"{name}: client {_fmt(c)} vs therapist {_fmt(t)} in session {session}; "
                    f"{higher} sees it as stronger. Compare notes.",
                )
            )
    return flags


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
    limit = threshold if threshold is not None else SD_FLOOR_POMP
    if change > limit / 2:
        return "up"
    if change < -limit / 2:
        return "down"
    return "steady"
