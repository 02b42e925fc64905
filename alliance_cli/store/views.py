"""Views over the stored sessions: one client's history with its flags, and the caseload."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from alliance_cli.core import change
from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import AllianceError, UsageProblem
from alliance_cli.core.scorer import DIGITS, below_cutoff
from alliance_cli.store.sqlite import Record, Store


# -- analysis over stored sessions ---------------------------------------------------------
def _series(records: Sequence[Record]) -> change.Series:
    series = change.Series()
    for rec in records:
        for sid, s in rec.score["scales"].items():
            series.names[sid] = s["name"]
            series.scales.setdefault(sid, []).append(change.Point(rec.session, rec.date, s["pomp"]))
    return series


def _factors(instrument: Any) -> Callable[[str], dict[str, float]]:
    def factors(scale: str) -> dict[str, float]:
        try:
            n = instrument.scale_item_count(scale)
        except KeyError:  # a scale the current file no longer has: stored scores stay readable
            return {"mean": 1.0, "sum": 1.0}
        low, high = instrument.scale.min, instrument.scale.max
        return {m: change.pomp_factor(low, high, n, m) for m in ("mean", "sum")}

    return factors


def analyse(
    records: Sequence[Record],
    instruments: dict[str, Any],
    settings: change.Settings,
    counterparts: Sequence[Record] = (),
) -> tuple[list[change.ChangeFlag], dict[str, change.Reliability]]:
    """Every flag a client's sessions on one instrument and rater raise, and the thresholds."""
    if not records:
        return [], {}
    inst = instruments.get(records[0].instrument)
    series = _series(records)
    flags: list[change.ChangeFlag] = []
    reliabilities: dict[str, change.Reliability] = {}
    norm = inst.norms[0] if inst is not None and inst.norms else None
    factors = _factors(inst) if inst is not None else None
    for sid, points in series.scales.items():
        by_metric = factors(sid) if factors else {"mean": 1.0, "sum": 1.0}
        values = [p.pomp for p in points if p.pomp is not None]
        rel = change.reliability_for(norm, sid, by_metric, values)
        reliabilities[sid] = rel
        flags += change.analyse_scale(sid, series.names[sid], points, rel, settings)
    if inst is not None:
        for rec in records:
            total = rec.score["scales"][TOTAL]
            raw = {"mean": total["mean"], "sum": total["sum"]}
            flag = change.early_low(rec.session, total["pomp"], raw, inst, settings)
            if flag:
                flags.append(flag)
    for rec in records:  # a score below its instrument's cutoff, as the score itself said
        for f in rec.score.get("flags", []):
            if f.get("code") == "below_cutoff":
                flags.append(
                    change.ChangeFlag("below_cutoff", f["scale"], rec.session, f["rule"],
                                      f["message"])
                )  # fmt: skip
    other = {r.session: r for r in counterparts}
    for rec in records:
        twin = other.get(rec.session)
        if twin is None:
            continue
        mine = {k: (v["name"], v["pomp"]) for k, v in rec.score["scales"].items()}
        theirs = {k: (v["name"], v["pomp"]) for k, v in twin.score["scales"].items()}
        client, therapist = (mine, theirs) if rec.rater == "client" else (theirs, mine)
        flags += change.gaps(rec.session, client, therapist, settings)
    flags.sort(key=lambda f: (f.session, f.scale != TOTAL, f.scale, f.code))
    return flags, reliabilities


@dataclass(frozen=True)
class ScalePoint:
    """One scale of one stored session."""

    name: str
    mean: float | None
    sum: float | None
    pomp: float | None


@dataclass(frozen=True)
class SessionView:
    """One stored session, as it was scored."""

    session: int
    date: str | None
    scales: dict[str, ScalePoint]
    verification: str | None
    definition_sha256: str
    definition_current: bool  # scored with the definition file alliance would use now
    flags_at_save: list[dict[str, Any]]  # what alliance said when the session was saved


