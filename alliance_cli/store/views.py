"""Views over the stored sessions: one client's history with its flags, and the caseload."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import IO, Any, NamedTuple, Protocol

from alliance_cli.core import reading
from alliance_cli.core.compiled import TOTAL
from alliance_cli.core.errors import AllianceError, UsageProblem
from alliance_cli.core.scorer import DIGITS
from alliance_cli.store.base import HistoryStore as Store
from alliance_cli.store.base import Record

OnProgress = Callable[[int, int], None]  # (done, total): what a long reading has done


# -- the one reading, from stored sessions ----------------------------------------------------
class Specs:
    """What the rules need of each series, from the instruments defined now: one spec per
    instrument and rater, made once for all the series read together."""

    def __init__(self, catalog: Any, instrument_ids: Iterable[str]) -> None:
        self.instruments = defined_instruments(catalog, instrument_ids)
        self.made: dict[tuple[str, str], Any] = {}

    def of(self, inst_id: str, rater: str, names: dict[str, str]) -> Any:
        """The spec of one series: its definition's, or its stored names' alone."""
        inst = self.instruments.get(inst_id)
        if inst is not None:
            key = (inst_id, rater)
            if key not in self.made:
                self.made[key] = reading.spec_of(inst, rater)
            if set(names) <= set(self.made[key].scales):
                return self.made[key]
        return reading.bare_spec(inst_id, rater, names)  # a definition that changed its scales


def series_of_records(records: Sequence[Record], specs: Specs) -> list[Any]:
    """Each (instrument, rater) of a client's records as the reading's series data."""
    from alliance_cli.store.base import answers_values

    groups: dict[tuple[str, str], list[Record]] = {}
    for rec in records:
        groups.setdefault((rec.instrument, rec.rater), []).append(rec)
    made = []
    for (inst_id, rater), recs in groups.items():
        recs.sort(key=lambda r: r.session)
        names = {sid: s["name"] for r in recs for sid, s in r.score["scales"].items()}
        made.append((specs.of(inst_id, rater, names), recs))
    compared = reading.compared_item_by_item([spec for spec, _ in made])
    return [
        reading.SeriesData(
            spec,
            [
                reading.Visit(
                    r.session,
                    r.date,
                    {sid: s["pomp"] for sid, s in r.score["scales"].items()},
                    r.counselor,
                    tuple(answers_values(r.answers)) if spec.label in compared else (),
                )
                for r in recs
            ],
        )
        for spec, recs in made
    ]


def client_reading(store: Store, client_id: str, catalog: Any, settings: reading.Settings) -> Any:
    """The one reading of a client, over every instrument and rater they have."""
    records = store.records(client_id, light=True)
    specs = Specs(catalog, {r.instrument for r in records})
    return reading.read_client(client_id, series_of_records(records, specs), settings)


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

    def as_dict(self) -> dict[str, Any]:
        """The session as JSON data (what ``dataclasses.asdict`` gives, built directly: a
        series of 20,000 sessions spent a second in asdict's deep copies)."""
        return {
            "session": self.session,
            "date": self.date,
            "scales": {
                k: {"name": v.name, "mean": v.mean, "sum": v.sum, "pomp": v.pomp}
                for k, v in self.scales.items()
            },
            "verification": self.verification,
            "definition_sha256": self.definition_sha256,
            "definition_current": self.definition_current,
            "flags_at_save": [dict(f) for f in self.flags_at_save],
        }


@dataclass(frozen=True)
class SeriesView:
    """One client's sessions on one instrument by one rater, with what the reading says."""

    client_id: str
    instrument: str
    rater: str
    metric: str
    verification: str | None
    sessions: list[SessionView]
    concerns: list[reading.Concern]  # the reading's concerns of this series
    # per scale, the threshold and band the next session is measured by (POMP)
    following: reading.NextSession

    def as_dict(self) -> dict[str, Any]:
        """The series as JSON data (``alliance history -f json``)."""
        return {
            "client_id": self.client_id,
            "instrument": self.instrument,
            "rater": self.rater,
            "metric": self.metric,
            "verification": self.verification,
            "sessions": [s.as_dict() for s in self.sessions],
            "thresholds": {
                k: None if v is None else round(v, DIGITS)
                for k, v in self.following.thresholds.items()
            },
            "concerns": [c.as_dict() for c in self.concerns],
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
        _without_session(rec.said_flags),
    )


def _without_session(said: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What was said at a save, without a "session" key (a flag kept before 0.3 has one):
    the list itself when none has (shared, never changed: a long series repeats it)."""
    if not any("session" in f for f in said):
        return said
    return [{k: v for k, v in f.items() if k != "session"} for f in said]


def client_view(
    store: Store,
    client_id: str,
    instrument: str | None,
    catalog: Any,
    settings: reading.Settings,
    today: str | None = None,
    on_progress: OnProgress | None = None,
) -> list[SeriesView]:
    """Per instrument and rater: sessions and the reading's concerns for one client; with
    ``today``, the client's dated notes (not seen, a date after today: ``recency_note``)
    with the first series shown, as ``clients`` shows them with the client's row."""
    keep_pending_said(store, catalog, settings, on_progress)
    records = store.records(client_id, light=True)
    if not records:
        raise unknown_client(store, client_id)
    if instrument and not any(r.instrument == instrument for r in records):
        kinds = sorted({r.instrument for r in records})
        raise UsageProblem(
            f"client {client_id!r} has no sessions on {instrument}; their sessions are on "
            f"{', '.join(kinds)} (drop --instrument, or choose one of those)"
        )
    data = series_of_records(records, Specs(catalog, {r.instrument for r in records}))
    read = reading.read_client(client_id, data, settings, today)
    dated = [c for c in read.concerns if not c.series]  # of the client, not of one series
    out: list[SeriesView] = []
    for series in data:
        spec = series.spec
        if instrument and spec.instrument != instrument:
            continue
        recs = [r for r in records if (r.instrument, r.rater) == (spec.instrument, spec.rater)]
        current = _current_sha(catalog, spec.instrument)
        sessions = [_session_view(r, current) for r in recs]
        out.append(
            SeriesView(
                client_id,
                spec.instrument,
                spec.rater,
                recs[0].score["metric"],
                sessions[-1].verification,
                sessions,
                [c for c in read.concerns if c.series == spec.label] + (dated if not out else []),
                read.following[spec.label],
            )
        )
    return out


def unknown_client(store: Store, client_id: str) -> UsageProblem:
    """The error for a client id with no records, suggesting the ids it may have meant.

    Typos are routine: the same id in another case, or the closest spellings, are offered.
    """
    hint = close_ids(store, client_id)
    return UsageProblem(f"no sessions recorded for client {client_id!r}{hint}")


def not_seen_yet(store: Store, client_id: str) -> str:
    """For a client given to a counselor: "; no session of theirs is recorded yet" (with the
    recorded ids it may have meant) when none is, as at an intake or after a typo; else ""."""
    if store.records(client_id, light=True):
        return ""
    return f"; no session of theirs is recorded yet{close_ids(store, client_id)}"


def close_ids(store: Store, client_id: str) -> str:
    """The recorded ids a mistyped one may have meant, as a hint to end a message with
    (" (did you mean 'C-101'?)"): the same id but for case or a look-alike character (O
    and 0; I, l and 1), else the closest spellings; "" when none is close."""
    import difflib

    ids = store.client_ids()
    folded = _look_alike(client_id)
    alike = [i for i in ids if _look_alike(i) == folded]
    close = alike or difflib.get_close_matches(client_id, ids, n=3, cutoff=0.6)
    return f" (did you mean {', '.join(repr(c) for c in close[:3])}?)" if close else ""


_LOOK_ALIKE = str.maketrans({"o": "0", "i": "1", "l": "1"})


def _look_alike(text: str) -> str:
    """An id as it looks: case and the characters typed for one another (O and 0; I, l
    and 1) folded together."""
    return text.lower().translate(_LOOK_ALIKE)


def _current_sha(catalog: Any, instrument_id: str) -> str | None:
    """The hash of the definition file alliance would score with now (None if none loads)."""
    try:
        return str(catalog.get(instrument_id).sha256)
    except AllianceError:
        return None


def _local_norms(catalog: Any, instrument_id: str) -> str:
    """What a reading owes to a clinic's own norms for this instrument (``--norms``,
    ``ALLIANCE_NORMS``): they change its reliable-change thresholds but not the definition's
    hash, so a kept reading names them too ("" without)."""
    norm = getattr(catalog, "local_norms", {}).get(instrument_id)
    if norm is None:
        return ""
    import hashlib

    return "|norms:" + hashlib.sha256(repr(norm).encode()).hexdigest()[:16]


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


def said_at_save(
    store: Store, score: dict[str, Any], catalog: Any, settings: reading.Settings
) -> list[dict[str, Any]]:
    """What the reading says at the session just recorded, of its series: the concerns open
    there, and those it resolved."""
    who = score["respondent"]
    read = client_reading(store, str(who["client_id"]), catalog, settings)
    label = reading.series_label(score["instrument"]["id"], str(who.get("rater")))
    return [c.as_dict() for c in read.said_at(label, who["session"])]


def _floats(text: str) -> list[float | None]:
    return [None if t == "n" else float(t) for t in text.split(",")]


# as ``clients -f json`` writes JSON; what it wrote is kept and written again as it is (the
# kept list's lines, a kept series reading's open concerns): a change here must raise
# CASELOAD_RULES and SNAPSHOT_FORMAT, so that nothing written the old way is reused
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
_ENCODE_TEXT = json.encoder.encode_basestring  # a string, as that encoder writes it


class Concerns(Sequence[dict[str, Any]]):
    """A caseload row's open concerns (each as ``Concern.as_dict``), in order of attention.

    The whole caseload is kept with each row's concerns as their JSON text, read back as
    UTF-8 bytes and decoded only when looked at: ``clients -f json`` writes those bytes as
    they are (``CaseloadRow.json_utf8``). Its 10,000 clients' concerns are most of a kept
    caseload's bytes, and decoding and encoding them again was most of the command's time.
    ``first`` and ``began``: the first concern's severity and the session it began, kept
    beside them (None when there is none), so the list is put in order without decoding.
    """

    __slots__ = ("_began", "_first", "_items", "_raw", "_text")

    def __init__(
        self,
        items: list[dict[str, Any]] | None = None,
        raw: bytes | None = None,
        first: str | None = None,
        began: int | None = None,
    ) -> None:
        self._items = items if items is not None or raw is not None else []
        self._raw = raw  # when given: exactly what ``_ENCODE`` made of them, in UTF-8
        self._text: str | None = None
        self._first = first
        self._began = began

    def _list(self) -> list[dict[str, Any]]:
        if self._items is None:
            self._items = json.loads(self._raw or b"[]")
        return self._items

    def __len__(self) -> int:
        return len(self._list())

    def __bool__(self) -> bool:
        return self._raw != b"[]" if self._items is None else bool(self._items)

    def __getitem__(self, index: Any) -> Any:
        return self._list()[index]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self._list())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Concerns):
            other = other._list()
        return self._list() == other

    __hash__ = None  # type: ignore[assignment]  # (a list's equality: not hashable)

    def __repr__(self) -> str:
        return f"Concerns({self._list()!r})"

    def __add__(self, more: list[dict[str, Any]]) -> Concerns:
        """These concerns, then ``more`` (today's not-seen note), kept bytes kept as bytes."""
        if not more:
            return self
        if self._items is not None or self._raw is None:
            return Concerns(self._list() + more)
        added = _ENCODE(more).encode()
        raw = added if self._raw == b"[]" else self._raw[:-1] + b", " + added[1:]
        if self:
            return Concerns(raw=raw, first=self._first, began=self._began)
        return Concerns(raw=raw, first=more[0]["severity"], began=more[0].get("began"))

    def severity(self) -> str | None:
        """The first (most severe) concern's severity; None when there is none."""
        if self._items is None:
            return self._first
        return self._items[0]["severity"] if self._items else None

    def began(self) -> int | None:
        """The session the first (most severe) concern began; None when unknown or none."""
        if self._items is None:
            return self._began
        began = self._items[0].get("began") if self._items else None
        return began if isinstance(began, int) else None

    def json(self) -> str:
        """The concerns as ``clients -f json`` writes them."""
        if self._text is None:
            self._text = self._raw.decode() if self._raw is not None else _ENCODE(self._items)
        return self._text

    def utf8(self) -> bytes:
        """``json``, in UTF-8 (the kept bytes as they are)."""
        return self._raw if self._raw is not None else self.json().encode()


