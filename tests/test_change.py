"""The rules of the one reading (core.reading), each worked by hand on a small series, and
the POMP and trend helpers (core.change)."""

from __future__ import annotations

import math

import pytest

from alliance_cli.core import change, reading

from .conftest import bands, definition_with, norm, scorer_for

TOTAL_ONLY = reading.SeriesSpec("x", "client", "X", {"total": reading.ScaleSpec("Total", 1.0, 4)})


def _visits(values, sid="total"):
    return [reading.Visit(i + 1, None, {sid: v}) for i, v in enumerate(values)]


def _concerns(values, spec=TOTAL_ONLY):
    read = reading.read_client("X", [reading.SeriesData(spec, _visits(values))])
    return [(c.kind, c.began, c.resolved, c.severity, [e.rule for e in c.evidence])
            for c in read.concerns]  # fmt: skip


def test_reliable_change_threshold_by_hand():
    # 1.96 * sqrt(2) * 0.5 * sqrt(1 - 0.9) = 1.96 * 1.414214 * 0.5 * 0.316228 = 0.438269
    assert math.isclose(reading.reliable_change(0.5, 0.9), 0.438269, abs_tol=1e-6)
    # SD 6 on sums, r .84: 1.96 * 1.414214 * 6 * 0.4 = 6.652461
    assert math.isclose(reading.reliable_change(6, 0.84), 6.652461, abs_tol=1e-6)


def test_norm_threshold_is_converted_to_pomp():
    from alliance_cli.core.compiled import CompiledInstrument

    data = definition_with("wai-sr", norms=[norm("total", "mean", 3.5, 0.5, 0.9)])
    spec = reading.spec_of(CompiledInstrument.from_data(data), "client")
    # 1-5 scale in item means: one point is 25 POMP; 0.438269 * 25 = 10.956725
    threshold, source = spec.scales["total"].norm
    assert math.isclose(threshold, 10.956725, abs_tol=1e-5)
    assert "Jacobson & Truax" in source and "test sample" in source
    assert spec.scales["goal"].norm is None  # the norm covers the total only
    assert math.isclose(change.pomp_factor(1, 5, 12, "sum"), 100 / 48)


def test_without_norms_the_client_own_earlier_changes_are_used_and_labelled():
    visits = _visits([70, 74, 68, 72, 71])
    noise = reading.Noise(TOTAL_ONLY, visits)
    t = reading.threshold_at(TOTAL_ONLY.scales["total"], noise, 5, 5)
    # changes 4, -6, 4, -1: item-level SD sqrt((16 + 36 + 16 + 1) * 4 / 2 / 4) = 5.873670;
    # SEM 5.873670 / sqrt(4) = 2.936835. A form of one scale is tested with Student's t, its
    # degrees of freedom the 4 changes behind the SD, at least 6: t(0.975, 6) = 2.446912
    # (scipy); T = 2.446912 * sqrt(2) * 2.936835 = 10.162789 (t_quantile within 0.1 %)
    assert math.isclose(t.value, 10.162789, rel_tol=1e-4)
    assert t.own and "usual session-to-session change" in t.words
    assert "4 earlier changes" in t.source and "no published norms" in t.source
    assert "Student's t for 2.5 % with 6 degrees of freedom" in t.source
    few = reading.threshold_at(TOTAL_ONLY.scales["total"], noise, 2, 2)
    assert few.value is None  # fewer than 3 earlier sessions: not assessed


TWO = reading.SeriesSpec(
    "y",
    "client",
    "Y",
    {
        "a": reading.ScaleSpec("A", 1.0, 2),
        "b": reading.ScaleSpec("B", 1.0, 2),
        "total": reading.ScaleSpec("Total", 0.5, 4),
    },
)


