"""One reading of a client: every concern their whole history raises, said one way.

Every view that speaks of signals (the box after a save, ``history``, ``clients``, both
HTML reports, the summary of ``batch --save``) renders what :func:`read_client` returns
and nothing else. The function is pure: it takes one client's series (every instrument,
rater and scale, as POMP values per session) and returns concerns. Each concern is one
episode: it has a kind, its scales, the session it began, a status (open, or resolved at a
session), a severity (act / watch / note), one plain sentence, the question to ask, and
the evidence (each rule that fired, with its figures and source).

The rules (the same for every instrument; their parameters come from the instrument file):

``drop`` (a sudden fall, kept open until it recovers)
    A session more than the reliable-change threshold *T* below the scale's usual level
    (the mean of up to 4 earlier sessions outside a drop) starts a drop. With cited norms
    in the file, ``T = 1.96 · √2 · SD · √(1 − r)`` (Jacobson & Truax, 1991). Without them,
    ``T`` comes from this client's *earlier* session-to-session changes only (never the
    change being tested), from the fourth session on: ``T = z · √2 · SEM``, the SEM from
    the item-level spread of the earlier changes pooled over the form's subscales
    (``Noise``; a change into, within or out of a drop counts at most as its threshold, so
    one rupture does not raise the bar for the next), and z the Bonferroni z for 5 % over
    the form's scales (on a form of one scale, Student's t for 2.5 % with the changes behind
    the noise as degrees of freedom, at least 6); it is said as "larger than this client's
    usual session-to-session change". ``T`` is never below the change of one item by one
    unit of its scale (one step; one point on a 0-10 line), so one item moving one step
    never raises a concern on its own. The rupture rules grade a drop: 1 SD (Strauss et
    al., 2006) and 2 SD (Stiles et al., 2004) below the mean of the earlier sessions
    outside a drop, their SD floored at one unit; a 2 SD rupture is *act*, and so is a fall
    of every scale of the form at once; else *watch*. On their own they raise nothing: on a
    steady client any small move is "many SDs". The drop is repaired (resolved) by the
    first later session back within ``T / 2`` of the level it fell from (a return to the
    earlier level; Gumz et al., 2012).
``decline`` (a slow slide)
    From the sixth session on: the mean of the latest 3 sessions is more than ``T`` below
    the mean of the first 3 (no single step needs to be large). Open while that holds.
``low`` (a cutoff)
    A session at or beyond the instrument's cutoff (e.g. SRS total at or below 36). Beyond
    it is *act*; exactly at the cutoff is *watch*. Open until a session is above it. In
    the first sessions the sentence adds that a weak early alliance predicts dropout.
``early_low`` (an instrument without a cutoff)
    In the first ``early_sessions`` sessions, a total in the lowest band or, with no bands,
    below ``early_pomp`` POMP (alliance's default, said as such). Open until a session is
    above it. A weak early alliance predicts dropout, most strongly shown in substance-use
    treatment (Horvath et al., 2011; Meier et al., 2005).
``gap`` (client and therapist)
    In a session rated on both forms: the client's and the therapist's answers differ on
    matched content (item by item through the topic pairs the therapist form declares where
    the two keys differ, else scale by scale) by at least ``gap_pomp`` POMP (alliance's
    default, 15) and by more than the error of the comparison: t · √((σc² + σt²) / k), each
    rater's item-level SD from their own earlier changes (``Noise``), k items a side, t
    Student's for 2.5 % over the form's scales (half the 5 % a stable client's reading may
    raise), with Welch–Satterthwaite's degrees of freedom; so from the fourth session of
    each form on. Open while the latest shared session shows it.
``incomplete``
    A session whose form left a scale unscored: a note, resolved by a complete session.
``not_seen``
    The latest session is more than ``not_seen_days`` days ago (a note; needs today's date).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any, Literal, NamedTuple

from alliance_cli.core import change
from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.words import counted

Severity = Literal["act", "watch", "note"]
SEVERITY_ORDER: dict[str, int] = {"act": 0, "watch": 1, "note": 2}
Z_RELIABLE = 1.96
MIN_EARLIER_CHANGES = 2  # changes of a scale before a session: from its fourth session on
INFINITE_SESSION = 1 << 62  # after every session (an open concern's end)
BASELINE_SESSIONS = 4  # the usual level: the mean of up to this many earlier sessions
DECLINE_WINDOW = 3  # a decline compares the first and the latest this many sessions
FUTURE_GRACE_DAYS = 1  # a latest session dated further ahead of today is noted (a typo)
JT_SOURCE = "Jacobson & Truax, 1991"
STRAUSS = "Strauss et al., 2006"
STILES = "Stiles et al., 2004"
GUMZ = "Gumz et al., 2012"
EARLY_SOURCE = (
    "a weak early alliance predicts dropout (Sharf, Primavera & Diener, 2010, meta-analysis); "
    "the seed finding is in substance-use treatment (Meier, Barrowclough & Donmall, 2005)"
)
DEFAULT = "alliance's default"


@dataclass(frozen=True)
class Settings:
    """The thresholds that are settings, not sources (each a command-line option)."""

    early_sessions: int = 3
    early_pomp: float = 50.0  # only when the instrument has no cutoff and no bands
    gap_pomp: float = 15.0
    not_seen_days: int = 28

    def of_the_reading(self) -> Settings:
        """These settings but those said only as of today (the not-seen note, which a
        reading kept without today's date never holds): what a kept reading depends on."""
        return replace(self, not_seen_days=Settings.not_seen_days)


def series_label(instrument: str, rater: str) -> str:
    """``wai-sr``, or ``wai-sr-t, therapist`` for another rater than the client."""
    return instrument if rater == "client" else f"{instrument}, {rater}"


@dataclass(frozen=True)
class Cutoff:
    """An instrument's cutoff on one scale, in its own metric and in POMP."""

    threshold: float
    comparison: str  # "<" or "<="
    metric: str  # "mean" or "sum"
    scale: tuple[float, float, int]  # (lowest answer, highest answer, items of the scale)
    message: str  # the instrument's own sentence: the question to ask
    source: str

    def value(self, pomp: float) -> float:
        """The scale value (mean or sum) a POMP stands for, to 6 decimals."""
        return round(change.value_of(pomp, self.metric, *self.scale), 6)

    def words(self) -> str:
        """``at or below 36`` / ``below 3``: the rule as it is applied."""
        return f"{'at or below' if self.comparison == '<=' else 'below'} {self.threshold:g}"

    def grade(self, pomp: float) -> Severity | None:
        """act beyond the cutoff, watch exactly at it, None above it."""
        value = self.value(pomp)
        if value < self.threshold:
            return "act"
        if self.comparison == "<=" and value == self.threshold:
            return "watch"
        return None


@dataclass(frozen=True)
class ScaleSpec:
    """What the rules need of one scale, taken from the instrument file."""

    name: str
    unit: float  # POMP of one item moving one unit: the smallest threshold
    items: int = 1  # how many items the scale has
    norm: tuple[float, str] | None = None  # (Jacobson–Truax threshold in POMP, its source)
    cutoff: Cutoff | None = None
    low_band: tuple[float, str, str] | None = None  # (POMP the lowest band ends, label, source)


@dataclass(frozen=True)
class SeriesSpec:
    """One instrument as a rater's form: its scales, items and how it meets its counterpart."""

    instrument: str
    rater: str
    short_name: str
    scales: dict[str, ScaleSpec]
    items: tuple[str, ...] = ()  # item ids in answer order
    reverse: frozenset[str] = frozenset()
    scale_range: tuple[float, float] = (0.0, 1.0)
    item_scales: dict[str, str] = field(default_factory=dict)  # item -> subscale id
    counterpart: str | None = None
    pairs: dict[str, str] = field(default_factory=dict)  # this form's item -> counterpart's

    @property
    def label(self) -> str:
        """How concerns name the series (``series_label``)."""
        return series_label(self.instrument, self.rater)

    def item_pomps(self, answers: Sequence[float | None]) -> dict[str, float]:
        """Each answered item as POMP of its scale, reverse keys applied."""
        low, high = self.scale_range
        out = {}
        for item, value in zip(self.items, answers, strict=False):
            if value is None or high <= low:
                continue
            keyed = low + high - value if item in self.reverse else value
            out[item] = (keyed - low) / (high - low) * 100
        return out


@dataclass(frozen=True)
class Visit:
    """One stored session of one series: POMP per scale (None: not scored)."""

    session: int
    date: str | None
    pomps: dict[str, float | None]
    counselor: str | None = None
    answers: tuple[float | None, ...] = ()


@dataclass(frozen=True)
class SeriesData:
    """One series (instrument and rater) of a client, its sessions in session order."""

    spec: SeriesSpec
    visits: list[Visit]


@dataclass(frozen=True)
class Evidence:
    """One rule that fired, with its figures and its source."""

    rule: str
    figures: str
    source: str

    def as_dict(self) -> dict[str, str]:
        """As JSON data."""
        return {"rule": self.rule, "figures": self.figures, "source": self.source}


@dataclass(frozen=True)
class Concern:
    """One episode worth a counselor's attention."""

    kind: str
    series: str  # SeriesSpec.label
    scales: tuple[str, ...]  # scale ids
    scale_names: tuple[str, ...]
    began: int
    resolved: int | None
    severity: Severity
    sentence: str
    question: str
    evidence: tuple[Evidence, ...] = ()

    @property
    def status(self) -> str:
        """``open`` or ``resolved at N``."""
        return "open" if self.resolved is None else f"resolved at {self.resolved}"

    @property
    def is_open(self) -> bool:
        """Whether no later session has resolved it."""
        return self.resolved is None

    def as_dict(self) -> dict[str, Any]:
        """As JSON data (every format that lists concerns)."""
        return {
            "kind": self.kind,
            "series": self.series,
            "scales": list(self.scales),
            "scale_names": list(self.scale_names),
            "began": self.began,
            "status": "open" if self.resolved is None else "resolved",
            "resolved": self.resolved,
            "severity": self.severity,
            "sentence": self.sentence,
            "question": self.question,
            "evidence": [e.as_dict() for e in self.evidence],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Concern:
        """The concern ``as_dict`` wrote."""
        return cls(
            data["kind"],
            data["series"],
            tuple(data["scales"]),
            tuple(data["scale_names"]),
            int(data["began"]),
            data["resolved"],
            data["severity"],
            data["sentence"],
            data["question"],
            tuple(Evidence(**e) for e in data.get("evidence", [])),
        )


@dataclass(frozen=True)
class Reading:
    """Every concern of one client, the open ones first (most severe, most recent)."""

    client_id: str
    concerns: list[Concern]
    counselor: str | None = None  # of the latest session
    last_date: str | None = None
    days_since: int | None = None
    # the therapist series compared with each client series (gaps are the client series'
    # concerns, and are said at the therapist's sessions too)
    compared: Mapping[str, str] = field(default_factory=dict)
    # each series' trend of the total ("up", "down" or "steady": ``series_trend``)
    trends: Mapping[str, str] = field(default_factory=dict)
    # what each series' next session is measured by (its noise's walk, read once)
    following: Mapping[str, NextSession] = field(default_factory=dict)

    @property
    def open(self) -> list[Concern]:
        """The concerns no later session has resolved, in order of attention."""
        return [c for c in self.concerns if c.is_open]

    def said_at(self, series: str, session: int) -> list[Concern]:
        """What the reading says at a session of a series: the concerns open there (that
        began there or stayed from before), and those this session resolved. A gap between
        client and therapist is said at the sessions of both forms (the therapist's form,
        often saved last, is the one that opens it)."""
        return self.said_at_each(series, (session,))[session]

    def said_at_each(self, series: str, sessions: Iterable[int]) -> dict[int, list[Concern]]:
        """``said_at`` of many sessions of one series (a batch's), its concerns found once."""
        compared = self.compared
        mine = [
            (c, c.began, INFINITE_SESSION if c.resolved is None else c.resolved)
            for c in self.concerns
            if c.series == series or (c.kind == "gap" and compared.get(c.series) == series)
        ]
        return {s: [c for c, began, last in mine if began <= s <= last] for s in sessions}


# -- the rules -----------------------------------------------------------------------------
def _fmt(x: float) -> str:
    return f"{x:.0f}"


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _sd(values: Sequence[float]) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    m = _mean(values)
    return math.sqrt(math.fsum([(v - m) ** 2 for v in values]) / (n - 1))


@dataclass
class _Episode:
    kind: str
    scale: str
    began: int
    resolved: int | None
    severity: Severity
    evidence: list[Evidence]
    figures: tuple[float, float] = (0.0, 0.0)  # (level before, value at onset)
    own: bool = False  # the threshold is the client's own usual change


class NextSession(NamedTuple):
    """What a series' next session is measured against, per scale (POMP)."""

    thresholds: dict[str, float | None]  # the drop threshold it meets (None: too early)
    # the usual level ± that threshold (below it, a drop begins); while a drop is open, the
    # level it fell from ± half its threshold (back inside, it is repaired); None: too early
    bands: dict[str, tuple[float, float] | None]


@dataclass
class _Drop:
    """A drop the noise's walk found on one scale (``Noise.drops``)."""

    onset: int  # the visit it began at (an index into the series' visits)
    level: float  # the usual level it fell from
    base: int  # the sessions behind that level
    earlier: tuple[float, ...]  # the scale's earlier sessions outside drops (rupture rules)
    threshold: float  # the threshold it was tested against: its repair is within half of it
    resolved: int | None = None  # the visit that repaired it
    # the most a change into, within or out of it counts in the noise (None: no cap)
    cap: float | None = None


class _ScaleWalk:
    """One scale's state in the noise's walk."""

    __slots__ = ("cap", "drop", "last", "outside", "seen", "thresholds")

    def __init__(self) -> None:
        self.seen = 0  # scored sessions so far
        self.outside: list[float] = []  # the sessions outside a drop: the usual
        self.drop: _Drop | None = None  # the drop open now
        self.last: float | None = None  # the latest session's POMP
        self.cap: float | None = None  # the latest session was in a drop: that drop's cap
        self.thresholds: list[float | None] = []  # the threshold at each scored session


class Noise:
    """The client's own item-level variability on one form, from earlier changes only, and
    the drops found with it (both walked session by session, as each was the latest).

    Each change of a scale with k items, Δ POMP between two consecutive sessions, speaks of
    the item-level noise as Δ · √k / √2 (a scale's error shrinks with √k). Pooled over the
    form's subscales (the total, when there are none), as a root mean square, this is one
    estimate with many changes behind it, where each scale alone would have few. A change
    between two answers at the top of the scale is left out: the ceiling cut it off, so its
    zero says nothing of the noise (a client at 10 on a 0-10 line is not noiseless).

    A drop does not raise the bar for the next one. The sessions inside a drop (from its
    onset until the session that repairs it) are left out of the usual level later drops
    are measured from, and a change into, within or out of a drop enters the noise at most
    as large as the drop's threshold (winsorised), unless that threshold was only the
    one-unit floor from 1 to 5 changes (a form whose first answers were all alike: capped
    there, its noise could not learn, and a stable simulated HAQ-II client got drop after
    drop). With no change measured at all (every answer at the top) the cap holds: a client
    at the top who collapses and recovers would otherwise have a threshold of 220 POMP.
    With the whole rupture in both, a second rupture of 30 POMP after a repaired one was
    named at its session for 27 % of simulated WAI-SR clients and 49 % of SRS clients; now
    73 % and 99.8 % (``bench/signals.py``). Leaving such changes out altogether would name
    more (82 % on the WAI-SR) but biases the noise low on stable clients after a false
    alarm: 4.8 % of stable SRS clients would end with something open, where the limit is 5 %.

    A form with subscales tests its scales with the Bonferroni z; a form of one scale (the
    HAQ-II) with Student's t, since its noise has one change a session behind it and its one
    test has none of the slack of several correlated ones: with the z, 6.4 % of its stable
    simulated clients ended with something open (8.5 % with the cap at any threshold);
    with the t, 4.3 %. The t on the WAI-SR as well would leave 85 % of its ruptures named at
    their session, under the 90 % target.
    """

    def __init__(self, spec: SeriesSpec, visits: Sequence[Visit]) -> None:
        pooled = {s for s in spec.scales if s != TOTAL} or {TOTAL}
        # the form's scales are tested together: Bonferroni over them keeps the rate of a
        # false alarm at 5 % (two-sided) for the form
        self.tests = len(spec.scales)
        self.z = bonferroni_z(self.tests)
        # a form of one scale has no Bonferroni slack to absorb its SD being estimated:
        # its test is Student's t (``student_t``); a form with subscales keeps the z
        self.student = self.tests == 1
        self.sums: list[tuple[float, int]] = [(0.0, 0)]  # (Σ squares, n) before each visit
        self.sds = [0.0]  # the item-level SD before each visit
        self.qs = [self.quantile(0)]  # the test's z (or t) before each visit
        self.drops: dict[str, list[_Drop]] = {}  # each scale's drops, in order
        # each scale's threshold at each of its scored sessions, in order (the rules read it)
        self.thresholds: dict[str, list[float | None]] = {}
        # per scale: its walk, items, √items, unit, a cited norm's threshold, pooled or not
        scales = [
            (
                sid,
                _ScaleWalk(),
                scale.items,
                math.sqrt(scale.items),
                scale.unit,
                _norm_threshold(scale),
                sid in pooled,
            )
            for sid, scale in spec.scales.items()
        ]
        sums, sds, qs = self.sums, self.sds, self.qs
        total, n = 0.0, 0
        for index, v in enumerate(visits):
            sd, q, behind = sds[-1], qs[-1], n  # (the noise before this visit)
            pomps = v.pomps
            for sid, w, items, root, unit, norm_t, in_pool in scales:
                p = pomps.get(sid)
                if p is None:
                    continue
                t = threshold_in_force(norm_t, w.seen, q, sd, root, unit)
                w.thresholds.append(t)
                cap = w.cap
                drop = w.drop
                outside = w.outside
                if drop is not None:
                    if p >= drop.level - drop.threshold / 2:  # back near the level it fell from
                        drop.resolved = index
                        w.drop = drop = None
                elif t is not None and outside:
                    base = outside[-BASELINE_SESSIONS:]
                    # (a plain sum first: the exact mean only when it may be a drop)
                    if sum(base) / len(base) - p > t - 1e-9 and (level := _mean(base)) - p > t:
                        # its changes are capped at its threshold, unless that was only
                        # the one-unit floor from 1-5 nil changes (early answers all alike):
                        # capped there, the noise could not learn (class docstring)
                        trusted = (
                            norm_t is not None or behind >= MIN_GAP_DF or t > unit or not behind
                        )
                        w.drop = drop = _Drop(
                            index, level, len(base), tuple(outside), t, cap=t if trusted else None
                        )
                        self.drops.setdefault(sid, []).append(drop)
                if drop is None:
                    outside.append(p)
                    w.cap = None
                else:
                    w.cap = cap = drop.cap
                if in_pool:
                    last = w.last
                    if last is not None and not (p >= 100 and last >= 100):  # (the ceiling)
                        step = abs(p - last)
                        if cap is not None and step > cap:
                            step = cap
                        total += step * step * items / 2
                        n += 1
                    w.last = p
                w.seen += 1
            sums.append((total, n))
            sds.append(math.sqrt(total / n) if n else 0.0)
            qs.append(self.quantile(n))
        # what the next session is measured against, per scale (the report's shaded band)
        bands: dict[str, tuple[float, float] | None] = {}
        thresholds: dict[str, float | None] = {}
        for sid, w, _, root, unit, norm_t, _ in scales:
            self.thresholds[sid] = w.thresholds
            t = threshold_in_force(norm_t, w.seen, qs[-1], sds[-1], root, unit)
            thresholds[sid] = t
            band = None
            if w.drop is not None:  # back within half its threshold of its level: repaired
                half = w.drop.threshold / 2
                band = (w.drop.level - half, w.drop.level + half)
            elif t is not None and w.outside:
                usual = _mean(w.outside[-BASELINE_SESSIONS:])
                band = (usual - t, usual + t)
            bands[sid] = band
        self.following = NextSession(thresholds, bands)

    def quantile(self, changes: int) -> float:
        """The z (or, on a form of one scale, Student's t) of a drop's test with ``changes``
        behind the noise."""
        return student_t(changes) if self.student else self.z

    def before(self, index: int) -> tuple[float, int]:
        """(item-level SD in POMP, changes behind it) from the visits before ``index``."""
        return self.sds[index], self.sums[index][1]


def threshold_in_force(
    norm: float | None, earlier: int, q: float, sd: float, root_items: float, unit: float
) -> float | None:
    """A scale's drop threshold at a session with ``earlier`` scored sessions of it before:
    a cited norm's (Jacobson & Truax, never under one unit), else the client's own from the
    fourth session on (``own_threshold``), else None (too early to tell)."""
    if norm is not None:
        return norm
    return None if earlier <= MIN_EARLIER_CHANGES else own_threshold(q, sd, root_items, unit)


def _norm_threshold(spec: ScaleSpec) -> float | None:
    """A scale's Jacobson–Truax threshold from a cited norm, never under one unit (or None)."""
    return None if spec.norm is None else max(spec.norm[0], spec.unit)


def own_threshold(q: float, sd: float, root_items: float, unit: float) -> float:
    """A drop's threshold from the client's own noise: q · √2 · SEM (SEM = item-level SD over
    √k), never under one unit (one expression, so the walk, the rules and the band agree)."""
    return max(q * math.sqrt(2) * sd / root_items, unit)


@functools.cache
def student_t(changes: int) -> float:
    """Student's t for a one-sided 2.5 % with the ``changes`` behind the noise as degrees of
    freedom (at least ``MIN_GAP_DF``, where ``t_quantile`` holds): a one-scale form's drop
    test, and every trend's."""
    return t_quantile(1 - 0.025, max(changes, MIN_GAP_DF))


@functools.cache
def bonferroni_z(tests: int) -> float:
    """The z that keeps a two-sided 5 % rate of a false alarm over ``tests`` tests."""
    return _normal_quantile(1 - 0.025 / tests) if tests else Z_RELIABLE


@functools.cache
def _normal_quantile(p: float) -> float:
    from statistics import NormalDist  # (imported when a reading needs it: 5 ms at start-up)

    return NormalDist().inv_cdf(p)


def t_quantile(p: float, df: float) -> float:
    """Student's t quantile: the Cornish–Fisher expansion about the normal's (Abramowitz &
    Stegun, 1964, 26.7.5): within 0.1 % of the exact value from 6 degrees of freedom on, in
    the tails the gap rule uses (up to 8 scales; tests/test_change.py checks it against
    scipy)."""
    z = _normal_quantile(p)
    z2 = z * z
    g1 = (z2 + 1) * z / 4
    g2 = ((5 * z2 + 16) * z2 + 3) * z / 96
    g3 = (((3 * z2 + 19) * z2 + 17) * z2 - 15) * z / 384
    g4 = ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) * z / 92160
    return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4


class Threshold(NamedTuple):
    """How far below its usual level a session must fall to start a drop, in POMP."""

    value: float | None  # None: too little history to say
    words: str  # how the rule is said
    cited: str  # the published norm's source ("" when the threshold is the client's own)
    own: bool  # from the client's own earlier changes (no published norms)
    n: int = 0  # own: the earlier changes behind it
    z: float = 0.0  # own: the test's quantile (z, or t on a form of one scale), its scales
    tests: int = 0
    floor: bool = False  # own: the least threshold (one item, one unit) held, not the SEM's
    student: bool = False  # own: z is Student's t (a form of one scale)

    @property
    def source(self) -> str:
        """Where the rule comes from (worked out only when a concern quotes it)."""
        if not self.own or self.value is None:
            return self.cited
        test = (
            f"Student's t for 2.5 % with {max(self.n, MIN_GAP_DF):g} degrees of freedom, the "
            "form's one scale"
            if self.student
            else f"z for 5 % over the form's {counted(self.tests, 'scale')}, Bonferroni"
        )
        rule = f"{self.z:.2f} · √2 · SEM ({test}; the form of {JT_SOURCE}, with no published norms)"
        if not self.floor:
            return f"{rule}, the SEM from this client's own {counted(self.n, 'earlier change')}"
        if not self.n:
            return (
                "one item moving one unit of its scale, the least threshold: no earlier change "
                "measures this client's noise (each was at the top of the scale)"
            )
        return (
            f"one item moving one unit of its scale, the least threshold: {rule}, from this "
            f"client's own {counted(self.n, 'earlier change')}, is below it"
        )


_NO_THRESHOLD = Threshold(None, "", "", True)
_OWN_WORDS = "larger than this client's usual session-to-session change"


def threshold_at(spec: ScaleSpec, noise: Noise | None, index: int, earlier: int) -> Threshold:
    """The threshold for the visit at ``index``, with ``earlier`` scored sessions of this
    scale before it: Jacobson & Truax from a cited norm, else from the client's own noise."""
    if spec.norm is not None:
        return Threshold(_norm_threshold(spec), "beyond reliable change", spec.norm[1], False)
    if noise is None:
        return _NO_THRESHOLD
    sd, n = noise.before(index)
    q, root = noise.qs[index], math.sqrt(spec.items)
    value = threshold_in_force(None, earlier, q, sd, root, spec.unit)
    if value is None:
        return _NO_THRESHOLD
    floor = own_threshold(q, sd, root, 0.0) < spec.unit
    return Threshold(value, _OWN_WORDS, "", True, n, q, noise.tests, floor, noise.student)


def _drop_onset(
    sid: str, spec: ScaleSpec, session: int, value: float, found: _Drop, t: Threshold, i: int
) -> _Episode:
    """The drop the noise's walk found at this session (the scale's ``i``-th scored one),
    graded by the rupture rules."""
    assert t.value is not None
    fall = found.level - value
    earlier = found.earlier
    outside = " outside a drop" if len(earlier) < i else ""  # (an earlier drop's left out)
    evidence = [
        Evidence(
            "reliable_drop",
            f"{_fmt(fall)} points below the usual {_fmt(found.level)} (mean of "
            f"{found.base} earlier sessions{outside}); threshold {t.value:.1f}, {t.words}",
            t.source,
        )
    ]
    severity: Severity = "watch"
    mean_all, sd_all = _mean(earlier), max(_sd(earlier), spec.unit)
    depth = (mean_all - value) / sd_all
    for k, source in ((1.0, STRAUSS), (2.0, STILES)):
        if len(earlier) >= 3 and depth >= k:
            evidence.append(
                Evidence(
                    f"rupture_{k:g}sd",
                    f"{depth:.1f} SD below the mean {_fmt(mean_all)} of the earlier sessions"
                    f"{outside} (SD {sd_all:.1f}, floor one unit)",
                    source,
                )
            )
            severity = "act" if k >= 2 else severity
    return _Episode("drop", sid, session, None, severity, evidence, (found.level, value), t.own)


_ROOT_HALF_WINDOW = math.sqrt(DECLINE_WINDOW / 2)  # a decline's threshold: the session's over it


def _decline_onset(
    sid: str, spec: ScaleSpec, session: int, values: list[float], i: int, t: Threshold
) -> _Episode:
    """The decline episode whose latest session is ``values[i]`` (the walk found it slid)."""
    assert t.value is not None
    first = _mean(values[:DECLINE_WINDOW])
    latest = _mean(values[i + 1 - DECLINE_WINDOW : i + 1])
    # two means of 3 sessions have the error of one session over √3; the test is repeated
    # at every session from the sixth, so only half of that is taken (√1.5)
    t_mean = max(t.value / math.sqrt(DECLINE_WINDOW / 2), spec.unit)
    evidence = Evidence(
        "slow_decline",
        f"mean of the latest {DECLINE_WINDOW} sessions {_fmt(latest)} is "
        f"{_fmt(first - latest)} points below the first {DECLINE_WINDOW} ({_fmt(first)}); "
        f"threshold {t_mean:.1f} (the session threshold over √1.5), {t.words}",
        t.source,
    )
    return _Episode("decline", sid, session, None, "watch", [evidence], (first, latest), t.own)


def _scale_episodes(
    sid: str, spec: ScaleSpec, points: list[tuple[int, float, int]], noise: Noise
) -> list[_Episode]:
    """Drops (as the noise's walk found them) and declines on one scale, walked session by
    session (as each was the latest)."""
    episodes: list[_Episode] = []
    drop: _Episode | None = None
    found: _Drop | None = None
    decline: _Episode | None = None
    in_drop = -DECLINE_WINDOW  # the latest position inside a drop: a decline's window clears it
    values = [v for _, v, _ in points]
    first = _mean(values[:DECLINE_WINDOW]) if values else 0.0  # a decline's first sessions
    thresholds = noise.thresholds[sid]  # (the walk's, at these same scored sessions)
    onsets = {d.onset: d for d in noise.drops.get(sid, ())}
    for i, ((session, value, index), t_value) in enumerate(zip(points, thresholds, strict=True)):
        if drop is not None and found is not None:
            if found.resolved == index:  # back near the level it fell from
                drop.resolved = session
                drop = found = None
        elif index in onsets:
            found = onsets[index]
            t = threshold_at(spec, noise, index, i)  # its words, for the evidence
            drop = _drop_onset(sid, spec, session, value, found, t, i)
            episodes.append(drop)
        if drop is not None:
            in_drop = i
        if i + 1 < 2 * DECLINE_WINDOW or t_value is None or i - in_drop < DECLINE_WINDOW:
            continue  # a decline needs 6 sessions, none of its latest 3 in a drop
        latest = _mean(values[i + 1 - DECLINE_WINDOW : i + 1])
        slid = first - latest > max(t_value / _ROOT_HALF_WINDOW, spec.unit)
        if decline is not None and not slid:
            decline.resolved = session
            decline = None
        elif decline is None and slid and drop is None:
            t = threshold_at(spec, noise, index, i)
            decline = _decline_onset(sid, spec, session, values, i, t)
            episodes.append(decline)
    return episodes


def _level_episodes(
    sid: str, spec: ScaleSpec, points: list[tuple[int, float]], settings: Settings
) -> list[_Episode]:
    """Sessions at or below the scale's cutoff, or (total only, without a cutoff) low early."""
    episodes: list[_Episode] = []
    current: _Episode | None = None
    cut = spec.cutoff
    for session, value in points:
        grade: Severity | None = None
        evidence: Evidence | None = None
        kind = "low"
        if cut is not None:
            grade = cut.grade(value)
            if grade:
                evidence = Evidence(
                    "below_cutoff",
                    f"{cut.value(value):g} ({cut.metric}) is {cut.words()}",
                    cut.source,
                )
        elif sid == TOTAL and (session <= settings.early_sessions or current is not None):
            kind = "early_low"
            if spec.low_band is not None:
                top, label, source = spec.low_band
                if value < top:
                    grade = "watch"
                    evidence = Evidence(
                        "early_low_alliance", f"total in the lowest band '{label}'", source
                    )
            elif value < settings.early_pomp:
                grade = "watch"
                evidence = Evidence(
                    "early_low_alliance",
                    f"total {_fmt(value)} % of the maximum, below {settings.early_pomp:g} "
                    f"({DEFAULT}: the instrument has no cutoff or bands), in session {session} "
                    f"of the first {settings.early_sessions}",
                    EARLY_SOURCE,
                )
        if current is not None and grade is None:
            current.resolved = session
            current = None
        elif current is not None and grade is not None and evidence is not None:
            if SEVERITY_ORDER[grade] < SEVERITY_ORDER[current.severity]:
                current.severity = grade
            current.figures = (current.figures[0], value)
        elif current is None and grade is not None and evidence is not None:
            current = _Episode(kind, sid, session, None, grade, [evidence], (value, value))
            episodes.append(current)
    return episodes


def _points(visits: Sequence[Visit], sid: str) -> list[tuple[int, float, int]]:
    """(session, POMP, index of the visit) of each session that scored the scale."""
    return [(v.session, p, i) for i, v in enumerate(visits) if (p := v.pomps.get(sid)) is not None]


def _names(spec: SeriesSpec, sids: Sequence[str]) -> tuple[str, ...]:
    return tuple(spec.scales[s].name if s in spec.scales else s for s in sids)


ALL_SCALES = "all scales"  # a concern on every subscale of its form says so, not each name


def named_scales(sids: Sequence[str], names: Sequence[str]) -> str:
    """The scales a concern names, as its sentence and its short words say them: the total
    beside subscales is left unsaid (the subscales' fall is the news)."""
    kept = [n for s, n in zip(sids, names, strict=True) if s != TOTAL or len(sids) == 1]
    return ", ".join(kept) if kept else "the total"


def _scale_words(spec: SeriesSpec, sids: Sequence[str]) -> str:
    subs = [s for s in spec.scales if s != TOTAL]
    if len(subs) > 1 and set(subs) <= set(sids):
        return ALL_SCALES
    return named_scales(sids, _names(spec, sids))


def _question(kind: str, cutoffs: Sequence[Cutoff] = ()) -> str:
    own = [c.message for c in cutoffs if c.message]
    if own and kind in ("low", "drop", "early_low"):
        return " ".join(own[0].split())
    return {
        "drop": "Ask how the last session felt and what got in the way; say you noticed.",
        "decline": "Review goals and the way of working together with the client.",
        "low": "Ask what could be different next time.",
        "early_low": "Ask early what the client wants from treatment and how it is going.",
        "gap": "Compare notes: ask the client how they see the work together.",
        "incomplete": "Ask about the missing answer before the client leaves.",
        "not_seen": "Reach out: check whether the client is still in treatment.",
        "future_date": "Correct the session's date: save it again with the right --date and "
        "--replace.",
    }[kind]


def _group(spec: SeriesSpec, episodes: list[_Episode], early_sessions: int) -> list[Concern]:
    """Episodes of one kind that began at one session, their scales together: one concern."""
    grouped: dict[tuple[str, int], list[_Episode]] = {}
    for ep in episodes:
        grouped.setdefault((ep.kind, ep.began), []).append(ep)
    cutoffs = [s.cutoff for s in spec.scales.values() if s.cutoff is not None]
    out = []
    for (kind, began), eps in grouped.items():
        order = list(spec.scales)
        eps.sort(key=lambda e: order.index(e.scale) if e.scale in order else len(order))
        sids = tuple(e.scale for e in eps)
        resolved = (
            None if any(e.resolved is None for e in eps) else max(e.resolved or 0 for e in eps)
        )
        severity = min((e.severity for e in eps), key=SEVERITY_ORDER.__getitem__)
        if kind == "drop" and len(sids) == len(spec.scales) > 1:
            severity = "act"  # every scale of the form fell at once: the whole alliance
        # the figures of the scale the sentence names: the total's for "all scales"
        named = [e for e in eps if e.scale != TOTAL]
        whole = not named or _scale_words(spec, sids) == ALL_SCALES
        lead = next(e for e in eps if e.scale == TOTAL) if whole and TOTAL in sids else eps[0]
        sentence = _sentence(kind, spec, sids, began, resolved, lead, early_sessions)
        evidence = tuple(
            replace(ev, figures=f"{_names(spec, [e.scale])[0]}: {ev.figures}")
            for e in eps
            for ev in e.evidence
        )
        out.append(
            Concern(
                kind,
                spec.label,
                sids,
                _names(spec, sids),
                began,
                resolved,
                severity,
                sentence,
                _question(kind, cutoffs),
                evidence,
            )
        )
    return out


def _sentence(
    kind: str,
    spec: SeriesSpec,
    sids: tuple[str, ...],
    began: int,
    resolved: int | None,
    lead: _Episode,
    early_sessions: int,
) -> str:
    where = _scale_words(spec, sids)
    Where = where[:1].upper() + where[1:]
    many = where == ALL_SCALES or ", " in where  # several scales: the verb agrees
    has, was = ("have", "were") if many else ("has", "was")
    before, at = lead.figures
    if kind == "drop":
        move = f"from a usual {_fmt(before)} to {_fmt(at)} % of the maximum"
        unusual = ", larger than this client's usual change" if lead.own else ""
        if resolved is None:
            return f"{Where} fell in session {began} ({move}{unusual}) and {has} stayed low since."
        return f"{Where} fell in session {began} ({move}) and recovered in session {resolved}."
    if kind == "decline":
        span = f"from {_fmt(before)} to {_fmt(at)} % of the maximum"
        tail = (
            ""
            if resolved is None
            else f"; {'they' if many else 'it'} had recovered by session {resolved}"
        )
        return f"{Where} {has} slid gradually ({span}, first sessions against the latest){tail}."
    if kind == "low":
        cut = spec.scales[sids[0]].cutoff
        assert cut is not None
        text = f"{Where} {was} {cut.words()} in session {began} ({cut.value(before):g})"
        text += "." if resolved is None else f"; above it again in session {resolved}."
        if began <= early_sessions:
            text += " A weak alliance early in treatment predicts dropout."
        return text
    if kind == "early_low":
        tail = "" if resolved is None else f" It was higher in session {resolved}."
        return (
            f"A weak alliance early in treatment (session {began}, {_fmt(before)} % of the "
            f"maximum). A weak early alliance predicts dropout.{tail}"
        )
    raise ValueError(kind)


def _series_concerns(data: SeriesData, settings: Settings, noise: Noise) -> list[Concern]:
    spec = data.spec
    visits = data.visits
    if not visits:
        return []
    episodes: list[_Episode] = []
    for sid, scale in spec.scales.items():
        points = _points(visits, sid)
        episodes += _scale_episodes(sid, scale, points, noise)
        episodes += _level_episodes(sid, scale, [(s, v) for s, v, _ in points], settings)
    concerns = _group(spec, episodes, settings.early_sessions)
    concerns += _incomplete(spec, visits)
    return concerns


@dataclass
class _Run:
    """A run of sessions a condition held in: when it began, when it ended, what it held."""

    began: int
    what: Any
    resolved: int | None = None


def _runs(steps: Sequence[tuple[int, Any]]) -> list[_Run]:
    """Runs of (session, what) where ``what`` is truthy; a falsy one ends the run."""
    runs: list[_Run] = []
    current: _Run | None = None
    for session, what in steps:
        if current is not None and not what:
            current.resolved = session
            current = None
        elif current is None and what:
            current = _Run(session, what)
            runs.append(current)
    return runs


def _incomplete(spec: SeriesSpec, visits: Sequence[Visit]) -> list[Concern]:
    steps = [(v.session, tuple(s for s, p in v.pomps.items() if p is None)) for v in visits]
    concerns = []
    for run in _runs(steps):
        began, resolved, missing = run.began, run.resolved, run.what
        names = _names(spec, missing)
        tail = "" if resolved is None else f" (complete again in session {resolved})"
        concerns.append(
            Concern(
                "incomplete",
                spec.label,
                missing,
                names,
                began,
                resolved,
                "note",
                f"The form is incomplete in session {began}: no score for "
                f"{', '.join(names)}{tail}. Ask about the missing line.",
                _question("incomplete"),
                (
                    Evidence(
                        "incomplete_form",
                        "too many items unanswered",
                        "the instrument's missing-answer rule",
                    ),
                ),
            )
        )
    return concerns


_Pair = tuple[int, int, bool, bool, str | None]  # see _gap_plan


def _gap_plan(client: SeriesSpec, therapist: SeriesSpec) -> list[_Pair]:
    """The therapist form's topic pairs by answer position, worked out once per client:
    (therapist position, client position, each reversed, the client's scale when both
    forms put the topic in the same scale)."""
    c_at = {item: i for i, item in enumerate(client.items)}
    t_at = {item: i for i, item in enumerate(therapist.items)}
    plan = []
    for t_item, c_item in therapist.pairs.items():
        if t_item not in t_at or c_item not in c_at:
            continue  # (never answered: no POMP)
        c_scale = client.item_scales.get(c_item)
        same = (
            c_scale
            if c_scale is not None and c_scale == therapist.item_scales.get(t_item)
            else None
        )
        plan.append((t_at[t_item], c_at[c_item], t_item in therapist.reverse,
                     c_item in client.reverse, same))  # fmt: skip
    return plan


def _gap_values(
    client: SeriesSpec,
    cv: Visit,
    therapist: SeriesSpec,
    tv: Visit,
    plan: list[_Pair] | None = None,
) -> dict[str, tuple[float, float, int]]:
    """(client, therapist) POMP per compared scale (the client's scale ids), with how many
    items each side's mean is of. Item POMPs are ``SeriesSpec.item_pomps``' arithmetic, by
    answer position through ``_gap_plan``."""
    if therapist.pairs:
        c_low, c_high = client.scale_range
        t_low, t_high = therapist.scale_range
        if c_high <= c_low or t_high <= t_low:
            return {}
        ca, ta = cv.answers, tv.answers
        by_scale: dict[str, list[tuple[float, float]]] = {}
        for t_pos, c_pos, t_rev, c_rev, scale in plan or _gap_plan(client, therapist):
            if t_pos >= len(ta) or c_pos >= len(ca):
                continue
            c_value, t_value = ca[c_pos], ta[t_pos]
            if c_value is None or t_value is None:
                continue
            c_keyed = c_low + c_high - c_value if c_rev else c_value
            t_keyed = t_low + t_high - t_value if t_rev else t_value
            pair = (
                (c_keyed - c_low) / (c_high - c_low) * 100,
                (t_keyed - t_low) / (t_high - t_low) * 100,
            )
            by_scale.setdefault(TOTAL, []).append(pair)
            if scale is not None:
                by_scale.setdefault(scale, []).append(pair)
        return {
            s: (_mean([p[0] for p in pairs]), _mean([p[1] for p in pairs]), len(pairs))
            for s, pairs in by_scale.items()
        }
    out = {}
    for sid, spec in client.scales.items():
        c, t = cv.pomps.get(sid), tv.pomps.get(sid)
        if sid in therapist.scales and c is not None and t is not None:
            out[sid] = (c, t, min(spec.items, therapist.scales[sid].items))
    return out


MIN_GAP_DF = 6.0  # degrees of freedom of a gap's error before it is compared (t_quantile)
GAP_ALPHA = 0.025  # half of the 5 % a stable client's reading may raise: gaps and drops share it


class _Wide(NamedTuple):
    """One compared scale at a session where client and therapist differ: their POMPs, the
    threshold the difference met, and what the threshold was made of."""

    client: float
    therapist: float
    threshold: float
    items: int  # items each side's mean is of
    noise: tuple[float, float]  # each rater's item-level SD (POMP)
    changes: tuple[int, int]  # the earlier changes each SD is from
    t: float  # the quantile the error was multiplied by
    df: float  # its degrees of freedom


def _gaps(
    client: SeriesData,
    therapist: SeriesData,
    settings: Settings,
    noises: tuple[Noise, Noise],
) -> list[Concern]:
    """Client–therapist gaps on matched content, one concern per run of sessions.

    A difference is a gap when it is at least ``gap_pomp`` and beyond the error of the
    comparison: t · √((σc² + σt²) / k), each rater's item-level SD σ from the changes of
    their own earlier sessions (``Noise``), k the items each mean is of, and t Student's
    quantile for 2.5 % over the form's scales (Bonferroni), its degrees of freedom those of
    the two SDs (Welch–Satterthwaite): the SDs are estimates from a few changes. So the
    forms are compared from the fourth session of each on, as a drop is found: before
    then there is no measure of the noise (on two to four items a side, two raters who
    agree differ by 15 POMP on some scale at more than half of the sessions)."""
    t_at = {v.session: i for i, v in enumerate(therapist.visits)}
    shared = [(i, cv, t_at[cv.session]) for i, cv in enumerate(client.visits) if cv.session in t_at]
    steps: list[tuple[int, dict[str, _Wide]]] = []
    plan = _gap_plan(client.spec, therapist.spec) if therapist.spec.pairs else None
    least = MIN_EARLIER_CHANGES + 1  # earlier sessions of each form before one is compared
    tests = len(client.spec.scales)
    c_noise, t_noise = noises  # (each series' own, as its drops use it)
    for i, cv, j in shared:
        wide: dict[str, _Wide] = {}
        steps.append((cv.session, wide))
        if i < least or j < least:
            continue
        (c_sd, c_n), (t_sd, t_n) = c_noise.before(i), t_noise.before(j)
        a, b = c_sd * c_sd, t_sd * t_sd
        if a + b > 0:
            df = (a + b) ** 2 / ((a * a / c_n if c_n else 0.0) + (b * b / t_n if t_n else 0.0))
            if df < MIN_GAP_DF:
                continue
            q = t_quantile(1 - GAP_ALPHA / 2 / tests, df)
        else:
            df, q = math.inf, 0.0  # neither rater's answers ever varied: no error to allow
        values = _gap_values(client.spec, cv, therapist.spec, therapist.visits[j], plan)
        for s, (c, t, k) in values.items():
            limit = max(settings.gap_pomp, q * math.sqrt((a + b) / k))
            if abs(c - t) >= limit and c != t:  # (--gap 0 with no noise: equal is no gap)
                wide[s] = _Wide(c, t, limit, k, (c_sd, t_sd), (c_n, t_n), q, df)
    concerns = []
    pairs = (
        "item by item through the topic pairs the therapist form declares"
        if (therapist.spec.pairs)
        else "scale by scale (the two forms share their key)"
    )
    for run in _runs(steps):
        wide = run.what
        order = list(client.spec.scales)
        sids = tuple(sorted(wide, key=lambda s: order.index(s) if s in order else len(order)))
        head = wide[TOTAL if TOTAL in wide else sids[0]]
        c, t = head.client, head.therapist
        higher = "the therapist" if t > c else "the client"
        began, resolved = run.began, run.resolved
        where = _scale_words(client.spec, sids)
        tail = "" if resolved is None else f"; closer again in session {resolved}"
        concerns.append(
            Concern(
                "gap",
                client.spec.label,
                sids,
                _names(client.spec, sids),
                began,
                resolved,
                "watch",
                f"Client and therapist see {where} differently in session {began} (client "
                f"{_fmt(c)}, therapist {_fmt(t)} % of the maximum; {higher} sees "
                f"{'them' if where == ALL_SCALES or ', ' in where else 'it'} as stronger){tail}.",
                _question("gap"),
                tuple(_gap_evidence(client.spec, s, wide[s], pairs, settings) for s in sids),
            )
        )
    return concerns


def _gap_evidence(
    spec: SeriesSpec, sid: str, wide: _Wide, pairs: str, settings: Settings
) -> Evidence:
    """A gap's rule on one scale, with its figures and where its threshold comes from."""
    name = spec.scales[sid].name if sid in spec.scales else sid
    items = f"{counted(wide.items, 'item')} a side"
    figures = (
        f"{name}: |{_fmt(wide.client)} − {_fmt(wide.therapist)}| ≥ {wide.threshold:.1f}, "
        f"compared {pairs} ({items})"
    )
    floor = f"{settings.gap_pomp:g} POMP ({DEFAULT}: gap threshold; no published source)"
    if not wide.t:
        return Evidence("rater_gap", figures, f"{floor}; neither rater's answers have varied")
    (c_sd, t_sd), (c_n, t_n) = wide.noise, wide.changes
    error = (
        f"the error of the comparison, {wide.t:.2f} · √((σc² + σt²) / {wide.items}), the "
        f"item-level SDs {c_sd:.1f} and {t_sd:.1f} from the client's own {c_n} and the "
        f"therapist's own {t_n} earlier changes (Student's t with {wide.df:.1f} degrees of "
        f"freedom, Welch–Satterthwaite, for {GAP_ALPHA * 100:g} % over the form's "
        f"{len(spec.scales)} scales, Bonferroni; {JT_SOURCE} in form)"
    )
    if wide.threshold > settings.gap_pomp:
        return Evidence("rater_gap", figures, f"{error}; never below {floor}")
    return Evidence("rater_gap", figures, f"{floor}, above {error}")


def days_between(earlier: str, later: str) -> int | None:
    """Whole days from one ISO date to another (None if either is not a date)."""
    try:
        return (date.fromisoformat(later[:10]) - date.fromisoformat(earlier[:10])).days
    except ValueError:
        return None


def future_limit(today: str) -> str:
    """The latest date a session may carry before it counts as dated after ``today`` (a day
    ahead is allowed: time zones differ by at most one): the one rule of the future-date
    note, of ``score --save``'s and of ``batch --save``'s."""
    return (date.fromisoformat(today[:10]) + timedelta(days=FUTURE_GRACE_DAYS)).isoformat()


def recency_note(
    last_date: str | None, today: str | None, settings: Settings, series: str = ""
) -> Concern | None:
    """A note when the latest session is longer ago than ``not_seen_days``, or dated after
    today (more than a day: time zones differ by at most one), most likely a typo."""
    if not last_date or not today:
        return None
    days = days_between(last_date, today)
    if days is not None and last_date[:10] > future_limit(today):
        return Concern(
            "future_date",
            series,
            (),
            (),
            0,
            None,
            "note",
            f"The latest session is dated {last_date}, {-days:,} days after today: check its date.",
            _question("future_date"),
            (
                Evidence(
                    "future_date",
                    f"{last_date} is {-days} days after {today}",
                    f"{DEFAULT} (a date more than {FUTURE_GRACE_DAYS} day ahead)",
                ),
            ),
        )
    if days is None or days <= settings.not_seen_days:
        return None
    return Concern(
        "not_seen",
        series,
        (),
        (),
        0,
        None,
        "note",
        f"Not seen for {days:,} days (last dated session {last_date}).",
        _question("not_seen"),
        (
            Evidence(
                "not_seen",
                f"{days} days > {settings.not_seen_days}",
                f"{DEFAULT} (--not-seen-days)",
            ),
        ),
    )


_SHORT = {
    "drop": "{where} fell in session {began}",
    "decline": "{where} slid, from session {began}",
    "low": "{where} at or below the cutoff, from session {began}",
    "early_low": "low early alliance in session {began}",
    "gap": "client and therapist differ on {where} from session {began}",
    "incomplete": "no score for {where} in session {began}",
}


def scales_said(concern: Mapping[str, Any]) -> str:
    """The scales of a concern (as data) as its sentence names them: "all scales", or the
    names without the total beside subscales."""
    if ALL_SCALES in str(concern.get("sentence", "")).lower():
        return ALL_SCALES
    names = list(concern.get("scale_names") or ())
    sids = list(concern.get("scales") or names)
    return named_scales(sids, names) if names and len(sids) == len(names) else "the form"


def short_words(concern: Mapping[str, Any]) -> str:
    """A concern (as data) in a few plain words, for a caseload row: what, where, when."""
    template = _SHORT.get(str(concern.get("kind")))
    if template is None:  # (not seen: its sentence says it briefly)
        return str(concern.get("sentence", "")).split(" (")[0].rstrip(".")
    where = scales_said(concern)
    series = f" ({concern['series']})" if concern.get("series") else ""
    words = template.format(where=where, began=concern.get("began"))
    return words[:1].upper() + words[1:] + series


def told_session(concern: Concern) -> int:
    """Where a concern is told among a series' sessions: the session it began; a note of
    today's date (not seen, a date after today: of no session, ``began`` 0) after them."""
    return concern.began or 1 << 62


def order_key(concern: Concern) -> tuple[int, int, int]:
    """Open first, then most severe, then most recent."""
    return (
        0 if concern.is_open else 1,
        SEVERITY_ORDER[concern.severity],
        -concern.began,
    )


def read_client(
    client_id: str,
    series: Sequence[SeriesData],
    settings: Settings | None = None,
    today: str | None = None,
) -> Reading:
    """The one reading of a client: every concern over every series, in order of attention."""
    settings = settings or Settings()
    concerns: list[Concern] = []
    compared: dict[str, str] = {}
    specs = [s.spec for s in series]
    noises = [Noise(s.spec, s.visits) for s in series]  # (the drops' and the gaps')
    for n, data in enumerate(series):
        concerns += _series_concerns(data, settings, noises[n])
        at = _twin(data.spec, specs)
        if at is not None:
            concerns += _gaps(data, series[at], settings, (noises[n], noises[at]))
            compared[data.spec.label] = specs[at].label
    latest = _latest(series)
    counselor = latest.counselor if latest else None
    last_date = max((v.date for s in series for v in s.visits if v.date), default=None)
    days = days_between(last_date, today) if last_date and today else None
    away = recency_note(last_date, today, settings)
    if away is not None:
        concerns.append(away)
    concerns.sort(key=order_key)
    trends = {data.spec.label: series_trend(data, noises[n]) for n, data in enumerate(series)}
    following = {data.spec.label: noises[n].following for n, data in enumerate(series)}
    return Reading(client_id, concerns, counselor, last_date, days, compared, trends, following)


TREND_SESSIONS = 6  # the trend is the total's over the latest this many sessions


def series_trend(data: SeriesData, noise: Noise) -> str:
    """'up', 'down' or 'steady': the least-squares change of the total over the latest
    sessions (up to 6, leaving out a repaired drop's), said only beyond Student's t for
    2.5 % a side times its standard error, the error from this client's own noise
    (``Noise``: the SEM of the total is the item-level SD over √k; the change of a line
    fitted over n sessions has SE = SEM · (n − 1) / √Σ(x − x̄)²; the t's degrees of freedom
    are the changes behind the SD, at least 6), and never under one unit of the total."""
    scale = data.spec.scales.get(TOTAL)
    # a rupture and its repair are an excursion, not a trend: the sessions of a repaired
    # drop (on any scale) are left out
    excursion = {
        i
        for drops in noise.drops.values()
        for d in drops
        if d.resolved is not None
        for i in range(d.onset, d.resolved)
    }
    values = [
        p
        for i, v in enumerate(data.visits)
        if i not in excursion and (p := v.pomps.get(TOTAL)) is not None
    ][-TREND_SESSIONS:]
    n = len(values)
    if scale is None or n < 2:
        return "steady"
    mx, my = (n - 1) / 2, _mean(values)
    sxx = sum((x - mx) ** 2 for x in range(n))
    slope = math.fsum((x - mx) * (y - my) for x, y in enumerate(values)) / sxx
    fitted = slope * (n - 1)
    sd, changes = noise.before(len(data.visits))
    se = sd / math.sqrt(scale.items) * (n - 1) / math.sqrt(sxx)
    # Student's t: the SD is estimated from the changes behind it
    limit = max(student_t(changes) * se, scale.unit)
    if fitted > limit:
        return "up"
    if fitted < -limit:
        return "down"
    return "steady"


def _twin(spec: SeriesSpec, specs: Sequence[SeriesSpec]) -> int | None:
    """Where among a client's series is the therapist's one a client series is compared
    with: the first on its counterpart form rated by another than the client (None: not
    compared)."""
    other = spec.counterpart
    if spec.rater != "client" or not other:
        return None
    return next(
        (n for n, t in enumerate(specs) if t.instrument == other and t.rater != "client"), None
    )


def may_compare_item_by_item(spec: SeriesSpec) -> bool:
    """Whether a form may be compared item by item with a counterpart (a client form with
    one, or a form declaring topic pairs): what ``compared_item_by_item`` can take, known
    from the form alone (one series is read before the client's others)."""
    return bool(spec.pairs) or (spec.rater == "client" and bool(spec.counterpart))


def compared_item_by_item(specs: Sequence[SeriesSpec]) -> set[str]:
    """The labels of a client's series whose answers a gap compares item by item (the
    therapist form declares topic pairs): only these series need their answers read."""
    labels: set[str] = set()
    for spec in specs:
        at = _twin(spec, specs)
        if at is not None and specs[at].pairs:
            labels |= {spec.label, specs[at].label}
    return labels


def _latest(series: Sequence[SeriesData]) -> Visit | None:
    """The client's latest session over every series. Within a series the session number
    orders sessions (an undated session 2 comes after a dated session 1); between series,
    each one's last session by its latest date, then its number; ties go to the first
    instrument and rater in name order (as ``views._one_row``)."""
    lasts = [
        (max((v.date for v in s.visits if v.date), default=""), s.visits[-1].session, s)
        for s in sorted(series, key=lambda s: (s.spec.instrument, s.spec.rater))
        if s.visits
    ]
    if not lasts:
        return None
    return max(lasts, key=lambda t: (t[0], t[1]))[2].visits[-1]


# -- specs from instrument files -----------------------------------------------------------
def reliable_change(sd: float, reliability: float) -> float:
    """Smallest reliable change (Jacobson & Truax, 1991): 1.96 · √2 · SD · √(1 − r)."""
    return Z_RELIABLE * math.sqrt(2) * sd * math.sqrt(1 - reliability)


def spec_of(inst: Any, rater: str) -> SeriesSpec:
    """What the rules need of an instrument (a compiled or validated definition)."""
    low, high = float(inst.scale.min), float(inst.scale.max)
    unit_size = max(float(inst.scale.step), (high - low) / 10)  # a step, or 1 on a 0-10 line
    data = inst.data if hasattr(inst, "data") else inst.model_dump(mode="json")
    norm = inst.norms[0] if inst.norms else None
    scales: dict[str, ScaleSpec] = {}
    names = {s.id: s.name for s in inst.subscales}
    names[TOTAL] = inst.total.name
    for sid in [*names]:
        n = inst.scale_item_count(sid)
        unit = unit_size * change.pomp_factor(low, high, n, "sum")  # one item, one unit
        jt = None
        if norm is not None and sid in norm.scales:
            ref = norm.scales[sid]
            jt = (
                reliable_change(ref.sd, ref.reliability)
                * change.pomp_factor(low, high, n, norm.metric),
                f"{JT_SOURCE}: SD {ref.sd:g}, r {ref.reliability:g} ({norm.sample}, "
                f"n = {norm.n}; {' '.join(norm.citation.split())})",
            )
        cut = next((c for c in inst.cutoffs if c.scale == sid), None)
        cutoff = None
        if cut is not None:
            cutoff = Cutoff(
                cut.threshold, cut.comparison, cut.metric, (low, high, n),
                " ".join(cut.message.split()), " ".join(cut.source.split()),
            )  # fmt: skip
        band = next((b for b in inst.bands if b.scale == sid and len(b.levels) > 1), None)
        low_band = None
        if band is not None:
            levels = sorted(band.levels, key=lambda lv: lv.min)
            top = change.pomp_of(levels[1].min, band.metric, low, high, n)
            low_band = (top, levels[0].label, " ".join(band.source.split()))
        scales[sid] = ScaleSpec(names[sid], unit, n, jt, cutoff, low_band)
    item_scales = {item: s.id for s in inst.subscales for item in s.items}
    pairs = {str(k): str(v) for k, v in (data.get("counterpart_items") or {}).items()}
    return SeriesSpec(
        inst.id,
        rater,
        inst.short_name or inst.id,
        scales,
        tuple(inst.item_ids()),
        frozenset(i.id for i in inst.items if i.reverse),
        (low, high),
        item_scales,
        inst.counterpart,
        pairs,
    )


def bare_spec(instrument: str, rater: str, names: dict[str, str]) -> SeriesSpec:
    """A spec for a series whose definition is no longer loadable: names only, and a
    threshold floor of 5 POMP (no cutoff, no pairs)."""
    return SeriesSpec(
        instrument, rater, instrument, {sid: ScaleSpec(name, 5.0) for sid, name in names.items()}
    )
