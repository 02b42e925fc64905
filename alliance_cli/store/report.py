"""What the HTML reports show, gathered from the history: the same views as ``history`` and
``clients`` (so the words and the concerns are the same), shaped for ``render.html``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alliance_cli.core import change
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


CONCERN_WORDS = {
    "rupture_1sd": "a rupture (1 SD below the usual level) that no later session has repaired",
    "rupture_2sd": "a rupture (2 SD below the usual level) that no later session has repaired",
    "reliable_drop": "the latest session fell by more than measurement noise",
    "slow_decline": "a gradual slide, more than noise over the sessions taken together",
    "early_low_alliance": "a low alliance early in treatment: a known dropout risk",
    "below_cutoff": "the latest value is below the instrument's cutoff",
}


def client_data(
    store: Store,
    client_id: str,
    instrument: str | None,
    catalog: Any,
    settings: change.Settings,
    generated: str,
) -> dict[str, Any]:
    """What one client's report shows (``render.html.client_report``'s arguments)."""
    series = views.client_view(store, client_id, instrument, catalog, settings)
    stories = [views.plain_story(s) for s in series]
    keys = {(s.client_id, s.instrument, s.rater) for s in series}
    concern_row = views.series_concerns(store, catalog, settings, keys)
    groups = concern_row.concern_groups() if concern_row else []
    concerns = [(g.code, _concern_text(g)) for g in groups]
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
        "client_id": client_id, "series": series, "stories": stories, "concerns": concerns,
        "charts": charts, "instruments": infos, "generated": generated,
        "source": str(store.path),
    }  # fmt: skip


def _concern_text(group: views.ConcernGroup) -> str:
    """``(wai-sr) on goal, task: a rupture ...``: where it is open, then what it means."""
    series = f"({group.series}) " if group.series else ""
    where = "on the total" if group.scales == (TOTAL,) else "on " + ", ".join(group.scales)
    words = CONCERN_WORDS.get(group.code, "")
    return f"{series}{where}: {words}" if words else f"{series}{where}"


def _charts(view: views.SeriesView, inst: Any, n: int) -> list[ChartData]:
    """One chart per scale of a series: points, cutoff, reliable-change band, markers."""
    out = []
    scale_ids = list(view.sessions[0].scales)
    for sid in [s for s in scale_ids if s != TOTAL] + [s for s in scale_ids if s == TOTAL]:
        points = [
            (s.session, s.scales[sid].pomp if sid in s.scales else None) for s in view.sessions
        ]
        first = next((p for _, p in points if p is not None), None)
        rel = view.reliable_change.get(sid)
        band = None
        if rel is not None and rel.threshold is not None and first is not None:
            band = (first - rel.threshold, first + rel.threshold)
        out.append(
            ChartData(
                key=f"{n}-{sid}",
                title=view.sessions[0].scales[sid].name,
                points=points,
                cutoff=_cutoff(inst, sid),
                rc_band=band,
                ruptures=[
                    f.session for f in view.flags if f.scale == sid and f.code.startswith("rupture")
                ],
                repairs=[f.session for f in view.flags if f.scale == sid and f.code == "repair"],
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
    settings: change.Settings,
    filters: views.CaseloadFilter,
    described: str,
    generated: str,
) -> dict[str, Any]:
    """What the caseload report shows (``render.html.caseload_report``'s arguments)."""
    rows = views.caseload(store, catalog, settings, filters)
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