def test_a_form_with_subscales_keeps_the_bonferroni_z():
    a, b = [70, 74, 68, 72, 71], [60, 62, 60, 61, 60]
    pairs = enumerate(zip(a, b, strict=True))
    visits = [reading.Visit(i + 1, None, {"a": x, "b": y}) for i, (x, y) in pairs]
    noise = reading.Noise(TWO, visits)
    t = reading.threshold_at(TWO.scales["a"], noise, 4, 4)
    # pooled over the subscales (2 items each): changes 4, -6, 4 and 2, -2, 1, item-level
    # SD² = (16 + 36 + 16 + 4 + 4 + 1) * 2 / 2 / 6 = 12.833, SD 3.582364; A's SEM 3.582364 /
    # sqrt(2) = 2.533114; z for 5 % over the form's 3 scales (Bonferroni): the normal's
    # 1 - 0.025 / 3 quantile, 2.393980; T = 2.393980 * sqrt(2) * 2.533114 = 8.576108
    assert math.isclose(t.value, 8.576108, abs_tol=1e-6)
    assert "z for 5 % over the form's 3 scales, Bonferroni" in t.source


def test_a_second_rupture_after_a_repaired_one_is_named():
    values = [80, 82, 79, 81, 80, 82, 79, 50, 80, 81, 79, 50, 80]
    noise = reading.Noise(TOTAL_ONLY, _visits(values))
    # changes 2, -3, 2, -1, 2, -3 before session 8: item-level SD² = 31 * 4 / 2 / 6 = 10.333;
    # T at 8 = t(0.975, 6) * sqrt(2) * sqrt(10.333) / sqrt(4) = 2.446912 * ... = 5.561905 (a
    # form of one scale: Student's t), and 50 is 30.5 below the usual 80.5. The fall (29) and
    # the repair (30) enter the noise as 5.561905 each: SD² = (62 + 2 * 2 * 5.561905²) / 8 =
    # 23.217 after session 9 (not (62 + 2 * (29² + 30²)) / 8 = 443.0, which put the bar at
    # session 12 at 29.7, over the fall of 22.5 from a usual level that counted session 8)
    assert math.isclose(noise.sds[9], math.sqrt((62 + 4 * 5.561905**2) / 8), rel_tol=1e-4)
    # then changes 1, -2: SD² = (185.739 + 2 + 8) / 10 = 19.574, T at 12 = t(0.975, 10) *
    # sqrt(2) * 4.424242 / 2 = 2.228139 * ... = 6.970535; the usual level is sessions 7 and
    # 9-11 (79.75; session 8 was inside the drop, not usual)
    first, second = noise.drops["total"]
    assert (first.onset, first.resolved, second.onset, second.resolved) == (7, 8, 11, 12)
    assert first.cap == first.threshold  # 6 changes behind it: capped
    assert math.isclose(second.threshold, 6.970535, rel_tol=1e-4)
    assert math.isclose(second.level, 79.75)
    assert sorted(_concerns(values), key=lambda c: c[1]) == [
        ("drop", 8, 9, "act", ["reliable_drop", "rupture_1sd", "rupture_2sd"]),
        ("drop", 12, 13, "act", ["reliable_drop", "rupture_1sd", "rupture_2sd"]),
    ]
    read = reading.read_client("X", [reading.SeriesData(TOTAL_ONLY, _visits(values))])
    later = next(c for c in read.concerns if c.began == 12)
    assert "usual 80 (mean of 4 earlier sessions outside a drop)" in later.evidence[0].figures


def test_a_session_without_the_scale_is_not_called_a_drop_left_out():
    visits = _visits([80, 82, 79, 81, 80, 50])
    visits[2] = reading.Visit(3, None, {})  # the form of session 3 left the total unscored
    read = reading.read_client("X", [reading.SeriesData(TOTAL_ONLY, visits)])
    (drop,) = [c for c in read.concerns if c.kind == "drop"]
    assert "mean of 4 earlier sessions);" in drop.evidence[0].figures
    assert "outside a drop" not in " ".join(e.figures for e in drop.evidence)


def test_a_noise_too_young_to_trust_is_not_capped():
    # three equal sessions leave no noise (the floor, one unit, is the threshold), so 78 at
    # session 4 is a drop; had its changes been capped at that floor (1), the noise would
    # never learn the client's usual ±2 and every later 78 would be a drop again. Its
    # threshold was the floor from 2 changes (fewer than 6): its changes count in full, the
    # noise is then SD² = (0 + 0 + 4 + 4) * 4 / 2 / 4 = 4, T = t(0.975, 6) * √2 * 2 / 2 = 3.46,
    # and the later falls of 2 from the usual 80 are none
    values = [80, 80, 80, 78, 80, 78, 80, 78, 80]
    assert _concerns(values) == [
        ("drop", 4, 5, "act", ["reliable_drop", "rupture_1sd", "rupture_2sd"])
    ]
    (drop,) = reading.Noise(TOTAL_ONLY, _visits(values)).drops["total"]
    assert drop.cap is None