@dataclass(frozen=True)
class SeriesView:
    """One client's sessions on one instrument by one rater, with what the history says."""

    client_id: str
    instrument: str
    rater: str
    metric: str
    verification: str | None
    sessions: list[SessionView]
    reliable_change: dict[str, change.Reliability]
    flags: list[change.ChangeFlag]

    def as_dict(self) -> dict[str, Any]:
        """The series as JSON data (``alliance history -f json``)."""
        return {
            "client_id": self.client_id,
            "instrument": self.instrument,
            "rater": self.rater,
            "metric": self.metric,
            "verification": self.verification,
            "sessions": [asdict(s) for s in self.sessions],
            "reliable_change": {
                k: {
                    "threshold_pomp": None if v.threshold is None else round(v.threshold, DIGITS),
                    "source": v.source,
                }
                for k, v in self.reliable_change.items()
            },
            "flags": [f.as_dict() for f in self.flags],
        }


def _session_view(rec: Record, current: str | None) -> SessionView:
    scales = {
        k: ScalePoint(v["name"], v["mean"], v["sum"], v["pomp"])
        for k, v in rec.score["scales"].items()
    }
    return SessionView(
        rec.session,
        rec.date,
        scales,
        rec.score["instrument"].get("verification"),
        rec.sha256,
        current is None or rec.sha256 == current,
        [{k: v for k, v in f.items() if k != "session"} for f in rec.said_flags],
    )


def client_view(
    store: Store, client_id: str, instrument: str | None, catalog: Any, settings: change.Settings
) -> list[SeriesView]:
    """Per instrument and rater: sessions, thresholds and flags for one client."""
    records = store.records(client_id, instrument)
    if not records:
        others = store.records(client_id) if instrument else []
        if others:
            kinds = sorted({r.instrument for r in others})
            raise UsageProblem(
                f"client {client_id!r} has no sessions on {instrument}; their sessions are on "
                f"{', '.join(kinds)} (drop --instrument, or choose one of those)"
            )
        raise unknown_client(store, client_id)
    groups: dict[tuple[str, str], list[Record]] = {}
    for rec in records:
        groups.setdefault((rec.instrument, rec.rater), []).append(rec)
    instruments = defined_instruments(catalog, {k[0] for k in groups})
    out = []
    for (inst_id, rater), recs in groups.items():
        inst = instruments.get(inst_id)
        counterparts: list[Record] = []
        if inst is not None and inst.counterpart:
            counterparts = store.records(client_id, inst.counterpart)
        flags, rels = analyse(recs, instruments, settings, counterparts)
        current = _current_sha(catalog, inst_id)
        sessions = [_session_view(r, current) for r in recs]
        out.append(
            SeriesView(
                client_id,
                inst_id,
                rater,
                recs[0].score["metric"],
                sessions[-1].verification,
                sessions,
                rels,
                flags,
            )
        )
    return out


