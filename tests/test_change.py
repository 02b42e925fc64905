"""Change analysis on histories of known shapes; reliable change against hand-worked numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance_cli.core import change
from alliance_cli.core.change import Point, Reliability, Settings

from .conftest import bands, definition_with, scorer_for

SETTINGS = Settings()


def _points(values):
    return [Point(i + 1, None, v) for i, v in enumerate(values)]


def _codes(values, threshold=10.0):
    rel = Reliability(threshold, "test threshold")
    flags = change.analyse_scale("total", "Total", _points(values), rel, SETTINGS)
    return sorted((f.code, f.session) for f in flags)


def test_reliable_change_threshold_by_hand():
    # 1.96 * sqrt(2) * 0.5 * sqrt(1 - 0.9) = 1.96 * 1.414214 * 0.5 * 0.316228 = 0.438269
    assert math.isclose(change.reliable_change_threshold(0.5, 0.9), 0.438269, abs_tol=1e-6)
    # SD 6 on sums, r .84: 1.96 * 1.414214 * 6 * 0.4 = 6.652461
    assert math.isclose(change.reliable_change_threshold(6, 0.84), 6.652461, abs_tol=1e-6)


def test_norm_threshold_is_converted_to_pomp():
    class Ref:
        sd, reliability = 0.5, 0.9

    class Norm:
        sample, metric, scales = "test", "mean", {"total": Ref()}

    # 1-5 scale in item means: one point is 25 POMP; 0.438269 * 25 = 10.956725
    factors = {
        "mean": change.pomp_factor(1, 5, 12, "mean"),
        "sum": change.pomp_factor(1, 5, 12, "sum"),
    }
    rel = change.reliability_for(Norm(), "total", factors, [])
    assert math.isclose(rel.threshold, 10.956725, abs_tol=1e-5)
    assert "Jacobson & Truax" in rel.source and "test" in rel.source
    assert math.isclose(factors["sum"], 100 / 48)


def test_without_norms_the_client_own_variability_is_used_and_labelled():
    rel = change.reliability_for(None, "total", {"mean": 25, "sum": 1}, [70, 74, 68, 72, 71])
    # diffs 4, -6, 4, -1: SD 4.787136, floored at 5 -> threshold 1.96 * 5 = 9.8
    assert math.isclose(rel.threshold, 9.8)
    assert "own session-to-session" in rel.source
    few = change.reliability_for(None, "total", {"mean": 25, "sum": 1}, [70, 72])
    assert few.threshold is None and "not assessed" in few.source


def test_steady_series_with_small_noise_raises_nothing():
    assert _codes([80, 82, 79, 81, 80, 83, 81, 79]) == []


def test_v_shaped_rupture_and_repair():
    assert _codes([85, 88, 86, 50, 87, 86]) == [
        ("reliable_drop", 4),
        ("reliable_gain", 5),
        ("repair", 5),
        ("rupture_2sd", 4),
    ]


def test_one_sd_rule_alone_is_named():
    # Others: 80, 84, 82, 86, 83 (mean 83, SD 2.236 -> floor 5); 76 is 1.4 SD below.
    flags = change.analyse_scale(
        "total", "Total", _points([80, 84, 82, 86, 76, 83]), Reliability(10, "t"), SETTINGS
    )
    (rupture,) = [f for f in flags if f.code.startswith("rupture")]
    assert rupture.code == "rupture_1sd" and "rules fired: 1 SD;" in rupture.rule
    assert "Strauss et al., 2006" in rupture.rule


def test_slow_decline_without_a_single_reliable_step():
    assert _codes([90, 86, 82, 78, 74, 70]) == [("slow_decline", 6)]


def test_early_weak_alliance_uses_cutoff_then_bands_then_setting():
    srs = scorer_for("srs").instrument
    low = change.early_low(2, 80.0, {"sum": 32.0, "mean": 8.0}, srs, SETTINGS)
    assert low is not None and "sum <= 36" in low.rule and "dropout" in low.message
    assert change.early_low(4, 80.0, {"sum": 32.0, "mean": 8.0}, srs, SETTINGS) is None
    assert change.early_low(1, 95.0, {"sum": 38.0, "mean": 9.5}, srs, SETTINGS) is None
    wai = scorer_for("wai-sr").instrument  # no cutoff, no bands: the POMP setting, labelled
    flag = change.early_low(1, 40.0, {"mean": 2.6, "sum": 31.2}, wai, SETTINGS)
    assert flag is not None and "default setting" in flag.rule
    assert change.early_low(1, 60.0, {"mean": 3.4, "sum": 40.8}, wai, SETTINGS) is None


def test_client_therapist_gap():
    client = {"bond": ("Bond", 90.0), "goal": ("Goal", 60.0), "task": ("Task", 70.0)}
    therapist = {"bond": ("Bond", 85.0), "goal": ("Goal", 80.0), "task": ("Task", None)}
    (gap,) = change.gaps(3, client, therapist, SETTINGS)
    assert (gap.code, gap.scale, gap.session) == ("rater_gap", "goal", 3)
    assert "therapist sees it as stronger" in gap.message


@pytest.mark.parametrize(
    ("values", "expected"),
    [([60, 62, 61, 63], "steady"), ([60, 66, 72, 78], "up"), ([80, 74, 68, 60], "down")],
)
def test_trend(values, expected):
    assert change.trend(values, 10.0) == expected


@pytest.mark.parametrize(
    "values",
    [
        [80, 82, 79, 81, 80, 83, 81, 79],
        [85, 88, 86, 50],
        [85, 88, 86, 50, 87],
        [90, 86, 82, 78, 74, 70],
        [80, 84, 82, 86, 76],
        [60, 30],
        [70],
    ],
)
def test_latest_concerns_agree_with_the_full_analysis(values):
    rel = Reliability(10.0, "t")
    full = change.analyse_scale("total", "Total", _points(values), rel, SETTINGS)
    expected = sorted(
        f.code
        for f in full
        if f.session == len(values) and f.code not in ("repair", "reliable_gain")
    )
    assert sorted(change.latest_concerns(values, 10.0, SETTINGS)) == expected


def test_early_weak_alliance_from_the_lowest_band():
    from alliance_cli.core.compiled import CompiledInstrument

    data = definition_with("wai-sr", bands=[bands("total", "sum", ("weak", 12), ("fair", 36))])
    inst = CompiledInstrument.from_data(data)
    flag = change.early_low(2, 60.0, {"mean": 2.9, "sum": 35.0}, inst, SETTINGS)
    assert flag is not None and "lowest band 'weak'" in flag.rule
    assert change.early_low(2, 20.0, {"mean": 3.0, "sum": 36.0}, inst, SETTINGS) is None


@given(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=25),
    st.one_of(st.none(), st.floats(1, 40)),
)
@settings(max_examples=300, deadline=None)
def test_latest_concerns_agree_with_the_full_analysis_on_any_series(values, threshold):
    rel = Reliability(threshold, "t")
    full = change.analyse_scale("total", "Total", _points(values), rel, SETTINGS)
    expected = sorted(
        f.code
        for f in full
        if f.session == len(values) and f.code not in ("repair", "reliable_gain")
    )
    assert sorted(change.latest_concerns(values, threshold, SETTINGS)) == expected


def test_pomp_of_a_value_and_back():
    from alliance_cli.core.change import pomp_of, value_of

    # SRS: four 0-10 marks, a total of 36 is 36/40 of the range: 90 POMP
    assert pomp_of(36, "sum", 0, 10, 4) == pytest.approx(90)
    assert value_of(90, "sum", 0, 10, 4) == pytest.approx(36)
    # WAI-SR item means on 1-5: a mean of 3 is half way, 50 POMP; a sum of 36 over 12 items too
    assert pomp_of(3, "mean", 1, 5, 12) == pytest.approx(50)
    assert pomp_of(36, "sum", 1, 5, 12) == pytest.approx(50)
    assert value_of(50, "mean", 1, 5, 12) == pytest.approx(3)