class CaseloadRow(NamedTuple):
    """One client in the caseload: their latest numbers and their open concerns."""

    client_id: str
    instrument: str
    rater: str
    sessions: int
    last_session: int
    last_date: str | None
    last_total_pomp: float | None
    trend: str
    concerns: Concerns  # the reading's open concerns, in order of attention
    counselor: str | None = None  # of the latest session
    days_since: int | None = None  # since the latest session (when dated)
    # the JSON object of the first eight fields as the kept list holds it, without its
    # closing brace (None for a row read now); a row whose first eight change loses it
    kept_head: bytes | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON data (``alliance clients -f json``)."""
        data = self._asdict()
        del data["kept_head"]
        data["concerns"] = list(self.concerns)
        data["severity"] = self.severity
        return data

    def head_utf8(self) -> bytes:
        """The JSON object of the first eight fields (``_ENCODE``), in UTF-8, without its
        closing brace: the kept one when there is one."""
        if self.kept_head is not None:
            return self.kept_head
        return _ENCODE(dict(zip(_HEAD_FIELDS, self[:8], strict=True)))[:-1].encode()

    def json_utf8(self) -> bytes:
        """``as_dict`` as ``clients -f json`` writes it (``_ENCODE``), in UTF-8, the
        kept bytes put in as they are."""
        counselor = "null" if self.counselor is None else _ENCODE_TEXT(self.counselor)
        days = "null" if self.days_since is None else int.__repr__(self.days_since)
        severity = "null" if self.severity is None else _ENCODE_TEXT(self.severity)
        tail = f', "counselor": {counselor}, "days_since": {days}, "severity": {severity}}}'
        return b"".join((self.head_utf8(), b', "concerns": ', self.concerns.utf8(), tail.encode()))

    def snapshot_line(self, made_from: str) -> bytes:
        """The row as the kept caseload holds it, in UTF-8: its other fields, its first
        concern's severity and the session it began, and the series readings it was made
        from (``views.made_from``) as a JSON array; a tab, ``head_utf8`` (what ``clients -f
        json`` writes first); a tab, then its concerns' JSON text (JSON text holds no raw
        tab or line break)."""
        head = [*self[:8], self.counselor, self.days_since, self.severity,
                self.concerns.began(), made_from]  # fmt: skip
        return b"\t".join((_ENCODE(head).encode(), self.head_utf8(), self.concerns.utf8()))

    @property
    def severity(self) -> str | None:
        """The most severe open concern's severity (None: nothing open)."""
        return self.concerns.severity()

    def concern_lines(self, most: int = 3) -> list[tuple[str, str]]:
        """(severity, a few plain words) of up to ``most`` open concerns, then "and N more"
        (each concern's whole sentence is on the client's page and in ``history``)."""
        lines = [(c["severity"], reading.short_words(c)) for c in self.concerns[:most]]
        if len(self.concerns) > most:
            lines.append(("note", f"and {len(self.concerns) - most} more"))
        return lines


