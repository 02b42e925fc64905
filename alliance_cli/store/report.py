"""What the HTML reports show, gathered from the history: the same views as ``history`` and
``clients`` (so the words and the concerns are the same), shaped for ``render.html``.

One reading feeds every part of a page: the "before this session" list, the chart markers,
the gap shading and the table flags all come from the concerns of ``views.client_view``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

from alliance_cli.core import change, reading
from alliance_cli.core.compiled import TOTAL
from alliance_cli.store import views
from alliance_cli.store.base import HistoryStore as Store


@dataclass(frozen=True)
class Line:
    """One form's values of a scale over sessions, in the chart's unit."""

    rater: str  # "client", "therapist", ...
    points: dict[int, float]  # session -> value (a session without one is a break)


@dataclass(frozen=True)
class ChartData:
    """One scale over sessions, with what the reading marks on it."""

    key: str  # unique in the page, for ids
    title: str  # the scale's name
    series: str  # the instrument (and rater) it belongs to, for the chart's accessible name
    unit: str  # "POMP" (0-100) or "sum" (the instrument's own metric, with its cutoff)
    low: float
    high: float
    sessions: list[int]  # every session on the x axis, in order
    lines: list[Line]  # the main form first, then its counterpart (therapist) if any
    cutoff: tuple[float, str] | None = None  # (value in the unit, label)
    band: tuple[float, float] | None = None  # what the next session is measured by (NextSession)
    drops: list[int] = field(default_factory=list)  # sessions a drop began
    recovered: list[int] = field(default_factory=list)  # sessions a drop ended
    gaps: list[tuple[int, int | None]] = field(default_factory=list)  # (began, resolved) runs
    notes: list[str] = field(default_factory=list)  # e.g. "no therapist form in sessions 4-6"


@dataclass(frozen=True)
class InstrumentInfo:
    """What the report says about an instrument: name, key level, licence, hash."""

    id: str
    name: str
    verification: str
    licence: str
    sha256: str
    citation: str


@dataclass(frozen=True)
class Group:
    """The series drawn together: one form and, where the client has it, its counterpart."""

    title: str
    views: list[views.SeriesView]  # the main series first
    charts: list[ChartData]


def page_name(client_id: str) -> str:
    """A safe file name for a client's page: ``C-107.html`` for a plain id; any other id
    (slashes, dots, spaces, bidi controls, great length) as its plain letters and a short
    digest of the whole id, so that two ids never share a page."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", client_id):
        return f"{client_id}.html"
    plain = re.sub(r"[^A-Za-z0-9_-]+", "_", client_id).strip("_")[:48] or "client"
    digest = hashlib.sha256(client_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{plain}-{digest}.html"


def client_data(
    store: Store,
    client_id: str,
    instrument: str | None,
    catalog: Any,
    settings: reading.Settings,
    generated: str,
    index: str | None = None,
    on_progress: views.OnProgress | None = None,
    today: str | None = None,
) -> dict[str, Any]:
    """What one client's report shows (``render.html.client_report``'s arguments): the same
    reading as ``history`` and ``clients``, so the words and the concerns are the same."""
    series = views.client_view(
        store, client_id, instrument, catalog, settings, today, on_progress=on_progress
    )
    defined = views.defined_instruments(catalog, {s.instrument for s in series})
    stories = [(f"{s.instrument} ({s.rater})", views.plain_story(s)) for s in series]
    concerns = sorted(
        (c for s in series for c in s.concerns if c.is_open),
        key=lambda c: (reading.SEVERITY_ORDER[c.severity], -c.began),
    )
    infos: dict[str, InstrumentInfo] = {}
    for view in series:
        inst = defined.get(view.instrument)
        if inst is not None and view.instrument not in infos:
            entry = catalog.get(view.instrument)
            infos[view.instrument] = InstrumentInfo(
                view.instrument, inst.name, inst.verification.status,
                " ".join(inst.licence.split()), entry.sha256, " ".join(inst.citation.split()),
            )  # fmt: skip
    return {
        "client_id": client_id,
        "concerns": concerns,
        "stories": stories,
        "groups": _groups(series, defined),
        "instruments": infos,
        "generated": generated,
        "source": store.source_name,  # the file name only: no home folder in a report
        "index": index,
    }


def _groups(series: list[views.SeriesView], defined: dict[str, Any]) -> list[Group]:
    """The series to draw, each client-rated form with its counterpart where there is one."""
    taken: set[int] = set()
    groups = []
    for n, view in enumerate(series):
        if n in taken:
            continue
        inst = defined.get(view.instrument)
        twin_n = None
        if inst is not None and inst.counterpart and view.rater == "client":
            twin_n = next(
                (k for k, other in enumerate(series)
                 if k not in taken and k != n and other.instrument == inst.counterpart),
                None,
            )  # fmt: skip
        taken.add(n)
        members = [view]
        if twin_n is not None:
            taken.add(twin_n)
            members.append(series[twin_n])
        name = inst.name if inst is not None else view.instrument
        raters = " and ".join(m.rater for m in members)
        forms = " and ".join(m.instrument for m in members)
        groups.append(
            Group(f"{name} ({forms}), rated by {raters}", members, _charts(members, inst, n))
        )
    return groups


def _charts(members: list[views.SeriesView], inst: Any, n: int) -> list[ChartData]:
    """One chart per scale of the main series; the counterpart's line on the same chart."""
    main = members[0]
    scale_ids: dict[str, str] = {}
    for sess in main.sessions:
        for sid, scale in sess.scales.items():
            scale_ids.setdefault(sid, scale.name)
    order = [s for s in scale_ids if s != TOTAL] + [s for s in scale_ids if s == TOTAL]
    sessions = sorted({s.session for m in members for s in m.sessions})
    label = f"{main.instrument} ({main.rater})"
    out = []
    for sid in order:
        cutoff = _cutoff(inst, sid)
        own_metric = cutoff is not None and cutoff[2] == "sum" and len(members) == 1
        items = _items(inst, sid)
        if own_metric and items:
            low, high = inst.scale.min * items, inst.scale.max * items
            unit = "sum"
        else:
            low, high, unit = 0.0, 100.0, "POMP"
        lines = []
        for member in members:
            values = {}
            for s in member.sessions:
                point = s.scales.get(sid)
                if point is None:
                    continue
                value = point.sum if unit == "sum" else point.pomp
                if value is not None:
                    values[s.session] = value
            lines.append(Line(member.rater, values))
        notes = []
        for line in lines[1:]:
            missing = [s for s in sessions if s not in line.points]
            if missing and line.points:
                notes.append(f"no {line.rater} form in {_sessions_text(missing)}")
        next_band = main.following.bands.get(sid)  # in POMP: drawn in the chart's own metric
        band = None
        if next_band is not None:
            scale = (high - low) / 100
            band = (low + next_band[0] * scale, low + next_band[1] * scale)
        drawn_cut = None
        if cutoff is not None:
            value_pomp, text, _metric, raw = cutoff
            drawn_cut = (raw, text) if unit == "sum" else (value_pomp, text)
        concerns = [c for m in members for c in m.concerns if sid in c.scales]
        out.append(
            ChartData(
                key=f"{n}-{sid}",
                title=scale_ids[sid],
                series=label,
                unit=unit,
                low=low,
                high=high,
                sessions=sessions,
                lines=lines,
                cutoff=drawn_cut,
                band=band,
                drops=[c.began for c in concerns if c.kind == "drop"],
                recovered=[
                    c.resolved for c in concerns if c.kind == "drop" and c.resolved is not None
                ],
                gaps=[(c.began, c.resolved) for c in concerns if c.kind == "gap"],
                notes=notes,
            )
        )
    return out


def _sessions_text(sessions: list[int]) -> str:
    """[4, 5, 6] -> 'sessions 4–6'; [1, 2, 3, 5] -> 'sessions 1–3 and 5'; [7] -> 'session 7'."""
    runs: list[list[int]] = []
    for s in sessions:
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    parts = [f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs]
    listed = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return f"session{'s' if len(sessions) > 1 else ''} {listed}"


def _items(inst: Any, scale: str) -> int | None:
    if inst is None:
        return None
    try:
        return int(inst.scale_item_count(scale))
    except KeyError:
        return None


def _cutoff(inst: Any, scale: str) -> tuple[float, str, str, float] | None:
    """The scale's cutoff (or the top of its lowest band): (POMP, label, metric, value)."""
    n = _items(inst, scale)
    if n is None:
        return None
    low, high = inst.scale.min, inst.scale.max

    def pomp(value: float, metric: str) -> float:
        return change.pomp_of(value, metric, low, high, n)

    for cut in inst.cutoffs:
        if cut.scale == scale:
            label = f"cutoff {cut.threshold:g} ({cut.metric})"
            return pomp(cut.threshold, cut.metric), label, cut.metric, cut.threshold
    for band in inst.bands:
        if band.scale == scale and len(band.levels) > 1:
            levels = sorted(band.levels, key=lambda lv: lv.min)
            label = f"top of lowest band ({levels[0].label})"
            return pomp(levels[1].min, band.metric), label, band.metric, levels[1].min
    return None


def cutoff_pomps(catalog: Any, instruments: set[str]) -> dict[str, float]:
    """Each instrument's cutoff on its total, in POMP (for the caseload's sparklines)."""
    defined = views.defined_instruments(catalog, instruments)
    out = {}
    for inst_id, inst in defined.items():
        found = _cutoff(inst, TOTAL)
        if found is not None:
            out[inst_id] = found[0]
    return out


def caseload_data(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    filters: views.CaseloadFilter,
    described: str,
    generated: str,
    today: str | None = None,
    linked: bool = False,
    on_progress: views.OnProgress | None = None,
) -> dict[str, Any]:
    """What the caseload report shows (``render.html.caseload_report``'s arguments)."""
    rows = views.caseload(store, catalog, settings, filters, today, on_progress=on_progress)
    totals: dict[tuple[str, str, str], list[float | None]] = {}
    for client_id, inst_id, rater, sessions_text, pomps in store.total_series():
        pairs = sorted(
            zip((int(s) for s in sessions_text.split(",")), pomps.split(","), strict=True)
        )
        totals[(client_id, inst_id, rater)] = [None if p == "n" else float(p) for _, p in pairs]
    return {
        "rows": rows,
        "totals": totals,
        "cutoffs": cutoff_pomps(catalog, {r.instrument for r in rows}),
        "filters": described,
        "generated": generated,
        "source": store.source_name,
        "pages": {r.client_id: page_name(r.client_id) for r in rows} if linked else None,
    }