def test_a_threshold_at_its_floor_says_so():
    steady = reading.Noise(TOTAL_ONLY, _visits([80, 80, 80, 80, 70]))
    t = reading.threshold_at(TOTAL_ONLY.scales["total"], steady, 4, 4)
    assert t.value == 1.0 and t.floor  # no change at all: one item, one unit
    assert "least threshold" in t.source and "3 earlier changes, is below it" in t.source
    top = reading.Noise(TOTAL_ONLY, _visits([100, 100, 100, 100, 60]))
    t = reading.threshold_at(TOTAL_ONLY.scales["total"], top, 4, 4)
    assert t.value == 1.0 and "each was at the top of the scale" in t.source
    assert "0 earlier" not in t.source


def test_steady_series_with_small_noise_raises_nothing():
    assert _concerns([80, 82, 79, 81, 80, 83, 81, 79]) == []


def test_v_shaped_drop_and_repair_is_one_concern():
    assert _concerns([85, 88, 86, 87, 50, 87]) == [
        ("drop", 5, 6, "act", ["reliable_drop", "rupture_1sd", "rupture_2sd"])
    ]


def test_the_one_sd_rule_grades_a_drop_as_watch():
    # earlier 70, 75, 80, 85 (mean 77.5, SD 6.45): 65 is 1.9 SD below, beyond T (changes of
    # 5: item-level SD 7.071, SEM 3.536, t(0.975, 6) 2.4469: T = 12.24; the fall is 12.5)
    assert _concerns([70, 75, 80, 85, 65]) == [
        ("drop", 5, None, "watch", ["reliable_drop", "rupture_1sd"])
    ]
    assert _concerns([70, 75, 80, 85, 66]) == []  # a fall of 11.5 is within T


def test_slow_decline_without_a_drop():
    # the latest three sessions' mean against the first three's (89.3): at session 9 the
    # latest 77.3 is 12 below, beyond T / √1.5 = 9.95 / 1.2247 = 8.13; at 7 and 8 the
    # latest (81.3, 80.7) were 8.0 and 8.7 below, within 10.03 / 1.2247 = 8.19 and 8.93
    assert _concerns([90, 92, 86, 88, 82, 84, 78, 80, 74]) == [
        ("decline", 9, None, "watch", ["slow_decline"])
    ]


def test_early_weak_alliance_uses_cutoff_then_bands_then_setting():
    srs = reading.spec_of(scorer_for("srs").instrument, "client")
    low = {"relationship": 80.0, "goals": 80.0, "approach": 80.0, "overall": 80.0, "total": 80.0}
    read = reading.read_client("X", [reading.SeriesData(srs, [reading.Visit(2, None, low)])])
    (cut,) = read.concerns  # the cutoff: 32 is below 36, early, so the sentence says so
    assert (cut.kind, cut.severity) == ("low", "act") and "predicts dropout" in cut.sentence
    late = reading.read_client("X", [reading.SeriesData(srs, [reading.Visit(4, None, low)])])
    assert "predicts dropout" not in late.concerns[0].sentence
    wai = reading.spec_of(scorer_for("wai-sr").instrument, "client")  # no cutoff, no bands
    weak = {"goal": 40.0, "task": 40.0, "bond": 40.0, "total": 40.0}
    (early,) = reading.read_client(
        "X", [reading.SeriesData(wai, [reading.Visit(1, None, weak)])]
    ).concerns
    assert early.kind == "early_low" and "alliance's default" in early.evidence[0].figures
    fine = dict(weak, total=60.0)
    assert (
        reading.read_client("X", [reading.SeriesData(wai, [reading.Visit(1, None, fine)])]).concerns
        == []
    )