@dataclass(frozen=True)
class CaseloadFilter:
    """Which clients the caseload shows (``alliance clients`` options)."""

    counselor: str | None = None  # case-insensitive, the counselor of the latest session
    instrument: str | None = None  # clients with a series on it (its numbers shown)
    since: str | None = None  # ISO date: a session on or after it
    only_open: bool = False

    def keeps_all(self) -> bool:
        """Whether no filter is set."""
        return self == CaseloadFilter()

    def keeps_client(self, row: CaseloadRow) -> bool:
        """Whether one client's row (over the series kept) is shown."""
        if self.since and (row.last_date is None or row.last_date < self.since):
            return False
        if self.only_open and not row.concerns:
            return False
        return not self.counselor or (row.counselor or "").lower() == self.counselor.lower()


def caseload(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    filters: CaseloadFilter | None = None,
    today: str | None = None,
    readings: dict[str, Any] | None = None,
    on_progress: OnProgress | None = None,
    seen: dict[str, Any] | None = None,
) -> list[CaseloadRow]:
    """One row per client (the one reading's open concerns), most in need of attention first.
    ``on_progress(done, total)`` hears of the clients read, when any must be; ``seen``, when
    given, is told the instruments of the caseload's series (``"instruments"``) and, with
    ``since``, how many clients it leaves out for having no dated session (``"undated"``).

    The whole list (every client: each filter but ``instrument`` then chooses among its
    rows) is kept, and each client's reading until one of their sessions changes
    (``store.sqlite`` migrations 6, 7 and 10): after a change only the clients whose series
    changed are read again, and every other client's row is the kept one, as it was written
    (each row names the kept series readings it was made from).
    Days since the latest session, and the not-seen note, depend on today's date and are
    added to what was kept.
    """
    if readings is None:
        keep_pending_said(store, catalog, settings, on_progress)
    want = filters or CaseloadFilter()
    stamps = _Stamps(catalog, settings)
    stamp, list_stamp = stamps.of, stamps.of_list
    # the whole list's rows hold for every filter but the instrument (which shows that
    # instrument's numbers): the others only choose among them, at the end
    whole = not want.instrument
    reused: list[tuple[CaseloadRow, bytes]] = []
    seen_rows: list[tuple[Any, ...]] = []  # -i: each kept series' last date and counselor
    with store.reading():  # the kept readings and the sessions, read at one moment
        version, kept_stamp, kept_rows, fresh = store.snapshot()
        instruments = store.caseload_instruments()
        if want.instrument and len(instruments) > 1:  # (one: the whole list's rows)
            seen_rows = store.series_last_seen()
        if seen is not None:
            seen["instruments"] = instruments
        current = (
            _current_list(kept_stamp, kept_rows, fresh, list_stamp(instruments)) if whole else None
        )
        if current is not None:
            rows = current
            series_rows = None
        else:
            kept = None
            if want.instrument:
                kept = _one_instrument(store, want.instrument, [stamp(i) for i in instruments])
            elif kept_rows and (kept_stamp or "").startswith(SNAPSHOT_FORMAT + "\n"):
                reused, kept = _reusable(store, kept_rows, [stamp(i) for i in instruments])
            series_rows, made, keep, gone = _series_readings(
                store, catalog, settings, stamp, kept, readings, on_progress
            )
    if series_rows is not None:
        if keep or gone:  # after the read: keeping takes the write lock
            store.keep_caseload(keep, gone)
        series_of: dict[str, list[CaseloadRow]] = {}
        for row in series_rows:
            if not want.instrument or row.instrument == want.instrument:
                series_of.setdefault(row.client_id, []).append(row)
        fresh_rows = [_one_row(series) for series in series_of.values()]
        if want.instrument:
            read_again = {k[9] for k in keep}
            fresh_rows = _as_the_clients(fresh_rows, series_rows, read_again, seen_rows)
        rows = _in_attention_order(fresh_rows + [row for row, _ in reused])
        if whole:
            lines = {id(r): r.snapshot_line(made[r.client_id]) for r in fresh_rows}
            lines.update((id(row), line) for row, line in reused)
            kept_text = b"\n".join(lines[id(r)] for r in rows)
            store.keep_snapshot(version, list_stamp(instruments), kept_text)
    return _shown(rows, want, today, settings, seen)