def unknown_client(store: Store, client_id: str) -> UsageProblem:
    """The error for a client id with no records, suggesting the ids it may have meant.

    Typos are routine: the same id in another case, or the closest spellings, are offered.
    """
    import difflib

    ids = store.client_ids()
    same_case = [i for i in ids if i.lower() == client_id.lower()]
    close = same_case or difflib.get_close_matches(client_id, ids, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    return UsageProblem(f"no sessions recorded for client {client_id!r}{hint}")


def _current_sha(catalog: Any, instrument_id: str) -> str | None:
    """The hash of the definition file alliance would score with now (None if none loads)."""
    try:
        return str(catalog.get(instrument_id).sha256)
    except AllianceError:
        return None


def defined_instruments(catalog: Any, ids: Iterable[str]) -> dict[str, Any]:
    """The instruments of these ids the catalog defines now (a stored series may outlive its
    definition: its scores stay readable, only what needs the definition is left out)."""
    found = {}
    for key in ids:
        try:
            found[key] = catalog.get(key).instrument
        except AllianceError:  # no longer defined, or now broken: scores stay readable
            continue
    return found


def flags_for(
    store: Store, score: dict[str, Any], catalog: Any, settings: change.Settings
) -> list[dict[str, Any]]:
    """The flags the history raises for the session just recorded."""
    who = score["respondent"]
    views = client_view(store, str(who["client_id"]), score["instrument"]["id"], catalog, settings)
    return [
        f.as_dict()
        for view in views
        if view.rater == who.get("rater")
        for f in view.flags
        if f.session == who["session"]
    ]


def _floats(text: str) -> list[float | None]:
    return [None if t == "n" else float(t) for t in text.split(",")]


class CaseloadRow(NamedTuple):
    """One client in the caseload: their latest reading and what is open."""

    client_id: str
    instrument: str
    rater: str
    sessions: int
    last_session: int
    last_date: str | None
    last_total_pomp: float | None
    trend: str
    open_flags: list[str]
    counselor: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON data (``alliance clients -f json``)."""
        return self._asdict()

    def concern_groups(self) -> list[ConcernGroup]:
        """The open concerns grouped by kind and series, their scales together.

        ``rupture_2sd on task`` and ``rupture_2sd on bond`` are one group with scales
        (task, bond); a concern on the total alone has the scales (total,).
        """
        grouped: dict[tuple[str, str], list[str]] = {}
        for text in self.open_flags:
            found = _CONCERN.match(text)
            code, scale, series = found.groups() if found else (text, None, None)
            grouped.setdefault((code, series or ""), []).append(scale or TOTAL)
        return [ConcernGroup(c, series, tuple(sc)) for (c, series), sc in grouped.items()]

    def concern_lines(self) -> list[tuple[str, str]]:
        """(code, line) per kind of open concern, its scales grouped: for people
        (``rupture_2sd (wai-sr): task, bond``; a concern on the total alone: its code)."""
        return [(g.code, g.line()) for g in self.concern_groups()]


class ConcernGroup(NamedTuple):
    """One kind of open concern in one series, with the scales it is open on."""

    code: str
    series: str  # "" for a client's one series, else "wai-sr" or "wai-sr-t, therapist"
    scales: tuple[str, ...]

    def line(self) -> str:
        """``rupture_2sd (wai-sr): task, bond``, or the bare code on the total alone."""
        where = f" ({self.series})" if self.series else ""
        tail = "" if self.scales == (TOTAL,) else ": " + ", ".join(self.scales)
        return f"{self.code}{where}{tail}"


# an open concern as the caseload writes it: "code[ on scale][ (instrument[, rater])]"
_CONCERN = re.compile(r"^(\S+)(?: on (\S+))?(?: \((.+)\))?$")


_TREND_ORDER = {"down": 0, "steady": 1, "up": 2}


@dataclass(frozen=True)
class CaseloadFilter:
    """Which clients the caseload shows (``alliance clients`` options)."""

    counselor: str | None = None  # case-insensitive
    instrument: str | None = None
    since: str | None = None  # ISO date: a session on or after it
    only_open: bool = False

    def keeps_series(self, instrument: str, last_date: str | None, counselor: str | None) -> bool:
        """Whether one series (instrument, its last date, its counselor) is shown."""
        if self.instrument and instrument != self.instrument:
            return False
        if self.since and (last_date is None or last_date < self.since):
            return False
        return not self.counselor or (counselor or "").lower() == self.counselor.lower()


def caseload(
    store: Store,
    catalog: Any,
    settings: change.Settings,
    filters: CaseloadFilter | None = None,
) -> list[CaseloadRow]:
    """One row per client (every series' open concerns), most in need of attention first.

    The whole list (no filter) is kept until any session changes, and each series' reading
    until one of its sessions does (``store.sqlite`` migrations 6 and 7): only what changed
    since is read again.
    """
    want = filters or CaseloadFilter()
    stamps: dict[str, str] = {}

    def stamp(inst_id: str) -> str:  # what a kept reading depends on besides the sessions
        if inst_id not in stamps:
            sha = _current_sha(catalog, inst_id) or "-"
            stamps[inst_id] = f"{CASELOAD_RULES}|{sha}|{settings!r}"
        return stamps[inst_id]

    def list_stamp(instruments: Iterable[str]) -> str:
        return "\n".join(stamp(i) for i in sorted(set(instruments)))

    whole = want == CaseloadFilter()  # no filter: the kept list may answer at once
    store.db.execute("BEGIN")  # the kept readings and the sessions, read at one moment
    try:
        version, kept_stamp, kept_rows = store.snapshot()
        fresh = kept_rows is not None and list_stamp(store.caseload_instruments()) == kept_stamp
        if whole and fresh:
            return [CaseloadRow(*r) for r in json.loads(str(kept_rows))]
        series_rows, readings, gone = _series_readings(store, catalog, settings, stamp)
    finally:
        store.rollback()
    if readings or gone:  # after the read: keeping takes the write lock
        store.keep_caseload(readings, gone)
    series_of: dict[str, list[CaseloadRow]] = {}
    for row in series_rows:
        if want.keeps_series(row.instrument, row.last_date, row.counselor):
            series_of.setdefault(row.client_id, []).append(row)
    clients = (_one_row(all_series) for all_series in series_of.values())
    result = sorted(
        (one for one in clients if not want.only_open or one.open_flags),
        key=lambda r: (
            -len(r.open_flags),
            _TREND_ORDER[r.trend],
            r.last_total_pomp if r.last_total_pomp is not None else 101,
            r.client_id,
        ),
    )
    if whole:
        rows_json = json.dumps([list(r) for r in result])
        store.keep_snapshot(version, list_stamp(r.instrument for r in series_rows), rows_json)
    return result


def _series_readings(
    store: Store, catalog: Any, settings: change.Settings, stamp: Callable[[str], str]
) -> tuple[list[CaseloadRow], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every series' reading: kept ones whose stamp is current, the others read again;
    with what to keep of those (``Store.keep_caseload``'s readings and gone series)."""
    kept = store.kept_caseload()
    now = {inst_id: stamp(inst_id) for inst_id in {k[1] for k in kept}}
    stale = {(k[0], k[1], k[2]): k[3] for k in kept if k[4] != now[k[1]]}
    read = _read_series(store, catalog, settings, store.caseload_rows(set(stale))) if stale else []
    found = {(r.client_id, r.instrument, r.rater) for r in read}
    readings = [
        (stamp(r.instrument), r.sessions, r.last_session, r.last_date, r.last_total_pomp,
         r.trend, "\n".join(r.open_flags), r.counselor,
         r.client_id, r.instrument, r.rater, stale[(r.client_id, r.instrument, r.rater)])
        for r in read
    ]  # fmt: skip
    gone = [(*key, seen) for key, seen in stale.items() if key not in found]
    new = CaseloadRow.__new__  # tens of thousands of rows: skip the keyword-aware __init__
    current = [
        new(CaseloadRow, k[0], k[1], k[2], k[5], k[6], k[7], k[8], k[9],
            k[10].split("\n") if k[10] else [], k[11])
        for k in kept
        if k[4] == now[k[1]]
    ]  # fmt: skip
    return read + current, readings, gone


def series_concerns(
    store: Store,
    catalog: Any,
    settings: change.Settings,
    keys: set[tuple[str, str, str]],
) -> CaseloadRow | None:
    """One client's caseload row (every series' open concerns), read for these series only:
    what ``clients`` shows for the client, without reading the whole caseload."""
    read = _read_series(store, catalog, settings, store.caseload_rows(only=keys))
    return _one_row(read) if read else None


def _read_series(
    store: Store, catalog: Any, settings: change.Settings, rows: list[tuple[Any, ...]]
) -> list[CaseloadRow]:
    """Read each series from the caseload index: its latest numbers and open concerns."""
    instruments = defined_instruments(catalog, {r[1] for r in rows})
    read: list[CaseloadRow] = []
    for row_data in rows:
        client_id, inst_id, rater, sessions_text, pomps, last_date, counselor = row_data[:7]
        sessions = [int(s) for s in sessions_text.split(",")]
        totals = _floats(pomps)
        order = None
        if sessions != sorted(sessions):
            order = sorted(range(len(sessions)), key=sessions.__getitem__)
            sessions, totals = [sessions[i] for i in order], [totals[i] for i in order]
        valid = [t for t in totals if t is not None]
        inst = instruments.get(inst_id)
        norm = inst.norms[0] if inst is not None and inst.norms else None
        factors = _factors(inst) if inst is not None else None
        rel = change.reliability_for(norm, TOTAL, factors(TOTAL) if factors else _UNIT, valid)
        open_flags = _scale_concerns(totals, valid, rel.threshold, settings)
        series = (store, client_id, inst_id, rater)
        if inst is not None and _early_risk_open(sessions, totals, series, inst, settings):
            open_flags.append("early_low_alliance")
        if inst is not None and _below_cutoff_now(inst, totals[-1]):
            open_flags.append("below_cutoff")  # open until a later session is above it
        for sid, values in _subscales(row_data[7:], order, series).items():
            have = [v for v in values if v is not None]
            sub = change.reliability_for(norm, sid, factors(sid) if factors else _UNIT, have)
            codes = _scale_concerns(values, have, sub.threshold, settings)
            if inst is not None and _below_cutoff_now(inst, values[-1], sid):
                codes.append("below_cutoff")
            open_flags += [f"{code} on {sid}" for code in codes]
        row = CaseloadRow(
            client_id,
            inst_id,
            rater,
            len(sessions),
            sessions[-1],
            last_date,
            totals[-1],
            change.trend(valid[-6:], rel.threshold),
            open_flags,
            counselor,
        )
        read.append(row)
    return read


CASELOAD_RULES = 1  # raise when a rule changes: every kept caseload reading is then stale
_UNIT = {"mean": 1.0, "sum": 1.0}  # POMP factors when the instrument is no longer defined


def _scale_concerns(
    values: list[float | None], valid: list[float], threshold: float | None, s: change.Settings
) -> list[str]:
    """The open concerns of one scale: what its latest session raises (if it has a value),
    and a rupture no later session has repaired."""
    codes = sorted(change.latest_concerns(valid, threshold, s)) if values[-1] is not None else []
    unrepaired = _unrepaired_rupture(valid, s)
    if unrepaired and unrepaired not in codes:
        codes.append(unrepaired)  # open until a later session repairs it
    return codes


def _subscales(
    columns: Sequence[str], order: list[int] | None, series: tuple[Store, str, str, str]
) -> dict[str, list[float | None]]:
    """Each subscale's POMP values in session order, from the caseload index's columns.

    One series whose definition changed its subscales is read per session instead: each
    subscale the latest session has, over the sessions that have it.
    """
    low, high, text = columns
    if not high:
        return {}
    if low == high:
        cells = [t.split(",") for t in text.split(";")]
        if order is not None:
            cells = [cells[i] for i in order]
        return {
            sid: [None if t == "n" else float(t) for t in column]
            for sid, column in zip(high.split(","), zip(*cells, strict=True), strict=True)
        }
    store, client_id, inst_id, rater = series
    per_session = [
        dict(zip(ids.split(","), pomps.split(","), strict=True))
        for ids, pomps in store.subscale_rows(client_id, inst_id, rater)
        if ids
    ]
    return (
        {sid: [_float_or_none(d[sid]) for d in per_session if sid in d] for sid in per_session[-1]}
        if per_session
        else {}
    )


def _float_or_none(text: str) -> float | None:
    return None if text == "n" else float(text)


def _unrepaired_rupture(values: list[float], settings: change.Settings) -> str | None:
    """The code of the latest rupture (on the total) that no later session has repaired.

    The same rules as the history (``change.rupture_test`` and the repair rule), each
    rupture judged as it was when its session was the latest (what was said then). Walked
    from the latest session back, and only as far as one can still be open: every session
    after an open rupture is at least 5 POMP below the mean before it, so once a later
    session comes within 5 POMP of the highest, none before can be open.
    """
    n = len(values)
    if n < change.MIN_OTHER_SESSIONS + 1:
        return None
    floor = change.SD_FLOOR_POMP
    top = max(values)
    sums = list(itertools.accumulate(values))
    later = float("-inf")  # the highest value after session i
    for i in range(n - 1, 0, -1):
        if later >= top - floor:
            return None
        if values[i - 1] - values[i] >= floor and later < sums[i - 1] / i - floor:
            test = change.rupture_test(values[: i + 1], i, settings.rupture_rules)
            if test is not None and test[0]:
                level, sd = sums[i - 1] / i, test[3]
                if later < level - sd:
                    return f"rupture_{max(test[0]):g}sd"
        later = max(later, values[i])
    return None


def _below_cutoff_now(inst: Any, pomp: float | None, scale: str = TOTAL) -> bool:
    """Whether a scale's value (given in POMP, as the caseload index keeps it) is below a
    cutoff the instrument sets for that scale, by the one cutoff rule."""
    if pomp is None or not any(cut.scale == scale for cut in inst.cutoffs):
        return False
    low, high, n = inst.scale.min, inst.scale.max, inst.scale_item_count(scale)
    return any(
        below_cutoff(change.value_of(pomp, cut.metric, low, high, n), cut.comparison,
                     cut.threshold)
        for cut in inst.cutoffs
        if cut.scale == scale
    )  # fmt: skip


def _one_row(all_series: list[CaseloadRow]) -> CaseloadRow:
    """One row for a client with every series' open concerns: none is hidden by another.

    The numbers are those of the main series (client-rated first, then the most recent);
    with several series each concern names its instrument (and rater, if not the client),
    e.g. ``rupture_2sd (wai-sr)`` or ``slow_decline on task (wai-sr)``.
    """
    if len(all_series) == 1:
        return all_series[0]
    # client-rated first, then the latest date (a dated series before an undated one), then
    # the longest; ties go to the first instrument in name order (max keeps the first best)
    ordered = sorted(all_series, key=lambda r: (r.instrument, r.rater))
    main = max(ordered, key=lambda r: (r.rater == "client", r.last_date or "", r.sessions))
    if not any(r.open_flags for r in all_series):
        return main
    concerns = [
        f"{code} ({r.instrument}{'' if r.rater == 'client' else ', ' + r.rater})"
        for r in sorted(all_series, key=lambda r: (r is not main, r.instrument, r.rater))
        for code in r.open_flags
    ]
    return main._replace(open_flags=concerns)


def _early_risk_open(
    sessions: list[int],
    pomps: list[float | None],
    series: tuple[Store, str, str, str],
    inst: Any,
    settings: change.Settings,
) -> bool:
    """Early risk stays open while a low early alliance has not improved past the same rule."""
    if sessions[0] > settings.early_sessions:
        return False
    means: list[Any]
    sums: list[Any]
    if not inst.cutoffs and not inst.bands:  # the POMP setting decides: raw totals not needed
        early = [p for s, p in zip(sessions, pomps, strict=True) if s <= settings.early_sessions]
        if all(p is None or p >= settings.early_pomp for p in early):
            return False  # the common case, decided without building flags
        means = sums = [None] * len(sessions)
    else:  # cutoffs are stated in means or sums: read them for this series only
        store, client_id, inst_id, rater = series
        raw = store.raw_totals(client_id, inst_id, rater)
        sessions, pomps = [r[0] for r in raw], [r[1] for r in raw]
        means, sums = [r[2] for r in raw], [r[3] for r in raw]
    flagged = any(
        change.early_low(s, p, {"mean": m, "sum": t}, inst, settings)
        for s, p, m, t in zip(sessions, pomps, means, sums, strict=True)
        if s <= settings.early_sessions
    )
    if not flagged:
        return False
    still = change.Settings(
        early_sessions=max(sessions[-1], settings.early_sessions), early_pomp=settings.early_pomp
    )
    latest = {"mean": means[-1], "sum": sums[-1]}
    return change.early_low(sessions[-1], pomps[-1], latest, inst, still) is not None


_POMP_WORDS = "% of the maximum possible score"


def plain_story(view: SeriesView) -> list[tuple[str, str]]:
    """What the history says, one plain sentence per event, scales grouped.

    (when, what) pairs: one per session and kind of event (a drop is named once, for all
    the scales it touched, with the repair that followed); rule names, SDs and sources are
    left to ``--details``. The unit is named in words the first time it appears.
    """
    names = {sid: p.name for sid, p in view.sessions[0].scales.items()}
    every = set(names)
    pomps = {(s.session, sid): p.pomp for s in view.sessions for sid, p in s.scales.items()}
    order = [s.session for s in view.sessions]
    unit = [_POMP_WORDS]  # the first mention spells the unit out, later ones say "%"

    def pct() -> str:
        return unit.pop() if unit else "%"

    def scales(sids: set[str]) -> str:
        if sids >= every - {TOTAL} and len(every) > 1:
            return "all scales"
        return ", ".join(names[s] for s in sorted(sids, key=list(names).index))

    by_session: dict[int, dict[str, set[str]]] = {}
    for f in view.flags:
        kind = "rupture" if f.code.startswith("rupture") else f.code
        by_session.setdefault(f.session, {}).setdefault(kind, set()).add(f.scale)
    repairs = {s: kinds.get("repair", set()) for s, kinds in by_session.items()}
    lines: list[tuple[str, str]] = []
    for session in sorted(by_session):
        kinds = by_session[session]
        dropped = kinds.get("rupture", set()) | kinds.get("reliable_drop", set())
        if dropped:
            sharp = "sharp drop" if "rupture" in kinds else "drop larger than measurement noise"
            before = order[order.index(session) - 1] if order.index(session) else -1
            # the figures of the scale that dropped: the total's when it is one of them
            show = [TOTAL] if TOTAL in dropped or scales(dropped) == "all scales" else dropped
            moves = [
                (names[sid].lower() if sid == TOTAL else names[sid], a, b)
                for sid in sorted(show, key=list(names).index)
                if (a := pomps.get((before, sid))) is not None
                and (b := pomps.get((session, sid))) is not None
            ]
            moved = ", ".join(f"{n} {a:.0f} → {b:.0f}" for n, a, b in moves)
            moved = f" ({moved} {pct()})" if moves else ""
            text = f"{sharp.capitalize()} on {scales(dropped)}{moved}."
            later = [s for s in sorted(repairs) if s > session and repairs[s] & dropped]
            if later:
                back = repairs[later[0]] & dropped
                who = "" if back == dropped else f" ({scales(back)})"
                text += f" Recovered in session {later[0]}{who}."
            lines.append((f"Session {session}:", text))
        gained = kinds.get("reliable_gain", set()) - kinds.get("repair", set())
        if gained:
            rise = f"A rise larger than measurement noise on {scales(gained)}."
            lines.append((f"Session {session}:", rise))
        if "slow_decline" in kinds:
            slid = kinds["slow_decline"]
            which = TOTAL if TOTAL in slid else min(slid, key=list(names).index)
            first, last = pomps.get((order[0], which)), pomps.get((session, which))
            label = "total" if which == TOTAL else names[which]
            known = (TOTAL in slid or len(slid) == 1) and first is not None and last is not None
            span = f" ({label} {first:.0f} → {last:.0f} {pct()})" if known else ""
            lines.append(
                (
                    f"By session {session}:",
                    f"A gradual slide on {scales(slid)}{span}, more than noise over the "
                    "sessions taken together.",
                )
            )
        if "early_low_alliance" in kinds:
            lines.append(
                (
                    f"Session {session}:",
                    "A low alliance early in treatment. In substance-use treatment this "
                    "predicts dropout: worth acting on now.",
                )
            )
        if "below_cutoff" in kinds:
            low = scales(kinds["below_cutoff"])
            lines.append((f"Session {session}:", f"Below the instrument's cutoff on {low}."))
        if "rater_gap" in kinds:
            gap = scales(kinds["rater_gap"])
            lines.append(
                (f"Session {session}:", f"Client and therapist see {gap} differently; compare.")
            )
    return _merge_runs(lines, order)


def _merge_runs(lines: list[tuple[str, str]], order: list[int]) -> list[tuple[str, str]]:
    """The same sentence in consecutive sessions said once: "Sessions 1–3: …"."""
    runs: list[tuple[list[int], str, str]] = []  # (sessions, prefix, text)
    position = {s: i for i, s in enumerate(order)}
    for when, text in lines:
        prefix, _, number = when.rstrip(":").rpartition(" ")
        if prefix != "Session" or not number.isdigit():
            runs.append(([], when, text))
            continue
        session = int(number)
        for sessions, kind, said in runs:
            follows = sessions and position.get(sessions[-1], -2) + 1 == position.get(session)
            if kind == "Session" and said == text and follows:
                sessions.append(session)
                break
        else:
            runs.append(([session], "Session", text))
    out = []
    for sessions, kind, text in runs:
        if not sessions:
            out.append((kind, text))
        elif len(sessions) == 1:
            out.append((f"Session {sessions[0]}:", text))
        else:
            out.append((f"Sessions {sessions[0]}–{sessions[-1]}:", text))
    return out
