"""Everything rich: tables, panels, bars and the score view. Imported only by commands that draw."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from rich import box
from rich.cells import cell_len
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import visible

if TYPE_CHECKING:
    from alliance_cli.core.score import Score
    from alliance_cli.io.catalog import Catalog, LoadedInstrument
    from alliance_cli.store.views import CaseloadRow, SeriesView

_VERIFY_STYLE = {
    "verified": "green",
    "derived": "yellow",
    "unverified": "red",
    "draft": "bold red",
}


class _Trimmed:
    """A text stream that drops the spaces at the end of each line: rich pads every line to
    the console's width, which a file or a pipe does not need."""

    def __init__(self, out: Any) -> None:
        self.out = out
        self.pending = ""

    def write(self, text: str) -> int:
        """Write whole lines trimmed; keep a partial line until its end comes."""
        lines = (self.pending + text).split("\n")
        self.pending = lines.pop()
        if lines:
            self.out.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        """Write what is pending, then flush."""
        if self.pending:
            self.out.write(self.pending.rstrip(" "))
            self.pending = ""
        self.out.flush()

    def isatty(self) -> bool:
        """Never a terminal (only files and pipes are trimmed)."""
        return False


def console(stderr: bool = False) -> Console:
    """A console on stdout or stderr; colour follows the terminal and NO_COLOR. Not on a
    terminal, lines carry no padding at their end."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(
        file=None if stream.isatty() else _Trimmed(stream),  # type: ignore[arg-type]
        stderr=stderr,
        highlight=False,
        soft_wrap=False,
        no_color="NO_COLOR" in os.environ or None,
        width=None
        if (sys.stderr if stderr else sys.stdout).isatty() or "COLUMNS" in os.environ
        else 100,
    )


NARROW = 72  # below this many columns, tables leave out what matters least


def literal(text: str, style: str = "", lines: bool = False) -> Text:
    """Text from data shown as it is: never read as markup, control and invisible characters
    written out, and line feeds too unless ``lines`` (a description of several lines)."""
    return Text(visible(text, one_line=not lines), style=style)


def cells(*values: str | Text) -> list[Text]:
    """Table cells: text from data as literal Text, anything else as it is."""
    return [literal(v) if isinstance(v, str) else v for v in values]


def num(value: float | None, digits: int = 2) -> str:
    """A score for people: fixed decimals, or an en dash when there is none."""
    if value is None:
        return "–"
    return f"{value:.{digits}f}"


def bar(fraction: float | None, width: int = 12, below_cutoff: bool = False) -> Text:
    """A small horizontal bar for a 0-1 fraction, drawn with eighth blocks.

    Its colour follows the instrument's own cutoff where it has one: a scale below its
    cutoff is red whatever its share of the maximum (an SRS total of 84 % is below 36).
    """
    if fraction is None:
        return Text("·" * width, style="dim")
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part].strip() if part else ""
    filled = "█" * full + partial
    style = "green" if fraction >= 0.75 else "yellow" if fraction >= 0.5 else "red"
    if below_cutoff:
        style = "red"
    return Text(filled, style=style) + Text("·" * (width - len(filled)), style="dim")


def verification_text(status: str) -> Text:
    """The verification status, coloured."""
    return Text(status, style=_VERIFY_STYLE.get(status, ""))


# -- instruments ---------------------------------------------------------------------------
def instrument_table(catalog: Catalog) -> Table:
    """The catalog as one table."""
    table = Table(
        box=box.SIMPLE_HEAD,
        title="Alliance instruments",
        title_justify="left",
        caption="alliance instruments show ID: items, scoring, norms, licence",
        caption_justify="left",
    )
    for col in ("id", "name", "respondent", "items", "scale", "dimensions", "verification"):
        table.add_column(col, no_wrap=col in ("id", "items", "scale", "verification"))
    for key in catalog.ids():
        entry = catalog.entries[key]
        inst = entry.instrument
        scale = inst.scale
        table.add_row(
            *cells(
                key,
                (inst.short_name or inst.name) + ("" if entry.bundled else " (yours)"),
                inst.respondent,
                str(len(inst.items)),
                f"{scale.min:g}–{scale.max:g}" + (f" by {scale.step:g}" if scale.step != 1 else ""),
                ", ".join(inst.dimensions()) or "general",
                verification_text(inst.verification.status)
                + (" (never scored)" if inst.verification.status == "draft" else ""),
            )
        )
    return table


def instrument_detail(entry: LoadedInstrument) -> Group:
    """Everything a user should know about one instrument."""
    inst = entry.instrument
    parts: list[Any] = []
    head = literal(inst.name, style="bold")
    head.append(visible(f"  ({inst.id}, version {inst.version}, {inst.respondent} form)"), "dim")
    parts.append(head)
    if inst.description:
        parts.append(literal(inst.description.strip(), lines=True))
    scale = inst.scale
    anchors = ", ".join(f"{v:g} {t}" for v, t in sorted(scale.labels.items()))
    rng = f"{scale.min:g}–{scale.max:g} in steps of {scale.step:g}"
    parts.append(literal(f"Scale: {rng}" + (f"  ({anchors})" if anchors else "")))
    member: dict[str, list[str]] = {}
    for sub in inst.subscales:
        for item_id in sub.items:
            member.setdefault(item_id, []).append(sub.id)
    items = Table(box=box.SIMPLE_HEAD, title="Items", title_justify="left")
    for col in ("item", "label", "subscale", "reverse"):
        items.add_column(col)
    for item in inst.items:
        items.add_row(
            *cells(
                item.id,
                item.label,
                ", ".join(member.get(item.id, [])) or "–",
                Text("R", style="bold magenta") if item.reverse else "",
            )
        )
    parts.append(items)
    paper = [item.id for item in inst.items if getattr(item, "paper_order", "") == "descending"]
    if paper:
        parts.append(
            literal(
                f"Paper form: items {', '.join(paper)} print their choices highest first. "
                "Copy each answer by its label (Always is "
                f"{max(scale.labels, default=scale.max):g}), never by its place on the page; "
                "the prompts show those items' choices in the paper's order.",
                style="yellow",
            )
        )
    subs = Table(box=box.SIMPLE_HEAD, title="Scores", title_justify="left")
    for col in ("scale", "name", "dimension", "items", "may be missing"):
        subs.add_column(col)
    sizes = {d.get("id"): d.get("size") for d in inst.data.get("subscales", [])}
    for sub in inst.subscales:
        listed = " ".join(sub.items) or f"{sizes.get(sub.id) or '?'} items, no key (a draft)"
        subs.add_row(*cells(sub.id, sub.name, sub.dimension, listed, str(sub.max_missing)))
    subs.add_row(
        *cells(
            TOTAL,
            inst.total.name,
            "general",
            "all" if inst.total.items is None else " ".join(inst.total.items),
            str(inst.total.max_missing),
        )
    )
    parts.append(subs)
    parts.append(
        Text(
            f"Headline metric: {inst.metric} (both mean and sum are reported). Missing answers: "
            "a scale is prorated (mean of answered items; sum = mean × items) when no more "
            "than its allowed number is missing, otherwise it has no score."
        )
    )
    if inst.missing_codes:
        codes = ", ".join(f"{m.value!r} = {m.reason}" for m in inst.missing_codes)
        parts.append(literal(f"Missing codes: {codes}; blank cells are always missing."))
    for norm in inst.norms:
        title = literal(f"Norms: {norm.sample} (n={norm.n}, {norm.metric}s)")
        t = Table(box=box.SIMPLE_HEAD, title=title)
        for col in ("scale", "mean", "SD", "reliability"):
            t.add_column(col)
        for name, ref in norm.scales.items():
            t.add_row(*cells(name, f"{ref.mean:g}", f"{ref.sd:g}", f"{ref.reliability:g}"))
        parts.append(t)
        parts.append(literal(f"  {norm.citation}", style="dim"))
    if not inst.norms:
        parts.append(Text("Norms: none bundled (no z-scores or percentiles).", style="dim"))
    for band in inst.bands:
        levels = " / ".join(f"{lv.label} ≥ {lv.min:g}" for lv in band.levels)
        parts.append(
            literal(f"Bands for {band.scale} ({band.metric}): {levels}. Source: {band.source}")
        )
    for cut in inst.cutoffs:
        parts.append(
            literal(
                f"Cutoff: {cut.scale} {cut.metric} {cut.comparison} {cut.threshold:g}: "
                f"{cut.label}. Source: {cut.source}"
            )
        )
    parts.append(literal(f"Citation: {' '.join(inst.citation.split())}"))
    if inst.counterpart:
        parts.append(literal(f"Counterpart form: {inst.counterpart}"))
    ver = inst.verification
    vtext = Text("Verification: ") + verification_text(ver.status)
    if ver.note:
        vtext.append(visible(f". {' '.join(ver.note.split())}"))
    parts.append(vtext)
    for source in ver.sources:
        parts.append(literal(f"  source: {source}", style="dim"))
    licence = literal(" ".join(inst.licence.split()))
    parts.append(Panel(licence, title="Licence", border_style="yellow", expand=False))
    parts.append(literal(f"Definition: {entry.path}  sha256 {entry.sha256[:16]}…", style="dim"))
    return Group(*parts)


# -- scores --------------------------------------------------------------------------------
def score_view(
    score: Score,
    inst_scale: tuple[float, float],
    notes: Sequence[str] = (),
    concerns: Sequence[dict[str, Any]] | None = None,
) -> Group:
    """A counselor's view of one score: scales with bars, flags, issues, caveats; after a
    save, what the client's reading says at this session (``concerns``) instead of flags."""
    low, high = inst_scale
    who = score.respondent
    title = literal(score.instrument.name)
    meta = [
        f"client {who.client_id}" if who.client_id else "",
        f"session {who.session}" if who.session is not None else "",
        who.date or "",
        f"rated by {who.rater}" if who.rater else "",
    ]
    table = Table(
        box=box.SIMPLE_HEAD,
        title=title,
        title_justify="left",
        caption=literal(" · ".join(m for m in meta if m)) if any(meta) else None,
        caption_justify="left",
    )
    head = score.metric
    below = {f.scale for f in score.flags if f.code == "below_cutoff"}
    has_norm = any(s.z is not None for s in score.scales.values())
    has_band = any(s.band for s in score.scales.values())
    scales = list(score.scales.values())
    # what each column needs, unwrapped; the bar, the dimension and the range give way first
    needs = {
        "scale": max(len(w) for s in scales for w in [*s.name.split(), "scale"]),
        "dimension": max([len("dimension"), *(len(s.dimension) for s in scales)]),
        head: max([len(head), 6]),
        "range": max([5, *(len(f"{low * s.items:g}–{high * s.items:g}") for s in scales)]),
        "answered": len("answered") + 9 * any(s.prorated for s in scales),
        "POMP": 4,
        "bar": 12,
        "z": 5 * has_norm,
        "percentile": 10 * has_norm,
        "band": max([len(s.band or "") for s in scales] + [4]) * has_band,
    }
    width = console().width
    left_out = []
    for optional in ("bar", "dimension", "range"):
        used = [w for w in needs.values() if w]
        if sum(used) + 3 * len(used) + 1 <= width:
            break
        needs[optional] = 0
        left_out.append(optional)
    if left_out:
        note = f"left out at this width: the {', the '.join(left_out)}"
        table.caption = literal(" · ".join([*(m for m in meta if m), note]))
    table.add_column("scale")
    if needs["dimension"]:
        table.add_column("dimension", style="dim")
    table.add_column(head, justify="right", no_wrap=True)
    if needs["range"]:
        table.add_column("range", justify="right", style="dim", no_wrap=True)
    table.add_column("answered", justify="right", no_wrap=True)
    table.add_column("POMP", justify="right", no_wrap=True)
    if needs["bar"]:
        table.add_column("", no_wrap=True)
    if has_norm:
        table.add_column("z", justify="right", no_wrap=True)
        table.add_column("percentile", justify="right", no_wrap=True)
    if has_band:
        table.add_column("band")
    for sid, s in score.scales.items():
        value = s.mean if head == "mean" else s.sum
        rng = (low, high) if head == "mean" else (low * s.items, high * s.items)
        answered = f"{s.answered}/{s.items}" + (" prorated" if s.prorated else "")
        row: list[Any] = [literal(s.name, style="bold" if sid == TOTAL else "")]
        row += [literal(s.dimension)] if needs["dimension"] else []
        row += [num(value)]
        row += [f"{rng[0]:g}–{rng[1]:g}"] if needs["range"] else []
        row += [answered if value is not None else Text(answered, style="red"), num(s.pomp, 0)]
        if needs["bar"]:
            row.append(bar(None if s.pomp is None else s.pomp / 100, below_cutoff=sid in below))
        if has_norm:
            row += [num(s.z), num(s.percentile, 0)]
        if has_band:
            row.append(literal(s.band or "–"))
        table.add_row(*row)
    parts: list[Any] = [table]
    missing = [f"{s.name}: {s.missing_reason}" for s in score.scales.values() if s.missing_reason]
    if missing:
        parts.append(literal("No score: " + "; ".join(missing), style="red"))
    if concerns is not None:
        if concerns:
            parts.append(concerns_panel(concerns, "What the history says now"))
        else:
            parts.append(Text("Nothing to raise from the history so far.", style="green"))
    elif score.flags:
        lines = Text()
        for i, flag in enumerate(score.flags):
            if i:
                lines.append("\n")
            lines.append(visible(f"● {flag.message}"), style="bold")
            lines.append(visible(f"\n  {flag.code} on {flag.scale}: {flag.rule}"), style="dim")
        parts.append(Panel(lines, title="Worth raising", border_style="red", expand=False))
    if score.issues:
        text = "; ".join(f"item {i.item}: {i.problem}" for i in score.issues)
        parts.append(literal(f"Answers treated as missing: {text}", style="yellow"))
    for note in notes:
        parts.append(literal(note, style="yellow"))
    return Group(*parts)


