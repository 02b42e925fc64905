"""Self-contained HTML reports: one client, or the caseload. Inline CSS and SVG only.

Hand-written SVG rather than a charting library: the charts are simple (a line or two per
scale, a cutoff line, markers), a library would add tens of megabytes and hundreds of
milliseconds of start-up (matplotlib, or Vega-Lite through vl-convert) for them, and writing
the SVG ourselves keeps every data value under one escaping rule.

Safety: every value that comes from data (client ids, labels, pass-through text, messages)
goes through ``esc``: control, invisible and direction-changing characters written out,
then HTML-escaped. The page carries a Content-Security-Policy that allows no script and no
fetch at all, so a value that somehow escaped still could not run or call out.

Accessibility: content sits in ``header``, ``main`` and ``footer``; tables have header
cells with ``scope`` (the session and the client are row headers); each chart is an
``<svg role="img">`` named by its instrument, rater and scale, with its values in a
description it points to (``aria-describedby``), so a screen reader hears the name once.
Drops and recoveries are marked by shape as well as colour, the cutoff by a dashed line,
the counterpart form by a dashed line of its own. Links and scrolling boxes take focus.

Layout: at 390 px nothing is wider than the screen (wide tables scroll inside their own
box, hashes wrap); in print, a caption stays with its table, a series' charts stay
together, and every page repeats the client (or "caseload") and the date.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alliance_cli.core.errors import visible
from alliance_cli.core.words import counted

if TYPE_CHECKING:
    from alliance_cli.store.report import ChartData, Group, InstrumentInfo

TOTAL = "total"

CSS = """
:root { --ink: #1b1f24; --muted: #545d68; --line: #c4ccd6; --axis: #6e7781;
  --accent: #1d5fa7; --twin: #7a3fa0; --bad: #b3261e; --good: #1e7b34; --band: #e7eef7;
  --gap: #f3e3f7; --warn: #7a4f00; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; overflow-wrap: anywhere; }
h2 { font-size: 1.25em; margin: 1.6em 0 .4em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
a { color: var(--accent); }
a:focus-visible, [tabindex]:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
code { overflow-wrap: anywhere; }
.meta { color: var(--muted); font-size: .9em; }
.before { list-style: none; padding: 0; }
.before li { border-left: 5px solid var(--line); padding: .4em .8em; margin: .5em 0;
  background: #f6f8fa; }
.before li.act { border-color: var(--bad); }
.before li.watch { border-color: var(--warn); }
.sev { font-weight: 700; text-transform: uppercase; font-size: .8em; margin-right: .4em; }
.act .sev { color: var(--bad); }
.watch .sev { color: var(--warn); }
.where { color: var(--muted); font-size: .9em; }
.ask { display: block; margin-top: .2em; }
.story p { margin: .3em 0; }
.charts { display: grid; gap: 12px; grid-template-columns: repeat(var(--n, 4), minmax(0, 1fr)); }
.charts.wide { grid-template-columns: repeat(auto-fill, minmax(min(100%, var(--w)), 1fr)); }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
figcaption { font-weight: 600; font-size: .95em; }
figure svg { display: block; max-width: 100%; height: auto; margin: 0 auto; }
.note { color: var(--muted); font-size: .85em; margin: .2em 0 0; }
svg text { font: 10px system-ui, sans-serif; fill: var(--ink); }
svg .axis { stroke: var(--axis); fill: none; }
svg .grid { stroke: var(--line); stroke-dasharray: 2 3; }
svg .l0 { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .l1 { fill: none; stroke: var(--twin); stroke-width: 2; stroke-dasharray: 6 3; }
svg .p0 { fill: var(--accent); }
svg .p1 { fill: var(--twin); }
svg .cutoff { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .cut-label { fill: var(--bad); }
svg .rc-band { fill: var(--band); }
svg .gap { fill: var(--gap); stroke: var(--twin); stroke-width: .5; }
svg .rupture { fill: var(--bad); }
svg .repair { fill: var(--good); }
.legend { font-size: .85em; color: var(--muted); }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
caption { text-align: left; color: var(--muted); font-size: .9em; caption-side: top; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left;
  vertical-align: top; }
thead th { white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.date, .id { white-space: nowrap; }
.flag { font-size: .9em; }
.open { color: var(--bad); font-weight: 600; }
nav { margin: .5em 0; }
footer { margin-top: 2em; color: var(--muted); font-size: .85em; }
.print-head { display: none; }
table.caseload td, table.caseload th { padding: 3px 5px; }
table.caseload th[scope=row] { white-space: nowrap; }
table.caseload td:nth-child(3), table.caseload td:nth-child(5),
table.caseload td:nth-child(6) { text-align: right; font-variant-numeric: tabular-nums; }
table.caseload td:nth-child(9) { font-size: .9em; }
table.caseload .act { color: var(--bad); }
table.caseload .watch { color: var(--warn); }
svg.spark { display: block; width: 64px; height: 16px; }
svg.spark .s { fill: none; stroke: var(--accent); stroke-width: 1.5; }
svg.spark .c { stroke: var(--bad); stroke-width: 1; stroke-dasharray: 3 2; }
@media (max-width: 700px) {
  body { padding: 12px; }
  .charts { grid-template-columns: minmax(0, 1fr); }
}
@media print {
  @page { size: A4; margin: 16mm 10mm 10mm; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  .print-head { display: block; position: fixed; top: -11mm; left: 0; right: 0;
    font-size: 8pt; color: var(--muted); border-bottom: 1px solid var(--line); }
  h2, h3, caption { break-after: avoid; }
  figure, tr, li, .charts, .group-head { break-inside: avoid; }
  table { break-inside: auto; }
  thead { display: table-header-group; }
  .scroll { overflow: visible; }
  .charts { grid-template-columns: repeat(var(--n, 4), minmax(0, 1fr)); }
  a { color: inherit; text-decoration: none; }
  nav { display: none; }
  table.caseload { font-size: 7.5pt; line-height: 1.2; }
  table.caseload td, table.caseload th { padding: 1px 3px; }
  table.caseload td:nth-child(9) { font-size: 7.5pt; }
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def esc(value: object) -> str:
    """Data as text in HTML: control and invisible characters written out, then escaped."""
    return html.escape(visible("" if value is None else str(value), one_line=True), quote=True)


def _page(title: str, head: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f'<div class="print-head" aria-hidden="true">{head}</div>\n{body}\n'
        "</body>\n</html>\n"
    )


def _num(value: float, unit: str) -> str:
    return f"{value:.0f}" if unit == "POMP" or float(value).is_integer() else f"{value:.1f}"


# -- charts ----------------------------------------------------------------------------------
H = 170
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 10, 34
STEP = 16  # px per session when a series is long (ticks of two digits never touch)
MOST_TICKS = 40  # every session labelled up to 40; beyond, every k-th


def chart_width(sessions: int) -> int:
    """A chart's natural width: room for every session's number once a series is long."""
    return max(280, LEFT + RIGHT + STEP * sessions) if sessions > 12 else 280


def chart_svg(data: ChartData) -> str:
    """A line chart of one scale over sessions (one line per form), with its text alternative."""
    sessions = data.sessions
    n = len(sessions)
    width = chart_width(n)
    plot_w = width - LEFT - RIGHT
    place = {s: i for i, s in enumerate(sessions)}

    def x(session: int) -> float:
        i = place[session]
        return LEFT + (i + 0.5) * plot_w / max(n, 1)

    span = (data.high - data.low) or 1.0

    def y(value: float) -> float:
        value = min(max(value, data.low), data.high)
        return TOP + (data.high - value) / span * (H - TOP - BOTTOM)

    bottom = H - BOTTOM
    parts = [f'<rect class="axis" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{bottom - TOP}"/>']
    mid = (data.low + data.high) / 2
    for tick in (data.low, mid, data.high):
        parts.append(
            f'<text x="{LEFT - 4}" y="{y(tick) + 3.5:.1f}" text-anchor="end">'
            f"{_num(tick, data.unit)}</text>"
        )
    parts.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y(mid):.1f}" '
                 f'y2="{y(mid):.1f}"/>')  # fmt: skip
    unit_label = "% of maximum (POMP)" if data.unit == "POMP" else f"{data.unit} score"
    parts.append(
        f'<text x="10" y="{(TOP + bottom) / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 10 {(TOP + bottom) / 2:.1f})">{unit_label}</text>'
    )
    if data.band is not None:
        low, high = max(data.low, data.band[0]), min(data.high, data.band[1])
        parts.append(
            f'<rect class="rc-band" x="{LEFT}" y="{y(high):.1f}" width="{plot_w}" '
            f'height="{max(0.0, y(low) - y(high)):.1f}"><title>the next session counts as a '
            f"drop below {_num(low, data.unit)}</title></rect>"
        )
    # the gap between the forms, shaded over the sessions a gap concern spans
    if len(data.lines) > 1:
        a, b = data.lines[0].points, data.lines[1].points
        for began, resolved in data.gaps:
            both = {s: 0.0 for s in sessions if s in a and s in b and s >= began
                    and (resolved is None or s < resolved)}  # fmt: skip
            half = plot_w / max(n, 1) * 0.35
            for run in _segments(sessions, both):  # a session without both forms breaks it
                if len(run) == 1:
                    s = run[0]
                    xs = [(x(s) - half, a[s]), (x(s) + half, a[s])]
                    back = [(x(s) + half, b[s]), (x(s) - half, b[s])]
                else:
                    xs = [(x(s), a[s]) for s in run]
                    back = [(x(s), b[s]) for s in reversed(run)]
                poly = " ".join(f"{px:.1f},{y(v):.1f}" for px, v in xs + back)
                parts.append(
                    f'<polygon class="gap" points="{poly}"><title>client and therapist differ '
                    f"from session {began}</title></polygon>"
                )
    if data.cutoff is not None:
        at, label = data.cutoff
        parts.append(
            f'<line class="cutoff" x1="{LEFT}" x2="{width - RIGHT}" y1="{y(at):.1f}" '
            f'y2="{y(at):.1f}"><title>{esc(label)}</title></line>'
            f'<text class="cut-label" x="{LEFT + 2}" y="{y(at) - 3:.1f}">'
            f"{_num(at, data.unit)}</text>"
        )
    at_x = {s: f"{x(s):.1f}" for s in sessions}  # each point's place, worked out once
    for k, line in enumerate(data.lines[:2]):
        at_y = {s: f"{y(v):.1f}" for s, v in line.points.items()}
        for segment in _segments(sessions, line.points):
            if len(segment) > 1:
                path = " ".join(f"{at_x[s]},{at_y[s]}" for s in segment)
                parts.append(f'<polyline class="l{k}" points="{path}"/>')
        rater = esc(line.rater)
        parts += [
            f'<circle class="point p{k}" cx="{at_x[s]}" cy="{at_y[s]}" r="3">'
            f"<title>{rater}, session {s}: {_num(line.points[s], data.unit)}</title></circle>"
            for s in sessions
            if s in at_y
        ]
    main = data.lines[0].points if data.lines else {}
    for s in data.drops:
        if s in main:
            cx, cy = x(s), min(y(main[s]) + 6, bottom - 9)
            parts.append(
                f'<path class="rupture" d="M{cx - 5:.1f},{cy:.1f} h10 l-5,8 z"><title>drop '
                f"in session {s}</title></path>"
            )
    for s in data.recovered:
        if s in main:
            cx, cy = x(s), max(y(main[s]) - 6, TOP + 9.0)
            parts.append(
                f'<path class="repair" d="M{cx - 5:.1f},{cy:.1f} h10 l-5,-8 z"><title>recovered '
                f"in session {s}</title></path>"
            )
    every = max(1, -(-n // MOST_TICKS))
    for i, s in enumerate(sessions):
        if i % every == 0 or i == n - 1:
            parts.append(f'<text x="{x(s):.1f}" y="{bottom + 13}" text-anchor="middle">{s}</text>')
    parts.append(
        f'<text x="{(width + LEFT) / 2:.1f}" y="{H - 4}" text-anchor="middle">session</text>'
    )
    key = esc(data.key)
    return (
        f'<svg class="chart" viewBox="0 0 {width} {H}" width="{width}" height="{H}" role="img" '
        f'aria-labelledby="t-{key}" aria-describedby="d-{key}" data-points="'
        f'{sum(len(line.points) for line in data.lines)}">'
        f'<title id="t-{key}">{esc(data.series)}: {esc(data.title)} over sessions</title>'
        f'<desc id="d-{key}">{esc(_describe(data))}</desc>{"".join(parts)}</svg>'
    )


def _segments(sessions: Sequence[int], points: dict[int, float]) -> list[list[int]]:
    """Runs of sessions with a value: a session without one breaks the line."""
    runs: list[list[int]] = [[]]
    for s in sessions:
        if s in points:
            runs[-1].append(s)
        elif runs[-1]:
            runs.append([])
    return [r for r in runs if r]


def _describe(data: ChartData) -> str:
    """Every value of the chart, and its marks, as text."""
    parts = []
    for line in data.lines:
        values = ", ".join(
            f"{s}: {_num(line.points[s], data.unit)}" if s in line.points else f"{s}: none"
            for s in data.sessions
        )
        parts.append(f"{line.rater} ({data.unit}) by session, {values}")
    if data.cutoff is not None:
        parts.append(f"{data.cutoff[1]} at {_num(data.cutoff[0], data.unit)}")
    if data.drops:
        parts.append("drop in session " + ", ".join(map(str, data.drops)))
    if data.recovered:
        parts.append("recovered in session " + ", ".join(map(str, data.recovered)))
    if data.gaps:
        parts.append("client and therapist differ from session "
                     + ", ".join(str(g[0]) for g in data.gaps))  # fmt: skip
    return "; ".join(parts + data.notes)


def sparkline_svg(points: Sequence[float | None], label: str, cutoff: float | None) -> str:
    """A small line of a client's total over sessions (POMP), with the cutoff dashed."""
    w, h = 64, 16
    values = [(i, p) for i, p in enumerate(points) if p is not None]
    n = max(len(points) - 1, 1)
    coords = " ".join(f"{1 + i * (w - 2) // n},{1 + round((100 - p) * (h - 2) / 100)}"
                      for i, p in values)  # fmt: skip
    line = f'<polyline class=s points="{coords}"/>' if len(values) > 1 else ""
    cut = ""
    if cutoff is not None:
        cy = 1 + round((100 - cutoff) * (h - 2) / 100)
        cut = f"<line class=c x1=0 x2={w} y1={cy} y2={cy} />"
    return (
        f'<svg class=spark viewBox="0 0 {w} {h}" role=img aria-label="{esc(label)}">'
        f"{cut}{line}</svg>"
    )


# -- the client report ---------------------------------------------------------------------
def client_report(
    client_id: str,
    concerns: Sequence[Any],
    stories: Sequence[tuple[str, list[tuple[str, str]]]],
    groups: Sequence[Group],
    instruments: dict[str, InstrumentInfo],
    generated: str,
    source: str,
    index: str | None = None,
) -> str:
    """One client's report: what to raise first, charts, sessions, instruments."""
    date = generated[:10]
    out = [
        "<header>",
        f"<h1>Therapeutic alliance: client {esc(client_id)}</h1>",
        f'<p class="meta">Generated {esc(generated)} by alliance from the history '
        f"<code>{esc(source)}</code>. Charts show each scale as a percent of the maximum "
        "possible score (POMP: 0 is every answer at the bottom, 100 every answer at the top), "
        "or in the instrument's own score where its cutoff is stated in it.</p>",
        "</header>",
    ]
    if index is not None:
        out.append(f'<nav><a href="{esc(index)}">← the caseload</a></nav>')
    out.append("<main>")
    out.append('<section aria-labelledby="h-before"><h2 id="h-before">Before this session</h2>')
    if concerns:
        out.append('<ol class="before">')
        for c in concerns:
            where = (
                f"{c.series}: {', '.join(c.scale_names)}, from session {c.began}"
                if c.series
                else "as of this report"  # a dated note: of the client, not of a session
            )
            out.append(
                f'<li class="{esc(c.severity)}"><span class="sev">{esc(c.severity)}</span>'
                f'{esc(c.sentence)} <span class="where">({esc(where)})</span>'
                f'<span class="ask"><strong>To ask:</strong> {esc(c.question)}</span></li>'
            )
        out.append("</ol>")
    else:
        out.append("<p>Nothing is open: no drop, slide, low score or gap to raise.</p>")
    out.append("</section>")
    out.append('<section aria-labelledby="h-story"><h2 id="h-story">What the history says</h2>')
    out.append('<div class="story">')
    told = False
    for label, story in stories:
        for when, text in story:
            told = True
            out.append(f"<p><strong>{esc(label)}, {esc(when)}</strong> {esc(text)}</p>")
    if not told:
        out.append("<p>No drop, slide or low score stands out in these sessions.</p>")
    out.append("</div></section>")
    for g, group in enumerate(groups):
        out.append(f'<section class="series" aria-labelledby="h-g{g}">')
        out.append(f'<h2 id="h-g{g}">{esc(group.title)}</h2>')
        sessions = len(group.charts[0].sessions) if group.charts else 0
        wide = " wide" if sessions > 12 else ""
        out.append(
            f'<div class="charts{wide}" style="--n:{min(len(group.charts), 5)}; '
            f'--w:{chart_width(sessions)}px">'
        )
        for chart in group.charts:
            notes = "".join(f'<p class="note">{esc(note)}</p>' for note in chart.notes)
            cut = f'<p class="note">dashed red: {esc(chart.cutoff[1])}</p>' if chart.cutoff else ""
            out.append(
                f"<figure><figcaption>{esc(chart.title)}</figcaption>{chart_svg(chart)}"
                f"{cut}{notes}</figure>"
            )
        out.append("</div>")
        twin = len(group.views) > 1
        out.append(
            '<p class="legend">Solid blue: '
            + esc(group.views[0].rater)
            + (
                f"; dashed purple: {esc(group.views[1].rater)}, shaded where they differ by "
                "a gap the reading raised"
                if twin
                else ""
            )
            + ". Shaded band: the usual level (the mean of up to 4 earlier sessions outside "
            "a drop) ± the threshold of a drop; the next session below it starts one. While "
            "a drop is open, the band is the level it fell from ± half that threshold: back "
            "inside it, the drop has recovered. ▼ a drop began, ▲ recovered. A missing form "
            "breaks its line.</p>"
        )
        for view in group.views:
            out.append(_session_table(view))
        out.append("</section>")
    out.append('<section aria-labelledby="h-inst"><h2 id="h-inst">Instruments</h2>')
    for info in instruments.values():
        out.append(
            f"<h3>{esc(info.name)} ({esc(info.id)})</h3><p>Scoring key: <strong>"
            f"{esc(info.verification)}</strong>. Definition SHA-256 <code>{esc(info.sha256)}"
            f"</code>.</p><p>{esc(info.citation)}</p><p><em>Licence:</em> {esc(info.licence)}</p>"
        )
    out.append("</section></main>")
    out.append(
        "<footer>alliance scores the structure of each questionnaire; the item wording is "
        "the publishers' and is not reproduced here. A report supports a conversation with the "
        "client and in supervision; it is not a diagnosis.</footer>"
    )
    head = f"Alliance report · client {esc(client_id)} · {esc(date)}"
    return _page(f"Alliance report: {client_id}", head, "\n".join(out))


def _session_table(view: Any) -> str:
    from alliance_cli.core.reading import scales_said

    names: dict[str, str] = {}
    for s in view.sessions:
        for sid, point in s.scales.items():
            names.setdefault(sid, point.name)
    scales = [s for s in names if s != TOTAL] + [s for s in names if s == TOTAL]
    flags: dict[int, list[str]] = {}
    for c in view.concerns:
        where = scales_said(c.as_dict())
        flags.setdefault(c.began, []).append(f"{c.kind} ({c.severity}) on {where}")
        if c.resolved is not None:
            flags.setdefault(c.resolved, []).append(f"{c.kind} over on {where}")
    label = f"Sessions of {view.instrument}, rated by {view.rater}"
    rows = [
        f'<div class="scroll" role="region" tabindex="0" aria-label="{esc(label)}">'
        f"<table><caption>{esc(label)} ({esc(view.metric)} per scale; POMP of the total)"
        '</caption><thead><tr><th scope="col">session</th><th scope="col">date</th>'
        + "".join(f'<th scope="col" class="num">{esc(names[s])}</th>' for s in scales)
        + '<th scope="col" class="num">POMP</th><th scope="col">flags now</th>'
        '<th scope="col">said when saved</th></tr></thead><tbody>'
    ]
    said_before: set[str] = set()  # the sentences said at the session above
    for s in view.sessions:
        cells = []
        for sid in scales:
            point = s.scales.get(sid)
            value = getattr(point, view.metric, None) if point is not None else None
            cells.append(f'<td class="num">{"–" if value is None else f"{value:.2f}"}</td>')
        total = s.scales.get(TOTAL)
        pomp = "–" if total is None or total.pomp is None else f"{total.pomp:.0f}"
        now = ", ".join(flags.get(s.session, []))
        said, said_before = _said_at_save(s.flags_at_save, said_before)
        rows.append(
            f'<tr><th scope="row" class="num">{s.session}</th>'
            f'<td class="date">{esc(s.date or "")}</td>{"".join(cells)}'
            f'<td class="num">{pomp}</td><td class="flag">{esc(now)}</td>'
            f'<td class="flag">{esc(said)}</td></tr>'
        )
    rows.append("</tbody></table></div>")
    return "".join(rows)


# -- the caseload report ---------------------------------------------------------------------
def caseload_report(
    rows: Sequence[Any],
    totals: dict[tuple[str, str, str], list[float | None]],
    cutoffs: dict[str, float],
    filters: str,
    generated: str,
    source: str,
    pages: dict[str, str] | None = None,
) -> str:
    """The caseload for triage: one row per client, most severe and most recent first, with
    counselor, days since the last session, up to three concerns in plain words, and a
    sparkline of the main series' total with its cutoff."""
    flagged = sum(bool(r.concerns) for r in rows)
    out = [
        "<header><h1>Therapeutic alliance: caseload</h1>",
        f'<p class="meta">Generated {esc(generated)} by alliance from the history '
        f"<code>{esc(source)}</code>{esc(filters)}. {counted(len(rows), 'client')}, "
        f"{flagged:,} with open concerns, the most severe and most recent first. The line is "
        "the main "
        "series' total over sessions (percent of maximum possible), the dashed line its "
        "cutoff.</p></header><main>",
        '<div class="scroll" role="region" tabindex="0" aria-label="Caseload">'
        '<table class="caseload"><thead><tr><th scope="col">client</th>'
        '<th scope="col">counselor</th><th scope="col" class="num">days since</th>'
        '<th scope="col">instrument</th><th scope="col" class="num">sessions</th>'
        '<th scope="col" class="num">POMP</th><th scope="col">trend</th>'
        '<th scope="col">over sessions</th><th scope="col">open concerns</th></tr></thead><tbody>',
    ]
    append = out.append
    for row in rows:
        points = totals.get((row.client_id, row.instrument, row.rater), [])
        shown = [p for p in points if p is not None]
        label = (
            f"total from {shown[0]:.0f} to {shown[-1]:.0f} over {len(points):,} sessions"
            if shown
            else "no total"
        )
        pomp = "" if row.last_total_pomp is None else f"{row.last_total_pomp:.0f}"
        concerns = "; ".join(
            f"<span class={esc(sev)}>{esc(text)}</span>" for sev, text in row.concern_lines()
        )
        who = esc(row.client_id)
        if pages is not None and row.client_id in pages:
            who = f'<a href="clients/{esc(pages[row.client_id])}">{who}</a>'
        days = "" if row.days_since is None else str(row.days_since)
        # (short markup: 5,000 rows stay under 3 MB; the columns are styled by position)
        append(
            f"<tr><th scope=row>{who}</th><td>{esc(row.counselor or '–')}</td><td>{days}</td>"
            f"<td>{esc(row.instrument)}</td><td>{row.sessions}</td><td>{pomp}</td>"
            f"<td>{esc(row.trend)}</td><td>"
            f"{sparkline_svg(points, label, cutoffs.get(row.instrument))}</td><td>{concerns}</td>"
            "</tr>"
        )
    out.append("</tbody></table></div></main>")
    out.append(
        "<footer>Open concerns: a drop not yet recovered, a slide, a score at or below the "
        "instrument's cutoff, a low early alliance, a client–therapist gap, an incomplete "
        "form, a client not seen for a while, or a latest session dated after today "
        "(docs/history.md in alliance's documentation says when each opens and closes)."
        "</footer>"
    )
    head = f"Alliance caseload · {esc(generated[:10])}"
    return _page("Alliance caseload", head, "\n".join(out))


def _said_at_save(flags: list[dict[str, Any]], before: set[str]) -> tuple[str, set[str]]:
    """What was said when a session was saved, as a counselor reads it down the table: the
    sentences new since the session above in full, those said again word for word counted
    ("and 2 as before"); the Score's own cutoff flag, said by its concern too, is left out.
    A history kept before 0.3 has codes only, shown as "code on scale". With the
    sentences, for the next row."""
    sentences = list(dict.fromkeys(str(f["sentence"]) for f in flags if f.get("sentence")))
    if not sentences:
        codes = dict.fromkeys(f"{f.get('code')} on {f.get('scale')}" for f in flags)
        return ", ".join(codes), set()
    new = [t for t in sentences if t not in before]
    again = len(sentences) - len(new)
    text = " ".join(new)
    if again:
        text += f" (and {again} as before)" if new else f"{again} as before"
    return text, set(sentences)