class KeptSource(Protocol):
    """What ``kept_caseload`` reads: a whole store, or a server's ``KeptReader``."""

    def said_pending(self) -> int | None:
        """The earliest row after which a batch's sessions wait for their reading."""

    def reading(self) -> contextlib.AbstractContextManager[None]:
        """A read transaction."""

    def snapshot(self) -> tuple[int, str | None, bytes | None, bool]:
        """(version, stamp, rows, fresh) of the kept caseload."""

    def caseload_instruments(self) -> list[str]:
        """The instruments of every series the caseload keeps a reading for."""


def kept_caseload(
    store: KeptSource,
    catalog: Any,
    settings: reading.Settings,
    filters: CaseloadFilter | None = None,
    today: str | None = None,
    seen: dict[str, Any] | None = None,
) -> list[CaseloadRow] | None:
    """``caseload``, when it is the kept list as it was written: no batch waits for its
    reading, the whole list is kept and current (no filter by instrument); else None (and
    nothing read), for ``caseload`` to read and keep what it must."""
    want = filters or CaseloadFilter()
    if want.instrument or store.said_pending() is not None:
        return None
    with store.reading():
        _, kept_stamp, kept_rows, fresh = store.snapshot()
        instruments = store.caseload_instruments()
    rows = _current_list(
        kept_stamp, kept_rows, fresh, _Stamps(catalog, settings).of_list(instruments)
    )
    if rows is None:
        return None
    if seen is not None:
        seen["instruments"] = instruments
    return _shown(rows, want, today, settings, seen)


def _current_list(
    kept_stamp: str | None, kept_rows: bytes | None, fresh: bool, stamp: str
) -> list[CaseloadRow] | None:
    """The kept list's rows when they still hold (no session changed since it was kept,
    and it was kept with today's stamp); else None."""
    if not fresh or kept_rows is None or kept_stamp != stamp:
        return None
    return _kept_rows(kept_rows)