SEVERITY_STYLE = {"act": "bold red", "watch": "yellow", "note": "cyan"}


def concerns_panel(concerns: Sequence[dict[str, Any]], title: str, details: bool = False) -> Panel:
    """Concerns as a counselor reads them: severity, sentence, the question to ask."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    for c in concerns:
        # a resolved concern keeps its severity's word, not its colour: nothing to act on now
        colour = SEVERITY_STYLE.get(c["severity"], "") if c["resolved"] is None else "dim"
        head = Text(c["severity"], style=colour)
        state = Text(" (open)" if c["resolved"] is None else "", style="dim")  # else said
        grid.add_row(head, literal(c["sentence"]) + state)
        if c["resolved"] is None:
            grid.add_row("", literal("To ask: " + c["question"], style="italic"))
        if details:
            for e in c.get("evidence", []):
                # the source after a semicolon: it may hold parentheses of its own
                said = f"{e['rule']}: {e['figures']}; source: {e['source']}"
                grid.add_row("", literal(said, "dim"))
    first_open = next((c for c in concerns if c["resolved"] is None), None)
    border = SEVERITY_STYLE.get(first_open["severity"], "") if first_open else ""
    return Panel(grid, title=title, border_style=border.replace("bold ", ""), expand=False)


def caveat_panel(verification: Any, licence: str) -> Panel:
    """Why these numbers need care: verification status and licence."""
    text = Text("Scoring key ") + verification_text(verification.status)
    if verification.note:
        text.append(visible(": " + " ".join(verification.note.split())))
    text.append(visible("\nLicence: " + " ".join(licence.split())), style="dim")
    return Panel(text, title="Before you rely on this", border_style="yellow", expand=False)


# -- history -------------------------------------------------------------------------------
_SPARK = "▁▂▃▄▅▆▇█"
_KIND_STYLE = {
    "drop": "red",
    "decline": "yellow",
    "low": "red",
    "early_low": "red",
    "gap": "magenta",
    "incomplete": "cyan",
    "recovered": "green",
}


def spark(values: Sequence[float | None], most: int | None = None) -> Text:
    """A sparkline of POMP values (0-100); gaps for missing scores; with ``most``, only the
    latest ``most`` values, after an ellipsis."""
    out = Text()
    if most is not None and len(values) > most:
        out.append("…", style="dim")
        values = values[-most:]
    for v in values:
        if v is None:
            out.append(" ")
            continue
        idx = min(int(v / 100 * len(_SPARK)), len(_SPARK) - 1)
        out.append(_SPARK[idx], style="green" if v >= 75 else "yellow" if v >= 50 else "red")
    return out


def scale_names(sessions: Sequence[Any]) -> dict[str, str]:
    """Every scale id the sessions hold, in order of first appearance, with its name. A
    definition that renamed a subscale's id keeps the old sessions' scale as a scale of its
    own; two ids with one name are told apart by their ids."""
    names: dict[str, str] = {}
    for sess in sessions:
        for sid, scale in sess.scales.items():
            names.setdefault(sid, scale.name)
    if TOTAL in names:  # the total last, as every form orders it
        names[TOTAL] = names.pop(TOTAL)
    shared = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {sid: f"{n} ({sid})" if n in shared else n for sid, n in names.items()}


FLAGS_MIN = 14  # the flags column, folded, is never narrower than this


class _Plan(NamedTuple):
    """Which history-table columns fit the terminal, and how."""

    short_session: bool  # "#" for "session"
    date: bool
    fold: bool  # scale names a word a line
    flags: bool  # the flags column (else listed under the table)
    tight: bool = False  # one space between columns, none at the edges


def _history_plan(
    names: Sequence[str], values: Sequence[Sequence[str]], date: int, session: int, width: int
) -> _Plan:
    """The first layout that fits ``width`` without cutting a number or an id: full names,
    then names a word a line, then without the date, then "#" for the session, then the
    flags under the table (each step said in the table's caption)."""

    def need(plan: _Plan) -> int:
        widths = [max(session, 1 if plan.short_session else len("session"))]
        widths += [date] if plan.date else []
        for k, name in enumerate(names):
            head = max(map(len, name.split())) if plan.fold else len(name)
            widths.append(max([head, *(len(v[k]) for v in values)]))
        widths.append(len("POMP"))
        widths += [FLAGS_MIN] if plan.flags else []
        gaps = len(widths) + 1 if plan.tight else 3 * len(widths) + 1  # padding and dividers
        return sum(widths) + gaps

    steps = [
        _Plan(False, True, False, True),
        _Plan(False, True, True, True),
        _Plan(False, False, True, True),
        _Plan(True, False, True, True),
        _Plan(True, False, True, False),
        _Plan(True, False, True, False, tight=True),
    ]
    return next((p for p in steps if need(p) <= width), steps[-1])


HISTORY_ROWS = 60  # sessions a history table shows (the latest); CSV and JSON hold them all
SPARK_POINTS = 60  # sessions a sparkline shows (the latest)


def history_view(views: Sequence[SeriesView], details: bool = False) -> Group:
    """Sessions table, a chart per scale, and what the reading says of each series (with
    ``details``, every concern's rules, figures and sources)."""
    from alliance_cli.core.reading import told_session

    parts: list[Any] = []
    for view in views:
        sessions = view.sessions
        names = scale_names(sessions)
        scale_ids = list(names)
        level = view.verification or "unknown"
        title = Text("Client ") + literal(view.client_id) + Text(f" · {view.instrument} (")
        title.append(f"{level} key", style=_VERIFY_STYLE.get(level, ""))
        title.append(f") · rated by {view.rater}")
        began: dict[int, list[Any]] = {}
        ended: dict[int, list[Any]] = {}
        for c in view.concerns:
            began.setdefault(c.began, []).append(c)
            if c.resolved is not None:
                ended.setdefault(c.resolved, []).append(c)
        shown = sessions[-HISTORY_ROWS:]  # a long series: its latest sessions
        rows = []
        for sess in shown:
            marks = [(c.kind, c.kind) for c in began.get(sess.session, [])]
            marks += [("recovered", f"{c.kind} over") for c in ended.get(sess.session, [])]
            values = [
                getattr(sess.scales[sid], view.metric) if sid in sess.scales else None
                for sid in scale_ids
            ]
            total = sess.scales.get(TOTAL)
            rows.append((sess, [num(v) for v in values], num(total.pomp if total else None, 0),
                         marks))  # fmt: skip
        plan = _history_plan(
            [names[sid] for sid in scale_ids],
            [r[1] for r in rows],
            max([4, *(len(visible(s.date or "", True)) for s in shown)]),
            max([1, *(len(str(s.session)) for s in shown)]),
            console().width,
        )
        table = Table(
            box=box.SIMPLE_HEAD,
            title=title,
            title_justify="left",
            padding=(0, 0) if plan.tight else (0, 1),
            pad_edge=not plan.tight,
        )
        table.add_column("#" if plan.short_session else "session", justify="right", no_wrap=True)
        if plan.date:
            table.add_column("date", no_wrap=True)
        for sid in scale_ids:  # numbers are never cut: a long name goes a word a line
            header = names[sid] if not plan.fold else "\n".join(names[sid].split())
            table.add_column(literal(header, lines=True), justify="right", no_wrap=True)
        table.add_column("POMP", justify="right", no_wrap=True)
        if plan.flags:
            table.add_column("flags", overflow="fold", min_width=FLAGS_MIN)
        below = Text()
        for sess, values_text, pomp, marks in rows:
            flag_text = Text()
            for i, (style, word) in enumerate(marks):
                flag_text.append(("  " if i else "") + word, style=_KIND_STYLE.get(style, ""))
            if not plan.flags and marks:
                below.append(f"session {sess.session}: ", style="bold")
                below.append_text(flag_text)
                below.append("\n")
            table.add_row(
                str(sess.session),
                *([literal(sess.date or "")] if plan.date else []),
                *values_text,
                pomp,
                *([flag_text] if plan.flags else []),
            )
        notes = []
        if len(sessions) > HISTORY_ROWS:
            notes.append(
                f"the latest {HISTORY_ROWS} of {len(sessions):,} sessions (-f csv or -f json: "
                "every one)"
            )
        left = [w for w, kept in (("the date", plan.date), ("the flags (below)", plan.flags))
                if not kept]  # fmt: skip
        if left:
            notes.append(f"{' and '.join(left)} left out of the table at this width")
        if notes:
            table.caption = "; ".join(notes)
            table.caption_justify = "left"
        parts.append(table)
        if below:
            below.rstrip()
            parts.append(below)
        chart = Table(box=None, show_header=False, padding=(0, 1))
        chart.add_column(style="bold")
        chart.add_column()
        chart.add_column(style="dim")
        for sid in scale_ids:
            pomps = [s.scales[sid].pomp if sid in s.scales else None for s in sessions]
            present = [v for v in pomps if v is not None]
            span = f"POMP {min(present):.0f}–{max(present):.0f}" if present else ""
            chart.add_row(literal(names[sid]), spark(pomps, most=SPARK_POINTS), span)
        parts.append(Panel(chart, title="Over sessions (POMP)", expand=False))
        if view.concerns:
            ordered = sorted(view.concerns, key=told_session)  # a dated note last
            parts.append(
                concerns_panel(
                    [c.as_dict() for c in ordered], "What the history says", details=details
                )
            )
            if not details:
                parts.append(Text("(--details: each rule, its figures and its source)", "dim"))
        else:
            parts.append(
                Text("Nothing to raise: no drop, decline, low score or gap.", style="green")
            )
        older = [s for s in sessions if not s.definition_current]
        if older:
            which = ", ".join(str(s.session) for s in older)
            many = len(older) > 1
            parts.append(
                Text(
                    f"{'Sessions' if many else 'Session'} {which} "
                    f"{'were' if many else 'was'} scored with another definition of "
                    f"{view.instrument} than the one loaded now (an earlier or a local one: "
                    "the stored scores are shown as they were; rescore the answers to use "
                    "the current key).",
                    style="yellow",
                )
            )
    return Group(*parts)


_TREND = {"up": ("↗ up", "green"), "down": ("↘ down", "red"), "steady": ("→ steady", "")}


CASELOAD_BLOCK = 100  # a longer caseload is drawn this many rows at a time, its header again


def caseload_tables(rows: Sequence[CaseloadRow]) -> Iterator[Table]:
    """The caseload for triage, as tables to print one after the other: one table, or for a
    long caseload blocks of ``CASELOAD_BLOCK`` rows with the same column widths, each under
    the header again, printed as they are drawn (a whole caseload of 10,000 clients took
    13 s to draw before its first line showed)."""
    widths = _caseload_widths(rows) if len(rows) > CASELOAD_BLOCK else None
    if widths is None:  # short, or too narrow to line blocks up: one table
        yield caseload_table(rows)
        return
    for start in range(0, len(rows), CASELOAD_BLOCK):
        table = caseload_table(rows[start : start + CASELOAD_BLOCK], widths)
        if start:
            table.title = None
        if start + CASELOAD_BLOCK < len(rows):
            table.caption = None
        yield table


def _caseload_columns(rows: Sequence[CaseloadRow]) -> tuple[bool, list[tuple[str, str, int]]]:
    """Whether the console is narrow, and (name, justify, least width) of the caseload's
    columns at its width."""
    narrow = console().width < 100  # the instrument and trend give way to the concerns
    longest = {
        "client": max((len(visible(r.client_id, True)) for r in rows), default=6),
        "counselor": max((len(visible(r.counselor or "", True)) for r in rows), default=9),
        "instrument": max((len(r.instrument) for r in rows), default=10),
    }
    columns = [("client", "left"), ("counselor", "left")]
    columns += [] if narrow else [("instrument", "left")]
    columns += [("last", "right"), ("days", "right"), ("POMP", "right")]
    columns += [] if narrow else [("trend", "left")]
    columns += [("concerns", "left")]
    # ids are never cut; a long counselor name may fold
    return narrow, [
        (col, justify, max(longest.get(col, 0) if col == "client" else
                           min(longest.get(col, 0), 16), len(col)))
        for col, justify in columns
    ]  # fmt: skip


def _caseload_cells(row: CaseloadRow, narrow: bool) -> list[Any]:
    """One caseload row's cells."""
    label, style = _TREND[row.trend]
    text = Text()
    for i, (severity, sentence) in enumerate(row.concern_lines()):
        text.append("\n" if i else "")
        text.append(f"{severity}: ", style=SEVERITY_STYLE.get(severity, ""))
        text.append(visible(sentence))
    cells: list[Any] = [literal(row.client_id), literal(row.counselor or "–")]
    cells += [] if narrow else [row.instrument]
    cells += [str(row.last_session), "–" if row.days_since is None else str(row.days_since)]
    cells += [num(row.last_total_pomp, 0)]
    cells += [] if narrow else [Text(label, style=style)]
    cells += [text if row.concerns else Text("–", style="green")]
    return cells


_LEAST_CONCERNS = 20  # the narrowest concerns column blocks are drawn with


def _caseload_widths(rows: Sequence[CaseloadRow]) -> list[int] | None:
    """Each column's width over every row, as one table would have it: the widest cell, the
    concerns taking what the console has left (a counselor's name folds beyond 16 when
    that leaves them too little); None when even that is too narrow."""
    narrow, columns = _caseload_columns(rows)
    widths = [least for _, _, least in columns]
    for row in rows:
        for i, cell in enumerate(_caseload_cells(row, narrow)):
            lines = cell.plain.split("\n") if isinstance(cell, Text) else [cell]
            widths[i] = max(widths[i], *(cell_len(line) for line in lines))
    # each column is padded by a space on both sides, and set apart by one (and the edges)
    room = console().width - sum(widths[:-1]) - 3 * len(widths) - 1
    if room < _LEAST_CONCERNS:  # a long counselor name folds first, as in one table
        counselor = [name for name, _, _ in columns].index("counselor")
        cut = min(widths[counselor], max(16, columns[counselor][2]))
        room += widths[counselor] - cut
        widths[counselor] = cut
    if room < _LEAST_CONCERNS:
        return None  # too narrow to line blocks up: one table, squeezed as rich squeezes it
    widths[-1] = min(widths[-1], room)
    return widths


def caseload_table(rows: Sequence[CaseloadRow], widths: Sequence[int] | None = None) -> Table:
    """The caseload for triage: one row per client, the most severe concern first (with
    ``widths``, each column's, as ``caseload_tables`` draws a long one)."""
    narrow, columns = _caseload_columns(rows)
    table = Table(box=box.SIMPLE_HEAD, title="Caseload", title_justify="left")
    if narrow:
        table.caption = "the instrument and the trend left out at this width"
        table.caption_justify = "left"
    for n, (col, justify, least) in enumerate(columns):
        table.add_column(
            col,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=col != "concerns",
            min_width=least,
            width=None if widths is None else widths[n],
            overflow="fold",
        )
    for row in rows:
        table.add_row(*_caseload_cells(row, narrow))
    return table


def assignments_table(rows: Sequence[dict[str, str]]) -> Table:
    """Which counselor's login role has which client (``alliance db assignments``)."""
    table = Table(box=box.SIMPLE_HEAD, title="Client assignments", title_justify="left")
    table.add_column("client", no_wrap=True)
    table.add_column("role", no_wrap=True)
    for row in rows:
        table.add_row(*cells(row["client_id"], row["role"]))
    return table


def reliability_view(records: Sequence[dict[str, Any]]) -> Group:
    """Each scale's reliability: alpha with its interval, then its items."""
    parts: list[Any] = []
    for r in records:
        low, high = r["alpha_ci95"]
        title = Text(
            f"{r['scale']}: alpha {r['alpha']:.3f} (95 % CI {low:.3f}–{high:.3f}, Feldt) · "
            f"standardized {r['std_alpha']:.3f} · mean inter-item r {r['average_r']:.3f} · "
            + (f"omega {r['omega_total']:.3f} (one factor) · " if r.get("omega_total") else "")
            + f"n {r['n']:,}"
        )
        table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left")
        for col in ("item", "mean", "sd", "r (corrected)", "alpha if deleted"):
            table.add_column(col, justify="right", no_wrap=True)
        for st in r["item_stats"]:
            r_text = Text(f"{st['r_drop']:.3f}", style="bold red" if st["r_drop"] < 0 else "")
            table.add_row(literal(st["item"]), f"{st['mean']:.2f}", f"{st['sd']:.2f}", r_text,
                          f"{st['alpha_if_deleted']:.3f}")  # fmt: skip
        parts.append(table)
        for warning in r["warnings"]:
            parts.append(literal(warning, style="red"))
    return Group(*parts)
