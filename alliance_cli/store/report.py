"""What the HTML reports show, gathered from the history: the same views as ``history`` and
``clients`` (so the words and the concerns are the same), shaped for ``render.html``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alliance_cli.core import change, reading
from alliance_cli.core.compiled import TOTAL
from alliance_cli.store import views
from alliance_cli.store.sqlite import Store


@dataclass(frozen=True)
class ChartData:
    """One scale over sessions, in POMP, with what marks it."""

    key: str  # unique in the page, for ids
    title: str
    points: list[tuple[int, float | None]]  # (session, POMP)
    cutoff: tuple[float, str] | None  # (POMP, label)
    rc_band: tuple[float, float] | None  # (low, high) POMP around the first session
    ruptures: list[int]  # sessions
    repairs: list[int]


@dataclass(frozen=True)
class InstrumentInfo:
    """What the report says about an instrument: name, key level, licence, hash."""

    id: str
    name: str
    verification: str
    licence: str
    sha256: str
    citation: str


def client_data(
    store: Store,
    client_id: str,
    instrument: str | None,
    catalog: Any,
    settings: reading.Settings,
    generated: str,
) -> dict[str, Any]:
    """What one client's report shows (``render.html.client_report``'s arguments): the same
    reading as ``history`` and ``clients``, so the words and the concerns are the same."""
    series = views.client_view(store, client_id, instrument, catalog, settings)
    stories = [views.plain_story(s) for s in series]
    concerns = sorted((c for s in series for c in s.concerns if c.is_open), key=reading.order_key)
    infos: dict[str, InstrumentInfo] = {}
    charts = []
    defined = views.defined_instruments(catalog, {s.instrument for s in series})
    for n, view in enumerate(series):
        inst = defined.get(view.instrument)
        if inst is not None and view.instrument not in infos:
            entry = catalog.get(view.instrument)
            infos[view.instrument] = InstrumentInfo(
                view.instrument, inst.name, inst.verification.status,
                " ".join(inst.licence.split()), entry.sha256, " ".join(inst.citation.split()),
            )  # fmt: skip
        charts.append(_charts(view, inst, n))
    return {
        "client_id": client_id, "series": series, "stories": stories,
        "concerns": [(c.severity, f"({c.series}) {c.sentence} To ask: {c.question}")
                     for c in concerns],
        "charts": charts, "instruments": infos, "generated": generated,
        "source": str(store.path),
    }  # fmt: skip


def _charts(view: views.SeriesView, inst: Any, n: int) -> list[ChartData]:
    """One chart per scale of a series: points, cutoff, reliable-change band, markers."""
    out = []
    scale_ids = list(view.sessions[0].scales)
    for sid in [s for s in scale_ids if s != TOTAL] + [s for s in scale_ids if s == TOTAL]:
        points = [
            (s.session, s.scales[sid].pomp if sid in s.scales else None) for s in view.sessions
        ]
        latest = next((p for _, p in reversed(points) if p is not None), None)
        threshold = view.thresholds.get(sid)
        band = None  # the drop threshold the next session meets, around the latest session
        if threshold is not None and latest is not None:
            band = (latest - threshold, latest + threshold)
        out.append(
            ChartData(
                key=f"{n}-{sid}",
                title=view.sessions[0].scales[sid].name,
                points=points,
                cutoff=_cutoff(inst, sid),
                rc_band=band,
                ruptures=[c.began for c in view.concerns if c.kind == "drop" and sid in c.scales],
                repairs=[
                    c.resolved
                    for c in view.concerns
                    if c.kind == "drop" and sid in c.scales and c.resolved is not None
                ],
            )
        )
    return out


def _cutoff(inst: Any, scale: str) -> tuple[float, str] | None:
    """The scale's cutoff (or the top of its lowest band) in POMP, with its label."""
    if inst is None:
        return None
    low, high = inst.scale.min, inst.scale.max
    try:
        n = inst.scale_item_count(scale)
    except KeyError:
        return None

    def pomp(value: float, metric: str) -> float:
        return change.pomp_of(value, metric, low, high, n)

    for cut in inst.cutoffs:
        if cut.scale == scale:
            return pomp(cut.threshold, cut.metric), f"cutoff {cut.threshold:g} ({cut.metric})"
    for band in inst.bands:
        if band.scale == scale and len(band.levels) > 1:
            levels = sorted(band.levels, key=lambda lv: lv.min)
            return pomp(levels[1].min, band.metric), f"top of lowest band ({levels[0].label})"
    return None


def caseload_data(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    filters: views.CaseloadFilter,
    described: str,
    generated: str,
    today: str | None = None,
) -> dict[str, Any]:
    """What the caseload report shows (``render.html.caseload_report``'s arguments)."""
    rows = views.caseload(store, catalog, settings, filters, today)
    totals: dict[tuple[str, str, str], list[float | None]] = {}
    for client_id, inst_id, rater, sessions_text, pomps in store.total_series():
        pairs = sorted(
            zip((int(s) for s in sessions_text.split(",")), pomps.split(","), strict=True)
        )
        totals[(client_id, inst_id, rater)] = [None if p == "n" else float(p) for _, p in pairs]
    return {
        "rows": rows, "totals": totals, "lines": [r.concern_lines() for r in rows],
        "filters": described, "generated": generated, "source": str(store.path),
    }  # fmt: skip