class _Stamps:
    """What a kept reading depends on besides the sessions, per instrument (``of``), and
    the kept list's stamp (``of_list``: its format and its instruments' stamps)."""

    def __init__(self, catalog: Any, settings: reading.Settings) -> None:
        self.catalog, self.settings = catalog, settings
        self.made: dict[str, str] = {}

    def of(self, inst_id: str) -> str:
        """One instrument's stamp: the rules, its definition, local norms, the settings."""
        if inst_id not in self.made:
            sha = _current_sha(self.catalog, inst_id) or "-"
            norms = _local_norms(self.catalog, inst_id)
            kept = self.settings.of_the_reading()  # (not the days before the not-seen note)
            self.made[inst_id] = f"{CASELOAD_RULES}|{sha}{norms}|{kept!r}"
        return self.made[inst_id]

    def of_list(self, instruments: Iterable[str]) -> str:
        """The kept list's stamp (and its format)."""
        return "\n".join([SNAPSHOT_FORMAT, *(self.of(i) for i in sorted(set(instruments)))])


def _shown(
    rows: list[CaseloadRow],
    want: CaseloadFilter,
    today: str | None,
    settings: reading.Settings,
    seen: dict[str, Any] | None,
) -> list[CaseloadRow]:
    """The rows the filters keep, each with the days since its latest session as of today
    (and, with ``--since``, how many clients it leaves out undated: ``seen["undated"]``)."""
    dated: dict[str, tuple[int | None, list[dict[str, Any]]]] = {}  # clients share dates
    shown: list[CaseloadRow] = []
    raised = False  # a client with nothing open until today's not-seen note
    for row in rows:
        now = _today(row, today, settings, dated)
        if want.keeps_client(now):
            shown.append(now)
            raised = raised or (not row.concerns and bool(now.concerns))
    if raised:  # the note ranks its client above those with nothing open: the order moves
        _in_attention_order(shown)
    if seen is not None and want.since:  # the clients --since cannot place (no dated session)
        others = dataclasses.replace(want, since=None)  # that the other filters would show
        seen["undated"] = sum(
            r.last_date is None and others.keeps_client(_today(r, today, settings, dated))
            for r in rows
        )
    return shown


def _reusable(
    store: Store, data: bytes, stamps: list[str]
) -> tuple[list[tuple[CaseloadRow, bytes]], list[tuple[Any, ...]]]:
    """The kept list's rows that still hold, each with its line: a client's row holds when
    every series it was made from is still kept, current, with the same token (a reading
    gets a new random token whenever it is kept), and the client has no other series. With
    the kept readings of every other client (``Store.kept_caseload``), to read again or to
    put together anew; a client no longer in the caseload is left out."""
    now = {client_id: made if current else None
           for client_id, made, current in store.caseload_made_from(stamps)}  # fmt: skip
    reused = []
    for row, line, was_made_from in _kept_lines(data):
        if now.get(row.client_id) == was_made_from:
            reused.append((row, line))
            del now[row.client_id]
    return reused, store.kept_caseload(set(now)) if now else []


def _one_instrument(store: Store, instrument: str, stamps: list[str]) -> list[tuple[Any, ...]]:
    """The kept readings one instrument's view needs (``Store.kept_caseload``'s rows): its
    series, and every series of a client any of whose readings is not current (that client
    is read again whole: the reading is the client's, across forms)."""
    stale = {c for c, _, current in store.caseload_made_from(stamps) if not current}
    rows = store.kept_caseload(instrument=instrument)
    if stale:
        rows = [r for r in rows if r[0] not in stale] + store.kept_caseload(stale)
    return rows


def made_from(series: list[tuple[str, str, Any]]) -> str:
    """What a client's row is made from, as the kept list names it: the tokens of its
    series' kept readings, comma-joined in the order of (instrument, rater). A token is
    random and new each time a reading is kept, so it names one reading of one series."""
    return ",".join(str(t) for _, _, t in sorted(series, key=itemgetter(0, 1)))


_HEAD_FIELDS = CaseloadRow._fields[:8]  # the fields before the concerns
CASELOAD_COLUMNS = CaseloadRow._fields[:11]  # what clients shows of a row (not kept_head)


def _kept_rows(data: bytes) -> list[CaseloadRow]:
    """The kept caseload's rows (``CaseloadRow.snapshot_line``, in UTF-8), the concerns
    left as bytes."""
    return [row for row, _, _ in _kept_lines(data)]


def _kept_lines(data: bytes) -> list[tuple[CaseloadRow, bytes, str]]:
    """Each row of the kept caseload (``CaseloadRow.snapshot_line``, in UTF-8), the
    concerns left as bytes, with its line and the series readings it was made from."""
    if not data:
        return []
    raw = data.split(b"\n")
    lines = [line.split(b"\t", 2) for line in raw]
    heads = json.loads(b"[" + b",".join(parts[0] for parts in lines) + b"]")
    new = CaseloadRow.__new__  # tens of thousands of rows: skip the keyword-aware __init__
    return [
        (new(CaseloadRow, h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
             Concerns(raw=concerns, first=h[10], began=h[11]), h[8], h[9], kept),
         line, h[12])
        for h, (_, kept, concerns), line in zip(heads, lines, raw, strict=True)
    ]  # fmt: skip


def _in_attention_order(rows: list[CaseloadRow]) -> list[CaseloadRow]:
    """Most severe first, then the most recently raised (the fewest sessions since the most
    severe concern began), then the most recently seen (undated last), then the id: stable
    sorts, the least significant first."""
    order = reading.SEVERITY_ORDER
    rows.sort(key=_client_id)
    rows.sort(key=_last_date, reverse=True)
    rows.sort(key=lambda r: (order.get(r.concerns.severity() or "", 3), _sessions_since_raised(r)))
    return rows


