"""The batch fast path (memo tables, generated row function) equals the Scorer, cell for cell."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alliance_cli.batch.fastpath import FastRows
from alliance_cli.core.definition import Instrument
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.catalog import load_catalog
from alliance_cli.io.csvout import score_cells_out

from .conftest import bands, definition_with, norm, scorable_ids


def _with_norms_and_bands() -> Scorer:
    data = definition_with(
        "wai-s",
        norms=[norm("total", "sum", 60, 10, 0.9)],
        bands=[bands("goal", "mean", ("low", 1), ("high", 5))],
    )
    data["cutoffs"] = [
        {"scale": "bond", "metric": "mean", "threshold": 3, "comparison": "<", "label": "l",
         "message": "m", "source": "s"},
        {"scale": "total", "metric": "sum", "threshold": 40, "comparison": "<=", "label": "l",
         "message": "m", "source": "s"},
    ]  # fmt: skip
    return Scorer(Instrument.model_validate(data), "sha")


SCORERS = {key: Scorer(load_catalog().get(key).instrument, "sha") for key in scorable_ids()}
SCORERS["wai-s+norms"] = _with_norms_and_bands()


@given(st.sampled_from(sorted(SCORERS)), st.data())
@settings(max_examples=400, deadline=None)
def test_fast_path_equals_the_scorer(key, data):
    scorer = SCORERS[key]
    points = [f"{p:g}" for p in scorer.instrument.scale.points()]
    anchors = list(scorer.instrument.scale.labels.values())
    cell = st.one_of(
        st.sampled_from(points),
        st.sampled_from(["", "NA", "-99", " 3 ", "x", "99", "3.5", *anchors]),
    )
    n = len(scorer.item_ids)
    answers = data.draw(st.lists(cell, min_size=n, max_size=n))
    row = ["id", *answers]
    fast = FastRows(scorer, list(range(1, n + 1))).compile()
    got = fast(row)
    results, problems, _ = scorer.score_cells(answers)
    if got is None:
        return  # the row goes to the full parser, which is the Scorer itself
    assert not problems
    expected = score_cells_out(scorer, results, scorer.flag_codes(results))
    assert got == ",".join(expected[:-2])  # all but the verification level and the hash