def test_early_weak_alliance_from_the_lowest_band():
    from alliance_cli.core.compiled import CompiledInstrument

    data = definition_with("wai-sr", bands=[bands("total", "sum", ("weak", 12), ("fair", 36))])
    spec = reading.spec_of(CompiledInstrument.from_data(data), "client")
    # a sum of 35 over 12 items on 1-5: (35 - 12) / 48 = 47.9 POMP, under the band's 50
    (early,) = _concerns_of(spec, 47.9)
    assert early.kind == "early_low" and "lowest band 'weak'" in early.evidence[0].figures
    assert _concerns_of(spec, 50.0) == []


def _concerns_of(spec, total):
    visit = reading.Visit(2, None, {**{s: 60.0 for s in spec.scales}, "total": total})
    return reading.read_client("X", [reading.SeriesData(spec, [visit])]).concerns


def _pair(client, therapist, mine, theirs, sessions=4):
    """One client's and their therapist's series, the same answers at every session."""
    return reading.read_client("X", [
        reading.SeriesData(client, [reading.Visit(s, None, mine) for s in range(1, sessions + 1)]),
        reading.SeriesData(
            therapist, [reading.Visit(s, None, theirs) for s in range(1, sessions + 1)]
        ),
    ])  # fmt: skip


def test_client_therapist_gap_scale_by_scale_where_the_keys_match():
    client = reading.spec_of(scorer_for("wai").instrument, "client")
    therapist = reading.spec_of(scorer_for("wai-t").instrument, "therapist")
    mine = {"bond": 90.0, "goal": 60.0, "task": 70.0, "total": 73.0}
    theirs = {"bond": 85.0, "goal": 80.0, "task": None, "total": 80.0}
    # compared from the fourth session of each form: before it there is no measure of noise
    assert [c for c in _pair(client, therapist, mine, theirs, 3).concerns if c.kind == "gap"] == []
    (gap,) = [c for c in _pair(client, therapist, mine, theirs).concerns if c.kind == "gap"]
    assert (gap.scales, gap.began) == (("goal",), 4)
    assert "the therapist sees it as stronger" in gap.sentence
    # answers that never varied: no error to allow, the default threshold alone
    assert "neither rater's answers have varied" in gap.evidence[0].source
    # every scale apart: "all scales", and "them" (it said "it" of all the scales)
    low = {"bond": 20.0, "goal": 20.0, "task": 20.0, "total": 20.0}
    (gap,) = [c for c in _pair(client, therapist, mine, low).concerns if c.kind == "gap"]
    assert gap.sentence.startswith("Client and therapist see all scales differently")
    assert "the client sees them as stronger" in gap.sentence


def test_equal_ratings_are_never_a_gap_even_with_no_threshold():
    # --gap 0 and raters whose answers never vary: no threshold at all, and still equal
    # ratings are no gap (they were said as "see all scales differently", 70 against 70)
    client = reading.spec_of(scorer_for("wai").instrument, "client")
    therapist = reading.spec_of(scorer_for("wai-t").instrument, "therapist")
    same = {"bond": 70.0, "goal": 70.0, "task": 70.0, "total": 70.0}
    close = {"bond": 70.0, "goal": 69.0, "task": 70.0, "total": 70.0}
    settings = reading.Settings(gap_pomp=0.0)

    def gaps(theirs: dict[str, float]) -> list[tuple[str, ...]]:
        read = reading.read_client("X", [
            reading.SeriesData(client, [reading.Visit(s, None, same) for s in range(1, 6)]),
            reading.SeriesData(therapist, [reading.Visit(s, None, theirs) for s in range(1, 6)]),
        ], settings)  # fmt: skip
        return [c.scales for c in read.concerns if c.kind == "gap"]

    assert gaps(same) == []
    assert gaps(close) == [("goal",)]  # any difference is one at --gap 0 without noise


def _noisy(level: float, sessions: int, swing: float) -> list[dict[str, float]]:
    """A form's scales moving up and down by ``swing`` around a level, session by session."""
    return [
        {s: level + (swing if n % 2 else -swing) for s in ("bond", "goal", "task", "total")}
        for n in range(sessions)
    ]