def _client_id(row: CaseloadRow) -> str:
    return row.client_id


def _last_date(row: CaseloadRow) -> str:
    return row.last_date or ""


def _sessions_since_raised(row: CaseloadRow) -> int:
    """Sessions since the row's most severe concern began (none: last; a note of today's
    date, not of a session, such as not seen: 0, as if raised now)."""
    if not row.concerns:
        return 1 << 30
    began = row.concerns.began()
    if began is None:
        return 1 << 30
    return max(0, row.last_session - began) if began else 0


def _today(
    row: CaseloadRow,
    today: str | None,
    settings: reading.Settings,
    dated: dict[str, tuple[int | None, list[dict[str, Any]]]],
) -> CaseloadRow:
    """Days since the latest session, and the not-seen note, as of today (worked out once
    per date in ``dated``: each row gets its own copy of the note)."""
    if not today or not row.last_date:
        return row
    if row.last_date not in dated:
        away = reading.recency_note(row.last_date, today, settings)
        days = reading.days_between(row.last_date, today)
        dated[row.last_date] = (days, [away.as_dict()] if away is not None else [])
    days, note = dated[row.last_date]
    return row._replace(days_since=days, concerns=row.concerns + [dict(n) for n in note])


def _series_readings(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    stamp: Callable[[str], str],
    kept: list[tuple[Any, ...]] | None = None,
    kept_readings: dict[str, Any] | None = None,
    on_progress: OnProgress | None = None,
) -> tuple[list[CaseloadRow], dict[str, str], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Every series' row (or those of ``kept``, ``Store.kept_caseload``'s rows): kept ones
    whose stamp is current, the others read again (every series of a client any of whose
    series changed); per client, what its row is made from (``made_from``); and what to
    keep of those read (``Store.keep_caseload``'s readings, each with a new random token,
    and gone series)."""
    kept = store.kept_caseload() if kept is None else kept
    now = {inst_id: stamp(inst_id) for inst_id in {k[1] for k in kept}}
    stale_clients = {k[0] for k in kept if k[4] != now[k[1]]}
    versions = {(k[0], k[1], k[2]): k[3] for k in kept if k[0] in stale_clients}
    read = (
        _read_clients(store, catalog, settings, set(versions), kept_readings, on_progress)
        if versions
        else []
    )
    found = {(r.client_id, r.instrument, r.rater) for r in read}
    tokens = _tokens(len(read))
    series_of: dict[str, list[tuple[str, str, Any]]] = {}
    readings = []
    for r, token in zip(read, tokens, strict=True):
        readings.append(
            (stamp(r.instrument), r.sessions, r.last_session, r.last_date, r.last_total_pomp,
             r.trend, r.concerns.json(), r.counselor, token,
             r.client_id, r.instrument, r.rater, versions[(r.client_id, r.instrument, r.rater)])
        )  # fmt: skip
        series_of.setdefault(r.client_id, []).append((r.instrument, r.rater, token))
    gone = [(*key, seen) for key, seen in versions.items() if key not in found]
    new = CaseloadRow.__new__  # tens of thousands of rows: skip the keyword-aware __init__
    current = []
    for k in kept:
        if k[0] not in stale_clients:
            current.append(
                new(CaseloadRow, k[0], k[1], k[2], k[5], k[6], k[7], k[8], k[9],
                    _kept_concerns(k[10]), k[11], None)
            )  # fmt: skip
            series_of.setdefault(k[0], []).append((k[1], k[2], k[12]))
    made = {client_id: made_from(series) for client_id, series in series_of.items()}
    return read + current, made, readings, gone


class _Seen(NamedTuple):
    """A series' last session as the caseload keeps it (``Store.series_last_seen``)."""

    client_id: str
    instrument: str
    rater: str
    last_date: str | None
    last_session: int
    counselor: str | None


def _as_the_clients(
    rows: list[CaseloadRow],
    series_rows: list[CaseloadRow],
    read_again: set[str],
    seen_rows: list[tuple[Any, ...]],
) -> list[CaseloadRow]:
    """Rows of one instrument with the client's latest date and counselor over every form,
    as the whole list's rows have them (``_last_seen``): the days, the not-seen note,
    ``--since`` and ``--counselor`` are the client's. ``seen_rows`` are the kept series'
    (``Store.series_last_seen``); a client read again has every series in
    ``series_rows``, whose kept dates may be out of date."""
    series_of: dict[str, list[Any]] = {}
    for r in seen_rows:
        if r[0] not in read_again:
            series_of.setdefault(r[0], []).append(_Seen(*r))
    for row in series_rows:
        if row.client_id in read_again:
            series_of.setdefault(row.client_id, []).append(row)
    out = []
    for row in rows:
        series = series_of.get(row.client_id)
        date, counselor = _last_seen(series) if series else (row.last_date, row.counselor)
        if (date, counselor) != (row.last_date, row.counselor):
            row = row._replace(last_date=date, counselor=counselor, kept_head=None)
        out.append(row)
    return out


