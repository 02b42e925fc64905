"""The scoring engine, against scores worked out by hand from the published keys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance_cli.core.definition import Instrument
from alliance_cli.core.errors import RejectedInput, UsageProblem
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.catalog import load_catalog

from .conftest import bands, definition_with, norm, scorable_ids, scorer_for

FULL = [5, 4, 4, 3, 5, 4, 4, 3, 5, 4, 4, 3]


def _scales(score):
    return {k: (v.mean, v.sum, v.answered, v.prorated) for k, v in score.scales.items()}


def test_wai_sr_full_set_by_hand():
    # Goal = items 4,6,8,11 = 3,4,3,4; Task = 1,2,10,12 = 5,4,4,3; Bond = 3,5,7,9 = 4,5,4,5.
    score = scorer_for("wai-sr").score([str(v) for v in FULL])
    assert _scales(score) == {
        "goal": (3.5, 14, 4, False),
        "task": (4.0, 16, 4, False),
        "bond": (4.5, 18, 4, False),
        "total": (4.0, 48, 12, False),
    }
    assert score.scales["goal"].pomp == 62.5  # (3.5 - 1) / (5 - 1) * 100
    assert score.scales["bond"].pomp == 87.5
    assert score.flags == [] and score.issues == []
    assert score.answers["1"] == 5


def test_wai_sr_one_missing_per_subscale_is_prorated():
    answers = [str(v) for v in FULL]
    for item in (4, 1, 3):  # one goal, one task, one bond item left blank
        answers[item - 1] = ""
    score = scorer_for("wai-sr").score(answers)
    # Goal 6,8,11 = 4,3,4 -> 11/3; Task 2,10,12 = 4,4,3 -> 11/3; Bond 5,7,9 = 5,4,5 -> 14/3
    assert _scales(score) == {
        "goal": (3.666667, 14.666667, 3, True),
        "task": (3.666667, 14.666667, 3, True),
        "bond": (4.666667, 18.666667, 3, True),
        "total": (4.0, 48.0, 9, True),  # 36 / 9 = 4, prorated to 12 items
    }


def test_wai_sr_too_many_missing_is_null_with_reason():
    answers = [str(v) for v in FULL]
    answers[3] = answers[5] = ""  # goal items 4 and 6
    score = scorer_for("wai-sr").score(answers)
    goal = score.scales["goal"]
    assert (goal.mean, goal.sum, goal.pomp, goal.answered) == (None, None, None, 2)
    assert goal.missing_reason == "2 of 4 items missing; at most 1 allowed"
    # Total: 48 - 3 - 4 = 41 over 10 answered items; prorated sum 4.1 * 12
    assert (score.scales["total"].mean, score.scales["total"].sum) == (4.1, 49.2)


def test_wai_sr_anchor_text_answers():
    words = {5: "Always", 4: " very OFTEN ", 3: "Fairly often"}
    score = scorer_for("wai-sr").score([words[v] for v in FULL])
    assert _scales(score) == _scales(scorer_for("wai-sr").score([str(v) for v in FULL]))


def test_missing_codes_are_missing_with_their_reason():
    answers = [str(v) for v in FULL]
    answers[0] = "-99"
    score = scorer_for("wai-sr").score(answers)
    assert score.scales["task"].answered == 3
    assert [(i.item, i.problem) for i in score.issues] == [("1", "missing (refused)")]


def test_reverse_keys_on_wai_s():
    # 1-7 scale; items 4 and 10 reversed: 2 -> 1 + 7 - 2 = 6, 1 -> 7.
    answers = ["6"] * 12
    answers[3], answers[9] = "2", "1"
    score = scorer_for("wai-s").score(answers)
    # goal is 4, 6, 10, 11 and task 1, 2, 8, 12 (Tracey & Kokotovic, via the WAI key)
    assert _scales(score)["goal"] == (6.25, 25, 4, False)  # 6 + 6 + 7 + 6
    assert _scales(score)["task"] == (6.0, 24, 4, False)
    assert score.scales["total"].sum == 73  # 10 x 6 + 6 + 7
    assert score.scales["total"].mean == round(73 / 12, 6)
    assert score.answers["4"] == 2  # raw answers are kept as given


def test_reverse_keys_on_haq_ii():
    # 1-6 scale, items 4, 8, 11, 16, 19 reversed: answering 1 everywhere gives 14 x 1 + 5 x 6.
    score = scorer_for("haq-ii").score(["1"] * 19)
    assert score.scales["total"].mean == round((14 + 30) / 19, 6)


def test_srs_decimals_and_cutoff_flag():
    score = scorer_for("srs").score(["8.3", "9.1", "7.6", "8,8"])
    total = score.scales["total"]
    assert (total.sum, total.mean, total.pomp) == (33.8, 8.45, 84.5)
    assert [(f.code, f.scale) for f in score.flags] == [("below_cutoff", "total")]
    assert "36" in score.flags[0].rule


@pytest.mark.parametrize(
    ("answers", "flagged"),
    [(["9", "9", "9", "9"], True), (["9.1", "9", "9", "9"], False), (["10"] * 4, False)],
)
def test_srs_cutoff_is_at_or_below_36(answers, flagged):
    score = scorer_for("srs").score(answers)
    assert bool(score.flags) is flagged


@pytest.mark.parametrize(
    ("instrument", "cell", "message"),
    [
        ("wai-sr", "9", '"9" is outside 1–5'),
        ("wai-sr", "0", '"0" is outside 1–5'),
        ("wai-sr", "3.5", '"3.5" is not a step of 1 on this scale'),
        ("wai-sr", "lots", '"lots" is not a number or an anchor of this scale'),
        ("srs", "8.35", '"8.35" is not a step of 0.1 on this scale'),
        ("srs", "nan", '"nan" is not a number or an anchor of this scale'),
        ("srs", "1_0", '"1_0" is not a number or an anchor of this scale'),
        ("srs", "1e1", '"1e1" is not a number or an anchor of this scale'),
    ],
)
def test_bad_answers_reject_the_set(instrument, cell, message):
    scorer = scorer_for(instrument)
    answers = ["3"] * len(scorer.item_ids)
    answers[1] = cell
    with pytest.raises(RejectedInput) as info:
        scorer.score(answers)
    assert [str(p) for p in info.value.problems] == [f"item 2: {message}"]


def test_invalid_missing_policy_records_the_issue():
    answers = [str(v) for v in FULL]
    answers[6] = "9"
    score = scorer_for("wai-sr", invalid="missing").score(answers)
    assert score.scales["bond"].answered == 3 and score.scales["bond"].prorated
    assert [(i.item, i.value, i.problem) for i in score.issues] == [
        ("7", "9", '"9" is outside 1–5')
    ]


def test_wrong_number_of_answers_is_a_usage_problem():
    with pytest.raises(UsageProblem, match="wai-sr has 12 items; got 3 answers"):
        scorer_for("wai-sr").score(["1", "2", "3"])


def test_unknown_item_in_mapping():
    with pytest.raises(UsageProblem, match="no item 13"):
        scorer_for("wai-sr").score({"13": "4"})


def test_mapping_answers_may_leave_items_out():
    score = scorer_for("wai-sr").score({str(i): FULL[i - 1] for i in range(2, 13)})
    assert score.scales["task"].answered == 3


def test_json_numbers_and_booleans():
    scorer = scorer_for("wai-sr")
    assert scorer.score([float(v) for v in FULL]).scales["total"].mean == 4.0
    with pytest.raises(RejectedInput):
        scorer.score([True, *FULL[1:]])


def test_score_names_the_exact_definition():
    entry = load_catalog().get("wai-sr")
    score = scorer_for("wai-sr").score([str(v) for v in FULL])
    assert score.instrument.sha256 == entry.sha256
    assert score.instrument.version == "2006"


def test_norms_give_z_percentile_and_band():
    inst = definition_with(
        "wai-sr",
        norms=[norm("total", "mean", 3.5, 0.5, 0.9)],
        bands=[bands("total", "sum", ("low", 12), ("high", 48))],
    )
    scorer = Scorer(Instrument.model_validate(inst))
    total = scorer.score([str(v) for v in FULL]).scales["total"]
    assert total.z == 1.0  # (4.0 - 3.5) / 0.5
    assert total.percentile == 84.1  # Phi(1) = 0.8413
    assert total.band == "high"  # sum 48 >= 48


# -- properties ----------------------------------------------------------------------------
INSTRUMENTS = scorable_ids()


@given(st.sampled_from(INSTRUMENTS), st.data())
@settings(max_examples=200, deadline=None)
def test_reverse_keying_twice_is_identity(instrument_id, data):
    scorer = scorer_for(instrument_id)
    value = data.draw(st.sampled_from(scorer.instrument.scale.points()))
    assert scorer._key(scorer._key(value, True), True) == value


@given(st.sampled_from(INSTRUMENTS), st.data())
@settings(max_examples=200, deadline=None)
def test_every_mean_lies_within_the_scale(instrument_id, data):
    scorer = scorer_for(instrument_id)
    points = [f"{p:g}" for p in scorer.instrument.scale.points()]
    answers = data.draw(
        st.lists(
            st.sampled_from([*points, ""]),
            min_size=len(scorer.item_ids),
            max_size=len(scorer.item_ids),
        )
    )
    score = scorer.score(answers)
    for scale in score.scales.values():
        if scale.mean is not None:
            assert scorer.low <= scale.mean <= scorer.high
            assert 0 <= scale.pomp <= 100


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_item_order_inside_a_subscale_changes_nothing(data):
    entry = load_catalog().get("wai-s")
    raw = entry.instrument.to_data()
    for sub in raw["subscales"]:
        sub["items"] = data.draw(st.permutations(sub["items"]))
    shuffled = Scorer(Instrument.model_validate(raw))
    answers = data.draw(st.lists(st.sampled_from("1234567"), min_size=12, max_size=12))
    assert _scales(shuffled.score(answers)) == _scales(Scorer(entry.instrument).score(answers))


@given(
    st.lists(
        st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.none(), st.booleans()),
        min_size=12,
        max_size=12,
    ),
    st.sampled_from(["reject", "missing"]),
)
@settings(max_examples=300, deadline=None)
def test_no_input_raises_anything_but_a_rejection(answers, policy):
    scorer = scorer_for("wai-sr", invalid=policy)
    try:
        score = scorer.score(answers)
    except RejectedInput as exc:
        assert exc.problems and policy == "reject"
    else:
        assert set(score.scales) == {"goal", "task", "bond", "total"}
