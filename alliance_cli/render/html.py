"""Self-contained HTML reports: one client, or the caseload. Inline CSS and SVG only.

Hand-written SVG rather than a charting library: the charts are simple (a line per scale on
a 0-100 POMP axis, a cutoff line, markers), a library would add tens of megabytes and
hundreds of milliseconds of start-up (matplotlib, or Vega-Lite through vl-convert) for them,
and writing the SVG ourselves keeps every data value under one escaping rule.

Safety: every value that comes from data (client ids, labels, pass-through text, messages)
goes through ``esc``: control characters made visible, then HTML-escaped. The page carries a
Content-Security-Policy that allows no script and no fetch at all, so a value that somehow
escaped still could not run or call out.

Accessibility: each chart is an ``<svg role="img">`` with a title and a description that
states every value; ruptures and repairs are marked by shape and by a text label, the cutoff
by a dashed line with its label, so colour is never the only signal.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from alliance_cli.core.errors import visible

if TYPE_CHECKING:
    from alliance_cli.store.report import ChartData, InstrumentInfo

TOTAL = "total"

CSS = """
:root { --ink: #1b1f24; --muted: #5b6470; --line: #d0d6de; --accent: #1d5fa7;
  --bad: #b3261e; --good: #1e7b34; --band: #e7eef7; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--ink); margin: 0 auto; max-width: 1100px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 .2em; }
h2 { font-size: 1.25em; margin: 1.6em 0 .4em; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
.meta { color: var(--muted); font-size: .9em; }
.summary { background: #f6f8fa; border-left: 4px solid var(--accent); padding: .6em 1em; }
.summary p { margin: .3em 0; }
.concerns li { margin: .2em 0; }
.concern-code { font-family: ui-monospace, monospace; font-size: .92em; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr));
  gap: 12px; }
figure { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px; }
figcaption { font-weight: 600; font-size: .95em; }
svg text { font: 11px system-ui, sans-serif; fill: var(--ink); }
svg .axis { stroke: var(--line); }
svg .series { fill: none; stroke: var(--accent); stroke-width: 2; }
svg .point { fill: var(--accent); }
svg .cutoff { stroke: var(--bad); stroke-width: 1.5; stroke-dasharray: 5 3; }
svg .rc-band { fill: var(--band); }
svg .rupture { fill: var(--bad); }
svg .repair { fill: var(--good); }
svg .spark { fill: none; stroke: var(--accent); stroke-width: 1.5; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.date { white-space: nowrap; }
.flag { font-family: ui-monospace, monospace; font-size: .9em; }
.open { color: var(--bad); font-weight: 600; }
.legend { font-size: .85em; color: var(--muted); }
footer { margin-top: 2em; color: var(--muted); font-size: .85em; }
@media print {
  @page { margin: 14mm; }
  body { max-width: none; padding: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  figure, tr, .summary, li { break-inside: avoid; }
  .charts { grid-template-columns: repeat(3, 1fr); }
  a { color: inherit; text-decoration: none; }
}
"""

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def esc(value: object) -> str:
    """Data as text in HTML: control characters made visible, then escaped (quotes too)."""
    return html.escape(visible("" if value is None else str(value), one_line=True), quote=True)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )


# -- charts ----------------------------------------------------------------------------------
W, H = 260, 160
LEFT, RIGHT, TOP, BOTTOM = 30, 12, 12, 30


def chart_svg(data: ChartData) -> str:
    """A line chart of one scale over sessions (POMP 0-100), with a text alternative."""
    sessions = [s for s, _ in data.points]
    lo, hi = min(sessions), max(sessions)
    span = max(hi - lo, 1)

    def x(session: int) -> float:
        return LEFT + (session - lo) / span * (W - LEFT - RIGHT) if hi > lo else (W + LEFT) / 2

    def y(pomp: float) -> float:
        return TOP + (100 - pomp) / 100 * (H - TOP - BOTTOM)

    parts = [f'<rect class="axis" x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" '
             f'height="{H - TOP - BOTTOM}" fill="none"/>']  # fmt: skip
    for tick in (0, 50, 100):
        parts.append(f'<text x="{LEFT - 4}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick}</text>')
    if data.rc_band is not None:
        low, high = (max(0.0, data.rc_band[0]), min(100.0, data.rc_band[1]))
        parts.append(
            f'<rect class="rc-band" x="{LEFT}" y="{y(high):.1f}" width="{W - LEFT - RIGHT}" '
            f'height="{max(0.0, y(low) - y(high)):.1f}"><title>reliable-change band around '
            f"session {lo}: {low:.0f} to {high:.0f}</title></rect>"
        )
    if data.cutoff is not None:
        at, label = data.cutoff
        parts.append(
            f'<line class="cutoff" x1="{LEFT}" x2="{W - RIGHT}" y1="{y(at):.1f}" '
            f'y2="{y(at):.1f}"/><text x="{W - RIGHT - 2}" y="{y(at) - 3:.1f}" '
            f'text-anchor="end">{esc(label)}</text>'
        )
    shown = [(s, p) for s, p in data.points if p is not None]
    if len(shown) > 1:
        path = " ".join(f"{x(s):.1f},{y(p):.1f}" for s, p in shown)
        parts.append(f'<polyline class="series" points="{path}"/>')
    for s, p in shown:
        parts.append(
            f'<circle class="point" cx="{x(s):.1f}" cy="{y(p):.1f}" r="3">'
            f"<title>session {s}: {p:.0f}</title></circle>"
        )
    values = dict(shown)

    def anchor(cx: float) -> str:  # a label near an edge stays inside the chart
        return "end" if cx > W - RIGHT - 25 else "start" if cx < LEFT + 25 else "middle"

    for s in data.ruptures:
        if s in values:
            cx, cy = x(s), y(values[s]) + 8
            parts.append(
                f'<path class="rupture" d="M{cx - 5:.1f},{cy:.1f} h10 l-5,8 z"><title>rupture '
                f'in session {s}</title></path><text x="{cx:.1f}" y="{cy + 18:.1f}" '
                f'text-anchor="{anchor(cx)}">rupture</text>'
            )
    for s in data.repairs:
        if s in values:
            cx, cy = x(s), max(y(values[s]) - 8, TOP + 9.0)
            parts.append(
                f'<path class="repair" d="M{cx - 5:.1f},{cy:.1f} h10 l-5,-8 z"><title>repair '
                f'in session {s}</title></path><text x="{cx:.1f}" y="{max(cy - 11, 10):.1f}" '
                f'text-anchor="{anchor(cx)}">repair</text>'
            )
    ticks = sessions if len(sessions) <= 12 else sorted({lo, hi})
    for s in ticks:
        parts.append(f'<text x="{x(s):.1f}" y="{H - 14}" text-anchor="middle">{s}</text>')
    parts.append(f'<text x="{(W + LEFT) / 2:.1f}" y="{H - 2}" text-anchor="middle">session</text>')
    desc = "; ".join(f"session {s}: {'no value' if p is None else f'{p:.0f}'}"
                     for s, p in data.points)  # fmt: skip
    if data.cutoff is not None:
        desc += f"; {data.cutoff[1]} at {data.cutoff[0]:.0f}"
    if data.ruptures:
        desc += "; rupture in session " + ", ".join(map(str, data.ruptures))
    if data.repairs:
        desc += "; repair in session " + ", ".join(map(str, data.repairs))
    key = esc(data.key)
    return (
        f'<svg class="chart" viewBox="0 0 {W} {H}" width="100%" role="img" '
        f'aria-labelledby="t-{key} d-{key}" data-points="{len(shown)}">'
        f'<title id="t-{key}">{esc(data.title)} over sessions, percent of maximum '
        f'possible</title><desc id="d-{key}">{esc(desc)}</desc>{"".join(parts)}</svg>'
    )


def sparkline_svg(key: str, points: Sequence[float | None], label: str) -> str:
    """A small line of a client's total over sessions, with its text alternative."""
    values = [(i, p) for i, p in enumerate(points) if p is not None]
    w, h = 120, 28
    n = max(len(points) - 1, 1)
    coords = " ".join(f"{2 + i / n * (w - 4):.1f},{2 + (100 - p) / 100 * (h - 4):.1f}"
                      for i, p in values)  # fmt: skip
    line = f'<polyline class="spark" points="{coords}"/>' if len(values) > 1 else ""
    dots = "".join(
        f'<circle class="point" cx="{2 + i / n * (w - 4):.1f}" '
        f'cy="{2 + (100 - p) / 100 * (h - 4):.1f}" r="1.6"/>'
        for i, p in values[-1:]
    )
    return (
        f'<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        f'aria-label="{esc(label)}">{line}{dots}</svg>'
    )


# -- the client report ---------------------------------------------------------------------
def client_report(
    client_id: str,
    series: Sequence[Any],
    stories: Sequence[list[tuple[str, str]]],
    concerns: Sequence[tuple[str, str]],
    charts: Sequence[list[ChartData]],
    instruments: dict[str, InstrumentInfo],
    generated: str,
    source: str,
) -> str:
    """One client's report: summary, charts, sessions, open concerns, instruments."""
    out = [
        f"<header><h1>Therapeutic alliance: client {esc(client_id)}</h1>",
        f'<p class="meta">Generated {esc(generated)} by alliance from the history '
        f"<code>{esc(source)}</code>. Values are shown as a percent of the maximum possible "
        "score (POMP: 0 is every answer at the bottom of the scale, 100 every answer at the "
        "top), so scales and instruments compare.</p></header>",
        '<section aria-labelledby="h-summary"><h2 id="h-summary">What the history says</h2>',
        '<div class="summary">',
    ]
    any_line = False
    for view, story in zip(series, stories, strict=True):
        for when, text in story:
            any_line = True
            out.append(f"<p><strong>{esc(view.instrument)}: {esc(when)}</strong> {esc(text)}</p>")
    if not any_line:
        out.append("<p>No drop, rupture, slide or low score stands out in these sessions.</p>")
    out.append("</div></section>")
    out.append('<section aria-labelledby="h-open"><h2 id="h-open">Open concerns</h2>')
    if concerns:
        out.append('<ul class="concerns">')
        out += [f'<li><span class="concern-code open">{esc(code)}</span> {esc(text)}</li>'
                for code, text in concerns]  # fmt: skip
        out.append("</ul>")
    else:
        out.append("<p>None open.</p>")
    out.append("</section>")
    for view, scale_charts in zip(series, charts, strict=True):
        info = instruments.get(view.instrument)
        name = info.name if info else view.instrument
        out.append(
            f'<section class="series"><h2>{esc(name)} ({esc(view.instrument)}), rated by '
            f"{esc(view.rater)}</h2>"
        )
        out.append('<div class="charts">')
        for chart in scale_charts:
            out.append(f"<figure><figcaption>{esc(chart.title)}</figcaption>{chart_svg(chart)}"
                       "</figure>")  # fmt: skip
        out.append("</div>")
        out.append(
            '<p class="legend">Dashed line: the instrument\'s cutoff (or the top of its lowest '
            "band). Shaded: how far the next session may move from the latest before it counts "
            "as a drop (larger than this client's usual session-to-session change). ▼ drop, "
            "▲ recovered.</p>"
        )
        out.append(_session_table(view))
        out.append("</section>")
    out.append('<section aria-labelledby="h-inst"><h2 id="h-inst">Instruments</h2>')
    for info in instruments.values():
        out.append(
            f"<h3>{esc(info.name)} ({esc(info.id)})</h3><p>Scoring key: <strong>"
            f"{esc(info.verification)}</strong>. Definition SHA-256 <code>{esc(info.sha256)}"
            f"</code>.</p><p>{esc(info.citation)}</p><p><em>Licence:</em> {esc(info.licence)}</p>"
        )
    out.append("</section>")
    out.append(
        "<footer>alliance scores the structure of each questionnaire; the item wording is "
        "the publishers' and is not reproduced here. A report supports a conversation with the "
        "client and in supervision; it is not a diagnosis.</footer>"
    )
    return _page(f"Alliance report: {client_id}", "\n".join(out))


def _session_table(view: Any) -> str:
    scales = list(view.sessions[0].scales)
    names = [view.sessions[0].scales[s].name for s in scales]
    flags: dict[int, list[str]] = {}
    for c in view.concerns:
        where = ", ".join(c.scale_names)
        flags.setdefault(c.began, []).append(f"{c.kind} ({c.severity}) on {where}")
        if c.resolved is not None:
            flags.setdefault(c.resolved, []).append(f"{c.kind} over on {where}")
    rows = [
        '<table><caption class="meta">Sessions ('
        + esc(view.metric)
        + " per scale; POMP of the total)</caption><thead><tr><th>session</th><th>date</th>"
        + "".join(f'<th class="num">{esc(n)}</th>' for n in names)
        + '<th class="num">POMP</th><th>flags now</th><th>said when saved</th></tr></thead><tbody>'
    ]
    for s in view.sessions:
        cells = []
        for sid in scales:
            point = s.scales.get(sid)
            value = getattr(point, view.metric, None) if point is not None else None
            cells.append(f'<td class="num">{"" if value is None else f"{value:.2f}"}</td>')
        total = s.scales.get(TOTAL)
        pomp = "" if total is None or total.pomp is None else f"{total.pomp:.0f}"
        now = ", ".join(flags.get(s.session, []))
        said = ", ".join(
            dict.fromkeys(
                f.get("sentence") or f"{f.get('code')} on {f.get('scale')}" for f in s.flags_at_save
            )
        )
        rows.append(
            f'<tr><td>{s.session}</td><td class="date">{esc(s.date or "")}</td>{"".join(cells)}'
            f'<td class="num">{pomp}</td><td class="flag">{esc(now)}</td>'
            f'<td class="flag">{esc(said)}</td></tr>'
        )
    rows.append("</tbody></table>")
    return "".join(rows)


# -- the caseload report ---------------------------------------------------------------------
def caseload_report(
    rows: Sequence[Any],
    totals: dict[tuple[str, str, str], list[float | None]],
    lines: Sequence[list[tuple[str, str]]],
    filters: str,
    generated: str,
    source: str,
) -> str:
    """The caseload: one row per client, open concerns first, a sparkline of the total."""
    flagged = sum(bool(r.concerns) for r in rows)
    out = [
        "<header><h1>Therapeutic alliance: caseload</h1>",
        f'<p class="meta">Generated {esc(generated)} by alliance from the history '
        f"<code>{esc(source)}</code>{esc(filters)}. {len(rows):,} clients, {flagged:,} with "
        "open concerns, those first. The line shows the main series' total over sessions "
        "(percent of maximum possible).</p></header>",
        '<table class="caseload"><thead><tr><th>client</th><th>instrument</th>'
        '<th class="num">sessions</th><th>last date</th><th class="num">POMP</th><th>trend</th>'
        "<th>over sessions</th><th>open concerns</th></tr></thead><tbody>",
    ]
    for n, (row, concern_lines) in enumerate(zip(rows, lines, strict=True)):
        points = totals.get((row.client_id, row.instrument, row.rater), [])
        label = f"{row.client_id}: total " + ", ".join(
            "no value" if p is None else f"{p:.0f}" for p in points
        )
        pomp = "" if row.last_total_pomp is None else f"{row.last_total_pomp:.0f}"
        concerns = "<br>".join(f'<span class="flag open">{esc(sev)}: {esc(text)}</span>'
                               for sev, text in concern_lines)  # fmt: skip
        out.append(
            f"<tr><td>{esc(row.client_id)}</td><td>{esc(row.instrument)}</td>"
            f'<td class="num">{row.sessions}</td><td class="date">{esc(row.last_date or "")}</td>'
            f'<td class="num">{pomp}</td><td>{esc(row.trend)}</td>'
            f"<td>{sparkline_svg(f's{n}', points, label)}</td><td>{concerns}</td></tr>"
        )
    out.append("</tbody></table>")
    out.append(
        "<footer>Open concerns: a rupture not yet repaired, a drop or slide the latest session "
        "raised, a score below the instrument's cutoff, or a low early alliance (see the "
        "README for when each opens and closes).</footer>"
    )
    return _page("Alliance caseload", "\n".join(out))