def _last_seen(series: Sequence[_Seen | CaseloadRow]) -> tuple[str | None, str | None]:
    """(date, counselor) of a client's latest session over its series: the latest date of
    any series, and the counselor of the series whose last session is the latest (by date,
    then number; a dated one before an undated one; ties go to the first instrument and
    rater in name order)."""
    best: tuple[tuple[str, int], tuple[str, str], str | None] | None = None
    latest = ""
    for one in series:  # (one pass: tens of thousands of series for -i)
        when, form = (one.last_date or "", one.last_session), (one.instrument, one.rater)
        if best is None or when > best[0] or (when == best[0] and form < best[1]):
            best = (when, form, one.counselor)
        latest = max(latest, when[0])
    return latest or None, best[2] if best is not None else None


def _kept_concerns(text: str | None) -> Concerns:
    """A kept series reading's open concerns (its JSON text, as ``Concerns.json`` wrote it):
    decoded for the order of attention, and written again as the bytes they were kept as."""
    if not text:
        return Concerns([])
    return Concerns(json.loads(text), raw=text.encode())


def _tokens(count: int) -> list[int]:
    """``count`` random 62-bit tokens (from the system's random source: a test that seeds
    Python's generator cannot make two readings share one)."""
    data = os.urandom(8 * count)
    return [int.from_bytes(data[i : i + 8], "big") >> 2 for i in range(0, 8 * count, 8)]


def keep_pending_said(
    store: Store, catalog: Any, settings: reading.Settings, on_progress: OnProgress | None = None
) -> None:
    """Read the clients of a batch too large to read while saving, and keep what the
    reading says at each of its sessions (``Store.leave_said_pending``): the first reader
    after such a batch does it, once."""
    since = store.said_pending()
    if since is None:
        return
    try:
        after_batch(store, catalog, settings, since, on_progress)
        store.said_kept(since)
    except AllianceError:
        pass  # a read-only or busy history: the reading is shown; a later reader keeps it


def after_batch(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    since: int,
    on_progress: OnProgress | None = None,
) -> list[Any]:
    """After ``batch --save``: read every client the batch touched (kept for ``clients``),
    keep what the reading says at each session the batch added (never rewritten later),
    and return the open concerns of those clients, for the batch's summary."""
    readings: dict[str, Any] = {}
    added = store.unsaid_since(since)
    caseload(store, catalog, settings, readings=readings, on_progress=on_progress)
    for client_id in {r[1] for r in added} - set(readings):  # kept fresh by another reader
        keys = set(store.series_keys(client_id))
        _read_clients(store, catalog, settings, keys, readings)
    said = []
    texts: dict[tuple[int, ...], str] = {(): "[]"}  # concerns said at many sessions: one text
    added.sort(key=itemgetter(1, 2, 3))  # each series' sessions together
    for (client_id, inst_id, rater), group in itertools.groupby(added, key=itemgetter(1, 2, 3)):
        rows = list(group)
        read = readings.get(client_id)
        if read is None:
            said += [("[]", row[0]) for row in rows]
            continue
        at = read.said_at_each(reading.series_label(inst_id, rater), {row[4] for row in rows})
        for rowid, _, _, _, session in rows:
            here = at[session]
            key = tuple(map(id, here))
            text = texts.get(key)
            if text is None:
                text = texts[key] = json.dumps([c.as_dict() for c in here]) if here else "[]"
            said.append((text, rowid))
    said.sort(key=itemgetter(1))  # written in the order the sessions were saved
    store.keep_batch_said(said)
    touched = {r[1] for r in added}
    return [c for cid, r in readings.items() if cid in touched for c in r.open]


