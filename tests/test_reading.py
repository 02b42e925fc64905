"""The one reading of a client (core.reading): properties, and every surface saying the same."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alliance_cli.core import reading
from alliance_cli.io.catalog import load_catalog

WAI = reading.spec_of(load_catalog().get("wai-sr").instrument, "client")
HIGH = ["5"] * 11 + ["4"]


def _visits(levels: list[dict[str, float]]) -> list[reading.Visit]:
    return [reading.Visit(i + 1, None, dict(p)) for i, p in enumerate(levels)]


def _read(levels: list[dict[str, float]]) -> reading.Reading:
    return reading.read_client("X", [reading.SeriesData(WAI, _visits(levels))])


POMP = st.floats(min_value=55, max_value=100)


@settings(max_examples=300)
@given(
    st.lists(
        st.fixed_dictionaries({s: st.floats(min_value=0, max_value=100) for s in WAI.scales}),
        min_size=4,
        max_size=12,
    ),
    st.sampled_from(list(WAI.scales)),
)
@example(  # goal's drop of session 4 repaired at 5, task's (the same concern) still open
    [
        {"goal": g, "task": t, "bond": 0.0, "total": 0.0}
        for g, t in ((7.0, 7.0), (7.0, 7.0), (5.0, 5.0), (0.0, 0.0), (10.0, 0.0))
    ],
    "goal",
)
def test_the_band_the_report_shades_is_the_rule_the_next_session_meets(levels, sid):
    """Just below the band's lower edge the next session starts a drop on that scale (or,
    with a drop open, does not repair it); just above, it does neither (the band used to be
    drawn around the latest session, not the usual level a drop is measured from)."""
    following = reading.Noise(WAI, _visits(levels)).following
    assert _read(levels).following[WAI.label] == following  # what every view shows
    band = following.bands[sid]
    assert band is not None  # four sessions: every scale has a threshold
    # (the scale's own drop: a concern of several scales stays open until all have recovered)
    was_open = any(
        d.resolved is None for d in reading.Noise(WAI, _visits(levels)).drops.get(sid, ())
    )
    low, high = band
    assert high > low
    if not was_open:
        assert math.isclose(high - low, 2 * following.thresholds[sid])
    nxt = len(levels) + 1
    for value, inside in ((low - 1e-6, False), (low + 1e-6, True)):
        if not 0 <= value <= 100:
            continue
        visits = _visits([*levels, {**levels[-1], sid: value}])
        if was_open:  # the next session is the repair exactly when it is inside the band
            # (the scale's own drop: a concern of several scales ends when all have)
            last = reading.Noise(WAI, visits).drops[sid][-1]
            assert (last.resolved == nxt - 1) == inside
        else:  # the next session starts a drop exactly when it is below the band
            after = reading.read_client("X", [reading.SeriesData(WAI, visits)]).concerns
            drops = [c for c in after if c.kind == "drop" and sid in c.scales]
            assert any(c.began == nxt for c in drops) == (not inside)


def test_a_client_at_the_top_who_collapses_twice_is_named_twice():
    """Four sessions of every answer at the top measure no noise (the ceiling), so the first
    collapse is a drop at the one-unit floor; its changes count as that floor, else the
    100-point fall and its repair made the next threshold 220 POMP and the second collapse
    was never said."""
    top, bottom = dict.fromkeys(WAI.scales, 100.0), dict.fromkeys(WAI.scales, 0.0)
    read = _read([top, top, top, top, bottom, top, top, bottom])
    drops = sorted((c.began, c.resolved) for c in read.concerns if c.kind == "drop")
    assert drops == [(5, 6), (8, None)]


@given(st.fixed_dictionaries({s: POMP for s in WAI.scales}), st.integers(1, 20))
def test_a_constant_series_never_raises_a_concern(level, sessions):
    assert _read([level] * sessions).concerns == []


@settings(max_examples=200)
@given(
    st.fixed_dictionaries({s: st.floats(min_value=60, max_value=90) for s in WAI.scales}),
    st.lists(st.lists(st.floats(min_value=-0.999, max_value=0.999), min_size=4, max_size=4),
             min_size=2, max_size=15),
)  # fmt: skip
def test_noise_below_one_unit_per_scale_never_raises_a_concern(level, noise):
    # each scale moves by less than one item's unit of answer (one step on 1-5) around a level
    sids = list(WAI.scales)
    levels = [
        {s: level[s] + n[i] * WAI.scales[s].unit / 2 for i, s in enumerate(sids)} for n in noise
    ]
    assert _read(levels).concerns == []


WAI_T = reading.spec_of(load_catalog().get("wai-sr-t").instrument, "therapist")


def _pair_series(answers: list[list[int]], shift: int = 0) -> list[reading.SeriesData]:
    """A client's WAI-SR answers, and a therapist who answers each topic pair as the client
    did (``shift`` steps lower, kept on the scale)."""
    back = {WAI_T.items.index(t): WAI.items.index(c) for t, c in WAI_T.pairs.items()}
    visits, theirs = [], []
    for n, row in enumerate(answers, start=1):
        mine = [float(a) for a in row]
        pomps = {s: 0.0 for s in WAI.scales}  # (the drops are not what is tested here)
        visits.append(reading.Visit(n, None, pomps, None, tuple(mine)))
        t_row = [0.0] * len(WAI_T.items)
        for t_pos, c_pos in back.items():
            t_row[t_pos] = max(1.0, mine[c_pos] - shift)
        theirs.append(reading.Visit(n, None, {s: 0.0 for s in WAI_T.scales}, None, tuple(t_row)))
    return [reading.SeriesData(WAI, visits), reading.SeriesData(WAI_T, theirs)]


@settings(max_examples=60)
@given(st.lists(st.lists(st.integers(1, 5), min_size=12, max_size=12), min_size=1, max_size=10))
def test_a_therapist_who_answers_each_topic_as_the_client_did_is_never_a_gap(answers):
    read = reading.read_client("X", _pair_series(answers))
    assert [c for c in read.concerns if c.kind == "gap"] == []


def test_a_gap_of_one_step_on_every_topic_pair_is_a_gap_from_the_fourth_session():
    steady = [[5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4]] * 6  # every topic 1 step lower: 25 POMP
    (gap,) = [c for c in reading.read_client("X", _pair_series(steady, 1)).concerns
              if c.kind == "gap"]  # fmt: skip
    assert gap.began == 4 and gap.is_open and "the client sees" in gap.sentence


@given(st.integers(5, 8), st.integers(0, 6), st.floats(min_value=30, max_value=60))
def test_a_drop_that_stays_is_open_until_it_recovers(at, stay, fall):
    before = [{s: 90.0 + (i % 2) * 2.0 for s in WAI.scales} for i in range(at - 1)]
    low = [{s: 90.0 - fall for s in WAI.scales}] * (1 + stay)
    read = _read(before + low)
    (drop,) = [c for c in read.concerns if c.kind == "drop"]
    assert drop.began == at and drop.is_open
    assert "stayed low since" in drop.sentence
    back = _read(before + low + [{s: 90.0 for s in WAI.scales}])
    (drop,) = [c for c in back.concerns if c.kind == "drop"]
    assert drop.resolved == at + stay + 1 and not back.open


@pytest.mark.parametrize(
    ("fallen", "words"),
    [
        (["bond"], "Bond fell in session 5 ("),
        (["goal", "bond"], "Goal, Bond fell in session 5 ("),
        (["goal", "task", "bond"], "All scales fell in session 5 ("),
    ],
)
def test_a_drop_s_sentence_agrees_with_how_many_scales_fell(fallen, words):
    """One scale "has stayed low"; several, or all, "have stayed low" (all said "has")."""
    before = [{s: 90.0 + (i % 2) * 2.0 for s in WAI.scales} for i in range(4)]
    down = {s: (30.0 if s in fallen else 91.0) for s in WAI.scales}
    down["total"] = sum(down[s] for s in ("goal", "task", "bond")) / 3
    (drop,) = [c for c in _read([*before, down, down]).concerns if c.kind == "drop"]
    assert drop.sentence.startswith(words)
    verb = "has" if len(fallen) == 1 else "have"
    assert drop.sentence.endswith(f"and {verb} stayed low since."), drop.sentence


def test_one_item_moving_one_step_never_raises_a_concern_on_its_own():
    steady = {s: 100.0 for s in WAI.scales}
    one = dict(steady, goal=100 - WAI.scales["goal"].unit, total=100 - WAI.scales["total"].unit)
    assert _read([steady] * 6 + [one]).concerns == []


def test_an_unrepaired_drop_on_one_scale_is_said_and_not_called_recovered():
    # issue 19: bond 4.75, 5, 5 (…), then 1.25, 2.0, 2.0: the bond's fall is said, and stays
    bond = [93.75, 100, 100, 100, 6.25, 25.0, 25.0]
    levels = [{"goal": 100.0, "task": 100.0, "bond": b, "total": 90.0 + b / 10} for b in bond]
    read = _read(levels)
    (drop,) = [c for c in read.open if c.kind == "drop"]
    assert drop.scales[0] == "bond" and drop.began == 5
    assert drop.sentence.startswith("Bond fell in session 5") and "stayed low" in drop.sentence


def test_the_issue_example_a_bond_collapse_after_three_sessions_is_said_and_stays_open():
    # WAI-SR bond 4.75, 5, 5, then 1.25, 2.0, 2.0 (goal and task at 5 throughout)
    bond = [93.75, 100, 100, 6.25, 25.0, 25.0]
    total = [97.916667, 100, 100, 68.75, 75.0, 75.0]
    levels = [
        {"goal": 100.0, "task": 100.0, "bond": b, "total": t}
        for b, t in zip(bond, total, strict=True)
    ]
    for upto in (4, 5, 6):  # said at session 4, and still open at 5 and at 6
        (drop,) = [c for c in _read(levels[:upto]).open if c.kind == "drop"]
        assert drop.began == 4 and drop.scales[0] == "bond"
        assert drop.sentence.startswith("Bond fell in session 4") and "stayed low" in drop.sentence


def test_a_cutoff_is_said_as_its_rule_once_and_exactly_at_it_is_watch():
    srs = reading.spec_of(load_catalog().get("srs").instrument, "client")
    at = {"relationship": 90.0, "goals": 90.0, "approach": 90.0, "overall": 90.0, "total": 90.0}
    read = reading.read_client("X", [reading.SeriesData(srs, _visits([at]))])
    (low,) = read.concerns
    assert (low.kind, low.severity) == ("low", "watch")
    assert low.sentence.count("at or below 36") == 1
    assert "predicts dropout" in low.sentence  # session 1: early in treatment
    assert low.question.startswith("The total is at or below 36")  # the instrument's own


def test_an_incomplete_form_is_a_note():
    srs = reading.spec_of(load_catalog().get("srs").instrument, "client")
    visit = {"relationship": 90.0, "goals": None, "approach": 90.0, "overall": 90.0,
             "total": None}  # fmt: skip
    read = reading.read_client("X", [reading.SeriesData(srs, _visits([visit]))])  # type: ignore[list-item]
    (note,) = read.concerns
    assert (note.kind, note.severity) == ("incomplete", "note")
    assert "Ask about the missing line" in note.sentence


# -- what was said at save time, and every surface -------------------------------------------
def _save(cli, db: Path, client: str, session: int, answers, *extra: str):
    return cli("score", "wai-sr", *answers, "--client", client, "--session", str(session),
               "--save", "--db", str(db), "-q", *extra)  # fmt: skip


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from(["5", "3", "1"]), min_size=5, max_size=9), st.booleans())
def test_what_was_said_never_changes_after_later_saves(cli, answers, by_batch):
    db = Path(tempfile.mkdtemp()) / "h.sqlite"
    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    half = len(answers) // 2
    for session, a in enumerate(answers[:half], start=1):
        if by_batch:
            src = db.parent / f"b{session}.csv"
            src.write_text(f"{header}\nB,{session}," + ",".join([a] * 12) + "\n", "utf-8")
            cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(db), "-o", "-", "-q")
        else:
            _save(cli, db, "B", session, [a] * 12)

    def said() -> dict[int, list]:
        (view,) = json.loads(cli("history", "B", "--db", str(db), "-f", "json").stdout)
        return {s["session"]: s["flags_at_save"] for s in view["sessions"]}

    before = said()
    for session, a in enumerate(answers[half:], start=half + 1):
        _save(cli, db, "B", session, [a] * 12)
    after = said()
    assert {s: after[s] for s in before} == before


def test_every_surface_names_the_same_concerns(cli, tmp_path: Path):
    db = tmp_path / "h.sqlite"
    low = ["1"] * 12
    for session in range(1, 8):  # a drop at 5 that stays; a second client steady
        box = _save(cli, db, "A-1", session, HIGH if session < 5 else low, "-f", "json")
        _save(cli, db, "A-2", session, HIGH)
    cli("score", "srs", "8", "8", "8", "8", "--client", "A-3", "--session", "1", "--save",
        "--db", str(db), "-q")  # fmt: skip

    def key(c: dict) -> tuple:
        return (c["kind"], c["series"], tuple(c["scales"]), c["began"])

    (history,) = json.loads(cli("history", "A-1", "--db", str(db), "-f", "json").stdout)
    from_history = {key(c) for c in history["concerns"] if c["status"] == "open"}
    rows = {r["client_id"]: r for r in json.loads(cli("clients", "--db", str(db),
                                                       "-f", "json").stdout)}  # fmt: skip
    from_clients = {key(c) for c in rows["A-1"]["concerns"] if c["kind"] != "not_seen"}
    from_box = {key(c) for c in json.loads(box.stdout)[0]["concerns"] if c["status"] == "open"}
    assert from_history == from_clients == from_box
    assert ("drop", "wai-sr", ("goal", "task", "bond", "total"), 5) in from_history
    assert rows["A-2"]["concerns"] == [] and rows["A-3"]["concerns"][0]["kind"] == "low"
    # both reports: the client's open concerns and the caseload's, the same sentences
    out = tmp_path / "a1.html"
    assert cli("report", "A-1", "--db", str(db), "-o", str(out), "-q").exit_code == 0
    page = out.read_text(encoding="utf-8")
    sentences = [c["sentence"] for c in history["concerns"] if c["status"] == "open"]
    opened = page[page.index('id="h-before"') : page.index('id="h-story"')]
    for sentence in sentences:
        assert sentence in opened.replace("&#x27;", "'")
    # the charts mark the drop on each of its scales, and nowhere else
    assert page.count('class="rupture"') == 4
    caseload = tmp_path / "all.html"
    assert cli("report", "--caseload", "--db", str(db), "-o", str(caseload), "-q").exit_code == 0
    text = caseload.read_text(encoding="utf-8").replace("&#x27;", "'")
    from alliance_cli.core.reading import short_words

    for concern in rows["A-1"]["concerns"]:  # the caseload says each in a few plain words
        assert short_words(concern) in text


def test_a_gap_is_named_alike_on_every_surface(cli, tmp_path: Path):
    # the client rates every item 5; the therapist rates the goal items (3, 6, 8) 2: a gap
    # from the fourth session of both forms (answers that never vary: 15 POMP decides)
    db = tmp_path / "h.sqlite"
    therapist = ["5", "5", "2", "5", "5", "2", "5", "2", "5", "5"]
    for session in range(1, 6):
        _save(cli, db, "B-1", session, ["5"] * 12)
        box = cli("score", "wai-sr-t", *therapist, "--client", "B-1", "--session", str(session),
                  "--save", "--db", str(db), "-q", "-f", "json")  # fmt: skip
        assert box.exit_code == 0, box.stderr

    def key(c: dict) -> tuple:
        return (c["kind"], c["series"], tuple(c["scales"]), c["began"])

    gap = ("gap", "wai-sr", ("goal", "total"), 4)
    views = json.loads(cli("history", "B-1", "--db", str(db), "-f", "json").stdout)
    for view in views:  # the client's series holds it; both forms said it at their saves
        said = [{key(c) for c in s["flags_at_save"]} for s in view["sessions"]]
        if view["instrument"] == "wai-sr":
            assert {key(c) for c in view["concerns"] if c["kind"] == "gap"} == {gap}
            assert said == [set(), set(), set(), set(), {gap}]  # (saved before the therapist's)
        else:
            assert said == [set(), set(), set(), {gap}, {gap}]
    (row,) = json.loads(cli("clients", "--db", str(db), "-f", "json").stdout)
    assert {key(c) for c in row["concerns"]} == {gap}
    assert {key(c) for c in json.loads(box.stdout)[0]["concerns"]} == {gap}
    out = tmp_path / "b1.html"
    assert cli("report", "B-1", "--db", str(db), "-o", str(out), "-q").exit_code == 0
    page = out.read_text(encoding="utf-8").replace("&#x27;", "'")
    (sentence,) = [c["sentence"] for c in row["concerns"]]
    assert sentence in page[page.index('id="h-before"') : page.index('id="h-story"')]
    assert page.count('class="gap"') >= 1  # shaded between the two lines
    caseload = tmp_path / "all.html"
    assert cli("report", "--caseload", "--db", str(db), "-o", str(caseload), "-q").exit_code == 0
    from alliance_cli.core.reading import short_words

    text = caseload.read_text(encoding="utf-8").replace("&#x27;", "'")
    assert short_words(row["concerns"][0]) in text


@pytest.mark.parametrize("first_reader", ["clients", "history"])
def test_a_batch_too_large_to_read_while_saving_keeps_what_was_said_at_the_next_read(
    cli, tmp_path: Path, monkeypatch, first_reader
):
    """Issue 19: a batch over READ_AFTER_SAVE sessions (50,000) kept no said flags at all;
    now the first reader after it reads its clients and keeps, at each of its sessions,
    what a batch under the limit keeps while saving. The limit is lowered to 5 here."""
    from alliance_cli.cli import batch_run

    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    rows = [f"A-1,{s}," + ",".join(HIGH if s < 5 else ["1"] * 12) for s in range(1, 8)]
    rows += [f"A-2,{s}," + ",".join(HIGH) for s in range(1, 8)]
    src = tmp_path / "b.csv"
    src.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")

    def said(db: Path) -> dict[int, list]:
        (view,) = json.loads(cli("history", "A-1", "--db", str(db), "-f", "json").stdout)
        return {s["session"]: s["flags_at_save"] for s in view["sessions"]}

    small = tmp_path / "small.sqlite"
    saved = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(small), "-o", "-")
    assert saved.exit_code == 0, saved.stderr
    monkeypatch.setattr(batch_run, "READ_AFTER_SAVE", 5)
    large = tmp_path / "large.sqlite"
    saved = cli("batch", str(src), "-i", "wai-sr", "--save", "--db", str(large), "-o", "-")
    assert saved.exit_code == 0, saved.stderr
    assert "which keeps what it says at each of these sessions then" in saved.stderr
    import sqlite3

    with sqlite3.connect(large) as db:
        assert db.execute("SELECT count(*) FROM said_pending").fetchone()[0] == 1
        assert (
            db.execute("SELECT count(*) FROM sessions WHERE said_flags IS NULL").fetchone()[0] == 14
        )
    db.close()
    assert cli(first_reader, *(["A-2"] if first_reader == "history" else []), "--db",
               str(large), "-q").exit_code == 0  # fmt: skip
    expected = said(small)
    assert any(flags for flags in expected.values())  # the drop at session 5 was said
    assert said(large) == expected
    with sqlite3.connect(large) as db:
        assert db.execute("SELECT count(*) FROM said_pending").fetchone()[0] == 0
    db.close()


def test_a_caseload_row_says_all_scales_where_the_sentence_does():
    """The caseload's few words follow the concern's sentence: "All scales slid", not the
    four names (the history said "All scales have slid" of the same concern); each row
    starts with a capital, as the sentences do."""
    srs = reading.spec_of(load_catalog().get("srs").instrument, "client")
    levels = [{s: 95.0 - 2.5 * i for s in srs.scales} for i in range(10)]
    read = reading.read_client("D1", [reading.SeriesData(srs, _visits(levels))])
    (decline,) = [c for c in read.concerns if c.kind == "decline"]
    assert decline.sentence.startswith("All scales have slid gradually")
    assert reading.short_words(decline.as_dict()).startswith("All scales slid, from session")
    gap = {"kind": "gap", "scale_names": ["Goal", "Task", "Bond", "Total"], "began": 1,
           "series": "wai-sr", "sentence": "Client and therapist see all scales apart"}  # fmt: skip
    assert (
        reading.short_words(gap)
        == "Client and therapist differ on all scales from session 1 (wai-sr)"
    )
    low = {"kind": "early_low", "scale_names": ["Total"], "began": 2, "series": "wai-sr-t"}
    assert reading.short_words(low) == "Low early alliance in session 2 (wai-sr-t)"


def test_a_caseload_row_names_the_scales_its_sentence_names():
    """A bond drop that also moved the total: the sentence says "Bond fell in session 4",
    and the caseload row said "Bond, Total fell in session 4" of the same concern. Both now
    leave the total beside a subscale unsaid, by one rule (``named_scales``)."""
    wai = reading.spec_of(load_catalog().get("wai-sr").instrument, "client")
    bonds = [93.75, 100.0, 100.0, 6.25, 25.0, 25.0]
    levels = [
        {"goal": 75.0, "task": 75.0, "bond": b, "total": (75.0 * 8 + b * 4) / 12} for b in bonds
    ]
    read = reading.read_client("B1", [reading.SeriesData(wai, _visits(levels))])
    (drop,) = [c for c in read.concerns if c.kind == "drop"]
    assert drop.scales == ("bond", "total")
    assert drop.sentence.startswith("Bond fell in session 4")
    assert reading.short_words(drop.as_dict()) == "Bond fell in session 4 (wai-sr)"
    alone = {"kind": "drop", "scales": ["total"], "scale_names": ["Total"], "began": 5,
             "series": "wai-sr"}  # fmt: skip
    assert reading.short_words(alone) == "Total fell in session 5 (wai-sr)"


def test_answers_are_read_only_for_the_forms_a_gap_compares_item_by_item():
    """The WAI-SR and its therapist form (which declares topic pairs) are compared item by
    item; an SRS, or a WAI-SR without its therapist form, never needs its answers read."""
    catalog = load_catalog()
    wai = reading.spec_of(catalog.get("wai-sr").instrument, "client")
    wai_t = reading.spec_of(catalog.get("wai-sr-t").instrument, "therapist")
    srs = reading.spec_of(catalog.get("srs").instrument, "client")
    assert reading.compared_item_by_item([srs, wai, wai_t]) == {wai.label, wai_t.label}
    assert reading.compared_item_by_item([srs, wai]) == set()
    assert reading.compared_item_by_item([wai_t]) == set()
    # the 36-item WAI and its therapist form share their key: compared scale by scale
    full = reading.spec_of(catalog.get("wai").instrument, "client")
    full_t = reading.spec_of(catalog.get("wai-t").instrument, "therapist")
    assert reading.compared_item_by_item([full, full_t]) == set()


def test_a_form_alone_says_whether_its_answers_may_be_compared():
    """The caseload reads one series before the client's others: a form tells whether its
    answers may be compared (a superset of what compared_item_by_item takes)."""
    catalog = load_catalog()
    forms = (("wai-sr", "client"), ("wai-sr-t", "therapist"), ("srs", "client"))
    specs = {i: reading.spec_of(catalog.get(i).instrument, r) for i, r in forms}
    compared = {i for i, s in specs.items() if reading.may_compare_item_by_item(s)}
    assert compared == {"wai-sr", "wai-sr-t"}
    assert all(
        reading.may_compare_item_by_item(s)
        for s in specs.values()
        if s.label in reading.compared_item_by_item(list(specs.values()))
    )