def test_a_gap_must_be_beyond_the_error_of_the_comparison():
    # Raters whose scales swing by 10 POMP a session: each one's item-level SD is about
    # 20 · √12 / √2 ≈ 49 POMP on a 12-item scale, so a mean of 12 items differs between two
    # raters who agree by about 20 POMP: 25 apart is no gap, 60 apart is one.
    client = reading.spec_of(scorer_for("wai").instrument, "client")
    therapist = reading.spec_of(scorer_for("wai-t").instrument, "therapist")

    def gaps(apart: float) -> list[reading.Concern]:
        mine, theirs = _noisy(70.0, 6, 10.0), _noisy(70.0 - apart, 6, 10.0)
        read = reading.read_client("X", [
            reading.SeriesData(client, [reading.Visit(s + 1, None, v) for s, v in enumerate(mine)]),
            reading.SeriesData(
                therapist, [reading.Visit(s + 1, None, v) for s, v in enumerate(theirs)]
            ),
        ])  # fmt: skip
        return [c for c in read.concerns if c.kind == "gap"]

    assert gaps(25.0) == []  # beyond the default 15, within the comparison's error
    (gap,) = gaps(60.0)
    assert gap.began == 4 and gap.is_open
    source = gap.evidence[0].source
    assert "Student's t" in source and "Welch–Satterthwaite" in source
    assert "never below 15 POMP (alliance's default" in source


def test_the_t_quantile_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for tests in range(1, 9):  # the tails the gap rule uses: 2.5 % over up to 8 scales
        p = 1 - reading.GAP_ALPHA / 2 / tests
        for df in (reading.MIN_GAP_DF, 6.5, 9.5, 12, 30, 120):
            exact = float(stats.t.ppf(p, df))
            assert reading.t_quantile(p, df) == pytest.approx(exact, rel=1e-3), (p, df)


def _trend(values, spec=TOTAL_ONLY):
    data = reading.SeriesData(spec, _visits(values))
    return reading.read_client("X", [data]).trends[spec.label]


def test_a_trend_is_said_only_beyond_the_error_of_the_fitted_line():
    # 82, 86, 78, 84, 76, 80: the fitted line falls 4.857 over the 6 sessions (slope -17 /
    # 17.5), which the plain direction called 'down'. Its error: changes 4, -8, 6, -8, 4,
    # item-level SD² = (16 + 64 + 36 + 64 + 16) * 4 / 2 / 5 = 78.4; SEM 8.854 / 2 = 4.427;
    # SE of the change 4.427 * 5 / √17.5 = 5.291; t(0.975, 6 df) 2.447: 12.95. Not a trend.
    assert _trend([82, 86, 78, 84, 76, 80]) == "steady"
    # 80, 78, ..., 70: a fall of 10 against changes of 2 (SD² 8, SEM 1.414, SE 1.690,
    # limit 4.136): down; and its mirror up
    assert _trend([80, 78, 76, 74, 72, 70]) == "down"
    assert _trend([70, 72, 74, 76, 78, 80]) == "up"
    assert _trend([80]) == _trend([]) == "steady"
    # one change is its own noise: never a trend
    assert _trend([90, 30]) == "steady"


def test_a_repaired_rupture_is_no_trend():
    # the v-shaped drop of session 5 and its repair at 6 are left out: 85, 88, 86, 87, 87
    assert _trend([85, 88, 86, 87, 50, 87]) == "steady"
    # a drop that stays is the client's level now: the line through it falls
    assert _trend([85, 88, 86, 87, 50, 52, 49]) == "down"


def test_pomp_of_a_value_and_back():
    from alliance_cli.core.change import pomp_of, value_of

    # SRS: four 0-10 marks, a total of 36 is 36/40 of the range: 90 POMP
    assert pomp_of(36, "sum", 0, 10, 4) == pytest.approx(90)
    assert value_of(90, "sum", 0, 10, 4) == pytest.approx(36)
    # WAI-SR item means on 1-5: a mean of 3 is half way, 50 POMP; a sum of 36 over 12 items too
    assert pomp_of(3, "mean", 1, 5, 12) == pytest.approx(50)
    assert pomp_of(36, "sum", 1, 5, 12) == pytest.approx(50)