def _read_clients(
    store: Store,
    catalog: Any,
    settings: reading.Settings,
    keys: set[tuple[str, str, str]],
    readings: dict[str, Any] | None = None,
    on_progress: OnProgress | None = None,
) -> list[CaseloadRow]:
    """Read these series from the caseload index, each client's series together: the one
    reading per client (kept in ``readings`` when given), and per series its latest numbers
    and open concerns; ``on_progress(clients read, clients)`` every 256 clients (every chunk
    when many are read on every core: ``reading_jobs``) and at the end."""
    from alliance_cli.store import reading_jobs

    rows = store.caseload_rows(only=keys)
    specs = Specs(catalog, {r[1] for r in rows})
    by_client: dict[str, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_client.setdefault(row[0], []).append(row)
    keep = readings is not None

    def read_one(item: tuple[str, list[tuple[Any, ...]]]) -> tuple[Any, list[CaseloadRow]]:
        client_id, client_rows = item
        data = [_series_data(row, specs, store) for row in client_rows]
        read = reading.read_client(client_id, [d for d, _ in data], settings)
        out = []
        for series, numbers in data:
            label = series.spec.label
            concerns = Concerns(
                [c.as_dict() for c in read.concerns if c.series == label and c.is_open]
            )
            inst_id, rater, n, last, last_date, total, counselor = numbers
            trend = read.trends.get(label, "steady")
            out.append(
                CaseloadRow(
                    client_id, inst_id, rater, n, last, last_date, total, trend, concerns, counselor
                )
            )
        return (read if keep else None), out

    items = list(by_client.items())
    # a client whose series changed its subscales is read with the store's help (rare):
    # by this process, the others perhaps on every core (a forked worker has no store)
    alone = {c for c, client_rows in items if any(map(_needs_store, client_rows))}
    others = [item for item in items if item[0] not in alone]
    results = reading_jobs.read_all(others, read_one, on_progress)
    if results is None:
        results_by = {}
        for done, item in enumerate(items):
            if on_progress is not None and not done & 255:
                on_progress(done, len(items))
            results_by[item[0]] = read_one(item)
    else:
        results_by = dict(zip((c for c, _ in others), results, strict=True))
        results_by.update((item[0], read_one(item)) for item in items if item[0] in alone)
    out: list[CaseloadRow] = []
    for client_id, _ in items:
        read, client_out = results_by[client_id]
        if readings is not None:
            readings[client_id] = read
        out += client_out
    if on_progress is not None:
        on_progress(len(items), len(items))
    return out


def _needs_store(row: tuple[Any, ...]) -> bool:
    """Whether a caseload-index row's subscales must be read session by session
    (``_subscales``: the series' definition changed its subscales)."""
    low, high = row[7], row[8]
    return bool(high) and low != high


def _series_data(row: tuple[Any, ...], specs: Specs, store: Store) -> tuple[Any, tuple[Any, ...]]:
    """One series from its caseload-index row: the reading's data, and its row numbers
    (instrument, rater, sessions, last session, last date, last total, counselor)."""
    from alliance_cli.store.base import answers_values

    client_id, inst_id, rater, sessions_text, pomps = row[:5]
    dates_text, counselors_text, answers_text = row[10:13]
    sessions = [int(s) for s in sessions_text.split(",")]
    totals = _floats(pomps)
    dates = dates_text.split(",")
    counselors = counselors_text.split("\x1f")
    answers = answers_text.split(";")
    order = None
    if sessions != sorted(sessions):
        order = sorted(range(len(sessions)), key=sessions.__getitem__)
        sessions, totals = [sessions[i] for i in order], [totals[i] for i in order]
        dates = [dates[i] for i in order]
        counselors = [counselors[i] for i in order]
        answers = [answers[i] for i in order]
    subs = _subscales(row[7:10], order, (store, client_id, inst_id, rater))
    subs = {sid: v for sid, v in subs.items() if len(v) == len(sessions)}
    names = {sid: sid for sid in [*subs, TOTAL]}
    spec = specs.of(inst_id, rater, names)
    if not reading.may_compare_item_by_item(spec):  # its answers are never compared
        answers = [""] * len(sessions)
    visits = [
        reading.Visit(
            s,
            dates[i] or None,
            {**{sid: v[i] for sid, v in subs.items()}, TOTAL: totals[i]},
            counselors[i] or None,
            tuple(answers_values(answers[i])),
        )
        for i, s in enumerate(sessions)
    ]
    latest = visits[-1]  # the last session by number: its counselor is the series'
    last_date = max((d for d in dates if d), default=None)
    numbers = (
        inst_id, rater, len(sessions), sessions[-1], last_date, totals[-1], latest.counselor,
    )  # fmt: skip
    return reading.SeriesData(spec, visits), numbers


CASELOAD_RULES = 10  # raise when a rule changes: every kept caseload reading is then stale
SNAPSHOT_FORMAT = "rows-4"  # the kept whole list's format (``CaseloadRow.snapshot_line``)


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


def _one_row(all_series: list[CaseloadRow]) -> CaseloadRow:
    """One row for a client with every series' open concerns, in order of attention.

    The numbers are those of the main series (client-rated first, then the most recent);
    the counselor is the one of the client's latest session over every series.
    """
    if len(all_series) == 1:
        return all_series[0]
    # client-rated first, then the latest date (a dated series before an undated one), then
    # the longest; ties go to the first instrument in name order (max keeps the first best)
    ordered = sorted(all_series, key=lambda r: (r.instrument, r.rater))
    main = max(ordered, key=lambda r: (r.rater == "client", r.last_date or "", r.sessions))
    concerns = Concerns(
        sorted(
            (c for r in all_series for c in r.concerns),
            key=lambda c: (reading.SEVERITY_ORDER[c["severity"]], -c["began"]),
        )
    )
    last_date, counselor = _last_seen(all_series)
    return main._replace(
        concerns=concerns, counselor=counselor, last_date=last_date, kept_head=None
    )


def plain_story(view: SeriesView) -> list[tuple[str, str]]:
    """What the reading says of a series, one plain sentence per concern, in session order:
    (when, sentence) pairs; rules, figures and sources are left to ``--details``."""
    lines = []
    for c in sorted(
        view.concerns, key=lambda c: (reading.told_session(c), reading.SEVERITY_ORDER[c.severity])
    ):
        when = f"Session {c.began}:" if c.began else "Now:"
        state = "" if not c.is_open else " (open)"
        lines.append((when, f"{c.sentence}{state}"))
    return lines


def write_history_csv(handle: IO[str], views: Sequence[SeriesView]) -> None:
    """A client's history as CSV: one row per session and scale, with the concerns that
    began there on that scale (``kind:severity``) and those that resolved there
    (``kind:resolved``)."""
    from alliance_cli.io.csvout import CsvWriter, num, safe_text

    writer = CsvWriter(handle)
    writer.writerow(
        ["client_id", "instrument", "rater", "session", "date", "scale", "mean", "sum", "pomp",
         "flags", "verification", "definition_sha256"]
    )  # fmt: skip
    for view in views:
        for sess in view.sessions:
            codes = [
                (f"{c.kind}:{c.severity}" if c.began == sess.session else f"{c.kind}:resolved", sid)
                for c in view.concerns
                for sid in c.scales
                if sess.session in (c.began, c.resolved)
            ]
            for sid, s in sess.scales.items():
                writer.writerow(
                    [safe_text(view.client_id), view.instrument, safe_text(view.rater),
                     sess.session, safe_text(sess.date or ""), sid, num(s.mean), num(s.sum),
                     num(s.pomp), ";".join(c for c, where in codes if where == sid),
                     sess.verification or "", sess.definition_sha256]
                )  # fmt: skip
